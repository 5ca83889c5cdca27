//! The data root (`--data-root`, `$FOOLMAP_DATA`, `./data`, `../shared/data`) and dataset
//! readers: CIFAR-10 as class-folder PNGs or official binary batches, ImageNet as an ImageFolder
//! or as the mirror's flat `<wnid>_<name>.JPEG` files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foolmap::image::Rgb8;
use foolmap::labels::CIFAR10;

/// Resolves the data root: explicit flag, then `$FOOLMAP_DATA`, then the first existing of
/// `./data` and `../shared/data`.
pub fn data_root(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        if !p.is_dir() {
            bail!(
                "data root {} does not exist or is not a folder (from --data-root)",
                p.display()
            );
        }
        return Ok(p.to_path_buf());
    }
    if let Ok(p) = std::env::var("FOOLMAP_DATA") {
        let p = PathBuf::from(p);
        if !p.is_dir() {
            bail!(
                "data root {} does not exist or is not a folder (from $FOOLMAP_DATA)",
                p.display()
            );
        }
        return Ok(p);
    }
    for cand in ["data", "../shared/data"] {
        let p = PathBuf::from(cand);
        if p.is_dir() {
            return Ok(p);
        }
    }
    bail!(
        "no data root found: pass --data-root DIR, set $FOOLMAP_DATA, or run `foolmap data fetch` \
         to create ./data (looked for ./data and ../shared/data)"
    )
}

/// One labelled example, not yet decoded (files) or already decoded (binary batches).
#[derive(Debug, Clone)]
pub enum Source {
    /// An image file.
    File(PathBuf),
    /// Raw pixels (CIFAR binary batches).
    Pixels(Rgb8),
}

/// A labelled example.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Where the pixels come from.
    pub source: Source,
    /// Class index.
    pub label: usize,
}

impl Sample {
    /// Decoded RGB pixels.
    pub fn rgb(&self) -> Result<Rgb8> {
        match &self.source {
            Source::Pixels(p) => Ok(p.clone()),
            Source::File(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read image {}", path.display()))?;
                Ok(foolmap::image::decode(&bytes, &path.display().to_string())?)
            }
        }
    }

    /// Short display name.
    pub fn name(&self) -> String {
        match &self.source {
            Source::File(p) => p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Pixels(_) => "cifar-bin".into(),
        }
    }
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// The entries of `dir`, sorted. Special files (FIFOs, sockets, devices) are skipped with a
/// warning: reading one would block or never end.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list data folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            // `metadata` follows symbolic links: a link to a regular file or folder is kept.
            let ok = std::fs::metadata(p).is_ok_and(|m| m.is_file() || m.is_dir());
            if !ok {
                eprintln!(
                    "warning: skipping {} (not a regular file or folder)",
                    p.display()
                );
            }
            ok
        })
        .collect();
    v.sort();
    Ok(v)
}

/// CIFAR-10 test or train data: a folder of class folders of PNGs, a folder holding the official
/// binary batches (`test_batch.bin`, or `cifar-10-batches-bin/`), or one `.bin` batch file.
pub fn cifar10(path: &Path) -> Result<Vec<Sample>> {
    if !path.exists() {
        bail!("CIFAR-10 data {} does not exist", path.display());
    }
    if path.is_file() {
        return cifar_bin(path);
    }
    for cand in [
        path.join("test_batch.bin"),
        path.join("cifar-10-batches-bin/test_batch.bin"),
    ] {
        if cand.is_file() {
            return cifar_bin(&cand);
        }
    }
    let mut out = Vec::new();
    for dir in sorted_entries(path)?.into_iter().filter(|p| p.is_dir()) {
        let name = dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(label) = CIFAR10.iter().position(|c| *c == name) else {
            bail!(
                "{}: folder `{name}` is not a CIFAR-10 class (expected one of {})",
                path.display(),
                CIFAR10.join(", ")
            );
        };
        for f in sorted_entries(&dir)?.into_iter().filter(|p| is_image(p)) {
            out.push(Sample {
                source: Source::File(f),
                label,
            });
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no CIFAR-10 images found (expected class folders of PNGs or test_batch.bin)",
            path.display()
        );
    }
    Ok(out)
}

/// One official CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes (CHW).
pub fn cifar_bin(path: &Path) -> Result<Vec<Sample>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    const REC: usize = 1 + 3072;
    if bytes.is_empty() || bytes.len() % REC != 0 {
        bail!(
            "{}: not a CIFAR-10 binary batch (size {} is not a multiple of {REC})",
            path.display(),
            bytes.len()
        );
    }
    bytes
        .chunks_exact(REC)
        .map(|r| {
            let label = r[0] as usize;
            if label >= 10 {
                bail!("{}: label {label} out of range", path.display());
            }
            let mut data = vec![0u8; 3072];
            for i in 0..1024 {
                for c in 0..3 {
                    data[i * 3 + c] = r[1 + c * 1024 + i];
                }
            }
            Ok(Sample {
                source: Source::Pixels(Rgb8 {
                    width: 32,
                    height: 32,
                    data,
                }),
                label,
            })
        })
        .collect()
}

