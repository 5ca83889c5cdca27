//! `foolmap eval` on a terminal: the report as a short table.

use super::report::EvalReport;

/// Prints the evaluation as a table.
pub fn print(v: &EvalReport) {
    println!(
        "{} fooled for `{}` with {} on {} images of {}",
        v.arch.id(),
        v.fooling.id(),
        v.fooled_with.map_or("?", |i| i.id()),
        v.n,
        v.data
    );
    for (m, acc) in [("original", &v.original), ("fooled", &v.fooled)] {
        println!(
            "  {m:<9} top-1 {:.2}%  top-5 {:.2}%",
            100.0 * acc.top1,
            100.0 * acc.top5
        );
    }
    if let Some(a) = v.top1_agreement {
        println!(
            "  the two models predict the same class on {:.2}% of the images",
            100.0 * a
        );
    }
    println!(
        "  {:<22} {:>6} {:>10} {:>14} {:>10}",
        "interpreter", "n", "FSR", "mean stat", "FSR orig."
    );
    for (k, r) in &v.interpreters {
        println!(
            "  {:<22} {:>6} {:>9.1}% {:>14.4} {:>9.1}%",
            k.id(),
            r.n,
            100.0 * r.fsr,
            r.mean_statistic,
            100.0 * r.fsr_original
        );
    }
    if let Some(a) = &v.aopc {
        println!(
            "  AOPC at the last step ({} images, {} steps; the full curves are in the JSON):",
            a.images, a.steps
        );
        for (name, c) in &a.curves {
            println!(
                "    {name:<28} {:.3}",
                c.last().copied().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(act) = &v.active {
        let c = &act.correlations;
        println!(
            "  active ({} composites, {}): swap correlation (hot region) c1→c2 {:.3}, c2→c1 {:.3}; \
             top-1 on c{} / c{}: original {:.1}% / {:.1}%, fooled {:.1}% / {:.1}%",
            act.composites,
            act.interpreter.id(),
            c.fooled_c1_original_c2.hot_region_correlation,
            c.fooled_c2_original_c1.hot_region_correlation,
            act.c1,
            act.c2,
            100.0 * act.class_accuracy.original.c1,
            100.0 * act.class_accuracy.original.c2,
            100.0 * act.class_accuracy.fooled.c1,
            100.0 * act.class_accuracy.fooled.c2
        );
    }
}
