//! Analyses of a final model that choose nothing (docs/method.md §7.1, step 4): AOPC curves and
//! robustness to Gaussian weight noise (docs/method.md §6). `eval --aopc-images`
//! and the table's analysis stage both compute them here; the results are typed and serialised
//! as they are.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::explain;
use foolmap::fooling::FoolingType;
use foolmap::image::Rgb8;
use foolmap::metrics;
use foolmap::params::SplitMix;
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};
use serde::{Deserialize, Serialize};

use foolmap::scores::read_back as to_vec;

/// The three perturbation orders of one model: `AOPC_K` for `K = 0..=steps` (entry 0 is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AopcOrders {
    /// Patches removed in the MoRF order of the original model's map.
    pub morf_original_map: Vec<f64>,
    /// In the MoRF order of the fooled model's map.
    pub morf_fooled_map: Vec<f64>,
    /// In a random order (seed 8, the same for both models).
    pub random: Vec<f64>,
}

impl AopcOrders {
    /// `(name, curve)` pairs in a fixed order.
    pub fn named(&self) -> [(&'static str, &[f64]); 3] {
        [
            ("morf_original_map", &self.morf_original_map),
            ("morf_fooled_map", &self.morf_fooled_map),
            ("random", &self.random),
        ]
    }
}

/// Six AOPC curves of a model pair (spec §7.5 `get_aopc2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aopc {
    /// Interpreter whose tap maps give the MoRF orders.
    pub interpreter: Interpreter,
    /// Images averaged.
    pub images: usize,
    /// Patch grid `(rows, cols)`: the tap map's size.
    pub grid: (usize, usize),
    /// Patches replaced, one per step.
    pub steps: usize,
    /// The original model perturbed in each order.
    pub original: AopcOrders,
    /// The fooled model perturbed in each order.
    pub fooled: AopcOrders,
}

impl Aopc {
    /// The curves keyed `model.order` (the shape of `eval --json`'s `aopc.curves`).
    pub fn curves(&self) -> BTreeMap<String, Vec<f64>> {
        [("original", &self.original), ("fooled", &self.fooled)]
            .into_iter()
            .flat_map(|(m, o)| {
                o.named()
                    .map(|(name, c)| (format!("{m}.{name}"), c.to_vec()))
            })
            .collect()
    }
}

/// The original and the fooled model and the labelled images (already cropped for the model)
/// an analysis runs on, in batches of `chunk` images (per-image results: the batch size changes
/// nothing but memory).
#[derive(Clone, Copy)]
pub struct Pair<'a> {
    /// The network.
    pub net: &'a Net,
    /// The original weights.
    pub p0: &'a ParamStore,
    /// The fooled weights.
    pub pf: &'a ParamStore,
    /// The images.
    pub imgs: &'a [Rgb8],
    /// One label per image.
    pub labels: &'a [usize],
    /// Images per batch.
    pub chunk: usize,
    /// Where the tensors live.
    pub device: &'a Device,
}

/// One batch of a [`Pair`]'s images: where it starts, the input tensor and its labels.
struct Batch<'a> {
    at: usize,
    x: Tensor<4>,
    labels: &'a [usize],
}

impl<'a> Pair<'a> {
    /// The images as input tensors in batches of `chunk`, built once per analysis.
    fn batches(&self) -> Result<Vec<Batch<'a>>> {
        let chunk = self.chunk.max(1);
        self.imgs
            .chunks(chunk)
            .enumerate()
            .map(|(ci, part)| {
                let at = ci * chunk;
                Ok(Batch {
                    at,
                    x: foolmap::image::batch(part, self.device)?,
                    labels: &self.labels[at..at + part.len()],
                })
            })
            .collect()
    }
}

