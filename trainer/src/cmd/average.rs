//! `foolmap average`: the mean of several weight files of one architecture.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use foolmap::state::StoreDtype;

use crate::io::atomic::write_atomic;

/// `foolmap average`.
#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Weight files to average (at least two: e.g. a run's `stepN.safetensors` or checkpoints).
    #[arg(required = true, num_args = 2.., value_name = "WEIGHTS")]
    pub inputs: Vec<PathBuf>,
    /// Output safetensors file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the mean of `--inputs` to `--out`.
pub fn run(a: AverageArgs) -> Result<()> {
    let sd = crate::io::weights::average(&a.inputs)?;
    let bytes = sd.to_safetensors(StoreDtype::F32)?;
    write_atomic(&a.out, &bytes)?;
    println!(
        "wrote {} (mean of {} weight files, {} tensors)",
        a.out.display(),
        a.inputs.len(),
        sd.tensors.len()
    );
    Ok(())
}
