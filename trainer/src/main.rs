//! `foolmap`: the command line of the foolmap toolkit.

use clap::Parser;
use foolmap_trainer::{Cli, commands};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = commands::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
