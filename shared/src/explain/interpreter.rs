//! The interpreter registry (spec §4, §4.5–4.6) and the maps it produces.
//!
//! Tap-level interpreters (`lrp_t`, `grad_cam`, `simple_grad_t`) are the fooling targets; the
//! input-level ones serve evaluation and the transfer study (spec §6.5, §7.2).

use crate::error::{FoolmapError, Result};
#[cfg(feature = "tensor")]
use {
    super::{GradOptions, LrpOptions, Sweep, back_seq},
    crate::arch::Net,
    crate::maps::{abs_max_norm, max_norm, minmax},
    crate::model::SeqTrace,
    crate::params::{ParamStore, SplitMix},
    burn::tensor::{Tensor, TensorData},
};

/// Where a map lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// At the input of the tap node, `[N, h, w]` (7×7, 8×8, 13×13, 14×14).
    Tap,
    /// At the image, `[N, H, W]`.
    Input,
}

macro_rules! interpreters {
    ($( $variant:ident => $id:literal, $level:ident, $doc:literal ),* $(,)?) => {
        /// Every interpreter foolmap computes (ordered as registered: maps keyed by it list
        /// interpreters in registry order).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Interpreter { $( #[doc = $doc] $variant ),* }

        impl Interpreter {
            /// All interpreters, in registry order.
            pub const ALL: &'static [Interpreter] = &[$(Interpreter::$variant),*];

            /// Stable id, used by the CLI, configs, reports and the web app.
            pub fn id(self) -> &'static str {
                match self { $(Interpreter::$variant => $id),* }
            }

            /// Resolution of the map.
            pub fn level(self) -> Level {
                match self { $(Interpreter::$variant => Level::$level),* }
            }
        }
    };
}

interpreters! {
    LrpT => "lrp_t", Tap, "LRP-Composite relevance at the tap: ReLU(Σ_c R), min-max (spec §4.1).",
    GradCam => "grad_cam", Tap, "Grad-CAM at the tap: ReLU(Σ_k α_k A_k) / (max + 1e-8) (spec §4.2).",
    SimpleGradT => "simple_grad_t", Tap, "SimpleGrad at the tap: ReLU(Σ_c |g_c|), min-max (spec §4.3).",
    Lrp => "lrp", Input, "LRP-Composite relevance at the image, channel sum, raw (spec §4.1).",
    LrpNorm => "lrp_norm", Input, "Input-level LRP divided by its maximum absolute value (fixtures).",
    SimpleGrad => "simple_grad", Input, "SimpleGrad at the image: Σ_c |g_c|, min-max (fixtures).",
    SmoothGrad => "smoothgrad", Input, "SmoothGrad: mean of Σ_c |g_c| over noisy copies, min-max (spec §4.4).",
    IntegratedGradients => "integrated_gradients", Input, "Integrated Gradients (Riemann sum with the (x − x′) factor), Σ_c, ÷ max |·|.",
    GradientXInput => "gradient_x_input", Input, "Gradient × Input, Σ_c, ÷ max |·|.",
}

impl std::fmt::Display for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Interpreter {
    type Err = FoolmapError;
    fn from_str(s: &str) -> Result<Self> {
        Interpreter::ALL
            .iter()
            .copied()
            .find(|i| {
                let alias = match s {
                    "grad-cam" | "gradcam" => "grad_cam",
                    "simple-grad" | "simplegrad" => "simple_grad",
                    "ig" => "integrated_gradients",
                    "gxi" => "gradient_x_input",
                    other => other,
                };
                i.id() == alias || i.id().replace('_', "-") == alias
            })
            .ok_or_else(|| FoolmapError::UnknownName {
                kind: "interpreter",
                name: s.to_string(),
                choices: Interpreter::ALL
                    .iter()
                    .map(|i| i.id().to_string())
                    .collect(),
            })
    }
}

impl Interpreter {
    /// The interpreters a model can be fooled with (tap-level, spec §5).
    pub const FOOLABLE: &'static [Interpreter] = &[
        Interpreter::LrpT,
        Interpreter::GradCam,
        Interpreter::SimpleGradT,
    ];

    /// The foolable interpreters followed by their input-level counterparts (`lrp`,
    /// `simple_grad`), in registry order: the maps the page offers.
    pub fn offered() -> Vec<Interpreter> {
        let mut v: Vec<Interpreter> = Self::FOOLABLE.to_vec();
        for i in Self::FOOLABLE {
            if let Some(j) = i.at_level(Level::Input)
                && !v.contains(&j)
            {
                v.push(j);
            }
        }
        v
    }

    /// The same method at the other resolution, where it exists (`lrp` ↔ `lrp_t`,
    /// `simple_grad` ↔ `simple_grad_t`; Grad-CAM exists only at the tap).
    pub fn at_level(self, level: Level) -> Option<Interpreter> {
        use Interpreter::*;
        match (self, level) {
            (LrpT | Lrp | LrpNorm, Level::Tap) => Some(LrpT),
            (LrpT | Lrp, Level::Input) => Some(Lrp),
            (LrpNorm, Level::Input) => Some(LrpNorm),
            (SimpleGradT | SimpleGrad, Level::Tap) => Some(SimpleGradT),
            (SimpleGradT | SimpleGrad, Level::Input) => Some(SimpleGrad),
            (GradCam, Level::Tap) => Some(GradCam),
            (i, l) if i.level() == l => Some(i),
            _ => None,
        }
    }

    /// True for interpreters that need several forward passes (no single trace).
    pub fn needs_resampling(self) -> bool {
        matches!(
            self,
            Interpreter::SmoothGrad | Interpreter::IntegratedGradients
        )
    }
}

