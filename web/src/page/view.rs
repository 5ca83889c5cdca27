//! Drawing the page from its state: the maps with their statistics and predictions, the
//! transfer grid, the registry table.

use foolmap::colormap;
use foolmap::image::{Rgb8, resize_bilinear};
use foolmap::scores::{softmax, top_k};
use serde_json::json;

use super::controls::selection;
use super::dom::{clear_canvas, doc, el, esc, put_rgb, set_text};
use super::model::Ui;
use crate::protocol::RegistryRow;
use crate::state::{MapPair, Output, Stats};
use crate::{THUMB, TRANSFER, VIEW};

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
    let classes = app.manifest.classes_of(app.set);
    let class_name = classes.get(out.class).map_or("?", String::as_str);
    draw_main(out, opacity);
    if let Some(t) = el("top5") {
        t.set_inner_html(&format!(
            "{}{}",
            top5_html("original model", &out.logits.0, classes),
            top5_html("fooled model", &out.logits.1, classes)
        ));
    }
    if let (Some(t), Some(s)) = (el("stats"), &out.stats) {
        t.set_inner_html(&stats_html(s, class_name, &out.class_source));
    }
    draw_transfer(out, opacity);
    set_text(
        "status",
        &format!(
            "{} · class “{class_name}” ({}) · {} maps in {:.0} ms on {}{}",
            out.image_title,
            out.class_source,
            2 * out.maps.len(),
            out.ms,
            out.backend.label(),
            if out.partial {
                " · the other interpreters' maps follow …"
            } else {
                ""
            }
        ),
    );
    set_text("result-json", &result_json(out).to_string());
    if let Some(b) = doc().and_then(|d| d.body()) {
        // `data-shown`: outputs drawn (partial ones too; the page-ready time is its first
        // change); `data-runs`: complete outputs.
        let _ = b.set_attribute("data-shown", &app.shown.to_string());
        let _ = b.set_attribute("data-runs", &app.runs.to_string());
        let _ = b.set_attribute("data-state", "ready");
    }
}

/// The selected interpreter's maps of both models over the image, with their captions.
fn draw_main(out: &Output, opacity: f32) {
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
}

/// The statistics table of the selected interpreter's maps (for the class explained).
fn stats_html(s: &Stats, class_name: &str, class_source: &str) -> String {
    format!(
        "<tr><th>statistic (map of class “{}”, {})</th><th>value</th></tr>\
             <tr><td>Location statistic, original → fooled (lower = frame-shaped)</td><td>{:.3} → {:.3}</td></tr>\
             <tr><td>share of positive mass on the frame, original → fooled</td><td>{:.0} % → {:.0} %</td></tr>\
             <tr><td>Top-k statistic of the fooled map at the original top-10 %</td><td>{:.3}</td></tr>\
             <tr><td>Top-10 % overlap</td><td>{:.0} %</td></tr>\
             <tr><td>centre-of-mass shift (0–1)</td><td>{:.3}</td></tr>\
             <tr><td>Spearman rank correlation</td><td>{:.3}</td></tr>",
        esc(class_name),
        class_source,
        s.location.0,
        s.location.1,
        100.0 * s.frame_mass.0,
        100.0 * s.frame_mass.1,
        s.topk,
        100.0 * s.topk_overlap,
        s.center_shift,
        s.spearman
    )
}

/// The transfer grid: both models' maps under every foolable interpreter (canvases made once;
/// those whose maps have not arrived yet are cleared).
fn draw_transfer(out: &Output, opacity: f32) {
    // The transfer grid's canvases are made once and reused (a new 2D context per draw is slow).
    let have_grid = TRANSFER
        .iter()
        .all(|i| el(&format!("t-fooled-{i}")).is_some());
    if let Some(g) = el("transfer").filter(|_| !have_grid) {
        let mut html = String::from("<tr><th></th>");
        for i in TRANSFER {
            html.push_str(&format!("<th>{i}</th>"));
        }
        html.push_str("</tr>");
        for role in ["original", "fooled"] {
            html.push_str(&format!("<tr><th>{role}</th>"));
            for i in TRANSFER {
                html.push_str(&format!(
                    "<td><canvas id=\"t-{role}-{i}\" width=\"{THUMB}\" height=\"{THUMB}\"></canvas></td>"
                ));
            }
            html.push_str("</tr>");
        }
        g.set_inner_html(&html);
    }
    for i in TRANSFER {
        let m = out.maps.iter().find(|m| m.interpreter == *i);
        for (role, map) in [
            ("original", m.map(|m| &m.original)),
            ("fooled", m.map(|m| &m.fooled)),
        ] {
            let id = format!("t-{role}-{i}");
            match map {
                Some(map) => put_rgb(&id, &overlay(&out.crop, map, THUMB, opacity)),
                None => clear_canvas(&id),
            }
        }
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
            esc(r.id.id()),
            esc(&r.dataset),
            esc(&r.tap),
            r.parameters
        ));
    }
    html.push_str("</tbody></table>");
    e.set_inner_html(&html);
    set_text("archs-count", &format!("{} architectures", rows.len()));
}
