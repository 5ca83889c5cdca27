//! The small texts the web build writes around wasm-bindgen's output: `index.html` from its
//! template, the page's start-up module and the workers' loaders. No inline script anywhere, so
//! that the page's Content-Security-Policy needs no script hash ([`crate::site`]). All URLs are
//! relative (`./…`): the built folder works under any path of a static host.

use anyhow::{Result, bail};

/// The line of `static/index.html` that [`page`] replaces with the [`Head`]'s tags.
pub const HEAD_MARKER: &str = "<!-- foolmap web-build: head -->";

/// The page's files that `index.html` links, by their file names in the output folder.
pub struct Head<'a> {
    /// The stylesheet.
    pub css: &'a str,
    /// The page's ES module (wasm-bindgen's JavaScript).
    pub module: &'a str,
    /// The page's wasm.
    pub wasm: &'a str,
    /// The module script that starts it ([`start_script`]).
    pub start: &'a str,
}

/// `template` with its one [`HEAD_MARKER`] line replaced by the stylesheet, the preloads of the
/// page's module and wasm (fetched in parallel with the start-up module) and the start-up module.
pub fn page(template: &str, head: &Head) -> Result<String> {
    let count = template.matches(HEAD_MARKER).count();
    if count != 1 {
        bail!("expected the line `{HEAD_MARKER}` once, found it {count} times");
    }
    let Head {
        css,
        module,
        wasm,
        start,
    } = head;
    for name in [css, module, wasm, start] {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!("not a plain file name for the page: {name:?}");
        }
    }
    let tags = format!(
        "<link rel=\"stylesheet\" href=\"./{css}\">\n  \
         <link rel=\"modulepreload\" href=\"./{module}\">\n  \
         <link rel=\"preload\" href=\"./{wasm}\" as=\"fetch\" type=\"application/wasm\" crossorigin=\"anonymous\">\n  \
         <script type=\"module\" src=\"./{start}\"></script>"
    );
    Ok(template.replace(HEAD_MARKER, &tags))
}

/// The page's start-up module: loads the module, whose `init` compiles the wasm and runs its
/// `main` (`web/src/bin/app.rs`).
pub fn start_script(module: &str, wasm: &str) -> String {
    format!(
        "// Starts the page's wasm (written by `foolmap web-build`).\n\
         import init from './{module}';\n\
         await init({{ module_or_path: './{wasm}' }});\n"
    )
}

/// The script the page starts as a worker (`web/src/lib.rs`: `./<bin>_loader.js`): wasm-bindgen's
/// `no-modules` glue for `<bin>`, then its wasm, whose `main` starts the worker.
pub fn worker_loader(bin: &str) -> String {
    format!(
        "importScripts(\"./{bin}.js\");\nwasm_bindgen({{ module_or_path: \"./{bin}_bg.wasm\" }});\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head<'static> {
        Head {
            css: "style-1.css",
            module: "app-2.js",
            wasm: "app-2_bg.wasm",
            start: "start-3.js",
        }
    }

    #[test]
    fn the_marker_becomes_the_heads_tags_with_relative_urls() {
        let t = format!("<head>\n  <title>t</title>\n  {HEAD_MARKER}\n</head><body></body>");
        let p = page(&t, &head()).unwrap();
        assert!(!p.contains(HEAD_MARKER), "{p}");
        for tag in [
            "<link rel=\"stylesheet\" href=\"./style-1.css\">",
            "<link rel=\"modulepreload\" href=\"./app-2.js\">",
            "<link rel=\"preload\" href=\"./app-2_bg.wasm\" as=\"fetch\"",
            "<script type=\"module\" src=\"./start-3.js\"></script>",
        ] {
            assert!(p.contains(tag), "{tag} not in {p}");
        }
        assert!(p.starts_with("<head>\n  <title>t</title>\n  <link") && p.ends_with("</body>"));
        // No inline script: the policy needs no hash.
        assert!(crate::site::inline_scripts(&p).is_empty(), "{p}");
    }

    #[test]
    fn a_missing_or_repeated_marker_or_an_odd_name_is_refused() {
        let e = page("<head></head>", &head()).unwrap_err().to_string();
        assert!(e.contains(HEAD_MARKER) && e.contains("0 times"), "{e}");
        let twice = format!("{HEAD_MARKER}{HEAD_MARKER}");
        let e = page(&twice, &head()).unwrap_err().to_string();
        assert!(e.contains("2 times"), "{e}");
        let mut h = head();
        h.css = "x\" onload=\"alert(1)";
        let e = page(HEAD_MARKER, &h).unwrap_err().to_string();
        assert!(e.contains("not a plain file name"), "{e}");
    }

    #[test]
    fn the_start_module_and_the_loader_name_their_files() {
        let s = start_script("app-2.js", "app-2_bg.wasm");
        assert!(s.contains("import init from './app-2.js';"), "{s}");
        assert!(s.contains("module_or_path: './app-2_bg.wasm'"), "{s}");
        let l = worker_loader("worker_cpu");
        assert!(l.starts_with("importScripts(\"./worker_cpu.js\");"), "{l}");
        assert!(
            l.contains("module_or_path: \"./worker_cpu_bg.wasm\""),
            "{l}"
        );
    }
}
