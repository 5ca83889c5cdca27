//! Training batches: augmented, preprocessed training images (CE batches) and active-fooling
//! composites (docs/method.md §5, Active).

use anyhow::Result;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::params::SplitMix;
use foolmap::{Dataset, augment};

use crate::io::data::Sample;

/// A batch: augmented training images, preprocessed.
pub fn train_batch(
    samples: &[Sample],
    dataset: Dataset,
    n: usize,
    rng: &mut SplitMix,
) -> Result<(Vec<Rgb8>, Vec<usize>)> {
    let mut imgs = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let s = &samples[rng.below(samples.len())];
        let img = s.rgb()?;
        imgs.push(match dataset {
            Dataset::Cifar10 => augment::cifar_train(&eval_crop(&img, dataset), rng),
            Dataset::ImageNet => augment::random_resized_crop(&img, 224, rng),
        });
        labels.push(s.label);
    }
    Ok((imgs, labels))
}

/// Composites of one `c1` and one `c2` image side by side, both orders (spec §3, Q15).
pub fn composite_batch(
    by_class: &[&[Sample]; 2],
    dataset: Dataset,
    n: usize,
    rng: &mut SplitMix,
) -> Result<Vec<Rgb8>> {
    (0..n)
        .map(|i| {
            let a = by_class[0][rng.below(by_class[0].len())].rgb()?;
            let b = by_class[1][rng.below(by_class[1].len())].rgb()?;
            let (a, b) = (eval_crop(&a, dataset), eval_crop(&b, dataset));
            Ok(if i % 2 == 0 {
                augment::side_by_side(&a, &b)
            } else {
                augment::side_by_side(&b, &a)
            })
        })
        .collect()
}
