//! Backward of the composite nodes (spec §4): residual blocks, DenseNet layers and Fire
//! modules split the signal between their parts and sweep each part with [`back_seq`].

use burn::tensor::Tensor;

use super::{Sweep, back_seq, option_a_back, rules};
use crate::model::{Fire, FireTrace, Residual, ResidualTrace, Seq, SeqTrace, Shortcut, relu_mask};
use crate::params::ParamStore;

impl Residual {
    /// Residual block: `r` split between branch and shortcut, each swept back to the input.
    pub(super) fn back(
        &self,
        p: &ParamStore,
        a: &Tensor<4>,
        rt: &ResidualTrace,
        r: Tensor<4>,
        sw: &Sweep,
    ) -> Tensor<4> {
        let (branch, shortcut, b, s) = (&rt.branch, &rt.shortcut, &rt.b, &rt.s);
        let (rb, rs) = match sw {
            Sweep::Lrp(o) => {
                rules::residual_split(b.clone(), s.clone(), r, o.residual_code_faithful)
            }
            Sweep::Gradient(_) => {
                let g = relu_mask(r, b, Some(s));
                (g.clone(), g)
            }
        };
        let back_b = back_seq(&self.branch, p, branch, rb, 0, sw);
        let back_s = match (&self.shortcut, shortcut) {
            (Shortcut::Identity, _) => rs,
            (Shortcut::OptionA { pad }, _) => option_a_back(rs, *pad, a.dims()),
            (Shortcut::Projection(seq), Some(st)) => back_seq(seq, p, st, rs, 0, sw),
            (Shortcut::Projection(_), None) => unreachable!("projection traced without trace"),
        };
        back_b.add(back_s)
    }
}

/// DenseNet layer `[x, branch(x)]`: the first channels of `r` go straight to `x`, the new ones
/// back through the branch.
pub(super) fn back_dense(
    branch: &Seq,
    p: &ParamStore,
    a: &Tensor<4>,
    bt: &SeqTrace,
    r: Tensor<4>,
    sw: &Sweep,
) -> Tensor<4> {
    let [n, c_in, h, w] = a.dims();
    let c_out = r.dims()[1];
    let old = r.clone().slice([0..n, 0..c_in, 0..h, 0..w]);
    let new = r.slice([0..n, c_in..c_out, 0..h, 0..w]);
    old.add(back_seq(branch, p, bt, new, 0, sw))
}

impl Fire {
    /// Fire module: `r` split between the two expands, their sum swept back through the squeeze.
    pub(super) fn back(
        &self,
        p: &ParamStore,
        ft: &FireTrace,
        r: Tensor<4>,
        sw: &Sweep,
    ) -> Tensor<4> {
        let (squeeze, e1, e3) = (&ft.squeeze, &ft.e1, &ft.e3);
        let [n, c1, h, w] = e1.output.dims();
        let c = r.dims()[1];
        let r1 = r.clone().slice([0..n, 0..c1, 0..h, 0..w]);
        let r3 = r.slice([0..n, c1..c, 0..h, 0..w]);
        let rs = back_seq(&self.expand1x1, p, e1, r1, 0, sw).add(back_seq(
            &self.expand3x3,
            p,
            e3,
            r3,
            0,
            sw,
        ));
        back_seq(&self.squeeze, p, squeeze, rs, 0, sw)
    }
}
