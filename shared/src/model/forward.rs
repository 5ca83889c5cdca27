//! The forward pass of a [`Seq`], plain or traced: the traced pass stores in a [`SeqTrace`] the
//! activations that the explicit backward passes of [`crate::explain`] walk over.

use burn::tensor::module::{avg_pool2d, max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Int, Tensor};

use super::{BatchNorm, Conv, Fire, Linear, MaxPool, Node, Residual, Seq, Shortcut};
use crate::params::ParamStore;

/// Activations stored by a traced forward pass of a [`Seq`], from node `start` on
/// ([`Seq::trace_from`]; a sweep that stops at the tap needs nothing below it).
#[derive(Debug, Clone)]
pub struct SeqTrace {
    /// The first traced node: nodes before it ran untraced.
    pub start: usize,
    /// `inputs[i − start]` = input of node `i` ([`SeqTrace::input`]).
    pub inputs: Vec<Tensor<4>>,
    /// Output of the last node.
    pub output: Tensor<4>,
    /// Per-node inner traces of the same nodes as `inputs` ([`SeqTrace::parts`]).
    pub inner: Vec<NodeTrace>,
}

impl SeqTrace {
    /// The input of node `i`.
    ///
    /// # Panics
    /// If node `i` ran before the trace started (a sweep past [`SeqTrace::start`]: a bug of the
    /// caller, which [`crate::explain::interpreter::explain_traced`] refuses with an error).
    pub fn input(&self, i: usize) -> &Tensor<4> {
        &self.inputs[self.index(i)]
    }

    /// What node `i` stored beyond its input (same panics as [`SeqTrace::input`]).
    pub fn parts(&self, i: usize) -> &NodeTrace {
        &self.inner[self.index(i)]
    }

    fn index(&self, i: usize) -> usize {
        assert!(
            i >= self.start,
            "node {i} ran untraced (the trace starts at node {})",
            self.start
        );
        i - self.start
    }
}

/// What a node stores beyond its input.
#[derive(Debug, Clone)]
pub enum NodeTrace {
    /// Nothing more.
    None,
    /// Flat argmax indices of a max-pool, `[N, C, H_out·W_out]` into `H_in·W_in` (constants).
    Pool(Tensor<3, Int>),
    /// Residual block parts.
    Residual(Box<ResidualTrace>),
    /// Dense layer branch.
    Dense(SeqTrace),
    /// Fire module parts.
    Fire(Box<FireTrace>),
}

/// What a residual block stores: branch trace, shortcut trace (projection only), `b` and `s`.
#[derive(Debug, Clone)]
pub struct ResidualTrace {
    /// Branch activations.
    pub branch: SeqTrace,
    /// Projection activations.
    pub shortcut: Option<SeqTrace>,
    /// Branch output `b` (after its last BN).
    pub b: Tensor<4>,
    /// Shortcut output `s`.
    pub s: Tensor<4>,
}

/// What a Fire module stores.
#[derive(Debug, Clone)]
pub struct FireTrace {
    /// Squeeze part.
    pub squeeze: SeqTrace,
    /// Expand 1×1 part.
    pub e1: SeqTrace,
    /// Expand 3×3 part.
    pub e3: SeqTrace,
}

impl Conv {
    /// Forward with the given weights.
    pub fn apply(&self, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        super::conv2d(
            x,
            p.get::<4>(self.weight),
            self.bias.map(|b| p.get::<1>(b)),
            self.stride,
            self.padding,
        )
    }
}

impl BatchNorm {
    /// Per-channel scale `γ/sqrt(σ²+eps)` and shift `β − μ·scale`, both `[C]`.
    pub fn scale_shift(&self, p: &ParamStore) -> (Tensor<1>, Tensor<1>) {
        let scale = p
            .get::<1>(self.gamma)
            .div(p.get::<1>(self.var).add_scalar(self.eps).sqrt());
        let shift = p
            .get::<1>(self.beta)
            .sub(p.get::<1>(self.mean).mul(scale.clone()));
        (scale, shift)
    }

    /// Eval-mode forward.
    pub fn apply(&self, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        let (scale, shift) = self.scale_shift(p);
        super::channel_affine(x, Some(scale), Some(shift))
    }

    /// Eval-mode forward and the ReLU after it, fused ([`super::channel_affine_relu`]).
    pub fn apply_relu(&self, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        let (scale, shift) = self.scale_shift(p);
        super::channel_affine_relu(x, scale, shift)
    }
}

impl Linear {
    /// Forward on `[N, F, 1, 1]`.
    pub fn apply(&self, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        let [n, f, _, _] = x.dims();
        let w = p.get::<2>(self.weight);
        let out = w.dims()[0];
        x.reshape([n, f])
            .matmul(w.transpose())
            .add(p.get::<1>(self.bias).reshape([1, out]))
            .reshape([n, out, 1, 1])
    }
}

