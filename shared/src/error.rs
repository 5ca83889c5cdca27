//! Typed errors of the `foolmap` library: every failure on user data is one of these, never a panic.

use thiserror::Error;

/// Everything that can go wrong on user-supplied bytes, tensors or settings.
#[derive(Debug, Error)]
pub enum FoolmapError {
    /// A weight file could not be decoded at all (truncated, empty, wrong format).
    #[error("cannot read weights from {source_name}: {reason}")]
    WeightFormat { source_name: String, reason: String },

    /// A checkpoint decoded but does not fit the architecture; every problem is listed.
    #[error("weights in {source_name} do not fit architecture `{arch}`:\n{}", problems.join("\n"))]
    WeightMismatch {
        source_name: String,
        arch: String,
        problems: Vec<String>,
    },

    /// An image could not be decoded or is unreasonable.
    #[error("cannot use image {name}: {reason}")]
    Image { name: String, reason: String },

    /// A tensor handed to the library has the wrong shape or content.
    #[error("tensor `{name}`: expected {expected}, found {found}")]
    Tensor {
        name: String,
        expected: String,
        found: String,
    },

    /// An unknown name for a registry (architecture, interpreter, fooling type, ...).
    #[error("unknown {kind} `{name}`; expected one of: {}", choices.join(", "))]
    UnknownName {
        kind: &'static str,
        name: String,
        choices: Vec<String>,
    },

    /// A JSON file foolmap writes (card, report, run config, manifest) does not parse.
    #[error("{name}: field `{field}`: {reason}")]
    Artifact {
        name: String,
        field: String,
        reason: String,
    },

    /// A setting is out of range.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Short alias used across the crate.
pub type Result<T> = std::result::Result<T, FoolmapError>;

impl FoolmapError {
    /// Shorthand for [`FoolmapError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
