//! The sweeps themselves: gradient and LRP passes over a [`SeqTrace`], node by node, built from
//! forward tensor ops only (see the module above).

use burn::tensor::Tensor;

use super::blocks;
use super::rules::{self, BiasMode};
use crate::model::{
    BatchNorm, Conv, Linear, Node, NodeTrace, Seq, SeqTrace, channel_affine, relu_mask,
};
use crate::params::ParamStore;

pub use crate::model::conv_input_grad;

/// Options of the gradient sweep.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GradOptions {
    /// Reproduce the official code's BatchNorm backward `γ/(σ²+1e-8)` of 2019 (spec §9 Q1)
    /// instead of the correct `γ/sqrt(σ²+eps)`.
    pub legacy_bn_grad: bool,
}

/// How BatchNorm is treated by LRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnMode {
    /// Fold a BatchNorm that directly follows a convolution into it (canonizer; fixtures).
    #[default]
    Fold,
    /// Every BatchNorm passes relevance unchanged (official code; fixtures' `alt.bn_identity`).
    Identity,
}

/// Options of the LRP-Composite sweep (spec §4.1, §6.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrpOptions {
    /// ε of the Linear rule (0.01).
    pub epsilon: f64,
    /// Stabiliser of the convolution rule (0.01).
    pub stabilizer: f64,
    /// Bias treatment in the convolution rule.
    pub bias: BiasMode,
    /// BatchNorm treatment.
    pub bn: BnMode,
    /// Residual split on the pre-ReLU sum (official code, §9 Q3) instead of the branch.
    pub residual_code_faithful: bool,
}

impl Default for LrpOptions {
    fn default() -> Self {
        Self {
            epsilon: 0.01,
            stabilizer: 0.01,
            bias: BiasMode::Signed,
            bn: BnMode::Fold,
            residual_code_faithful: false,
        }
    }
}

/// Which backward pass to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sweep {
    /// Exact gradient of the seed through the network.
    Gradient(GradOptions),
    /// LRP-Composite relevance.
    Lrp(LrpOptions),
}

/// Copies every value of `x` `[N, C, h, w]` to its `k×k` block; result cropped to `out_dims`.
pub fn upsample_blocks(x: Tensor<4>, k: usize, out_dims: [usize; 4]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let up = x
        .reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, k, w, k])
        .reshape([n, c, h * k, w * k]);
    if h * k == out_dims[2] && w * k == out_dims[3] {
        up
    } else {
        let z = Tensor::zeros(out_dims, &up.device());
        let (hh, ww) = ((h * k).min(out_dims[2]), (w * k).min(out_dims[3]));
        z.slice_assign(
            [0..n, 0..c, 0..hh, 0..ww],
            up.slice([0..n, 0..c, 0..hh, 0..ww]),
        )
    }
}

/// Backward of the option-A shortcut: drop the padded channels and put the signal back at the
/// positions `x[:, :, ::2, ::2]` it was copied from.
///
/// # Shapes
/// `r`: `[N, Cin + 2·pad, ⌈H/2⌉, ⌈W/2⌉]`; returns `in_dims` = `[N, Cin, H, W]`.
pub fn option_a_back(r: Tensor<4>, pad: usize, in_dims: [usize; 4]) -> Tensor<4> {
    let [n, c, h, w] = in_dims;
    let [_, _, ho, wo] = r.dims();
    let r = r.slice([0..n, pad..pad + c, 0..ho, 0..wo]);
    let device = r.device();
    let spread = Tensor::cat(
        vec![
            r.reshape([n, c, ho, 1, wo, 1]),
            Tensor::zeros([n, c, ho, 1, wo, 1], &device),
        ],
        3,
    );
    let spread = Tensor::cat(
        vec![spread, Tensor::zeros([n, c, ho, 2, wo, 1], &device)],
        5,
    )
    .reshape([n, c, 2 * ho, 2 * wo]);
    if 2 * ho == h && 2 * wo == w {
        spread
    } else {
        spread.slice([0..n, 0..c, 0..h, 0..w])
    }
}

impl Conv {
    fn back(&self, p: &ParamStore, a: &Tensor<4>, r: Tensor<4>, sw: &Sweep) -> Tensor<4> {
        match sw {
            Sweep::Gradient(_) => conv_input_grad(
                r,
                p.get::<4>(self.weight),
                self.stride,
                self.padding,
                a.dims(),
            ),
            Sweep::Lrp(o) => rules::alpha1_beta0(
                a.clone(),
                p.get::<4>(self.weight),
                self.bias.map(|b| p.get::<1>(b)),
                r,
                self.stride,
                self.padding,
                o.bias,
                o.stabilizer,
            ),
        }
    }

    /// LRP through `BN ∘ conv` with the BatchNorm folded into the convolution (canonizer):
    /// `W' = W·γ/σ`, `b' = (b − μ)·γ/σ + β`.
    fn back_folded(
        &self,
        bn: &BatchNorm,
        p: &ParamStore,
        a: &Tensor<4>,
        r: Tensor<4>,
        o: &LrpOptions,
    ) -> Tensor<4> {
        let (w, b) = fold_bn(self, bn, p);
        rules::alpha1_beta0(
            a.clone(),
            w,
            Some(b),
            r,
            self.stride,
            self.padding,
            o.bias,
            o.stabilizer,
        )
    }
}

