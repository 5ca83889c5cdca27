//! `foolmap demo`, the README's main job on the embedded default: data, predictions, ResNet-20
//! fooled with Location on LRP and Grad-CAM (every fooling type with `--all-types`), evaluation
//! with reports, export for the web app, the web app's build, and a local server. Every stage reuses
//! what an earlier run left (finished runs, checkpoints, evaluations).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::fooling::FoolingType;
use foolmap::{Architecture, Interpreter};

use crate::cmd::accuracy::{self, AccuracyArgs};
use crate::cmd::predict::{self, PredictArgs};
use crate::eval::EvalArgs;
use crate::fool::{FoolArgs, FoolSettings};
use crate::io::atomic::write_atomic;
use crate::io::data;

/// `foolmap demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Evaluate on all 10,000 CIFAR-10 test images (default: the first 1,000).
    #[arg(long)]
    pub full: bool,
    /// Fooling steps per run (batch 32).
    #[arg(long, default_value_t = 300)]
    pub steps: u64,
    /// Also fool Top-k and Center-mass (Grad-CAM), not only Location.
    #[arg(long)]
    pub all_types: bool,
    /// Folder of the fooling runs and reports.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Folder of the built web app (`foolmap web-build`'s output), served by the local server.
    #[arg(long, default_value = "target/dist")]
    pub dist: PathBuf,
    /// Port of the local server on 127.0.0.1 (0: build, then exit without serving).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Skip the web app (no web build, no export, no server).
    #[arg(long)]
    pub no_web: bool,
    /// Train the fooled models here (minutes per model) instead of using the released ones
    /// under `--models`.
    #[arg(long)]
    pub train: bool,
    /// Folder of the released models (`index.json`, a card per model).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
}

/// The released models the demo shows: ResNet-20 Location on LRP and Grad-CAM (every released
/// passive ResNet-20 model with `all_types`) for the gallery, and the released photo-scale
/// (ImageNet) Location models for a user's own photos, in index order. Empty when the folder
/// has none.
pub fn released(models: &Path, all_types: bool) -> Result<Vec<PathBuf>> {
    released_where(models, |m| match m.arch {
        Architecture::ResNet20 => {
            all_types
                || (m.fooling == FoolingType::Location
                    && matches!(m.interpreter, Interpreter::LrpT | Interpreter::GradCam))
        }
        _ => is_photo_model(m),
    })
}

/// The released photo-scale (ImageNet SqueezeNet 1.0) Location models alone: with `--train`
/// they join the models trained here, for a user's own photos.
pub fn released_photo(models: &Path) -> Result<Vec<PathBuf>> {
    released_where(models, is_photo_model)
}

fn is_photo_model(m: &crate::card::IndexEntry) -> bool {
    m.arch == Architecture::SqueezeNet1_0 && m.fooling == FoolingType::Location
}

/// The released passive models of `models/index.json` that `keep` accepts, in index order.
fn released_where(
    models: &Path,
    keep: impl Fn(&crate::card::IndexEntry) -> bool,
) -> Result<Vec<PathBuf>> {
    let index_path = models.join("index.json");
    if !index_path.is_file() {
        return Ok(Vec::new());
    }
    let index: crate::card::Index = crate::io::json::read(&index_path)?;
    Ok(index
        .models
        .iter()
        .filter(|m| m.fooling != FoolingType::Active && keep(m))
        .map(|m| models.join(&m.file))
        .collect())
}

fn stage(n: usize, of: usize, what: &str, t0: Instant) {
    println!(
        "\n== [{n}/{of}] {what}   (elapsed {:.0} s)",
        t0.elapsed().as_secs_f64()
    );
}

/// The fooling runs of the demo: (fooling type, interpreter, λ).
fn plan(all_types: bool) -> Vec<(FoolingType, Interpreter, f64)> {
    let mut v = vec![
        (FoolingType::Location, Interpreter::LrpT, 10.0),
        (FoolingType::Location, Interpreter::GradCam, 10.0),
    ];
    if all_types {
        v.push((FoolingType::TopK, Interpreter::GradCam, 10.0));
        v.push((FoolingType::CenterMass, Interpreter::GradCam, 1.0));
    }
    v
}

