//! The fooling objective `L = CE + λ·L_F` (spec §1.1, §5, §6.1) and Adam (PyTorch defaults),
//! as plain tensor code: the trainer supplies batches, this module computes losses and updates.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};

use crate::arch::Net;
use crate::error::{FoolmapError, Result};
use crate::explain::interpreter::{explain_traced, logits};
use crate::explain::{Interpreter, InterpreterOptions};
use crate::fooling::{self, FoolingType};
use crate::model::SeqTrace;
#[cfg(feature = "autodiff")]
use crate::params::ParamKind;
use crate::params::ParamStore;

/// Mean cross-entropy of logits `[N, K]` against integer labels (spec §1.1).
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Result<Tensor<1>> {
    let [n, k] = logits.dims();
    let hot = crate::explain::interpreter::one_hot(labels, k, &logits.device())?.reshape([n, k]);
    Ok(log_softmax(logits, 1)
        .mul(hot)
        .sum()
        .div_scalar(n as f64)
        .neg())
}

/// Mean `KL(softmax(t) ‖ softmax(s))` of student logits `s` `[N, K]` from teacher logits `t`
/// `[N, K]` (constants), natural log: the label-free replacement of CE when no labelled training
/// set exists (docs/method.md §5, "Distillation"). 0 when the student equals the teacher.
pub fn distillation_kl(student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
    let n = student.dims()[0];
    let lt = log_softmax(teacher, 1);
    lt.clone()
        .exp()
        .mul(lt.sub(log_softmax(student, 1)))
        .sum()
        .div_scalar(n.max(1) as f64)
}

/// Index of the largest logit per row (ties: the lower class), `[N, K]` → `N` classes.
pub fn top1(logits: Tensor<2>) -> Result<Vec<usize>> {
    let [_, k] = logits.dims();
    let v = crate::scores::read_back(logits)?;
    Ok(v.chunks(k.max(1)).map(crate::scores::argmax).collect())
}

/// What is being fooled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// Fooling type.
    pub kind: FoolingType,
    /// Tap-level interpreter being fooled.
    pub interpreter: Interpreter,
    /// λ of `CE + λ·L_F`.
    pub lambda: f64,
    /// Interpreter settings.
    pub options: InterpreterOptions,
}

/// The loss terms of one step (scalars `[1]`) and the logits of the CE batch.
#[derive(Debug, Clone)]
pub struct StepLoss {
    /// Cross-entropy.
    pub ce: Tensor<1>,
    /// Fooling loss `L_F`.
    pub fool: Tensor<1>,
    /// `CE + λ·L_F`.
    pub total: Tensor<1>,
    /// Logits of the CE batch `[N, K]`.
    pub logits: Tensor<2>,
}

impl Objective {
    /// Checks that the interpreter is a tap-level (foolable) one.
    pub fn validate(&self) -> Result<()> {
        if !Interpreter::FOOLABLE.contains(&self.interpreter) {
            return Err(FoolmapError::invalid(
                "interpreter",
                format!(
                    "`{}` cannot be fooled; choose one of lrp_t, grad_cam, simple_grad_t",
                    self.interpreter
                ),
            ));
        }
        if !self.lambda.is_finite() || self.lambda < 0.0 {
            return Err(FoolmapError::invalid(
                "lambda",
                "must be a finite number ≥ 0",
            ));
        }
        Ok(())
    }

    /// Passive fooling (spec §5.1–5.3): the same batch feeds CE and the map, maps for the
    /// ground-truth labels, `H0` from the frozen original `p0` (only Top-k and Center-mass).
    ///
    /// `p` should hold autodiff leaves; `p0` plain tensors (they are constants here).
    pub fn passive(
        &self,
        net: &Net,
        p: &ParamStore,
        p0: &ParamStore,
        x: Tensor<4>,
        labels: &[usize],
    ) -> Result<StepLoss> {
        let tr = net.seq.trace(p, x.clone());
        let lg = logits(&tr);
        let ce = cross_entropy(lg.clone(), labels)?;
        let tr0 = self
            .kind
            .needs_reference()
            .then(|| net.seq.trace(p0, x.inner()));
        let fool = self.passive_term(net, p, &tr, p0, tr0.as_ref(), labels)?;
        let total = ce.clone().add(fool.clone().mul_scalar(self.lambda));
        Ok(StepLoss {
            ce,
            fool,
            total,
            logits: lg,
        })
    }

