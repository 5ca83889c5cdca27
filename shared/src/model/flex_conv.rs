//! The CPU backend's convolutions through foolmap's own kernels ([`super::cpu_conv`]), with and
//! without autodiff (`docs/method.md` §9).
//!
//! Burn's flex backend runs a convolution as NHWC copies + tiled im2col + GEMM and its backward as
//! a transposed convolution plus a convolution over the batch. For forward + both gradients of one
//! layer that measured 1.8–3.5× slower than im2col + one GEMM per image on NCHW data at the shapes
//! of ResNet-20 and SqueezeNet, and about even at VGG-16's (BENCHMARKS.md, "Convolutions on the
//! CPU through foolmap's own kernels"). Two operations are replaced, each with its own backward
//! step in Burn's autodiff graph:
//!
//! - `Conv`: `y = conv(x, W)`; backward `dx = convT(dy, W)`, `dW = Σₙ dy[n] · col(x[n])ᵀ`;
//! - `ConvT` (the interpreters' explicit input gradient): `g_in = convT(g, W)`; backward
//!   `dg = conv(dg_in, W)`, `dW = Σₙ g[n] · col(dg_in[n])ᵀ`.
//!
//! Both are first-order: the backward steps run on plain flex tensors, as Burn's own do. A tensor
//! that is not `f32` on flex gets `None`, and the caller keeps Burn's kernel.

use super::cpu_conv::{self, ConvGeom};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Tensor, TensorData};

/// `t` with a contiguous layout (shares its buffer when it already has one).
pub(super) fn contiguous(t: &FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        t.clone()
    } else {
        t.to_contiguous()
    }
}

fn flex_tensor(v: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// `y = conv(x, W)`; `None` unless both are `f32`.
fn conv_fwd(g: &ConvGeom, x: &FlexTensor, w: &FlexTensor) -> Option<FlexTensor> {
    let (x, w) = (contiguous(x), contiguous(w));
    let y = cpu_conv::forward(g, x.as_slice()?, w.as_slice()?);
    Some(flex_tensor(y, [g.n, g.cout, g.ho(), g.wo()]))
}

/// `dx = convT(dy, W)` (`[N, Cin, H, W]`).
fn conv_dx(g: &ConvGeom, dy: &FlexTensor, w: &FlexTensor) -> Option<FlexTensor> {
    let (dy, w) = (contiguous(dy), contiguous(w));
    let dx = cpu_conv::input_grad(g, dy.as_slice()?, w.as_slice()?);
    Some(flex_tensor(dx, [g.n, g.cin, g.h, g.w]))
}

/// `dW = Σₙ dy[n] · col(x[n])ᵀ` (`[Cout, Cin, kh, kw]`).
fn conv_dw(g: &ConvGeom, x: &FlexTensor, dy: &FlexTensor) -> Option<FlexTensor> {
    let (x, dy) = (contiguous(x), contiguous(dy));
    let dw = cpu_conv::weight_grad(g, x.as_slice()?, dy.as_slice()?);
    Some(flex_tensor(dw, [g.cout, g.cin, g.kh, g.kw]))
}

/// `(conv(x, W), Σₙ dy[n] · col(x[n])ᵀ)` with one im2col of `x`.
fn conv_fwd_dw(
    g: &ConvGeom,
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
) -> Option<(FlexTensor, FlexTensor)> {
    let (x, w, dy) = (contiguous(x), contiguous(w), contiguous(dy));
    let (y, dw) =
        cpu_conv::forward_and_weight_grad(g, x.as_slice()?, w.as_slice()?, dy.as_slice()?);
    Some((
        flex_tensor(y, [g.n, g.cout, g.ho(), g.wo()]),
        flex_tensor(dw, [g.cout, g.cin, g.kh, g.kw]),
    ))
}

/// Which of the two operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// `conv(x, W)`: input `[N, Cin, H, W]`, output `[N, Cout, Ho, Wo]`.
    Conv,
    /// `convT(g, W)`: input `[N, Cout, Ho, Wo]`, output `[N, Cin, H, W]`.
    ConvT,
}

impl Op {
    /// The operation whose result is this one's input gradient: `convT` for `conv`, and back.
    fn adjoint(self) -> Op {
        match self {
            Op::Conv => Op::ConvT,
            Op::ConvT => Op::Conv,
        }
    }

    fn apply(self, g: &ConvGeom, a: &FlexTensor, w: &FlexTensor) -> Option<FlexTensor> {
        // Shapes were checked by `run`; a dtype other than f32 gives `None` here.
        match self {
            Op::Conv => conv_fwd(g, a, w),
            Op::ConvT => conv_dx(g, a, w),
        }
    }
}