/// AOPC curves of the pair. `steps`: patches replaced (default and maximum: the grid's cells, at
/// most 100 as in the authors' code). Patches are replaced by N(0, 0.3²) noise in the normalised
/// input, drawn once for all images (seed 7).
///
/// `known`: the original model's curves from an earlier analysis of the same original, images,
/// interpreter and steps; its orders `morf_original_map` and `random` do not depend on the fooled
/// model, so they are taken from there instead of recomputed (a third less work).
pub fn aopc(
    pair: Pair,
    interp: Interpreter,
    steps: Option<usize>,
    known: Option<&AopcOrders>,
) -> Result<Aopc> {
    let Pair {
        net,
        p0,
        pf,
        imgs,
        labels,
        device,
        ..
    } = pair;
    if imgs.is_empty() || imgs.len() != labels.len() {
        bail!(
            "AOPC needs one label per image and at least one image ({} images, {} labels)",
            imgs.len(),
            labels.len()
        );
    }
    let o = InterpreterOptions::default();
    let n = imgs.len();
    let batches = pair.batches()?;
    let per_image = 3 * imgs[0].height * imgs[0].width;
    let mut rng = SplitMix::new(7);
    let noise: Vec<f32> = (0..n * per_image)
        .map(|_| (rng.normal() * 0.3) as f32)
        .collect();
    // Tap maps and orders first: the grid fixes the random order's length.
    let (mut ord0, mut ordf) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut grid = (0, 0);
    for b in &batches {
        let m0 = explain(net, p0, b.x.clone(), b.labels, interp, &o)?;
        let mf = explain(net, pf, b.x.clone(), b.labels, interp, &o)?;
        let [nn, gh, gw] = m0.dims();
        grid = (gh, gw);
        ord0.extend(metrics::morf_order(&to_vec(m0)?, nn));
        ordf.extend(metrics::morf_order(&to_vec(mf)?, nn));
    }
    let cells = grid.0 * grid.1;
    let steps = steps.unwrap_or(cells).min(cells).min(100);
    let rnd = metrics::random_order(n, cells, 8);
    let known =
        known.filter(|k| k.morf_original_map.len() == steps + 1 && k.random.len() == steps + 1);
    let mut curves = Vec::with_capacity(6);
    for (m, p) in [p0, pf].into_iter().enumerate() {
        for (o, ord) in [&ord0, &ordf, &rnd].into_iter().enumerate() {
            if let (0, Some(k)) = (m, known) {
                match o {
                    0 => {
                        curves.push(k.morf_original_map.clone());
                        continue;
                    }
                    2 => {
                        curves.push(k.random.clone());
                        continue;
                    }
                    _ => {}
                }
            }
            let mut scores = Vec::with_capacity(n);
            for b in &batches {
                let (at, len) = (b.at, b.labels.len());
                let dims = b.x.dims();
                let nz = noise[at * per_image..(at + len) * per_image].to_vec();
                let nz = Tensor::<4>::from_data(TensorData::new(nz, dims), device);
                scores.extend(metrics::aopc_scores(
                    net,
                    p,
                    &b.x,
                    &nz,
                    b.labels,
                    &ord[at..at + len],
                    grid,
                    steps,
                )?);
            }
            curves.push(metrics::aopc_curve(&scores));
        }
    }
    let mut c = curves.into_iter();
    let mut next = || c.next().unwrap_or_default();
    let original = AopcOrders {
        morf_original_map: next(),
        morf_fooled_map: next(),
        random: next(),
    };
    let fooled = AopcOrders {
        morf_original_map: next(),
        morf_fooled_map: next(),
        random: next(),
    };
    Ok(Aopc {
        interpreter: interp,
        images: n,
        grid,
        steps,
        original,
        fooled,
    })
}

/// One noise level of [`weight_noise`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseRow {
    /// Relative σ: every trainable tensor gets `σ·std(w)·N(0, 1)`.
    pub sigma: f64,
    /// Top-1 of the original model with this noise (its own draw).
    pub top1_original: f64,
    /// Top-1 of the fooled model with this noise.
    pub top1_fooled: f64,
    /// FSR of the noisy fooled model (its maps against the clean original's where the
    /// statistic needs them); `None` for active fooling.
    pub fsr: Option<f64>,
}

/// Robustness to Gaussian weight noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightNoise {
    /// Interpreter of the FSR.
    pub interpreter: Interpreter,
    /// Images scored.
    pub images: usize,
    /// FSR threshold τ.
    pub threshold: f64,
    /// One row per σ, in the order asked.
    pub rows: Vec<NoiseRow>,
}

