//! `foolmap table` on a tiny config: an interrupted table (`--time-limit`) continued by a second
//! invocation ends with the same results as an uninterrupted one; the report half is scored once
//! per model; released files reproduce their cards and a changed file is refused.
//!
//! One test binary; the tests live in submodules by topic, the shared helpers here.

#[path = "../common/mod.rs"]
mod common;

mod committed;
mod kinds;
mod resume;

use std::path::{Path, PathBuf};

use common::shared_data;
use foolmap::burn::tensor::Device;
use foolmap_trainer::table::{self, Summary, TableArgs};

fn config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
name = "tiny"
arch = "resnet20"
runs = "{d}/runs"
results = "{d}/results"
release = "{d}/models"
seeds = [1]
selection_images = 6
report_images = 8
report_interpreters = ["grad_cam", "lrp_t"]
heavy_images = 0
bootstrap = 50
eval_batch_size = 4

[analysis]
images = 8
aopc_steps = 3
noise_sigmas = [0.0, 0.05]

[recipe]
lambda = 1.0
lr = 1e-4
batch_size = 4
steps = 4
keep_every = 2

[[cells]]
fooling = "location"
interpreter = "grad_cam"
"#,
        d = dir.display()
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(cfg: &Path, time_limit: Option<f64>) {
    let a = TableArgs {
        config: cfg.to_path_buf(),
        time_limit,
        quiet: true,
    };
    table::run(&a, Some(&shared_data()), &Device::flex()).unwrap();
}

fn summary(dir: &Path) -> Summary {
    serde_json::from_slice(&std::fs::read(dir.join("results/summary.json")).unwrap()).unwrap()
}
