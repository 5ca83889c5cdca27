//! Element-wise steps of the forward and backward passes on plain `f32` slices (NCHW), spread
//! over the rayon pool (`docs/method.md` §9): the per-channel affine map of an eval-mode
//! BatchNorm or a convolution's bias, the ReLU of one tensor or of a sum (a residual block's
//! `ReLU(b + s)`), the two fused (a BatchNorm followed by a ReLU, in one pass forward and one
//! backward), the gradient sweeps' ReLU masks, and the gradients of all of them.
//!
//! Burn's CPU backend runs every element-wise operation on the calling thread, one operation
//! (one pass) after the other, while the rayon pool waits: in a `perf` profile of the ResNet-20
//! batch-128 Grad-CAM fooling step a fifth of the CPU time was on the main thread alone
//! (BENCHMARKS.md, "Element-wise steps on the pool"). Here each step is one pass over its inputs,
//! blocks in parallel. Like Burn's, a step overwrites its first input when the caller owns that
//! buffer alone ([`First::Overwrite`]); otherwise it writes a new vector, each block copied from
//! the first input just before its step, while the block is in cache ([`First::Read`]).
//!
//! The values are Burn's, bit for bit: the same `f32` operations in the same order (`x·s + b`
//! without a fused multiply-add; a sum of two tensors rounded before the ReLU; a NaN passes a
//! ReLU and its gradient, as in Burn and PyTorch; a mask multiplies, so `NaN · 0` stays NaN).
//! Only the reductions of the affine map's parameter gradients sum in another order.

use super::cpu_wide::{Wide, wide};

/// Elements below which a call stays on the calling thread.
#[cfg(feature = "rayon")]
const PARALLEL_MIN: usize = 1 << 14;

/// Elements per task of the flat (plane-free) steps.
const BLOCK: usize = 1 << 13;

/// Lanes of the partial sums in [`affine_param_grads`] (one AVX-512 register of `f32`).
const LANES: usize = 16;

/// The first input of a step, whose place its output takes.
pub enum First<'a> {
    /// Shared with others: the step writes a new vector.
    Read(&'a [f32]),
    /// Owned by the caller alone: the step overwrites it.
    Overwrite(&'a mut [f32]),
}

/// One block of an element-wise step: `out` holds the step's first input from element `start`
/// on, and holds the output when `apply` returns. `apply` is inlined into [`wide`]'s copies.
trait Step: Sync {
    fn apply(&self, start: usize, out: &mut [f32]);
}

/// Runs `step` over consecutive blocks of `block_len` elements, blocks in parallel where the
/// input is large enough. Returns the new vector for [`First::Read`] (each block copied from
/// the input just before its step, while it is in cache), `None` after overwriting
/// [`First::Overwrite`].
fn run<S: Step>(first: First<'_>, block_len: usize, step: &S) -> Option<Vec<f32>> {
    let block_len = block_len.max(1);
    match first {
        First::Overwrite(buf) => {
            for_blocks(buf, block_len, |i, b| wide(Block(step, i * block_len, b)));
            None
        }
        First::Read(src) => {
            let len = src.len();
            let mut out = Vec::with_capacity(len);
            for_blocks(&mut out.spare_capacity_mut()[..len], block_len, |i, b| {
                let start = i * block_len;
                let from = &src[start..start + b.len()];
                // SAFETY: `from` and the block have the same length, and the block (new
                // memory) cannot overlap `src`; every element of the block is written here, and
                // `MaybeUninit<f32>` has the layout of `f32`.
                let b = unsafe {
                    std::ptr::copy_nonoverlapping(from.as_ptr(), b.as_mut_ptr().cast(), b.len());
                    &mut *(std::ptr::from_mut(b) as *mut [f32])
                };
                wide(Block(step, start, b));
            });
            // SAFETY: every block of the first `len` elements was written above.
            unsafe { out.set_len(len) };
            Some(out)
        }
    }
}

/// `f(i, block)` for the consecutive `block_len`-long blocks of `buf`, in parallel where `buf`
/// is large enough.
fn for_blocks<T: Send>(buf: &mut [T], block_len: usize, f: impl Fn(usize, &mut [T]) + Send + Sync) {
    #[cfg(feature = "rayon")]
    if buf.len() >= PARALLEL_MIN {
        use rayon::prelude::*;
        buf.par_chunks_mut(block_len)
            .enumerate()
            .for_each(|(i, b)| f(i, b));
        return;
    }
    for (i, b) in buf.chunks_mut(block_len).enumerate() {
        f(i, b);
    }
}

/// A step on one block.
struct Block<'a, S>(&'a S, usize, &'a mut [f32]);

impl<S: Step> Wide for Block<'_, S> {
    type Out = ();
    #[inline(always)]
    fn go(self) {
        self.0.apply(self.1, self.2);
    }
}

