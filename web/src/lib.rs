//! foolmap in the browser: original vs fooled saliency maps on the user's own image.
//!
//! The page (`static/index.html`) loads `models/manifest.json` written by `foolmap export-web`
//! from its own origin, runs the original and a fooled model with Burn's WebGPU backend when
//! `navigator.gpu` yields an adapter (CPU `flex` in wasm otherwise, switchable), and draws the
//! maps of the same explicit-backward interpreters the CLI uses (`foolmap::explain`). Every
//! read-back is `into_data_async` (a synchronous read-back panics on WebGPU). The maths lives in
//! `foolmap`; this crate is DOM glue. No `unwrap` on anything the page can receive: every
//! failure becomes a message in `#error`.

mod dom;
mod live;
mod state;

use std::cell::RefCell;
use std::rc::Rc;

use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::{explain_traced, logits};
use foolmap::fooling::{self, FoolingType};
use foolmap::image::{Rgb8, eval_crop};
use foolmap::{Architecture, Interpreter, InterpreterOptions, Net, ParamStore, StateDict};
use wasm_bindgen::prelude::*;

use crate::dom::{fetch_bytes, set_text, show_error};
use crate::state::{Manifest, ModelEntry};

/// Largest file the page accepts (bytes); `foolmap::image::decode` also caps pixel counts.
pub const MAX_FILE_BYTES: f64 = 20.0 * 1024.0 * 1024.0;
/// Side of the drawn maps in CSS pixels.
const VIEW: usize = 192;
/// Side of the transfer-grid maps.
const THUMB: usize = 96;
/// Interpreters of the transfer grid (the paper's three, at the tap).
const TRANSFER: [Interpreter; 3] = [
    Interpreter::LrpT,
    Interpreter::GradCam,
    Interpreter::SimpleGradT,
];

/// Which compute backend runs the models.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// Burn's WebGPU backend (the browser's GPU).
    WebGpu,
    /// Burn's `flex` CPU backend compiled to wasm.
    Cpu,
}

impl Backend {
    fn id(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Backend::WebGpu => "WebGPU",
            Backend::Cpu => "CPU (wasm)",
        }
    }
}

/// The page's state.
pub struct App {
    manifest: Manifest,
    /// Shared by every computation and the live run (cloning it is a reference count).
    net: Rc<Net>,
    backend: Backend,
    device: Device,
    /// Parameters of the models loaded on `device`, by manifest id.
    loaded: Vec<(String, Rc<ParamStore>)>,
    /// The image being explained (decoded, full size) and its label when known.
    image: Option<(Rgb8, Option<usize>, String)>,
    /// Last computed maps, for redrawing when only the opacity changes.
    last: Option<state::Output>,
    /// Incremented by every request; a finished computation draws only if it is the latest.
    generation: u64,
    runs: u64,
}

thread_local! {
    static APP: RefCell<Option<App>> = const { RefCell::new(None) };
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

fn with_app<R>(f: impl FnOnce(&mut App) -> R) -> Option<R> {
    APP.with(|a| a.borrow_mut().as_mut().map(f))
}

/// Entry point: shows panics in the page, then loads the manifest and the default image.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        show_error(&format!("internal error: {info}"));
    }));
    wasm_bindgen_futures::spawn_local(async {
        if let Err(e) = init().await {
            show_error(&e);
            set_text("status", "failed to start");
        }
    });
}

/// Interpreter ids of the registry (drives the dropdowns).
#[wasm_bindgen]
pub fn interpreters_json() -> String {
    let ids: Vec<&str> = Interpreter::ALL.iter().map(|i| i.id()).collect();
    serde_json::json!(ids).to_string()
}

