//! The two convolutions foolmap issues: `conv(x, W)` of the forward passes (and of the LRP rules'
//! `Z`) and its input gradient `convT(g, W)` of the explicit backward passes (`docs/method.md` §3).
//!
//! On the CPU backend (Burn's flex) both run through foolmap's own kernels ([`super::flex_conv`],
//! [`super::cpu_conv`]), pointwise (1×1) convolutions included: those read each image in place as
//! their patch matrix. Other backends keep Burn's `conv2d` / `conv_transpose2d`: nothing was
//! measured there.
//!
//! Until session 30 a pointwise convolution on flex was one matrix product over the channels,
//! `y[n] = W · x[n]` through Burn's batched `matmul`. Its autodiff copied operands, zeroed outputs
//! and summed a `[N, Cout, Cin]` weight gradient on the calling thread while the other cores
//! waited; the own kernels measured 1.11–1.18× on SqueezeNet's fooling step (BENCHMARKS.md,
//! "Session 30").

use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d as burn_conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

#[cfg(feature = "flex")]
use super::flex_conv::Op as FlexOp;

#[cfg(feature = "flex")]
fn on_flex(x: &Tensor<4>) -> bool {
    // Device equality ignores autodiff: true for flex with and without it.
    x.device() == burn::tensor::Device::flex()
}

/// Convolution with square `stride` and symmetric zero `padding`, optional bias.
///
/// # Shapes
/// `x`: `[N, Cin, H, W]`, `w`: `[Cout, Cin, kh, kw]`, `bias`: `[Cout]`; returns
/// `[N, Cout, Ho, Wo]`.
pub fn conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let own = own_kernel(&x, &w, stride, padding, x.dims(), FlexOp::Conv);
    #[cfg(not(feature = "flex"))]
    let own = None;
    let Some(y) = own else {
        let opts = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
        return burn_conv2d(x, w, bias, opts);
    };
    match bias {
        Some(b) => super::channel_affine(y, None, Some(b)),
        None => y,
    }
}

/// `op(a, W)` through foolmap's kernels when `a` is on flex (`None` elsewhere, or for a shape
/// they do not take): `in_dims` is the convolution's input `[N, Cin, H, W]`.
#[cfg(feature = "flex")]
fn own_kernel(
    a: &Tensor<4>,
    w: &Tensor<4>,
    stride: usize,
    padding: usize,
    in_dims: [usize; 4],
    op: FlexOp,
) -> Option<Tensor<4>> {
    let [n, cin, h, wd] = in_dims;
    let [cout, _, kh, kw] = w.dims();
    if !on_flex(a) || stride == 0 || h + 2 * padding < kh || wd + 2 * padding < kw {
        return None;
    }
    let g = super::cpu_conv::ConvGeom {
        n,
        cin,
        h,
        w: wd,
        cout,
        kh,
        kw,
        stride,
        padding,
    };
    super::flex_conv::run(op, &g, a, w)
}

/// Gradient of a convolution with respect to its input: `convT(g, W)` with the same stride and
/// padding and the output padding that restores the input size.
///
/// # Shapes
/// `g`: `[N, Cout, Ho, Wo]`, `w`: `[Cout, Cin, k, k]`; returns `in_dims` = `[N, Cin, H, W]`.
pub fn conv_input_grad(
    g: Tensor<4>,
    w: Tensor<4>,
    stride: usize,
    padding: usize,
    in_dims: [usize; 4],
) -> Tensor<4> {
    let [_, _, ho, wo] = g.dims();
    let [_, _, kh, kw] = w.dims();
    #[cfg(feature = "flex")]
    if let Some(dx) = own_kernel(&g, &w, stride, padding, in_dims, FlexOp::ConvT) {
        return dx;
    }
    let out_pad = |inp: usize, out: usize, k: usize| inp + 2 * padding - k - (out - 1) * stride;
    let opts = ConvTransposeOptions::new(
        [stride; 2],
        [padding; 2],
        [out_pad(in_dims[2], ho, kh), out_pad(in_dims[3], wo, kw)],
        [1, 1],
        1,
    );
    conv_transpose2d(g, w, None, opts)
}