/// Planes per task for per-channel steps: whole planes, about [`BLOCK`] elements per task.
fn planes_per_task(plane: usize) -> usize {
    (BLOCK / plane.max(1)).max(1)
}

/// The per-channel affine map; blocks start at a plane.
struct Affine<'a> {
    c: usize,
    plane: usize,
    scale: Option<&'a [f32]>,
    shift: Option<&'a [f32]>,
}

impl Step for Affine<'_> {
    #[inline(always)]
    fn apply(&self, start: usize, out: &mut [f32]) {
        let first = start / self.plane;
        for (j, o) in out.chunks_mut(self.plane).enumerate() {
            let ch = (first + j) % self.c;
            match (self.scale.map(|s| s[ch]), self.shift.map(|b| b[ch])) {
                (Some(s), Some(b)) => o.iter_mut().for_each(|v| *v = *v * s + b),
                (Some(s), None) => o.iter_mut().for_each(|v| *v *= s),
                (None, Some(b)) => o.iter_mut().for_each(|v| *v += b),
                (None, None) => {}
            }
        }
    }
}

/// `y[n, c, :, :] = x[n, c, :, :] · scale[c] + shift[c]` (a missing scale is 1, a missing shift
/// 0, as if the operation were not there); `x` is the first input ([`run`] says what returns).
///
/// # Shapes
/// `x`: `[N, C, H, W]` flat with `c = C` and `plane = H·W`; `scale`, `shift`: `[C]`.
pub fn affine(
    x: First<'_>,
    c: usize,
    plane: usize,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
) -> Option<Vec<f32>> {
    let plane = plane.max(1);
    let step = Affine {
        c,
        plane,
        scale,
        shift,
    };
    run(x, planes_per_task(plane) * plane, &step)
}

/// `(dscale, dshift)` of [`affine_param_grads`], both `[C]`; no `dscale` without an input.
pub type ParamGrads = (Option<Vec<f32>>, Vec<f32>);

/// Per plane `p`: `(Σ g·x, Σ g)`, in lanes, each plane's total in `f64` (`Σ g·x` left at 0
/// without `x`).
struct PlaneSums<'a> {
    g: &'a [f32],
    x: Option<&'a [f32]>,
    plane: usize,
    p: usize,
}

impl Wide for PlaneSums<'_> {
    type Out = (f64, f64);
    #[inline(always)]
    fn go(self) -> (f64, f64) {
        let (plane, p) = (self.plane, self.p);
        let gp = &self.g[p * plane..][..plane];
        let (mut gx, mut gs) = ([0.0f32; LANES], [0.0f32; LANES]);
        let gc = gp.chunks_exact(LANES);
        let gr = gc.remainder();
        let mut tot = (0.0f64, 0.0f64);
        match self.x {
            Some(x) => {
                let xc = x[p * plane..][..plane].chunks_exact(LANES);
                let xr = xc.remainder();
                for (gl, xl) in gc.zip(xc) {
                    for k in 0..LANES {
                        gx[k] += gl[k] * xl[k];
                        gs[k] += gl[k];
                    }
                }
                for (&a, &b) in gr.iter().zip(xr) {
                    tot.0 += f64::from(a * b);
                }
            }
            None => {
                for gl in gc {
                    for k in 0..LANES {
                        gs[k] += gl[k];
                    }
                }
            }
        }
        tot.0 += gx.iter().map(|&v| f64::from(v)).sum::<f64>();
        tot.1 += gs.iter().map(|&v| f64::from(v)).sum::<f64>();
        tot.1 += gr.iter().map(|&a| f64::from(a)).sum::<f64>();
        tot
    }
}

