//! `foolmap table --config tables/<name>.toml`: one command from the original weights to a
//! results folder, `RESULTS.md` and released models (`docs/method.md` §7).
//!
//! Per cell (fooling type × interpreter) and seed, four resumable stages, each skipped when its
//! output is already on disk and belongs to the same recipe:
//! 1. **train**: a `foolmap fool` run in `<runs>/<cell>/seed<N>`, keeping every `keep_every`-th
//!    step; `--time-limit` stops it at a checkpoint and the next invocation resumes it;
//! 2. **select**: every kept checkpoint scored on the first `selection_images` of the selection
//!    half with the cell's interpreter; the rule picks one (highest FSR with top-1 drop ≤
//!    `max_drop`; if none qualifies, the smallest drop);
//! 3. **report**: the chosen checkpoint stored as f16 (the released form) and that file scored
//!    once on the report half with every report interpreter (the transfer matrix);
//! 4. **write**: `<results>/<cell>/seed<N>/{config.json, log.jsonl, selection.json, eval.json,
//!    per_image.json}`, then `<results>/RESULTS.md` + `summary.json` and, for the first seed of
//!    each released cell, `<release>/<id>.safetensors` with its card and `index.json`.
//!
//! The report half is never read before stage 3, and stage 3 never runs twice for one file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::fooling::FoolingType;
use foolmap::state::StoreDtype;
use foolmap::stats::{bootstrap95, mean_t95};
use foolmap::{Architecture, Interpreter};
use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisConfig, AopcPoint, ModelAnalysis, NoiseRow};
use crate::card::{self, Card, EvaluationCounts, HalfFigures, Index, IndexEntry};
use crate::eval::{self, Accuracy, EvalArgs, EvalReport, Purpose};
use crate::fool::{self, FoolArgs, FoolConfig, Phase, write_atomic};
use crate::split::SplitArg;

/// Flags of `foolmap table`.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// The table's TOML config (e.g. `tables/resnet20.toml`). Paths in it are relative to the
    /// current directory.
    #[arg(long)]
    pub config: PathBuf,
    /// Stop starting new work after this many seconds (a training run stops at a checkpoint);
    /// the same command again continues where it stopped.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Hide the progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Training settings of a cell; the table's `[recipe]` gives the defaults, a cell's `recipe`
/// table overrides field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// λ of the first phase.
    pub lambda: Option<f64>,
    /// Adam learning rate of the first phase.
    pub lr: Option<f64>,
    /// Images per batch.
    pub batch_size: Option<usize>,
    /// Training steps.
    pub steps: Option<u64>,
    /// Keep (and select among) every N-th step; `steps` must be a multiple of it.
    pub keep_every: Option<u64>,
    /// Later phases, `"STEP:LAMBDA:LR[:BATCH]"`.
    pub schedule: Option<Vec<Phase>>,
    /// Training data folder (default: the data root's training split).
    pub data: Option<PathBuf>,
}

impl Recipe {
    /// `self` with the unset fields taken from `base`.
    fn over(&self, base: &Recipe) -> Recipe {
        Recipe {
            lambda: self.lambda.or(base.lambda),
            lr: self.lr.or(base.lr),
            batch_size: self.batch_size.or(base.batch_size),
            steps: self.steps.or(base.steps),
            keep_every: self.keep_every.or(base.keep_every),
            schedule: self.schedule.clone().or_else(|| base.schedule.clone()),
            data: self.data.clone().or_else(|| base.data.clone()),
        }
    }
}

/// One cell of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Fooling type id (`location`, `topk`, `center-mass`).
    pub fooling: FoolingType,
    /// Interpreter fooled (`lrp_t`, `grad_cam`, `simple_grad_t`).
    pub interpreter: Interpreter,
    /// Cell id (default `<fooling>-<interpreter>`); names its folders and released model.
    #[serde(default)]
    pub id: Option<String>,
    /// Seeds (default: the table's `seeds`).
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// A baseline row (e.g. the paper's own recipe): reported in its own table, not released.
    #[serde(default)]
    pub baseline: bool,
    /// Overrides of the table's recipe.
    #[serde(default)]
    pub recipe: Recipe,
}

impl Cell {
    /// The cell's id.
    pub fn id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.fooling.id(), self.interpreter.id()))
    }
}

/// `tables/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Table name (titles RESULTS.md).
    pub name: String,
    /// Architecture id.
    pub arch: Architecture,
    /// Folder of the training runs (checkpoints; not committed).
    pub runs: PathBuf,
    /// Results folder (committed): per-model files, RESULTS.md, summary.json.
    pub results: PathBuf,
    /// Release folder for the first seed of every non-baseline cell (none: no release).
    #[serde(default)]
    pub release: Option<PathBuf>,
    /// Seeds of every cell that does not list its own.
    pub seeds: Vec<u64>,
    /// FSR threshold τ.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Largest top-1 drop (fraction) for the selection rule and the target.
    #[serde(default = "default_max_drop")]
    pub max_drop: f64,
    /// FSR the target asks for (fraction).
    #[serde(default = "default_target_fsr")]
    pub target_fsr: f64,
    /// Selection-half images per candidate checkpoint.
    pub selection_images: usize,
    /// Report-half images (default: the whole half).
    #[serde(default)]
    pub report_images: Option<usize>,
    /// Interpreters of the report evaluation (the transfer matrix).
    pub report_interpreters: Vec<Interpreter>,
    /// SmoothGrad / Integrated Gradients are scored on the first N report images only.
    #[serde(default = "default_heavy")]
    pub heavy_images: usize,
    /// Bootstrap resamples over images.
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Images per evaluation batch.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Analyses of every first-seed model after all runs (AOPC, weight noise; none: skipped).
    #[serde(default)]
    pub analysis: Option<AnalysisConfig>,
    /// Default recipe.
    pub recipe: Recipe,
    /// The cells, in the order they are run.
    pub cells: Vec<Cell>,
}

fn default_threshold() -> f64 {
    0.15
}
fn default_max_drop() -> f64 {
    0.02
}
fn default_target_fsr() -> f64 {
    0.8
}
fn default_heavy() -> usize {
    200
}
fn default_bootstrap() -> usize {
    1000
}
fn default_eval_batch() -> usize {
    100
}

