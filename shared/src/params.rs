//! Parameter storage: a flat list of named tensors, separate from the network structure.
//!
//! A [`crate::model::Net`] only describes layers and refers to parameters by [`ParamId`]; the
//! values live in a [`ParamStore`]. The same structure therefore runs with the original weights
//! (frozen, `H0` in spec §1.1) and with the weights being fooled (autodiff leaves), and loading,
//! export, optimisers, weight noise and re-initialisation all work on one flat list.

#[cfg(feature = "tensor")]
use {
    crate::error::{FoolmapError, Result},
    crate::state::{StateDict, TensorRecord},
    burn::tensor::{Device, Tensor, TensorData},
    std::collections::BTreeSet,
};

/// Index of a parameter in its [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamId(pub usize);

/// How a freshly initialised parameter is drawn (tests and model randomisation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Kaiming-normal with the given fan-in: N(0, 2/fan_in).
    KaimingNormal { fan_in: usize },
    /// Uniform on [lo, hi].
    Uniform { lo: f32, hi: f32 },
    /// Normal N(0, std²).
    Normal { std: f32 },
    /// A constant.
    Const(f32),
}

/// What a parameter is, for optimisers and canonizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Trained by fooling (weights, biases, BatchNorm γ/β).
    Trainable,
    /// BatchNorm running statistics: frozen in eval mode (spec §1.1, Q16).
    Buffer,
}

/// Declaration of one parameter: torchvision key, shape, initialiser, kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// torchvision key, e.g. `features.0.weight`.
    pub name: String,
    /// Shape, outermost first (PyTorch layout: conv `[out, in, kh, kw]`, linear `[out, in]`).
    pub shape: Vec<usize>,
    /// Initialiser for random weights.
    pub init: Init,
    /// Trainable or buffer.
    pub kind: ParamKind,
}

#[cfg(feature = "tensor")]
/// The values of a network's parameters, in declaration order.
#[derive(Debug, Clone)]
pub struct ParamStore {
    specs: Vec<ParamSpec>,
    values: Vec<Tensor<1>>,
}

/// A tiny deterministic generator (SplitMix64 + Box-Muller) so that random weights are the
/// same on every platform, including wasm.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
}

impl Init {
    /// Draws `n` values.
    pub fn sample(self, n: usize, rng: &mut SplitMix) -> Vec<f32> {
        (0..n)
            .map(|_| match self {
                Init::KaimingNormal { fan_in } => {
                    (rng.normal() * (2.0 / fan_in.max(1) as f64).sqrt()) as f32
                }
                Init::Uniform { lo, hi } => lo + (hi - lo) * rng.uniform() as f32,
                Init::Normal { std } => (rng.normal() * std as f64) as f32,
                Init::Const(c) => c,
            })
            .collect()
    }
}

#[cfg(feature = "tensor")]
impl ParamStore {
    /// Random values drawn from each spec's initialiser with a fixed seed.
    pub fn random(specs: &[ParamSpec], seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix::new(seed);
        let values = specs
            .iter()
            .map(|s| {
                let n = s.shape.iter().product();
                Tensor::from_data(TensorData::new(s.init.sample(n, &mut rng), [n]), device)
            })
            .collect();
        Self {
            specs: specs.to_vec(),
            values,
        }
    }

    /// Loads every declared parameter from `sd`, checking names and shapes.
    ///
    /// All problems are collected into one [`FoolmapError::WeightMismatch`]: missing keys,
    /// unexpected keys, shape mismatches (expected vs found) and tensors holding NaN or ±Inf (a
    /// model with them predicts nothing meaningful). `num_batches_tracked` is ignored.
    pub fn from_state_dict(
        specs: &[ParamSpec],
        sd: &StateDict,
        arch: &str,
        source_name: &str,
        device: &Device,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut used = BTreeSet::new();
        let mut values = Vec::with_capacity(specs.len());
        for s in specs {
            match sd.tensors.get(&s.name) {
                None => problems.push(format!(
                    "  missing tensor `{}` (expected shape {:?})",
                    s.name, s.shape
                )),
                Some(t) if t.shape != s.shape => problems.push(format!(
                    "  tensor `{}` has shape {:?}, expected {:?}",
                    s.name, t.shape, s.shape
                )),
                Some(t) if t.data.iter().any(|v| !v.is_finite()) => problems.push(format!(
                    "  tensor `{}` holds {} non-finite value(s) (NaN or ±Inf)",
                    s.name,
                    t.data.iter().filter(|v| !v.is_finite()).count()
                )),
                Some(t) => {
                    used.insert(s.name.as_str());
                    let n = t.data.len();
                    values.push(Tensor::from_data(
                        TensorData::new(t.data.clone(), [n]),
                        device,
                    ));
                }
            }
        }
        for k in sd.tensors.keys() {
            if !used.contains(k.as_str())
                && !k.ends_with("num_batches_tracked")
                && !specs.iter().any(|s| &s.name == k)
            {
                problems.push(format!("  unexpected tensor `{k}`"));
            }
        }
        if !problems.is_empty() {
            return Err(FoolmapError::WeightMismatch {
                source_name: source_name.to_string(),
                arch: arch.to_string(),
                problems,
            });
        }
        Ok(Self {
            specs: specs.to_vec(),
            values,
        })
    }

