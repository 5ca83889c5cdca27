//! `foolmap eval`: accuracy of the original and the fooled model, per-interpreter fooling
//! statistics, FSR and CDF (spec §7.2–7.3), active-fooling correlations (§7.4) and AOPC (§7.5).

//!
//! Computing ([`run`] → the typed [`EvalReport`]) is apart from showing it: [`print`] for the
//! terminal, [`render`] for a report folder.

pub mod active;
pub mod analysis;
pub mod ledger;
pub mod print;
pub mod render;
pub mod report;
pub mod robustness;
pub mod samples;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::explain::interpreter::explain;
use foolmap::fooling::{self, FoolingType};
use foolmap::image::Rgb8;
use foolmap::metrics;
use foolmap::scores::{read_back, top_k};
use foolmap::{Architecture, Interpreter, InterpreterOptions, Net, ParamStore};

use active::{CheckpointConfig, active_metrics};
pub use ledger::{EvaluationRecord, Purpose, evaluations, record_evaluation};
pub use print::print;
pub use report::*;
pub use samples::eval_samples;
use samples::{grid_set, images, metadata};

use crate::io::data::{self, Sample};
use crate::split::Subset;

/// Flags of `foolmap eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Architecture id (default: from the fooled checkpoint's metadata).
    #[arg(long)]
    pub arch: Option<Architecture>,
    /// Original weights (default: the data root's pretrained file).
    #[arg(long)]
    pub original: Option<PathBuf>,
    /// Fooled weights (e.g. `runs/x/final.safetensors`).
    #[arg(long)]
    pub fooled: PathBuf,
    /// Evaluation data (default: `cifar10/test` or `imagenet-samples`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Only the first N images (after `--split`; ≥ 1).
    #[arg(long, value_parser = crate::args::at_least_one)]
    pub limit: Option<usize>,
    /// Which images: `all`, or one half of the committed split of the CIFAR-10 test set
    /// (`splits/cifar10-test.json`): `selection` for every choice of recipe, checkpoint or
    /// average; `report` to score a final model, once. Every evaluation is recorded in the
    /// weights' folder (`evaluations.jsonl`: file, SHA-256, split, images).
    #[arg(long, default_value_t = Subset::All)]
    pub split: Subset,
    /// Fooling type to score (default: from the fooled checkpoint).
    #[arg(long)]
    pub fooling: Option<FoolingType>,
    /// FSR threshold τ (spec §7.3).
    #[arg(long, default_value_t = 0.15)]
    pub threshold: f64,
    /// Interpreters to score (comma-separated ids).
    #[arg(long, value_delimiter = ',', default_values_t = [Interpreter::LrpT, Interpreter::GradCam, Interpreter::SimpleGradT, Interpreter::LrpNorm, Interpreter::SimpleGrad, Interpreter::SmoothGrad, Interpreter::IntegratedGradients])]
    pub interpreters: Vec<Interpreter>,
    /// SmoothGrad and Integrated Gradients are scored on the first N images only.
    #[arg(long, default_value_t = 200)]
    pub heavy_images: usize,
    /// AOPC on the first N images (0: skip).
    #[arg(long, default_value_t = 0)]
    pub aopc_images: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Write a report folder (report.md, report.json, grid.png, SVG plots; adds weight-noise
    /// robustness and the model-randomisation sanity check on the first 32 images).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Folder of PNG/JPEG images for the report's grid instead of the first evaluation images
    /// (e.g. the demo photos); each is explained for the original model's top-1 class.
    #[arg(long)]
    pub grid_images: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Add each image's outcome to the JSON (`per_image`: top-1 / top-5 hits of both models and
    /// the fooled model's statistic per interpreter, in evaluation order), for bootstrap
    /// intervals over images.
    #[arg(long)]
    pub per_image: bool,
}

