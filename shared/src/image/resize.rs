//! The geometry of torchvision's preprocessing (spec §3): PIL's fixed-point bilinear resize with
//! antialiasing, `Resize(size)` on the shorter side, and `CenterCrop`.

use super::Rgb8;

/// PIL's bilinear filter.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point coefficients of PIL's `precompute_coeffs` for one axis: `(start, weights)` per
/// output position.
fn coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = (((center + support + 0.5) as i64).min(in_size as i64) as usize).max(xmin);
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| triangle((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&k| {
                    let k = if total != 0.0 { k / total } else { k };
                    let v = k * (1u64 << PRECISION_BITS) as f64;
                    if v < 0.0 {
                        (v - 0.5) as i64
                    } else {
                        (v + 0.5) as i64
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes like `PIL.Image.resize(size, BILINEAR)` on an RGB image (8-bit fixed point,
/// horizontal pass then vertical pass), which is what torchvision's `Resize` does on PIL images.
pub fn resize_bilinear(img: &Rgb8, width: usize, height: usize) -> Rgb8 {
    let mut cur = img.clone();
    if width != cur.width {
        let cs = coeffs(cur.width, width);
        let mut out = vec![0u8; cur.height * width * 3];
        for y in 0..cur.height {
            for (xx, (start, ks)) in cs.iter().enumerate() {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, k) in ks.iter().enumerate() {
                        acc += cur.data[(y * cur.width + start + j) * 3 + c] as i64 * k;
                    }
                    out[(y * width + xx) * 3 + c] = clip8(acc);
                }
            }
        }
        cur = Rgb8 {
            width,
            height: cur.height,
            data: out,
        };
    }
    if height != cur.height {
        let cs = coeffs(cur.height, height);
        let mut out = vec![0u8; height * cur.width * 3];
        for (yy, (start, ks)) in cs.iter().enumerate() {
            for x in 0..cur.width {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, k) in ks.iter().enumerate() {
                        acc += cur.data[((start + j) * cur.width + x) * 3 + c] as i64 * k;
                    }
                    out[(yy * cur.width + x) * 3 + c] = clip8(acc);
                }
            }
        }
        cur = Rgb8 {
            width: cur.width,
            height,
            data: out,
        };
    }
    cur
}

/// torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer
/// `int(size · long / short)`.
pub fn resize_shorter(img: &Rgb8, size: usize) -> Rgb8 {
    let (w, h) = (img.width, img.height);
    let (nw, nh) = if w <= h {
        (size, (size as f64 * h as f64 / w as f64) as usize)
    } else {
        ((size as f64 * w as f64 / h as f64) as usize, size)
    };
    if (nw, nh) == (w, h) {
        img.clone()
    } else {
        resize_bilinear(img, nw, nh)
    }
}

/// Python's `round` (half to even).
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

/// torchvision `CenterCrop(size)` (pads with zeros when the image is smaller).
pub fn center_crop(img: &Rgb8, size: usize) -> Rgb8 {
    let top = round_half_even((img.height as f64 - size as f64) / 2.0);
    let left = round_half_even((img.width as f64 - size as f64) / 2.0);
    let mut out = vec![0u8; size * size * 3];
    for y in 0..size {
        let sy = y as i64 + top;
        if sy < 0 || sy >= img.height as i64 {
            continue;
        }
        for x in 0..size {
            let sx = x as i64 + left;
            if sx < 0 || sx >= img.width as i64 {
                continue;
            }
            let (d, s) = (
                (y * size + x) * 3,
                (sy as usize * img.width + sx as usize) * 3,
            );
            out[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    Rgb8 {
        width: size,
        height: size,
        data: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(-0.5), 0);
        assert_eq!(round_half_even(1.2), 1);
    }

    #[test]
    fn resize_keeps_constant_images_constant_and_sizes_match_torchvision() {
        let img = Rgb8 {
            width: 300,
            height: 200,
            data: vec![77; 300 * 200 * 3],
        };
        let r = resize_shorter(&img, 256);
        assert_eq!((r.width, r.height), (384, 256));
        assert!(r.data.iter().all(|&v| v == 77));
        let c = center_crop(&r, 224);
        assert_eq!(c.data.len(), 224 * 224 * 3);
    }
}
