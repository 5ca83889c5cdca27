//! Class names: CIFAR-10 built in, ImageNet parsed from the data root's labels file.

use crate::arch::Dataset;
use crate::error::{FoolmapError, Result};

/// CIFAR-10 class names, index = label.
pub const CIFAR10: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Parses a JSON array of 1000 strings (`imagenet-simple-labels.json`).
pub fn parse_imagenet_labels(json: &[u8], name: &str) -> Result<Vec<String>> {
    let v: Vec<String> = serde_json::from_slice(json).map_err(|e| {
        FoolmapError::invalid(name, format!("expected a JSON array of class names ({e})"))
    })?;
    if v.len() != 1000 {
        return Err(FoolmapError::invalid(
            name,
            format!("expected 1000 ImageNet class names, found {}", v.len()),
        ));
    }
    Ok(v)
}

/// Names for a dataset: built in for CIFAR-10, `imagenet` (from the labels file) otherwise;
/// falls back to `class N` when no names are available.
pub fn names(dataset: Dataset, imagenet: Option<&[String]>) -> Vec<String> {
    match (dataset, imagenet) {
        (Dataset::Cifar10, _) => CIFAR10.iter().map(|s| s.to_string()).collect(),
        (Dataset::ImageNet, Some(n)) => n.to_vec(),
        (Dataset::ImageNet, None) => (0..1000).map(|i| format!("class {i}")).collect(),
    }
}
