//! Fooling losses (spec §5) and per-image fooling statistics (spec §7.2), with the direction in
//! which each statistic counts as "fooled" declared as data (Quantus style).
//!
//! Maps are `[N, h, w]`. `H0` (the original model's map) is always a constant: callers pass a
//! tensor computed without autodiff or detached.

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{FoolmapError, Result};
use crate::maps::minmax;

/// Which way a statistic moves when the explanation is fooled (serialised by its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// Smaller values mean more fooled (Location, Top-k).
    #[serde(rename = "lower")]
    LowerIsFooled,
    /// Larger values mean more fooled (Center-mass).
    #[serde(rename = "higher")]
    HigherIsFooled,
}

impl Direction {
    /// Stable id for reports and JSON: `"lower"` or `"higher"` (is more fooled).
    pub fn id(self) -> &'static str {
        match self {
            Direction::LowerIsFooled => "lower",
            Direction::HigherIsFooled => "higher",
        }
    }
}

macro_rules! fooling_types {
    ($( $variant:ident => $id:literal, $doc:literal ),* $(,)?) => {
        /// The fooling objectives of the paper (spec §5).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FoolingType { $( #[doc = $doc] $variant ),* }

        impl FoolingType {
            /// All fooling types, in registry order.
            pub const ALL: &'static [FoolingType] = &[$(FoolingType::$variant),*];

            /// Stable id used by the CLI, configs and reports.
            pub fn id(self) -> &'static str {
                match self { $(FoolingType::$variant => $id),* }
            }
        }
    };
}

fooling_types! {
    Location => "location", "Passive: push the map onto a border frame (§5.1).",
    TopK => "topk", "Passive: remove mass from the original top-10 % positions (§5.2).",
    CenterMass => "center-mass", "Passive: move the centre of mass away from the original's (§5.3).",
    Active => "active", "Active: swap the explanations of two classes (§5.4).",
}

impl std::fmt::Display for FoolingType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for FoolingType {
    type Err = FoolmapError;
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.replace('_', "-");
        FoolingType::ALL
            .iter()
            .copied()
            .find(|t| t.id() == norm || (norm == "top-k" && *t == FoolingType::TopK))
            .ok_or_else(|| FoolmapError::UnknownName {
                kind: "fooling type",
                name: s.to_string(),
                choices: FoolingType::ALL
                    .iter()
                    .map(|t| t.id().to_string())
                    .collect(),
            })
    }
}

impl FoolingType {
    /// Direction of the per-image statistic (spec §7.3); `None` for Active, which is scored by
    /// the correlation metrics of §7.4.
    pub fn direction(self) -> Option<Direction> {
        match self {
            FoolingType::Location | FoolingType::TopK => Some(Direction::LowerIsFooled),
            FoolingType::CenterMass => Some(Direction::HigherIsFooled),
            FoolingType::Active => None,
        }
    }

    /// Range of the per-image statistic for maps in [0, 1].
    pub fn range(self) -> (f64, f64) {
        (0.0, 1.0)
    }

    /// Whether a statistic value counts as fooled at threshold `tau` (default 0.15).
    pub fn is_fooled(self, s: f64, tau: f64) -> bool {
        match self.direction() {
            Some(Direction::LowerIsFooled) => s < tau,
            Some(Direction::HigherIsFooled) => s > tau,
            None => false,
        }
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

fn mask_tensor(map: &Tensor<3>) -> Tensor<3> {
    let [_, h, w] = map.dims();
    Tensor::from_data(
        TensorData::new(location_mask(h, w), [1, h, w]),
        &map.device(),
    )
}

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

/// Location loss `mean_n mean_pixels (M − H)²` → `[1]` (spec §5.1).
pub fn location_loss(h: Tensor<3>) -> Tensor<1> {
    location_stat(h).mean()
}

/// K = ⌊h·w/10⌋ flat positions of the largest values of `minmax(H0)` per image, largest first,
/// ties to the lower index (spec §5.2). Computed on the host from a constant map.
pub fn topk_positions(h0: &Tensor<3>) -> Result<Vec<Vec<usize>>> {
    let [n, h, w] = h0.dims();
    let k = (h * w / 10).max(1);
    let data = minmax(h0.clone().detach())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| FoolmapError::invalid("H0", format!("{e:?}")))?;
    Ok(data
        .chunks(h * w)
        .take(n)
        .map(|img| {
            let mut idx: Vec<usize> = (0..h * w).collect();
            idx.sort_by(|&a, &b| img[b].total_cmp(&img[a]).then(a.cmp(&b)));
            idx.truncate(k);
            idx
        })
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

/// Per-image statistic of a passive fooling type (spec §7.2). `h0` is needed for Top-k and
/// Center-mass.
pub fn statistic(kind: FoolingType, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
    let need = || FoolmapError::invalid("H0", format!("`{kind}` needs the original map"));
    match kind {
        FoolingType::Location => Ok(location_stat(h)),
        FoolingType::TopK => {
            let pos = topk_positions(&h0.ok_or_else(need)?)?;
            Ok(topk_stat(h, &pos))
        }
        FoolingType::CenterMass => Ok(center_mass_stat(h, h0.ok_or_else(need)?)),
        FoolingType::Active => Err(FoolmapError::invalid(
            "fooling type",
            "active fooling has no per-image statistic; use the correlation metrics",
        )),
    }
}

/// Passive fooling loss (spec §5.1–5.3); `h0` is needed for Top-k and Center-mass.
pub fn passive_loss(kind: FoolingType, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
    let need = || FoolmapError::invalid("H0", format!("`{kind}` needs the original map"));
    match kind {
        FoolingType::Location => Ok(location_loss(h)),
        FoolingType::TopK => {
            let pos = topk_positions(&h0.ok_or_else(need)?)?;
            Ok(topk_loss(h, &pos))
        }
        FoolingType::CenterMass => Ok(center_mass_loss(h, h0.ok_or_else(need)?)),
        FoolingType::Active => Err(FoolmapError::invalid(
            "fooling type",
            "active fooling takes two classes; use `active_loss`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_mask_counts_match_spec() {
        // §10.6: centre zeros 25 (7×7) and 100 (14×14).
        let zeros = |h| location_mask(h, h).iter().filter(|&&v| v == 0.0).count();
        assert_eq!(zeros(7), 25);
        assert_eq!(zeros(14), 100);
        assert_eq!(zeros(8), 36);
        assert_eq!(zeros(4), 16); // k = 0: all zeros (fixtures, tiny DenseNet)
    }

    #[test]
    fn fooled_direction() {
        assert!(FoolingType::Location.is_fooled(0.1, 0.15));
        assert!(!FoolingType::TopK.is_fooled(0.2, 0.15));
        assert!(FoolingType::CenterMass.is_fooled(0.2, 0.15));
        assert!("center_mass".parse::<FoolingType>().is_ok());
        assert!(
            "frame"
                .parse::<FoolingType>()
                .unwrap_err()
                .to_string()
                .contains("location")
        );
    }
}
