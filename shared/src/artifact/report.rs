//! The typed result of an evaluation of a model pair (what `foolmap eval --json` prints, a report
//! folder's `report.json`, a table run's `eval.json`). Registry values are serialised by their ids.
//!
//! Shape changes against the untyped JSON of earlier versions: `interpreters` lists its keys in
//! registry order (was alphabetical); `robustness.rows` holds `top1_original` / `top1_fooled`
//! (was one `top1`, the fooled model's); `sanity_check.layers` holds `[layer, similarity]` pairs as
//! before. Every other key is unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fooling::{Direction, FoolingType};
use crate::split::Subset;
use crate::{Architecture, Interpreter};

/// Accuracy of one model of the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Weights scored (path as given).
    pub weights: String,
    /// Top-1 (fraction).
    pub top1: f64,
    /// Top-5 (fraction).
    pub top5: f64,
}

/// Scores of one interpreter (docs/method.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterpreterResult {
    /// Images scored with it (SmoothGrad / IG: the first `--heavy-images`).
    pub n: usize,
    /// FSR of the fooled model.
    pub fsr: f64,
    /// Mean statistic of the fooled model.
    pub mean_statistic: f64,
    /// FSR of the original model under the same rule.
    pub fsr_original: f64,
    /// Mean statistic of the original model.
    pub mean_statistic_original: f64,
    /// τ.
    pub threshold: f64,
    /// CDF of the fooled model's statistic: `(x, fraction ≤ x)`.
    pub cdf: Vec<(f64, f64)>,
}

/// Each image's outcome, in evaluation order (`eval --per-image`): `'1'` / `'0'` per image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerImage {
    /// Top-1 hits of the original model.
    pub top1_original: String,
    /// Top-5 hits of the original model.
    pub top5_original: String,
    /// Top-1 hits of the fooled model.
    pub top1_fooled: String,
    /// Top-5 hits of the fooled model.
    pub top5_fooled: String,
    /// The fooled model's statistic per image, per interpreter.
    pub statistic: BTreeMap<Interpreter, Vec<f32>>,
}

/// AOPC block of `eval --aopc-images` (curves keyed `model.order`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AopcBlock {
    /// Interpreter of the MoRF orders.
    pub interpreter: Interpreter,
    /// Images.
    pub images: usize,
    /// Patch grid `[rows, cols]`.
    pub grid: (usize, usize),
    /// Patches replaced.
    pub steps: usize,
    /// `AOPC_K` for `K = 0..=steps`, keyed e.g. `fooled.morf_original_map`.
    pub curves: BTreeMap<String, Vec<f64>>,
}

impl From<&crate::artifact::analysis::Aopc> for AopcBlock {
    fn from(a: &crate::artifact::analysis::Aopc) -> Self {
        AopcBlock {
            interpreter: a.interpreter,
            images: a.images,
            grid: a.grid,
            steps: a.steps,
            curves: a.curves(),
        }
    }
}

/// Mean correlations over composites of one pair of maps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// Pearson of the hot-region masks (z-score of |R| > 1).
    pub hot_region_correlation: f64,
    /// Spearman of the maps.
    pub spearman: f64,
}

/// The four map pairs of active fooling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActiveCorrelations {
    /// The fooled model's c1 map against the original's c2 map (the swap: high when fooled).
    #[serde(rename = "fooled_c1~original_c2")]
    pub fooled_c1_original_c2: Correlation,
    /// The fooled model's c2 map against the original's c1 map.
    #[serde(rename = "fooled_c2~original_c1")]
    pub fooled_c2_original_c1: Correlation,
    /// The fooled model's c1 map against the original's c1 map.
    #[serde(rename = "fooled_c1~original_c1")]
    pub fooled_c1_original_c1: Correlation,
    /// The fooled model's c2 map against the original's c2 map.
    #[serde(rename = "fooled_c2~original_c2")]
    pub fooled_c2_original_c2: Correlation,
}

/// Top-1 on the images of classes c1 and c2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassPair {
    /// On images of class c1.
    pub c1: f64,
    /// On images of class c2.
    pub c2: f64,
}

/// Per-class accuracy of both models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Original model.
    pub original: ClassPair,
    /// Fooled model.
    pub fooled: ClassPair,
}

