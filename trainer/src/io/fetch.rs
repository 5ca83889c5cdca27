//! `foolmap data fetch`: downloads what is missing from the official sources into the layout every
//! command reads (the local mirror's): `cifar10/{train,test}/<class>/*.png`, the ImageNet labels,
//! and the pretrained weights as safetensors. Every file is pinned: a download is checked against
//! its full SHA-256 (or, for checkpoints, the SHA-256 of the tensors it converts to) before it
//! takes its place, and is written atomically. HTTPS only (plain HTTP only to a loopback test
//! server). Uses `curl`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use foolmap::{Architecture, StateDict};
use sha2::{Digest, Sha256};

use crate::io::atomic::write_atomic;
use crate::io::data;
use crate::io::hash::sha256_bytes;

/// Environment variable that replaces the scheme and host of every source URL (the paths stay),
/// e.g. `http://127.0.0.1:8000` for a local copy of the official files. The pins stay the same.
pub const BASE_ENV: &str = "FOOLMAP_FETCH_BASE";

/// One file of the official sources and its pins. With neither pin, the torch.hub convention
/// applies: the file name carries the first hex digits of its SHA-256 (only the torchvision
/// SqueezeNet checkpoint, whose bytes are not available offline to pin in full).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Where it is downloaded from.
    pub url: String,
    /// Full SHA-256 of the downloaded bytes.
    pub sha256: Option<String>,
    /// For checkpoints: SHA-256 of the tensors they convert to ([`tensor_sha256`]); also checks
    /// the converted file on disk at every fetch.
    pub tensors: Option<String>,
}

/// Everything `data fetch` downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The CIFAR-10 binary archive (`cifar-10-binary.tar.gz`).
    pub cifar: Source,
    /// `imagenet-simple-labels.json`.
    pub labels: Source,
    /// Pretrained checkpoints per architecture (those with a data-root weights file).
    pub weights: Vec<(Architecture, Source)>,
}

fn pinned(url: &str, sha256: Option<&str>, tensors: Option<&str>) -> Source {
    Source {
        url: url.into(),
        sha256: sha256.map(String::from),
        tensors: tensors.map(String::from),
    }
}

