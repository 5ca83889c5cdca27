//! Bytes on disk: datasets, weights, `.npy` files, atomic writes, downloads. Nothing here knows
//! about fooling runs, evaluations or reports.

pub mod atomic;
pub mod data;
pub mod fetch;
pub mod hash;
pub mod image;
pub mod json;
pub mod npy;
pub mod prefetch;
mod pytorch;
pub mod weights;