/// Top-1 and FSR of both models of the pair with their trainable weights perturbed by relative σ
/// (one draw per σ and model: seeds `1000 + i` for the fooled model, `2000 + i` for the original,
/// `i` the σ's index). σ = 0 gives the clean models' figures.
pub fn weight_noise(
    pair: Pair,
    interp: Interpreter,
    kind: FoolingType,
    tau: f64,
    sigmas: &[f64],
) -> Result<WeightNoise> {
    let (net, p0, pf, device) = (pair.net, pair.p0, pair.pf, pair.device);
    let o = InterpreterOptions::default();
    let k = net.num_classes;
    let batches = pair.batches()?;
    let top1 = |p: &ParamStore, b: &Batch| -> Result<usize> {
        let pred =
            foolmap::train::top1(net.seq.forward(p, b.x.clone()).reshape([b.labels.len(), k]))?;
        Ok(pred.iter().zip(b.labels).filter(|(p, y)| p == y).count())
    };
    // Passive types have a statistic; the clean original's maps are computed once, and only
    // where the statistic reads them.
    let passive = kind.passive();
    let h0 = match passive {
        Some(p) if p.needs_reference() => batches
            .iter()
            .map(|b| Ok(Some(explain(net, p0, b.x.clone(), b.labels, interp, &o)?)))
            .collect::<Result<Vec<_>>>()?,
        _ => vec![None; batches.len()],
    };
    let mut rows = Vec::with_capacity(sigmas.len());
    for (i, &sigma) in sigmas.iter().enumerate() {
        let q0 = crate::eval::robustness::perturb(p0, sigma, 2000 + i as u64, device)?;
        let qf = crate::eval::robustness::perturb(pf, sigma, 1000 + i as u64, device)?;
        let (mut c0, mut cf) = (0, 0);
        let mut stat = Vec::with_capacity(pair.imgs.len());
        for (b, h0) in batches.iter().zip(&h0) {
            c0 += top1(&q0, b)?;
            cf += top1(&qf, b)?;
            if let Some(p) = passive {
                let hf = explain(net, &qf, b.x.clone(), b.labels, interp, &o)?;
                stat.extend(to_vec(p.statistic(hf, h0.clone())?)?);
            }
        }
        let n = pair.imgs.len().max(1) as f64;
        rows.push(NoiseRow {
            sigma,
            top1_original: c0 as f64 / n,
            top1_fooled: cf as f64 / n,
            fsr: passive.map(|_| metrics::fsr(kind, &stat, tau)),
        });
    }
    Ok(WeightNoise {
        interpreter: interp,
        images: pair.imgs.len(),
        threshold: tau,
        rows,
    })
}

/// AOPC at the last step of each order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AopcPoint {
    /// MoRF order of the original model's map.
    pub morf_original_map: f64,
    /// MoRF order of the fooled model's map.
    pub morf_fooled_map: f64,
    /// Random order.
    pub random: f64,
}

impl AopcOrders {
    /// `AOPC_K` at the last step `K` of each curve.
    pub fn last(&self) -> AopcPoint {
        let l = |c: &[f64]| c.last().copied().unwrap_or(f64::NAN);
        AopcPoint {
            morf_original_map: l(&self.morf_original_map),
            morf_fooled_map: l(&self.morf_fooled_map),
            random: l(&self.random),
        }
    }
}

/// `[analysis]` of a table config: what is computed for every first-seed model after the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The first N report-half images (in evaluation order).
    pub images: usize,
    /// AOPC: patches replaced, one per step (at most the tap grid's cells).
    pub aopc_steps: usize,
    /// Relative σ of the weight-noise rows (0: the clean models).
    pub noise_sigmas: Vec<f64>,
}

impl AnalysisConfig {
    /// Checks the fields, naming the first bad one.
    pub fn check(&self) -> Result<()> {
        if self.images == 0 {
            bail!("[analysis] images must be at least 1");
        }
        if self.aopc_steps == 0 {
            bail!("[analysis] aopc_steps must be at least 1");
        }
        if let Some(s) = self
            .noise_sigmas
            .iter()
            .find(|s| !(s.is_finite() && **s >= 0.0))
        {
            bail!("[analysis] noise_sigmas: {s} is not a finite number ≥ 0");
        }
        Ok(())
    }
}

/// `analysis.json` of a table model: its AOPC curves and weight-noise rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnalysis {
    /// SHA-256 of the analysed file (the scored f16 model).
    pub sha256: String,
    /// Which images: the first `images` of this half.
    pub split: crate::split::SplitArg,
    /// AOPC curves.
    pub aopc: Aopc,
    /// Weight-noise robustness.
    pub noise: WeightNoise,
}

/// What [`analyse_model`] analyses: a fooled file against the original, with its fooling type,
/// interpreter and FSR threshold.
pub struct Subject<'a> {
    /// Architecture.
    pub arch: foolmap::Architecture,
    /// The original weights.
    pub original: &'a std::path::Path,
    /// The fooled file (the scored f16 model).
    pub model: &'a std::path::Path,
    /// Its fooling type.
    pub kind: FoolingType,
    /// The interpreter it was fooled with.
    pub interp: Interpreter,
    /// FSR threshold τ.
    pub tau: f64,
}

