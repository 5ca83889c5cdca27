//! BatchNorm recalibration: re-estimate every running mean and variance from data.
//!
//! Fooling trains in eval mode (spec §1.1, Q16): the running statistics stay those of the
//! original model while the weights move, so after fine-tuning (and even more after averaging the
//! weights of two runs) a BatchNorm no longer normalises the activations it actually sees. This is
//! the post-hoc fix of stochastic weight averaging (`torch.optim.swa_utils.update_bn`, momentum
//! `None`): a train-mode forward pass over batches, in which every BatchNorm normalises with the
//! statistics of its current batch and records them; the new running mean is the mean of the
//! batch means, the new running variance the mean of the unbiased batch variances. Statistics
//! deeper in the network are measured on activations already normalised by recalibrated layers
//! above, as in PyTorch. γ, β and every other weight are unchanged.

use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::error::{FoolmapError, Result};
use crate::model::{BatchNorm, Node, Seq, Shortcut, option_a};
use crate::params::{ParamId, ParamStore};

/// Sums of per-batch statistics of every BatchNorm, keyed by its running-mean parameter.
#[derive(Debug, Default)]
pub struct BatchNormStatistics {
    layers: BTreeMap<usize, Layer>,
}

#[derive(Debug)]
struct Layer {
    var: ParamId,
    mean_sum: Tensor<1>,
    var_sum: Tensor<1>,
    batches: usize,
}

impl BatchNormStatistics {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of BatchNorm layers seen so far.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Train-mode forward of `seq` on the batch `x` `[N, C, H, W]` (N·H·W ≥ 2 at every BatchNorm),
    /// adding each BatchNorm's batch mean and unbiased batch variance to the sums.
    pub fn observe(&mut self, seq: &Seq, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        seq.nodes
            .iter()
            .fold(x, |x, (_, node)| self.node(node, p, x))
    }

    fn node(&mut self, node: &Node, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        match node {
            Node::BatchNorm(b) => self.batch_norm(b, p, x),
            Node::Residual(r) => {
                let branch = self.observe(&r.branch, p, x.clone());
                let s = match &r.shortcut {
                    Shortcut::Identity => x,
                    Shortcut::OptionA { pad } => option_a(x, *pad),
                    Shortcut::Projection(seq) => self.observe(seq, p, x),
                };
                burn::tensor::activation::relu(branch.add(s))
            }
            Node::Dense(branch) => {
                let new = self.observe(branch, p, x.clone());
                Tensor::cat(vec![x, new], 1)
            }
            Node::Fire(f) => {
                let s = self.observe(&f.squeeze, p, x);
                let e1 = self.observe(&f.expand1x1, p, s.clone());
                let e3 = self.observe(&f.expand3x3, p, s);
                Tensor::cat(vec![e1, e3], 1)
            }
            // Layers without parameters that depend on the mode.
            other => other.forward(p, x, None),
        }
    }

    /// `y = (x − μ_B)/sqrt(σ²_B + eps)·γ + β` with the biased batch variance σ²_B, as PyTorch's
    /// train mode; records μ_B and `σ²_B·m/(m−1)` (m = N·H·W).
    fn batch_norm(&mut self, b: &BatchNorm, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let m = n * h * w;
        let flat = x.clone().swap_dims(0, 1).reshape([c, m]);
        let mean = flat.clone().mean_dim(1); // [C, 1]
        let var = flat.sub(mean.clone()).powi_scalar(2).mean_dim(1); // biased, [C, 1]
        let scale = p
            .get::<1>(b.gamma)
            .reshape([c, 1])
            .div(var.clone().add_scalar(b.eps).sqrt());
        let y = x
            .sub(mean.clone().reshape([1, c, 1, 1]))
            .mul(scale.reshape([1, c, 1, 1]))
            .add(p.get::<1>(b.beta).reshape([1, c, 1, 1]));
        let unbiased = var
            .mul_scalar(m as f64 / (m.max(2) - 1) as f64)
            .reshape([c]);
        let mean = mean.reshape([c]);
        self.layers
            .entry(b.mean.0)
            .and_modify(|l| {
                l.mean_sum = l.mean_sum.clone().add(mean.clone().detach());
                l.var_sum = l.var_sum.clone().add(unbiased.clone().detach());
                l.batches += 1;
            })
            .or_insert_with(|| Layer {
                var: b.var,
                mean_sum: mean.detach(),
                var_sum: unbiased.detach(),
                batches: 1,
            });
        y
    }

    /// `p` with every observed running mean and variance replaced by the average over the batches
    /// seen. Fails when nothing was observed.
    pub fn apply(&self, p: &ParamStore) -> Result<ParamStore> {
        if self.layers.is_empty() {
            return Err(FoolmapError::invalid(
                "BatchNorm recalibration",
                "no batch was observed, or the network has no BatchNorm",
            ));
        }
        let mut values = p.values().to_vec();
        for (&mean, l) in &self.layers {
            let k = l.batches as f64;
            values[mean] = l.mean_sum.clone().div_scalar(k);
            values[l.var.0] = l.var_sum.clone().div_scalar(k);
        }
        let mut out = p.clone();
        out.set_values(values);
        Ok(out)
    }
}
