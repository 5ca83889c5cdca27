//! The files beside the models: the built app copied into a static site, and the gallery's
//! demo images copied from the data root.

use std::path::Path;

use anyhow::{Context, Result, bail};
use foolmap::Dataset;
use foolmap::manifest::GalleryEntry;

use crate::io::atomic::write_atomic;
use crate::io::data;

/// Copies the built app (the top-level files of `foolmap web-build`'s output: `index.html`, scripts, wasm,
/// styles) from `app` into `site`.
pub(super) fn copy_app(app: &Path, site: &Path) -> Result<()> {
    if !app.join("index.html").is_file() {
        bail!(
            "--site: {} holds no built app (index.html): run `foolmap web-build` first, or pass \
             the app's folder with --out",
            app.display()
        );
    }
    if !app.join("worker_loader.js").is_file() {
        println!(
            "note: {} has no WebGPU worker yet (`foolmap web-build --part webgpu` builds it): the \
             site's page will run on the CPU",
            app.display()
        );
    }
    std::fs::create_dir_all(site).with_context(|| format!("cannot create {}", site.display()))?;
    for e in std::fs::read_dir(app).with_context(|| format!("cannot read {}", app.display()))? {
        let p = e?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if p.is_file() && matches!(ext, "html" | "js" | "wasm" | "css") {
            let dest = site.join(p.file_name().context("file name")?);
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            write_atomic(&dest, &bytes)?;
        }
    }
    Ok(())
}

/// Copies demo images into `out/gallery/`: the first `per_class` CIFAR-10 test images of every
/// class, or the demo photos for ImageNet models. Returns the manifest entries.
pub(super) fn copy_gallery(
    dataset: Dataset,
    per_class: usize,
    root: Option<&Path>,
    out: &Path,
) -> Result<Vec<GalleryEntry>> {
    let root = data::data_root(root)?;
    let dir = out.join("gallery");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut entries = Vec::new();
    match dataset {
        Dataset::Cifar10 => {
            let names = foolmap::labels::names(dataset, None);
            let samples = data::cifar10(&root.join("cifar10/test"))?;
            let mut count = vec![0usize; names.len()];
            for s in &samples {
                if count[s.label] >= per_class {
                    continue;
                }
                count[s.label] += 1;
                let file = format!("{}_{}.png", names[s.label], count[s.label]);
                let img = s.rgb()?;
                write_atomic(&dir.join(&file), &crate::io::image::png_bytes(&img)?)?;
                entries.push(GalleryEntry {
                    file: format!("gallery/{file}"),
                    label: Some(s.label),
                    name: format!("{} {}", names[s.label], count[s.label]),
                    thumb: None,
                });
            }
        }
        Dataset::ImageNet => {
            let photos = root.join("photos");
            for (f, label) in [
                ("pets.jpg", Some(180usize)),
                ("cat.png", None),
                ("coffee.png", Some(504)),
                ("parrot.jpg", None),
            ] {
                let src = photos.join(f);
                if let Ok(bytes) = std::fs::read(&src) {
                    write_atomic(&dir.join(f), &bytes)?;
                    let thumb = format!("thumb-{}.jpg", f.rsplit_once('.').map_or(f, |(s, _)| s));
                    write_atomic(&dir.join(&thumb), &thumbnail(&bytes, &src)?)?;
                    entries.push(GalleryEntry {
                        file: format!("gallery/{f}"),
                        label,
                        name: f.into(),
                        thumb: Some(format!("gallery/{thumb}")),
                    });
                }
            }
        }
    }
    Ok(entries)
}

/// Side of a photo's gallery preview in pixels (shown at 48 CSS pixels: sharp at 2× density).
pub const THUMB_SIDE: u32 = 96;

/// A photo's gallery preview: the centre square, resized to [`THUMB_SIDE`]² (triangle filter),
/// as a JPEG of quality 85. `path` names the photo in errors.
pub(super) fn thumbnail(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let img = image::load_from_memory(bytes)
        .with_context(|| format!("{}: cannot decode the photo", path.display()))?
        .resize_to_fill(
            THUMB_SIDE,
            THUMB_SIDE,
            image::imageops::FilterType::Triangle,
        )
        .to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .with_context(|| format!("{}: cannot encode its preview", path.display()))?;
    Ok(out)
}
