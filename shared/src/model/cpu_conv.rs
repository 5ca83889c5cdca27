//! A 2-D convolution and its two gradients on plain `f32` slices (NCHW, one group, no dilation),
//! as im2col + one matrix product per image (`docs/method.md` §9).
//!
//! For image `n`, `col[n]` is the `[Cin·kh·kw, Ho·Wo]` matrix of input patches (zero outside the
//! padded input). Then, with `W` viewed as `[Cout, Cin·kh·kw]`:
//!
//! - forward: `y[n] = W · col[n]`                         (`[Cout, Ho·Wo]`);
//! - input gradient: `dx[n] = col2im(Wᵀ · dy[n])`          (`[Cin, H·W]`, patches summed back);
//! - weight gradient: `dW = Σₙ dy[n] · col[n]ᵀ`             (`[Cout, Cin·kh·kw]`).
//!
//! Images run in parallel on the rayon pool (feature `rayon`), each with its own patch buffer;
//! the weight gradient sums one partial per worker, and each worker initialises its own images'
//! outputs (written by the product, or zeroed just before a sum onto them). Patches are rebuilt
//! in the backward pass instead of stored (they are `kh·kw` times the input). Three geometries
//! build no patch matrix at all: a pointwise convolution (1×1, stride 1, no padding), whose image
//! `[Cin, H·W]` already is its patch matrix (see [`ConvGeom::in_place`]); a 3×3 convolution of
//! stride 1 or 2 with padding 1 and at most 64 channels on a CPU with AVX-512 (see [`direct`]; a
//! stride-2 one's input gradient excepted); and a stride-1 "same" convolution on a large plane
//! (see [`shifted`]).

// AVX-512 only: elsewhere `ConvGeom::direct` is false and nothing reads its packed kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod direct;
mod shifted;

use std::mem::MaybeUninit;

use direct::Direct;

use super::cpu_fill::{build, filled};
use super::cpu_wide::{Wide, wide};

/// The geometry of one convolution.
///
/// # Shapes
/// input `[n, cin, h, w]`, weight `[cout, cin, kh, kw]`, output `[n, cout, ho, wo]` with
/// `ho = (h + 2·padding − kh) / stride + 1` (same for `wo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeom {
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }
    /// Rows of a patch matrix: `Cin·kh·kw`.
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    /// Columns of a patch matrix: `Ho·Wo`.
    fn p(&self) -> usize {
        self.ho() * self.wo()
    }
    /// Row stride of a patch matrix built by [`im2col`]: `Ho·Wo`, plus 16 floats where `Ho·Wo` is
    /// a multiple of 256. Rows a multiple of 1 KiB apart map to the same few cache sets, and the
    /// weight gradient's GEMM reads `colᵀ`, i.e. `col` down its columns: at ResNet-20's 32² stage
    /// (4 KiB rows) that read measured 5–7× slower than the forward GEMM of the same size.
    fn ld(&self) -> usize {
        let p = self.p();
        if p.is_multiple_of(256) { p + 16 } else { p }
    }
    /// A pointwise convolution (1×1 kernel, stride 1, no padding) whose image `[Cin, H·W]` is
    /// its own patch matrix ([`ConvGeom::ld`] = `H·W`): the GEMMs read the image in place, and
    /// the input gradient `Wᵀ · dy` needs no [`col2im`]. SqueezeNet's squeeze and expand-1×1
    /// layers and its classifier are such layers.
    pub(super) fn in_place(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == 1
            && self.padding == 0
            && self.ld() == self.p()
    }
    fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.cout * self.p()
    }
    /// For kernel column `kj`: the output columns `[lo, hi)` whose input column
    /// `ow·stride + kj − padding` lies inside the image.
    fn valid_cols(&self, kj: usize) -> (usize, usize) {
        valid_range(kj, self.padding, self.stride, self.w, self.wo())
    }
    /// For kernel row `ki`: the output rows `[lo, hi)` whose input row lies inside the image.
    fn valid_rows(&self, ki: usize) -> (usize, usize) {
        valid_range(ki, self.padding, self.stride, self.h, self.ho())
    }
    /// Stride 1 and `Wo = W` ("same" width, e.g. 3×3 with padding 1): a patch row is then the
    /// input plane shifted by one flat offset, except for the `padding` columns at each edge.
    fn flat_shift(&self) -> bool {
        self.stride == 1 && self.wo() == self.w
    }
    /// A [`ConvGeom::flat_shift`] geometry with at least [`shifted::SHIFTED_MIN_PIXELS`] output
    /// pixels per plane: it runs without a patch matrix ([`shifted`]). A pointwise convolution
    /// that reads its image in place ([`ConvGeom::in_place`]) is not one.
    pub(super) fn shifted(&self) -> bool {
        self.flat_shift() && self.p() >= shifted::SHIFTED_MIN_PIXELS && !self.in_place()
    }
    /// Scratch floats per image for [`patches`].
    fn patch_len(&self) -> usize {
        if self.in_place() || self.direct_dx() {
            0
        } else if self.direct() {
            self.phases_len()
        } else if self.shifted() {
            self.planes_len()
        } else {
            self.k() * self.ld()
        }
    }
    /// Scratch floats per image for [`weight_grad`]: [`ConvGeom::direct_weight_len`] for a
    /// [`ConvGeom::direct`] geometry, else those of its [`patches`].
    fn weight_grad_len(&self) -> usize {
        if self.direct() {
            self.direct_weight_len()
        } else {
            self.patch_len()
        }
    }
    /// Scratch floats per image for [`input_grad`]: its patch matrix before [`col2im`], or what
    /// [`shifted::input_grad`] needs.
    fn input_grad_len(&self) -> usize {
        if self.in_place() || self.direct_dx() {
            0
        } else if self.shifted() {
            self.shifted_input_grad_len()
        } else {
            self.k() * self.p()
        }
    }
}

