//! `foolmap explain`: saliency maps of images as `.npy` files and PNG overlays.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::explain::Level;
use foolmap::explain::interpreter::explain;
use foolmap::image::eval_crop;
use foolmap::scores::{read_back, top_k};
use foolmap::{Architecture, Interpreter, InterpreterOptions};

use crate::backend::{class_names, load_model};
use crate::io::atomic::write_atomic;
use crate::io::image::{png_bytes, read_image};
use crate::io::npy;

/// `foolmap explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Architecture id.
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file; default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Interpreter: lrp, grad-cam, simple-grad, smoothgrad, integrated_gradients, gradient_x_input
    /// (or a level-specific id such as lrp_t).
    #[arg(long)]
    pub interpreter: Interpreter,
    /// Resolution: the tap layer or the input image.
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
    /// Class to explain (default: the predicted class of each image).
    #[arg(long)]
    pub class: Option<usize>,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// `--level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelArg {
    /// At the input of the tap layer (spec §2).
    Tap,
    /// At the input image.
    Input,
}

/// Writes each image's map as `.npy` and a PNG overlay into `--out`, with `explain.json`.
pub fn run(a: ExplainArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let interp = match a.level {
        None => a.interpreter,
        Some(l) => {
            let level = if l == LevelArg::Tap {
                Level::Tap
            } else {
                Level::Input
            };
            a.interpreter.at_level(level).with_context(|| {
                format!(
                    "interpreter `{}` has no {:?}-level map",
                    a.interpreter, level
                )
            })?
        }
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let o = InterpreterOptions::default();
    let names = class_names(net.dataset, root);
    let mut summary = Vec::new();
    for path in &a.images {
        let crop = eval_crop(&read_image(path)?, net.dataset);
        let x = foolmap::image::batch(std::slice::from_ref(&crop), device)?;
        let class = match a.class {
            Some(c) => c,
            None => top_k(
                &read_back(net.seq.forward(&p, x.clone()).reshape([1, net.num_classes]))?,
                1,
            )[0],
        };
        let map = explain(&net, &p, x, &[class], interp, &o)?;
        let [_, h, w] = map.dims();
        let v = read_back(map)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let base = format!("{stem}.{}.{}.c{class}", a.arch, interp);
        write_atomic(
            &a.out.join(format!("{base}.npy")),
            &npy::encode_f32(&v, &[h, w]),
        )?;
        let over = foolmap::colormap::overlay(&crop, &v, h, w, 0.5);
        write_atomic(&a.out.join(format!("{base}.png")), &png_bytes(&over)?)?;
        let finite: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
        let (mn, mx) = finite
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let mean = finite.iter().sum::<f32>() / finite.len().max(1) as f32;
        println!(
            "{}: {} for class {class} ({}) → {}/{base}.{{npy,png}}  [{h}×{w}, min {mn:.4}, max {mx:.4}, mean {mean:.4}]",
            path.display(),
            interp,
            names[class],
            a.out.display()
        );
        summary.push(MapSummary {
            class,
            image: path.display().to_string(),
            map: format!("{base}.npy"),
            max: mx,
            mean,
            min: mn,
            shape: [h, w],
        });
    }
    write_atomic(
        &a.out.join("explain.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(())
}

/// One map of `explain.json` (keys in the order the file has always had them).
#[derive(serde::Serialize)]
struct MapSummary {
    class: usize,
    image: String,
    map: String,
    max: f32,
    mean: f32,
    min: f32,
    shape: [usize; 2],
}
