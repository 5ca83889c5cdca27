//! Implementations of the sub-commands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::explain::Level;
use foolmap::explain::interpreter::explain;
use foolmap::image::{Rgb8, eval_crop};
use foolmap::state::StoreDtype;
use foolmap::{Architecture, Dataset, Interpreter, InterpreterOptions, Net, ParamStore};
use serde_json::json;

use crate::data::{self, Sample};
use crate::fool::write_atomic;
use crate::{Cli, Command, DataAction, DeviceArg, npy, weights};

/// `foolmap predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Architecture id (see `foolmap archs`).
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file (safetensors, .pth or legacy .th); default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Number of classes to show (≥ 1).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    pub top: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// `foolmap accuracy`.
#[derive(Debug, Args)]
pub struct AccuracyArgs {
    /// Architecture id.
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file; default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Dataset folder; default: `cifar10/test` or `imagenet-samples` under the data root.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Evaluate only the first N images (≥ 1).
    #[arg(long, value_parser = at_least_one)]
    pub limit: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `foolmap explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Architecture id.
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file; default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Interpreter: lrp, grad-cam, simple-grad, smoothgrad, integrated_gradients, gradient_x_input
    /// (or a level-specific id such as lrp_t).
    #[arg(long)]
    pub interpreter: Interpreter,
    /// Resolution: the tap layer or the input image.
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
    /// Class to explain (default: the predicted class of each image).
    #[arg(long)]
    pub class: Option<usize>,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// `--level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelArg {
    /// At the input of the tap layer (spec §2).
    Tap,
    /// At the input image.
    Input,
}

/// `foolmap export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Architecture id.
    #[arg(long)]
    pub arch: Architecture,
    /// Weights file; default: the data root's pretrained file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Store 16-bit floats (half the bytes).
    #[arg(long)]
    pub f16: bool,
}

/// `foolmap average`.
#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Weight files to average (at least two: e.g. a run's `stepN.safetensors` or checkpoints).
    #[arg(required = true, num_args = 2.., value_name = "WEIGHTS")]
    pub inputs: Vec<PathBuf>,
    /// Output safetensors file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// `foolmap recalibrate-bn`.
#[derive(Debug, Args)]
pub struct RecalibrateArgs {
    /// Weights whose BatchNorm running statistics are re-estimated (e.g. a fooled model or an average).
    #[arg(long)]
    pub weights: PathBuf,
    /// Architecture id; default: the `arch` in the file's metadata.
    #[arg(long)]
    pub arch: Option<Architecture>,
    /// Output safetensors file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Training images to measure on (augmented as in fooling, drawn with replacement).
    #[arg(long, default_value_t = 10_000)]
    pub images: usize,
    /// Images per train-mode batch (≥ 2).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Seed of the image draw and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training data folder; default: the data root's training split.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// `foolmap data fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Destination (default: the resolved data root, or ./data).
    #[arg(long)]
    pub dest: Option<PathBuf>,
}

/// A count flag that must be at least 1 (`--top`, `--limit`): 0 would print or score nothing.
pub fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}` is not a count: {e}")),
    }
}

/// `foolmap data split`.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Which evaluation set: `cifar10` (the test set, per class by pixels) or `imagenet` (the
    /// 1,000 ImageNet samples, pooled by file bytes).
    #[arg(long, value_enum, default_value_t = SplitSet::Cifar10)]
    pub set: SplitSet,
    /// The images (default: `cifar10/test` or `imagenet-samples` under the data root).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output file (default: `splits/cifar10-test.json` or `splits/imagenet-samples.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The evaluation sets with a committed split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitSet {
    /// The CIFAR-10 test set.
    Cifar10,
    /// The ImageNet samples of the data root.
    Imagenet,
}

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let device = device(cli.device)?;
    let root = cli.data_root.as_deref();
    match cli.command {
        Command::Archs { json } => archs(json),
        Command::Predict(a) => predict(a, root, &device),
        Command::Accuracy(a) => accuracy(a, root, &device),
        Command::Explain(a) => explain_cmd(a, root, &device),
        Command::Export(a) => export(a, root, &device),
        Command::Average(a) => average(a),
        Command::RecalibrateBn(a) => recalibrate_bn(a, root, &device),
        Command::Demo(a) => crate::demo::run(a, root, &device),
        Command::Fool(a) => crate::fool::run(&a, root, &device).map(|_| ()),
        Command::Eval(a) => {
            let v = crate::eval::run(&a, root, &device)?;
            if a.json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                crate::eval::print(&v);
            }
            Ok(())
        }
        Command::Bench(a) => crate::bench::run(
            &a,
            root,
            &device,
            // The name the user typed after `--device` (it keys the device's block in the file).
            &clap::ValueEnum::to_possible_value(&cli.device).map_or_else(
                || format!("{:?}", cli.device).to_lowercase(),
                |v| v.get_name().to_string(),
            ),
        ),
        Command::Data {
            action: DataAction::Fetch(a),
        } => fetch(a, root),
        Command::Data {
            action: DataAction::Info,
        } => info(root),
        Command::Data {
            action: DataAction::Split(a),
        } => split(a, root),
        Command::Table(a) => crate::table::run(&a, root, &device),
        Command::ExportWeb(a) => crate::export_web::run(&a, root).map(|_| ()),
    }
}

