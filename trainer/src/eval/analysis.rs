//! Analyses of a final model that choose nothing (docs/method.md §7.1, step 4): AOPC curves and
//! robustness to Gaussian weight noise (docs/method.md §6). `eval --aopc-images`
//! and the table's analysis stage both compute them here; the results are typed and serialised
//! as they are.

use anyhow::{Result, bail};
pub use foolmap::artifact::analysis::{
    AnalysisConfig, Aopc, AopcOrders, AopcPoint, ModelAnalysis, WeightNoise,
};
pub use foolmap::artifact::report::NoiseRow;
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::explain;
use foolmap::fooling::FoolingType;
use foolmap::image::Rgb8;
use foolmap::metrics;
use foolmap::params::SplitMix;
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};

use foolmap::scores::read_back as to_vec;

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

/// Per-image patch orders (MoRF of a map, or random), one list per image.
type Orders = Vec<Vec<usize>>;

/// The MoRF orders of both models' tap maps under `interp`, and the grid `(rows, cols)`.
fn morf_orders(
    pair: &Pair,
    batches: &[Batch],
    interp: Interpreter,
) -> Result<(Orders, Orders, (usize, usize))> {
    let o = InterpreterOptions::default();
    let n = pair.imgs.len();
    let (mut ord0, mut ordf) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut grid = (0, 0);
    for b in batches {
        let m0 = explain(pair.net, pair.p0, b.x.clone(), b.labels, interp, &o)?;
        let mf = explain(pair.net, pair.pf, b.x.clone(), b.labels, interp, &o)?;
        let [nn, gh, gw] = m0.dims();
        grid = (gh, gw);
        ord0.extend(metrics::morf_order(&to_vec(m0)?, nn));
        ordf.extend(metrics::morf_order(&to_vec(mf)?, nn));
    }
    Ok((ord0, ordf, grid))
}

/// The mean AOPC curve of the weights `p` with patches replaced in the order `ord` (per image)
/// by `noise` (the whole set's, `per_image` values each).
fn aopc_curve(
    pair: &Pair,
    batches: &[Batch],
    p: &ParamStore,
    (ord, grid, steps): (&[Vec<usize>], (usize, usize), usize),
    (noise, per_image): (&[f32], usize),
) -> Result<Vec<f64>> {
    let mut scores = Vec::with_capacity(pair.imgs.len());
    for b in batches {
        let (at, len) = (b.at, b.labels.len());
        let nz = noise[at * per_image..(at + len) * per_image].to_vec();
        let nz = Tensor::<4>::from_data(TensorData::new(nz, b.x.dims()), pair.device);
        scores.extend(metrics::aopc_scores(
            pair.net,
            p,
            &b.x,
            &nz,
            b.labels,
            &ord[at..at + len],
            grid,
            steps,
        )?);
    }
    Ok(metrics::aopc_curve(&scores))
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
    let (imgs, labels) = (pair.imgs, pair.labels);
    if imgs.is_empty() || imgs.len() != labels.len() {
        bail!(
            "AOPC needs one label per image and at least one image ({} images, {} labels)",
            imgs.len(),
            labels.len()
        );
    }
    let n = imgs.len();
    let batches = pair.batches()?;
    let per_image = 3 * imgs[0].height * imgs[0].width;
    let mut rng = SplitMix::new(7);
    let noise: Vec<f32> = (0..n * per_image)
        .map(|_| (rng.normal() * 0.3) as f32)
        .collect();
    // Tap maps and orders first: the grid fixes the random order's length.
    let (ord0, ordf, grid) = morf_orders(&pair, &batches, interp)?;
    let cells = grid.0 * grid.1;
    let steps = steps.unwrap_or(cells).min(cells).min(100);
    let rnd = metrics::random_order(n, cells, 8);
    let known =
        known.filter(|k| k.morf_original_map.len() == steps + 1 && k.random.len() == steps + 1);
    let curve = |p: &ParamStore, ord: &[Vec<usize>]| {
        aopc_curve(&pair, &batches, p, (ord, grid, steps), (&noise, per_image))
    };
    let original = AopcOrders {
        morf_original_map: match known {
            Some(k) => k.morf_original_map.clone(),
            None => curve(pair.p0, &ord0)?,
        },
        morf_fooled_map: curve(pair.p0, &ordf)?,
        random: match known {
            Some(k) => k.random.clone(),
            None => curve(pair.p0, &rnd)?,
        },
    };
    let fooled = AopcOrders {
        morf_original_map: curve(pair.pf, &ord0)?,
        morf_fooled_map: curve(pair.pf, &ordf)?,
        random: curve(pair.pf, &rnd)?,
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
    use crate::split::Subset;
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
    let samples = crate::eval::eval_samples(net.dataset, &dir, Subset::Report, Some(cfg.images))?;
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
        Subset::Report,
        imgs.len(),
        crate::eval::Purpose::Analysis,
    )?;
    Ok(ModelAnalysis {
        sha256,
        split: Subset::Report,
        aopc,
        noise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
