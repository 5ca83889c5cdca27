//! The table config (`tables/<name>.toml`): recipe, cells, analyses; its checks and its jobs.

use super::*;

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
    /// Label-free passive fooling (`fool --distill`: KL to the original replaces CE; default
    /// data then the data root's CIFAR-10 training images, for every architecture).
    pub distill: Option<bool>,
    /// Train only the parameters under these module paths (`fool --train-only`, e.g.
    /// `["features.12", "classifier.1"]`); default: every trainable parameter.
    pub train_only: Option<Vec<String>>,
    /// Train on the selection half of the evaluation images after its first
    /// `selection_images` (`fool --selection-rest`): those choose the checkpoints, the rest are
    /// (label-free) training data; the report half is never read.
    pub selection_rest: Option<bool>,
}

impl Recipe {
    /// `self` with the unset fields taken from `base`.
    pub(super) fn over(&self, base: &Recipe) -> Recipe {
        Recipe {
            lambda: self.lambda.or(base.lambda),
            lr: self.lr.or(base.lr),
            batch_size: self.batch_size.or(base.batch_size),
            steps: self.steps.or(base.steps),
            keep_every: self.keep_every.or(base.keep_every),
            schedule: self.schedule.clone().or_else(|| base.schedule.clone()),
            data: self.data.clone().or_else(|| base.data.clone()),
            distill: self.distill.or(base.distill),
            train_only: self.train_only.clone().or_else(|| base.train_only.clone()),
            selection_rest: self.selection_rest.or(base.selection_rest),
        }
    }
}

/// One cell of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Fooling type id (`location`, `topk`, `center-mass`, `active`).
    pub fooling: FoolingType,
    /// Interpreter fooled (`lrp_t`, `grad_cam`, `simple_grad_t`).
    pub interpreter: Interpreter,
    /// Cell id (default `<fooling>-<interpreter>`); names its folders and released model.
    #[serde(default)]
    pub id: Option<String>,
    /// Seeds (default: the table's `seeds`).
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Active fooling: the two classes whose explanations are swapped (default: `fool`'s, cat 3
    /// and dog 5 on CIFAR-10).
    #[serde(default)]
    pub classes: Option<(usize, usize)>,
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

pub(super) fn default_threshold() -> f64 {
    0.15
}
pub(super) fn default_max_drop() -> f64 {
    0.02
}
pub(super) fn default_target_fsr() -> f64 {
    0.8
}
pub(super) fn default_heavy() -> usize {
    200
}
pub(super) fn default_bootstrap() -> usize {
    1000
}
pub(super) fn default_eval_batch() -> usize {
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

    pub(super) fn check(&self) -> Result<()> {
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
            match (c.fooling, c.classes) {
                (FoolingType::Active, Some((c1, c2))) => {
                    let k = self.arch.dataset().num_classes();
                    if c1 == c2 || c1 >= k || c2 >= k {
                        bail!(
                            "cell `{id}`: `classes` must be two different classes below {k}, found [{c1}, {c2}]"
                        );
                    }
                }
                (FoolingType::Active, None) => {}
                (_, Some(_)) => bail!("cell `{id}`: `classes` is for active fooling only"),
                (_, None) => {}
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
    pub(super) fn run_dir(&self, t: &TableConfig) -> PathBuf {
        t.runs
            .join(self.cell.id())
            .join(format!("seed{}", self.seed))
    }
    pub(super) fn result_dir(&self, t: &TableConfig) -> PathBuf {
        t.results
            .join(self.cell.id())
            .join(format!("seed{}", self.seed))
    }
    pub(super) fn fool_args(&self, t: &TableConfig) -> FoolArgs {
        let r = self.cell.recipe.over(&t.recipe);
        let keep = r.keep_every.unwrap_or(1);
        let settings = FoolSettings {
            arch: Some(t.arch),
            fooling: Some(self.cell.fooling),
            interpreter: Some(self.cell.interpreter),
            lambda: r.lambda,
            lr: r.lr,
            batch_size: r.batch_size,
            steps: r.steps,
            seed: Some(self.seed),
            checkpoint_every: Some(keep),
            keep_every: Some(keep),
            data: r.data,
            schedule: r.schedule,
            max_drop: Some(t.max_drop),
            threshold: Some(t.threshold),
            out: Some(self.run_dir(t)),
            distill: r.distill.filter(|d| *d),
            train_only: r.train_only,
            selection_rest: r.selection_rest.filter(|s| *s).map(|_| t.selection_images),
            c1: self.cell.classes.map(|c| c.0),
            c2: self.cell.classes.map(|c| c.1),
            ..FoolSettings::default()
        };
        FoolArgs {
            settings,
            ..FoolArgs::default()
        }
    }
}
