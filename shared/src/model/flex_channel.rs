//! The CPU backend's element-wise steps through foolmap's own loops ([`super::cpu_channel`]),
//! with and without autodiff (`docs/method.md` §9).
//!
//! Three operations are replaced, each with its own backward step in Burn's autodiff graph:
//!
//! - `Affine`: `y = x · scale[c] + shift[c]`; backward `dx = dy · scale[c]`,
//!   `dscale[c] = Σ dy·x`, `dshift[c] = Σ dy`;
//! - `ReluSum`: `y = ReLU(a)` or `ReLU(a + b)`; backward `dy` where `y` passes, else 0, to
//!   each part (the output, not the parts, is kept for it, as Burn's ReLU does);
//! - `AffineRelu`: `y = ReLU(x · scale[c] + shift[c])`, an eval-mode BatchNorm and its ReLU in
//!   one pass; backward, in one pass, `g = dy` where `y` passes, `dx = g · scale[c]`,
//!   `dscale[c] = Σ g·x`, `dshift[c] = Σ g` (the same values as the two steps one after the
//!   other, bit for bit);
//! - `Mask`: `y = r · [a > 0]` or `r · [a + b > 0]` with constant `a`, `b` (the gradient sweeps'
//!   ReLU masks); backward `dy · [a > 0]`.
//!
//! Each takes its first input (`x`, `a`, `r`, and in the backward steps `dy`) by value and, as
//! Burn's operations do, overwrites it when nothing else holds its buffer. A tensor that is not
//! `f32` on flex is handed back (`Err`), and the caller keeps Burn's operations.

// The `Err` of these steps is the caller's own tensor handed back unchanged (as large as the
// `Ok`): boxing it would allocate on every call for nothing.
#![allow(clippy::result_large_err)]

use super::cpu_channel::{self, First};
use super::flex_conv::contiguous;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData};

fn flex_tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

fn is_f32(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32
}

/// The values of a contiguous `f32` tensor (checked by the caller).
pub(super) fn vals(t: &FlexTensor) -> &[f32] {
    t.as_slice()
        .expect("a contiguous f32 flex tensor (checked by the caller)")
}

/// `step` over the values of the `f32` tensor `t` of shape `dims`, as its first input: in place
/// when `t` (or its contiguous copy, when it is strided) owns its whole buffer alone, else into
/// a new tensor.
fn over<const D: usize>(
    t: FlexTensor,
    dims: [usize; D],
    step: impl FnOnce(First<'_>) -> Option<Vec<f32>>,
) -> FlexTensor {
    let mut t = if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    };
    let len = dims.iter().product::<usize>();
    if t.is_unique()
        && t.layout().contiguous_offsets() == Some((0, len))
        && let Some(buf) = t.try_storage_mut::<f32>().filter(|b| b.len() == len)
    {
        step(First::Overwrite(buf));
        return t;
    }
    let new = step(First::Read(vals(&t))).expect("a new vector for a shared input");
    flex_tensor(new, dims)
}

/// `f` of an optional part: `Some(None)` without the part, `None` where `f` fails on it.
fn optional<T, U>(part: Option<T>, f: impl FnOnce(T) -> Option<U>) -> Option<Option<U>> {
    part.map_or(Some(None), |p| f(p).map(Some))
}

/// Channels and plane size of a rank-4 shape.
fn planes(dims: [usize; 4]) -> (usize, usize) {
    (dims[1], dims[2] * dims[3])
}

/// `x · scale + shift` per channel on plain `f32` flex tensors, over `x`.
fn affine_fwd(
    dims: [usize; 4],
    x: FlexTensor,
    scale: Option<&FlexTensor>,
    shift: Option<&FlexTensor>,
) -> FlexTensor {
    let (c, plane) = planes(dims);
    let (scale, shift) = (scale.map(contiguous), shift.map(contiguous));
    over(x, dims, |f| {
        cpu_channel::affine(
            f,
            c,
            plane,
            scale.as_ref().map(vals),
            shift.as_ref().map(vals),
        )
    })
}

