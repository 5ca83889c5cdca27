//! Adam with PyTorch's defaults (spec §6.1): the update of the trainable parameters and the
//! moments saved to and restored from checkpoints.

use burn::tensor::{Tensor, TensorData};

use crate::error::{FoolmapError, Result};
#[cfg(feature = "autodiff")]
use crate::params::ParamKind;
use crate::params::ParamStore;

/// Adam with PyTorch's defaults (β = (0.9, 0.999), eps = 1e-8, no weight decay), spec §6.1.
/// Only [`ParamKind::Trainable`] parameters move; BatchNorm statistics stay frozen (eval mode).
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Steps taken.
    pub t: u64,
    /// First moments (one per parameter; `None` for buffers).
    pub m: Vec<Option<Tensor<1>>>,
    /// Second moments.
    pub v: Vec<Option<Tensor<1>>>,
}

impl Adam {
    /// Prefix of every key [`Adam::state`] writes (`adam.m.<param>`, `adam.v.<param>`).
    pub const STATE_PREFIX: &'static str = "adam.";

    /// Fresh state for `p`.
    pub fn new(p: &ParamStore, lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![None; p.len()],
            v: vec![None; p.len()],
        }
    }

    /// One update from the gradients of the loss; returns the new autodiff leaves.
    #[cfg(feature = "autodiff")]
    pub fn step(&mut self, p: &ParamStore, grads: &burn::tensor::Gradients) -> ParamStore {
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        let mut values = Vec::with_capacity(p.len());
        for (i, (spec, w)) in p.specs().iter().zip(p.values()).enumerate() {
            let g = (spec.kind == ParamKind::Trainable)
                .then(|| w.grad(grads))
                .flatten();
            let Some(g) = g else {
                values.push(w.clone());
                continue;
            };
            let m = match self.m[i].take() {
                Some(m) => m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1)),
                None => g.clone().mul_scalar(1.0 - b1),
            };
            let v = match self.v[i].take() {
                Some(v) => v
                    .mul_scalar(b2)
                    .add(g.clone().square().mul_scalar(1.0 - b2)),
                None => g.square().mul_scalar(1.0 - b2),
            };
            let update = m
                .clone()
                .div_scalar(bc1)
                .div(v.clone().div_scalar(bc2).sqrt().add_scalar(self.eps))
                .mul_scalar(self.lr);
            let new = w.clone().inner().sub(update);
            values.push(Tensor::from_inner(new).require_grad());
            self.m[i] = Some(m);
            self.v[i] = Some(v);
        }
        let mut out = p.clone();
        out.set_values(values);
        out
    }

    /// Moments as named flat tensors for a checkpoint: `adam.m.<param>`, `adam.v.<param>`.
    pub fn state(&self, p: &ParamStore) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for (i, s) in p.specs().iter().enumerate() {
            for (tag, mom) in [("m", &self.m[i]), ("v", &self.v[i])] {
                if let Some(t) = mom {
                    let v = t
                        .to_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap_or_default();
                    out.push((format!("{}{tag}.{}", Self::STATE_PREFIX, s.name), v));
                }
            }
        }
        out
    }

    /// Restores moments saved by [`Adam::state`] (missing entries stay empty), after checking
    /// them: every moment must have its parameter's number of values and be finite (second
    /// moments ≥ 0), and the step count must be usable (≤ 2³¹ − 1). Errors name the tensor.
    pub fn restore(
        &mut self,
        p: &ParamStore,
        t: u64,
        get: &dyn Fn(&str) -> Option<Vec<f32>>,
        device: &burn::tensor::Device,
    ) -> Result<()> {
        if t > i32::MAX as u64 {
            return Err(FoolmapError::invalid(
                "adam_t",
                format!(
                    "the optimizer step count {t} is out of range (at most {})",
                    i32::MAX
                ),
            ));
        }
        let mut m = vec![None; p.len()];
        let mut v = vec![None; p.len()];
        for (i, s) in p.specs().iter().enumerate() {
            let numel: usize = s.shape.iter().product();
            for (tag, slot) in [("m", &mut m[i]), ("v", &mut v[i])] {
                let key = format!("{}{tag}.{}", Self::STATE_PREFIX, s.name);
                let Some(vals) = get(&key) else { continue };
                if vals.len() != numel {
                    return Err(FoolmapError::Tensor {
                        name: key,
                        expected: format!(
                            "{numel} values (the shape {:?} of `{}`)",
                            s.shape, s.name
                        ),
                        found: format!("{} values", vals.len()),
                    });
                }
                if let Some(bad) = vals
                    .iter()
                    .find(|x| !x.is_finite() || (tag == "v" && **x < 0.0))
                {
                    return Err(FoolmapError::invalid(
                        key,
                        format!("holds {bad}; optimizer moments must be finite (and ≥ 0 for `v`)"),
                    ));
                }
                *slot = Some(Tensor::<1>::from_data(
                    TensorData::new(vals, [numel]),
                    device,
                ));
            }
        }
        self.t = t;
        self.m = m;
        self.v = v;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Architecture;
    use burn::tensor::Device;

    #[test]
    fn restore_checks_every_moment_and_the_step_count() {
        let dev = Device::flex();
        let net = Architecture::ResNet20.build();
        let p = ParamStore::random(&net.specs, 1, &dev);
        let first = &net.specs[0];
        let numel: usize = first.shape.iter().product();
        let key = |tag: &str| format!("{}{tag}.{}", Adam::STATE_PREFIX, first.name);
        let restore = |t: u64, m: Vec<f32>, v: Vec<f32>| {
            let (km, kv) = (key("m"), key("v"));
            let mut a = Adam::new(&p, 1e-3);
            a.restore(
                &p,
                t,
                &|k| {
                    if k == km {
                        Some(m.clone())
                    } else if k == kv {
                        Some(v.clone())
                    } else {
                        None
                    }
                },
                &dev,
            )
            .map(|_| a)
        };
        let a = restore(7, vec![0.5; numel], vec![0.25; numel]).unwrap();
        assert_eq!(a.t, 7);
        assert!(a.m[0].is_some() && a.m[1].is_none());
        let e = restore(7, vec![0.5; numel - 1], vec![0.25; numel])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&key("m")) && e.contains(&format!("{numel} values")),
            "{e}"
        );
        let mut nan = vec![0.25; numel];
        nan[3] = f32::NAN;
        let e = restore(7, vec![0.5; numel], nan).unwrap_err().to_string();
        assert!(e.contains(&key("v")) && e.contains("finite"), "{e}");
        let e = restore(7, vec![0.5; numel], vec![-1.0; numel])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&key("v")), "{e}");
        let e = restore((1 << 32) + 5, vec![0.5; numel], vec![0.25; numel])
            .unwrap_err()
            .to_string();
        assert!(e.contains("adam_t") && e.contains("out of range"), "{e}");
    }
}
