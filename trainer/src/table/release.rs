//! The release: the first seed of every non-baseline cell as f16 with its card, and `index.json`.

use super::*;

/// The released id of a cell: `<arch>-<cell>`.
pub fn release_id(t: &TableConfig, cell: &Cell) -> String {
    format!("{}-{}", t.arch.id(), cell.id())
}

/// Releases the first seed of every scored non-baseline cell into `rel` (weights, card) and
/// rewrites `index.json`, sorted by id.
pub(super) fn release(t: &TableConfig, config_path: &Path, jobs: &[Job], rel: &Path) -> Result<()> {
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
        let eval_path = job.result_dir(t).join("eval.json");
        if !eval_path.is_file() {
            continue;
        }
        let r: ModelResult = read_json(&eval_path)?;
        let card = card(t, config_path, job, &r)?;
        let dest = rel.join(&card.file);
        // The scored file: from the run folder, else the copy released before.
        let model = scored_file(t, job, &r)?;
        let bytes =
            std::fs::read(&model).with_context(|| format!("cannot read {}", model.display()))?;
        let same = std::fs::read(&dest).is_ok_and(|b| b == bytes);
        if !same {
            write_atomic(&dest, &bytes)?;
        }
        write_json(&card::card_path(&dest), &card)?;
        index.models.retain(|m| m.id != card.id);
        index.models.push(IndexEntry {
            id: card.id.clone(),
            file: card.file.clone(),
            card: format!("{}.json", card.id),
            arch: card.arch,
            fooling: card.fooling,
            interpreter: card.interpreter,
            sha256: card.sha256.clone(),
            meets_target: card.meets_target,
        });
    }
    index.models.sort_by(|a, b| a.id.cmp(&b.id));
    write_json(&index_path, &index)
}

/// The card of a job's scored model `r`: its selection-half candidate, report figures, counts,
/// the resolved recipe and the command.
fn card(t: &TableConfig, config_path: &Path, job: &Job, r: &ModelResult) -> Result<Card> {
    let res = job.result_dir(t);
    let id = release_id(t, &job.cell);
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
    let transfer = r
        .report
        .interpreters
        .iter()
        .map(|(k, v)| {
            let fsr = card::TransferFsr {
                n: v.n,
                fsr: v.fsr,
                fsr_original: v.fsr_original,
            };
            (k.clone(), fsr)
        })
        .collect();
    Ok(Card {
        file: format!("{id}.safetensors"),
        id,
        sha256: r.sha256.clone(),
        dtype: "f16".into(),
        arch: t.arch,
        fooling: job.cell.fooling,
        interpreter: job.cell.interpreter,
        seed: job.seed,
        step: r.step,
        threshold: t.threshold,
        max_drop: t.max_drop,
        // Active fooling has no FSR target: never "met".
        meets_target: report.fsr.is_some_and(|f| f >= t.target_fsr)
            && report.drop() <= t.max_drop + 1e-12,
        selection: cand.figures,
        report,
        evaluations: counts,
        recipe,
        transfer,
        command: format!("foolmap table --config {}", config_path.display()),
    })
}
