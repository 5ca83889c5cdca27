//! Network structure as a tree of typed nodes, its forward pass, and the stored activations
//! ([`SeqTrace`]) that the explicit backward passes of [`crate::explain`] walk over.
//!
//! Every architecture is a top-level [`Seq`] whose nodes carry torchvision module paths
//! (`features.34`, `layer4.2`, `features.denseblock4.denselayer16`, ...). The *tap* of spec §2 is
//! the input of one top-level node. All activations are rank-4 `[N, C, H, W]`; fully connected
//! layers act on `[N, F, 1, 1]`, so one sweep handles convolutional and dense parts alike.

use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Int, Tensor};

use crate::params::{Init, ParamId, ParamKind, ParamSpec, ParamStore};

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

/// Activations stored by a traced forward pass of a [`Seq`].
#[derive(Debug, Clone)]
pub struct SeqTrace {
    /// `inputs[i]` = input of node `i`.
    pub inputs: Vec<Tensor<4>>,
    /// Output of the last node.
    pub output: Tensor<4>,
    /// Per-node inner traces (same length as `inputs`).
    pub inner: Vec<NodeTrace>,
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
        conv2d(
            x,
            p.get::<4>(self.weight),
            self.bias.map(|b| p.get::<1>(b)),
            ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1),
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
        let c = scale.dims()[0];
        x.mul(scale.reshape([1, c, 1, 1]))
            .add(shift.reshape([1, c, 1, 1]))
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

impl Seq {
    /// Appends a node.
    pub fn push(&mut self, name: impl Into<String>, node: Node) {
        self.nodes.push((name.into(), node));
    }

    /// Forward pass without storing activations.
    pub fn forward(&self, p: &ParamStore, x: Tensor<4>) -> Tensor<4> {
        self.nodes
            .iter()
            .fold(x, |x, (_, node)| node.forward(p, x, None))
    }

    /// Forward pass of the nodes `from..` only (the input is the input of node `from`).
    pub fn forward_from(&self, p: &ParamStore, x: Tensor<4>, from: usize) -> Tensor<4> {
        self.nodes[from..]
            .iter()
            .fold(x, |x, (_, node)| node.forward(p, x, None))
    }

    /// Forward pass of the nodes `..to` only: the input of node `to` (e.g. the tap activation).
    pub fn forward_to(&self, p: &ParamStore, x: Tensor<4>, to: usize) -> Tensor<4> {
        self.nodes[..to]
            .iter()
            .fold(x, |x, (_, node)| node.forward(p, x, None))
    }

    /// Forward pass storing every activation needed by the backward sweeps.
    pub fn trace(&self, p: &ParamStore, x: Tensor<4>) -> SeqTrace {
        let mut inputs = Vec::with_capacity(self.nodes.len());
        let mut inner = Vec::with_capacity(self.nodes.len());
        let mut x = x;
        for (_, node) in &self.nodes {
            inputs.push(x.clone());
            let mut t = NodeTrace::None;
            x = node.forward(p, x, Some(&mut t));
            inner.push(t);
        }
        SeqTrace {
            inputs,
            output: x,
            inner,
        }
    }

