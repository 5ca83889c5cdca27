//! `scripts/web-tools.sh`, offline: a local HTTP server on 127.0.0.1 serves release archives in
//! the layouts the two projects publish (trunk: the binary at the archive's root and a bare-hex
//! `.sha256`; wasm-bindgen: a versioned folder and a `sha256sum`-style `.sha256sum`) at their
//! release URL paths. The tools stand in as shell scripts that print their version. Checks: what
//! the release path installs and records, that an installed tool is not fetched again, that a bad
//! checksum, a wrong version or a missing asset is refused with the URL named and nothing
//! installed, that plain HTTP is refused off loopback, and that `auto` falls back to
//! `cargo install` with the right arguments (a stand-in `cargo` records them).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{repo, serve_files};
use foolmap_trainer::io::hash::sha256_bytes;

/// The pinned versions, as the script sets them: (trunk, wasm-bindgen).
fn versions() -> (String, String) {
    let script = std::fs::read_to_string(repo().join("scripts/web-tools.sh")).unwrap();
    let get = |key: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in scripts/web-tools.sh"))
            .to_string()
    };
    (get("TRUNK_VERSION"), get("WASM_BINDGEN_VERSION"))
}

/// The release builds' target triple for this machine (what the script picks).
fn triple() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        other => panic!("no release build for {other:?}"),
    }
}

/// A shell script at `path` that prints `<name> <version>` for `--version`.
fn stand_in(path: &Path, name: &str, version: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\necho \"{name} {version}\"\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `tar czf archive -C dir member`.
fn tar_gz(archive: &Path, dir: &Path, member: &str) {
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let ok = Command::new("tar")
        .arg("czf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .arg(member)
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar czf {}", archive.display());
}

/// What the server publishes: the two archives with the given tool versions inside, and their
/// checksum files (`corrupt`: trunk's names other bytes).
struct Release {
    trunk_version: String,
    wasm_bindgen_version: String,
    corrupt: bool,
}

/// The release URL paths of the pinned versions: (trunk archive, wasm-bindgen archive).
fn paths() -> (String, String) {
    let (tv, wv) = versions();
    let t = triple();
    (
        format!("trunk-rs/trunk/releases/download/v{tv}/trunk-{t}.tar.gz"),
        format!("wasm-bindgen/wasm-bindgen/releases/download/{wv}/wasm-bindgen-{wv}-{t}.tar.gz"),
    )
}

/// Writes `release` under `root` at the release URL paths.
fn publish(root: &Path, release: &Release) {
    let (_, wv) = versions();
    let (trunk_path, wb_path) = paths();
    let build = tempfile::tempdir().unwrap();
    stand_in(&build.path().join("trunk"), "trunk", &release.trunk_version);
    let trunk = root.join(&trunk_path);
    tar_gz(&trunk, build.path(), "trunk");
    let mut sum = sha256_bytes(&std::fs::read(&trunk).unwrap());
    if release.corrupt {
        sum = sha256_bytes(b"other bytes");
    }
    std::fs::write(
        root.join(format!("{trunk_path}.sha256")),
        format!("{sum}\n"),
    )
    .unwrap();
    let folder = format!("wasm-bindgen-{wv}-{}", triple());
    stand_in(
        &build.path().join(&folder).join("wasm-bindgen"),
        "wasm-bindgen",
        &release.wasm_bindgen_version,
    );
    let wb = root.join(&wb_path);
    tar_gz(&wb, build.path(), &folder);
    let sum = sha256_bytes(&std::fs::read(&wb).unwrap());
    std::fs::write(
        root.join(format!("{wb_path}.sha256sum")),
        format!("{sum}  gh-release/{folder}.tar.gz\n"),
    )
    .unwrap();
}

fn good() -> Release {
    let (tv, wv) = versions();
    Release {
        trunk_version: tv,
        wasm_bindgen_version: wv,
        corrupt: false,
    }
}

/// Runs the script with `mode` against `base`, installing into `tools`; `env` adds variables.
fn run(mode: &str, base: &str, tools: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/web-tools.sh"))
        .env("FOOLMAP_WEB_TOOLS", mode)
        .env("FOOLMAP_WEB_TOOLS_BASE", base)
        .env("FOOLMAP_WEB_TOOLS_DIR", tools);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The version a tool under `tools/bin` prints.
fn reports(tools: &Path, name: &str) -> String {
    let out = Command::new(tools.join("bin").join(name))
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Leftover download folders under `tools`.
fn leftovers(tools: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tools)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".download")
        })
        .collect()
}

#[test]
fn the_script_pins_the_wasm_bindgen_version_of_the_web_crate() {
    let (_, wv) = versions();
    let manifest = std::fs::read_to_string(repo().join("web/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("wasm-bindgen = \"={wv}\"")),
        "web/Cargo.toml does not pin wasm-bindgen ={wv} (trunk needs the CLI of the crate's exact version)"
    );
}