impl TableConfig {
    /// Reads and checks a table config, naming the file and the field on error.
    pub fn read(path: &Path) -> Result<TableConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read table config {}", path.display()))?;
        let cfg: TableConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("table config {}: {e}", path.display()))?;
        cfg.check()
            .with_context(|| format!("table config {}", path.display()))?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() {
            bail!("field `seeds` must list at least one seed");
        }
        if self.selection_images == 0 || self.report_images == Some(0) {
            bail!("fields `selection_images` and `report_images` must be ≥ 1");
        }
        if self.report_interpreters.is_empty() {
            bail!("field `report_interpreters` must list at least one interpreter");
        }
        if let Some(a) = &self.analysis {
            a.check()?;
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.cells {
            let id = c.id();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                bail!("cell `{id}`: an id may hold only letters, digits, `-` and `_`");
            }
            if !ids.insert(id.clone()) {
                bail!("cell `{id}` is listed twice");
            }
            if c.fooling == FoolingType::Active {
                bail!("cell `{id}`: active fooling is not supported by `table` yet");
            }
            if c.interpreter.level() != foolmap::explain::interpreter::Level::Tap {
                bail!(
                    "cell `{id}`: `{}` is not a tap interpreter (lrp_t, grad_cam, simple_grad_t)",
                    c.interpreter.id()
                );
            }
            if !self.report_interpreters.contains(&c.interpreter) {
                bail!(
                    "cell `{id}`: `report_interpreters` must include `{}`",
                    c.interpreter.id()
                );
            }
            if c.seeds.as_ref().is_some_and(|s| s.is_empty()) {
                bail!("cell `{id}`: `seeds` must list at least one seed");
            }
            let r = c.recipe.over(&self.recipe);
            let (Some(steps), Some(keep)) = (r.steps, r.keep_every) else {
                bail!("cell `{id}`: the recipe needs `steps` and `keep_every`");
            };
            if keep == 0 || steps == 0 || steps % keep != 0 {
                bail!(
                    "cell `{id}`: `steps` ({steps}) must be a positive multiple of `keep_every` ({keep})"
                );
            }
        }
        Ok(())
    }

    /// Every (cell, seed) in run order: first every cell's first seed (in config order), then
    /// every cell's second seed, and so on, so that a time-limited table covers all cells first.
    pub fn jobs(&self) -> Vec<Job> {
        let seeds = |c: &Cell| c.seeds.clone().unwrap_or_else(|| self.seeds.clone());
        let rounds = self.cells.iter().map(|c| seeds(c).len()).max().unwrap_or(0);
        (0..rounds)
            .flat_map(|r| {
                self.cells.iter().filter_map(move |c| {
                    seeds(c).get(r).map(|&seed| Job {
                        cell: c.clone(),
                        seed,
                        first_seed: r == 0,
                    })
                })
            })
            .collect()
    }
}

/// One training run of the table.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its cell.
    pub cell: Cell,
    /// Its seed.
    pub seed: u64,
    /// Whether it is the cell's first seed (the released one).
    pub first_seed: bool,
}

impl Job {
    fn run_dir(&self, t: &TableConfig) -> PathBuf {
        t.runs
            .join(self.cell.id())
            .join(format!("seed{}", self.seed))
    }
    fn result_dir(&self, t: &TableConfig) -> PathBuf {
        t.results
            .join(self.cell.id())
            .join(format!("seed{}", self.seed))
    }
    fn fool_args(&self, t: &TableConfig) -> FoolArgs {
        let r = self.cell.recipe.over(&t.recipe);
        let keep = r.keep_every.unwrap_or(1);
        FoolArgs {
            arch: Some(t.arch.id().to_string()),
            fooling: Some(self.cell.fooling.id().to_string()),
            interpreter: Some(self.cell.interpreter.id().to_string()),
            lambda: r.lambda,
            lr: r.lr,
            batch_size: r.batch_size,
            steps: r.steps,
            seed: Some(self.seed),
            checkpoint_every: Some(keep),
            keep_every: Some(keep),
            data: r.data,
            then: r
                .schedule
                .unwrap_or_default()
                .into_iter()
                .map(String::from)
                .collect(),
            max_drop: Some(t.max_drop),
            threshold: Some(t.threshold),
            out: Some(self.run_dir(t)),
            ..FoolArgs::default()
        }
    }
}

/// One candidate checkpoint scored on the selection half.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// Training step.
    pub step: u64,
    /// Figures on the selection images.
    pub figures: HalfFigures,
}

/// `selection.json`: every candidate and the one the rule chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The rule in words.
    pub rule: String,
    /// Candidates in step order.
    pub candidates: Vec<Candidate>,
    /// Step of the chosen checkpoint.
    pub chosen: u64,
    /// Whether the chosen one met the drop limit on the selection images.
    pub within_drop: bool,
}

/// The selection rule (`docs/method.md` §7).
pub const RULE: &str = "among the kept checkpoints, the highest FSR of the fooled interpreter \
whose top-1 drop is at most max_drop on the selection images (ties: the earlier step); if none \
is within max_drop, the smallest drop (ties: the higher FSR, then the earlier step)";

/// Applies [`RULE`]: the index of the chosen candidate and whether it is within the drop limit.
pub fn choose(c: &[Candidate], max_drop: f64) -> Option<(usize, bool)> {
    let drop = |x: &Candidate| x.figures.top1_original - x.figures.top1;
    let within = |x: &Candidate| drop(x) <= max_drop + 1e-12;
    let best = c.iter().enumerate().filter(|(_, x)| within(x)).fold(
        None::<(usize, &Candidate)>,
        |b, (i, x)| match b {
            Some((_, y)) if y.figures.fsr >= x.figures.fsr => b,
            _ => Some((i, x)),
        },
    );
    if let Some((i, _)) = best {
        return Some((i, true));
    }
    c.iter()
        .enumerate()
        .fold(None::<(usize, &Candidate)>, |b, (i, x)| match b {
            Some((_, y))
                if drop(y) < drop(x) || (drop(y) == drop(x) && y.figures.fsr >= x.figures.fsr) =>
            {
                b
            }
            _ => Some((i, x)),
        })
        .map(|(i, _)| (i, false))
}

/// Per-image outcomes of a report evaluation (`per_image.json`), for bootstrap intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerImage {
    /// Top-1 hits of the original, one `0`/`1` per image.
    pub top1_original: String,
    /// Top-5 hits of the original.
    pub top5_original: String,
    /// Top-1 hits of the fooled model.
    pub top1_fooled: String,
    /// Top-5 hits of the fooled model.
    pub top5_fooled: String,
    /// Statistic of the fooled model per image for the cell's interpreter.
    pub statistic: Vec<f32>,
}

