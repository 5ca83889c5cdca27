//! `foolmap web-prebuilt`: checks or refreshes the prebuilt web app of `web/prebuilt/`
//! ([`crate::prebuilt`]), run from the repository root.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::prebuilt::{self, Status};

/// `foolmap web-prebuilt …`.
#[derive(Debug, Subcommand)]
pub enum PrebuiltAction {
    /// Check that web/prebuilt was built from the sources in this tree and that its files are
    /// whole (an error when not).
    Check,
    /// Replace web/prebuilt with the app built in a folder (after `trunk build --release
    /// --offline` and `scripts/wasm-opt.sh`; `scripts/prebuild-web.sh` runs all three).
    Update {
        /// The built app's folder.
        #[arg(long, default_value = "target/dist")]
        from: PathBuf,
    },
}

/// Runs `web-prebuilt`.
pub fn run(action: PrebuiltAction) -> Result<()> {
    let root = Path::new(".");
    if !root.join("web/Cargo.toml").is_file() || !root.join("Trunk.toml").is_file() {
        bail!(
            "no web/Cargo.toml and Trunk.toml in {}: run `foolmap web-prebuilt` from the repository root",
            std::env::current_dir()?.display()
        );
    }
    match action {
        PrebuiltAction::Check => match prebuilt::status(root)? {
            Status::Fresh(b) => {
                prebuilt::read_verified(&root.join(prebuilt::DIR), &b)?;
                let bytes: u64 = b.files.values().map(|f| f.bytes).sum();
                println!(
                    "{}: built from the sources in this tree (SHA-256 {}), {} files, {bytes} bytes, all whole",
                    prebuilt::DIR,
                    &b.sources_sha256[..16],
                    b.files.len()
                );
                Ok(())
            }
            Status::Stale { build, now } => bail!(
                "{} is stale: built from sources with SHA-256 {}, the tree's are {} (a file of {} \
                 changed). Refresh it: `bash scripts/prebuild-web.sh`, then commit {}",
                prebuilt::DIR,
                &build.sources_sha256[..16],
                &now[..16],
                prebuilt::SOURCES.join(", "),
                prebuilt::DIR
            ),
            Status::Missing => bail!(
                "no {}/BUILD.json: build it with `bash scripts/prebuild-web.sh`",
                prebuilt::DIR
            ),
        },
        PrebuiltAction::Update { from } => {
            let b = prebuilt::update(root, &from)?;
            let bytes: u64 = b.files.values().map(|f| f.bytes).sum();
            println!(
                "wrote {} from {}: {} files, {bytes} bytes, sources SHA-256 {}",
                prebuilt::DIR,
                from.display(),
                b.files.len(),
                &b.sources_sha256[..16]
            );
            Ok(())
        }
    }
}
