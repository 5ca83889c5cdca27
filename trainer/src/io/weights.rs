//! Reading weight files in the three formats users hold: safetensors, PyTorch zip `.pth`
//! (torchvision checkpoints) and legacy pre-1.6 `torch.save` pickles (e.g. akamaster's `.th`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foolmap::burn::tensor::Device;
use foolmap::state::StateDict;
use foolmap::{Architecture, Net, ParamStore};

use super::pytorch::{read_pytorch, remap_legacy_densenet};

/// The card path of a weights file: `<stem>.json` beside it.
pub fn card_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// The part of a model card (`crate::card::Card`) that claims a weights file: its name and SHA-256.
#[derive(serde::Deserialize)]
struct CardClaim {
    file: String,
    sha256: String,
}

/// When `weights` has a card beside it (a `.json` whose `file` names it), checks that the file's
/// SHA-256 is the card's. Weights without a card, and JSON files that claim no file, are not
/// checked.
pub fn verify_card(weights: &Path, bytes: &[u8]) -> Result<()> {
    let path = card_path(weights);
    if !path.is_file() {
        return Ok(());
    }
    let Ok(card) = serde_json::from_slice::<CardClaim>(&std::fs::read(&path).unwrap_or_default())
    else {
        return Ok(());
    };
    let name = weights
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if card.file != name {
        return Ok(());
    }
    let got = crate::io::hash::sha256_bytes(bytes);
    if got != card.sha256 {
        bail!(
            "{}: SHA-256 {got} does not match its card {} ({}): the file was changed after release",
            weights.display(),
            path.display(),
            card.sha256
        );
    }
    Ok(())
}

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

/// The architecture of the weight file `path`: `explicit` (an `--arch` flag), else the `arch`
/// in its metadata `meta`.
pub fn arch_of(
    path: &Path,
    meta: &std::collections::BTreeMap<String, String>,
    explicit: Option<Architecture>,
) -> Result<Architecture> {
    match (explicit, meta.get(key::ARCH)) {
        (Some(a), _) => Ok(a),
        (None, Some(s)) => s
            .parse()
            .with_context(|| format!("{}: metadata `arch`", path.display())),
        (None, None) => bail!("{}: no `arch` in its metadata; pass --arch", path.display()),
    }
}

/// Metadata key of a fooling run's `checkpoint.safetensors` (Adam's step count); its presence
/// marks the file's `adam.*` tensors ([`foolmap::train::Adam::STATE_PREFIX`]) as optimizer state.
pub const ADAM_STEP_KEY: &str = "adam_t";

pub use foolmap::artifact::key;

/// Reads any supported weight file into a state dict with wrapper prefixes removed. A fooling
/// run's `checkpoint.safetensors` is read as the weights it holds: its optimizer state (metadata
/// `adam_t`, tensors `adam.*`) is dropped, so a checkpoint can be evaluated or continued from
/// like any weight file.
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    read_state_dict_within(path, None)
}

/// The weights of `arch` from `path`: like [`read_state_dict`], but a PyTorch checkpoint may not
/// hold more values than the architecture has (plus 1 % and 1,000 for counters), so a file whose
/// tensors would inflate beyond the model is refused from its headers, before any tensor is
/// decompressed or decoded.
pub fn read_for(arch: Architecture, path: &Path) -> Result<StateDict> {
    read_for_specs(arch, &arch.build().specs, path)
}

/// [`read_for`] with the architecture's parameter declarations already at hand.
pub fn read_for_specs(
    arch: Architecture,
    specs: &[foolmap::params::ParamSpec],
    path: &Path,
) -> Result<StateDict> {
    let n: usize = specs
        .iter()
        .map(|s| s.shape.iter().product::<usize>())
        .sum();
    read_state_dict_within(path, Some((arch, n + n / 100 + 1000)))
}

