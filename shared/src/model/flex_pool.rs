//! The CPU backend's max pooling through foolmap's own loops ([`super::cpu_pool`]), with and
//! without autodiff (`docs/method.md` §9).
//!
//! One operation is replaced: `y = maxpool(x)`, with the winners for the explicit backward passes
//! (`NodeTrace::Pool`); its backward step in Burn's autodiff graph adds the output gradient onto
//! the winners. A tensor that is not `f32` on flex gets `None`, and the caller keeps Burn's
//! pooling.

use std::sync::Arc;

use super::cpu_pool::{self, PoolGeom};
use super::flex_conv::contiguous;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Int, Tensor, TensorData};

/// The pooled tensor `[N, C, Ho, Wo]` and, when asked for, the winners `[N, C, Ho·Wo]` (flat
/// indices into each `H·W` plane, the layout of `NodeTrace::Pool`).
pub(super) type Pooled = (Tensor<4>, Option<Tensor<3, Int>>);

/// Pools one `f32` flex tensor; `None` for another dtype.
fn pool(g: &PoolGeom, x: &FlexTensor) -> Option<(FlexTensor, Arc<Vec<i32>>)> {
    let x = contiguous(x);
    let (y, idx) = cpu_pool::max_pool(g, x.as_slice()?);
    let y = FlexTensor::from_data(TensorData::new(y, [g.n, g.c, g.ho(), g.wo()]));
    Some((y, Arc::new(idx)))
}

/// The winners as an `Int` tensor on `x`'s device, if `wanted`.
fn winners(g: &PoolGeom, idx: &[i32], like: &Tensor<4>, wanted: bool) -> Option<Tensor<3, Int>> {
    wanted.then(|| {
        let data = TensorData::new(idx.to_vec(), [g.n, g.c, g.ho() * g.wo()]);
        Tensor::<3, Int>::from_data(data, &like.device())
    })
}

