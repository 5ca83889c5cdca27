//! The report folder of `foolmap eval --report DIR`: `report.md`, `report.json`, `grid.png`
//! (images × {original, fooled} × interpreters) and SVG plots drawn with plotters (statistic
//! CDFs, AOPC curves, model-randomisation sanity check).

use std::path::Path;

use anyhow::{Context, Result};
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::colormap::overlay;
use foolmap::explain::interpreter::explain;
use foolmap::image::{Rgb8, resize_bilinear};
use foolmap::metrics;
use foolmap::params::{ParamKind, SplitMix};
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};
use plotters::prelude::*;

use crate::eval::{EvalReport, Robustness, SanityCheck, SanityLayers};
use crate::fool::write_atomic;

const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn vals<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

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
            let v = vals(m)?;
            for (r, img) in imgs.iter().enumerate().take(n) {
                let big = resize_bilinear(img, cell, cell);
                let ov = overlay(&big, &v[r * h * w..(r + 1) * h * w], h, w, 0.55);
                paste(&mut canvas, &ov, (1 + 2 * j + k) * cell, r * cell);
            }
        }
    }
    Ok(canvas)
}

/// Gaussian noise on the trainable weights: `w + σ·std(w)·N(0, 1)` per tensor.
pub fn perturb(p: &ParamStore, sigma: f64, seed: u64, device: &Device) -> Result<ParamStore> {
    let mut rng = SplitMix::new(seed);
    let mut values = Vec::with_capacity(p.len());
    for (s, v) in p.specs().iter().zip(p.values()) {
        if s.kind != ParamKind::Trainable || sigma == 0.0 {
            values.push(v.clone());
            continue;
        }
        let data = vals(v.clone())?;
        let n = data.len() as f64;
        let mean = data.iter().map(|&x| x as f64).sum::<f64>() / n;
        let std = (data.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let noisy: Vec<f32> = data
            .iter()
            .map(|&x| (x as f64 + sigma * std * rng.normal()) as f32)
            .collect();
        values.push(Tensor::from_data(
            TensorData::new(noisy, [data.len()]),
            device,
        ));
    }
    let mut out = p.clone();
    out.set_values(values);
    Ok(out)
}

/// Cascading model randomisation (Adebayo et al. 2018): re-initialise the parameter groups of
/// the top-level nodes from the output downwards and record the mean Spearman correlation of
/// the map with the map of the intact model. Returns `(layers randomised, similarity)`.
pub fn sanity(
    net: &Net,
    p: &ParamStore,
    x: Tensor<4>,
    labels: &[usize],
    interp: Interpreter,
    device: &Device,
) -> Result<Vec<(String, f64)>> {
    let o = InterpreterOptions::default();
    let reference = vals(explain(net, p, x.clone(), labels, interp, &o)?)?;
    let n = labels.len();
    let cells = reference.len() / n.max(1);
    let random = ParamStore::random(p.specs(), 99, device);
    let mut values: Vec<Tensor<1>> = p.values().to_vec();
    let mut out = vec![("none".to_string(), 1.0)];
    let groups: Vec<String> = net
        .seq
        .nodes
        .iter()
        .rev()
        .map(|(name, _)| name.clone())
        .collect();
    for g in groups {
        let prefix = format!("{g}.");
        let mut touched = false;
        for (i, s) in p.specs().iter().enumerate() {
            if s.kind == ParamKind::Trainable && s.name.starts_with(&prefix) {
                values[i] = random.values()[i].clone();
                touched = true;
            }
        }
        if !touched {
            continue;
        }
        let mut q = p.clone();
        q.set_values(values.clone());
        let m = vals(explain(net, &q, x.clone(), labels, interp, &o)?)?;
        let sim = (0..n)
            .map(|i| {
                metrics::spearman(
                    &reference[i * cells..(i + 1) * cells],
                    &m[i * cells..(i + 1) * cells],
                )
            })
            .sum::<f64>()
            / n as f64;
        out.push((g, sim));
    }
    Ok(out)
}

/// Writes every file of the report.
#[allow(clippy::too_many_arguments)]
pub fn write(
    dir: &Path,
    eval: &mut EvalReport,
    net: &Net,
    p0: &ParamStore,
    pf: &ParamStore,
    imgs: &[Rgb8],
    labels: &[usize],
    grid_set: (&[Rgb8], &[usize]),
    device: &Device,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let kind = eval.fooling;
    let fooled_with = eval.fooled_with.unwrap_or(Interpreter::LrpT);
    let tau = eval.threshold;
    // Grid of the first images.
    let g = grid(
        net,
        p0,
        pf,
        grid_set.0,
        grid_set.1,
        Interpreter::FOOLABLE,
        device,
    )?;
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(
        image::RgbImage::from_raw(g.width as u32, g.height as u32, g.data).context("grid")?,
    )
    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    write_atomic(&dir.join("grid.png"), &png)?;
    // Robustness to weight noise (both models, one draw per σ).
    let x = foolmap::image::batch(imgs, device)?;
    let pair = crate::analysis::Pair {
        net,
        p0,
        pf,
        imgs,
        labels,
        chunk: imgs.len(),
        device,
    };
    let noise =
        crate::analysis::weight_noise(pair, fooled_with, kind, tau, &[0.0, 0.01, 0.05, 0.1, 0.2])?;
    eval.robustness = Some(Robustness {
        interpreter: fooled_with,
        images: noise.images,
        rows: noise.rows,
    });
    // Sanity check on the original and the fooled model.
    let mut sanity_series = Vec::new();
    let mut cascades = Vec::new();
    for (name, p) in [("original", p0), ("fooled", pf)] {
        let s = sanity(net, p, x.clone(), labels, fooled_with, device)?;
        sanity_series.push((
            name.to_string(),
            s.iter()
                .enumerate()
                .map(|(i, (_, v))| (i as f64, *v))
                .collect(),
        ));
        cascades.push(s);
    }
    let fooled_cascade = cascades.pop().unwrap_or_default();
    let original_cascade = cascades.pop().unwrap_or_default();
    eval.sanity_check = Some(SanityCheck {
        interpreter: fooled_with,
        images: labels.len(),
        layers: SanityLayers {
            original: original_cascade,
            fooled: fooled_cascade,
        },
    });
    write_atomic(
        &dir.join("sanity.svg"),
        line_svg(
            &format!("Model randomisation ({})", fooled_with.id()),
            "top-level layers re-initialised (from the output)",
            "Spearman vs intact map",
            &sanity_series,
        )?
        .as_bytes(),
    )?;
    // CDFs.
    if !eval.interpreters.is_empty() {
        let series: Vec<(String, Vec<(f64, f64)>)> = eval
            .interpreters
            .iter()
            .map(|(k, r)| (k.id().to_string(), r.cdf.clone()))
            .collect();
        write_atomic(
            &dir.join("cdf.svg"),
            line_svg(
                &format!("CDF of the {} statistic (fooled model)", kind.id()),
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