#[cfg(all(test, feature = "flex", feature = "autodiff"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};

    fn max_rel(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-12);
        a.sub(b).abs().max().into_scalar::<f32>() / scale
    }

    /// foolmap's own kernels (every convolution on flex) equal Burn's convolution and transposed
    /// convolution: values, and the autodiff gradients of both operands, over strides, paddings,
    /// kernel sizes, non-square inputs, padded patch rows, shifted-copy patches, (from 8,192
    /// output pixels) shifted planes without patches, and pointwise kernels reading the image in
    /// place. Both autodiff and plain flex tensors take them.
    #[test]
    fn own_kernels_equal_burn_conv_and_transposed_conv_with_their_gradients() {
        use super::super::flex_conv::{Op, run as own};
        let dev = Device::flex().autodiff();
        dev.seed(5);
        let normal = Distribution::Normal(0.0, 1.0);
        // (n, cin, h, w, cout, k, stride, padding)
        let cases = [
            (2, 3, 7, 6, 4, 3, 1, 1),
            (2, 3, 9, 8, 5, 3, 2, 1),
            (1, 2, 11, 11, 3, 7, 2, 3),
            (3, 4, 5, 5, 2, 3, 1, 0),
            (2, 3, 8, 7, 4, 1, 2, 0),
            (2, 5, 6, 6, 3, 2, 2, 0),
            (1, 3, 15, 13, 6, 7, 2, 0),
            (2, 2, 4, 4, 3, 5, 1, 2),
            // Stride 1 with Wo = W: patches as one shifted copy of the plane; images one or two
            // pixels high or wide (every tap partly outside).
            (2, 3, 1, 5, 2, 3, 1, 1),
            (1, 2, 3, 1, 2, 3, 1, 1),
            (2, 2, 2, 3, 2, 5, 1, 2),
            // Ho·Wo = 256 and 1,024: patch rows with a padded stride.
            (2, 2, 16, 16, 3, 3, 1, 1),
            (2, 2, 32, 32, 3, 3, 1, 1),
            // Weight gradients of more than one 32 × 32 tile (`Cout` 40, `K` 45) in both layouts.
            (2, 5, 6, 6, 40, 3, 1, 1),
            // At least 8,192 output pixels: shifted planes instead of patches (one image with
            // multi-threaded GEMMs, two in parallel; a 5×5 kernel, so two copies per side).
            (1, 2, 96, 96, 3, 3, 1, 1),
            (2, 3, 64, 130, 4, 3, 1, 1),
            (1, 2, 91, 92, 2, 5, 1, 2),
            // Pointwise: the image read in place as its patch matrix (Ho·Wo = 42, and 8,372 with
            // one image and multi-threaded GEMMs); with Ho·Wo a multiple of 256 it is copied to
            // padded rows (256: im2col; 9,216: shifted planes).
            (3, 5, 7, 6, 4, 1, 1, 0),
            (1, 2, 91, 92, 3, 1, 1, 0),
            (2, 3, 16, 16, 4, 1, 1, 0),
            (1, 2, 96, 96, 3, 1, 1, 0),
        ];
        let (mut shifted, mut in_place) = (0, 0);
        for (n, cin, h, wd, cout, k, s, p) in cases {
            let what = format!("[{n},{cin},{h},{wd}] → {cout}, {k}×{k}, stride {s}, padding {p}");
            let x0 = Tensor::<4>::random([n, cin, h, wd], normal, &dev);
            let w0 = Tensor::<4>::random([cout, cin, k, k], normal, &dev);
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
            let r = Tensor::<4>::random([n, cout, ho, wo], normal, &dev);
            let r_in = Tensor::<4>::random([n, cin, h, wd], normal, &dev);
            let g = super::super::cpu_conv::ConvGeom {
                n,
                cin,
                h,
                w: wd,
                cout,
                kh: k,
                kw: k,
                stride: s,
                padding: p,
            };
            shifted += usize::from(g.shifted());
            in_place += usize::from(g.in_place());
            assert!(
                own(Op::Conv, &g, &x0, &w0).is_some(),
                "{what}: autodiff path"
            );
            assert!(
                own(Op::Conv, &g, &x0.clone().inner(), &w0.clone().inner()).is_some(),
                "{what}: plain path"
            );
            // Forward convolution and its gradients.
            let fwd = |ours: bool| {
                let (x, w) = (x0.clone().require_grad(), w0.clone().require_grad());
                let y = if ours {
                    conv2d(x.clone(), w.clone(), None, s, p)
                } else {
                    burn_conv2d(
                        x.clone(),
                        w.clone(),
                        None,
                        ConvOptions::new([s, s], [p, p], [1, 1], 1),
                    )
                };
                let grads = y.clone().mul(r.clone()).sum().backward();
                let (gx, gw) = (x.grad(&grads), w.grad(&grads));
                (y.inner(), gx, gw)
            };
            let (y, gx, gw) = fwd(true);
            let (y_ref, gx_ref, gw_ref) = fwd(false);
            assert!(max_rel(y, y_ref) < 1e-5, "{what}: forward");
            let (gx, gx_ref) = (gx.expect("dx"), gx_ref.expect("dx ref"));
            assert!(max_rel(gx, gx_ref) < 1e-5, "{what}: dx");
            let (gw, gw_ref) = (gw.expect("dW"), gw_ref.expect("dW ref"));
            assert!(max_rel(gw, gw_ref) < 1e-5, "{what}: dW");
            // Transposed convolution (the explicit input gradient) and its gradients, with each
            // operand tracked or not (both: one fused backward kernel).
            for (track_g, track_w) in [(true, true), (true, false), (false, true)] {
                let bwd = |ours: bool| {
                    let (mut gy, mut w) = (r.clone(), w0.clone());
                    if track_g {
                        gy = gy.require_grad();
                    }
                    if track_w {
                        w = w.require_grad();
                    }
                    let gi = if ours {
                        conv_input_grad(gy.clone(), w.clone(), s, p, [n, cin, h, wd])
                    } else {
                        let pad = |i: usize, o: usize| i + 2 * p - k - (o - 1) * s;
                        let opts = ConvTransposeOptions::new(
                            [s, s],
                            [p, p],
                            [pad(h, ho), pad(wd, wo)],
                            [1, 1],
                            1,
                        );
                        conv_transpose2d(gy.clone(), w.clone(), None, opts)
                    };
                    let grads = gi.clone().mul(r_in.clone()).sum().backward();
                    (gi.inner(), gy.grad(&grads), w.grad(&grads))
                };
                let what = format!("{what}, transposed, tracked (g, W) = ({track_g}, {track_w})");
                let (gi, dgy, dw) = bwd(true);
                let (gi_ref, dgy_ref, dw_ref) = bwd(false);
                assert!(max_rel(gi, gi_ref) < 1e-5, "{what}");
                assert_eq!(dgy.is_some(), track_g, "{what}");
                assert_eq!(dw.is_some(), track_w, "{what}");
                if let (Some(a), Some(b)) = (dgy, dgy_ref) {
                    assert!(max_rel(a, b) < 1e-5, "{what}: d input");
                }
                if let (Some(a), Some(b)) = (dw, dw_ref) {
                    assert!(max_rel(a, b) < 1e-5, "{what}: dW");
                }
            }
        }
        assert_eq!(
            (shifted, in_place),
            (4, 2),
            "cases on shifted planes, read in place"
        );
    }
}
