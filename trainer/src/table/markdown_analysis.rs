//! The analysis sections of RESULTS.md: AOPC of the first-seed models and their robustness to
//! weight noise.

use super::*;

/// The AOPC and weight-noise sections of RESULTS.md.
pub(super) fn analysis_markdown(m: &mut String, t: &TableConfig, s: &Summary) {
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
    noise_markdown(m, cfg, &done);
}

/// The weight-noise section: per analysed model, top-1 of both noisy models and the FSR per σ.
fn noise_markdown(m: &mut String, cfg: &AnalysisConfig, done: &[(&CellSummary, &AnalysisSummary)]) {
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
        for (c, a) in done {
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
