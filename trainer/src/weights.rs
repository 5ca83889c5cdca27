//! Reading weight files in the three formats users hold: safetensors, PyTorch zip `.pth`
//! (torchvision checkpoints) and legacy pre-1.6 `torch.save` pickles (e.g. akamaster's `.th`).

use std::path::Path;

use anyhow::{Context, Result, bail};
use foolmap::burn::tensor::Device;
use foolmap::state::{StateDict, TensorRecord};
use foolmap::{Architecture, Net, ParamStore};
use pytorch_reader::{DType, PytorchReader};

/// The `__metadata__` strings of a safetensors file, reading only its header (not the tensors:
/// a checkpoint with Adam state can be gigabytes).
pub fn read_metadata(path: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .with_context(|| format!("{}: not a safetensors file (no header)", path.display()))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        bail!(
            "{}: not a safetensors file (header of {n} bytes)",
            path.display()
        );
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .with_context(|| format!("{}: safetensors header truncated", path.display()))?;
    let mut h: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .with_context(|| format!("{}: safetensors header is not JSON", path.display()))?;
    match h.remove("__metadata__") {
        None => Ok(Default::default()),
        Some(m) => serde_json::from_value(m)
            .with_context(|| format!("{}: `__metadata__` is not a string map", path.display())),
    }
}

/// Reads any supported weight file into a state dict with wrapper prefixes removed.
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {name}"))?;
    if bytes.is_empty() {
        bail!("cannot read weights from {name}: the file is empty (0 bytes)");
    }
    let is_zip = bytes.starts_with(b"PK\x03\x04");
    let is_pickle = bytes.first() == Some(&0x80) || bytes.starts_with(b"\x8a\x0a");
    let sd = if is_zip || is_pickle {
        read_pytorch(path, &name)?
    } else {
        StateDict::from_safetensors(&bytes, &name)?
    };
    Ok(remap_legacy_densenet(sd.strip_wrapper_prefixes()))
}

fn read_pytorch(path: &Path, name: &str) -> Result<StateDict> {
    let reader = PytorchReader::new(path).map_err(|e| {
        anyhow::anyhow!("cannot read weights from {name}: not a readable PyTorch checkpoint ({e})")
    })?;
    let mut sd = StateDict::default();
    for (key, t) in reader.into_tensors() {
        let raw = t.read().with_context(|| {
            format!("cannot read weights from {name}: tensor `{key}` is truncated or corrupt")
        })?;
        let data: Vec<f32> = match t.dtype() {
            DType::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F64 => raw
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            DType::F16 => raw
                .chunks_exact(2)
                .map(|c| foolmap_half(c, false))
                .collect(),
            DType::BF16 => raw.chunks_exact(2).map(|c| foolmap_half(c, true)).collect(),
            DType::I64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => bail!(
                "cannot read weights from {name}: tensor `{key}` has unsupported type {other:?}"
            ),
        };
        sd.insert(
            key,
            TensorRecord {
                shape: t.shape().to_vec(),
                data,
            },
        );
    }
    if sd.tensors.is_empty() {
        bail!("cannot read weights from {name}: the checkpoint holds no tensors");
    }
    Ok(sd)
}

fn foolmap_half(c: &[u8], bf: bool) -> f32 {
    let bits = u16::from_ne_bytes([c[0], c[1]]);
    if bf {
        half::bf16::from_bits(bits).to_f32()
    } else {
        half::f16::from_bits(bits).to_f32()
    }
}

/// Old torchvision DenseNet checkpoints name `denselayerN.norm.1.weight` what the current layout
/// calls `denselayerN.norm1.weight` (torchvision applies the same rename when loading).
fn remap_legacy_densenet(mut sd: StateDict) -> StateDict {
    let keys: Vec<String> = sd.tensors.keys().cloned().collect();
    for k in keys {
        if !k.contains("denselayer") {
            continue;
        }
        for part in ["norm", "relu", "conv"] {
            for n in ["1", "2"] {
                let old = format!(".{part}.{n}.");
                if k.contains(&old) {
                    let new = k.replace(&old, &format!(".{part}{n}."));
                    if let Some(v) = sd.tensors.remove(&k) {
                        sd.tensors.insert(new, v);
                    }
                }
            }
        }
    }
    sd
}

/// Builds `arch` and loads `path` into it, with one error listing every mismatch.
pub fn load(arch: Architecture, path: &Path, device: &Device) -> Result<(Net, ParamStore)> {
    let net = arch.build();
    let sd = read_state_dict(path)?;
    let p = ParamStore::from_state_dict(
        &net.specs,
        &sd,
        arch.id(),
        &path.display().to_string(),
        device,
    )?;
    Ok((net, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversion() {
        assert_eq!(foolmap_half(&0x3c00u16.to_ne_bytes(), false), 1.0);
        assert_eq!(foolmap_half(&0xc000u16.to_ne_bytes(), false), -2.0);
        assert_eq!(foolmap_half(&0x3f80u16.to_ne_bytes(), true), 1.0);
    }

    #[test]
    fn legacy_densenet_keys_are_renamed() {
        let mut sd = StateDict::default();
        let r = TensorRecord {
            shape: vec![1],
            data: vec![0.0],
        };
        sd.insert("features.denseblock1.denselayer1.norm.1.weight", r.clone());
        sd.insert("features.denseblock1.denselayer1.conv.2.weight", r);
        let sd = remap_legacy_densenet(sd);
        assert!(
            sd.tensors
                .contains_key("features.denseblock1.denselayer1.norm1.weight")
        );
        assert!(
            sd.tensors
                .contains_key("features.denseblock1.denselayer1.conv2.weight")
        );
    }
}
