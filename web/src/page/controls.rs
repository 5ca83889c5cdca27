//! The controls from the page's state: the model and interpreter dropdowns, the gallery (the
//! gallery set's images and the photo set's), the model facts; and reading the current
//! selection back from them.

use std::collections::HashMap;

use foolmap::Interpreter;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};

use super::dom::{doc, el, esc, offered, pct, select_value, set_text};
use super::model::Ui;
use crate::state::{ModelEntry, Selection, SetKind};

/// Fills the model / interpreter dropdowns, the gallery and the model facts.
pub fn fill_controls(app: &Ui, params: &HashMap<String, String>) {
    let wanted_model = fill_models(app, params.get("model").map(String::as_str));
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
        let html: String = crate::state::live_types()
            .iter()
            .map(|k| format!("<option value=\"{0}\">{0}</option>", k.id()))
            .collect();
        sel.set_inner_html(&html);
    }
    if let Some(g) = el("gallery") {
        let mut html = String::new();
        for (set, id) in [(SetKind::Gallery, "gallery"), (SetKind::Photo, "photo")] {
            if set == SetKind::Photo && app.manifest.photo.is_none() {
                continue;
            }
            let arch = app.manifest.set(set).arch;
            html.push_str(&format!(
                "<span class=\"gallery-label\" data-set=\"{id}\">{} → {arch}</span>",
                match (set, app.manifest.dataset.as_str()) {
                    (SetKind::Photo, _) | (_, "imagenet") => "photos",
                    _ => "CIFAR-10 test images",
                }
            ));
            for (i, e) in app.manifest.set(set).gallery.iter().enumerate() {
                html.push_str(&format!(
                    "<button type=\"button\" data-set=\"{id}\" data-index=\"{i}\" title=\"{0}\"><img src=\"{1}\" alt=\"{0}\" width=\"48\" height=\"48\"></button>",
                    esc(&e.name),
                    esc(e.preview())
                ));
            }
        }
        g.set_inner_html(&html);
    }
    model_facts(app);
}

/// Fills the model dropdown with the fooled models of the current set; selects `want` when it
/// is one of them, else the first. Returns the selected model.
pub fn fill_models<'a>(app: &'a Ui, want: Option<&str>) -> Option<&'a ModelEntry> {
    let fooled: Vec<_> = app.manifest.fooled_of(app.set).collect();
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
                "<option value=\"{}\">{}: {} fooling of {} (λ {}{fsr})</option>",
                esc(&m.id),
                m.arch,
                m.fooling.map_or("?", |f| f.id()),
                m.interpreter.map_or("?", |i| i.id()),
                m.lambda.map_or("?".into(), |l| format!("{l}")),
            ));
        }
        sel.set_inner_html(&html);
    }
    let wanted = want
        .and_then(|id| fooled.iter().find(|m| m.id == id))
        .or(fooled.first())
        .copied();
    if let (Some(s), Some(m)) = (
        el("model").and_then(|e| e.dyn_into::<HtmlSelectElement>().ok()),
        wanted,
    ) {
        s.set_value(&m.id);
    }
    if let Some(b) = doc().and_then(|d| d.body()) {
        let _ = b.set_attribute(
            "data-set",
            match app.set {
                SetKind::Gallery => "gallery",
                SetKind::Photo => "photo",
            },
        );
    }
    wanted
}

/// Which model runs, in words: architecture, training data and input size of the current set,
/// and where a user's own photos go.
fn set_line(app: &Ui, m: &ModelEntry) -> String {
    let here = app.manifest.set(app.set);
    let size = here.input_size;
    let dataset = match here.dataset {
        "cifar10" => "CIFAR-10",
        "imagenet" => "ImageNet",
        d => d,
    };
    let mut s = format!("Running {} ({dataset}, {size}×{size} input). ", m.arch);
    match (app.set, &app.manifest.photo) {
        (SetKind::Gallery, Some(p)) => s.push_str(&format!(
            "Your own photos (choose, drop or paste) go to {} (ImageNet, {}×{}). ",
            p.arch, p.input_size, p.input_size
        )),
        (SetKind::Photo, Some(_)) => s.push_str(&format!(
            "The CIFAR-10 gallery images go to {}. ",
            app.manifest.arch
        )),
        _ => {}
    }
    s
}

/// The selected model's figures (from its card or `eval.json`: accuracy kept, FSR).
pub fn model_facts(app: &Ui) {
    let Ok(sel) = selection(app) else { return };
    let m = &sel.models.1;
    let set = set_line(app, m);
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
            let images = if e.split == Some(foolmap::split::Subset::Report) {
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
    set_text("model-facts", &format!("{set}{text}"));
}

/// Reads the controls.
pub fn selection(app: &Ui) -> Result<Selection, String> {
    let orig = app
        .manifest
        .original_of(app.set)
        .cloned()
        .ok_or("the manifest has no original model")?;
    let want = select_value("model").unwrap_or_default();
    let fooled = app
        .manifest
        .fooled_of(app.set)
        .find(|m| m.id == want)
        .or_else(|| app.manifest.fooled_of(app.set).next())
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
