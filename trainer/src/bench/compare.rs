//! `foolmap bench --suite compare`: the same steps in foolmap and (with `--reference torch`) in
//! PyTorch, in one run on the same cores or GPU, as ratio rows of BENCHMARKS.md.
//!
//! Steps (Location fooling, λ 1, Adam lr 1e-5, models in eval mode as in `foolmap fool`):
//! `inference` (forward only), `train` (cross-entropy, backward, Adam) and `fool:<interpreter>`
//! (forward, the interpreter's map at the tap as an explicit backward, `CE + λ·L_F`, backward
//! through all of it, Adam). PyTorch runs the same step with `torch.autograd.grad(...,
//! create_graph=True)` for the map (`bench/torch_reference.py`).
//!
//! foolmap is measured twice: on the *step alone* (a random input tensor made before timing,
//! exactly what the PyTorch script times) and *end to end* (each step also decodes and augments
//! real images through the same prefetching pipeline as `foolmap fool`).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::fooling::FoolingType;
use foolmap::params::SplitMix;
use foolmap::train::{Adam, Objective, cross_entropy};
use foolmap::{Architecture, InterpreterOptions, Net, ParamStore};

pub use super::cases::{Case, Kind, Measured, parse_cases};
pub use super::torch::{TorchReport, TorchRow, script_path, torch_reference};
use super::{peak_rss_mib, reset_peak_rss};
use crate::io::data::{self, Sample};
use crate::io::prefetch::Prefetch;

/// How many steps a row times: `warm` untimed steps, then timed steps until there are `max`, or
/// at least `min` that took `budget_s` seconds together. `bench/torch_reference.py` follows the
/// same rule, so both sides of a ratio rest on as many steps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reps {
    warm: usize,
    min: usize,
    max: usize,
    budget_s: f64,
}

impl Reps {
    /// 32² models: 2 + 6 steps. 224² models (a step takes 0.1–7 s here): 1 + 3 to 10 steps, 3 s.
    fn of(case: Case) -> Self {
        if case.arch.dataset().input_size() > 64 {
            Self {
                warm: 1,
                min: 3,
                max: 10,
                budget_s: 3.0,
            }
        } else {
            Self {
                warm: 2,
                min: 6,
                max: 6,
                budget_s: 0.0,
            }
        }
    }

    /// Whether `times` (seconds of the timed steps so far) are enough.
    fn done(&self, times: &[f64]) -> bool {
        times.len() >= self.max
            || (times.len() >= self.min && times.iter().sum::<f64>() >= self.budget_s)
    }

