//! The selection / report split of an evaluation set (docs/method.md, "Protocol").
//!
//! Every choice of a recipe, a checkpoint or an average is made on the *selection* half; a final
//! model is scored once on the *report* half. The split must not depend on how the data are laid
//! out on disk: the data mirror stores CIFAR-10 as class folders of PNGs in file-name order, the
//! official archive as binary batches in another order. So an image is identified by its
//! content: [`content_key`], a 64-bit FNV-1a hash of its RGB bytes (row-major, RGB interleaved).
//! Within each class the images are sorted by key, and the first half of that order is the
//! selection half ([`stratified_halves`]): class-stratified, disjoint, and stable.

use std::collections::BTreeMap;

use crate::error::{FoolmapError, Result};

/// Which half of an evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Half {
    /// Where recipes, checkpoints and averages are chosen.
    Selection,
    /// Where a final model is scored, once.
    Report,
}

impl Half {
    /// Stable id (`selection`, `report`).
    pub fn id(self) -> &'static str {
        match self {
            Half::Selection => "selection",
            Half::Report => "report",
        }
    }
}

/// Which images of an evaluation set are scored: all, or one half (`eval --split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subset {
    /// Every image of the evaluation set.
    All,
    /// The selection half: choose recipes, checkpoints and averages here.
    Selection,
    /// The report half: score a final model here, once.
    Report,
}

impl Subset {
    /// Every subset, in the order the CLI lists them.
    pub const ALL: [Subset; 3] = [Subset::All, Subset::Selection, Subset::Report];

    /// The half, or `None` for `all`.
    pub fn half(self) -> Option<Half> {
        match self {
            Subset::All => None,
            Subset::Selection => Some(Half::Selection),
            Subset::Report => Some(Half::Report),
        }
    }

    /// Stable id (`all`, `selection`, `report`).
    pub fn id(self) -> &'static str {
        match self {
            Subset::All => "all",
            Subset::Selection => "selection",
            Subset::Report => "report",
        }
    }
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Subset {
    type Err = FoolmapError;
    fn from_str(s: &str) -> Result<Self> {
        Subset::ALL
            .into_iter()
            .find(|x| x.id() == s)
            .ok_or_else(|| FoolmapError::UnknownName {
                kind: "split",
                name: s.to_string(),
                choices: Subset::ALL.iter().map(|x| x.id().to_string()).collect(),
            })
    }
}

/// `splits/<dataset>-test.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFile {
    /// Format version (1).
    pub version: u32,
    /// Dataset id (`cifar10-test`).
    pub dataset: String,
    /// The rule in words.
    pub rule: String,
    /// Images per class in each half, in class order.
    pub per_class: Vec<[usize; 2]>,
    /// Content keys (16 hex digits) of the selection half, sorted.
    pub selection: Vec<String>,
    /// Content keys of the report half, sorted.
    pub report: Vec<String>,
    /// What a key hashes: `rgb` (the decoded pixels; lossless PNGs) or `file` (the file's bytes;
    /// JPEGs, whose decoded pixels may differ between decoder versions).
    #[serde(default, skip_serializing_if = "KeyKind::is_rgb")]
    pub key: KeyKind,
}

/// What a split key hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// The decoded RGB bytes.
    #[default]
    Rgb,
    /// The file's bytes.
    File,
}

impl KeyKind {
    fn is_rgb(&self) -> bool {
        *self == KeyKind::Rgb
    }
}

/// 64-bit FNV-1a of `bytes`: the identity of an image in the split.
pub fn content_key(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Key as the 16 hex digits used in split files.
pub fn key_hex(key: u64) -> String {
    format!("{key:016x}")
}

/// Assigns each image (its key and class) to a half: per class, sorted by key, the first
/// `⌊n_c / 2⌋` go to [`Half::Selection`], the rest to [`Half::Report`].
///
/// Two images with the same key (identical pixels) are an error naming the class, since their
/// order, and so their half, would then depend on the layout.
pub fn stratified_halves(items: &[(u64, usize)]) -> Result<Vec<Half>> {
    let mut by_class: BTreeMap<usize, Vec<(u64, usize)>> = BTreeMap::new();
    for (i, &(key, class)) in items.iter().enumerate() {
        by_class.entry(class).or_default().push((key, i));
    }
    let mut out = vec![Half::Report; items.len()];
    for (class, mut v) in by_class {
        v.sort_unstable();
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(FoolmapError::invalid(
                "split",
                format!(
                    "images {} and {} of class {class} have identical pixels (key {}); the split needs distinct images",
                    w[0].1,
                    w[1].1,
                    key_hex(w[0].0)
                ),
            ));
        }
        for &(_, i) in &v[..v.len() / 2] {
            out[i] = Half::Selection;
        }
    }
    Ok(out)
}

/// Assigns each image to a half without regard to class: all images sorted by key, the first
/// `⌊n / 2⌋` go to [`Half::Selection`]. For sets with about one image per class (the 1,000
/// ImageNet samples), where a per-class split would leave the selection half empty.
pub fn pooled_halves(keys: &[u64]) -> Result<Vec<Half>> {
    let mut v: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
    v.sort_unstable();
    if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(FoolmapError::invalid(
            "split",
            format!(
                "images {} and {} have the same key {}; the split needs distinct images",
                w[0].1,
                w[1].1,
                key_hex(w[0].0)
            ),
        ));
    }
    let mut out = vec![Half::Report; keys.len()];
    for &(_, i) in &v[..v.len() / 2] {
        out[i] = Half::Selection;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(content_key(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(content_key(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(content_key(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn halves_are_stratified_disjoint_and_independent_of_order() {
        // 3 classes × 7 images with distinct keys.
        let items: Vec<(u64, usize)> = (0..21u64)
            .map(|i| (content_key(&i.to_le_bytes()), (i % 3) as usize))
            .collect();
        let h = stratified_halves(&items).unwrap();
        for c in 0..3 {
            let sel = (0..21)
                .filter(|&i| items[i].1 == c && h[i] == Half::Selection)
                .count();
            assert_eq!(sel, 3, "class {c}: ⌊7/2⌋ selection images");
        }
        // Reversing the input order changes nothing about which image goes where.
        let rev: Vec<(u64, usize)> = items.iter().rev().copied().collect();
        let hr = stratified_halves(&rev).unwrap();
        for i in 0..21 {
            assert_eq!(h[i], hr[20 - i]);
        }
    }

    #[test]
    fn pooled_halves_split_by_key_alone_and_ignore_order() {
        let keys: Vec<u64> = (0..9u64).map(|i| content_key(&i.to_le_bytes())).collect();
        let h = pooled_halves(&keys).unwrap();
        assert_eq!(h.iter().filter(|x| **x == Half::Selection).count(), 4);
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        for (k, half) in keys.iter().zip(&h) {
            let rank = sorted.binary_search(k).unwrap();
            assert_eq!(*half == Half::Selection, rank < 4);
        }
        let rev: Vec<u64> = keys.iter().rev().copied().collect();
        let hr = pooled_halves(&rev).unwrap();
        assert!((0..9).all(|i| h[i] == hr[8 - i]));
        assert!(
            pooled_halves(&[3, 1, 3])
                .unwrap_err()
                .to_string()
                .contains("same key")
        );
    }

    #[test]
    fn identical_images_are_named() {
        let e = stratified_halves(&[(5, 0), (9, 0), (5, 0)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("identical pixels") && e.contains("class 0"),
            "{e}"
        );
    }
}
