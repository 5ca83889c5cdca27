//! 2-D max pooling and its gradient on plain `f32` slices (NCHW), one plane per task on the
//! rayon pool (`docs/method.md` §9).
//!
//! Burn's CPU backend runs a 2-D max pool as a 3-D one, one window after the other with a branch
//! per element. At SqueezeNet's first pool (`[4, 96, 109²]`, 3×3, stride 2, ceil mode) its
//! forward with winners measured 25–53 ms on one thread, these loops 9–18 ms (BENCHMARKS.md,
//! "Max pooling"), and since session 30 they are separable: each row's maximum over the window's
//! columns, then the maximum of those over its rows. They give the same values and winners: the
//! window's first maximum, or its last NaN (a NaN wins, as in PyTorch); a window with no input
//! pixel gives `−∞` and winner `−1`, which the gradient skips.

use std::mem::MaybeUninit;

use super::cpu_fill::{build, filled};

/// The geometry of one max pool (square window, symmetric padding, no dilation).
///
/// # Shapes
/// input `[n, c, h, w]`, output and winners `[n, c, ho, wo]` (winners are flat indices into the
/// `h·w` input plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub ceil: bool,
}

impl PoolGeom {
    /// PyTorch's output size: floor or ceil of `(in + 2·padding − k) / stride` + 1, where in ceil
    /// mode a last window that would start in the trailing padding is dropped.
    fn out(&self, input: usize) -> usize {
        let padded = input + 2 * self.padding;
        if padded < self.k {
            return usize::from(self.ceil);
        }
        let num = padded - self.k;
        if self.ceil {
            let out = num.div_ceil(self.stride) + 1;
            if (out - 1) * self.stride >= input + self.padding {
                out - 1
            } else {
                out
            }
        } else {
            num / self.stride + 1
        }
    }
    pub fn ho(&self) -> usize {
        self.out(self.h)
    }
    pub fn wo(&self) -> usize {
        self.out(self.w)
    }
    /// For window column `kj`: the output columns `[lo, hi)` whose input column
    /// `ow·stride + kj − padding` lies inside the image.
    fn valid_outputs(&self, kj: usize) -> (usize, usize) {
        super::cpu_conv::valid_range(kj, self.padding, self.stride, self.w, self.wo())
    }
    /// The input positions `[lo, hi)` of window `o` along an axis of length `len`.
    fn window(&self, o: usize, len: usize) -> (usize, usize) {
        let start = (o * self.stride) as isize - self.padding as isize;
        let lo = start.max(0) as usize;
        let hi = ((start + self.k as isize).max(0) as usize).min(len);
        (lo.min(hi), hi)
    }
}

/// Max pool of `x` `[N, C, H, W]`: returns the output `[N, C, Ho, Wo]` and the winners (same
/// shape, flat indices into each `H·W` plane; a plane has fewer than 2³¹ pixels).
pub fn max_pool(g: &PoolGeom, x: &[f32]) -> (Vec<f32>, Vec<i32>) {
    let (plane_in, plane_out) = (g.h * g.w, g.ho() * g.wo());
    let len = g.n * g.c * plane_out;
    // Separable: first each input row's maximum over the window columns (`hmax`, with the
    // winning column in `hcol`), then each output row's maximum of those over the window rows.
    // Both keep the window's order (rows, then columns): the first maximum wins ties, the last
    // NaN wins, so the result is that of one window after the other. A row is first split into
    // its `stride` phases (`phases[q][j] = row[q + j·stride]`), so that every window column reads
    // one contiguous slice and every comparison loop runs over plain slices and vectorises. Each
    // input row is split and maximised once, where a window-by-window gather copied it up to
    // `k²/stride` times: at SqueezeNet's pools (3×3, stride 2) the pool took 9 % of a fooling
    // step's samples, the strided copies most of it (BENCHMARKS.md, "Session 30").
    // Each plane's outputs start as `−∞` with winner `−1`, set by the worker that pools it
    // ([`super::cpu_fill`]).
    let pool_plane = |p: usize,
                      y: &mut [MaybeUninit<f32>],
                      idx: &mut [MaybeUninit<i32>],
                      rows: &mut RowMaxima| {
        let (y, idx) = (filled(y, f32::NEG_INFINITY), filled(idx, -1));
        let x = &x[p * plane_in..(p + 1) * plane_in];
        rows.fill(g, x);
        let wo = g.wo();
        for (oh, (yb, ib)) in y
            .chunks_exact_mut(wo)
            .zip(idx.chunks_exact_mut(wo))
            .enumerate()
        {
            let (r0, r1) = g.window(oh, g.h);
            for r in r0..r1 {
                let (hm, hc) = rows.row(r, wo);
                let base = (r * g.w) as i32;
                for (((&v, &c), b), a) in hm.iter().zip(hc).zip(yb.iter_mut()).zip(ib.iter_mut()) {
                    // A row without an input pixel in the window keeps winner −1.
                    let at = if c < 0 { -1 } else { base + c };
                    take_if_better(v, at, b, a);
                }
            }
        }
    };
    let mut idx = Vec::new();
    // SAFETY: the planes cover both outputs, and `pool_plane` fills each of its two pieces.
    let y = unsafe {
        build(len, |y| {
            idx = build(len, |idx| {
                #[cfg(feature = "rayon")]
                {
                    use rayon::prelude::*;
                    y.par_chunks_mut(plane_out.max(1))
                        .zip(idx.par_chunks_mut(plane_out.max(1)))
                        .enumerate()
                        .for_each_init(RowMaxima::default, |rows, (p, (y, idx))| {
                            pool_plane(p, y, idx, rows)
                        });
                }
                #[cfg(not(feature = "rayon"))]
                {
                    let mut rows = RowMaxima::default();
                    for (p, (y, idx)) in y
                        .chunks_mut(plane_out.max(1))
                        .zip(idx.chunks_mut(plane_out.max(1)))
                        .enumerate()
                    {
                        pool_plane(p, y, idx, &mut rows);
                    }
                }
            })
        })
    };
    (y, idx)
}

