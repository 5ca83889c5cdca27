//! Adam with PyTorch's defaults (spec §6.1): the update of the trainable parameters and the
//! moments saved to and restored from checkpoints.

use burn::tensor::{Tensor, TensorData};

use crate::error::{FoolmapError, Result};
#[cfg(feature = "autodiff")]
use crate::params::ParamKind;
use crate::params::ParamStore;

/// Adam with PyTorch's defaults (β = (0.9, 0.999), eps = 1e-8, no weight decay), spec §6.1.
/// Only [`ParamKind::Trainable`] parameters move; BatchNorm statistics stay frozen (eval mode).
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Steps taken.
    pub t: u64,
    /// First moments (one per parameter; `None` for buffers).
    pub m: Vec<Option<Tensor<1>>>,
    /// Second moments.
    pub v: Vec<Option<Tensor<1>>>,
}

impl Adam {
    /// Prefix of every key [`Adam::state`] writes (`adam.m.<param>`, `adam.v.<param>`).
    pub const STATE_PREFIX: &'static str = "adam.";

    /// Fresh state for `p`.
    pub fn new(p: &ParamStore, lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![None; p.len()],
            v: vec![None; p.len()],
        }
    }

    /// One update from the gradients of the loss; returns the new autodiff leaves.
    #[cfg(feature = "autodiff")]
    ///
    /// Takes the gradients by value: each parameter's gradient is removed from them, and on the
    /// CPU backend its buffer receives the new weights (no allocation per step).
    pub fn step(&mut self, p: &ParamStore, mut grads: burn::tensor::Gradients) -> ParamStore {
        self.t += 1;
        let k = self.coeffs();
        let mut values = Vec::with_capacity(p.len());
        for (i, (spec, w)) in p.specs().iter().zip(p.values()).enumerate() {
            let g = (spec.kind == ParamKind::Trainable)
                .then(|| w.grad_remove(&mut grads))
                .flatten();
            let Some(g) = g else {
                values.push(w.clone());
                continue;
            };
            let (m, v) = (self.m[i].take(), self.v[i].take());
            let w = w.clone().inner();
            #[cfg(feature = "flex")]
            let fused = flex_update(&k, &w, g, m, v);
            #[cfg(not(feature = "flex"))]
            let fused = Err((g, m, v));
            let (new, m, v) = fused.unwrap_or_else(|(g, m, v)| update(&k, w, g, m, v));
            values.push(Tensor::from_inner(new).require_grad());
            self.m[i] = Some(m);
            self.v[i] = Some(v);
        }
        let mut out = p.clone();
        out.set_values(values);
        out
    }

    /// The scalars of the step `self.t`.
    fn coeffs(&self) -> Coeffs {
        Coeffs {
            b1: self.beta1,
            b2: self.beta2,
            bc1: 1.0 - self.beta1.powi(self.t as i32),
            bc2: 1.0 - self.beta2.powi(self.t as i32),
            lr: self.lr,
            eps: self.eps,
        }
    }

    /// Moments as named flat tensors for a checkpoint: `adam.m.<param>`, `adam.v.<param>`.
    pub fn state(&self, p: &ParamStore) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for (i, s) in p.specs().iter().enumerate() {
            for (tag, mom) in [("m", &self.m[i]), ("v", &self.v[i])] {
                if let Some(t) = mom {
                    let v = t
                        .to_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap_or_default();
                    out.push((format!("{}{tag}.{}", Self::STATE_PREFIX, s.name), v));
                }
            }
        }
        out
    }

    /// Restores moments saved by [`Adam::state`] (missing entries stay empty), after checking
    /// them: every moment must have its parameter's number of values and be finite (second
    /// moments ≥ 0), and the step count must be usable (≤ 2³¹ − 1). Errors name the tensor.
    pub fn restore(
        &mut self,
        p: &ParamStore,
        t: u64,
        get: &dyn Fn(&str) -> Option<Vec<f32>>,
        device: &burn::tensor::Device,
    ) -> Result<()> {
        if t > i32::MAX as u64 {
            return Err(FoolmapError::invalid(
                "adam_t",
                format!(
                    "the optimizer step count {t} is out of range (at most {})",
                    i32::MAX
                ),
            ));
        }
        let mut m = vec![None; p.len()];
        let mut v = vec![None; p.len()];
        for (i, s) in p.specs().iter().enumerate() {
            let numel: usize = s.shape.iter().product();
            for (tag, slot) in [("m", &mut m[i]), ("v", &mut v[i])] {
                let key = format!("{}{tag}.{}", Self::STATE_PREFIX, s.name);
                let Some(vals) = get(&key) else { continue };
                if vals.len() != numel {
                    return Err(FoolmapError::Tensor {
                        name: key,
                        expected: format!(
                            "{numel} values (the shape {:?} of `{}`)",
                            s.shape, s.name
                        ),
                        found: format!("{} values", vals.len()),
                    });
                }
                if let Some(bad) = vals
                    .iter()
                    .find(|x| !x.is_finite() || (tag == "v" && **x < 0.0))
                {
                    return Err(FoolmapError::invalid(
                        key,
                        format!("holds {bad}; optimizer moments must be finite (and ≥ 0 for `v`)"),
                    ));
                }
                *slot = Some(Tensor::<1>::from_data(
                    TensorData::new(vals, [numel]),
                    device,
                ));
            }
        }
        self.t = t;
        self.m = m;
        self.v = v;
        Ok(())
    }
}

