//! `foolmap web-build`: the web app's build, done by foolmap itself (no trunk, no separately
//! installed wasm-bindgen-cli). For each wasm binary of `web/` it runs `cargo build` for
//! `wasm32-unknown-unknown`, generates the JavaScript bindings with the `wasm-bindgen-cli-support`
//! library (the same code as `wasm-bindgen-cli`, pinned to the `wasm-bindgen` version `web/`
//! uses), shrinks the wasm with `scripts/wasm-opt.sh` (npm's binaryen; skipped, with a note,
//! without npm) and writes the files under content-hashed or fixed names (see [`Glue`]).
//!
//! Two parts, so that the main job can serve the page before the longest build is done:
//! - [`Part::Page`]: the page (`app`) and the CPU-only worker (`worker_cpu`), with `index.html`
//!   made from `static/index.html` ([`html`]); the output folder is replaced as a whole.
//! - [`Part::Webgpu`]: the WebGPU worker (`worker`), copied into an existing page build file by
//!   file, its loader last (the page uses the worker once the loader is there).

mod html;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::io::atomic::write_atomic;
use crate::io::hash::sha256_bytes;

/// The wasm target every binary is built for.
const TARGET: &str = "wasm32-unknown-unknown";

/// How a binary's JavaScript loads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Glue {
    /// An ES module (wasm-bindgen's `web` target), started by a small module script of the
    /// page; its two files get a content hash in their names.
    Module,
    /// A classic worker script (wasm-bindgen's `no-modules` target) under a fixed name, with a
    /// `<bin>_loader.js` that the page starts as the worker (`web/src/lib.rs` names them).
    Worker,
}

/// One wasm binary of `web/Cargo.toml` and how it is built.
#[derive(Debug)]
struct Wasm {
    /// The `[[bin]]` name.
    bin: &'static str,
    /// Cargo features (`None`: the crate's defaults).
    features: Option<&'static str>,
    /// Cargo profile (the workspace's `Cargo.toml` says why each).
    profile: &'static str,
    glue: Glue,
}

/// The page: DOM, controls and drawing, no tensor code (no Burn).
const APP: Wasm = Wasm {
    bin: "app",
    features: Some(""),
    profile: "wasm-release",
    glue: Glue::Module,
};

/// The compute worker on the CPU alone (no GPU kernel compiler: a third of the bytes).
const WORKER_CPU: Wasm = Wasm {
    bin: "worker_cpu",
    features: Some("compute"),
    profile: "wasm-release",
    glue: Glue::Worker,
};

/// The compute worker with WebGPU and the CPU (the crate's default features); the longest build.
const WORKER_WEBGPU: Wasm = Wasm {
    bin: "worker",
    features: None,
    profile: "wasm-release-z",
    glue: Glue::Worker,
};

/// Which part of the app to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// The page and the CPU-only worker (replaces the output folder).
    Page,
    /// The WebGPU worker, into an existing page build.
    Webgpu,
    /// Both, in that order.
    All,
}

/// `foolmap web-build`.
#[derive(Debug, Args)]
pub struct WebBuildArgs {
    /// Which part to build.
    #[arg(long, value_enum, default_value = "all")]
    pub part: Part,
    /// Output folder (served as it is by `foolmap demo`; `export-web` adds models to it).
    #[arg(long, default_value = "target/dist")]
    pub dist: PathBuf,
}

/// Runs `foolmap web-build` from the repository root.
pub fn run(a: &WebBuildArgs) -> Result<()> {
    let mut log = Log::Terminal;
    if a.part != Part::Webgpu {
        build_page(&a.dist, &mut log)?;
    }
    if a.part != Part::Page {
        build_webgpu(&a.dist, &mut log)?;
    }
    Ok(())
}

/// Where the build's messages and its tools' output go.
pub enum Log {
    Terminal,
    File(File),
}

impl Log {
    /// A log file (created, truncated).
    pub fn create(path: &Path) -> Result<Log> {
        Ok(Log::File(File::create(path).with_context(|| {
            format!("cannot create {}", path.display())
        })?))
    }

    fn say(&mut self, msg: &str) {
        match self {
            Log::Terminal => println!("{msg}"),
            // A log that cannot be written loses a line, not the build.
            Log::File(f) => {
                let _ = writeln!(f, "{msg}");
            }
        }
    }

    /// An output stream for a child process.
    fn stdio(&self) -> Result<Stdio> {
        Ok(match self {
            Log::Terminal => Stdio::inherit(),
            Log::File(f) => Stdio::from(f.try_clone().context("cannot share the log file")?),
        })
    }
}

