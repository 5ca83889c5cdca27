//! `foolmap bench`: measured figures written to `BENCHMARKS.md` (never asserted in tests).

pub mod compare;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::explain::interpreter::explain;
use foolmap::fooling::FoolingType;
use foolmap::image::eval_crop;
use foolmap::session::{Batch, FoolingSession};
use foolmap::train::Objective;
use foolmap::{Architecture, Interpreter, InterpreterOptions, Net, ParamStore};

use crate::io::data;

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

/// `foolmap bench` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Output markdown file (only the blocks this run writes are replaced; the rest is kept).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// What to measure: `device` (accuracy, explanations, fooling steps), `compare` (the same
    /// steps as PyTorch, see `--reference`), or `all`.
    #[arg(long, value_enum, default_value_t = Suite::Device)]
    pub suite: Suite,
    /// Also time the same steps in PyTorch (`bench/torch_reference.py`, run with `--python`) and
    /// write foolmap ÷ PyTorch ratios. Only with `--suite compare` or `all`.
    #[arg(long, value_enum)]
    pub reference: Option<Reference>,
    /// Python interpreter that has `torch` (for `--reference torch`).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Models and batch sizes of the comparison, `ARCH:BATCH,...` (224² models other than
    /// SqueezeNet run with random weights).
    #[arg(
        long,
        default_value = "resnet20:32,resnet20:128,squeezenet1_0:4,vgg16:2,resnet50:2"
    )]
    pub cases: String,
}

/// Which benchmarks `foolmap bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Accuracy throughput, explanation latency, fooling steps (the device block).
    Device,
    /// The same-run comparison of inference, training and fooling steps.
    Compare,
    /// Both.
    All,
}

/// A reference implementation for `--suite compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reference {
    /// PyTorch (`bench/torch_reference.py`).
    Torch,
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

