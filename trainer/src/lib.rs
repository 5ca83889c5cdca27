//! The `foolmap` command line as a library (thin: all maths lives in the `foolmap` crate), so
//! that integration tests can drive the same code as the binary.

pub mod args;
pub mod backend;
pub mod batches;
pub mod bench;
pub mod card;
pub mod cli;
pub mod cmd;
pub mod eval;
pub mod export_web;
pub mod fool;
pub mod fuzz;
pub mod io;
pub mod malloc;
pub mod serve;
pub mod site;
pub mod split;
pub mod table;
pub mod web_build;

pub use backend::DeviceArg;
pub use cli::{Cli, Command, build_features};
