//! Intervals for reported figures (`docs/method.md` §7): a Student-t interval of a mean over
//! seeds, and a percentile bootstrap over images of paired per-image outcomes.

use crate::params::SplitMix;

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom (`df` ≥ 1; from 31 on the
/// normal 1.96 is used, within 2 % of the exact value).
pub fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        d if d <= 30 => T[d - 1],
        _ => 1.96,
    }
}

/// Mean and 95 % half-width (Student t, sample standard deviation) of `v`. With one value the
/// half-width is `NaN`: one seed gives no interval.
pub fn mean_t95(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, f64::NAN);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, t95(n - 1) * (var / n as f64).sqrt())
}

/// Percentile bootstrap over images: `resamples` draws of `n` image indices with replacement
/// (a seeded SplitMix stream, so the interval is reproducible), `f` evaluated on each draw; returns
/// the 2.5 % and 97.5 % quantiles (nearest rank). `n` = 0 gives `(NaN, NaN)`.
pub fn bootstrap95(
    n: usize,
    resamples: usize,
    seed: u64,
    mut f: impl FnMut(&[usize]) -> f64,
) -> (f64, f64) {
    if n == 0 || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SplitMix::new(seed);
    let mut idx = vec![0usize; n];
    let mut vals: Vec<f64> = (0..resamples)
        .map(|_| {
            for i in idx.iter_mut() {
                *i = rng.below(n);
            }
            f(&idx)
        })
        .collect();
    vals.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| vals[((q * resamples as f64).ceil() as usize).clamp(1, resamples) - 1];
    (at(0.025), at(0.975))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_a_hand_computation() {
        // mean 2, sample sd 1, n 3: 4.303 · 1/√3.
        let (m, h) = mean_t95(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12);
        assert!((h - 4.303 / 3f64.sqrt()).abs() < 1e-9, "{h}");
        assert!(mean_t95(&[0.5]).1.is_nan());
        assert!(mean_t95(&[]).0.is_nan());
        assert_eq!(t95(1000), 1.96);
    }

    #[test]
    fn bootstrap_of_a_proportion_covers_it_with_the_binomial_width() {
        // 300 of 1,000 images fooled: the interval holds 0.3 and its width is ≈ 2·1.96·√(pq/n).
        let x: Vec<f64> = (0..1000).map(|i| (i % 10 < 3) as u8 as f64).collect();
        let mean = |idx: &[usize]| idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
        let (lo, hi) = bootstrap95(x.len(), 2000, 7, mean);
        assert!(lo < 0.3 && 0.3 < hi, "{lo} {hi}");
        let w = 2.0 * 1.96 * (0.3f64 * 0.7 / 1000.0).sqrt();
        assert!(((hi - lo) - w).abs() < 0.25 * w, "{} vs {w}", hi - lo);
        // Same seed, same interval; a constant has a zero-width interval.
        assert_eq!(bootstrap95(x.len(), 2000, 7, mean), (lo, hi));
        assert_eq!(bootstrap95(5, 100, 1, |_| 4.0), (4.0, 4.0));
        assert!(bootstrap95(0, 100, 1, |_| 4.0).0.is_nan());
    }
}