    /// Runs `step(state, i)` for `i` = 1, 2, … (the warm-up steps first) until [`Reps::done`];
    /// returns the median seconds of the timed steps.
    fn median_seconds<S>(
        &self,
        mut state: S,
        mut step: impl FnMut(S, u64) -> Result<S>,
    ) -> Result<f64> {
        let mut times = Vec::new();
        for i in 1.. {
            let t = Instant::now();
            state = step(state, i)?;
            if i > self.warm as u64 {
                times.push(t.elapsed().as_secs_f64());
            }
            if self.done(&times) {
                break;
            }
        }
        Ok(median(times))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Random normal input `[N, 3, s, s]` and labels, fixed by `seed`.
fn random_batch(net: &Net, n: usize, seed: u64, device: &Device) -> (Tensor<4>, Vec<usize>) {
    let s = net.dataset.input_size();
    let mut rng = SplitMix::new(seed);
    let v: Vec<f32> = (0..n * 3 * s * s).map(|_| rng.normal() as f32).collect();
    let labels = (0..n).map(|_| rng.below(net.num_classes)).collect();
    (
        Tensor::from_data(TensorData::new(v, [n, 3, s, s]), device),
        labels,
    )
}

/// The pretrained weights where the data root has them, else random ones (timing only).
fn params(net: &Net, arch: Architecture, root: &Path, device: &Device) -> Result<ParamStore> {
    match arch.weights_file().map(|f| root.join("weights").join(f)) {
        Some(path) if path.exists() => Ok(crate::io::weights::load(arch, &path, device)?.1),
        _ => Ok(ParamStore::random(&net.specs, 7, device)),
    }
}

/// One step of `kind` on `(x, labels)`; returns the updated parameters.
fn step(
    kind: Kind,
    net: &Net,
    p: ParamStore,
    p0: &ParamStore,
    adam: &mut Adam,
    x: Tensor<4>,
    labels: &[usize],
) -> Result<ParamStore> {
    match kind {
        Kind::Inference => {
            let _ = net.seq.forward(p0, x.inner()).into_data();
            Ok(p)
        }
        Kind::Train => {
            let out = net.seq.forward(&p, x);
            let [n, k, _, _] = out.dims();
            let lg = out.reshape([n, k]);
            let grads = cross_entropy(lg, labels)?.backward();
            let p = adam.step(&p, grads);
            sync(&p);
            Ok(p)
        }
        Kind::Fool(interpreter) => {
            let obj = Objective {
                kind: FoolingType::Location,
                interpreter,
                lambda: 1.0,
                options: InterpreterOptions::default(),
            };
            let grads = obj.passive(net, &p, p0, x, labels)?.total.backward();
            let p = adam.step(&p, grads);
            sync(&p);
            Ok(p)
        }
    }
}

fn sync(p: &ParamStore) {
    if let Some(t) = p.values().last() {
        let _ = t.clone().into_data();
    }
}

/// Measures every kind of one case.
pub fn measure_case(
    case: Case,
    kinds: &[Kind],
    root: &Path,
    samples: &[Sample],
    device: &Device,
    progress: &mut dyn FnMut(&Measured),
) -> Result<Vec<Measured>> {
    let net = case.arch.build();
    let p0 = params(&net, case.arch, root, device)?;
    let ad = device.clone().autodiff();
    let reps = Reps::of(case);
    let mut out = Vec::new();
    for &kind in kinds {
        reset_peak_rss();
        // Step alone: the input is a tensor already.
        let (x, labels) = random_batch(&net, case.batch, 1, &ad);
        let p = p0.to_device(&ad).require_grad();
        let mut adam = Adam::new(&p, 1e-5);
        let seconds = reps.median_seconds(p, |p, _| {
            step(kind, &net, p, &p0, &mut adam, x.clone(), &labels)
        })?;
        let step_ips = case.batch as f64 / seconds;
        // End to end: decode + augmentation on the prefetch thread, as `foolmap fool` does.
        let e2e_ips = if samples.is_empty() {
            None
        } else {
            let owned: Vec<Sample> = samples.to_vec();
            let (dataset, n) = (net.dataset, case.batch);
            let total = (reps.warm + reps.max) as u64;
            let mut pre = Prefetch::new(1..=total, 2, move |s| {
                let mut rng = SplitMix::new(1000 + s);
                crate::batches::train_batch(&owned, dataset, n, &mut rng)
            });
            let p = p0.to_device(&ad).require_grad();
            let mut adam = Adam::new(&p, 1e-5);
            let seconds = reps.median_seconds(p, |p, s| {
                let (imgs, labels) = pre.take(s)?;
                let labels: Vec<usize> = labels.iter().map(|&l| l % net.num_classes).collect();
                let x = foolmap::image::batch(&imgs, &ad)?;
                step(kind, &net, p, &p0, &mut adam, x, &labels)
            })?;
            Some(case.batch as f64 / seconds)
        };
        let m = Measured {
            case,
            kind,
            step_ips,
            e2e_ips,
            peak_mib: peak_rss_mib(),
        };
        progress(&m);
        out.push(m);
    }
    Ok(out)
}

/// Real images for the end-to-end rows: CIFAR-10 training images for CIFAR models, the
/// ImageNet samples for the others (empty when the data root lacks them).
pub fn samples_for(arch: Architecture, root: &Path) -> Vec<Sample> {
    let dir = data::default_dir(Some(root), arch.dataset(), data::Split::Train);
    dir.ok()
        .and_then(|d| data::samples(arch.dataset(), &d).ok())
        .map(|mut v| {
            v.truncate(2000);
            v
        })
        .unwrap_or_default()
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |x| format!("{x:.digits$}"))
}

/// Images/s with three significant figures for slow rows (0.43, 7.12, 134.5).
fn ips(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// The markdown of the comparison block.
pub fn table(
    device_name: &str,
    features: &str,
    measured: &[Measured],
    torch: &std::result::Result<TorchReport, String>,
    wall_s: f64,
) -> String {
    let mut md = format!(
        "## Same-run comparison with PyTorch, device `{device_name}` (written by `foolmap bench --suite compare`)\n\n\
         foolmap build: {features}. "
    );
    match torch {
        Ok(t) => md.push_str(&format!(
            "PyTorch {} on {}{} with {} threads, in the same run.\n\n",
            t.torch_version,
            t.device,
            t.device_name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            t.threads
        )),
        Err(e) => md.push_str(&format!("No PyTorch reference: {e}.\n\n")),
    }
    md.push_str(
        "Images/s, median of the timed steps after warm-up (32² models: 2 warm-up + 6 timed steps; 224² \
         models: 1 warm-up, then at least 3 timed steps and up to 10 until they took 3 s; both sides \
         follow this rule). *Step alone*: the input is a tensor already \
         (what the PyTorch script times). *End to end*: each step also decodes and augments real images \
         (CIFAR-10 training PNGs, or the ImageNet samples' JPEGs) through `foolmap fool`'s prefetch thread. \
         Fooling steps: Location, λ 1, Adam; models in eval mode. Peak memory: host `VmHWM` reset per row \
         (CPU), `torch.cuda.max_memory_allocated` (PyTorch on CUDA).\n\n\
         | model | input | batch | step | foolmap img/s (step alone) | foolmap img/s (end to end) | PyTorch img/s | foolmap ÷ PyTorch | foolmap peak MiB | PyTorch peak MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let t = torch.as_ref().ok().and_then(|t| {
            t.rows.iter().find(|r| {
                r.arch == m.case.arch.id() && r.batch == m.case.batch && r.kind == m.kind.id()
            })
        });
        let t_ips = t.and_then(|r| r.images_per_s);
        let ratio = t_ips.map(|ti| m.step_ips / ti);
        let side = m.case.arch.dataset().input_size();
        md.push_str(&format!(
            "| {} | {side}² | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.case.arch.id(),
            m.case.batch,
            m.kind.id(),
            ips(m.step_ips),
            m.e2e_ips.map_or("—".into(), ips),
            match (t_ips, t.and_then(|r| r.note.as_deref())) {
                (Some(v), _) => ips(v),
                (None, Some(note)) => format!("— ({note})"),
                (None, None) => "—".into(),
            },
            ratio.map_or("—".into(), |r| format!("**{r:.2}×**")),
            fmt(m.peak_mib, 0),
            fmt(t.and_then(|r| r.peak_mib), 0),
        ));
    }
    md.push_str(&format!(
        "\nWall time of the whole comparison: {wall_s:.0} s. Command: `foolmap bench --device {device_name} --suite compare --reference torch`.\n"
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use foolmap::Interpreter;

    #[test]
    fn repetitions_stop_at_the_count_or_after_the_time_budget() {
        let small = Reps::of(Case {
            arch: Architecture::ResNet20,
            batch: 32,
        });
        assert!(!small.done(&[10.0; 5]) && small.done(&[0.001; 6]));
        let large = Reps::of(Case {
            arch: Architecture::SqueezeNet1_0,
            batch: 4,
        });
        // Slow steps: the minimum is enough; fast ones: until the budget or the maximum.
        assert!(!large.done(&[7.0; 2]) && large.done(&[7.0; 3]));
        assert!(!large.done(&[0.3; 9]) && large.done(&[0.3; 10]));
        assert!(!large.done(&[0.5; 5]) && large.done(&[0.5; 6]));
    }

    #[test]
    fn table_joins_the_reference_rows_and_says_why_one_is_missing() {
        let case = Case {
            arch: Architecture::ResNet20,
            batch: 32,
        };
        let m = vec![
            Measured {
                case,
                kind: Kind::Fool(Interpreter::GradCam),
                step_ips: 100.0,
                e2e_ips: Some(90.0),
                peak_mib: Some(150.0),
            },
            Measured {
                case,
                kind: Kind::Fool(Interpreter::LrpT),
                step_ips: 80.0,
                e2e_ips: None,
                peak_mib: None,
            },
        ];
        let t = Ok(TorchReport {
            torch_version: "2.x".into(),
            device: "cpu".into(),
            device_name: None,
            threads: 2,
            rows: vec![
                TorchRow {
                    arch: "resnet20".into(),
                    batch: 32,
                    kind: "fool:grad_cam".into(),
                    images_per_s: Some(400.0),
                    peak_mib: Some(700.0),
                    note: None,
                },
                TorchRow {
                    arch: "resnet20".into(),
                    batch: 32,
                    kind: "fool:lrp_t".into(),
                    images_per_s: None,
                    peak_mib: None,
                    note: Some("not implemented".into()),
                },
            ],
        });
        let md = table("cpu", "flex", &m, &t, 1.0);
        assert!(
            md.contains("| resnet20 | 32² | 32 | fool:grad_cam | 100.0 | 90.0 | 400.0 | **0.25×** | 150 | 700 |"),
            "{md}"
        );
        assert!(md.contains("— (not implemented)"), "{md}");
        let none = table("cpu", "flex", &m, &Err("no torch".into()), 1.0);
        assert!(none.contains("No PyTorch reference: no torch"), "{none}");
    }
}
