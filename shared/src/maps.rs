//! Per-image map normalisations (spec §4.6, fixtures README "Normalisations"). Maps are
//! `[N, h, w]`; every function is differentiable (min/max pass the gradient to their arg-extreme).

use burn::tensor::Tensor;

fn per_image<F: FnOnce(Tensor<2>) -> Tensor<2>>(h: Tensor<3>, f: F) -> Tensor<3> {
    let [n, hh, ww] = h.dims();
    f(h.reshape([n, hh * ww])).reshape([n, hh, ww])
}

/// `(H − min H) / (max(H − min H) + 1e-8)` per image.
pub fn minmax(h: Tensor<3>) -> Tensor<3> {
    per_image(h, |x| {
        let shifted = x.clone().sub(x.min_dim(1));
        let mx = shifted.clone().max_dim(1);
        shifted.div(mx.add_scalar(1e-8))
    })
}

/// `H / (max H + 1e-8)` per image (Grad-CAM, spec §9 Q8).
pub fn max_norm(h: Tensor<3>) -> Tensor<3> {
    per_image(h, |x| {
        let mx = x.clone().max_dim(1);
        x.div(mx.add_scalar(1e-8))
    })
}

/// `H / max |H|` per image (`lrp_norm`), in [−1, 1]; an all-zero map stays zero.
pub fn abs_max_norm(h: Tensor<3>) -> Tensor<3> {
    per_image(h, |x| {
        let mx = x.clone().abs().max_dim(1);
        let safe = mx.clone().add(mx.detach().equal_elem(0.0).float());
        x.div(safe)
    })
}

/// `H0[i, r, c] = H[i, h−1−r, w−1−c]` (the fixtures' stand-in for the original map).
pub fn rot180(h: Tensor<3>) -> Tensor<3> {
    h.flip([1, 2])
}
