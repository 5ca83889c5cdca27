//! Center-mass fooling (docs/method.md §4; spec §5.3): move the map's centre of mass away from
//! the original's.

use burn::tensor::{Tensor, TensorData};

use super::{Direction, Passive, reference};
use crate::error::Result;
use crate::maps::minmax;

/// The Center-mass fooling type.
pub struct CenterMass;

impl Passive for CenterMass {
    fn needs_reference(&self) -> bool {
        true
    }
    fn direction(&self) -> Direction {
        Direction::HigherIsFooled
    }
    fn default_lr_lambda(&self) -> (f64, f64) {
        (5e-5, 0.5)
    }
    fn loss(&self, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
        Ok(center_mass_loss(h, reference(h0, "center-mass")?))
    }
    fn statistic(&self, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
        Ok(center_mass_stat(h, reference(h0, "center-mass")?))
    }
}

/// 1-based centre of mass `(C_row, C_col)` of `minmax(H)`, each `[N]` (spec §5.3).
pub fn center_of_mass(h: Tensor<3>) -> (Tensor<1>, Tensor<1>) {
    let [n, hh, ww] = h.dims();
    let h = minmax(h);
    let dev = h.device();
    let rows = Tensor::<1>::from_data(
        TensorData::new((1..=hh).map(|r| r as f32).collect::<Vec<_>>(), [hh]),
        &dev,
    );
    let cols = Tensor::<1>::from_data(
        TensorData::new((1..=ww).map(|c| c as f32).collect::<Vec<_>>(), [ww]),
        &dev,
    );
    let total = h
        .clone()
        .sum_dim(2)
        .sum_dim(1)
        .reshape([n])
        .add_scalar(1e-8);
    let row_mass = h.clone().sum_dim(2).reshape([n, hh]);
    let col_mass = h.sum_dim(1).reshape([n, ww]);
    let cr = row_mass
        .mul(rows.reshape([1, hh]))
        .sum_dim(1)
        .reshape([n])
        .div(total.clone());
    let cc = col_mass
        .mul(cols.reshape([1, ww]))
        .sum_dim(1)
        .reshape([n])
        .div(total);
    (cr, cc)
}

/// Center-mass training loss `−mean_n(|ΔC_row| + |ΔC_col|)` → `[1]` (spec §5.3).
pub fn center_mass_loss(h: Tensor<3>, h0: Tensor<3>) -> Tensor<1> {
    let (r, c) = center_of_mass(h);
    let (r0, c0) = center_of_mass(h0.detach());
    r.sub(r0).abs().add(c.sub(c0).abs()).mean().neg()
}

/// Per-image Center-mass statistic `sqrt((ΔC_row² + ΔC_col²)/2)/(w − 1)` → `[N]` (spec §5.3).
pub fn center_mass_stat(h: Tensor<3>, h0: Tensor<3>) -> Tensor<1> {
    let w = h.dims()[2];
    let (r, c) = center_of_mass(h);
    let (r0, c0) = center_of_mass(h0.detach());
    r.sub(r0)
        .square()
        .add(c.sub(c0).square())
        .div_scalar(2.0)
        .sqrt()
        .div_scalar((w.max(2) - 1) as f64)
}
