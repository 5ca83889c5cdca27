//! DOM glue: controls, events, canvases. Every lookup that can fail degrades to a message.

use std::collections::HashMap;

use foolmap::Interpreter;
use foolmap::colormap;
use foolmap::image::{Rgb8, resize_bilinear};
use js_sys::Uint8Array;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    CanvasRenderingContext2d, Document, Element, HtmlCanvasElement, HtmlInputElement,
    HtmlSelectElement, ImageData,
};

use crate::protocol::RegistryRow;
use crate::state::{MapPair, Output, Selection};
use crate::ui::{Ui, with_ui};
use crate::{Backend, MAX_FILE_BYTES, THUMB, VIEW};
use foolmap::scores::{softmax, top_k};

/// Interpreters offered in the dropdown: the registry's foolable ones and their input-level maps.
fn offered() -> Vec<Interpreter> {
    Interpreter::offered()
}

fn doc() -> Option<Document> {
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// Fills the model / interpreter dropdowns, the gallery and the model facts.
pub fn fill_controls(app: &Ui, params: &HashMap<String, String>) {
    let fooled: Vec<_> = app.manifest.fooled().collect();
    if let Some(sel) = el("model") {
        let mut html = String::new();
        for m in &fooled {
            let figures = m.eval.as_ref();
            let mut fsr = m
                .interpreter
                .and_then(|i| figures.and_then(|e| e.interpreters.get(i.id())))
                .map_or(String::new(), |v| format!(", FSR {}", pct(v.fsr)));
            if figures.and_then(|e| e.meets_target) == Some(false) {
                fsr.push_str(", misses the fooling target");
            }
            html.push_str(&format!(
                "<option value=\"{}\">{} fooling of {} (λ {}{fsr})</option>",
                esc(&m.id),
                m.fooling.map_or("?", |f| f.id()),
                m.interpreter.map_or("?", |i| i.id()),
                m.lambda.map_or("?".into(), |l| format!("{l}")),
            ));
        }
        sel.set_inner_html(&html);
    }
    let wanted_model = params
        .get("model")
        .and_then(|id| fooled.iter().find(|m| m.id == *id))
        .or(fooled.first())
        .copied();
    if let (Some(s), Some(m)) = (
        el("model").and_then(|e| e.dyn_into::<HtmlSelectElement>().ok()),
        wanted_model,
    ) {
        s.set_value(&m.id);
    }
    if let Some(sel) = el("interpreter") {
        let html: String = offered()
            .iter()
            .map(|i| format!("<option value=\"{0}\">{0}</option>", i.id()))
            .collect();
        sel.set_inner_html(&html);
    }
    let interp = params
        .get("interpreter")
        .cloned()
        .or_else(|| wanted_model.and_then(|m| m.interpreter.map(|i| i.id().to_string())))
        .unwrap_or_else(|| "grad_cam".into());
    if let Some(s) = el("interpreter").and_then(|e| e.dyn_into::<HtmlSelectElement>().ok()) {
        s.set_value(&interp);
    }
    if let Some(sel) = el("live-fooling") {
        let html: String = crate::live::live_types()
            .iter()
            .map(|k| format!("<option value=\"{0}\">{0}</option>", k.id()))
            .collect();
        sel.set_inner_html(&html);
    }
    if let Some(g) = el("gallery") {
        let html: String = app
            .manifest
            .gallery
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    "<button type=\"button\" data-index=\"{i}\" title=\"{0}\"><img src=\"{1}\" alt=\"{0}\" width=\"48\" height=\"48\"></button>",
                    esc(&e.name),
                    esc(&e.file)
                )
            })
            .collect();
        g.set_inner_html(&html);
    }
    model_facts(app);
}

