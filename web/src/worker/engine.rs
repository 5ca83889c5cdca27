//! The compute worker's engine: models, maps and statistics, off the page's thread.
//!
//! It owns the device (WebGPU or the CPU), the parameters loaded on it, the decoded image and
//! the latest [`Compute`] request; it answers every request with [`Event`]s. A computation checks
//! between read-backs whether a newer request arrived and then gives up, so a burst of clicks
//! costs one computation. Nothing here touches the DOM (a worker has none).

use std::cell::RefCell;
use std::rc::Rc;

use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::{explain_traced, logits};
use foolmap::fooling::{self, FoolingType};
use foolmap::image::{Rgb8, eval_crop};
use foolmap::scores::{read_back, read_back_async};
use foolmap::{Architecture, InterpreterOptions, Net, ParamStore, StateDict};
use futures_lite::future::zip;
use wasm_bindgen::prelude::*;
use web_sys::DedicatedWorkerGlobalScope;

use crate::env::{self, fetch_bytes};
use crate::protocol::{self, Compute, Event, Preloaded};
use crate::state::{self, Manifest, ModelEntry, SetKind};
use crate::{Backend, TRANSFER};

/// The worker's state.
pub struct Engine {
    pub(crate) manifest: Manifest,
    /// The networks of the manifest's sets, built when first needed; shared by every
    /// computation and the live run (cloning one is a reference count).
    nets: Vec<Rc<Net>>,
    pub(crate) backend: Backend,
    pub(crate) device: Device,
    /// Parameters of the models loaded on `device`, by manifest id.
    loaded: Vec<(String, Rc<ParamStore>)>,
    /// The image being explained (decoded, full size), its label when known, and its title.
    pub(crate) image: Option<(Rgb8, Option<usize>, String)>,
    /// The latest request; live fooling redraws with it.
    pub(crate) request: Option<Compute>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    #[cfg(feature = "webgpu")]
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

pub(crate) fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> Option<R> {
    ENGINE.with(|a| a.borrow_mut().as_mut().map(f))
}

/// Posts an event to the page.
pub(crate) fn post(ev: &Event) {
    let scope = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>();
    match (protocol::encode(ev, None), scope) {
        (Ok(v), Ok(s)) => {
            if let Err(e) = s.post_message(&v) {
                web_sys::console::error_1(&e);
            }
        }
        (Err(e), _) => web_sys::console::error_1(&e.into()),
        (_, Err(_)) => web_sys::console::error_1(&"the engine runs outside a worker".into()),
    }
}

fn status(text: &str) {
    post(&Event::Status { text: text.into() });
}

/// Starts the engine on the backend for `want`, with the model files the page fetched while
/// this worker compiled (loaded before the page hears that the worker is ready, so the first
/// computation fetches nothing; one that fails to load is fetched again when needed, and that
/// attempt reports the error).
pub(crate) async fn init(
    text: &str,
    want: Backend,
    preloaded: &[Preloaded],
    files: &[u8],
) -> Result<(), String> {
    let manifest = Manifest::parse(text.as_bytes())?;
    let files = protocol::split_preloaded(preloaded, files)?;
    let (backend, device, note) = make_device(want).await;
    ENGINE.with(|a| {
        *a.borrow_mut() = Some(Engine {
            manifest,
            nets: Vec::new(),
            backend,
            device,
            loaded: Vec::new(),
            image: None,
            request: None,
        })
    });
    for (id, bytes) in files {
        if let Err(e) = entry(id).and_then(|entry| load_params(&entry, bytes)) {
            web_sys::console::warn_1(&format!("a preloaded model file: {e}").into());
        }
    }
    post(&Event::Backend { backend, note });
    Ok(())
}

/// Creates the device for `want`: WebGPU when the browser offers an adapter, else the CPU.
#[cfg(feature = "webgpu")]
async fn make_device(want: Backend) -> (Backend, Device, String) {
    if want == Backend::WebGpu {
        if let Some(d) = WEBGPU.with(|w| w.borrow().clone()) {
            return (Backend::WebGpu, d, String::new());
        }
        if !env::has_webgpu() {
            return (
                Backend::Cpu,
                Device::flex(),
                "navigator.gpu is missing: using the CPU".into(),
            );
        }
        return match Device::wgpu_options()
            .graphics_api(foolmap::burn::tensor::wgpu::WgpuBackend::WebGpu)
            .init_async()
            .await
        {
            Ok(d) => {
                WEBGPU.with(|w| *w.borrow_mut() = Some(d.clone()));
                (Backend::WebGpu, d, String::new())
            }
            Err(e) => (
                Backend::Cpu,
                Device::flex(),
                format!("no WebGPU adapter ({e}): using the CPU"),
            ),
        };
    }
    (Backend::Cpu, Device::flex(), String::new())
}

/// Creates the device of the CPU-only worker (`worker_cpu`): the CPU, whatever the wish (the
/// page starts the WebGPU worker for WebGPU).
#[cfg(not(feature = "webgpu"))]
async fn make_device(want: Backend) -> (Backend, Device, String) {
    let note = match want {
        Backend::WebGpu => "this worker was built without WebGPU: using the CPU",
        Backend::Cpu => "",
    };
    (Backend::Cpu, Device::flex(), note.into())
}

/// Switches the backend: drops the models loaded on the old one (the caller drops the live run).
pub(crate) async fn switch_backend(want: Backend) {
    let (backend, device, note) = make_device(want).await;
    with_engine(|e| {
        e.backend = backend;
        e.device = device;
        e.loaded.clear();
    });
    post(&Event::Backend { backend, note });
}

impl Engine {
    /// The network of `arch` (built on first use).
    pub(crate) fn net(&mut self, arch: Architecture) -> Rc<Net> {
        if let Some(n) = self.nets.iter().find(|n| n.id == arch.id()) {
            return n.clone();
        }
        let n = Rc::new(arch.build());
        self.nets.push(n.clone());
        n
    }
}

/// The manifest entry with this id (either set).
pub(crate) fn entry(id: &str) -> Result<ModelEntry, String> {
    with_engine(|e| e.manifest.model(id).cloned())
        .ok_or("the worker is not initialised")?
        .ok_or_else(|| format!("models/manifest.json has no model `{id}`"))
}

pub(crate) async fn params_for(id: &str) -> Result<Rc<ParamStore>, String> {
    if let Some(p) = with_engine(|e| {
        e.loaded
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, p)| p.clone())
    })
    .flatten()
    {
        return Ok(p);
    }
    let entry = entry(id)?;
    status(&format!("loading {} …", entry.file));
    let bytes = fetch_bytes(&entry.file).await?;
    load_params(&entry, &bytes)
}

