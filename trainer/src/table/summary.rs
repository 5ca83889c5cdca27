//! `summary.json`: per cell the figures over seeds (Student-t) and over images (bootstrap).

use super::*;

/// Bootstrap intervals over the report images of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Top-1 drop (fraction), 2.5 % and 97.5 %.
    pub top1_drop: (f64, f64),
    /// FSR, 2.5 % and 97.5 % (passive fooling).
    pub fsr: Option<(f64, f64)>,
}

pub(super) fn bits(s: &str) -> Vec<f64> {
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
    let fsr = (!s.is_empty()).then(|| {
        bootstrap95(s.len(), resamples, seed ^ 0x5eed, |idx| {
            idx.iter()
                .filter(|&&i| kind.is_fooled(s[i] as f64, tau))
                .count() as f64
                / idx.len() as f64
        })
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
    pub fooling: FoolingType,
    /// Interpreter fooled.
    pub interpreter: Interpreter,
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
    /// Top-1 agreement of the first seed's model with the original (report half), when scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_agreement_first_seed: Option<f64>,
    /// Active fooling: the swap correlation per seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swap_correlation: Vec<f64>,
    /// Active fooling: its mean and 95 % t half-width over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_correlation_mean: Option<MeanCi>,
    /// Active fooling: the first seed's figures (correlations, per-class top-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveMetrics>,
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
        let mut row = CellSummary::empty(c);
        for job in jobs.iter().filter(|j| j.cell.id() == c.id()) {
            row.seeds_planned += 1;
            let path = job.result_dir(t).join("eval.json");
            if !path.is_file() {
                continue;
            }
            complete += 1;
            let r: ModelResult = read_json(&path)?;
            original.get_or_insert((r.report.original.top1, r.report.original.top5));
            row.add_seed(t, c, job, &r)?;
        }
        row.finish(t, c.fooling);
        cells.push(row);
    }
    Ok(Summary {
        name: t.name.clone(),
        complete: (complete, jobs.len()),
        original,
        cells,
    })
}

impl CellSummary {
    /// The row of cell `c` before any seed is read.
    fn empty(c: &Cell) -> CellSummary {
        CellSummary {
            cell: c.id(),
            fooling: c.fooling,
            interpreter: c.interpreter,
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
            top1_agreement_first_seed: None,
            swap_correlation: Vec::new(),
            swap_correlation_mean: None,
            active: None,
        }
    }

    /// Adds the scored model `r` of one seed; the first seed's model also gives the row its
    /// bootstrap intervals, transfer FSRs, active figures and analyses.
    fn add_seed(&mut self, t: &TableConfig, c: &Cell, job: &Job, r: &ModelResult) -> Result<()> {
        let s = &r.report;
        let f = figures(s, c.interpreter)?;
        self.seeds.push(job.seed);
        self.steps.push(r.step);
        self.evaluations.push(r.evaluations);
        self.top1_drop.push(f.top1_original - f.top1);
        self.top5_drop.push(f.top5_original - f.top5);
        self.fsr.extend(f.fsr);
        self.swap_correlation.extend(f.swap_correlation);
        if !job.first_seed {
            return Ok(());
        }
        self.active = s.active.clone();
        self.top1_agreement_first_seed = s.top1_agreement;
        let p: PerImage = read_json(&job.result_dir(t).join("per_image.json"))?;
        self.bootstrap_first_seed =
            Some(bootstrap(&p, c.fooling, t.threshold, t.bootstrap, job.seed));
        self.analysis = analysis_summary(&job.result_dir(t).join("analysis.json"), &r.sha256)?;
        self.transfer = s
            .interpreters
            .iter()
            .map(|(k, v)| (k.clone(), (v.fsr, v.fsr_original)))
            .collect();
        Ok(())
    }

    /// Means and intervals over the seeds read, and whether the cell meets the target.
    fn finish(&mut self, t: &TableConfig, fooling: FoolingType) {
        self.top1_drop_mean = MeanCi::of(&self.top1_drop);
        self.top5_drop_mean = MeanCi::of(&self.top5_drop);
        self.fsr_mean = MeanCi::of(&self.fsr);
        if fooling == FoolingType::Active {
            self.swap_correlation_mean = Some(MeanCi::of(&self.swap_correlation));
        }
        self.meets_target = self.fsr_mean.mean.is_some_and(|f| f >= t.target_fsr)
            && self
                .top1_drop_mean
                .mean
                .is_some_and(|d| d <= t.max_drop + 1e-12);
    }
}

/// The RESULTS.md figures of a first-seed model's `analysis.json` (`ap`), when it exists; it
/// must analyse the file that `eval.json` scored (`sha256`).
fn analysis_summary(ap: &Path, sha256: &str) -> Result<Option<AnalysisSummary>> {
    if !ap.is_file() {
        return Ok(None);
    }
    let a: ModelAnalysis = read_json(ap)?;
    if a.sha256 != sha256 {
        bail!(
            "{} analyses another model than eval.json scored",
            ap.display()
        );
    }
    Ok(Some(AnalysisSummary {
        images: a.aopc.images,
        aopc_steps: a.aopc.steps,
        aopc_original: a.aopc.original.last(),
        aopc_fooled: a.aopc.fooled.last(),
        noise: a.noise.rows,
    }))
}