/// Runs `foolmap eval`: scores, then (with `--report`) the robustness checks and the report
/// folder; records the evaluation in the weights' ledger.
pub fn run(a: &EvalArgs, root: Option<&Path>, device: &Device) -> Result<EvalReport> {
    let s = subject(a, root, device)?;
    let t = tally(a, &s, device)?;
    let n = s.samples.len();
    let accuracy = |weights: &Path, m: usize| Accuracy {
        weights: weights.display().to_string(),
        top1: t.acc[m][0] as f64 / n as f64,
        top5: t.acc[m][1] as f64 / n as f64,
    };
    let agree = t.predicted[0]
        .iter()
        .zip(&t.predicted[1])
        .filter(|(a, b)| a == b)
        .count();
    let mut out = EvalReport {
        arch: s.arch,
        fooling: s.kind,
        fooled_with: s.cfg.interpreter,
        data: s.dir.display().to_string(),
        split: a.split,
        n,
        threshold: a.threshold,
        original: accuracy(&s.original, 0),
        fooled: accuracy(&a.fooled, 1),
        direction: s.kind.direction(),
        top1_agreement: Some(agree as f64 / n.max(1) as f64),
        interpreters: interpreter_results(a, s.kind, &t),
        per_image: a.per_image.then(|| per_image(a, &t)),
        aopc: aopc_block(a, &s, device)?,
        active: if s.kind == FoolingType::Active {
            // Composites of the evaluated half (every image of it, not only the first `--limit`).
            let all = eval_samples(s.net.dataset, &s.dir, a.split, None)?;
            Some(active_metrics(&s.net, &s.p0, &s.pf, &all, &s.cfg, device)?)
        } else {
            None
        },
        robustness: None,
        sanity_check: None,
    };
    if let Some(dir) = &a.report {
        let grid = report_extras(a, &s, &mut out, device)?;
        render::write(dir, &out, &grid)?;
    }
    // The scores exist whether or not the ledger can be written (e.g. weights in a read-only
    // folder): say so instead of failing after the work.
    if let Err(e) = record_evaluation(&a.fooled, a.split, n, Purpose::Score) {
        eprintln!("warning: this evaluation is not recorded: {e:#}");
    }
    Ok(out)
}

/// The two models and the images of one evaluation.
struct Subject {
    arch: Architecture,
    kind: FoolingType,
    cfg: CheckpointConfig,
    original: PathBuf,
    net: Net,
    p0: ParamStore,
    pf: ParamStore,
    dir: PathBuf,
    samples: Vec<Sample>,
}

/// Loads the models named by `a` (the fooled checkpoint's metadata supplies what the flags do
/// not) and lists the evaluation images.
fn subject(a: &EvalArgs, root: Option<&Path>, device: &Device) -> Result<Subject> {
    if !a.fooled.is_file() {
        bail!(
            "fooled weights {} do not exist (expected the `final.safetensors` of a `foolmap fool` run)",
            a.fooled.display()
        );
    }
    let meta = metadata(&a.fooled).unwrap_or_default();
    let cfg: CheckpointConfig = match meta.get(crate::io::weights::key::CONFIG) {
        Some(c) => serde_json::from_str(c)
            .with_context(|| format!("{}: the `config` metadata entry", a.fooled.display()))?,
        None => CheckpointConfig::default(),
    };
    let arch = crate::io::weights::arch_of(&a.fooled, &meta, a.arch)?;
    let kind = a.fooling.or(cfg.fooling).unwrap_or(FoolingType::Location);
    let original = match &a.original {
        Some(o) => o.clone(),
        None => data::data_root(root)?.join("weights").join(
            arch.weights_file()
                .with_context(|| format!("pass --original for `{arch}`"))?,
        ),
    };
    let (net, p0) = crate::io::weights::load(arch, &original, device)?;
    let (_, pf) = crate::io::weights::load(arch, &a.fooled, device)?;
    let dir = match &a.data {
        Some(d) => d.clone(),
        None => data::default_dir(root, net.dataset, data::Split::Test)?,
    };
    let samples = eval_samples(net.dataset, &dir, a.split, a.limit)?;
    Ok(Subject {
        arch,
        kind,
        cfg,
        original,
        net,
        p0,
        pf,
        dir,
        samples,
    })
}

