//! The measured figures a fooled model is shown with in the page: from its card (report half)
//! or from an `eval.json` beside a run's weights.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::artifact::card::Card;
use crate::artifact::report::{ActiveMetrics, EvalReport};
use crate::split::Subset;

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
