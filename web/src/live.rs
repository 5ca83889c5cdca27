//! Live fooling in the page: fine-tune the original model with `CE + λ·L_F` (spec §1.1, §5) on
//! the gallery images and redraw the maps every few steps, with start / stop / reset. The same
//! `foolmap::train::Objective` and Adam as `foolmap fool`; the step yields to the browser between
//! iterations so the page stays responsive.

use std::cell::RefCell;

use foolmap::ParamStore;
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::fooling::FoolingType;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::params::SplitMix;
use foolmap::train::{Adam, Objective};
use foolmap::{Interpreter, InterpreterOptions};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::dom::{fetch_bytes, set_text, show_error};

/// Fooling types offered live (Active needs composites; it stays in the CLI).
pub const LIVE_TYPES: [FoolingType; 3] = [
    FoolingType::Location,
    FoolingType::TopK,
    FoolingType::CenterMass,
];
/// Images per step.
const BATCH: usize = 8;
/// Redraw the maps every this many steps.
const REDRAW_EVERY: u64 = 3;

/// A live run.
pub struct Live {
    /// Current parameters (on the autodiff device).
    pub params: ParamStore,
    adam: Adam,
    pub step: u64,
    pub running: bool,
    pub kind: FoolingType,
    pub interpreter: Interpreter,
    pub lambda: f64,
}

thread_local! {
    pub static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
    static DATA: RefCell<Vec<(Rgb8, usize)>> = const { RefCell::new(Vec::new()) };
}

/// The live model's parameters without autodiff, for drawing (None when no live run exists).
pub fn inference_params() -> Option<(ParamStore, String)> {
    LIVE.with(|l| {
        l.borrow().as_ref().map(|live| {
            let mut q = live.params.clone();
            q.set_values(
                live.params
                    .values()
                    .iter()
                    .map(|t| t.clone().inner())
                    .collect(),
            );
            (
                q,
                format!(
                    "live {} fooling of {} (λ {}, step {})",
                    live.kind, live.interpreter, live.lambda, live.step
                ),
            )
        })
    })
}

async fn yield_now() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ =
                w.set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), 0);
        }
    });
    let _ = JsFuture::from(p).await;
}

async fn scalar(t: Tensor<1>) -> f64 {
    match t.inner().into_data_async().await {
        Ok(d) => d
            .convert::<f32>()
            .try_into_vec::<f32>()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN) as f64,
        Err(_) => f64::NAN,
    }
}

/// Loads and decodes the gallery once (labels required).
async fn training_images() -> Result<(), String> {
    if DATA.with(|d| !d.borrow().is_empty()) {
        return Ok(());
    }
    let (entries, dataset) = crate::with_app(|app| (app.manifest.gallery.clone(), app.net.dataset))
        .ok_or("the page is not initialised")?;
    let mut out = Vec::new();
    for e in entries {
        let Some(label) = e.label else { continue };
        let bytes = fetch_bytes(&e.file).await?;
        let img = foolmap::image::decode(&bytes, &e.file).map_err(|e| e.to_string())?;
        out.push((eval_crop(&img, dataset), label));
    }
    if out.is_empty() {
        return Err("live fooling needs labelled gallery images; the manifest has none".into());
    }
    DATA.with(|d| *d.borrow_mut() = out);
    Ok(())
}

/// Reads the live controls: (fooling type, λ, learning rate).
fn controls() -> Result<(FoolingType, f64, f64), String> {
    let get = |id: &str| crate::dom::input_value(id).unwrap_or_default();
    let kind: FoolingType = get("live-fooling")
        .parse()
        .map_err(|e| format!("fooling type: {e}"))?;
    let lambda: f64 = get("live-lambda")
        .parse()
        .map_err(|_| "λ must be a number".to_string())?;
    let lr: f64 = get("live-lr")
        .parse()
        .map_err(|_| "the learning rate must be a number".to_string())?;
    if !(lambda.is_finite() && lambda >= 0.0 && lr.is_finite() && lr > 0.0) {
        return Err("λ must be ≥ 0 and the learning rate > 0".into());
    }
    Ok((kind, lambda, lr))
}

/// Starts (or continues) live fooling until stopped.
pub async fn start() {
    if LIVE.with(|l| l.borrow().as_ref().is_some_and(|x| x.running)) {
        return;
    }
    if let Err(e) = run().await {
        show_error(&format!("live fooling stopped: {e}"));
        LIVE.with(|l| {
            if let Some(x) = l.borrow_mut().as_mut() {
                x.running = false;
            }
        });
    }
    crate::dom::set_live_state(false);
}

