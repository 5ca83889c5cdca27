//! The fooling trainer on real data (CIFAR-10 ResNet-20 from the data mirror), kept short:
//! a run moves the statistic in the fooled direction; resume ≡ uninterrupted; a NaN loss stops
//! the run and keeps the last good checkpoint; malformed configs name the field.

mod common;

use std::path::{Path, PathBuf};

use common::shared_data;
use foolmap::burn::tensor::Device;
use foolmap::explain::interpreter::explain;
use foolmap::fooling;
use foolmap::{Architecture, Interpreter, InterpreterOptions, StateDict};
use foolmap_trainer::fool::{FoolArgs, FoolSettings, resolve, run};

fn args(out: &Path, steps: u64) -> FoolArgs {
    FoolArgs {
        quiet: true,
        settings: FoolSettings {
            arch: Some("resnet20".parse().unwrap()),
            fooling: Some("location".parse().unwrap()),
            interpreter: Some("lrp_t".parse().unwrap()),
            steps: Some(steps),
            batch_size: Some(8),
            checkpoint_every: Some(2),
            lr: Some(1e-3),
            lambda: Some(10.0),
            out: Some(out.to_path_buf()),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    }
}

fn read(p: &Path) -> StateDict {
    StateDict::from_safetensors(&std::fs::read(p).unwrap(), "t").unwrap()
}

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

/// A second phase from step 3 on: λ 2, lr 5e-4.
fn with_schedule(a: FoolArgs) -> FoolArgs {
    {
        let base = a;
        FoolArgs {
            settings: FoolSettings {
                schedule: Some(
                    vec!["3:2:5e-4"]
                        .into_iter()
                        .map(|s: &str| s.parse().unwrap())
                        .collect(),
                ),
                ..base.settings
            },
            ..base
        }
    }
}

/// One field of every line of a run's `log.jsonl`.
fn logged(out: &Path, field: &str) -> Vec<f64> {
    std::fs::read_to_string(out.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()[field]
                .as_f64()
                .unwrap()
        })
        .collect()
}

#[test]
fn resume_is_bit_for_bit_the_uninterrupted_run() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let resumed = FoolArgs {
        resume: true,
        ..args(b.path(), 4)
    };
    let (a_args, b_args, b_resumed) = (
        with_schedule(args(a.path(), 4)),
        with_schedule(args(b.path(), 2)),
        with_schedule(resumed),
    );
    run(&a_args, Some(&shared_data()), &Device::flex()).unwrap();
    run(&b_args, Some(&shared_data()), &Device::flex()).unwrap();
    run(&b_resumed, Some(&shared_data()), &Device::flex()).unwrap();
    // The phase that starts at step 3 (after the interruption) was applied on resume too.
    assert_eq!(logged(b.path(), "lambda"), [10.0, 10.0, 2.0, 2.0]);
    assert_eq!(logged(a.path(), "lr"), [1e-3, 1e-3, 5e-4, 5e-4]);
    let (fa, fb) = (
        read(&a.path().join("final.safetensors")),
        read(&b.path().join("final.safetensors")),
    );
    assert_eq!(
        fa.tensors, fb.tensors,
        "resumed weights differ from the uninterrupted run"
    );
}

