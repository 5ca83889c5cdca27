//! Stages 1, 3 and 5: training, the one report-half scoring of the chosen f16 file, and the
//! analyses of the first-seed models.

use super::*;

/// The scored f16 file of a job: in its run folder, else its released copy (first seeds); the
/// SHA-256 must be the one its `eval.json` scored.
pub(super) fn scored_file(t: &TableConfig, job: &Job, r: &ModelResult) -> Result<PathBuf> {
    let run = job.run_dir(t).join("model.f16.safetensors");
    let mut places = vec![run];
    if let Some(rel) = &t.release
        && job.first_seed
        && !job.cell.baseline
    {
        places.push(rel.join(format!("{}.safetensors", release_id(t, &job.cell))));
    }
    places
        .iter()
        .find(|p| std::fs::read(p).is_ok_and(|b| crate::io::hash::sha256_bytes(&b) == r.sha256))
        .cloned()
        .with_context(|| {
            format!(
                "no file holds the model {} scored (SHA-256 {}); looked at {}",
                job.result_dir(t).join("eval.json").display(),
                r.sha256,
                places
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Stage 5: `analysis.json` of a scored model (AOPC, weight noise on the first report-half
/// images). Chooses nothing; recorded in the ledger as an analysis. Skipped when done.
pub(super) fn analyse(
    t: &TableConfig,
    cfg: &AnalysisConfig,
    job: &Job,
    root: Option<&Path>,
    device: &Device,
) -> Result<()> {
    let res = job.result_dir(t);
    let path = res.join("analysis.json");
    let r: ModelResult = read_json(&res.join("eval.json"))?;
    if path.is_file() {
        let done: ModelAnalysis = read_json(&path)?;
        if done.sha256 != r.sha256 {
            bail!(
                "{} analyses another model (SHA-256 {}) than {} scored ({}); move it away",
                path.display(),
                done.sha256,
                res.join("eval.json").display(),
                r.sha256
            );
        }
        return Ok(());
    }
    let model = scored_file(t, job, &r)?;
    let original = crate::io::data::data_root(root)?.join("weights").join(
        t.arch
            .weights_file()
            .with_context(|| format!("`{}` has no pretrained weights file", t.arch.id()))?,
    );
    println!(
        "{} seed {}: analyses (AOPC over {} patches, weight noise) on {} report-half images",
        job.cell.id(),
        job.seed,
        cfg.aopc_steps,
        cfg.images
    );
    // The original's AOPC curves of an earlier analysis with the same interpreter are reused.
    let known = t
        .jobs()
        .iter()
        .filter(|j| j.first_seed && j.cell.interpreter == job.cell.interpreter)
        .filter_map(|j| read_json::<ModelAnalysis>(&j.result_dir(t).join("analysis.json")).ok())
        .find(|a| a.aopc.images == cfg.images && a.aopc.steps == cfg.aopc_steps)
        .map(|a| a.aopc.original);
    let subject = crate::eval::analysis::Subject {
        arch: t.arch,
        original: &original,
        model: &model,
        kind: job.cell.fooling,
        interp: job.cell.interpreter,
        tau: t.threshold,
    };
    let a = crate::eval::analysis::analyse_model(
        cfg,
        &subject,
        t.eval_batch_size,
        known.as_ref(),
        root,
        device,
    )?;
    write_json(&path, &a)
}

/// The completed step of a run folder's final weights (`None`: none yet).
pub(super) fn final_step(dir: &Path) -> Option<u64> {
    crate::fool::checkpoint::read_meta(&dir.join("final.safetensors"))
        .ok()
        .map(|m| m.step)
}

/// The fields in which two run configs differ, each as "`field` have → want".
pub(super) fn config_diff(have: &FoolConfig, want: &FoolConfig) -> Result<Vec<String>> {
    let (h, w) = (serde_json::to_value(have)?, serde_json::to_value(want)?);
    Ok(w.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| h.get(k.as_str()) != Some(v))
                .map(|(k, v)| {
                    let was = h.get(k.as_str()).unwrap_or(&serde_json::Value::Null);
                    format!("`{k}` {was} → {v}")
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Checks that a job's results folder, when it holds anything, holds the results of the recipe
/// the table now asks for: its `config.json` equals the resolved run config and its
/// `selection.json` was scored on `selection_images` images. Results of another recipe are
/// never reused under the new recipe's name, and never overwritten: the error says to move them.
pub(super) fn check_results(t: &TableConfig, job: &Job) -> Result<()> {
    let res = job.result_dir(t);
    let cfg = res.join("config.json");
    let held: Vec<&str> = ["selection.json", "eval.json"]
        .into_iter()
        .filter(|f| res.join(f).is_file())
        .collect();
    let move_away = "move the folder away (or restore the table config) and run again; nothing \
                     was changed";
    if !cfg.is_file() {
        if held.is_empty() {
            return Ok(());
        }
        bail!(
            "{} holds {} but no config.json, so its recipe is unknown: {move_away}",
            res.display(),
            held.join(" and ")
        );
    }
    let have: FoolConfig = read_json(&cfg)?;
    let want = fool::resolve(&job.fool_args(t))?;
    if have != want {
        bail!(
            "{} holds the results of another recipe than {} now asks for ({}): {move_away}",
            res.display(),
            job.cell.id(),
            config_diff(&have, &want)?.join(", ")
        );
    }
    let sel = res.join("selection.json");
    if sel.is_file()
        && let Some(n) = read_json::<Selection>(&sel)?.images
        && n != t.selection_images
    {
        bail!(
            "{} chose on {n} selection images, the table now asks for {} (`selection_images`): \
             {move_away}",
            sel.display(),
            t.selection_images
        );
    }
    Ok(())
}

/// Stage 1. Returns whether the run is complete.
pub(super) fn train(
    t: &TableConfig,
    job: &Job,
    root: Option<&Path>,
    device: &Device,
    left: Option<f64>,
    quiet: bool,
    tag: &str,
) -> Result<bool> {
    let args = job.fool_args(t);
    let mut want = fool::resolve(&args)?;
    let dir = job.run_dir(t);
    let saved = dir.join("checkpoint.safetensors");
    if saved.is_file() {
        let have: FoolConfig = crate::fool::checkpoint::read_meta(&saved)
            .map(|m| m.config)
            .with_context(|| format!("{}: no run config in its metadata", saved.display()))?;
        // `fool` stores the starting weights it resolved from the data root.
        if want.weights.is_none() {
            want.weights = have.weights.clone();
        }
        if have != want {
            bail!(
                "{} holds a run of another recipe than {} now asks for ({}): move the folder away \
                 (or restore the config) and run again; nothing was changed",
                dir.display(),
                job.cell.id(),
                config_diff(&have, &want)?.join(", ")
            );
        }
        if final_step(&dir) == Some(want.steps) {
            return Ok(true);
        }
        println!("{tag}: resuming training in {}", dir.display());
        let a = FoolArgs {
            resume: true,
            settings: crate::fool::FoolSettings {
                out: Some(dir.clone()),
                ..Default::default()
            },
            time_limit: left,
            quiet,
            ..FoolArgs::default()
        };
        fool::run(&a, root, device)?;
    } else {
        println!("{tag}: training in {}", dir.display());
        let a = FoolArgs {
            time_limit: left,
            quiet,
            ..args
        };
        fool::run(&a, root, device)?;
    }
    Ok(final_step(&dir) == Some(want.steps))
}

/// The f16 form of a run's chosen checkpoint, keeping the metadata `eval` reads (`arch`,
/// `config`, `step`: read with the tensors).
pub(super) fn chosen_f16(run: &Path, step: u64) -> Result<Vec<u8>> {
    let src = run.join(format!("step{step}.safetensors"));
    Ok(crate::io::weights::read_state_dict_within(&src, None)?.to_safetensors(StoreDtype::F16)?)
}

/// Stage 3: the chosen checkpoint as f16, scored once on the report half.
pub(super) fn report(
    t: &TableConfig,
    job: &Job,
    sel: &Selection,
    root: Option<&Path>,
    device: &Device,
    tag: &str,
) -> Result<()> {
    let run = job.run_dir(t);
    let res = job.result_dir(t);
    let model = run.join("model.f16.safetensors");
    let bytes = chosen_f16(&run, sel.chosen)?;
    let sha = crate::io::hash::sha256_bytes(&bytes);
    let eval_path = res.join("eval.json");
    if already_scored(&eval_path, (sel.chosen, &sha), &run, &model)? {
        if !model.is_file() {
            write_atomic(&model, &bytes)?;
        }
        return Ok(());
    }
    write_atomic(&model, &bytes)?;
    println!("{tag}: report half, step {}", sel.chosen);
    let mut e = eval_args(t, model.clone(), Subset::Report);
    e.limit = t.report_images;
    e.interpreters = t.report_interpreters.clone();
    e.per_image = true;
    let v = eval::run(&e, root, device)?;
    let summary = EvalSummary::from(&v);
    let raw = v
        .per_image
        .context("eval --per-image gave no per-image block")?;
    write_json(
        &res.join("per_image.json"),
        &per_image(raw, job.cell.interpreter),
    )?;
    if let Ok(log) = std::fs::read_to_string(run.join("log.jsonl")) {
        write_atomic(&res.join("log.jsonl"), thin_log(&log).as_bytes())?;
    }
    write_json(
        &eval_path,
        &ModelResult {
            cell: job.cell.id(),
            seed: job.seed,
            step: sel.chosen,
            sha256: sha.clone(),
            report: summary,
            evaluations: Some(counts(&run, &sha)?),
        },
    )
}

/// Whether the report half already scored the chosen model (step, SHA-256): `eval.json` says so.
/// An `eval.json` of another model, or a report-half scoring of this one recorded in the run's
/// ledger without its `eval.json`, is an error: a model meets the report half once.
fn already_scored(
    eval_path: &Path,
    (step, sha): (u64, &str),
    run: &Path,
    model: &Path,
) -> Result<bool> {
    if eval_path.is_file() {
        let r: ModelResult = read_json(eval_path)?;
        if r.sha256 == sha && r.step == step {
            return Ok(true);
        }
        bail!(
            "{} scores another model (step {}, SHA-256 {}) than the one now chosen (step {}, {}): \
             a model is scored on the report half once; move the old results away to start over",
            eval_path.display(),
            r.step,
            r.sha256,
            step,
            sha
        );
    }
    let already = eval::evaluations(run)?
        .iter()
        .filter(|r| r.sha256 == sha && r.split == Subset::Report)
        .count();
    if already > 0 {
        bail!(
            "{}: this model was already scored on the report half ({already}×, {}/evaluations.jsonl) \
             but its eval.json is missing; not scoring it again",
            model.display(),
            run.display()
        );
    }
    Ok(false)
}

/// The per-image block of a table model: both models' hits and the statistic of the interpreter
/// it was fooled with.
fn per_image(raw: crate::eval::PerImage, interp: Interpreter) -> PerImage {
    PerImage {
        top1_original: raw.top1_original,
        top5_original: raw.top5_original,
        top1_fooled: raw.top1_fooled,
        top5_fooled: raw.top5_fooled,
        statistic: raw.statistic.get(&interp).cloned().unwrap_or_default(),
    }
}

/// The evaluation counts of a run folder's ledger for the model with SHA-256 `sha`.
pub(super) fn counts(run: &Path, sha: &str) -> Result<EvaluationCounts> {
    let ledger = eval::evaluations(run)?;
    Ok(EvaluationCounts {
        selection: ledger
            .iter()
            .filter(|e| e.split == Subset::Selection)
            .count(),
        report: ledger
            .iter()
            .filter(|e| e.split == Subset::Report && e.sha256 == sha)
            .filter(|e| e.purpose == Purpose::Score)
            .count(),
        report_analyses: ledger
            .iter()
            .filter(|e| e.split == Subset::Report && e.sha256 == sha)
            .filter(|e| e.purpose == Purpose::Analysis)
            .count(),
    })
}
