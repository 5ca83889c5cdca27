//! `foolmap bench --suite device`: accuracy throughput, explanation latency and fooling steps on
//! one device, as the device block of `BENCHMARKS.md`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::explain::interpreter::explain;
use foolmap::fooling::FoolingType;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::session::{Batch, FoolingSession};
use foolmap::train::Objective;
use foolmap::{Architecture, Dataset, Interpreter, InterpreterOptions, Net, ParamStore};

use super::{machine, peak_rss_mib, reset_peak_rss, splice};
use crate::io::data::{self, Sample};

fn sync(t: Tensor<3>) {
    let _ = t.into_data();
}

/// Median wall time in seconds of `reps` runs of `f` (after one warm-up run).
fn median<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn interp_rows(
    net: &Net,
    p: &ParamStore,
    x: Tensor<4>,
    classes: &[usize],
    reps: usize,
    device_name: &str,
) -> Result<Vec<String>> {
    let n = classes.len() as f64;
    let fwd = median(reps, || {
        let _ = net.seq.forward(p, x.clone()).into_data();
    });
    let mut rows = vec![format!(
        "| {} | {device_name} | forward | {:.2} | 1.0 |",
        net.id,
        1e3 * fwd / n
    )];
    let o = InterpreterOptions {
        smooth_n: 16,
        ig_steps: 16,
        ..InterpreterOptions::default()
    };
    for interp in Interpreter::ALL {
        let r = if interp.needs_resampling() {
            1.max(reps / 4)
        } else {
            reps
        };
        let mut err = None;
        let t = median(r, || {
            match explain(net, p, x.clone(), classes, *interp, &o) {
                Ok(m) => sync(m),
                Err(e) => err = Some(e),
            }
        });
        if let Some(e) = err {
            return Err(e.into());
        }
        rows.push(format!(
            "| {} | {device_name} | {} | {:.2} | {:.1} |",
            net.id,
            interp.id(),
            1e3 * t / n,
            t / fwd
        ));
    }
    Ok(rows)
}