impl Sources {
    /// The official sources with their pins.
    pub fn official() -> Sources {
        let weights = Architecture::ALL
            .iter()
            .filter(|a| a.weights_file().is_some())
            .map(|&a| {
                let (sha, tensors) = match a {
                    // `resnet20-12fca82f.th` as published (and as kept in the mirror).
                    Architecture::ResNet20 => (Some(RESNET20_SHA256), Some(RESNET20_TENSORS)),
                    Architecture::ResNet32 => (None, Some(RESNET32_TENSORS)),
                    Architecture::ResNet44 => (None, Some(RESNET44_TENSORS)),
                    Architecture::ResNet56 => (None, Some(RESNET56_TENSORS)),
                    _ => (None, None),
                };
                (a, pinned(a.checkpoint_url(), sha, tensors))
            })
            .collect();
        Sources {
            cifar: pinned(
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                Some("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
                None,
            ),
            labels: pinned(
                "https://raw.githubusercontent.com/anishathalye/imagenet-simple-labels/master/imagenet-simple-labels.json",
                Some(LABELS_SHA256),
                None,
            ),
            weights,
        }
    }

    /// The same sources with the scheme and host of every URL replaced by `base`.
    pub fn with_base(mut self, base: &str) -> Result<Sources> {
        let base = base.trim_end_matches('/');
        check_scheme(base)?;
        let rebase = |s: &mut Source| -> Result<()> {
            let path = s
                .url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                .with_context(|| format!("source URL {} has no path", s.url))?;
            s.url = format!("{base}{path}");
            Ok(())
        };
        rebase(&mut self.cifar)?;
        rebase(&mut self.labels)?;
        for (_, s) in &mut self.weights {
            rebase(s)?;
        }
        Ok(self)
    }
}

const RESNET20_SHA256: &str = "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8";
const RESNET20_TENSORS: &str = "b3dbc6f3a8df78a8219a1d2c73223c7be11b0acd5c389c69fdfb8f7cbb137089";
const LABELS_SHA256: &str = "987705581d9446328498f950454a1cc7d8dfc578a8243d8bfdcd2588a6905aae";
const RESNET32_TENSORS: &str = "a689b31fb9c8b1272d634e1f46998c563cfb5dcbc1d419cc3a62174b2df49a6e";
const RESNET44_TENSORS: &str = "875cce79a630c2845e1bbab66591367f6a37243277ad3ec231b1cb5e58d6d216";
const RESNET56_TENSORS: &str = "71e26abb6cd793eecec23f5e9a0de3a4e777eee767da904b11ac0e4e77858a4d";

/// Whether `url` is plain HTTP to this machine (the only non-HTTPS URL allowed).
fn loopback_http(url: &str) -> bool {
    [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://localhost:",
        "http://localhost/",
        "http://[::1]:",
    ]
    .iter()
    .any(|p| url.starts_with(p))
}

fn check_scheme(url: &str) -> Result<()> {
    if url.starts_with("https://") || loopback_http(&format!("{url}/")) {
        Ok(())
    } else {
        bail!("{url}: downloads must use HTTPS (plain HTTP only to 127.0.0.1 / localhost)")
    }
}

/// Downloads `url` into a temporary file beside `dest` and returns its path (the caller verifies
/// and renames it). HTTPS only, also across redirects.
fn curl(url: &str, dest: &Path) -> Result<PathBuf> {
    check_scheme(url)?;
    let tmp = dest.with_file_name(format!(
        ".{}.{}.part",
        dest.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let proto = if loopback_http(url) {
        "=http"
    } else {
        "=https"
    };
    let status = Command::new("curl")
        .args(["-fsSL", "--retry", "2", "--connect-timeout", "15"])
        .args(["--proto", proto, "--proto-redir", proto, "-o"])
        .arg(&tmp)
        .arg(url)
        .status()
        .context("`curl` is needed for downloads but could not be started")?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "download of {url} failed (curl exit {:?}): no network? Copy the data into {} by hand, \
             or point --data-root / $FOOLMAP_DATA at an existing mirror",
            status.code(),
            dest.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    Ok(tmp)
}

/// SHA-256 of a state dict's tensors, independent of the file format: for every tensor in name
/// order, its name, a 0 byte, its rank and extents (u64 little-endian) and its values (f32
/// little-endian). Metadata is not included.
pub fn tensor_sha256(sd: &StateDict) -> String {
    let mut h = Sha256::new();
    for (name, t) in &sd.tensors {
        h.update(name.as_bytes());
        h.update([0u8]);
        h.update((t.shape.len() as u64).to_le_bytes());
        for &d in &t.shape {
            h.update((d as u64).to_le_bytes());
        }
        for v in &t.data {
            h.update(v.to_le_bytes());
        }
    }
    format!("{:x}", h.finalize())
}

/// Checks downloaded bytes against the source's byte pin; `name` is the file name.
fn verify_download(path: &Path, src: &Source, name: &str) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let got = sha256_bytes(&bytes);
    match (&src.sha256, &src.tensors) {
        (Some(want), _) => {
            if &got != want {
                bail!("{name}: SHA-256 {got} does not match the pinned {want}");
            }
        }
        // Checked on the converted tensors.
        (None, Some(_)) => {}
        (None, None) => {
            let prefix = name
                .rsplit('-')
                .next()
                .and_then(|s| s.split('.').next())
                .unwrap_or("");
            if prefix.len() < 8 || !got.starts_with(prefix) {
                bail!("{name}: SHA-256 {got} does not start with {prefix} as its name promises");
            }
        }
    }
    Ok(())
}

/// Whether a converted weights file is intact: its tensors hash to the pin (without a tensor
/// pin: it parses and holds tensors).
fn weights_intact(path: &Path, src: &Source) -> bool {
    let Ok(sd) = crate::io::weights::read_state_dict(path) else {
        return false;
    };
    match &src.tensors {
        Some(want) => &tensor_sha256(&sd) == want,
        None => !sd.tensors.is_empty(),
    }
}

/// Downloads what is missing from the official sources (`$FOOLMAP_FETCH_BASE` replaces their
/// host) into `dest` (default: the data root, else `./data`).
pub fn fetch(dest: Option<PathBuf>, root: Option<&Path>) -> Result<()> {
    let dest = match dest {
        Some(d) => d,
        None => data::data_root(root).unwrap_or_else(|_| PathBuf::from("data")),
    };
    let mut sources = Sources::official();
    if let Ok(base) = std::env::var(BASE_ENV) {
        sources = sources
            .with_base(&base)
            .with_context(|| format!("${BASE_ENV}"))?;
    }
    fetch_from(&sources, &dest)
}

/// [`fetch`] from explicit sources.
pub fn fetch_from(sources: &Sources, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest.join("weights"))
        .with_context(|| format!("cannot create {}", dest.join("weights").display()))?;
    std::fs::create_dir_all(dest.join("labels"))?;
    let mut fetched = 0;
    fetched += usize::from(fetch_cifar(&sources.cifar, dest)?);
    fetched += usize::from(fetch_labels(&sources.labels, dest)?);
    for (arch, src) in &sources.weights {
        fetched += usize::from(fetch_weights(*arch, src, dest)?);
    }
    if fetched == 0 {
        println!("{}: everything is already present", dest.display());
    }
    Ok(())
}

/// CIFAR-10: the official binary archive `src` is converted into `cifar10/{train,test}` (train =
/// data_batch_1..5, test = test_batch) unless both exist; `true` when it was downloaded.
fn fetch_cifar(src: &Source, dest: &Path) -> Result<bool> {
    // Each split is written to a temporary folder and renamed when complete, so a split folder
    // that exists is whole.
    let cifar = dest.join("cifar10");
    let have_png = cifar.join("train").is_dir() && cifar.join("test").is_dir();
    if have_png {
        return Ok(false);
    }
    let tgz = dest.join("cifar-10-binary.tar.gz");
    println!("downloading {}", src.url);
    let part = curl(&src.url, &tgz)?;
    if let Err(e) = verify_download(&part, src, "cifar-10-binary.tar.gz") {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    let unpack = dest.join(format!(".cifar10-unpack.{}", std::process::id()));
    std::fs::create_dir_all(&unpack)?;
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&part)
        .arg("-C")
        .arg(&unpack)
        .status()
        .context("`tar` is needed to unpack the CIFAR-10 archive")?;
    let _ = std::fs::remove_file(&part);
    if !st.success() {
        let _ = std::fs::remove_dir_all(&unpack);
        bail!("could not unpack the CIFAR-10 archive from {}", src.url);
    }
    println!(
        "converting the CIFAR-10 batches into {}/{{train,test}}",
        cifar.display()
    );
    let converted = data::cifar_bin_to_folders(&unpack.join("cifar-10-batches-bin"), &cifar);
    let _ = std::fs::remove_dir_all(&unpack);
    let (train, test) = converted?;
    println!("  {train} training and {test} test images");
    Ok(true)
}

/// The ImageNet labels from `src`, unless the file already matches its pin; `true` when it was
/// downloaded.
fn fetch_labels(src: &Source, dest: &Path) -> Result<bool> {
    let labels = dest.join("labels/imagenet-simple-labels.json");
    let labels_ok = std::fs::read(&labels).is_ok_and(|b| Some(sha256_bytes(&b)) == src.sha256);
    if labels_ok {
        return Ok(false);
    }
    println!("downloading {}", src.url);
    let part = curl(&src.url, &labels)?;
    let checked = verify_download(&part, src, "imagenet-simple-labels.json");
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &labels)
        .with_context(|| format!("cannot write {}", labels.display()))?;
    Ok(true)
}

