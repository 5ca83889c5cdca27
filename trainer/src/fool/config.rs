//! The configuration of a fooling run: the typed layers it is read from ([`FoolSettings`]: the
//! config file, the flags, a resumed run's saved config) and the resolved [`FoolConfig`].

use std::path::PathBuf;

use clap::Args;
pub use foolmap::artifact::run::{FoolConfig, Phase, trains};
use foolmap::fooling::FoolingType;
use foolmap::{Architecture, Interpreter};
use serde::Deserialize;

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
    /// Train on the evaluation images' selection half after its first N images (those choose
    /// checkpoints; the report half is never read); with `--distill`, for ImageNet models.
    #[arg(long, value_name = "N")]
    pub selection_rest: Option<usize>,
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
            selection_rest: self.selection_rest.or(base.selection_rest),
        }
    }
}
