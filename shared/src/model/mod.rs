//! Network structure as a tree of typed nodes, its forward pass, and the stored activations
//! ([`SeqTrace`]) that the explicit backward passes of [`crate::explain`] walk over.
//!
//! Every architecture is a top-level [`Seq`] whose nodes carry torchvision module paths
//! (`features.34`, `layer4.2`, `features.denseblock4.denselayer16`, ...). The *tap* of spec §2 is
//! the input of one top-level node. All activations are rank-4 `[N, C, H, W]`; fully connected
//! layers act on `[N, F, 1, 1]`, so one sweep handles convolutional and dense parts alike.

/// `$call` with the autodiff checkpointing strategy `$c` = `NoCheckpointing`, then, if that
/// failed (the tensors carry the other strategy), with `BalancedCheckpointing`: how the CPU
/// backend's own kernels find the autodiff backend their tensors are on. Two forms:
///
/// - `(C, x => call)`: `call` takes its tensor `x` by value and hands it back in `Err` when it
///   is not on that backend (the element-wise steps, which overwrite a tensor nothing else
///   holds);
/// - `(C => call)`: `call` borrows its tensors and gives `None` when they are not on that
///   backend.
#[cfg(all(feature = "flex", feature = "autodiff"))]
macro_rules! under_either_checkpointing {
    ($c:ident, $x:ident => $call:expr) => {{
        let first = {
            type $c = burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
            $call
        };
        match first {
            Ok(y) => Ok(y),
            Err($x) => {
                type $c = burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
                $call
            }
        }
    }};
    ($c:ident => $call:expr) => {{
        let nothing = ();
        under_either_checkpointing!($c, nothing => ($call).ok_or(nothing)).ok()
    }};
}

#[cfg(feature = "tensor")]
mod conv;
// The kernels' gradients serve only the autodiff steps: unused in a build without autodiff.
#[cfg(feature = "flex")]
#[cfg_attr(not(feature = "autodiff"), allow(dead_code))]
mod cpu_channel;
#[cfg(feature = "flex")]
#[cfg_attr(not(feature = "autodiff"), allow(dead_code))]
mod cpu_conv;
#[cfg(feature = "flex")]
mod cpu_fill;
#[cfg(feature = "flex")]
#[cfg_attr(not(feature = "autodiff"), allow(dead_code))]
mod cpu_pool;
#[cfg(feature = "flex")]
mod cpu_wide;
#[cfg(feature = "tensor")]
mod elementwise;
#[cfg(feature = "flex")]
mod flex_cat;
#[cfg(feature = "flex")]
mod flex_channel;
#[cfg(feature = "flex")]
#[cfg_attr(not(feature = "autodiff"), allow(dead_code))]
mod flex_conv;
#[cfg(feature = "flex")]
mod flex_pool;
#[cfg(feature = "flex")]
#[cfg_attr(not(feature = "autodiff"), allow(dead_code))]
mod flex_shortcut;
#[cfg(feature = "tensor")]
mod forward;
mod spec;

use crate::params::ParamId;

#[cfg(feature = "tensor")]
pub use conv::{conv_input_grad, conv2d};
#[cfg(feature = "flex")]
pub use cpu_wide::vector_unit;
#[cfg(feature = "tensor")]
pub use elementwise::{cat_channels, channel_affine, channel_affine_relu, relu_mask, relu_of_sum};
#[cfg(feature = "tensor")]
pub use forward::{FireTrace, NodeTrace, ResidualTrace, SeqTrace, option_a};
pub use spec::SpecBuilder;

/// A 2-D convolution (PyTorch weight layout `[out, in, kh, kw]`).
#[derive(Debug, Clone)]
pub struct Conv {
    /// Weight `[out, in, kh, kw]`.
    pub weight: ParamId,
    /// Optional bias `[out]`.
    pub bias: Option<ParamId>,
    /// Stride.
    pub stride: usize,
    /// Symmetric zero padding.
    pub padding: usize,
}

/// Eval-mode BatchNorm: `y = (x − μ)/sqrt(σ² + eps)·γ + β`.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    /// γ `[C]`.
    pub gamma: ParamId,
    /// β `[C]`.
    pub beta: ParamId,
    /// Running mean `[C]`.
    pub mean: ParamId,
    /// Running variance `[C]`.
    pub var: ParamId,
    /// Variance epsilon (1e-5 in torchvision).
    pub eps: f64,
}

/// A fully connected layer on `[N, F, 1, 1]` activations (weight `[out, in]`).
#[derive(Debug, Clone)]
pub struct Linear {
    /// Weight `[out, in]`.
    pub weight: ParamId,
    /// Bias `[out]`.
    pub bias: ParamId,
}

/// Max-pool settings (symmetric padding).
#[derive(Debug, Clone, Copy)]
pub struct MaxPool {
    /// Window size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub padding: usize,
    /// Ceil mode (SqueezeNet).
    pub ceil: bool,
}

/// Shortcut of a residual block.
#[derive(Debug, Clone)]
pub enum Shortcut {
    /// `s = x`.
    Identity,
    /// CIFAR option A: `x[:, :, ::2, ::2]` zero-padded with `pad` channels on both sides.
    OptionA {
        /// Channels added before and after.
        pad: usize,
    },
    /// Projection (`downsample`: conv 1×1 + BN).
    Projection(Seq),
}

/// A residual block `y = ReLU(branch(x) + shortcut(x))`.
#[derive(Debug, Clone)]
pub struct Residual {
    /// The branch, ending with its last BatchNorm.
    pub branch: Seq,
    /// The shortcut.
    pub shortcut: Shortcut,
}

/// A SqueezeNet Fire module: `y = [ReLU(e1(s)), ReLU(e3(s))]`, `s = ReLU(squeeze(x))`.
#[derive(Debug, Clone)]
pub struct Fire {
    /// Squeeze conv + ReLU.
    pub squeeze: Seq,
    /// Expand 1×1 conv + ReLU.
    pub expand1x1: Seq,
    /// Expand 3×3 conv + ReLU.
    pub expand3x3: Seq,
}

/// One layer of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// Convolution.
    Conv(Conv),
    /// Eval-mode BatchNorm.
    BatchNorm(BatchNorm),
    /// ReLU.
    Relu,
    /// Max-pool.
    MaxPool(MaxPool),
    /// Average pool with kernel = stride = k (DenseNet transition).
    AvgPool(usize),
    /// Global average pool to `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// `[N, C, H, W] → [N, C·H·W, 1, 1]` (channel-major, as `torch.flatten`).
    Flatten,
    /// Fully connected layer.
    Linear(Linear),
    /// Dropout: identity in eval mode.
    Dropout,
    /// Residual block.
    Residual(Box<Residual>),
    /// DenseNet layer: `y = [x, branch(x)]`.
    Dense(Box<Seq>),
    /// SqueezeNet Fire module.
    Fire(Box<Fire>),
}

/// A sequence of named nodes.
#[derive(Debug, Clone, Default)]
pub struct Seq {
    /// `(module path, node)` pairs in forward order.
    pub nodes: Vec<(String, Node)>,
}

impl Seq {
    /// Appends a node.
    pub fn push(&mut self, name: impl Into<String>, node: Node) {
        self.nodes.push((name.into(), node));
    }

    /// Index of the top-level node called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|(n, _)| n == name)
    }
}