/// The checkpoint of `arch` from `src`, converted to safetensors, unless the weights file is
/// already intact; `true` when it was downloaded.
fn fetch_weights(arch: Architecture, src: &Source, dest: &Path) -> Result<bool> {
    let Some(file) = arch.weights_file() else {
        return Ok(false);
    };
    let target = dest.join("weights").join(file);
    if target.is_file() {
        if weights_intact(&target, src) {
            return Ok(false);
        }
        println!(
            "{} does not match its pin: downloading it again",
            target.display()
        );
    }
    let name = src.url.rsplit('/').next().unwrap_or("checkpoint");
    println!("downloading {}", src.url);
    let part = curl(&src.url, &dest.join("weights").join(name))?;
    let converted =
        verify_download(&part, src, name).and_then(|()| crate::io::weights::read_state_dict(&part));
    let _ = std::fs::remove_file(&part);
    let sd = converted?;
    if let Some(want) = &src.tensors {
        let got = tensor_sha256(&sd);
        if &got != want {
            bail!("{name}: its tensors hash to {got}, not the pinned {want}");
        }
    }
    write_atomic(
        &target,
        &sd.to_safetensors(foolmap::state::StoreDtype::F32)?,
    )?;
    println!("  converted to {}", target.display());
    Ok(true)
}

/// What `data info` reports for each pinned file under `root`: (path, status) where status is
/// `ok`, `missing` or why it does not match its pin.
pub fn verify_root(root: &Path) -> Vec<(PathBuf, String)> {
    let sources = Sources::official();
    let mut out = Vec::new();
    let labels = root.join("labels/imagenet-simple-labels.json");
    out.push((
        labels.clone(),
        match std::fs::read(&labels) {
            Err(_) => "missing".into(),
            Ok(b) if Some(sha256_bytes(&b)) == sources.labels.sha256 => "ok".into(),
            Ok(b) => format!("SHA-256 {} is not the pinned one", sha256_bytes(&b)),
        },
    ));
    for (arch, src) in &sources.weights {
        let Some(file) = arch.weights_file() else {
            continue;
        };
        let p = root.join("weights").join(file);
        let status = if !p.is_file() {
            "missing".to_string()
        } else if weights_intact(&p, src) {
            if src.tensors.is_some() {
                "ok (tensors match the pin)".into()
            } else {
                "ok (parses; no tensor pin)".into()
            }
        } else {
            "does not match its pin: `foolmap data fetch` downloads it again".into()
        };
        out.push((p, status));
    }
    out
}