/// The scalars of one step: β₁, β₂, the bias corrections `1 − βᵗ`, the learning rate and ε.
#[derive(Debug, Clone, Copy)]
struct Coeffs {
    b1: f64,
    b2: f64,
    bc1: f64,
    bc2: f64,
    lr: f64,
    eps: f64,
}

/// One parameter's step `(w', m', v')` through Burn's operations, on any backend:
/// `m' = β₁·m + (1 − β₁)·g`, `v' = β₂·v + (1 − β₂)·g²` (a missing moment is zero), and
/// `w' = w − lr · (m'/bc1) / (sqrt(v'/bc2) + ε)`.
///
/// # Shapes
/// every tensor `[P]`.
#[cfg(feature = "autodiff")]
fn update(
    k: &Coeffs,
    w: Tensor<1>,
    g: Tensor<1>,
    m: Option<Tensor<1>>,
    v: Option<Tensor<1>>,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let m = match m {
        Some(m) => m.mul_scalar(k.b1).add(g.clone().mul_scalar(1.0 - k.b1)),
        None => g.clone().mul_scalar(1.0 - k.b1),
    };
    let v = match v {
        Some(v) => v
            .mul_scalar(k.b2)
            .add(g.clone().square().mul_scalar(1.0 - k.b2)),
        None => g.square().mul_scalar(1.0 - k.b2),
    };
    let update = m
        .clone()
        .div_scalar(k.bc1)
        .div(v.clone().div_scalar(k.bc2).sqrt().add_scalar(k.eps))
        .mul_scalar(k.lr);
    (w.sub(update), m, v)
}

/// [`update`] on the CPU backend as one plain loop (in `f32`, with the scalars rounded to `f32`),
/// where Burn's operations take about a dozen passes, each with a new buffer, on the calling
/// thread. The loop works in place: the moments are updated in their own buffers and the new
/// weights are written into the gradient's buffer, wherever the caller hands over the only
/// reference (a buffer still shared elsewhere is copied first, so nobody else sees a change).
/// A step therefore allocates nothing after the first: VGG-16's 138 M parameters would
/// otherwise take three new 553 MB buffers per step, which the kernel maps and zeroes afresh
/// (BENCHMARKS.md, session 33).
///
/// `Err` hands the tensors back unchanged unless every one is an `f32` flex tensor of the same
/// length.
///
/// # Shapes
/// every tensor `[P]`.
#[cfg(feature = "flex")]
#[allow(clippy::type_complexity, clippy::result_large_err)] // `Err` hands the inputs back
fn flex_update(
    k: &Coeffs,
    w: &Tensor<1>,
    g: Tensor<1>,
    m: Option<Tensor<1>>,
    v: Option<Tensor<1>>,
) -> std::result::Result<
    (Tensor<1>, Tensor<1>, Tensor<1>),
    (Tensor<1>, Option<Tensor<1>>, Option<Tensor<1>>),
