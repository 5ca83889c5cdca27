//! The training loop of a fooling run: models and data prepared, then per step the objective
//! (docs/method.md §5), Adam, the NaN/Inf stops, the log, validation, checkpoints and the time
//! limit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use foolmap::artifact::run::StepLog;
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::fooling::FoolingType;
use foolmap::scores::read_back;
use foolmap::session::{Batch, FoolingSession};
use foolmap::train::top1;

use super::FoolArgs;
use super::checkpoint::{
    RunConfigFile, claim_out_dir, git_revision, save_checkpoint, write_weights,
};
use super::config::FoolConfig;
use super::data::{StepImages, TrainingData, prefetch, training_data};
use super::resolve::resolve;
use super::setup::{Models, load_models, start_session};
use super::validate;
use crate::io::atomic::{append_line, write_atomic};

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
    let models = load_models(&mut cfg, root, device)?;
    let (session, start) = start_session(&cfg, a.resume, &out, &models, device)?;
    write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(&RunConfigFile {
            config: cfg.clone(),
            seed: cfg.seed,
            git_revision: git_revision(),
        })?
        .as_bytes(),
    )?;
    let data = training_data(&cfg, models.net.dataset, cfg.fooling, root)?;
    train(a, &cfg, &out, &models, (session, start), data, device)
}

