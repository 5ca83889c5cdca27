//! The web app's build with trunk and `scripts/wasm-opt.sh`, for `foolmap demo` (the tools are
//! installed into `target/tools` the first time).

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Builds the web app with trunk (installing trunk and wasm-bindgen-cli into `target/tools` the
/// first time, through `scripts/web-tools.sh`), then shrinks its wasm with `scripts/wasm-opt.sh`.
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
    // The same `wasm-opt -Oz` as `scripts/test.sh` (3 min on 2 cores the first time, then cached
    // by input hash), so that the page served is the one the budgets were measured on.
    // It needs npm (for binaryen); without it the unoptimised build is served.
    let npm = std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm {
        println!(
            "npm not found: serving the build without `wasm-opt -Oz` (about 1.5 times larger; \
             install Node.js and npm, then `bash scripts/wasm-opt.sh target/dist`)"
        );
        return Ok(());
    }
    let ok = std::process::Command::new("bash")
        .args(["scripts/wasm-opt.sh", "target/dist"])
        .status()
        .context("cannot run scripts/wasm-opt.sh")?
        .success();
    if !ok {
        bail!("`bash scripts/wasm-opt.sh target/dist` failed (see above)");
    }
    Ok(())
}
