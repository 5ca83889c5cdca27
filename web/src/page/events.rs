//! The page's event handlers: controls, file input, drag and drop, paste, live-fooling
//! buttons and the gallery, each turned into an [`actions`] call.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{Element, HtmlInputElement};

use super::actions::{self, LiveAction};
use super::controls::model_facts;
use super::dom::{doc, el, on, select_value, show_error};
use super::model::with_ui;
use crate::state::SetKind;
use crate::{Backend, MAX_FILE_BYTES};

/// Reads a picked, dropped or pasted file and shows it (refused above [`MAX_FILE_BYTES`]).
async fn read_file(file: web_sys::File) {
    let name = file.name();
    if file.size() > MAX_FILE_BYTES {
        show_error(&format!(
            "cannot use {name}: {:.1} MB is larger than the {:.0} MB limit",
            file.size() / 1e6,
            MAX_FILE_BYTES / 1e6
        ));
        return;
    }
    match JsFuture::from(file.array_buffer()).await {
        Ok(buf) => {
            let bytes = Uint8Array::new(&buf).to_vec();
            // A user's own image goes to the photo-scale model when the page has one.
            let set = with_ui(|u| u.manifest.upload_set()).unwrap_or(SetKind::Gallery);
            actions::set_image(&bytes, &name, None, &name, set);
        }
        Err(e) => show_error(&format!("cannot read {name}: {e:?}")),
    }
}

/// Attaches the event handlers.
pub fn wire_events() {
    wire_controls();
    wire_image_inputs();
    wire_live_buttons();
    wire_gallery();
}

/// The model, interpreter, opacity and backend controls.
fn wire_controls() {
    let recompute = |_| actions::recompute();
    if let Some(e) = el("model") {
        on(&e, "change", move |ev| {
            let _ = with_ui(|u| model_facts(u));
            recompute(ev)
        });
    }
    if let Some(e) = el("interpreter") {
        on(&e, "change", recompute);
    }
    if let Some(e) = el("opacity") {
        on(&e, "input", |_| actions::redraw());
    }
    if let Some(e) = el("backend") {
        on(&e, "change", |_| {
            actions::switch_backend(Backend::wish(select_value("backend").as_deref()));
        });
    }
}

/// The image sources: the file input, drag and drop onto the drop zone, and paste.
fn wire_image_inputs() {
    if let Some(e) = el("file") {
        on(&e, "change", |ev| {
            let file = ev
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
                .and_then(|i| i.files())
                .and_then(|f| f.get(0));
            if let Some(f) = file {
                spawn_local(read_file(f));
            }
        });
    }
    if let Some(e) = el("drop") {
        on(&e, "dragover", |ev| ev.prevent_default());
        on(&e, "drop", |ev| {
            ev.prevent_default();
            let file = ev
                .dyn_ref::<web_sys::DragEvent>()
                .and_then(|d| d.data_transfer())
                .and_then(|d| d.files())
                .and_then(|f| f.get(0));
            match file {
                Some(f) => spawn_local(read_file(f)),
                None => show_error("the dropped item is not a file"),
            }
        });
    }
    if let Some(d) = doc() {
        on(&d, "paste", |ev| {
            let file = ev
                .dyn_ref::<web_sys::ClipboardEvent>()
                .and_then(|c| c.clipboard_data())
                .and_then(|d| d.files())
                .and_then(|f| f.get(0));
            if let Some(f) = file {
                ev.prevent_default();
                spawn_local(read_file(f));
            }
        });
    }
}

/// The live-fooling start, stop and reset buttons.
fn wire_live_buttons() {
    for (id, action) in [
        ("live-start", LiveAction::Start),
        ("live-stop", LiveAction::Stop),
        ("live-reset", LiveAction::Reset),
    ] {
        if let Some(b) = el(id) {
            on(&b, "click", move |_| actions::live(action));
        }
    }
}

/// The gallery: a click on an entry's button loads that entry.
fn wire_gallery() {
    if let Some(g) = el("gallery") {
        on(&g, "click", |ev| {
            let button = ev
                .target()
                .and_then(|t| t.dyn_into::<Element>().ok())
                .and_then(|e| e.closest("button").ok().flatten());
            let idx = button
                .as_ref()
                .and_then(|b| b.get_attribute("data-index"))
                .and_then(|s| s.parse::<usize>().ok());
            let set = match button.and_then(|b| b.get_attribute("data-set")).as_deref() {
                Some("photo") => SetKind::Photo,
                _ => SetKind::Gallery,
            };
            let entry = idx
                .and_then(|i| with_ui(|u| u.manifest.set(set).gallery.get(i).cloned()))
                .flatten();
            if let Some(e) = entry {
                spawn_local(actions::load_gallery(e, set));
            }
        });
    }
}
