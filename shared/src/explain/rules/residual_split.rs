//! Residual split `y = ReLU(b + s)` (fixtures README: positive parts of branch and shortcut).

use burn::tensor::Tensor;

/// Returns `(R_b, R_s)` with `R_b = b⁺/(b⁺ + s⁺ + 1e-12) ⊙ R`, `R_s = s⁺/(b⁺ + s⁺ + 1e-12) ⊙ R`.
///
/// `code_faithful` uses `z = b + s` in place of `b` (the official code's in-place add, §9 Q3).
///
/// # Shapes
/// All `[N, C, H, W]`.
pub fn residual_split(
    b: Tensor<4>,
    s: Tensor<4>,
    r: Tensor<4>,
    code_faithful: bool,
) -> (Tensor<4>, Tensor<4>) {
    let b = if code_faithful { b.add(s.clone()) } else { b };
    let bp = b.clamp_min(0.0);
    let sp = s.clamp_min(0.0);
    let den = bp.clone().add(sp.clone()).add_scalar(1e-12);
    (bp.mul(r.clone()).div(den.clone()), sp.mul(r).div(den))
}
