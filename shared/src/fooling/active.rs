//! Active fooling (docs/method.md §4; spec §5.4): swap the explanations of two classes. Scored
//! by correlations (spec §7.4), not by a per-image statistic, so it has no [`super::Passive`]
//! implementation.

use burn::tensor::Tensor;

/// Active loss `½[MSE(H_c1, H0_c2) + MSE(H_c2, H0_c1)]` → `[1]` (spec §5.4).
pub fn active_loss(
    h_c1: Tensor<3>,
    h_c2: Tensor<3>,
    h0_c1: Tensor<3>,
    h0_c2: Tensor<3>,
) -> Tensor<1> {
    let a = h_c1.sub(h0_c2.detach()).square().mean();
    let b = h_c2.sub(h0_c1.detach()).square().mean();
    a.add(b).div_scalar(2.0)
}
