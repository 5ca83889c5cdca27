//! The CPU backend's element-wise steps through foolmap's own loops ([`super::cpu_channel`]),
//! with and without autodiff (`docs/method.md` §9).
//!
//! Three operations are replaced, each with its own backward step in Burn's autodiff graph:
//!
//! - `Affine`: `y = x · scale[c] + shift[c]`; backward `dx = dy · scale[c]`,
//!   `dscale[c] = Σ dy·x`, `dshift[c] = Σ dy`;
//! - `ReluSum`: `y = ReLU(a)` or `ReLU(a + b)`; backward `dy` where the sum passes, else 0, to
//!   each part;
//! - `Mask`: `y = r · [a > 0]` or `r · [a + b > 0]` with constant `a`, `b` (the gradient sweeps'
//!   ReLU masks); backward `dy · [a > 0]`.
//!
//! A tensor that is not `f32` on flex gets `None`, and the caller keeps Burn's operations.

use super::cpu_channel;
use super::flex_conv::contiguous;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData};

fn flex_tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// The contiguous `f32` copy (or view) of `t`; `None` for another dtype.
fn f32s(t: &FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| contiguous(t))
}

/// `f` of an optional part: `Some(None)` without the part, `None` where `f` fails on it.
fn optional<T, U>(part: Option<T>, f: impl FnOnce(T) -> Option<U>) -> Option<Option<U>> {
    part.map_or(Some(None), |p| f(p).map(Some))
}

/// Channels and plane size of a rank-4 shape.
fn planes(dims: [usize; 4]) -> (usize, usize) {
    (dims[1], dims[2] * dims[3])
}

/// `x · scale + shift` per channel on plain `f32` flex tensors.
fn affine_fwd(
    dims: [usize; 4],
    x: &FlexTensor,
    scale: Option<&FlexTensor>,
    shift: Option<&FlexTensor>,
) -> Option<FlexTensor> {
    let (c, plane) = planes(dims);
    let x = f32s(x)?;
    let (scale, shift) = (optional(scale, f32s)?, optional(shift, f32s)?);
    let y = cpu_channel::affine(
        x.as_slice()?,
        c,
        plane,
        scale.as_ref().and_then(|s| s.as_slice()),
        shift.as_ref().and_then(|s| s.as_slice()),
    );
    Some(flex_tensor(y, dims))
}

/// `ReLU(Σ parts)` on plain `f32` flex tensors.
fn relu_sum_fwd(dims: [usize; 4], parts: &[&FlexTensor]) -> Option<FlexTensor> {
    let parts = parts.iter().map(|p| f32s(p)).collect::<Option<Vec<_>>>()?;
    let slices = parts
        .iter()
        .map(|p| p.as_slice())
        .collect::<Option<Vec<_>>>()?;
    Some(flex_tensor(cpu_channel::relu_sum(&slices), dims))
}

/// `r · [Σ parts > 0]` on plain `f32` flex tensors.
fn mask_fwd(dims: [usize; 4], r: &FlexTensor, parts: &[FlexTensor]) -> Option<FlexTensor> {
    let r = f32s(r)?;
    let parts = parts.iter().map(f32s).collect::<Option<Vec<_>>>()?;
    let slices = parts
        .iter()
        .map(|p| p.as_slice())
        .collect::<Option<Vec<_>>>()?;
    Some(flex_tensor(
        cpu_channel::mask_positive(r.as_slice()?, &slices),
        dims,
    ))
}

/// Whether `t` is `[C]` for `C` channels.
fn per_channel(t: Option<&Tensor<1>>, c: usize) -> bool {
    t.is_none_or(|t| t.dims() == [c])
}

