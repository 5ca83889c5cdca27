//! Top-k fooling (docs/method.md §4; spec §5.2): remove the map's mass from the positions of
//! the original's top 10 %.

use burn::tensor::{Int, Tensor, TensorData};

use super::{Direction, Passive, reference};
use crate::error::Result;
use crate::maps::minmax;

/// The Top-k fooling type.
pub struct TopK;

impl Passive for TopK {
    fn needs_reference(&self) -> bool {
        true
    }
    fn direction(&self) -> Direction {
        Direction::LowerIsFooled
    }
    fn default_lr_lambda(&self) -> (f64, f64) {
        (1e-4, 3.0)
    }
    fn loss(&self, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
        let pos = topk_positions(&reference(h0, "topk")?)?;
        Ok(topk_loss(h, &pos))
    }
    fn statistic(&self, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
        let pos = topk_positions(&reference(h0, "topk")?)?;
        Ok(topk_stat(h, &pos))
    }
}

/// K = ⌊h·w/10⌋ flat positions of the largest values of `minmax(H0)` per image, largest first,
/// ties to the lower index (spec §5.2). Computed on the host from a constant map.
pub fn topk_positions(h0: &Tensor<3>) -> Result<Vec<Vec<usize>>> {
    let [n, h, w] = h0.dims();
    let k = (h * w / 10).max(1);
    let data = crate::scores::read_back(minmax(h0.clone().detach()))?;
    Ok(data
        .chunks(h * w)
        .take(n)
        .map(|img| crate::scores::top_k(img, k))
        .collect())
}

/// Per-image Top-k statistic `mean_{j∈P} minmax(H)_j²` → `[N]` (spec §7.2).
pub fn topk_stat(h: Tensor<3>, positions: &[Vec<usize>]) -> Tensor<1> {
    let [n, hh, ww] = h.dims();
    let k = positions.first().map_or(1, Vec::len);
    let flat: Vec<i64> = positions.iter().flatten().map(|&p| p as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(flat, [n, k]), &h.device());
    minmax(h)
        .reshape([n, hh * ww])
        .gather(1, idx)
        .square()
        .mean_dim(1)
        .reshape([n])
}

/// Top-k loss: mean of [`topk_stat`] → `[1]` (spec §5.2).
pub fn topk_loss(h: Tensor<3>, positions: &[Vec<usize>]) -> Tensor<1> {
    topk_stat(h, positions).mean()
}
