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
    let [cout, _, kh, kw] = w.dims();
    if as_product(&x, [kh, kw], stride, padding) {
        let y = pointwise(x, w);
        return match bias {
            Some(b) => y.add(b.reshape([1, cout, 1, 1])),
            None => y,
        };
    }
    burn_conv2d(
        x,
        w,
        bias,
        ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1),
    )
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
}
