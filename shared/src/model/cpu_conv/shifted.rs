//! Convolutions on large planes without a patch matrix (`docs/method.md` §9).
//!
//! With stride 1 and `Wo = W` (so `kw = 2·padding + 1`, e.g. 3×3 with padding 1), tap `(ki, kj)`
//! of output `q = oh·W + ow` reads the input plane at one flat offset from `q`, once the plane has
//! zero rows above and below it. The convolution is then a sum of `kh·kw` GEMMs, one per tap,
//! that read the input planes in place instead of a patch matrix `kh·kw` times larger:
//!
//! - forward: `y[n] = Σ_tap W_tap · shift_tap(x[n])`                (`W_tap` is `[Cout, Cin]`);
//! - input gradient: `dx[n] = Σ_tap shift_tap⁻¹(W_tapᵀ · dy[n])`, added onto padded planes;
//! - weight gradient: `dW_tap = Σₙ dy[n] · shift_tap(x[n])ᵀ`.
//!
//! A flat shift wraps an output in the first or last `padding` columns onto the neighbouring
//! row. Each kernel column therefore reads its own copy of the planes, with the columns that such
//! wrapped reads land on set to zero (in-image outputs of that kernel column never read them); for
//! the input gradient `dy` is copied likewise, with the out-of-image outputs zeroed.
//!
//! Used from [`SHIFTED_MIN_PIXELS`] output pixels per plane on: at VGG-16's 224² and 112² layers
//! forward, input and weight gradient measured 1.6–2.3× faster than im2col + one GEMM, whose
//! patch matrix (up to 115 MB per image) no cache holds; at 56² about even, and at 32² and below
//! (ResNet-20, SqueezeNet, ResNet-50) mostly 5–30 % slower (a weight gradient at 7² 2× slower, one
//! at 32² with 16 channels 1.5× faster), where one GEMM with `K = Cin·kh·kw` beats `kh·kw` GEMMs
//! with `K = Cin` (BENCHMARKS.md, "Large planes without a patch matrix").

use super::{ConvGeom, Mat, gemm};

/// Output pixels per plane from which a [`ConvGeom::flat_shift`] geometry runs here.
pub(super) const SHIFTED_MIN_PIXELS: usize = 8192;

impl ConvGeom {
    /// The kernel taps `(ki, kj)`, in the weight's order.
    fn kernel_taps(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let kw = self.kw;
        (0..self.kh * kw).map(move |t| (t / kw, t % kw))
    }
    /// Stride of one shifted plane: `padding` zeros, `padding` zero rows, the image, `padding`
    /// zero rows and `padding` zeros (`(H + 2·padding)·W + 2·padding`), plus 16 floats where that
    /// is a multiple of 256 (see [`ConvGeom::ld`]).
    fn shifted_ld(&self) -> usize {
        let l = (self.h + 2 * self.padding) * self.w + 2 * self.padding;
        if l.is_multiple_of(256) { l + 16 } else { l }
    }
    /// Where the image starts inside a shifted plane.
    fn shifted_start(&self) -> usize {
        self.padding * (self.w + 1)
    }
    /// Scratch floats per image for [`planes`]: `kw` copies of the shifted planes.
    pub(super) fn planes_len(&self) -> usize {
        self.kw * self.cin * self.shifted_ld()
    }
    /// Scratch floats per image for [`input_grad`]: `kw − 1` copies of `dy` and the padded
    /// planes of `dx`.
    pub(super) fn shifted_input_grad_len(&self) -> usize {
        (self.kw - 1) * self.out_len() + self.cin * self.shifted_ld()
    }
    /// Which copy kernel column `kj` reads (of the planes, and of `dy` without its middle one):
    /// `kj` left of the middle, `kj − 1` right of it, and `None` for the middle column, which
    /// wraps onto no neighbouring row (the planes' last copy, and `dy` itself).
    fn variant(&self, kj: usize) -> Option<usize> {
        match kj.cmp(&self.padding) {
            std::cmp::Ordering::Less => Some(kj),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(kj - 1),
        }
    }
    /// The columns `[c0, c1)` zeroed in kernel column `kj`'s copy of the planes: those that the
    /// wrapped reads of its out-of-image outputs land on (the last `padding − kj` columns, or the
    /// first `kj − padding`), which its in-image outputs never read.
    fn wrapped_cols(&self, kj: usize) -> (usize, usize) {
        let w = self.w;
        if kj < self.padding {
            (w - (self.padding - kj).min(w), w)
        } else {
            (0, (kj - self.padding).min(w))
        }
    }
    /// Tap `(ki, kj)` as a matrix over the planes of [`planes`]: element `(ci, q)` is copy
    /// `kj`'s plane `ci` at `q + ki·W + kj`, the input pixel that output `q` reads through this
    /// tap (`[Cin, Ho·Wo]`; transposed, `[Ho·Wo, Cin]`).
    fn shifted_tap(&self, ki: usize, kj: usize, transposed: bool) -> Mat {
        let copy = self.variant(kj).unwrap_or(self.kw - 1);
        let ld = self.shifted_ld();
        let offset = copy * self.cin * ld + ki * self.w + kj;
        if transposed {
            Mat::at(offset, 1, ld)
        } else {
            Mat::at(offset, ld, 1)
        }
    }
}