/// Scores of one interpreter in an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InterpreterScore {
    /// Images scored.
    pub n: usize,
    /// FSR of the fooled model.
    pub fsr: f64,
    /// FSR of the original model (its statistic under the same rule).
    pub fsr_original: f64,
    /// Mean statistic of the fooled model.
    pub mean_statistic: f64,
    /// Mean statistic of the original.
    pub mean_statistic_original: f64,
}

/// The typed part of `foolmap eval --json` the table reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Architecture id.
    pub arch: String,
    /// Fooling type scored.
    pub fooling: String,
    /// Half scored.
    pub split: SplitArg,
    /// Images.
    pub n: usize,
    /// τ.
    pub threshold: f64,
    /// Original model.
    pub original: Accuracy,
    /// Fooled model.
    pub fooled: Accuracy,
    /// Per interpreter id.
    pub interpreters: BTreeMap<String, InterpreterScore>,
}

impl From<&EvalReport> for EvalSummary {
    fn from(r: &EvalReport) -> Self {
        EvalSummary {
            arch: r.arch.id().into(),
            fooling: r.fooling.id().into(),
            split: r.split,
            n: r.n,
            threshold: r.threshold,
            original: r.original.clone(),
            fooled: r.fooled.clone(),
            interpreters: r
                .interpreters
                .iter()
                .map(|(k, v)| {
                    (
                        k.id().to_string(),
                        InterpreterScore {
                            n: v.n,
                            fsr: v.fsr,
                            fsr_original: v.fsr_original,
                            mean_statistic: v.mean_statistic,
                            mean_statistic_original: v.mean_statistic_original,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// `eval.json` of a table model: the summary, the file's SHA-256 and its report-eval count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelResult {
    /// Cell id.
    pub cell: String,
    /// Seed.
    pub seed: u64,
    /// Step chosen on the selection half.
    pub step: u64,
    /// SHA-256 of the scored f16 file.
    pub sha256: String,
    /// The report evaluation.
    pub report: EvalSummary,
    /// Evaluations of the run's checkpoints (selection half) and of this file (report half),
    /// from the run's ledger when the results were last written beside it.
    #[serde(default)]
    pub evaluations: Option<EvaluationCounts>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: unexpected contents", path.display()))
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Runs `foolmap table`.
pub fn run(a: &TableArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let t = TableConfig::read(&a.config)?;
    let started = Instant::now();
    let left = || a.time_limit.map(|l| l - started.elapsed().as_secs_f64());
    let jobs = t.jobs();
    let mut done = 0;
    for (i, job) in jobs.iter().enumerate() {
        if left().is_some_and(|s| s <= 0.0) {
            break;
        }
        let tag = format!(
            "[{}/{}] {} seed {}",
            i + 1,
            jobs.len(),
            job.cell.id(),
            job.seed
        );
        // A scored model is final: its results stand even without its run folder.
        if job.result_dir(&t).join("eval.json").is_file() {
            done += 1;
            continue;
        }
        if !train(&t, job, root, device, left(), a.quiet, &tag)? {
            break;
        }
        if left().is_some_and(|s| s <= 0.0) {
            break;
        }
        let sel = select(&t, job, root, device, &tag)?;
        if left().is_some_and(|s| s <= 0.0) {
            break;
        }
        report(&t, job, &sel, root, device, &tag)?;
        done += 1;
    }
    // Stage 5, once every run is scored: analyses of the first-seed models.
    if let Some(cfg) = &t.analysis {
        let all_scored = jobs
            .iter()
            .all(|j| j.result_dir(&t).join("eval.json").is_file());
        for job in jobs.iter().filter(|j| j.first_seed) {
            if !all_scored || left().is_some_and(|s| s <= 0.0) {
                break;
            }
            analyse(&t, cfg, job, root, device)?;
        }
    }
    write_results(&t, &a.config, &jobs)?;
    // Complete = scored on the report half, whichever invocation did it.
    let done = summarise(&t, &jobs)?.complete.0.max(done);
    if done < jobs.len() {
        println!(
            "time limit: {done} of {} runs complete; run the same command again to continue",
            jobs.len()
        );
    } else {
        println!(
            "all {} runs complete: {}",
            jobs.len(),
            t.results.join("RESULTS.md").display()
        );
    }
    Ok(())
}

/// The scored f16 file of a job: in its run folder, else its released copy (first seeds); the
/// SHA-256 must be the one its `eval.json` scored.
fn scored_file(t: &TableConfig, job: &Job, r: &ModelResult) -> Result<PathBuf> {
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
        .find(|p| std::fs::read(p).is_ok_and(|b| crate::fetch::sha256_bytes(&b) == r.sha256))
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
fn analyse(
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
    let original = crate::data::data_root(root)?.join("weights").join(
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
    let a = crate::analysis::analyse_model(
        cfg,
        t.arch,
        &original,
        &model,
        job.cell.fooling,
        job.cell.interpreter,
        t.threshold,
        t.eval_batch_size,
        root,
        device,
    )?;
    write_json(&path, &a)
}

/// The completed step of a run folder's final weights (`None`: none yet).
fn final_step(dir: &Path) -> Option<u64> {
    crate::weights::read_metadata(&dir.join("final.safetensors"))
        .ok()?
        .get("step")?
        .parse()
        .ok()
}

/// Stage 1. Returns whether the run is complete.
fn train(
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
        let have: FoolConfig = crate::weights::read_metadata(&saved)
            .ok()
            .and_then(|m| serde_json::from_str(m.get("config")?).ok())
            .with_context(|| format!("{}: no run config in its metadata", saved.display()))?;
        // `fool` stores the starting weights it resolved from the data root.
        if want.weights.is_none() {
            want.weights = have.weights.clone();
        }
        if have != want {
            let (h, w) = (serde_json::to_value(&have)?, serde_json::to_value(&want)?);
            let fields: Vec<String> = w
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, v)| h.get(k.as_str()) != Some(v))
                        .map(|(k, v)| format!("`{k}` {} → {v}", h[k.as_str()]))
                        .collect()
                })
                .unwrap_or_default();
            bail!(
                "{} holds a run of another recipe than {} now asks for ({}): move the folder away \
                 (or restore the config) and run again; nothing was changed",
                dir.display(),
                job.cell.id(),
                fields.join(", ")
            );
        }
        if final_step(&dir) == Some(want.steps) {
            return Ok(true);
        }
        println!("{tag}: resuming training in {}", dir.display());
        let a = FoolArgs {
            resume: true,
            out: Some(dir.clone()),
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

fn eval_args(t: &TableConfig, fooled: PathBuf, split: SplitArg) -> EvalArgs {
    EvalArgs {
        arch: Some(t.arch),
        original: None,
        fooled,
        data: None,
        limit: None,
        split,
        fooling: None,
        threshold: t.threshold,
        interpreters: Vec::new(),
        heavy_images: t.heavy_images,
        aopc_images: 0,
        batch_size: t.eval_batch_size,
        report: None,
        grid_images: None,
        json: true,
        per_image: false,
    }
}

fn figures(s: &EvalSummary, interp: Interpreter) -> Result<HalfFigures> {
    let sc = s
        .interpreters
        .get(interp.id())
        .with_context(|| format!("evaluation without `{}`", interp.id()))?;
    Ok(HalfFigures {
        images: s.n,
        top1: s.fooled.top1,
        top5: s.fooled.top5,
        fsr: sc.fsr,
        top1_original: s.original.top1,
        top5_original: s.original.top5,
    })
}

/// Stage 2: scores the kept checkpoints not yet in `selection.json` and applies the rule.
fn select(
    t: &TableConfig,
    job: &Job,
    root: Option<&Path>,
    device: &Device,
    tag: &str,
) -> Result<Selection> {
    let want = fool::resolve(&job.fool_args(t))?;
    let run = job.run_dir(t);
    let path = job.result_dir(t).join("selection.json");
    let mut cands: Vec<Candidate> = if path.is_file() {
        read_json::<Selection>(&path)?.candidates
    } else {
        Vec::new()
    };
    let steps: Vec<u64> = (1..=want.steps / want.keep_every)
        .map(|k| k * want.keep_every)
        .collect();
    cands.retain(|c| steps.contains(&c.step));
    for &step in &steps {
        if cands.iter().any(|c| c.step == step) {
            continue;
        }
        println!("{tag}: selection half, step {step}");
        let mut e = eval_args(
            t,
            run.join(format!("step{step}.safetensors")),
            SplitArg::Selection,
        );
        e.limit = Some(t.selection_images);
        e.interpreters = vec![job.cell.interpreter];
        e.heavy_images = 0;
        let s = EvalSummary::from(&eval::run(&e, root, device)?);
        cands.push(Candidate {
            step,
            figures: figures(&s, job.cell.interpreter)?,
        });
        cands.sort_by_key(|c| c.step);
        let (i, within) = choose(&cands, t.max_drop).context("no candidate")?;
        write_json(
            &path,
            &Selection {
                rule: RULE.into(),
                candidates: cands.clone(),
                chosen: cands[i].step,
                within_drop: within,
            },
        )?;
    }
    let (i, within) = choose(&cands, t.max_drop).context("no kept checkpoint to select from")?;
    let sel = Selection {
        rule: RULE.into(),
        candidates: cands.clone(),
        chosen: cands[i].step,
        within_drop: within,
    };
    write_json(&path, &sel)?;
    Ok(sel)
}

/// The f16 form of a run's chosen checkpoint, keeping the metadata `eval` reads (`arch`,
/// `config`, `step`: read with the tensors).
fn chosen_f16(run: &Path, step: u64) -> Result<Vec<u8>> {
    let src = run.join(format!("step{step}.safetensors"));
    Ok(crate::weights::read_state_dict_within(&src, None)?.to_safetensors(StoreDtype::F16)?)
}

/// Stage 3: the chosen checkpoint as f16, scored once on the report half.
fn report(
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
    let sha = crate::fetch::sha256_bytes(&bytes);
    let eval_path = res.join("eval.json");
    if eval_path.is_file() {
        let r: ModelResult = read_json(&eval_path)?;
        if r.sha256 == sha && r.step == sel.chosen {
            if !model.is_file() {
                write_atomic(&model, &bytes)?;
            }
            return Ok(());
        }
        bail!(
            "{} scores another model (step {}, SHA-256 {}) than the one now chosen (step {}, {}): \
             a model is scored on the report half once; move the old results away to start over",
            eval_path.display(),
            r.step,
            r.sha256,
            sel.chosen,
            sha
        );
    }
    let already = eval::evaluations(&run)?
        .iter()
        .filter(|r| r.sha256 == sha && r.split == SplitArg::Report)
        .count();
    if already > 0 {
        bail!(
            "{}: this model was already scored on the report half ({already}×, {}/evaluations.jsonl) \
             but its eval.json is missing; not scoring it again",
            model.display(),
            run.display()
        );
    }
    write_atomic(&model, &bytes)?;
    println!("{tag}: report half, step {}", sel.chosen);
    let mut e = eval_args(t, model.clone(), SplitArg::Report);
    e.limit = t.report_images;
    e.interpreters = t.report_interpreters.clone();
    e.per_image = true;
    let v = eval::run(&e, root, device)?;
    let summary = EvalSummary::from(&v);
    let raw = v
        .per_image
        .context("eval --per-image gave no per-image block")?;
    let per = PerImage {
        top1_original: raw.top1_original,
        top5_original: raw.top5_original,
        top1_fooled: raw.top1_fooled,
        top5_fooled: raw.top5_fooled,
        statistic: raw
            .statistic
            .get(&job.cell.interpreter)
            .cloned()
            .unwrap_or_default(),
    };
    write_json(&res.join("per_image.json"), &per)?;
    write_json(&res.join("config.json"), &fool::resolve(&job.fool_args(t))?)?;
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

/// The evaluation counts of a run folder's ledger for the model with SHA-256 `sha`.
fn counts(run: &Path, sha: &str) -> Result<EvaluationCounts> {
    let ledger = eval::evaluations(run)?;
    Ok(EvaluationCounts {
        selection: ledger
            .iter()
            .filter(|e| e.split == SplitArg::Selection)
            .count(),
        report: ledger
            .iter()
            .filter(|e| e.split == SplitArg::Report && e.sha256 == sha)
            .filter(|e| e.purpose == Purpose::Score)
            .count(),
        report_analyses: ledger
            .iter()
            .filter(|e| e.split == SplitArg::Report && e.sha256 == sha)
            .filter(|e| e.purpose == Purpose::Analysis)
            .count(),
    })
}

/// Bootstrap intervals over the report images of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Top-1 drop (fraction), 2.5 % and 97.5 %.
    pub top1_drop: (f64, f64),
    /// FSR, 2.5 % and 97.5 %.
    pub fsr: (f64, f64),
}

fn bits(s: &str) -> Vec<f64> {
    s.bytes().map(|b| (b == b'1') as u8 as f64).collect()
}

/// Paired bootstrap over images of the top-1 drop and the FSR of one model.
pub fn bootstrap(
    p: &PerImage,
    kind: FoolingType,
    tau: f64,
    resamples: usize,
    seed: u64,
) -> Bootstrap {
    let (o, f) = (bits(&p.top1_original), bits(&p.top1_fooled));
    let n = o.len().min(f.len());
    let top1_drop = bootstrap95(n, resamples, seed, |idx| {
        idx.iter().map(|&i| o[i] - f[i]).sum::<f64>() / idx.len() as f64
    });
    let s = &p.statistic;
    let fsr = bootstrap95(s.len(), resamples, seed ^ 0x5eed, |idx| {
        idx.iter()
            .filter(|&&i| kind.is_fooled(s[i] as f64, tau))
            .count() as f64
            / idx.len() as f64
    });
    Bootstrap { top1_drop, fsr }
}

/// A mean over seeds with its 95 % Student-t half-width (`None`: no seed / one seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanCi {
    /// Mean.
    pub mean: Option<f64>,
    /// 95 % half-width.
    pub half_width: Option<f64>,
}

impl MeanCi {
    fn of(v: &[f64]) -> MeanCi {
        let (m, h) = mean_t95(v);
        let some = |x: f64| (!x.is_nan()).then_some(x);
        MeanCi {
            mean: some(m),
            half_width: some(h),
        }
    }
}

/// One row of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSummary {
    /// Cell id.
    pub cell: String,
    /// Fooling type.
    pub fooling: String,
    /// Interpreter fooled.
    pub interpreter: String,
    /// Baseline row.
    pub baseline: bool,
    /// Seeds with a report evaluation.
    pub seeds: Vec<u64>,
    /// Seeds the config asks for.
    pub seeds_planned: usize,
    /// Top-1 drop per seed (fractions).
    pub top1_drop: Vec<f64>,
    /// Top-5 drop per seed.
    pub top5_drop: Vec<f64>,
    /// FSR per seed.
    pub fsr: Vec<f64>,
    /// Mean and 95 % t half-width over seeds: top-1 drop.
    pub top1_drop_mean: MeanCi,
    /// Same for the top-5 drop.
    pub top5_drop_mean: MeanCi,
    /// Same for the FSR.
    pub fsr_mean: MeanCi,
    /// Bootstrap over images of the first seed.
    pub bootstrap_first_seed: Option<Bootstrap>,
    /// Whether the mean meets the target.
    pub meets_target: bool,
    /// Transfer: FSR of the first seed's model per report interpreter (fooled, original).
    pub transfer: BTreeMap<String, (f64, f64)>,
    /// Chosen step per seed.
    pub steps: Vec<u64>,
    /// Evaluation counts per seed (selection half of the run, report half of the model).
    pub evaluations: Vec<Option<EvaluationCounts>>,
    /// Analyses of the first seed's model (`analysis.json`), when done.
    pub analysis: Option<AnalysisSummary>,
}

/// The figures of a first-seed model's `analysis.json` that RESULTS.md shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSummary {
    /// Report-half images.
    pub images: usize,
    /// AOPC steps (patches replaced).
    pub aopc_steps: usize,
    /// AOPC at the last step: the original model under each order.
    pub aopc_original: AopcPoint,
    /// Same for the fooled model.
    pub aopc_fooled: AopcPoint,
    /// Weight-noise rows.
    pub noise: Vec<NoiseRow>,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Table name.
    pub name: String,
    /// Runs complete / planned.
    pub complete: (usize, usize),
    /// Original model on the report half: top-1, top-5 (from the first evaluation; the same
    /// for every model).
    pub original: Option<(f64, f64)>,
    /// Rows in config order.
    pub cells: Vec<CellSummary>,
}

/// Builds the summary from the results folder.
pub fn summarise(t: &TableConfig, jobs: &[Job]) -> Result<Summary> {
    let mut cells = Vec::new();
    let mut complete = 0;
    let mut original = None;
    for c in &t.cells {
        let mut row = CellSummary {
            cell: c.id(),
            fooling: c.fooling.id().into(),
            interpreter: c.interpreter.id().into(),
            baseline: c.baseline,
            seeds: Vec::new(),
            seeds_planned: 0,
            top1_drop: Vec::new(),
            top5_drop: Vec::new(),
            fsr: Vec::new(),
            top1_drop_mean: MeanCi::of(&[]),
            top5_drop_mean: MeanCi::of(&[]),
            fsr_mean: MeanCi::of(&[]),
            bootstrap_first_seed: None,
            meets_target: false,
            transfer: BTreeMap::new(),
            steps: Vec::new(),
            evaluations: Vec::new(),
            analysis: None,
        };
        for job in jobs.iter().filter(|j| j.cell.id() == c.id()) {
            row.seeds_planned += 1;
            let path = job.result_dir(t).join("eval.json");
            if !path.is_file() {
                continue;
            }
            complete += 1;
            let r: ModelResult = read_json(&path)?;
            let s = &r.report;
            original.get_or_insert((s.original.top1, s.original.top5));
            let f = figures(s, c.interpreter)?;
            row.seeds.push(job.seed);
            row.steps.push(r.step);
            row.evaluations.push(r.evaluations);
            row.top1_drop.push(f.top1_original - f.top1);
            row.top5_drop.push(f.top5_original - f.top5);
            row.fsr.push(f.fsr);
            if job.first_seed {
                let p: PerImage = read_json(&job.result_dir(t).join("per_image.json"))?;
                row.bootstrap_first_seed =
                    Some(bootstrap(&p, c.fooling, t.threshold, t.bootstrap, job.seed));
                let ap = job.result_dir(t).join("analysis.json");
                if ap.is_file() {
                    let a: ModelAnalysis = read_json(&ap)?;
                    if a.sha256 != r.sha256 {
                        bail!(
                            "{} analyses another model than eval.json scored",
                            ap.display()
                        );
                    }
                    row.analysis = Some(AnalysisSummary {
                        images: a.aopc.images,
                        aopc_steps: a.aopc.steps,
                        aopc_original: a.aopc.original.last(),
                        aopc_fooled: a.aopc.fooled.last(),
                        noise: a.noise.rows,
                    });
                }
                row.transfer = s
                    .interpreters
                    .iter()
                    .map(|(k, v)| (k.clone(), (v.fsr, v.fsr_original)))
                    .collect();
            }
        }
        row.top1_drop_mean = MeanCi::of(&row.top1_drop);
        row.top5_drop_mean = MeanCi::of(&row.top5_drop);
        row.fsr_mean = MeanCi::of(&row.fsr);
        row.meets_target = row.fsr_mean.mean.is_some_and(|f| f >= t.target_fsr)
            && row
                .top1_drop_mean
                .mean
                .is_some_and(|d| d <= t.max_drop + 1e-12);
        cells.push(row);
    }
    Ok(Summary {
        name: t.name.clone(),
        complete: (complete, jobs.len()),
        original,
        cells,
    })
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.1}", 100.0 * x)
    }
}

fn pm(m: MeanCi) -> String {
    match (m.mean, m.half_width) {
        (None, _) => "–".into(),
        (Some(x), None) => format!("{} (1 seed)", pct(x)),
        (Some(x), Some(h)) => format!("{} ± {:.1}", pct(x), 100.0 * h),
    }
}

fn span(b: (f64, f64)) -> String {
    format!("[{}, {}]", pct(b.0), pct(b.1))
}

/// Renders RESULTS.md from the summary (no clock, no paths outside the config: regenerating it
/// from the same results gives the same bytes).
pub fn markdown(t: &TableConfig, config_path: &Path, s: &Summary) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Results: {}\n", t.name);
    let _ = writeln!(
        m,
        "Generated by `foolmap table --config {}`; do not edit by hand. Every figure is on the \
         **report half** of the CIFAR-10 test set ({} images per model unless stated), scored \
         once per model, after the checkpoint was chosen on the selection half.\n",
        config_path.display(),
        t.report_images.map_or("5,000".into(), |n| n.to_string())
    );
    if s.complete.0 < s.complete.1 {
        let _ = writeln!(
            m,
            "**Incomplete:** {} of {} runs have a report evaluation; the rows show what exists.\n",
            s.complete.0, s.complete.1
        );
    }
    let _ = writeln!(m, "## Protocol\n");
    let _ = writeln!(
        m,
        "- Model: `{}` (original weights from the data root). Split: `splits/cifar10-test.json`.",
        t.arch.id()
    );
    let _ = writeln!(
        m,
        "- Checkpoints: every kept step of a run is scored on the first {} selection-half images \
         with the fooled interpreter; rule: {RULE} (max_drop = {} points).",
        t.selection_images,
        100.0 * t.max_drop
    );
    let _ = writeln!(
        m,
        "- The chosen checkpoint is stored as f16 (the released form) and that file is scored on \
         the report half. FSR threshold τ = {}. Target: FSR ≥ {} % and top-1 drop ≤ {} points \
         (on the mean over seeds).",
        t.threshold,
        100.0 * t.target_fsr,
        100.0 * t.max_drop
    );
    let _ = writeln!(
        m,
        "- Intervals: mean ± 95 % Student-t half-width over seeds; `[lo, hi]`: 95 % percentile \
         bootstrap over report images ({} resamples, paired for the drop) of the first seed's model.\n",
        t.bootstrap
    );
    if let Some((t1, t5)) = s.original {
        let _ = writeln!(
            m,
            "Original model on the report half: top-1 {} %, top-5 {} %.\n",
            pct(t1),
            pct(t5)
        );
    }
    let rows = |baseline: bool| s.cells.iter().filter(move |c| c.baseline == baseline);
    let header = "| cell | seeds | top-1 drop (pt) | top-5 drop (pt) | FSR (%) | bootstrap: drop / FSR, first seed | chosen steps | target |\n|---|---|---|---|---|---|---|---|\n";
    let row = |c: &CellSummary| {
        let n = c.seeds.len();
        format!(
            "| {} | {}/{} | {} | {} | {} | {} | {} | {} |\n",
            c.cell,
            n,
            c.seeds_planned,
            pm(c.top1_drop_mean),
            pm(c.top5_drop_mean),
            pm(c.fsr_mean),
            c.bootstrap_first_seed.map_or("–".into(), |b| format!(
                "{} / {}",
                span(b.top1_drop),
                span(b.fsr)
            )),
            c.steps
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if n == 0 {
                "not run"
            } else if c.meets_target {
                "met"
            } else {
                "**missed**"
            }
        )
    };
    let _ = writeln!(m, "## Passive fooling\n");
    m.push_str(header);
    for c in rows(false) {
        m.push_str(&row(c));
    }
    if rows(true).next().is_some() {
        let _ = writeln!(m, "\n## Baselines\n");
        m.push_str(header);
        for c in rows(true) {
            m.push_str(&row(c));
        }
    }
    let interps: Vec<String> = t
        .report_interpreters
        .iter()
        .map(|i| i.id().into())
        .collect();
    let _ = writeln!(
        m,
        "\n## Transfer: FSR (%) of each first-seed model under every interpreter\n\nThe fooling \
         type's statistic and τ, computed with interpreters the model was not fooled with \
         (input-level maps included; SmoothGrad and Integrated Gradients on the first {} images). \
         In brackets: the original model's FSR under the same rule.\n",
        t.heavy_images
    );
    let _ = writeln!(m, "| cell | {} |", interps.join(" | "));
    let _ = writeln!(m, "|---|{}", "---|".repeat(interps.len()));
    for c in s.cells.iter().filter(|c| !c.transfer.is_empty()) {
        let cols: Vec<String> = interps
            .iter()
            .map(|i| {
                c.transfer
                    .get(i)
                    .map_or("–".into(), |(f, o)| format!("{} ({})", pct(*f), pct(*o)))
            })
            .collect();
        let _ = writeln!(m, "| {} | {} |", c.cell, cols.join(" | "));
    }
    analysis_markdown(&mut m, t, s);
    let _ = writeln!(
        m,
        "\n## Evaluations per model\n\nFrom each run's `evaluations.jsonl`: selection-half evaluations of \
         the run's checkpoints, and report-half evaluations of the scored file (1 for every final model).\n"
    );
    let _ = writeln!(
        m,
        "| cell | seed | selection half | report half (scoring) | report half (analyses) |\n|---|---|---|---|---|"
    );
    for c in &s.cells {
        for (seed, e) in c.seeds.iter().zip(&c.evaluations) {
            let (sel, rep, ana) = e.map_or(("?".into(), "?".into(), "?".into()), |e| {
                (
                    e.selection.to_string(),
                    e.report.to_string(),
                    e.report_analyses.to_string(),
                )
            });
            let _ = writeln!(m, "| {} | {seed} | {sel} | {rep} | {ana} |", c.cell);
        }
    }
    let _ = writeln!(
        m,
        "\n## Recipes\n\nDefault recipe: {}. Per-cell overrides are in the config; each model's \
         resolved config is `{}/<cell>/seed<N>/config.json`, its training log `log.jsonl`, its \
         candidates `selection.json`.",
        recipe_text(&t.recipe),
        t.results.display()
    );
    for c in &t.cells {
        if c.recipe != Recipe::default() {
            let _ = writeln!(m, "- `{}`: {}", c.id(), recipe_text(&c.recipe));
        }
    }
    m
}

/// The AOPC and weight-noise sections of RESULTS.md.
fn analysis_markdown(m: &mut String, t: &TableConfig, s: &Summary) {
    let Some(cfg) = &t.analysis else { return };
    let done: Vec<(&CellSummary, &AnalysisSummary)> = s
        .cells
        .iter()
        .filter_map(|c| c.analysis.as_ref().map(|a| (c, a)))
        .collect();
    let planned = s.cells.len();
    let _ = writeln!(
        m,
        "\n## AOPC of the first-seed models\n\nComputed after every run was scored, on the first \
         {} report-half images; they choose nothing (counted apart from scoring below). \
         `AOPC_K` (K = {} of the tap grid's patches replaced by N(0, 0.3²) noise, one per step, in \
         the given order; docs/method.md §6) is the mean drop of the true class's logit averaged \
         over steps 0…K: the higher, the faster that order removes what the model uses. The fooled \
         model's reasoning is intact when the original map's order still hurts it as much as it \
         hurts the original; the fooled map is unfaithful when its own order hurts it little more \
         than random.\n",
        cfg.images, cfg.aopc_steps
    );
    if done.len() < planned {
        let _ = writeln!(
            m,
            "**Pending:** {} of {planned} models analysed; the table command continues them.\n",
            done.len()
        );
    }
    if !done.is_empty() {
        let _ = writeln!(
            m,
            "| cell | original: MoRF by original map | original: by fooled map | original: random | \
             fooled: MoRF by original map | fooled: by fooled map | fooled: random |\n\
             |---|---|---|---|---|---|---|"
        );
        for (c, a) in &done {
            let (o, f) = (a.aopc_original, a.aopc_fooled);
            let _ = writeln!(
                m,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                c.cell,
                o.morf_original_map,
                o.morf_fooled_map,
                o.random,
                f.morf_original_map,
                f.morf_fooled_map,
                f.random
            );
        }
    }
    let _ = writeln!(
        m,
        "\n## Robustness to Gaussian weight noise\n\nEvery trainable tensor of a model gets \
         `σ·std(w)·N(0, 1)` (one draw per σ and model), on the same {} images. Each cell: top-1 \
         of the noisy fooled model / of the noisy original (%), and the noisy fooled model's FSR \
         (%, its maps against the clean original's). σ = 0 is the clean pair.\n",
        cfg.images
    );
    if !done.is_empty() {
        let sig: Vec<String> = cfg
            .noise_sigmas
            .iter()
            .map(|s| format!("σ = {s}"))
            .collect();
        let _ = writeln!(m, "| cell | {} |", sig.join(" | "));
        let _ = writeln!(m, "|---|{}", "---|".repeat(sig.len()));
        for (c, a) in &done {
            let cols: Vec<String> = a
                .noise
                .iter()
                .map(|r| {
                    format!(
                        "{} / {}, FSR {}",
                        pct(r.top1_fooled),
                        pct(r.top1_original),
                        r.fsr.map_or("–".into(), pct)
                    )
                })
                .collect();
            let _ = writeln!(m, "| {} | {} |", c.cell, cols.join(" | "));
        }
    }
}

fn recipe_text(r: &Recipe) -> String {
    let mut parts = Vec::new();
    if let Some(v) = r.lambda {
        parts.push(format!("λ {v}"));
    }
    if let Some(v) = r.lr {
        parts.push(format!("lr {v}"));
    }
    if let Some(v) = r.batch_size {
        parts.push(format!("batch {v}"));
    }
    if let Some(v) = r.steps {
        parts.push(format!("{v} steps"));
    }
    if let Some(v) = r.keep_every {
        parts.push(format!("kept every {v}"));
    }
    match &r.schedule {
        Some(v) if v.is_empty() => parts.push("one phase".into()),
        Some(v) => {
            let ph: Vec<String> = v.iter().map(|p| String::from(*p)).collect();
            parts.push(format!("then {}", ph.join(", ")));
        }
        None => {}
    }
    parts.join(", ")
}

/// Every [`LOG_EVERY`]-th step of a training log, and its last line: the committed copy of a
/// run's `log.jsonl` (the full log stays in the run folder). Thinning twice changes nothing.
pub fn thin_log(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let step = |l: &str| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["step"].as_u64())
    };
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i + 1 == lines.len() || step(l).is_some_and(|s| s % LOG_EVERY == 0) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Steps between the lines of a committed training log.
pub const LOG_EVERY: u64 = 10;

