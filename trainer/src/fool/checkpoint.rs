//! A run folder and its files: checkpoints (weights, Adam state, step, config), weights with
//! the metadata `eval` reads, `config.json`, and the rules that never overwrite a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foolmap::ParamStore;
use foolmap::state::{StateDict, StoreDtype, TensorRecord};
use foolmap::train::Adam;

use super::config::FoolConfig;
use crate::io::atomic::write_atomic;
use crate::io::weights::key;
pub use foolmap::artifact::run::{RunConfigFile, RunMeta};

/// The source revision (`git rev-parse --short HEAD`), or `unknown`.
pub(super) fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Everything a checkpoint holds.
pub(super) struct Checkpoint {
    pub(super) step: u64,
    pub(super) params: StateDict,
    pub(super) adam_t: u64,
    pub(super) adam: BTreeMap<String, Vec<f32>>,
}

pub(super) fn save_checkpoint(
    dir: &Path,
    cfg: &FoolConfig,
    step: u64,
    p: &ParamStore,
    adam: &Adam,
) -> Result<()> {
    let mut sd = p.to_state_dict();
    for (k, v) in adam.state(p) {
        let n = v.len();
        sd.insert(
            k,
            TensorRecord {
                shape: vec![n],
                data: v,
            },
        );
    }
    run_meta(cfg, step).insert_into(&mut sd.metadata)?;
    sd.metadata
        .insert(crate::io::weights::ADAM_STEP_KEY.into(), adam.t.to_string());
    write_atomic(
        &dir.join("checkpoint.safetensors"),
        &sd.to_safetensors(StoreDtype::F32)?,
    )
}

pub(super) fn load_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let path = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&path)
        .with_context(|| format!("--resume: no checkpoint at {}", path.display()))?;
    let sd = StateDict::from_safetensors(&bytes, &path.display().to_string())?;
    let num = |k: &str| -> Result<u64> {
        sd.metadata
            .get(k)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{}: metadata `{k}` missing", path.display()))
    };
    let (step, adam_t) = (num(key::STEP)?, num(crate::io::weights::ADAM_STEP_KEY)?);
    let mut params = StateDict::default();
    let mut adam = BTreeMap::new();
    for (k, t) in sd.tensors {
        if k.starts_with(Adam::STATE_PREFIX) {
            adam.insert(k, t.data);
        } else {
            params.insert(k, t);
        }
    }
    Ok(Checkpoint {
        step,
        params,
        adam_t,
        adam,
    })
}

/// Refuses to start a new run over an existing one: a non-empty `out` needs `--resume` (continue)
/// or `--force` (move it to `<out>.old-N`, the first free N, and start anew). Returns where the
/// old contents went, if they were moved.
pub fn claim_out_dir(out: &Path, resume: bool, force: bool) -> Result<Option<PathBuf>> {
    let entries: Vec<String> = match std::fs::read_dir(out) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    if resume || entries.is_empty() {
        return Ok(None);
    }
    if !force {
        let mut shown = entries.clone();
        shown.sort();
        shown.truncate(4);
        bail!(
            "{} already holds a run ({}{}): pass --resume to continue it, or --force to move it aside \
             (to {}.old-N) and start a new run",
            out.display(),
            shown.join(", "),
            if entries.len() > 4 { ", …" } else { "" },
            out.display()
        );
    }
    let name = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let parent = out.parent().unwrap_or(Path::new("."));
    let aside = (1u32..)
        .map(|n| parent.join(format!("{name}.old-{n}")))
        .find(|p| !p.exists())
        .context("no free name to move the old run to")?;
    std::fs::rename(out, &aside).with_context(|| {
        format!(
            "--force: cannot move {} to {}",
            out.display(),
            aside.display()
        )
    })?;
    Ok(Some(aside))
}

/// Drops the lines of a JSONL log whose `step` is after `step` (the steps a resumed run repeats),
/// atomically; a missing file is left missing.
pub fn truncate_log(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| foolmap::artifact::run::log_step(l).is_some_and(|s| s <= step))
        .collect();
    let mut body = kept.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    write_atomic(path, body.as_bytes())
}

/// Reads a run folder's `config.json` (`dir/config.json`).
pub fn read_run_config(dir: &Path) -> Result<RunConfigFile> {
    crate::io::json::read(&dir.join("config.json"))
}

/// Fooled weights with the metadata `eval` reads (`arch`, `config`, `git_revision`, `step`).
pub(super) fn write_weights(
    path: &Path,
    p: &ParamStore,
    cfg: &FoolConfig,
    step: u64,
) -> Result<()> {
    let mut sd = p.to_state_dict();
    run_meta(cfg, step).insert_into(&mut sd.metadata)?;
    write_atomic(path, &sd.to_safetensors(StoreDtype::F32)?)
}

/// The metadata of `cfg`'s weights at `step`, written by this source revision.
pub fn run_meta(cfg: &FoolConfig, step: u64) -> RunMeta {
    RunMeta {
        config: cfg.clone(),
        step,
        git_revision: git_revision(),
    }
}

/// Reads the run metadata of the weights file `path` (its header only), naming the file and the
/// key on error.
pub fn read_meta(path: &Path) -> Result<RunMeta> {
    let m = crate::io::weights::read_metadata(path)?;
    Ok(RunMeta::from_metadata(&m, &path.display().to_string())?)
}
