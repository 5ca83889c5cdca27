//! The per-model result files of a table: `eval.json` (typed subset of the report evaluation)
//! and `per_image.json`.

use super::*;

/// Per-image outcomes of a report evaluation (`per_image.json`), for bootstrap intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerImage {
    /// Top-1 hits of the original, one `0`/`1` per image.
    pub top1_original: String,
    /// Top-5 hits of the original.
    pub top5_original: String,
    /// Top-1 hits of the fooled model.
    pub top1_fooled: String,
    /// Top-5 hits of the fooled model.
    pub top5_fooled: String,
    /// Statistic of the fooled model per image for the cell's interpreter.
    pub statistic: Vec<f32>,
}

/// Scores of one interpreter in an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InterpreterScore {
    /// Images scored.
    pub n: usize,
    /// FSR of the fooled model.
    pub fsr: f64,
    /// FSR of the original model (its statistic under the same rule).
    pub fsr_original: f64,
    /// Mean statistic of the fooled model.
    pub mean_statistic: f64,
    /// Mean statistic of the original.
    pub mean_statistic_original: f64,
}

/// The typed part of `foolmap eval --json` the table reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Architecture.
    pub arch: Architecture,
    /// Fooling type scored.
    pub fooling: FoolingType,
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
    /// Per interpreter id.
    pub interpreters: BTreeMap<String, InterpreterScore>,
    /// Share of images on which both models predict the same class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_agreement: Option<f64>,
    /// Active fooling's figures (active cells only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveMetrics>,
}

impl From<&EvalReport> for EvalSummary {
    fn from(r: &EvalReport) -> Self {
        EvalSummary {
            arch: r.arch,
            fooling: r.fooling,
            split: r.split,
            n: r.n,
            threshold: r.threshold,
            original: r.original.clone(),
            fooled: r.fooled.clone(),
            interpreters: r
                .interpreters
                .iter()
                .map(|(k, v)| {
                    (
                        k.id().to_string(),
                        InterpreterScore {
                            n: v.n,
                            fsr: v.fsr,
                            fsr_original: v.fsr_original,
                            mean_statistic: v.mean_statistic,
                            mean_statistic_original: v.mean_statistic_original,
                        },
                    )
                })
                .collect(),
            top1_agreement: r.top1_agreement,
            active: r.active.clone(),
        }
    }
}

/// `eval.json` of a table model: the summary, the file's SHA-256 and its report-eval count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelResult {
    /// Cell id.
    pub cell: String,
    /// Seed.
    pub seed: u64,
    /// Step chosen on the selection half.
    pub step: u64,
    /// SHA-256 of the scored f16 file.
    pub sha256: String,
    /// The report evaluation.
    pub report: EvalSummary,
    /// Evaluations of the run's checkpoints (selection half) and of this file (report half),
    /// from the run's ledger when the results were last written beside it.
    #[serde(default)]
    pub evaluations: Option<EvaluationCounts>,
}