    /// Index of the top-level node called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|(n, _)| n == name)
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
            Node::Relu => relu(x),
            Node::MaxPool(m) => match trace {
                None => max_pool2d(x, m.options()),
                Some(t) => {
                    let (y, idx) = max_pool2d_with_indices(x, m.options());
                    let [n, c, ho, wo] = idx.dims();
                    *t = NodeTrace::Pool(idx.reshape([n, c, ho * wo]));
                    y
                }
            },
            Node::AvgPool(k) => avg_pool2d(x, AvgPoolOptions::new([*k; 2]).with_stride([*k; 2])),
            Node::GlobalAvgPool => x.mean_dim(3).mean_dim(2),
            Node::Flatten => {
                let [n, c, h, w] = x.dims();
                x.reshape([n, c * h * w, 1, 1])
            }
            Node::Linear(l) => l.apply(p, x),
            Node::Dropout => x,
            Node::Residual(r) => match trace {
                None => {
                    let b = r.branch.forward(p, x.clone());
                    let s = match &r.shortcut {
                        Shortcut::Identity => x,
                        Shortcut::OptionA { pad } => option_a(x, *pad),
                        Shortcut::Projection(seq) => seq.forward(p, x),
                    };
                    relu(b.add(s))
                }
                Some(t) => {
                    let branch = r.branch.trace(p, x.clone());
                    let (s, shortcut) = match &r.shortcut {
                        Shortcut::Identity => (x, None),
                        Shortcut::OptionA { pad } => (option_a(x, *pad), None),
                        Shortcut::Projection(seq) => {
                            let st = seq.trace(p, x);
                            (st.output.clone(), Some(st))
                        }
                    };
                    let b = branch.output.clone();
                    let y = relu(b.clone().add(s.clone()));
                    *t = NodeTrace::Residual(Box::new(ResidualTrace {
                        branch,
                        shortcut,
                        b,
                        s,
                    }));
                    y
                }
            },
            Node::Dense(branch) => match trace {
                None => {
                    let new = branch.forward(p, x.clone());
                    Tensor::cat(vec![x, new], 1)
                }
                Some(t) => {
                    let bt = branch.trace(p, x.clone());
                    let y = Tensor::cat(vec![x, bt.output.clone()], 1);
                    *t = NodeTrace::Dense(bt);
                    y
                }
            },
            Node::Fire(f) => match trace {
                None => {
                    let s = f.squeeze.forward(p, x);
                    let e1 = f.expand1x1.forward(p, s.clone());
                    let e3 = f.expand3x3.forward(p, s);
                    Tensor::cat(vec![e1, e3], 1)
                }
                Some(t) => {
                    let squeeze = f.squeeze.trace(p, x);
                    let e1 = f.expand1x1.trace(p, squeeze.output.clone());
                    let e3 = f.expand3x3.trace(p, squeeze.output.clone());
                    let y = Tensor::cat(vec![e1.output.clone(), e3.output.clone()], 1);
                    *t = NodeTrace::Fire(Box::new(FireTrace { squeeze, e1, e3 }));
                    y
                }
            },
        }
    }
}

/// Declares parameters while an architecture is being laid out.
#[derive(Debug, Default)]
pub struct SpecBuilder {
    /// Declared parameters, in order.
    pub specs: Vec<ParamSpec>,
}

impl SpecBuilder {
    fn declare(&mut self, name: String, shape: Vec<usize>, init: Init, kind: ParamKind) -> ParamId {
        self.specs.push(ParamSpec {
            name,
            shape,
            init,
            kind,
        });
        ParamId(self.specs.len() - 1)
    }

    /// A convolution node `name` with `name.weight` (and `name.bias`).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Node {
        let fan_in = cin * k * k;
        let weight = self.declare(
            format!("{name}.weight"),
            vec![cout, cin, k, k],
            Init::KaimingNormal { fan_in },
            ParamKind::Trainable,
        );
        let bias = bias.then(|| {
            self.declare(
                format!("{name}.bias"),
                vec![cout],
                Init::Uniform { lo: -0.1, hi: 0.1 },
                ParamKind::Trainable,
            )
        });
        Node::Conv(Conv {
            weight,
            bias,
            stride,
            padding,
        })
    }

    /// An eval-mode BatchNorm node with torchvision keys `weight, bias, running_mean, running_var`.
    ///
    /// Random initialisation is deliberately not the identity (γ ∈ U(0.5,1.5), β, μ ~ N(0,0.1²),
    /// σ² ∈ U(0.5,1.5)) so that tests exercise the BatchNorm handling, as the fixtures do.
    pub fn bn(&mut self, name: &str, c: usize) -> Node {
        let gamma = self.declare(
            format!("{name}.weight"),
            vec![c],
            Init::Uniform { lo: 0.5, hi: 1.5 },
            ParamKind::Trainable,
        );
        let beta = self.declare(
            format!("{name}.bias"),
            vec![c],
            Init::Normal { std: 0.1 },
            ParamKind::Trainable,
        );
        let mean = self.declare(
            format!("{name}.running_mean"),
            vec![c],
            Init::Normal { std: 0.1 },
            ParamKind::Buffer,
        );
        let var = self.declare(
            format!("{name}.running_var"),
            vec![c],
            Init::Uniform { lo: 0.5, hi: 1.5 },
            ParamKind::Buffer,
        );
        Node::BatchNorm(BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps: 1e-5,
        })
    }

    /// A fully connected node with torchvision keys.
    pub fn linear(&mut self, name: &str, fin: usize, fout: usize) -> Node {
        let weight = self.declare(
            format!("{name}.weight"),
            vec![fout, fin],
            Init::KaimingNormal { fan_in: fin },
            ParamKind::Trainable,
        );
        let bias = self.declare(
            format!("{name}.bias"),
            vec![fout],
            Init::Uniform { lo: -0.1, hi: 0.1 },
            ParamKind::Trainable,
        );
        Node::Linear(Linear { weight, bias })
    }
}
