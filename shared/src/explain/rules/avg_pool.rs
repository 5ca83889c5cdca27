//! Average pool `k×k`, stride `k` (DenseNet transitions), α1β0 part (spec §4.1).

use burn::tensor::Tensor;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

use crate::explain::upsample_blocks;

/// `R_in = a⁺ ⊙ up(R / (avgpool(a⁺) + 1e-8)) / k²`.
///
/// # Shapes
/// `a`: `[N, C, H, W]`, `r`: `[N, C, H/k, W/k]`; returns `[N, C, H, W]`.
pub fn avg_pool_lrp(a: Tensor<4>, r: Tensor<4>, k: usize) -> Tensor<4> {
    let ap = a.clamp_min(0.0);
    let pooled = avg_pool2d(ap.clone(), AvgPoolOptions::new([k; 2]).with_stride([k; 2]));
    let q = r.div(pooled.add_scalar(1e-8));
    let dims = ap.dims();
    ap.mul(upsample_blocks(q, k, dims))
        .div_scalar((k * k) as f64)
}
