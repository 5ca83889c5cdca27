//! Global average pool (ResNet, DenseNet, SqueezeNet head), spec §4.1.

use burn::tensor::Tensor;

/// `R_in[c,h,w] = a⁺[c,h,w] · R[c] / (Σ_{h,w} a⁺[c] + 1e-8)`.
///
/// # Shapes
/// `a`: `[N, C, H, W]`, `r`: `[N, C, 1, 1]`; returns `[N, C, H, W]`.
pub fn global_avg_pool_lrp(a: Tensor<4>, r: Tensor<4>) -> Tensor<4> {
    let ap = a.clamp_min(0.0);
    let total = ap.clone().sum_dim(3).sum_dim(2).add_scalar(1e-8);
    ap.mul(r.div(total))
}