/// Fooling steps (`CE + λ·L_F`, Location, Adam) per interpreter: images/s and peak host memory.
fn fool_rows(
    net: &Net,
    p0: &ParamStore,
    imgs: &[foolmap::image::Rgb8],
    labels: &[usize],
    steps: usize,
    device: &Device,
    device_name: &str,
) -> Result<Vec<String>> {
    let ad = device.clone().autodiff();
    let mut rows = Vec::new();
    for &interp in Interpreter::FOOLABLE {
        let obj = Objective {
            kind: FoolingType::Location,
            interpreter: interp,
            lambda: 1.0,
            options: InterpreterOptions::default(),
        };
        let mut session = FoolingSession::new(obj, p0.to_device(&ad).require_grad(), 1e-5);
        reset_peak_rss();
        let mut err = None;
        let t = median(steps, || {
            let x = match foolmap::image::batch(imgs, &ad) {
                Ok(x) => x,
                Err(e) => return err = Some(anyhow::Error::from(e)),
            };
            match session.loss(net, p0, Batch::Labelled { x, labels }) {
                Ok(pending) => {
                    session.apply(pending);
                    let p = &session.params;
                    let _ = p.values().first().map(|t| t.clone().into_data());
                }
                Err(e) => err = Some(e.into()),
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let mem = peak_rss_mib().map_or("n/a".into(), |m| format!("{m:.0}"));
        rows.push(format!(
            "| {} | {device_name} | {} | {} | {:.1} | {mem} |",
            net.id,
            interp.id(),
            labels.len(),
            labels.len() as f64 / t
        ));
    }
    Ok(rows)
}

/// Appends a table row to `md` and echoes it on stderr with the elapsed time, so that a long run
/// (or one watched from outside, e.g. with `nvidia-smi`) shows which row it is on.
fn push_row(md: &mut String, row: &str, t0: Instant) {
    eprintln!("bench {:>7.1} s {row}", t0.elapsed().as_secs_f64());
    md.push_str(row);
    md.push('\n');
}

/// The evaluation crops of `samples` for `dataset`, decoded.
fn crops(samples: &[Sample], dataset: Dataset) -> Result<Vec<Rgb8>> {
    samples
        .iter()
        .map(|s| s.rgb().map(|i| eval_crop(&i, dataset)))
        .collect()
}

/// The ImageNet sample photos of the data root, cropped for `dataset`.
fn photos(root: &Path, dataset: Dataset) -> Result<Vec<Rgb8>> {
    ["pets.jpg", "cat.png"]
        .iter()
        .map(|f| {
            let path = root.join("photos").join(f);
            let b = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            Ok(eval_crop(&foolmap::image::decode(&b, f)?, dataset))
        })
        .collect()
}

/// Appends the `foolmap accuracy` throughput section: ResNet-20 on the first 2,000 test images.
fn accuracy_section(
    md: &mut String,
    net: &Net,
    p: &ParamStore,
    samples: &[Sample],
    device: &Device,
    device_name: &str,
) -> Result<()> {
    let t = Instant::now();
    let n_acc = 2000.min(samples.len());
    for chunk in samples[..n_acc].chunks(200) {
        let x = foolmap::image::batch(&crops(chunk, net.dataset)?, device)?;
        let _ = net.seq.forward(p, x).into_data();
    }
    let ips = n_acc as f64 / t.elapsed().as_secs_f64();
    md.push_str("### `foolmap accuracy` throughput\n\n| model | device | images/s | command |\n|---|---|---|---|\n");
    md.push_str(&format!(
        "| resnet20 (CIFAR-10 test, first {n_acc}, batch 200, decode included) | {device_name} | {ips:.0} | `foolmap accuracy --arch resnet20 --limit {n_acc} --batch-size 200` |\n\n"
    ));
    Ok(())
}

/// The device block: accuracy throughput, explanation latency, fooling steps.
pub(super) fn run_device(
    root: Option<&Path>,
    device: &Device,
    device_name: &str,
    out: &Path,
) -> Result<()> {
    let root = data::data_root(root)?;
    let t0 = Instant::now();
    let mut md = String::new();
    md.push_str(&format!(
        "## Device `{device_name}` (written by `foolmap bench`)\n\nMachine: {}; device: {device_name}; build: {}; allocator: {}. Release build; figures are medians of repeated runs.\n\n",
        machine(),
        crate::build_features(),
        crate::malloc::current()
    ));

    // Accuracy throughput.
    let (net, p) = crate::io::weights::load(
        Architecture::ResNet20,
        &root.join("weights/resnet20_cifar10.safetensors"),
        device,
    )?;
    let samples = data::cifar10(&root.join("cifar10/test"))?;
    accuracy_section(&mut md, &net, &p, &samples, device, device_name)?;

    // Interpreters.
    md.push_str("### Explanations: ms per image and ratio to a forward pass\n\n");
    md.push_str(
        "| model | device | interpreter | ms / image | × forward |\n|---|---|---|---|---|\n",
    );
    let x = foolmap::image::batch(&crops(&samples[..16], net.dataset)?, device)?;
    let classes: Vec<usize> = samples[..16].iter().map(|s| s.label).collect();
    for r in interp_rows(&net, &p, x, &classes, 5, device_name)? {
        push_row(&mut md, &r, t0);
    }
    let (sq, ps) = crate::io::weights::load(
        Architecture::SqueezeNet1_0,
        &root.join("weights/squeezenet1_0_imagenet.safetensors"),
        device,
    )?;
    let photos = photos(&root, sq.dataset)?;
    let x = foolmap::image::batch(&photos, device)?;
    for r in interp_rows(&sq, &ps, x, &[180, 285], 3, device_name)? {
        push_row(&mut md, &r, t0);
    }
    md.push_str("\n### Fooling step (Location, λ 1, Adam): images/s and peak host memory\n\n");
    md.push_str("| model | device | interpreter | batch | images/s | peak RSS MiB |\n|---|---|---|---|---|---|\n");
    let train = data::cifar10(&root.join("cifar10/test"))?;
    let imgs = crops(&train[..32], net.dataset)?;
    let labels: Vec<usize> = train[..32].iter().map(|s| s.label).collect();
    for r in fool_rows(&net, &p, &imgs, &labels, 5, device, device_name)? {
        push_row(&mut md, &r, t0);
    }
    for r in fool_rows(&sq, &ps, &photos, &[180, 285], 2, device, device_name)? {
        push_row(&mut md, &r, t0);
    }
    md.push_str(&format!(
        "\nCommand: `cargo run --release -p foolmap-trainer -- bench --device {device_name} --out {}` (peak RSS: `VmHWM`, reset per row).\n",
        out.display()
    ));
    let old = std::fs::read_to_string(out).ok();
    crate::io::atomic::write_atomic(out, splice(old.as_deref(), &md, device_name).as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