/// The parameter gradients of [`affine`] for the output gradient `g`: `dscale[c] = Σ g·x`
/// (where the input `x` is given: an affine map with a scale) and `dshift[c] = Σ g` over images
/// and pixels. (The input's gradient `g · scale[c]` is [`affine`] of `g`.)
///
/// # Shapes
/// `g`, `x`: `[N, C, H, W]` flat; returns `([C], [C])`.
pub fn affine_param_grads(g: &[f32], x: Option<&[f32]>, c: usize, plane: usize) -> ParamGrads {
    let plane = plane.max(1);
    let sums = |p: usize| wide(PlaneSums { g, x, plane, p });
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
    let (ds, db) = channel_totals(per_plane, c);
    (x.is_some().then_some(ds), db)
}

/// Per channel, the sums of its planes' `(Σ g·x, Σ g)` (plane `p` is channel `p mod c`), in
/// `f64` in plane order, then rounded to `f32`.
fn channel_totals(per_plane: Vec<(f64, f64)>, c: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut ds, mut db) = (vec![0.0f64; c], vec![0.0f64; c]);
    for (p, (a, b)) in per_plane.into_iter().enumerate() {
        ds[p % c] += a;
        db[p % c] += b;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (f32s(ds), f32s(db))
}

/// One step, then another on the same block (in cache).
struct Then<A, B>(A, B);

impl<A: Step, B: Step> Step for Then<A, B> {
    #[inline(always)]
    fn apply(&self, start: usize, out: &mut [f32]) {
        self.0.apply(start, out);
        self.1.apply(start, out);
    }
}

/// `ReLU(x · scale[c] + shift[c])`: [`affine`] then [`relu_sum`] in one pass, the same values
/// bit for bit; `x` is the first input ([`run`] says what returns).
///
/// # Shapes
/// as [`affine`], with both parts given.
pub fn affine_relu(
    x: First<'_>,
    c: usize,
    plane: usize,
    scale: &[f32],
    shift: &[f32],
) -> Option<Vec<f32>> {
    let plane = plane.max(1);
    let affine = Affine {
        c,
        plane,
        scale: Some(scale),
        shift: Some(shift),
    };
    run(
        x,
        planes_per_task(plane) * plane,
        &Then(affine, ReluSum(&[])),
    )
}

/// One plane of [`affine_relu_grad`]: `g = dy` where `y` passes the ReLU (else 0), the sums
/// `(Σ g·x, Σ g)` as [`PlaneSums`] takes them (same lanes, same order), and `dy := g · s`.
struct PlaneGrad<'a> {
    dy: &'a mut [f32],
    y: &'a [f32],
    x: &'a [f32],
    s: f32,
}