/// `ReLU(x · scale + shift)` per channel on plain `f32` flex tensors, over `x`.
fn affine_relu_fwd(
    dims: [usize; 4],
    x: FlexTensor,
    scale: &FlexTensor,
    shift: &FlexTensor,
) -> FlexTensor {
    let (c, plane) = planes(dims);
    let (scale, shift) = (contiguous(scale), contiguous(shift));
    over(x, dims, |f| {
        cpu_channel::affine_relu(f, c, plane, vals(&scale), vals(&shift))
    })
}

/// `ReLU(a + Σ others)` on plain `f32` flex tensors, over `a`.
fn relu_sum_fwd(dims: [usize; 4], a: FlexTensor, others: &[&FlexTensor]) -> FlexTensor {
    let others: Vec<FlexTensor> = others.iter().map(|p| contiguous(p)).collect();
    let slices: Vec<&[f32]> = others.iter().map(vals).collect();
    over(a, dims, |f| cpu_channel::relu_sum(f, &slices))
}

/// `r · [Σ parts > 0]` on plain `f32` flex tensors, over `r`.
fn mask_fwd(dims: [usize; 4], r: FlexTensor, parts: &[FlexTensor]) -> FlexTensor {
    let parts: Vec<FlexTensor> = parts.iter().map(contiguous).collect();
    let slices: Vec<&[f32]> = parts.iter().map(vals).collect();
    over(r, dims, |f| cpu_channel::mask_positive(f, &slices))
}

/// Whether `t` is `[C]` for `C` channels.
fn per_channel(t: Option<&Tensor<1>>, c: usize) -> bool {
    t.is_none_or(|t| t.dims() == [c])
}

/// The plain `f32` flex tensor of `t`; `None` for another backend, autodiff or dtype.
pub(super) fn plain<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    t.clone().try_into_primitive::<Flex>().ok().filter(is_f32)
}

/// `x · scale[c] + shift[c]` (a missing part is left out) on flex, through Burn's autodiff when
/// the tensors carry it, overwriting `x` where nothing else holds it; `x` back in `Err` when a
/// tensor is not an `f32` flex tensor of matching shape.
///
/// # Shapes
/// `x` `[N, C, H, W]`, `scale` and `shift` `[C]` → `[N, C, H, W]`.
pub(super) fn affine(
    x: Tensor<4>,
    scale: Option<&Tensor<1>>,
    shift: Option<&Tensor<1>>,
) -> Result<Tensor<4>, Tensor<4>> {
    let dims = x.dims();
    if !per_channel(scale, dims[1]) || !per_channel(shift, dims[1]) {
        return Err(x);
    }
    if let Some(xp) = plain(&x) {
        let (Some(sp), Some(bp)) = (optional(scale, plain), optional(shift, plain)) else {
            return Err(x);
        };
        drop(x);
        let y = affine_fwd(dims, xp, sp.as_ref(), bp.as_ref());
        return Ok(Tensor::from_primitive::<Flex>(y));
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C, x => autodiff::affine::<C>(x, scale, shift))
    }
    #[cfg(not(feature = "autodiff"))]
    Err(x)
}

/// `ReLU(x · scale[c] + shift[c])` (an eval-mode BatchNorm and its ReLU) on flex, through Burn's
/// autodiff when the tensors carry it, overwriting `x` where nothing else holds it; `x` back in
/// `Err` when a tensor is not an `f32` flex tensor of matching shape.
///
/// # Shapes
/// `x` `[N, C, H, W]`, `scale` and `shift` `[C]` → `[N, C, H, W]`.
pub(super) fn affine_relu(
    x: Tensor<4>,
    scale: &Tensor<1>,
    shift: &Tensor<1>,
) -> Result<Tensor<4>, Tensor<4>> {
    let dims = x.dims();
    if scale.dims() != [dims[1]] || shift.dims() != [dims[1]] {
        return Err(x);
    }
    if let Some(xp) = plain(&x) {
        let (Some(sp), Some(bp)) = (plain(scale), plain(shift)) else {
            return Err(x);
        };
        drop(x);
        let y = affine_relu_fwd(dims, xp, &sp, &bp);
        return Ok(Tensor::from_primitive::<Flex>(y));
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C, x => autodiff::affine_relu::<C>(x, scale, shift))
    }
    #[cfg(not(feature = "autodiff"))]
    Err(x)
}

