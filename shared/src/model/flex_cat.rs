//! The concatenation of two tensors along the channels on the CPU backend, through foolmap's own
//! parallel copies, with and without autodiff (`docs/method.md` §9).
//!
//! `y = [a, b]` (SqueezeNet's Fire modules, DenseNet's layers); backward `da`, `db` = the two
//! channel ranges of `dy`. Burn's flex concatenates on the calling thread, and its autodiff hands
//! each part a strided view of `dy`, which the next step then copies to a contiguous tensor, again
//! on the calling thread. In a SqueezeNet fooling step the two measured about 4 % of the samples,
//! all while the other core waited. Here both directions copy per image and part, each piece at
//! most [`PIECE`] floats, in parallel on the rayon pool (feature `rayon`), and the backward step
//! hands each part a contiguous gradient. The values are copies: identical to Burn's.

// The `Err` of `cat` is the caller's two tensors handed back unchanged (as large as the `Ok`):
// boxing them would allocate on every call for nothing.
#![allow(clippy::result_large_err)]

use std::mem::MaybeUninit;

use super::cpu_fill::build;
use super::flex_channel::{plain, vals};
use super::flex_conv::contiguous;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Tensor, TensorData};

/// The most floats one parallel copy takes (128 KiB).
const PIECE: usize = 32 * 1024;

/// The shape of a concatenation: `n` images, `la` and `lb` floats per image of the two parts
/// (`Ca·H·W`, `Cb·H·W`), and the output's dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Join {
    n: usize,
    la: usize,
    lb: usize,
    out: [usize; 4],
}

impl Join {
    /// The concatenation of `a` and `b` (`[N, Ca, H, W]`, `[N, Cb, H, W]`); `None` unless the
    /// other dimensions agree and both parts have at least one value per image.
    fn of(a: [usize; 4], b: [usize; 4]) -> Option<Join> {
        let [n, ca, h, w] = a;
        let same = b[0] == n && b[2] == h && b[3] == w;
        let (la, lb) = (ca * h * w, b[1] * h * w);
        (same && n > 0 && la > 0 && lb > 0).then_some(Join {
            n,
            la,
            lb,
            out: [n, ca + b[1], h, w],
        })
    }
}

/// Copies every `(destination, source)` piece, in parallel where the rayon pool is on.
fn copy_pieces(pieces: Vec<(&mut [MaybeUninit<f32>], &[f32])>) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        pieces.into_par_iter().for_each(|(d, s)| {
            d.write_copy_of_slice(s);
        });
    }
    #[cfg(not(feature = "rayon"))]
    for (d, s) in pieces {
        d.write_copy_of_slice(s);
    }
}

/// `(destination, source)` split into pieces of at most [`PIECE`] floats.
fn pieces<'a>(
    d: &'a mut [MaybeUninit<f32>],
    s: &'a [f32],
) -> impl Iterator<Item = (&'a mut [MaybeUninit<f32>], &'a [f32])> {
    d.chunks_mut(PIECE).zip(s.chunks(PIECE))
}

/// `[a, b]` per image: `a` is `n·la` floats, `b` `n·lb`.
fn join(j: &Join, a: &[f32], b: &[f32]) -> Vec<f32> {
    let per = j.la + j.lb;
    // SAFETY: each image's output is `la + lb` floats, split into pieces that are all copied.
    unsafe {
        build(j.n * per, |out| {
            let mut all = Vec::new();
            for (o, (x, y)) in out.chunks_mut(per).zip(a.chunks(j.la).zip(b.chunks(j.lb))) {
                let (oa, ob) = o.split_at_mut(j.la);
                all.extend(pieces(oa, x).chain(pieces(ob, y)));
            }
            copy_pieces(all);
        })
    }
}

/// One part of `y` (`n·(la + lb)` floats): the first `la` floats of each image, or the last `lb`.
fn part(j: &Join, y: &[f32], first: bool) -> Vec<f32> {
    let (len, skip) = if first { (j.la, 0) } else { (j.lb, j.la) };
    // SAFETY: each image's part is `len` floats, split into pieces that are all copied.
    unsafe {
        build(j.n * len, |out| {
            let all = out
                .chunks_mut(len)
                .zip(y.chunks(j.la + j.lb))
                .flat_map(|(o, img)| pieces(o, &img[skip..skip + len]))
                .collect();
            copy_pieces(all);
        })
    }
}

/// `[a, b]` of two plain `f32` flex tensors.
fn join_flex(j: &Join, a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let (a, b) = (contiguous(a), contiguous(b));
    FlexTensor::from_data(TensorData::new(join(j, vals(&a), vals(&b)), j.out))
}

