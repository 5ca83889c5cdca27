//! The fooling trainer on real data (CIFAR-10 ResNet-20 from the data mirror), kept short:
//! a run moves the statistic in the fooled direction; resume ≡ uninterrupted; a NaN loss stops
//! the run and keeps the last good checkpoint; malformed configs name the field.

use std::path::{Path, PathBuf};

use foolmap::burn::tensor::Device;
use foolmap::explain::interpreter::explain;
use foolmap::fooling;
use foolmap::{Architecture, Interpreter, InterpreterOptions, StateDict};
use foolmap_trainer::fool::{FoolArgs, resolve, run};

fn shared_data() -> PathBuf {
    std::env::var("FOOLMAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data")
}

fn args(out: &Path, steps: u64) -> FoolArgs {
    FoolArgs {
        arch: Some("resnet20".into()),
        fooling: Some("location".into()),
        interpreter: Some("lrp_t".into()),
        steps: Some(steps),
        batch_size: Some(8),
        checkpoint_every: Some(2),
        lr: Some(1e-3),
        lambda: Some(10.0),
        out: Some(out.to_path_buf()),
        quiet: true,
        ..FoolArgs::default()
    }
}

fn read(p: &Path) -> StateDict {
    StateDict::from_safetensors(&std::fs::read(p).unwrap(), "t").unwrap()
}

/// Mean Location statistic of `lrp_t` on 16 fixed test images.
fn location_stat(weights: &Path) -> f64 {
    let dev = Device::flex();
    let (net, p) = foolmap_trainer::weights::load(Architecture::ResNet20, weights, &dev).unwrap();
    let samples = foolmap_trainer::data::cifar10(&shared_data().join("cifar10/test")).unwrap();
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
    let out = run(&args(tmp.path(), 8), Some(&shared_data()), &Device::flex()).unwrap();
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
fn resume_is_bit_for_bit_the_uninterrupted_run() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    run(&args(a.path(), 4), Some(&shared_data()), &Device::flex()).unwrap();
    run(&args(b.path(), 2), Some(&shared_data()), &Device::flex()).unwrap();
    let resumed = FoolArgs {
        resume: true,
        ..args(b.path(), 4)
    };
    run(&resumed, Some(&shared_data()), &Device::flex()).unwrap();
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
fn nan_loss_stops_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    run(&args(tmp.path(), 2), Some(&shared_data()), &Device::flex()).unwrap();
    let ck = tmp.path().join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    std::fs::remove_file(tmp.path().join("final.safetensors")).unwrap();
    // An absurd learning rate blows the weights up after one more step.
    let blow = FoolArgs {
        resume: true,
        lr: Some(1e30),
        ..args(tmp.path(), 6)
    };
    let e = run(&blow, Some(&shared_data()), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("loss became") && e.contains("last good checkpoint") && e.contains("step 2"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the good checkpoint was overwritten"
    );
    assert!(!tmp.path().join("final.safetensors").exists());
}

#[test]
fn malformed_configs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("lamda = 2.0\n", "unknown field `lamda`"),
        ("lr = \"fast\"\n", "field `lr` must be a number"),
        ("fooling = \"frame\"\n", "config field `fooling`"),
        ("interpreter = \"lrp\"\n", "cannot be fooled"),
        ("steps = [1\n", "TOML parse error"),
        ("c1 = 12\n", "field `c1`"),
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
        arch: Some("resnet50".into()),
        interpreter: Some("grad_cam".into()),
        fooling: Some("topk".into()),
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
        let a = FoolArgs {
            fooling: Some("topk".into()),
            weights: Some(fooled.clone()),
            original,
            ..args(&out, 1)
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
    let missing = FoolArgs {
        fooling: Some("topk".into()),
        original: Some(tmp.path().join("nope.safetensors")),
        ..args(&tmp.path().join("missing"), 1)
    };
    let e = format!(
        "{:#}",
        run(&missing, Some(&shared_data()), &Device::flex()).unwrap_err()
    );
    assert!(e.contains("nope.safetensors"), "{e}");
}
