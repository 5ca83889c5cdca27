//! LRP-ε for fully connected layers (spec §4.1).

use burn::tensor::Tensor;

use super::sign_const;

/// `R_in_j = a_j · Σ_k W_kj R_k / (z_k + ε·s(z_k))`, `z = W a + b`.
///
/// # Shapes
/// `a`: `[N, in]`, `w`: `[out, in]`, `b`: `[out]`, `r`: `[N, out]`; returns `[N, in]`.
pub fn epsilon(a: Tensor<2>, w: Tensor<2>, b: Tensor<1>, r: Tensor<2>, eps: f64) -> Tensor<2> {
    let out = b.dims()[0];
    let z = a
        .clone()
        .matmul(w.clone().transpose())
        .add(b.reshape([1, out]));
    let zt = z.clone().add(sign_const(&z).mul_scalar(eps));
    a.mul(r.div(zt).matmul(w))
}
