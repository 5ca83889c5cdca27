//! `foolmap data fetch`: downloads what is missing from the official sources into the data-root
//! layout of the local mirror, verifying SHA-256 prefixes as torch.hub does. Uses `curl`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use foolmap::Architecture;
use sha2::{Digest, Sha256};

use crate::data;

/// The official CIFAR-10 binary archive and its published MD5 is replaced here by a SHA-256.
const CIFAR_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const CIFAR_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";
const LABELS_URL: &str = "https://raw.githubusercontent.com/anishathalye/imagenet-simple-labels/master/imagenet-simple-labels.json";

fn curl(url: &str, dest: &Path) -> Result<()> {
    let tmp = dest.with_extension("part");
    let status = Command::new("curl")
        .args(["-fL", "--retry", "2", "--connect-timeout", "15", "-o"])
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
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn sha256_hex(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Downloads missing CIFAR-10 (binary batches), ImageNet labels and pretrained checkpoints.
pub fn fetch(dest: Option<PathBuf>, root: Option<&Path>) -> Result<()> {
    let dest = match dest {
        Some(d) => d,
        None => data::data_root(root).unwrap_or_else(|_| PathBuf::from("data")),
    };
    std::fs::create_dir_all(dest.join("weights"))?;
    std::fs::create_dir_all(dest.join("labels"))?;
    let mut missing = 0;
    // CIFAR-10: every command reads the mirror's layout, `cifar10/{train,test}/<class>/*.png`;
    // the official binary archive is converted into it (train = data_batch_1..5, test =
    // test_batch), then its unpacked batches are removed.
    let cifar = dest.join("cifar10");
    let batches = cifar.join("cifar-10-batches-bin");
    let have_png = cifar.join("train").is_dir() && cifar.join("test").is_dir();
    if !have_png && !batches.join("test_batch.bin").is_file() {
        missing += 1;
        let tgz = dest.join("cifar-10-binary.tar.gz");
        println!("downloading {CIFAR_URL}");
        curl(CIFAR_URL, &tgz)?;
        let h = sha256_hex(&tgz)?;
        if h != CIFAR_SHA256 {
            bail!(
                "{}: SHA-256 {h} does not match the official archive ({CIFAR_SHA256})",
                tgz.display()
            );
        }
        std::fs::create_dir_all(dest.join("cifar10"))?;
        let st = Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(dest.join("cifar10"))
            .status()?;
        if !st.success() {
            bail!("could not unpack {}", tgz.display());
        }
        std::fs::remove_file(&tgz)?;
    }
    if !have_png {
        println!(
            "converting the CIFAR-10 batches into {}/{{train,test}}",
            cifar.display()
        );
        let (train, test) = data::cifar_bin_to_folders(&batches, &cifar)?;
        println!("  {train} training and {test} test images");
        std::fs::remove_dir_all(&batches)
            .with_context(|| format!("cannot remove {}", batches.display()))?;
    }
    let labels = dest.join("labels/imagenet-simple-labels.json");
    if !labels.is_file() {
        missing += 1;
        println!("downloading {LABELS_URL}");
        curl(LABELS_URL, &labels)?;
    }
    for arch in Architecture::ALL {
        let Some(file) = arch.weights_file() else {
            continue;
        };
        let target = dest.join("weights").join(file);
        if target.is_file() {
            continue;
        }
        missing += 1;
        let url = arch.checkpoint_url();
        let name = url.rsplit('/').next().unwrap_or("checkpoint");
        let raw = dest.join("weights").join(name);
        println!("downloading {url}");
        curl(url, &raw)?;
        let prefix = name
            .rsplit('-')
            .next()
            .and_then(|s| s.split('.').next())
            .unwrap_or("");
        let h = sha256_hex(&raw)?;
        if !h.starts_with(prefix) {
            bail!(
                "{}: SHA-256 {h} does not start with {prefix} as its name promises",
                raw.display()
            );
        }
        let sd = crate::weights::read_state_dict(&raw)?;
        std::fs::write(&target, sd.to_safetensors(foolmap::state::StoreDtype::F32)?)?;
        println!("  converted to {}", target.display());
    }
    if missing == 0 {
        println!("{}: everything is already present", dest.display());
    }
    Ok(())
}
