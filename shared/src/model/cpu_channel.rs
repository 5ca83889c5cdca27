//! Element-wise steps of the forward and backward passes on plain `f32` slices (NCHW), spread
//! over the rayon pool (`docs/method.md` §9): the per-channel affine map of an eval-mode
//! BatchNorm or a convolution's bias, the ReLU of one tensor or of a sum (a residual block's
//! `ReLU(b + s)`), the gradient sweeps' ReLU masks, and the gradients of all three.
//!
//! Burn's CPU backend runs every element-wise operation on the calling thread, one operation
//! (one pass, one new buffer) after the other, while the rayon pool waits: in a `perf` profile of
//! the ResNet-20 batch-128 Grad-CAM fooling step a fifth of the CPU time was on the main thread
//! alone (BENCHMARKS.md, "Element-wise steps on the pool"). Here each step is one pass over its
//! inputs, planes or blocks in parallel, and writes its output once (no zero fill first).
//!
//! The values are Burn's, bit for bit: the same `f32` operations in the same order (`x·s + b`
//! without a fused multiply-add; a sum of two tensors rounded before the ReLU; a NaN passes a
//! ReLU and its gradient, as in Burn and PyTorch; a mask multiplies, so `NaN · 0` stays NaN).
//! Only the reductions of the affine map's parameter gradients sum in another order.

use std::mem::MaybeUninit;

/// Elements below which a call stays on the calling thread.
#[cfg(feature = "rayon")]
const PARALLEL_MIN: usize = 1 << 14;

/// Elements per task of the flat (plane-free) steps.
const BLOCK: usize = 1 << 13;

/// Lanes of the partial sums in [`affine_grad`] (one AVX-512 register of `f32`).
const LANES: usize = 16;

/// A `len`-long vector written by `fill(start, block)` for consecutive blocks of `block_len`
/// elements (`start` = index of the block's first element), blocks in parallel where the vector
/// is large enough. `fill` must write every element of its block.
fn filled<F>(len: usize, block_len: usize, fill: F) -> Vec<f32>
where
    F: Fn(usize, &mut [MaybeUninit<f32>]) + Send + Sync,
{
    let mut out = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    let block_len = block_len.max(1);
    #[cfg(feature = "rayon")]
    if len >= PARALLEL_MIN {
        use rayon::prelude::*;
        spare
            .par_chunks_mut(block_len)
            .enumerate()
            .for_each(|(i, b)| fill(i * block_len, b));
        // SAFETY: every block of the first `len` elements was written by `fill`.
        unsafe { out.set_len(len) };
        return out;
    }
    for (i, b) in spare.chunks_mut(block_len).enumerate() {
        fill(i * block_len, b);
    }
    // SAFETY: as above, on this thread.
    unsafe { out.set_len(len) };
    out
}

/// Planes per task for per-channel steps: whole planes, about [`BLOCK`] elements per task.
fn planes_per_task(plane: usize) -> usize {
    (BLOCK / plane.max(1)).max(1)
}

/// `y[n, c, :, :] = x[n, c, :, :] · scale[c] + shift[c]` (a missing scale is 1, a missing shift
/// 0, as if the operation were not there).
///
/// # Shapes
/// `x`: `[N, C, H, W]` flat with `c = C` and `plane = H·W`; `scale`, `shift`: `[C]`.
pub fn affine(
    x: &[f32],
    c: usize,
    plane: usize,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
) -> Vec<f32> {
    let plane = plane.max(1);
    let block = planes_per_task(plane) * plane;
    filled(x.len(), block, |start, out| {
        let first = start / plane;
        for (j, (o, xs)) in out
            .chunks_mut(plane)
            .zip(x[start..].chunks(plane))
            .enumerate()
        {
            let ch = (first + j) % c;
            match (scale.map(|s| s[ch]), shift.map(|b| b[ch])) {
                (Some(s), Some(b)) => write(o, xs, |v| v * s + b),
                (Some(s), None) => write(o, xs, |v| v * s),
                (None, Some(b)) => write(o, xs, |v| v + b),
                (None, None) => write(o, xs, |v| v),
            }
        }
    })
}