/// Loads the model file `bytes` of `entry` onto the engine's device and keeps it.
fn load_params(entry: &ModelEntry, bytes: &[u8]) -> Result<Rc<ParamStore>, String> {
    let sd = StateDict::from_safetensors(bytes, &entry.file).map_err(|e| e.to_string())?;
    let p = with_engine(|e| {
        let net = e.net(entry.arch);
        ParamStore::from_state_dict(&net.specs, &sd, &net.id, &entry.file, &e.device)
            .map(Rc::new)
            .map_err(|e| e.to_string())
    })
    .ok_or("the worker is not initialised")??;
    with_engine(|e| e.loaded.push((entry.id.clone(), p.clone())));
    Ok(p)
}

/// A map batch `[N, h, w]` read back with its extents.
async fn read(t: Tensor<3>) -> Result<(Vec<f32>, usize, usize), String> {
    let [_, h, w] = t.dims();
    let v = read_back_async(t).await.map_err(|e| e.to_string())?;
    Ok((v, h, w))
}

async fn read_logits(t: Tensor<2>) -> Result<Vec<f32>, String> {
    read_back_async(t).await.map_err(|e| e.to_string())
}

/// Computes for the latest request (live redraws).
pub(crate) async fn recompute_latest(live: Option<LiveModel>) {
    if let Some(c) = with_engine(|e| e.request.clone()).flatten() {
        run(c, live).await;
    }
}

/// The live-fooled model's parameters (without autodiff) and its description, which replace the
/// exported fooled model while a live run exists.
pub(crate) type LiveModel = (ParamStore, String);

/// Computes for `c` and posts the output or the error (nothing when a newer request won).
pub(crate) async fn run(c: Compute, live: Option<LiveModel>) {
    let generation = c.generation;
    match compute(&c, live).await {
        Ok(Some(output)) => post(&Event::Output {
            generation,
            output: Box::new(output),
        }),
        Ok(None) => {}
        Err(error) => post(&Event::Error { generation, error }),
    }
}

