//! A fooling session: fine-tuning with `CE + λ·L_F` (docs/method.md §5–6) one step at a time.
//! `foolmap fool`, `foolmap bench` and the page's live fooling all step through this type, so
//! that the objective's dispatch (passive, label-free, active), the λ / learning-rate schedule
//! and the Adam update exist once.
//!
//! A step has two halves: [`FoolingSession::loss`] builds the loss of a batch (nothing changes
//! yet; the caller reads its terms back, synchronously or asynchronously, and may stop on a
//! non-finite value), then [`FoolingSession::apply`] back-propagates it and moves the weights.

use burn::tensor::Tensor;

use crate::arch::Net;
use crate::error::Result;
use crate::params::ParamStore;
use crate::train::{Adam, Objective, StepLoss};

/// The images of one step.
// One value per step, moved once: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Batch<'a> {
    /// Passive fooling: CE on `x` `[N, 3, H, W]` with `labels`, maps for the labels.
    Labelled {
        /// Preprocessed images on the autodiff device.
        x: Tensor<4>,
        /// Their classes.
        labels: &'a [usize],
    },
    /// Label-free passive fooling: the reference model labels `x` (its top-1) and
    /// `KL(reference ‖ model)` replaces CE.
    Distilled {
        /// Preprocessed images on the autodiff device.
        x: Tensor<4>,
    },
    /// Active fooling: CE on `(x, labels)` and the swap loss on `composites` for two classes.
    Active {
        /// Preprocessed CE images on the autodiff device.
        x: Tensor<4>,
        /// Their classes.
        labels: &'a [usize],
        /// Composite images (one class's image beside the other's) `[M, 3, H, W]`.
        composites: Tensor<4>,
        /// The two classes whose maps are swapped.
        classes: (usize, usize),
    },
}

/// The loss of one step, not yet applied.
pub struct Pending {
    /// Loss terms and the CE batch's logits.
    pub loss: StepLoss,
    /// The labels the maps were computed for (the reference's top-1 for [`Batch::Distilled`]).
    pub labels: Vec<usize>,
}

/// The trained parameters, their Adam state and the objective.
pub struct FoolingSession {
    /// What is fooled, and λ.
    pub objective: Objective,
    /// The parameters being trained (autodiff leaves where they train).
    pub params: ParamStore,
    /// Adam's state; `adam.t` is the number of steps applied.
    pub adam: Adam,
}

impl FoolingSession {
    /// A fresh session on `params` (autodiff leaves where they train) with learning rate `lr`.
    pub fn new(objective: Objective, params: ParamStore, lr: f64) -> Self {
        let adam = Adam::new(&params, lr);
        Self {
            objective,
            params,
            adam,
        }
    }

    /// Steps applied so far.
    pub fn steps(&self) -> u64 {
        self.adam.t
    }

    /// Sets λ and the learning rate of the next steps (a schedule's phase).
    pub fn set_hyper(&mut self, lambda: f64, lr: f64) {
        self.objective.lambda = lambda;
        self.adam.lr = lr;
    }

    /// The loss of `batch` for the current parameters; `reference` is the frozen original
    /// (plain tensors) whose maps and predictions the objective compares against.
    pub fn loss(&self, net: &Net, reference: &ParamStore, batch: Batch<'_>) -> Result<Pending> {
        let (o, p) = (&self.objective, &self.params);
        Ok(match batch {
            Batch::Labelled { x, labels } => Pending {
                loss: o.passive(net, p, reference, x, labels)?,
                labels: labels.to_vec(),
            },
            Batch::Distilled { x } => {
                let (loss, labels) = o.passive_distilled(net, p, reference, x)?;
                Pending { loss, labels }
            }
            Batch::Active {
                x,
                labels,
                composites,
                classes: (c1, c2),
            } => Pending {
                loss: o.active(net, p, reference, x, labels, composites, c1, c2)?,
                labels: labels.to_vec(),
            },
        })
    }

    /// Back-propagates `pending`'s total loss and takes one Adam step (needs the `autodiff` feature).
    #[cfg(feature = "autodiff")]
    pub fn apply(&mut self, pending: Pending) {
        let grads = pending.loss.total.backward();
        self.params = self.adam.step(&self.params, grads);
    }

    /// The parameters without autodiff (for explaining or saving).
    pub fn inference_params(&self) -> ParamStore {
        let mut q = self.params.clone();
        q.set_values(
            self.params
                .values()
                .iter()
                .map(|t| t.clone().inner())
                .collect(),
        );
        q
    }
}
