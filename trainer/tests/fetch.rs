//! The download path of a user without the mirror, offline: a local HTTP server on 127.0.0.1
//! serves files in the official formats (a small CIFAR-10 binary archive, the labels, the
//! published ResNet-20 checkpoint) at the official paths; `data fetch` → `accuracy` → `fool` →
//! `eval` run on what it wrote; a corrupted download is refused and the next fetch repairs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{serve_files, shared_data};
use foolmap::Architecture;
use foolmap_trainer::io::fetch::{Sources, fetch_from, tensor_sha256};
use foolmap_trainer::io::hash::sha256_bytes;

/// One CIFAR-10 binary record per image: label byte, then the R, G and B planes.
fn records(images: &[(usize, PathBuf)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (label, path) in images {
        let img = foolmap::image::decode(&std::fs::read(path).unwrap(), "png").unwrap();
        out.push(*label as u8);
        for c in 0..3 {
            out.extend(img.data.chunks(3).map(|px| px[c]));
        }
    }
    out
}

/// `n` mirror images of every class from `split`.
fn mirror_images(split: &str, n: usize) -> Vec<(usize, PathBuf)> {
    let names = foolmap::labels::names(foolmap::Dataset::Cifar10, None);
    let mut v = Vec::new();
    for (label, name) in names.iter().enumerate() {
        let dir = shared_data().join("cifar10").join(split).join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        v.extend(files.into_iter().take(n).map(|f| (label, f)));
    }
    v
}

/// Writes the official files under `root` at the official URL paths; returns the archive's hash.
fn official_files(root: &Path, sources: &Sources) -> String {
    let at = |url: &str| root.join(url.split_once("://").unwrap().1.split_once('/').unwrap().1);
    let stage = root.join("stage/cifar-10-batches-bin");
    std::fs::create_dir_all(&stage).unwrap();
    let train = mirror_images("train", 1);
    for i in 1..=5 {
        // Two images per batch: ten in all, one per class.
        let part = &train[(i - 1) * 2..i * 2];
        std::fs::write(stage.join(format!("data_batch_{i}.bin")), records(part)).unwrap();
    }
    std::fs::write(
        stage.join("test_batch.bin"),
        records(&mirror_images("test", 2)),
    )
    .unwrap();
    let tgz = at(&sources.cifar.url);
    std::fs::create_dir_all(tgz.parent().unwrap()).unwrap();
    let ok = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(root.join("stage"))
        .arg("cifar-10-batches-bin")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let labels = at(&sources.labels.url);
    std::fs::create_dir_all(labels.parent().unwrap()).unwrap();
    std::fs::copy(
        shared_data().join("labels/imagenet-simple-labels.json"),
        &labels,
    )
    .unwrap();
    let th = at(&sources.weights[0].1.url);
    std::fs::create_dir_all(th.parent().unwrap()).unwrap();
    std::fs::copy(shared_data().join("weights/resnet20-12fca82f.th"), &th).unwrap();
    sha256_bytes(&std::fs::read(&tgz).unwrap())
}

fn foolmap(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .arg("--data-root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fetch_from_a_local_server_gives_a_data_root_every_command_runs_on() {
    let served = tempfile::tempdir().unwrap();
    let base = serve_files(served.path().to_path_buf()).base;
    let mut sources = Sources::official().with_base(&base).unwrap();
    sources
        .weights
        .retain(|(a, _)| *a == Architecture::ResNet20);
    // The real labels and checkpoint keep their official pins; the small archive gets its own.
    let archive = official_files(served.path(), &sources);
    sources.cifar.sha256 = Some(archive);

    let dest = tempfile::tempdir().unwrap();
    let root = dest.path().join("data");
    fetch_from(&sources, &root).unwrap();
    let train = foolmap_trainer::io::data::cifar10(&root.join("cifar10/train")).unwrap();
    let test = foolmap_trainer::io::data::cifar10(&root.join("cifar10/test")).unwrap();
    assert_eq!((train.len(), test.len()), (10, 20));
    assert!(train.iter().all(|s| s.name().starts_with("data_batch_")));
    assert!(test.iter().all(|s| s.name().starts_with("test_batch_")));
    let w = root.join("weights/resnet20_cifar10.safetensors");
    let mirror = foolmap_trainer::io::weights::read_state_dict(
        &shared_data().join("weights/resnet20_cifar10.safetensors"),
    )
    .unwrap();
    assert_eq!(
        tensor_sha256(&foolmap_trainer::io::weights::read_state_dict(&w).unwrap()),
        tensor_sha256(&mirror)
    );
    // No temporary files are left.
    let leftovers: Vec<_> = std::fs::read_dir(root.join("weights"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n.ends_with(".th"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Every command runs on the fetched root.
    let r = root.to_str().unwrap();
    let out = foolmap(&root, &["accuracy", "--arch", "resnet20", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 20, "{v}");
    let run = dest.path().join("run");
    let out = foolmap(
        &root,
        &[
            "fool",
            "--arch",
            "resnet20",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fooled = run.join("final.safetensors");
    let out = foolmap(
        &root,
        &[
            "eval",
            "--fooled",
            fooled.to_str().unwrap(),
            "--interpreters",
            "grad_cam",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{r}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 20);

    // A corrupted download is refused and leaves nothing in place …
    let th = served
        .path()
        .join("akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet20-12fca82f.th");
    let good = std::fs::read(&th).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&th, &bad).unwrap();
    std::fs::remove_file(&w).unwrap();
    let e = format!("{:#}", fetch_from(&sources, &root).unwrap_err());
    assert!(
        e.contains("resnet20-12fca82f.th") && e.contains("does not match"),
        "{e}"
    );
    assert!(!w.exists());
    // … and the next fetch repairs it.
    std::fs::write(&th, &good).unwrap();
    fetch_from(&sources, &root).unwrap();
    assert!(w.is_file());
    // A damaged weights file on disk is noticed and downloaded again.
    let mut damaged = std::fs::read(&w).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    std::fs::write(&w, &damaged).unwrap();
    fetch_from(&sources, &root).unwrap();
    assert_eq!(
        tensor_sha256(&foolmap_trainer::io::weights::read_state_dict(&w).unwrap()),
        tensor_sha256(&mirror)
    );
}

#[test]
fn plain_http_is_refused_except_to_this_machine() {
    let e = format!(
        "{:#}",
        Sources::official()
            .with_base("http://example.org")
            .unwrap_err()
    );
    assert!(e.contains("HTTPS"), "{e}");
    assert!(Sources::official().with_base("http://127.0.0.1:9").is_ok());
    assert!(
        Sources::official()
            .with_base("https://mirror.example.org")
            .is_ok()
    );
}
