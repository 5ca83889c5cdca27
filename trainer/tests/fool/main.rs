//! The fooling trainer on real data (CIFAR-10 ResNet-20 from the data mirror), kept short:
//! a run moves the statistic in the fooled direction; resume ≡ uninterrupted; a NaN loss stops
//! the run and keeps the last good checkpoint; malformed configs name the field.
//!
//! One test binary; the tests live in submodules by topic, the shared helpers here.

#[path = "../common/mod.rs"]
mod common;

mod config;
mod original;
mod resume;
mod training;

use std::path::Path;

use foolmap::StateDict;
use foolmap_trainer::fool::{FoolArgs, FoolSettings};

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
