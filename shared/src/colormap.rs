//! Colour maps and overlays for saliency maps (shared by the CLI's PNGs and the web app).

use crate::image::Rgb8;

/// The `jet`-like map used by Grad-CAM figures, for `t` in [0, 1].
pub fn jet(t: f32) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let f = |x: f32| (1.5 - (4.0 * t - x).abs()).clamp(0.0, 1.0);
    [
        (f(3.0) * 255.0) as u8,
        (f(2.0) * 255.0) as u8,
        (f(1.0) * 255.0) as u8,
    ]
}

/// Blue–white–red for signed maps in [−1, 1] (LRP).
pub fn bwr(v: f32) -> [u8; 3] {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    if v >= 0.0 {
        let a = (255.0 * (1.0 - v)) as u8;
        [255, a, a]
    } else {
        let a = (255.0 * (1.0 + v)) as u8;
        [a, a, 255]
    }
}

/// Scales a map for display: signed maps by max |·| into [−1, 1], others by min–max into [0, 1].
/// A constant map becomes all zeros (never NaN). Returns `(values, signed)`.
pub fn display_scale(map: &[f32]) -> (Vec<f32>, bool) {
    let finite = || map.iter().copied().filter(|v| v.is_finite());
    let mn = finite().fold(f32::INFINITY, f32::min);
    let mx = finite().fold(f32::NEG_INFINITY, f32::max);
    if !mn.is_finite() || !mx.is_finite() {
        return (vec![0.0; map.len()], false);
    }
    if mn < 0.0 {
        let m = mn.abs().max(mx.abs());
        let s = if m > 0.0 { 1.0 / m } else { 0.0 };
        (
            map.iter()
                .map(|v| if v.is_finite() { v * s } else { 0.0 })
                .collect(),
            true,
        )
    } else {
        let r = mx - mn;
        let s = if r > 0.0 { 1.0 / r } else { 0.0 };
        (
            map.iter()
                .map(|v| if v.is_finite() { (v - mn) * s } else { 0.0 })
                .collect(),
            false,
        )
    }
}

/// Bilinear upsampling of an `h×w` map to `H×W` (align-corners false, like `cv2.resize`).
pub fn upsample(map: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let mut out = vec![0f32; out_h * out_w];
    for y in 0..out_h {
        let fy = ((y as f32 + 0.5) * h as f32 / out_h as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..out_w {
            let fx = ((x as f32 + 0.5) * w as f32 / out_w as f32 - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(w - 1);
            let a = map[y0 * w + x0] * (1.0 - tx) + map[y0 * w + x1] * tx;
            let b = map[y1 * w + x0] * (1.0 - tx) + map[y1 * w + x1] * tx;
            out[y * out_w + x] = a * (1.0 - ty) + b * ty;
        }
    }
    out
}

/// Colours an `h×w` map, upsamples it to the image size and blends it over `img` with `alpha`.
pub fn overlay(img: &Rgb8, map: &[f32], h: usize, w: usize, alpha: f32) -> Rgb8 {
    let (scaled, signed) = display_scale(map);
    let up = upsample(&scaled, h, w, img.height, img.width);
    let mut data = img.data.clone();
    for (i, v) in up.iter().enumerate() {
        let c = if signed { bwr(*v) } else { jet(*v) };
        for k in 0..3 {
            let base = img.data[i * 3 + k] as f32;
            data[i * 3 + k] = (base * (1.0 - alpha) + c[k] as f32 * alpha).round() as u8;
        }
    }
    Rgb8 {
        width: img.width,
        height: img.height,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_nan_maps_render_without_nan() {
        let (v, _) = display_scale(&[0.3; 9]);
        assert!(v.iter().all(|x| *x == 0.0));
        let (v, _) = display_scale(&[f32::NAN, 1.0, 2.0]);
        assert!(v.iter().all(|x| x.is_finite()));
        let img = Rgb8 {
            width: 4,
            height: 4,
            data: vec![100; 48],
        };
        let o = overlay(&img, &[0.0; 4], 2, 2, 0.5);
        assert_eq!(o.data.len(), 48);
    }
}
