//! `foolmap accuracy`: top-1 / top-5 accuracy of a model on a dataset folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::scores::{read_back, top_k};
use foolmap::{Architecture, Dataset};

use crate::args::at_least_one;
use crate::backend::load_model;
use crate::io::data::{self, Sample};

/// `foolmap accuracy`.
#[derive(Debug, Args)]
pub struct AccuracyArgs {
    /// Architecture id.
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file; default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Dataset folder; default: `cifar10/test` or `imagenet-samples` under the data root.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Evaluate only the first N images (≥ 1).
    #[arg(long, value_parser = at_least_one)]
    pub limit: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Decodes and preprocesses samples on a worker thread while the model runs.
fn batches(
    samples: Vec<Sample>,
    dataset: Dataset,
    bs: usize,
) -> std::sync::mpsc::Receiver<Result<(Vec<Rgb8>, Vec<usize>)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    std::thread::spawn(move || {
        for chunk in samples.chunks(bs.max(1)) {
            let r = chunk
                .iter()
                .map(|s| Ok((eval_crop(&s.rgb()?, dataset), s.label)))
                .collect::<Result<Vec<_>>>()
                .map(|v| v.into_iter().unzip());
            if tx.send(r).is_err() {
                return;
            }
        }
    });
    rx
}

/// Scores top-1 / top-5 on a dataset folder and prints them (or, with `--json`, one object).
pub fn run(a: AccuracyArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let dir = match a.data {
        Some(d) => d,
        None => data::default_dir(root, net.dataset, data::Split::Test)?,
    };
    let mut samples = data::samples(net.dataset, &dir)?;
    if let Some(l) = a.limit {
        samples.truncate(l);
    }
    let n = samples.len();
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images  {per_sec}  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    let start = Instant::now();
    let (mut top1, mut top5) = (0usize, 0usize);
    for b in batches(samples, net.dataset, a.batch_size) {
        let (imgs, labels) = b?;
        let x = foolmap::image::batch(&imgs, device)?;
        let k = net.num_classes;
        let l = read_back(net.seq.forward(&p, x).reshape([imgs.len(), k]))?;
        for (i, &y) in labels.iter().enumerate() {
            let row = &l[i * k..(i + 1) * k];
            let t = top_k(row, 5.min(k));
            top1 += (t[0] == y) as usize;
            top5 += t.contains(&y) as usize;
        }
        bar.inc(imgs.len() as u64);
        bar.set_message(format!(
            "top-1 {:.2}%",
            100.0 * top1 as f64 / bar.position().max(1) as f64
        ));
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let (t1, t5) = (top1 as f64 / n as f64, top5 as f64 / n as f64);
    if a.json {
        let out = AccuracyJson {
            arch: a.arch,
            data: dir.display().to_string(),
            images_per_second: n as f64 / secs,
            n,
            seconds: secs,
            top1: t1,
            top5: t5,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "{}: top-1 {:.2}%  top-5 {:.2}%  on {n} images of {}  ({:.1} images/s)",
            a.arch,
            100.0 * t1,
            100.0 * t5,
            dir.display(),
            n as f64 / secs
        );
    }
    Ok(())
}

/// `accuracy --json` (keys in the order the output has always had them).
#[derive(serde::Serialize)]
struct AccuracyJson {
    arch: foolmap::Architecture,
    data: String,
    images_per_second: f64,
    n: usize,
    seconds: f64,
    top1: f64,
    top5: f64,
}
