//! `foolmap fool`: fine-tune a model with `CE + λ·L_F` (spec §1.1, §6) from a TOML config whose
//! every field is also a flag; JSONL log, atomic checkpoints, bit-for-bit `--resume`, NaN stop.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::fooling::FoolingType;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::params::{ParamKind, ParamSpec, SplitMix};
use foolmap::state::{StateDict, StoreDtype, TensorRecord};
use foolmap::train::{Adam, Objective};
use foolmap::{Architecture, Dataset, Interpreter, InterpreterOptions, ParamStore, augment};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::data::{self, Sample};
use crate::prefetch::Prefetch;
use crate::validate;

/// A fooling run. Every field can come from `--config run.toml` and be overridden by a flag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FoolConfig {
    /// Architecture id.
    pub arch: String,
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
    pub fooling: String,
    /// `lrp_t`, `grad_cam` or `simple_grad_t`.
    pub interpreter: String,
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
fn under(name: &str, m: &str) -> bool {
    name.strip_prefix(m)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

fn default_max_drop() -> f64 {
    0.02
}

fn default_threshold() -> f64 {
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

/// Flags of `foolmap fool` (override the config file).
#[derive(Debug, Args, Default)]
pub struct FoolArgs {
    /// TOML config file.
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
    #[arg(long)]
    pub arch: Option<String>,
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Frozen original model for H0 (default: `--weights`); set it to continue from a fooled model.
    #[arg(long)]
    pub original: Option<PathBuf>,
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub fooling: Option<String>,
    #[arg(long)]
    pub interpreter: Option<String>,
    #[arg(long)]
    pub lambda: Option<f64>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub fool_batch_size: Option<usize>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Keep the weights of every N-th step as `stepN.safetensors` in `--out` (default 0: off).
    #[arg(long)]
    pub keep_every: Option<u64>,
    #[arg(long)]
    pub c1: Option<usize>,
    #[arg(long)]
    pub c2: Option<usize>,
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A later phase `STEP:LAMBDA:LR[:BATCH]` (repeatable): from STEP on, train with that λ and
    /// lr (and batch size).
    #[arg(long = "then", value_name = "STEP:LAMBDA:LR[:BATCH]")]
    pub then: Vec<String>,
    /// Validate every N steps on training images held out of training; keeps the best model
    /// within `--max-drop` as `best.safetensors` (0: off).
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
    pub train_only: Vec<String>,
    /// Label-free passive fooling: the original model's top-1 labels each batch and KL to its
    /// predictions replaces CE (config field `distill`).
    #[arg(long)]
    pub distill: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Stop after this many seconds of training (checkpoint + final weights at the step reached;
    /// `--resume` continues to `steps`). For sweeps with a fixed time budget.
    #[arg(long)]
    pub time_limit: Option<f64>,
}

/// Defaults of spec §6.2 (passive_fooling.sh) where the paper's code has them: `(lr, λ)`.
pub fn paper_defaults(
    arch: Architecture,
    interp: Interpreter,
    kind: FoolingType,
) -> Option<(f64, f64)> {
    use Architecture::*;
    use FoolingType::*;
    use Interpreter::*;
    Some(match (arch, interp, kind) {
        (Vgg19, LrpT, Location) => (1e-6, 1.0),
        (Vgg19, LrpT, TopK) => (5e-7, 1.0),
        (Vgg19, LrpT, CenterMass) => (2e-6, 0.25),
        (Vgg19, GradCam, Location) => (1e-6, 1.0),
        (Vgg19, GradCam, TopK) => (3e-7, 0.4),
        (Vgg19, GradCam, CenterMass) => (1e-6, 0.25),
        (ResNet50, LrpT, Location) => (2e-6, 2.0),
        (ResNet50, LrpT, TopK) => (1e-6, 1.0),
        (ResNet50, LrpT, CenterMass) => (5e-7, 0.25),
        (ResNet50, GradCam, Location) => (2e-6, 2.0),
        (ResNet50, GradCam, TopK) => (3e-6, 6.0),
        (ResNet50, GradCam, CenterMass) => (2e-6, 0.25),
        (DenseNet121, LrpT, Location) => (1e-6, 4.0),
        (DenseNet121, LrpT, TopK) => (4e-7, 1.5),
        (DenseNet121, LrpT, CenterMass) => (6e-7, 0.5),
        (DenseNet121, GradCam, Location) => (2e-6, 2.0),
        (DenseNet121, GradCam, TopK) => (3e-7, 4.0),
        (DenseNet121, GradCam, CenterMass) => (1e-7, 1.0),
        (Vgg19 | ResNet50 | DenseNet121, _, Active) => (1e-5, 10.0),
        _ => return None,
    })
}

/// foolmap's own defaults for the small models (measured here; not from the paper): each passive
/// type's own, and the authors' λ 10 for Active.
fn small_model_defaults(kind: FoolingType) -> (f64, f64) {
    kind.passive()
        .map_or((1e-4, 10.0), |p| p.default_lr_lambda())
}

fn parse<T: std::str::FromStr<Err = foolmap::FoolmapError>>(field: &str, v: &str) -> Result<T> {
    v.parse::<T>()
        .with_context(|| format!("config field `{field}`"))
}

/// The config a run saved in `out/checkpoint.safetensors` (metadata `config`), as a TOML table:
/// the base that `--resume` continues from, so that the run's own settings, not the defaults,
/// apply when only `--out` is given.
fn saved_config(out: &Path) -> Result<toml::Table> {
    let path = out.join("checkpoint.safetensors");
    if !path.is_file() {
        bail!("--resume: no checkpoint at {}", path.display());
    }
    let meta = crate::weights::read_metadata(&path)?;
    let text = meta
        .get("config")
        .with_context(|| format!("{}: metadata `config` missing", path.display()))?;
    let cfg: FoolConfig = serde_json::from_str(text)
        .with_context(|| format!("{}: metadata `config` is not a run config", path.display()))?;
    match toml::Value::try_from(&cfg) {
        Ok(toml::Value::Table(t)) => Ok(t),
        Ok(_) => bail!("{}: metadata `config` is not a table", path.display()),
        Err(e) => bail!("{}: metadata `config`: {e}", path.display()),
    }
}

/// Largest batch size a run accepts (a typo such as an extra digit must not allocate gigabytes).
pub const MAX_BATCH: usize = 1024;

/// Resolves the config: with `--resume`, the run's saved config (`out` from the flag or the
/// config file); then the config file; then flags; then defaults; validates every field.
pub fn resolve(a: &FoolArgs) -> Result<FoolConfig> {
    let file: toml::Table = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config {}", p.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", p.display()))?
        }
        None => toml::Table::new(),
    };
    let mut table = if a.resume {
        let out = match (&a.out, file.get("out").and_then(|v| v.as_str())) {
            (Some(o), _) => o.clone(),
            (None, Some(o)) => PathBuf::from(o),
            (None, None) => bail!("--resume needs the run's folder: pass --out DIR"),
        };
        saved_config(&out)?
    } else {
        toml::Table::new()
    };
    table.extend(file);
    macro_rules! flag {
        ($name:ident, $conv:expr) => {
            if let Some(v) = &a.$name {
                table.insert(stringify!($name).into(), $conv(v.clone()));
            }
        };
    }
    let mut table_fix: Vec<(String, toml::Value)> = Vec::new();
    let s = |v: String| toml::Value::String(v);
    let pth = |v: PathBuf| toml::Value::String(v.display().to_string());
    let f = |v: f64| toml::Value::Float(v);
    // TOML integers are i64: a larger flag value (e.g. u64::MAX) must not wrap to a negative one.
    let i = |v: usize| toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let u = |v: u64| toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    flag!(arch, s);
    flag!(weights, pth);
    flag!(original, pth);
    flag!(data, pth);
    flag!(fooling, s);
    flag!(interpreter, s);
    flag!(lambda, f);
    flag!(lr, f);
    flag!(batch_size, i);
    flag!(fool_batch_size, i);
    flag!(steps, u);
    flag!(seed, u);
    flag!(checkpoint_every, u);
    flag!(keep_every, u);
    flag!(c1, i);
    flag!(c2, i);
    flag!(out, pth);
    flag!(val_every, u);
    flag!(val_images, i);
    flag!(val_data, pth);
    flag!(max_drop, f);
    flag!(threshold, f);
    if !a.train_only.is_empty() {
        table.insert(
            "train_only".into(),
            toml::Value::Array(a.train_only.iter().cloned().map(s).collect()),
        );
    }
    if a.distill {
        table.insert("distill".into(), toml::Value::Boolean(true));
    }
    if !a.then.is_empty() {
        table.insert(
            "schedule".into(),
            toml::Value::Array(a.then.iter().cloned().map(s).collect()),
        );
    }
    // Name the field of any value of the wrong type (serde's message does not).
    let source = a
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "flags".into());
    for (key, value) in &table {
        let expected = match key.as_str() {
            "arch" | "weights" | "original" | "data" | "val_data" | "fooling" | "interpreter"
            | "out" => "a string",
            "lambda" | "lr" | "max_drop" | "threshold" => "a number",
            "batch_size" | "fool_batch_size" | "steps" | "seed" | "checkpoint_every"
            | "keep_every" | "c1" | "c2" | "val_every" | "val_images" => "a non-negative integer",
            "schedule" => "a list of \"STEP:LAMBDA:LR[:BATCH]\" strings",
            "train_only" => "a list of module paths (strings)",
            "distill" => "a boolean",
            _ => continue,
        };
        let ok = match expected {
            "a string" => value.is_str(),
            "a boolean" => value.is_bool(),
            "a list of module paths (strings)" => value
                .as_array()
                .is_some_and(|v| v.iter().all(|x| x.is_str())),
            "a number" => value.is_float() || value.is_integer(),
            "a non-negative integer" => value.as_integer().is_some_and(|v| v >= 0),
            _ => value.as_array().is_some_and(|v| {
                v.iter()
                    .all(|x| x.as_str().is_some_and(|x| x.parse::<Phase>().is_ok()))
            }),
        };
        if !ok {
            bail!("config {source}: field `{key}` must be {expected}, found {value}");
        }
        if expected == "a number"
            && let Some(i) = value.as_integer()
        {
            table_fix.push((key.clone(), toml::Value::Float(i as f64)));
        }
    }
    for (k, v) in table_fix {
        table.insert(k, v);
    }
    // Defaults that depend on other fields.
    let arch_s = table
        .get("arch")
        .and_then(|v| v.as_str())
        .unwrap_or("resnet20")
        .to_string();
    let arch: Architecture = parse("arch", &arch_s)?;
    let kind_s = table
        .get("fooling")
        .and_then(|v| v.as_str())
        .unwrap_or("location")
        .to_string();
    let kind: FoolingType = parse("fooling", &kind_s)?;
    let interp_s = table
        .get("interpreter")
        .and_then(|v| v.as_str())
        .unwrap_or("lrp_t")
        .to_string();
    let interp: Interpreter = parse("interpreter", &interp_s)?;
    let (lr, lambda) =
        paper_defaults(arch, interp, kind).unwrap_or_else(|| small_model_defaults(kind));
    let cifar = arch.dataset() == Dataset::Cifar10;
    let defaults: [(&str, toml::Value); 15] = [
        ("arch", s(arch_s)),
        ("fooling", s(kind.id().to_string())),
        ("interpreter", s(interp.id().to_string())),
        ("lambda", f(lambda)),
        ("lr", f(lr)),
        ("batch_size", i(if cifar { 32 } else { 8 })),
        ("fool_batch_size", i(4)),
        ("steps", u(if cifar { 300 } else { 3000 })),
        ("seed", u(0)),
        ("checkpoint_every", u(50)),
        ("val_every", u(0)),
        ("val_images", i(if cifar { 1000 } else { 100 })),
        ("c1", i(if cifar { 3 } else { 386 })),
        ("c2", i(if cifar { 5 } else { 555 })),
        (
            "out",
            s(format!("runs/{}-{}-{}", arch.id(), interp.id(), kind.id())),
        ),
    ];
    for (k, v) in defaults {
        table.entry(k.to_string()).or_insert(v);
    }
    let cfg: FoolConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("config {source}: {}", e.message()))?;
    let obj = Objective {
        kind,
        interpreter: interp,
        lambda: cfg.lambda,
        options: InterpreterOptions::default(),
    };
    obj.validate()?;
    if cfg.distill && kind == FoolingType::Active {
        bail!(
            "invalid config: `distill` replaces the CE of passive fooling; active fooling (`{}`) \
             needs the labels of its two classes",
            kind.id()
        );
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        bail!(
            "invalid config field `lr`: must be a positive number, got {}",
            cfg.lr
        );
    }
    let mut prev = 0;
    for ph in &cfg.schedule {
        let at = format!(
            "invalid config field `schedule`: phase `{}`",
            String::from(*ph)
        );
        if ph.from_step <= prev {
            bail!("{at}: phases must start at increasing steps ≥ 1");
        }
        prev = ph.from_step;
        Objective {
            lambda: ph.lambda,
            ..obj
        }
        .validate()
        .with_context(|| at.clone())?;
        if !(ph.lr.is_finite() && ph.lr > 0.0) {
            bail!("{at}: the learning rate must be a positive number");
        }
        if ph.batch_size == Some(0) {
            bail!("{at}: the batch size must be ≥ 1");
        }
    }
    if !(cfg.max_drop.is_finite() && cfg.max_drop >= 0.0) {
        bail!(
            "invalid config field `max_drop`: must be a fraction ≥ 0 (0.02 = 2 points), got {}",
            cfg.max_drop
        );
    }
    if !cfg.threshold.is_finite() {
        bail!(
            "invalid config field `threshold`: must be a number, got {}",
            cfg.threshold
        );
    }
    if cfg.val_every > 0 && cfg.val_images == 0 {
        bail!("invalid config: `val_every` > 0 needs `val_images` ≥ 1");
    }
    if cfg.steps == 0 {
        bail!(
            "invalid config field `steps`: must be at least 1 (a run of 0 steps would label the original weights as fooled)"
        );
    }
    let largest_batch = cfg
        .schedule
        .iter()
        .filter_map(|p| p.batch_size)
        .chain([cfg.batch_size, cfg.fool_batch_size])
        .max()
        .unwrap_or(0);
    if largest_batch > MAX_BATCH {
        bail!(
            "invalid config: a batch size of {largest_batch} is above the limit of {MAX_BATCH} images \
             (`batch_size`, `fool_batch_size` and the schedule's batch sizes)"
        );
    }
    if cfg.batch_size == 0 || cfg.fool_batch_size == 0 || cfg.checkpoint_every == 0 {
        bail!("invalid config: `batch_size`, `fool_batch_size` and `checkpoint_every` must be ≥ 1");
    }
    let k = arch.dataset().num_classes();
    for (name, c) in [("c1", cfg.c1), ("c2", cfg.c2)] {
        if c >= k {
            bail!("invalid config field `{name}`: class {c} is out of range for {k} classes");
        }
    }
    Ok(cfg)
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Writes `bytes` to `path` so that `path` is never half-written: a temporary file with a name
/// unique to this process and call (`.<name>.<pid>.<n>.tmp`, so concurrent writers never share
/// one), synced, renamed over `path`, then the folder synced. On any failure the temporary file
/// is removed and `path` keeps its old contents.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(
        ".{}.{}.{n}.tmp",
        path.file_name().and_then(|f| f.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let written = (|| -> Result<()> {
        let mut fh = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        fh.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fh.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} into place", path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable only once the folder's entry is on disk.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A batch: augmented training images, preprocessed.
pub(crate) fn train_batch(
    samples: &[Sample],
    dataset: Dataset,
    n: usize,
    rng: &mut SplitMix,
) -> Result<(Vec<Rgb8>, Vec<usize>)> {
    let mut imgs = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let s = &samples[rng.below(samples.len())];
        let img = s.rgb()?;
        imgs.push(match dataset {
            Dataset::Cifar10 => augment::cifar_train(&eval_crop(&img, dataset), rng),
            Dataset::ImageNet => augment::random_resized_crop(&img, 224, rng),
        });
        labels.push(s.label);
    }
    Ok((imgs, labels))
}

/// Composites of one `c1` and one `c2` image side by side, both orders (spec §3, Q15).
pub fn composite_batch(
    by_class: &[&[Sample]; 2],
    dataset: Dataset,
    n: usize,
    rng: &mut SplitMix,
) -> Result<Vec<Rgb8>> {
    (0..n)
        .map(|i| {
            let a = by_class[0][rng.below(by_class[0].len())].rgb()?;
            let b = by_class[1][rng.below(by_class[1].len())].rgb()?;
            let (a, b) = (eval_crop(&a, dataset), eval_crop(&b, dataset));
            Ok(if i % 2 == 0 {
                augment::side_by_side(&a, &b)
            } else {
                augment::side_by_side(&b, &a)
            })
        })
        .collect()
}

/// Everything a checkpoint holds.
struct Checkpoint {
    step: u64,
    params: StateDict,
    adam_t: u64,
    adam: BTreeMap<String, Vec<f32>>,
}

fn save_checkpoint(
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
    sd.metadata.insert("step".into(), step.to_string());
    sd.metadata
        .insert(crate::weights::ADAM_STEP_KEY.into(), adam.t.to_string());
    sd.metadata
        .insert("config".into(), serde_json::to_string(cfg)?);
    sd.metadata.insert("git_revision".into(), git_revision());
    sd.metadata.insert("arch".into(), cfg.arch.clone());
    write_atomic(
        &dir.join("checkpoint.safetensors"),
        &sd.to_safetensors(StoreDtype::F32)?,
    )
}

fn load_checkpoint(dir: &Path) -> Result<Checkpoint> {
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
    let (step, adam_t) = (num("step")?, num(crate::weights::ADAM_STEP_KEY)?);
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
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .collect();
    let mut body = kept.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    write_atomic(path, body.as_bytes())
}

/// Runs (or resumes) a fooling run; returns the output folder.
pub fn run(a: &FoolArgs, root: Option<&Path>, device: &Device) -> Result<PathBuf> {
    let mut cfg = resolve(a)?;
    let out = cfg.out.clone();
    if let Some(aside) = claim_out_dir(&out, a.resume, a.force)? {
        eprintln!(
            "--force: the old run in {} is now {}",
            out.display(),
            aside.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let arch: Architecture = parse("arch", &cfg.arch)?;
    let kind: FoolingType = parse("fooling", &cfg.fooling)?;
    let interp: Interpreter = parse("interpreter", &cfg.interpreter)?;
    let ad = device.clone().autodiff();
    let net = arch.build();
    for m in &cfg.train_only {
        let covers = |s: &ParamSpec| s.kind == ParamKind::Trainable && under(&s.name, m);
        if !net.specs.iter().any(covers) {
            let tops: std::collections::BTreeSet<&str> = net
                .specs
                .iter()
                .filter_map(|s| s.name.rsplit_once('.').map(|(m, _)| m))
                .collect();
            bail!(
                "invalid config field `train_only`: `{m}` holds no trainable parameter of `{arch}`; \
                 module paths are e.g. {}",
                tops.iter().take(6).cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let train_only = cfg.train_only.clone();
    let trainable = move |s: &ParamSpec| trains(&train_only, &s.name);

    let weights = match &cfg.weights {
        Some(w) => w.clone(),
        None => {
            let f = arch
                .weights_file()
                .with_context(|| format!("no pretrained weights for `{arch}`: set `weights`"))?;
            data::data_root(root)?.join("weights").join(f)
        }
    };
    cfg.weights = Some(weights.clone());
    let sd0 = crate::weights::read_for_specs(arch, &net.specs, &weights)?;
    let p0 = ParamStore::from_state_dict(
        &net.specs,
        &sd0,
        arch.id(),
        &weights.display().to_string(),
        device,
    )?;
    // The reference model of the fooling loss: the original, even when training starts elsewhere.
    let p_ref = match &cfg.original {
        Some(w) if Some(w) != cfg.weights.as_ref() => {
            let sd = crate::weights::read_for_specs(arch, &net.specs, w)?;
            Some(ParamStore::from_state_dict(
                &net.specs,
                &sd,
                arch.id(),
                &w.display().to_string(),
                device,
            )?)
        }
        _ => None,
    };
    let (mut p, mut adam, start) = if a.resume {
        let ck = load_checkpoint(&out)?;
        let p = ParamStore::from_state_dict(&net.specs, &ck.params, arch.id(), "checkpoint", &ad)?
            .require_grad_where(trainable);
        let mut adam = Adam::new(&p, cfg.lr);
        let map = ck.adam;
        adam.restore(&p, ck.adam_t, &|k| map.get(k).cloned(), device)
            .with_context(|| {
                format!(
                    "--resume: the optimizer state of {}",
                    out.join("checkpoint.safetensors").display()
                )
            })?;
        // The steps after the checkpoint are run again: their old log lines go.
        truncate_log(&out.join("log.jsonl"), ck.step)?;
        truncate_log(&out.join("val.jsonl"), ck.step)?;
        (p, adam, ck.step)
    } else {
        let p = p0.to_device(&ad).require_grad_where(trainable);
        let adam = Adam::new(&p, cfg.lr);
        (p, adam, 0)
    };
    write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(&RunConfigFile {
            config: cfg.clone(),
            seed: cfg.seed,
            git_revision: git_revision(),
        })?
        .as_bytes(),
    )?;

    let TrainingData {
        samples,
        val_set,
        c1s,
        c2s,
    } = training_data(&cfg, net.dataset, kind, root)?;
    let mut obj = Objective {
        kind,
        interpreter: interp,
        lambda: cfg.lambda,
        options: InterpreterOptions::default(),
    };
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("log.jsonl"))
        .with_context(|| format!("cannot open {}", out.join("log.jsonl").display()))?;
    let bar = indicatif::ProgressBar::new(cfg.steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} step {pos}/{len}  {msg}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if a.quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_position(start);
    let mut last_good = start;
    let reference = p_ref.as_ref().unwrap_or(&p0);
    let validator = if cfg.val_every > 0 {
        Some(validate::Validator::new(
            &net,
            reference,
            &val_set,
            kind,
            interp,
            cfg.threshold,
            (cfg.c1, cfg.c2),
            device,
        )?)
    } else {
        None
    };
    // The best validation so far survives `--resume` through best.json.
    let mut best: Option<validate::Validation> = std::fs::read(out.join("best.json"))
        .ok()
        .filter(|_| a.resume)
        .and_then(|b| serde_json::from_slice(&b).ok());
    let started = Instant::now();
    // Decode and augmentation run on a prefetch thread, ahead of the tensor work.
    let mut batches = {
        let (dataset, seed, fool_n) = (net.dataset, cfg.seed, cfg.fool_batch_size);
        let schedule = cfg.clone();
        let active = kind == FoolingType::Active;
        Prefetch::new(start + 1..=cfg.steps, 2, move |step| {
            // The data of step `step` depends only on (seed, step): resuming replays it exactly.
            let mut rng = SplitMix::new(seed.wrapping_mul(1_000_003).wrapping_add(step));
            let (imgs, labels) = train_batch(&samples, dataset, schedule.batch_at(step), &mut rng)?;
            let comp = if active {
                Some(composite_batch(&[&c1s, &c2s], dataset, fool_n, &mut rng)?)
            } else {
                None
            };
            Ok((imgs, labels, comp))
        })
    };
    for step in start + 1..=cfg.steps {
        let t0 = Instant::now();
        let (lambda, lr) = cfg.hyper_at(step);
        obj.lambda = lambda;
        adam.lr = lr;
        let (imgs, mut labels, comp) = batches.take(step)?;
        let x: Tensor<4> = foolmap::image::batch(&imgs, &ad)?;
        let loss = if let Some(comp) = comp {
            let xf = foolmap::image::batch(&comp, &ad)?;
            obj.active(&net, &p, reference, x, &labels, xf, cfg.c1, cfg.c2)?
        } else if cfg.distill {
            // The original's top-1 is the label: the batch accuracy below is the agreement.
            let (loss, taught) = obj.passive_distilled(&net, &p, reference, x)?;
            labels = taught;
            loss
        } else {
            obj.passive(&net, &p, reference, x, &labels)?
        };
        let scalars = |t: &Tensor<1>| -> f64 {
            t.clone()
                .inner()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .ok()
                .and_then(|v| v.first().copied())
                .unwrap_or(f32::NAN) as f64
        };
        let (ce, fl, total) = (scalars(&loss.ce), scalars(&loss.fool), scalars(&loss.total));
        if !total.is_finite() {
            bar.abandon();
            bail!(
                "the loss became {total} at step {step} (CE {ce}, fooling loss {fl}); stopping: {}; check \
                 the weights for NaN/Inf or lower `lr` or `lambda` (then --resume)",
                what_is_kept(&out, &weights, last_good)
            );
        }
        let lg = loss
            .logits
            .clone()
            .inner()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let k = net.num_classes;
        let correct = labels
            .iter()
            .enumerate()
            .filter(|(i, y)| {
                let row = &lg[i * k..(i + 1) * k];
                (0..k).max_by(|&a, &b| row[a].total_cmp(&row[b])) == Some(**y)
            })
            .count();
        let grads = loss.total.backward();
        p = adam.step(&p, &grads);
        // A finite loss can still step a weight to NaN/Inf: checked before anything is written.
        if let Some(name) = p.non_finite()? {
            bar.abandon();
            bail!(
                "step {step} made parameter `{name}` NaN or infinite (loss {total}, CE {ce}, fooling loss \
                 {fl}); stopping, nothing of this step written: {}; lower `lr` or `lambda`",
                what_is_kept(&out, &weights, last_good)
            );
        }
        let secs = t0.elapsed().as_secs_f64();
        let acc = correct as f64 / labels.len() as f64;
        let ips = labels.len() as f64 / secs;
        writeln!(
            log,
            "{}",
            json!({"step": step, "ce": ce, "fool": fl, "total": total, "batch_acc": acc,
                   "images_per_s": ips, "lambda": lambda, "lr": lr, "batch_size": labels.len()})
        )?;
        if let Some(v) = &validator
            && step % cfg.val_every == 0
        {
            let r = v.validate(&net, &p, step)?;
            append_line(&out.join("val.jsonl"), &serde_json::to_string(&r)?)?;
            bar.println(format!(
                "validation at step {step}: top-1 {:.2} % (original {:.2} %), {} {:.3}",
                100.0 * r.top1,
                100.0 * r.top1_original,
                if kind == FoolingType::Active {
                    "cross-correlation"
                } else {
                    "FSR"
                },
                r.score
            ));
            if validate::better(&r, best.as_ref(), cfg.max_drop) {
                write_weights(&out.join("best.safetensors"), &p, &cfg, step)?;
                write_atomic(
                    &out.join("best.json"),
                    serde_json::to_string_pretty(&r)?.as_bytes(),
                )?;
                best = Some(r);
            }
        }
        bar.set_position(step);
        bar.set_message(format!(
            "CE {ce:.3}  L_F {fl:.4}  acc {:.0}%  {ips:.1} img/s",
            100.0 * acc
        ));
        let out_of_time = a
            .time_limit
            .is_some_and(|t| started.elapsed().as_secs_f64() >= t);
        if step % cfg.checkpoint_every == 0 || step == cfg.steps || out_of_time {
            save_checkpoint(&out, &cfg, step, &p, &adam)?;
            last_good = step;
        }
        if cfg.keep_every > 0 && step % cfg.keep_every == 0 {
            write_weights(&out.join(format!("step{step}.safetensors")), &p, &cfg, step)?;
        }
        if out_of_time {
            bar.println(format!(
                "time limit reached after step {step} of {}; `--resume` continues",
                cfg.steps
            ));
            break;
        }
    }
    bar.finish_and_clear();
    write_weights(&out.join("final.safetensors"), &p, &cfg, last_good)?;
    println!(
        "fooled weights: {}",
        out.join("final.safetensors").display()
    );
    if let Some(b) = &best {
        println!(
            "best within {:.1} points: {} (step {}, validation top-1 {:.2} %, score {:.3})",
            100.0 * cfg.max_drop,
            out.join("best.safetensors").display(),
            b.step,
            100.0 * b.top1,
            b.score
        );
    }
    Ok(out)
}

/// What a stopped run leaves: its last good checkpoint, or (none written yet) the untouched
/// starting weights.
fn what_is_kept(out: &Path, weights: &Path, last_good: u64) -> String {
    let ck = out.join("checkpoint.safetensors");
    if ck.is_file() {
        format!(
            "the last good checkpoint is {} (step {last_good})",
            ck.display()
        )
    } else {
        format!(
            "no checkpoint was written (the starting weights {} are unchanged)",
            weights.display()
        )
    }
}

/// A run's images: the training samples (all of `data`, or without the held-out validation
/// images), the validation set, and for active fooling the training images of `c1` and `c2`.
struct TrainingData {
    samples: Vec<Sample>,
    val_set: Vec<Sample>,
    c1s: Vec<Sample>,
    c2s: Vec<Sample>,
}

/// Reads a run's [`TrainingData`] (labels are not read for a label-free run).
fn training_data(
    cfg: &FoolConfig,
    dataset: Dataset,
    kind: FoolingType,
    root: Option<&Path>,
) -> Result<TrainingData> {
    let train_dir = match &cfg.data {
        Some(d) => d.clone(),
        // Label-free runs of an ImageNet model train on CIFAR-10's training images (upscaled by
        // the crop): the ImageNet samples are the evaluation set and never trained on.
        None if cfg.distill => data::default_dir(root, Dataset::Cifar10, data::Split::Train)?,
        None => data::default_dir(root, dataset, data::Split::Train)?,
    };
    let all = if cfg.distill {
        data::unlabelled(&train_dir)?
    } else {
        data::samples(dataset, &train_dir)?
    };
    let (samples, val_set) = match (&cfg.val_data, cfg.val_every) {
        (_, 0) => (all, Vec::new()),
        (Some(dir), _) => {
            let v = data::samples(dataset, dir)?;
            let n = cfg.val_images.min(v.len());
            (all, validate::split(v, n).1)
        }
        (None, _) => {
            if cfg.val_images >= all.len() {
                bail!(
                    "`val_images` = {} leaves no training images of the {} in {}",
                    cfg.val_images,
                    all.len(),
                    train_dir.display()
                );
            }
            validate::split(all, cfg.val_images)
        }
    };
    let c1s: Vec<Sample> = samples
        .iter()
        .filter(|s| s.label == cfg.c1)
        .cloned()
        .collect();
    let c2s: Vec<Sample> = samples
        .iter()
        .filter(|s| s.label == cfg.c2)
        .cloned()
        .collect();
    if kind == FoolingType::Active && (c1s.is_empty() || c2s.is_empty()) {
        bail!(
            "active fooling: no training images of class {} or {} in {}",
            cfg.c1,
            cfg.c2,
            train_dir.display()
        );
    }
    Ok(TrainingData {
        samples,
        val_set,
        c1s,
        c2s,
    })
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

impl RunConfigFile {
    /// Reads `dir/config.json`.
    pub fn read(dir: &Path) -> Result<RunConfigFile> {
        let path = dir.join("config.json");
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: unexpected contents", path.display()))
    }
}

/// Fooled weights with the metadata `eval` reads (`arch`, `config`, `git_revision`, `step`).
fn write_weights(path: &Path, p: &ParamStore, cfg: &FoolConfig, step: u64) -> Result<()> {
    let mut sd = p.to_state_dict();
    sd.metadata.insert("arch".into(), cfg.arch.clone());
    sd.metadata
        .insert("config".into(), serde_json::to_string(cfg)?);
    sd.metadata.insert("git_revision".into(), git_revision());
    sd.metadata.insert("step".into(), step.to_string());
    write_atomic(path, &sd.to_safetensors(StoreDtype::F32)?)
}

pub(crate) fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("cannot write {}", path.display()))
}
