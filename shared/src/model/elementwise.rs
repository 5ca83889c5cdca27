//! The element-wise steps that the CPU backend runs through foolmap's own loops
//! ([`super::flex_channel`], `docs/method.md` §9) and every other backend through Burn's
//! operations: a per-channel affine map (eval-mode BatchNorm, a convolution's bias, BatchNorm's
//! gradient), the ReLU of one tensor or of a residual sum, the two fused (a BatchNorm and its
//! ReLU), the gradient sweeps' ReLU masks, and
//! the concatenation of two tensors along the channels ([`super::flex_cat`] on the CPU). Both
//! paths give the same values (tests in [`super::flex_channel`] and [`super::flex_cat`]). Each takes its first
//! tensor by value: on the CPU, as in Burn's own operations, a step overwrites it when nothing
//! else holds its buffer.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// `x · scale[c] + shift[c]` per channel; a missing part is left out.
///
/// # Shapes
/// `x` `[N, C, H, W]`, `scale` and `shift` `[C]` → `[N, C, H, W]`.
pub fn channel_affine(
    x: Tensor<4>,
    scale: Option<Tensor<1>>,
    shift: Option<Tensor<1>>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let x = match super::flex_channel::affine(x, scale.as_ref(), shift.as_ref()) {
        Ok(y) => return y,
        Err(x) => x,
    };
    let c = x.dims()[1];
    let x = match scale {
        Some(s) => x.mul(s.reshape([1, c, 1, 1])),
        None => x,
    };
    match shift {
        Some(b) => x.add(b.reshape([1, c, 1, 1])),
        None => x,
    }
}

/// `ReLU(x · scale[c] + shift[c])`: an eval-mode BatchNorm and the ReLU after it, in one pass
/// on the CPU (and one backward pass), else [`channel_affine`] then the ReLU. The same values
/// either way.
///
/// # Shapes
/// `x` `[N, C, H, W]`, `scale` and `shift` `[C]` → `[N, C, H, W]`.
pub fn channel_affine_relu(x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let x = match super::flex_channel::affine_relu(x, &scale, &shift) {
        Ok(y) => return y,
        Err(x) => x,
    };
    relu_of_sum(channel_affine(x, Some(scale), Some(shift)), None)
}

/// `ReLU(a)`, or `ReLU(a + b)` (a residual block's output).
///
/// # Shapes
/// `a`, `b` `[N, C, H, W]` → `[N, C, H, W]`.
pub fn relu_of_sum(a: Tensor<4>, b: Option<Tensor<4>>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let a = match super::flex_channel::relu_sum(a, b.as_ref()) {
        Ok(y) => return y,
        Err(a) => a,
    };
    match b {
        Some(b) => relu(a.add(b)),
        None => relu(a),
    }
}

/// `r · [a > 0]`, or `r · [a + b > 0]`: a ReLU's mask in a gradient sweep, with the ReLU's input
/// `a` (or the residual sum `a + b`) a constant.
///
/// # Shapes
/// `r`, `a`, `b` `[N, C, H, W]` → `[N, C, H, W]`.
pub fn relu_mask(r: Tensor<4>, a: &Tensor<4>, b: Option<&Tensor<4>>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let r = match super::flex_channel::mask(r, a, b) {
        Ok(y) => return y,
        Err(r) => r,
    };
    let t = match b {
        Some(b) => a.clone().add(b.clone()),
        None => a.clone(),
    };
    r.mul(t.detach().greater_elem(0.0).float())
}

/// `[a, b]` along the channels (a Fire module's two expands, a DenseNet layer's input and new
/// features).
///
/// # Shapes
/// `a` `[N, Ca, H, W]`, `b` `[N, Cb, H, W]` → `[N, Ca + Cb, H, W]`.
pub fn cat_channels(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let (a, b) = match super::flex_cat::cat(a, b) {
        Ok(y) => return y,
        Err(parts) => parts,
    };
    Tensor::cat(vec![a, b], 1)
}
