//! The command line: global flags, the sub-commands and their arguments (each defined beside
//! its implementation), and the build's backend features.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::backend::DeviceArg;
use crate::{bench, cmd, eval, export_web, fool, table};

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
/// `cpu: flex [simd, rayon, avx512]; gpu: wgpu [fusion, autotune]` (shown by `foolmap --version` and in
/// every `foolmap bench` block, so a figure names the build it measured).
pub fn build_features() -> String {
    let list = |v: &[(bool, &str)]| {
        let on: Vec<&str> = v.iter().filter(|(b, _)| *b).map(|(_, s)| *s).collect();
        format!("[{}]", on.join(", "))
    };
    let cpu = list(&[
        (cfg!(feature = "simd"), "simd"),
        (cfg!(feature = "rayon"), "rayon"),
        (cfg!(feature = "avx512"), "avx512"),
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
    Predict(cmd::predict::PredictArgs),
    /// Top-1/Top-5 accuracy on a dataset.
    Accuracy(cmd::accuracy::AccuracyArgs),
    /// Saliency maps as .npy and PNG overlays.
    Explain(cmd::explain::ExplainArgs),
    /// Write weights as safetensors (optionally f16) for the browser.
    Export(cmd::export::ExportArgs),
    /// Write original + fooled weights, a manifest and a gallery for the web app.
    ExportWeb(export_web::ExportWebArgs),
    /// The main job on the embedded default: data, predictions, ResNet-20 fooled with Location
    /// on LRP and Grad-CAM, evaluation and reports, export, web app build, local server.
    Demo(cmd::demo::DemoArgs),
    /// Average the weights of several files of one architecture (checkpoint averaging).
    Average(cmd::average::AverageArgs),
    /// Re-estimate the BatchNorm running statistics from training images (SWA's `update_bn`).
    RecalibrateBn(cmd::recalibrate::RecalibrateArgs),
    /// Fine-tune a model so that an interpreter is fooled (CE + λ·L_F).
    Fool(Box<fool::FoolArgs>),
    /// Score a fooled model against the original: accuracy, FSR per interpreter, AOPC.
    Eval(Box<eval::EvalArgs>),
    /// Regenerate a results table from the original weights: every cell × seed trained
    /// (resumable), its checkpoint chosen on the selection half, scored once on the report half;
    /// writes the results folder, RESULTS.md and the released models with their cards.
    Table(table::TableArgs),
    /// Build the web app (wasm, bindings, `wasm-opt`) into a folder; run from the repository root.
    WebBuild(crate::web_build::WebBuildArgs),
    /// Measure throughput and latency on `--device`; writes that device's block of BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Data management.
    Data {
        #[command(subcommand)]
        action: cmd::data::DataAction,
    },
}

impl Cli {
    /// Dispatches a parsed command line.
    pub fn run(self) -> Result<()> {
        let cli = self;
        let device = crate::backend::device(cli.device)?;
        let root = cli.data_root.as_deref();
        match cli.command {
            Command::Archs { json } => cmd::archs::run(json),
            Command::Predict(a) => cmd::predict::run(&a, root, &device),
            Command::Accuracy(a) => cmd::accuracy::run(a, root, &device),
            Command::Explain(a) => cmd::explain::run(a, root, &device),
            Command::Export(a) => cmd::export::run(a, root, &device),
            Command::Average(a) => cmd::average::run(a),
            Command::RecalibrateBn(a) => cmd::recalibrate::run(a, root, &device),
            Command::Demo(a) => cmd::demo::run(a, root, &device),
            Command::Fool(a) => crate::fool::run(&a, root, &device).map(|_| ()),
            Command::Eval(a) => {
                let v = crate::eval::run(&a, root, &device)?;
                if a.json {
                    println!("{}", serde_json::to_string(&v)?);
                } else {
                    crate::eval::print(&v);
                }
                Ok(())
            }
            Command::Bench(a) => crate::bench::run(
                &a,
                root,
                &device,
                // The name the user typed after `--device` (it keys the device's block in the file).
                &clap::ValueEnum::to_possible_value(&cli.device).map_or_else(
                    || format!("{:?}", cli.device).to_lowercase(),
                    |v| v.get_name().to_string(),
                ),
            ),
            Command::Data { action } => cmd::data::run(action, root),
            Command::WebBuild(a) => crate::web_build::run(&a),
            Command::Table(a) => crate::table::run(&a, root, &device),
            Command::ExportWeb(a) => crate::export_web::run(&a, root).map(|_| ()),
        }
    }
}