impl MaxPool {
    /// Burn pooling options.
    pub fn options(&self) -> MaxPoolOptions<2> {
        MaxPoolOptions::new([self.kernel; 2])
            .with_stride([self.stride; 2])
            .with_padding([self.padding; 2])
            .with_ceil_mode(self.ceil)
    }
}

/// Option-A shortcut: `x[:, :, ::2, ::2]` zero-padded with `pad` channels before and after.
pub fn option_a(x: Tensor<4>, pad: usize) -> Tensor<4> {
    // On the CPU backend: parallel copies, and a backward step that writes the gradient once.
    #[cfg(feature = "flex")]
    let x = match super::flex_shortcut::option_a(x, pad) {
        Ok(y) => return y,
        Err(x) => x,
    };
    option_a_ops(x, pad)
}

/// [`option_a`] as Burn operations (any backend).
pub(super) fn option_a_ops(x: Tensor<4>, pad: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
    // Even rows/columns via a reshape: pad to even size, view as [.., ho, 2, wo, 2], take [.., 0, .., 0].
    let x = if h % 2 == 1 || w % 2 == 1 {
        let z = Tensor::zeros([n, c, ho * 2, wo * 2], &x.device());
        z.slice_assign([0..n, 0..c, 0..h, 0..w], x)
    } else {
        x
    };
    let sub = x
        .reshape([n, c, ho, 2, wo, 2])
        .slice([0..n, 0..c, 0..ho, 0..1, 0..wo, 0..1])
        .reshape([n, c, ho, wo]);
    let zeros = Tensor::zeros([n, pad, ho, wo], &sub.device());
    Tensor::cat(vec![zeros.clone(), sub, zeros], 1)
}

/// The untraced forward pass of `nodes`: a BatchNorm followed by a ReLU runs as one fused step
/// ([`BatchNorm::apply_relu`]; nothing untraced keeps the activation between them), every other
/// node on its own.
fn forward_nodes(nodes: &[(String, Node)], p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
    let (mut x, mut i) = (x, 0);
    while let Some((_, node)) = nodes.get(i) {
        if let (Node::BatchNorm(bn), Some((_, Node::Relu))) = (node, nodes.get(i + 1)) {
            x = bn.apply_relu(p, x);
            i += 2;
        } else {
            x = node.forward(p, x, None);
            i += 1;
        }
    }
    x
}

impl Seq {
    /// Forward pass without storing activations.
    pub fn forward(&self, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        forward_nodes(&self.nodes, p, x)
    }

    /// Forward pass of the nodes `from..` only (the input is the input of node `from`).
    pub fn forward_from(&self, p: &ParamStore, x: Tensor<4>, from: usize) -> Tensor<4> {
        forward_nodes(&self.nodes[from..], p, x)
    }

    /// Forward pass of the nodes `..to` only: the input of node `to` (e.g. the tap activation).
    pub fn forward_to(&self, p: &ParamStore, x: Tensor<4>, to: usize) -> Tensor<4> {
        forward_nodes(&self.nodes[..to], p, x)
    }

    /// Forward pass storing every activation needed by the backward sweeps.
    pub fn trace(&self, p: &ParamStore, x: Tensor<4>) -> SeqTrace {
        self.trace_from(p, x, 0)
    }

    /// Forward pass storing the activations of the nodes `start..` only: the nodes before run
    /// untraced. Nothing then holds their activations beyond what autodiff keeps, so their
    /// element-wise steps (a ReLU's, on the CPU) can overwrite their inputs; a sweep that stops
    /// at node `start` (the tap) gives the same map.
    pub fn trace_from(&self, p: &ParamStore, x: Tensor<4>, start: usize) -> SeqTrace {
        let start = start.min(self.nodes.len());
        let mut inputs = Vec::with_capacity(self.nodes.len() - start);
        let mut inner = Vec::with_capacity(self.nodes.len() - start);
        let mut x = self.forward_to(p, x, start);
        for (_, node) in &self.nodes[start..] {
            inputs.push(x.clone());
            let mut t = NodeTrace::None;
            x = node.forward(p, x, Some(&mut t));
            inner.push(t);
        }
        SeqTrace {
            start,
            inputs,
            output: x,
            inner,
        }
    }
}

impl Node {
    /// Forward of one node; `trace` receives what the backward sweeps need.
    pub fn forward(
        &self,
        p: &ParamStore,
        x: Tensor<4>,
        trace: Option<&mut NodeTrace>,
    ) -> Tensor<4> {
        match self {
            Node::Conv(c) => c.apply(p, x),
            Node::BatchNorm(b) => b.apply(p, x),
            Node::Relu => super::relu_of_sum(x, None),
            Node::MaxPool(m) => m.forward(x, trace),
            Node::AvgPool(k) => avg_pool2d(x, AvgPoolOptions::new([*k; 2]).with_stride([*k; 2])),
            Node::GlobalAvgPool => x.mean_dim(3).mean_dim(2),
            Node::Flatten => {
                let [n, c, h, w] = x.dims();
                x.reshape([n, c * h * w, 1, 1])
            }
            Node::Linear(l) => l.apply(p, x),
            Node::Dropout => x,
            Node::Residual(r) => r.forward(p, x, trace),
            Node::Dense(branch) => dense_forward(branch, p, x, trace),
            Node::Fire(f) => f.forward(p, x, trace),
        }
    }
}