> {
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::tensor::DType;
    // A contiguous `f32` flex tensor, or `None`. The conversion takes a clone, so the caller's
    // tensor stays for the fallback; once every conversion succeeded the originals are dropped
    // and a buffer nobody else holds is uniquely owned again.
    let plain = |t: &Tensor<1>| {
        let p = t.clone().try_into_primitive::<Flex>().ok()?;
        (p.dtype() == DType::F32).then(|| {
            if p.is_contiguous() {
                p
            } else {
                p.to_contiguous()
            }
        })
    };
    let optional = |t: &Option<Tensor<1>>| t.as_ref().map_or(Some(None), |t| plain(t).map(Some));
    let (Some(wp), Some(gp), Some(mp), Some(vp)) =
        (plain(w), plain(&g), optional(&m), optional(&v))
    else {
        return Err((g, m, v));
    };
    let Some(len) = gp.as_slice::<f32>().map(<[f32]>::len) else {
        return Err((g, m, v));
    };
    let same = |t: &FlexTensor| t.as_slice::<f32>().is_some_and(|s| s.len() == len);
    if !same(&wp) || !mp.as_ref().is_none_or(same) || !vp.as_ref().is_none_or(same) {
        return Err((g, m, v));
    }
    drop((g, m, v));
    let zeros = || FlexTensor::zeros([len].into(), DType::F32);
    let (mut gp, mut mp, mut vp) = (gp, mp.unwrap_or_else(zeros), vp.unwrap_or_else(zeros));
    let f = |x: f64| x as f32;
    let c = StepF32 {
        b1: f(k.b1),
        c1: f(1.0 - k.b1),
        b2: f(k.b2),
        c2: f(1.0 - k.b2),
        bc1: f(k.bc1),
        bc2: f(k.bc2),
        lr: f(k.lr),
        eps: f(k.eps),
    };
    let done = match (
        wp.as_slice::<f32>(),
        contiguous_mut(&mut gp),
        contiguous_mut(&mut mp),
        contiguous_mut(&mut vp),
    ) {
        (Some(ws), Some(gs), Some(ms), Some(vs)) => {
            c.run(ws, gs, ms, vs);
            true
        }
        // Not expected after the checks above; the values are unchanged, so Burn's operations
        // can take over (a zero moment is the same as a missing one).
        _ => false,
    };
    let t = |p: FlexTensor| Tensor::<1>::from_primitive::<Flex>(p);
    if done {
        Ok((t(gp), t(mp), t(vp)))
    } else {
        Err((t(gp), Some(t(mp)), Some(t(vp))))
    }
}

/// The values of a contiguous `f32` flex tensor, mutable: its own buffer where it holds the
/// only reference, else a copy that it then owns.
#[cfg(feature = "flex")]
fn contiguous_mut(t: &mut burn::backend::flex::FlexTensor) -> Option<&mut [f32]> {
    let (start, end) = t.layout().contiguous_offsets()?;
    t.storage_mut::<f32>().get_mut(start..end)
}

/// The scalars of one step in `f32`.
#[cfg(feature = "flex")]
#[derive(Debug, Clone, Copy)]
struct StepF32 {
    b1: f32,
    c1: f32,
    b2: f32,
    c2: f32,
    bc1: f32,
    bc2: f32,
    lr: f32,
    eps: f32,
}

#[cfg(feature = "flex")]
impl StepF32 {
    /// `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²` and `g ← w − lr·(m/bc1)/(sqrt(v/bc2) + ε)`,
    /// element by element (the gradient's buffer receives the new weights); in chunks on the
    /// thread pool where there is one.
    fn run(self, w: &[f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            const CHUNK: usize = 1 << 16;
            if w.len() > CHUNK {
                g.par_chunks_mut(CHUNK)
                    .zip(m.par_chunks_mut(CHUNK))
                    .zip(v.par_chunks_mut(CHUNK))
                    .zip(w.par_chunks(CHUNK))
                    .for_each(|(((g, m), v), w)| self.chunk(w, g, m, v));
                return;
            }
        }
        self.chunk(w, g, m, v);
    }

