//! `foolmap recalibrate-bn`: BatchNorm running statistics re-estimated from training images.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use foolmap::Architecture;
use foolmap::burn::tensor::Device;
use foolmap::state::StoreDtype;

use crate::io::atomic::write_atomic;
use crate::io::{data, weights};

/// `foolmap recalibrate-bn`.
#[derive(Debug, Args)]
pub struct RecalibrateArgs {
    /// Weights whose BatchNorm running statistics are re-estimated (e.g. a fooled model or an average).
    #[arg(long)]
    pub weights: PathBuf,
    /// Architecture id; default: the `arch` in the file's metadata.
    #[arg(long)]
    pub arch: Option<Architecture>,
    /// Output safetensors file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Training images to measure on (augmented as in fooling, drawn with replacement).
    #[arg(long, default_value_t = 10_000)]
    pub images: usize,
    /// Images per train-mode batch (≥ 2).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Seed of the image draw and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training data folder; default: the data root's training split.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Re-estimates the BatchNorm statistics of `--weights` and writes `--out`.
pub fn run(a: RecalibrateArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    if a.batch_size < 2 || a.images < a.batch_size {
        bail!(
            "recalibrate-bn: needs --batch-size ≥ 2 and --images ≥ --batch-size (got {} and {})",
            a.batch_size,
            a.images
        );
    }
    let meta = weights::read_metadata(&a.weights)?;
    let arch = weights::arch_of(&a.weights, &meta, a.arch)?;
    let (net, p) = weights::load(arch, &a.weights, device)?;
    let dir = match a.data {
        Some(d) => d,
        None => data::default_dir(root, net.dataset, data::Split::Train)?,
    };
    let samples = data::samples(net.dataset, &dir)?;
    if samples.is_empty() {
        bail!("recalibrate-bn: no images in {}", dir.display());
    }
    let mut rng = foolmap::params::SplitMix::new(a.seed);
    let mut stats = foolmap::recalibrate::BatchNormStatistics::new();
    let batches = a.images / a.batch_size;
    for _ in 0..batches {
        let (imgs, _) = crate::batches::train_batch(&samples, net.dataset, a.batch_size, &mut rng)?;
        let x = foolmap::image::batch(&imgs, device)?;
        stats.observe(&net.seq, &p, x);
    }
    let p = stats.apply(&p)?;
    let mut sd = p.to_state_dict();
    sd.metadata = meta;
    sd.metadata.insert(
        "bn_recalibrated".into(),
        format!(
            "{} training images from {} in batches of {}, seed {}",
            batches * a.batch_size,
            dir.display(),
            a.batch_size,
            a.seed
        ),
    );
    write_atomic(&a.out, &sd.to_safetensors(StoreDtype::F32)?)?;
    println!(
        "wrote {} ({} BatchNorm layers re-estimated on {} images)",
        a.out.display(),
        stats.num_layers(),
        batches * a.batch_size
    );
    Ok(())
}
