//! `foolmap archs`: the architecture registry with dataset, tap layer and size.

use anyhow::Result;
use foolmap::Architecture;
use serde::Serialize;

/// One architecture as `foolmap archs --json` prints it.
#[derive(Debug, Serialize)]
pub struct ArchRow {
    /// Registry id.
    pub id: Architecture,
    /// Dataset it classifies (`Cifar10`, `ImageNet`).
    pub dataset: String,
    /// The layer whose input the tap-level maps explain.
    pub tap: String,
    /// Number of parameters.
    pub parameters: usize,
    /// File name of its pretrained weights in the data root, if any.
    pub weights_in_data_root: Option<&'static str>,
}

/// Every registered architecture.
pub fn rows() -> Vec<ArchRow> {
    Architecture::ALL
        .iter()
        .map(|&a| {
            let net = a.build();
            ArchRow {
                id: a,
                dataset: format!("{:?}", a.dataset()),
                tap: net.tap_name().to_string(),
                parameters: net.num_parameters(),
                weights_in_data_root: a.weights_file(),
            }
        })
        .collect()
}

/// Prints the registry as a table or (`json_out`) one JSON array.
pub fn run(json_out: bool) -> Result<()> {
    let rows = rows();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<9} {:<38} {:>12}",
        "id", "dataset", "tap (input of)", "parameters"
    );
    for r in rows {
        println!(
            "{:<14} {:<9} {:<38} {:>12}",
            r.id.id(),
            r.dataset,
            r.tap,
            r.parameters
        );
    }
    Ok(())
}
