//! The web app's build with trunk, for `foolmap demo` (the tools are installed into
//! `target/tools` the first time).

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Builds the web app with trunk (installing trunk and wasm-bindgen-cli into `target/tools` the
/// first time, through `scripts/web-tools.sh`).
pub fn build_web() -> Result<()> {
    if !Path::new("Trunk.toml").is_file() {
        bail!(
            "no Trunk.toml in {}: run the demo from the repository root (or pass --no-web)",
            std::env::current_dir()?.display()
        );
    }
    let tools = std::env::current_dir()?.join("target/tools/bin");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let have = std::process::Command::new("trunk")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!(
            "trunk is not installed: installing trunk and wasm-bindgen-cli into target/tools (once; ~15 min on 2 cores)"
        );
        let ok = std::process::Command::new("bash")
            .arg("scripts/web-tools.sh")
            .status()
            .context("cannot run scripts/web-tools.sh")?
            .success();
        if !ok {
            bail!(
                "installing the web tools failed (see above); rerun with --no-web to skip the web app"
            );
        }
    }
    let ok = std::process::Command::new("trunk")
        .args(["build", "--release", "--offline"])
        .env("PATH", &path)
        .status()
        .context("cannot run trunk")?
        .success();
    if !ok {
        bail!("`trunk build --release --offline` failed (see above)");
    }
    // No `wasm-opt` here: the page is served from this machine, where the worker's size costs
    // nothing, and `scripts/wasm-opt.sh` takes ~5 minutes on 2 cores. Publishing runs it (README).
    Ok(())
}
