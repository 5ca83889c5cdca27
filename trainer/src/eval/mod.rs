//! `foolmap eval`: accuracy of the original and the fooled model, per-interpreter fooling
//! statistics, FSR and CDF (spec §7.2–7.3), active-fooling correlations (§7.4) and AOPC (§7.5).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::explain::interpreter::explain;
use foolmap::fooling::{self, FoolingType};
use foolmap::image::eval_crop;
use foolmap::metrics;
use foolmap::params::SplitMix;
use foolmap::{Architecture, Dataset, Interpreter, InterpreterOptions, Net, ParamStore};
use std::collections::BTreeMap;

use crate::commands::{to_vec, top_k as topk};
use crate::data::{self, Sample};
pub use crate::evaluation::*;
use crate::split::SplitArg;

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
    #[arg(long, value_parser = crate::commands::at_least_one)]
    pub limit: Option<usize>,
    /// Which images: `all`, or one half of the committed split of the CIFAR-10 test set
    /// (`splits/cifar10-test.json`): `selection` for every choice of recipe, checkpoint or
    /// average; `report` to score a final model, once. Every evaluation is recorded in the
    /// weights' folder (`evaluations.jsonl`: file, SHA-256, split, images).
    #[arg(long, value_enum, default_value_t = SplitArg::All)]
    pub split: SplitArg,
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

/// Metadata of a fooled checkpoint (`arch`, `config`).
fn metadata(path: &Path) -> Option<std::collections::BTreeMap<String, String>> {
    crate::weights::read_metadata(path).ok()
}

fn images(samples: &[Sample], dataset: Dataset) -> Result<Vec<foolmap::image::Rgb8>> {
    samples
        .iter()
        .map(|s| Ok(eval_crop(&s.rgb()?, dataset)))
        .collect()
}

/// Images of the report grid: the first 8 PNG/JPEG files of `dir` (sorted by name), cropped for
/// the model, each with the original model's top-1 class.
fn grid_set(
    dir: &Path,
    net: &Net,
    p0: &ParamStore,
    device: &Device,
) -> Result<(Vec<foolmap::image::Rgb8>, Vec<usize>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--grid-images {}: cannot read the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    files.truncate(8);
    if files.is_empty() {
        bail!(
            "--grid-images {}: no PNG or JPEG images in the folder",
            dir.display()
        );
    }
    let imgs = files
        .iter()
        .map(|f| Ok(eval_crop(&crate::commands::read_image(f)?, net.dataset)))
        .collect::<Result<Vec<_>>>()?;
    let x = foolmap::image::batch(&imgs, device)?;
    let logits = to_vec(net.seq.forward(p0, x))?;
    let labels = logits
        .chunks(net.num_classes)
        .map(|l| topk(l, 1).first().copied().unwrap_or(0))
        .collect();
    Ok((imgs, labels))
}

/// The evaluation images of `dir` in evaluation order: the split's half (CIFAR-10 test only),
/// then a fixed interleaving over classes (seed 20) so that any prefix keeps every class, then
/// the first `limit`. `eval`, the table's selection and report stages and its analyses all
/// read images through this one function.
pub fn eval_samples(
    dataset: Dataset,
    dir: &Path,
    split: SplitArg,
    limit: Option<usize>,
) -> Result<Vec<Sample>> {
    let mut samples = data::samples(dataset, dir)?;
    if let Some(half) = split.half() {
        samples = crate::split::select(samples, &crate::split::committed(dataset)?, half)
            .with_context(|| format!("--split {} of {}", split.id(), dir.display()))?;
    }
    if dataset == Dataset::Cifar10 {
        // A fixed interleaving over classes, so that `--limit` keeps every class.
        let mut rng = SplitMix::new(20);
        for i in (1..samples.len()).rev() {
            samples.swap(i, rng.below(i + 1));
        }
    }
    if let Some(l) = limit {
        samples.truncate(l);
    }
    Ok(samples)
}

