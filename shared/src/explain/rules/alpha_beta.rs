//! LRP-α1β0 with signed inputs for every convolution (spec §4.1; fixtures README).

use burn::tensor::Tensor;

use super::sign_const;
use crate::model::{conv_input_grad, conv2d};

/// How the convolution bias enters `Z` (spec §9 Q4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BiasMode {
    /// Bias counted once with its sign (foolmap default, the fixtures' `map.*`).
    #[default]
    Signed,
    /// Only the positive part of the bias (Zennit convention, fixtures' `alt.bias_positive.*`).
    Positive,
    /// Bias added to both the positive and the negative part (the official code, Q4).
    Twice,
}

/// `R_in = a⁺ ⊙ convT(S, W⁺) + a⁻ ⊙ convT(S, W⁻)`, `S = R / (Z + stab·s(Z))`,
/// `Z = conv(a⁺, W⁺) + conv(a⁻, W⁻) + bias`.
///
/// # Shapes
/// `a`: `[N, Cin, H, W]`, `w`: `[Cout, Cin, k, k]`, `b`: `[Cout]`, `r`: `[N, Cout, Ho, Wo]`;
/// returns `[N, Cin, H, W]`.
#[allow(clippy::too_many_arguments)]
pub fn alpha1_beta0(
    a: Tensor<4>,
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    r: Tensor<4>,
    stride: usize,
    padding: usize,
    bias_mode: BiasMode,
    stabilizer: f64,
) -> Tensor<4> {
    let ap = a.clone().clamp_min(0.0);
    let an = a.sub(ap.clone());
    let wp = w.clone().clamp_min(0.0);
    let wn = w.sub(wp.clone());
    let mut z = conv2d(ap.clone(), wp.clone(), None, stride, padding).add(conv2d(
        an.clone(),
        wn.clone(),
        None,
        stride,
        padding,
    ));
    if let Some(b) = b {
        let c = b.dims()[0];
        let b = match bias_mode {
            BiasMode::Signed => b,
            BiasMode::Positive => b.clamp_min(0.0),
            BiasMode::Twice => b.mul_scalar(2.0),
        };
        z = z.add(b.reshape([1, c, 1, 1]));
    }
    let zt = z.clone().add(sign_const(&z).mul_scalar(stabilizer));
    let s = r.div(zt);
    let dims = ap.dims();
    ap.mul(conv_input_grad(s.clone(), wp, stride, padding, dims))
        .add(an.mul(conv_input_grad(s, wn, stride, padding, dims)))
}
