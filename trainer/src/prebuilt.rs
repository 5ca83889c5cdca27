//! The prebuilt web app committed under `web/prebuilt/`: the page and both workers exactly as
//! `trunk build --release` and `scripts/wasm-opt.sh` write them, with `BUILD.json` naming the
//! SHA-256 of every file and of the sources they were built from. `foolmap demo` serves it
//! when those sources are the ones in the tree (no wasm toolchain, no 13-minute wasm build on a
//! fresh machine) and builds the app with trunk otherwise; `scripts/test.sh` fails when it is
//! stale, and `scripts/prebuild-web.sh` refreshes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::io::atomic::write_atomic;
use crate::io::hash::sha256_bytes;

/// The folder of the prebuilt app, relative to the repository root.
pub const DIR: &str = "web/prebuilt";

/// What the web app's build reads (relative to the repository root): files, and folders taken
/// whole except for the excluded sub-folders. A change in any of them makes the prebuilt app
/// stale.
pub const SOURCES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "Trunk.toml",
    ".cargo/config.toml",
    "scripts/wasm-opt.sh",
    "scripts/web-tools.sh",
    "static",
    "web",
    "shared",
];

/// Sub-folders of [`SOURCES`] that the wasm build does not read.
pub const EXCLUDED: &[&str] = &[DIR, "shared/tests"];

/// `BUILD.json`: the identity of the prebuilt app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// SHA-256 over the [`SOURCES`] (see [`sources_sha256`]) when the app was built.
    pub sources_sha256: String,
    /// `rustc --version` of the build.
    pub rustc: String,
    /// How the files were made.
    pub built_with: String,
    /// The app's files (top-level files of trunk's output), by name.
    pub files: BTreeMap<String, FileEntry>,
}

/// One file of the prebuilt app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 as lowercase hex.
    pub sha256: String,
}

/// Whether the prebuilt app may be served for this tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Built from exactly these sources.
    Fresh(Build),
    /// Built from other sources (the two hashes).
    Stale {
        /// The build's record.
        build: Build,
        /// The hash of the sources in the tree now.
        now: String,
    },
    /// No `BUILD.json` under the folder.
    Missing,
}