/// Runs `foolmap eval`.
pub fn run(a: &EvalArgs, root: Option<&Path>, device: &Device) -> Result<EvalReport> {
    if !a.fooled.is_file() {
        bail!(
            "fooled weights {} do not exist (expected the `final.safetensors` of a `foolmap fool` run)",
            a.fooled.display()
        );
    }
    let meta = metadata(&a.fooled).unwrap_or_default();
    let cfg: CheckpointConfig = match meta.get("config") {
        Some(c) => serde_json::from_str(c)
            .with_context(|| format!("{}: the `config` metadata entry", a.fooled.display()))?,
        None => CheckpointConfig::default(),
    };
    let arch = crate::weights::arch_of(&a.fooled, &meta, a.arch)?;
    let kind = a.fooling.or(cfg.fooling).unwrap_or(FoolingType::Location);
    let fooled_with = cfg.interpreter;
    let original = match &a.original {
        Some(o) => o.clone(),
        None => data::data_root(root)?.join("weights").join(
            arch.weights_file()
                .with_context(|| format!("pass --original for `{arch}`"))?,
        ),
    };
    let (net, p0) = crate::weights::load(arch, &original, device)?;
    let (_, pf) = crate::weights::load(arch, &a.fooled, device)?;
    let dir = match &a.data {
        Some(d) => d.clone(),
        None => data::default_dir(root, net.dataset, data::Split::Test)?,
    };
    let samples = eval_samples(net.dataset, &dir, a.split, a.limit)?;
    let n = samples.len();
    let o = InterpreterOptions::default();
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images  eta {eta}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut acc = [[0usize; 2]; 2];
    // Per image, per model: (top-1 hit, top-5 hit).
    let mut hits: [Vec<(bool, bool)>; 2] = [Vec::with_capacity(n), Vec::with_capacity(n)];
    // Per image, per model: the top-1 class (for the agreement of the two models).
    let mut predicted: [Vec<usize>; 2] = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut stats: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); a.interpreters.len()];
    let k = net.num_classes;
    let mut seen = 0usize;
    for chunk in samples.chunks(a.batch_size.max(1)) {
        let imgs = images(chunk, net.dataset)?;
        let labels: Vec<usize> = chunk.iter().map(|s| s.label).collect();
        let x = foolmap::image::batch(&imgs, device)?;
        for (m, p) in [&p0, &pf].into_iter().enumerate() {
            let l = to_vec(net.seq.forward(p, x.clone()).reshape([labels.len(), k]))?;
            for (i, &y) in labels.iter().enumerate() {
                let t = topk(&l[i * k..(i + 1) * k], 5.min(k));
                acc[m][0] += (t[0] == y) as usize;
                acc[m][1] += t.contains(&y) as usize;
                hits[m].push((t[0] == y, t.contains(&y)));
                predicted[m].push(t[0]);
            }
        }
        for (ii, interp) in a.interpreters.iter().enumerate() {
            if interp.needs_resampling() && seen >= a.heavy_images {
                continue;
            }
            let h0 = explain(&net, &p0, x.clone(), &labels, *interp, &o)?;
            let hf = explain(&net, &pf, x.clone(), &labels, *interp, &o)?;
            if kind.passive().is_none() {
                continue;
            }
            // The original's statistic is its own map against itself (the baseline of §6).
            let (sf, so) = (
                fooling::statistic(kind, hf, Some(h0.clone()))?,
                fooling::statistic(kind, h0.clone(), Some(h0))?,
            );
            stats[ii].0.extend(to_vec(sf)?);
            stats[ii].1.extend(to_vec(so)?);
        }
        seen += chunk.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    let interpreters: BTreeMap<Interpreter, InterpreterResult> = a
        .interpreters
        .iter()
        .zip(&stats)
        .filter(|(_, (sf, _))| !sf.is_empty())
        .map(|(interp, (sf, so))| {
            (
                *interp,
                InterpreterResult {
                    n: sf.len(),
                    fsr: metrics::fsr(kind, sf, a.threshold),
                    mean_statistic: mean(sf),
                    fsr_original: metrics::fsr(kind, so, a.threshold),
                    mean_statistic_original: mean(so),
                    threshold: a.threshold,
                    cdf: metrics::cdf(sf, 20),
                },
            )
        })
        .collect();
    let bits = |m: usize, top5: bool| -> String {
        hits[m]
            .iter()
            .map(|&(t1, t5)| if top5 { t5 } else { t1 })
            .map(|hit| if hit { '1' } else { '0' })
            .collect()
    };
    let per_image = a.per_image.then(|| PerImage {
        top1_original: bits(0, false),
        top5_original: bits(0, true),
        top1_fooled: bits(1, false),
        top5_fooled: bits(1, true),
        statistic: a
            .interpreters
            .iter()
            .zip(&stats)
            .filter(|(_, (sf, _))| !sf.is_empty())
            .map(|(i, (sf, _))| (*i, sf.clone()))
            .collect(),
    });
    let accuracy = |weights: &Path, m: usize| Accuracy {
        weights: weights.display().to_string(),
        top1: acc[m][0] as f64 / n as f64,
        top5: acc[m][1] as f64 / n as f64,
    };
    let aopc = if a.aopc_images > 0 {
        let interp = fooled_with.unwrap_or(Interpreter::LrpT);
        let few = &samples[..a.aopc_images.min(n)];
        let labels: Vec<usize> = few.iter().map(|s| s.label).collect();
        let imgs = images(few, net.dataset)?;
        let pair = crate::analysis::Pair {
            net: &net,
            p0: &p0,
            pf: &pf,
            imgs: &imgs,
            labels: &labels,
            chunk: a.batch_size,
            device,
        };
        let c = crate::analysis::aopc(pair, interp, None, None)?;
        Some(AopcBlock::from(&c))
    } else {
        None
    };
    let active = if kind == FoolingType::Active {
        // Composites of the evaluated half (every image of it, not only the first `--limit`).
        let all = eval_samples(net.dataset, &dir, a.split, None)?;
        Some(active_metrics(&net, &p0, &pf, &all, &cfg, device)?)
    } else {
        None
    };
    let mut out = EvalReport {
        arch,
        fooling: kind,
        fooled_with,
        data: dir.display().to_string(),
        split: a.split,
        n,
        threshold: a.threshold,
        original: accuracy(&original, 0),
        fooled: accuracy(&a.fooled, 1),
        direction: kind.direction(),
        top1_agreement: Some(
            predicted[0]
                .iter()
                .zip(&predicted[1])
                .filter(|(a, b)| a == b)
                .count() as f64
                / n.max(1) as f64,
        ),
        interpreters,
        per_image,
        aopc,
        active,
        robustness: None,
        sanity_check: None,
    };
    if let Some(rep) = &a.report {
        let few = &samples[..n.min(32)];
        let imgs = images(few, net.dataset)?;
        let labels: Vec<usize> = few.iter().map(|s| s.label).collect();
        let grid = match &a.grid_images {
            Some(dir) => Some(grid_set(dir, &net, &p0, device)?),
            None => None,
        };
        let grid = grid
            .as_ref()
            .map(|(i, l)| (i.as_slice(), l.as_slice()))
            .unwrap_or((&imgs[..imgs.len().min(6)], &labels[..labels.len().min(6)]));
        crate::report::write(rep, &mut out, &net, &p0, &pf, &imgs, &labels, grid, device)?;
    }
    // The scores exist whether or not the ledger can be written (e.g. weights in a read-only
    // folder): say so instead of failing after the work.
    if let Err(e) = record_evaluation(&a.fooled, a.split, n, Purpose::Score) {
        eprintln!("warning: this evaluation is not recorded: {e:#}");
    }
    Ok(out)
}