impl MaxPool {
    /// Max-pool forward; traced, it stores the flat argmax indices `[N, C, H_out·W_out]`.
    fn forward(&self, x: Tensor<4>, trace: Option<&mut NodeTrace>) -> Tensor<4> {
        #[cfg(feature = "flex")]
        if let Some(out) = self.own_kernel(&x, trace.is_some()) {
            return match (out, trace) {
                ((y, Some(idx)), Some(t)) => {
                    *t = NodeTrace::Pool(idx);
                    y
                }
                ((y, _), _) => y,
            };
        }
        match trace {
            None => max_pool2d(x, self.options()),
            Some(t) => {
                let (y, idx) = max_pool2d_with_indices(x, self.options());
                let [n, c, ho, wo] = idx.dims();
                *t = NodeTrace::Pool(idx.reshape([n, c, ho * wo]));
                y
            }
        }
    }
}

#[cfg(feature = "flex")]
impl MaxPool {
    /// The pool through foolmap's CPU loops where `x` is an `f32` flex tensor
    /// ([`super::flex_pool`]); `None` elsewhere.
    fn own_kernel(&self, x: &Tensor<4>, winners: bool) -> Option<super::flex_pool::Pooled> {
        let [n, c, h, w] = x.dims();
        let g = super::cpu_pool::PoolGeom {
            n,
            c,
            h,
            w,
            k: self.kernel,
            stride: self.stride,
            padding: self.padding,
            ceil: self.ceil,
        };
        super::flex_pool::run(&g, x, winners)
    }
}

impl Residual {
    /// `ReLU(b + s)` of branch `b` and shortcut `s`; traced, it stores both parts and `b`, `s`.
    fn forward(&self, p: &ParamStore, x: Tensor<4>, trace: Option<&mut NodeTrace>) -> Tensor<4> {
        match trace {
            None => {
                let b = self.branch.forward(p, x.clone());
                let s = match &self.shortcut {
                    Shortcut::Identity => x,
                    Shortcut::OptionA { pad } => option_a(x, *pad),
                    Shortcut::Projection(seq) => seq.forward(p, x),
                };
                super::relu_of_sum(b, Some(s))
            }
            Some(t) => {
                let branch = self.branch.trace(p, x.clone());
                let (s, shortcut) = match &self.shortcut {
                    Shortcut::Identity => (x, None),
                    Shortcut::OptionA { pad } => (option_a(x, *pad), None),
                    Shortcut::Projection(seq) => {
                        let st = seq.trace(p, x);
                        (st.output.clone(), Some(st))
                    }
                };
                let b = branch.output.clone();
                let y = super::relu_of_sum(b.clone(), Some(s.clone()));
                *t = NodeTrace::Residual(Box::new(ResidualTrace {
                    branch,
                    shortcut,
                    b,
                    s,
                }));
                y
            }
        }
    }
}

/// DenseNet layer `[x, branch(x)]` (channels concatenated); traced, it stores the branch.
fn dense_forward(
    branch: &Seq,
    p: &ParamStore,
    x: Tensor<4>,
    trace: Option<&mut NodeTrace>,
) -> Tensor<4> {
    match trace {
        None => {
            let new = branch.forward(p, x.clone());
            super::cat_channels(x, new)
        }
        Some(t) => {
            let bt = branch.trace(p, x.clone());
            let y = super::cat_channels(x, bt.output.clone());
            *t = NodeTrace::Dense(bt);
            y
        }
    }
}

impl Fire {
    /// `[e1(s), e3(s)]` of the squeezed `s = squeeze(x)`; traced, it stores the three parts.
    fn forward(&self, p: &ParamStore, x: Tensor<4>, trace: Option<&mut NodeTrace>) -> Tensor<4> {
        match trace {
            None => {
                let s = self.squeeze.forward(p, x);
                let e1 = self.expand1x1.forward(p, s.clone());
                let e3 = self.expand3x3.forward(p, s);
                super::cat_channels(e1, e3)
            }
            Some(t) => {
                let squeeze = self.squeeze.trace(p, x);
                let e1 = self.expand1x1.trace(p, squeeze.output.clone());
                let e3 = self.expand3x3.trace(p, squeeze.output.clone());
                let y = super::cat_channels(e1.output.clone(), e3.output.clone());
                *t = NodeTrace::Fire(Box::new(FireTrace { squeeze, e1, e3 }));
                y
            }
        }
    }
}
