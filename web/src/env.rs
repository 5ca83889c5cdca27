//! What the page and the compute worker share of the browser: the global scope (a `Window` on
//! the page, a `WorkerGlobalScope` in the worker), its clock, `fetch`, `setTimeout` and
//! `navigator.gpu`. Every failure is an `Err` with the URL or object named.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Window, WorkerGlobalScope};

enum Scope {
    Window(Window),
    Worker(WorkerGlobalScope),
}

fn scope() -> Option<Scope> {
    let g = js_sys::global();
    if let Some(w) = g.dyn_ref::<Window>() {
        return Some(Scope::Window(w.clone()));
    }
    g.dyn_into::<WorkerGlobalScope>().ok().map(Scope::Worker)
}

/// Milliseconds from `performance.now()` (0 when the scope has no clock).
#[cfg(feature = "compute")]
pub fn now_ms() -> f64 {
    match scope() {
        Some(Scope::Window(w)) => w.performance().map(|p| p.now()),
        Some(Scope::Worker(w)) => w.performance().map(|p| p.now()),
        None => None,
    }
    .unwrap_or(0.0)
}

/// GETs a same-origin relative URL (relative to the page, or to the worker script).
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let promise = match scope() {
        Some(Scope::Window(w)) => w.fetch_with_str(url),
        Some(Scope::Worker(w)) => w.fetch_with_str(url),
        None => return Err(format!("cannot fetch {url}: no window or worker scope")),
    };
    let resp = JsFuture::from(promise)
        .await
        .map_err(|e| format!("cannot fetch {url}: {e:?}"))?;
    let resp: web_sys::Response = resp
        .dyn_into()
        .map_err(|_| format!("cannot fetch {url}: not a response"))?;
    if !resp.ok() {
        return Err(format!("cannot fetch {url}: HTTP {}", resp.status()));
    }
    let buf = JsFuture::from(
        resp.array_buffer()
            .map_err(|e| format!("cannot read {url}: {e:?}"))?,
    )
    .await
    .map_err(|e| format!("cannot read {url}: {e:?}"))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// Lets the scope's event loop run (messages, rendering) before continuing.
#[cfg(feature = "compute")]
pub async fn yield_now() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let f = resolve.unchecked_ref();
        let _ = match scope() {
            Some(Scope::Window(w)) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, 0),
            Some(Scope::Worker(w)) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, 0),
            None => Ok(0),
        };
    });
    let _ = JsFuture::from(p).await;
}

/// Whether `navigator.gpu` exists in this scope (WebGPU is exposed to dedicated workers too).
pub fn has_webgpu() -> bool {
    let nav: Option<wasm_bindgen::JsValue> = match scope() {
        Some(Scope::Window(w)) => Some(w.navigator().into()),
        Some(Scope::Worker(w)) => Some(w.navigator().into()),
        None => None,
    };
    nav.and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}