/// `[a, b]` along the channels on flex, through Burn's autodiff when the tensors carry it; both
/// back in `Err` when they are not `f32` flex tensors that concatenate (same `N`, `H`, `W`, at
/// least one value per image each).
///
/// # Shapes
/// `a` `[N, Ca, H, W]`, `b` `[N, Cb, H, W]` → `[N, Ca + Cb, H, W]`.
pub(super) fn cat(a: Tensor<4>, b: Tensor<4>) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>)> {
    let Some(j) = Join::of(a.dims(), b.dims()) else {
        return Err((a, b));
    };
    if let (Some(ap), Some(bp)) = (plain(&a), plain(&b)) {
        return Ok(Tensor::from_primitive::<Flex>(join_flex(&j, &ap, &bp)));
    }
    #[cfg(feature = "autodiff")]
    {
        let pair = (a, b);
        under_either_checkpointing!(C, pair => autodiff::cat::<C>(&j, pair))
    }
    #[cfg(not(feature = "autodiff"))]
    Err((a, b))
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::{Join, contiguous, join_flex, part, vals};
    use crate::model::flex_channel::autodiff::tracked;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, DispatchKindConversion, Flex};
    use burn::tensor::{DispatchTensor, Tensor, TensorData};

    /// The backward step of [`super::cat`]; its state is the concatenation's shape.
    #[derive(Debug)]
    struct Step;

    impl Backward<Flex, 2> for Step {
        type State = Join;

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<Flex>(&ops.node);
            let j = ops.state;
            let [node_a, node_b] = ops.parents;
            if node_a.is_none() && node_b.is_none() {
                return;
            }
            let dy = contiguous(&grad);
            for (node, first) in [(node_a, true), (node_b, false)] {
                let Some(node) = node else { continue };
                let c = if first { j.la } else { j.lb } / (j.out[2] * j.out[3]);
                let d = part(&j, vals(&dy), first);
                let d = FlexTensor::from_data(TensorData::new(d, [j.n, c, j.out[2], j.out[3]]));
                grads.register::<Flex>(node.id, d);
            }
        }
    }

    pub(super) fn cat<C: CheckpointStrategy>(
        j: &Join,
        (a, b): (Tensor<4>, Tensor<4>),
    ) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>)>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let (Some(ap), Some(bp)) = (tracked::<C, 4>(&a), tracked::<C, 4>(&b)) else {
            return Err((a, b));
        };
        let y = join_flex(j, ap.primitive(), bp.primitive());
        let out = match Step
            .prepare::<C>([ap.node(), bp.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(*j, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
    }
}

#[cfg(all(test, feature = "autodiff"))]
mod tests {
    use super::cat;
    use burn::tensor::{Device, Distribution, Tensor};

    /// The concatenation and the gradients of both parts equal Burn's `cat` (bit for bit: both
    /// are copies), with and without autodiff, with one part or both tracked, for parts from a
    /// few floats to several [`super::PIECE`]s per image and a strided (channel-sliced) part.
    #[test]
    fn own_cat_equals_burns_with_its_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(3);
        let normal = Distribution::Normal(0.0, 1.0);
        // (n, ca, cb, h, w)
        let cases = [
            (2, 3, 5, 4, 3),
            (1, 1, 1, 1, 1),
            (3, 64, 64, 27, 27),
            (1, 2, 70, 33, 31),
        ];
        for (n, ca, cb, h, w) in cases {
            let what = format!("[{n},{ca}|{cb},{h},{w}]");
            let a0 = Tensor::<4>::random([n, ca, h, w], normal, &dev);
            // `b` a channel slice of a larger tensor: strided.
            let wide = Tensor::<4>::random([n, cb + 2, h, w], normal, &dev);
            let b0 = wide.slice([0..n, 1..cb + 1, 0..h, 0..w]);
            let r = Tensor::<4>::random([n, ca + cb, h, w], normal, &dev);
            let plain = cat(a0.clone().inner(), b0.clone().inner()).expect("plain path");
            let burn = Tensor::cat(vec![a0.clone().inner(), b0.clone().inner()], 1);
            assert_eq!(plain.to_data(), burn.to_data(), "{what}: plain");
            for (track_a, track_b) in [(true, true), (true, false), (false, true)] {
                let run = |ours: bool| {
                    let (mut a, mut b) = (a0.clone(), b0.clone());
                    if track_a {
                        a = a.require_grad();
                    }
                    if track_b {
                        b = b.require_grad();
                    }
                    let y = if ours {
                        cat(a.clone(), b.clone()).expect("autodiff path")
                    } else {
                        Tensor::cat(vec![a.clone(), b.clone()], 1)
                    };
                    let grads = y.clone().mul(r.clone()).sum().backward();
                    (y.inner(), a.grad(&grads), b.grad(&grads))
                };
                let what = format!("{what}, tracked (a, b) = ({track_a}, {track_b})");
                let (y, da, db) = run(true);
                let (y_ref, da_ref, db_ref) = run(false);
                assert_eq!(y.to_data(), y_ref.to_data(), "{what}");
                assert_eq!(da.is_some(), track_a, "{what}");
                assert_eq!(db.is_some(), track_b, "{what}");
                for (d, d_ref) in [(da, da_ref), (db, db_ref)] {
                    if let (Some(d), Some(d_ref)) = (d, d_ref) {
                        assert_eq!(d.to_data(), d_ref.to_data(), "{what}: gradient");
                    }
                }
            }
        }
        // Parts that do not concatenate come back unchanged.
        let (a, b) = (
            Tensor::<4>::zeros([2, 3, 4, 4], &dev),
            Tensor::<4>::zeros([2, 3, 4, 5], &dev),
        );
        let (a, b) = cat(a, b).expect_err("different widths");
        assert_eq!((a.dims(), b.dims()), ([2, 3, 4, 4], [2, 3, 4, 5]));
    }
}
