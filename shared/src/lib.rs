//! # foolmap
//!
//! Adversarial model manipulation against saliency interpreters (Heo, Joo & Moon, NeurIPS 2019),
//! re-implemented on Burn. This crate holds all the maths: the architecture zoo with
//! torchvision-exact key names ([`arch`]), weight import ([`state`], [`params`]), explicit
//! backward interpreters ([`explain`]), map normalisations ([`maps`]), fooling losses and
//! statistics ([`fooling`]) and image preprocessing ([`image`]). It does no file or network I/O
//! and compiles for `wasm32-unknown-unknown`.
//!
//! `docs/method.md` of this repository explains the method in its own words (models and taps,
//! interpreters and rules, fooling losses, training, metrics, the selection / report protocol,
//! and the choices where the authors' code and paper differ). Section numbers in the older doc
//! comments (§N) follow the specification the project started from; new ones cite
//! `docs/method.md`.

pub mod arch;
pub mod artifact;
pub mod augment;
pub mod colormap;
pub mod error;
pub mod explain;
pub mod fooling;
pub mod image;
pub mod labels;
pub mod manifest;
#[cfg(feature = "tensor")]
pub mod maps;
#[cfg(feature = "tensor")]
pub mod metrics;
pub mod model;
pub mod params;
#[cfg(feature = "tensor")]
pub mod recalibrate;
pub mod scores;
#[cfg(feature = "tensor")]
pub mod session;
pub mod split;
pub mod state;
pub mod stats;
#[cfg(feature = "tensor")]
pub mod train;

pub use arch::{Architecture, Dataset, Net};
pub use error::{FoolmapError, Result};
pub use explain::Interpreter;
#[cfg(feature = "tensor")]
pub use explain::InterpreterOptions;
#[cfg(feature = "tensor")]
pub use params::ParamStore;
pub use state::StateDict;

/// Serde for the registries' enums: written and read as their ids (`"grad_cam"`, `"location"`,
/// `"resnet20"`), so that configs, cards and the web manifest hold typed values.
macro_rules! serde_by_id {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.id())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_by_id!(Architecture, Interpreter, fooling::FoolingType);

#[cfg(feature = "tensor")]
/// Re-export of the Burn version this crate is built against.
pub use burn;