/// One line of a run folder's `evaluations.jsonl`: which weights were scored on which images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvaluationRecord {
    /// File name of the scored weights.
    pub file: String,
    /// Their SHA-256.
    pub sha256: String,
    /// `all`, `selection` or `report`.
    pub split: SplitArg,
    /// Images scored.
    pub images: usize,
    /// `score` (absent in the file): figures a model is judged by; `analysis`: a later look at a
    /// final model (AOPC, weight noise) that chooses nothing.
    #[serde(default, skip_serializing_if = "Purpose::is_score")]
    pub purpose: Purpose,
}

/// Why an evaluation ran (see [`EvaluationRecord::purpose`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Scoring: accuracy, fooling statistics, FSR.
    #[default]
    Score,
    /// An analysis of a final model that selects nothing.
    Analysis,
}

impl Purpose {
    fn is_score(&self) -> bool {
        *self == Purpose::Score
    }
}

/// Appends the evaluation of `weights` to `evaluations.jsonl` beside it (the count of
/// report-half evaluations of a model and its run is read from there).
pub(crate) fn record_evaluation(
    weights: &Path,
    split: SplitArg,
    images: usize,
    purpose: Purpose,
) -> Result<()> {
    let bytes =
        std::fs::read(weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let rec = EvaluationRecord {
        file: weights
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: crate::fetch::sha256_bytes(&bytes),
        split,
        images,
        purpose,
    };
    let ledger = weights
        .parent()
        .unwrap_or(Path::new("."))
        .join("evaluations.jsonl");
    crate::fool::append_line(&ledger, &serde_json::to_string(&rec)?)
}

/// Evaluations of the run folder `dir` (empty when it has none).
pub fn evaluations(dir: &Path) -> Result<Vec<EvaluationRecord>> {
    let path = dir.join("evaluations.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// The fields of a fooled checkpoint's `config` metadata that `eval` reads (written by `fool`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct CheckpointConfig {
    #[serde(default)]
    fooling: Option<FoolingType>,
    #[serde(default)]
    interpreter: Option<Interpreter>,
    #[serde(default)]
    c1: Option<usize>,
    #[serde(default)]
    c2: Option<usize>,
}

/// Active fooling (spec §7.4): composites of `samples` (the evaluated half), correlations of
/// the fooled model's maps with the original's, per-class accuracy of c1 and c2.
fn active_metrics(
    net: &Net,
    p0: &ParamStore,
    pf: &ParamStore,
    samples: &[Sample],
    cfg: &CheckpointConfig,
    device: &Device,
) -> Result<ActiveMetrics> {
    let (c1, c2) = (cfg.c1.unwrap_or(3), cfg.c2.unwrap_or(5));
    let interp = cfg.interpreter.unwrap_or(Interpreter::LrpT);
    let s1: Vec<Sample> = samples.iter().filter(|s| s.label == c1).cloned().collect();
    let s2: Vec<Sample> = samples.iter().filter(|s| s.label == c2).cloned().collect();
    let mut rng = SplitMix::new(20);
    let comp = crate::fool::composite_batch(
        &[&s1, &s2],
        net.dataset,
        200.min(2 * s1.len().min(s2.len())),
        &mut rng,
    )?;
    let o = InterpreterOptions::default();
    // (hot-region sum, Spearman sum) of the four pairs, in ActiveCorrelations' field order.
    let mut sums = [(0f64, 0f64); 4];
    let mut count = 0usize;
    for chunk in comp.chunks(50) {
        let x = foolmap::image::batch(chunk, device)?;
        let n = chunk.len();
        let maps = |p: &ParamStore, c: usize| -> Result<Vec<f32>> {
            to_vec(explain(net, p, x.clone(), &vec![c; n], interp, &o)?)
        };
        let (o1, o2, f1, f2) = (maps(p0, c1)?, maps(p0, c2)?, maps(pf, c1)?, maps(pf, c2)?);
        let cells = o1.len() / n;
        for (k, (a, b)) in [(&f1, &o2), (&f2, &o1), (&f1, &o1), (&f2, &o2)]
            .into_iter()
            .enumerate()
        {
            for i in 0..n {
                let (sa, sb) = (
                    &a[i * cells..(i + 1) * cells],
                    &b[i * cells..(i + 1) * cells],
                );
                sums[k].0 += metrics::hot_region_correlation(sa, sb);
                sums[k].1 += metrics::spearman(sa, sb);
            }
        }
        count += n;
    }
    let corr = |k: usize| Correlation {
        hot_region_correlation: sums[k].0 / count.max(1) as f64,
        spearman: sums[k].1 / count.max(1) as f64,
    };
    let class_acc = |p: &ParamStore, set: &[Sample], c: usize| -> Result<f64> {
        let set = &set[..set.len().min(500)];
        let x = foolmap::image::batch(&images(set, net.dataset)?, device)?;
        let l = to_vec(net.seq.forward(p, x).reshape([set.len(), net.num_classes]))?;
        let k = net.num_classes;
        Ok((0..set.len())
            .filter(|&i| topk(&l[i * k..(i + 1) * k], 1)[0] == c)
            .count() as f64
            / set.len().max(1) as f64)
    };
    Ok(ActiveMetrics {
        c1,
        c2,
        interpreter: interp,
        composites: comp.len(),
        correlations: ActiveCorrelations {
            fooled_c1_original_c2: corr(0),
            fooled_c2_original_c1: corr(1),
            fooled_c1_original_c1: corr(2),
            fooled_c2_original_c2: corr(3),
        },
        class_accuracy: ClassAccuracy {
            original: ClassPair {
                c1: class_acc(p0, &s1, c1)?,
                c2: class_acc(p0, &s2, c2)?,
            },
            fooled: ClassPair {
                c1: class_acc(pf, &s1, c1)?,
                c2: class_acc(pf, &s2, c2)?,
            },
        },
    })
}

/// Prints the evaluation as a table.
pub fn print(v: &EvalReport) {
    println!(
        "{} fooled for `{}` with {} on {} images of {}",
        v.arch.id(),
        v.fooling.id(),
        v.fooled_with.map_or("?", |i| i.id()),
        v.n,
        v.data
    );
    for (m, acc) in [("original", &v.original), ("fooled", &v.fooled)] {
        println!(
            "  {m:<9} top-1 {:.2}%  top-5 {:.2}%",
            100.0 * acc.top1,
            100.0 * acc.top5
        );
    }
    if let Some(a) = v.top1_agreement {
        println!(
            "  the two models predict the same class on {:.2}% of the images",
            100.0 * a
        );
    }
    println!(
        "  {:<22} {:>6} {:>10} {:>14} {:>10}",
        "interpreter", "n", "FSR", "mean stat", "FSR orig."
    );
    for (k, r) in &v.interpreters {
        println!(
            "  {:<22} {:>6} {:>9.1}% {:>14.4} {:>9.1}%",
            k.id(),
            r.n,
            100.0 * r.fsr,
            r.mean_statistic,
            100.0 * r.fsr_original
        );
    }
    if let Some(a) = &v.aopc {
        println!(
            "  AOPC at the last step ({} images, {} steps; the full curves are in the JSON):",
            a.images, a.steps
        );
        for (name, c) in &a.curves {
            println!(
                "    {name:<28} {:.3}",
                c.last().copied().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(act) = &v.active {
        let c = &act.correlations;
        println!(
            "  active ({} composites, {}): swap correlation (hot region) c1→c2 {:.3}, c2→c1 {:.3}; \
             top-1 on c{} / c{}: original {:.1}% / {:.1}%, fooled {:.1}% / {:.1}%",
            act.composites,
            act.interpreter.id(),
            c.fooled_c1_original_c2.hot_region_correlation,
            c.fooled_c2_original_c1.hot_region_correlation,
            act.c1,
            act.c2,
            100.0 * act.class_accuracy.original.c1,
            100.0 * act.class_accuracy.original.c2,
            100.0 * act.class_accuracy.fooled.c1,
            100.0 * act.class_accuracy.fooled.c2
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, rgb: [u8; 3]) {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb(rgb));
        img.save(path).expect("write png");
    }

    #[test]
    fn grid_images_are_cropped_and_labelled_with_the_original_top1() {
        let dir = std::env::temp_dir().join(format!("foolmap-grid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        png(&dir.join("b.png"), [200, 10, 10]);
        png(&dir.join("a.png"), [10, 10, 200]);
        std::fs::write(dir.join("notes.txt"), "not an image").expect("txt");
        let device = Device::flex();
        let net = Architecture::ResNet20.build();
        let p0 = ParamStore::random(&net.specs, 1, &device);
        let (imgs, labels) = grid_set(&dir, &net, &p0, &device).expect("grid set");
        assert_eq!(imgs.len(), 2, "the text file is skipped");
        assert!(imgs.iter().all(|i| i.width == 32 && i.height == 32));
        // Sorted by name: a.png (blue) first.
        assert!(imgs[0].data[2] > imgs[0].data[0]);
        assert!(labels.iter().all(|&l| l < 10));
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).expect("dir");
        let e = grid_set(&empty, &net, &p0, &device)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--grid-images") && e.contains("no PNG or JPEG"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
