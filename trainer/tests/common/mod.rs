//! Paths shared by the trainer's integration tests.
// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The data mirror: `$FOOLMAP_SHARED/data`, else `../shared/data` beside the repository.
pub fn shared_data() -> PathBuf {
    std::env::var("FOOLMAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared"))
        .join("data")
}
