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
}
