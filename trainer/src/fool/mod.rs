//! `foolmap fool`: fine-tune a model with `CE + λ·L_F` (docs/method.md §5–6) from a TOML config
//! whose every field is also a flag; JSONL log, atomic checkpoints, bit-for-bit `--resume`, NaN
//! stop, in-run validation.
//!
//! - [`config`]: the typed settings layers and the resolved config;
//! - [`resolve`]: stacking the layers, the defaults (the paper's where it has them), the checks;
//! - [`checkpoint`]: checkpoints, the run folder and its files;
//! - [`setup`]: models and the fooling session; [`data`]: the run's images and batches;
//! - [`run`]: the training loop; [`validate`]: validation on held-out images.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod resolve;
pub mod run;
pub mod setup;
pub mod validate;

use std::path::PathBuf;

use clap::Args;

pub use checkpoint::{RunConfigFile, claim_out_dir, truncate_log};
pub use config::{FoolConfig, FoolSettings, Phase, trains};
pub use resolve::{MAX_BATCH, paper_defaults, resolve};
pub use run::run;

/// The command line of `foolmap fool`: how to run, and one [`FoolSettings`] layer (the flags)
/// that overrides the config file.
#[derive(Debug, Args, Default)]
pub struct FoolArgs {
    /// TOML config file (the fields of [`FoolSettings`]).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in `--out` from its last checkpoint, with the config saved there (flags
    /// given beside it override it).
    #[arg(long)]
    pub resume: bool,
    /// Start a new run in a non-empty `--out`: its contents are moved to `<out>.old-N` first
    /// (never deleted). Without it (or `--resume`) a non-empty `--out` is refused.
    #[arg(long)]
    pub force: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Stop after this many seconds of training (checkpoint + final weights at the step reached;
    /// `--resume` continues to `steps`). For sweeps with a fixed time budget.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// The run's settings given as flags.
    #[command(flatten)]
    pub settings: FoolSettings,
}
