//! The manifest written by `foolmap export-web`, the computed outputs, and small pure helpers
//! (tested natively).

use foolmap::Interpreter;
use foolmap::fooling::FoolingType;
use foolmap::image::Rgb8;
use serde::{Deserialize, Serialize};

use crate::Backend;
use crate::wire::{nan, nan2, nanmap, nanvec, rgb8};

/// The manifest, its models and gallery entries: the shared typed artifact that
/// `foolmap export-web` writes ([`foolmap::manifest`]).
pub use foolmap::manifest::{GalleryEntry, Manifest, ModelEntry, SetKind};

/// What the controls select.
#[derive(Clone, Debug)]
pub struct Selection {
    /// (original, fooled).
    pub models: (ModelEntry, ModelEntry),
    pub interpreter: Interpreter,
    /// Overlay opacity in [0, 1].
    pub opacity: f32,
}

/// Maps of one interpreter for both models: (values, h, w).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MapPair {
    pub interpreter: Interpreter,
    #[serde(with = "nanmap")]
    pub original: (Vec<f32>, usize, usize),
    #[serde(with = "nanmap")]
    pub fooled: (Vec<f32>, usize, usize),
}

/// Per-image statistics of the selected interpreter's maps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    /// Location statistic (spec §7.2) of (original, fooled); lower = more frame-shaped.
    #[serde(with = "nan2")]
    pub location: (f64, f64),
    /// Top-k statistic of the fooled map at the original's top-10 % cells.
    #[serde(with = "nan")]
    pub topk: f64,
    /// Fraction of the original's top-10 % cells still in the fooled top-10 %.
    #[serde(with = "nan")]
    pub topk_overlap: f64,
    /// Centre-of-mass shift (spec §5.3, in [0, 1]).
    #[serde(with = "nan")]
    pub center_shift: f64,
    /// Spearman rank correlation of the two maps.
    #[serde(with = "nan")]
    pub spearman: f64,
    /// Share of the (non-negative part of the) map on the Location frame: (original, fooled).
    #[serde(with = "nan2")]
    pub frame_mass: (f64, f64),
    /// Whether each map is constant (no information).
    pub constant: (bool, bool),
}

/// One computed view (computed in the worker, drawn by the page).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Output {
    pub backend: Backend,
    pub model: String,
    pub interpreter: Interpreter,
    pub image_title: String,
    /// The model's input crop, for the overlays.
    #[serde(with = "rgb8")]
    pub crop: Rgb8,
    pub class: usize,
    /// `label` (the gallery's) or `original top-1`.
    pub class_source: String,
    #[serde(with = "logits")]
    pub logits: (Vec<f32>, Vec<f32>),
    pub maps: Vec<MapPair>,
    pub stats: Option<Stats>,
    /// Whether more maps of this computation follow: the worker sends the selected
    /// interpreter's maps first, then the whole transfer grid in a second output.
    pub partial: bool,
    /// Wall time of the computation so far (ms).
    pub ms: f64,
    /// Both forward passes with the logits read back (ms).
    pub forward_ms: f64,
    /// Per interpreter id: both models' maps, read back (ms).
    pub timings: Vec<(String, f64)>,
}

/// Logits of both models, values that may be NaN.
mod logits {
    use super::*;
    #[derive(Serialize, Deserialize)]
    struct Wire(
        #[serde(with = "nanvec")] Vec<f32>,
        #[serde(with = "nanvec")] Vec<f32>,
    );
    pub fn serialize<S: serde::Serializer>(
        v: &(Vec<f32>, Vec<f32>),
        s: S,
    ) -> Result<S::Ok, S::Error> {
        Wire(v.0.clone(), v.1.clone()).serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<(Vec<f32>, Vec<f32>), D::Error> {
        let Wire(a, b) = Wire::deserialize(d)?;
        Ok((a, b))
    }
}

/// Fooling types offered live: the registry's passive ones (Active needs composites; it stays
/// in the CLI).
pub fn live_types() -> Vec<FoolingType> {
    FoolingType::ALL
        .iter()
        .copied()
        .filter(|k| k.is_passive())
        .collect()
}

/// Checks the live settings (the page before sending them, the worker before running them).
pub fn live_settings(kind: FoolingType, lambda: f64, lr: f64) -> Result<(), String> {
    if !live_types().contains(&kind) {
        return Err(format!(
            "{kind} fooling is not offered live (it needs composites)"
        ));
    }
    if !(lambda.is_finite() && lambda >= 0.0 && lr.is_finite() && lr > 0.0) {
        return Err("λ must be ≥ 0 and the learning rate > 0".into());
    }
    Ok(())
}

/// Overlap of the top-10 % cells (K = ⌊hw/10⌋, spec §5.2) of two maps, in [0, 1].
pub fn topk_overlap(a: &[f32], b: &[f32]) -> f64 {
    let k = (a.len() / 10).max(1);
    let ta = foolmap::scores::top_k(a, k);
    let tb = foolmap::scores::top_k(b, k);
    ta.iter().filter(|i| tb.contains(i)).count() as f64 / k as f64
}

/// Share of the positive mass on the Location frame (width ⌊h/7⌋, spec §5.1).
pub fn frame_mass(m: &[f32], h: usize, w: usize) -> f64 {
    let mask = foolmap::fooling::location_mask(h, w);
    let pos = |v: f32| {
        if v.is_finite() {
            v.max(0.0) as f64
        } else {
            0.0
        }
    };
    let total: f64 = m.iter().map(|&v| pos(v)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    m.iter()
        .zip(&mask)
        .map(|(&v, &k)| pos(v) * k as f64)
        .sum::<f64>()
        / total
}

/// True when every finite value is equal (or none is finite).
pub fn is_constant(m: &[f32]) -> bool {
    let mut it = m.iter().copied().filter(|v| v.is_finite());
    match it.next() {
        None => true,
        Some(first) => it.all(|v| v == first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_reads_the_shared_manifest_type() {
        let text = r#"{"version":1,"arch":"resnet20","dataset":"cifar10","input_size":32,
            "mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"tap":"layer3.2","dtype":"f16",
            "classes":["a","b"],
            "models":[{"id":"o","role":"original","arch":"resnet20","file":"models/o.safetensors","bytes":10},
                      {"id":"f","role":"fooled","arch":"resnet20","file":"models/f.safetensors",
                       "fooling":"location","interpreter":"grad_cam","lambda":2.0,"steps":100}],
            "gallery":[{"file":"gallery/a.png","name":"a 1","label":0}]}"#;
        let m = Manifest::parse(text.as_bytes()).expect("parse");
        assert_eq!(m.arch, foolmap::Architecture::ResNet20);
        assert_eq!(m.original().map(|o| o.id.as_str()), Some("o"));
        assert_eq!(m.fooled().count(), 1);
        assert_eq!(m.gallery[0].label, Some(0));
        let e =
            Manifest::parse(br#"{"arch":"resnet20","models":[{"role":"original"}]}"#).unwrap_err();
        assert!(e.contains("models[0]") && e.contains("`id`"), "{e}");
    }

    #[test]
    fn helpers() {
        assert!((topk_overlap(&[0.0; 20], &[0.0; 20]) - 1.0).abs() < 1e-12);
        assert!(is_constant(&[0.3; 5]) && !is_constant(&[0.3, 0.4]));
        assert!(is_constant(&[f32::NAN]));
    }
}
