//! `foolmap data fetch | info | split`: the data root.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use foolmap::Dataset;

use crate::io::data;

/// `foolmap data ...`
#[derive(Debug, Subcommand)]
pub enum DataAction {
    /// Download what is missing from the official sources, with SHA-256 checks.
    Fetch(FetchArgs),
    /// Show the resolved data root and what it holds.
    Info,
    /// Write the selection / report split of the CIFAR-10 test set (the committed
    /// `splits/cifar10-test.json` is its output on the official test images).
    Split(SplitArgs),
}

/// Runs one data action.
pub fn run(action: DataAction, root: Option<&Path>) -> Result<()> {
    match action {
        DataAction::Fetch(a) => fetch(a, root),
        DataAction::Info => info(root),
        DataAction::Split(a) => split(a, root),
    }
}

/// `foolmap data fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Destination (default: the resolved data root, or ./data).
    #[arg(long)]
    pub dest: Option<PathBuf>,
}

/// `foolmap data split`.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Which evaluation set: `cifar10` (the test set, per class by pixels) or `imagenet` (the
    /// 1,000 ImageNet samples, pooled by file bytes).
    #[arg(long, value_enum, default_value_t = SplitSet::Cifar10)]
    pub set: SplitSet,
    /// The images (default: `cifar10/test` or `imagenet-samples` under the data root).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output file (default: `splits/cifar10-test.json` or `splits/imagenet-samples.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The evaluation sets with a committed split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitSet {
    /// The CIFAR-10 test set.
    Cifar10,
    /// The ImageNet samples of the data root.
    Imagenet,
}

/// Prints the data root and what it holds.
pub fn info(root: Option<&Path>) -> Result<()> {
    let r = data::data_root(root)?;
    println!("data root: {}", r.display());
    for sub in [
        "cifar10/train",
        "cifar10/test",
        "imagenet-samples",
        "photos",
        "labels",
        "weights",
    ] {
        let p = r.join(sub);
        let n = std::fs::read_dir(&p).map(|d| d.count()).unwrap_or(0);
        println!(
            "  {:<18} {}",
            sub,
            if p.exists() {
                format!("{n} entries")
            } else {
                "missing".into()
            }
        );
    }
    for (path, status) in crate::io::fetch::verify_root(&r) {
        println!("  {}: {status}", path.display());
    }
    Ok(())
}

/// Writes the selection / report split of an evaluation set.
pub fn split(a: SplitArgs, root: Option<&Path>) -> Result<()> {
    let (dataset, name, classes, rule) = match a.set {
        SplitSet::Cifar10 => (
            Dataset::Cifar10,
            "cifar10-test",
            10,
            crate::split::Rule::PerClass,
        ),
        SplitSet::Imagenet => (
            Dataset::ImageNet,
            "imagenet-samples",
            1000,
            crate::split::Rule::Pooled,
        ),
    };
    let dir = match a.data {
        Some(d) => d,
        None => data::default_dir(root, dataset, data::Split::Test)?,
    };
    let samples = data::samples(dataset, &dir)?;
    let file = crate::split::generate(name, &samples, classes, rule)?;
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from(format!("splits/{name}.json")));
    crate::split::write(&out, &file)?;
    let per_class = if classes <= 10 {
        format!(
            " ({} per class and half)",
            file.per_class
                .iter()
                .map(|[s, r]| format!("{s}/{r}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    } else {
        String::new()
    };
    println!(
        "{}: {} selection + {} report images of {}{per_class}",
        out.display(),
        file.selection.len(),
        file.report.len(),
        dir.display(),
    );
    Ok(())
}

/// Downloads what is missing.
pub fn fetch(a: FetchArgs, root: Option<&Path>) -> Result<()> {
    crate::io::fetch::fetch(a.dest, root)
}
