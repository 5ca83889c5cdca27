//! 2-D max pooling and its gradient on plain `f32` slices (NCHW), one plane per task on the
//! rayon pool (`docs/method.md` §9).
//!
//! Burn's CPU backend runs a 2-D max pool as a 3-D one, one window after the other with a branch
//! per element. At SqueezeNet's first pool (`[4, 96, 109²]`, 3×3, stride 2, ceil mode) its
//! forward with winners measured 25–53 ms on one thread, these loops 9–18 ms (BENCHMARKS.md,
//! "Max pooling"). They give the same values and winners: the window's first maximum, or its
//! last NaN (a NaN wins, as in PyTorch); a window with no input pixel gives `−∞` and winner `−1`,
//! which the gradient skips.

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
    // One output row at a time, each window element in window order (rows, then columns) for
    // all the row's outputs at once. The row's inputs for one window column are first copied
    // into `taps` (contiguous), so that the comparison loop runs over three plain slices with no
    // dependency between outputs and vectorises; a max over one window after the other measured
    // no faster than Burn's.
    // Each plane's outputs start as `−∞` with winner `−1`, set by the worker that pools it
    // ([`super::cpu_fill`]).
    let pool_plane = |p: usize,
                      y: &mut [MaybeUninit<f32>],
                      idx: &mut [MaybeUninit<i32>],
                      taps: &mut Vec<f32>| {
        let (y, idx) = (filled(y, f32::NEG_INFINITY), filled(idx, -1));
        let x = &x[p * plane_in..(p + 1) * plane_in];
        let wo = g.wo();
        taps.resize(wo, 0.0);
        for (oh, (yb, ib)) in y
            .chunks_exact_mut(wo)
            .zip(idx.chunks_exact_mut(wo))
            .enumerate()
        {
            let (r0, r1) = g.window(oh, g.h);
            for r in r0..r1 {
                let row = &x[r * g.w..(r + 1) * g.w];
                for kj in 0..g.k {
                    let (lo, hi) = g.valid_outputs(kj);
                    if lo >= hi {
                        continue;
                    }
                    // Output `lo + j` reads input column `c0 + j·stride`.
                    let c0 = lo * g.stride + kj - g.padding;
                    let taps = &mut taps[..hi - lo];
                    for (t, v) in taps.iter_mut().zip(row[c0..].chunks(g.stride)) {
                        *t = v[0];
                    }
                    let (at0, step) = ((r * g.w + c0) as i32, g.stride as i32);
                    let mut at = at0;
                    for ((&v, b), a) in taps.iter().zip(&mut yb[lo..hi]).zip(&mut ib[lo..hi]) {
                        // The window's first element, a larger one, or a NaN (the last NaN
                        // wins), as bit masks: unconditional stores, so that the loop
                        // vectorises even where the CPU has no masked stores.
                        let take = (*a < 0) | (v > *b) | v.is_nan();
                        let (mv, mi) = ((take as u32).wrapping_neg(), (take as i32).wrapping_neg());
                        *b = f32::from_bits((v.to_bits() & mv) | (b.to_bits() & !mv));
                        *a = (at & mi) | (*a & !mi);
                        at += step;
                    }
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
                        .for_each_init(Vec::new, |taps, (p, (y, idx))| pool_plane(p, y, idx, taps));
                }
                #[cfg(not(feature = "rayon"))]
                {
                    let mut taps = Vec::new();
                    for (p, (y, idx)) in y
                        .chunks_mut(plane_out.max(1))
                        .zip(idx.chunks_mut(plane_out.max(1)))
                        .enumerate()
                    {
                        pool_plane(p, y, idx, &mut taps);
                    }
                }
            })
        })
    };
    (y, idx)
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
