//! DOM helpers: element lookups, texts, errors, busy and live states, canvases, listeners.
//! Every lookup that can fail degrades to a message. Nothing here knows the page's state.

use std::collections::HashMap;

use foolmap::Interpreter;
use foolmap::image::Rgb8;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{
    CanvasRenderingContext2d, Document, Element, HtmlCanvasElement, HtmlInputElement,
    HtmlSelectElement, ImageData,
};

use crate::Backend;

/// Interpreters offered in the dropdown: the registry's foolable ones and their input-level maps.
pub(crate) fn offered() -> Vec<Interpreter> {
    Interpreter::offered()
}

pub(crate) fn doc() -> Option<Document> {
    web_sys::window().and_then(|w| w.document())
}

/// Element by id.
pub fn el(id: &str) -> Option<Element> {
    doc().and_then(|d| d.get_element_by_id(id))
}

/// Sets the text of `#id`.
pub fn set_text(id: &str, text: &str) {
    if let Some(e) = el(id) {
        e.set_text_content(Some(text));
    }
}

/// Shows a message in `#error`.
pub fn show_error(msg: &str) {
    web_sys::console::error_1(&msg.into());
    if let Some(e) = el("error") {
        e.set_text_content(Some(msg));
        let _ = e.remove_attribute("hidden");
    }
    if let Some(b) = doc().and_then(|d| d.body()) {
        let _ = b.set_attribute("data-error", "1");
    }
}

/// Hides `#error`.
pub fn clear_error() {
    if let Some(e) = el("error") {
        e.set_text_content(None);
        let _ = e.set_attribute("hidden", "");
    }
    if let Some(b) = doc().and_then(|d| d.body()) {
        let _ = b.remove_attribute("data-error");
    }
}

/// `?key=value` pairs of the page URL.
pub fn query_params() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    if let Ok(p) = web_sys::UrlSearchParams::new_with_str(&search) {
        for key in ["model", "interpreter", "image", "embed", "backend"] {
            if let Some(v) = p.get(key) {
                out.insert(key.to_string(), v);
            }
        }
    }
    out
}

/// Adds a class to `<body>`.
pub fn set_body_class(c: &str) {
    if let Some(b) = doc().and_then(|d| d.body()) {
        let _ = b.class_list().add_1(c);
    }
}

/// Marks the page busy (`body[data-busy]`) while a computation runs.
pub fn set_busy(busy: bool) {
    if let Some(b) = doc().and_then(|d| d.body()) {
        if busy {
            let _ = b.set_attribute("data-busy", "1");
        } else {
            let _ = b.remove_attribute("data-busy");
        }
    }
}

/// The backend line and the switch's value.
pub fn set_backend_status(b: Backend, note: &str) {
    set_text(
        "backend-status",
        &if note.is_empty() {
            format!("running on {}", b.label())
        } else {
            format!("running on {} — {note}", b.label())
        },
    );
    if let Some(s) = el("backend").and_then(|e| e.dyn_into::<HtmlSelectElement>().ok()) {
        s.set_value(b.id());
    }
    if let Some(body) = doc().and_then(|d| d.body()) {
        let _ = body.set_attribute("data-backend", b.id());
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

pub(crate) fn select_value(id: &str) -> Option<String> {
    el(id)
        .and_then(|e| e.dyn_into::<HtmlSelectElement>().ok())
        .map(|s| s.value())
}

/// The value of an `<input>` or `<select>`.
pub fn input_value(id: &str) -> Option<String> {
    let e = el(id)?;
    if let Some(i) = e.dyn_ref::<HtmlInputElement>() {
        return Some(i.value());
    }
    e.dyn_ref::<HtmlSelectElement>().map(|s| s.value())
}

/// Enables / disables the live buttons (`body[data-live]` while running).
pub fn set_live_state(running: bool) {
    for (id, enabled) in [("live-start", !running), ("live-stop", running)] {
        if let Some(b) = el(id) {
            if enabled {
                let _ = b.remove_attribute("disabled");
            } else {
                let _ = b.set_attribute("disabled", "");
            }
        }
    }
    if let Some(b) = doc().and_then(|d| d.body()) {
        if running {
            let _ = b.set_attribute("data-live", "1");
        } else {
            let _ = b.remove_attribute("data-live");
        }
    }
}

/// Records the number of live steps done (`body[data-live-steps]`).
pub fn set_live_steps(n: u64) {
    if let Some(b) = doc().and_then(|d| d.body()) {
        let _ = b.set_attribute("data-live-steps", &n.to_string());
    }
}

/// A canvas of the page and its 2D context.
fn canvas_2d(canvas_id: &str) -> Option<(HtmlCanvasElement, CanvasRenderingContext2d)> {
    let c = el(canvas_id)?.dyn_into::<HtmlCanvasElement>().ok()?;
    let ctx = c
        .get_context("2d")
        .ok()
        .flatten()?
        .dyn_into::<CanvasRenderingContext2d>()
        .ok()?;
    Some((c, ctx))
}

pub(crate) fn put_rgb(canvas_id: &str, img: &Rgb8) {
    let Some((c, ctx)) = canvas_2d(canvas_id) else {
        return;
    };
    // Assigning a canvas size clears it and its context even when unchanged.
    if c.width() != img.width as u32 || c.height() != img.height as u32 {
        c.set_width(img.width as u32);
        c.set_height(img.height as u32);
    }
    let mut rgba = Vec::with_capacity(img.width * img.height * 4);
    for px in img.data.chunks(3) {
        rgba.extend_from_slice(px);
        rgba.push(255);
    }
    if let Ok(data) = ImageData::new_with_u8_clamped_array_and_sh(
        Clamped(&rgba),
        img.width as u32,
        img.height as u32,
    ) {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
}

/// Clears a canvas (a map that has not arrived yet).
pub(crate) fn clear_canvas(canvas_id: &str) {
    if let Some((c, ctx)) = canvas_2d(canvas_id) {
        ctx.clear_rect(0.0, 0.0, c.width() as f64, c.height() as f64);
    }
}

pub(crate) fn on(target: &web_sys::EventTarget, ev: &str, f: impl FnMut(web_sys::Event) + 'static) {
    let c = Closure::<dyn FnMut(web_sys::Event)>::new(f);
    let _ = target.add_event_listener_with_callback(ev, c.as_ref().unchecked_ref());
    c.forget();
}
