//! Paths and fixtures shared by the trainer's integration tests.
// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The steering repository's `shared/`: `$FOOLMAP_SHARED`, else `../shared` beside the repository.
pub fn shared() -> PathBuf {
    std::env::var("FOOLMAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared"))
}

/// The data mirror: `shared()/data`.
pub fn shared_data() -> PathBuf {
    shared().join("data")
}

/// The pretrained CIFAR-10 ResNet-20 of the data mirror.
pub fn resnet20_weights() -> PathBuf {
    shared_data().join("weights/resnet20_cifar10.safetensors")
}

/// The fixtures' ResNet-20 batch: the input `[4, 3, 32, 32]` (flat, normalised) and its labels.
pub fn resnet20_fixture_batch() -> (Vec<f32>, Vec<usize>) {
    let path = shared().join("fixtures/resnet20_cifar10.safetensors");
    let fx =
        foolmap::StateDict::from_safetensors(&std::fs::read(&path).unwrap(), "fixture").unwrap();
    let labels = fx.tensors["labels"]
        .data
        .iter()
        .map(|&v| v as usize)
        .collect();
    (fx.tensors["input"].data.clone(), labels)
}
