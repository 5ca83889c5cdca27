//! The images an evaluation reads: a half of the committed split in a fixed class interleaving,
//! decoded and cropped; the report grid's images.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foolmap::burn::tensor::Device;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::params::SplitMix;
use foolmap::scores::{read_back, top_k};
use foolmap::{Dataset, Net, ParamStore};

use crate::io::data::{self, Sample};
use crate::split::Subset;

/// Metadata of a fooled checkpoint (`arch`, `config`).
pub(super) fn metadata(path: &Path) -> Option<std::collections::BTreeMap<String, String>> {
    crate::io::weights::read_metadata(path).ok()
}

pub(super) fn images(samples: &[Sample], dataset: Dataset) -> Result<Vec<Rgb8>> {
    samples
        .iter()
        .map(|s| Ok(eval_crop(&s.rgb()?, dataset)))
        .collect()
}

/// Images of the report grid: the first 8 PNG/JPEG files of `dir` (sorted by name), cropped for
/// the model, each with the original model's top-1 class.
pub(super) fn grid_set(
    dir: &Path,
    net: &Net,
    p0: &ParamStore,
    device: &Device,
) -> Result<(Vec<Rgb8>, Vec<usize>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--grid-images {}: cannot read the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    files.truncate(8);
    if files.is_empty() {
        bail!(
            "--grid-images {}: no PNG or JPEG images in the folder",
            dir.display()
        );
    }
    let imgs = files
        .iter()
        .map(|f| Ok(eval_crop(&crate::io::image::read_image(f)?, net.dataset)))
        .collect::<Result<Vec<_>>>()?;
    let x = foolmap::image::batch(&imgs, device)?;
    let logits = read_back(net.seq.forward(p0, x))?;
    let labels = logits
        .chunks(net.num_classes)
        .map(|l| top_k(l, 1).first().copied().unwrap_or(0))
        .collect();
    Ok((imgs, labels))
}

/// The evaluation images of `dir` in evaluation order: the split's half (CIFAR-10 test only),
/// then a fixed interleaving over classes (seed 20) so that any prefix keeps every class, then
/// the first `limit`. `eval`, the table's selection and report stages and its analyses all
/// read images through this one function.
pub fn eval_samples(
    dataset: Dataset,
    dir: &Path,
    split: Subset,
    limit: Option<usize>,
) -> Result<Vec<Sample>> {
    let mut samples = data::samples(dataset, dir)?;
    if let Some(half) = split.half() {
        samples = crate::split::select(samples, &crate::split::committed(dataset)?, half)
            .with_context(|| format!("--split {} of {}", split.id(), dir.display()))?;
    }
    if dataset == Dataset::Cifar10 {
        // A fixed interleaving over classes, so that `--limit` keeps every class.
        let mut rng = SplitMix::new(20);
        for i in (1..samples.len()).rev() {
            samples.swap(i, rng.below(i + 1));
        }
    }
    if let Some(l) = limit {
        samples.truncate(l);
    }
    Ok(samples)
}

/// The selection-half images of the evaluation folder `dir` after the first `n`, in the order
/// `eval --split selection` scores them (the same function reads them): the images left for
/// training when the first `n` choose checkpoints (`fool --selection-rest`). Errors when none
/// are left or `dir` is not the split's image set.
pub fn selection_rest(dataset: Dataset, dir: &Path, n: usize) -> Result<Vec<Sample>> {
    let half = eval_samples(dataset, dir, Subset::Selection, None).map_err(|e| {
        anyhow::anyhow!(
            "invalid config field `selection_rest` (data {}): {e:#}",
            dir.display()
        )
    })?;
    if n >= half.len() {
        bail!(
            "invalid config field `selection_rest`: {n} leaves none of the {} selection-half \
             images of {} for training",
            half.len(),
            dir.display()
        );
    }
    Ok(half.into_iter().skip(n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use foolmap::Architecture;

    fn png(path: &Path, rgb: [u8; 3]) {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb(rgb));
        img.save(path).expect("write png");
    }

    #[test]
    fn grid_images_are_cropped_and_labelled_with_the_original_top1() {
        let dir = std::env::temp_dir().join(format!("foolmap-grid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        png(&dir.join("b.png"), [200, 10, 10]);
        png(&dir.join("a.png"), [10, 10, 200]);
        std::fs::write(dir.join("notes.txt"), "not an image").expect("txt");
        let device = Device::flex();
        let net = Architecture::ResNet20.build();
        let p0 = ParamStore::random(&net.specs, 1, &device);
        let (imgs, labels) = grid_set(&dir, &net, &p0, &device).expect("grid set");
        assert_eq!(imgs.len(), 2, "the text file is skipped");
        assert!(imgs.iter().all(|i| i.width == 32 && i.height == 32));
        // Sorted by name: a.png (blue) first.
        assert!(imgs[0].data[2] > imgs[0].data[0]);
        assert!(labels.iter().all(|&l| l < 10));
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).expect("dir");
        let e = grid_set(&empty, &net, &p0, &device)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--grid-images") && e.contains("no PNG or JPEG"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
