//! Live fooling in the worker: fine-tune the original model with `CE + λ·L_F` (spec §1.1, §5) on
//! the gallery images and redraw the maps every few steps, with start / stop / reset. The same
//! `foolmap::session::FoolingSession` as `foolmap fool`. It runs in the compute worker, so the
//! page never waits for a step; between steps the worker yields so a `stop` message gets in.

use std::cell::{Cell, RefCell};

use std::rc::Rc;

use foolmap::burn::tensor::{Device, Tensor};
use foolmap::fooling::FoolingType;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::params::SplitMix;
use foolmap::session::{Batch, FoolingSession};
use foolmap::train::Objective;
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};

use super::engine::{post, with_engine};
use crate::env::{fetch_bytes, yield_now};
use crate::protocol::Event;
use crate::state::SetKind;

/// Images per step.
const BATCH: usize = 8;
/// Redraw the maps every this many steps.
const REDRAW_EVERY: u64 = 3;

/// A live run: its session (objective, parameters on the autodiff device, Adam) and whether it
/// is running.
pub struct Live {
    pub session: FoolingSession,
    pub running: bool,
}

thread_local! {
    pub static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
    static DATA: RefCell<Vec<(Rgb8, usize)>> = const { RefCell::new(Vec::new()) };
    /// Counts stop requests, so a stop that arrives while a run is still loading is not lost.
    static STOPS: Cell<u64> = const { Cell::new(0) };
}

/// The live model's parameters without autodiff, for drawing (None when no live run exists).
pub fn inference_params() -> Option<(ParamStore, String)> {
    LIVE.with(|l| {
        l.borrow().as_ref().map(|live| {
            let (s, o) = (&live.session, &live.session.objective);
            (
                s.inference_params(),
                format!(
                    "live {} fooling of {} (λ {}, step {})",
                    o.kind,
                    o.interpreter,
                    o.lambda,
                    s.steps()
                ),
            )
        })
    })
}

async fn scalar(t: Tensor<1>) -> f64 {
    foolmap::scores::read_back_async(t.inner())
        .await
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN) as f64
}

/// Loads and decodes the gallery once (labels required).
async fn training_images() -> Result<(), String> {
    if DATA.with(|d| !d.borrow().is_empty()) {
        return Ok(());
    }
    let (entries, dataset) = with_engine(|e| {
        let arch = e.manifest.arch;
        (e.manifest.gallery.clone(), e.net(arch).dataset)
    })
    .ok_or("the worker is not initialised")?;
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

/// Starts (or continues) live fooling until stopped.
pub async fn start(kind: FoolingType, lambda: f64, lr: f64) {
    if LIVE.with(|l| l.borrow().as_ref().is_some_and(|x| x.running)) {
        return;
    }
    let error = match run(kind, lambda, lr).await {
        Ok(()) => None,
        Err(e) => {
            LIVE.with(|l| {
                if let Some(x) = l.borrow_mut().as_mut() {
                    x.running = false;
                }
            });
            Some(format!("live fooling stopped: {e}"))
        }
    };
    post(&Event::LiveState {
        running: false,
        error,
    });
}

/// Stops after the current step.
pub fn stop() {
    STOPS.with(|s| s.set(s.get() + 1));
    LIVE.with(|l| {
        if let Some(x) = l.borrow_mut().as_mut() {
            x.running = false;
        }
    });
}

/// Forgets the live model (a backend switch: its parameters live on the old device).
pub fn forget() {
    stop();
    LIVE.with(|l| *l.borrow_mut() = None);
}

/// Forgets the live model and computes with the exported fooled model again.
pub async fn reset() {
    forget();
    super::engine::recompute_latest(inference_params()).await;
}

/// What a live run computes with: the network, the original (the loss's reference), the
/// autodiff device and the interpreter of the current selection.
struct Context {
    net: Rc<Net>,
    p0: Rc<ParamStore>,
    ad: Device,
    interpreter: Interpreter,
}

async fn run(kind: FoolingType, lambda: f64, lr: f64) -> Result<(), String> {
    let stops = STOPS.with(Cell::get);
    crate::state::live_settings(kind, lambda, lr)?;
    training_images().await?;
    let cx = context(kind).await?;
    if STOPS.with(Cell::get) != stops {
        // Stopped (or reset) while loading: answer the pending request and end.
        super::engine::recompute_latest(inference_params()).await;
        return Ok(());
    }
    let objective = Objective {
        kind,
        interpreter: cx.interpreter,
        lambda,
        options: InterpreterOptions::default(),
    };
    objective.validate().map_err(|e| e.to_string())?;
    begin(objective, &cx, lr);
    while let Some(step) = LIVE.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|x| x.running)
            .map(|x| x.session.steps())
    }) {
        if !one_step(&cx, step).await? {
            break;
        }
        if (step + 1) % REDRAW_EVERY == 0 {
            super::engine::recompute_latest(inference_params()).await;
        }
        yield_now().await;
    }
    super::engine::recompute_latest(inference_params()).await;
    Ok(())
}

