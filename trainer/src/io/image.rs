//! Images as files: decoding a PNG or JPEG from disk, encoding PNG bytes.

use std::path::Path;

use anyhow::{Context, Result};
use foolmap::image::Rgb8;

/// Decodes an image file (PNG or JPEG), naming the file on error.
pub fn read_image(path: &Path) -> Result<Rgb8> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
    Ok(foolmap::image::decode(&bytes, &path.display().to_string())?)
}

/// PNG bytes of an RGB image.
pub fn png_bytes(img: &Rgb8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let buf = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone())
        .context("image buffer size")?;
    image::DynamicImage::ImageRgb8(buf)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
    Ok(out)
}