/// `op(a, W)` on flex with foolmap's kernels, through Burn's autodiff when `a` carries it;
/// `None` when `a` or `w` is not an `f32` flex tensor (the caller then uses Burn's kernel).
///
/// # Shapes
/// `g` is the geometry of the forward convolution; `a` is `[N, Cin, H, W]` for [`Op::Conv`] and
/// `[N, Cout, Ho, Wo]` for [`Op::ConvT`]; `w` is `[Cout, Cin, kh, kw]`.
pub(super) fn run(op: Op, g: &ConvGeom, a: &Tensor<4>, w: &Tensor<4>) -> Option<Tensor<4>> {
    let a_dims = match op {
        Op::Conv => [g.n, g.cin, g.h, g.w],
        Op::ConvT => [g.n, g.cout, g.ho(), g.wo()],
    };
    if a.dims() != a_dims || w.dims() != [g.cout, g.cin, g.kh, g.kw] {
        return None;
    }
    if let (Ok(ap), Ok(wp)) = (
        a.clone().try_into_primitive::<Flex>(),
        w.clone().try_into_primitive::<Flex>(),
    ) {
        if ap.dtype() != burn::tensor::DType::F32 || wp.dtype() != burn::tensor::DType::F32 {
            return None;
        }
        return op.apply(g, &ap, &wp).map(Tensor::from_primitive::<Flex>);
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C => autodiff::run::<C>(op, g, a, w))
    }
    #[cfg(not(feature = "autodiff"))]
    None
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::{ConvGeom, Op, conv_dw, conv_fwd_dw};
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, DispatchKindConversion, Flex};
    use burn::tensor::{DispatchTensor, Tensor};

    /// The backward step of one replaced convolution; its state is the two checkpointed inputs
    /// and the geometry.
    #[derive(Debug)]
    struct Step(Op);

    impl Backward<Flex, 2> for Step {
        type State = (NodeId, NodeId, ConvGeom);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_a, node_w] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (a_id, w_id, g) = ops.state;
            let a = checkpointer.retrieve_node_output::<FlexTensor>(a_id);
            let w = checkpointer.retrieve_node_output::<FlexTensor>(w_id);
            // The forward accepted these f32 tensors, and the gradient has the output's dtype.
            let missing = "f32 flex tensors checked in the forward pass";
            // `a`'s gradient is the other operation applied to the incoming gradient; the weight
            // gradient takes its patches from the convolution's input: `a` for `Conv`, the
            // incoming gradient for `ConvT`.
            let (patches, dy) = match self.0 {
                Op::Conv => (&a, &grad),
                Op::ConvT => (&grad, &a),
            };
            let (da, dw) = match (self.0, &node_a, &node_w) {
                // Both gradients of a transposed convolution read the incoming gradient's
                // patches: one im2col for the two.
                (Op::ConvT, Some(_), Some(_)) => {
                    let (da, dw) = conv_fwd_dw(&g, &grad, &w, &a).expect(missing);
                    (Some(da), Some(dw))
                }
                _ => (
                    node_a.as_ref().map(|_| {
                        let da = self.0.adjoint().apply(&g, &grad, &w);
                        da.expect(missing)
                    }),
                    node_w
                        .as_ref()
                        .map(|_| conv_dw(&g, patches, dy).expect(missing)),
                ),
            };
            if let (Some(node), Some(da)) = (node_a, da) {
                grads.register::<Flex>(node.id, da);
            }
            if let (Some(node), Some(dw)) = (node_w, dw) {
                grads.register::<Flex>(node.id, dw);
            }
        }
    }

    pub(super) fn run<C: CheckpointStrategy>(
        op: Op,
        g: &ConvGeom,
        a: &Tensor<4>,
        w: &Tensor<4>,
    ) -> Option<Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let ap = a.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
        let wp = w.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
        let f32s = |t: &FlexTensor| t.dtype() == burn::tensor::DType::F32;
        if !f32s(ap.primitive()) || !f32s(wp.primitive()) {
            return None;
        }
        let out = match Step(op)
            .prepare::<C>([ap.node(), wp.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let a_id = prep.checkpoint(&ap);
                let w_id = prep.checkpoint(&wp);
                let y = op.apply(g, ap.primitive(), wp.primitive())?;
                prep.finish((a_id, w_id, *g), y)
            }
            OpsKind::UnTracked(prep) => {
                let y = op.apply(g, ap.primitive(), wp.primitive())?;
                prep.finish(y)
            }
        };
        Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }
}
