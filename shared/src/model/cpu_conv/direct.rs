//! 3×3 convolutions with padding 1 without a patch matrix, on AVX-512 (`docs/method.md` §9):
//! forward, input gradient and weight gradient of stride 1; forward and weight gradient of
//! stride 2.
//!
//! Output pixel `q = oh·W + ow` of tap `t = (ki, kj)` reads input pixel `q + d_t` with
//! `d_t = (ki − 1)·W + kj − 1`, where that pixel lies inside the image (else the padding's zero).
//! A register tile of `MR` vectors of 16 consecutive output pixels by `NR` output channels
//! then sums, over every input channel and tap, one masked vector load of the input plane
//! (the lanes whose pixel lies outside the image read nothing and give zero) times a broadcast
//! weight, with fused multiply-adds:
//!
//! - forward: `y[co, q] = Σ_{ci, t} W[co, ci, t] · x[ci, q + d_t]`; with stride 2 the input is
//!   first split into its four stride phases (even / odd rows × columns, see [`phases`]), in
//!   which each tap again reads at one flat offset;
//! - input gradient, the same with `dy` as input and the kernel flipped and transposed:
//!   `dx[ci, p] = Σ_{co, t} W[co, ci, 8 − t] · dy[co, p + d_t]` (`d_{8−t} = −d_t`);
//! - weight gradient: `dW[co, ci, t] = Σ_q dy[co, q] · x[ci, q + d_t]` (with stride 2, the
//!   window of output `(oh, ow)` starts at input `(2·oh − 1, 2·ow − 1)`), with the output
//!   channels as lanes: `dy` transposed and `x` with a zero border, both per image (see
//!   [`accumulate_weight_grad`]).
//!
//! The image is read in place: no patch matrix (9 times the input) is written and read back,
//! and the input gradient needs no `col2im`. Used for the images of a batch that run in parallel,
//! one per worker, on CPUs with AVX-512 (`ConvGeom::direct`, `ConvGeom::direct_dx`);
//! elsewhere `im2col` + GEMM run. The sums run in another order than the GEMM's, so values agree
//! with it to rounding.

use super::ConvGeom;

/// Channels (input and output) up to which a convolution runs here. With more, the GEMM's
/// register tile reuses each loaded value more often than the tile here, whose masked loads
/// also load their masks: at SqueezeNet's 27² and 13² layers (128–256 output channels) these
/// kernels measured up to 20 % slower than im2col + GEMM, at ResNet-20's (16–64) 10–35 % faster
/// (BENCHMARKS.md, "Session 31").
const DIRECT_MAX_CHANNELS: usize = 64;

/// Kernel taps of a 3×3 convolution.
const TAPS: usize = 9;
/// Lanes of one AVX-512 register of `f32`.
const LANES: usize = 16;
/// Output channels per register tile of the forward pass and the input gradient.
const NR: usize = 8;
/// Vectors of output pixels per register tile (`MR·NR` accumulators plus `MR` inputs).
const MR: usize = 3;

impl ConvGeom {
    /// A 3×3 convolution with padding 1, stride 1 or 2, and at most [`DIRECT_MAX_CHANNELS`]
    /// channels on either side, on a CPU with AVX-512, whose images run in parallel
    /// ([`super::split`]) and whose planes are below [`super::shifted::SHIFTED_MIN_PIXELS`]
    /// (larger ones run on shifted planes): its forward pass and weight gradient run here.
    pub(super) fn direct(&self) -> bool {
        self.kh == 3
            && self.kw == 3
            && (self.stride == 1 || self.stride == 2)
            && self.padding == 1
            && self.cin.max(self.cout) <= DIRECT_MAX_CHANNELS
            && !self.shifted()
            && super::split(self.n).0
            && avx512()
    }
    /// A [`ConvGeom::direct`] geometry of stride 1: its input gradient runs here too.
    pub(super) fn direct_dx(&self) -> bool {
        self.stride == 1 && self.direct()
    }
    /// Scratch floats per image for [`phases`]: 4 planes of `Ho·Wo` per input channel.
    pub(super) fn phases_len(&self) -> usize {
        4 * self.cin * self.p()
    }
}

