//! Training-time augmentation (spec §3) and the active-fooling composites (spec §3, Q15), on
//! RGB images, with an explicit random generator so that a run is reproducible from its seed.

use crate::image::{Rgb8, resize_bilinear};
use crate::params::SplitMix;

/// Horizontal flip.
pub fn hflip(img: &Rgb8) -> Rgb8 {
    let mut data = img.data.clone();
    for y in 0..img.height {
        for x in 0..img.width {
            let (d, s) = (
                (y * img.width + x) * 3,
                (y * img.width + img.width - 1 - x) * 3,
            );
            data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    Rgb8 {
        width: img.width,
        height: img.height,
        data,
    }
}

/// CIFAR augmentation: zero-pad 4 pixels, random 32×32 crop, random horizontal flip.
pub fn cifar_train(img: &Rgb8, rng: &mut SplitMix) -> Rgb8 {
    let (w, h) = (img.width, img.height);
    let (ox, oy) = (rng.below(9) as i64 - 4, rng.below(9) as i64 - 4);
    let mut data = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x as i64 + ox, y as i64 + oy);
            if sx >= 0 && sy >= 0 && (sx as usize) < w && (sy as usize) < h {
                let (d, s) = ((y * w + x) * 3, (sy as usize * w + sx as usize) * 3);
                data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
            }
        }
    }
    let out = Rgb8 {
        width: w,
        height: h,
        data,
    };
    if rng.uniform() < 0.5 {
        hflip(&out)
    } else {
        out
    }
}

/// torchvision `RandomResizedCrop(size)` (scale (0.08, 1), ratio (3/4, 4/3), 10 tries, then a
/// centre crop fallback) followed by `RandomHorizontalFlip`.
pub fn random_resized_crop(img: &Rgb8, size: usize, rng: &mut SplitMix) -> Rgb8 {
    let (w, h) = (img.width as f64, img.height as f64);
    let area = w * h;
    let mut rect = None;
    for _ in 0..10 {
        let target = area * (0.08 + 0.92 * rng.uniform());
        let (lr0, lr1) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
        let ratio = (lr0 + (lr1 - lr0) * rng.uniform()).exp();
        let cw = (target * ratio).sqrt().round();
        let ch = (target / ratio).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let x0 = rng.below((w - cw) as usize + 1);
            let y0 = rng.below((h - ch) as usize + 1);
            rect = Some((x0, y0, cw as usize, ch as usize));
            break;
        }
    }
    let (x0, y0, cw, ch) = rect.unwrap_or_else(|| {
        let s = img.width.min(img.height);
        ((img.width - s) / 2, (img.height - s) / 2, s, s)
    });
    let mut data = Vec::with_capacity(cw * ch * 3);
    for y in y0..y0 + ch {
        let row = (y * img.width + x0) * 3;
        data.extend_from_slice(&img.data[row..row + cw * 3]);
    }
    let crop = Rgb8 {
        width: cw,
        height: ch,
        data,
    };
    let out = resize_bilinear(&crop, size, size);
    if rng.uniform() < 0.5 {
        hflip(&out)
    } else {
        out
    }
}

/// A two-object composite (spec §3, Q15): `left` and `right` each squeezed to half the width
/// and placed side by side, giving an image of the same size as the inputs.
pub fn side_by_side(left: &Rgb8, right: &Rgb8) -> Rgb8 {
    let (w, h) = (left.width, left.height);
    let half = w / 2;
    let l = resize_bilinear(left, half, h);
    let r = resize_bilinear(&resize_bilinear(right, right.width, h), w - half, h);
    let mut data = vec![0u8; w * h * 3];
    for y in 0..h {
        data[y * w * 3..y * w * 3 + half * 3]
            .copy_from_slice(&l.data[y * half * 3..(y + 1) * half * 3]);
        let rw = w - half;
        data[(y * w + half) * 3..(y + 1) * w * 3]
            .copy_from_slice(&r.data[y * rw * 3..(y + 1) * rw * 3]);
    }
    Rgb8 {
        width: w,
        height: h,
        data,
    }
}