/// [`read_state_dict`] with an optional budget: at most `budget.1` values in a PyTorch checkpoint
/// (named after `budget.0` in the error), checked on the headers before any tensor is read.
pub fn read_state_dict_within(
    path: &Path,
    budget: Option<(Architecture, usize)>,
) -> Result<StateDict> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {name}"))?;
    if bytes.is_empty() {
        bail!("cannot read weights from {name}: the file is empty (0 bytes)");
    }
    verify_card(path, &bytes)?;
    let is_zip = bytes.starts_with(b"PK\x03\x04");
    let is_pickle = bytes.first() == Some(&0x80) || bytes.starts_with(b"\x8a\x0a");
    // A safetensors header length can begin with the byte 0x80 too: check its layout first.
    let sd = if !looks_like_safetensors(&bytes) && (is_zip || is_pickle) {
        read_pytorch(path, &name, budget)?
    } else {
        StateDict::from_safetensors(&bytes, &name)?
    };
    Ok(remap_legacy_densenet(
        without_optimizer_state(sd).strip_wrapper_prefixes(),
    ))
}

/// A safetensors layout: an 8-byte little-endian header length `n` that fits the file, then a
/// JSON object (`{`) as the header.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return false;
    };
    let n = u64::from_le_bytes(*len);
    n >= 2 && n <= rest.len() as u64 && rest.first() == Some(&b'{')
}

/// `sd` without the `adam.*` tensors if its metadata marks it as a fooling checkpoint
/// (`adam_t`); any other file keeps every tensor (an unexpected `adam.*` still gets reported).
fn without_optimizer_state(mut sd: StateDict) -> StateDict {
    if sd.metadata.contains_key(ADAM_STEP_KEY) {
        sd.tensors
            .retain(|k, _| !k.starts_with(foolmap::train::Adam::STATE_PREFIX));
    }
    sd
}

