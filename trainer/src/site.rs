//! The page's Content-Security-Policy: its own origin only, wasm compilation allowed, and any
//! inline script allowed by its SHA-256 only (no `'unsafe-inline'`; the page `foolmap web-build`
//! writes has none). `export-web` writes it into `index.html` as a `<meta>` tag for static
//! hosts; the demo server also sends it as a header.

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::io::atomic::write_atomic;

/// The policy without the script hashes.
pub const CSP_BASE: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{HASHES}; \
worker-src 'self'; img-src 'self' data: blob:; style-src 'self'; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'none'";

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bodies of the inline `<script>` elements (those without `src`) of an HTML page.
pub fn inline_scripts(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<script") {
        let after = &rest[i..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let tag = &after[..open_end];
        let body_start = open_end + 1;
        let Some(close) = after[body_start..].find("</script>") else {
            break;
        };
        if !tag.contains(" src=") {
            out.push(&after[body_start..body_start + close]);
        }
        rest = &after[body_start + close..];
    }
    out
}

/// The policy for `html`: [`CSP_BASE`] with a `'sha256-…'` source per inline script.
pub fn csp_for(html: &str) -> String {
    let hashes: String = inline_scripts(html)
        .iter()
        .map(|s| format!(" 'sha256-{}'", base64(&Sha256::digest(s.as_bytes()))))
        .collect();
    CSP_BASE.replace("{HASHES}", &hashes)
}

const META_START: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"";

/// `html` without the policy's `<meta>` tag (and the line break before it) that
/// [`add_csp_meta`] wrote; unchanged when there is none. `path` names the file in errors.
fn remove_csp_meta(html: &str, path: &Path) -> Result<String> {
    let mut html = html.to_string();
    if let Some(i) = html.find(META_START) {
        let end = html[i..]
            .find("\">")
            .map(|e| i + e + 2)
            .with_context(|| format!("{}: unterminated CSP meta tag", path.display()))?;
        let start = if html[..i].ends_with("\n  ") {
            i - 3
        } else {
            i
        };
        html.replace_range(start..end, "");
    }
    Ok(html)
}

/// Writes the policy into `index_html` as the first element of `<head>` (replacing one written
/// before). A missing file is left alone (the app was not built into that folder).
pub fn add_csp_meta(index_html: &Path) -> Result<()> {
    let Ok(html) = std::fs::read_to_string(index_html) else {
        return Ok(());
    };
    let mut html = remove_csp_meta(&html, index_html)?;
    let csp = csp_for(&html);
    let at = html
        .find("<head>")
        .map(|i| i + "<head>".len())
        .with_context(|| format!("{}: no <head>", index_html.display()))?;
    html.insert_str(at, &format!("\n  {META_START}{csp}\">"));
    write_atomic(index_html, html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_scripts_by_hash() {
        let html = "<html><head><script src=\"a.js\"></script><script type=\"module\">\nimport x from './a.js';\n</script></head></html>";
        assert_eq!(inline_scripts(html), vec!["\nimport x from './a.js';\n"]);
        let csp = csp_for(html);
        let h = base64(&Sha256::digest(b"\nimport x from './a.js';\n"));
        assert!(csp.contains(&format!("'sha256-{h}'")), "{csp}");
        assert!(!csp.contains("unsafe-inline"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index.html");
        std::fs::write(&p, html).unwrap();
        add_csp_meta(&p).unwrap();
        add_csp_meta(&p).unwrap();
        let out = std::fs::read_to_string(&p).unwrap();
        assert_eq!(out.matches("Content-Security-Policy").count(), 1, "{out}");
        assert_eq!(csp_for(&out), csp, "the meta tag holds no script");
        assert_eq!(
            remove_csp_meta(&out, &p).unwrap(),
            html,
            "removal restores the page"
        );
    }
}
