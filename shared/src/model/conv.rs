//! The two convolutions foolmap issues: `conv(x, W)` of the forward passes (and of the LRP rules'
//! `Z`) and its input gradient `convT(g, W)` of the explicit backward passes (`docs/method.md` §3).
//!
//! Both go to Burn's `conv2d` / `conv_transpose2d`, except a *pointwise* convolution (1×1 kernel,
//! stride 1, no padding) on the CPU backend (Burn's flex), which is one matrix product over the
//! channels: `y[n] = W · x[n]` with `W` viewed as `[Cout, Cin]` and `x[n]` as `[Cin, H·W]`. Flex
//! runs a pointwise convolution through its general convolution (and its backward through a
//! transposed convolution and a convolution over the batch), which measured 2.7× slower for
//! forward + backward than the product (BENCHMARKS.md, "Pointwise convolutions as one matrix
//! product"). The product is the same sum; results agree to float rounding (tests below). Other
//! backends keep Burn's kernels: nothing was measured there.

use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d as burn_conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

#[cfg(feature = "flex")]
use super::flex_conv::Op as FlexOp;

/// Whether `conv(x, W)` with kernel `k`, `stride` and `padding` runs as a matrix product on
/// `x`'s device.
fn as_product(x: &Tensor<4>, k: [usize; 2], stride: usize, padding: usize) -> bool {
    k == [1, 1] && stride == 1 && padding == 0 && on_flex(x)
}

#[cfg(feature = "flex")]
fn on_flex(x: &Tensor<4>) -> bool {
    // Device equality ignores autodiff: true for flex with and without it.
    x.device() == burn::tensor::Device::flex()
}

#[cfg(not(feature = "flex"))]
fn on_flex(_: &Tensor<4>) -> bool {
    false
}

/// `W · x` per image for a 1×1 kernel: `w` `[Cout, Cin, 1, 1]`, `x` `[N, Cin, H, W]` →
/// `[N, Cout, H, W]`.
fn pointwise(x: Tensor<4>, w: Tensor<4>) -> Tensor<4> {
    let [n, cin, h, wd] = x.dims();
    let cout = w.dims()[0];
    w.reshape([1, cout, cin])
        .matmul(x.reshape([n, cin, h * wd]))
        .reshape([n, cout, h, wd])
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
    let [_, _, kh, kw] = w.dims();
    let y = if as_product(&x, [kh, kw], stride, padding) {
        pointwise(x, w)
    } else {
        #[cfg(feature = "flex")]
        let own = own_kernel(&x, &w, stride, padding, x.dims(), FlexOp::Conv);
        #[cfg(not(feature = "flex"))]
        let own = None;
        match own {
            Some(y) => y,
            None => {
                let opts = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
                return burn_conv2d(x, w, bias, opts);
            }
        }
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
/// padding and the output padding that restores the input size (for a pointwise convolution on
/// flex: `Wᵀ · g` per image).
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
    let [cout, cin, kh, kw] = w.dims();
    if as_product(&g, [kh, kw], stride, padding) {
        return pointwise(
            g,
            w.reshape([cout, cin])
                .transpose()
                .reshape([cin, cout, 1, 1]),
        );
    }
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

    /// The matrix product equals Burn's convolution (forward, bias, input gradient) and gives the
    /// same autodiff gradients for the input and the weight.
    #[test]
    fn pointwise_product_equals_burn_conv_with_its_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(11);
        let x0 = Tensor::<4>::random([3, 5, 7, 6], Distribution::Normal(0.0, 1.0), &dev);
        let w0 = Tensor::<4>::random([4, 5, 1, 1], Distribution::Normal(0.0, 1.0), &dev);
        let b = Tensor::<1>::random([4], Distribution::Normal(0.0, 1.0), &dev);
        let r = Tensor::<4>::random([3, 4, 7, 6], Distribution::Normal(0.0, 1.0), &dev);
        // The product is taken with and without autodiff; other kernels keep Burn's.
        assert!(as_product(&x0, [1, 1], 1, 0) && as_product(&x0.clone().inner(), [1, 1], 1, 0));
        assert!(!as_product(&x0, [3, 3], 1, 1) && !as_product(&x0, [1, 1], 2, 0));
        let run = |lowered: bool| {
            let (x, w) = (x0.clone().require_grad(), w0.clone().require_grad());
            let y = if lowered {
                conv2d(x.clone(), w.clone(), Some(b.clone()), 1, 0)
            } else {
                burn_conv2d(
                    x.clone(),
                    w.clone(),
                    Some(b.clone()),
                    ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
                )
            };
            let g = y.clone().mul(r.clone()).sum().backward();
            let (gx, gw) = (x.grad(&g).unwrap(), w.grad(&g).unwrap());
            (y.inner(), gx, gw)
        };
        let (y, gx, gw) = run(true);
        let (y_ref, gx_ref, gw_ref) = run(false);
        assert!(max_rel(y, y_ref) < 1e-6);
        assert!(max_rel(gx.clone(), gx_ref) < 1e-6);
        assert!(max_rel(gw, gw_ref) < 1e-6);
        // The explicit input gradient is the autodiff one.
        let gi = conv_input_grad(r.clone().inner(), w0.clone().inner(), 1, 0, [3, 5, 7, 6]);
        assert!(max_rel(gi, gx) < 1e-6);
    }

    /// foolmap's own kernels (every kernel but the pointwise product, on flex) equal Burn's
    /// convolution and transposed convolution: values, and the autodiff gradients of both
    /// operands, over strides, paddings, kernel sizes, non-square inputs, padded patch rows,
    /// shifted-copy patches and (from 8,192 output pixels) shifted planes without patches. Both
    /// autodiff and plain flex tensors take them.
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
            // At least 8,192 output pixels: shifted planes instead of patches (one image with
            // multi-threaded GEMMs, two in parallel; a 5×5 kernel, so two copies per side).
            (1, 2, 96, 96, 3, 3, 1, 1),
            (2, 3, 64, 130, 4, 3, 1, 1),
            (1, 2, 91, 92, 2, 5, 1, 2),
        ];
        let mut shifted = 0;
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
        assert_eq!(shifted, 3, "cases on shifted planes");
    }
}
