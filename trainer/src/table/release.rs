//! The release: the first seed of every non-baseline cell as f16 with its card, and `index.json`.

use super::*;

/// The released id of a cell: `<arch>-<cell>`.
pub fn release_id(t: &TableConfig, cell: &Cell) -> String {
    format!("{}-{}", t.arch.id(), cell.id())
}

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