/// The mask of the first `n` lanes of a vector (all 16 from `n = 16` on).
fn first_lanes(n: usize) -> u16 {
    if n >= LANES {
        u16::MAX
    } else {
        (1u16 << n) - 1
    }
}

/// For stride 2: kernel row (or column) `k` reads input row `2·o + k − 1` of output row `o`, which
/// is row `o + shift` of the phase `parity` (input rows `2·i + parity`).
fn stride2_tap(k: usize) -> (usize, isize) {
    match k {
        0 => (1, -1),
        1 => (0, 0),
        _ => (1, 0),
    }
}

/// Writes image `x` (`[Cin, H, W]`) into `buf` ([`ConvGeom::phases_len`]) as its four stride-2
/// phases, `[2·a + b, Cin, Ho, Wo]` with element `(i, j)` = `x[ci, 2·i + a, 2·j + b]`: a stride-2
/// convolution then reads each tap's input at one flat offset into one phase, as a stride-1 one
/// does into the image ([`Plan::new`]). Elements beyond the image (the last row or column of an
/// odd phase of an odd side) are left as they are: no tap reads them.
///
/// # Panics
/// If `x` or `buf` is shorter.
pub(super) fn phases(g: &ConvGeom, x: &[f32], buf: &mut [f32]) {
    assert!(
        x.len() >= g.in_len() && buf.len() >= g.phases_len(),
        "stride phases of {} floats into {}",
        x.len(),
        buf.len()
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only where `ConvGeom::direct` found AVX-512F; the lengths were checked above.
    unsafe {
        avx::phases(g, x.as_ptr(), buf.as_mut_ptr())
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolutions run on x86-64 only")
}

/// Whether this CPU has AVX-512F.
fn avx512() -> bool {
    super::super::cpu_wide::unit() == super::super::cpu_wide::Unit::Avx512
}

/// Per call: each tap's flat offset and, per vector of 16 output pixels, which lanes each tap
/// reads inside the image.
pub(super) struct Plan {
    /// Output pixels per plane, `Ho·Wo`; also the input's plane stride (the image with stride
    /// 1, its [`phases`] with stride 2).
    p: usize,
    /// Vectors per plane, `⌈Ho·Wo / 16⌉`.
    v: usize,
    /// `d_t` per tap: from output pixel `q` of input channel `ci`'s plane (at `ci·p`) to the
    /// pixel the tap reads (with stride 2, in its phase: `phase·Cin·p` further).
    d: [isize; TAPS],
    /// Per vector and tap: bit `l` set when pixel `16·vector + l` is in the plane and its tap
    /// reads inside the image.
    masks: Vec<[u16; TAPS]>,
    /// Per vector: bit `l` set when pixel `16·vector + l` is in the plane.
    tail: Vec<u16>,
}

impl Plan {
    pub(super) fn new(g: &ConvGeom) -> Plan {
        let (h, w, p, wo) = (g.h as isize, g.w as isize, g.p(), g.wo());
        let v = p.div_ceil(LANES);
        let mut d = [0isize; TAPS];
        for (t, d) in d.iter_mut().enumerate() {
            let (ki, kj) = (t / 3, t % 3);
            *d = if g.stride == 1 {
                (ki as isize - 1) * w + kj as isize - 1
            } else {
                let ((a, di), (b, dj)) = (stride2_tap(ki), stride2_tap(kj));
                ((2 * a + b) * g.cin * p) as isize + di * wo as isize + dj
            };
        }
        let (mut masks, mut tail) = (vec![[0u16; TAPS]; v], vec![0u16; v]);
        let s = g.stride as isize;
        for q in 0..p {
            let (vi, bit) = (q / LANES, 1u16 << (q % LANES));
            tail[vi] |= bit;
            let (oh, ow) = ((q / wo) as isize, (q % wo) as isize);
            for (t, m) in masks[vi].iter_mut().enumerate() {
                let (ih, iw) = (s * oh + t as isize / 3 - 1, s * ow + t as isize % 3 - 1);
                if (0..h).contains(&ih) && (0..w).contains(&iw) {
                    *m |= bit;
                }
            }
        }
        Plan {
            p,
            v,
            d,
            masks,
            tail,
        }
    }
}

/// A forward pass or an input gradient: the [`Plan`] and the kernel packed per tile of [`NR`]
/// output channels, `[⌈Cout/NR⌉, C, 9, NR]` (zero beyond `Cout`), for input images of `c`
/// channels.
pub(super) struct Direct {
    plan: Plan,
    packed: Vec<f32>,
    c: usize,
    cout: usize,
    /// Planes per input channel: 1, or the 4 [`phases`] with stride 2.
    phases: usize,
}

impl Direct {
    /// The forward pass of `w` (`[Cout, Cin, 3, 3]`).
    pub(super) fn forward(g: &ConvGeom, w: &[f32]) -> Direct {
        Direct::pack(g, g.cin, g.cout, |co, ci, t| {
            w[(co * g.cin + ci) * TAPS + t]
        })
    }
    /// The input gradient of `w`: `dy` (`Cout` channels) in, `dx` (`Cin`) out, the kernel
    /// flipped (stride 1 only).
    pub(super) fn input_grad(g: &ConvGeom, w: &[f32]) -> Direct {
        assert_eq!(g.stride, 1, "direct input gradient of stride {}", g.stride);
        Direct::pack(g, g.cout, g.cin, |ci, co, t| {
            w[(co * g.cin + ci) * TAPS + TAPS - 1 - t]
        })
    }
    /// Packs `k(o, i, t)`, the weight from input channel `i` to output channel `o` at tap `t`.
    fn pack(g: &ConvGeom, c: usize, cout: usize, k: impl Fn(usize, usize, usize) -> f32) -> Direct {
        let blocks = cout.div_ceil(NR);
        let mut packed = vec![0.0f32; blocks * c * TAPS * NR];
        for (b, tile) in packed.chunks_exact_mut(c * TAPS * NR).enumerate() {
            for (i, per_tap) in tile.chunks_exact_mut(TAPS * NR).enumerate() {
                for (t, lanes) in per_tap.chunks_exact_mut(NR).enumerate() {
                    for (j, v) in lanes.iter_mut().enumerate() {
                        let o = b * NR + j;
                        if o < cout {
                            *v = k(o, i, t);
                        }
                    }
                }
            }
        }
        Direct {
            plan: Plan::new(g),
            packed,
            c,
            cout,
            phases: g.stride * g.stride,
        }
    }
    /// One image: `x` (`[C, H·W]`, or with stride 2 its [`phases`], `[4, C, Ho·Wo]`) in, every
    /// element of `out` (`[Cout, Ho·Wo]`) written.
    ///
    /// # Panics
    /// If `x` or `out` has another length.
    pub(super) fn image(&self, x: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
        let p = self.plan.p;
        assert!(
            x.len() == self.phases * self.c * p && out.len() == self.cout * p,
            "direct convolution of {} floats into {}",
            x.len(),
            out.len()
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Direct` is built only where `ConvGeom::direct` found AVX-512F; the lengths
        // were checked above, and every element of `out` is written (all vectors, every channel).
        unsafe {
            avx::image(self, x.as_ptr(), out.as_mut_ptr().cast())
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("direct convolutions run on x86-64 only")
    }
}

impl ConvGeom {
    /// Scratch floats per image for [`accumulate_weight_grad`]: the input planes with a zero
    /// border (`[Cin, H + 2, W + 2]`) and `dyᵀ` (`[Ho·Wo, Cout]`, `Cout` rounded up to 16).
    pub(super) fn direct_weight_len(&self) -> usize {
        self.cin * (self.h + 2) * (self.w + 2) + self.p() * self.cout.next_multiple_of(LANES)
    }
}

/// `acc += dy · colᵀ` for one image of a [`ConvGeom::direct`] geometry, written as `dWᵀ`
/// (`acc` `[Cin·9, Cout]`, row `ci·9 + t`), without a patch matrix: `x` (`[Cin, H·W]`) is
/// copied with a zero border and `dy` (`[Cout, Ho·Wo]`) transposed to `[Ho·Wo, Cout]` (16 × 16
/// blocks in registers) into `scratch` ([`ConvGeom::direct_weight_len`]), then a register tile
/// of up to 48 output channels (lanes) by the 9 taps of up to 3 input channels sums
/// `dyᵀ[q] · x[ci, window(q) + t]` over all output pixels `q`, the input broadcast: no
/// horizontal sums, no masks.
///
/// # Panics
/// If a slice has another length.
pub(super) fn accumulate_weight_grad(
    g: &ConvGeom,
    x: &[f32],
    dy: &[f32],
    scratch: &mut [f32],
    acc: &mut [f32],
) {
    let (p, po, wp) = (g.h * g.w, g.p(), g.w + 2);
    let (plane, cpad) = ((g.h + 2) * wp, g.cout.next_multiple_of(LANES));
    assert!(
        x.len() == g.cin * p
            && dy.len() == g.cout * po
            && acc.len() == g.cout * g.cin * TAPS
            && scratch.len() >= g.direct_weight_len(),
        "direct weight gradient of {} and {} floats into {}",
        x.len(),
        dy.len(),
        acc.len()
    );
    let (xp, dyt) = scratch.split_at_mut(g.cin * plane);
    // The border here, the image's rows in `avx::rows` below.
    for dst in xp.chunks_exact_mut(plane) {
        dst[..wp].fill(0.0);
        dst[plane - wp..].fill(0.0);
        for out in dst[wp..plane - wp].chunks_exact_mut(wp) {
            out[0] = 0.0;
            out[g.w + 1] = 0.0;
        }
    }
    let dyt = &mut dyt[..po * cpad];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only where `ConvGeom::direct` found AVX-512F; the lengths were checked above.
    unsafe {
        avx::rows(
            x.as_ptr(),
            g.cin * g.h,
            g.w,
            xp.as_mut_ptr().add(wp + 1),
            wp,
            g.h,
        );
        avx::transpose(dy.as_ptr(), g.cout, po, dyt.as_mut_ptr(), cpad);
        avx::weight_grad(g, xp.as_ptr(), dyt.as_ptr(), acc.as_mut_ptr())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dyt, acc);
        unreachable!("direct convolutions run on x86-64 only")
    }
}

// The register tiles index several arrays (accumulators, loaded vectors, masks) with one loop
// variable; iterators over one of them would hide that.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{ConvGeom, Direct, LANES, MR, NR, Plan, TAPS, first_lanes};

    /// [`Direct::image`]: `x` `[C, P]`, `out` `[Cout, P]`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn image(d: &Direct, x: *const f32, out: *mut f32) {
        let (plan, c) = (&d.plan, d.c);
        for b in 0..d.cout.div_ceil(NR) {
            let nco = NR.min(d.cout - b * NR);
            // SAFETY (all calls): tile `b` of the packed kernel and channel `b·NR` of `out` lie
            // inside their buffers (the caller checked the lengths).
            unsafe {
                let w = d.packed.as_ptr().add(b * c * TAPS * NR);
                let o = out.add(b * NR * plan.p);
                let mut vi = 0;
                while vi + MR <= plan.v {
                    tile::<MR>(plan, x, c, w, o, nco, vi);
                    vi += MR;
                }
                match plan.v - vi {
                    2 => tile::<2>(plan, x, c, w, o, nco, vi),
                    1 => tile::<1>(plan, x, c, w, o, nco, vi),
                    _ => {}
                }
            }
        }
    }

    /// Output channels `[0, nco)` of `out` (`[nco, P]`) at vectors `[vi, vi + M)`, from `x`
    /// (`[c, P]`) and the packed kernel tile `w` (`[c, 9, NR]`).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const M: usize>(
        plan: &Plan,
        x: *const f32,
        c: usize,
        w: *const f32,
        out: *mut f32,
        nco: usize,
        vi: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NR]; M];
        let mut masks = [[0u16; TAPS]; M];
        masks.copy_from_slice(&plan.masks[vi..vi + M]);
        let base = (vi * LANES) as isize;
        for ci in 0..c {
            let xc = x.wrapping_add(ci * plan.p);
            // SAFETY: input channel `ci`'s 9·NR weights lie inside the tile.
            let wc = unsafe { w.add(ci * TAPS * NR) };
            for t in 0..TAPS {
                let mut xv = [_mm512_setzero_ps(); M];
                for m in 0..M {
                    let at = xc.wrapping_offset(base + (m * LANES) as isize + plan.d[t]);
                    // SAFETY: the lanes set in the mask read pixels of plane `ci` (their tap
                    // reads inside the image); the others are not accessed.
                    xv[m] = unsafe { _mm512_maskz_loadu_ps(masks[m][t], at) };
                }
                for j in 0..NR {
                    // SAFETY: inside the tile (see `wc`).
                    let wv = _mm512_set1_ps(unsafe { *wc.add(t * NR + j) });
                    for m in 0..M {
                        acc[m][j] = _mm512_fmadd_ps(xv[m], wv, acc[m][j]);
                    }
                }
            }
        }
        for (m, acc) in acc.iter().enumerate() {
            let (q0, keep) = ((vi + m) * LANES, plan.tail[vi + m]);
            for (j, a) in acc.iter().enumerate().take(nco) {
                // SAFETY: the lanes kept are pixels of output channel `j`, inside `out`.
                unsafe { _mm512_mask_storeu_ps(out.add(j * plan.p + q0), keep, *a) };
            }
        }
    }

    /// Copies the `n` rows of `w` floats at `x` to rows `ld` floats apart from `dst` on, skipping
    /// two rows after every `h` (the zero rows between padded planes), 16 floats at a time. A
    /// loop in plain Rust becomes one call to `memmove` per row, which for rows of a few dozen
    /// floats measured 2–3 % of a ResNet-20 fooling step.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows(
        x: *const f32,
        n: usize,
        w: usize,
        dst: *mut f32,
        ld: usize,
        h: usize,
    ) {
        for r in 0..n {
            // SAFETY: the caller vouches for `n` rows of `w` floats at `x`, and for `n` rows in
            // `n / h` planes of `h + 2` rows of `ld ≥ w` floats at `dst`.
            unsafe {
                let (src, out) = (x.add(r * w), dst.add((r + 2 * (r / h)) * ld));
                for c in (0..w).step_by(LANES) {
                    let keep = first_lanes(w - c);
                    let v = _mm512_maskz_loadu_ps(keep, src.add(c));
                    _mm512_mask_storeu_ps(out.add(c), keep, v);
                }
            }
        }
    }

    /// [`super::phases`]: each input row split into its even and odd columns, 32 floats at a
    /// time, by two two-register permutations.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn phases(g: &ConvGeom, x: *const f32, buf: *mut f32) {
        let (wo, p) = (g.wo(), g.p());
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for ci in 0..g.cin {
            for ih in 0..g.h {
                let (a, i) = (ih % 2, ih / 2);
                // SAFETY: row `ih` of plane `ci` lies inside `x`; row `i` of phases `(a, 0)` and
                // `(a, 1)` of plane `ci` inside `buf`, and the stores keep `j < Wo`.
                unsafe {
                    let src = x.add((ci * g.h + ih) * g.w);
                    let to_even = buf.add(((2 * a) * g.cin + ci) * p + i * wo);
                    let to_odd = buf.add(((2 * a + 1) * g.cin + ci) * p + i * wo);
                    for c0 in (0..g.w).step_by(2 * LANES) {
                        let n = g.w - c0;
                        let lo = _mm512_maskz_loadu_ps(first_lanes(n), src.add(c0));
                        let hi = _mm512_maskz_loadu_ps(
                            first_lanes(n.saturating_sub(LANES)),
                            src.add((c0 + LANES).min(g.w)),
                        );
                        let j0 = c0 / 2;
                        let e = _mm512_permutex2var_ps(lo, even, hi);
                        let o = _mm512_permutex2var_ps(lo, odd, hi);
                        _mm512_mask_storeu_ps(to_even.add(j0), first_lanes(n.div_ceil(2)), e);
                        _mm512_mask_storeu_ps(to_odd.add(j0), first_lanes(n / 2), o);
                    }
                }
            }
        }
    }

    /// `dyt` (`[P, cpad]`) = `dyᵀ` of `dy` (`[c, P]`), zero in the channels from `c` to
    /// `cpad` (a multiple of 16): 16 × 16 blocks transposed in registers.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose(dy: *const f32, c: usize, p: usize, dyt: *mut f32, cpad: usize) {
        for c0 in (0..cpad).step_by(LANES) {
            for q0 in (0..p).step_by(LANES) {
                let (nq, keep) = ((p - q0).min(LANES), first_lanes(p - q0));
                let mut r = [_mm512_setzero_ps(); LANES];
                for (i, r) in r.iter_mut().enumerate().take(c.saturating_sub(c0)) {
                    // SAFETY: pixels `q0..q0 + nq` of channel `c0 + i < c` lie inside `dy`.
                    *r = unsafe { _mm512_maskz_loadu_ps(keep, dy.add((c0 + i) * p + q0)) };
                }
                let r = transpose16(r);
                for (j, r) in r.iter().enumerate().take(nq) {
                    // SAFETY: row `q0 + j < p` of `dyt` holds `cpad` floats.
                    unsafe { _mm512_storeu_ps(dyt.add((q0 + j) * cpad + c0), *r) };
                }
            }
        }
    }

    /// The transpose of a 16 × 16 matrix held as 16 rows: pairs of rows interleaved by 32 and
    /// then 64 bits (`u[4c + k]`'s 128-bit block `b` is column `4b + k`, rows `4c..4c + 4`),
    /// then the 128-bit blocks gathered twice.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn transpose16(r: [__m512; LANES]) -> [__m512; LANES] {
        let mut t = [_mm512_setzero_ps(); LANES];
        for a in 0..8 {
            t[2 * a] = _mm512_unpacklo_ps(r[2 * a], r[2 * a + 1]);
            t[2 * a + 1] = _mm512_unpackhi_ps(r[2 * a], r[2 * a + 1]);
        }
        let pd = _mm512_castps_pd;
        let mut u = [_mm512_setzero_ps(); LANES];
        for c in 0..4 {
            let (t0, t1, t2, t3) = (
                pd(t[4 * c]),
                pd(t[4 * c + 1]),
                pd(t[4 * c + 2]),
                pd(t[4 * c + 3]),
            );
            u[4 * c] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
            u[4 * c + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
            u[4 * c + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
            u[4 * c + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
        }
        let mut out = [_mm512_setzero_ps(); LANES];
        for k in 0..4 {
            let x0 = _mm512_shuffle_f32x4::<0x88>(u[k], u[4 + k]);
            let x1 = _mm512_shuffle_f32x4::<0xDD>(u[k], u[4 + k]);
            let y0 = _mm512_shuffle_f32x4::<0x88>(u[8 + k], u[12 + k]);
            let y1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + k], u[12 + k]);
            out[k] = _mm512_shuffle_f32x4::<0x88>(x0, y0);
            out[4 + k] = _mm512_shuffle_f32x4::<0x88>(x1, y1);
            out[8 + k] = _mm512_shuffle_f32x4::<0xDD>(x0, y0);
            out[12 + k] = _mm512_shuffle_f32x4::<0xDD>(x1, y1);
        }
        out
    }

    /// [`super::accumulate_weight_grad`] from the padded planes `xp` (`[Cin, H + 2, W + 2]`)
    /// and `dyt` (`[Ho·Wo, Cout']`, `Cout'` = `Cout` rounded up to 16) into `acc`
    /// (`[Cin·9, Cout]`).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_grad(g: &ConvGeom, xp: *const f32, dyt: *const f32, acc: *mut f32) {
        let vectors = g.cout.div_ceil(LANES);
        let plane = (g.h + 2) * (g.w + 2);
        let mut v0 = 0;
        while v0 < vectors {
            let cv = (vectors - v0).min(3);
            let mut ci = 0;
            while ci < g.cin {
                let cb = (g.cin - ci).min(if cv == 1 { 3 } else { 1 });
                // SAFETY (all calls): input channels `ci..ci + cb` of `xp`, output channels
                // from `16·v0` of `dyt`, and rows `9·ci..` of `acc` lie inside their buffers
                // (the caller checked the lengths).
                unsafe {
                    let t = Tile {
                        g,
                        xp: xp.add(ci * plane),
                        dyt: dyt.add(v0 * LANES),
                        acc: acc.add(ci * TAPS * g.cout + v0 * LANES),
                        co0: v0 * LANES,
                    };
                    match (cv, cb) {
                        (1, 3) => weight_tile::<1, 3>(&t),
                        (1, 2) => weight_tile::<1, 2>(&t),
                        (1, _) => weight_tile::<1, 1>(&t),
                        (2, _) => weight_tile::<2, 1>(&t),
                        _ => weight_tile::<3, 1>(&t),
                    }
                }
                ci += cb;
            }
            v0 += cv;
        }
    }

    /// Where one weight-gradient tile reads and adds.
    struct Tile<'a> {
        g: &'a ConvGeom,
        /// The tile's first padded input plane.
        xp: *const f32,
        /// `dyᵀ` from the tile's first output channel on (rows `Cout'` apart).
        dyt: *const f32,
        /// `dWᵀ` at the tile's first row and output channel (rows `Cout` apart).
        acc: *mut f32,
        /// The tile's first output channel.
        co0: usize,
    }

    /// `acc[(cb·9 + t), 16·cv + l] += Σ_q dyᵀ[q, 16·cv + l] · xp[cb, q + d_t]` for `CV` vectors
    /// of output channels and `CB` input channels.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn weight_tile<const CV: usize, const CB: usize>(t: &Tile<'_>) {
        let g = t.g;
        let (wp, cpad, st) = (g.w + 2, g.cout.next_multiple_of(LANES), g.stride);
        let (plane, wo) = ((g.h + 2) * wp, g.wo());
        let mut s = [[[_mm512_setzero_ps(); TAPS]; CB]; CV];
        for oh in 0..g.ho() {
            for ow in 0..wo {
                let q = oh * wo + ow;
                let mut dv = [_mm512_setzero_ps(); CV];
                for (cv, dv) in dv.iter_mut().enumerate() {
                    // SAFETY: row `q` of `dyᵀ` holds `Cout'` floats from the tile's start on.
                    *dv = unsafe { _mm512_loadu_ps(t.dyt.add(q * cpad + cv * LANES)) };
                }
                for cb in 0..CB {
                    // SAFETY: the 3×3 window of output (oh, ow) in padded plane `cb`, from
                    // (st·oh, st·ow) on, lies inside it.
                    let xc = unsafe { t.xp.add(cb * plane + st * (oh * wp + ow)) };
                    for tap in 0..TAPS {
                        // SAFETY: see `xc`.
                        let xs = _mm512_set1_ps(unsafe { *xc.add(tap / 3 * wp + tap % 3) });
                        for cv in 0..CV {
                            s[cv][cb][tap] = _mm512_fmadd_ps(dv[cv], xs, s[cv][cb][tap]);
                        }
                    }
                }
            }
        }
        for (cv, s) in s.iter().enumerate() {
            let keep = first_lanes(g.cout.saturating_sub(t.co0 + cv * LANES));
            for (cb, s) in s.iter().enumerate() {
                for (tap, s) in s.iter().enumerate() {
                    // SAFETY: the lanes kept are output channels of row `cb·9 + tap` of `dWᵀ`.
                    unsafe {
                        let at = t.acc.add((cb * TAPS + tap) * g.cout + cv * LANES);
                        let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(keep, at), *s);
                        _mm512_mask_storeu_ps(at, keep, sum);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ConvGeom;
    use super::{Direct, accumulate_weight_grad, avx512, phases};

    /// A 3×3, padding-1 convolution of stride `g.stride`, its input gradient and its weight
    /// gradient of one image, as plain sums in `f64` (`x` `[Cin, H·W]`, `w` `[Cout, Cin, 9]`,
    /// `dy` `[Cout, Ho·Wo]`).
    fn slow(g: &ConvGeom, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
        let (h, wd, p, po) = (g.h as isize, g.w as isize, g.h * g.w, g.ho() * g.wo());
        let (mut y, mut dx, mut dw) = (
            vec![0.0; g.cout * po],
            vec![0.0; g.cin * p],
            vec![0.0; g.cout * g.cin * 9],
        );
        for co in 0..g.cout {
            for ci in 0..g.cin {
                for t in 0..9 {
                    let k = (co * g.cin + ci) * 9 + t;
                    for q in 0..po {
                        let ih = (g.stride * (q / g.wo())) as isize + t as isize / 3 - 1;
                        let iw = (g.stride * (q % g.wo())) as isize + t as isize % 3 - 1;
                        if !(0..h).contains(&ih) || !(0..wd).contains(&iw) {
                            continue;
                        }
                        let i = ci * p + (ih * wd + iw) as usize;
                        y[co * po + q] += f64::from(w[k]) * f64::from(x[i]);
                        dx[i] += f64::from(w[k]) * f64::from(dy[co * po + q]);
                        dw[k] += f64::from(dy[co * po + q]) * f64::from(x[i]);
                    }
                }
            }
        }
        [y, dx, dw]
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0)
            .collect()
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-5 * scale,
                "{what}: element {i}: {a} against {b}"
            );
        }
    }

    /// The forward pass and the weight gradient (strides 1 and 2) and the input gradient (stride 1)
    /// equal the plain sums on planes whose pixels fill no whole vector, fill several with a
    /// remainder, or have rows not aligned to a vector (13, 7 × 5); with channel counts that
    /// fill no whole tile (3, 5, 19) and several (16, 40); planes of one pixel and of one row;
    /// and, with stride 2, even and odd sides and rows of more than 32 pixels.
    #[test]
    fn direct_kernels_equal_the_plain_sums() {
        if !avx512() {
            eprintln!("no AVX-512 on this CPU: the direct kernels never run here");
            return;
        }
        let cases = [
            (3, 5, 13, 13, 1),
            (16, 16, 32, 32, 1),
            (19, 40, 7, 5, 1),
            (5, 3, 1, 1, 1),
            (2, 17, 1, 9, 1),
            (40, 19, 4, 4, 1),
            (16, 32, 32, 32, 2),
            (3, 19, 13, 7, 2),
            (17, 5, 1, 2, 2),
            (2, 3, 5, 70, 2),
        ];
        for (cin, cout, h, w, stride) in cases {
            let g = ConvGeom {
                n: 1,
                cin,
                h,
                w,
                cout,
                kh: 3,
                kw: 3,
                stride,
                padding: 1,
            };
            let (what, po) = (
                format!("[{cin}, {h}, {w}] → {cout}, stride {stride}"),
                g.ho() * g.wo(),
            );
            let (x, wt, dy) = (
                values(cin * h * w, 1),
                values(cout * cin * 9, 2),
                values(cout * po, 3),
            );
            let [y_ref, dx_ref, dw_ref] = slow(&g, &x, &wt, &dy);
            let run = |d: Direct, input: &[f32], len: usize| {
                let mut out = vec![std::mem::MaybeUninit::new(f32::NAN); len];
                d.image(input, &mut out);
                // SAFETY: initialised above (and overwritten by the kernel).
                out.into_iter()
                    .map(|v| unsafe { v.assume_init() })
                    .collect::<Vec<f32>>()
            };
            let input = if stride == 2 {
                // Beyond the phases' length the kernel must not read: NaN there would show.
                let mut buf = vec![f32::NAN; g.phases_len() + 64];
                phases(&g, &x, &mut buf);
                buf.truncate(g.phases_len());
                buf
            } else {
                x.clone()
            };
            let y = run(Direct::forward(&g, &wt), &input, cout * po);
            close(&y, &y_ref, &format!("{what}: forward"));
            if stride == 1 {
                let dx = run(Direct::input_grad(&g, &wt), &dy, cin * h * w);
                close(&dx, &dx_ref, &format!("{what}: dx"));
            }
            // Added onto what is there, as `dWᵀ` (`[Cin·9, Cout]`), with scratch full of NaN.
            let mut scratch = vec![f32::NAN; g.direct_weight_len()];
            let mut acc = vec![1.0f32; cout * cin * 9];
            accumulate_weight_grad(&g, &x, &dy, &mut scratch, &mut acc);
            let dw: Vec<f32> = (0..cout * cin * 9)
                .map(|k| {
                    let (co, r) = (k / (cin * 9), k % (cin * 9));
                    acc[r * cout + co] - 1.0
                })
                .collect();
            close(&dw, &dw_ref, &format!("{what}: dW"));
        }
    }
}