/// Runs the demo.
pub fn run(a: DemoArgs, root: Option<&Path>, device: &Device) -> Result<()> {
    let t0 = Instant::now();
    let stages = if a.no_web { 4 } else { 6 };
    stage(1, stages, "data", t0);
    let root_dir = match data::data_root(root) {
        Ok(r) => r,
        Err(_) => {
            println!("no data root found: fetching the data into ./data");
            crate::io::fetch::fetch(Some(PathBuf::from("data")), None)?;
            PathBuf::from("data")
        }
    };
    println!("data root: {}", root_dir.display());
    let root_arg = Some(root_dir.as_path());
    let limit = if a.full { None } else { Some(1000) };
    first_look(&root_dir, limit, device)?;
    let shipped = if a.train {
        Vec::new()
    } else {
        released(&a.models, a.all_types)?
    };
    if !shipped.is_empty() {
        stage(
            2,
            stages,
            "released fooled models (no training; `--train` trains here)",
            t0,
        );
        show_released(&shipped)?;
        stage(
            3,
            stages,
            "evaluation: the cards' report-half figures (above)",
            t0,
        );
        return web_stages(&a, shipped, root_arg, stages, t0);
    }
    if !a.train {
        println!(
            "no released models in {}: training them here",
            a.models.join("index.json").display()
        );
    }
    stage(
        2,
        stages,
        "fooling ResNet-20 (CE + λ·L_F, Adam lr 1e-4, batch 32)",
        t0,
    );
    let mut runs = train_here(&a, root_arg, device)?;
    stage(3, stages, "evaluation and reports", t0);
    evaluate(&runs, limit, root_arg, device)?;
    // The photo-scale models are not trained here: the released ones explain a user's photos.
    runs.extend(released_photo(&a.models)?);
    web_stages(&a, runs, root_arg, stages, t0)
}

/// The pretrained models at work: SqueezeNet 1.0 on the demo photos, ResNet-20's accuracy on
/// the CIFAR-10 test set (the first `limit` images).
fn first_look(root_dir: &Path, limit: Option<usize>, device: &Device) -> Result<()> {
    let root_arg = Some(root_dir);
    let photos: Vec<PathBuf> = ["pets.jpg", "cat.png", "coffee.png", "parrot.jpg"]
        .iter()
        .map(|f| root_dir.join("photos").join(f))
        .filter(|p| p.is_file())
        .collect();
    if !photos.is_empty() {
        println!("SqueezeNet 1.0 on the demo photos:");
        predict::run(
            &PredictArgs {
                arch: Architecture::SqueezeNet1_0,
                weights: None,
                top: 3,
                json: false,
                images: photos,
            },
            root_arg,
            device,
        )?;
    }
    println!(
        "ResNet-20 on the CIFAR-10 test set ({}):",
        limit.map_or("all 10,000 images".into(), |n| format!("first {n} images"))
    );
    accuracy::run(
        AccuracyArgs {
            arch: Architecture::ResNet20,
            weights: None,
            data: None,
            batch_size: 200,
            limit,
            json: false,
        },
        root_arg,
        device,
    )?;
    Ok(())
}

/// Prints each released model's card: its recipe and report-half figures, and whether it meets
/// the target.
fn show_released(shipped: &[PathBuf]) -> Result<()> {
    for f in shipped {
        let c = crate::card::read(&crate::card::card_path(f))?;
        crate::card::verify(f, &std::fs::read(f)?)?;
        println!(
            "{}: {} / {}, seed {}, step {}: on {} report-half test images top-1 {:.1} % → {:.1} %, {} ({})",
            f.display(),
            c.fooling,
            c.interpreter,
            c.seed,
            c.step,
            c.report.images,
            100.0 * c.report.top1_original,
            100.0 * c.report.top1,
            c.report.fsr.map_or_else(
                || format!(
                    "swap correlation {:.3}",
                    c.report.swap_correlation.unwrap_or(f64::NAN)
                ),
                |f| format!("FSR {:.1} %", 100.0 * f)
            ),
            if c.meets_target {
                "meets the target"
            } else {
                "misses the target: FSR ≥ 80 % within 2 points"
            }
        );
    }
    Ok(())
}

/// Trains the demo's fooled models under `--out` (reusing or resuming runs of the same length);
/// returns their run folders.
fn train_here(a: &DemoArgs, root_arg: Option<&Path>, device: &Device) -> Result<Vec<PathBuf>> {
    let mut runs = Vec::new();
    for (kind, interp, lambda) in plan(a.all_types) {
        let fooling = kind.id();
        let dir = a.out.join(format!("{fooling}-{interp}"));
        let done = dir.join("final.safetensors");
        if done.is_file() && same_steps(&dir, a.steps) {
            println!("{fooling} / {interp}: reusing {}", done.display());
        } else {
            let resume = dir.join("checkpoint.safetensors").is_file() && same_steps(&dir, a.steps);
            println!(
                "{fooling} / {interp}: {} {} steps → {}",
                if resume { "resuming" } else { "running" },
                a.steps,
                dir.display()
            );
            let fa = FoolArgs {
                settings: FoolSettings {
                    arch: Some(Architecture::ResNet20),
                    fooling: Some(kind),
                    interpreter: Some(interp),
                    lambda: Some(lambda),
                    lr: Some(1e-4),
                    batch_size: Some(32),
                    steps: Some(a.steps),
                    checkpoint_every: Some(50),
                    out: Some(dir.clone()),
                    ..FoolSettings::default()
                },
                resume,
                // A run of another length is kept aside (`<dir>.old-N`), never overwritten.
                force: !resume,
                ..FoolArgs::default()
            };
            crate::fool::run(&fa, root_arg, device)?;
        }
        runs.push(dir);
    }
    Ok(runs)
}

