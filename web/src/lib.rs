//! foolmap in the browser. For now the page lists the architectures of the registry, each with
//! its dataset, tap layer and parameter count, computed by the same `foolmap` library the CLI
//! uses (the full demo comes with the browser issue). Only the `#[wasm_bindgen]` surface lives
//! here; no `unwrap` on anything the page can receive.

use foolmap::Architecture;
use wasm_bindgen::prelude::*;

/// One row of the architecture table as JSON: `[{"id", "dataset", "tap", "parameters"}]`.
#[wasm_bindgen]
pub fn architectures_json() -> String {
    let rows: Vec<serde_json::Value> = Architecture::ALL
        .iter()
        .map(|a| {
            let net = a.build();
            let n = net.num_parameters();
            serde_json::json!({"id": a.id(), "dataset": format!("{:?}", a.dataset()),
                               "tap": net.tap_name(), "parameters": n})
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// Interpreter ids of the registry (drives the dropdowns).
#[wasm_bindgen]
pub fn interpreters_json() -> String {
    let ids: Vec<&str> = foolmap::Interpreter::ALL.iter().map(|i| i.id()).collect();
    serde_json::json!(ids).to_string()
}

/// Fills the element `#archs` with the architecture table.
#[wasm_bindgen(start)]
pub fn start() -> Result<(), JsValue> {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return Ok(());
    };
    let Some(el) = doc.get_element_by_id("archs") else {
        return Ok(());
    };
    let mut html = String::from(
        "<table><thead><tr><th>id</th><th>dataset</th><th>tap (input of)</th><th>parameters</th></tr></thead><tbody>",
    );
    for a in Architecture::ALL {
        let net = a.build();
        let n = net.num_parameters();
        html.push_str(&format!(
            "<tr data-arch=\"{}\"><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
            a.id(),
            a.id(),
            a.dataset(),
            net.tap_name(),
            n
        ));
    }
    html.push_str("</tbody></table>");
    el.set_inner_html(&html);
    if let Some(status) = doc.get_element_by_id("status") {
        status.set_text_content(Some(&format!("{} architectures", Architecture::ALL.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_json_lists_every_architecture() {
        let v: serde_json::Value =
            serde_json::from_str(&super::architectures_json()).unwrap_or_default();
        assert_eq!(
            v.as_array().map(Vec::len),
            Some(foolmap::Architecture::ALL.len())
        );
    }
}
