//! What the page does: start the worker, send it requests for the current selection, draw its
//! answers (only those of the newest request), and run the live-fooling buttons. Every tensor
//! computation happens in the worker ([`crate::worker`]); the page only waits for messages, so it
//! stays responsive while maps are computed or the model is fooled live.

use foolmap::fooling::FoolingType;
use futures_lite::future::zip;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{MessageEvent, Worker};

use super::dom::{self, set_text, show_error};
use super::model::{Ahead, SentImage, UI, Ui, with_ui};
use super::{controls, view};
use crate::env::fetch_bytes;
use crate::protocol::{self, Compute, Event, Preloaded, Request};
use crate::state::{self, Manifest, SetKind};
use crate::{Backend, worker_script};

/// Page entry point: shows panics in the page, loads the manifest and starts the worker.
pub fn start(wire_events: fn()) {
    std::panic::set_hook(Box::new(|info| {
        show_error(&format!("internal error: {info}"));
    }));
    spawn_local(async move {
        if let Err(e) = init(wire_events).await {
            show_error(&e);
            set_text("status", "failed to start");
        }
    });
}

fn send(req: &Request, bytes: Option<&[u8]>) {
    let posted = protocol::encode(req, bytes).and_then(|msg| {
        with_ui(|u| u.worker.post_message(&msg))
            .ok_or_else(|| "the page is not initialised".to_string())?
            .map_err(|e| format!("cannot reach the compute worker: {e:?}"))
    });
    if let Err(e) = posted {
        show_error(&e);
    }
}

async fn init(wire_events: fn()) -> Result<(), String> {
    let params = dom::query_params();
    if params.get("embed").is_some_and(|v| v == "1") {
        dom::set_body_class("embed");
    }
    let want = Backend::wish(params.get("backend").map(String::as_str));
    // The worker compiles its wasm while the page fetches the manifest, the first image and the
    // first models; it gets the manifest and the models (`Init`) once both are there.
    let (script, missing) = worker_script(want).await;
    let worker = spawn_worker(script, want)?;
    set_text("status", "loading models/manifest.json …");
    let bytes = fetch_bytes("models/manifest.json").await.map_err(|e| {
        format!(
            "{e}. Run `foolmap export-web --out <this folder>` (the README's main job does it)."
        )
    })?;
    let manifest = Manifest::parse(&bytes)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "models/manifest.json is not UTF-8 text".to_string())?;
    UI.with(|a| {
        *a.borrow_mut() = Some(Ui {
            set: first_set(&manifest, &params),
            chosen: [None, None],
            manifest,
            backend: want,
            worker,
            script,
            fallback: missing,
            manifest_text: text,
            image: None,
            resend_image: false,
            last: None,
            generation: 0,
            runs: 0,
            shown: 0,
            params: params.clone(),
            ready: false,
            wire_events,
            fetched_ahead: false,
            ahead: Ahead::default(),
        })
    });
    with_ui(|u| controls::fill_controls(u, &params));
    set_text("status", "loading the first models …");
    let ahead = fetch_ahead().await;
    with_ui(|u| {
        u.ahead = ahead;
        u.fetched_ahead = true;
    });
    if ALIVE_EARLY.take() {
        send_init(want);
    } else {
        set_text("status", "waiting for the compute worker …");
    }
    Ok(())
}

thread_local! {
    /// Whether the first worker said it was alive before the page was ready to initialise it.
    static ALIVE_EARLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Fetches, all at once, the first image and the two model files of the first selection. A
/// model that fails here is left to the worker, which fetches it when needed and reports why it
/// cannot.
async fn fetch_ahead() -> Ahead {
    let image = with_ui(|u| first_image(u)).flatten();
    let models = with_ui(|u| controls::selection(u).ok())
        .flatten()
        .map(|s| [s.models.0, s.models.1]);
    let image = async move {
        match image {
            Some((entry, set)) => {
                let bytes = fetch_bytes(&entry.file).await;
                Some((entry, set, bytes))
            }
            None => None,
        }
    };
    let models = async move {
        let Some([a, b]) = models else {
            return Vec::new();
        };
        let (fa, fb) = zip(fetch_bytes(&a.file), fetch_bytes(&b.file)).await;
        [(a.id, fa), (b.id, fb)]
            .into_iter()
            .filter_map(|(id, r)| r.ok().map(|bytes| (id, bytes)))
            .collect()
    };
    let (image, models) = zip(image, models).await;
    Ahead { models, image }
}

/// Sends the worker the manifest, the backend wish, and the model files fetched ahead (once).
fn send_init(want: Backend) {
    let Some((manifest, models)) =
        with_ui(|u| (u.manifest_text.clone(), std::mem::take(&mut u.ahead.models)))
    else {
        return;
    };
    let preloaded = models
        .iter()
        .map(|(id, bytes)| Preloaded {
            id: id.clone(),
            len: bytes.len(),
        })
        .collect();
    let files: Vec<u8> = models.into_iter().flat_map(|(_, bytes)| bytes).collect();
    send(
        &Request::Init {
            manifest,
            backend: want,
            preloaded,
        },
        (!files.is_empty()).then_some(&files[..]),
    );
}

/// Starts the compute worker `script`, which is initialised for `want` when it says it is alive.
fn spawn_worker(script: &'static str, want: Backend) -> Result<Worker, String> {
    let worker = Worker::new(script)
        .map_err(|e| format!("cannot start the compute worker {script}: {e:?}"))?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        match protocol::decode::<Event>(&ev.data(), "worker") {
            Ok((event, _)) => on_event(event, want),
            Err(e) => show_error(&e),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error =
        Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
            show_error(&format!(
                "the compute worker failed: {} ({script})",
                ev.message()
            ));
            set_text("status", "failed to start");
        });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Ok(worker)
}

