//! `foolmap bench`: measured figures written to `BENCHMARKS.md` (never asserted in tests).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::explain::interpreter::explain;
use foolmap::image::eval_crop;
use foolmap::{Architecture, Interpreter, InterpreterOptions, Net, ParamStore};

use crate::data;

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

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

/// Runs the benchmarks and rewrites `out` (markdown).
pub fn run(root: Option<&Path>, device: &Device, device_name: &str, out: &Path) -> Result<()> {
    let root = data::data_root(root)?;
    let mut md = String::new();
    md.push_str("# foolmap benchmarks\n\nWritten by `foolmap bench` (release build); figures are medians of repeated runs.\n\n");
    md.push_str(&format!(
        "Machine: {}; device: {device_name}.\n\n",
        machine()
    ));

    // Accuracy throughput.
    let (net, p) = crate::weights::load(
        Architecture::ResNet20,
        &root.join("weights/resnet20_cifar10.safetensors"),
        device,
    )?;
    let samples = data::cifar10(&root.join("cifar10/test"))?;
    let t = Instant::now();
    let n_acc = 2000.min(samples.len());
    for chunk in samples[..n_acc].chunks(200) {
        let imgs: Vec<_> = chunk
            .iter()
            .map(|s| s.rgb().map(|i| eval_crop(&i, net.dataset)))
            .collect::<Result<_>>()?;
        let x = foolmap::image::batch(&imgs, device)?;
        let _ = net.seq.forward(&p, x).into_data();
    }
    let ips = n_acc as f64 / t.elapsed().as_secs_f64();
    md.push_str("## `foolmap accuracy` throughput\n\n| model | device | images/s | command |\n|---|---|---|---|\n");
    md.push_str(&format!(
        "| resnet20 (CIFAR-10 test, first {n_acc}, batch 200, decode included) | {device_name} | {ips:.0} | `foolmap accuracy --arch resnet20 --limit {n_acc} --batch-size 200` |\n\n"
    ));

    // Interpreters.
    md.push_str("## Explanations: ms per image and ratio to a forward pass\n\n");
    md.push_str(
        "| model | device | interpreter | ms / image | × forward |\n|---|---|---|---|---|\n",
    );
    let imgs: Vec<_> = samples[..16]
        .iter()
        .map(|s| s.rgb().map(|i| eval_crop(&i, net.dataset)))
        .collect::<Result<_>>()?;
    let x = foolmap::image::batch(&imgs, device)?;
    let classes: Vec<usize> = samples[..16].iter().map(|s| s.label).collect();
    for r in interp_rows(&net, &p, x, &classes, 5, device_name)? {
        md.push_str(&r);
        md.push('\n');
    }
    let (sq, ps) = crate::weights::load(
        Architecture::SqueezeNet1_0,
        &root.join("weights/squeezenet1_0_imagenet.safetensors"),
        device,
    )?;
    let photos: Vec<_> = ["pets.jpg", "cat.png"]
        .iter()
        .map(|f| {
            let path = root.join("photos").join(f);
            let b = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            Ok(eval_crop(&foolmap::image::decode(&b, f)?, sq.dataset))
        })
        .collect::<Result<_>>()?;
    let x = foolmap::image::batch(&photos, device)?;
    for r in interp_rows(&sq, &ps, x, &[180, 285], 3, device_name)? {
        md.push_str(&r);
        md.push('\n');
    }
    md.push_str(&format!(
        "\nCommand: `cargo run --release -p foolmap-trainer -- bench --out {}`\n",
        out.display()
    ));
    std::fs::write(out, md).with_context(|| format!("write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