/// ImageNet-style data: an ImageFolder (one folder per class, sorted = class index) or a flat
/// folder of `<wnid>_<name>.JPEG` files (sorted unique wnids = class index). Both need all 1000
/// classes present so that indices are the standard ones.
pub fn imagenet(path: &Path) -> Result<Vec<Sample>> {
    if !path.is_dir() {
        bail!("ImageNet data folder {} does not exist", path.display());
    }
    let entries = sorted_entries(path)?;
    let dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut out = Vec::new();
    if !dirs.is_empty() {
        if dirs.len() != 1000 {
            bail!(
                "{}: an ImageFolder needs 1000 class folders, found {}",
                path.display(),
                dirs.len()
            );
        }
        for (label, d) in dirs.iter().enumerate() {
            for f in sorted_entries(d)?.into_iter().filter(|p| is_image(p)) {
                out.push(Sample {
                    source: Source::File(f),
                    label,
                });
            }
        }
    } else {
        let files: Vec<&PathBuf> = entries.iter().filter(|p| is_image(p)).collect();
        let wnid = |p: &PathBuf| -> String {
            p.file_name()
                .map(|f| {
                    f.to_string_lossy()
                        .split('_')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default()
        };
        let mut ids: Vec<String> = files.iter().map(|p| wnid(p)).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != 1000 {
            bail!(
                "{}: flat ImageNet files need 1000 distinct `<wnid>_` prefixes, found {}",
                path.display(),
                ids.len()
            );
        }
        for f in files {
            let label = ids.binary_search(&wnid(f)).unwrap_or(0);
            out.push(Sample {
                source: Source::File(f.clone()),
                label,
            });
        }
    }
    if out.is_empty() {
        bail!("{}: no images found", path.display());
    }
    Ok(out)
}

/// The labelled images of `path` in the layout of `dataset` ([`cifar10`] or [`imagenet`]).
pub fn samples(dataset: foolmap::Dataset, path: &Path) -> Result<Vec<Sample>> {
    match dataset {
        foolmap::Dataset::Cifar10 => cifar10(path),
        foolmap::Dataset::ImageNet => imagenet(path),
    }
}

/// Every PNG/JPEG in `path` and its sub-folders (two levels: a flat folder, class folders, or a
/// data root's `cifar10/train`), sorted, all labelled 0: the training images of a label-free
/// (`distill`) run, which never reads labels.
pub fn unlabelled(path: &Path) -> Result<Vec<Sample>> {
    if !path.is_dir() {
        bail!("image folder {} does not exist", path.display());
    }
    let mut out = Vec::new();
    for e in sorted_entries(path)? {
        if e.is_dir() {
            for f in sorted_entries(&e)?.into_iter().filter(|p| is_image(p)) {
                out.push(Sample {
                    source: Source::File(f),
                    label: 0,
                });
            }
        } else if is_image(&e) {
            out.push(Sample {
                source: Source::File(e),
                label: 0,
            });
        }
    }
    if out.is_empty() {
        bail!("{}: no PNG or JPEG images found", path.display());
    }
    Ok(out)
}

/// Which part of a dataset a command reads by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Fine-tuning data (`fool`).
    Train,
    /// Held-out data (`eval`, `accuracy`).
    Test,
}

/// The folder of `dataset`'s `split` under the data root: `cifar10/train`, `cifar10/test`, or
/// `imagenet-samples` (the only ImageNet images the mirror holds, for both splits).
pub fn default_dir(
    root: Option<&Path>,
    dataset: foolmap::Dataset,
    split: Split,
) -> Result<PathBuf> {
    let sub = match (dataset, split) {
        (foolmap::Dataset::Cifar10, Split::Train) => "cifar10/train",
        (foolmap::Dataset::Cifar10, Split::Test) => "cifar10/test",
        (foolmap::Dataset::ImageNet, _) => "imagenet-samples",
    };
    Ok(data_root(root)?.join(sub))
}

/// Converts the official binary batches in `bin_dir` (`data_batch_1..5.bin`, `test_batch.bin`)
/// into the layout every command reads, the data mirror's: `<cifar10>/train/<class>/*.png` from
/// the five training batches and `<cifar10>/test/<class>/*.png` from the test batch, never one for
/// the other. PNG names are `<batch>_<index>.png` (the binary format has no file names). Each
/// split is written into a temporary folder and renamed into place when complete, so an
/// interrupted conversion leaves no half-filled `train/` or `test/`. Returns the image counts.
pub fn cifar_bin_to_folders(bin_dir: &Path, cifar10: &Path) -> Result<(usize, usize)> {
    let train: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    let test = vec!["test_batch.bin".to_string()];
    let mut counts = [0usize; 2];
    for (k, (split, files)) in [("train", train), ("test", test)].into_iter().enumerate() {
        let final_dir = cifar10.join(split);
        if final_dir.is_dir() {
            continue;
        }
        let tmp = cifar10.join(format!(".{split}.partial"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot clear {}", tmp.display()))?;
        }
        for class in CIFAR10 {
            std::fs::create_dir_all(tmp.join(class))
                .with_context(|| format!("cannot create {}", tmp.join(class).display()))?;
        }
        for f in &files {
            let path = bin_dir.join(f);
            let stem = f.trim_end_matches(".bin");
            for (i, s) in cifar_bin(&path)?.into_iter().enumerate() {
                let Source::Pixels(img) = &s.source else {
                    bail!("{}: a binary batch yields pixels", path.display());
                };
                let mut png = Vec::new();
                image::RgbImage::from_raw(32, 32, img.data.clone())
                    .context("a 32×32 RGB image")?
                    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
                let out = tmp
                    .join(CIFAR10[s.label])
                    .join(format!("{stem}_{i:05}.png"));
                std::fs::write(&out, &png)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                counts[k] += 1;
            }
        }
        std::fs::rename(&tmp, &final_dir)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), final_dir.display()))?;
    }
    Ok((counts[0], counts[1]))
}
