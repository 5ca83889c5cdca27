//! `foolmap export`: a model's weights as safetensors (optionally f16) for the browser.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use foolmap::Architecture;
use foolmap::burn::tensor::Device;
use foolmap::state::StoreDtype;

use crate::backend::load_model;
use crate::io::atomic::write_atomic;
use crate::io::weights::key;

/// `foolmap export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Architecture id.
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file; default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Store 16-bit floats (half the bytes).
    #[arg(long)]
    pub f16: bool,
}

/// Writes the model's weights (with `arch` and `tap` metadata) to `--out`.
pub fn run(a: ExportArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let mut sd = p.to_state_dict();
    sd.metadata.insert(key::ARCH.into(), a.arch.id().into());
    sd.metadata.insert(key::TAP.into(), net.tap_name().into());
    let bytes = sd.to_safetensors(if a.f16 {
        StoreDtype::F16
    } else {
        StoreDtype::F32
    })?;
    write_atomic(&a.out, &bytes)?;
    println!(
        "wrote {} ({} bytes, {})",
        a.out.display(),
        bytes.len(),
        if a.f16 { "f16" } else { "f32" }
    );
    Ok(())
}