/// One message of the worker.
fn on_event(event: Event, want: Backend) {
    match event {
        Event::Alive { registry } => {
            view::render_registry(&registry);
            if with_ui(|u| u.fetched_ahead) == Some(true) {
                send_init(want);
            } else {
                ALIVE_EARLY.set(true);
            }
        }
        Event::Backend { backend, note } => {
            let first = with_ui(|u| {
                u.backend = backend;
                !std::mem::replace(&mut u.ready, true)
            })
            .unwrap_or(false);
            let note = with_ui(|u| u.fallback).flatten().map_or(note, String::from);
            dom::set_backend_status(backend, &note);
            if first {
                if let Some(wire) = with_ui(|u| u.wire_events) {
                    wire();
                }
                set_text("status", "ready");
                spawn_local(load_first_image());
            } else if let Some(image) = with_ui(|u| {
                std::mem::take(&mut u.resend_image)
                    .then(|| u.image.clone())
                    .flatten()
            })
            .flatten()
            {
                // A new worker (backend switch): it has no image yet.
                set_text("status", "ready");
                send_image(image);
            } else {
                recompute();
            }
        }
        Event::Status { text } => set_text("status", &text),
        Event::Output { generation, output } => {
            if is_latest(generation) {
                // A partial output (the selected maps first) keeps the page busy until the
                // rest of the transfer grid arrives.
                if !output.partial {
                    dom::set_busy(false);
                }
                dom::clear_error();
                with_ui(|u| {
                    u.runs += u64::from(!output.partial);
                    u.shown += 1;
                    view::draw(u, &output);
                    u.last = Some(*output);
                });
            }
        }
        Event::Error { generation, error } => {
            if is_latest(generation) {
                dom::set_busy(false);
                show_error(&error);
            }
        }
        Event::LiveStep { step, ce, fool } => {
            set_text(
                "live-status",
                &format!("step {step}  CE {ce:.3}  L_F {fool:.4}"),
            );
            dom::set_live_steps(step);
        }
        Event::LiveState { running, error } => {
            dom::set_live_state(running);
            if let Some(e) = error {
                dom::set_busy(false);
                show_error(&e);
            }
        }
        Event::Fatal { error } => {
            show_error(&error);
            set_text("status", "the compute worker stopped");
        }
    }
}

fn is_latest(generation: u64) -> bool {
    with_ui(|u| u.generation == generation).unwrap_or(false)
}

/// The set shown first: the set of `?model=`, else of `?image=` (a demo photo), else the
/// gallery's.
fn first_set(m: &Manifest, params: &std::collections::HashMap<String, String>) -> SetKind {
    if let Some(k) = params.get("model").and_then(|id| m.kind_of(id)) {
        return k;
    }
    let photo = params.get("image").is_some_and(|want| {
        m.set(SetKind::Photo)
            .gallery
            .iter()
            .any(|e| e.file.ends_with(want.as_str()) || e.name == *want)
    });
    if photo && m.photo.is_some() {
        SetKind::Photo
    } else {
        SetKind::Gallery
    }
}

/// First image: `?image=<gallery file or name>` (of the first set), else its first entry.
fn first_image(u: &Ui) -> Option<(state::GalleryEntry, SetKind)> {
    let g = u.manifest.set(u.set).gallery;
    let e = u
        .params
        .get("image")
        .and_then(|want| {
            g.iter()
                .find(|e| e.file.ends_with(want.as_str()) || e.name == *want)
        })
        .or_else(|| g.first())
        .cloned();
    e.map(|e| (e, u.set))
}

/// Sends the first image (fetched ahead, else now).
async fn load_first_image() {
    match with_ui(|u| u.ahead.image.take()).flatten() {
        Some((entry, set, Ok(bytes))) => {
            set_image(&bytes, &entry.file, entry.label, &entry.name, set)
        }
        Some((_, _, Err(e))) => show_error(&e),
        None => {
            if let Some((entry, set)) = with_ui(|u| first_image(u)).flatten() {
                load_gallery(entry, set).await;
            }
        }
    }
}