#[test]
fn resume_with_only_the_folder_continues_the_runs_own_config() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let seeded = |x: FoolArgs| {
        let base = with_schedule(x);
        FoolArgs {
            settings: FoolSettings {
                seed: Some(7),
                ..base.settings
            },
            ..base
        }
    };
    run(
        &seeded(args(a.path(), 4)),
        Some(&shared_data()),
        &Device::flex(),
    )
    .unwrap();
    run(
        &seeded(args(b.path(), 2)),
        Some(&shared_data()),
        &Device::flex(),
    )
    .unwrap();
    // Only the folder and a new end: λ, lr, the schedule, the seed, the batch size and the
    // interpreter come from the checkpoint, not from the defaults (λ 3, lr 1e-4, batch 32).
    let bare = FoolArgs {
        resume: true,
        quiet: true,
        settings: FoolSettings {
            out: Some(b.path().to_path_buf()),
            steps: Some(4),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    };
    run(&bare, Some(&shared_data()), &Device::flex()).unwrap();
    assert_eq!(logged(b.path(), "lambda"), [10.0, 10.0, 2.0, 2.0]);
    assert_eq!(
        read(&a.path().join("final.safetensors")).tensors,
        read(&b.path().join("final.safetensors")).tensors,
        "a bare --resume did not continue the run it was pointed at"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["config"]["seed"], 7);
    assert_eq!(cfg["config"]["batch_size"], 8);
    // Without a folder there is nothing to resume.
    let lost = FoolArgs {
        resume: true,
        ..FoolArgs::default()
    };
    let e = resolve(&lost).unwrap_err().to_string();
    assert!(e.contains("--resume needs the run's folder"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = format!(
        "{:#}",
        resolve(&{
            let base = lost;
            FoolArgs {
                settings: FoolSettings {
                    out: Some(empty.path().to_path_buf()),
                    ..base.settings
                },
                ..base
            }
        })
        .unwrap_err()
    );
    assert!(e.contains("no checkpoint at"), "{e}");
}

/// A 2-step run resumed to 6 steps with learning rate `lr`: the error, and whether the good
/// checkpoint and the absence of final weights survived it.
fn resume_with_lr(lr: f64) -> (String, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    run(&args(tmp.path(), 2), Some(&shared_data()), &Device::flex()).unwrap();
    let ck = tmp.path().join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    std::fs::remove_file(tmp.path().join("final.safetensors")).unwrap();
    let blow = {
        let base = args(tmp.path(), 6);
        FoolArgs {
            resume: true,
            settings: FoolSettings {
                lr: Some(lr),
                ..base.settings
            },
            ..base
        }
    };
    let e = run(&blow, Some(&shared_data()), &Device::flex())
        .unwrap_err()
        .to_string();
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the good checkpoint was overwritten"
    );
    assert!(!tmp.path().join("final.safetensors").exists());
    (e, tmp)
}

#[test]
fn nan_loss_stops_and_keeps_the_last_good_checkpoint() {
    // An absurd learning rate blows the weights up after one more step.
    let (e, _tmp) = resume_with_lr(1e30);
    assert!(
        e.contains("loss became") && e.contains("last good checkpoint") && e.contains("step 2"),
        "{e}"
    );
}

#[test]
fn a_step_that_makes_a_weight_non_finite_stops_before_writing_it() {
    // The loss of step 3 is finite; an f32-overflowing learning rate makes its update ±Inf/NaN.
    let (e, tmp) = resume_with_lr(1e300);
    assert!(
        e.contains("step 3 made parameter `")
            && e.contains("last good checkpoint")
            && e.contains("(step 2)"),
        "{e}"
    );
    let log = std::fs::read_to_string(tmp.path().join("log.jsonl")).unwrap();
    assert!(
        !log.contains("\"step\":3"),
        "the bad step was logged: {log}"
    );
}

#[test]
fn malformed_configs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("lamda = 2.0\n", "unknown field `lamda`"),
        (
            "distill = 1\n",
            "field `distill`: invalid type: integer `1`, expected a boolean (line 1, column 11)",
        ),
        (
            "lr = \"fast\"\n",
            "field `lr`: invalid type: string \"fast\"",
        ),
        (
            "fooling = \"frame\"\n",
            "field `fooling`: unknown fooling type",
        ),
        ("interpreter = \"lrp\"\n", "cannot be fooled"),
        ("steps = [1\n", "TOML parse error"),
        ("c1 = 12\n", "field `c1`"),
        (
            "schedule = [\"800:2\"]\n",
            "field `schedule[0]`: `800:2`: expected STEP:LAMBDA:LR[:BATCH]",
        ),
        ("schedule = 3\n", "field `schedule`"),
        (
            "schedule = [\"800:2:1e-5\", \"500:1:1e-5\"]\n",
            "phase `500:1:0.00001`: phases must start at increasing steps",
        ),
        ("schedule = [\"800:-1:1e-5\"]\n", "lambda"),
        (
            "schedule = [\"800:1:0\"]\n",
            "learning rate must be a positive number",
        ),
        (
            "schedule = [\"800:1:1e-5:0\"]\n",
            "phase `800:1:0.00001:0`: the batch size must be ≥ 1",
        ),
        ("schedule = [\"800:1:1e-5:32:9\"]\n", "field `schedule[0]`"),
        ("max_drop = -0.5\n", "field `max_drop`"),
        ("val_every = 10\nval_images = 0\n", "`val_images` ≥ 1"),
        (
            "train_only = \"linear\"\n",
            "field `train_only`: invalid type: string \"linear\", expected a sequence",
        ),
    ] {
        let f = tmp.path().join("run.toml");
        std::fs::write(&f, text).unwrap();
        let e = resolve(&FoolArgs {
            config: Some(f),
            ..FoolArgs::default()
        })
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
    // Flags override the file and defaults follow spec §6 where the paper has them.
    let c = resolve(&FoolArgs {
        settings: FoolSettings {
            arch: Some("resnet50".parse().unwrap()),
            interpreter: Some("grad_cam".parse().unwrap()),
            fooling: Some("topk".parse().unwrap()),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    })
    .unwrap();
    assert_eq!((c.lr, c.lambda), (3e-6, 6.0));
}

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
fn resume_drops_the_log_lines_of_the_steps_it_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    run(&args(tmp.path(), 2), Some(&shared_data()), &Device::flex()).unwrap();
    // A process killed after step 3, whose last checkpoint was step 2, left this behind.
    let log = tmp.path().join("log.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"step\":3,\"total\":1.0}\n");
    std::fs::write(&log, text).unwrap();
    let resumed = FoolArgs {
        resume: true,
        ..args(tmp.path(), 4)
    };
    run(&resumed, Some(&shared_data()), &Device::flex()).unwrap();
    assert_eq!(logged(tmp.path(), "step"), [1.0, 2.0, 3.0, 4.0]);
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

#[test]
fn flags_and_config_files_parse_into_the_same_typed_layer() {
    use clap::Parser;
    use foolmap::fooling::FoolingType;
    use foolmap::{Architecture, Interpreter};
    use foolmap_trainer::{Cli, Command};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.display().to_string();
    let cli = Cli::try_parse_from([
        "foolmap",
        "fool",
        "--arch",
        "resnet56",
        "--fooling",
        "topk",
        "--interpreter",
        "grad_cam",
        "--then",
        "800:2:5e-5",
        "--then",
        "900:1:1e-5:16",
        "--distill",
        "--train-only",
        "layer3.2,linear",
        "--steps",
        "1000",
        "--out",
        &out_s,
    ])
    .unwrap();
    let Command::Fool(a) = cli.command else {
        panic!("not the fool command")
    };
    let s = &a.settings;
    assert_eq!(
        (s.arch, s.fooling, s.interpreter, s.distill),
        (
            Some(Architecture::ResNet56),
            Some(FoolingType::TopK),
            Some(Interpreter::GradCam),
            Some(true)
        )
    );
    assert_eq!(
        s.train_only.as_deref(),
        Some(&["layer3.2".to_string(), "linear".to_string()][..])
    );
    let f = tmp.path().join("run.toml");
    std::fs::write(
        &f,
        format!(
            "arch = \"resnet56\"\nfooling = \"topk\"\ninterpreter = \"grad_cam\"\n\
             schedule = [\"800:2:5e-5\", \"900:1:1e-5:16\"]\ndistill = true\n\
             train_only = [\"layer3.2\", \"linear\"]\nsteps = 1000\nout = {:?}\n",
            out_s
        ),
    )
    .unwrap();
    let from_file = resolve(&FoolArgs {
        config: Some(f),
        ..FoolArgs::default()
    })
    .unwrap();
    assert_eq!(from_file, resolve(&a).unwrap());
    assert_eq!(from_file.schedule[1].batch_size, Some(16));
    // A bad flag value is refused by the parser, naming the flag and the registry's choices.
    for (argv, needles) in [
        (
            &["foolmap", "fool", "--fooling", "frame"][..],
            &["--fooling", "unknown fooling type"][..],
        ),
        (
            &["foolmap", "fool", "--then", "800:2"],
            &["--then", "expected STEP:LAMBDA:LR[:BATCH]"],
        ),
        (&["foolmap", "fool", "--distill", "maybe"], &["--distill"]),
    ] {
        let e = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(needles.iter().all(|n| e.contains(n)), "{argv:?}: {e}");
    }
}

#[test]
fn a_resolved_config_written_as_toml_resolves_to_itself() {
    // Every field of the resolved config is a field of the settings layer (which refuses unknown
    // fields), with the same meaning: resolving the written file gives the same config back.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = resolve(&FoolArgs {
        settings: FoolSettings {
            arch: Some("squeezenet1_0".parse().unwrap()),
            weights: Some(tmp.path().join("w.safetensors")),
            original: Some(tmp.path().join("o.safetensors")),
            val_data: Some(tmp.path().join("val")),
            schedule: Some(vec!["5:1:1e-5:4".parse().unwrap()]),
            train_only: Some(vec!["classifier".into()]),
            distill: Some(true),
            keep_every: Some(3),
            val_every: Some(2),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    })
    .unwrap();
    let f = tmp.path().join("resolved.toml");
    std::fs::write(&f, toml::to_string(&cfg).unwrap()).unwrap();
    let back = resolve(&FoolArgs {
        config: Some(f),
        ..FoolArgs::default()
    })
    .unwrap();
    assert_eq!(back, cfg);
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
