//! Class scores on the host, after read-back: softmax, top-k and arg-max with one tie rule
//! (equal values: the lower index first), and the one tensor read-back every caller uses.
//! `top1` of [`crate::train`], the trainer's commands and the page all rank classes with these.

#[cfg(feature = "tensor")]
use burn::tensor::Tensor;

#[cfg(feature = "tensor")]
use crate::error::{FoolmapError, Result};

#[cfg(feature = "tensor")]
/// Reads a tensor back to the host as `f32` values in row-major order (any shape `D`).
pub fn read_back<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| FoolmapError::invalid("tensor read-back", format!("{e:?}")))
}

#[cfg(feature = "tensor")]
/// [`read_back`] without blocking: the only read-back WebGPU allows (a synchronous one panics
/// there); the page's worker uses it for every map, logit and loss.
pub async fn read_back_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data_async()
        .await
        .map_err(|e| FoolmapError::invalid("tensor read-back", format!("{e:?}")))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| FoolmapError::invalid("tensor read-back", format!("{e:?}")))
}

/// Softmax probabilities of one row of logits, numerically stable (the maximum is subtracted).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Indices of the `k` largest values, largest first; equal values keep the lower index first;
/// NaN-safe (`total_cmp`: NaN ranks above +∞).
pub fn top_k(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Index of the largest value (ties: the lower index; an empty slice gives 0).
pub fn argmax(v: &[f32]) -> usize {
    top_k(v, 1).first().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_lower_index() {
        assert_eq!(top_k(&[1.0, 3.0, 3.0, 2.0], 3), vec![1, 2, 3]);
        assert_eq!(argmax(&[2.0, 5.0, 5.0]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn softmax_is_a_distribution_and_keeps_the_order() {
        let p = softmax(&[1000.0, 999.0, -5.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{p:?}");
        assert!(p[0] > p[1] && p[1] > p[2], "{p:?}");
        assert!(p.iter().all(|x| x.is_finite()));
    }
}
