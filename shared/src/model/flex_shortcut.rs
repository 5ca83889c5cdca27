//! The option-A shortcut of the CIFAR ResNets on the CPU backend, through foolmap's own parallel
//! copies, with and without autodiff (`docs/method.md` §9).
//!
//! `y[n, pad + c, i, j] = x[n, c, 2·i, 2·j]`, zero in the `pad` channels before and after;
//! backward `dx[n, c, 2·i, 2·j] = dy[n, pad + c, i, j]`, zero elsewhere. Burn's operations
//! ([`super::option_a`]: reshape, slice, concatenation with zeros) run on the calling thread, and
//! their autodiff writes the gradient into a zero-filled tensor with `slice_assign`, again on the
//! calling thread: in a ResNet-20 batch-128 fooling step about 2 % of the samples, while the other
//! core waited. Here both directions run per image in parallel on the rayon pool (feature
//! `rayon`), each image's output written once. The values are copies: identical to Burn's.

// The `Err` of `option_a` is the caller's tensor handed back unchanged (as large as the `Ok`):
// boxing it would allocate on every call for nothing.
#![allow(clippy::result_large_err)]

use super::cpu_fill::build;
use super::flex_channel::{plain, vals};
use super::flex_conv::contiguous;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Tensor, TensorData};

/// The shape of one option-A shortcut: input `[n, c, h, w]`, `pad` zero channels on each side,
/// output `[n, c + 2·pad, ⌈h/2⌉, ⌈w/2⌉]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shortcut {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
}

impl Shortcut {
    /// The shortcut of an input of dimensions `dims`; `None` for an empty one.
    fn of(dims: [usize; 4], pad: usize) -> Option<Shortcut> {
        let [n, c, h, w] = dims;
        (n * c * h * w > 0).then_some(Shortcut { n, c, h, w, pad })
    }
    fn out_dims(&self) -> [usize; 4] {
        [
            self.n,
            self.c + 2 * self.pad,
            self.h.div_ceil(2),
            self.w.div_ceil(2),
        ]
    }
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    fn out_len(&self) -> usize {
        let [_, c, ho, wo] = self.out_dims();
        c * ho * wo
    }

    /// `y` of `x` (`n·in_len` floats).
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (plane, [_, _, ho, wo]) = (self.h * self.w, self.out_dims());
        per_image(self.n, self.out_len(), |i, out| {
            let x = &x[i * self.in_len()..(i + 1) * self.in_len()];
            for (co, o) in out.chunks_mut(ho * wo).enumerate() {
                // The padding channels stay zero.
                let Some(ci) = co.checked_sub(self.pad).filter(|ci| *ci < self.c) else {
                    continue;
                };
                let src = &x[ci * plane..(ci + 1) * plane];
                for (r, row) in o.chunks_mut(wo).enumerate() {
                    let s = &src[2 * r * self.w..];
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = s[2 * j];
                    }
                }
            }
        })
    }

    /// `dx` of `dy` (`n·out_len` floats).
    fn backward(&self, dy: &[f32]) -> Vec<f32> {
        let (plane, [_, _, ho, wo]) = (self.h * self.w, self.out_dims());
        per_image(self.n, self.in_len(), |i, out| {
            let dy = &dy[i * self.out_len()..(i + 1) * self.out_len()];
            for (ci, o) in out.chunks_mut(plane).enumerate() {
                let src = &dy[(self.pad + ci) * ho * wo..(self.pad + ci + 1) * ho * wo];
                for (r, row) in src.chunks(wo).enumerate() {
                    let d = &mut o[2 * r * self.w..];
                    for (j, v) in row.iter().enumerate() {
                        d[2 * j] = *v;
                    }
                }
            }
        })
    }
}

/// A new `n·per` vector: image `i`'s `per` floats zeroed, then `f(i, chunk)` writes what is not
/// zero, the images in parallel where the rayon pool is on (each chunk zeroed by the worker that
/// writes it, in cache).
fn per_image(n: usize, per: usize, f: impl Fn(usize, &mut [f32]) + Send + Sync) -> Vec<f32> {
    // SAFETY: every chunk is zeroed before `f` sees it, so all `n·per` floats are initialised
    // whatever `f` writes.
    unsafe {
        build(n * per, |out| {
            let run = |(i, o): (usize, &mut [std::mem::MaybeUninit<f32>])| {
                f(i, super::cpu_fill::filled(o, 0.0));
            };
            #[cfg(feature = "rayon")]
            {
                use rayon::prelude::*;
                out.par_chunks_mut(per).enumerate().for_each(run);
            }
            #[cfg(not(feature = "rayon"))]
            out.chunks_mut(per).enumerate().for_each(run);
        })
    }
}

