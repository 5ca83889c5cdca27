//! Evaluation metrics: FSR and the statistic's CDF (spec §7.3), AOPC (spec §7.5), the
//! active-fooling correlations (spec §7.4) and Spearman rank correlation.

use burn::tensor::{Tensor, TensorData};

use crate::arch::Net;
use crate::artifact::report::{ActiveCorrelations, Correlation};
use crate::error::{FoolmapError, Result};
use crate::explain::interpreter::logits;
use crate::fooling::FoolingType;
use crate::params::{ParamStore, SplitMix};

/// Fooling success rate: the fraction of statistics in the fooled region at threshold `tau`.
pub fn fsr(kind: FoolingType, stats: &[f32], tau: f64) -> f64 {
    if stats.is_empty() {
        return 0.0;
    }
    stats
        .iter()
        .filter(|&&s| kind.is_fooled(s as f64, tau))
        .count() as f64
        / stats.len() as f64
}

/// Empirical CDF of the statistic: `(value, fraction ≤ value)` at `points` evenly spaced values
/// in [0, 1].
pub fn cdf(stats: &[f32], points: usize) -> Vec<(f64, f64)> {
    let n = stats.len().max(1) as f64;
    (0..=points)
        .map(|i| {
            let x = i as f64 / points as f64;
            (
                x,
                stats.iter().filter(|&&s| s as f64 <= x).count() as f64 / n,
            )
        })
        .collect()
}

/// Patch `p` of a `gh × gw` grid over an `h × w` image: rows and columns `[r0, r1) × [c0, c1)`,
/// edges at `⌊i·S/n⌋` (fixtures README).
pub fn patch_bounds(
    p: usize,
    gh: usize,
    gw: usize,
    h: usize,
    w: usize,
) -> (usize, usize, usize, usize) {
    let (r, c) = (p / gw, p % gw);
    (r * h / gh, (r + 1) * h / gh, c * w / gw, (c + 1) * w / gw)
}

/// MoRF order of a map `[N, gh·gw]`: descending value, ties to the lower index.
pub fn morf_order(map: &[f32], n: usize) -> Vec<Vec<usize>> {
    let cells = map.len() / n.max(1);
    map.chunks(cells)
        .map(|m| {
            let mut idx: Vec<usize> = (0..cells).collect();
            idx.sort_by(|&a, &b| m[b].total_cmp(&m[a]).then(a.cmp(&b)));
            idx
        })
        .collect()
}

/// An independent random permutation of `cells` patches per image.
pub fn random_order(n: usize, cells: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = SplitMix::new(seed);
    (0..n)
        .map(|_| {
            let mut v: Vec<usize> = (0..cells).collect();
            for i in (1..cells).rev() {
                v.swap(i, rng.below(i + 1));
            }
            v
        })
        .collect()
}

/// AOPC scores (spec §7.5): `f(x^k)` = logit of the label after replacing the first `k`
/// patches of each image's `order` by the same pixels of `noise`, for `k = 0..=steps`.
///
/// # Shapes
/// `x`, `noise`: `[N, 3, H, W]`; returns `N` rows of `steps + 1` scores.
#[allow(clippy::too_many_arguments)]
pub fn aopc_scores(
    net: &Net,
    p: &ParamStore,
    x: &Tensor<4>,
    noise: &Tensor<4>,
    labels: &[usize],
    order: &[Vec<usize>],
    grid: (usize, usize),
    steps: usize,
) -> Result<Vec<Vec<f32>>> {
    let [n, c, h, w] = x.dims();
    if order.len() != n || labels.len() != n {
        return Err(FoolmapError::invalid(
            "AOPC",
            "one order and one label per image",
        ));
    }
    let mut mask = vec![0f32; n * h * w];
    let mut scores = vec![Vec::with_capacity(steps + 1); n];
    for k in 0..=steps {
        if k > 0 {
            for (i, o) in order.iter().enumerate() {
                let Some(&pch) = o.get(k - 1) else { continue };
                let (r0, r1, c0, c1) = patch_bounds(pch, grid.0, grid.1, h, w);
                for r in r0..r1 {
                    for cc in c0..c1 {
                        mask[i * h * w + r * w + cc] = 1.0;
                    }
                }
            }
        }
        let m = Tensor::<4>::from_data(TensorData::new(mask.clone(), [n, 1, h, w]), &x.device())
            .expand([n, c, h, w]);
        let xk = x
            .clone()
            .mul(m.clone().neg().add_scalar(1.0))
            .add(noise.clone().mul(m));
        let tr = net.seq.trace(p, xk);
        let l = crate::scores::read_back(logits(&tr))?;
        let kk = l.len() / n;
        for (i, &y) in labels.iter().enumerate() {
            scores[i].push(l[i * kk + y]);
        }
    }
    Ok(scores)
}

/// `AOPC_K = 1/(K+1) · Σ_{k=1..K} mean_i (f(x⁰) − f(xᵏ))` for `K = 0..=steps` (entry 0 = 0).
pub fn aopc_curve(scores: &[Vec<f32>]) -> Vec<f64> {
    let steps = scores.first().map_or(0, |s| s.len().saturating_sub(1));
    let n = scores.len().max(1) as f64;
    let mut acc = 0.0;
    (0..=steps)
        .map(|kk| {
            if kk > 0 {
                acc += scores.iter().map(|s| (s[0] - s[kk]) as f64).sum::<f64>() / n;
            }
            acc / (kk as f64 + 1.0)
        })
        .collect()
}

/// Pearson correlation (0 when either side is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation of two flattened maps (average ranks for ties).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let a: Vec<f64> = a.iter().map(|&x| x as f64).collect();
    let b: Vec<f64> = b.iter().map(|&x| x as f64).collect();
    pearson(&ranks(&a), &ranks(&b))
}

