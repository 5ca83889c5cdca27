//! The ledger of a weights file's evaluations (`evaluations.jsonl` beside it): which weights were
//! scored on which half, and why, so that cards can say how often a model met its report half.

use std::path::Path;

use anyhow::{Context, Result};

use crate::split::Subset;

/// One line of a run folder's `evaluations.jsonl`: which weights were scored on which images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvaluationRecord {
    /// File name of the scored weights.
    pub file: String,
    /// Their SHA-256.
    pub sha256: String,
    /// `all`, `selection` or `report`.
    pub split: Subset,
    /// Images scored.
    pub images: usize,
    /// `score` (absent in the file): figures a model is judged by; `analysis`: a later look at a
    /// final model (AOPC, weight noise) that chooses nothing.
    #[serde(default, skip_serializing_if = "Purpose::is_score")]
    pub purpose: Purpose,
}

/// Why an evaluation ran (see [`EvaluationRecord::purpose`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Scoring: accuracy, fooling statistics, FSR.
    #[default]
    Score,
    /// An analysis of a final model that selects nothing.
    Analysis,
}

impl Purpose {
    fn is_score(&self) -> bool {
        *self == Purpose::Score
    }
}

/// Appends the evaluation of `weights` to `evaluations.jsonl` beside it (the count of
/// report-half evaluations of a model and its run is read from there).
pub fn record_evaluation(
    weights: &Path,
    split: Subset,
    images: usize,
    purpose: Purpose,
) -> Result<()> {
    let bytes =
        std::fs::read(weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let rec = EvaluationRecord {
        file: weights
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: crate::io::hash::sha256_bytes(&bytes),
        split,
        images,
        purpose,
    };
    let ledger = weights
        .parent()
        .unwrap_or(Path::new("."))
        .join("evaluations.jsonl");
    crate::io::atomic::append_line(&ledger, &serde_json::to_string(&rec)?)
}

/// Evaluations of the run folder `dir` (empty when it has none).
pub fn evaluations(dir: &Path) -> Result<Vec<EvaluationRecord>> {
    let path = dir.join("evaluations.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}
