//! The crate's layering: its top-level modules import each other without circles (issue #20), so
//! that each layer (io → models/batches → fool/eval → table/commands → cli) can be read and
//! tested on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Source without comment lines and without a trailing `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names right after each `prefix` (`crate::io::…` → `io`; `crate::{a, b::c}` → `a`, `b`).
fn referenced(code: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(|s| ident(s.trim())));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Module → the modules it uses, among the modules directly under `src` (a crate's `src` with
/// `prefix` `crate::`, or a module folder with `super::`, whose `mod.rs` is left out: a parent
/// declares its children).
fn graph(src: &Path, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    if prefix == "super::" {
        // `super::` in a folder's own files names its siblings; deeper files are not its children.
        files.retain(|f| f.parent() == Some(src) && !f.ends_with("mod.rs"));
    }
    let top = |p: &Path| -> String {
        let rel = p.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|p| top(p)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = top(f);
        if m == "lib" || m == "main" || m == "bin" {
            continue;
        }
        let deps = referenced(&code(&std::fs::read_to_string(f).unwrap()), prefix);
        g.entry(m.clone())
            .or_default()
            .extend(deps.into_iter().filter(|d| *d != m && modules.contains(d)));
    }
    g
}

/// A circle of `g`, if any (depth-first search for a back edge).
fn circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

/// Panics with the first circle among the modules directly under `dir`.
fn assert_no_circle(dir: &Path, prefix: &str) {
    if let Some(c) = circle(&graph(dir, prefix)) {
        panic!("import circle in {}: {}", dir.display(), c.join(" → "));
    }
}

#[test]
fn the_trainer_s_modules_import_each_other_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src, "crate::");
    // The checker sees edges: the CLI uses the commands, the commands the I/O layer.
    assert!(g["cli"].contains("cmd") && g["cmd"].contains("io"), "{g:?}");
    assert!(
        g["io"].is_empty(),
        "the I/O layer uses nothing above it: {g:?}"
    );
    if let Some(c) = circle(&g) {
        panic!("import circle: {}", c.join(" → "));
    }
    for sub in ["cmd", "eval", "fool", "io", "table", "bench"] {
        assert_no_circle(&src.join(sub), "super::");
    }
}

#[test]
fn the_page_and_the_worker_import_each_other_without_circles() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src");
    let g = graph(&web, "crate::");
    // The page and the worker share only the protocol and the state types.
    assert!(
        !g["page"].contains("worker") && !g["worker"].contains("page"),
        "{g:?}"
    );
    assert!(
        g["page"].contains("protocol") && g["worker"].contains("protocol"),
        "{g:?}"
    );
    assert_no_circle(&web, "crate::");
    assert_no_circle(&web.join("page"), "super::");
    assert_no_circle(&web.join("worker"), "super::");
}

#[test]
fn the_circle_check_finds_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circle(&g).unwrap().join(" → "), "a → b → c → a");
    g.get_mut("c").unwrap().clear();
    assert_eq!(circle(&g), None);
    assert_eq!(
        referenced(
            "use crate::{io::data, fool};\nlet x = crate::eval::run;",
            "crate::"
        ),
        ["eval", "fool", "io"].map(String::from).into()
    );
}
