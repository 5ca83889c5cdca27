//! foolmap in the browser: original vs fooled saliency maps on the user's own image.
//!
//! Wasm binaries built by `foolmap web-build` from this crate (the WebGPU worker and a CPU-only
//! one, `worker_cpu`, share [`worker`]):
//! - `app` (the page, [`page`]): loads `models/manifest.json` written by
//!   `foolmap export-web`, draws controls, maps and statistics. It does no tensor work.
//! - `worker` (a dedicated Web Worker, [`worker`]): runs the original and a fooled
//!   model with Burn's WebGPU backend when `navigator.gpu` yields an adapter (CPU `flex` in wasm
//!   otherwise, switchable), computes the maps of the same explicit-backward interpreters the
//!   CLI uses (`foolmap::explain`), and runs live fooling. Heavy work therefore never freezes
//!   the page. Every read-back is `into_data_async` (a synchronous read-back panics on WebGPU).
//!
//! They talk through [`protocol`] messages. The maths lives in `foolmap`; this crate is glue. No
//! `unwrap` on anything the page can receive: every failure becomes a message in `#error`.

mod env;
pub mod page;
pub mod protocol;
pub mod state;
mod wire;
#[cfg(feature = "compute")]
pub mod worker;

use foolmap::Interpreter;
use serde::{Deserialize, Serialize};

/// Largest file the page accepts (bytes); `foolmap::image::decode` also caps pixel counts.
pub const MAX_FILE_BYTES: f64 = 20.0 * 1024.0 * 1024.0;
/// Side of the drawn maps in CSS pixels.
const VIEW: usize = 192;
/// Side of the transfer-grid maps.
const THUMB: usize = 96;
/// Interpreters of the transfer grid: the foolable ones (the paper's three, at the tap).
const TRANSFER: &[Interpreter] = Interpreter::FOOLABLE;
/// Script that starts the worker with WebGPU and the CPU (the loader `foolmap web-build` writes
/// for the `worker` binary).
const WORKER_WEBGPU: &str = "./worker_loader.js";
/// Script that starts the CPU-only worker (`worker_cpu`: no GPU kernel compiler, a third of the
/// bytes).
const WORKER_CPU: &str = "./worker_cpu_loader.js";

/// Why the page runs the CPU-only worker although WebGPU was asked for and the browser has it.
const WEBGPU_WORKER_MISSING: &str = "the WebGPU worker is not in this folder (the main job builds it \
     after the rest of the app: reload when it says so): using the CPU";

/// The worker for a backend wish: the WebGPU one only where the browser has `navigator.gpu` and
/// the app's folder has that worker (the main job builds it last, and a copied folder may lack
/// it; checked by fetching its small loader). With it, why the wish could not be met.
async fn worker_script(want: Backend) -> (&'static str, Option<&'static str>) {
    match want {
        Backend::WebGpu if env::has_webgpu() => {
            if env::fetch_bytes(WORKER_WEBGPU).await.is_ok() {
                (WORKER_WEBGPU, None)
            } else {
                (WORKER_CPU, Some(WEBGPU_WORKER_MISSING))
            }
        }
        _ => (WORKER_CPU, None),
    }
}

/// Which compute backend runs the models.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Backend {
    /// Burn's WebGPU backend (the browser's GPU).
    #[serde(rename = "webgpu")]
    WebGpu,
    /// Burn's `flex` CPU backend compiled to wasm.
    #[serde(rename = "cpu")]
    Cpu,
}

impl Backend {
    /// The backend a `?backend=` value or the switch's value asks for: the CPU for `cpu`,
    /// otherwise WebGPU (which falls back to the CPU where the browser has none).
    fn wish(value: Option<&str>) -> Backend {
        match value {
            Some("cpu") => Backend::Cpu,
            _ => Backend::WebGpu,
        }
    }
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
