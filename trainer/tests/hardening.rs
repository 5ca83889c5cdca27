//! Bad input and interrupted writes: nothing already written is lost, no temporary file is left
//! behind, special files in data folders are skipped instead of hanging, zero counts are refused.

mod common;

use std::process::Command;

use foolmap_trainer::io::atomic::write_atomic;

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.json");
    write_atomic(&f, b"old").unwrap();
    // The target is a non-empty folder: the rename fails.
    let d = tmp.path().join("folder");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("x"), b"x").unwrap();
    let e = format!("{:#}", write_atomic(&d, b"new").unwrap_err());
    assert!(e.contains("folder"), "{e}");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    assert_eq!(std::fs::read(&f).unwrap(), b"old");
}

#[test]
fn concurrent_atomic_writes_never_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("shared.bin");
    let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 200_000]).collect();
    std::thread::scope(|s| {
        for p in &payloads {
            let f = f.clone();
            s.spawn(move || {
                for _ in 0..5 {
                    write_atomic(&f, p).unwrap();
                }
            });
        }
    });
    let got = std::fs::read(&f).unwrap();
    assert!(payloads.contains(&got), "the file holds a mix of writes");
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn a_fifo_in_a_data_folder_is_skipped_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = tmp.path().join("cat");
    std::fs::create_dir(&cat).unwrap();
    let png = common::shared_data().join("cifar10/test/cat");
    let first = std::fs::read_dir(&png)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .min()
        .unwrap();
    std::fs::copy(&first, cat.join("real.png")).unwrap();
    let ok = Command::new("mkfifo")
        .arg(cat.join("fifo.png"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let samples = foolmap_trainer::io::data::cifar10(tmp.path()).unwrap();
    assert_eq!(samples.len(), 1);
    assert!(samples[0].name().contains("real"));
}

#[test]
fn zero_counts_are_refused_by_name() {
    let data = common::shared_data();
    let img = data.join("photos/cat.png");
    for args in [
        vec![
            "predict",
            "--arch",
            "resnet20",
            "--top",
            "0",
            img.to_str().unwrap(),
        ],
        vec!["accuracy", "--arch", "resnet20", "--limit", "0"],
        vec!["eval", "--fooled", "x.safetensors", "--limit", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_foolmap"))
            .arg("--data-root")
            .arg(&data)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains("at least 1"), "{args:?}: {err}");
    }
}

#[test]
fn a_checkpoint_with_a_bad_optimizer_moment_is_an_error_not_a_panic() {
    use foolmap::state::{StateDict, StoreDtype, TensorRecord};
    use foolmap_trainer::fool::{FoolArgs, FoolSettings, run};
    let tmp = tempfile::tempdir().unwrap();
    let args = |steps: u64, resume: bool| FoolArgs {
        quiet: true,
        resume,
        settings: FoolSettings {
            arch: Some("resnet20".parse().unwrap()),
            fooling: Some("location".parse().unwrap()),
            interpreter: Some("grad_cam".parse().unwrap()),
            steps: Some(steps),
            batch_size: Some(4),
            checkpoint_every: Some(1),
            out: Some(tmp.path().to_path_buf()),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    };
    let dev = foolmap::burn::tensor::Device::flex();
    run(&args(1, false), Some(&common::shared_data()), &dev).unwrap();
    let ck = tmp.path().join("checkpoint.safetensors");
    let mut sd = StateDict::from_safetensors(&std::fs::read(&ck).unwrap(), "ck").unwrap();
    let key = sd
        .tensors
        .keys()
        .find(|k| k.starts_with("adam.m."))
        .cloned()
        .unwrap();
    sd.insert(
        key.clone(),
        TensorRecord::new(vec![3], vec![0.0; 3]).unwrap(),
    );
    std::fs::write(&ck, sd.to_safetensors(StoreDtype::F32).unwrap()).unwrap();
    let e = format!(
        "{:#}",
        run(&args(2, true), Some(&common::shared_data()), &dev).unwrap_err()
    );
    assert!(
        e.contains(&key) && e.contains("checkpoint.safetensors"),
        "{e}"
    );
}

#[test]
fn weights_holding_nan_are_refused_naming_the_tensor() {
    use foolmap::state::{StateDict, StoreDtype};
    let tmp = tempfile::tempdir().unwrap();
    let src = common::resnet20_weights();
    let mut sd = StateDict::from_safetensors(&std::fs::read(&src).unwrap(), "w").unwrap();
    sd.tensors.get_mut("layer2.0.conv1.weight").unwrap().data[5] = f32::NAN;
    let bad = tmp.path().join("nan.safetensors");
    std::fs::write(&bad, sd.to_safetensors(StoreDtype::F32).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .args(["predict", "--arch", "resnet20", "--weights"])
        .arg(&bad)
        .arg(common::shared_data().join("photos/cat.png"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("layer2.0.conv1.weight") && err.contains("non-finite"),
        "{err}"
    );
}

/// Official-format batch bytes: per record a label byte and 3,072 pixel bytes (R plane, G, B).
fn batch(records: &[(u8, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(label, seed) in records {
        out.push(label);
        out.extend((0..3072u32).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(label)));
    }
    out
}

#[test]
fn fetched_cifar_batches_become_the_layout_every_command_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let bins = tmp.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&bins).unwrap();
    for i in 1..=5u8 {
        std::fs::write(
            bins.join(format!("data_batch_{i}.bin")),
            batch(&[(i, 3), (9, i + 10)]),
        )
        .unwrap();
    }
    std::fs::write(
        bins.join("test_batch.bin"),
        batch(&[(0, 7), (3, 11), (3, 13)]),
    )
    .unwrap();
    let cifar = tmp.path().join("cifar10");
    let (train, test) = foolmap_trainer::io::data::cifar_bin_to_folders(&bins, &cifar).unwrap();
    assert_eq!((train, test), (10, 3));
    let tr = foolmap_trainer::io::data::cifar10(&cifar.join("train")).unwrap();
    let te = foolmap_trainer::io::data::cifar10(&cifar.join("test")).unwrap();
    assert_eq!((tr.len(), te.len()), (10, 3));
    // Training images come from the training batches only, test images from the test batch.
    assert_eq!(tr.iter().filter(|s| s.label == 9).count(), 5);
    assert!(
        tr.iter().all(|s| s.name().starts_with("data_batch_")),
        "{:?}",
        tr[0].name()
    );
    assert!(te.iter().all(|s| s.name().starts_with("test_batch_")));
    let mut labels: Vec<usize> = te.iter().map(|s| s.label).collect();
    labels.sort();
    assert_eq!(labels, [0, 3, 3]);
    // Pixels survive the PNG round trip (CHW planes → HWC).
    let expected = foolmap_trainer::io::data::cifar_bin(&bins.join("test_batch.bin")).unwrap();
    let first = te.iter().find(|s| s.label == 0).unwrap();
    assert_eq!(first.rgb().unwrap().data, expected[0].rgb().unwrap().data);
    // A second conversion finds both folders and changes nothing.
    assert_eq!(
        foolmap_trainer::io::data::cifar_bin_to_folders(&bins, &cifar).unwrap(),
        (0, 0)
    );
}

#[test]
fn a_truncated_batch_leaves_no_half_converted_split() {
    let tmp = tempfile::tempdir().unwrap();
    let bins = tmp.path().join("bins");
    std::fs::create_dir_all(&bins).unwrap();
    for i in 1..=5u8 {
        let mut b = batch(&[(1, i)]);
        if i == 4 {
            b.truncate(100);
        }
        std::fs::write(bins.join(format!("data_batch_{i}.bin")), b).unwrap();
    }
    let cifar = tmp.path().join("cifar10");
    let e = format!(
        "{:#}",
        foolmap_trainer::io::data::cifar_bin_to_folders(&bins, &cifar).unwrap_err()
    );
    assert!(e.contains("data_batch_4.bin"), "{e}");
    assert!(
        !cifar.join("train").exists(),
        "a half-filled train/ was left"
    );
}

#[test]
fn a_pytorch_checkpoint_larger_than_its_architecture_is_refused_from_its_headers() {
    use foolmap::Architecture;
    use foolmap_trainer::io::weights::{read_for, read_state_dict_within};
    let pth = common::repo().join("tests/data/tiny_resnet.pth");
    let whole = read_state_dict_within(&pth, None).unwrap();
    let n: usize = whole.tensors.values().map(|t| t.data.len()).sum();
    // Exactly the values it holds fit; one fewer is refused, naming the file and the budget.
    assert!(read_state_dict_within(&pth, Some((Architecture::ResNet20, n))).is_ok());
    let e = format!(
        "{:#}",
        read_state_dict_within(&pth, Some((Architecture::ResNet20, n - 1))).unwrap_err()
    );
    assert!(
        e.contains("tiny_resnet.pth") && e.contains(&format!("more than {}", n - 1)),
        "{e}"
    );
    // The architecture's own budget admits its real checkpoint.
    let real = common::shared_data().join("weights/resnet20-12fca82f.th");
    assert!(read_for(Architecture::ResNet20, &real).is_ok());
}

#[test]
fn the_checkpoint_pins_are_the_mirror_tensors_and_the_published_file_converts_to_them() {
    use foolmap_trainer::io::fetch::{Sources, tensor_sha256};
    let weights = common::shared_data().join("weights");
    let th = foolmap_trainer::io::weights::read_state_dict(&weights.join("resnet20-12fca82f.th"))
        .unwrap();
    let st = foolmap_trainer::io::weights::read_state_dict(
        &weights.join("resnet20_cifar10.safetensors"),
    )
    .unwrap();
    assert_eq!(tensor_sha256(&th), tensor_sha256(&st));
    let official = Sources::official();
    assert_eq!(
        official
            .weights
            .iter()
            .find(|(a, _)| *a == foolmap::Architecture::ResNet20)
            .and_then(|(_, s)| s.sha256.as_deref()),
        Some(
            foolmap_trainer::io::hash::sha256_bytes(
                &std::fs::read(weights.join("resnet20-12fca82f.th")).unwrap()
            )
            .as_str()
        ),
        "the published ResNet-20 file is pinned in full"
    );
    assert_eq!(
        official.labels.sha256.as_deref(),
        Some(
            foolmap_trainer::io::hash::sha256_bytes(
                &std::fs::read(common::shared_data().join("labels/imagenet-simple-labels.json"))
                    .unwrap()
            )
            .as_str()
        )
    );
    for (arch, src) in official.weights {
        let file = weights.join(arch.weights_file().unwrap());
        let sd = foolmap_trainer::io::weights::read_state_dict(&file).unwrap();
        println!("{arch}: {}", tensor_sha256(&sd));
        if let Some(want) = &src.tensors {
            assert_eq!(&tensor_sha256(&sd), want, "{arch}");
        }
        assert!(src.url.starts_with("https://"), "{}", src.url);
    }
}

#[test]
fn huge_integer_flags_neither_wrap_nor_allocate() {
    let bin = env!("CARGO_BIN_EXE_foolmap");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = Command::new(bin)
        .args(["fool", "--batch-size", "18446744073709551615", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("above the limit of 1024") && !e.contains("-1"),
        "{e}"
    );
    let o = Command::new(bin)
        .args(["fool", "--then", "1:1:1e-4:5000", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("5000"));
    assert!(!out.join("final.safetensors").exists());
}
