//! The compute worker (a dedicated Web Worker): it answers the page's [`Request`]s with
//! [`Event`]s. [`engine`] owns the device, the models and the maps; [`live`] fine-tunes the
//! original model in the worker. This module only routes messages between them: the engine
//! never names the live run (it receives the live model's parameters as an argument).

pub mod engine;
pub mod live;

use foolmap::Architecture;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::protocol::{self, Compute, Event, RegistryRow, Request};
use engine::{post, with_engine};

/// Worker entry point: reports panics to the page, listens, and says it is alive.
pub fn start_worker() {
    std::panic::set_hook(Box::new(|info| {
        post(&Event::Fatal {
            error: format!("internal error in the compute worker: {info}"),
        });
    }));
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else {
        web_sys::console::error_1(&"foolmap's worker binary must run as a Web Worker".into());
        return;
    };
    let on = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        match protocol::decode::<Request>(&ev.data(), "page") {
            Ok((req, bytes)) => spawn_local(handle(req, bytes)),
            Err(error) => post(&Event::Fatal { error }),
        }
    });
    scope.set_onmessage(Some(on.as_ref().unchecked_ref()));
    on.forget();
    post(&Event::Alive {
        registry: registry(),
    });
}

/// The architecture registry: id, dataset, tap layer, parameter count.
fn registry() -> Vec<RegistryRow> {
    Architecture::ALL
        .iter()
        .map(|a| {
            let net = a.build();
            RegistryRow {
                id: *a,
                dataset: format!("{:?}", a.dataset()),
                tap: net.tap_name().to_string(),
                parameters: net.num_parameters(),
            }
        })
        .collect()
}

fn remember(c: &Compute) {
    with_engine(|e| e.request = Some(c.clone()));
}

async fn handle(req: Request, bytes: Option<Vec<u8>>) {
    match req {
        Request::Init {
            manifest,
            backend,
            preloaded,
        } => {
            let files = bytes.unwrap_or_default();
            if let Err(error) = engine::init(&manifest, backend, &preloaded, &files).await {
                post(&Event::Fatal { error });
            }
        }
        Request::SwitchBackend { want } => {
            live::forget();
            engine::switch_backend(want).await;
        }
        Request::Image {
            name,
            label,
            title,
            compute,
        } => {
            remember(&compute);
            let bytes = bytes.unwrap_or_default();
            match foolmap::image::decode(&bytes, &name) {
                Ok(img) => {
                    with_engine(|e| e.image = Some((img, label, title)));
                    engine::run(compute, live::inference_params()).await;
                }
                Err(e) => post(&Event::Error {
                    generation: compute.generation,
                    error: format!("cannot use {name}: {e}"),
                }),
            }
        }
        Request::Compute { compute } => {
            remember(&compute);
            engine::run(compute, live::inference_params()).await;
        }
        Request::LiveStart {
            kind,
            lambda,
            lr,
            compute,
        } => {
            remember(&compute);
            live::start(kind, lambda, lr).await;
        }
        Request::LiveStop => live::stop(),
        Request::LiveReset { compute } => {
            remember(&compute);
            live::reset().await;
        }
    }
}
