//! The fooling objective `L = CE + λ·L_F` (spec §1.1, §5, §6.1) and Adam (PyTorch defaults),
//! as plain tensor code: the trainer supplies batches, this module computes losses and updates.

mod adam;

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use crate::arch::Net;
use crate::error::{FoolmapError, Result};
use crate::explain::interpreter::{explain_traced, logits, trace_start};
use crate::explain::{Interpreter, InterpreterOptions};
use crate::fooling::{self, FoolingType};
use crate::model::SeqTrace;
use crate::params::ParamStore;

pub use adam::Adam;

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

    /// The traced forward pass of `x` that this objective's maps need: from the first node its
    /// interpreter's sweep reads ([`trace_start`]), the nodes before untraced.
    fn trace(&self, net: &Net, p: &ParamStore, x: Tensor<4>) -> SeqTrace {
        net.seq.trace_from(p, x, trace_start(net, self.interpreter))
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
        let tr = self.trace(net, p, x.clone());
        let lg = logits(&tr);
        let ce = cross_entropy(lg.clone(), labels)?;
        let tr0 = self
            .kind
            .needs_reference()
            .then(|| self.trace(net, p0, x.inner()));
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
        let tr0 = self.trace(net, p0, x.clone().inner());
        let lg0 = logits(&tr0);
        let labels = top1(lg0.clone())?;
        let teacher = Tensor::from_inner(lg0.clone());
        let tr = self.trace(net, p, x);
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
        let tr = self.trace(net, p, x);
        let lg = logits(&tr);
        let ce = cross_entropy(lg.clone(), labels)?;
        let n = x_fool.dims()[0];
        let (k1, k2) = (vec![c1; n], vec![c2; n]);
        let trf = self.trace(net, p, x_fool.clone());
        let h1 = explain_traced(net, p, &trf, &k1, self.interpreter, &self.options)?;
        let h2 = explain_traced(net, p, &trf, &k2, self.interpreter, &self.options)?;
        let tr0 = self.trace(net, p0, x_fool.inner());
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