#[cfg(feature = "tensor")]
/// Settings shared by all interpreters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterpreterOptions {
    /// Gradient sweep options.
    pub grad: GradOptions,
    /// LRP options.
    pub lrp: LrpOptions,
    /// SmoothGrad: number of noisy samples (official code: 16).
    pub smooth_n: usize,
    /// SmoothGrad: noise σ in normalised input space (official code: 0.1).
    pub smooth_sigma: f64,
    /// Integrated Gradients: number of Riemann steps.
    pub ig_steps: usize,
    /// Integrated Gradients: constant baseline in normalised space (0 = the mean image).
    pub ig_baseline: f32,
    /// Seed of the SmoothGrad noise.
    pub seed: u64,
}

#[cfg(feature = "tensor")]
impl Default for InterpreterOptions {
    fn default() -> Self {
        Self {
            grad: GradOptions::default(),
            lrp: LrpOptions::default(),
            smooth_n: 16,
            smooth_sigma: 0.1,
            ig_steps: 32,
            ig_baseline: 0.0,
            seed: 20,
        }
    }
}

#[cfg(feature = "tensor")]
/// `[N, K, 1, 1]` one-hot of `classes`, after checking every class is below `k`.
pub fn one_hot(classes: &[usize], k: usize, device: &burn::tensor::Device) -> Result<Tensor<4>> {
    if let Some(&bad) = classes.iter().find(|&&c| c >= k) {
        return Err(FoolmapError::invalid(
            "class",
            format!("class {bad} is out of range for a model with {k} classes"),
        ));
    }
    let n = classes.len();
    let mut v = vec![0f32; n * k];
    for (i, &c) in classes.iter().enumerate() {
        v[i * k + c] = 1.0;
    }
    Ok(Tensor::from_data(TensorData::new(v, [n, k, 1, 1]), device))
}

#[cfg(feature = "tensor")]
/// Logits `[N, K]` of a trace.
pub fn logits(tr: &SeqTrace) -> Tensor<2> {
    let [n, k, _, _] = tr.output.dims();
    tr.output.clone().reshape([n, k])
}

#[cfg(feature = "tensor")]
/// The raw signal of a sweep at the input of node `stop` (tap or 0 = image):
/// `∂ logit_c / ∂ A` for [`Sweep::Gradient`], the relevance for [`Sweep::Lrp`].
///
/// # Shapes
/// Returns the shape of `tr.inputs[stop]`, e.g. `[N, C, h, w]`.
pub fn signal(
    net: &Net,
    p: &ParamStore,
    tr: &SeqTrace,
    classes: &[usize],
    stop: usize,
    sweep: &Sweep,
) -> Result<Tensor<4>> {
    let [n, k, _, _] = tr.output.dims();
    if classes.len() != n {
        return Err(FoolmapError::Tensor {
            name: "classes".into(),
            expected: format!("{n} classes (one per image)"),
            found: format!("{}", classes.len()),
        });
    }
    let hot = one_hot(classes, k, &tr.output.device())?;
    let seed = match sweep {
        Sweep::Gradient(_) => hot,
        Sweep::Lrp(_) => tr.output.clone().mul(hot),
    };
    Ok(back_seq(&net.seq, p, tr, seed, stop, sweep))
}

#[cfg(feature = "tensor")]
/// The first node whose activations [`explain_traced`] reads for `interp`: the tap for the
/// interpreters whose sweep stops there (LRP-T, SimpleGrad-T, Grad-CAM), else the input. A trace
/// from there on ([`crate::model::Seq::trace_from`]) gives the same map.
pub fn trace_start(net: &Net, interp: Interpreter) -> usize {
    match interp {
        Interpreter::LrpT | Interpreter::SimpleGradT | Interpreter::GradCam => net.tap,
        Interpreter::Lrp
        | Interpreter::LrpNorm
        | Interpreter::SimpleGrad
        | Interpreter::GradientXInput
        | Interpreter::SmoothGrad
        | Interpreter::IntegratedGradients => 0,
    }
}