/// The selected model's figures (from its card or `eval.json`: accuracy kept, FSR).
pub fn model_facts(app: &Ui) {
    let Ok(sel) = selection(app) else { return };
    let m = &sel.models.1;
    let text = match &m.eval {
        None => format!(
            "{}: fooled with {} / {}, λ {}, {} steps. No measured figures were exported with it.",
            m.id,
            m.fooling.map_or("?", |f| f.id()),
            m.interpreter.map_or("?", |i| i.id()),
            m.lambda.unwrap_or(f64::NAN),
            m.steps.unwrap_or(0)
        ),
        Some(e) => {
            let images = if e.split.as_deref() == Some("report") {
                "held-out test images (the report half, on which no choice was made)"
            } else {
                "test images"
            };
            let mut s = format!(
                "{}: {} steps. Top-1 {} → {} on {} {images}. ",
                m.id,
                m.steps.unwrap_or(0),
                pct(e.original.top1),
                pct(e.fooled.top1),
                e.n
            );
            match e.meets_target {
                Some(true) => s.push_str(
                    "It meets the fooling target (FSR ≥ 80 %, top-1 drop ≤ 2 points). ",
                ),
                Some(false) => s.push_str(
                    "It does not meet the fooling target (FSR ≥ 80 % with a top-1 drop ≤ 2 points). ",
                ),
                None => {}
            }
            for (k, v) in &e.interpreters {
                s.push_str(&format!(
                    "FSR {k}: {} (original {}). ",
                    pct(v.fsr),
                    v.fsr_original.map_or("?".into(), pct)
                ));
            }
            s
        }
    };
    set_text("model-facts", &text);
}

