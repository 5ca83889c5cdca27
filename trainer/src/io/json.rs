//! JSON files of the typed artifacts ([`foolmap::artifact`]): read with the file and the field
//! named on error, written pretty-printed and atomically.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::atomic::write_atomic;

/// Reads `path` as `T`; an error names the file, and for contents the field, line and column.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(foolmap::artifact::from_json(
        &bytes,
        &path.display().to_string(),
    )?)
}

/// Writes `v` pretty-printed with a final newline, atomically (creating the folder).
pub fn write<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}