impl Wide for PlaneGrad<'_> {
    type Out = (f64, f64);
    #[inline(always)]
    fn go(self) -> (f64, f64) {
        let s = self.s;
        let (mut gx, mut gs) = ([0.0f32; LANES], [0.0f32; LANES]);
        let mut dc = self.dy.chunks_exact_mut(LANES);
        let (yc, xc) = (self.y.chunks_exact(LANES), self.x.chunks_exact(LANES));
        let (yr, xr) = (yc.remainder(), xc.remainder());
        for ((dl, yl), xl) in (&mut dc).zip(yc).zip(xc) {
            for k in 0..LANES {
                let g = if passes(yl[k]) { dl[k] } else { 0.0 };
                gx[k] += g * xl[k];
                gs[k] += g;
                dl[k] = g * s;
            }
        }
        let mut tot = (0.0f64, 0.0f64);
        let dr = dc.into_remainder();
        let mut rest = 0.0f64;
        for ((d, &y), &x) in dr.iter_mut().zip(yr).zip(xr) {
            let g = if passes(y) { *d } else { 0.0 };
            tot.0 += f64::from(g * x);
            rest += f64::from(g);
            *d = g * s;
        }
        tot.0 += gx.iter().map(|&v| f64::from(v)).sum::<f64>();
        tot.1 += gs.iter().map(|&v| f64::from(v)).sum::<f64>();
        tot.1 += rest;
        tot
    }
}

/// The gradients of [`affine_relu`] for the output gradient `dy`, its output `y` and its input
/// `x`, in one pass: with `g = dy` where `y` passes the ReLU (else 0), `dscale[c] = Σ g·x`,
/// `dshift[c] = Σ g` (as [`affine_param_grads`] of `g`, bit for bit) and the input gradient
/// `g · scale[c]`, written over `dy` (a new vector when `dy` is shared, returned first).
///
/// # Shapes
/// `dy`, `y`, `x`: `[N, C, H, W]` flat with `c = C` and `plane = H·W`; `scale`: `[C]`;
/// returns `(input gradient if new, dscale [C], dshift [C])`.
pub fn affine_relu_grad(
    dy: First<'_>,
    y: &[f32],
    x: &[f32],
    c: usize,
    plane: usize,
    scale: &[f32],
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (mut new, dy) = match dy {
        First::Overwrite(buf) => (None, buf),
        First::Read(src) => (Some(src.to_vec()), &mut [][..]),
    };
    let dy: &mut [f32] = match &mut new {
        Some(v) => v,
        None => dy,
    };
    let plane = plane.max(1);
    let one = |p: usize, d: &mut [f32]| {
        let (y, x) = (&y[p * plane..][..d.len()], &x[p * plane..][..d.len()]);
        wide(PlaneGrad {
            dy: d,
            y,
            x,
            s: scale[p % c],
        })
    };
    #[cfg(feature = "rayon")]
    let per_plane: Vec<(f64, f64)> = if dy.len() >= PARALLEL_MIN {
        use rayon::prelude::*;
        dy.par_chunks_mut(plane)
            .enumerate()
            .with_min_len(planes_per_task(plane))
            .map(|(p, d)| one(p, d))
            .collect()
    } else {
        dy.chunks_mut(plane)
            .enumerate()
            .map(|(p, d)| one(p, d))
            .collect()
    };
    #[cfg(not(feature = "rayon"))]
    let per_plane: Vec<(f64, f64)> = dy
        .chunks_mut(plane)
        .enumerate()
        .map(|(p, d)| one(p, d))
        .collect();
    let (ds, db) = channel_totals(per_plane, c);
    (new, ds, db)
}

/// Whether a ReLU passes its input `t`: positive or NaN (Burn's and PyTorch's convention).
#[inline(always)]
fn passes(t: f32) -> bool {
    t.is_nan() || t > 0.0
}

/// `out[k] = f(out[k], t[start + k])` for the block at `start`, where `t` is the sum of the
/// parts (one part, or two added in `f32`). Branches once per block, not per element.
#[inline(always)]
fn with_sum(parts: &[&[f32]], start: usize, out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    match parts {
        [a] => {
            for (o, &t) in out.iter_mut().zip(&a[start..]) {
                *o = f(*o, t);
            }
        }
        [a, b] => {
            for ((o, &x), &y) in out.iter_mut().zip(&a[start..]).zip(&b[start..]) {
                *o = f(*o, x + y);
            }
        }
        _ => {
            for (k, o) in out.iter_mut().enumerate() {
                *o = f(*o, parts.iter().map(|p| p[start + k]).sum());
            }
        }
    }
}