/// SHA-256 over the [`SOURCES`] under `root`: every file's path (relative, `/`-separated) and
/// bytes, in path order, each framed by its length so that no two trees hash alike. Missing
/// optional entries count as absent (their absence is hashed too).
pub fn sources_sha256(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    for s in SOURCES {
        let p = root.join(s);
        if p.is_dir() {
            collect(root, &p, &mut files)?;
        } else if p.is_file() {
            files.push(PathBuf::from(s));
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in &files {
        let name = rel
            .to_str()
            .with_context(|| format!("{}: a file name that is not UTF-8", rel.display()))?
            .replace('\\', "/");
        let bytes = std::fs::read(root.join(rel))
            .with_context(|| format!("cannot read {}", root.join(rel).display()))?;
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Files under `dir` (relative to `root`), skipping [`EXCLUDED`] folders, `target` folders and
/// symbolic links.
fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rel_dir = dir.strip_prefix(root).unwrap_or(dir);
    if EXCLUDED.iter().any(|e| rel_dir == Path::new(e))
        || dir.file_name().is_some_and(|n| n == "target")
    {
        return Ok(());
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            collect(root, &p, out)?;
        } else if t.is_file() {
            out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
        }
    }
    Ok(())
}

/// Reads `DIR/BUILD.json` under `root` and compares its sources hash with the tree's.
pub fn status(root: &Path) -> Result<Status> {
    let path = root.join(DIR).join("BUILD.json");
    if !path.is_file() {
        return Ok(Status::Missing);
    }
    let build: Build = crate::io::json::read(&path)?;
    let now = sources_sha256(root)?;
    Ok(if build.sources_sha256 == now {
        Status::Fresh(build)
    } else {
        Status::Stale { build, now }
    })
}

/// Checks every file of `build` under `dir` against its size and SHA-256 and returns the bytes,
/// by name. A missing or altered file (a broken checkout, a Git LFS pointer) is an error naming
/// it.
pub fn read_verified(dir: &Path, build: &Build) -> Result<Vec<(String, Vec<u8>)>> {
    if !build.files.contains_key("index.html") {
        bail!("{}/BUILD.json lists no index.html", dir.display());
    }
    let mut out = Vec::new();
    for (name, f) in &build.files {
        if !is_plain_name(name) {
            bail!(
                "{}/BUILD.json: `{name}` is not a plain file name",
                dir.display()
            );
        }
        let p = dir.join(name);
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let sha = sha256_bytes(&bytes);
        if bytes.len() as u64 != f.bytes || sha != f.sha256 {
            bail!(
                "{}: {} bytes with SHA-256 {sha}, but BUILD.json says {} bytes with {} (a broken \
                 checkout? `git checkout -- {DIR}` restores it)",
                p.display(),
                bytes.len(),
                f.bytes,
                f.sha256
            );
        }
        out.push((name.clone(), bytes));
    }
    Ok(out)
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.starts_with('.')
}

/// Whether `name` is a file trunk writes for this app (so that an app file of an earlier build
/// may be removed from the output folder).
fn is_trunk_output(name: &str) -> bool {
    let ext_ok = [".js", ".wasm", ".css"].iter().any(|e| name.ends_with(e));
    ext_ok
        && ["app-", "style-", "worker"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Copies the verified prebuilt app of `root` into `dist` (created if missing), replacing the
/// app files of an earlier build there; `models/` and `gallery/` are left alone.
pub fn install(root: &Path, build: &Build, dist: &Path) -> Result<()> {
    let files = read_verified(&root.join(DIR), build)?;
    std::fs::create_dir_all(dist).with_context(|| format!("cannot create {}", dist.display()))?;
    for e in std::fs::read_dir(dist).with_context(|| format!("cannot read {}", dist.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_file() && is_trunk_output(&name) && !build.files.contains_key(&name) {
            std::fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    for (name, bytes) in files {
        write_atomic(&dist.join(name), &bytes)?;
    }
    Ok(())
}

/// Replaces `root/DIR` with the app built in `dist` (its top-level `.html`, `.js`, `.wasm` and
/// `.css` files; a Content-Security-Policy tag written by `export-web` is taken out of
/// `index.html`) and writes `BUILD.json`. The wasm files must be `scripts/wasm-opt.sh`'s output
/// (listed in `target/wasm-opt-cache/outputs`): the committed app is the optimised one.
pub fn update(root: &Path, dist: &Path) -> Result<Build> {
    let names = crate::export_web::app_files(dist)?;
    if !names.iter().any(|n| n == "index.html") {
        bail!(
            "{} holds no built app (index.html): run `trunk build --release --offline` and \
             `bash scripts/wasm-opt.sh` first (scripts/prebuild-web.sh does all)",
            dist.display()
        );
    }
    // The whole app: the page's wasm and both workers' (static/index.html builds all three).
    let pages = names
        .iter()
        .filter(|n| n.starts_with("app-") && n.ends_with("_bg.wasm"))
        .count();
    for (ok, what) in [
        (pages == 1, "one page wasm (app-*_bg.wasm)"),
        (
            names.iter().any(|n| n == "worker_bg.wasm"),
            "the WebGPU worker (worker_bg.wasm)",
        ),
        (
            names.iter().any(|n| n == "worker_cpu_bg.wasm"),
            "the CPU worker (worker_cpu_bg.wasm)",
        ),
    ] {
        if !ok {
            bail!(
                "{} is not a whole build of the app: it needs {what} (found {})",
                dist.display(),
                names.join(", ")
            );
        }
    }
    let optimised =
        std::fs::read_to_string(root.join("target/wasm-opt-cache/outputs")).unwrap_or_default();
    let mut files = BTreeMap::new();
    let mut contents = Vec::new();
    for name in names {
        let p = dist.join(&name);
        let mut bytes =
            std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        if name == "index.html" {
            let html =
                String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", p.display()))?;
            bytes = crate::site::remove_csp_meta(&html, &p)?.into_bytes();
        }
        let sha = sha256_bytes(&bytes);
        if name.ends_with(".wasm") && !optimised.lines().any(|l| l.trim() == sha) {
            bail!(
                "{} is not `scripts/wasm-opt.sh`'s output (its SHA-256 is not in \
                 target/wasm-opt-cache/outputs): run `bash scripts/wasm-opt.sh {}` first",
                p.display(),
                dist.display()
            );
        }
        files.insert(
            name.clone(),
            FileEntry {
                bytes: bytes.len() as u64,
                sha256: sha,
            },
        );
        contents.push((name, bytes));
    }
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let build = Build {
        sources_sha256: sources_sha256(root)?,
        rustc,
        built_with: "trunk build --release --offline (scripts/web-tools.sh's trunk and \
                     wasm-bindgen), then scripts/wasm-opt.sh (binaryen 132, wasm-opt -Oz)"
            .into(),
        files,
    };
    // The new folder is written beside the old one and swapped in by renames: an interrupted
    // update leaves the old app whole.
    let target = root.join(DIR);
    let tmp = root.join(format!("{DIR}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    for (name, bytes) in &contents {
        write_atomic(&tmp.join(name), bytes)?;
    }
    crate::io::json::write(&tmp.join("BUILD.json"), &build)?;
    let old = root.join(format!("{DIR}.old-{}", std::process::id()));
    if target.exists() {
        std::fs::rename(&target, &old)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
    }
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("cannot move {} into place", target.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in [
            ("Cargo.toml", "[workspace]"),
            ("web/src/lib.rs", "fn a() {}"),
            ("shared/src/lib.rs", "fn b() {}"),
            ("shared/tests/t.rs", "fn t() {}"),
            ("static/index.html", "<html><head></head></html>"),
        ] {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        }
        d
    }

    #[test]
    fn the_sources_hash_follows_the_wasm_inputs_only() {
        let d = tree();
        let r = d.path();
        let h0 = sources_sha256(r).unwrap();
        assert_eq!(h0, sources_sha256(r).unwrap(), "deterministic");
        // Not inputs of the wasm build: the shared crate's tests, the prebuilt app itself,
        // build output, the trainer.
        for p in [
            "shared/tests/t.rs",
            "web/prebuilt/BUILD.json",
            "web/target/x",
            "trainer/src/main.rs",
        ] {
            let f = r.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, "changed").unwrap();
            assert_eq!(sources_sha256(r).unwrap(), h0, "{p} is not a source");
        }
        // Inputs: a changed byte, a new file, a renamed file.
        std::fs::write(r.join("shared/src/lib.rs"), "fn b() { }").unwrap();
        let h1 = sources_sha256(r).unwrap();
        assert_ne!(h1, h0);
        std::fs::write(r.join("web/src/new.rs"), "").unwrap();
        let h2 = sources_sha256(r).unwrap();
        assert_ne!(h2, h1);
        std::fs::rename(r.join("web/src/new.rs"), r.join("web/src/new2.rs")).unwrap();
        assert_ne!(sources_sha256(r).unwrap(), h2);
        // Moving bytes between a name and the contents changes the hash (framing).
        std::fs::remove_file(r.join("web/src/new2.rs")).unwrap();
        std::fs::write(r.join("Trunk.toml"), "").unwrap();
        let a = sources_sha256(r).unwrap();
        std::fs::remove_file(r.join("Trunk.toml")).unwrap();
        assert_ne!(a, sources_sha256(r).unwrap());
    }

    /// A fake built app in `dist` whose wasm is listed as optimised.
    fn built_app(r: &Path) -> PathBuf {
        let dist = r.join("target/dist");
        std::fs::create_dir_all(&dist).unwrap();
        let html = "<html><head>\n  <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'\"><script type=\"module\">x</script></head></html>";
        std::fs::write(dist.join("index.html"), html).unwrap();
        std::fs::write(dist.join("app-1_bg.wasm"), b"\0asm-page").unwrap();
        std::fs::write(dist.join("app-1.js"), "page").unwrap();
        std::fs::write(dist.join("worker_bg.wasm"), b"\0asm-worker").unwrap();
        std::fs::write(dist.join("worker_cpu_bg.wasm"), b"\0asm-cpu").unwrap();
        std::fs::create_dir_all(dist.join("models")).unwrap();
        std::fs::write(dist.join("models/manifest.json"), "{}").unwrap();
        let cache = r.join("target/wasm-opt-cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(
            cache.join("outputs"),
            format!(
                "{}\n{}\n{}\n",
                sha256_bytes(b"\0asm-page"),
                sha256_bytes(b"\0asm-worker"),
                sha256_bytes(b"\0asm-cpu")
            ),
        )
        .unwrap();
        dist
    }

    #[test]
    fn update_then_install_round_trips_and_a_source_change_makes_it_stale() {
        let d = tree();
        let r = d.path();
        assert_eq!(status(r).unwrap(), Status::Missing);
        let dist = built_app(r);
        let b = update(r, &dist).unwrap();
        assert_eq!(
            b.files.keys().collect::<Vec<_>>(),
            [
                "app-1.js",
                "app-1_bg.wasm",
                "index.html",
                "worker_bg.wasm",
                "worker_cpu_bg.wasm"
            ]
        );
        let html = std::fs::read_to_string(r.join(DIR).join("index.html")).unwrap();
        assert!(!html.contains("Content-Security-Policy"), "{html}");
        assert!(
            html.contains("<script type=\"module\">x</script>"),
            "{html}"
        );
        let Status::Fresh(fresh) = status(r).unwrap() else {
            panic!("fresh after update")
        };
        assert_eq!(fresh, b);
        // An earlier build's app file in the output folder goes, the models stay.
        let out = r.join("out");
        std::fs::create_dir_all(out.join("models")).unwrap();
        std::fs::write(out.join("app-0_bg.wasm"), "old").unwrap();
        std::fs::write(out.join("models/m.safetensors"), "m").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        install(r, &b, &out).unwrap();
        assert!(!out.join("app-0_bg.wasm").exists());
        assert!(out.join("models/m.safetensors").is_file());
        assert!(out.join("notes.txt").is_file());
        assert_eq!(
            std::fs::read(out.join("worker_bg.wasm")).unwrap(),
            b"\0asm-worker"
        );
        // A source change: stale, with both hashes.
        std::fs::write(r.join("web/src/lib.rs"), "fn a() { 1; }").unwrap();
        match status(r).unwrap() {
            Status::Stale { build, now } => {
                assert_eq!(build, b);
                assert_ne!(now, b.sources_sha256);
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn an_altered_or_missing_file_is_named_and_nothing_is_installed() {
        let d = tree();
        let r = d.path();
        let dist = built_app(r);
        let b = update(r, &dist).unwrap();
        let out = r.join("out");
        std::fs::write(
            r.join(DIR).join("worker_bg.wasm"),
            "version https://git-lfs",
        )
        .unwrap();
        let e = format!("{:#}", install(r, &b, &out).unwrap_err());
        assert!(
            e.contains("worker_bg.wasm") && e.contains("BUILD.json says"),
            "{e}"
        );
        assert!(!out.join("index.html").exists(), "nothing written");
        std::fs::remove_file(r.join(DIR).join("worker_bg.wasm")).unwrap();
        let e = format!("{:#}", install(r, &b, &out).unwrap_err());
        assert!(e.contains("worker_bg.wasm"), "{e}");
        // A name that leaves the folder is refused.
        let mut evil = b.clone();
        evil.files.insert(
            "../x.js".into(),
            FileEntry {
                bytes: 0,
                sha256: String::new(),
            },
        );
        let e = format!("{:#}", read_verified(&r.join(DIR), &evil).unwrap_err());
        assert!(e.contains("not a plain file name"), "{e}");
    }

    #[test]
    fn update_refuses_wasm_that_wasm_opt_did_not_write_and_a_partial_app() {
        let d = tree();
        let r = d.path();
        let dist = built_app(r);
        std::fs::remove_file(dist.join("worker_bg.wasm")).unwrap();
        let e = format!("{:#}", update(r, &dist).unwrap_err());
        assert!(
            e.contains("not a whole build") && e.contains("worker_bg.wasm"),
            "{e}"
        );
        std::fs::write(dist.join("worker_bg.wasm"), b"\0asm-worker").unwrap();
        std::fs::write(dist.join("worker_cpu_bg.wasm"), b"\0asm-raw").unwrap();
        let e = format!("{:#}", update(r, &dist).unwrap_err());
        assert!(
            e.contains("worker_cpu_bg.wasm") && e.contains("wasm-opt.sh"),
            "{e}"
        );
        assert_eq!(status(r).unwrap(), Status::Missing, "nothing written");
    }
}
