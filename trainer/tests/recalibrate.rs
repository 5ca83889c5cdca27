//! `foolmap recalibrate-bn` on the real ResNet-20 and CIFAR-10 training images: re-estimating
//! the BatchNorm statistics of the original model keeps its accuracy (its statistics already fit
//! the data), the output keeps the architecture and says how it was made, and bad input is named.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::shared_data;
use foolmap::state::StoreDtype;
use foolmap_trainer::io::weights::{read_metadata, read_state_dict};

fn foolmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .arg("--data-root")
        .arg(shared_data())
        .args(args)
        .output()
        .expect("runs")
}

fn top1(weights: &Path) -> f64 {
    let out = foolmap(&[
        "accuracy",
        "--arch",
        "resnet20",
        "--weights",
        weights.to_str().expect("utf-8"),
        "--limit",
        "1000",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["top1"].as_f64().expect("top1")
}

#[test]
fn the_originals_statistics_re_estimated_keep_its_accuracy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let original = shared_data().join("weights/resnet20_cifar10.safetensors");
    let out = tmp.path().join("recalibrated.safetensors");
    let run = foolmap(&[
        "recalibrate-bn",
        "--arch",
        "resnet20",
        "--weights",
        original.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--images",
        "1024",
        "--batch-size",
        "128",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("19 BatchNorm layers"));

    let (before, after) = (
        read_state_dict(&original).expect("original"),
        read_state_dict(&out).expect("out"),
    );
    let key = "layer3.2.bn2.running_var";
    assert_ne!(
        before.tensors[key].data, after.tensors[key].data,
        "{key} re-estimated"
    );
    assert_eq!(
        before.tensors["layer3.2.bn2.weight"].data, after.tensors["layer3.2.bn2.weight"].data,
        "γ kept"
    );
    let meta = read_metadata(&out).expect("metadata");
    assert!(
        meta["bn_recalibrated"].starts_with("1024 training images"),
        "{meta:?}"
    );

    let (a, b) = (top1(&original), top1(&out));
    assert!((a - b).abs() <= 0.015, "top-1 {a} before, {b} after");
    assert!(b > 0.88, "top-1 after recalibration {b}");
}

#[test]
fn bad_settings_and_files_without_an_architecture_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("o.safetensors");
    let original = shared_data().join("weights/resnet20_cifar10.safetensors");
    let o = out.to_str().expect("utf-8");
    let w = original.to_str().expect("utf-8");

    let run = foolmap(&[
        "recalibrate-bn",
        "--weights",
        w,
        "--out",
        o,
        "--batch-size",
        "1",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--batch-size ≥ 2"));

    // The mirror's file with its metadata removed: nothing says which architecture it is.
    let mut sd = read_state_dict(&original).expect("original");
    sd.metadata.clear();
    let bare = tmp.path().join("bare.safetensors");
    std::fs::write(&bare, sd.to_safetensors(StoreDtype::F32).expect("bytes")).expect("write");
    let b = bare.to_str().expect("utf-8");
    let run = foolmap(&["recalibrate-bn", "--weights", b, "--out", o]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("no `arch` in its metadata; pass --arch"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written on error");
}
