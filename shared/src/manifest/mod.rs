//! `models/manifest.json`: what `foolmap export-web` writes and the web app reads — one typed
//! artifact for both sides (registry enums as their ids). Parsing errors name the field.

mod figures;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use figures::{Accuracy, Figures, InterpreterFigures};

use crate::fooling::FoolingType;
use crate::{Architecture, Interpreter};

/// A model's part in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The pretrained model.
    Original,
    /// A fine-tuned (fooled) model.
    Fooled,
}

/// One model of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Id (also its file's stem).
    pub id: String,
    /// Original or fooled.
    pub role: Role,
    /// Architecture.
    pub arch: Architecture,
    /// Weights file, relative to the page.
    pub file: String,
    /// Its size in bytes.
    #[serde(default)]
    pub bytes: u64,
    /// The original model's id (fooled models).
    #[serde(default)]
    pub original: Option<String>,
    /// Fooling type (fooled models).
    #[serde(default)]
    pub fooling: Option<FoolingType>,
    /// Interpreter fooled (fooled models).
    #[serde(default)]
    pub interpreter: Option<Interpreter>,
    /// λ of the run's first phase.
    #[serde(default)]
    pub lambda: Option<f64>,
    /// Learning rate of the run's first phase.
    #[serde(default)]
    pub lr: Option<f64>,
    /// Training steps of the weights.
    #[serde(default)]
    pub steps: Option<u64>,
    /// Batch size of the run.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Active fooling classes.
    #[serde(default)]
    pub c1: Option<usize>,
    /// Active fooling classes.
    #[serde(default)]
    pub c2: Option<usize>,
    /// The figures measured for it.
    #[serde(default)]
    pub eval: Option<Figures>,
    /// File name the weights were exported from.
    #[serde(default)]
    pub weights_source: Option<String>,
}

/// One gallery image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryEntry {
    /// File, relative to the page.
    pub file: String,
    /// Shown name.
    pub name: String,
    /// Its class, when known.
    #[serde(default)]
    pub label: Option<usize>,
    /// A small square preview (96 × 96 JPEG), relative to the page, for a large photo: the
    /// gallery shows it and the page fetches `file` only when the image is chosen. `None`: the
    /// image is small enough to be its own preview (CIFAR-10's 32 × 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb: Option<String>,
}

impl GalleryEntry {
    /// What the gallery shows: the preview, or the image itself.
    pub fn preview(&self) -> &str {
        self.thumb.as_deref().unwrap_or(&self.file)
    }
}

/// Which model set an image goes to: the gallery's models (the manifest's top level) or the
/// photo-scale set for a user's own photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetKind {
    /// The top-level models (e.g. CIFAR-10 ResNet-20) and their gallery.
    Gallery,
    /// The photo-scale models (e.g. ImageNet SqueezeNet 1.0, 224²) for uploaded photos.
    Photo,
}

/// A second model set of another architecture: the photo-scale models a user's own photos are
/// explained with (uploads, drops, pastes), with their own demo photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoSet {
    /// Architecture of every model of the set.
    pub arch: Architecture,
    /// `cifar10` or `imagenet`.
    pub dataset: String,
    /// Input side in pixels.
    pub input_size: usize,
    /// Tap layer name.
    pub tap: String,
    /// Class names in class order.
    pub classes: Vec<String>,
    /// The set's original and fooled models.
    pub models: Vec<ModelEntry>,
    /// Demo photos.
    #[serde(default)]
    pub gallery: Vec<GalleryEntry>,
}

/// One model set as the page reads it: the gallery set (the manifest's top level) or the
/// photo set, borrowed from the manifest ([`Manifest::set`]).
#[derive(Debug, Clone, Copy)]
pub struct SetView<'a> {
    /// Architecture of the set's models.
    pub arch: Architecture,
    /// `cifar10` or `imagenet`.
    pub dataset: &'a str,
    /// Input side in pixels.
    pub input_size: usize,
    /// Class names in class order.
    pub classes: &'a [String],
    /// The set's original and fooled models.
    pub models: &'a [ModelEntry],
    /// Its demo images.
    pub gallery: &'a [GalleryEntry],
}

