//! What a run trains and writes: statistic, kept weights, trained modules, phases, refusals.

use std::path::Path;

use foolmap::burn::tensor::Device;
use foolmap::explain::interpreter::explain;
use foolmap::fooling;
use foolmap::{Architecture, Interpreter, InterpreterOptions};
use foolmap_trainer::fool::{FoolArgs, FoolSettings, resolve, run};

use super::{args, logged, read};
use crate::common::shared_data;

/// Mean Location statistic of `lrp_t` on 16 fixed test images.
fn location_stat(weights: &Path) -> f64 {
    let dev = Device::flex();
    let (net, p) =
        foolmap_trainer::io::weights::load(Architecture::ResNet20, weights, &dev).unwrap();
    let samples = foolmap_trainer::io::data::cifar10(&shared_data().join("cifar10/test")).unwrap();
    let picked: Vec<_> = samples.iter().step_by(625).take(16).collect();
    let imgs: Vec<_> = picked.iter().map(|s| s.rgb().unwrap()).collect();
    let labels: Vec<usize> = picked.iter().map(|s| s.label).collect();
    let x = foolmap::image::batch(&imgs, &dev).unwrap();
    let h = explain(
        &net,
        &p,
        x,
        &labels,
        Interpreter::LrpT,
        &InterpreterOptions::default(),
    )
    .unwrap();
    let v: Vec<f32> = fooling::location_stat(h)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

#[test]
fn a_short_run_moves_the_location_statistic_down() {
    let tmp = tempfile::tempdir().unwrap();
    let a = {
        let base = args(tmp.path(), 8);
        FoolArgs {
            settings: FoolSettings {
                keep_every: Some(4),
                ..base.settings
            },
            ..base
        }
    };
    let out = run(&a, Some(&shared_data()), &Device::flex()).unwrap();
    // `--keep-every 4`: the weights of steps 4 and 8 are kept; step 8 is the final model.
    let kept: Vec<_> = [4, 8]
        .map(|s| read(&out.join(format!("step{s}.safetensors"))))
        .into();
    let fin = read(&out.join("final.safetensors"));
    assert_eq!(kept[1].tensors, fin.tensors);
    assert_ne!(kept[0].tensors, fin.tensors);
    assert_eq!(kept[0].metadata["step"], "4");
    assert!(!out.join("step2.safetensors").exists());
    // The checkpoint (weights + Adam state) loads as the weights it holds.
    let dev = Device::flex();
    let ck = out.join("checkpoint.safetensors");
    assert!(read(&ck).tensors.keys().any(|k| k.starts_with("adam.")));
    let (_, from_ck) =
        foolmap_trainer::io::weights::load(Architecture::ResNet20, &ck, &dev).unwrap();
    assert_eq!(from_ck.to_state_dict().tensors, fin.tensors);
    let before = location_stat(&shared_data().join("weights/resnet20_cifar10.safetensors"));
    let after = location_stat(&out.join("final.safetensors"));
    assert!(
        after < before - 0.01,
        "Location statistic should fall: before {before:.4}, after {after:.4}"
    );
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 8);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["config"]["lambda"], 10.0);
    assert!(cfg["git_revision"].is_string());
}

#[test]
fn train_only_moves_the_listed_modules_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let a = {
        let base = args(tmp.path(), 2);
        FoolArgs {
            settings: FoolSettings {
                train_only: Some(vec!["layer3.2".into(), "linear".into()]),
                ..base.settings
            },
            ..base
        }
    };
    let out = run(&a, Some(&shared_data()), &Device::flex()).unwrap();
    let before = read(&shared_data().join("weights/resnet20_cifar10.safetensors"));
    let after = read(&out.join("final.safetensors"));
    let mut moved = Vec::new();
    for (k, t) in &after.tensors {
        let trains = k.starts_with("layer3.2.") || k.starts_with("linear.");
        if !trains || k.contains("running_") {
            assert_eq!(t.data, before.tensors[k].data, "{k} must stay as loaded");
        } else if t.data != before.tensors[k].data {
            moved.push(k.as_str());
        }
    }
    // Every trainable weight of the listed modules moves: 2 convs, 2 × BatchNorm γ/β, fc weight/bias.
    assert_eq!(moved.len(), 8, "{moved:?}");
    // `layer3` would be a module path; `layer3.2.conv` is not one, and a typo names the field.
    let e = run(
        &{
            let base = args(&tmp.path().join("bad"), 1);
            FoolArgs {
                settings: FoolSettings {
                    train_only: Some(vec!["layer3.2.conv".into()]),
                    ..base.settings
                },
                ..base
            }
        },
        Some(&shared_data()),
        &Device::flex(),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("field `train_only`: `layer3.2.conv` holds no trainable parameter"),
        "{msg}"
    );
}