/// One kernel tap `(ki, kj)` of a [`ConvGeom::flat_shift`] geometry: `patch[q] = plane[q + d]`
/// (`q = oh·W + ow`) for `q` in `[lo, hi)`, the positions whose rows lie inside the image and
/// whose `q + d` lies inside the plane; elsewhere, and at the edge columns outside `cols` of the
/// rows `rows`, the patch is zero. Computed once per call for all taps: the integer divisions
/// behind these ranges, done per channel and tap, measured 9 % of a ResNet-20 fooling step.
#[derive(Clone, Copy, Debug)]
struct FlatTap {
    d: isize,
    lo: usize,
    hi: usize,
    rows: (usize, usize),
    cols: (usize, usize),
}

/// The [`FlatTap`]s of a [`ConvGeom::flat_shift`] geometry, `kh·kw` of them in `(ki, kj)` order.
fn flat_taps(g: &ConvGeom) -> Vec<FlatTap> {
    let (w, hw) = (g.w as isize, (g.h * g.w) as isize);
    let mut taps = Vec::with_capacity(g.kh * g.kw);
    for ki in 0..g.kh {
        let rows = g.valid_rows(ki);
        let (q0, q1) = ((rows.0 * g.w) as isize, (rows.1 * g.w) as isize);
        for kj in 0..g.kw {
            let d = (ki as isize - g.padding as isize) * w + kj as isize - g.padding as isize;
            let lo = q0.max(-d).min(q1);
            let hi = q1.min(hw - d).max(lo);
            taps.push(FlatTap {
                d,
                lo: lo as usize,
                hi: hi as usize,
                rows,
                cols: g.valid_cols(kj),
            });
        }
    }
    taps
}

/// [`im2col`] for one [`FlatTap`]: one copy of the shifted plane into `dst` (`Ho·Wo` long), then
/// zeros where the patch leaves the image.
#[inline(always)]
fn im2col_flat(t: &FlatTap, w: usize, plane: &[f32], dst: &mut [f32]) {
    dst[..t.lo].fill(0.0);
    dst[t.hi..].fill(0.0);
    if t.hi > t.lo {
        let s0 = (t.lo as isize + t.d) as usize;
        dst[t.lo..t.hi].copy_from_slice(&plane[s0..s0 + (t.hi - t.lo)]);
    }
    zero_edge_columns(t, w, dst);
}

