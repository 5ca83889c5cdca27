//! LRP rules (spec §4.1, fixtures README "LRP"), one per file, each a plain function of ordinary
//! forward tensor ops so that a loss on the resulting map back-propagates with first-order
//! autodiff. Signs `s(z)` are constants; activations and weights stay in the graph.

mod alpha_beta;
mod avg_pool;
mod epsilon;
mod global_avg_pool;
mod residual_split;
mod winner_take_all;

pub use alpha_beta::{BiasMode, alpha1_beta0};
pub use avg_pool::avg_pool_lrp;
pub use epsilon::epsilon;
pub use global_avg_pool::global_avg_pool_lrp;
pub use residual_split::residual_split;
pub use winner_take_all::winner_take_all;

use burn::tensor::Tensor;

/// `s(z)`: +1 where `z ≥ 0`, −1 elsewhere, as a constant (no gradient).
pub fn sign_const<const D: usize>(z: &Tensor<D>) -> Tensor<D> {
    z.clone()
        .detach()
        .greater_equal_elem(0.0)
        .float()
        .mul_scalar(2.0)
        .sub_scalar(1.0)
}
