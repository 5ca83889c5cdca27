//! `foolmap predict`: the top-k classes of images.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use foolmap::Architecture;
use foolmap::burn::tensor::Device;
use foolmap::image::eval_crop;
use foolmap::scores::{read_back, softmax, top_k};
use serde::Serialize;

use crate::args::at_least_one;
use crate::backend::{class_names, load_model};
use crate::io::image::read_image;

/// `foolmap predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Architecture id (see `foolmap archs`).
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file (safetensors, .pth or legacy .th); default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Number of classes to show (≥ 1).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    pub top: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// One ranked class of an image.
#[derive(Debug, Serialize)]
pub struct ClassScore {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub name: String,
    /// Softmax probability.
    pub probability: f32,
    /// Logit.
    pub logit: f32,
}

/// The top classes of one image.
#[derive(Debug, Serialize)]
pub struct Prediction {
    /// The image file.
    pub image: String,
    /// Its top classes, most probable first.
    pub top: Vec<ClassScore>,
}

/// What `foolmap predict --json` prints.
#[derive(Debug, Serialize)]
pub struct Predictions {
    /// Architecture.
    pub arch: Architecture,
    /// One entry per image, in argument order.
    pub predictions: Vec<Prediction>,
}

/// Ranks the classes of every image of `a`.
pub fn predictions(a: &PredictArgs, root: Option<&Path>, device: &Device) -> Result<Predictions> {
    let (net, p) = load_model(a.arch, a.weights.clone(), root, device)?;
    let names = class_names(net.dataset, root);
    let mut predictions = Vec::new();
    for path in &a.images {
        let img = eval_crop(&read_image(path)?, net.dataset);
        let x = foolmap::image::batch(&[img], device)?;
        let l = read_back(net.seq.forward(&p, x).reshape([1, net.num_classes]))?;
        let prob = softmax(&l);
        let top = top_k(&l, a.top.min(net.num_classes))
            .into_iter()
            .map(|c| ClassScore {
                class: c,
                name: names[c].clone(),
                probability: prob[c],
                logit: l[c],
            })
            .collect();
        predictions.push(Prediction {
            image: path.display().to_string(),
            top,
        });
    }
    Ok(Predictions {
        arch: a.arch,
        predictions,
    })
}

/// Prints the predictions as text or (`--json`) one JSON object.
pub fn run(a: &PredictArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let out = predictions(a, root, device)?;
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    for r in &out.predictions {
        println!("{}", r.image);
        for t in &r.top {
            println!(
                "  {:>6.2}%  {:>4}  {}",
                100.0 * t.probability,
                t.class,
                t.name
            );
        }
    }
    Ok(())
}
