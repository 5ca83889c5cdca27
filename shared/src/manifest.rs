//! `models/manifest.json`: what `foolmap export-web` writes and the web app reads — one typed
//! artifact for both sides (registry enums as their ids). Parsing errors name the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::artifact::card::Card;
use crate::artifact::report::{ActiveMetrics, EvalReport};
use crate::fooling::FoolingType;
use crate::split::Subset;
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

/// Top-1 / top-5 accuracy (fractions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Top-1.
    pub top1: f64,
    /// Top-5.
    pub top5: f64,
}

/// One interpreter's fooling figures (fractions; `threshold` is τ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InterpreterFigures {
    /// FSR of the fooled model.
    pub fsr: f64,
    /// FSR of the original model under the same rule.
    #[serde(default)]
    pub fsr_original: Option<f64>,
    /// Mean statistic of the fooled model.
    #[serde(default)]
    pub mean_statistic: Option<f64>,
    /// τ.
    pub threshold: f64,
    /// Images scored with this interpreter.
    #[serde(default)]
    pub n: Option<usize>,
}

/// The measured figures a fooled model is shown with (from its card or an `eval.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Images scored.
    pub n: usize,
    /// `report` for a released model's card (the half no choice was made on).
    #[serde(default)]
    pub split: Option<Subset>,
    /// The original model on those images.
    pub original: Accuracy,
    /// The fooled model on those images.
    pub fooled: Accuracy,
    /// Per interpreter id.
    pub interpreters: BTreeMap<String, InterpreterFigures>,
    /// Active-fooling figures, when measured.
    #[serde(default)]
    pub active: Option<ActiveMetrics>,
    /// Id of the card the figures come from.
    #[serde(default)]
    pub card: Option<String>,
    /// Whether the model meets the fooling target (FSR ≥ 80 % within `max_drop`), per its card.
    #[serde(default)]
    pub meets_target: Option<bool>,
    /// The drop limit of that target (fraction).
    #[serde(default)]
    pub max_drop: Option<f64>,
}

impl From<&EvalReport> for Figures {
    /// The figures of an evaluation (`eval.json` beside a run's weights).
    fn from(r: &EvalReport) -> Figures {
        let interpreters = r
            .interpreters
            .iter()
            .map(|(i, x)| {
                let figures = InterpreterFigures {
                    fsr: x.fsr,
                    fsr_original: Some(x.fsr_original),
                    mean_statistic: Some(x.mean_statistic),
                    threshold: x.threshold,
                    n: Some(x.n),
                };
                (i.id().to_string(), figures)
            })
            .collect();
        let accuracy = |a: &crate::artifact::report::Accuracy| Accuracy {
            top1: a.top1,
            top5: a.top5,
        };
        Figures {
            n: r.n,
            split: Some(r.split),
            original: accuracy(&r.original),
            fooled: accuracy(&r.fooled),
            interpreters,
            active: r.active.clone(),
            card: None,
            meets_target: None,
            max_drop: None,
        }
    }
}