/// Stage 4: summary.json, RESULTS.md and the release.
fn write_results(t: &TableConfig, config_path: &Path, jobs: &[Job]) -> Result<()> {
    for job in jobs {
        let eval_path = job.result_dir(t).join("eval.json");
        let run = job.run_dir(t);
        if eval_path.is_file() && run.join("evaluations.jsonl").is_file() {
            let mut r: ModelResult = read_json(&eval_path)?;
            let c = Some(counts(&run, &r.sha256)?);
            if r.evaluations != c {
                r.evaluations = c;
                write_json(&eval_path, &r)?;
            }
        }
        let log = job.result_dir(t).join("log.jsonl");
        if let Ok(text) = std::fs::read_to_string(&log) {
            let thin = thin_log(&text);
            if thin != text {
                write_atomic(&log, thin.as_bytes())?;
            }
        }
    }
    let s = summarise(t, jobs)?;
    write_json(&t.results.join("summary.json"), &s)?;
    write_atomic(
        &t.results.join("RESULTS.md"),
        markdown(t, config_path, &s).as_bytes(),
    )?;
    if let Some(rel) = &t.release {
        release(t, config_path, jobs, rel)?;
    }
    Ok(())
}

/// The released id of a cell: `<arch>-<cell>`.
pub fn release_id(t: &TableConfig, cell: &Cell) -> String {
    format!("{}-{}", t.arch.id(), cell.id())
}

