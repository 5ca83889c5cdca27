//! `foolmap web-build` generates the wasm binaries' JavaScript with the `wasm-bindgen-cli-support`
//! library, whose output must match the `wasm-bindgen` crate the wasm was compiled with: both
//! pins must name the same exact version.

mod common;

use common::repo;

/// The version requirement of `dep` in the `[dependencies]` of the manifest at `path` (relative to
/// the repository root).
fn pin(path: &str, dep: &str) -> String {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let v = &doc["dependencies"][dep];
    v.as_str()
        .or_else(|| v.get("version").and_then(|v| v.as_str()))
        .unwrap_or_else(|| panic!("{path}: no version for {dep}"))
        .to_string()
}

#[test]
fn the_bindings_library_is_pinned_to_the_wasm_bindgen_of_the_web_crate() {
    let web = pin("web/Cargo.toml", "wasm-bindgen");
    let cli = pin("trainer/Cargo.toml", "wasm-bindgen-cli-support");
    assert!(
        web.starts_with('='),
        "web/Cargo.toml: wasm-bindgen {web} is not an exact pin"
    );
    assert_eq!(
        cli, web,
        "trainer's wasm-bindgen-cli-support vs web's wasm-bindgen"
    );
}

/// `foolmap web-build …` run in `dir`: (success, stderr).
fn web_build(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .arg("web-build")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_build_says_where_it_must_run_and_what_must_come_first() {
    // Outside the repository root: nothing is built, and the message says where to run it.
    let tmp = tempfile::tempdir().unwrap();
    let (ok, err) = web_build(tmp.path(), &["--dist", "out"]);
    assert!(!ok);
    assert!(
        err.contains("web/Cargo.toml") && err.contains("repository root"),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists());
    // The WebGPU worker goes into a page build: refused before any compilation without one.
    let empty = tmp.path().join("empty");
    let (ok, err) = web_build(
        &repo(),
        &["--part", "webgpu", "--dist", empty.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        err.contains("holds no page build") && err.contains("--part page"),
        "{err}"
    );
    assert!(!empty.exists());
}
