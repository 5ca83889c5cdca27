//! A fooling run's resolved configuration (`config.json` of a run folder, the `config` entry of
//! every checkpoint's metadata, the `recipe` of a model card), its phases, and the metadata of a
//! run's weights files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::artifact::key;
use crate::error::{FoolmapError, Result};
use crate::fooling::FoolingType;
use crate::{Architecture, Interpreter};

/// A fooling run, resolved: every field set (the trainer stacks its config file, flags and a
/// resumed run's saved config, then fills defaults) and checked. Saved as `config.json`, in every checkpoint's metadata and in model cards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FoolConfig {
    /// Architecture id.
    pub arch: Architecture,
    /// Starting weights (default: the data root's pretrained file).
    pub weights: Option<PathBuf>,
    /// The frozen original model that supplies the reference maps H0 of Top-k and Center-mass
    /// (spec §5.2, §5.3; default: `weights`). Set it when continuing from a fooled model, so
    /// that H0 stays the original's.
    #[serde(default)]
    pub original: Option<PathBuf>,
    /// Training data (default: `cifar10/train` or `imagenet-samples` under the data root).
    pub data: Option<PathBuf>,
    /// `location`, `topk`, `center-mass` or `active`.
    pub fooling: FoolingType,
    /// `lrp_t`, `grad_cam` or `simple_grad_t`.
    pub interpreter: Interpreter,
    /// λ.
    pub lambda: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Images per CE batch.
    pub batch_size: usize,
    /// Composite images per active-fooling batch (spec §6.4: 4).
    pub fool_batch_size: usize,
    /// Training steps.
    pub steps: u64,
    /// Seed of the data order and augmentation (never the clock).
    pub seed: u64,
    /// Checkpoint every N steps (and at the end).
    pub checkpoint_every: u64,
    /// Also keep the weights of every N-th step as `stepN.safetensors` (0: only the latest
    /// checkpoint and the final weights), so that any point of a long run can be scored or
    /// continued from later.
    #[serde(default)]
    pub keep_every: u64,
    /// Active fooling: first class (CIFAR-10 default cat = 3; ImageNet 386).
    pub c1: usize,
    /// Active fooling: second class (CIFAR-10 default dog = 5; ImageNet 555).
    pub c2: usize,
    /// Output folder.
    pub out: PathBuf,
    /// Later phases of the run: from a step on, another λ and learning rate (`"STEP:LAMBDA:LR"`;
    /// e.g. a two-phase recipe (docs/lab-notes.md): λ 10 first, then `"800:2:5e-5"`).
    #[serde(default)]
    pub schedule: Vec<Phase>,
    /// Validate every N steps on images held out of the training data (0: never).
    #[serde(default)]
    pub val_every: u64,
    /// Training images held out for validation when `val_every` > 0 (or, with `val_data`, the
    /// number of images validated from that folder).
    #[serde(default)]
    pub val_images: usize,
    /// A separate validation folder (same layout as `data`) instead of held-out training images:
    /// the original model never trained on it, so its top-1 drop matches a test split's.
    #[serde(default)]
    pub val_data: Option<PathBuf>,
    /// Largest top-1 drop (a fraction; 0.02 = 2 points) for a validation to become
    /// `best.safetensors`.
    #[serde(default = "default_max_drop")]
    pub max_drop: f64,
    /// FSR threshold τ of the validation (spec §7.3).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Train only the parameters under these module paths (e.g. `["layer3.2", "linear"]`, the
    /// layers between the tap and the logits); every other weight stays as loaded. Empty: all.
    #[serde(default)]
    pub train_only: Vec<String>,
    /// Label-free passive fooling (docs/method.md §5, "Distillation"): the original model
    /// labels each batch (its top-1, for the maps) and `KL(original ‖ fooled)` of the logits
    /// replaces CE, so any images serve as training data (e.g. ImageNet models without the
    /// ImageNet training set). The data's own labels are not read. (Written only when set, so
    /// the configs of labelled runs keep their shape.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distill: bool,
    /// Train on the selection half (committed split, docs/method.md §7) of the evaluation images
    /// in `data` (default: the dataset's evaluation folder), without its first N images: those
    /// choose a table's checkpoints (`selection_images`), the rest are training data, the
    /// report half is never read. For label-free runs of ImageNet models, whose only real
    /// photos are the evaluation samples. (Written only when set.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_rest: Option<usize>,
}

/// Whether the list `train_only` lets the parameter `name` train: an empty list, or `name` is a
/// listed module path or lies under one (`layer3.2` covers `layer3.2.conv1.weight`, not
/// `layer3.20.…`).
pub fn trains(train_only: &[String], name: &str) -> bool {
    train_only.is_empty() || train_only.iter().any(|m| under(name, m))
}

