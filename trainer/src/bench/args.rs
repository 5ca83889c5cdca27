//! `foolmap bench`'s command-line arguments: the output file, the suites and the reference.

use std::path::PathBuf;

/// `foolmap bench` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Output markdown file (only the blocks this run writes are replaced; the rest is kept).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// What to measure: `device` (accuracy, explanations, fooling steps), `compare` (the same
    /// steps as PyTorch, see `--reference`), or `all`.
    #[arg(long, value_enum, default_value_t = Suite::Device)]
    pub suite: Suite,
    /// Also time the same steps in PyTorch (`bench/torch_reference.py`, run with `--python`) and
    /// write foolmap ÷ PyTorch ratios. Only with `--suite compare` or `all`.
    #[arg(long, value_enum)]
    pub reference: Option<Reference>,
    /// Python interpreter that has `torch` (for `--reference torch`).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Models and batch sizes of the comparison, `ARCH:BATCH,...` (224² models other than
    /// SqueezeNet run with random weights).
    #[arg(
        long,
        default_value = "resnet20:32,resnet20:128,squeezenet1_0:4,vgg16:2,resnet50:2"
    )]
    pub cases: String,
}

/// Which benchmarks `foolmap bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Accuracy throughput, explanation latency, fooling steps (the device block).
    Device,
    /// The same-run comparison of inference, training and fooling steps.
    Compare,
    /// Both.
    All,
}

/// A reference implementation for `--suite compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reference {
    /// PyTorch (`bench/torch_reference.py`).
    Torch,
}