/// Builds the page and the CPU-only worker into `dist`, which is replaced as a whole (the models
/// and gallery are exported into it afterwards). The app works with them alone: the page runs on
/// the CPU until the WebGPU worker ([`build_webgpu`]) is there.
pub fn build_page(dist: &Path, log: &mut Log) -> Result<()> {
    let t0 = Instant::now();
    check_root()?;
    let template = read(Path::new("static/index.html"))?;
    let css = read_bytes(Path::new("static/style.css"))?;
    // Beside `dist`, so that the finished folder is renamed into place.
    let stage = dist.with_file_name(format!(
        ".{}.building",
        dist.file_name().and_then(|f| f.to_str()).unwrap_or("dist")
    ));
    stage_dir(&stage)?;
    let app = build_wasm(&APP, &stage, log)?;
    let worker = build_wasm(&WORKER_CPU, &stage, log)?;
    shrink(&[&app.wasm, &worker.wasm], log)?;

    // The page's files under names that change with their content (a browser never runs a
    // cached old module against a new worker); the workers' names are fixed.
    let h = short_hash(&[&read_bytes(&app.js)?, &read_bytes(&app.wasm)?]);
    let (app_js, app_wasm) = (format!("app-{h}.js"), format!("app-{h}_bg.wasm"));
    rename(&app.js, &stage.join(&app_js))?;
    rename(&app.wasm, &stage.join(&app_wasm))?;
    let start = html::start_script(&app_js, &app_wasm);
    let start_name = format!("start-{}.js", short_hash(&[start.as_bytes()]));
    write_atomic(&stage.join(&start_name), start.as_bytes())?;
    let css_name = format!("style-{}.css", short_hash(&[&css]));
    write_atomic(&stage.join(&css_name), &css)?;
    let page = html::page(
        &template,
        &html::Head {
            css: &css_name,
            module: &app_js,
            wasm: &app_wasm,
            start: &start_name,
        },
    )
    .context("static/index.html")?;
    write_atomic(&stage.join("index.html"), page.as_bytes())?;
    write_loader(&worker, &stage)?;

    replace_dir(&stage, dist)?;
    log.say(&format!(
        "web-build: the page and the CPU-only worker are in {} ({:.0} s)",
        dist.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Builds the WebGPU worker and copies its three files into `dist` (a page build), each through a
/// temporary file, the loader last, so that a page served meanwhile never starts half a worker.
pub fn build_webgpu(dist: &Path, log: &mut Log) -> Result<()> {
    let t0 = Instant::now();
    check_root()?;
    if !dist.join("index.html").is_file() {
        bail!(
            "{} holds no page build (index.html): build the page first (`foolmap web-build --part page`)",
            dist.display()
        );
    }
    let stage = Path::new("target/web-build/webgpu");
    stage_dir(stage)?;
    let worker = build_wasm(&WORKER_WEBGPU, stage, log)?;
    shrink(&[&worker.wasm], log)?;
    let loader = write_loader(&worker, stage)?;
    for f in [&worker.js, &worker.wasm, &loader] {
        let name = f.file_name().context("file name")?;
        write_atomic(&dist.join(name), &read_bytes(f)?)?;
    }
    log.say(&format!(
        "web-build: the WebGPU worker is in {} ({:.0} s)",
        dist.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The two files wasm-bindgen wrote for a binary.
struct Bound {
    bin: &'static str,
    js: PathBuf,
    wasm: PathBuf,
}

/// `cargo build` of `w` for wasm32, then its bindings into `stage` (`<bin>.js`, `<bin>_bg.wasm`).
fn build_wasm(w: &Wasm, stage: &Path, log: &mut Log) -> Result<Bound> {
    let t0 = Instant::now();
    log.say(&format!(
        "web-build: cargo build of `{}` for {TARGET} (profile {})",
        w.bin, w.profile
    ));
    let input = cargo_build(w, log)?;
    let mut b = wasm_bindgen_cli_support::Bindgen::new();
    b.input_path(&input).out_name(w.bin).typescript(false);
    match w.glue {
        Glue::Module => b.web(true),
        Glue::Worker => b.no_modules(true),
    }
    .and_then(|b| b.generate(stage))
    .with_context(|| format!("wasm-bindgen on {}", input.display()))?;
    if stage.join("snippets").exists() {
        bail!(
            "wasm-bindgen wrote JavaScript snippets for `{}`: the build copies no snippets folder",
            w.bin
        );
    }
    let bound = Bound {
        bin: w.bin,
        js: stage.join(format!("{}.js", w.bin)),
        wasm: stage.join(format!("{}_bg.wasm", w.bin)),
    };
    for f in [&bound.js, &bound.wasm] {
        if !f.is_file() {
            bail!("wasm-bindgen wrote no {}", f.display());
        }
    }
    log.say(&format!(
        "web-build: `{}` built and bound ({:.0} s)",
        w.bin,
        t0.elapsed().as_secs_f64()
    ));
    Ok(bound)
}

/// One line of `cargo build --message-format json`: the fields read here.
#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    target: Option<CargoTarget>,
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct CargoTarget {
    name: String,
}

/// Runs `cargo build` for `w` and returns the path of its `.wasm`.
fn cargo_build(w: &Wasm, log: &mut Log) -> Result<PathBuf> {
    // The wasm32 standard library (rustup's; a toolchain without rustup must have it already).
    if let Ok(s) = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        && !s.success()
    {
        log.say(&format!(
            "web-build: `rustup target add {TARGET}` failed (the build needs that target)"
        ));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "foolmap-web", "--target", TARGET])
        .args(["--bin", w.bin, "--profile", w.profile])
        .arg("--message-format=json-render-diagnostics");
    if let Some(f) = w.features {
        cmd.arg("--no-default-features");
        if !f.is_empty() {
            cmd.args(["--features", f]);
        }
    }
    // Flags meant for a native build (e.g. `-C target-cpu=native`) would replace the wasm
    // target's own (`.cargo/config.toml`: SIMD128) and can break the wasm build.
    for v in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(v);
    }
    cmd.stdout(Stdio::piped()).stderr(log.stdio()?);
    let mut child = cmd.spawn().context("cannot run cargo")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut wasm = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        // Lines that are not a message of the expected shape are not ours to judge.
        let Ok(m) = serde_json::from_str::<CargoMessage>(&line) else {
            continue;
        };
        if m.reason == "compiler-artifact" && m.target.as_ref().is_some_and(|t| t.name == w.bin) {
            wasm = m.executable.or(wasm);
        }
    }
    if !child.wait().context("waiting for cargo")?.success() {
        bail!(
            "`cargo build -p foolmap-web --bin {} --target {TARGET}` failed (see its messages)",
            w.bin
        );
    }
    wasm.with_context(|| format!("cargo reported no wasm file for `{}`", w.bin))
}

/// `wasm-opt -Oz` on the files (`scripts/wasm-opt.sh`, cached by content), or a note why not.
fn shrink(files: &[&Path], log: &mut Log) -> Result<()> {
    if Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        log.say(
            "web-build: npm not found: the wasm stays without `wasm-opt -Oz` (about 1.5 times \
             larger; install Node.js and npm for the smaller build)",
        );
        return Ok(());
    }
    let ok = Command::new("bash")
        .arg("scripts/wasm-opt.sh")
        .args(files)
        .stdout(log.stdio()?)
        .stderr(log.stdio()?)
        .status()
        .context("cannot run bash scripts/wasm-opt.sh")?
        .success();
    if !ok {
        bail!("`bash scripts/wasm-opt.sh` failed (see its messages)");
    }
    Ok(())
}

/// Writes `<bin>_loader.js` beside a worker's files: the script the page starts as the worker.
fn write_loader(b: &Bound, stage: &Path) -> Result<PathBuf> {
    let path = stage.join(format!("{}_loader.js", b.bin));
    write_atomic(&path, html::worker_loader(b.bin).as_bytes())?;
    Ok(path)
}

/// The build reads `web/` and `static/` relative to the working directory.
fn check_root() -> Result<()> {
    if !Path::new("web/Cargo.toml").is_file() || !Path::new("static/index.html").is_file() {
        bail!(
            "no web/Cargo.toml or static/index.html in {}: the web app is built from the \
             repository root (the main job's --no-web skips it)",
            std::env::current_dir()?.display()
        );
    }
    Ok(())
}

/// Makes `dir` a fresh, empty staging folder.
fn stage_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Puts the finished `stage` folder in the place of `dist` (the old one is removed only once the
/// new one is there).
fn replace_dir(stage: &Path, dist: &Path) -> Result<()> {
    let old = dist.with_file_name(format!(
        ".{}.old",
        dist.file_name().and_then(|f| f.to_str()).unwrap_or("dist")
    ));
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove {}", old.display()))?;
    }
    if dist.exists() {
        std::fs::rename(dist, &old)
            .with_context(|| format!("cannot move {} aside", dist.display()))?;
    }
    std::fs::rename(stage, dist)
        .with_context(|| format!("cannot move {} to {}", stage.display(), dist.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

/// The first 16 hex digits of the SHA-256 of the parts, one after the other.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut all = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        all.extend_from_slice(p);
    }
    sha256_bytes(&all)[..16].to_string()
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
}