/// The canonizer: weights and bias of the convolution with the following BatchNorm folded in.
/// It is a pure function of the parameters (nothing is modified), hence trivially reversible.
///
/// # Shapes
/// Returns `([Cout, Cin, k, k], [Cout])`.
pub fn fold_bn(conv: &Conv, bn: &BatchNorm, p: &ParamStore) -> (Tensor<4>, Tensor<1>) {
    let (scale, shift) = bn.scale_shift(p);
    let w = p.get::<4>(conv.weight);
    let c = scale.dims()[0];
    let w = w.mul(scale.clone().reshape([c, 1, 1, 1]));
    let b = match conv.bias {
        Some(b) => p.get::<1>(b).mul(scale).add(shift),
        None => shift,
    };
    (w, b)
}

/// Runs the sweep `sw` over `seq` from its output back to the input of node `stop`.
///
/// `r` is the signal at the output of `seq`; the result has the shape of `tr.inputs[stop]`.
pub fn back_seq(
    seq: &Seq,
    p: &ParamStore,
    tr: &SeqTrace,
    r: Tensor<4>,
    stop: usize,
    sw: &Sweep,
) -> Tensor<4> {
    let mut r = r;
    let mut i = seq.nodes.len();
    while i > stop {
        i -= 1;
        let node = &seq.nodes[i].1;
        if let (Sweep::Lrp(o), Node::BatchNorm(bn)) = (sw, node)
            && o.bn == BnMode::Fold
            && i > stop
            && let Node::Conv(conv) = &seq.nodes[i - 1].1
        {
            r = conv.back_folded(bn, p, tr.input(i - 1), r, o);
            i -= 1;
            continue;
        }
        r = back_node(node, p, tr.input(i), tr.parts(i), r, sw);
    }
    r
}

/// One node of a sweep: the signal `r` at its output back to its input `a`.
fn back_node(
    node: &Node,
    p: &ParamStore,
    a: &Tensor<4>,
    inner: &NodeTrace,
    r: Tensor<4>,
    sw: &Sweep,
) -> Tensor<4> {
    let lrp = matches!(sw, Sweep::Lrp(_));
    match node {
        Node::Conv(c) => c.back(p, a, r, sw),
        Node::BatchNorm(bn) => bn.back(p, r, sw),
        Node::Relu => {
            if lrp {
                r
            } else {
                relu_mask(r, a, None)
            }
        }
        Node::MaxPool(_) => match inner {
            NodeTrace::Pool(idx) => {
                let [_, _, h, w] = a.dims();
                rules::winner_take_all(r, idx.clone(), [h, w])
            }
            _ => unreachable!("max-pool traced without indices"),
        },
        Node::AvgPool(k) => {
            if lrp {
                rules::avg_pool_lrp(a.clone(), r, *k)
            } else {
                upsample_blocks(r, *k, a.dims()).div_scalar((k * k) as f64)
            }
        }
        Node::GlobalAvgPool => {
            if lrp {
                rules::global_avg_pool_lrp(a.clone(), r)
            } else {
                let dims = a.dims();
                r.expand(dims).div_scalar((dims[2] * dims[3]) as f64)
            }
        }
        Node::Flatten => r.reshape(a.dims()),
        Node::Linear(l) => l.back(p, a, r, sw),
        Node::Dropout => r,
        Node::Residual(res) => {
            let NodeTrace::Residual(rt) = inner else {
                unreachable!("residual traced without its parts")
            };
            res.back(p, a, rt, r, sw)
        }
        Node::Dense(branch) => {
            let NodeTrace::Dense(bt) = inner else {
                unreachable!("dense layer traced without its branch")
            };
            blocks::back_dense(branch, p, a, bt, r, sw)
        }
        Node::Fire(f) => {
            let NodeTrace::Fire(ft) = inner else {
                unreachable!("fire module traced without its parts")
            };
            f.back(p, ft, r, sw)
        }
    }
}

impl BatchNorm {
    /// Eval-mode BatchNorm: LRP passes `r` unchanged, the gradient scales it per channel.
    fn back(&self, p: &ParamStore, r: Tensor<4>, sw: &Sweep) -> Tensor<4> {
        match sw {
            Sweep::Lrp(_) => r,
            Sweep::Gradient(g) => {
                let scale = if g.legacy_bn_grad {
                    p.get::<1>(self.gamma)
                        .div(p.get::<1>(self.var).add_scalar(1e-8))
                } else {
                    self.scale_shift(p).0
                };
                channel_affine(r, Some(scale), None)
            }
        }
    }
}

impl Linear {
    /// Fully connected layer on `[N, F, 1, 1]`: `r·W` (gradient) or the ε rule (LRP).
    fn back(&self, p: &ParamStore, a: &Tensor<4>, r: Tensor<4>, sw: &Sweep) -> Tensor<4> {
        let [n, f, _, _] = a.dims();
        let w = p.get::<2>(self.weight);
        let out = w.dims()[0];
        let r2 = r.reshape([n, out]);
        let back = match sw {
            Sweep::Gradient(_) => r2.matmul(w),
            Sweep::Lrp(o) => rules::epsilon(
                a.clone().reshape([n, f]),
                w,
                p.get::<1>(self.bias),
                r2,
                o.epsilon,
            ),
        };
        back.reshape([n, f, 1, 1])
    }
}