/// `o[i] = f(x[i])` for every element of `o`.
#[inline(always)]
fn write(o: &mut [MaybeUninit<f32>], x: &[f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in o.iter_mut().zip(x) {
        o.write(f(v));
    }
}

/// `(dscale, dshift)` of [`affine_grad`], both `[C]`.
pub type ParamGrads = (Vec<f32>, Vec<f32>);

/// The gradients of [`affine`] for the output gradient `g`: `dx = g · scale[c]` (if `want_dx`),
/// `dscale[c] = Σ g·x` and `dshift[c] = Σ g` over images and pixels (if `want_params`).
///
/// # Shapes
/// `g`, `x`: `[N, C, H, W]` flat; `scale`: `[C]`; returns `([N, C, H, W], [C], [C])`.
pub fn affine_grad(
    g: &[f32],
    x: &[f32],
    c: usize,
    plane: usize,
    scale: Option<&[f32]>,
    want_dx: bool,
    want_params: bool,
) -> (Option<Vec<f32>>, Option<ParamGrads>) {
    let plane = plane.max(1);
    let dx = want_dx.then(|| match scale {
        Some(s) => affine(g, c, plane, Some(s), None),
        None => g.to_vec(),
    });
    let params = want_params.then(|| {
        // Per plane: (Σ g·x, Σ g), in lanes, each plane's total in f64.
        let sums = |p: usize| {
            let (gp, xp) = (&g[p * plane..][..plane], &x[p * plane..][..plane]);
            let (mut gx, mut gs) = ([0.0f32; LANES], [0.0f32; LANES]);
            let (gc, xc) = (gp.chunks_exact(LANES), xp.chunks_exact(LANES));
            let (gr, xr) = (gc.remainder(), xc.remainder());
            for (gl, xl) in gc.zip(xc) {
                for k in 0..LANES {
                    gx[k] += gl[k] * xl[k];
                    gs[k] += gl[k];
                }
            }
            let mut tot = (
                gx.iter().map(|&v| f64::from(v)).sum::<f64>(),
                gs.iter().map(|&v| f64::from(v)).sum::<f64>(),
            );
            for (&a, &b) in gr.iter().zip(xr) {
                tot.0 += f64::from(a * b);
                tot.1 += f64::from(a);
            }
            tot
        };
        let planes = g.len() / plane;
        #[cfg(feature = "rayon")]
        let per_plane: Vec<(f64, f64)> = if g.len() >= PARALLEL_MIN {
            use rayon::prelude::*;
            (0..planes)
                .into_par_iter()
                .with_min_len(planes_per_task(plane))
                .map(sums)
                .collect()
        } else {
            (0..planes).map(sums).collect()
        };
        #[cfg(not(feature = "rayon"))]
        let per_plane: Vec<(f64, f64)> = (0..planes).map(sums).collect();
        let (mut ds, mut db) = (vec![0.0f64; c], vec![0.0f64; c]);
        for (p, (a, b)) in per_plane.into_iter().enumerate() {
            ds[p % c] += a;
            db[p % c] += b;
        }
        (
            ds.into_iter().map(|v| v as f32).collect(),
            db.into_iter().map(|v| v as f32).collect(),
        )
    });
    (dx, params)
}

/// Whether a ReLU passes its input `t`: positive or NaN (Burn's and PyTorch's convention).
#[inline(always)]
fn passes(t: f32) -> bool {
    t.is_nan() || t > 0.0
}

/// `out[k] = f(t[start + k], other[start + k])` for the block at `start`, where `t` is the sum
/// of the parts (one part, or two added in `f32`). Branches once per block, not per element.
#[inline(always)]
fn with_sum(
    parts: &[&[f32]],
    other: &[f32],
    start: usize,
    out: &mut [MaybeUninit<f32>],
    f: impl Fn(f32, f32) -> f32,
) {
    let other = &other[start..];
    match parts {
        [a] => {
            for ((o, &t), &v) in out.iter_mut().zip(&a[start..]).zip(other) {
                o.write(f(t, v));
            }
        }
        [a, b] => {
            for (((o, &x), &y), &v) in out.iter_mut().zip(&a[start..]).zip(&b[start..]).zip(other) {
                o.write(f(x + y, v));
            }
        }
        _ => {
            for (k, (o, &v)) in out.iter_mut().zip(other).enumerate() {
                o.write(f(parts.iter().map(|p| p[start + k]).sum(), v));
            }
        }
    }
}

/// `ReLU(Σ parts)` element by element.
///
/// # Shapes
/// every part and the result have the same length.
pub fn relu_sum(parts: &[&[f32]]) -> Vec<f32> {
    let first = parts.first().copied().unwrap_or(&[]);
    filled(first.len(), BLOCK, |start, out| {
        with_sum(
            parts,
            first,
            start,
            out,
            |t, _| if passes(t) { t } else { 0.0 },
        )
    })
}

/// The gradient of [`relu_sum`] for each part: `g` where `Σ parts` passes the ReLU, else 0.
pub fn relu_sum_grad(g: &[f32], parts: &[&[f32]]) -> Vec<f32> {
    filled(g.len(), BLOCK, |start, out| {
        with_sum(parts, g, start, out, |t, d| if passes(t) { d } else { 0.0 })
    })
}

/// `r · [Σ parts > 0]`: the gradient sweeps' ReLU mask (the mask is `1.0` or `0.0` and
/// multiplies, so a NaN of `r` stays NaN, and a NaN of the sum masks).
pub fn mask_positive(r: &[f32], parts: &[&[f32]]) -> Vec<f32> {
    filled(r.len(), BLOCK, |start, out| {
        with_sum(parts, r, start, out, |t, d| {
            d * if t > 0.0 { 1.0 } else { 0.0 }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic sequence in [-2, 2) with exact zeros and, where asked, a NaN.
    fn values(len: usize, seed: u32, nan_at: Option<usize>) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if Some(i) == nan_at {
                    f32::NAN
                } else if s.is_multiple_of(7) {
                    0.0
                } else {
                    (s % 4096) as f32 / 1024.0 - 2.0
                }
            })
            .collect()
    }

    fn same_bits(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Shapes on both sides of the parallel threshold, planes of one pixel, a plane longer than
    /// a task's block, and a plane that is not a multiple of the lanes.
    const SHAPES: [(usize, usize, usize); 5] = [
        (2, 3, 5),
        (4, 16, 64),
        (3, 7, 1),
        (2, 2, 3 * BLOCK + 5),
        (64, 32, 17),
    ];

    #[test]
    fn affine_and_its_gradients_equal_the_plain_loops() {
        for (n, c, plane) in SHAPES {
            let len = n * c * plane;
            let (x, g) = (values(len, 1, Some(len / 2)), values(len, 2, None));
            let (s, b) = (values(c, 3, None), values(c, 4, None));
            let at = |i: usize| (i / plane) % c;
            let want: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| v * s[at(i)] + b[at(i)])
                .collect();
            let what = format!("[{n},{c},{plane}]");
            same_bits(&affine(&x, c, plane, Some(&s), Some(&b)), &want, &what);
            let shift_only: Vec<f32> = x.iter().enumerate().map(|(i, &v)| v + b[at(i)]).collect();
            same_bits(&affine(&x, c, plane, None, Some(&b)), &shift_only, &what);
            let (dx, params) = affine_grad(&g, &x, c, plane, Some(&s), true, true);
            let want_dx: Vec<f32> = g.iter().enumerate().map(|(i, &v)| v * s[at(i)]).collect();
            same_bits(&dx.expect("asked for"), &want_dx, &format!("{what} dx"));
            let (ds, db) = params.expect("asked for");
            for ch in 0..c {
                let (mut es, mut eb) = (0.0f64, 0.0f64);
                for i in (0..len).filter(|&i| at(i) == ch) {
                    es += f64::from(g[i]) * f64::from(x[i]);
                    eb += f64::from(g[i]);
                }
                let nan_here = at(len / 2) == ch;
                assert!(
                    (nan_here && ds[ch].is_nan())
                        || (f64::from(ds[ch]) - es).abs() <= 1e-5 * es.abs().max(1.0),
                    "{what}: dscale[{ch}] {} vs {es}",
                    ds[ch]
                );
                assert!(
                    (f64::from(db[ch]) - eb).abs() <= 1e-5 * eb.abs().max(1.0),
                    "{what}: dshift[{ch}] {} vs {eb}",
                    db[ch]
                );
            }
            let (none, none_p) = affine_grad(&g, &x, c, plane, Some(&s), false, false);
            assert!(
                none.is_none() && none_p.is_none(),
                "{what}: nothing asked for"
            );
        }
    }

    #[test]
    fn relu_of_a_sum_its_gradient_and_the_mask_equal_the_plain_loops() {
        for (n, c, plane) in SHAPES {
            let len = n * c * plane;
            let (a, b, g) = (
                values(len, 5, Some(1)),
                values(len, 6, Some(len - 1)),
                values(len, 7, Some(2)),
            );
            let what = format!("[{n},{c},{plane}]");
            for parts in [vec![a.as_slice()], vec![a.as_slice(), b.as_slice()]] {
                let t: Vec<f32> = match parts.as_slice() {
                    [p] => p.to_vec(),
                    _ => (0..len).map(|i| a[i] + b[i]).collect(),
                };
                let relu: Vec<f32> = t
                    .iter()
                    .map(|&v| if v.is_nan() || v > 0.0 { v } else { 0.0 })
                    .collect();
                same_bits(
                    &relu_sum(&parts),
                    &relu,
                    &format!("{what} relu, {} parts", parts.len()),
                );
                let grad: Vec<f32> = t
                    .iter()
                    .zip(&g)
                    .map(|(&v, &d)| if v.is_nan() || v > 0.0 { d } else { 0.0 })
                    .collect();
                same_bits(
                    &relu_sum_grad(&g, &parts),
                    &grad,
                    &format!("{what} relu grad"),
                );
                let mask: Vec<f32> = t
                    .iter()
                    .zip(&g)
                    .map(|(&v, &d)| d * if v > 0.0 { 1.0 } else { 0.0 })
                    .collect();
                same_bits(&mask_positive(&g, &parts), &mask, &format!("{what} mask"));
            }
        }
    }
}
