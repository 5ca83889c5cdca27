//! Fooling losses (spec §5) and per-image fooling statistics (spec §7.2), with the direction in
//! which each statistic counts as "fooled" declared as data (Quantus style).
//!
//! Maps are `[N, h, w]`. `H0` (the original model's map) is always a constant: callers pass a
//! tensor computed without autodiff or detached.

#[cfg(feature = "tensor")]
use burn::tensor::Tensor;

use crate::error::{FoolmapError, Result};

#[cfg(feature = "tensor")]
mod active;
#[cfg(feature = "tensor")]
mod center_mass;
mod location;
#[cfg(feature = "tensor")]
mod topk;

pub use location::location_mask;
// The losses and statistics on tensors.
#[cfg(feature = "tensor")]
pub use {
    active::active_loss,
    center_mass::{CenterMass, center_mass_loss, center_mass_stat, center_of_mass},
    location::{Location, location_loss, location_stat},
    topk::{TopK, topk_loss, topk_positions, topk_stat},
};

#[cfg(feature = "tensor")]
/// A passive fooling type (docs/method.md §4, §6): its loss on the tap maps of a batch and its
/// per-image statistic, whether both need the original model's map `H0`, and which way the
/// statistic moves when the map is fooled. One file per type; [`FoolingType::passive`] is the
/// registry's link to it.
///
/// Maps `h`, `h0`: `[N, h, w]`; `h0` is a constant (computed without autodiff or detached).
pub trait Passive: Sync {
    /// Whether the loss and the statistic read `H0` (then the trainer computes it).
    fn needs_reference(&self) -> bool;
    /// Which way the statistic moves when fooled.
    fn direction(&self) -> Direction;
    /// `(learning rate, λ)` for models the paper has no values for (foolmap's own, measured on
    /// the CIFAR ResNets).
    fn default_lr_lambda(&self) -> (f64, f64);
    /// The loss `L_F` → `[1]`.
    fn loss(&self, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>>;
    /// The per-image statistic → `[N]`.
    fn statistic(&self, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>>;
}

#[cfg(feature = "tensor")]
/// `h0`, or an error naming the fooling type that needs it.
fn reference(h0: Option<Tensor<3>>, kind: &str) -> Result<Tensor<3>> {
    h0.ok_or_else(|| FoolmapError::invalid("H0", format!("`{kind}` needs the original map")))
}

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
    ($( $variant:ident => $id:literal, $imp:expr, $doc:literal ),* $(,)?) => {
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

            /// Whether the type is passive (a per-image statistic and a loss on one map), read
            /// from the registry line without the tensor stack (a test checks it against
            /// [`FoolingType::passive`]).
            pub fn is_passive(self) -> bool {
                match self { $(FoolingType::$variant => stringify!($imp) != "None"),* }
            }

            /// The passive implementation (`None`: active fooling).
            #[cfg(feature = "tensor")]
            pub fn passive(self) -> Option<&'static dyn Passive> {
                match self { $(FoolingType::$variant => $imp),* }
            }
        }
    };
}

fooling_types! {
    Location => "location", Some(&Location), "Passive: push the map onto a border frame (§5.1).",
    TopK => "topk", Some(&TopK), "Passive: remove mass from the original top-10 % positions (§5.2).",
    CenterMass => "center-mass", Some(&CenterMass), "Passive: move the centre of mass away from the original's (§5.3).",
    Active => "active", None, "Active: swap the explanations of two classes (§5.4).",
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
    #[cfg(feature = "tensor")]
    /// Direction of the per-image statistic (spec §7.3); `None` for Active, which is scored by
    /// the correlation metrics of §7.4.
    pub fn direction(self) -> Option<Direction> {
        self.passive().map(|p| p.direction())
    }

    #[cfg(feature = "tensor")]
    /// Whether training and scoring need the original model's map `H0` (Top-k, Center-mass,
    /// and Active's targets).
    pub fn needs_reference(self) -> bool {
        self.passive().is_none_or(|p| p.needs_reference())
    }

    /// Range of the per-image statistic for maps in [0, 1].
    pub fn range(self) -> (f64, f64) {
        (0.0, 1.0)
    }

    #[cfg(feature = "tensor")]
    /// Whether a statistic value counts as fooled at threshold `tau` (default 0.15).
    pub fn is_fooled(self, s: f64, tau: f64) -> bool {
        match self.direction() {
            Some(Direction::LowerIsFooled) => s < tau,
            Some(Direction::HigherIsFooled) => s > tau,
            None => false,
        }
    }
}

#[cfg(feature = "tensor")]
/// Per-image statistic of a passive fooling type (spec §7.2); `h0` is needed where
/// [`FoolingType::needs_reference`].
pub fn statistic(kind: FoolingType, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
    kind.passive()
        .ok_or_else(|| {
            FoolmapError::invalid(
                "fooling type",
                "active fooling has no per-image statistic; use the correlation metrics",
            )
        })?
        .statistic(h, h0)
}

#[cfg(feature = "tensor")]
/// Passive fooling loss (spec §5.1–5.3); `h0` is needed where [`FoolingType::needs_reference`].
pub fn passive_loss(kind: FoolingType, h: Tensor<3>, h0: Option<Tensor<3>>) -> Result<Tensor<1>> {
    kind.passive()
        .ok_or_else(|| {
            FoolmapError::invalid(
                "fooling type",
                "active fooling takes two classes; use `active_loss`",
            )
        })?
        .loss(h, h0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

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
    fn the_registry_links_every_passive_type_to_its_implementation() {
        let passive: Vec<FoolingType> = FoolingType::ALL
            .iter()
            .copied()
            .filter(|k| k.passive().is_some())
            .collect();
        assert_eq!(
            passive,
            [
                FoolingType::Location,
                FoolingType::TopK,
                FoolingType::CenterMass
            ]
        );
        assert!(!FoolingType::Location.needs_reference());
        assert!(FoolingType::TopK.needs_reference() && FoolingType::CenterMass.needs_reference());
        assert!(FoolingType::Active.needs_reference() && FoolingType::Active.direction().is_none());
        for t in FoolingType::ALL {
            assert_eq!(t.is_passive(), t.passive().is_some(), "{t}");
        }
        // A type that needs H0 says so by name when it is missing.
        let dev = burn::tensor::Device::flex();
        let h = Tensor::<3>::from_data(TensorData::new(vec![0.5f32; 2 * 7 * 7], [2, 7, 7]), &dev);
        for k in [FoolingType::TopK, FoolingType::CenterMass] {
            let e = statistic(k, h.clone(), None).unwrap_err().to_string();
            assert!(e.contains(k.id()) && e.contains("original map"), "{e}");
        }
        assert_eq!(
            statistic(FoolingType::Location, h, None).unwrap().dims(),
            [2]
        );
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
