//! The original model's roles: Top-k reference, validation baseline and distillation teacher.

use std::path::{Path, PathBuf};

use foolmap::burn::tensor::Device;
use foolmap_trainer::fool::{FoolArgs, FoolSettings, resolve, run};

use super::{args, read};
use crate::common::shared_data;

/// Fooling loss logged at step 1 of a run.
fn first_fool_loss(out: &Path) -> f64 {
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    first["fool"].as_f64().unwrap()
}

#[test]
fn continuing_from_a_fooled_model_keeps_the_original_as_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let fooled_dir = tmp.path().join("stage1");
    run(&args(&fooled_dir, 2), Some(&shared_data()), &Device::flex()).unwrap();
    let fooled = fooled_dir.join("final.safetensors");
    let pretrained = shared_data().join("weights/resnet20_cifar10.safetensors");
    // Top-k compares with the reference model's map H0 (spec §5.2).
    let stage2 = |name: &str, original: Option<PathBuf>| {
        let out = tmp.path().join(name);
        let a = {
            let base = args(&out, 1);
            FoolArgs {
                settings: FoolSettings {
                    fooling: Some("topk".parse().unwrap()),
                    weights: Some(fooled.clone()),
                    original,
                    ..base.settings
                },
                ..base
            }
        };
        run(&a, Some(&shared_data()), &Device::flex()).unwrap();
        first_fool_loss(&out)
    };
    let default = stage2("default", None);
    let same = stage2("same", Some(fooled.clone()));
    let orig = stage2("original", Some(pretrained));
    assert_eq!(default, same, "the reference defaults to --weights");
    assert!(
        (orig - default).abs() > 1e-6,
        "H0 of the original model must change the Top-k loss: {orig} vs {default}"
    );
    let missing = {
        let base = args(&tmp.path().join("missing"), 1);
        FoolArgs {
            settings: FoolSettings {
                fooling: Some("topk".parse().unwrap()),
                original: Some(tmp.path().join("nope.safetensors")),
                ..base.settings
            },
            ..base
        }
    };
    let e = format!(
        "{:#}",
        run(&missing, Some(&shared_data()), &Device::flex()).unwrap_err()
    );
    assert!(e.contains("nope.safetensors"), "{e}");
}

#[test]
fn validation_keeps_the_best_model_within_the_accuracy_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let a = {
        let base = args(tmp.path(), 4);
        FoolArgs {
            settings: FoolSettings {
                fooling: Some("topk".parse().unwrap()),
                interpreter: Some("grad_cam".parse().unwrap()),
                val_every: Some(2),
                val_images: Some(20),
                max_drop: Some(1.0),
                ..base.settings
            },
            ..base
        }
    };
    run(&a, Some(&shared_data()), &Device::flex()).unwrap();
    let vals: Vec<foolmap_trainer::fool::validate::Validation> =
        std::fs::read_to_string(tmp.path().join("val.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(vals.iter().map(|v| v.step).collect::<Vec<_>>(), [2, 4]);
    assert!(
        vals.iter()
            .all(|v| v.images == 20 && v.top1_original == vals[0].top1_original)
    );
    assert!(
        vals.iter().all(|v| (0.0..=1.0).contains(&v.score)),
        "FSR is a fraction"
    );
    // With a budget of 100 points the best is the highest FSR (the earlier step on a tie).
    let best: foolmap_trainer::fool::validate::Validation =
        serde_json::from_slice(&std::fs::read(tmp.path().join("best.json")).unwrap()).unwrap();
    let top = vals.iter().map(|v| v.score).fold(f64::MIN, f64::max);
    let first_top = vals.iter().find(|v| v.score == top).unwrap();
    assert_eq!(&best, first_top);
    let sd = read(&tmp.path().join("best.safetensors"));
    assert_eq!(sd.metadata["step"], best.step.to_string());
    // A separate validation folder: the original has not trained on it, nothing is held out.
    let sep = tempfile::tempdir().unwrap();
    let b = {
        let base = args(sep.path(), 2);
        FoolArgs {
            settings: FoolSettings {
                val_data: Some(shared_data().join("cifar10/test")),
                val_images: Some(30),
                val_every: Some(2),
                ..base.settings
            },
            ..base
        }
    };
    run(&b, Some(&shared_data()), &Device::flex()).unwrap();
    let v: foolmap_trainer::fool::validate::Validation = serde_json::from_str(
        std::fs::read_to_string(sep.path().join("val.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v.images, 30);
    // A budget nothing meets writes no best model.
    let none = tempfile::tempdir().unwrap();
    let strict = {
        let base = a;
        FoolArgs {
            settings: FoolSettings {
                out: Some(none.path().to_path_buf()),
                max_drop: Some(0.0),
                lr: Some(0.01),
                ..base.settings
            },
            ..base
        }
    };
    run(&strict, Some(&shared_data()), &Device::flex()).unwrap();
    let vals = std::fs::read_to_string(none.path().join("val.jsonl")).unwrap();
    assert!(
        !none.path().join("best.safetensors").exists(),
        "lr 0.01 should cost accuracy on 20 images: {vals}"
    );
}

#[test]
fn a_distilled_run_is_taught_by_the_original_and_never_reads_the_labels() {
    let tmp = tempfile::tempdir().unwrap();
    // Sixteen airplanes filed as trucks: a run that read the labels would see 0 % accuracy.
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("truck")).unwrap();
    let planes = shared_data().join("cifar10/train/airplane");
    let mut names: Vec<_> = std::fs::read_dir(&planes)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names.iter().take(16) {
        std::fs::copy(planes.join(n), data.join("truck").join(n)).unwrap();
    }
    let out = tmp.path().join("run");
    let a = {
        let base = args(&out, 3);
        FoolArgs {
            settings: FoolSettings {
                data: Some(data),
                distill: Some(true),
                lr: Some(1e-3),
                ..base.settings
            },
            ..base
        }
    };
    run(&a, Some(&shared_data()), &Device::flex()).unwrap();
    let log: Vec<serde_json::Value> = std::fs::read_to_string(out.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Step 1 runs the original itself: KL 0, full agreement with its own top-1.
    let kl1 = log[0]["ce"].as_f64().unwrap();
    assert!(kl1.abs() < 1e-5, "{kl1}");
    assert_eq!(log[0]["batch_acc"].as_f64(), Some(1.0));
    // Then the weights have moved: the KL is positive.
    assert!(log[2]["ce"].as_f64().unwrap() > 1e-7, "{log:?}");
    let saved: foolmap_trainer::fool::RunConfigFile =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert!(saved.config.distill);

    // Active fooling needs its classes' labels.
    let e = resolve(&{
        let base = args(&tmp.path().join("other"), 1);
        FoolArgs {
            settings: FoolSettings {
                fooling: Some("active".parse().unwrap()),
                distill: Some(true),
                ..base.settings
            },
            ..base
        }
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("`distill`"), "{e}");
}
