//! A tiny table interrupted and continued, its analysis and released models; a new recipe refused.

use foolmap::Architecture;
use foolmap::burn::tensor::Device;
use foolmap_trainer::card;
use foolmap_trainer::eval::analysis::ModelAnalysis;
use foolmap_trainer::eval::{self, EvalArgs, Purpose};
use foolmap_trainer::split::Subset;
use foolmap_trainer::table::{self, TableArgs};

use super::{config, run, summary};
use crate::common::shared_data;

#[test]
fn an_interrupted_table_resumes_to_the_uninterrupted_result_and_releases_verified_models() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (ca, cb) = (config(a.path()), config(b.path()));

    // A: stopped after the first training step, then continued.
    run(&ca, Some(1e-3));
    let partial = summary(a.path());
    assert_eq!(partial.complete, (0, 1));
    assert!(
        std::fs::read_to_string(a.path().join("results/RESULTS.md"))
            .unwrap()
            .contains("Incomplete")
    );
    run(&ca, None);
    // B: in one go.
    run(&cb, None);
    let (sa, sb) = (summary(a.path()), summary(b.path()));
    assert_eq!(sa.complete, (1, 1));
    assert_eq!(sa, sb, "resumed and uninterrupted tables differ");
    // Agreement of the two models' top-1 ≥ the share of images both classify correctly.
    let p: table::PerImage = serde_json::from_slice(
        &std::fs::read(
            a.path()
                .join("results/location-grad_cam/seed1/per_image.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let both = p
        .top1_original
        .bytes()
        .zip(p.top1_fooled.bytes())
        .filter(|(o, f)| *o == b'1' && *f == b'1')
        .count() as f64
        / p.top1_original.len() as f64;
    let agree = sa.cells[0].top1_agreement_first_seed.unwrap();
    assert!((both..=1.0).contains(&agree), "{agree} vs {both}");
    let ra = std::fs::read(
        a.path()
            .join("results/location-grad_cam/seed1/per_image.json"),
    )
    .unwrap();
    let rb = std::fs::read(
        b.path()
            .join("results/location-grad_cam/seed1/per_image.json"),
    )
    .unwrap();
    assert_eq!(ra, rb);

    // A third invocation changes nothing and scores nothing again.
    run(&ca, None);
    assert_eq!(summary(a.path()), sa);
    let ledger = eval::evaluations(&a.path().join("runs/location-grad_cam/seed1")).unwrap();
    let report = |p: Purpose| {
        ledger
            .iter()
            .filter(|e| e.split == Subset::Report && e.purpose == p)
            .count()
    };
    assert_eq!(report(Purpose::Score), 1, "{ledger:?}");
    assert_eq!(report(Purpose::Analysis), 1, "{ledger:?}");

    // The analysis: on the same 8 report images, σ = 0 is the scored pair's own figures.
    let an: ModelAnalysis = serde_json::from_slice(
        &std::fs::read(
            a.path()
                .join("results/location-grad_cam/seed1/analysis.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let row = &sa.cells[0];
    let clean = an.noise.rows[0];
    assert_eq!(clean.sigma, 0.0);
    let ev: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.path().join("results/location-grad_cam/seed1/eval.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        clean.top1_fooled,
        ev["report"]["fooled"]["top1"].as_f64().unwrap()
    );
    assert_eq!(
        clean.top1_original,
        ev["report"]["original"]["top1"].as_f64().unwrap()
    );
    assert_eq!(clean.fsr, Some(row.fsr[0]));
    assert_eq!(an.noise.rows.len(), 2);
    assert_eq!(
        (an.aopc.images, an.aopc.steps, an.aopc.grid),
        (8, 3, (8, 8))
    );
    for (name, c) in an
        .aopc
        .original
        .named()
        .into_iter()
        .chain(an.aopc.fooled.named())
    {
        assert_eq!(c.len(), 4, "{name}");
        assert_eq!(c[0], 0.0, "{name}");
    }
    assert!(row.analysis.is_some());
    let results = std::fs::read_to_string(a.path().join("results/RESULTS.md")).unwrap();
    assert!(
        results.contains("## AOPC of the first-seed models") && !results.contains("Pending"),
        "{results}"
    );
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.split == Subset::Selection)
            .count(),
        2,
        "one selection evaluation per kept checkpoint (steps 2 and 4)"
    );

    // The released model reproduces its card on the report half.
    let model = a
        .path()
        .join("models/resnet20-location-grad_cam.safetensors");
    let c = card::read(&card::card_path(&model)).unwrap();
    assert_eq!(c.evaluations.report, 1);
    assert_eq!(c.report.images, 8);
    let e = EvalArgs {
        arch: None,
        original: None,
        fooled: model.clone(),
        data: None,
        limit: Some(8),
        split: Subset::Report,
        fooling: None,
        threshold: 0.15,
        interpreters: vec![foolmap::Interpreter::GradCam],
        heavy_images: 0,
        aopc_images: 0,
        batch_size: 4,
        report: None,
        grid_images: None,
        json: true,
        per_image: false,
    };
    let v = eval::run(&e, Some(&shared_data()), &Device::flex()).unwrap();
    assert_eq!(v.fooled.top1, c.report.top1);
    assert_eq!(v.fooled.top5, c.report.top5);
    assert_eq!(
        Some(v.interpreters[&foolmap::Interpreter::GradCam].fsr),
        c.report.fsr
    );
    let index: card::Index =
        serde_json::from_slice(&std::fs::read(a.path().join("models/index.json")).unwrap())
            .unwrap();
    assert_eq!(index.models.len(), 1);
    assert_eq!(index.models[0].sha256, c.sha256);

    // The web export and the demo take the released file with its card's report figures.
    let dist = a.path().join("dist");
    let manifest = foolmap_trainer::export_web::run(
        &foolmap_trainer::export_web::ExportWebArgs {
            fooled: vec![model.clone()],
            original: None,
            out: dist.clone(),
            gallery_per_class: 1,
            f32: false,
            site: None,
        },
        Some(&shared_data()),
    )
    .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let e = &m["models"][1]["eval"];
    assert_eq!(e["split"], "report");
    assert_eq!(e["card"], "resnet20-location-grad_cam");
    assert_eq!(e["meets_target"].as_bool(), Some(c.meets_target));
    assert_eq!(e["fooled"]["top1"].as_f64(), Some(c.report.top1));
    assert_eq!(e["interpreters"]["grad_cam"]["fsr"].as_f64(), c.report.fsr);
    assert_eq!(
        e["interpreters"]["lrp_t"]["fsr"].as_f64(),
        Some(c.transfer["lrp_t"].fsr),
        "the transfer figures travel with the card"
    );
    let shown = foolmap_trainer::cmd::demo::released(&a.path().join("models"), false).unwrap();
    assert_eq!(shown, vec![model.clone()]);

    // A released file that no longer matches its card is refused, naming both.
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&model, &bytes).unwrap();
    let err =
        match foolmap_trainer::io::weights::load(Architecture::ResNet20, &model, &Device::flex()) {
            Ok(_) => panic!("a changed released file must not load"),
            Err(e) => format!("{e:#}"),
        };
    assert!(
        err.contains("does not match its card") && err.contains("resnet20-location-grad_cam"),
        "{err}"
    );
}

#[test]
fn a_run_folder_of_another_recipe_is_refused_untouched() {
    let a = tempfile::tempdir().unwrap();
    let cfg = config(a.path());
    run(&cfg, Some(1e-3));
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lambda = 1.0", "lambda = 2.0");
    std::fs::write(&cfg, text).unwrap();
    let before = std::fs::read(
        a.path()
            .join("runs/location-grad_cam/seed1/checkpoint.safetensors"),
    )
    .unwrap();
    let e = table::run(
        &TableArgs {
            config: cfg,
            time_limit: None,
            quiet: true,
        },
        Some(&shared_data()),
        &Device::flex(),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("another recipe"), "{e:#}");
    let after = std::fs::read(
        a.path()
            .join("runs/location-grad_cam/seed1/checkpoint.safetensors"),
    )
    .unwrap();
    assert_eq!(before, after);
}

#[test]
fn scored_results_of_another_recipe_are_refused_untouched_without_their_run_folder() {
    let a = tempfile::tempdir().unwrap();
    let cfg = config(a.path());
    run(&cfg, None);
    // A fresh checkout: the committed results, no run folder.
    std::fs::remove_dir_all(a.path().join("runs")).unwrap();
    let eval = a.path().join("results/location-grad_cam/seed1/eval.json");
    let before = std::fs::read(&eval).unwrap();
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("steps = 4", "steps = 6");
    std::fs::write(&cfg, text).unwrap();
    let e = table::run(
        &TableArgs {
            config: cfg.clone(),
            time_limit: None,
            quiet: true,
        },
        Some(&shared_data()),
        &Device::flex(),
    )
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("results of another recipe") && e.contains("`steps` 4 → 6"),
        "{e}"
    );
    assert_eq!(std::fs::read(&eval).unwrap(), before);
    let t = table::TableConfig::read(&cfg).unwrap();
    assert!(t.check_results().is_err());
}