fn select_value(id: &str) -> Option<String> {
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

/// Reads the controls.
pub fn selection(app: &Ui) -> Result<Selection, String> {
    let orig = app
        .manifest
        .original()
        .cloned()
        .ok_or("the manifest has no original model")?;
    let want = select_value("model").unwrap_or_default();
    let fooled = app
        .manifest
        .fooled()
        .find(|m| m.id == want)
        .or_else(|| app.manifest.fooled().next())
        .cloned()
        .ok_or("the manifest has no fooled model")?;
    let interp_id = select_value("interpreter").unwrap_or_else(|| "grad_cam".into());
    let interpreter: Interpreter = interp_id
        .parse()
        .map_err(|e| format!("interpreter `{interp_id}`: {e}"))?;
    let opacity = el("opacity")
        .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
        .and_then(|i| i.value().parse::<f32>().ok())
        .unwrap_or(60.0)
        / 100.0;
    Ok(Selection {
        models: (orig, fooled),
        interpreter,
        opacity: opacity.clamp(0.0, 1.0),
    })
}

fn put_rgb(canvas_id: &str, img: &Rgb8) {
    let Some(c) = el(canvas_id).and_then(|e| e.dyn_into::<HtmlCanvasElement>().ok()) else {
        return;
    };
    // Assigning a canvas size clears it and its context even when unchanged.
    if c.width() != img.width as u32 || c.height() != img.height as u32 {
        c.set_width(img.width as u32);
        c.set_height(img.height as u32);
    }
    let Some(ctx) = c
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|x| x.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
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

fn overlay(crop: &Rgb8, map: &(Vec<f32>, usize, usize), side: usize, alpha: f32) -> Rgb8 {
    let base = resize_bilinear(crop, side, side);
    colormap::overlay(&base, &map.0, map.1, map.2, alpha)
}

fn caption(map: &(Vec<f32>, usize, usize)) -> String {
    if crate::state::is_constant(&map.0) {
        "constant map: no information".into()
    } else {
        format!("{}×{} map", map.1, map.2)
    }
}

fn top5_html(title: &str, logits: &[f32], classes: &[String]) -> String {
    let p = softmax(logits);
    let rows: String = top_k(&p, 5)
        .iter()
        .map(|&i| {
            format!(
                "<tr><td>{}</td><td>{:.1} %</td></tr>",
                esc(classes.get(i).map_or("?", String::as_str)),
                100.0 * p[i]
            )
        })
        .collect();
    format!("<table class=\"top5\"><caption>{title}</caption><tbody>{rows}</tbody></table>")
}

/// Draws an output: main maps, top-5, statistics, transfer grid, and the machine-readable copy.
pub fn draw(app: &Ui, out: &Output) {
    let opacity = selection(app).map(|s| s.opacity).unwrap_or(0.6);
    let classes = &app.manifest.classes;
    let class_name = classes.get(out.class).map_or("?", String::as_str);
    if let Some(main) = out.maps.iter().find(|m| m.interpreter == out.interpreter) {
        put_rgb(
            "map-original",
            &overlay(&out.crop, &main.original, VIEW, opacity),
        );
        put_rgb(
            "map-fooled",
            &overlay(&out.crop, &main.fooled, VIEW, opacity),
        );
        set_text(
            "cap-original",
            &format!(
                "original model · {} · {}",
                out.interpreter,
                caption(&main.original)
            ),
        );
        set_text(
            "cap-fooled",
            &format!(
                "fooled model · {} · {}",
                out.interpreter,
                caption(&main.fooled)
            ),
        );
    }
    if let Some(t) = el("top5") {
        t.set_inner_html(&format!(
            "{}{}",
            top5_html("original model", &out.logits.0, classes),
            top5_html("fooled model", &out.logits.1, classes)
        ));
    }
    if let (Some(t), Some(s)) = (el("stats"), &out.stats) {
        t.set_inner_html(&format!(
            "<tr><th>statistic (map of class “{}”, {})</th><th>value</th></tr>\
             <tr><td>Location statistic, original → fooled (lower = frame-shaped)</td><td>{:.3} → {:.3}</td></tr>\
             <tr><td>share of positive mass on the frame, original → fooled</td><td>{:.0} % → {:.0} %</td></tr>\
             <tr><td>Top-k statistic of the fooled map at the original top-10 %</td><td>{:.3}</td></tr>\
             <tr><td>Top-10 % overlap</td><td>{:.0} %</td></tr>\
             <tr><td>centre-of-mass shift (0–1)</td><td>{:.3}</td></tr>\
             <tr><td>Spearman rank correlation</td><td>{:.3}</td></tr>",
            esc(class_name),
            out.class_source,
            s.location.0,
            s.location.1,
            100.0 * s.frame_mass.0,
            100.0 * s.frame_mass.1,
            s.topk,
            100.0 * s.topk_overlap,
            s.center_shift,
            s.spearman
        ));
    }
    // The transfer grid's canvases are made once and reused (a new 2D context per draw is slow).
    let have_grid = out
        .maps
        .iter()
        .filter(|m| crate::TRANSFER.contains(&m.interpreter))
        .all(|m| el(&format!("t-fooled-{}", m.interpreter)).is_some());
    if let Some(g) = el("transfer").filter(|_| !have_grid) {
        let mut html = String::from("<tr><th></th>");
        for m in out
            .maps
            .iter()
            .filter(|m| crate::TRANSFER.contains(&m.interpreter))
        {
            html.push_str(&format!("<th>{}</th>", m.interpreter));
        }
        html.push_str("</tr>");
        for role in ["original", "fooled"] {
            html.push_str(&format!("<tr><th>{role}</th>"));
            for m in out
                .maps
                .iter()
                .filter(|m| crate::TRANSFER.contains(&m.interpreter))
            {
                html.push_str(&format!(
                    "<td><canvas id=\"t-{role}-{}\" width=\"{THUMB}\" height=\"{THUMB}\"></canvas></td>",
                    m.interpreter
                ));
            }
            html.push_str("</tr>");
        }
        g.set_inner_html(&html);
    }
    for m in out
        .maps
        .iter()
        .filter(|m| crate::TRANSFER.contains(&m.interpreter))
    {
        put_rgb(
            &format!("t-original-{}", m.interpreter),
            &overlay(&out.crop, &m.original, THUMB, opacity),
        );
        put_rgb(
            &format!("t-fooled-{}", m.interpreter),
            &overlay(&out.crop, &m.fooled, THUMB, opacity),
        );
    }
    set_text(
        "status",
        &format!(
            "{} · class “{class_name}” ({}) · {} maps in {:.0} ms on {}",
            out.image_title,
            out.class_source,
            2 * out.maps.len(),
            out.ms,
            out.backend.label()
        ),
    );
    set_text("result-json", &result_json(out).to_string());
    if let Some(b) = doc().and_then(|d| d.body()) {
        let _ = b.set_attribute("data-runs", &app.runs.to_string());
        let _ = b.set_attribute("data-state", "ready");
    }
}

fn map_json(m: &MapPair) -> serde_json::Value {
    json!({"h": m.original.1, "w": m.original.2, "original": m.original.0, "fooled": m.fooled.0})
}

/// The machine-readable result (`#result-json`), used by the browser tests.
fn result_json(out: &Output) -> serde_json::Value {
    let maps: serde_json::Map<String, serde_json::Value> = out
        .maps
        .iter()
        .map(|m| (m.interpreter.id().to_string(), map_json(m)))
        .collect();
    json!({
        "backend": out.backend.id(), "model": out.model, "interpreter": out.interpreter.id(),
        "image": out.image_title, "class": out.class, "class_source": out.class_source,
        "logits": {"original": out.logits.0, "fooled": out.logits.1},
        "maps": maps, "ms": out.ms, "forward_ms": out.forward_ms,
        "timings_ms": out.timings.iter().map(|(i, t)| (i.clone(), json!(t))).collect::<serde_json::Map<_, _>>(),
        "stats": out.stats.as_ref().map(|s| json!({
            "location": [s.location.0, s.location.1], "frame_mass": [s.frame_mass.0, s.frame_mass.1],
            "topk": s.topk, "topk_overlap": s.topk_overlap, "center_shift": s.center_shift,
            "spearman": s.spearman, "constant": [s.constant.0, s.constant.1]})),
    })
}

/// The registry table (`#archs`).
///
/// The rows come from the worker: building the networks links all of Burn, which the page's
/// own wasm leaves out.
pub fn render_registry(rows: &[RegistryRow]) {
    let Some(e) = el("archs") else { return };
    let mut html = String::from(
        "<table><thead><tr><th>id</th><th>dataset</th><th>tap (input of)</th><th>parameters</th></tr></thead><tbody>",
    );
    for r in rows {
        html.push_str(&format!(
            "<tr data-arch=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td></tr>",
            esc(&r.id),
            esc(&r.dataset),
            esc(&r.tap),
            r.parameters
        ));
    }
    html.push_str("</tbody></table>");
    e.set_inner_html(&html);
    set_text("archs-count", &format!("{} architectures", rows.len()));
}

fn on(target: &web_sys::EventTarget, ev: &str, f: impl FnMut(web_sys::Event) + 'static) {
    let c = Closure::<dyn FnMut(web_sys::Event)>::new(f);
    let _ = target.add_event_listener_with_callback(ev, c.as_ref().unchecked_ref());
    c.forget();
}

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
            crate::ui::set_image(&bytes, &name, None, &name);
        }
        Err(e) => show_error(&format!("cannot read {name}: {e:?}")),
    }
}

