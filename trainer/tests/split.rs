//! The selection / report split of the CIFAR-10 test set: the committed file is the rule applied
//! to the real test images (stable), it is class-stratified, disjoint and complete, `select`
//! returns exactly the listed images, and `eval --split` scores that half and records it.

mod common;

use std::collections::HashSet;
use std::process::Command;

use foolmap::split::{Half, content_key, key_hex};
use foolmap_trainer::io::data;
use foolmap_trainer::{eval, split};

fn test_set() -> Vec<data::Sample> {
    data::cifar10(&common::shared_data().join("cifar10/test")).expect("CIFAR-10 test set")
}

/// `foolmap eval --json` on the data mirror with `args`; the parsed report (the run must succeed).
fn eval_json(args: &[&str], fooled: &std::path::Path) -> eval::EvalReport {
    let out = Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .arg("--data-root")
        .arg(common::shared_data())
        .args(["eval", "--fooled"])
        .arg(fooled)
        .args(args)
        .args(["--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_committed_split_is_the_rule_on_the_test_set_stratified_disjoint_and_complete() {
    let samples = test_set();
    let committed = split::cifar10_test().unwrap();
    let regenerated = split::generate("cifar10-test", &samples, 10, split::Rule::PerClass).unwrap();
    assert_eq!(
        committed, regenerated,
        "splits/cifar10-test.json is out of date"
    );
    assert_eq!(committed.per_class, vec![[500, 500]; 10]);
    let sel: HashSet<&String> = committed.selection.iter().collect();
    let rep: HashSet<&String> = committed.report.iter().collect();
    assert_eq!((sel.len(), rep.len()), (5000, 5000), "keys are distinct");
    assert!(sel.is_disjoint(&rep));
    assert_eq!(sel.len() + rep.len(), samples.len());
}

#[test]
fn select_returns_exactly_the_listed_images_of_each_half() {
    let samples = test_set();
    let f = split::cifar10_test().unwrap();
    for (half, keys) in [(Half::Selection, &f.selection), (Half::Report, &f.report)] {
        let got = split::select(samples.clone(), &f, half).unwrap();
        let mut k: Vec<String> = got
            .iter()
            .map(|s| key_hex(content_key(&s.rgb().unwrap().data)))
            .collect();
        k.sort();
        assert_eq!(&k, keys, "{half:?}");
        for c in 0..10 {
            assert_eq!(
                got.iter().filter(|s| s.label == c).count(),
                500,
                "class {c}"
            );
        }
    }
}

#[test]
fn an_image_outside_the_split_is_an_error_naming_it() {
    let train = data::cifar10(&common::shared_data().join("cifar10/train")).unwrap();
    let f = split::cifar10_test().unwrap();
    let e = split::select(vec![train[0].clone()], &f, Half::Report)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not in the split") && e.contains(&train[0].name()),
        "{e}"
    );
}

#[test]
fn a_malformed_split_file_names_the_field() {
    let ok = r#"{"version":1,"dataset":"x","rule":"","per_class":[],"selection":[],"report":[]}"#;
    assert!(split::parse(ok, "ok.json").is_ok());
    let e = split::parse(
        &ok.replace("\"report\":[]", "\"report\":[],\"extra\":1"),
        "a.json",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("a.json") && e.contains("extra"), "{e}");
    let e = split::parse(&ok.replace("\"version\":1", "\"version\":2"), "b.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.json") && e.contains("version"), "{e}");
}

#[test]
fn eval_on_a_half_scores_it_and_records_each_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let fooled = dir.path().join("final.safetensors");
    std::fs::copy(
        common::shared_data().join("weights/resnet20_cifar10.safetensors"),
        &fooled,
    )
    .unwrap();
    let run = |split: &str| {
        let v = eval_json(
            &[
                "--arch",
                "resnet20",
                "--split",
                split,
                "--limit",
                "12",
                "--interpreters",
                "grad_cam",
            ],
            &fooled,
        );
        assert_eq!(v.split.id(), split);
        assert_eq!(v.n, 12);
    };
    run("report");
    run("selection");
    let recs = eval::evaluations(dir.path()).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].split, split::Subset::Report);
    assert_eq!(recs[1].split, split::Subset::Selection);
    assert_eq!(recs[0].images, 12);
    assert_eq!(recs[0].file, "final.safetensors");
    let sha = foolmap_trainer::io::hash::sha256_bytes(&std::fs::read(&fooled).unwrap());
    assert_eq!(recs[0].sha256, sha);
}

