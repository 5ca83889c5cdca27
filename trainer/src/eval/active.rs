//! Active fooling's figures (docs/method.md §7): composites of the evaluated half, correlations
//! of the fooled model's maps with the original's (same class and swapped), per-class accuracy.

use anyhow::Result;
use foolmap::burn::tensor::Device;
use foolmap::explain::interpreter::explain;
use foolmap::fooling::FoolingType;
use foolmap::image::Rgb8;
use foolmap::params::SplitMix;
use foolmap::scores::{read_back, top_k};
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};

use super::report::*;
use super::samples::images;
use crate::io::data::Sample;
use foolmap::metrics;

/// The fields of a fooled checkpoint's `config` metadata that `eval` reads (written by `fool`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(super) struct CheckpointConfig {
    #[serde(default)]
    pub(super) fooling: Option<FoolingType>,
    #[serde(default)]
    pub(super) interpreter: Option<Interpreter>,
    #[serde(default)]
    pub(super) c1: Option<usize>,
    #[serde(default)]
    pub(super) c2: Option<usize>,
}

/// Active fooling (spec §7.4): composites of `samples` (the evaluated half), correlations of
/// the fooled model's maps with the original's, per-class accuracy of c1 and c2.
pub(super) fn active_metrics(
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
    let comp = crate::batches::composite_batch(
        &[&s1, &s2],
        net.dataset,
        200.min(2 * s1.len().min(s2.len())),
        &mut rng,
    )?;
    let correlations = correlations(net, (p0, pf), &comp, (c1, c2), interp, device)?;
    let class_acc = |p: &ParamStore, set: &[Sample], c: usize| class_top1(net, p, set, c, device);
    Ok(ActiveMetrics {
        c1,
        c2,
        interpreter: interp,
        composites: comp.len(),
        correlations,
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

/// Mean hot-region and Spearman correlations over the composites of the four map pairs (the
/// fooled model's c1 / c2 maps against the original's c2 / c1, then c1 / c2).
fn correlations(
    net: &Net,
    (p0, pf): (&ParamStore, &ParamStore),
    comp: &[Rgb8],
    (c1, c2): (usize, usize),
    interp: Interpreter,
    device: &Device,
) -> Result<ActiveCorrelations> {
    let o = InterpreterOptions::default();
    let mut sums = metrics::ActiveSums::default();
    for chunk in comp.chunks(50) {
        let x = foolmap::image::batch(chunk, device)?;
        let n = chunk.len();
        let maps = |p: &ParamStore, c: usize| -> Result<Vec<f32>> {
            Ok(read_back(explain(
                net,
                p,
                x.clone(),
                &vec![c; n],
                interp,
                &o,
            )?)?)
        };
        let (o1, o2, f1, f2) = (maps(p0, c1)?, maps(p0, c2)?, maps(pf, c1)?, maps(pf, c2)?);
        sums.add([&f1, &f2, &o1, &o2], n, true);
    }
    Ok(sums.correlations())
}

/// Top-1 of the weights `p` on (at most the first 500 of) the images `set` of class `c`.
fn class_top1(net: &Net, p: &ParamStore, set: &[Sample], c: usize, device: &Device) -> Result<f64> {
    let set = &set[..set.len().min(500)];
    let x = foolmap::image::batch(&images(set, net.dataset)?, device)?;
    let l = read_back(net.seq.forward(p, x).reshape([set.len(), net.num_classes]))?;
    let k = net.num_classes;
    Ok((0..set.len())
        .filter(|&i| top_k(&l[i * k..(i + 1) * k], 1)[0] == c)
        .count() as f64
        / set.len().max(1) as f64)
}