/// Zeros the edge columns (outside `t.cols`) of the rows `t.rows` of one patch row `dst`
/// (`Ho·Wo`, rows `w` long), down each column.
#[inline(always)]
fn zero_edge_columns(t: &FlatTap, w: usize, dst: &mut [f32]) {
    let rows = &mut dst[t.rows.0 * w..t.rows.1 * w];
    for c in (0..t.cols.0).chain(t.cols.1..w) {
        for v in rows.iter_mut().skip(c).step_by(w) {
            *v = 0.0;
        }
    }
}

/// [`col2im`] for one [`FlatTap`]: `src` (`Ho·Wo`) with its edge columns zeroed (they fall
/// outside the image), then added onto the plane at one offset.
#[inline(always)]
fn col2im_flat(t: &FlatTap, w: usize, src: &mut [f32], plane: &mut [f32]) {
    if t.hi == t.lo {
        return;
    }
    zero_edge_columns(t, w, src);
    let s0 = (t.lo as isize + t.d) as usize;
    for (o, v) in plane[s0..s0 + (t.hi - t.lo)]
        .iter_mut()
        .zip(&src[t.lo..t.hi])
    {
        *o += *v;
    }
}

/// Along one axis (input length `len`, `out` outputs): the outputs `[lo, hi)` whose input
/// position `o·stride + tap − padding` lies inside `[0, len)`, for window offset `tap`.
pub(super) fn valid_range(
    tap: usize,
    padding: usize,
    stride: usize,
    len: usize,
    out: usize,
) -> (usize, usize) {
    let lo = padding.saturating_sub(tap).div_ceil(stride);
    let hi = if len + padding > tap {
        ((len + padding - tap - 1) / stride + 1).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// What [`im2col`] and [`col2im`] need per kernel tap, computed once per call (integer
/// divisions): the [`FlatTap`]s of a [`ConvGeom::flat_shift`] geometry, else each kernel
/// column's valid output columns.
fn taps(g: &ConvGeom) -> (Option<Vec<FlatTap>>, Vec<(usize, usize)>) {
    if g.flat_shift() {
        (Some(flat_taps(g)), Vec::new())
    } else {
        (None, (0..g.kw).map(|kj| g.valid_cols(kj)).collect())
    }
}

/// The patches of one image `x` (`[Cin, H, W]`): `x` itself where [`ConvGeom::in_place`] or a
/// stride-1 [`ConvGeom::direct`] geometry, else written into `buf` ([`ConvGeom::patch_len`]
/// floats): the stride phases of [`direct::phases`] for a stride-2 direct one, the shifted planes
/// of [`shifted::planes`] where [`ConvGeom::shifted`], else the patch matrix of [`im2col`].
fn patches<'a>(g: &ConvGeom, x: &'a [f32], buf: &'a mut [f32]) -> &'a [f32] {
    if g.in_place() || g.direct_dx() {
        return x;
    }
    if g.direct() {
        direct::phases(g, x, buf);
    } else if g.shifted() {
        shifted::planes(g, x, buf);
    } else {
        wide(Im2Col(g, x, buf));
    }
    buf
}

/// [`im2col`] as one [`Wide`] piece of work.
struct Im2Col<'a>(&'a ConvGeom, &'a [f32], &'a mut [f32]);

impl Wide for Im2Col<'_> {
    type Out = ();
    #[inline(always)]
    fn go(self) {
        im2col(self.0, self.1, self.2);
    }
}

/// [`col2im`] as one [`Wide`] piece of work.
struct Col2Im<'a>(&'a ConvGeom, &'a mut [f32], &'a mut [f32]);

impl Wide for Col2Im<'_> {
    type Out = ();
    #[inline(always)]
    fn go(self) {
        col2im(self.0, self.1, self.2);
    }
}