/// Peak resident memory of this process since the last [`reset_peak_rss`], in MiB (Linux
/// `VmHWM`; `None` elsewhere).
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`), best effort.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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

/// Replaces the block of `old` between the bench markers of `device` by `body`, so that
/// hand-written sections of `BENCHMARKS.md` and the blocks of other devices survive a rerun. With
/// no such block (or no file), the block is appended: nothing already written is lost.
fn splice(old: Option<&str>, body: &str, device: &str) -> String {
    let begin = format!("<!-- foolmap bench {device}: begin -->");
    let end = format!("<!-- foolmap bench {device}: end -->");
    let block = format!("{begin}\n{body}{end}\n");
    let old = old.unwrap_or("");
    match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            let rest = old[e + end.len()..].trim_start_matches('\n');
            let gap = if rest.is_empty() { "" } else { "\n" };
            format!("{}{block}{gap}{rest}", &old[..b])
        }
        _ if old.trim().is_empty() => block,
        _ => format!("{}\n\n{block}", old.trim_end_matches('\n')),
    }
}

/// Runs the chosen suites and rewrites their blocks of `out` (markdown), see [`splice`].
pub fn run(a: &BenchArgs, root: Option<&Path>, device: &Device, device_name: &str) -> Result<()> {
    if a.reference.is_some() && a.suite == Suite::Device {
        anyhow::bail!("--reference compares steps: use it with `--suite compare` or `--suite all`");
    }
    let cases = compare::parse_cases(&a.cases).context("--cases")?;
    if matches!(a.suite, Suite::Device | Suite::All) {
        run_device(root, device, device_name, &a.out)?;
    }
    if matches!(a.suite, Suite::Compare | Suite::All) {
        run_compare(a, &cases, root, device, device_name)?;
    }
    Ok(())
}

fn run_compare(
    a: &BenchArgs,
    cases: &[compare::Case],
    root: Option<&Path>,
    device: &Device,
    device_name: &str,
) -> Result<()> {
    let root = data::data_root(root)?;
    let t0 = Instant::now();
    let kinds = compare::Kind::all();
    let mut measured = Vec::new();
    for &case in cases {
        let samples = compare::samples_for(case.arch, &root);
        measured.extend(compare::measure_case(
            case,
            &kinds,
            &root,
            &samples,
            device,
            &mut |m| {
                eprintln!(
                    "bench {:>7.1} s {} b{} {}: {:.1} img/s step alone, {} end to end",
                    t0.elapsed().as_secs_f64(),
                    m.case.arch.id(),
                    m.case.batch,
                    m.kind.id(),
                    m.step_ips,
                    m.e2e_ips.map_or("—".into(), |v| format!("{v:.1} img/s"))
                )
            },
        )?);
    }
    let torch = match a.reference {
        None => Err("not requested (`--reference torch`)".to_string()),
        Some(Reference::Torch) => {
            let script = compare::script_path()?;
            compare::torch_reference(
                &a.python,
                &script,
                cases,
                &kinds,
                &root,
                matches!(device_name, "wgpu" | "cuda" | "libtorch-cuda"),
            )
        }
    };
    if let Err(e) = &torch {
        eprintln!("bench: no PyTorch figures: {e}");
    }
    let md = compare::table(
        device_name,
        &format!("{}; machine: {}", crate::build_features(), machine()),
        &measured,
        &torch,
        t0.elapsed().as_secs_f64(),
    );
    let key = format!("{device_name} compare");
    let old = std::fs::read_to_string(&a.out).ok();
    crate::io::atomic::write_atomic(&a.out, splice(old.as_deref(), &md, &key).as_bytes())?;
    println!("wrote {}", a.out.display());
    Ok(())
}

/// The device block: accuracy throughput, explanation latency, fooling steps.
fn run_device(root: Option<&Path>, device: &Device, device_name: &str, out: &Path) -> Result<()> {
    let root = data::data_root(root)?;
    let t0 = Instant::now();
    let mut md = String::new();
    md.push_str(&format!(
        "## Device `{device_name}` (written by `foolmap bench`)\n\nMachine: {}; device: {device_name}; build: {}. Release build; figures are medians of repeated runs.\n\n",
        machine(),
        crate::build_features()
    ));

    // Accuracy throughput.
    let (net, p) = crate::io::weights::load(
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
    md.push_str("### `foolmap accuracy` throughput\n\n| model | device | images/s | command |\n|---|---|---|---|\n");
    md.push_str(&format!(
        "| resnet20 (CIFAR-10 test, first {n_acc}, batch 200, decode included) | {device_name} | {ips:.0} | `foolmap accuracy --arch resnet20 --limit {n_acc} --batch-size 200` |\n\n"
    ));

    // Interpreters.
    md.push_str("### Explanations: ms per image and ratio to a forward pass\n\n");
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
        push_row(&mut md, &r, t0);
    }
    let (sq, ps) = crate::io::weights::load(
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
        push_row(&mut md, &r, t0);
    }
    md.push_str("\n### Fooling step (Location, λ 1, Adam): images/s and peak host memory\n\n");
    md.push_str("| model | device | interpreter | batch | images/s | peak RSS MiB |\n|---|---|---|---|---|---|\n");
    let train = data::cifar10(&root.join("cifar10/test"))?;
    let imgs: Vec<_> = train[..32]
        .iter()
        .map(|s| s.rgb().map(|i| eval_crop(&i, net.dataset)))
        .collect::<Result<_>>()?;
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

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn splice_replaces_only_the_generated_block_of_its_device() {
        let old = "# Title\n\n<!-- foolmap bench cpu: begin -->\nold cpu\n<!-- foolmap bench cpu: end -->\n\n\
                   <!-- foolmap bench wgpu: begin -->\nold gpu\n<!-- foolmap bench wgpu: end -->\n\n## Hand-written\nkept\n";
        let new = splice(Some(old), "new cpu\n", "cpu");
        assert!(new.contains("new cpu") && !new.contains("old cpu"), "{new}");
        assert!(
            new.starts_with("# Title\n\n<!-- foolmap bench cpu: begin -->\nnew cpu\n"),
            "{new}"
        );
        assert!(
            new.ends_with("old gpu\n<!-- foolmap bench wgpu: end -->\n\n## Hand-written\nkept\n"),
            "{new}"
        );
        let gpu = splice(Some(&new), "new gpu\n", "wgpu");
        assert!(
            gpu.contains("new cpu") && gpu.contains("new gpu") && !gpu.contains("old gpu"),
            "{gpu}"
        );
    }

    #[test]
    fn splice_appends_when_the_device_has_no_block() {
        // No file: the block alone.
        assert_eq!(
            splice(None, "x\n", "cpu"),
            "<!-- foolmap bench cpu: begin -->\nx\n<!-- foolmap bench cpu: end -->\n"
        );
        // Hand-written text without markers is kept, the block goes after it.
        assert_eq!(
            splice(Some("hand only\n"), "x\n", "cuda"),
            "hand only\n\n<!-- foolmap bench cuda: begin -->\nx\n<!-- foolmap bench cuda: end -->\n"
        );
    }
}