/// Active-fooling figures (docs/method.md §6), on composites of the evaluated split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveMetrics {
    /// First class.
    pub c1: usize,
    /// Second class.
    pub c2: usize,
    /// Interpreter of the maps.
    pub interpreter: Interpreter,
    /// Composites scored.
    pub composites: usize,
    /// Mean correlations of the four map pairs.
    pub correlations: ActiveCorrelations,
    /// Per-class top-1.
    pub class_accuracy: ClassAccuracy,
}

impl ActiveCorrelations {
    /// The swap correlation: the mean of the two cross-class hot-region correlations
    /// (`fooled_c1~original_c2`, `fooled_c2~original_c1`); higher = more fooled.
    pub fn swap(&self) -> f64 {
        0.5 * (self.fooled_c1_original_c2.hot_region_correlation
            + self.fooled_c2_original_c1.hot_region_correlation)
    }

    /// The same-class correlation: mean of `fooled_c1~original_c1` and `fooled_c2~original_c2`.
    pub fn same(&self) -> f64 {
        0.5 * (self.fooled_c1_original_c1.hot_region_correlation
            + self.fooled_c2_original_c2.hot_region_correlation)
    }
}

impl ActiveMetrics {
    /// The swap correlation of the four pairs ([`ActiveCorrelations::swap`]).
    pub fn swap_correlation(&self) -> f64 {
        self.correlations.swap()
    }

    /// The same-class correlation ([`ActiveCorrelations::same`]).
    pub fn same_correlation(&self) -> f64 {
        self.correlations.same()
    }
}

/// Weight-noise block of a report folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robustness {
    /// Interpreter of the FSR.
    pub interpreter: Interpreter,
    /// Images.
    pub images: usize,
    /// One row per σ.
    pub rows: Vec<NoiseRow>,
}

/// Model-randomisation check of a report folder, per model: `(layers re-initialised down to,
/// mean Spearman against the intact map)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SanityCheck {
    /// Interpreter.
    pub interpreter: Interpreter,
    /// Images.
    pub images: usize,
    /// The cascade of each model.
    pub layers: SanityLayers,
}

/// The cascades of both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SanityLayers {
    /// Original model.
    pub original: Vec<(String, f64)>,
    /// Fooled model.
    pub fooled: Vec<(String, f64)>,
}

/// One evaluation of a model pair: `foolmap eval --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Architecture.
    pub arch: Architecture,
    /// Fooling type scored.
    pub fooling: FoolingType,
    /// Interpreter the model was fooled with (from its checkpoint), if known.
    pub fooled_with: Option<Interpreter>,
    /// Evaluation folder.
    pub data: String,
    /// Half scored.
    pub split: Subset,
    /// Images.
    pub n: usize,
    /// τ.
    pub threshold: f64,
    /// Original model.
    pub original: Accuracy,
    /// Fooled model.
    pub fooled: Accuracy,
    /// Which way the statistic moves when fooled (`None` for active fooling).
    pub direction: Option<Direction>,
    /// Share of images on which both models predict the same class (top-1), whatever the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_agreement: Option<f64>,
    /// Scores per interpreter (passive fooling types).
    pub interpreters: BTreeMap<Interpreter, InterpreterResult>,
    /// `--per-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_image: Option<PerImage>,
    /// `--aopc-images`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aopc: Option<AopcBlock>,
    /// Active fooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveMetrics>,
    /// Added by `--report`: weight noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robustness: Option<Robustness>,
    /// Added by `--report`: model randomisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanity_check: Option<SanityCheck>,
}

/// One noise level of a weight-noise analysis (the trainer's `eval::analysis::weight_noise`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseRow {
    /// Relative σ: every trainable tensor gets `σ·std(w)·N(0, 1)`.
    pub sigma: f64,
    /// Top-1 of the original model with this noise (its own draw).
    pub top1_original: f64,
    /// Top-1 of the fooled model with this noise.
    pub top1_fooled: f64,
    /// FSR of the noisy fooled model (its maps against the clean original's where the
    /// statistic needs them); `None` for active fooling.
    pub fsr: Option<f64>,
}