/// A new request for the current controls (the page becomes busy until its answer).
fn next_compute() -> Result<Compute, String> {
    let sel = with_ui(|u| controls::selection(u)).ok_or("the page is not initialised")??;
    let generation = with_ui(|u| {
        u.generation += 1;
        u.generation
    })
    .unwrap_or(0);
    dom::set_busy(true);
    Ok(Compute {
        generation,
        original: sel.models.0.id,
        fooled: sel.models.1.id,
        interpreter: sel.interpreter,
    })
}

/// Asks for predictions, maps and statistics of the current selection.
pub fn recompute() {
    match next_compute() {
        Ok(compute) => send(&Request::Compute { compute }, None),
        Err(e) => show_error(&e),
    }
}

/// Redraws the last result (opacity change).
pub fn redraw() {
    with_ui(|u| {
        if let Some(out) = u.last.take() {
            view::draw(u, &out);
            u.last = Some(out);
        }
    });
}

/// Asks for another backend: the worker switches itself, or, where the backend needs the other
/// worker (WebGPU and CPU-only, [`worker_script`]), the page replaces it (a live run ends with it).
pub fn switch_backend(want: Backend) {
    spawn_local(async move {
        let (script, missing) = worker_script(want).await;
        let Some(current) = with_ui(|u| {
            u.fallback = missing;
            u.script
        }) else {
            return;
        };
        if script == current {
            send(&Request::SwitchBackend { want }, None);
            return;
        }
        match spawn_worker(script, want) {
            Ok(worker) => {
                with_ui(|u| {
                    std::mem::replace(&mut u.worker, worker).terminate();
                    u.script = script;
                    u.resend_image = true;
                });
                dom::set_live_state(false);
                set_text("status", "starting the compute worker …");
            }
            Err(e) => show_error(&e),
        }
    });
}

/// Fetches a gallery image (of the set `set`) and sends it.
pub async fn load_gallery(entry: state::GalleryEntry, set: SetKind) {
    match fetch_bytes(&entry.file).await {
        Ok(bytes) => set_image(&bytes, &entry.file, entry.label, &entry.name, set),
        Err(e) => show_error(&e),
    }
}

/// Sends image bytes (gallery, file picker, drop, paste) to be decoded and explained in the
/// worker by the models of `set` (the model dropdown follows); a bad file comes back as an
/// error message.
pub fn set_image(bytes: &[u8], name: &str, label: Option<usize>, title: &str, set: SetKind) {
    with_ui(|u| {
        if u.set != set {
            let slot = |k: SetKind| match k {
                SetKind::Gallery => 0,
                SetKind::Photo => 1,
            };
            u.chosen[slot(u.set)] = dom::select_value("model");
            u.set = set;
            let want = u.chosen[slot(set)].clone();
            controls::fill_models(u, want.as_deref());
            controls::model_facts(u);
        }
    });
    send_image(SentImage {
        name: name.to_string(),
        label,
        title: title.to_string(),
        bytes: bytes.to_vec(),
    });
}

/// Sends an image with a request for the current selection, and remembers it.
fn send_image(image: SentImage) {
    match next_compute() {
        Ok(compute) => {
            send(
                &Request::Image {
                    name: image.name.clone(),
                    label: image.label,
                    title: image.title.clone(),
                    compute,
                },
                Some(&image.bytes),
            );
            with_ui(|u| u.image = Some(image));
        }
        Err(e) => show_error(&e),
    }
}

/// The live-fooling buttons.
#[derive(Clone, Copy, Debug)]
pub enum LiveAction {
    Start,
    Stop,
    Reset,
}

/// A click on a live-fooling button.
pub fn live(action: LiveAction) {
    match action {
        LiveAction::Start => {
            let get = |id: &str| dom::input_value(id).unwrap_or_default();
            let (Ok(lambda), Ok(lr)) = (get("live-lambda").parse(), get("live-lr").parse()) else {
                show_error("λ and the learning rate must be numbers");
                return;
            };
            let kind = match get("live-fooling").parse::<FoolingType>() {
                Ok(k) => k,
                Err(e) => {
                    show_error(&format!("fooling type: {e}"));
                    return;
                }
            };
            if let Err(e) = state::live_settings(kind, lambda, lr) {
                show_error(&e);
                return;
            }
            match next_compute() {
                Ok(compute) => {
                    dom::set_live_state(true);
                    send(
                        &Request::LiveStart {
                            kind,
                            lambda,
                            lr,
                            compute,
                        },
                        None,
                    );
                }
                Err(e) => show_error(&e),
            }
        }
        LiveAction::Stop => send(&Request::LiveStop, None),
        LiveAction::Reset => match next_compute() {
            Ok(compute) => {
                set_text("live-status", "reset: showing the exported fooled model");
                send(&Request::LiveReset { compute }, None);
            }
            Err(e) => show_error(&e),
        },
    }
}