/// `maxpool(x)` (with its winners if `with_winners`) on flex, through Burn's autodiff when `x`
/// carries it; `None` when `x` is not an `f32` flex tensor of the geometry's shape.
///
/// # Shapes
/// `x` `[N, C, H, W]` → `([N, C, Ho, Wo], [N, C, Ho·Wo])`.
pub(super) fn run(g: &PoolGeom, x: &Tensor<4>, with_winners: bool) -> Option<Pooled> {
    if x.dims() != [g.n, g.c, g.h, g.w] {
        return None;
    }
    if let Ok(xp) = x.clone().try_into_primitive::<Flex>() {
        let (y, idx) = pool(g, &xp)?;
        let w = winners(g, &idx, x, with_winners);
        return Some((Tensor::from_primitive::<Flex>(y), w));
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C => autodiff::run::<C>(g, x, with_winners))
    }
    #[cfg(not(feature = "autodiff"))]
    None
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use std::sync::Arc;

    use super::{PoolGeom, Pooled, contiguous, pool, winners};
    use crate::model::cpu_pool;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, DispatchKindConversion, Flex};
    use burn::tensor::{DispatchTensor, Tensor, TensorData};

    /// The backward step of one max pool; its state is the geometry and the winners.
    #[derive(Debug)]
    struct Step;

    impl Backward<Flex, 1> for Step {
        type State = (PoolGeom, Arc<Vec<i32>>);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node_x] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let Some(node) = node_x else { return };
            let (g, idx) = ops.state;
            let grad = contiguous(&grad);
            // The forward pooled an f32 tensor, and the gradient has the output's dtype.
            let dy = grad
                .as_slice::<f32>()
                .expect("an f32 gradient of an f32 max pool");
            let dx = cpu_pool::max_pool_grad(&g, dy, &idx);
            let dx = FlexTensor::from_data(TensorData::new(dx, [g.n, g.c, g.h, g.w]));
            grads.register::<Flex>(node.id, dx);
        }
    }

    pub(super) fn run<C: CheckpointStrategy>(
        g: &PoolGeom,
        x: &Tensor<4>,
        with_winners: bool,
    ) -> Option<Pooled>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let xp = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
        if xp.primitive().dtype() != burn::tensor::DType::F32 {
            return None;
        }
        let (y, idx) = pool(g, xp.primitive())?;
        let w = winners(g, &idx, x, with_winners);
        let out = match Step.prepare::<C>([xp.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((*g, idx), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some((Tensor::from_primitive::<Autodiff<Flex, C>>(out), w))
    }
}

#[cfg(all(test, feature = "autodiff"))]
mod tests {
    use super::super::MaxPool;
    use super::{PoolGeom, run};
    use burn::tensor::module::max_pool2d_with_indices;
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    /// Values, winners and input gradient equal Burn's `max_pool2d_with_indices` on flex, with and
    /// without autodiff, for floor and ceil mode, padding, windows wider than the stride, ties
    /// and NaNs.
    #[test]
    fn own_max_pool_equals_burns_with_winners_and_gradient() {
        let dev = Device::flex().autodiff();
        dev.seed(7);
        // (n, c, h, w, k, stride, padding, ceil)
        let cases = [
            (2, 3, 9, 9, 3, 2, 0, true),
            (2, 3, 8, 7, 3, 2, 0, true),
            (1, 2, 10, 11, 3, 2, 1, false),
            (2, 2, 6, 6, 2, 2, 0, false),
            (1, 3, 7, 5, 3, 1, 1, false),
            (2, 2, 5, 6, 3, 3, 1, true),
            (1, 1, 2, 2, 3, 2, 1, true),
            // Stride above the window (rows and columns no window reads), three phases.
            (1, 2, 9, 10, 2, 3, 0, false),
            (2, 1, 11, 7, 4, 3, 2, true),
        ];
        for (n, c, h, w, k, stride, padding, ceil) in cases {
            let what = format!("[{n},{c},{h},{w}] {k}×{k}/{stride} pad {padding} ceil {ceil}");
            let pool = MaxPool {
                kernel: k,
                stride,
                padding,
                ceil,
            };
            let g = PoolGeom {
                n,
                c,
                h,
                w,
                k,
                stride,
                padding,
                ceil,
            };
            // Rounded values give ties; the first plane gets a NaN.
            let x0 =
                Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 2.0), &dev).round();
            let mut v = x0.to_data().try_to_vec::<f32>().expect("f32");
            v[w + 1] = f32::NAN;
            let x0 = Tensor::<4>::from_data(TensorData::new(v, [n, c, h, w]), &dev);
            let (ho, wo) = (g.ho(), g.wo());
            let r = Tensor::<4>::random([n, c, ho, wo], Distribution::Normal(0.0, 1.0), &dev);
            let close = |a: Tensor<4>, b: Tensor<4>, part: &str| {
                let (a, b) = (a.into_data(), b.into_data());
                assert_eq!(a.shape(), b.shape(), "{what}: {part} shape");
                let (a, b) = (
                    a.try_to_vec::<f32>().expect("f32"),
                    b.try_to_vec::<f32>().expect("f32"),
                );
                for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                    let same =
                        (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-6 * y.abs().max(1.0);
                    assert!(same, "{what}: {part}[{i}] {x} vs {y}");
                }
            };
            for tracked in [true, false] {
                let x = if tracked {
                    x0.clone().require_grad()
                } else {
                    x0.clone()
                };
                let (y_burn, i_burn) = max_pool2d_with_indices(x.clone(), pool.options());
                let (y_own, i_own) = run(&g, &x, true).expect("f32 flex tensor");
                assert_eq!(
                    i_own.expect("winners asked for").into_data(),
                    i_burn.reshape([n, c, ho * wo]).into_data(),
                    "{what}: winners"
                );
                close(y_own.clone(), y_burn.clone(), "values");
                if tracked {
                    let g_own = y_own.mul(r.clone()).sum().backward();
                    let g_burn = y_burn.mul(r.clone()).sum().backward();
                    let (a, b) = (x.grad(&g_own), x.grad(&g_burn));
                    close(
                        Tensor::from_inner(a.expect("own gradient")),
                        Tensor::from_inner(b.expect("Burn's gradient")),
                        "gradient",
                    );
                }
            }
            let plain = run(&g, &x0.clone().inner(), false).expect("plain path");
            assert!(plain.1.is_none(), "{what}: winners only when asked for");
            close(
                Tensor::from_inner(plain.0),
                max_pool2d_with_indices(x0.clone(), pool.options()).0,
                "plain values",
            );
        }
    }
}