/// `x · scale[c] + shift[c]` (a missing part is left out) on flex, through Burn's autodiff when
/// the tensors carry it; `None` when one is not an `f32` flex tensor of matching shape.
///
/// # Shapes
/// `x` `[N, C, H, W]`, `scale` and `shift` `[C]` → `[N, C, H, W]`.
pub(super) fn affine(
    x: &Tensor<4>,
    scale: Option<&Tensor<1>>,
    shift: Option<&Tensor<1>>,
) -> Option<Tensor<4>> {
    let dims = x.dims();
    if !per_channel(scale, dims[1]) || !per_channel(shift, dims[1]) {
        return None;
    }
    let plain = |t: &Tensor<1>| t.clone().try_into_primitive::<Flex>().ok();
    if let Ok(xp) = x.clone().try_into_primitive::<Flex>() {
        let (sp, bp) = (optional(scale, plain)?, optional(shift, plain)?);
        return affine_fwd(dims, &xp, sp.as_ref(), bp.as_ref()).map(Tensor::from_primitive::<Flex>);
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C => autodiff::affine::<C>(x, scale, shift))
    }
    #[cfg(not(feature = "autodiff"))]
    None
}

/// `ReLU(a)` or `ReLU(a + b)` on flex, through Burn's autodiff when the tensors carry it;
/// `None` when one is not an `f32` flex tensor or the shapes differ.
///
/// # Shapes
/// `a`, `b`: `[N, C, H, W]` → `[N, C, H, W]`.
pub(super) fn relu_sum(a: &Tensor<4>, b: Option<&Tensor<4>>) -> Option<Tensor<4>> {
    let dims = a.dims();
    if b.is_some_and(|b| b.dims() != dims) {
        return None;
    }
    if let Ok(ap) = a.clone().try_into_primitive::<Flex>() {
        let y = match b {
            None => relu_sum_fwd(dims, &[&ap]),
            Some(b) => {
                let bp = b.clone().try_into_primitive::<Flex>().ok()?;
                relu_sum_fwd(dims, &[&ap, &bp])
            }
        };
        return y.map(Tensor::from_primitive::<Flex>);
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C => match b {
            None => autodiff::relu_sum::<C, 1>([a]),
            Some(b) => autodiff::relu_sum::<C, 2>([a, b]),
        })
    }
    #[cfg(not(feature = "autodiff"))]
    None
}

