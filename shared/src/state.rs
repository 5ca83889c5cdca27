//! Name → tensor maps ("state dicts") and the safetensors codec.
//!
//! Every weight format ends up here as a [`StateDict`]: torchvision key names, row-major `f32`
//! values. The safetensors codec works on bytes (no file I/O), so the browser uses it too; the
//! PyTorch pickle formats are read by the trainer, which hands the tensors over as a `StateDict`.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors, View};

use crate::error::{FoolmapError, Result};

/// One named tensor: shape (outermost first) and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRecord {
    /// Extents, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl TensorRecord {
    /// Builds a record, checking that `data` fills `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(FoolmapError::Tensor {
                name: "record".into(),
                expected: format!("{n} values for shape {shape:?}"),
                found: format!("{} values", data.len()),
            });
        }
        Ok(Self { shape, data })
    }
}

/// Precision of the values written by [`StateDict::to_safetensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreDtype {
    /// 32-bit floats (lossless).
    #[default]
    F32,
    /// 16-bit floats: half the bytes, for the browser.
    F16,
}

/// An ordered map from torchvision-style key to tensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    /// The tensors, keyed by name.
    pub tensors: BTreeMap<String, TensorRecord>,
    /// Free-form string metadata (safetensors `__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

impl StateDict {
    /// Decodes a safetensors file held in memory. `source_name` names the file in errors.
    ///
    /// Accepts F32, F16, BF16 and F64 float tensors; integer tensors (e.g. `num_batches_tracked`)
    /// are converted to `f32` too, so that the fit check can ignore or report them by name.
    pub fn from_safetensors(bytes: &[u8], source_name: &str) -> Result<Self> {
        let fmt_err = |reason: String| FoolmapError::WeightFormat {
            source_name: source_name.to_string(),
            reason,
        };
        if bytes.is_empty() {
            return Err(fmt_err("the file is empty (0 bytes)".into()));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| fmt_err(format!("not a valid safetensors file ({e})")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| fmt_err(format!("not a valid safetensors file ({e})")))?;
        let mut out = StateDict::default();
        if let Some(m) = meta.metadata() {
            out.metadata = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        for (name, view) in st.tensors() {
            let data = decode_values(view.dtype(), view.data())
                .map_err(|r| fmt_err(format!("tensor `{name}`: {r}")))?;
            out.tensors.insert(
                name.to_string(),
                TensorRecord {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(out)
    }

    /// Encodes to safetensors bytes, in `dtype` precision, keeping the metadata. The bytes are a
    /// function of the contents alone: the metadata is written in key order (the `safetensors`
    /// crate takes it as a `HashMap`, whose order changes from one map to the next), so the same
    /// weights always have the same SHA-256.
    pub fn to_safetensors(&self, dtype: StoreDtype) -> Result<Vec<u8>> {
        let views: Vec<(String, OwnedView)> = self
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), OwnedView::encode(t, dtype)))
            .collect();
        let bad = |e: String| FoolmapError::invalid("safetensors export", e);
        let bytes = safetensors::serialize(views, None).map_err(|e| bad(e.to_string()))?;
        if self.metadata.is_empty() {
            return Ok(bytes);
        }
        let n = bytes
            .first_chunk::<8>()
            .map(|b| u64::from_le_bytes(*b) as usize)
            .filter(|&n| 8 + n <= bytes.len())
            .ok_or_else(|| bad("header length out of range".into()))?;
        let tensors: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| bad(e.to_string()))?;
        let meta: serde_json::Map<String, serde_json::Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::Value::Object(meta));
        header.extend(tensors);
        let mut h = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + h.len() + bytes.len() - 8 - n);
        out.extend_from_slice(&(h.len() as u64).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&bytes[8 + n..]);
        Ok(out)
    }

    /// Removes a common wrapper prefix from every key (`module.` from `nn.DataParallel`,
    /// `state_dict.`/`model.` from nested checkpoints), repeatedly, as long as *all* keys have it.
    pub fn strip_wrapper_prefixes(mut self) -> Self {
        for prefix in ["state_dict.", "model.", "module."] {
            if !self.tensors.is_empty() && self.tensors.keys().all(|k| k.starts_with(prefix)) {
                self.tensors = std::mem::take(&mut self.tensors)
                    .into_iter()
                    .map(|(k, v)| (k[prefix.len()..].to_string(), v))
                    .collect();
            }
        }
        self
    }

    /// Inserts a tensor.
    pub fn insert(&mut self, key: impl Into<String>, record: TensorRecord) {
        self.tensors.insert(key.into(), record);
    }
}

