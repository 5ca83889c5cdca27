//! `foolmap table --config tables/<name>.toml`: one command from the original weights to a
//! results folder, `RESULTS.md` and released models (`docs/method.md` §7.1).
//!
//! Per cell (fooling type × interpreter) and seed, resumable stages, each skipped when its
//! output is already on disk and belongs to the same recipe:
//! 1. **train**: a `foolmap fool` run in `<runs>/<cell>/seed<N>`, keeping every `keep_every`-th
//!    step; `--time-limit` stops it at a checkpoint and the next invocation resumes it;
//! 2. **select**: every kept checkpoint scored on the first `selection_images` of the selection
//!    half with the cell's interpreter; the rule picks one (highest FSR with top-1 drop ≤
//!    `max_drop`; if none qualifies, the smallest drop); the results folder's `config.json`
//!    (the resolved recipe) is written before the first candidate, and a results folder of
//!    another recipe stops the table;
//! 3. **report**: the chosen checkpoint stored as f16 (the released form) and that file scored
//!    once on the report half with every report interpreter (the transfer matrix);
//! 4. **analyse** (once every run is scored, `[analysis]`): AOPC and weight noise of each cell's
//!    first-seed model on the first report-half images; chooses nothing;
//! 5. **write**: `<results>/<cell>/seed<N>/{config.json, log.jsonl, selection.json, eval.json,
//!    per_image.json, analysis.json}` (each by its stage), then `<results>/RESULTS.md` + `summary.json` and, for the
//!    first seed of each released cell, `<release>/<id>.safetensors` with its card and
//!    `index.json`.
//!
//! The report half is never read before stage 3, and stage 3 never runs twice for one file.
//!
//! Modules: [`config`] (the TOML), [`select`], [`stages`] (train, report, analyse), [`results`]
//! (per-model files), [`summary`], [`markdown`], [`release`].

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
use foolmap::{Architecture, Dataset, Interpreter};
use serde::{Deserialize, Serialize};

use crate::card::{self, Card, EvaluationCounts, HalfFigures, Index, IndexEntry};
use crate::eval::analysis::{AnalysisConfig, AopcPoint, ModelAnalysis, NoiseRow};
use crate::eval::{self, Accuracy, ActiveMetrics, EvalArgs, EvalReport, Purpose};
use crate::fool::{self, FoolArgs, FoolConfig, FoolSettings, Phase};
use crate::io::atomic::write_atomic;
use crate::io::json::{read as read_json, write as write_json};
use crate::split::Subset;

mod config;
mod format;
mod markdown;
mod markdown_analysis;
mod release;
mod results;
mod select;
mod stages;
mod summary;

pub use config::*;
use format::*;
pub use markdown::*;
use markdown_analysis::*;
pub use release::*;
pub use results::*;
pub use select::*;
use stages::*;
pub use summary::*;

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
        // Results of another recipe are an error, not a finished job.
        check_results(&t, job)?;
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

impl TableConfig {
    /// Checks every job's results folder against the recipe this config asks for now (see
    /// `stages::check_results`): the committed results must be the results of the committed
    /// config. Paths are relative to the current directory, as in the config.
    pub fn check_results(&self) -> Result<()> {
        self.jobs().iter().try_for_each(|j| check_results(self, j))
    }
}

/// Every [`LOG_EVERY`]-th step of a training log, and its last line: the committed copy of a
/// run's `log.jsonl` (the full log stays in the run folder). Thinning twice changes nothing.
pub fn thin_log(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let step = foolmap::artifact::run::log_step;
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
                fsr: Some(fsr),
                swap_correlation: None,
                top1_original: 0.9,
                top5_original: 1.0,
                top1_agreement: None,
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
