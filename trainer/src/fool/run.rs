//! The training loop of a fooling run: models and data prepared, then per step the objective
//! (docs/method.md §5), Adam, the NaN/Inf stops, the log, validation, checkpoints and the time
//! limit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::fooling::FoolingType;
use foolmap::params::{ParamKind, ParamSpec, SplitMix};
use foolmap::train::{Adam, Objective};
use foolmap::{Dataset, InterpreterOptions, ParamStore};
use serde_json::json;

use super::FoolArgs;
use super::checkpoint::{
    RunConfigFile, claim_out_dir, git_revision, load_checkpoint, save_checkpoint, truncate_log,
    write_weights,
};
use super::config::{FoolConfig, trains, under};
use super::resolve::resolve;
use super::validate;
use crate::batches::{composite_batch, train_batch};
use crate::io::atomic::{append_line, write_atomic};
use crate::io::data::{self, Sample};
use crate::io::prefetch::Prefetch;

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
    let (arch, kind, interp) = (cfg.arch, cfg.fooling, cfg.interpreter);
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
    let sd0 = crate::io::weights::read_for_specs(arch, &net.specs, &weights)?;
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
            let sd = crate::io::weights::read_for_specs(arch, &net.specs, w)?;
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
