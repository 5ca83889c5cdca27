//! The configuration of a fooling run: the typed layers it is read from ([`FoolSettings`]: the
//! config file, the flags, a resumed run's saved config) and the resolved [`FoolConfig`].

use std::path::PathBuf;

use clap::Args;
use foolmap::fooling::FoolingType;
use foolmap::{Architecture, Interpreter};
use serde::{Deserialize, Serialize};

/// A fooling run, resolved: every field set (from [`FoolSettings`] layers and defaults) and
/// checked. Saved as `config.json`, in every checkpoint's metadata and in model cards.
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
}

/// Whether the list `train_only` lets the parameter `name` train: an empty list, or `name` is a
/// listed module path or lies under one (`layer3.2` covers `layer3.2.conv1.weight`, not
/// `layer3.20.…`).
pub fn trains(train_only: &[String], name: &str) -> bool {
    train_only.is_empty() || train_only.iter().any(|m| under(name, m))
}

/// `name` is the module path `m` or a parameter under it.
pub(super) fn under(name: &str, m: &str) -> bool {
    name.strip_prefix(m)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

pub(super) fn default_max_drop() -> f64 {
    0.02
}

pub(super) fn default_threshold() -> f64 {
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

/// One layer of a fooling run's settings, every field optional: the TOML config file, the flags
/// of `foolmap fool` (the same names, `schedule` is `--then`) and a resumed run's saved config
/// all parse into this one type; [`crate::fool::resolve`] stacks the layers with [`Self::or`] and
/// fills the rest with defaults. Field docs: [`FoolConfig`].
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoolSettings {
    /// Architecture id (default `resnet20`).
    #[arg(long)]
    pub arch: Option<Architecture>,
    /// Starting weights (default: the data root's pretrained file).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Frozen original model for H0 (default: `--weights`); set it to continue from a fooled model.
    #[arg(long)]
    pub original: Option<PathBuf>,
    /// Training data folder (default: the data root's training split).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Fooling type: location, topk, center-mass, active (default location).
    #[arg(long)]
    pub fooling: Option<FoolingType>,
    /// Interpreter to fool: lrp_t, grad_cam, simple_grad_t (default lrp_t).
    #[arg(long)]
    pub interpreter: Option<Interpreter>,
    /// λ (default: the paper's for its models, foolmap's measured one for the small models).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Adam learning rate (default as λ).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Images per CE batch (default 32 CIFAR-10, 8 ImageNet).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Composite images per active-fooling batch (default 4).
    #[arg(long)]
    pub fool_batch_size: Option<usize>,
    /// Training steps (default 300 CIFAR-10, 3,000 ImageNet).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seed of the data order and augmentation (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Checkpoint every N steps and at the end (default 50).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Keep the weights of every N-th step as `stepN.safetensors` in `--out` (default 0: off).
    #[arg(long)]
    pub keep_every: Option<u64>,
    /// Active fooling: first class (default cat = 3; ImageNet 386).
    #[arg(long)]
    pub c1: Option<usize>,
    /// Active fooling: second class (default dog = 5; ImageNet 555).
    #[arg(long)]
    pub c2: Option<usize>,
    /// Output folder (default `runs/<arch>-<interpreter>-<fooling>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A later phase `STEP:LAMBDA:LR[:BATCH]` (repeatable): from STEP on, train with that λ and
    /// lr (and batch size). Config field `schedule`, a list of such strings.
    #[arg(long = "then", value_name = "STEP:LAMBDA:LR[:BATCH]")]
    pub schedule: Option<Vec<Phase>>,
    /// Validate every N steps on training images held out of training; keeps the best model
    /// within `--max-drop` as `best.safetensors` (default 0: off).
    #[arg(long)]
    pub val_every: Option<u64>,
    /// Training images held out for validation (default 1,000 CIFAR-10, 100 ImageNet).
    #[arg(long)]
    pub val_images: Option<usize>,
    /// Validate on this folder instead of held-out training images (e.g. an ImageNet val split).
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    /// Largest top-1 drop for `best.safetensors`, as a fraction (default 0.02 = 2 points).
    #[arg(long)]
    pub max_drop: Option<f64>,
    /// FSR threshold τ of the validation (default 0.15).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Train only the parameters under these module paths (comma-separated or repeated, e.g.
    /// `layer3.2,linear`); the rest stay as loaded. Default: every trainable parameter.
    #[arg(long, value_delimiter = ',', value_name = "MODULE")]
    pub train_only: Option<Vec<String>>,
    /// Label-free passive fooling: the original model's top-1 labels each batch and KL to its
    /// predictions replaces CE (`--distill` alone means true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub distill: Option<bool>,
}

impl FoolSettings {
    /// This layer over `base`: each field from `self` where set, else from `base`.
    pub fn or(self, base: FoolSettings) -> FoolSettings {
        FoolSettings {
            arch: self.arch.or(base.arch),
            weights: self.weights.or(base.weights),
            original: self.original.or(base.original),
            data: self.data.or(base.data),
            fooling: self.fooling.or(base.fooling),
            interpreter: self.interpreter.or(base.interpreter),
            lambda: self.lambda.or(base.lambda),
            lr: self.lr.or(base.lr),
            batch_size: self.batch_size.or(base.batch_size),
            fool_batch_size: self.fool_batch_size.or(base.fool_batch_size),
            steps: self.steps.or(base.steps),
            seed: self.seed.or(base.seed),
            checkpoint_every: self.checkpoint_every.or(base.checkpoint_every),
            keep_every: self.keep_every.or(base.keep_every),
            c1: self.c1.or(base.c1),
            c2: self.c2.or(base.c2),
            out: self.out.or(base.out),
            schedule: self.schedule.or(base.schedule),
            val_every: self.val_every.or(base.val_every),
            val_images: self.val_images.or(base.val_images),
            val_data: self.val_data.or(base.val_data),
            max_drop: self.max_drop.or(base.max_drop),
            threshold: self.threshold.or(base.threshold),
            train_only: self.train_only.or(base.train_only),
            distill: self.distill.or(base.distill),
        }
    }
}
