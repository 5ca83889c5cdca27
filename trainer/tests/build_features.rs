//! The binary says which backend features it was built with (`foolmap --version`, and every
//! bench block), so a measured figure names its build. That the default build really compiles
//! Burn's fast paths is checked on the dependency graph by `scripts/test.sh` (`cargo tree`).

use std::process::Command;

fn version() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_foolmap"))
        .arg("--version")
        .output()
        .expect("run foolmap --version");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn version_reports_this_builds_backend_features() {
    let v = version();
    assert!(v.contains(&foolmap_trainer::build_features()), "{v}");
    assert!(
        v.starts_with(&format!("foolmap {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    // The vector unit picked at run time, which decides whether the direct 3×3 convolutions run.
    let unit = foolmap::model::vector_unit();
    assert!(["AVX-512", "AVX2", "baseline"].contains(&unit), "{unit}");
    assert!(
        v.contains(&format!("own CPU kernels on this machine: {unit}")),
        "{v}"
    );
}

/// `foolmap --version` with `FOOLMAP_MALLOC` set to `value` (or unset).
fn version_with_malloc(value: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_foolmap"));
    cmd.arg("--version")
        .env_remove(foolmap_trainer::malloc::ENV);
    if let Some(v) = value {
        cmd.env(foolmap_trainer::malloc::ENV, v);
    }
    let out = cmd.output().expect("run foolmap --version");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

/// glibc accepted both settings (`mallopt` returns 1 only for a value it takes), and
/// `FOOLMAP_MALLOC=default` leaves its defaults, as `--version` and the bench blocks say.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn version_reports_the_allocator_thresholds_glibc_accepted() {
    let tuned = version_with_malloc(None);
    assert!(
        tuned.contains("allocator: glibc, buffers kept (mmap threshold 1024 MiB, no trimming)"),
        "{tuned}"
    );
    let off = version_with_malloc(Some("default"));
    assert!(off.contains("allocator: glibc defaults"), "{off}");
}
