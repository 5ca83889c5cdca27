//! `foolmap eval` end to end through the binary: its JSON is the typed `EvalReport`; a report
//! folder adds weight noise and the sanity check, whose σ = 0 row is the scored pair's own
//! figures; active fooling is scored on composites of the evaluated half.

mod common;

use std::path::Path;
use std::process::Command;

use foolmap::Interpreter;
use foolmap::fooling::FoolingType;
use foolmap_trainer::eval::EvalReport;

fn foolmap(args: &[&str], extra: &[&Path]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .arg("--data-root")
        .arg(common::shared_data())
        .args(args)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn fool(dir: &Path, fooling: &str) {
    foolmap(
        &[
            "fool",
            "--arch",
            "resnet20",
            "--fooling",
            fooling,
            "--interpreter",
            "grad_cam",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--fool-batch-size",
            "2",
            "--lr",
            "1e-4",
            "--quiet",
            "--out",
        ],
        &[dir],
    );
}

#[test]
fn a_report_folder_holds_the_typed_evaluation_and_its_clean_noise_row_matches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    fool(&run, "location");
    let report = tmp.path().join("report");
    let stdout = foolmap(
        &[
            "eval",
            "--split",
            "selection",
            "--limit",
            "8",
            "--interpreters",
            "grad_cam,lrp_t",
            "--heavy-images",
            "0",
            "--aopc-images",
            "4",
            "--batch-size",
            "4",
            "--json",
            "--fooled",
        ],
        &[
            &run.join("final.safetensors"),
            Path::new("--report"),
            &report,
        ],
    );
    let e: EvalReport = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(
        (e.n, e.fooling, e.fooled_with),
        (8, FoolingType::Location, Some(Interpreter::GradCam))
    );
    // Registry order, not alphabetical.
    let keys: Vec<Interpreter> = e.interpreters.keys().copied().collect();
    assert_eq!(keys, [Interpreter::LrpT, Interpreter::GradCam]);
    let a = e.aopc.as_ref().unwrap();
    assert_eq!((a.images, a.steps, a.grid), (4, 64, (8, 8)));
    assert_eq!(a.curves.len(), 6);
    assert!(a.curves.values().all(|c| c.len() == 65 && c[0] == 0.0));

    let r: EvalReport =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    let noise = r.robustness.as_ref().unwrap();
    assert_eq!(noise.images, 8);
    let clean = noise.rows[0];
    assert_eq!(clean.sigma, 0.0);
    assert_eq!(clean.top1_fooled, e.fooled.top1);
    assert_eq!(clean.top1_original, e.original.top1);
    assert_eq!(clean.fsr, Some(e.interpreters[&Interpreter::GradCam].fsr));
    let s = r.sanity_check.as_ref().unwrap();
    assert_eq!(s.layers.original[0], ("none".to_string(), 1.0));
    assert!(s.layers.fooled.len() > 5);
    // report.json is what --json printed (the report's additions included); compared as parsed
    // JSON text, since a float read back through serde may move by an ulp.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        file,
        serde_json::from_slice::<serde_json::Value>(&stdout).unwrap()
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("| 0 | ") && md.contains("top-1 original"),
        "{md}"
    );
    for f in ["grid.png", "cdf.svg", "aopc.svg", "sanity.svg"] {
        assert!(report.join(f).is_file(), "{f}");
    }
}

#[test]
fn active_fooling_is_scored_on_composites_of_the_evaluated_half() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    fool(&run, "active");
    let stdout = foolmap(
        &[
            "eval",
            "--split",
            "report",
            "--limit",
            "4",
            "--interpreters",
            "grad_cam",
            "--heavy-images",
            "0",
            "--json",
            "--fooled",
        ],
        &[&run.join("final.safetensors")],
    );
    let raw: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert!(
        raw["active"]["correlations"]["fooled_c1~original_c2"]["spearman"].is_f64(),
        "{raw}"
    );
    let e: EvalReport = serde_json::from_value(raw).unwrap();
    let act = e.active.unwrap();
    assert_eq!(
        (act.c1, act.c2, act.interpreter),
        (3, 5, Interpreter::GradCam)
    );
    // 500 cats and 500 dogs in the report half: the 200 composites it asks for exist.
    assert_eq!(act.composites, 200);
    // The original classifies its own classes well; a 2-step run barely moves.
    assert!(act.class_accuracy.original.c1 > 0.5 && act.class_accuracy.original.c2 > 0.5);
    let c = act.correlations;
    assert!(c.fooled_c1_original_c1.spearman > c.fooled_c1_original_c2.spearman);
}

/// `explain.json` of `foolmap explain`: one typed row per image (an unknown key fails).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct MapRow {
    class: usize,
    image: String,
    map: String,
    max: f32,
    mean: f32,
    min: f32,
    shape: [usize; 2],
}

/// `accuracy --json`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AccuracyRow {
    arch: foolmap::Architecture,
    data: String,
    images_per_second: f64,
    n: usize,
    seconds: f64,
    top1: f64,
    top5: f64,
}

#[test]
fn explain_and_accuracy_write_their_typed_summaries() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("maps");
    let img = common::shared_data().join("cifar10/test/cat/alley_cat_s_000013.png");
    foolmap(
        &[
            "explain",
            "--arch",
            "resnet20",
            "--interpreter",
            "grad_cam",
            "--out",
        ],
        &[&out, &img],
    );
    let rows: Vec<MapRow> =
        serde_json::from_slice(&std::fs::read(out.join("explain.json")).unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.shape, [8, 8]);
    assert!(r.min <= r.mean && r.mean <= r.max, "{r:?}");
    assert!(out.join(&r.map).is_file() && r.image.ends_with("alley_cat_s_000013.png"));
    let acc: AccuracyRow = serde_json::from_slice(&foolmap(
        &["accuracy", "--arch", "resnet20", "--limit", "20", "--json"],
        &[],
    ))
    .unwrap();
    assert_eq!((acc.arch, acc.n), (foolmap::Architecture::ResNet20, 20));
    assert!(
        (0.0..=1.0).contains(&acc.top1) && acc.top1 <= acc.top5,
        "{acc:?}"
    );
}