/// `ReLU(a)` or `ReLU(a + b)` on flex, through Burn's autodiff when the tensors carry it,
/// overwriting `a` where nothing else holds it; `a` back in `Err` when a tensor is not an `f32`
/// flex tensor or the shapes differ.
///
/// # Shapes
/// `a`, `b`: `[N, C, H, W]` → `[N, C, H, W]`.
pub(super) fn relu_sum(a: Tensor<4>, b: Option<&Tensor<4>>) -> Result<Tensor<4>, Tensor<4>> {
    let dims = a.dims();
    if b.is_some_and(|b| b.dims() != dims) {
        return Err(a);
    }
    if let Some(ap) = plain(&a) {
        let Some(bp) = optional(b, plain) else {
            return Err(a);
        };
        drop(a);
        let y = relu_sum_fwd(dims, ap, bp.as_ref().as_slice());
        return Ok(Tensor::from_primitive::<Flex>(y));
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C, a => autodiff::relu_sum::<C>(a, b))
    }
    #[cfg(not(feature = "autodiff"))]
    Err(a)
}

/// `r · [a > 0]` or `r · [a + b > 0]` with `a`, `b` constants, on flex, through Burn's autodiff
/// when `r` carries it, overwriting `r` where nothing else holds it; `r` back in `Err` when a
/// tensor is not an `f32` flex tensor or the shapes differ.
///
/// # Shapes
/// `r`, `a`, `b`: `[N, C, H, W]` → `[N, C, H, W]`.
pub(super) fn mask(
    r: Tensor<4>,
    a: &Tensor<4>,
    b: Option<&Tensor<4>>,
) -> Result<Tensor<4>, Tensor<4>> {
    let dims = r.dims();
    if a.dims() != dims || b.is_some_and(|b| b.dims() != dims) {
        return Err(r);
    }
    // The parts are constants: their flex tensors, whether or not they came with autodiff.
    let constant = |t: &Tensor<4>| {
        #[cfg(feature = "autodiff")]
        let t = t.clone().inner();
        #[cfg(not(feature = "autodiff"))]
        let t = t.clone();
        t.try_into_primitive::<Flex>().ok().filter(is_f32)
    };
    let Some(parts) = std::iter::once(a)
        .chain(b)
        .map(constant)
        .collect::<Option<Vec<_>>>()
    else {
        return Err(r);
    };
    if let Some(rp) = plain(&r) {
        drop(r);
        return Ok(Tensor::from_primitive::<Flex>(mask_fwd(dims, rp, &parts)));
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C, r => autodiff::mask::<C>(r, parts.clone()))
    }
    #[cfg(not(feature = "autodiff"))]
    Err(r)
}