/// Stops after the current step.
pub fn stop() {
    LIVE.with(|l| {
        if let Some(x) = l.borrow_mut().as_mut() {
            x.running = false;
        }
    });
}

/// Forgets the live model and shows the exported fooled model again.
pub async fn reset() {
    stop();
    LIVE.with(|l| *l.borrow_mut() = None);
    set_text("live-status", "reset: showing the exported fooled model");
    crate::recompute().await;
}

async fn run() -> Result<(), String> {
    training_images().await?;
    let (kind, lambda, lr) = controls()?;
    let sel = crate::with_app(|app| crate::dom::selection(app))
        .ok_or("the page is not initialised")??;
    let interpreter = sel.interpreter;
    if interpreter.level() != foolmap::explain::interpreter::Level::Tap {
        return Err(format!(
            "live fooling trains a tap-level map: choose lrp_t, grad_cam or simple_grad_t, not {interpreter}"
        ));
    }
    let (net, device, backend) =
        crate::with_app(|app| (app.net.clone(), app.device.clone(), app.backend))
            .ok_or("the page is not initialised")?;
    if kind == FoolingType::TopK && backend == crate::Backend::WebGpu {
        return Err(
            "Top-k fooling reads the original map's top cells back synchronously, which WebGPU forbids: switch to the CPU backend".into(),
        );
    }
    let p0 = crate::params_for(&sel.models.0).await?;
    let ad: Device = device.clone().autodiff();
    // A new run when none exists or the objective changed; else continue the current one.
    let fresh = LIVE.with(|l| {
        l.borrow()
            .as_ref()
            .is_none_or(|x| x.kind != kind || x.interpreter != interpreter || x.lambda != lambda)
    });
    if fresh {
        let p = p0.to_device(&ad).require_grad();
        let adam = Adam::new(&p, lr);
        LIVE.with(|l| {
            *l.borrow_mut() = Some(Live {
                params: p,
                adam,
                step: 0,
                running: true,
                kind,
                interpreter,
                lambda,
            })
        });
    } else {
        LIVE.with(|l| {
            if let Some(x) = l.borrow_mut().as_mut() {
                x.running = true;
            }
        });
    }
    crate::dom::set_live_state(true);
    let obj = Objective {
        kind,
        interpreter,
        lambda,
        options: InterpreterOptions::default(),
    };
    obj.validate().map_err(|e| e.to_string())?;
    loop {
        let Some((p, step)) = LIVE.with(|l| {
            l.borrow()
                .as_ref()
                .filter(|x| x.running)
                .map(|x| (x.params.clone(), x.step))
        }) else {
            break;
        };
        let mut rng = SplitMix::new(1_000_003u64.wrapping_mul(step + 1));
        let (imgs, labels): (Vec<Rgb8>, Vec<usize>) = DATA.with(|d| {
            let d = d.borrow();
            (0..BATCH)
                .map(|_| {
                    let (img, label) = &d[rng.below(d.len())];
                    (foolmap::augment::cifar_train(img, &mut rng), *label)
                })
                .unzip()
        });
        let x = foolmap::image::batch(&imgs, &ad).map_err(|e| e.to_string())?;
        let loss = obj
            .passive(&net, &p, &p0, x, &labels)
            .map_err(|e| e.to_string())?;
        let grads = loss.total.backward();
        let ce = scalar(loss.ce).await;
        let fl = scalar(loss.fool).await;
        if !(ce.is_finite() && fl.is_finite()) {
            return Err(format!(
                "the loss became non-finite at step {} (lower λ or the learning rate)",
                step + 1
            ));
        }
        let still = LIVE.with(|l| {
            let mut l = l.borrow_mut();
            let Some(x) = l.as_mut() else { return false };
            x.params = x.adam.step(&p, &grads);
            x.step += 1;
            set_text(
                "live-status",
                &format!("step {}  CE {ce:.3}  L_F {fl:.4}", x.step),
            );
            crate::dom::set_live_steps(x.step);
            x.running
        });
        if !still {
            break;
        }
        if (step + 1) % REDRAW_EVERY == 0 {
            crate::recompute().await;
        } else {
            yield_now().await;
        }
    }
    crate::recompute().await;
    Ok(())
}