fn decode_values(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    Ok(match dtype {
        Dtype::F32 => chunks::<4>(bytes).map(f32::from_le_bytes).collect(),
        Dtype::F64 => chunks::<8>(bytes)
            .map(|b| f64::from_le_bytes(b) as f32)
            .collect(),
        Dtype::F16 => chunks::<2>(bytes)
            .map(|b| half::f16::from_le_bytes(b).to_f32())
            .collect(),
        Dtype::BF16 => chunks::<2>(bytes)
            .map(|b| half::bf16::from_le_bytes(b).to_f32())
            .collect(),
        Dtype::I64 => chunks::<8>(bytes)
            .map(|b| i64::from_le_bytes(b) as f32)
            .collect(),
        Dtype::I32 => chunks::<4>(bytes)
            .map(|b| i32::from_le_bytes(b) as f32)
            .collect(),
        other => return Err(format!("unsupported element type {other:?}")),
    })
}

/// An owned little-endian buffer that safetensors can serialise.
struct OwnedView {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedView {
    fn encode(t: &TensorRecord, dtype: StoreDtype) -> Self {
        let (dtype, bytes) = match dtype {
            StoreDtype::F32 => (
                Dtype::F32,
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            StoreDtype::F16 => (
                Dtype::F16,
                t.data
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            ),
        };
        Self {
            dtype,
            shape: t.shape.clone(),
            bytes,
        }
    }
}

impl View for &OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

impl View for OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_dict_always_gives_the_same_bytes_and_round_trips_its_metadata() {
        let mut sd = StateDict::default();
        sd.insert(
            "b.weight",
            TensorRecord {
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, 1e-3, 7.0],
            },
        );
        sd.insert(
            "a.bias",
            TensorRecord {
                shape: vec![3],
                data: vec![0.5, 0.25, -1.0],
            },
        );
        for (i, k) in ["zeta", "alpha", "mid", "config", "arch", "step", "tap"]
            .iter()
            .enumerate()
        {
            sd.metadata.insert((*k).into(), format!("value {i}"));
        }
        for dtype in [StoreDtype::F32, StoreDtype::F16] {
            let first = sd.to_safetensors(dtype).unwrap();
            for _ in 0..20 {
                assert_eq!(sd.to_safetensors(dtype).unwrap(), first);
            }
            let back = StateDict::from_safetensors(&first, "t").unwrap();
            assert_eq!(back.metadata, sd.metadata);
            assert_eq!(back.tensors["b.weight"].shape, vec![2, 3]);
            assert_eq!(back.tensors["a.bias"].data, vec![0.5, 0.25, -1.0]);
        }
    }

    use super::*;

    #[test]
    fn safetensors_round_trip_f32_and_f16() {
        let mut sd = StateDict::default();
        sd.insert(
            "a.weight",
            TensorRecord::new(vec![2, 3], vec![0.5, -1.0, 2.25, 3.0, 1e-3, -7.5]).unwrap(),
        );
        sd.metadata.insert("arch".into(), "x".into());
        let back =
            StateDict::from_safetensors(&sd.to_safetensors(StoreDtype::F32).unwrap(), "t").unwrap();
        assert_eq!(back, sd);
        let half =
            StateDict::from_safetensors(&sd.to_safetensors(StoreDtype::F16).unwrap(), "t").unwrap();
        let (a, b) = (&half.tensors["a.weight"].data, &sd.tensors["a.weight"].data);
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-3 * y.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn empty_and_truncated_files_are_errors() {
        let e = StateDict::from_safetensors(&[], "w.safetensors").unwrap_err();
        assert!(e.to_string().contains("w.safetensors") && e.to_string().contains("empty"));
        let mut sd = StateDict::default();
        sd.insert("x", TensorRecord::new(vec![4], vec![1.0; 4]).unwrap());
        let bytes = sd.to_safetensors(StoreDtype::F32).unwrap();
        let e =
            StateDict::from_safetensors(&bytes[..bytes.len() - 3], "cut.safetensors").unwrap_err();
        assert!(e.to_string().contains("cut.safetensors"), "{e}");
    }

    #[test]
    fn wrapper_prefixes_are_stripped_only_when_universal() {
        let mut sd = StateDict::default();
        let r = TensorRecord::new(vec![1], vec![0.0]).unwrap();
        sd.insert("module.conv1.weight", r.clone());
        sd.insert("module.linear.bias", r.clone());
        let s = sd.strip_wrapper_prefixes();
        assert!(s.tensors.contains_key("conv1.weight"));
        let mut sd = StateDict::default();
        sd.insert("module.a", r.clone());
        sd.insert("b", r);
        assert!(sd.strip_wrapper_prefixes().tensors.contains_key("module.a"));
    }
}
