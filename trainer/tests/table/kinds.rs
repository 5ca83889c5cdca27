//! Other kinds of table: an active-fooling cell and a label-free ImageNet table.

use foolmap_trainer::card;
use foolmap_trainer::eval;
use foolmap_trainer::split::Subset;
use foolmap_trainer::table;

use super::{config, run, summary};

#[test]
fn an_active_cell_is_selected_by_its_swap_correlation_and_reported_without_an_fsr() {
    let a = tempfile::tempdir().unwrap();
    let cfg = config(a.path());
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "fooling = \"location\"\ninterpreter = \"grad_cam\"",
        "fooling = \"active\"\ninterpreter = \"grad_cam\"\nclasses = [3, 5]",
    );
    std::fs::write(&cfg, text).unwrap();
    run(&cfg, None);
    let s = summary(a.path());
    let row = &s.cells[0];
    assert_eq!((row.cell.as_str(), s.complete), ("active-grad_cam", (1, 1)));
    assert!(row.fsr.is_empty() && row.swap_correlation.len() == 1);
    let act = row.active.as_ref().unwrap();
    assert_eq!((act.c1, act.c2), (3, 5));
    // Composites of the report half (500 cats and 500 dogs there): as many as asked.
    assert_eq!(act.composites, 200);
    assert_eq!(row.swap_correlation[0], act.swap_correlation());
    assert!(!row.meets_target, "active fooling has no FSR target");
    let b = row.bootstrap_first_seed.unwrap();
    assert!(b.fsr.is_none());

    // Every candidate was scored by its swap correlation, and the rule picked by it.
    let sel: table::Selection = serde_json::from_slice(
        &std::fs::read(
            a.path()
                .join("results/active-grad_cam/seed1/selection.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(sel.candidates.len(), 2);
    for c in &sel.candidates {
        assert!(c.figures.fsr.is_none() && c.figures.swap_correlation.is_some());
    }
    let (i, _) = table::choose(&sel.candidates, 0.02).unwrap();
    assert_eq!(sel.chosen, sel.candidates[i].step);

    let results = std::fs::read_to_string(a.path().join("results/RESULTS.md")).unwrap();
    assert!(results.contains("## Active fooling"), "{results}");
    assert!(results.contains("| active-grad_cam | 1/1 |"), "{results}");
    let c: card::Card = serde_json::from_slice(
        &std::fs::read(a.path().join("models/resnet20-active-grad_cam.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(c.report.fsr, None);
    assert_eq!(c.report.swap_correlation, Some(row.swap_correlation[0]));
    // The page shows passive fooling: the demo does not pick an active model.
    assert!(
        foolmap_trainer::cmd::demo::released(&a.path().join("models"), true)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_imagenet_table_trains_label_free_and_scores_the_imagenet_halves() {
    let a = tempfile::tempdir().unwrap();
    let d = a.path().display();
    let text = format!(
        r#"
name = "tiny photo"
arch = "squeezenet1_0"
runs = "{d}/runs"
results = "{d}/results"
seeds = [1]
selection_images = 2
report_images = 2
report_interpreters = ["grad_cam"]
heavy_images = 0
bootstrap = 20
eval_batch_size = 2

[recipe]
lambda = 1.0
lr = 1e-5
batch_size = 2
steps = 2
keep_every = 2
distill = true

[[cells]]
fooling = "location"
interpreter = "grad_cam"
"#
    );
    let cfg = a.path().join("photo.toml");
    std::fs::write(&cfg, text).unwrap();
    run(&cfg, None);
    let s = summary(a.path());
    assert_eq!(s.complete, (1, 1));
    let results = std::fs::read_to_string(a.path().join("results/RESULTS.md")).unwrap();
    assert!(
        results.contains("1,000 ImageNet samples")
            && results.contains("splits/imagenet-samples.json"),
        "{results}"
    );
    assert!(results.contains("label-free"), "{results}");
    let saved: foolmap_trainer::fool::RunConfigFile = serde_json::from_slice(
        &std::fs::read(a.path().join("runs/location-grad_cam/seed1/config.json")).unwrap(),
    )
    .unwrap();
    assert!(saved.config.distill);
    // Scored on ImageNet report-half images.
    let ledger = eval::evaluations(&a.path().join("runs/location-grad_cam/seed1")).unwrap();
    assert!(
        ledger
            .iter()
            .any(|e| e.split == Subset::Report && e.images == 2)
    );
}