#[cfg(feature = "autodiff")]
pub(super) mod autodiff {
    use super::{
        affine_fwd, affine_relu_fwd, contiguous, is_f32, mask_fwd, over, planes, relu_sum_fwd, vals,
    };
    use crate::model::cpu_channel;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, DispatchKindConversion, Flex};
    use burn::tensor::{DispatchTensor, Tensor};

    pub(in crate::model) type Tracked<C> = burn::backend::tensor::FloatTensor<Autodiff<Flex, C>>;

    /// The `f32` autodiff tensor of `t` on flex with strategy `C`; `None` otherwise.
    pub(in crate::model) fn tracked<C: CheckpointStrategy, const D: usize>(
        t: &Tensor<D>,
    ) -> Option<Tracked<C>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        t.clone()
            .try_into_primitive::<Autodiff<Flex, C>>()
            .ok()
            .filter(|p| is_f32(p.primitive()))
    }

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
            let g = contiguous(&grads.consume::<Flex>(&ops.node));
            let (dims, saved) = ops.state;
            let (c, plane) = planes(dims);
            let (x, scale) = match saved {
                Some((x, s)) => (
                    Some(contiguous(
                        &checkpointer.retrieve_node_output::<FlexTensor>(x),
                    )),
                    Some(contiguous(
                        &checkpointer.retrieve_node_output::<FlexTensor>(s),
                    )),
                ),
                None => (None, None),
            };
            if node_s.is_some() || node_b.is_some() {
                // `dscale` (with a scale, whose input was saved) and `dshift`, before `dy` is
                // overwritten below.
                let (ds, db) =
                    cpu_channel::affine_param_grads(vals(&g), x.as_ref().map(vals), c, plane);
                if let (Some(node), Some(ds)) = (node_s, ds) {
                    grads.register::<Flex>(node.id, super::flex_tensor(ds, [c]));
                }
                if let Some(node) = node_b {
                    grads.register::<Flex>(node.id, super::flex_tensor(db, [c]));
                }
            }
            if let Some(node) = node_x {
                // `dx = dy · scale`, over `dy`; without a scale, `dy` itself.
                let dx = match &scale {
                    Some(s) => over(g, dims, |f| {
                        cpu_channel::affine(f, c, plane, Some(vals(s)), None)
                    }),
                    None => g,
                };
                grads.register::<Flex>(node.id, dx);
            }
        }
    }

    pub(super) fn affine<C: CheckpointStrategy>(
        x: Tensor<4>,
        scale: Option<&Tensor<1>>,
        shift: Option<&Tensor<1>>,
    ) -> Result<Tensor<4>, Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = x.dims();
        let c = dims[1];
        // A missing part is an untracked constant parent that the kernel leaves out.
        let part = |t: Option<&Tensor<1>>, fill: f32| match t {
            Some(t) => tracked::<C, 1>(t),
            None => tracked::<C, 1>(&Tensor::full([c], fill, &x.device())),
        };
        let (Some(xp), Some(sp), Some(bp)) =
            (tracked::<C, 4>(&x), part(scale, 1.0), part(shift, 0.0))
        else {
            return Err(x);
        };
        drop(x);
        let (sv, bv) = (
            scale.is_some().then(|| sp.primitive()),
            shift.is_some().then(|| bp.primitive()),
        );
        let out = match Affine
            .prepare::<C>([xp.node(), sp.node(), bp.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let saved = scale
                    .is_some()
                    .then(|| (prep.checkpoint(&xp), prep.checkpoint(&sp)));
                let y = affine_fwd(dims, xp.into_primitive(), sv, bv);
                prep.finish((dims, saved), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(affine_fwd(dims, xp.into_primitive(), sv, bv)),
        };
        Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }

    /// The backward step of [`super::affine_relu`]. State: the output shape, the checkpointed
    /// input and scale, and the output.
    #[derive(Debug)]
    struct AffineRelu;

    impl Backward<Flex, 3> for AffineRelu {
        type State = ([usize; 4], NodeId, NodeId, FlexTensor);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_s, node_b] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let (dims, x_id, s_id, y) = ops.state;
            let (c, plane) = planes(dims);
            let mut retrieve =
                |id| contiguous(&checkpointer.retrieve_node_output::<FlexTensor>(id));
            let (x, s, y) = (retrieve(x_id), retrieve(s_id), contiguous(&y));
            // One pass: the input gradient over `dy`, the two parameter gradients on the way.
            let mut sums = None;
            let dx = over(dy, dims, |f| {
                let (new, ds, db) =
                    cpu_channel::affine_relu_grad(f, vals(&y), vals(&x), c, plane, vals(&s));
                sums = Some((ds, db));
                new
            });
            let Some((ds, db)) = sums else {
                unreachable!("`over` runs its step")
            };
            if let Some(node) = node_s {
                grads.register::<Flex>(node.id, super::flex_tensor(ds, [c]));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, super::flex_tensor(db, [c]));
            }
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, dx);
            }
        }
    }

    pub(super) fn affine_relu<C: CheckpointStrategy>(
        x: Tensor<4>,
        scale: &Tensor<1>,
        shift: &Tensor<1>,
    ) -> Result<Tensor<4>, Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = x.dims();
        let (Some(xp), Some(sp), Some(bp)) = (
            tracked::<C, 4>(&x),
            tracked::<C, 1>(scale),
            tracked::<C, 1>(shift),
        ) else {
            return Err(x);
        };
        drop(x);
        let out = match AffineRelu
            .prepare::<C>([xp.node(), sp.node(), bp.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_id, s_id) = (prep.checkpoint(&xp), prep.checkpoint(&sp));
                let y = affine_relu_fwd(dims, xp.into_primitive(), sp.primitive(), bp.primitive());
                let kept = y.clone();
                prep.finish((dims, x_id, s_id, kept), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(affine_relu_fwd(
                dims,
                xp.into_primitive(),
                sp.primitive(),
                bp.primitive(),
            )),
        };
        Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }

    /// The backward step of [`super::relu_sum`] over `K` parts; its state is the output shape
    /// and the output.
    #[derive(Debug)]
    struct ReluSum<const K: usize>;

    impl<const K: usize> Backward<Flex, K> for ReluSum<K> {
        type State = ([usize; 4], FlexTensor);

        fn backward(
            self,
            ops: Ops<Self::State, K>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<Flex>(&ops.node);
            if ops.parents.iter().all(Option::is_none) {
                return;
            }
            let (dims, y) = ops.state;
            let y = contiguous(&y);
            let dx = over(grad, dims, |f| cpu_channel::relu_sum_grad(f, &[vals(&y)]));
            for node in ops.parents.into_iter().flatten() {
                grads.register::<Flex>(node.id, dx.clone());
            }
        }
    }

    /// The tracked step of `ReLU(a)` or `ReLU(a + b)`, `K` the number of parts.
    fn relu_step<C: CheckpointStrategy, const K: usize>(
        dims: [usize; 4],
        parts: [Tracked<C>; K],
    ) -> Tensor<4>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let nodes = parts.each_ref().map(|p| p.node());
        let mut parts = parts.into_iter();
        let Some(a) = parts.next() else {
            unreachable!("K ≥ 1 parts")
        };
        let others: Vec<FlexTensor> = parts.map(Tracked::<C>::into_primitive).collect();
        let y = relu_sum_fwd(dims, a.into_primitive(), &others.iter().collect::<Vec<_>>());
        let out = match ReluSum::<K>.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let kept = y.clone();
                prep.finish((dims, kept), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Tensor::from_primitive::<Autodiff<Flex, C>>(out)
    }

    pub(super) fn relu_sum<C: CheckpointStrategy>(
        a: Tensor<4>,
        b: Option<&Tensor<4>>,
    ) -> Result<Tensor<4>, Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = a.dims();
        let Some(ap) = tracked::<C, 4>(&a) else {
            return Err(a);
        };
        match b {
            None => {
                drop(a);
                Ok(relu_step::<C, 1>(dims, [ap]))
            }
            Some(b) => {
                let Some(bp) = tracked::<C, 4>(b) else {
                    return Err(a);
                };
                drop(a);
                Ok(relu_step::<C, 2>(dims, [ap, bp]))
            }
        }
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
            grads.register::<Flex>(node.id, mask_fwd(dims, grad, &parts));
        }
    }

    pub(super) fn mask<C: CheckpointStrategy>(
        r: Tensor<4>,
        parts: Vec<FlexTensor>,
    ) -> Result<Tensor<4>, Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let dims = r.dims();
        let Some(rp) = tracked::<C, 4>(&r) else {
            return Err(r);
        };
        drop(r);
        let node = rp.node();
        let y = mask_fwd(dims, rp.into_primitive(), &parts);
        let out = match Mask.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((dims, parts), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }
}

