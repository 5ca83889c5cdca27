//! The `foolmap` command line as a library (thin: all maths lives in the `foolmap` crate), so
//! that integration tests can drive the same code as the binary.

pub mod bench;
pub mod commands;
pub mod data;
pub mod demo;
pub mod eval;
pub mod export_web;
pub mod fetch;
pub mod fool;
pub mod npy;
pub mod report;
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

/// Where tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CPU (Burn's `flex` backend).
    Cpu,
    /// GPU through wgpu (needs the `wgpu` cargo feature).
    Wgpu,
    /// NVIDIA GPU 0 through CUDA (needs the `cuda` cargo feature).
    Cuda,
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
    /// Measure throughput and latency on `--device`; writes that device's block of BENCHMARKS.md.
    Bench {
        /// Output markdown file (only the block of this device is replaced; the rest is kept).
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
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
}