/// `y` of the plain `f32` flex tensor `x`.
fn forward_flex(s: &Shortcut, x: &FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    FlexTensor::from_data(TensorData::new(s.forward(vals(&x)), s.out_dims()))
}

/// The option-A shortcut of `x` on flex, through Burn's autodiff when `x` carries it; `x` back in
/// `Err` when it is not an `f32` flex tensor with at least one value.
///
/// # Shapes
/// `x` `[N, C, H, W]` → `[N, C + 2·pad, ⌈H/2⌉, ⌈W/2⌉]`.
pub(super) fn option_a(x: Tensor<4>, pad: usize) -> Result<Tensor<4>, Tensor<4>> {
    let Some(s) = Shortcut::of(x.dims(), pad) else {
        return Err(x);
    };
    if let Some(xp) = plain(&x) {
        return Ok(Tensor::from_primitive::<Flex>(forward_flex(&s, &xp)));
    }
    #[cfg(feature = "autodiff")]
    {
        under_either_checkpointing!(C, x => autodiff::option_a::<C>(&s, x))
    }
    #[cfg(not(feature = "autodiff"))]
    Err(x)
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::{Shortcut, contiguous, forward_flex, vals};
    use crate::model::flex_channel::autodiff::tracked;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, DispatchKindConversion, Flex};
    use burn::tensor::{DispatchTensor, Tensor, TensorData};

    /// The backward step of [`super::option_a`]; its state is the shortcut's shape.
    #[derive(Debug)]
    struct Step;

    impl Backward<Flex, 1> for Step {
        type State = Shortcut;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<Flex>(&ops.node);
            let [Some(node)] = ops.parents else { return };
            let s = ops.state;
            let dy = contiguous(&grad);
            let dx = TensorData::new(s.backward(vals(&dy)), [s.n, s.c, s.h, s.w]);
            grads.register::<Flex>(node.id, FlexTensor::from_data(dx));
        }
    }

    pub(super) fn option_a<C: CheckpointStrategy>(
        s: &Shortcut,
        x: Tensor<4>,
    ) -> Result<Tensor<4>, Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let Some(xp) = tracked::<C, 4>(&x) else {
            return Err(x);
        };
        let y = forward_flex(s, xp.primitive());
        let out = match Step.prepare::<C>([xp.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(*s, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }
}

#[cfg(test)]
mod tests {
    use super::option_a;
    use crate::model::forward::option_a_ops;
    use burn::tensor::{Device, Distribution, Tensor};

    /// The shortcut and its gradient equal Burn's operations bit for bit (both are copies), with
    /// and without autodiff, for even and odd sides, no padding, and a strided (channel-sliced)
    /// input.
    #[test]
    fn own_option_a_equals_burns_operations_with_its_gradient() {
        let dev = Device::flex().autodiff();
        dev.seed(4);
        let normal = Distribution::Normal(0.0, 1.0);
        // (n, c, h, w, pad)
        let cases = [
            (2usize, 16usize, 32usize, 32usize, 8usize),
            (3, 3, 7, 5, 2),
            (1, 1, 1, 1, 1),
            (2, 4, 6, 9, 0),
        ];
        for (n, c, h, w, pad) in cases {
            let what = format!("[{n},{c},{h},{w}], pad {pad}");
            let wide = Tensor::<4>::random([n, c + 2, h, w], normal, &dev);
            let x0 = wide.slice([0..n, 1..c + 1, 0..h, 0..w]);
            let out = [n, c + 2 * pad, h.div_ceil(2), w.div_ceil(2)];
            let r = Tensor::<4>::random(out, normal, &dev);
            let plain = option_a(x0.clone().inner(), pad).expect("plain path");
            let burn = option_a_ops(x0.clone().inner(), pad);
            assert_eq!(plain.dims(), out, "{what}: shape");
            assert_eq!(plain.to_data(), burn.to_data(), "{what}: plain");
            let run = |ours: bool| {
                let x = x0.clone().require_grad();
                let y = if ours {
                    option_a(x.clone(), pad).expect("autodiff path")
                } else {
                    option_a_ops(x.clone(), pad)
                };
                let grads = y.clone().mul(r.clone()).sum().backward();
                (y.inner().to_data(), x.grad(&grads).map(|g| g.to_data()))
            };
            let (y, g) = run(true);
            let (y_ref, g_ref) = run(false);
            assert_eq!(y, y_ref, "{what}: autodiff forward");
            assert!(g.is_some(), "{what}: a gradient");
            assert_eq!(g, g_ref, "{what}: gradient");
        }
    }
}