#[cfg(all(test, feature = "autodiff"))]
mod tests {
    use super::{affine, affine_relu, mask, relu_sum};
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

    /// The gradients of the `[C]` parameter `t` from the own (`go`) and Burn's (`gb`) backward
    /// passes agree within 1e-4 (a NaN in the first channel's plane makes both NaN).
    fn param_close(t: &Tensor<1>, go: &Gradients, gb: &Gradients, what: &str) {
        let (a, e) = (t.grad(go).expect("own"), t.grad(gb).expect("Burn's"));
        close1(Tensor::from_inner(a), Tensor::from_inner(e), 1e-4, what);
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

    /// How a step's first input reaches it: held elsewhere too (the step writes a new buffer),
    /// held by the step alone (overwritten in place), or a strided view (copied, then
    /// overwritten). The values, and the gradients back to `x`, are `x`'s in every case.
    const WAYS: [&str; 3] = ["shared", "owned", "strided"];

    fn passed(x: &Tensor<4>, way: &str) -> Tensor<4> {
        match way {
            "owned" => x.clone().mul_scalar(1.0),
            "strided" => {
                let c = x.dims()[1];
                Tensor::cat(vec![x.clone(), x.clone()], 1).narrow(1, c, c)
            }
            _ => x.clone(),
        }
    }

    /// The fused BatchNorm + ReLU step and its three gradients equal Burn's `ReLU(x·s + b)`
    /// with autodiff, tracked and plain, for every way the input arrives.
    #[test]
    fn own_affine_relu_equals_burns_with_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(12);
        for (dims, way) in SHAPES.into_iter().flat_map(|d| WAYS.map(|w| (d, w))) {
            let c = dims[1];
            let what = format!("{dims:?} {way}");
            let x0 = input(dims, &dev, 5);
            let s0 = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &dev);
            let b0 = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &dev);
            let r = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            let (x, s, b) = (
                x0.clone().require_grad(),
                s0.clone().require_grad(),
                b0.clone().require_grad(),
            );
            let own = affine_relu(passed(&x, way), &s, &b).expect("flex f32");
            let burn = relu(
                x.clone()
                    .mul(s.clone().reshape([1, c, 1, 1]))
                    .add(b.clone().reshape([1, c, 1, 1])),
            );
            close(own.clone(), burn.clone(), 0.0, &format!("{what}: values"));
            let (go, gb) = (
                own.mul(r.clone().mul_scalar(1.0)).sum().backward(),
                burn.mul(r.clone()).sum().backward(),
            );
            close(grad(&x, &go), grad(&x, &gb), 0.0, &format!("{what}: dx"));
            for (t, part) in [(&s, "dscale"), (&b, "dshift")] {
                param_close(t, &go, &gb, &format!("{what}: {part}"));
            }
            let plain = affine_relu(
                passed(&x0.clone().inner(), way),
                &s0.clone().inner(),
                &b0.clone().inner(),
            )
            .expect("plain flex f32");
            let burn_plain = relu(
                x0.clone()
                    .inner()
                    .mul(s0.clone().inner().reshape([1, c, 1, 1]))
                    .add(b0.clone().inner().reshape([1, c, 1, 1])),
            );
            close(plain, burn_plain, 0.0, &format!("{what}: plain values"));
        }
    }

    /// The affine map and its three gradients equal Burn's `x·s + b` (broadcast) with autodiff,
    /// with scale and shift, scale only and shift only, tracked and plain, for every way the
    /// input arrives.
    #[test]
    fn own_affine_equals_burns_with_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(11);
        for (dims, way) in SHAPES.into_iter().flat_map(|d| WAYS.map(|w| (d, w))) {
            let c = dims[1];
            let x0 = input(dims, &dev, 7);
            let s0 = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &dev);
            let b0 = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &dev);
            let r = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            for (with_s, with_b) in [(true, true), (true, false), (false, true)] {
                let what = format!("{dims:?} {way} scale {with_s} shift {with_b}");
                let (x, s, b) = (
                    x0.clone().require_grad(),
                    s0.clone().require_grad(),
                    b0.clone().require_grad(),
                );
                let own = affine(passed(&x, way), with_s.then_some(&s), with_b.then_some(&b))
                    .expect("flex f32");
                let mut burn = x.clone();
                if with_s {
                    burn = burn.mul(s.clone().reshape([1, c, 1, 1]));
                }
                if with_b {
                    burn = burn.add(b.clone().reshape([1, c, 1, 1]));
                }
                close(own.clone(), burn.clone(), 0.0, &format!("{what}: values"));
                // `r·1` is a tensor of its own, so the backward steps may overwrite it.
                let (go, gb) = (
                    own.mul(r.clone().mul_scalar(1.0)).sum().backward(),
                    burn.clone().mul(r.clone()).sum().backward(),
                );
                close(grad(&x, &go), grad(&x, &gb), 0.0, &format!("{what}: dx"));
                if with_s {
                    param_close(&s, &go, &gb, &format!("{what}: dscale"));
                }
                if with_b {
                    param_close(&b, &go, &gb, &format!("{what}: dshift"));
                }
                let plain = affine(
                    passed(&x0.clone().inner(), way),
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
                // The input was read, not overwritten, where it is held elsewhere.
                close(x.clone(), x0.clone(), 0.0, &format!("{what}: input kept"));
            }
            let wrong = affine(x0.clone(), Some(&Tensor::<1>::ones([c + 1], &dev)), None);
            let back = wrong.expect_err("a scale of the wrong length is left to Burn");
            close(back, x0.clone(), 0.0, "the input handed back");
        }
    }

    /// `ReLU(a)`, `ReLU(a + b)` and the sweeps' mask equal Burn's operations, with the gradient
    /// to every part, NaNs and exact zeros included, for every way the first input arrives.
    #[test]
    fn own_relu_of_a_sum_and_mask_equal_burns_with_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(12);
        for (dims, way) in SHAPES.into_iter().flat_map(|d| WAYS.map(|w| (d, w))) {
            let (a0, b0) = (input(dims, &dev, 3), input(dims, &dev, 5));
            let r0 = input(dims, &dev, 9);
            let w = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            for two in [false, true] {
                let what = format!("{dims:?} {way} two parts {two}");
                let (a, b) = (a0.clone().require_grad(), b0.clone().require_grad());
                let own = relu_sum(passed(&a, way), two.then_some(&b)).expect("flex f32");
                let burn = if two {
                    relu(a.clone().add(b.clone()))
                } else {
                    relu(a.clone())
                };
                close(own.clone(), burn.clone(), 0.0, &format!("{what}: relu"));
                let (go, gb) = (
                    own.mul(w.clone().mul_scalar(1.0)).sum().backward(),
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
                let plain = relu_sum(passed(&a0.clone().inner(), way), None).expect("plain");
                close(
                    Tensor::from_inner(plain),
                    relu(a0.clone()),
                    0.0,
                    &format!("{what}: plain relu"),
                );
                let r = r0.clone().require_grad();
                let own = mask(passed(&r, way), &a0, two.then_some(&b0)).expect("flex f32");
                let t = if two {
                    a0.clone().add(b0.clone())
                } else {
                    a0.clone()
                };
                let burn = r.clone().mul(t.detach().greater_elem(0.0).float());
                close(own.clone(), burn.clone(), 0.0, &format!("{what}: mask"));
                let (go, gb) = (
                    own.mul(w.clone().mul_scalar(1.0)).sum().backward(),
                    burn.mul(w.clone()).sum().backward(),
                );
                close(
                    grad(&r, &go),
                    grad(&r, &gb),
                    0.0,
                    &format!("{what}: mask dr"),
                );
                let plain = mask(passed(&r0.clone().inner(), way), &a0.clone().inner(), None)
                    .expect("plain");
                let burn = r0.clone().mul(a0.clone().greater_elem(0.0).float());
                close(
                    Tensor::from_inner(plain),
                    burn,
                    0.0,
                    &format!("{what}: plain mask"),
                );
                close(a.clone(), a0.clone(), 0.0, &format!("{what}: a kept"));
                close(r.clone(), r0.clone(), 0.0, &format!("{what}: r kept"));
            }
        }
    }
}