    /// `L_F` of the maps of `tr` for `labels`, with `H0` from the original's trace `tr0` where
    /// the fooling type needs it (`tr0` must then be given).
    fn passive_term(
        &self,
        net: &Net,
        p: &ParamStore,
        tr: &SeqTrace,
        p0: &ParamStore,
        tr0: Option<&SeqTrace>,
        labels: &[usize],
    ) -> Result<Tensor<1>> {
        let h = explain_traced(net, p, tr, labels, self.interpreter, &self.options)?;
        let h0 = match tr0.filter(|_| self.kind.needs_reference()) {
            Some(t0) => Some(explain_traced(
                net,
                p0,
                t0,
                labels,
                self.interpreter,
                &self.options,
            )?),
            None => None,
        };
        fooling::passive_loss(self.kind, h, h0)
    }

    /// Passive fooling without labels: the original `p0` labels the batch (its top-1 class,
    /// for the maps, as the ground truth is in [`Self::passive`]) and `KL(p0 ‖ p)` of the logits
    /// replaces CE ([`distillation_kl`]; reported in [`StepLoss::ce`]). Returns the loss and
    /// the labels used.
    pub fn passive_distilled(
        &self,
        net: &Net,
        p: &ParamStore,
        p0: &ParamStore,
        x: Tensor<4>,
    ) -> Result<(StepLoss, Vec<usize>)> {
        let tr0 = net.seq.trace(p0, x.clone().inner());
        let lg0 = logits(&tr0);
        let labels = top1(lg0.clone())?;
        let teacher = Tensor::from_inner(lg0.clone());
        let tr = net.seq.trace(p, x);
        let lg = logits(&tr);
        let kl = distillation_kl(lg.clone(), teacher);
        let fool = self.passive_term(net, p, &tr, p0, Some(&tr0), &labels)?;
        let total = kl.clone().add(fool.clone().mul_scalar(self.lambda));
        Ok((
            StepLoss {
                ce: kl,
                fool,
                total,
                logits: lg,
            },
            labels,
        ))
    }

    /// Active fooling (spec §5.4): CE on `(x, labels)`, the swap loss on the composite batch
    /// `x_fool` for the two classes `c1`, `c2`.
    #[allow(clippy::too_many_arguments)]
    pub fn active(
        &self,
        net: &Net,
        p: &ParamStore,
        p0: &ParamStore,
        x: Tensor<4>,
        labels: &[usize],
        x_fool: Tensor<4>,
        c1: usize,
        c2: usize,
    ) -> Result<StepLoss> {
        let tr = net.seq.trace(p, x);
        let lg = logits(&tr);
        let ce = cross_entropy(lg.clone(), labels)?;
        let n = x_fool.dims()[0];
        let (k1, k2) = (vec![c1; n], vec![c2; n]);
        let trf = net.seq.trace(p, x_fool.clone());
        let h1 = explain_traced(net, p, &trf, &k1, self.interpreter, &self.options)?;
        let h2 = explain_traced(net, p, &trf, &k2, self.interpreter, &self.options)?;
        let tr0 = net.seq.trace(p0, x_fool.inner());
        let h01 = explain_traced(net, p0, &tr0, &k1, self.interpreter, &self.options)?;
        let h02 = explain_traced(net, p0, &tr0, &k2, self.interpreter, &self.options)?;
        let fool = fooling::active_loss(h1, h2, h01, h02);
        let total = ce.clone().add(fool.clone().mul_scalar(self.lambda));
        Ok(StepLoss {
            ce,
            fool,
            total,
            logits: lg,
        })
    }
}

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
