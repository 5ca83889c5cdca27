//! Location fooling (docs/method.md §4; spec §5.1): push the map onto a border frame.

#[cfg(feature = "tensor")]
use {
    super::{Direction, Passive},
    crate::error::Result,
    burn::tensor::{Tensor, TensorData},
};

#[cfg(feature = "tensor")]
/// The Location fooling type.
pub struct Location;

#[cfg(feature = "tensor")]
impl Passive for Location {
    fn needs_reference(&self) -> bool {
        false
    }
    fn direction(&self) -> Direction {
        Direction::LowerIsFooled
    }
    fn default_lr_lambda(&self) -> (f64, f64) {
        (1e-4, 3.0)
    }
    fn loss(&self, h: Tensor<3>, _h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
        Ok(location_loss(h))
    }
    fn statistic(&self, h: Tensor<3>, _h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
        Ok(location_stat(h))
    }
}

/// Location mask `[h, w]`: 1 on a border frame of width ⌊h/7⌋, 0 inside (spec §5.1).
pub fn location_mask(h: usize, w: usize) -> Vec<f32> {
    let k = h / 7;
    (0..h * w)
        .map(|i| {
            let (r, c) = (i / w, i % w);
            let inside = r >= k && r < h - k && c >= k && c < w - k;
            if inside { 0.0 } else { 1.0 }
        })
        .collect()
}

#[cfg(feature = "tensor")]
fn mask_tensor(map: &Tensor<3>) -> Tensor<3> {
    let [_, h, w] = map.dims();
    Tensor::from_data(
        TensorData::new(location_mask(h, w), [1, h, w]),
        &map.device(),
    )
}

#[cfg(feature = "tensor")]
/// Per-image Location statistic `mean_pixels (M − H)²` → `[N]` (spec §7.2).
pub fn location_stat(h: Tensor<3>) -> Tensor<1> {
    let [n, hh, ww] = h.dims();
    mask_tensor(&h)
        .sub(h)
        .square()
        .reshape([n, hh * ww])
        .mean_dim(1)
        .reshape([n])
}

#[cfg(feature = "tensor")]
/// Location loss `mean_n mean_pixels (M − H)²` → `[1]` (spec §5.1).
pub fn location_loss(h: Tensor<3>) -> Tensor<1> {
    location_stat(h).mean()
}