#[test]
fn release_builds_are_checked_installed_recorded_and_not_fetched_twice() {
    let served = tempfile::tempdir().unwrap();
    publish(served.path(), &good());
    let server = serve_files(served.path().to_path_buf());
    let tools = tempfile::tempdir().unwrap();
    let out = run("release", &server.base, tools.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let (tv, wv) = versions();
    assert_eq!(reports(tools.path(), "trunk"), format!("trunk {tv}"));
    assert_eq!(
        reports(tools.path(), "wasm-bindgen"),
        format!("wasm-bindgen {wv}")
    );
    let (trunk_path, wb_path) = paths();
    let installed = std::fs::read_to_string(tools.path().join("installed.txt")).unwrap();
    let lines: Vec<&str> = installed.lines().collect();
    assert_eq!(lines.len(), 2, "{installed}");
    let trunk_sum = sha256_bytes(&std::fs::read(served.path().join(&trunk_path)).unwrap());
    assert_eq!(
        lines[0],
        format!(
            "trunk {tv} release {}/{trunk_path} sha256:{trunk_sum}",
            server.base
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "wasm-bindgen {wv} release {}/{wb_path} sha256:",
            server.base
        )),
        "{installed}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 4);
    assert!(leftovers(tools.path()).is_empty());

    // Installed at the pinned versions: nothing is fetched again.
    let again = run("release", &server.base, tools.path(), &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(server.requests.lock().unwrap().len(), 4);
    let installed = std::fs::read_to_string(tools.path().join("installed.txt")).unwrap();
    assert_eq!(installed.lines().count(), 2);
}

#[test]
fn a_bad_checksum_a_wrong_version_or_a_missing_asset_is_refused_naming_the_url() {
    let (tv, _) = versions();
    let (trunk_path, _) = paths();
    let cases = [
        (
            Release {
                corrupt: true,
                ..good()
            },
            "its SHA-256 is",
        ),
        (
            Release {
                trunk_version: "0.0.1".into(),
                ..good()
            },
            &*format!("reports version '0.0.1', not {tv}"),
        ),
    ];
    for (release, says) in &cases {
        let served = tempfile::tempdir().unwrap();
        publish(served.path(), release);
        let server = serve_files(served.path().to_path_buf());
        let tools = tempfile::tempdir().unwrap();
        let out = run("release", &server.base, tools.path(), &[]);
        let msg = text(&out);
        assert!(!out.status.success(), "{msg}");
        assert!(msg.contains(says), "{msg}");
        assert!(
            msg.contains(&format!("{}/{trunk_path}", server.base)),
            "{msg}"
        );
        assert!(!tools.path().join("bin/trunk").exists());
        assert!(leftovers(tools.path()).is_empty());
    }
    // Nothing published.
    let empty = tempfile::tempdir().unwrap();
    let server = serve_files(empty.path().to_path_buf());
    let tools = tempfile::tempdir().unwrap();
    let out = run("release", &server.base, tools.path(), &[]);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains(&format!("cannot download {}/{trunk_path}", server.base)),
        "{msg}"
    );
    assert!(leftovers(tools.path()).is_empty());
}

#[test]
fn plain_http_off_loopback_and_unknown_modes_are_refused() {
    let tools = tempfile::tempdir().unwrap();
    let out = run("release", "http://example.org", tools.path(), &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("HTTPS only"), "{}", text(&out));
    let out = run("sometimes", "https://github.com", tools.path(), &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("FOOLMAP_WEB_TOOLS=sometimes: expected auto, release or source"),
        "{}",
        text(&out)
    );
    assert!(!tools.path().join("bin/trunk").exists());
}

#[test]
fn auto_compiles_a_tool_whose_release_fails() {
    // trunk's archive does not match its checksum; wasm-bindgen's is fine.
    let served = tempfile::tempdir().unwrap();
    publish(
        served.path(),
        &Release {
            corrupt: true,
            ..good()
        },
    );
    let server = serve_files(served.path().to_path_buf());
    let tools = tempfile::tempdir().unwrap();
    // A stand-in `cargo` first on PATH (HOME elsewhere, so that ~/.cargo/bin does not come
    // first): it records its arguments and installs a trunk that prints the pinned version.
    let fake = tempfile::tempdir().unwrap();
    let log = fake.path().join("cargo.log");
    let (tv, wv) = versions();
    std::fs::write(
        fake.path().join("cargo"),
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nroot=$(echo \"$@\" | sed 's/.*--root \\([^ ]*\\).*/\\1/')\nmkdir -p \"$root/bin\"\nprintf '#!/bin/sh\\necho \"trunk {tv}\"\\n' > \"$root/bin/trunk\"\nchmod 755 \"$root/bin/trunk\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        fake.path().join("cargo"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let home = std::env::var_os("HOME").unwrap();
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .unwrap_or_else(|| PathBuf::from(&home).join(".rustup").into_os_string());
    let path = std::env::join_paths(
        std::iter::once(fake.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = run(
        "auto",
        &server.base,
        tools.path(),
        &[
            ("PATH", &path),
            ("HOME", fake.path().as_os_str()),
            ("RUSTUP_HOME", &rustup_home),
        ],
    );
    let msg = text(&out);
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains("the release build failed (above); compiling it instead"),
        "{msg}"
    );
    let args = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "install trunk --version {tv} --root {} -q --locked",
            tools.path().display()
        )
    );
    assert_eq!(reports(tools.path(), "trunk"), format!("trunk {tv}"));
    assert_eq!(
        reports(tools.path(), "wasm-bindgen"),
        format!("wasm-bindgen {wv}")
    );
    let installed = std::fs::read_to_string(tools.path().join("installed.txt")).unwrap();
    assert!(
        installed.starts_with(&format!(
            "trunk {tv} cargo-install crates.io\nwasm-bindgen {wv} release "
        )),
        "{installed}"
    );
}