/// The training loop from the session's step to `steps` (or the time limit): one step, its log
/// line, validation, checkpoints; then the final weights.
fn train(
    a: &FoolArgs,
    cfg: &FoolConfig,
    out: &Path,
    m: &Models,
    (mut session, start): (FoolingSession, u64),
    data: TrainingData,
    device: &Device,
) -> Result<PathBuf> {
    let mut log = open_log(out)?;
    let bar = progress_bar(cfg.steps, start, a.quiet);
    let mut last_good = start;
    let validator = validator(cfg, m, &data, device)?;
    // The best validation so far survives `--resume` through best.json.
    let best_path = out.join("best.json");
    let mut best: Option<validate::Validation> = match a.resume && best_path.is_file() {
        true => Some(crate::io::json::read(&best_path)?),
        false => None,
    };
    let started = Instant::now();
    let mut batches = prefetch(cfg, m.net.dataset, data, start);
    let ad = device.clone().autodiff();
    for step in start + 1..=cfg.steps {
        let t0 = Instant::now();
        let (lambda, lr) = cfg.hyper_at(step);
        session.set_hyper(lambda, lr);
        let stop = |what: String| -> anyhow::Error {
            bar.abandon();
            anyhow::anyhow!("{what}: {}", what_is_kept(out, &m.weights, last_good))
        };
        let s = one_step(cfg, m, &mut session, batches.take(step)?, &ad, step)
            .map_err(|e| stop(format!("{e:#}")))?;
        let secs = t0.elapsed().as_secs_f64();
        let ips = s.images as f64 / secs;
        let line = StepLog {
            batch_acc: s.accuracy,
            batch_size: s.images,
            ce: s.ce,
            fool: s.fool,
            images_per_s: ips,
            lambda,
            lr,
            step,
            total: s.total,
        };
        writeln!(log, "{}", serde_json::to_string(&line)?)?;
        if let Some(v) = &validator
            && step % cfg.val_every == 0
        {
            validation(v, cfg, out, m, &session, step, &mut best, &bar)?;
        }
        bar.set_position(step);
        bar.set_message(format!(
            "CE {:.3}  L_F {:.4}  acc {:.0}%  {ips:.1} img/s",
            s.ce,
            s.fool,
            100.0 * s.accuracy
        ));
        let out_of_time = a
            .time_limit
            .is_some_and(|t| started.elapsed().as_secs_f64() >= t);
        if save(cfg, out, &session, step, out_of_time)? {
            last_good = step;
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
    finish(cfg, out, &session, last_good, best.as_ref())
}

/// Writes the final weights (of the last saved step) and says where they and the best model are.
fn finish(
    cfg: &FoolConfig,
    out: &Path,
    session: &FoolingSession,
    last_good: u64,
    best: Option<&validate::Validation>,
) -> Result<PathBuf> {
    let final_path = out.join("final.safetensors");
    write_weights(&final_path, &session.params, cfg, last_good)?;
    println!("fooled weights: {}", final_path.display());
    if let Some(b) = best {
        println!(
            "best within {:.1} points: {} (step {}, validation top-1 {:.2} %, score {:.3})",
            100.0 * cfg.max_drop,
            out.join("best.safetensors").display(),
            b.step,
            100.0 * b.top1,
            b.score
        );
    }
    Ok(out.to_path_buf())
}

/// The run's `log.jsonl`, opened for appending.
fn open_log(out: &Path) -> Result<std::fs::File> {
    let path = out.join("log.jsonl");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// The in-run validator (`val_every` > 0) on the held-out images.
fn validator(
    cfg: &FoolConfig,
    m: &Models,
    data: &TrainingData,
    device: &Device,
) -> Result<Option<validate::Validator>> {
    if cfg.val_every == 0 {
        return Ok(None);
    }
    Ok(Some(validate::Validator::new(
        &m.net,
        m.reference(),
        &data.val_set,
        cfg.fooling,
        cfg.interpreter,
        cfg.threshold,
        (cfg.c1, cfg.c2),
        device,
    )?))
}

/// Saves the checkpoint when one is due (every `checkpoint_every` steps, at the end, at the time
/// limit; returns whether it did) and the kept weights of every `keep_every`-th step.
fn save(
    cfg: &FoolConfig,
    out: &Path,
    session: &FoolingSession,
    step: u64,
    out_of_time: bool,
) -> Result<bool> {
    let due = step.is_multiple_of(cfg.checkpoint_every) || step == cfg.steps || out_of_time;
    if due {
        save_checkpoint(out, cfg, step, &session.params, &session.adam)?;
    }
    if cfg.keep_every > 0 && step.is_multiple_of(cfg.keep_every) {
        let path = out.join(format!("step{step}.safetensors"));
        write_weights(&path, &session.params, cfg, step)?;
    }
    Ok(due)
}

/// Validates at `step`, logs it to `val.jsonl` and the terminal, and keeps the best model within
/// `max_drop` as `best.safetensors` (with `best.json`).
#[allow(clippy::too_many_arguments)]
fn validation(
    v: &validate::Validator,
    cfg: &FoolConfig,
    out: &Path,
    m: &Models,
    session: &FoolingSession,
    step: u64,
    best: &mut Option<validate::Validation>,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let r = v.validate(&m.net, &session.params, step)?;
    append_line(&out.join("val.jsonl"), &serde_json::to_string(&r)?)?;
    bar.println(format!(
        "validation at step {step}: top-1 {:.2} % (original {:.2} %), {} {:.3}",
        100.0 * r.top1,
        100.0 * r.top1_original,
        if cfg.fooling == FoolingType::Active {
            "cross-correlation"
        } else {
            "FSR"
        },
        r.score
    ));
    if validate::better(&r, best.as_ref(), cfg.max_drop) {
        write_weights(&out.join("best.safetensors"), &session.params, cfg, step)?;
        write_atomic(
            &out.join("best.json"),
            serde_json::to_string_pretty(&r)?.as_bytes(),
        )?;
        *best = Some(r);
    }
    Ok(())
}

/// The progress bar of a run (hidden with `--quiet`).
fn progress_bar(steps: u64, start: u64, quiet: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} step {pos}/{len}  {msg}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_position(start);
    bar
}

/// What one step logs.
struct StepFigures {
    ce: f64,
    fool: f64,
    total: f64,
    /// Batch top-1 accuracy (the agreement with the original for a label-free run).
    accuracy: f64,
    images: usize,
}

/// One step: the loss of the batch (stopping on a non-finite loss before anything moves), the
/// update, and the check that no weight became NaN or infinite.
fn one_step(
    cfg: &FoolConfig,
    m: &Models,
    session: &mut FoolingSession,
    (imgs, labels, comp): StepImages,
    ad: &Device,
    step: u64,
) -> Result<StepFigures> {
    let x: Tensor<4> = foolmap::image::batch(&imgs, ad)?;
    let batch = match comp {
        Some(comp) => Batch::Active {
            x,
            labels: &labels,
            composites: foolmap::image::batch(&comp, ad)?,
            classes: (cfg.c1, cfg.c2),
        },
        None if cfg.distill => Batch::Distilled { x },
        None => Batch::Labelled { x, labels: &labels },
    };
    let pending = session.loss(&m.net, m.reference(), batch)?;
    let scalar = |t: &Tensor<1>| -> f64 {
        read_back(t.clone().inner())
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN) as f64
    };
    let l = &pending.loss;
    let (ce, fl, total) = (scalar(&l.ce), scalar(&l.fool), scalar(&l.total));
    if !total.is_finite() {
        bail!(
            "the loss became {total} at step {step} (CE {ce}, fooling loss {fl}); stopping; check \
             the weights for NaN/Inf or lower `lr` or `lambda` (then --resume)"
        );
    }
    // The labels the maps used: for a label-free run the original's top-1, so the batch
    // accuracy is the agreement.
    let predicted = top1(l.logits.clone().inner()).unwrap_or_default();
    let correct = predicted
        .iter()
        .zip(&pending.labels)
        .filter(|(p, y)| p == y)
        .count();
    let images = pending.labels.len();
    session.apply(pending);
    // A finite loss can still step a weight to NaN/Inf: checked before anything is written.
    if let Some(name) = session.params.non_finite()? {
        bail!(
            "step {step} made parameter `{name}` NaN or infinite (loss {total}, CE {ce}, fooling loss \
             {fl}); stopping, nothing of this step written; lower `lr` or `lambda`"
        );
    }
    Ok(StepFigures {
        ce,
        fool: fl,
        total,
        accuracy: correct as f64 / images as f64,
        images,
    })
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
