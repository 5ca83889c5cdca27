//! The PyTorch reference of `foolmap bench --suite compare`: runs `bench/torch_reference.py` on
//! the same cases and reads its report.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::cases::{Case, Kind};

/// One row of `bench/torch_reference.py`'s output.
#[derive(Debug, Clone, Deserialize)]
pub struct TorchRow {
    /// Architecture id.
    pub arch: String,
    /// Batch size.
    pub batch: usize,
    /// Step kind id.
    pub kind: String,
    /// Images/s (absent where the reference has no such step).
    pub images_per_s: Option<f64>,
    /// Peak memory, MiB.
    pub peak_mib: Option<f64>,
    /// Why a row is missing.
    #[serde(default)]
    pub note: Option<String>,
}

/// The output of `bench/torch_reference.py`.
#[derive(Debug, Clone, Deserialize)]
pub struct TorchReport {
    /// `torch.__version__`.
    pub torch_version: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// GPU name on CUDA.
    pub device_name: Option<String>,
    /// Intra-op threads.
    pub threads: usize,
    /// Rows.
    pub rows: Vec<TorchRow>,
}

/// Runs `bench/torch_reference.py` with `python` for the same cases; `None` (with the reason)
/// when Python or torch is missing.
pub fn torch_reference(
    python: &str,
    script: &Path,
    cases: &[Case],
    kinds: &[Kind],
    root: &Path,
    cuda: bool,
) -> std::result::Result<TorchReport, String> {
    let rows: Vec<String> = cases
        .iter()
        .map(|c| format!("{}:{}", c.arch.id(), c.batch))
        .collect();
    let kinds: Vec<String> = kinds.iter().map(|k| k.id()).collect();
    let tmp = std::env::temp_dir().join(format!("foolmap-torch-{}.json", std::process::id()));
    let status = Command::new(python)
        .arg(script)
        .args(["--device", if cuda { "cuda" } else { "cpu" }])
        .args(["--rows", &rows.join(",")])
        .args(["--kinds", &kinds.join(",")])
        .arg("--weights-dir")
        .arg(root.join("weights"))
        .arg("--json")
        .arg(&tmp)
        .status()
        .map_err(|e| format!("cannot run `{python}`: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{python} {}` failed ({status}); is `torch` installed (`{python} -c 'import torch'`)?",
            script.display()
        ));
    }
    let text = std::fs::read_to_string(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let _ = std::fs::remove_file(&tmp);
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", tmp.display()))
}

/// Resolves `bench/torch_reference.py` next to the working directory or the source tree.
pub fn script_path() -> Result<std::path::PathBuf> {
    let candidates = [
        std::path::PathBuf::from("bench/torch_reference.py"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/torch_reference.py"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .context("bench/torch_reference.py not found (run from the repository root)")
}
