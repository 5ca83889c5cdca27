//! The web app's build for `foolmap demo`: `scripts/web-tools.sh` (trunk and wasm-bindgen-cli into
//! `target/tools`, once), then `scripts/web-build.sh` (trunk + `wasm-opt`) in two parts: the page
//! with the CPU-only worker first, the WebGPU worker (the longest build) after it, so that the
//! page can be served in between.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Installs the web tools if needed and builds the page and the CPU-only worker into
/// `target/dist` (`scripts/web-build.sh page`). The app works with them alone: the page runs on
/// the CPU until the WebGPU worker ([`build_webgpu_worker`]) is there.
pub fn build_web() -> Result<()> {
    if !Path::new("Trunk.toml").is_file() {
        bail!(
            "no Trunk.toml in {}: run the demo from the repository root (or pass --no-web)",
            std::env::current_dir()?.display()
        );
    }
    // The pinned trunk and wasm-bindgen-cli into target/tools unless they are there: release
    // binaries where published (seconds), else compiled (14.4 min on 2 cores, BENCHMARKS.md).
    script(&["scripts/web-tools.sh"], None).context(
        "installing the web tools failed (see above); rerun with --no-web to skip the web app",
    )?;
    script(&["scripts/web-build.sh", "page"], None)
}

/// Builds the WebGPU worker and copies it into `target/dist` (`scripts/web-build.sh webgpu`);
/// its output goes to `log` when given (a build beside the server), else to the terminal.
pub fn build_webgpu_worker(log: Option<&Path>) -> Result<()> {
    script(&["scripts/web-build.sh", "webgpu"], log)
}

/// Runs `bash args…`, its output to `log` (created) or inherited.
fn script(args: &[&str], log: Option<&Path>) -> Result<()> {
    let mut cmd = Command::new("bash");
    cmd.args(args);
    if let Some(log) = log {
        let f = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        cmd.stdout(Stdio::from(f.try_clone()?))
            .stderr(Stdio::from(f));
    }
    let what = args.join(" ");
    let ok = cmd
        .status()
        .with_context(|| format!("cannot run bash {what}"))?
        .success();
    if !ok {
        match log {
            Some(log) => bail!("`bash {what}` failed (see {})", log.display()),
            None => bail!("`bash {what}` failed (see above)"),
        }
    }
    Ok(())
}