// `Device::libtorch*` is deprecated in Burn 0.22 (burn-tch will be removed); it is kept as an
// optional, measured backend (BENCHMARKS.md).
#[allow(deprecated)]
fn device(d: DeviceArg) -> Result<Device> {
    match d {
        DeviceArg::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => Ok(Device::wgpu(
            foolmap::burn::tensor::DeviceKind::DefaultDevice,
        )),
        #[cfg(not(feature = "wgpu"))]
        DeviceArg::Wgpu => bail!(
            "this build has no GPU support: rebuild with `cargo build --release --features wgpu`"
        ),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceArg::Cuda => bail!(
            "--device cuda: this build has no CUDA support: rebuild with `cargo build --release --features cuda` (or use `--device wgpu`)"
        ),
        #[cfg(feature = "tch")]
        DeviceArg::Libtorch => Ok(Device::libtorch()),
        #[cfg(feature = "tch")]
        DeviceArg::LibtorchCuda => Ok(Device::libtorch_cuda(0)),
        #[cfg(not(feature = "tch"))]
        DeviceArg::Libtorch | DeviceArg::LibtorchCuda => bail!(
            "--device {}: this build has no LibTorch backend: see the README (`--features tch`, libtorch 2.9.0)",
            if d == DeviceArg::Libtorch {
                "libtorch"
            } else {
                "libtorch-cuda"
            }
        ),
    }
}

/// `explicit`, else the data root's pretrained file of `arch`; errors name `flag`, the option
/// that would supply the file.
pub(crate) fn weights_path(
    arch: Architecture,
    explicit: Option<PathBuf>,
    root: Option<&Path>,
    flag: &str,
) -> Result<PathBuf> {
    if let Some(w) = explicit {
        return Ok(w);
    }
    let Some(file) = arch.weights_file() else {
        bail!(
            "no pretrained weights for `{arch}` in the data root: pass {flag} FILE (the torchvision \
             checkpoint is {})",
            arch.checkpoint_url()
        );
    };
    let p = data::data_root(root)?.join("weights").join(file);
    if !p.is_file() {
        bail!(
            "weights file {} is missing: run `foolmap data fetch` or pass {flag}",
            p.display()
        );
    }
    Ok(p)
}

fn load_model(
    arch: Architecture,
    w: Option<PathBuf>,
    root: Option<&Path>,
    device: &Device,
) -> Result<(Net, ParamStore)> {
    let path = weights_path(arch, w, root, "--weights")?;
    weights::load(arch, &path, device)
}

pub(crate) fn class_names(dataset: Dataset, root: Option<&Path>) -> Vec<String> {
    let imagenet = data::data_root(root).ok().and_then(|r| {
        let p = r.join("labels/imagenet-simple-labels.json");
        std::fs::read(&p)
            .ok()
            .and_then(|b| foolmap::labels::parse_imagenet_labels(&b, &p.display().to_string()).ok())
    });
    foolmap::labels::names(dataset, imagenet.as_deref())
}

