//! A run's images: the training samples, the held-out validation set, the two classes of
//! active fooling, and the prefetched batches of every step.

use std::path::Path;

use anyhow::{Result, bail};
use foolmap::Dataset;
use foolmap::fooling::FoolingType;
use foolmap::image::Rgb8;
use foolmap::params::SplitMix;

use super::config::FoolConfig;
use super::validate;
use crate::batches::{composite_batch, train_batch};
use crate::io::data::{self, Sample};
use crate::io::prefetch::Prefetch;

/// The images of one step: augmented CE images with their labels, and composites for active
/// fooling.
pub(super) type StepImages = (Vec<Rgb8>, Vec<usize>, Option<Vec<Rgb8>>);

/// Decodes and augments the batches of steps `start + 1..=steps` on a prefetch thread, ahead of
/// the tensor work. The data of a step depends only on (seed, step): resuming replays it exactly.
pub(super) fn prefetch(
    cfg: &FoolConfig,
    dataset: Dataset,
    data: TrainingData,
    start: u64,
) -> Prefetch<StepImages> {
    let (seed, fool_n) = (cfg.seed, cfg.fool_batch_size);
    let schedule = cfg.clone();
    let active = cfg.fooling == FoolingType::Active;
    let TrainingData {
        samples, c1s, c2s, ..
    } = data;
    Prefetch::new(start + 1..=cfg.steps, 2, move |step| {
        let mut rng = SplitMix::new(seed.wrapping_mul(1_000_003).wrapping_add(step));
        let (imgs, labels) = train_batch(&samples, dataset, schedule.batch_at(step), &mut rng)?;
        let comp = if active {
            Some(composite_batch(&[&c1s, &c2s], dataset, fool_n, &mut rng)?)
        } else {
            None
        };
        Ok((imgs, labels, comp))
    })
}

/// A run's images: the training samples (all of `data`, or without the held-out validation
/// images), the validation set, and for active fooling the training images of `c1` and `c2`.
pub(super) struct TrainingData {
    pub(super) samples: Vec<Sample>,
    pub(super) val_set: Vec<Sample>,
    pub(super) c1s: Vec<Sample>,
    pub(super) c2s: Vec<Sample>,
}

/// Reads a run's [`TrainingData`] (labels are not read for a label-free run).
pub(super) fn training_data(
    cfg: &FoolConfig,
    dataset: Dataset,
    kind: FoolingType,
    root: Option<&Path>,
) -> Result<TrainingData> {
    let train_dir = match &cfg.data {
        Some(d) => d.clone(),
        None if cfg.selection_rest.is_some() => {
            data::default_dir(root, dataset, data::Split::Test)?
        }
        // Label-free runs of an ImageNet model train on CIFAR-10's training images (upscaled by
        // the crop): the ImageNet samples are the evaluation set and never trained on.
        None if cfg.distill => data::default_dir(root, Dataset::Cifar10, data::Split::Train)?,
        None => data::default_dir(root, dataset, data::Split::Train)?,
    };
    let all = match cfg.selection_rest {
        Some(n) => crate::eval::samples::selection_rest(dataset, &train_dir, n)?,
        None if cfg.distill => data::unlabelled(&train_dir)?,
        None => data::samples(dataset, &train_dir)?,
    };
    let (samples, val_set) = match (&cfg.val_data, cfg.val_every) {
        (_, 0) => (all, Vec::new()),
        (Some(dir), _) => {
            let v = data::samples(dataset, dir)?;
            let n = cfg.val_images.min(v.len());
            (all, validate::split(v, n).1)
        }
        (None, _) => {
            if cfg.val_images >= all.len() {
                bail!(
                    "`val_images` = {} leaves no training images of the {} in {}",
                    cfg.val_images,
                    all.len(),
                    train_dir.display()
                );
            }
            validate::split(all, cfg.val_images)
        }
    };
    let c1s: Vec<Sample> = samples
        .iter()
        .filter(|s| s.label == cfg.c1)
        .cloned()
        .collect();
    let c2s: Vec<Sample> = samples
        .iter()
        .filter(|s| s.label == cfg.c2)
        .cloned()
        .collect();
    if kind == FoolingType::Active && (c1s.is_empty() || c2s.is_empty()) {
        bail!(
            "active fooling: no training images of class {} or {} in {}",
            cfg.c1,
            cfg.c2,
            train_dir.display()
        );
    }
    Ok(TrainingData {
        samples,
        val_set,
        c1s,
        c2s,
    })
}