/// Evaluates each run (reusing an `eval.json` newer than its weights) and writes its report.
fn evaluate(
    runs: &[PathBuf],
    limit: Option<usize>,
    root_arg: Option<&Path>,
    device: &Device,
) -> Result<()> {
    for dir in runs {
        let eval_path = dir.join("eval.json");
        let fresh = std::fs::metadata(&eval_path)
            .and_then(|m| m.modified())
            .ok()
            .zip(
                std::fs::metadata(dir.join("final.safetensors"))
                    .and_then(|m| m.modified())
                    .ok(),
            )
            .is_some_and(|(e, w)| e >= w);
        // Reused when newer than the weights, of the same size, and of this version's shape.
        let cached = fresh
            .then(|| std::fs::read(&eval_path).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<crate::eval::EvalReport>(&b).ok())
            .filter(|r| r.n == limit.unwrap_or(10_000));
        let v = if let Some(v) = cached {
            println!("reusing {}", eval_path.display());
            v
        } else {
            let ea = EvalArgs {
                arch: None,
                original: None,
                fooled: dir.join("final.safetensors"),
                data: None,
                limit,
                split: crate::split::Subset::All,
                fooling: None,
                threshold: 0.15,
                interpreters: vec![
                    Interpreter::LrpT,
                    Interpreter::GradCam,
                    Interpreter::SimpleGradT,
                ],
                heavy_images: 0,
                aopc_images: 50,
                batch_size: 100,
                report: Some(dir.join("report")),
                grid_images: None,
                json: false,
                per_image: false,
            };
            let v = crate::eval::run(&ea, root_arg, device)?;
            write_atomic(&eval_path, serde_json::to_string_pretty(&v)?.as_bytes())?;
            v
        };
        crate::eval::print(&v);
        println!("report: {}", dir.join("report/report.md").display());
    }
    Ok(())
}

/// Stages 4–6: the web app's build, the export of `fooled` (run folders or released files), the
/// server.
fn web_stages(
    a: &DemoArgs,
    fooled: Vec<PathBuf>,
    root_arg: Option<&Path>,
    stages: usize,
    t0: Instant,
) -> Result<()> {
    if a.no_web {
        stage(4, stages, "done (--no-web)", t0);
        return Ok(());
    }

    stage(
        4,
        stages,
        "the web app: the page and the CPU-only worker (wasm build + wasm-opt)",
        t0,
    );
    crate::web_build::build_page(&a.dist, &mut crate::web_build::Log::Terminal)?;
    stage(
        5,
        stages,
        "exporting models and gallery for the web app",
        t0,
    );
    crate::export_web::run(
        &crate::export_web::ExportWebArgs {
            fooled,
            original: None,
            out: a.dist.clone(),
            gallery_per_class: 2,
            f32: false,
            site: None,
        },
        root_arg,
    )?;
    if a.port == 0 {
        stage(6, stages, "the WebGPU worker (wasm build + wasm-opt)", t0);
        crate::web_build::build_webgpu(&a.dist, &mut crate::web_build::Log::Terminal)?;
        println!(
            "main job finished in {:.0} s; built {} (serve it with any static file server)",
            t0.elapsed().as_secs_f64(),
            a.dist.display()
        );
        return Ok(());
    }
    stage(
        6,
        stages,
        "serving (the WebGPU worker builds beside the server)",
        t0,
    );
    println!(
        "main job finished in {:.0} s (before serving)",
        t0.elapsed().as_secs_f64()
    );
    // The longest wasm build goes on while the page is served: until it is done the page runs
    // on the CPU (and says why).
    let log = PathBuf::from("target/web-build-webgpu.log");
    println!(
        "building the WebGPU worker in the background (log: {}); the page uses the CPU until it is there",
        log.display()
    );
    let mut log = crate::web_build::Log::create(&log)?;
    let dist = a.dist.clone();
    std::thread::spawn(
        move || match crate::web_build::build_webgpu(&dist, &mut log) {
            Ok(()) => println!(
                "the WebGPU worker is built ({:.0} s after the start): reload the page to use it",
                t0.elapsed().as_secs_f64()
            ),
            Err(e) => println!("the WebGPU worker was not built: {e:#}; the page stays on the CPU"),
        },
    );
    crate::serve::serve(&a.dist, a.port)
}

/// Whether the run in `dir` was configured for `steps` steps.
fn same_steps(dir: &Path, steps: u64) -> bool {
    crate::fool::checkpoint::read_run_config(dir).is_ok_and(|c| c.config.steps == steps)
}