/// What one pass over the images counts; index 0 is the original model, 1 the fooled one.
struct Tally {
    /// Top-1 and top-5 hits per model.
    acc: [[usize; 2]; 2],
    /// Per image, per model: (top-1 hit, top-5 hit).
    hits: [Vec<(bool, bool)>; 2],
    /// Per image, per model: the top-1 class (for the agreement of the two models).
    predicted: [Vec<usize>; 2],
    /// Per interpreter of `--interpreters`: the fooled and the original model's statistics.
    stats: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Classifies every image with both models and computes both models' fooling statistic per
/// interpreter (the heavy interpreters on the first `--heavy-images` only).
fn tally(a: &EvalArgs, s: &Subject, device: &Device) -> Result<Tally> {
    let (net, n, k) = (&s.net, s.samples.len(), s.net.num_classes);
    let o = InterpreterOptions::default();
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images  eta {eta}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut t = Tally {
        acc: [[0; 2]; 2],
        hits: [Vec::with_capacity(n), Vec::with_capacity(n)],
        predicted: [Vec::with_capacity(n), Vec::with_capacity(n)],
        stats: vec![(Vec::new(), Vec::new()); a.interpreters.len()],
    };
    let mut seen = 0usize;
    for chunk in s.samples.chunks(a.batch_size.max(1)) {
        let imgs = images(chunk, net.dataset)?;
        let labels: Vec<usize> = chunk.iter().map(|s| s.label).collect();
        let x = foolmap::image::batch(&imgs, device)?;
        for (m, p) in [&s.p0, &s.pf].into_iter().enumerate() {
            let l = read_back(net.seq.forward(p, x.clone()).reshape([labels.len(), k]))?;
            for (i, &y) in labels.iter().enumerate() {
                let top = top_k(&l[i * k..(i + 1) * k], 5.min(k));
                t.acc[m][0] += (top[0] == y) as usize;
                t.acc[m][1] += top.contains(&y) as usize;
                t.hits[m].push((top[0] == y, top.contains(&y)));
                t.predicted[m].push(top[0]);
            }
        }
        for (ii, interp) in a.interpreters.iter().enumerate() {
            if (interp.needs_resampling() && seen >= a.heavy_images) || s.kind.passive().is_none() {
                continue;
            }
            let h0 = explain(net, &s.p0, x.clone(), &labels, *interp, &o)?;
            let hf = explain(net, &s.pf, x.clone(), &labels, *interp, &o)?;
            // The original's statistic is its own map against itself (the baseline of §6).
            let (sf, so) = (
                fooling::statistic(s.kind, hf, Some(h0.clone()))?,
                fooling::statistic(s.kind, h0.clone(), Some(h0))?,
            );
            t.stats[ii].0.extend(read_back(sf)?);
            t.stats[ii].1.extend(read_back(so)?);
        }
        seen += chunk.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(t)
}

/// FSR, mean statistic and CDF per interpreter that has statistics.
fn interpreter_results(
    a: &EvalArgs,
    kind: FoolingType,
    t: &Tally,
) -> BTreeMap<Interpreter, InterpreterResult> {
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    a.interpreters
        .iter()
        .zip(&t.stats)
        .filter(|(_, (sf, _))| !sf.is_empty())
        .map(|(interp, (sf, so))| {
            let r = InterpreterResult {
                n: sf.len(),
                fsr: metrics::fsr(kind, sf, a.threshold),
                mean_statistic: mean(sf),
                fsr_original: metrics::fsr(kind, so, a.threshold),
                mean_statistic_original: mean(so),
                threshold: a.threshold,
                cdf: metrics::cdf(sf, 20),
            };
            (*interp, r)
        })
        .collect()
}

/// Each image's outcome (`--per-image`), for bootstrap intervals over images.
fn per_image(a: &EvalArgs, t: &Tally) -> PerImage {
    let bits = |m: usize, top5: bool| -> String {
        t.hits[m]
            .iter()
            .map(|&(t1, t5)| if top5 { t5 } else { t1 })
            .map(|hit| if hit { '1' } else { '0' })
            .collect()
    };
    PerImage {
        top1_original: bits(0, false),
        top5_original: bits(0, true),
        top1_fooled: bits(1, false),
        top5_fooled: bits(1, true),
        statistic: a
            .interpreters
            .iter()
            .zip(&t.stats)
            .filter(|(_, (sf, _))| !sf.is_empty())
            .map(|(i, (sf, _))| (*i, sf.clone()))
            .collect(),
    }
}

/// AOPC of both models on the first `--aopc-images` images (none when 0).
fn aopc_block(a: &EvalArgs, s: &Subject, device: &Device) -> Result<Option<AopcBlock>> {
    if a.aopc_images == 0 {
        return Ok(None);
    }
    let interp = s.cfg.interpreter.unwrap_or(Interpreter::LrpT);
    let few = &s.samples[..a.aopc_images.min(s.samples.len())];
    let labels: Vec<usize> = few.iter().map(|s| s.label).collect();
    let imgs = images(few, s.net.dataset)?;
    let pair = analysis::Pair {
        net: &s.net,
        p0: &s.p0,
        pf: &s.pf,
        imgs: &imgs,
        labels: &labels,
        chunk: a.batch_size,
        device,
    };
    let c = analysis::aopc(pair, interp, None, None)?;
    Ok(Some(AopcBlock::from(&c)))
}

/// The report folder's extra checks on the first 32 images, added to `out`: weight-noise
/// robustness and the model-randomisation sanity check of both models; returns the grid image
/// (the `--grid-images` or the first 6 images × {original, fooled} × the foolable interpreters).
fn report_extras(a: &EvalArgs, s: &Subject, out: &mut EvalReport, device: &Device) -> Result<Rgb8> {
    let few = &s.samples[..s.samples.len().min(32)];
    let imgs = images(few, s.net.dataset)?;
    let labels: Vec<usize> = few.iter().map(|s| s.label).collect();
    let fooled_with = out.fooled_with.unwrap_or(Interpreter::LrpT);
    let pair = analysis::Pair {
        net: &s.net,
        p0: &s.p0,
        pf: &s.pf,
        imgs: &imgs,
        labels: &labels,
        chunk: imgs.len(),
        device,
    };
    let noise = analysis::weight_noise(
        pair,
        fooled_with,
        out.fooling,
        out.threshold,
        &[0.0, 0.01, 0.05, 0.1, 0.2],
    )?;
    out.robustness = Some(Robustness {
        interpreter: fooled_with,
        images: noise.images,
        rows: noise.rows,
    });
    let x = foolmap::image::batch(&imgs, device)?;
    let cascade =
        |p: &ParamStore| robustness::sanity(&s.net, p, x.clone(), &labels, fooled_with, device);
    out.sanity_check = Some(SanityCheck {
        interpreter: fooled_with,
        images: labels.len(),
        layers: SanityLayers {
            original: cascade(&s.p0)?,
            fooled: cascade(&s.pf)?,
        },
    });
    let grid_set = match &a.grid_images {
        Some(dir) => Some(grid_set(dir, &s.net, &s.p0, device)?),
        None => None,
    };
    let (gi, gl) = grid_set
        .as_ref()
        .map(|(i, l)| (i.as_slice(), l.as_slice()))
        .unwrap_or((&imgs[..imgs.len().min(6)], &labels[..labels.len().min(6)]));
    render::grid(&s.net, &s.p0, &s.pf, gi, gl, Interpreter::FOOLABLE, device)
}