/// The analyses of one fooled model against the original, on the first `cfg.images` report-half
/// images in batches of `batch`; recorded in the model's `evaluations.jsonl` as an analysis (not
/// a scoring). `known`: the original's AOPC curves from an earlier analysis (see [`aopc`]).
pub fn analyse_model(
    cfg: &AnalysisConfig,
    s: &Subject,
    batch: usize,
    known: Option<&AopcOrders>,
    root: Option<&std::path::Path>,
    device: &Device,
) -> Result<ModelAnalysis> {
    use crate::split::SplitArg;
    let Subject {
        arch,
        original,
        model,
        kind,
        interp,
        tau,
    } = *s;
    let bytes = std::fs::read(model)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", model.display()))?;
    let sha256 = crate::io::hash::sha256_bytes(&bytes);
    let (net, p0) = crate::io::weights::load(arch, original, device)?;
    let (_, pf) = crate::io::weights::load(arch, model, device)?;
    let dir = crate::io::data::default_dir(root, net.dataset, crate::io::data::Split::Test)?;
    let samples = crate::eval::eval_samples(net.dataset, &dir, SplitArg::Report, Some(cfg.images))?;
    let imgs = super::samples::images(&samples, net.dataset)?;
    let labels: Vec<usize> = samples.iter().map(|s| s.label).collect();
    let pair = Pair {
        net: &net,
        p0: &p0,
        pf: &pf,
        imgs: &imgs,
        labels: &labels,
        chunk: batch,
        device,
    };
    let aopc = aopc(pair, interp, Some(cfg.aopc_steps), known)?;
    let noise = weight_noise(pair, interp, kind, tau, &cfg.noise_sigmas)?;
    crate::eval::record_evaluation(
        model,
        SplitArg::Report,
        imgs.len(),
        crate::eval::Purpose::Analysis,
    )?;
    Ok(ModelAnalysis {
        sha256,
        split: SplitArg::Report,
        aopc,
        noise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_analysis_config_names_the_field() {
        let ok = AnalysisConfig {
            images: 10,
            aopc_steps: 4,
            noise_sigmas: vec![0.0, 0.1],
        };
        assert!(ok.check().is_ok());
        for (bad, needle) in [
            (
                AnalysisConfig {
                    images: 0,
                    ..ok.clone()
                },
                "images",
            ),
            (
                AnalysisConfig {
                    aopc_steps: 0,
                    ..ok.clone()
                },
                "aopc_steps",
            ),
            (
                AnalysisConfig {
                    noise_sigmas: vec![0.1, f64::NAN],
                    ..ok.clone()
                },
                "noise_sigmas: NaN",
            ),
            (
                AnalysisConfig {
                    noise_sigmas: vec![-0.1],
                    ..ok.clone()
                },
                "noise_sigmas: -0.1",
            ),
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn reusing_the_originals_curves_gives_the_same_analysis() {
        use foolmap::Architecture;
        let device = Device::flex();
        let net = Architecture::ResNet20.build();
        let p0 = ParamStore::random(&net.specs, 1, &device);
        let pf = ParamStore::random(&net.specs, 2, &device);
        let mut rng = SplitMix::new(3);
        let imgs: Vec<Rgb8> = (0..3)
            .map(|_| Rgb8 {
                width: 32,
                height: 32,
                data: (0..32 * 32 * 3).map(|_| rng.below(256) as u8).collect(),
            })
            .collect();
        let labels = [1, 2, 3];
        let pair = Pair {
            net: &net,
            p0: &p0,
            pf: &pf,
            imgs: &imgs,
            labels: &labels,
            chunk: 2,
            device: &device,
        };
        let full = aopc(pair, Interpreter::GradCam, Some(4), None).unwrap();
        assert_eq!(full.steps, 4);
        let reused = aopc(pair, Interpreter::GradCam, Some(4), Some(&full.original)).unwrap();
        assert_eq!(reused, full);
        // Curves of another length (another `steps`) are not taken.
        let other = AopcOrders {
            morf_original_map: vec![9.0; 3],
            morf_fooled_map: vec![9.0; 3],
            random: vec![9.0; 3],
        };
        let again = aopc(pair, Interpreter::GradCam, Some(4), Some(&other)).unwrap();
        assert_eq!(again, full);
    }

    #[test]
    fn aopc_curves_keep_the_eval_json_keys() {
        let o = AopcOrders {
            morf_original_map: vec![0.0, 1.0],
            morf_fooled_map: vec![0.0, 2.0],
            random: vec![0.0, 3.0],
        };
        let a = Aopc {
            interpreter: Interpreter::GradCam,
            images: 1,
            grid: (8, 8),
            steps: 1,
            original: o.clone(),
            fooled: o,
        };
        let keys: Vec<String> = a.curves().into_keys().collect();
        assert_eq!(
            keys,
            [
                "fooled.morf_fooled_map",
                "fooled.morf_original_map",
                "fooled.random",
                "original.morf_fooled_map",
                "original.morf_original_map",
                "original.random"
            ]
        );
        assert_eq!(a.original.last().random, 3.0);
    }
}
