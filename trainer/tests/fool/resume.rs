//! `--resume`: bit-for-bit, from the folder alone, log trimmed; stops keep the good checkpoint.

use foolmap::burn::tensor::Device;
use foolmap_trainer::fool::{FoolArgs, FoolSettings, resolve, run};

use super::{args, logged, read};
use crate::common::shared_data;

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