#[test]
fn the_imagenet_samples_split_pools_by_file_bytes_and_eval_reads_it() {
    let dir = common::shared_data().join("imagenet-samples");
    let samples = data::imagenet(&dir).unwrap();
    let committed = split::imagenet_samples().unwrap();
    let regenerated =
        split::generate("imagenet-samples", &samples, 1000, split::Rule::Pooled).unwrap();
    assert_eq!(
        committed, regenerated,
        "splits/imagenet-samples.json is out of date"
    );
    assert_eq!(committed.key, split::KeyKind::File);
    let sel: HashSet<&String> = committed.selection.iter().collect();
    let rep: HashSet<&String> = committed.report.iter().collect();
    assert_eq!((sel.len(), rep.len()), (500, 500));
    assert!(sel.is_disjoint(&rep));
    // A key is the FNV-1a of the file: the halves do not depend on the JPEG decoder.
    let half = split::select(samples.clone(), &committed, Half::Report).unwrap();
    for s in &half {
        let data::Source::File(p) = &s.source else {
            panic!("files")
        };
        assert!(rep.contains(&key_hex(content_key(&std::fs::read(p).unwrap()))));
    }
    assert_eq!(half.len(), 500);

    // `eval --split report` on an ImageNet model scores images of that half only.
    let tmp = tempfile::tempdir().unwrap();
    let fooled = tmp.path().join("final.safetensors");
    std::fs::copy(
        common::shared_data().join("weights/squeezenet1_0_imagenet.safetensors"),
        &fooled,
    )
    .unwrap();
    let v = eval_json(
        &[
            "--arch",
            "squeezenet1_0",
            "--split",
            "report",
            "--limit",
            "2",
            "--interpreters",
            "grad_cam",
            "--heavy-images",
            "0",
        ],
        &fooled,
    );
    assert_eq!((v.n, v.split), (2, split::Subset::Report));
}

/// The name of a file sample.
fn file_of(s: &data::Sample) -> std::path::PathBuf {
    match &s.source {
        data::Source::File(p) => p.clone(),
        data::Source::Pixels(_) => panic!("the ImageNet samples are files"),
    }
}

#[test]
fn selection_rest_trains_on_selection_images_that_choose_nothing_and_never_on_the_report_half() {
    let dir = common::shared_data().join("imagenet-samples");
    let ds = foolmap::Dataset::ImageNet;
    let rest = eval::samples::selection_rest(ds, &dir, 300).unwrap();
    let chosen_on = eval::eval_samples(ds, &dir, split::Subset::Selection, Some(300)).unwrap();
    let report = eval::eval_samples(ds, &dir, split::Subset::Report, None).unwrap();
    assert_eq!((rest.len(), chosen_on.len()), (200, 300));
    let names = |v: &[data::Sample]| v.iter().map(file_of).collect::<HashSet<_>>();
    let (r, c, p) = (names(&rest), names(&chosen_on), names(&report));
    assert_eq!(r.len(), 200, "distinct images");
    assert!(
        r.is_disjoint(&c),
        "training images are not scored for selection"
    );
    assert!(r.is_disjoint(&p), "training images are not report images");

    let err = eval::samples::selection_rest(ds, &dir, 500)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`selection_rest`") && err.contains("leaves none of the 500"),
        "{err}"
    );
    let cifar = common::shared_data().join("photos");
    let err = format!(
        "{:#}",
        eval::samples::selection_rest(ds, &cifar, 10).unwrap_err()
    );
    assert!(
        err.contains("`selection_rest`") && err.contains("photos"),
        "{err}"
    );
}