/// Fills `col` (`[Cin·kh·kw, Ho·Wo]`, rows [`ConvGeom::ld`] apart) with the patches of one
/// image `x` (`[Cin, H, W]`).
#[inline(always)]
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let (ho, wo, ld, p) = (g.ho(), g.wo(), g.ld(), g.p());
    let (flat, cols) = taps(g);
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = ((ci * g.kh + ki) * g.kw + kj) * ld;
                if let Some(taps) = &flat {
                    let t = &taps[ki * g.kw + kj];
                    im2col_flat(t, g.w, plane, &mut col[row..row + p]);
                    continue;
                }
                let (lo, hi) = cols[kj];
                for oh in 0..ho {
                    let dst = &mut col[row + oh * wo..row + (oh + 1) * wo];
                    let ih = (oh * g.stride + ki) as isize - g.padding as isize;
                    if ih < 0 || ih as usize >= g.h || lo >= hi {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[ih as usize * g.w..(ih as usize + 1) * g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    let iw0 = lo * g.stride + kj - g.padding;
                    if g.stride == 1 {
                        dst[lo..hi].copy_from_slice(&src[iw0..iw0 + (hi - lo)]);
                    } else {
                        for (o, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[iw0 + o * g.stride];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the patches `col` (`[Cin·kh·kw, Ho·Wo]`) back onto one image `dx` (`[Cin, H, W]`),
/// which must start at zero. Entries of `col` that fall outside the image may be overwritten.
#[inline(always)]
fn col2im(g: &ConvGeom, col: &mut [f32], dx: &mut [f32]) {
    let (ho, wo, p) = (g.ho(), g.wo(), g.p());
    let (flat, cols) = taps(g);
    for ci in 0..g.cin {
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = ((ci * g.kh + ki) * g.kw + kj) * p;
                if let Some(taps) = &flat {
                    let t = &taps[ki * g.kw + kj];
                    col2im_flat(t, g.w, &mut col[row..row + p], plane);
                    continue;
                }
                let (lo, hi) = cols[kj];
                if lo >= hi {
                    continue;
                }
                for oh in 0..ho {
                    let ih = (oh * g.stride + ki) as isize - g.padding as isize;
                    if ih < 0 || ih as usize >= g.h {
                        continue;
                    }
                    let src = &col[row + oh * wo + lo..row + oh * wo + hi];
                    let iw0 = lo * g.stride + kj - g.padding;
                    let dst = &mut plane[ih as usize * g.w..(ih as usize + 1) * g.w];
                    if g.stride == 1 {
                        for (d, s) in dst[iw0..iw0 + (hi - lo)].iter_mut().zip(src) {
                            *d += *s;
                        }
                    } else {
                        for (o, s) in src.iter().enumerate() {
                            dst[iw0 + o * g.stride] += *s;
                        }
                    }
                }
            }
        }
    }
}

/// A matrix inside a slice: element `(r, c)` at `offset + r·rs + c·cs`.
#[derive(Clone, Copy, Debug)]
struct Mat {
    offset: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    /// A row-major matrix with `cols` columns, from the slice's start.
    fn rows(cols: usize) -> Mat {
        Mat::at(0, cols, 1)
    }
    fn at(offset: usize, rs: usize, cs: usize) -> Mat {
        Mat { offset, rs, cs }
    }
    /// Whether a `rows × cols` matrix with these strides lies inside a slice of `len` elements
    /// (an empty one: whether its offset does).
    fn fits(&self, rows: usize, cols: usize, len: usize) -> bool {
        if rows == 0 || cols == 0 {
            return self.offset <= len;
        }
        self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs < len
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, every matrix a [`Mat`] inside its slice.
///
/// # Panics
/// If a matrix does not lie inside its slice (a bug of the caller's strides).
#[allow(clippy::too_many_arguments)]
fn gemm(
    dims: (usize, usize, usize),
    dst: &mut [f32],
    d: Mat,
    accumulate: bool,
    lhs: &[f32],
    l: Mat,
    rhs: &[f32],
    r: Mat,
    par: gemm::Parallelism,
) {
    let dst = (dst.as_mut_ptr(), dst.len());
    // SAFETY: `dst` is an initialised slice borrowed mutably: valid to read and write, and it
    // aliases neither operand.
    unsafe { gemm_raw(dims, dst, d, accumulate, (lhs, l), (rhs, r), par) }
}

/// `dst = lhs (m×k) · rhs (k×n)` into new memory: `dst` is exactly the row-major `m×n` result,
/// which the product writes without reading it; returns it initialised. Saves zeroing an output
/// that the product overwrites anyway.
///
/// # Panics
/// If `dst` is not `m·n` long, or an operand does not lie inside its slice.
fn gemm_new<'a>(
    (m, n, k): (usize, usize, usize),
    dst: &'a mut [MaybeUninit<f32>],
    lhs: (&[f32], Mat),
    rhs: (&[f32], Mat),
    par: gemm::Parallelism,
) -> &'a mut [f32] {
    assert_eq!(
        dst.len(),
        m * n,
        "GEMM output of {m}×{n} in {} floats",
        dst.len()
    );
    let raw = (dst.as_mut_ptr().cast::<f32>(), dst.len());
    // SAFETY: `dst` is borrowed mutably (aliasing neither operand) and not read (no
    // accumulation); the row-major `m×n` result covers all `m·n` of its elements, so every one
    // is written before the slice is viewed as initialised (`MaybeUninit<f32>` has `f32`'s
    // layout).
    unsafe {
        gemm_raw((m, n, k), raw, Mat::rows(n), false, lhs, rhs, par);
        &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

/// [`gemm()`] on a destination given as a pointer and a length.
///
/// # Safety
/// `dst` must point to `len` floats valid for writes, and for reads where `accumulate`, that
/// nothing else accesses during the call.
///
/// # Panics
/// If a matrix does not lie inside its buffer.
unsafe fn gemm_raw(
    (m, n, k): (usize, usize, usize),
    (dst, len): (*mut f32, usize),
    d: Mat,
    accumulate: bool,
    (lhs, l): (&[f32], Mat),
    (rhs, r): (&[f32], Mat),
    par: gemm::Parallelism,
) {
    assert!(
        d.fits(m, n, len) && l.fits(m, k, lhs.len()) && r.fits(k, n, rhs.len()),
        "GEMM operands outside their buffers: {m}×{n}×{k}, {d:?} {l:?} {r:?}"
    );
    // SAFETY: the assertion keeps every element the GEMM reads or writes inside its buffer; the
    // caller vouches for `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.add(d.offset),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr().add(l.offset),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr().add(r.offset),
            r.cs as isize,
            r.rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// How the images of a batch share the threads: contiguous runs of images, one per worker, when
/// there are at least as many images as threads (each GEMM single-threaded), else one image after
/// the other with multi-threaded GEMMs.
#[cfg(feature = "rayon")]
fn split(n: usize) -> (bool, gemm::Parallelism) {
    if n >= rayon::current_num_threads() {
        (true, gemm::Parallelism::None)
    } else {
        (false, gemm::Parallelism::Rayon(0))
    }
}

/// Without rayon: one image after the other.
#[cfg(not(feature = "rayon"))]
fn split(_n: usize) -> (bool, gemm::Parallelism) {
    (false, gemm::Parallelism::None)
}

/// The images each worker takes: `n` split into as many contiguous runs as there are threads.
#[cfg(feature = "rayon")]
fn runs(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// A new `len`-long output computed by `f(image, out_chunk, scratch, gemm_parallelism)` for every
/// image, the images in parallel where [`split`] says so: one contiguous run of images and one
/// scratch buffer per worker. `f` gets its image's chunk uninitialised and must initialise all of
/// it: by a product that writes it ([`gemm_new`]), or by zeroing it first ([`filled`]), in the
/// worker, in cache ([`super::cpu_fill`]).
fn per_image<F>(n: usize, len: usize, scratch_len: usize, f: F) -> Vec<f32>
where
    F: Fn(usize, &mut [MaybeUninit<f32>], &mut Vec<f32>, gemm::Parallelism) + Send + Sync,
{
    let chunk = (len / n.max(1)).max(1);
    let (images_parallel, par) = split(n);
    let run = |first: usize, images: &mut [MaybeUninit<f32>]| {
        let mut scratch = vec![0.0f32; scratch_len];
        for (j, o) in images.chunks_mut(chunk).enumerate() {
            f(first + j, o, &mut scratch, par);
        }
    };
    // SAFETY: the runs cover the storage, and `f` initialises each chunk (its contract above).
    unsafe {
        build(len, |spare| {
            #[cfg(feature = "rayon")]
            if images_parallel {
                use rayon::prelude::*;
                let per = runs(n);
                return spare
                    .par_chunks_mut(chunk * per)
                    .enumerate()
                    .for_each(|(r, images)| run(r * per, images));
            }
            let _ = images_parallel;
            run(0, spare);
        })
    }
}

/// Sums `f(image, partial, scratch, gemm_parallelism)` over the images into one `len`-long
/// vector: one contiguous run of images, one partial and one scratch buffer per worker, the
/// partials added at the end.
fn sum_over_images<F>(n: usize, len: usize, scratch_len: usize, f: F) -> Vec<f32>
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>, gemm::Parallelism) + Send + Sync,
{
    let (images_parallel, par) = split(n);
    if images_parallel {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            let per = runs(n);
            let partials: Vec<Vec<f32>> = (0..n.div_ceil(per))
                .into_par_iter()
                .map(|r| {
                    let (mut acc, mut scratch) = (vec![0.0f32; len], vec![0.0f32; scratch_len]);
                    for i in r * per..((r + 1) * per).min(n) {
                        f(i, &mut acc, &mut scratch, par);
                    }
                    acc
                })
                .collect();
            let mut parts = partials.into_iter();
            let mut total = parts.next().unwrap_or_else(|| vec![0.0f32; len]);
            for p in parts {
                total.iter_mut().zip(&p).for_each(|(a, b)| *a += *b);
            }
            return total;
        }
    }
    let (mut acc, mut scratch) = (vec![0.0f32; len], vec![0.0f32; scratch_len]);
    for i in 0..n {
        f(i, &mut acc, &mut scratch, par);
    }
    acc
}

/// `y = conv(x, W)`: `x` `[N, Cin, H, W]`, `w` `[Cout, Cin, kh, kw]`; returns
/// `[N, Cout, Ho, Wo]`.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
    let direct = g.direct().then(|| Direct::forward(g, w));
    per_image(g.n, g.n * g.out_len(), g.patch_len(), |i, out, buf, par| {
        let cols = patches(g, &x[i * g.in_len()..(i + 1) * g.in_len()], buf);
        forward_image(g, w, direct.as_ref(), cols, out, par);
    })
}

/// `out = W · col` for one image whose [`patches`] are `buf`, into `out` (`[Cout, Ho·Wo]`,
/// uninitialised), which it initialises; with `direct` (the kernel `w` packed for
/// [`ConvGeom::direct`]), from the image itself.
fn forward_image(
    g: &ConvGeom,
    w: &[f32],
    direct: Option<&Direct>,
    buf: &[f32],
    out: &mut [MaybeUninit<f32>],
    par: gemm::Parallelism,
) {
    if let Some(d) = direct {
        return d.image(buf, out);
    }
    if g.shifted() {
        return shifted::forward(g, w, buf, filled(out, 0.0), par);
    }
    let (k, p) = (g.k(), g.p());
    let (w, col) = ((w, Mat::rows(k)), (buf, Mat::at(0, g.ld(), 1)));
    gemm_new((g.cout, p, k), out, w, col, par);
}

/// `dx = convT(dy, W)`: `dy` `[N, Cout, Ho, Wo]`, `w` `[Cout, Cin, kh, kw]`; returns
/// `[N, Cin, H, W]`.
pub fn input_grad(g: &ConvGeom, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let direct = g.direct_dx().then(|| Direct::input_grad(g, w));
    per_image(
        g.n,
        g.n * g.in_len(),
        g.input_grad_len(),
        |i, out, buf, par| {
            let dyi = &dy[i * g.out_len()..(i + 1) * g.out_len()];
            if let Some(d) = &direct {
                return d.image(dyi, out);
            }
            // Wᵀ (k×cout): element (r, c) = w[c·k + r].
            let (wt, dy_mat) = ((w, Mat::at(0, 1, k)), (dyi, Mat::rows(p)));
            if g.in_place() {
                // The product is the image's gradient itself.
                gemm_new((k, p, g.cout), out, wt, dy_mat, par);
                return;
            }
            let out = filled(out, 0.0);
            if g.shifted() {
                return shifted::input_grad(g, dyi, w, buf, out, par);
            }
            gemm(
                (k, p, g.cout),
                buf,
                Mat::rows(p),
                false,
                wt.0,
                wt.1,
                dyi,
                dy_mat.1,
                par,
            );
            wide(Col2Im(g, buf, out));
        },
    )
}

/// `dW = Σₙ dy[n] · col[n]ᵀ`: `x` `[N, Cin, H, W]`, `dy` `[N, Cout, Ho, Wo]`; returns
/// `[Cout, Cin, kh, kw]`.
pub fn weight_grad(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let acc = sum_over_images(
        g.n,
        g.cout * g.k(),
        g.weight_grad_len(),
        |i, acc, buf, par| {
            let xi = &x[i * g.in_len()..(i + 1) * g.in_len()];
            let dyi = &dy[i * g.out_len()..(i + 1) * g.out_len()];
            if g.direct() {
                return direct::accumulate_weight_grad(g, xi, dyi, buf, acc);
            }
            let cols = patches(g, xi, buf);
            accumulate_weight_grad(g, dyi, cols, acc, par);
        },
    );
    weight_layout(g, acc)
}

/// The weight gradient `[Cout, Cin, kh, kw]` from what [`accumulate_weight_grad`] summed: `dWᵀ`
/// (`[Cin·kh·kw, Cout]`) from a patch matrix or the direct kernel, transposed here; the
/// shifted planes' sum as it is.
fn weight_layout(g: &ConvGeom, acc: Vec<f32>) -> Vec<f32> {
    if g.shifted() {
        return acc;
    }
    // In 32 × 32 tiles: a plain loop writes `dW` down its columns, `K` floats apart, and measured
    // 2 % of a SqueezeNet fooling step's samples, on the calling thread.
    const TILE: usize = 32;
    let (k, cout) = (g.k(), g.cout);
    let mut dw = vec![0.0f32; cout * k];
    for k0 in (0..k).step_by(TILE) {
        for c0 in (0..cout).step_by(TILE) {
            let cols = c0..(c0 + TILE).min(cout);
            for kk in k0..(k0 + TILE).min(k) {
                for (co, v) in cols.clone().zip(&acc[kk * cout + c0..]) {
                    dw[co * k + kk] = *v;
                }
            }
        }
    }
    dw
}

/// `acc += dy[n] · col[n]ᵀ` for one image whose [`patches`] are `buf`; from a patch matrix `acc`
/// holds the transpose `dWᵀ` (`[Cin·kh·kw, Cout]`, see [`weight_layout`]).
fn accumulate_weight_grad(
    g: &ConvGeom,
    dyi: &[f32],
    buf: &[f32],
    acc: &mut [f32],
    par: gemm::Parallelism,
) {
    if g.shifted() {
        return shifted::accumulate_weight_grad(g, dyi, buf, acc, par);
    }
    let (k, p) = (g.k(), g.p());
    // colᵀ (p×k), read in place: element (r, c) = col[c·ld + r]. The product `dy · colᵀ`
    // (`Cout × K`) is written column by column, i.e. as `dWᵀ`: `gemm` then runs it as given,
    // `Cout` rows of `dy` (packed, small) against `colᵀ` read in place, instead of transposing
    // the problem and packing the whole patch matrix. At ResNet-20's and SqueezeNet's shapes this
    // GEMM measured 1.07–2.2× faster (BENCHMARKS.md, "Session 30").
    let (col_t, dw_t) = (Mat::at(0, 1, g.ld()), Mat::at(0, 1, g.cout));
    gemm(
        (g.cout, k, p),
        acc,
        dw_t,
        true,
        dyi,
        Mat::rows(p),
        buf,
        col_t,
        par,
    );
}

/// [`forward`] (no bias) and [`weight_grad`] of the same input `x` with one set of patches per
/// image: `(conv(x, W), Σₙ dy[n] · col(x[n])ᵀ)`. The backward step of a transposed convolution
/// needs both for the same `x` (its incoming gradient).
pub fn forward_and_weight_grad(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let olen = g.out_len();
    let direct = g.direct().then(|| Direct::forward(g, w));
    // The direct kernels for both (the forward's patches, i.e. nothing or the stride phases,
    // then the weight gradient's scratch), or one patch matrix per image for both.
    let scratch = match direct {
        Some(_) => g.patch_len() + g.direct_weight_len(),
        None => g.patch_len(),
    };
    let mut dw = Vec::new();
    // Each image writes its own output slice; the sum over images is the weight gradient.
    // SAFETY: every image's slice, together all `n·olen` elements, is initialised by
    // `forward_image` below.
    let y = unsafe {
        build(g.n * olen, |spare| {
            let out = SharedOut(spare.as_mut_ptr());
            dw = sum_over_images(g.n, g.cout * g.k(), scratch, |i, acc, buf, par| {
                let xi = &x[i * g.in_len()..(i + 1) * g.in_len()];
                // SAFETY: image `i` is visited once, and `[i·olen, (i+1)·olen)` lies inside
                // `spare` (`n·olen` long), so no two calls touch the same element.
                let yi = std::slice::from_raw_parts_mut(out.at(i * olen), olen);
                let dyi = &dy[i * olen..(i + 1) * olen];
                if let Some(d) = &direct {
                    let (forward_buf, weight_buf) = buf.split_at_mut(g.patch_len());
                    d.image(patches(g, xi, forward_buf), yi);
                    return direct::accumulate_weight_grad(g, xi, dyi, weight_buf, acc);
                }
                let cols = patches(g, xi, buf);
                forward_image(g, w, None, cols, yi, par);
                accumulate_weight_grad(g, dyi, cols, acc, par);
            });
        })
    };
    (y, weight_layout(g, dw))
}

/// A pointer to the output shared by the workers of [`forward_and_weight_grad`], each writing
/// only its own image's slice.
#[derive(Clone, Copy)]
struct SharedOut(*mut MaybeUninit<f32>);
// SAFETY: the workers write disjoint slices (see the use).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn at(&self, offset: usize) -> *mut MaybeUninit<f32> {
        // SAFETY: callers keep `offset` inside the allocation.
        unsafe { self.0.add(offset) }
    }
}

#[cfg(test)]
mod tests {
    use super::{Mat, gemm};

    /// A strided view fits its slice exactly up to its last element; an empty one where its offset
    /// does.
    #[test]
    fn views_fit_up_to_their_last_element() {
        // 3×4 row-major from offset 2: last element at 2 + 2·4 + 3 = 13.
        let m = Mat::at(2, 4, 1);
        assert!(m.fits(3, 4, 14));
        assert!(!m.fits(3, 4, 13));
        // Transposed strides: last element at 2 + 2·1 + 3·5 = 19.
        let t = Mat::at(2, 1, 5);
        assert!(t.fits(3, 4, 20) && !t.fits(3, 4, 19));
        assert!(Mat::at(7, 9, 9).fits(0, 5, 7) && !Mat::at(8, 1, 1).fits(5, 0, 7));
    }

    /// The GEMM computes `dst = [dst +] lhs · rhs` on strided views, and refuses views outside
    /// their buffers with a message instead of reading out of bounds.
    #[test]
    fn gemm_on_views_and_its_bounds_check() {
        // lhs 2×3 row-major, rhs 3×2 read transposed from a row-major 2×3 buffer.
        let (lhs, rhs) = (
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            [1.0, 0.0, 2.0, 0.5, 1.0, -1.0],
        );
        let (l, r, par) = (Mat::rows(3), Mat::at(0, 1, 3), gemm::Parallelism::None);
        let run = |dst: &mut [f32], accumulate: bool, rhs: &[f32]| {
            gemm(
                (2, 2, 3),
                dst,
                Mat::rows(2),
                accumulate,
                &lhs,
                l,
                rhs,
                r,
                par,
            );
        };
        let mut dst = [10.0f32; 4];
        run(&mut dst, true, &rhs);
        // Row 0: [1,2,3]·[1,0,2] = 7, [1,2,3]·[0.5,1,−1] = −0.5; row 1: 16, 1.0; plus 10.
        assert_eq!(dst, [17.0, 9.5, 26.0, 11.0]);
        let short = std::panic::catch_unwind(|| run(&mut [0.0f32; 4], false, &rhs[..5]));
        let msg = short.expect_err("a short rhs must be refused");
        let msg = msg.downcast_ref::<String>().map_or("", String::as_str);
        assert!(msg.contains("GEMM operands outside their buffers"), "{msg}");
    }
}
