//! Max-pool: relevance (or gradient) goes to the forward winner of each window; where one input
//! wins several overlapping windows the contributions are summed (fixtures README; the official
//! code's overwrite, spec §9 Q6, is not reproduced).

use burn::tensor::{IndexingUpdateOp, Int, Tensor};

/// Routes `r` `[N, C, Ho, Wo]` back to the winners `idx` `[N, C, Ho·Wo]` (flat indices into the
/// `H·W` input plane); returns `[N, C, H, W]` with `[H, W] = in_hw`.
pub fn winner_take_all(r: Tensor<4>, idx: Tensor<3, Int>, in_hw: [usize; 2]) -> Tensor<4> {
    let [n, c, ho, wo] = r.dims();
    let [h, w] = in_hw;
    Tensor::<3>::zeros([n, c, h * w], &r.device())
        .scatter(2, idx, r.reshape([n, c, ho * wo]), IndexingUpdateOp::Add)
        .reshape([n, c, h, w])
}