/// `ReLU(first + Σ others)`.
struct ReluSum<'a>(&'a [&'a [f32]]);

impl Step for ReluSum<'_> {
    #[inline(always)]
    fn apply(&self, start: usize, out: &mut [f32]) {
        let relu = |t: f32| if passes(t) { t } else { 0.0 };
        if self.0.is_empty() {
            out.iter_mut().for_each(|v| *v = relu(*v));
        } else {
            with_sum(self.0, start, out, |a, t| relu(a + t));
        }
    }
}

/// `ReLU(a + Σ others)` element by element, `a` the first input ([`run`] says what returns);
/// `a + b` for one other part, as Burn adds a residual sum.
///
/// # Shapes
/// `a`, every other part and the result have the same length.
pub fn relu_sum(a: First<'_>, others: &[&[f32]]) -> Option<Vec<f32>> {
    run(a, BLOCK, &ReluSum(others))
}

/// The first input where `Σ parts` passes a ReLU, else 0.
struct ReluGrad<'a>(&'a [&'a [f32]]);

impl Step for ReluGrad<'_> {
    #[inline(always)]
    fn apply(&self, start: usize, out: &mut [f32]) {
        with_sum(self.0, start, out, |d, t| if passes(t) { d } else { 0.0 });
    }
}

/// The gradient of [`relu_sum`] for each part: `g` where `Σ parts` passes the ReLU, else 0
/// (`parts` may as well be the ReLU's output, which passes where its input does); `g` is the
/// first input ([`run`] says what returns).
pub fn relu_sum_grad(g: First<'_>, parts: &[&[f32]]) -> Option<Vec<f32>> {
    run(g, BLOCK, &ReluGrad(parts))
}

/// The first input times `[Σ parts > 0]`.
struct Mask<'a>(&'a [&'a [f32]]);

impl Step for Mask<'_> {
    #[inline(always)]
    fn apply(&self, start: usize, out: &mut [f32]) {
        with_sum(self.0, start, out, |d, t| {
            d * if t > 0.0 { 1.0 } else { 0.0 }
        });
    }
}