/// `r · [a > 0]` or `r · [a + b > 0]` with `a`, `b` constants, on flex, through Burn's autodiff
/// when `r` carries it; `None` when one is not an `f32` flex tensor or the shapes differ.
///
/// # Shapes
/// `r`, `a`, `b`: `[N, C, H, W]` → `[N, C, H, W]`.
pub(super) fn mask(r: &Tensor<4>, a: &Tensor<4>, b: Option<&Tensor<4>>) -> Option<Tensor<4>> {
    let dims = r.dims();
    if a.dims() != dims || b.is_some_and(|b| b.dims() != dims) {
        return None;
    }
    // The parts are constants: their flex tensors, whether or not they came with autodiff.
    let constant = |t: &Tensor<4>| {
        #[cfg(feature = "autodiff")]
        let t = t.clone().inner();
        #[cfg(not(feature = "autodiff"))]
        let t = t.clone();
        t.try_into_primitive::<Flex>().ok()
    };
    let parts = std::iter::once(a)
        .chain(b)
        .map(constant)
        .collect::<Option<Vec<_>>>()?;
    if let Ok(rp) = r.clone().try_into_primitive::<Flex>() {
        return mask_fwd(dims, &rp, &parts).map(Tensor::from_primitive::<Flex>);
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C => autodiff::mask::<C>(r, parts.clone()))
    }
    #[cfg(not(feature = "autodiff"))]
    None
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::{affine_fwd, f32s, flex_tensor, mask_fwd, planes, relu_sum_fwd};
    use crate::model::cpu_channel;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, DispatchKindConversion, Flex};
    use burn::tensor::{DispatchTensor, Tensor};

    /// The forward accepted these f32 tensors, and a gradient has its output's dtype.
    const CHECKED: &str = "f32 flex tensors checked in the forward pass";

    /// The backward step of [`super::affine`]. State: the output shape, and the checkpointed
    /// input and scale where there is a scale (a missing scale or shift is a constant parent).
    #[derive(Debug)]
    struct Affine;

    impl Backward<Flex, 3> for Affine {
        type State = ([usize; 4], Option<(NodeId, NodeId)>);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_s, node_b] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (dims, saved) = ops.state;
            let (c, plane) = planes(dims);
            let (x, scale) = match saved {
                Some((x, s)) => (
                    Some(checkpointer.retrieve_node_output::<FlexTensor>(x)),
                    Some(checkpointer.retrieve_node_output::<FlexTensor>(s)),
                ),
                None => (None, None),
            };
            let g = f32s(&grad).expect(CHECKED);
            let (x, scale) = (
                x.map(|t| f32s(&t).expect(CHECKED)),
                scale.map(|t| f32s(&t).expect(CHECKED)),
            );
            let gs = g.as_slice::<f32>().expect(CHECKED);
            let want_params = node_s.is_some() || node_b.is_some();
            // Without a scale there is no `dscale` to want, and `Σ dy·x` reads `dy` in place
            // of the (unsaved) input.
            let xs = x
                .as_ref()
                .map_or(gs, |x| x.as_slice::<f32>().expect(CHECKED));
            let (dx, params) = cpu_channel::affine_grad(
                gs,
                xs,
                c,
                plane,
                scale.as_ref().and_then(|s| s.as_slice::<f32>()),
                node_x.is_some(),
                want_params,
            );
            if let (Some(node), Some(dx)) = (node_x, dx) {
                grads.register::<Flex>(node.id, flex_tensor(dx, dims));
            }
            if let Some((ds, db)) = params {
                if let Some(node) = node_s {
                    grads.register::<Flex>(node.id, flex_tensor(ds, [c]));
                }
                if let Some(node) = node_b {
                    grads.register::<Flex>(node.id, flex_tensor(db, [c]));
                }
            }
        }
    }

    pub(super) fn affine<C: CheckpointStrategy>(
        x: &Tensor<4>,
        scale: Option<&Tensor<1>>,
        shift: Option<&Tensor<1>>,
    ) -> Option<Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = x.dims();
        let c = dims[1];
        let xp = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
        // A missing part is an untracked constant parent that the kernel leaves out.
        let part = |t: Option<&Tensor<1>>, fill: f32| {
            let t = t
                .cloned()
                .unwrap_or_else(|| Tensor::full([c], fill, &x.device()));
            t.try_into_primitive::<Autodiff<Flex, C>>().ok()
        };
        let (sp, bp) = (part(scale, 1.0)?, part(shift, 0.0)?);
        let y = affine_fwd(
            dims,
            xp.primitive(),
            scale.is_some().then(|| sp.primitive()),
            shift.is_some().then(|| bp.primitive()),
        )?;
        let out = match Affine
            .prepare::<C>([xp.node(), sp.node(), bp.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let saved = scale
                    .is_some()
                    .then(|| (prep.checkpoint(&xp), prep.checkpoint(&sp)));
                prep.finish((dims, saved), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }

    /// The backward step of [`super::relu_sum`] over `K` parts; its state is the output shape
    /// and the checkpointed parts.
    #[derive(Debug)]
    struct ReluSum<const K: usize>;

    impl<const K: usize> Backward<Flex, K> for ReluSum<K> {
        type State = ([usize; 4], [NodeId; K]);

        fn backward(
            self,
            ops: Ops<Self::State, K>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<Flex>(&ops.node);
            let (dims, ids) = ops.state;
            let parts = ids.map(|id| checkpointer.retrieve_node_output::<FlexTensor>(id));
            if ops.parents.iter().all(Option::is_none) {
                return;
            }
            let parts = parts.each_ref().map(|p| f32s(p).expect(CHECKED));
            let slices = parts
                .each_ref()
                .map(|p| p.as_slice::<f32>().expect(CHECKED));
            let g = f32s(&grad).expect(CHECKED);
            let dx = cpu_channel::relu_sum_grad(g.as_slice::<f32>().expect(CHECKED), &slices);
            let dx = flex_tensor(dx, dims);
            for node in ops.parents.into_iter().flatten() {
                grads.register::<Flex>(node.id, dx.clone());
            }
        }
    }

    pub(super) fn relu_sum<C: CheckpointStrategy, const K: usize>(
        parts: [&Tensor<4>; K],
    ) -> Option<Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = parts[0].dims();
        let ps = parts
            .map(|p| p.clone().try_into_primitive::<Autodiff<Flex, C>>().ok())
            .into_iter()
            .collect::<Option<Vec<_>>>()?;
        let prims: Vec<&FlexTensor> = ps.iter().map(|p| p.primitive()).collect();
        let y = relu_sum_fwd(dims, &prims)?;
        let nodes: [_; K] = std::array::from_fn(|k| ps[k].node());
        let out = match ReluSum::<K>.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let ids: [NodeId; K] = std::array::from_fn(|k| prep.checkpoint(&ps[k]));
                prep.finish((dims, ids), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }

    /// The backward step of [`super::mask`]; its state is the output shape and the constant
    /// parts.
    #[derive(Debug)]
    struct Mask;

    impl Backward<Flex, 1> for Mask {
        type State = ([usize; 4], Vec<FlexTensor>);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node_r] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let Some(node) = node_r else { return };
            let (dims, parts) = ops.state;
            let dr = mask_fwd(dims, &grad, &parts).expect(CHECKED);
            grads.register::<Flex>(node.id, dr);
        }
    }

    pub(super) fn mask<C: CheckpointStrategy>(
        r: &Tensor<4>,
        parts: Vec<FlexTensor>,
    ) -> Option<Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = r.dims();
        let rp = r.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
        let y = mask_fwd(dims, rp.primitive(), &parts)?;
        let out = match Mask.prepare::<C>([rp.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((dims, parts), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }
}

#[cfg(all(test, feature = "autodiff"))]
mod tests {
    use super::{affine, mask, relu_sum};
    use burn::tensor::activation::relu;
    use burn::tensor::{Device, Distribution, Gradients, Tensor, TensorData};

    /// Element by element, `a` equals `b` within `tol` (relative, at least absolute 1) or both
    /// are NaN.
    fn close(a: Tensor<4>, b: Tensor<4>, tol: f32, what: &str) {
        let (a, b) = (a.into_data(), b.into_data());
        assert_eq!(a.shape(), b.shape(), "{what}: shape");
        let (a, b) = (
            a.try_to_vec::<f32>().expect("f32"),
            b.try_to_vec::<f32>().expect("f32"),
        );
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let same = (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * y.abs().max(1.0);
            assert!(same, "{what}[{i}]: {x} vs {y}");
        }
    }

    fn grad(t: &Tensor<4>, g: &Gradients) -> Tensor<4> {
        Tensor::from_inner(t.grad(g).expect("gradient"))
    }

    fn close1(a: Tensor<1>, b: Tensor<1>, tol: f32, what: &str) {
        let c = a.dims()[0];
        close(a.reshape([1, c, 1, 1]), b.reshape([1, c, 1, 1]), tol, what);
    }

    /// Normal values rounded to quarters (exact zeros and ties with zero), one NaN.
    fn input(dims: [usize; 4], dev: &Device, nan_at: usize) -> Tensor<4> {
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), dev)
            .mul_scalar(4.0)
            .round()
            .div_scalar(4.0);
        let mut v = x.to_data().try_to_vec::<f32>().expect("f32");
        let len = v.len();
        v[nan_at % len] = f32::NAN;
        Tensor::from_data(TensorData::new(v, dims), dev)
    }

    /// Shapes below and above the parallel threshold and with one-pixel planes.
    const SHAPES: [[usize; 4]; 3] = [[2, 3, 4, 5], [8, 16, 16, 16], [16, 8, 1, 1]];

    /// The affine map and its three gradients equal Burn's `x·s + b` (broadcast) with autodiff,
    /// with scale and shift, scale only and shift only, tracked and plain.
    #[test]
    fn own_affine_equals_burns_with_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(11);
        for dims in SHAPES {
            let c = dims[1];
            let x0 = input(dims, &dev, 7);
            let s0 = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &dev);
            let b0 = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &dev);
            let r = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            for (with_s, with_b) in [(true, true), (true, false), (false, true)] {
                let what = format!("{dims:?} scale {with_s} shift {with_b}");
                let (x, s, b) = (
                    x0.clone().require_grad(),
                    s0.clone().require_grad(),
                    b0.clone().require_grad(),
                );
                let own = affine(&x, with_s.then_some(&s), with_b.then_some(&b)).expect("flex f32");
                let mut burn = x.clone();
                if with_s {
                    burn = burn.mul(s.clone().reshape([1, c, 1, 1]));
                }
                if with_b {
                    burn = burn.add(b.clone().reshape([1, c, 1, 1]));
                }
                close(own.clone(), burn.clone(), 0.0, &format!("{what}: values"));
                let (go, gb) = (
                    own.mul(r.clone()).sum().backward(),
                    burn.clone().mul(r.clone()).sum().backward(),
                );
                close(grad(&x, &go), grad(&x, &gb), 0.0, &format!("{what}: dx"));
                if with_s {
                    let (a, e) = (s.grad(&go).expect("own"), s.grad(&gb).expect("Burn's"));
                    // A NaN in the first channel's plane makes its Σ dy·x NaN on both sides.
                    close1(
                        Tensor::from_inner(a),
                        Tensor::from_inner(e),
                        1e-4,
                        &format!("{what}: dscale"),
                    );
                }
                if with_b {
                    let (a, e) = (b.grad(&go).expect("own"), b.grad(&gb).expect("Burn's"));
                    close1(
                        Tensor::from_inner(a),
                        Tensor::from_inner(e),
                        1e-4,
                        &format!("{what}: dshift"),
                    );
                }
                let plain = affine(
                    &x0.clone().inner(),
                    with_s.then(|| s0.clone().inner()).as_ref(),
                    with_b.then(|| b0.clone().inner()).as_ref(),
                )
                .expect("plain flex f32");
                close(
                    Tensor::from_inner(plain),
                    burn.inner(),
                    0.0,
                    &format!("{what}: plain"),
                );
            }
            assert!(
                affine(&x0, Some(&Tensor::<1>::ones([c + 1], &dev)), None).is_none(),
                "a scale of the wrong length is left to Burn"
            );
        }
    }

    /// `ReLU(a)`, `ReLU(a + b)` and the sweeps' mask equal Burn's operations, with the gradient
    /// to every part, NaNs and exact zeros included.
    #[test]
    fn own_relu_of_a_sum_and_mask_equal_burns_with_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(12);
        for dims in SHAPES {
            let (a0, b0) = (input(dims, &dev, 3), input(dims, &dev, 5));
            let r0 = input(dims, &dev, 9);
            let w = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            for two in [false, true] {
                let what = format!("{dims:?} two parts {two}");
                let (a, b) = (a0.clone().require_grad(), b0.clone().require_grad());
                let own = relu_sum(&a, two.then_some(&b)).expect("flex f32");
                let burn = if two {
                    relu(a.clone().add(b.clone()))
                } else {
                    relu(a.clone())
                };
                close(own.clone(), burn.clone(), 0.0, &format!("{what}: relu"));
                let (go, gb) = (
                    own.mul(w.clone()).sum().backward(),
                    burn.mul(w.clone()).sum().backward(),
                );
                close(
                    grad(&a, &go),
                    grad(&a, &gb),
                    0.0,
                    &format!("{what}: relu da"),
                );
                if two {
                    close(
                        grad(&b, &go),
                        grad(&b, &gb),
                        0.0,
                        &format!("{what}: relu db"),
                    );
                }
                let r = r0.clone().require_grad();
                let own = mask(&r, &a0, two.then_some(&b0)).expect("flex f32");
                let t = if two {
                    a0.clone().add(b0.clone())
                } else {
                    a0.clone()
                };
                let burn = r.clone().mul(t.detach().greater_elem(0.0).float());
                close(own.clone(), burn.clone(), 0.0, &format!("{what}: mask"));
                let (go, gb) = (
                    own.mul(w.clone()).sum().backward(),
                    burn.mul(w.clone()).sum().backward(),
                );
                close(
                    grad(&r, &go),
                    grad(&r, &gb),
                    0.0,
                    &format!("{what}: mask dr"),
                );
                let plain = mask(&r0.clone().inner(), &a0.clone().inner(), None).expect("plain");
                let burn = r0.clone().mul(a0.clone().greater_elem(0.0).float());
                close(
                    Tensor::from_inner(plain),
                    burn,
                    0.0,
                    &format!("{dims:?}: plain mask"),
                );
            }
        }
    }
}