/// The uniform average of the weights in `paths` (checkpoint averaging, a "model soup" of one
/// run's checkpoints or of sibling runs from one parent): `Σ_i W_i / n` per tensor, in f64.
/// Every file must hold the same tensor names and shapes (checkpoints' Adam state is dropped
/// first). Metadata: the last file's, plus `averaged_from` (the paths, comma-separated).
pub fn average(paths: &[PathBuf]) -> Result<StateDict> {
    let [first, rest @ ..] = paths else {
        bail!("average: no weight files given");
    };
    if rest.is_empty() {
        bail!(
            "average: needs at least two weight files, got only {}",
            first.display()
        );
    }
    let mut out = read_state_dict(first)?;
    // One f64 sum per tensor, in the (sorted) key order of `out.tensors`.
    let mut sums: Vec<Vec<f64>> = out
        .tensors
        .values()
        .map(|t| t.data.iter().map(|&x| x as f64).collect())
        .collect();
    for path in rest {
        let sd = read_state_dict(path)?;
        for k in sd.tensors.keys() {
            if !out.tensors.contains_key(k) {
                bail!(
                    "average: {} has tensor `{k}`, which {} lacks",
                    path.display(),
                    first.display()
                );
            }
        }
        for ((k, t), acc) in out.tensors.iter().zip(sums.iter_mut()) {
            let Some(u) = sd.tensors.get(k) else {
                bail!("average: {} lacks tensor `{k}`", path.display());
            };
            if u.shape != t.shape {
                bail!(
                    "average: tensor `{k}` has shape {:?} in {} but {:?} in {}",
                    u.shape,
                    path.display(),
                    t.shape,
                    first.display()
                );
            }
            acc.iter_mut()
                .zip(&u.data)
                .for_each(|(a, &x)| *a += x as f64);
        }
        out.metadata = sd.metadata;
    }
    let n = paths.len() as f64;
    for (t, acc) in out.tensors.values_mut().zip(sums) {
        t.data = acc.iter().map(|&a| (a / n) as f32).collect();
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    out.metadata.insert("averaged_from".into(), names.join(","));
    out.metadata.remove(ADAM_STEP_KEY);
    Ok(out)
}

/// Builds `arch` and loads `path` into it, with one error listing every mismatch.
pub fn load(arch: Architecture, path: &Path, device: &Device) -> Result<(Net, ParamStore)> {
    let net = arch.build();
    let sd = read_for_specs(arch, &net.specs, path)?;
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
    use foolmap::state::{StoreDtype, TensorRecord};

    #[test]
    fn a_safetensors_header_length_starting_with_0x80_is_not_taken_for_a_pickle() {
        let dir = tempfile::tempdir().unwrap();
        let mut sd = StateDict::default();
        sd.tensors.insert(
            "w".into(),
            TensorRecord {
                shape: vec![2],
                data: vec![1.0, 2.0],
            },
        );
        // Pad the metadata until the header length's low byte is 0x80 (a pickle's first byte).
        let mut pad = String::new();
        let bytes = loop {
            sd.metadata.insert("pad".into(), pad.clone());
            let b = sd.to_safetensors(StoreDtype::F32).unwrap();
            if b[0] == 0x80 {
                break b;
            }
            pad.push('x');
        };
        let p = dir.path().join("w.safetensors");
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_state_dict(&p).unwrap().tensors["w"].data, [1.0, 2.0]);
        assert!(!looks_like_safetensors(b"\x80\x02}q\x00"));
    }

    #[test]
    fn a_checkpoints_adam_state_is_dropped_and_any_other_files_kept() {
        let r = TensorRecord {
            shape: vec![1],
            data: vec![0.5],
        };
        let mut sd = StateDict::default();
        sd.insert("conv1.weight", r.clone());
        sd.insert("adam.m.conv1.weight", r.clone());
        sd.insert("adam.v.conv1.weight", r);
        let kept = without_optimizer_state(sd.clone());
        assert_eq!(kept.tensors.len(), 3, "no `adam_t`: not a checkpoint");
        sd.metadata.insert(ADAM_STEP_KEY.into(), "7".into());
        let kept = without_optimizer_state(sd);
        assert_eq!(
            kept.tensors.keys().collect::<Vec<_>>(),
            vec!["conv1.weight"]
        );
    }

    fn write(dir: &Path, name: &str, tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> PathBuf {
        let mut sd = StateDict::default();
        for (k, shape, data) in tensors {
            sd.insert(*k, TensorRecord::new(shape.clone(), data.clone()).unwrap());
        }
        sd.metadata.insert("step".into(), name.into());
        let p = dir.join(format!("{name}.safetensors"));
        std::fs::write(
            &p,
            sd.to_safetensors(foolmap::state::StoreDtype::F32).unwrap(),
        )
        .unwrap();
        p
    }

    #[test]
    fn average_is_the_mean_of_each_weight_and_names_mismatches() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let a = write(
            d,
            "1",
            &[("w", vec![2], vec![1.0, -2.0]), ("b", vec![1], vec![0.0])],
        );
        let b = write(
            d,
            "2",
            &[("w", vec![2], vec![2.0, 4.0]), ("b", vec![1], vec![1.0])],
        );
        let c = write(
            d,
            "3",
            &[("w", vec![2], vec![6.0, 1.0]), ("b", vec![1], vec![2.0])],
        );
        let avg = average(&[a.clone(), b.clone(), c.clone()]).unwrap();
        assert_eq!(avg.tensors["w"].data, vec![3.0, 1.0]);
        assert_eq!(avg.tensors["b"].data, vec![1.0]);
        assert_eq!(avg.metadata["step"], "3");
        assert!(avg.metadata["averaged_from"].ends_with("3.safetensors"));

        let err = |r: Result<StateDict>| format!("{:#}", r.unwrap_err());
        let shape = write(
            d,
            "s",
            &[("w", vec![1, 2], vec![1.0, 1.0]), ("b", vec![1], vec![0.0])],
        );
        let e = err(average(&[a.clone(), shape]));
        assert!(e.contains("tensor `w` has shape [1, 2]"), "{e}");
        let missing = write(d, "m", &[("w", vec![2], vec![1.0, 1.0])]);
        let e = err(average(&[a.clone(), missing]));
        assert!(e.contains("lacks tensor `b`"), "{e}");
        let extra = write(
            d,
            "x",
            &[
                ("w", vec![2], vec![0.0; 2]),
                ("b", vec![1], vec![0.0]),
                ("z", vec![1], vec![0.0]),
            ],
        );
        let e = err(average(&[a.clone(), extra]));
        assert!(e.contains("has tensor `z`"), "{e}");
        let e = err(average(std::slice::from_ref(&a)));
        assert!(e.contains("at least two"), "{e}");
    }
}
