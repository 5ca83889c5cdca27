//! One module per sub-command (the small ones here, dispatched by [`crate::cli::Cli::run`]; `fool`, `eval`, `table`, `bench` and
//! `export_web` are modules of their own) and the dispatcher.

pub mod accuracy;
pub mod archs;
pub mod average;
pub mod data;
pub mod demo;
pub mod explain;
pub mod export;
pub mod predict;
pub mod recalibrate;
