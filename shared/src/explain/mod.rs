//! Explicit backward passes (spec §4, §10): gradient and LRP sweeps over a traced forward pass,
//! built only from ordinary forward tensor ops, and the interpreters on top of them.
//!
//! A sweep starts from a signal on the logits (`onehot(c)` for gradients, `logit ⊙ onehot(c)`
//! for LRP) and walks the stored [`SeqTrace`] backwards down to the input of a chosen top-level
//! node (the tap) or to the image. Because every step is a differentiable forward op with
//! constant masks, a fooling loss on the resulting map needs only first-order autodiff, and the
//! browser needs no autodiff at all.

#[cfg(feature = "tensor")]
mod blocks;
pub mod interpreter;
#[cfg(feature = "tensor")]
pub mod rules;
#[cfg(feature = "tensor")]
mod sweep;

pub use interpreter::{Interpreter, Level};
// The tensor stack: the sweeps and the interpreters' options.
#[cfg(feature = "tensor")]
pub use {interpreter::InterpreterOptions, sweep::*};
