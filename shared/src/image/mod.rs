//! Image decoding and the exact torchvision preprocessing (spec §3): PIL bilinear resize with
//! antialiasing, center crop, `ToTensor`, `Normalize`. Bytes in, tensors out; no file I/O.

mod resize;

#[cfg(feature = "tensor")]
use burn::tensor::{Device, Tensor, TensorData};

use crate::arch::Dataset;
use crate::error::{FoolmapError, Result};

pub use resize::{center_crop, resize_bilinear, resize_shorter};

/// Largest accepted image side (pixels): larger headers are refused before decoding.
pub const MAX_SIDE: u32 = 12_000;

/// Most pixels accepted in one image (a 48-megapixel photo fits): 150 MB of RGB at most.
pub const MAX_PIXELS: u64 = 50_000_000;

/// Largest accepted ratio of the long to the short side. Preprocessing resizes the short side
/// to 256 pixels, so an extreme strip (1 × 12,000) would otherwise become a 256 × 3,072,000
/// image: the ratio, not the file size, bounds that memory.
pub const MAX_ASPECT: u32 = 16;

/// Refuses dimensions beyond [`MAX_SIDE`], [`MAX_PIXELS`] or [`MAX_ASPECT`], before any pixel is
/// decoded or resized (the CLI and the browser worker share this check).
pub fn check_dimensions(w: u32, h: u32) -> std::result::Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("the image is {w}×{h} pixels: empty"));
    }
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "the header claims {w}×{h} pixels; at most {MAX_SIDE} per side are accepted"
        ));
    }
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "the header claims {w}×{h} = {} pixels; at most {MAX_PIXELS} are accepted",
            w as u64 * h as u64
        ));
    }
    let (long, short) = (w.max(h), w.min(h));
    if long > short.saturating_mul(MAX_ASPECT) {
        return Err(format!(
            "the image is {w}×{h} pixels; sides more than {MAX_ASPECT}:1 apart are not accepted"
        ));
    }
    Ok(())
}

/// An RGB image, 8 bits per channel, row-major `[h, w, 3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height·width·3` bytes.
    pub data: Vec<u8>,
}

/// Decodes PNG, JPEG (and other formats the `image` crate knows) into RGB; `name` labels errors.
///
/// Headers claiming more than [`MAX_SIDE`] pixels on a side, or needing more than 1 GiB, are
/// refused before any pixel is decoded.
pub fn decode(bytes: &[u8], name: &str) -> Result<Rgb8> {
    let err = |reason: String| FoolmapError::Image {
        name: name.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(err("the file is empty".into()));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(err(
            "not a recognised image format (expected PNG or JPEG)".into()
        ));
    }
    // Read the header alone first, so that an oversized image is refused with its size.
    if let Some((w, h)) = header_dimensions(bytes) {
        check_dimensions(w, h).map_err(err)?;
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| err(e.to_string()))?;
    check_dimensions(img.width(), img.height()).map_err(err)?;
    // `into_rgb8` reuses the buffer of an RGB image instead of copying it.
    let rgb = img.into_rgb8();
    Ok(Rgb8 {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Width and height from the header alone: the PNG IHDR chunk, else what the decoder reports.
fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    const PNG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    if bytes.len() >= 24 && bytes[..8] == PNG && &bytes[12..16] == b"IHDR" {
        let be =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        return Some((be(16), be(20)));
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The evaluation pipeline of `dataset`: ImageNet `Resize(256) → CenterCrop(224)`; CIFAR-10
/// images are used as they are when 32×32, otherwise `Resize(32) → CenterCrop(32)`.
pub fn eval_crop(img: &Rgb8, dataset: Dataset) -> Rgb8 {
    match dataset {
        Dataset::ImageNet => center_crop(&resize_shorter(img, 256), 224),
        Dataset::Cifar10 => {
            if img.width == 32 && img.height == 32 {
                img.clone()
            } else {
                center_crop(&resize_shorter(img, 32), 32)
            }
        }
    }
}

/// `ToTensor` + `Normalize(mean, std)`: CHW `f32` values of one image.
pub fn normalize(img: &Rgb8) -> Vec<f32> {
    let hw = img.width * img.height;
    let mut out = vec![0f32; 3 * hw];
    for i in 0..hw {
        for c in 0..3 {
            let v = img.data[i * 3 + c] as f32 / 255.0;
            out[c * hw + i] = (v - Dataset::MEAN[c]) / Dataset::STD[c];
        }
    }
    out
}

/// Inverse of [`normalize`] for display: CHW values back to RGB bytes.
pub fn denormalize(chw: &[f32], width: usize, height: usize) -> Rgb8 {
    let hw = width * height;
    let mut data = vec![0u8; hw * 3];
    for i in 0..hw {
        for c in 0..3 {
            let v = chw[c * hw + i] * Dataset::STD[c] + Dataset::MEAN[c];
            data[i * 3 + c] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    Rgb8 {
        width,
        height,
        data,
    }
}

#[cfg(feature = "tensor")]
/// Stacks preprocessed images (all the same size) into a `[N, 3, H, W]` tensor.
pub fn batch(images: &[Rgb8], device: &Device) -> Result<Tensor<4>> {
    let first = images
        .first()
        .ok_or_else(|| FoolmapError::invalid("images", "no image given"))?;
    let (w, h) = (first.width, first.height);
    let mut v = Vec::with_capacity(images.len() * 3 * w * h);
    for img in images {
        if (img.width, img.height) != (w, h) {
            return Err(FoolmapError::Tensor {
                name: "image batch".into(),
                expected: format!("{w}×{h} images"),
                found: format!("{}×{}", img.width, img.height),
            });
        }
        v.extend(normalize(img));
    }
    Ok(Tensor::from_data(
        TensorData::new(v, [images.len(), 3, h, w]),
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_inputs_are_errors() {
        assert!(
            decode(b"", "e.png")
                .unwrap_err()
                .to_string()
                .contains("e.png")
        );
        let e = decode(b"hello, not an image", "notes.txt").unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
    }

    #[test]
    fn huge_png_header_is_refused_without_decoding() {
        // A valid PNG signature and IHDR chunk claiming 30000×30000, with no pixel data.
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(30000u32.to_be_bytes());
        ihdr.extend(30000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc32(&ihdr).to_be_bytes());
        let e = decode(&png, "huge.png").unwrap_err().to_string();
        assert!(e.contains("huge.png") && e.contains("30000×30000"), "{e}");
    }

    #[test]
    fn strips_and_too_many_pixels_are_refused_before_decoding() {
        let png = |w: u32, h: u32| {
            let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            let mut ihdr = b"IHDR".to_vec();
            ihdr.extend(w.to_be_bytes());
            ihdr.extend(h.to_be_bytes());
            ihdr.extend([8, 2, 0, 0, 0]);
            png.extend(13u32.to_be_bytes());
            png.extend(&ihdr);
            png.extend(crc32(&ihdr).to_be_bytes());
            png
        };
        let e = decode(&png(1, 12_000), "strip.png")
            .unwrap_err()
            .to_string();
        assert!(e.contains("strip.png") && e.contains("16:1"), "{e}");
        let e = decode(&png(11_000, 11_000), "big.png")
            .unwrap_err()
            .to_string();
        assert!(e.contains("121000000 pixels"), "{e}");
        assert!(check_dimensions(8000, 6000).is_ok(), "a 48 MP photo");
        assert!(check_dimensions(4096, 256).is_ok());
        assert!(check_dimensions(4097, 256).is_err());
        assert!(check_dimensions(0, 5).is_err());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
}
