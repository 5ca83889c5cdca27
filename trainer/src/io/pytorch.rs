//! PyTorch checkpoints: zip `.pth` files and legacy `torch.save` pickles decoded into a state dict
//! (with a value budget checked on the headers first), and torchvision's legacy DenseNet names.

use std::path::Path;

use anyhow::{Context, Result, bail};
use foolmap::Architecture;
use foolmap::state::{StateDict, TensorRecord};
use pytorch_reader::{DType, PytorchReader};

/// Reads a PyTorch checkpoint (zip `.pth` or legacy pickle) at `path` (`name` in errors) into a
/// state dict; with a `budget`, refuses from the headers a file holding more than `budget.1` values.
pub(super) fn read_pytorch(
    path: &Path,
    name: &str,
    budget: Option<(Architecture, usize)>,
) -> Result<StateDict> {
    let reader = PytorchReader::new(path).map_err(|e| {
        anyhow::anyhow!("cannot read weights from {name}: not a readable PyTorch checkpoint ({e})")
    })?;
    let tensors = reader.into_tensors();
    // Names, dtypes and shapes come from the pickle; nothing is decoded until they fit.
    if let Some((arch, max)) = budget {
        let mut total = 0usize;
        for (key, t) in &tensors {
            let n = t
                .shape()
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .with_context(|| {
                    format!(
                        "{name}: tensor `{key}` has an impossible shape {:?}",
                        t.shape()
                    )
                })?;
            total = total.saturating_add(n);
            if total > max {
                bail!(
                    "cannot read weights from {name}: its tensors hold more than {max} values (at tensor \
                     `{key}`, shape {:?}), more than `{arch}` has; refused before decoding",
                    t.shape()
                );
            }
        }
    }
    let mut sd = StateDict::default();
    for (key, t) in tensors {
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

/// An IEEE half (`bf` false) or bfloat16 (`bf` true) value from two native-endian bytes.
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
pub(super) fn remap_legacy_densenet(mut sd: StateDict) -> StateDict {
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
