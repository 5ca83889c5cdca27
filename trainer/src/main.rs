//! `foolmap`: the command line of the foolmap toolkit.

use clap::{CommandFactory, FromArgMatches};
use foolmap_trainer::{Cli, build_features};

fn main() {
    // First, before any thread starts (BENCHMARKS.md, "The allocator keeps tensor buffers").
    let allocator = foolmap_trainer::malloc::tune();
    let long = format!(
        "{}\n{}\nallocator: {allocator}\nown CPU kernels on this machine: {}",
        env!("CARGO_PKG_VERSION"),
        build_features(),
        foolmap::model::vector_unit()
    );
    // One string for the life of the process: clap wants it `'static`.
    let long: &'static str = Box::leak(long.into_boxed_str());
    let matches = Cli::command().long_version(long).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Err(e) = cli.run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
