//! The analyses of a final model that choose nothing (docs/method.md §6, §7.1): the settings of
//! a table's `[analysis]`, AOPC curves and weight-noise rows, as `analysis.json` holds them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Interpreter;
use crate::artifact::report::NoiseRow;
use crate::error::{FoolmapError, Result};
use crate::split::Subset;

/// The three perturbation orders of one model: `AOPC_K` for `K = 0..=steps` (entry 0 is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AopcOrders {
    /// Patches removed in the MoRF order of the original model's map.
    pub morf_original_map: Vec<f64>,
    /// In the MoRF order of the fooled model's map.
    pub morf_fooled_map: Vec<f64>,
    /// In a random order (seed 8, the same for both models).
    pub random: Vec<f64>,
}

impl AopcOrders {
    /// `(name, curve)` pairs in a fixed order.
    pub fn named(&self) -> [(&'static str, &[f64]); 3] {
        [
            ("morf_original_map", &self.morf_original_map),
            ("morf_fooled_map", &self.morf_fooled_map),
            ("random", &self.random),
        ]
    }
}

/// Six AOPC curves of a model pair (spec §7.5 `get_aopc2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aopc {
    /// Interpreter whose tap maps give the MoRF orders.
    pub interpreter: Interpreter,
    /// Images averaged.
    pub images: usize,
    /// Patch grid `(rows, cols)`: the tap map's size.
    pub grid: (usize, usize),
    /// Patches replaced, one per step.
    pub steps: usize,
    /// The original model perturbed in each order.
    pub original: AopcOrders,
    /// The fooled model perturbed in each order.
    pub fooled: AopcOrders,
}

impl Aopc {
    /// The curves keyed `model.order` (the shape of `eval --json`'s `aopc.curves`).
    pub fn curves(&self) -> BTreeMap<String, Vec<f64>> {
        [("original", &self.original), ("fooled", &self.fooled)]
            .into_iter()
            .flat_map(|(m, o)| {
                o.named()
                    .map(|(name, c)| (format!("{m}.{name}"), c.to_vec()))
            })
            .collect()
    }
}

/// Robustness to Gaussian weight noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightNoise {
    /// Interpreter of the FSR.
    pub interpreter: Interpreter,
    /// Images scored.
    pub images: usize,
    /// FSR threshold τ.
    pub threshold: f64,
    /// One row per σ, in the order asked.
    pub rows: Vec<NoiseRow>,
}

/// AOPC at the last step of each order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AopcPoint {
    /// MoRF order of the original model's map.
    pub morf_original_map: f64,
    /// MoRF order of the fooled model's map.
    pub morf_fooled_map: f64,
    /// Random order.
    pub random: f64,
}

impl AopcOrders {
    /// `AOPC_K` at the last step `K` of each curve.
    pub fn last(&self) -> AopcPoint {
        let l = |c: &[f64]| c.last().copied().unwrap_or(f64::NAN);
        AopcPoint {
            morf_original_map: l(&self.morf_original_map),
            morf_fooled_map: l(&self.morf_fooled_map),
            random: l(&self.random),
        }
    }
}

/// `[analysis]` of a table config: what is computed for every first-seed model after the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The first N report-half images (in evaluation order).
    pub images: usize,
    /// AOPC: patches replaced, one per step (at most the tap grid's cells).
    pub aopc_steps: usize,
    /// Relative σ of the weight-noise rows (0: the clean models).
    pub noise_sigmas: Vec<f64>,
}

impl AnalysisConfig {
    /// Checks the fields, naming the first bad one.
    pub fn check(&self) -> Result<()> {
        if self.images == 0 {
            return Err(FoolmapError::invalid(
                "[analysis] images",
                "must be at least 1",
            ));
        }
        if self.aopc_steps == 0 {
            return Err(FoolmapError::invalid(
                "[analysis] aopc_steps",
                "must be at least 1",
            ));
        }
        if let Some(s) = self
            .noise_sigmas
            .iter()
            .find(|s| !(s.is_finite() && **s >= 0.0))
        {
            return Err(FoolmapError::invalid(
                "[analysis] noise_sigmas",
                format!("{s} is not a finite number ≥ 0"),
            ));
        }
        Ok(())
    }
}

/// `analysis.json` of a table model: its AOPC curves and weight-noise rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnalysis {
    /// SHA-256 of the analysed file (the scored f16 model).
    pub sha256: String,
    /// Which images: the first `images` of this half.
    pub split: Subset,
    /// AOPC curves.
    pub aopc: Aopc,
    /// Weight-noise robustness.
    pub noise: WeightNoise,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_analysis_config_names_the_field() {
        let ok = AnalysisConfig {
            images: 10,
            aopc_steps: 4,
            noise_sigmas: vec![0.0, 0.1],
        };
        assert!(ok.check().is_ok());
        for (bad, needle) in [
            (
                AnalysisConfig {
                    images: 0,
                    ..ok.clone()
                },
                "images",
            ),
            (
                AnalysisConfig {
                    aopc_steps: 0,
                    ..ok.clone()
                },
                "aopc_steps",
            ),
            (
                AnalysisConfig {
                    noise_sigmas: vec![0.1, f64::NAN],
                    ..ok.clone()
                },
                "noise_sigmas: NaN",
            ),
            (
                AnalysisConfig {
                    noise_sigmas: vec![-0.1],
                    ..ok.clone()
                },
                "noise_sigmas: -0.1",
            ),
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn aopc_curves_keep_the_eval_json_keys() {
        let o = AopcOrders {
            morf_original_map: vec![0.0, 1.0],
            morf_fooled_map: vec![0.0, 2.0],
            random: vec![0.0, 3.0],
        };
        let a = Aopc {
            interpreter: Interpreter::GradCam,
            images: 1,
            grid: (8, 8),
            steps: 1,
            original: o.clone(),
            fooled: o,
        };
        let keys: Vec<String> = a.curves().into_keys().collect();
        assert_eq!(
            keys,
            [
                "fooled.morf_fooled_map",
                "fooled.morf_original_map",
                "fooled.random",
                "original.morf_fooled_map",
                "original.morf_original_map",
                "original.random"
            ]
        );
        assert_eq!(a.original.last().random, 3.0);
    }
}