/// Attaches the event handlers.
pub fn wire_events() {
    let recompute = |_| crate::ui::recompute();
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
        on(&e, "input", |_| crate::ui::redraw());
    }
    if let Some(e) = el("backend") {
        on(&e, "change", |_| {
            let want = match select_value("backend").as_deref() {
                Some("cpu") => Backend::Cpu,
                _ => Backend::WebGpu,
            };
            crate::ui::switch_backend(want);
        });
    }
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
    use crate::ui::LiveAction;
    for (id, action) in [
        ("live-start", LiveAction::Start),
        ("live-stop", LiveAction::Stop),
        ("live-reset", LiveAction::Reset),
    ] {
        if let Some(b) = el(id) {
            on(&b, "click", move |_| crate::ui::live(action));
        }
    }
    if let Some(g) = el("gallery") {
        on(&g, "click", |ev| {
            let idx = ev
                .target()
                .and_then(|t| t.dyn_into::<Element>().ok())
                .and_then(|e| e.closest("button").ok().flatten())
                .and_then(|b| b.get_attribute("data-index"))
                .and_then(|s| s.parse::<usize>().ok());
            let entry = idx.and_then(|i| with_ui(|u| u.manifest.gallery.get(i).cloned()).flatten());
            if let Some(e) = entry {
                spawn_local(crate::ui::load_gallery(e));
            }
        });
    }
}