pub(crate) fn read_image(path: &Path) -> Result<Rgb8> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
    Ok(foolmap::image::decode(&bytes, &path.display().to_string())?)
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Indices of the `k` largest values, largest first, ties to the lower index (NaN-safe).
pub(crate) fn top_k(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Reads a tensor back as `f32` values.
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("tensor read-back failed: {e:?}"))
}

fn archs(json_out: bool) -> Result<()> {
    let rows: Vec<serde_json::Value> = Architecture::ALL
        .iter()
        .map(|a| {
            let net = a.build();
            let n = net.num_parameters();
            json!({"id": a.id(), "dataset": format!("{:?}", a.dataset()), "tap": net.tap_name(),
                   "parameters": n, "weights_in_data_root": a.weights_file()})
        })
        .collect();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<14} {:<9} {:<38} {:>12}",
            "id", "dataset", "tap (input of)", "parameters"
        );
        for r in rows {
            println!(
                "{:<14} {:<9} {:<38} {:>12}",
                r["id"].as_str().unwrap_or(""),
                r["dataset"].as_str().unwrap_or(""),
                r["tap"].as_str().unwrap_or(""),
                r["parameters"]
            );
        }
    }
    Ok(())
}

pub(crate) fn predict(a: PredictArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let names = class_names(net.dataset, root);
    let mut results = Vec::new();
    for path in &a.images {
        let img = eval_crop(&read_image(path)?, net.dataset);
        let x = foolmap::image::batch(&[img], device)?;
        let l = to_vec(net.seq.forward(&p, x).reshape([1, net.num_classes]))?;
        let prob = softmax(&l);
        let top: Vec<serde_json::Value> = top_k(&l, a.top.min(net.num_classes))
            .into_iter()
            .map(|c| json!({"class": c, "name": names[c], "probability": prob[c], "logit": l[c]}))
            .collect();
        results.push(json!({"image": path.display().to_string(), "top": top}));
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&json!({"arch": a.arch.id(), "predictions": results}))?
        );
    } else {
        for r in &results {
            println!("{}", r["image"].as_str().unwrap_or(""));
            for t in r["top"].as_array().into_iter().flatten() {
                println!(
                    "  {:>6.2}%  {:>4}  {}",
                    100.0 * t["probability"].as_f64().unwrap_or(0.0),
                    t["class"],
                    t["name"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// Decodes and preprocesses samples on a worker thread while the model runs.
fn batches(
    samples: Vec<Sample>,
    dataset: Dataset,
    bs: usize,
) -> std::sync::mpsc::Receiver<Result<(Vec<Rgb8>, Vec<usize>)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    std::thread::spawn(move || {
        for chunk in samples.chunks(bs.max(1)) {
            let r = chunk
                .iter()
                .map(|s| Ok((eval_crop(&s.rgb()?, dataset), s.label)))
                .collect::<Result<Vec<_>>>()
                .map(|v| v.into_iter().unzip());
            if tx.send(r).is_err() {
                return;
            }
        }
    });
    rx
}

pub(crate) fn accuracy(a: AccuracyArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let dir = match a.data {
        Some(d) => d,
        None => data::default_dir(root, net.dataset, data::Split::Test)?,
    };
    let mut samples = data::samples(net.dataset, &dir)?;
    if let Some(l) = a.limit {
        samples.truncate(l);
    }
    let n = samples.len();
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images  {per_sec}  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    let start = Instant::now();
    let (mut top1, mut top5) = (0usize, 0usize);
    for b in batches(samples, net.dataset, a.batch_size) {
        let (imgs, labels) = b?;
        let x = foolmap::image::batch(&imgs, device)?;
        let k = net.num_classes;
        let l = to_vec(net.seq.forward(&p, x).reshape([imgs.len(), k]))?;
        for (i, &y) in labels.iter().enumerate() {
            let row = &l[i * k..(i + 1) * k];
            let t = top_k(row, 5.min(k));
            top1 += (t[0] == y) as usize;
            top5 += t.contains(&y) as usize;
        }
        bar.inc(imgs.len() as u64);
        bar.set_message(format!(
            "top-1 {:.2}%",
            100.0 * top1 as f64 / bar.position().max(1) as f64
        ));
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let (t1, t5) = (top1 as f64 / n as f64, top5 as f64 / n as f64);
    if a.json {
        println!(
            "{}",
            json!({"arch": a.arch.id(), "data": dir.display().to_string(), "n": n,
                               "top1": t1, "top5": t5, "seconds": secs, "images_per_second": n as f64 / secs})
        );
    } else {
        println!(
            "{}: top-1 {:.2}%  top-5 {:.2}%  on {n} images of {}  ({:.1} images/s)",
            a.arch,
            100.0 * t1,
            100.0 * t5,
            dir.display(),
            n as f64 / secs
        );
    }
    Ok(())
}

pub(crate) fn png_bytes(img: &Rgb8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let buf = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone())
        .context("image buffer size")?;
    image::DynamicImage::ImageRgb8(buf)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
    Ok(out)
}

fn explain_cmd(a: ExplainArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let interp = match a.level {
        None => a.interpreter,
        Some(l) => {
            let level = if l == LevelArg::Tap {
                Level::Tap
            } else {
                Level::Input
            };
            a.interpreter.at_level(level).with_context(|| {
                format!(
                    "interpreter `{}` has no {:?}-level map",
                    a.interpreter, level
                )
            })?
        }
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let o = InterpreterOptions::default();
    let names = class_names(net.dataset, root);
    let mut summary = Vec::new();
    for path in &a.images {
        let crop = eval_crop(&read_image(path)?, net.dataset);
        let x = foolmap::image::batch(std::slice::from_ref(&crop), device)?;
        let class = match a.class {
            Some(c) => c,
            None => top_k(
                &to_vec(net.seq.forward(&p, x.clone()).reshape([1, net.num_classes]))?,
                1,
            )[0],
        };
        let map = explain(&net, &p, x, &[class], interp, &o)?;
        let [_, h, w] = map.dims();
        let v = to_vec(map)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let base = format!("{stem}.{}.{}.c{class}", a.arch, interp);
        write_atomic(
            &a.out.join(format!("{base}.npy")),
            &npy::encode_f32(&v, &[h, w]),
        )?;
        let over = foolmap::colormap::overlay(&crop, &v, h, w, 0.5);
        write_atomic(&a.out.join(format!("{base}.png")), &png_bytes(&over)?)?;
        let finite: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
        let (mn, mx) = finite
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let mean = finite.iter().sum::<f32>() / finite.len().max(1) as f32;
        println!(
            "{}: {} for class {class} ({}) → {}/{base}.{{npy,png}}  [{h}×{w}, min {mn:.4}, max {mx:.4}, mean {mean:.4}]",
            path.display(),
            interp,
            names[class],
            a.out.display()
        );
        summary.push(json!({"image": path.display().to_string(), "class": class, "map": format!("{base}.npy"),
                            "shape": [h, w], "min": mn, "max": mx, "mean": mean}));
    }
    write_atomic(
        &a.out.join("explain.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(())
}

fn export(a: ExportArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let (net, p) = load_model(a.arch, a.weights, root, device)?;
    let mut sd = p.to_state_dict();
    sd.metadata.insert("arch".into(), a.arch.id().into());
    sd.metadata.insert("tap".into(), net.tap_name().into());
    let bytes = sd.to_safetensors(if a.f16 {
        StoreDtype::F16
    } else {
        StoreDtype::F32
    })?;
    write_atomic(&a.out, &bytes)?;
    println!(
        "wrote {} ({} bytes, {})",
        a.out.display(),
        bytes.len(),
        if a.f16 { "f16" } else { "f32" }
    );
    Ok(())
}

fn average(a: AverageArgs) -> Result<()> {
    let sd = crate::weights::average(&a.inputs)?;
    let bytes = sd.to_safetensors(StoreDtype::F32)?;
    write_atomic(&a.out, &bytes)?;
    println!(
        "wrote {} (mean of {} weight files, {} tensors)",
        a.out.display(),
        a.inputs.len(),
        sd.tensors.len()
    );
    Ok(())
}

fn recalibrate_bn(a: RecalibrateArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    if a.batch_size < 2 || a.images < a.batch_size {
        bail!(
            "recalibrate-bn: needs --batch-size ≥ 2 and --images ≥ --batch-size (got {} and {})",
            a.batch_size,
            a.images
        );
    }
    let meta = weights::read_metadata(&a.weights)?;
    let arch = weights::arch_of(&a.weights, &meta, a.arch)?;
    let (net, p) = weights::load(arch, &a.weights, device)?;
    let dir = match a.data {
        Some(d) => d,
        None => data::default_dir(root, net.dataset, data::Split::Train)?,
    };
    let samples = data::samples(net.dataset, &dir)?;
    if samples.is_empty() {
        bail!("recalibrate-bn: no images in {}", dir.display());
    }
    let mut rng = foolmap::params::SplitMix::new(a.seed);
    let mut stats = foolmap::recalibrate::BatchNormStatistics::new();
    let batches = a.images / a.batch_size;
    for _ in 0..batches {
        let (imgs, _) = crate::fool::train_batch(&samples, net.dataset, a.batch_size, &mut rng)?;
        let x = foolmap::image::batch(&imgs, device)?;
        stats.observe(&net.seq, &p, x);
    }
    let p = stats.apply(&p)?;
    let mut sd = p.to_state_dict();
    sd.metadata = meta;
    sd.metadata.insert(
        "bn_recalibrated".into(),
        format!(
            "{} training images from {} in batches of {}, seed {}",
            batches * a.batch_size,
            dir.display(),
            a.batch_size,
            a.seed
        ),
    );
    write_atomic(&a.out, &sd.to_safetensors(StoreDtype::F32)?)?;
    println!(
        "wrote {} ({} BatchNorm layers re-estimated on {} images)",
        a.out.display(),
        stats.num_layers(),
        batches * a.batch_size
    );
    Ok(())
}

fn info(root: Option<&Path>) -> Result<()> {
    let r = data::data_root(root)?;
    println!("data root: {}", r.display());
    for sub in [
        "cifar10/train",
        "cifar10/test",
        "imagenet-samples",
        "photos",
        "labels",
        "weights",
    ] {
        let p = r.join(sub);
        let n = std::fs::read_dir(&p).map(|d| d.count()).unwrap_or(0);
        println!(
            "  {:<18} {}",
            sub,
            if p.exists() {
                format!("{n} entries")
            } else {
                "missing".into()
            }
        );
    }
    for (path, status) in crate::fetch::verify_root(&r) {
        println!("  {}: {status}", path.display());
    }
    Ok(())
}

fn split(a: SplitArgs, root: Option<&Path>) -> Result<()> {
    let (dataset, name, classes, rule) = match a.set {
        SplitSet::Cifar10 => (
            Dataset::Cifar10,
            "cifar10-test",
            10,
            crate::split::Rule::PerClass,
        ),
        SplitSet::Imagenet => (
            Dataset::ImageNet,
            "imagenet-samples",
            1000,
            crate::split::Rule::Pooled,
        ),
    };
    let dir = match a.data {
        Some(d) => d,
        None => data::default_dir(root, dataset, data::Split::Test)?,
    };
    let samples = data::samples(dataset, &dir)?;
    let file = crate::split::generate(name, &samples, classes, rule)?;
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from(format!("splits/{name}.json")));
    crate::split::write(&out, &file)?;
    let per_class = if classes <= 10 {
        format!(
            " ({} per class and half)",
            file.per_class
                .iter()
                .map(|[s, r]| format!("{s}/{r}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    } else {
        String::new()
    };
    println!(
        "{}: {} selection + {} report images of {}{per_class}",
        out.display(),
        file.selection.len(),
        file.report.len(),
        dir.display(),
    );
    Ok(())
}

fn fetch(a: FetchArgs, root: Option<&Path>) -> Result<()> {
    crate::fetch::fetch(a.dest, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let e = device(DeviceArg::Cuda).unwrap_err().to_string();
        assert!(
            e.contains("--device cuda") && e.contains("--features cuda"),
            "{e}"
        );
    }

    #[test]
    fn the_cpu_device_is_always_there() {
        assert!(device(DeviceArg::Cpu).is_ok());
    }
}