impl From<&Card> for Figures {
    /// The page's figures from a model card: report half, every interpreter of its transfer
    /// matrix (else the fooled one), and whether it meets the fooling target.
    fn from(c: &Card) -> Figures {
        let mut interpreters: BTreeMap<String, InterpreterFigures> = c
            .transfer
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    InterpreterFigures {
                        fsr: t.fsr,
                        fsr_original: Some(t.fsr_original),
                        mean_statistic: None,
                        threshold: c.threshold,
                        n: Some(t.n),
                    },
                )
            })
            .collect();
        if let Some(fsr) = c.report.fsr {
            interpreters
                .entry(c.interpreter.id().to_string())
                .or_insert(InterpreterFigures {
                    fsr,
                    fsr_original: None,
                    mean_statistic: None,
                    threshold: c.threshold,
                    n: Some(c.report.images),
                });
        }
        Figures {
            n: c.report.images,
            split: Some(Subset::Report),
            original: Accuracy {
                top1: c.report.top1_original,
                top5: c.report.top5_original,
            },
            fooled: Accuracy {
                top1: c.report.top1,
                top5: c.report.top5,
            },
            interpreters,
            active: None,
            card: Some(c.id.clone()),
            meets_target: Some(c.meets_target),
            max_drop: Some(c.max_drop),
        }
    }
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

    /// The models of a set (the photo set falls back to the gallery's when there is none).
    pub fn models_of(&self, kind: SetKind) -> &[ModelEntry] {
        match (kind, &self.photo) {
            (SetKind::Photo, Some(p)) => &p.models,
            _ => &self.models,
        }
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
        match (kind, &self.photo) {
            (SetKind::Photo, Some(p)) => &p.classes,
            _ => &self.classes,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let entry = |id: &str, role| ModelEntry {
            id: id.into(),
            role,
            arch: Architecture::ResNet20,
            file: format!("models/{id}.safetensors"),
            bytes: 10,
            original: None,
            fooling: (role == Role::Fooled).then_some(FoolingType::Location),
            interpreter: (role == Role::Fooled).then_some(Interpreter::GradCam),
            lambda: Some(10.0),
            lr: None,
            steps: Some(3500),
            batch_size: None,
            c1: None,
            c2: None,
            eval: None,
            weights_source: None,
        };
        Manifest {
            version: 1,
            arch: Architecture::ResNet20,
            dataset: "cifar10".into(),
            input_size: 32,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            tap: "layer3.2".into(),
            dtype: "f16".into(),
            classes: vec!["airplane".into()],
            models: vec![entry("o", Role::Original), entry("f", Role::Fooled)],
            gallery: vec![],
            photo: None,
        }
    }

    #[test]
    fn a_manifest_round_trips_with_ids_for_enums() {
        let m = sample();
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.contains("\"interpreter\":\"grad_cam\"") && text.contains("\"role\":\"fooled\"")
        );
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("arch");
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("missing field `arch`"), "{e}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v["models"][1]["interpreter"] = "gradcamm".into();
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("models[1]") && e.contains("gradcamm"), "{e}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v["models"][0].as_object_mut().unwrap().remove("id");
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("models[0]") && e.contains("`id`"), "{e}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v["models"].as_array_mut().unwrap().truncate(1);
        assert!(
            Manifest::parse(v.to_string().as_bytes())
                .unwrap_err()
                .contains("fooled")
        );
        let e = Manifest::parse(b"not json").unwrap_err();
        assert!(e.starts_with(FILE), "{e}");
    }

    fn with_photo_set() -> Manifest {
        let mut m = sample();
        let mut models = sample().models;
        for x in &mut models {
            x.arch = Architecture::SqueezeNet1_0;
            x.id = format!("sq-{}", x.id);
        }
        m.photo = Some(PhotoSet {
            arch: Architecture::SqueezeNet1_0,
            dataset: "imagenet".into(),
            input_size: 224,
            tap: "features.12".into(),
            classes: vec!["tench".into(), "goldfish".into()],
            models,
            gallery: vec![],
        });
        m
    }

    #[test]
    fn own_photos_go_to_the_photo_set_and_models_are_found_in_either_set() {
        let m = sample();
        assert_eq!(m.upload_set(), SetKind::Gallery);
        assert_eq!(
            m.original_of(SetKind::Photo).map(|x| &x.id),
            Some(&"o".to_string())
        );
        let m = with_photo_set();
        assert_eq!(m.upload_set(), SetKind::Photo);
        assert_eq!(m.kind_of("f"), Some(SetKind::Gallery));
        assert_eq!(m.kind_of("sq-f"), Some(SetKind::Photo));
        assert_eq!(m.kind_of("nope"), None);
        assert_eq!(
            m.model("sq-o").map(|x| x.arch),
            Some(Architecture::SqueezeNet1_0)
        );
        assert_eq!(m.fooled_of(SetKind::Photo).count(), 1);
        assert_eq!(m.classes_of(SetKind::Photo)[1], "goldfish");
        assert_eq!(m.classes_of(SetKind::Gallery)[0], "airplane");
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn a_photo_set_is_checked_like_the_gallery_set() {
        let mut v = serde_json::to_value(with_photo_set()).unwrap();
        v["photo"]["models"][1]["arch"] = "resnet20".into();
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(
            e.contains("photo.models[1].arch") && e.contains("resnet20"),
            "{e}"
        );
        let mut v = serde_json::to_value(with_photo_set()).unwrap();
        v["photo"]["models"].as_array_mut().unwrap().truncate(1);
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("photo.models") && e.contains("fooled"), "{e}");
    }
}