/// One row per architecture of the registry as JSON (`id`, `dataset`, `tap`, `parameters`).
#[wasm_bindgen]
pub fn architectures_json() -> String {
    let rows: Vec<serde_json::Value> = Architecture::ALL
        .iter()
        .map(|a| {
            let net = a.build();
            serde_json::json!({"id": a.id(), "dataset": format!("{:?}", a.dataset()),
                               "tap": net.tap_name(), "parameters": net.num_parameters()})
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

async fn init() -> Result<(), String> {
    dom::render_registry();
    let params = dom::query_params();
    let embed = params.get("embed").is_some_and(|v| v == "1");
    if embed {
        dom::set_body_class("embed");
    }
    set_text("status", "loading models/manifest.json …");
    let bytes = fetch_bytes("models/manifest.json").await.map_err(|e| {
        format!(
            "{e}. Run `foolmap export-web --out <this folder>` (the README's main job does it)."
        )
    })?;
    let manifest = Manifest::parse(&bytes)?;
    let arch: Architecture = manifest
        .arch
        .parse()
        .map_err(|e| format!("models/manifest.json: field `arch`: {e}"))?;
    let net = arch.build();
    let want = match params.get("backend").map(String::as_str) {
        Some("cpu") => Backend::Cpu,
        _ => Backend::WebGpu,
    };
    let (backend, device, note) = make_device(want).await;
    APP.with(|a| {
        *a.borrow_mut() = Some(App {
            manifest,
            net: Rc::new(net),
            backend,
            device,
            loaded: Vec::new(),
            image: None,
            last: None,
            generation: 0,
            runs: 0,
        })
    });
    with_app(|app| dom::fill_controls(app, &params));
    dom::set_backend_status(backend, &note);
    dom::wire_events();
    // First image: ?image=<gallery file or name>, else the first gallery entry.
    let first = with_app(|app| {
        let g = &app.manifest.gallery;
        params
            .get("image")
            .and_then(|want| {
                g.iter()
                    .find(|e| e.file.ends_with(want.as_str()) || e.name == *want)
            })
            .or_else(|| g.first())
            .cloned()
    })
    .flatten();
    set_text("status", "ready");
    if let Some(entry) = first {
        load_gallery(entry).await;
    }
    Ok(())
}

/// Creates the device for `want`: WebGPU when the browser offers an adapter, else the CPU.
async fn make_device(want: Backend) -> (Backend, Device, String) {
    if want == Backend::WebGpu {
        if let Some(d) = WEBGPU.with(|w| w.borrow().clone()) {
            return (Backend::WebGpu, d, String::new());
        }
        if !dom::has_webgpu() {
            return (
                Backend::Cpu,
                Device::flex(),
                "navigator.gpu is missing: using the CPU".into(),
            );
        }
        match Device::wgpu_options()
            .graphics_api(foolmap::burn::tensor::wgpu::WgpuBackend::WebGpu)
            .init_async()
            .await
        {
            Ok(d) => {
                WEBGPU.with(|w| *w.borrow_mut() = Some(d.clone()));
                return (Backend::WebGpu, d, String::new());
            }
            Err(e) => {
                return (
                    Backend::Cpu,
                    Device::flex(),
                    format!("no WebGPU adapter ({e}): using the CPU"),
                );
            }
        }
    }
    (Backend::Cpu, Device::flex(), String::new())
}

/// Switches the backend (drops the models loaded on the old one) and recomputes.
pub async fn switch_backend(want: Backend) {
    let (backend, device, note) = make_device(want).await;
    with_app(|app| {
        app.backend = backend;
        app.device = device;
        app.loaded.clear();
    });
    dom::set_backend_status(backend, &note);
    recompute().await;
}

/// Fetches and shows a gallery image.
pub async fn load_gallery(entry: state::GalleryEntry) {
    match fetch_bytes(&entry.file).await {
        Ok(bytes) => set_image(&bytes, &entry.file, entry.label, &entry.name).await,
        Err(e) => show_error(&e),
    }
}

/// Decodes user bytes (file picker, drop, paste) and recomputes; bad files become a message.
pub async fn set_image(bytes: &[u8], name: &str, label: Option<usize>, title: &str) {
    match foolmap::image::decode(bytes, name) {
        Ok(img) => {
            dom::clear_error();
            with_app(|app| app.image = Some((img, label, title.to_string())));
            recompute().await;
        }
        Err(e) => show_error(&format!("cannot use {name}: {e}")),
    }
}

pub(crate) async fn params_for(entry: &ModelEntry) -> Result<Rc<ParamStore>, String> {
    if let Some(p) = with_app(|app| {
        app.loaded
            .iter()
            .find(|(id, _)| *id == entry.id)
            .map(|(_, p)| p.clone())
    })
    .flatten()
    {
        return Ok(p);
    }
    set_text("status", &format!("loading {} …", entry.file));
    let bytes = fetch_bytes(&entry.file).await?;
    let sd = StateDict::from_safetensors(&bytes, &entry.file).map_err(|e| e.to_string())?;
    let p = with_app(|app| {
        ParamStore::from_state_dict(&app.net.specs, &sd, &app.net.id, &entry.file, &app.device)
            .map(Rc::new)
            .map_err(|e| e.to_string())
    })
    .ok_or("the page is not initialised")??;
    with_app(|app| app.loaded.push((entry.id.clone(), p.clone())));
    Ok(p)
}

async fn read(t: Tensor<3>) -> Result<(Vec<f32>, usize, usize), String> {
    let [_, h, w] = t.dims();
    let data: TensorData = t.into_data_async().await.map_err(|e| format!("{e:?}"))?;
    let v = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    Ok((v, h, w))
}

async fn read_logits(t: Tensor<2>) -> Result<Vec<f32>, String> {
    let data: TensorData = t.into_data_async().await.map_err(|e| format!("{e:?}"))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// Recomputes predictions, maps and statistics for the current selection and draws them.
pub async fn recompute() {
    let Some(generation) = with_app(|app| {
        app.generation += 1;
        app.generation
    }) else {
        return;
    };
    dom::set_busy(true);
    let result = compute(generation).await;
    let latest = with_app(|app| app.generation == generation).unwrap_or(false);
    if latest {
        dom::set_busy(false);
        match result {
            Ok(Some(out)) => {
                dom::clear_error();
                with_app(|app| {
                    app.runs += 1;
                    dom::draw(app, &out);
                    app.last = Some(out);
                });
            }
            Ok(None) => {}
            Err(e) => show_error(&e),
        }
    }
}

/// Redraws the last result (opacity change).
pub fn redraw() {
    with_app(|app| {
        if let Some(out) = app.last.take() {
            dom::draw(app, &out);
            app.last = Some(out);
        }
    });
}

async fn compute(generation: u64) -> Result<Option<state::Output>, String> {
    let sel = with_app(|app| dom::selection(app)).ok_or("the page is not initialised")??;
    let Some((img, label, title)) = with_app(|app| app.image.clone()).flatten() else {
        return Ok(None);
    };
    let (orig_entry, fooled_entry) = sel.models.clone();
    let p0 = params_for(&orig_entry).await?;
    // The live model (being fooled in the page) replaces the exported one while it exists.
    let (p1, model_name) = match live::inference_params() {
        Some((p, name)) => (Rc::new(p), name),
        None => (params_for(&fooled_entry).await?, fooled_entry.id.clone()),
    };
    if with_app(|app| app.generation != generation).unwrap_or(true) {
        return Ok(None);
    }
    set_text("status", "computing …");
    let t0 = dom::now_ms();
    let (net, device, dataset, backend) = with_app(|app| {
        (
            app.net.clone(),
            app.device.clone(),
            app.net.dataset,
            app.backend,
        )
    })
    .ok_or("the page is not initialised")?;
    let crop = eval_crop(&img, dataset);
    let x =
        foolmap::image::batch(std::slice::from_ref(&crop), &device).map_err(|e| e.to_string())?;
    let tr0 = net.seq.trace(&p0, x.clone());
    let tr1 = net.seq.trace(&p1, x);
    let lg0 = read_logits(logits(&tr0)).await?;
    let lg1 = read_logits(logits(&tr1)).await?;
    let (class, class_source) = match label {
        Some(l) if l < net.num_classes => (l, "label"),
        _ => (state::argmax(&lg0), "original top-1"),
    };
    let opts = InterpreterOptions::default();
    let mut interps: Vec<Interpreter> = TRANSFER.to_vec();
    if !interps.contains(&sel.interpreter) {
        interps.push(sel.interpreter);
    }
    let mut maps = Vec::new();
    let mut timings = Vec::new();
    let forward_ms = dom::now_ms() - t0;
    for interp in interps {
        let ti = dom::now_ms();
        let m0 =
            explain_traced(&net, &p0, &tr0, &[class], interp, &opts).map_err(|e| e.to_string())?;
        let m1 =
            explain_traced(&net, &p1, &tr1, &[class], interp, &opts).map_err(|e| e.to_string())?;
        let a = read(m0).await?;
        let b = read(m1).await?;
        maps.push(state::MapPair {
            interpreter: interp,
            original: a,
            fooled: b,
        });
        timings.push((interp, dom::now_ms() - ti));
    }
    let ms = dom::now_ms() - t0;
    let stats = maps
        .iter()
        .find(|m| m.interpreter == sel.interpreter)
        .map(stats_of)
        .transpose()?;
    Ok(Some(state::Output {
        backend,
        model: model_name,
        interpreter: sel.interpreter,
        image_title: title,
        crop,
        class,
        class_source,
        logits: (lg0, lg1),
        maps,
        stats,
        ms,
        forward_ms,
        timings,
    }))
}

/// Per-image statistics of one map pair (spec §5, §7.2): Location statistic of both maps, Top-k
/// statistic and overlap, centre-of-mass shift, Spearman rank correlation. Computed with the
/// library's own functions on the CPU (the maps are already read back).
fn stats_of(m: &state::MapPair) -> Result<state::Stats, String> {
    let cpu = Device::flex();
    let (a, h, w) = &m.original;
    let (b, _, _) = &m.fooled;
    let t = |v: &Vec<f32>| Tensor::<3>::from_data(TensorData::new(v.clone(), [1, *h, *w]), &cpu);
    let scalar = |x: Tensor<1>| -> f64 {
        x.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN) as f64
    };
    let loc0 =
        scalar(fooling::statistic(FoolingType::Location, t(a), None).map_err(|e| e.to_string())?);
    let loc1 =
        scalar(fooling::statistic(FoolingType::Location, t(b), None).map_err(|e| e.to_string())?);
    let topk =
        scalar(fooling::statistic(FoolingType::TopK, t(b), Some(t(a))).map_err(|e| e.to_string())?);
    let cm = scalar(
        fooling::statistic(FoolingType::CenterMass, t(b), Some(t(a))).map_err(|e| e.to_string())?,
    );
    Ok(state::Stats {
        location: (loc0, loc1),
        topk,
        topk_overlap: state::topk_overlap(a, b),
        center_shift: cm,
        spearman: foolmap::metrics::spearman(a, b),
        frame_mass: (state::frame_mass(a, *h, *w), state::frame_mass(b, *h, *w)),
        constant: (state::is_constant(a), state::is_constant(b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_identical_maps() {
        let v: Vec<f32> = (0..64).map(|i| (i % 9) as f32 / 8.0).collect();
        let m = state::MapPair {
            interpreter: Interpreter::GradCam,
            original: (v.clone(), 8, 8),
            fooled: (v, 8, 8),
        };
        let s = stats_of(&m).expect("stats");
        assert!((s.location.0 - s.location.1).abs() < 1e-9);
        assert!(s.center_shift.abs() < 1e-6, "{}", s.center_shift);
        assert!((s.topk_overlap - 1.0).abs() < 1e-9);
        assert!((s.spearman - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_frame_map_has_a_small_location_statistic() {
        let mask = fooling::location_mask(8, 8);
        let centre: Vec<f32> = mask.iter().map(|m| 1.0 - m).collect();
        let m = state::MapPair {
            interpreter: Interpreter::GradCam,
            original: (centre, 8, 8),
            fooled: (mask, 8, 8),
        };
        let s = stats_of(&m).expect("stats");
        assert!(
            s.location.1 < 1e-9 && s.location.0 > 0.9,
            "{:?}",
            s.location
        );
        assert!(s.frame_mass.1 > 0.99 && s.frame_mass.0 < 0.01);
        assert!(s.topk_overlap < 1e-9);
    }
}