/// `name` is the module path `m` or a parameter under it.
pub fn under(name: &str, m: &str) -> bool {
    name.strip_prefix(m)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

pub fn default_max_drop() -> f64 {
    0.02
}

pub fn default_threshold() -> f64 {
    0.15
}

/// A phase of a fooling run: from `from_step` on (inclusive), train with `lambda` and `lr`, and
/// optionally another batch size. Written `"STEP:LAMBDA:LR"` or `"STEP:LAMBDA:LR:BATCH"` in
/// configs and flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phase {
    /// First step of the phase.
    pub from_step: u64,
    /// λ from that step on.
    pub lambda: f64,
    /// Adam learning rate from that step on.
    pub lr: f64,
    /// Images per CE batch from that step on (`None`: the batch size in force before).
    pub batch_size: Option<usize>,
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!("`{s}`: expected STEP:LAMBDA:LR[:BATCH], e.g. 800:2:5e-5 or 750:1.5:5e-5:32")
        };
        let parts: Vec<&str> = s.trim().split(':').collect();
        let (step, lambda, lr, batch) = match parts.as_slice() {
            [step, lambda, lr] => (step, lambda, lr, None),
            [step, lambda, lr, batch] => (step, lambda, lr, Some(batch)),
            _ => return Err(bad()),
        };
        Ok(Phase {
            from_step: step.trim().parse().map_err(|_| bad())?,
            lambda: lambda.trim().parse().map_err(|_| bad())?,
            lr: lr.trim().parse().map_err(|_| bad())?,
            batch_size: match batch {
                Some(b) => Some(b.trim().parse().map_err(|_| bad())?),
                None => None,
            },
        })
    }
}

impl TryFrom<String> for Phase {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Phase> for String {
    fn from(p: Phase) -> String {
        match p.batch_size {
            Some(b) => format!("{}:{}:{}:{b}", p.from_step, p.lambda, p.lr),
            None => format!("{}:{}:{}", p.from_step, p.lambda, p.lr),
        }
    }
}

impl FoolConfig {
    /// `(λ, lr)` at `step` (1-based): the last phase that has started, else `lambda`/`lr`.
    pub fn hyper_at(&self, step: u64) -> (f64, f64) {
        self.schedule
            .iter()
            .rev()
            .find(|p| p.from_step <= step)
            .map_or((self.lambda, self.lr), |p| (p.lambda, p.lr))
    }

    /// Images per CE batch at `step`: the last started phase that sets one, else `batch_size`.
    pub fn batch_at(&self, step: u64) -> usize {
        self.schedule
            .iter()
            .rev()
            .filter(|p| p.from_step <= step)
            .find_map(|p| p.batch_size)
            .unwrap_or(self.batch_size)
    }
}

/// A run folder's `config.json`: the resolved config, its seed and the source revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfigFile {
    /// The resolved config of the run.
    pub config: FoolConfig,
    /// Its seed (also in `config`; kept for readers of older files).
    pub seed: u64,
    /// `git describe` of the source that ran it.
    pub git_revision: String,
}

/// The metadata of a run's weights files (checkpoint, `stepN`, `best`, `final`): the resolved
/// config (its architecture also under `arch`), the step and the source revision.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// The run's resolved config.
    pub config: FoolConfig,
    /// The step the weights are from.
    pub step: u64,
    /// The source revision that wrote them.
    pub git_revision: String,
}

impl RunMeta {
    /// Writes the keys into a state dict's metadata.
    pub fn insert_into(&self, m: &mut BTreeMap<String, String>) -> Result<()> {
        let config = serde_json::to_string(&self.config)
            .map_err(|e| FoolmapError::invalid("run config", e.to_string()))?;
        m.insert(key::ARCH.into(), self.config.arch.id().into());
        m.insert(key::CONFIG.into(), config);
        m.insert(key::GIT_REVISION.into(), self.git_revision.clone());
        m.insert(key::STEP.into(), self.step.to_string());
        Ok(())
    }

    /// Reads the keys from the metadata `m` of the weights file `file`, naming the file and the
    /// key (and for the config, its field) on error.
    pub fn from_metadata(m: &BTreeMap<String, String>, file: &str) -> Result<RunMeta> {
        let get = |k: &str| {
            m.get(k).ok_or_else(|| {
                FoolmapError::invalid(
                    file.to_string(),
                    format!(
                        "no `{k}` in the safetensors metadata (expected weights written by `foolmap fool`)"
                    ),
                )
            })
        };
        let config = crate::artifact::from_json(
            get(key::CONFIG)?.as_bytes(),
            &format!("{file}: metadata `{}`", key::CONFIG),
        )?;
        let step = get(key::STEP)?.parse().map_err(|_| {
            FoolmapError::invalid(
                file.to_string(),
                format!("metadata `{}` is not a step number", key::STEP),
            )
        })?;
        Ok(RunMeta {
            config,
            step,
            git_revision: m.get(key::GIT_REVISION).cloned().unwrap_or_default(),
        })
    }
}

/// One line of a run's `log.jsonl`: the figures of one training step (fields in the order the
/// file has always held them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Batch top-1 accuracy (the agreement with the original for a label-free run).
    pub batch_acc: f64,
    /// Images of the step's batch.
    pub batch_size: usize,
    /// Cross-entropy (or the distillation KL) of the batch.
    pub ce: f64,
    /// The fooling loss L_F of the batch.
    pub fool: f64,
    /// Training throughput of the step.
    pub images_per_s: f64,
    /// λ in force.
    pub lambda: f64,
    /// Learning rate in force.
    pub lr: f64,
    /// The step (1-based).
    pub step: u64,
    /// `ce + λ·fool`.
    pub total: f64,
}

/// The step of a `log.jsonl` line (`None` when it is not a step line).
pub fn log_step(line: &str) -> Option<u64> {
    /// The one field read back.
    #[derive(Deserialize)]
    struct Step {
        step: u64,
    }
    serde_json::from_str::<Step>(line).ok().map(|s| s.step)
}
