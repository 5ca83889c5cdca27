//! The page's state: the manifest, the backend, the worker handle, the last result.

use std::cell::RefCell;
use std::collections::HashMap;

use web_sys::Worker;

use crate::Backend;
use crate::state::{self, Manifest, SetKind};

/// The page's state.
pub struct Ui {
    pub(crate) manifest: Manifest,
    /// The model set of the current image: the gallery's, or the photo set for own photos and
    /// demo photos.
    pub(crate) set: SetKind,
    /// The fooled model last chosen in each set (gallery, photo), restored when the page
    /// returns to that set.
    pub(crate) chosen: [Option<String>; 2],
    pub(crate) backend: Backend,
    pub(crate) worker: Worker,
    /// The script `worker` runs ([`crate::worker_script`]).
    pub(crate) script: &'static str,
    /// Why `script` is not the worker the backend wish asked for (shown as the backend's note).
    pub(crate) fallback: Option<&'static str>,
    /// `models/manifest.json` as text (sent to every worker the page starts).
    pub(crate) manifest_text: String,
    /// The image last sent (file name, label, title, bytes), sent again to a new worker.
    pub(crate) image: Option<SentImage>,
    /// Whether the worker was replaced (backend switch) and still needs the image.
    pub(crate) resend_image: bool,
    /// The last drawn result, for redrawing when only the opacity changes.
    pub(crate) last: Option<state::Output>,
    /// The generation of the newest request; only its answers are drawn.
    pub(crate) generation: u64,
    /// Complete results drawn so far (`body[data-runs]`).
    pub(crate) runs: u64,
    /// Results drawn so far, partial ones included (`body[data-shown]`).
    pub(crate) shown: u64,
    /// URL parameters, read once.
    pub(crate) params: HashMap<String, String>,
    /// Whether the worker answered `Init` (events are wired then).
    pub(crate) ready: bool,
    /// Attaches the event handlers (called once, when the worker is ready).
    pub(crate) wire_events: fn(),
    /// Whether the page has fetched what it fetches while the first worker compiles
    /// ([`Ahead`]); the worker is initialised only after that.
    pub(crate) fetched_ahead: bool,
    /// What it fetched, until used.
    pub(crate) ahead: Ahead,
}

/// What the page fetches while the first worker compiles its wasm, so that the first maps wait
/// for no download after the worker is ready: the model files of the first selection (sent
/// with `Init`) and the first image.
#[derive(Default)]
pub struct Ahead {
    /// Manifest id and file bytes of each model fetched.
    pub(crate) models: Vec<(String, Vec<u8>)>,
    /// The first gallery image, its set, and its bytes or why they could not be fetched.
    pub(crate) image: Option<(state::GalleryEntry, SetKind, Result<Vec<u8>, String>)>,
}

/// An image the page sent to the worker.
#[derive(Clone)]
pub struct SentImage {
    pub(crate) name: String,
    pub(crate) label: Option<usize>,
    pub(crate) title: String,
    pub(crate) bytes: Vec<u8>,
}

thread_local! {
    pub(crate) static UI: RefCell<Option<Ui>> = const { RefCell::new(None) };
}

pub(crate) fn with_ui<R>(f: impl FnOnce(&mut Ui) -> R) -> Option<R> {
    UI.with(|a| a.borrow_mut().as_mut().map(f))
}
