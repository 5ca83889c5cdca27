//! The files foolmap writes and reads, typed once for the command line and the web app (serde;
//! registry values written as their ids): a fooling run's resolved configuration ([`run`]), the
//! report of an evaluation ([`report`]), the analyses of a final model ([`analysis`]), a released
//! model's card and the release index ([`card`]).
//! The page's manifest is [`crate::manifest`], the split files [`crate::split::SplitFile`].
//!
//! [`from_json`] parses any of them so that an error names the file and the field.

pub mod analysis;
pub mod card;
pub mod report;
pub mod run;

/// Keys of the safetensors metadata of the weights files foolmap writes: architecture, a run's
/// resolved config, step and source revision ([`run::RunMeta`]), the tap of an export.
pub mod key {
    /// Architecture id (every exported or trained file).
    pub const ARCH: &str = "arch";
    /// The run's resolved config as JSON.
    pub const CONFIG: &str = "config";
    /// The training step the weights are from.
    pub const STEP: &str = "step";
    /// `git rev-parse --short HEAD` of the source that wrote them.
    pub const GIT_REVISION: &str = "git_revision";
    /// The tap layer's name (`foolmap export`).
    pub const TAP: &str = "tap";
}

use serde::de::DeserializeOwned;

use crate::error::{FoolmapError, Result};

/// Parses the JSON `bytes` of the file `name` as `T`. A value of the wrong type, a missing or an
/// unknown field is named by its path (e.g. `report.top1`) with the line and column.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." => "(top level)".to_string(),
            p => p,
        };
        FoolmapError::Artifact {
            name: name.to_string(),
            field,
            reason: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        top1: f64,
    }

    #[test]
    fn an_error_names_the_file_and_the_field_path() {
        let e = from_json::<Outer>(br#"{"inner": {"top1": "high"}}"#, "models/x.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("models/x.json: field `inner.top1`: invalid type"),
            "{e}"
        );
        assert!(e.contains("line 1"), "{e}");
        let e = from_json::<Outer>(b"{}", "a.json").unwrap_err().to_string();
        assert!(e.contains("missing field `inner`"), "{e}");
    }
}
