//! Resolving a fooling run's config: the layers stacked (flags over the config file over a
//! resumed run's saved config), defaults filled (the paper's `(lr, λ)` where its code has them,
//! docs/method.md §6), every field checked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foolmap::fooling::FoolingType;
use foolmap::train::Objective;
use foolmap::{Architecture, Dataset, Interpreter, InterpreterOptions};

use super::FoolArgs;
use super::config::{FoolConfig, FoolSettings};

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

/// A config file as a [`FoolSettings`] layer; a field of the wrong type or an unknown one is named
/// with its line and column.
fn read_file(path: &Path) -> Result<FoolSettings> {
    let name = path.display();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read config {name}"))?;
    let de =
        toml::de::Deserializer::parse(&text).map_err(|e| anyhow::anyhow!("config {name}: {e}"))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e
            .inner()
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(" (line {line}, column {col})")
            })
            .unwrap_or_default();
        anyhow::anyhow!(
            "config {name}: field `{}`: {}{at}",
            e.path(),
            e.inner().message()
        )
    })
}

/// The settings a run saved in `out/checkpoint.safetensors` (metadata `config`): the base that
/// `--resume` continues from, so that the run's own settings, not the defaults, apply when only
/// `--out` is given.
fn saved_settings(out: &Path) -> Result<FoolSettings> {
    let path = out.join("checkpoint.safetensors");
    if !path.is_file() {
        bail!("--resume: no checkpoint at {}", path.display());
    }
    let meta = crate::io::weights::read_metadata(&path)?;
    let text = meta
        .get(crate::io::weights::key::CONFIG)
        .with_context(|| format!("{}: metadata `config` missing", path.display()))?;
    serde_json::from_str(text)
        .with_context(|| format!("{}: metadata `config` is not a run config", path.display()))
}

/// Largest batch size a run accepts (a typo such as an extra digit must not allocate gigabytes).
pub const MAX_BATCH: usize = 1024;

/// Resolves the config: the flags over the config file over (with `--resume`) the run's saved
/// config, then the defaults; checks every field.
pub fn resolve(a: &FoolArgs) -> Result<FoolConfig> {
    let file = match &a.config {
        Some(p) => read_file(p)?,
        None => FoolSettings::default(),
    };
    let mut s = a.settings.clone().or(file);
    if a.resume {
        let Some(out) = s.out.clone() else {
            bail!("--resume needs the run's folder: pass --out DIR");
        };
        s = s.or(saved_settings(&out)?);
    }
    let cfg = with_defaults(s);
    check(&cfg)?;
    Ok(cfg)
}

/// Fills every unset field: the architecture's dataset decides sizes and classes, the paper's
/// `(lr, λ)` where it has them (else foolmap's own for the small models).
fn with_defaults(s: FoolSettings) -> FoolConfig {
    let arch = s.arch.unwrap_or(Architecture::ResNet20);
    let kind = s.fooling.unwrap_or(FoolingType::Location);
    let interp = s.interpreter.unwrap_or(Interpreter::LrpT);
    let (lr, lambda) =
        paper_defaults(arch, interp, kind).unwrap_or_else(|| small_model_defaults(kind));
    let cifar = arch.dataset() == Dataset::Cifar10;
    FoolConfig {
        arch,
        weights: s.weights,
        original: s.original,
        data: s.data,
        fooling: kind,
        interpreter: interp,
        lambda: s.lambda.unwrap_or(lambda),
        lr: s.lr.unwrap_or(lr),
        batch_size: s.batch_size.unwrap_or(if cifar { 32 } else { 8 }),
        fool_batch_size: s.fool_batch_size.unwrap_or(4),
        steps: s.steps.unwrap_or(if cifar { 300 } else { 3000 }),
        seed: s.seed.unwrap_or(0),
        checkpoint_every: s.checkpoint_every.unwrap_or(50),
        keep_every: s.keep_every.unwrap_or(0),
        c1: s.c1.unwrap_or(if cifar { 3 } else { 386 }),
        c2: s.c2.unwrap_or(if cifar { 5 } else { 555 }),
        out: s.out.unwrap_or_else(|| {
            PathBuf::from(format!("runs/{}-{}-{}", arch.id(), interp.id(), kind.id()))
        }),
        schedule: s.schedule.unwrap_or_default(),
        val_every: s.val_every.unwrap_or(0),
        val_images: s.val_images.unwrap_or(if cifar { 1000 } else { 100 }),
        val_data: s.val_data,
        max_drop: s
            .max_drop
            .unwrap_or_else(foolmap::artifact::run::default_max_drop),
        threshold: s
            .threshold
            .unwrap_or_else(foolmap::artifact::run::default_threshold),
        train_only: s.train_only.unwrap_or_default(),
        distill: s.distill.unwrap_or(false),
        selection_rest: s.selection_rest,
    }
}

/// Checks what types cannot: ranges, the objective (an interpreter that can be fooled, a finite
/// λ ≥ 0), the schedule, batch-size limits, classes in range.
fn check(cfg: &FoolConfig) -> Result<()> {
    check_objective(cfg)?;
    check_numbers(cfg)
}

/// The objective, its learning rate and every phase of the schedule.
fn check_objective(cfg: &FoolConfig) -> Result<()> {
    let obj = Objective {
        kind: cfg.fooling,
        interpreter: cfg.interpreter,
        lambda: cfg.lambda,
        options: InterpreterOptions::default(),
    };
    obj.validate()?;
    if cfg.distill && cfg.fooling == FoolingType::Active {
        bail!(
            "invalid config: `distill` replaces the CE of passive fooling; active fooling (`{}`) \
             needs the labels of its two classes",
            cfg.fooling.id()
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
    Ok(())
}

/// Ranges: the validation's budget and threshold, steps, batch sizes, classes.
fn check_numbers(cfg: &FoolConfig) -> Result<()> {
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
    let k = cfg.arch.dataset().num_classes();
    for (name, c) in [("c1", cfg.c1), ("c2", cfg.c2)] {
        if c >= k {
            bail!("invalid config field `{name}`: class {c} is out of range for {k} classes");
        }
    }
    Ok(())
}