/// Checks that the selection can be fooled live on this backend and loads the original.
async fn context(kind: FoolingType) -> Result<Context, String> {
    let request = with_engine(|e| e.request.clone())
        .flatten()
        .ok_or("live fooling needs a selection")?;
    let interpreter = request.interpreter;
    if interpreter.level() != foolmap::explain::interpreter::Level::Tap {
        return Err(format!(
            "live fooling trains a tap-level map: choose lrp_t, grad_cam or simple_grad_t, not {interpreter}"
        ));
    }
    let gallery = with_engine(|e| e.manifest.kind_of(&request.original) == Some(SetKind::Gallery));
    if gallery != Some(true) {
        return Err(
            "live fooling trains the gallery's model: click a gallery image first (a photo model is too slow to fool in the browser)".into(),
        );
    }
    let (net, device, backend) = with_engine(|e| {
        let arch = e.manifest.arch;
        (e.net(arch), e.device.clone(), e.backend)
    })
    .ok_or("the worker is not initialised")?;
    if kind == FoolingType::TopK && backend == crate::Backend::WebGpu {
        return Err(
            "Top-k fooling reads the original map's top cells back synchronously, which WebGPU forbids: switch to the CPU backend".into(),
        );
    }
    let p0 = super::engine::params_for(&request.original).await?;
    Ok(Context {
        net,
        p0,
        ad: device.autodiff(),
        interpreter,
    })
}

/// A new session when none exists or the objective changed, else the current one continues;
/// tells the page the run started.
fn begin(objective: Objective, cx: &Context, lr: f64) {
    let fresh = LIVE.with(|l| {
        l.borrow()
            .as_ref()
            .map(|x| &x.session.objective)
            .is_none_or(|o| {
                o.kind != objective.kind
                    || o.interpreter != objective.interpreter
                    || o.lambda != objective.lambda
            })
    });
    if fresh {
        let p = cx.p0.to_device(&cx.ad).require_grad();
        let session = FoolingSession::new(objective, p, lr);
        LIVE.with(|l| {
            *l.borrow_mut() = Some(Live {
                session,
                running: true,
            })
        });
    } else {
        LIVE.with(|l| {
            if let Some(x) = l.borrow_mut().as_mut() {
                x.running = true;
            }
        });
    }
    post(&Event::LiveState {
        running: true,
        error: None,
    });
}

/// One step on an augmented batch of the gallery (stopping on a non-finite loss before the
/// weights move); returns whether the run goes on.
async fn one_step(cx: &Context, step: u64) -> Result<bool, String> {
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
    let x = foolmap::image::batch(&imgs, &cx.ad).map_err(|e| e.to_string())?;
    let batch = Batch::Labelled { x, labels: &labels };
    let pending = LIVE
        .with(|l| {
            l.borrow()
                .as_ref()
                .map(|x| x.session.loss(&cx.net, &cx.p0, batch))
        })
        .ok_or("the live run was reset")?
        .map_err(|e| e.to_string())?;
    let ce = scalar(pending.loss.ce.clone()).await;
    let fl = scalar(pending.loss.fool.clone()).await;
    if !(ce.is_finite() && fl.is_finite()) {
        return Err(format!(
            "the loss became non-finite at step {} (lower λ or the learning rate)",
            step + 1
        ));
    }
    Ok(LIVE.with(|l| {
        let mut l = l.borrow_mut();
        let Some(x) = l.as_mut() else { return false };
        x.session.apply(pending);
        post(&Event::LiveStep {
            step: x.session.steps(),
            ce,
            fool: fl,
        });
        x.running
    }))
}