/// `models/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// Architecture of every model.
    pub arch: Architecture,
    /// `cifar10` or `imagenet`.
    pub dataset: String,
    /// Input side in pixels.
    pub input_size: usize,
    /// Normalisation mean (RGB).
    pub mean: [f32; 3],
    /// Normalisation standard deviation (RGB).
    pub std: [f32; 3],
    /// Tap layer name.
    pub tap: String,
    /// Storage type of the weights (`f16` or `f32`).
    pub dtype: String,
    /// Class names in class order.
    pub classes: Vec<String>,
    /// The models.
    pub models: Vec<ModelEntry>,
    /// Demo images.
    #[serde(default)]
    pub gallery: Vec<GalleryEntry>,
    /// The photo-scale models for a user's own photos, when exported.
    #[serde(default)]
    pub photo: Option<PhotoSet>,
}

/// Where errors point.
const FILE: &str = "models/manifest.json";

impl Manifest {
    /// Parses and checks a manifest; errors name the file and the field (e.g.
    /// `models[1].interpreter`).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = crate::artifact::from_json(bytes, FILE).map_err(|e| e.to_string())?;
        check_set(&m.models, m.arch, "models")?;
        if let Some(p) = &m.photo {
            check_set(&p.models, p.arch, "photo.models")?;
        }
        Ok(m)
    }

    /// The original model of the gallery set.
    pub fn original(&self) -> Option<&ModelEntry> {
        self.original_of(SetKind::Gallery)
    }

    /// The fooled models of the gallery set.
    pub fn fooled(&self) -> impl Iterator<Item = &ModelEntry> {
        self.fooled_of(SetKind::Gallery)
    }

    /// One set's facts, borrowed (the photo set falls back to the gallery's when there is none).
    pub fn set(&self, kind: SetKind) -> SetView<'_> {
        match (kind, &self.photo) {
            (SetKind::Photo, Some(p)) => SetView {
                arch: p.arch,
                dataset: &p.dataset,
                input_size: p.input_size,
                classes: &p.classes,
                models: &p.models,
                gallery: &p.gallery,
            },
            _ => SetView {
                arch: self.arch,
                dataset: &self.dataset,
                input_size: self.input_size,
                classes: &self.classes,
                models: &self.models,
                gallery: &self.gallery,
            },
        }
    }

    /// The models of a set.
    pub fn models_of(&self, kind: SetKind) -> &[ModelEntry] {
        self.set(kind).models
    }

    /// The original model of a set.
    pub fn original_of(&self, kind: SetKind) -> Option<&ModelEntry> {
        self.models_of(kind)
            .iter()
            .find(|m| m.role == Role::Original)
    }

    /// The fooled models of a set.
    pub fn fooled_of(&self, kind: SetKind) -> impl Iterator<Item = &ModelEntry> {
        self.models_of(kind)
            .iter()
            .filter(|m| m.role == Role::Fooled)
    }

    /// Class names of a set's models.
    pub fn classes_of(&self, kind: SetKind) -> &[String] {
        self.set(kind).classes
    }

    /// The set a user's own image goes to: the photo set when exported, else the gallery's.
    pub fn upload_set(&self) -> SetKind {
        if self.photo.is_some() {
            SetKind::Photo
        } else {
            SetKind::Gallery
        }
    }

    /// The set holding the model with this id.
    pub fn kind_of(&self, id: &str) -> Option<SetKind> {
        if self.models.iter().any(|m| m.id == id) {
            Some(SetKind::Gallery)
        } else if self
            .photo
            .as_ref()
            .is_some_and(|p| p.models.iter().any(|m| m.id == id))
        {
            Some(SetKind::Photo)
        } else {
            None
        }
    }

    /// The model with this id, in either set.
    pub fn model(&self, id: &str) -> Option<&ModelEntry> {
        let photo = self.photo.iter().flat_map(|p| p.models.iter());
        self.models.iter().chain(photo).find(|m| m.id == id)
    }
}

/// A set needs an original and a fooled model, all of its architecture.
fn check_set(models: &[ModelEntry], arch: Architecture, field: &str) -> Result<(), String> {
    if !models.iter().any(|x| x.role == Role::Original) {
        return Err(format!("{FILE}: {field}: no model with role `original`"));
    }
    if !models.iter().any(|x| x.role == Role::Fooled) {
        return Err(format!("{FILE}: {field}: no model with role `fooled`"));
    }
    if let Some((i, m)) = models.iter().enumerate().find(|(_, m)| m.arch != arch) {
        return Err(format!(
            "{FILE}: {field}[{i}].arch: `{}` in a set of `{arch}` models",
            m.arch
        ));
    }
    Ok(())
}
