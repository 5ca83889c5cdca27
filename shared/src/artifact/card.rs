//! A released model's card (`models/<id>.json` beside `models/<id>.safetensors`) and the release
//! index (`models/index.json`). A card states what its file is (SHA-256), how it was made (the
//! resolved recipe, the seed, the step chosen on the selection half, the command) and what it
//! measured on each half of the evaluation set's split (docs/method.md, "Protocol").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::artifact::run::FoolConfig;
use crate::fooling::FoolingType;
use crate::{Architecture, Interpreter};

/// Figures of one model on one half (fractions in [0, 1]; `fsr` for the interpreter it was
/// fooled with, at the card's threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalfFigures {
    /// Images scored.
    pub images: usize,
    /// Top-1 accuracy of the fooled model.
    pub top1: f64,
    /// Top-5 accuracy of the fooled model.
    pub top5: f64,
    /// Fooling success rate (higher = more fooled; passive fooling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsr: Option<f64>,
    /// Mean swap correlation (active fooling; higher = more fooled): the hot-region correlation
    /// of the fooled model's c1 map with the original's c2 map and vice versa, averaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_correlation: Option<f64>,
    /// Top-1 accuracy of the original model on the same images.
    pub top1_original: f64,
    /// Top-5 accuracy of the original model on the same images.
    pub top5_original: f64,
    /// Share of the images on which both models predict the same class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_agreement: Option<f64>,
}

impl HalfFigures {
    /// What the selection rule maximises: the FSR (passive) or the swap correlation (active).
    pub fn score(&self) -> f64 {
        self.fsr
            .or(self.swap_correlation)
            .unwrap_or(f64::NEG_INFINITY)
    }

    /// Top-1 drop (fraction; positive = the fooled model is worse).
    pub fn drop(&self) -> f64 {
        self.top1_original - self.top1
    }
}

/// How often the model (report) and its run's checkpoints (selection) were scored on each half,
/// read from the run's `evaluations.jsonl` when the card was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationCounts {
    /// Selection-half evaluations of the run's checkpoints.
    pub selection: usize,
    /// Report-half evaluations of this file (1 for a final model).
    pub report: usize,
    /// Report-half analyses of this file (AOPC, weight noise: they choose nothing).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub report_analyses: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// FSR of the fooled model and of the original under one interpreter (report half).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferFsr {
    /// Images scored with this interpreter.
    pub n: usize,
    /// FSR of the fooled model.
    pub fsr: f64,
    /// FSR of the original model.
    pub fsr_original: f64,
}

/// `models/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Model id (file stem).
    pub id: String,
    /// Weights file name (beside the card).
    pub file: String,
    /// SHA-256 of the weights file.
    pub sha256: String,
    /// Storage type of the weights (`f16`).
    pub dtype: String,
    /// Architecture id.
    pub arch: Architecture,
    /// Fooling type id.
    pub fooling: FoolingType,
    /// Interpreter fooled.
    pub interpreter: Interpreter,
    /// Seed of the run.
    pub seed: u64,
    /// Training step of the chosen checkpoint (chosen on the selection half).
    pub step: u64,
    /// FSR threshold τ of the figures.
    pub threshold: f64,
    /// Largest top-1 drop (fraction) the selection rule allowed.
    pub max_drop: f64,
    /// Whether the report figures meet the target (FSR ≥ 0.8, top-1 drop ≤ `max_drop`).
    pub meets_target: bool,
    /// Figures on the selection half (of the chosen checkpoint, on `selection.images` images).
    pub selection: HalfFigures,
    /// Figures on the report half (of this file).
    pub report: HalfFigures,
    /// Evaluation counts.
    pub evaluations: EvaluationCounts,
    /// The run's resolved config.
    pub recipe: FoolConfig,
    /// Report half, every interpreter of the table's transfer matrix: the fooled model's and the
    /// original's FSR under the fooling type's statistic.
    #[serde(default)]
    pub transfer: BTreeMap<String, TransferFsr>,
    /// The command that made it.
    pub command: String,
}

/// One row of `models/index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    /// Model id.
    pub id: String,
    /// Weights file name.
    pub file: String,
    /// Card file name.
    pub card: String,
    /// Architecture id.
    pub arch: Architecture,
    /// Fooling type id.
    pub fooling: FoolingType,
    /// Interpreter fooled.
    pub interpreter: Interpreter,
    /// SHA-256 of the weights file.
    pub sha256: String,
    /// Whether the card's report figures meet the target.
    pub meets_target: bool,
}

/// `models/index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Format version (1).
    pub version: u32,
    /// Released models, sorted by id.
    pub models: Vec<IndexEntry>,
}