fn release(t: &TableConfig, config_path: &Path, jobs: &[Job], rel: &Path) -> Result<()> {
    std::fs::create_dir_all(rel).with_context(|| format!("cannot create {}", rel.display()))?;
    let index_path = rel.join("index.json");
    let mut index: Index = if index_path.is_file() {
        read_json(&index_path)?
    } else {
        Index {
            version: 1,
            models: Vec::new(),
        }
    };
    for job in jobs.iter().filter(|j| j.first_seed && !j.cell.baseline) {
        let res = job.result_dir(t);
        let eval_path = res.join("eval.json");
        if !eval_path.is_file() {
            continue;
        }
        let r: ModelResult = read_json(&eval_path)?;
        let id = release_id(t, &job.cell);
        let file = format!("{id}.safetensors");
        let dest = rel.join(&file);
        // The scored file: from the run folder, else the copy released before.
        let model = scored_file(t, job, &r)?;
        let bytes =
            std::fs::read(&model).with_context(|| format!("cannot read {}", model.display()))?;
        let sel: Selection = read_json(&res.join("selection.json"))?;
        let cand = sel
            .candidates
            .iter()
            .find(|c| c.step == r.step)
            .with_context(|| format!("{}: no candidate at step {}", res.display(), r.step))?;
        let counts = r
            .evaluations
            .context("eval.json without evaluation counts")?;
        let report = figures(&r.report, job.cell.interpreter)?;
        let mut recipe = fool::resolve(&job.fool_args(t))?;
        recipe.out = PathBuf::from(format!("{}", job.run_dir(t).display()));
        let card = Card {
            id: id.clone(),
            file: file.clone(),
            sha256: r.sha256.clone(),
            dtype: "f16".into(),
            arch: t.arch.id().into(),
            fooling: job.cell.fooling.id().into(),
            interpreter: job.cell.interpreter.id().into(),
            seed: job.seed,
            step: r.step,
            threshold: t.threshold,
            max_drop: t.max_drop,
            meets_target: report.fsr >= t.target_fsr
                && report.top1_original - report.top1 <= t.max_drop + 1e-12,
            selection: cand.figures,
            report,
            evaluations: counts,
            recipe,
            transfer: r
                .report
                .interpreters
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        card::TransferFsr {
                            n: v.n,
                            fsr: v.fsr,
                            fsr_original: v.fsr_original,
                        },
                    )
                })
                .collect(),
            command: format!("foolmap table --config {}", config_path.display()),
        };
        let same = std::fs::read(&dest).is_ok_and(|b| b == bytes);
        if !same {
            write_atomic(&dest, &bytes)?;
        }
        write_json(&card::card_path(&dest), &card)?;
        index.models.retain(|m| m.id != id);
        index.models.push(IndexEntry {
            id: id.clone(),
            file,
            card: format!("{id}.json"),
            arch: card.arch.clone(),
            fooling: card.fooling.clone(),
            interpreter: card.interpreter.clone(),
            sha256: card.sha256.clone(),
            meets_target: card.meets_target,
        });
    }
    index.models.sort_by(|a, b| a.id.cmp(&b.id));
    write_json(&index_path, &index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(step: u64, top1: f64, fsr: f64) -> Candidate {
        Candidate {
            step,
            figures: HalfFigures {
                images: 100,
                top1,
                top5: 1.0,
                fsr,
                top1_original: 0.9,
                top5_original: 1.0,
            },
        }
    }

    #[test]
    fn a_thinned_log_keeps_every_tenth_step_and_the_last_and_is_stable() {
        let log: String = (1..=25).map(|s| format!("{{\"step\":{s}}}\n")).collect();
        let t = thin_log(&log);
        assert_eq!(t, "{\"step\":10}\n{\"step\":20}\n{\"step\":25}\n");
        assert_eq!(thin_log(&t), t);
    }

    #[test]
    fn the_rule_takes_the_highest_fsr_within_the_drop_else_the_smallest_drop() {
        let c = [
            cand(1, 0.89, 0.2),
            cand(2, 0.85, 0.9),
            cand(3, 0.885, 0.6),
            cand(4, 0.88, 0.6),
        ];
        assert_eq!(choose(&c, 0.02), Some((2, true)));
        // Nothing within 0.5 points: the smallest drop (step 1).
        assert_eq!(choose(&c, 0.005), Some((0, false)));
        let tie = [cand(1, 0.85, 0.5), cand(2, 0.85, 0.7)];
        assert_eq!(choose(&tie, 0.01), Some((1, false)));
        assert_eq!(choose(&[], 0.02), None);
    }

    #[test]
    fn a_cell_whose_steps_are_not_a_multiple_of_keep_every_is_refused() {
        let text = r#"
            name = "t"
            arch = "resnet20"
            runs = "r"
            results = "s"
            seeds = [1]
            selection_images = 10
            report_interpreters = ["grad_cam"]
            [recipe]
            steps = 10
            keep_every = 3
            [[cells]]
            fooling = "location"
            interpreter = "grad_cam"
        "#;
        let cfg: TableConfig = toml::from_str(text).unwrap();
        let e = format!("{:#}", cfg.check().unwrap_err());
        assert!(
            e.contains("location-grad_cam") && e.contains("keep_every"),
            "{e}"
        );
        let bad = text.replace("seeds = [1]", "seeds = [1]\nsedes = 2");
        let e = toml::from_str::<TableConfig>(&bad).unwrap_err().to_string();
        assert!(e.contains("sedes"), "{e}");
    }
}