/// `r · [Σ parts > 0]`: the gradient sweeps' ReLU mask (the mask is `1.0` or `0.0` and
/// multiplies, so a NaN of `r` stays NaN, and a NaN of the sum masks); `r` is the first input
/// ([`run`] says what returns).
pub fn mask_positive(r: First<'_>, parts: &[&[f32]]) -> Option<Vec<f32>> {
    run(r, BLOCK, &Mask(parts))
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

    /// `step` on `first` both ways, a new vector and in place, equals `want` bit for bit.
    fn both_ways(
        first: &[f32],
        want: &[f32],
        what: &str,
        step: impl Fn(First<'_>) -> Option<Vec<f32>>,
    ) {
        let new = step(First::Read(first)).expect("a new vector for a shared input");
        same_bits(&new, want, &format!("{what} (new vector)"));
        let mut own = first.to_vec();
        assert!(
            step(First::Overwrite(&mut own)).is_none(),
            "{what}: no new vector in place"
        );
        same_bits(&own, want, &format!("{what} (in place)"));
    }

    #[test]
    fn affine_and_its_gradients_equal_the_plain_loops() {
        for (n, c, plane) in SHAPES {
            let len = n * c * plane;
            let (x, g) = (values(len, 1, Some(len / 2)), values(len, 2, None));
            let (s, b) = (values(c, 3, None), values(c, 4, None));
            let at = |i: usize| (i / plane) % c;
            let what = format!("[{n},{c},{plane}]");
            let want: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| v * s[at(i)] + b[at(i)])
                .collect();
            both_ways(&x, &want, &what, |f| {
                affine(f, c, plane, Some(&s), Some(&b))
            });
            let shift_only: Vec<f32> = x.iter().enumerate().map(|(i, &v)| v + b[at(i)]).collect();
            both_ways(&x, &shift_only, &format!("{what} shift"), |f| {
                affine(f, c, plane, None, Some(&b))
            });
            let want_dx: Vec<f32> = g.iter().enumerate().map(|(i, &v)| v * s[at(i)]).collect();
            both_ways(&g, &want_dx, &format!("{what} dx"), |f| {
                affine(f, c, plane, Some(&s), None)
            });
            let (ds, db) = affine_param_grads(&g, Some(&x), c, plane);
            let ds = ds.expect("a scale gradient with the input");
            let (none, db_alone) = affine_param_grads(&g, None, c, plane);
            assert!(
                none.is_none(),
                "{what}: no scale gradient without the input"
            );
            same_bits(&db_alone, &db, &format!("{what}: dshift alone"));
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
        }
    }

    /// The fused BatchNorm + ReLU step and its gradients equal the two steps one after the
    /// other, bit for bit (NaNs included).
    #[test]
    fn affine_relu_and_its_gradients_equal_the_two_steps() {
        for (n, c, plane) in SHAPES {
            let len = n * c * plane;
            let (x, dy) = (values(len, 8, Some(len / 3)), values(len, 9, Some(len - 1)));
            let (s, b) = (values(c, 10, None), values(c, 11, None));
            let what = format!("[{n},{c},{plane}]");
            let z = affine(First::Read(&x), c, plane, Some(&s), Some(&b)).expect("new");
            let y = relu_sum(First::Read(&z), &[]).expect("new");
            both_ways(&x, &y, &format!("{what} forward"), |f| {
                affine_relu(f, c, plane, &s, &b)
            });
            let g = relu_sum_grad(First::Read(&dy), &[&y]).expect("new");
            let (ds, db) = affine_param_grads(&g, Some(&x), c, plane);
            let dx = affine(First::Read(&g), c, plane, Some(&s), None).expect("new");
            let (new, ds2, db2) = affine_relu_grad(First::Read(&dy), &y, &x, c, plane, &s);
            same_bits(
                &new.expect("a new vector"),
                &dx,
                &format!("{what} dx (new vector)"),
            );
            same_bits(&ds2, &ds.expect("dscale"), &format!("{what} dscale"));
            same_bits(&db2, &db, &format!("{what} dshift"));
            let mut own = dy.clone();
            let (none, ..) = affine_relu_grad(First::Overwrite(&mut own), &y, &x, c, plane, &s);
            assert!(none.is_none(), "{what}: no new vector in place");
            same_bits(&own, &dx, &format!("{what} dx (in place)"));
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
            for two in [false, true] {
                let parts = if two {
                    vec![&a[..], &b[..]]
                } else {
                    vec![&a[..]]
                };
                let t: Vec<f32> = (0..len)
                    .map(|i| if two { a[i] + b[i] } else { a[i] })
                    .collect();
                let relu: Vec<f32> = t
                    .iter()
                    .map(|&v| if v.is_nan() || v > 0.0 { v } else { 0.0 })
                    .collect();
                let what = format!("{what}, two parts {two}");
                both_ways(&a, &relu, &format!("{what} relu"), |f| {
                    relu_sum(f, &parts[1..])
                });
                let grad: Vec<f32> = t
                    .iter()
                    .zip(&g)
                    .map(|(&v, &d)| if v.is_nan() || v > 0.0 { d } else { 0.0 })
                    .collect();
                both_ways(&g, &grad, &format!("{what} relu grad"), |f| {
                    relu_sum_grad(f, &parts)
                });
                both_ways(
                    &g,
                    &grad,
                    &format!("{what} relu grad from the output"),
                    |f| relu_sum_grad(f, &[&relu]),
                );
                let mask: Vec<f32> = t
                    .iter()
                    .zip(&g)
                    .map(|(&v, &d)| d * if v > 0.0 { 1.0 } else { 0.0 })
                    .collect();
                both_ways(&g, &mask, &format!("{what} mask"), |f| {
                    mask_positive(f, &parts)
                });
            }
        }
    }
}
