//! # foolmap
//!
//! Adversarial model manipulation against saliency interpreters (Heo, Joo & Moon, NeurIPS 2019),
//! re-implemented on Burn. This crate holds all the maths: the architecture zoo with
//! torchvision-exact key names ([`arch`]), weight import ([`state`], [`params`]), explicit
//! backward interpreters ([`explain`]), map normalisations ([`maps`]), fooling losses and
//! statistics ([`fooling`]) and image preprocessing ([`image`]). It does no file or network I/O
//! and compiles for `wasm32-unknown-unknown`.
//!
//! The specification is `shared/spec/method.md` of the steering repository; section numbers in
//! doc comments (§N) refer to it.

pub mod arch;
pub mod augment;
pub mod colormap;
pub mod error;
pub mod explain;
pub mod fooling;
pub mod image;
pub mod labels;
pub mod maps;
pub mod metrics;
pub mod model;
pub mod params;
pub mod recalibrate;
pub mod state;
pub mod train;

pub use arch::{Architecture, Dataset, Net};
pub use error::{FoolmapError, Result};
pub use explain::{Interpreter, InterpreterOptions};
pub use params::ParamStore;
pub use state::StateDict;

/// Re-export of the Burn version this crate is built against.
pub use burn;
