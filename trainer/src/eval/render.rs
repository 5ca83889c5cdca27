//! The report folder of `foolmap eval --report DIR`: `report.md`, `report.json`, `grid.png`
//! (images × {original, fooled} × interpreters) and SVG plots drawn with plotters (statistic
//! CDFs, AOPC curves, model-randomisation sanity check).

use std::path::Path;

use anyhow::{Context, Result};
use foolmap::burn::tensor::Device;
use foolmap::colormap::overlay;
use foolmap::explain::interpreter::explain;
use foolmap::image::{Rgb8, resize_bilinear};
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};
use plotters::prelude::*;

use crate::eval::EvalReport;
use crate::io::atomic::write_atomic;

const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// Line plot of named series into an SVG string.
pub fn line_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE)?;
        let pts = series.iter().flat_map(|(_, v)| v.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for &(x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pad = 0.05 * (y1 - y0);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()?;
        for (i, (name, v)) in series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(v.iter().copied(), c.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

fn paste(canvas: &mut Rgb8, img: &Rgb8, x0: usize, y0: usize) {
    for y in 0..img.height {
        for x in 0..img.width {
            let (d, s) = (
                ((y0 + y) * canvas.width + x0 + x) * 3,
                (y * img.width + x) * 3,
            );
            canvas.data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
}

/// Grid: one row per image; columns: the image, then per interpreter the original and the
/// fooled model's map over it.
pub fn grid(
    net: &Net,
    p0: &ParamStore,
    pf: &ParamStore,
    imgs: &[Rgb8],
    labels: &[usize],
    interps: &[Interpreter],
    device: &Device,
) -> Result<Rgb8> {
    let cell = 112usize;
    let cols = 1 + 2 * interps.len();
    let mut canvas = Rgb8 {
        width: cols * cell,
        height: imgs.len() * cell,
        data: vec![255; cols * cell * imgs.len() * cell * 3],
    };
    let x = foolmap::image::batch(imgs, device)?;
    let o = InterpreterOptions::default();
    for (r, img) in imgs.iter().enumerate() {
        paste(&mut canvas, &resize_bilinear(img, cell, cell), 0, r * cell);
    }
    for (j, interp) in interps.iter().enumerate() {
        for (k, p) in [p0, pf].into_iter().enumerate() {
            let m = explain(net, p, x.clone(), labels, *interp, &o)?;
            let [n, h, w] = m.dims();
            let v = foolmap::scores::read_back(m)?;
            for (r, img) in imgs.iter().enumerate().take(n) {
                let big = resize_bilinear(img, cell, cell);
                let ov = overlay(&big, &v[r * h * w..(r + 1) * h * w], h, w, 0.55);
                paste(&mut canvas, &ov, (1 + 2 * j + k) * cell, r * cell);
            }
        }
    }
    Ok(canvas)
}

/// Writes every file of the report: `grid.png`, the plots, `report.json` and `report.md`.
pub fn write(dir: &Path, eval: &EvalReport, grid: &Rgb8) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join("grid.png"), &crate::io::image::png_bytes(grid)?)?;
    if let Some(s) = &eval.sanity_check {
        let series: Vec<(String, Vec<(f64, f64)>)> = [
            ("original", &s.layers.original),
            ("fooled", &s.layers.fooled),
        ]
        .iter()
        .map(|(name, layers)| {
            let points = layers
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (i as f64, *v))
                .collect();
            (name.to_string(), points)
        })
        .collect();
        write_atomic(
            &dir.join("sanity.svg"),
            line_svg(
                &format!("Model randomisation ({})", s.interpreter.id()),
                "top-level layers re-initialised (from the output)",
                "Spearman vs intact map",
                &series,
            )?
            .as_bytes(),
        )?;
    }
    if !eval.interpreters.is_empty() {
        let series: Vec<(String, Vec<(f64, f64)>)> = eval
            .interpreters
            .iter()
            .map(|(k, r)| (k.id().to_string(), r.cdf.clone()))
            .collect();
        write_atomic(
            &dir.join("cdf.svg"),
            line_svg(
                &format!("CDF of the {} statistic (fooled model)", eval.fooling.id()),
                "statistic",
                "fraction of images ≤ x",
                &series,
            )?
            .as_bytes(),
        )?;
    }
    if let Some(a) = &eval.aopc {
        let series: Vec<(String, Vec<(f64, f64)>)> = a
            .curves
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect(),
                )
            })
            .collect();
        write_atomic(
            &dir.join("aopc.svg"),
            line_svg("AOPC (MoRF vs random)", "patches replaced", "AOPC", &series)?.as_bytes(),
        )?;
    }
    write_atomic(
        &dir.join("report.json"),
        serde_json::to_string_pretty(eval)?.as_bytes(),
    )?;
    write_atomic(&dir.join("report.md"), markdown(eval).as_bytes())?;
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// The report as markdown.
pub fn markdown(e: &EvalReport) -> String {
    let mut s = format!(
        "# foolmap report: {} fooled for `{}` with `{}`\n\nData: {} ({} images, split `{}`). Threshold τ = {} (spec §7.3).\n\n",
        e.arch.id(),
        e.fooling.id(),
        e.fooled_with.map_or("?", |i| i.id()),
        e.data,
        e.n,
        e.split.id(),
        e.threshold
    );
    s += "## Accuracy\n\n| model | top-1 | top-5 |\n|---|---|---|\n";
    for (m, a) in [("original", &e.original), ("fooled", &e.fooled)] {
        s += &format!("| {m} | {} | {} |\n", pct(a.top1), pct(a.top5));
    }
    s += "\n## Fooling success per interpreter (transfer row)\n\n| interpreter | images | FSR fooled | mean statistic | FSR original |\n|---|---|---|---|---|\n";
    for (k, r) in &e.interpreters {
        s += &format!(
            "| {} | {} | {} | {:.4} | {} |\n",
            k.id(),
            r.n,
            pct(r.fsr),
            r.mean_statistic,
            pct(r.fsr_original)
        );
    }
    s += "\n![statistic CDFs](cdf.svg)\n\n![maps](grid.png)\n\nGrid rows: the first evaluation images (maps of their label), or the images of `--grid-images` (maps of the original model's top-1 class). Columns: image, then for lrp_t, grad_cam, simple_grad_t the original and the fooled model's map.\n";
    if let Some(a) = &e.aopc {
        s += "\n## AOPC (spec §7.5)\n\n| curve | AOPC at the last step |\n|---|---|\n";
        for (k, v) in &a.curves {
            s += &format!("| {k} | {:.3} |\n", v.last().copied().unwrap_or(0.0));
        }
        s += "\n![AOPC](aopc.svg)\n";
    }
    if let Some(r) = &e.robustness {
        s += "\n## Robustness to Gaussian weight noise\n\nEach model's trainable tensors get `σ·std(w)·N(0, 1)`.\n\n| relative σ | top-1 fooled | top-1 original | FSR fooled |\n|---|---|---|---|\n";
        for row in &r.rows {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                row.sigma,
                pct(row.top1_fooled),
                pct(row.top1_original),
                row.fsr.map_or("–".into(), pct)
            );
        }
    }
    if e.sanity_check.is_some() {
        s += "\n## Model-randomisation sanity check\n\n![sanity](sanity.svg)\n";
    }
    if let Some(a) = &e.active {
        s += &format!(
            "\n## Active fooling\n\n```json\n{}\n```\n",
            serde_json::to_string_pretty(a).unwrap_or_default()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::markdown;
    use crate::eval::EvalReport;
    use serde_json::json;

    #[test]
    fn the_report_states_the_threshold_and_split_it_was_scored_with() {
        let e: EvalReport =
            serde_json::from_value(json!({"arch": "resnet20", "fooling": "location",
            "fooled_with": "grad_cam", "data": "d", "n": 10, "split": "report", "threshold": 0.3,
            "original": {"weights": "o", "top1": 0.9, "top5": 1.0},
            "fooled": {"weights": "f", "top1": 0.8, "top5": 1.0},
            "direction": "lower", "interpreters": {}}))
            .unwrap();
        let md = markdown(&e);
        assert!(md.contains("Threshold τ = 0.3 "), "{md}");
        assert!(md.contains("split `report`"), "{md}");
        assert!(md.contains("| fooled | 80.0 % | 100.0 % |"), "{md}");
    }
}