#[cfg(feature = "tensor")]
/// A map from a single trace (every interpreter but SmoothGrad and IG).
///
/// # Shapes
/// Returns `[N, h, w]` at the tap or `[N, H, W]` at the image.
pub fn explain_traced(
    net: &Net,
    p: &ParamStore,
    tr: &SeqTrace,
    classes: &[usize],
    interp: Interpreter,
    o: &InterpreterOptions,
) -> Result<Tensor<3>> {
    let needed = trace_start(net, interp);
    if tr.start > needed {
        return Err(FoolmapError::invalid(
            "trace",
            format!(
                "`{interp}` sweeps down to node {needed}, but the trace starts at node {}",
                tr.start
            ),
        ));
    }
    let grad = Sweep::Gradient(o.grad);
    let lrp = Sweep::Lrp(o.lrp);
    let tap = net.tap;
    Ok(match interp {
        Interpreter::LrpT => {
            minmax(channel_sum(signal(net, p, tr, classes, tap, &lrp)?).clamp_min(0.0))
        }
        Interpreter::SimpleGradT => {
            minmax(channel_sum(signal(net, p, tr, classes, tap, &grad)?.abs()).clamp_min(0.0))
        }
        Interpreter::GradCam => {
            let g = signal(net, p, tr, classes, tap, &grad)?;
            let a = tr.input(tap).clone();
            let alpha = g.mean_dim(3).mean_dim(2);
            max_norm(channel_sum(a.mul(alpha)).clamp_min(0.0))
        }
        Interpreter::Lrp => channel_sum(signal(net, p, tr, classes, 0, &lrp)?),
        Interpreter::LrpNorm => abs_max_norm(channel_sum(signal(net, p, tr, classes, 0, &lrp)?)),
        Interpreter::SimpleGrad => {
            minmax(channel_sum(signal(net, p, tr, classes, 0, &grad)?.abs()))
        }
        Interpreter::GradientXInput => {
            let g = signal(net, p, tr, classes, 0, &grad)?;
            abs_max_norm(channel_sum(g.mul(tr.input(0).clone())))
        }
        Interpreter::SmoothGrad | Interpreter::IntegratedGradients => {
            return Err(FoolmapError::invalid(
                "interpreter",
                format!("`{interp}` needs several forward passes; call `explain`"),
            ));
        }
    })
}

#[cfg(feature = "tensor")]
/// A map for images `x` `[N, 3, H, W]` (normalised) and one class per image.
pub fn explain(
    net: &Net,
    p: &ParamStore,
    x: Tensor<4>,
    classes: &[usize],
    interp: Interpreter,
    o: &InterpreterOptions,
) -> Result<Tensor<3>> {
    let grad = Sweep::Gradient(o.grad);
    match interp {
        Interpreter::SmoothGrad => {
            let dims = x.dims();
            let numel: usize = dims.iter().product();
            let mut rng = SplitMix::new(o.seed);
            let mut acc: Option<Tensor<3>> = None;
            for _ in 0..o.smooth_n.max(1) {
                let noise: Vec<f32> = (0..numel)
                    .map(|_| (rng.normal() * o.smooth_sigma) as f32)
                    .collect();
                let xn = x
                    .clone()
                    .add(Tensor::from_data(TensorData::new(noise, dims), &x.device()));
                let tr = net.seq.trace(p, xn);
                let m = channel_sum(signal(net, p, &tr, classes, 0, &grad)?.abs());
                acc = Some(match acc {
                    None => m,
                    Some(a) => a.add(m),
                });
            }
            Ok(minmax(acc.expect("at least one sample")))
        }
        Interpreter::IntegratedGradients => {
            let m = o.ig_steps.max(1);
            let base = x.clone().mul_scalar(0.0).add_scalar(o.ig_baseline);
            let diff = x.clone().sub(base.clone());
            let mut acc: Option<Tensor<4>> = None;
            for s in 1..=m {
                let xs = base
                    .clone()
                    .add(diff.clone().mul_scalar(s as f64 / m as f64));
                let tr = net.seq.trace(p, xs);
                let g = signal(net, p, &tr, classes, 0, &grad)?;
                acc = Some(match acc {
                    None => g,
                    Some(a) => a.add(g),
                });
            }
            let ig = diff.mul(acc.expect("at least one step").div_scalar(m as f64));
            Ok(abs_max_norm(channel_sum(ig)))
        }
        _ => {
            let tr = net.seq.trace_from(p, x, trace_start(net, interp));
            explain_traced(net, p, &tr, classes, interp, o)
        }
    }
}

#[cfg(feature = "tensor")]
/// `[N, C, h, w] → [N, h, w]`, summing channels.
pub fn channel_sum(x: Tensor<4>) -> Tensor<3> {
    let [n, _, h, w] = x.dims();
    x.sum_dim(1).reshape([n, h, w])
}
