//! The `foolmap` command line as a library (thin: all maths lives in the `foolmap` crate), so
//! that integration tests can drive the same code as the binary.

pub mod analysis;
pub mod bench;
pub mod card;
pub mod commands;
pub mod data;
pub mod demo;
pub mod eval;
pub mod evaluation;
pub mod export_web;
pub mod fetch;
pub mod fool;
pub mod fuzz;
pub mod npy;
pub mod prefetch;
pub mod report;
pub mod site;
pub mod split;
pub mod table;
pub mod validate;
pub mod weights;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Test whether saliency explanations can be fooled by adversarial model manipulation
/// (Heo, Joo & Moon, NeurIPS 2019).
#[derive(Debug, Parser)]
#[command(name = "foolmap", version, about)]
pub struct Cli {
    /// Data root (default: $FOOLMAP_DATA, then ./data, then ../shared/data).
    #[arg(long, global = true)]
    pub data_root: Option<PathBuf>,
    /// Compute device.
    #[arg(long, global = true, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    #[command(subcommand)]
    pub command: Command,
}

/// The backend features this binary was built with, e.g.
/// `cpu: flex [simd, rayon]; gpu: wgpu [fusion, autotune]` (shown by `foolmap --version` and in
/// every `foolmap bench` block, so a figure names the build it measured).
pub fn build_features() -> String {
    let list = |v: &[(bool, &str)]| {
        let on: Vec<&str> = v.iter().filter(|(b, _)| *b).map(|(_, s)| *s).collect();
        format!("[{}]", on.join(", "))
    };
    let cpu = list(&[
        (cfg!(feature = "simd"), "simd"),
        (cfg!(feature = "rayon"), "rayon"),
    ]);
    let fast = list(&[
        (cfg!(feature = "fusion"), "fusion"),
        (cfg!(feature = "autotune"), "autotune"),
    ]);
    let mut gpus = Vec::new();
    if cfg!(feature = "wgpu") {
        gpus.push(format!("wgpu {fast}"));
    }
    if cfg!(feature = "cuda") {
        gpus.push(format!("cuda {fast}"));
    }
    if cfg!(feature = "tch") {
        gpus.push("libtorch (cpu, cuda)".to_string());
    }
    let gpu = if gpus.is_empty() {
        "none".to_string()
    } else {
        gpus.join(", ")
    };
    format!("cpu: flex {cpu}; gpu: {gpu}")
}

/// Where tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CPU (Burn's `flex` backend).
    Cpu,
    /// GPU through wgpu (needs the `wgpu` cargo feature).
    Wgpu,
    /// NVIDIA GPU 0 through CUDA (needs the `cuda` cargo feature).
    Cuda,
    /// CPU through LibTorch (needs the `tch` cargo feature and libtorch 2.9.0, see README).
    Libtorch,
    /// NVIDIA GPU 0 through LibTorch (the `tch` feature with a CUDA build of libtorch).
    LibtorchCuda,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the architectures with their dataset, tap layer and size.
    Archs {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Top-k classes for images.
    Predict(commands::PredictArgs),
    /// Top-1/Top-5 accuracy on a dataset.
    Accuracy(commands::AccuracyArgs),
    /// Saliency maps as .npy and PNG overlays.
    Explain(commands::ExplainArgs),
    /// Write weights as safetensors (optionally f16) for the browser.
    Export(commands::ExportArgs),
    /// Write original + fooled weights, a manifest and a gallery for the web app.
    ExportWeb(export_web::ExportWebArgs),
    /// The main job on the embedded default: data, predictions, ResNet-20 fooled with Location
    /// on LRP and Grad-CAM, evaluation and reports, export, web app build, local server.
    Demo(demo::DemoArgs),
    /// Average the weights of several files of one architecture (checkpoint averaging).
    Average(commands::AverageArgs),
    /// Re-estimate the BatchNorm running statistics from training images (SWA's `update_bn`).
    RecalibrateBn(commands::RecalibrateArgs),
    /// Fine-tune a model so that an interpreter is fooled (CE + λ·L_F).
    Fool(Box<fool::FoolArgs>),
    /// Score a fooled model against the original: accuracy, FSR per interpreter, AOPC.
    Eval(Box<eval::EvalArgs>),
    /// Regenerate a results table from the original weights: every cell × seed trained
    /// (resumable), its checkpoint chosen on the selection half, scored once on the report half;
    /// writes the results folder, RESULTS.md and the released models with their cards.
    Table(table::TableArgs),
    /// Measure throughput and latency on `--device`; writes that device's block of BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Data management.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
}

/// `foolmap data ...`
#[derive(Debug, Subcommand)]
pub enum DataAction {
    /// Download what is missing from the official sources, with SHA-256 checks.
    Fetch(commands::FetchArgs),
    /// Show the resolved data root and what it holds.
    Info,
    /// Write the selection / report split of the CIFAR-10 test set (the committed
    /// `splits/cifar10-test.json` is its output on the official test images).
    Split(commands::SplitArgs),
}