    /// The declarations, in order.
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// Number of parameters (tensors).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Total number of scalar values.
    pub fn num_values(&self) -> usize {
        self.specs
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum()
    }

    /// Id of the parameter called `name`.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.specs.iter().position(|s| s.name == name).map(ParamId)
    }

    /// The flat value of a parameter.
    pub fn flat(&self, id: ParamId) -> &Tensor<1> {
        &self.values[id.0]
    }

    /// All flat values, in order.
    pub fn values(&self) -> &[Tensor<1>] {
        &self.values
    }

    /// Replaces every value (e.g. after an optimiser step). Lengths must match.
    pub fn set_values(&mut self, values: Vec<Tensor<1>>) {
        assert_eq!(values.len(), self.values.len(), "parameter count changed");
        self.values = values;
    }

    /// The name of the first parameter holding a NaN or ±Inf, `None` when every value is finite.
    ///
    /// Cheap enough for every optimiser step: `Σ (v · 0)` is 0 exactly when `v` is finite (NaN
    /// and ±Inf times 0 are NaN, and no finite value overflows), so it costs one elementwise
    /// pass, one sum per tensor and a single read-back of `len()` scalars; detached from any
    /// autodiff graph.
    pub fn non_finite(&self) -> Result<Option<String>> {
        if self.values.is_empty() {
            return Ok(None);
        }
        let sums: Vec<Tensor<1>> = self
            .values
            .iter()
            .map(|v| v.clone().detach().mul_scalar(0.0).sum())
            .collect();
        let flags = crate::scores::read_back(Tensor::cat(sums, 0))?;
        Ok(flags
            .iter()
            .position(|f| *f != 0.0)
            .map(|i| self.specs[i].name.clone()))
    }

    /// A parameter reshaped to rank `D` (its declared shape must have rank `D`).
    pub fn get<const D: usize>(&self, id: ParamId) -> Tensor<D> {
        let shape: [usize; D] = self.specs[id.0]
            .shape
            .clone()
            .try_into()
            .unwrap_or_else(|s: Vec<usize>| panic!("parameter rank {} != {D}", s.len()));
        self.values[id.0].clone().reshape(shape)
    }

    /// Copy onto another device (e.g. an autodiff device), detached from any graph.
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            specs: self.specs.clone(),
            values: self
                .values
                .iter()
                .map(|v| Tensor::from_data(v.to_data(), device))
                .collect(),
        }
    }

    /// Marks every trainable parameter as an autodiff leaf (device must be an autodiff device).
    pub fn require_grad(self) -> Self {
        self.require_grad_where(|_| true)
    }

    /// Marks the trainable parameters that `train` accepts as autodiff leaves; every other
    /// parameter is detached, so it gets no gradient and optimisers leave it as it is.
    pub fn require_grad_where(mut self, train: impl Fn(&ParamSpec) -> bool) -> Self {
        for (s, v) in self.specs.iter().zip(self.values.iter_mut()) {
            *v = if s.kind == ParamKind::Trainable && train(s) {
                v.clone().detach().require_grad()
            } else {
                v.clone().detach()
            };
        }
        self
    }

    /// Values as a [`StateDict`] with torchvision keys.
    pub fn to_state_dict(&self) -> StateDict {
        let mut sd = StateDict::default();
        for (s, v) in self.specs.iter().zip(&self.values) {
            let data = v
                .to_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            sd.insert(
                s.name.clone(),
                TensorRecord {
                    shape: s.shape.clone(),
                    data,
                },
            );
        }
        sd
    }
}