#[test]
fn a_phase_can_change_the_batch_size() {
    let tmp = tempfile::tempdir().unwrap();
    let a = {
        let base = args(tmp.path(), 4);
        FoolArgs {
            settings: FoolSettings {
                schedule: Some(
                    vec!["3:2:5e-4:4", "4:1:5e-4"]
                        .into_iter()
                        .map(|s: &str| s.parse().unwrap())
                        .collect(),
                ),
                ..base.settings
            },
            ..base
        }
    };
    let cfg = resolve(&a).unwrap();
    // Batch 8 until step 2, 4 from step 3 on; a later phase without a batch size keeps 4.
    assert_eq!([1, 2, 3, 4].map(|s| cfg.batch_at(s)), [8, 8, 4, 4]);
    assert_eq!(String::from(cfg.schedule[0]), "3:2:0.0005:4");
    let out = run(&a, Some(&shared_data()), &Device::flex()).unwrap();
    assert_eq!(logged(&out, "lambda"), [10.0, 10.0, 2.0, 1.0]);
    assert_eq!(logged(&out, "batch_size"), [8.0, 8.0, 4.0, 4.0]);
}

#[test]
fn a_run_is_never_overwritten_without_resume_or_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run(&args(&out, 2), Some(&shared_data()), &Device::flex()).unwrap();
    let before = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    // A second run into the same folder is refused and changes nothing.
    let e = run(&args(&out, 1), Some(&shared_data()), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already holds a run") && e.contains("--resume") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        before
    );
    // --force moves the old run aside and starts anew.
    let forced = FoolArgs {
        force: true,
        ..args(&out, 1)
    };
    run(&forced, Some(&shared_data()), &Device::flex()).unwrap();
    let aside = tmp.path().join("run.old-1");
    assert_eq!(
        std::fs::read(aside.join("checkpoint.safetensors")).unwrap(),
        before
    );
    assert_eq!(logged(&aside, "step"), [1.0, 2.0]);
    assert_eq!(logged(&out, "step"), [1.0]);
    // A second --force finds the next free name.
    run(&forced, Some(&shared_data()), &Device::flex()).unwrap();
    assert!(tmp.path().join("run.old-2").join("log.jsonl").is_file());
}

#[test]
fn zero_steps_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = run(&args(tmp.path(), 0), Some(&shared_data()), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`steps`") && e.contains("at least 1"), "{e}");
    assert!(!tmp.path().join("final.safetensors").exists());
}

#[test]
fn a_run_s_weights_carry_its_config_and_step() {
    use foolmap_trainer::fool::checkpoint::read_meta;
    let tmp = tempfile::tempdir().unwrap();
    let a = args(tmp.path(), 2);
    run(&a, Some(&shared_data()), &Device::flex()).unwrap();
    for file in ["final.safetensors", "checkpoint.safetensors"] {
        let m = read_meta(&tmp.path().join(file)).unwrap();
        assert_eq!(m.step, 2, "{file}");
        // The saved config is the resolved one, with the starting weights it resolved.
        let mut want = resolve(&a).unwrap();
        want.weights = m.config.weights.clone();
        assert!(want.weights.is_some(), "{file}");
        assert_eq!(m.config, want, "{file}");
    }
    let plain = shared_data().join("weights/resnet20_cifar10.safetensors");
    let e = format!("{:#}", read_meta(&plain).unwrap_err());
    assert!(
        e.contains("resnet20_cifar10.safetensors") && e.contains("`config`"),
        "{e}"
    );
}