/// `(b, a) = (v, at)` where `v` wins over the maximum so far `b` (winner `a`, `−1` before the
/// first element): the first element, a larger one, or a NaN (so the last NaN wins). As bit
/// masks, with unconditional stores, so that the loops calling it vectorise.
#[inline(always)]
fn take_if_better(v: f32, at: i32, b: &mut f32, a: &mut i32) {
    let take = (*a < 0) | (v > *b) | v.is_nan();
    let (mv, mi) = ((take as u32).wrapping_neg(), (take as i32).wrapping_neg());
    *b = f32::from_bits((v.to_bits() & mv) | (b.to_bits() & !mv));
    *a = (at & mi) | (*a & !mi);
}

/// Each input row's maximum over the window columns of every output column of one plane, and
/// the winning column (`−1` where the window has no column inside the image); a worker's scratch
/// of [`max_pool`].
#[derive(Default)]
struct RowMaxima {
    /// One row split into its `stride` phases, one after the other.
    phases: Vec<f32>,
    /// `[H, Wo]` maxima.
    max: Vec<f32>,
    /// `[H, Wo]` winning columns.
    col: Vec<i32>,
}

impl RowMaxima {
    /// The maxima of every row of the plane `x` (`[H, W]`).
    fn fill(&mut self, g: &PoolGeom, x: &[f32]) {
        let (wo, s) = (g.wo(), g.stride.max(1));
        self.phases.resize(g.w, 0.0);
        self.max.clear();
        self.max.resize(g.h * wo, f32::NEG_INFINITY);
        self.col.clear();
        self.col.resize(g.h * wo, -1);
        // Phase `e` holds `⌈(W − e) / s⌉` values; phase `q` starts after those of the phases
        // before it.
        let start = |q: usize| {
            (0..q)
                .map(|e| g.w.saturating_sub(e).div_ceil(s))
                .sum::<usize>()
        };
        let starts: Vec<usize> = (0..s).map(start).collect();
        for (r, row) in x.chunks_exact(g.w.max(1)).enumerate().take(g.h) {
            for (q, &at) in starts.iter().enumerate() {
                let n = g.w.saturating_sub(q).div_ceil(s);
                for (d, v) in self.phases[at..at + n]
                    .iter_mut()
                    .zip(row[q.min(g.w)..].iter().step_by(s))
                {
                    *d = *v;
                }
            }
            let (hm, hc) = (
                &mut self.max[r * wo..(r + 1) * wo],
                &mut self.col[r * wo..(r + 1) * wo],
            );
            for kj in 0..g.k {
                let (lo, hi) = g.valid_outputs(kj);
                if lo >= hi {
                    continue;
                }
                // Output `ow` reads column `ow·s + t` = `(ow + o)·s + q`: phase `q`, entry `ow + o`.
                let t = kj as isize - g.padding as isize;
                let (q, o) = (t.rem_euclid(s as isize) as usize, t.div_euclid(s as isize));
                let first = (starts[q] as isize + lo as isize + o) as usize;
                let src = &self.phases[first..first + (hi - lo)];
                let mut at = (lo as isize * s as isize + t) as i32;
                for ((&v, b), a) in src.iter().zip(&mut hm[lo..hi]).zip(&mut hc[lo..hi]) {
                    take_if_better(v, at, b, a);
                    at += s as i32;
                }
            }
        }
    }

    /// Row `r`'s maxima and winning columns, `wo` long.
    fn row(&self, r: usize, wo: usize) -> (&[f32], &[i32]) {
        (
            &self.max[r * wo..(r + 1) * wo],
            &self.col[r * wo..(r + 1) * wo],
        )
    }
}

/// The gradient of [`max_pool`]: `dy` `[N, C, Ho, Wo]` added onto the winners `idx`; returns
/// `[N, C, H, W]`. A winner that lies outside the plane (`−1` of an empty window) is skipped.
pub fn max_pool_grad(g: &PoolGeom, dy: &[f32], idx: &[i32]) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.ho() * g.wo());
    // Each plane is zeroed by the worker that scatters onto it ([`super::cpu_fill`]).
    let scatter = |p: usize, dx: &mut [MaybeUninit<f32>]| {
        let dx = filled(dx, 0.0);
        let range = p * plane_out..(p + 1) * plane_out;
        for (&i, &d) in idx[range.clone()].iter().zip(&dy[range]) {
            if let Some(v) = usize::try_from(i).ok().and_then(|i| dx.get_mut(i)) {
                *v += d;
            }
        }
    };
    // SAFETY: the planes cover the output, and `scatter` fills each.
    unsafe {
        build(g.n * g.c * plane_in, |dx| {
            #[cfg(feature = "rayon")]
            {
                use rayon::prelude::*;
                dx.par_chunks_mut(plane_in.max(1))
                    .enumerate()
                    .for_each(|(p, dx)| scatter(p, dx));
            }
            #[cfg(not(feature = "rayon"))]
            for (p, dx) in dx.chunks_mut(plane_in.max(1)).enumerate() {
                scatter(p, dx);
            }
        })
    }
}