/// The official code's "rank_corr_sign" (spec §7.4): z-score |R| (unbiased std), keep `sign(R)`
/// where the z-score exceeds 1, then the Pearson correlation of the two ternary masks.
pub fn hot_region_correlation(a: &[f32], b: &[f32]) -> f64 {
    fn mask(r: &[f32]) -> Vec<f64> {
        let n = r.len() as f64;
        let abs: Vec<f64> = r.iter().map(|&x| (x as f64).abs()).collect();
        let mean = abs.iter().sum::<f64>() / n;
        let std = (abs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        r.iter()
            .zip(&abs)
            .map(|(&x, &ax)| {
                if std > 0.0 && (ax - mean) / std > 1.0 {
                    (x as f64).signum()
                } else {
                    0.0
                }
            })
            .collect()
    }
    pearson(&mask(a), &mask(b))
}

/// Running sums of the correlations of the four map pairs of active fooling (docs/method.md §6),
/// in [`ActiveCorrelations`]' order: the fooled model's c1 map against the original's c2 map,
/// its c2 map against the original's c1 (the swap: high when fooled), then c1 against c1 and c2
/// against c2 (the same class: high when not fooled). Used by `eval` and the in-run validator.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActiveSums {
    /// Per pair: (sum of hot-region correlations, sum of Spearman correlations).
    sums: [(f64, f64); 4],
    /// Composites added.
    pub images: usize,
}

impl ActiveSums {
    /// Adds `n` composites: `f1`, `f2` the fooled model's c1 / c2 maps, `o1`, `o2` the original's,
    /// each `[n, cells]` row-major. `spearman`: also sum the Spearman correlations.
    pub fn add(&mut self, [f1, f2, o1, o2]: [&[f32]; 4], n: usize, spearman: bool) {
        let cells = f1.len() / n.max(1);
        for (k, (a, b)) in [(f1, o2), (f2, o1), (f1, o1), (f2, o2)]
            .into_iter()
            .enumerate()
        {
            for i in 0..n {
                let (sa, sb) = (
                    &a[i * cells..(i + 1) * cells],
                    &b[i * cells..(i + 1) * cells],
                );
                self.sums[k].0 += hot_region_correlation(sa, sb);
                if spearman {
                    self.sums[k].1 += self::spearman(sa, sb);
                }
            }
        }
        self.images += n;
    }

    /// The mean correlations of the four pairs.
    pub fn correlations(&self) -> ActiveCorrelations {
        let n = self.images.max(1) as f64;
        let corr = |k: usize| Correlation {
            hot_region_correlation: self.sums[k].0 / n,
            spearman: self.sums[k].1 / n,
        };
        ActiveCorrelations {
            fooled_c1_original_c2: corr(0),
            fooled_c2_original_c1: corr(1),
            fooled_c1_original_c1: corr(2),
            fooled_c2_original_c2: corr(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_and_pearson_basics() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        let a = [0.0, 0.0, 5.0, 0.0, 0.1, 0.0, 0.0, 0.0];
        assert!((hot_region_correlation(&a, &a) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fsr_uses_direction() {
        let s = [0.05, 0.1, 0.2, 0.3];
        assert_eq!(fsr(FoolingType::Location, &s, 0.15), 0.5);
        assert_eq!(fsr(FoolingType::CenterMass, &s, 0.15), 0.5);
        let c = cdf(&s, 10);
        assert_eq!(c.last().map(|x| x.1), Some(1.0));
    }

    #[test]
    fn aopc_curve_formula() {
        let scores = vec![vec![5.0, 3.0, 1.0], vec![4.0, 4.0, 0.0]];
        let c = aopc_curve(&scores);
        // K=1: (2 + 0)/2 /2 = 0.5 ; K=2: (1 + (4 + 4)/2)/3 = (1 + 4)/3
        assert!(
            (c[1] - 0.5).abs() < 1e-12 && (c[2] - 5.0 / 3.0).abs() < 1e-12,
            "{c:?}"
        );
        let p = random_order(3, 10, 7);
        assert!(p.iter().all(|o| {
            let mut s = o.clone();
            s.sort();
            s == (0..10).collect::<Vec<_>>()
        }));
    }

    #[test]
    fn active_sums_average_per_image_and_see_a_perfect_swap() {
        let mut rng = SplitMix::new(4);
        let map =
            |rng: &mut SplitMix| -> Vec<f32> { (0..2 * 16).map(|_| rng.normal() as f32).collect() };
        let (o1, o2) = (map(&mut rng), map(&mut rng));
        // The fooled model shows c2's map for c1 and vice versa: a perfect swap.
        let mut s = ActiveSums::default();
        s.add([&o2, &o1, &o1, &o2], 2, true);
        let r = s.correlations();
        assert_eq!(s.images, 2);
        assert!((r.swap() - 1.0).abs() < 1e-12, "{r:?}");
        assert!((r.fooled_c1_original_c2.spearman - 1.0).abs() < 1e-12);
        // Means over images: each image's own correlation, averaged.
        let want = 0.5
            * (hot_region_correlation(&o2[..16], &o1[..16])
                + hot_region_correlation(&o2[16..], &o1[16..]));
        assert!((r.fooled_c1_original_c1.hot_region_correlation - want).abs() < 1e-12);
        // Without Spearman the Spearman means stay 0.
        let mut t = ActiveSums::default();
        t.add([&o2, &o1, &o1, &o2], 2, false);
        assert_eq!(t.correlations().fooled_c1_original_c2.spearman, 0.0);
        assert_eq!(t.correlations().swap(), r.swap());
    }
}
