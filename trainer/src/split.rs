//! The committed selection / report splits (embedded in the binary) and `eval --split`:
//! `splits/cifar10-test.json` (per class, by the FNV-1a hash of the pixels, [`Rule::PerClass`])
//! and `splits/imagenet-samples.json` (the 1,000 samples pooled, by the hash of the file's
//! bytes, [`Rule::Pooled`]). A file lists the keys of each half, so the split can be read without
//! foolmap and checked against any copy of the data.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Result, bail};
use foolmap::Dataset;
use foolmap::split::{Half, content_key, key_hex, pooled_halves, stratified_halves};
pub use foolmap::split::{KeyKind, SplitFile, Subset};

use crate::io::data::Sample;

/// The split file committed with the repository.
pub const CIFAR10_TEST: &str = include_str!("../../splits/cifar10-test.json");

/// The split of the 1,000 ImageNet samples (one image per class), committed too.
pub const IMAGENET_SAMPLES: &str = include_str!("../../splits/imagenet-samples.json");

/// How the halves are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Per class, by RGB key (CIFAR-10 test: 500 per class and half).
    PerClass,
    /// All images by file key, without regard to class (ImageNet samples: one per class).
    Pooled,
}

/// The rule, as written into split files.
pub const RULE: &str = "per class, images sorted by the 64-bit FNV-1a hash of their RGB bytes \
(row-major, RGB interleaved, 32x32x3 = 3,072 bytes for CIFAR-10); the first half of each class \
(floor(n/2)) is the selection half, the rest the report half";

/// The pooled rule, as written into split files.
pub const POOLED_RULE: &str = "all images sorted by the 64-bit FNV-1a hash of their file's bytes, \
without regard to class (one image per class); the first half (floor(n/2)) is the selection \
half, the rest the report half";

/// Computes the split of `samples` by `rule` (reads every image).
pub fn generate(
    dataset: &str,
    samples: &[Sample],
    classes: usize,
    rule: Rule,
) -> Result<SplitFile> {
    let kind = match rule {
        Rule::PerClass => KeyKind::Rgb,
        Rule::Pooled => KeyKind::File,
    };
    let keyed = keys(samples, kind)?;
    let halves = match rule {
        Rule::PerClass => stratified_halves(&keyed)?,
        Rule::Pooled => pooled_halves(&keyed.iter().map(|k| k.0).collect::<Vec<_>>())?,
    };
    let mut per_class = vec![[0usize; 2]; classes];
    let (mut selection, mut report) = (Vec::new(), Vec::new());
    for ((key, class), half) in keyed.iter().zip(&halves) {
        if *class >= classes {
            bail!("label {class} out of range for {classes} classes");
        }
        match half {
            Half::Selection => {
                per_class[*class][0] += 1;
                selection.push(key_hex(*key));
            }
            Half::Report => {
                per_class[*class][1] += 1;
                report.push(key_hex(*key));
            }
        }
    }
    selection.sort();
    report.sort();
    Ok(SplitFile {
        version: 1,
        dataset: dataset.to_string(),
        rule: match rule {
            Rule::PerClass => RULE,
            Rule::Pooled => POOLED_RULE,
        }
        .to_string(),
        per_class,
        selection,
        report,
        key: kind,
    })
}

/// The key of one image.
fn key(s: &Sample, kind: KeyKind) -> Result<u64> {
    Ok(match (kind, &s.source) {
        (KeyKind::File, crate::io::data::Source::File(p)) => content_key(
            &std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        ),
        (KeyKind::File, crate::io::data::Source::Pixels(_)) => {
            bail!("a split keyed by file bytes needs image files, not binary batches")
        }
        (KeyKind::Rgb, _) => content_key(&s.rgb()?.data),
    })
}

fn keys(samples: &[Sample], kind: KeyKind) -> Result<Vec<(u64, usize)>> {
    samples
        .iter()
        .map(|s| Ok((key(s, kind)?, s.label)))
        .collect()
}

/// Parses a split file; errors name the file and the field.
pub fn parse(text: &str, name: &str) -> Result<SplitFile> {
    let f: SplitFile = foolmap::artifact::from_json(text.as_bytes(), name)?;
    if f.version != 1 {
        bail!(
            "{name}: `version` {} is not supported (expected 1)",
            f.version
        );
    }
    Ok(f)
}

/// The images of `samples` in `half` of `file`. Every image must be in the file: an image of
/// another copy of the data (or another dataset) is an error, not silently dropped.
pub fn select(samples: Vec<Sample>, file: &SplitFile, half: Half) -> Result<Vec<Sample>> {
    let sel: HashSet<&str> = file.selection.iter().map(String::as_str).collect();
    let rep: HashSet<&str> = file.report.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(samples.len() / 2);
    for s in samples {
        let key = key_hex(key(&s, file.key)?);
        let h = if sel.contains(key.as_str()) {
            Half::Selection
        } else if rep.contains(key.as_str()) {
            Half::Report
        } else {
            bail!(
                "image {} (key {key}) is not in the split `{}`: is this the {} set?",
                s.name(),
                file.dataset,
                file.dataset
            );
        };
        if h == half {
            out.push(s);
        }
    }
    Ok(out)
}

/// The committed CIFAR-10 test split.
pub fn cifar10_test() -> Result<SplitFile> {
    parse(CIFAR10_TEST, "splits/cifar10-test.json")
}

/// The committed split of the ImageNet samples.
pub fn imagenet_samples() -> Result<SplitFile> {
    parse(IMAGENET_SAMPLES, "splits/imagenet-samples.json")
}

/// The committed split of `dataset`'s evaluation images.
pub fn committed(dataset: Dataset) -> Result<SplitFile> {
    match dataset {
        Dataset::Cifar10 => cifar10_test(),
        Dataset::ImageNet => imagenet_samples(),
    }
}

/// Writes `file` as pretty JSON (atomic).
pub fn write(path: &Path, file: &SplitFile) -> Result<()> {
    let mut text = serde_json::to_string_pretty(file)?;
    text.push('\n');
    crate::io::atomic::write_atomic(path, text.as_bytes())
}