fn superseded(c: &Compute) -> bool {
    with_engine(|e| {
        e.request
            .as_ref()
            .is_some_and(|r| r.generation > c.generation)
    })
    .unwrap_or(true)
}

/// The original's and the fooled model's parameters, with the fooled model's name. The live
/// model (being fooled in the page, on the gallery's model) replaces the exported one while it
/// exists, for the gallery set's models only.
async fn both_params(
    c: &Compute,
    live: Option<LiveModel>,
) -> Result<(Rc<ParamStore>, Rc<ParamStore>, String), String> {
    let gallery = with_engine(|e| e.manifest.kind_of(&c.original) == Some(SetKind::Gallery));
    match live.filter(|_| gallery == Some(true)) {
        Some((p, name)) => Ok((params_for(&c.original).await?, Rc::new(p), name)),
        None => {
            // Both files are fetched at once (the first computation waits for both).
            let (p0, p1) = zip(params_for(&c.original), params_for(&c.fooled)).await;
            Ok((p0?, p1?, c.fooled.clone()))
        }
    }
}

async fn compute(c: &Compute, live: Option<LiveModel>) -> Result<Option<state::Output>, String> {
    let interpreter = c.interpreter;
    let Some((img, label, title)) = with_engine(|e| e.image.clone()).flatten() else {
        return Ok(None);
    };
    let arch = entry(&c.original)?.arch;
    let (p0, p1, model_name) = both_params(c, live).await?;
    if superseded(c) {
        return Ok(None);
    }
    status("computing …");
    let t0 = env::now_ms();
    let (net, device, backend) = with_engine(|e| (e.net(arch), e.device.clone(), e.backend))
        .ok_or("the worker is not initialised")?;
    let crop = eval_crop(&img, net.dataset);
    let x =
        foolmap::image::batch(std::slice::from_ref(&crop), &device).map_err(|e| e.to_string())?;
    let tr0 = net.seq.trace(&p0, x.clone());
    let tr1 = net.seq.trace(&p1, x);
    let lg0 = read_logits(logits(&tr0)).await?;
    let lg1 = read_logits(logits(&tr1)).await?;
    let (class, class_source) = match label {
        Some(l) if l < net.num_classes => (l, "label"),
        _ => (foolmap::scores::argmax(&lg0), "original top-1"),
    };
    let opts = InterpreterOptions::default();
    // The selected interpreter first (its maps are what the page shows large, with the
    // statistics), then the rest of the transfer grid.
    let mut interps = vec![interpreter];
    interps.extend(TRANSFER.iter().filter(|&&i| i != interpreter));
    let mut out = state::Output {
        backend,
        model: model_name,
        interpreter,
        image_title: title,
        crop,
        class,
        class_source: class_source.into(),
        logits: (lg0, lg1),
        maps: Vec::new(),
        stats: None,
        partial: true,
        ms: 0.0,
        forward_ms: env::now_ms() - t0,
        timings: Vec::new(),
    };
    let count = interps.len();
    for (k, interp) in interps.into_iter().enumerate() {
        if superseded(c) {
            return Ok(None);
        }
        let ti = env::now_ms();
        let m0 =
            explain_traced(&net, &p0, &tr0, &[class], interp, &opts).map_err(|e| e.to_string())?;
        let m1 =
            explain_traced(&net, &p1, &tr1, &[class], interp, &opts).map_err(|e| e.to_string())?;
        let pair = state::MapPair {
            interpreter: interp,
            original: read(m0).await?,
            fooled: read(m1).await?,
        };
        out.timings
            .push((interp.id().to_string(), env::now_ms() - ti));
        if k == 0 {
            out.stats = Some(stats_of(&pair)?);
        }
        out.maps.push(pair);
        if k == 0 && count > 1 {
            // The page draws the selected maps now and the transfer grid when it is complete.
            out.ms = env::now_ms() - t0;
            post(&Event::Output {
                generation: c.generation,
                output: Box::new(out.clone()),
            });
        }
    }
    out.partial = false;
    out.ms = env::now_ms() - t0;
    Ok(Some(out))
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
        read_back(x)
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
    use foolmap::Interpreter;

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
