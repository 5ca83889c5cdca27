//! Stage 2: every kept checkpoint scored on the selection half; the fixed rule picks one.

use super::*;

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
    /// How many selection-half images scored the candidates (`None`: written before this was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<usize>,
}

/// The selection rule (`docs/method.md` §7).
pub const RULE: &str = "among the kept checkpoints, the highest FSR of the fooled interpreter \
(active fooling: the highest swap correlation) whose top-1 drop is at most max_drop on the \
selection images (ties: the earlier step); if none is within max_drop, the smallest drop (ties: \
the higher FSR, then the earlier step)";

/// Applies [`RULE`]: the index of the chosen candidate and whether it is within the drop limit.
pub fn choose(c: &[Candidate], max_drop: f64) -> Option<(usize, bool)> {
    let drop = |x: &Candidate| x.figures.top1_original - x.figures.top1;
    let within = |x: &Candidate| drop(x) <= max_drop + 1e-12;
    let best = c.iter().enumerate().filter(|(_, x)| within(x)).fold(
        None::<(usize, &Candidate)>,
        |b, (i, x)| match b {
            Some((_, y)) if y.figures.score() >= x.figures.score() => b,
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
                if drop(y) < drop(x)
                    || (drop(y) == drop(x) && y.figures.score() >= x.figures.score()) =>
            {
                b
            }
            _ => Some((i, x)),
        })
        .map(|(i, _)| (i, false))
}

pub(super) fn eval_args(t: &TableConfig, fooled: PathBuf, split: Subset) -> EvalArgs {
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

pub(super) fn figures(s: &EvalSummary, interp: Interpreter) -> Result<HalfFigures> {
    let (fsr, swap_correlation) = match &s.active {
        Some(a) => (None, Some(a.swap_correlation())),
        None => {
            let sc = s
                .interpreters
                .get(interp.id())
                .with_context(|| format!("evaluation without `{}`", interp.id()))?;
            (Some(sc.fsr), None)
        }
    };
    Ok(HalfFigures {
        images: s.n,
        top1: s.fooled.top1,
        top5: s.fooled.top5,
        fsr,
        swap_correlation,
        top1_original: s.original.top1,
        top5_original: s.original.top5,
        top1_agreement: s.top1_agreement,
    })
}

/// Stage 2: scores the kept checkpoints not yet in `selection.json` and applies the rule.
pub(super) fn select(
    t: &TableConfig,
    job: &Job,
    root: Option<&Path>,
    device: &Device,
    tag: &str,
) -> Result<Selection> {
    let want = fool::resolve(&job.fool_args(t))?;
    let run = job.run_dir(t);
    let path = job.result_dir(t).join("selection.json");
    // The recipe these candidates belong to, before the first of them is written.
    let cfg = job.result_dir(t).join("config.json");
    if !cfg.is_file() {
        write_json(&cfg, &want)?;
    }
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
            Subset::Selection,
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
                images: Some(t.selection_images),
            },
        )?;
    }
    let (i, within) = choose(&cands, t.max_drop).context("no kept checkpoint to select from")?;
    let sel = Selection {
        rule: RULE.into(),
        candidates: cands.clone(),
        chosen: cands[i].step,
        within_drop: within,
        images: Some(t.selection_images),
    };
    write_json(&path, &sel)?;
    Ok(sel)
}