    fn chunk(self, w: &[f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) {
        for (((g, m), v), &w) in g.iter_mut().zip(m).zip(v).zip(w) {
            let gi = *g;
            *m = *m * self.b1 + gi * self.c1;
            *v = *v * self.b2 + gi * gi * self.c2;
            *g = w - *m / self.bc1 / ((*v / self.bc2).sqrt() + self.eps) * self.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Architecture;
    use burn::tensor::Device;

    /// The CPU backend's plain loops give Burn's operations' step to float rounding, over three
    /// steps from empty moments, with a strided gradient among the inputs.
    #[cfg(all(feature = "flex", feature = "autodiff"))]
    #[test]
    fn flex_update_equals_burns_operations() {
        use burn::tensor::Distribution;
        let dev = Device::flex();
        dev.seed(9);
        let normal = Distribution::Normal(0.0, 1.0);
        let len = 1000;
        let mut w = Tensor::<1>::random([len], normal, &dev);
        let (mut m, mut v): (Option<Tensor<1>>, Option<Tensor<1>>) = (None, None);
        let mut adam = Adam {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        };
        for step in 1..=3 {
            adam.t = step;
            let k = adam.coeffs();
            // Every other element of a longer tensor: a strided gradient.
            let g = Tensor::<2>::random([len, 2], normal, &dev)
                .slice([0..len, 0..1])
                .reshape([len]);
            let (w2, m2, v2) = update(&k, w.clone(), g.clone(), m.clone(), v.clone());
            let (w1, m1, v1) = flex_update(&k, &w, g, m, v).expect("f32 flex tensors");
            for (what, a, b) in [("w", &w1, &w2), ("m", &m1, &m2), ("v", &v1, &v2)] {
                let err = a.clone().sub(b.clone()).abs().max().into_scalar::<f32>();
                let scale = b.clone().abs().max().into_scalar::<f32>();
                assert!(err <= 1e-6 * scale, "step {step}, {what}: {err} of {scale}");
            }
            assert!(w1.clone().sub(w.clone()).abs().max().into_scalar::<f32>() > 0.0);
            (w, m, v) = (w1, Some(m1), Some(v1));
        }
    }

    /// The step writes into the buffers it is handed when it holds their only reference (the
    /// new weights into the gradient's, the moments into their own), and copies a buffer that is
    /// still shared, which keeps its old values.
    #[cfg(all(feature = "flex", feature = "autodiff"))]
    #[test]
    fn flex_update_works_in_place_and_leaves_shared_buffers_alone() {
        use burn::backend::Flex;
        use burn::tensor::Distribution;
        let dev = Device::flex();
        dev.seed(4);
        let normal = Distribution::Normal(0.0, 1.0);
        let len = 300_000;
        let new = || Tensor::<1>::random([len], normal, &dev);
        let ptr = |t: &Tensor<1>| {
            let p = t.clone().try_into_primitive::<Flex>().expect("flex");
            std::sync::Arc::as_ptr(&p.data_arc()) as usize
        };
        let k = Coeffs {
            b1: 0.9,
            b2: 0.999,
            bc1: 0.19,
            bc2: 0.002,
            lr: 1e-3,
            eps: 1e-8,
        };
        let (w, g, m, v) = (new(), new(), new(), new().abs());
        let (pg, pm, pv) = (ptr(&g), ptr(&m), ptr(&v));
        let (w1, m1, v1) = flex_update(&k, &w, g, Some(m), Some(v)).expect("flex");
        assert_eq!((ptr(&w1), ptr(&m1), ptr(&v1)), (pg, pm, pv));
        // A moment the caller still holds: the step copies it, the caller's values stay.
        let kept = m1.clone();
        let before = kept.to_data().try_to_vec::<f32>().expect("f32");
        let g = new();
        let (w2, m2, _) = flex_update(&k, &w1, g, Some(m1), Some(v1)).expect("flex");
        assert_ne!(ptr(&m2), ptr(&kept));
        assert_eq!(kept.to_data().try_to_vec::<f32>().expect("f32"), before);
        assert!(w2.sub(w1).abs().max().into_scalar::<f32>() > 0.0);
    }

    #[test]
    fn restore_checks_every_moment_and_the_step_count() {
        let dev = Device::flex();
        let net = Architecture::ResNet20.build();
        let p = ParamStore::random(&net.specs, 1, &dev);
        let first = &net.specs[0];
        let numel: usize = first.shape.iter().product();
        let key = |tag: &str| format!("{}{tag}.{}", Adam::STATE_PREFIX, first.name);
        let restore = |t: u64, m: Vec<f32>, v: Vec<f32>| {
            let (km, kv) = (key("m"), key("v"));
            let mut a = Adam::new(&p, 1e-3);
            a.restore(
                &p,
                t,
                &|k| {
                    if k == km {
                        Some(m.clone())
                    } else if k == kv {
                        Some(v.clone())
                    } else {
                        None
                    }
                },
                &dev,
            )
            .map(|_| a)
        };
        let a = restore(7, vec![0.5; numel], vec![0.25; numel]).unwrap();
        assert_eq!(a.t, 7);
        assert!(a.m[0].is_some() && a.m[1].is_none());
        let e = restore(7, vec![0.5; numel - 1], vec![0.25; numel])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&key("m")) && e.contains(&format!("{numel} values")),
            "{e}"
        );
        let mut nan = vec![0.25; numel];
        nan[3] = f32::NAN;
        let e = restore(7, vec![0.5; numel], nan).unwrap_err().to_string();
        assert!(e.contains(&key("v")) && e.contains("finite"), "{e}");
        let e = restore(7, vec![0.5; numel], vec![-1.0; numel])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&key("v")), "{e}");
        let e = restore((1 << 32) + 5, vec![0.5; numel], vec![0.25; numel])
            .unwrap_err()
            .to_string();
        assert!(e.contains("adam_t") && e.contains("out of range"), "{e}");
    }
}
