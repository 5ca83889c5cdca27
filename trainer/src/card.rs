//! Model cards of released models (the types: [`foolmap::artifact::card`]): reading one, naming the
//! file on error. Loading a weights file that has a card beside it checks the file against the
//! card's SHA-256 first.

use std::path::Path;

use anyhow::Result;
pub use foolmap::artifact::card::{
    Card, EvaluationCounts, HalfFigures, Index, IndexEntry, TransferFsr,
};

pub use crate::io::weights::{card_path, verify_card as verify};

/// Reads and parses a card, naming the file on error.
pub fn read(path: &Path) -> Result<Card> {
    crate::io::json::read(path)
}