/// Fills `buf` ([`ConvGeom::planes_len`] floats) with `kw` copies of image `x`'s planes
/// (`[Cin, H, W]`), each with zero rows above and below and, in the copy of a kernel column other
/// than the middle one, its [`ConvGeom::wrapped_cols`] zeroed.
pub(super) fn planes(g: &ConvGeom, x: &[f32], buf: &mut [f32]) {
    let (hw, ld, start) = (g.h * g.w, g.shifted_ld(), g.shifted_start());
    for kj in 0..g.kw {
        let (copy, (c0, c1)) = match g.variant(kj) {
            Some(v) => (v, g.wrapped_cols(kj)),
            None => (g.kw - 1, (0, 0)),
        };
        for (ci, plane) in x.chunks_exact(hw).enumerate() {
            let dst = &mut buf[(copy * g.cin + ci) * ld..(copy * g.cin + ci + 1) * ld];
            dst[..start].fill(0.0);
            dst[start..start + hw].copy_from_slice(plane);
            dst[start + hw..].fill(0.0);
            if c1 > c0 {
                for row in dst[start..start + hw].chunks_exact_mut(g.w) {
                    row[c0..c1].fill(0.0);
                }
            }
        }
    }
}

/// `out = Σ_tap W_tap · shift_tap(x)` (`[Cout, Ho·Wo]`) for one image whose [`planes`] are in
/// `buf`; `w` is `[Cout, Cin, kh, kw]`.
pub(super) fn forward(
    g: &ConvGeom,
    w: &[f32],
    buf: &[f32],
    out: &mut [f32],
    par: gemm::Parallelism,
) {
    let (k, p, taps) = (g.k(), g.p(), g.kh * g.kw);
    for (t, (ki, kj)) in g.kernel_taps().enumerate() {
        // W_tap (Cout × Cin): element (co, ci) = w[co·k + ci·taps + t].
        let (w_tap, x_tap) = (Mat::at(t, k, taps), g.shifted_tap(ki, kj, false));
        let dims = (g.cout, p, g.cin);
        gemm(dims, out, Mat::rows(p), t > 0, w, w_tap, buf, x_tap, par);
    }
}

/// `dx = Σ_tap shift_tap⁻¹(W_tapᵀ · dy)` (`[Cin, H, W]`) for one image's `dy` (`[Cout, Ho·Wo]`),
/// with [`ConvGeom::input_grad_len`] floats of scratch in `buf`.
pub(super) fn input_grad(
    g: &ConvGeom,
    dy: &[f32],
    w: &[f32],
    buf: &mut [f32],
    dx: &mut [f32],
    par: gemm::Parallelism,
) {
    let (k, p, taps, olen, ld) = (g.k(), g.p(), g.kh * g.kw, g.out_len(), g.shifted_ld());
    let (copies, padded) = buf.split_at_mut((g.kw - 1) * olen);
    // dy with the outputs zeroed whose input column lies outside the image (their flat shift
    // would land on the neighbouring row), one copy per kernel column but the middle one.
    for kj in 0..g.kw {
        let Some(v) = g.variant(kj) else { continue };
        let (lo, hi) = g.valid_cols(kj);
        let copy = &mut copies[v * olen..(v + 1) * olen];
        copy.copy_from_slice(dy);
        for row in copy.chunks_exact_mut(g.wo()) {
            row[..lo].fill(0.0);
            row[hi..].fill(0.0);
        }
    }
    padded.fill(0.0);
    for (t, (ki, kj)) in g.kernel_taps().enumerate() {
        let src = match g.variant(kj) {
            None => dy,
            Some(v) => &copies[v * olen..(v + 1) * olen],
        };
        // W_tapᵀ (Cin × Cout): element (ci, co) = w[co·k + ci·taps + t]. Output q adds onto the
        // padded plane at q + ki·W + kj, where the forward reads it.
        let (wt, dst) = (Mat::at(t, taps, k), Mat::at(ki * g.w + kj, ld, 1));
        gemm(
            (g.cin, p, g.cout),
            padded,
            dst,
            true,
            w,
            wt,
            src,
            Mat::rows(p),
            par,
        );
    }
    let (hw, start) = (g.h * g.w, g.shifted_start());
    for (ci, plane) in dx.chunks_exact_mut(hw).enumerate() {
        plane.copy_from_slice(&padded[ci * ld + start..ci * ld + start + hw]);
    }
}

/// `acc += dy · shift_tap(x)ᵀ` per tap (`acc` `[Cout, Cin, kh, kw]`) for one image's `dy`
/// (`[Cout, Ho·Wo]`) whose [`planes`] are in `buf`.
pub(super) fn accumulate_weight_grad(
    g: &ConvGeom,
    dy: &[f32],
    buf: &[f32],
    acc: &mut [f32],
    par: gemm::Parallelism,
) {
    let (k, p, taps) = (g.k(), g.p(), g.kh * g.kw);
    for (t, (ki, kj)) in g.kernel_taps().enumerate() {
        // dW_tap (Cout × Cin): element (co, ci) at co·k + ci·taps + t.
        let (dw_tap, x_tap_t) = (Mat::at(t, k, taps), g.shifted_tap(ki, kj, true));
        let dims = (g.cout, g.cin, p);
        gemm(dims, acc, dw_tap, true, dy, Mat::rows(p), buf, x_tap_t, par);
    }
}
