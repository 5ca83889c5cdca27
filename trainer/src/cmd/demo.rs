//! `foolmap demo`, the README's main job on the embedded default: data, predictions, ResNet-20
//! fooled with Location on LRP and Grad-CAM (every fooling type with `--all-types`), evaluation
//! with reports, export for the web app, the app's build, and a local server. Every stage reuses
//! what an earlier run left (finished runs, checkpoints, evaluations).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::burn::tensor::Device;
use foolmap::fooling::FoolingType;
use foolmap::{Architecture, Interpreter};

use crate::commands::{AccuracyArgs, PredictArgs};
use crate::data;
use crate::eval::EvalArgs;
use crate::fool::{FoolArgs, write_atomic};

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
    /// Folder of the built web app (trunk's `dist`).
    #[arg(long, default_value = "target/dist")]
    pub dist: PathBuf,
    /// Port of the local server on 127.0.0.1 (0: build, then exit without serving).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Skip the web app (no trunk build, no export, no server).
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
/// ResNet-20 model with `all_types`), in index order. Empty when the folder has none.
pub fn released(models: &Path, all_types: bool) -> Result<Vec<PathBuf>> {
    let index_path = models.join("index.json");
    if !index_path.is_file() {
        return Ok(Vec::new());
    }
    let index: crate::card::Index = serde_json::from_slice(
        &std::fs::read(&index_path)
            .with_context(|| format!("cannot read {}", index_path.display()))?,
    )
    .with_context(|| format!("{}: not a release index", index_path.display()))?;
    Ok(index
        .models
        .iter()
        .filter(|m| m.arch == Architecture::ResNet20 && m.fooling != FoolingType::Active)
        .filter(|m| {
            all_types
                || (m.fooling == FoolingType::Location
                    && matches!(m.interpreter, Interpreter::LrpT | Interpreter::GradCam))
        })
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
fn plan(all_types: bool) -> Vec<(&'static str, Interpreter, f64)> {
    let mut v = vec![
        ("location", Interpreter::LrpT, 10.0),
        ("location", Interpreter::GradCam, 10.0),
    ];
    if all_types {
        v.push(("topk", Interpreter::GradCam, 10.0));
        v.push(("center-mass", Interpreter::GradCam, 1.0));
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
            crate::fetch::fetch(Some(PathBuf::from("data")), None)?;
            PathBuf::from("data")
        }
    };
    println!("data root: {}", root_dir.display());
    let root_arg = Some(root_dir.as_path());
    let photos: Vec<PathBuf> = ["pets.jpg", "cat.png", "coffee.png", "parrot.jpg"]
        .iter()
        .map(|f| root_dir.join("photos").join(f))
        .filter(|p| p.is_file())
        .collect();
    if !photos.is_empty() {
        println!("SqueezeNet 1.0 on the demo photos:");
        crate::commands::predict(
            PredictArgs {
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
    let limit = if a.full { None } else { Some(1000) };
    println!(
        "ResNet-20 on the CIFAR-10 test set ({}):",
        limit.map_or("all 10,000 images".into(), |n| format!("first {n} images"))
    );
    crate::commands::accuracy(
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
        for f in &shipped {
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
    let mut runs = Vec::new();
    for (fooling, interp, lambda) in plan(a.all_types) {
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
                arch: Some("resnet20".into()),
                fooling: Some(fooling.into()),
                interpreter: Some(interp.id().into()),
                lambda: Some(lambda),
                lr: Some(1e-4),
                batch_size: Some(32),
                steps: Some(a.steps),
                checkpoint_every: Some(50),
                out: Some(dir.clone()),
                resume,
                // A run of another length is kept aside (`<dir>.old-N`), never overwritten.
                force: !resume,
                ..FoolArgs::default()
            };
            crate::fool::run(&fa, root_arg, device)?;
        }
        runs.push(dir);
    }

    stage(3, stages, "evaluation and reports", t0);
    for dir in &runs {
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
                split: crate::split::SplitArg::All,
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
    web_stages(&a, runs, root_arg, stages, t0)
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

    stage(4, stages, "building the web app (trunk)", t0);
    build_web()?;
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
    stage(6, stages, "serving", t0);
    println!(
        "main job finished in {:.0} s (before serving)",
        t0.elapsed().as_secs_f64()
    );
    if a.port == 0 {
        println!(
            "built {} (serve it with any static file server)",
            a.dist.display()
        );
        return Ok(());
    }
    serve(&a.dist, a.port)
}

/// Whether the run in `dir` was configured for `steps` steps.
fn same_steps(dir: &Path, steps: u64) -> bool {
    crate::fool::RunConfigFile::read(dir).is_ok_and(|c| c.config.steps == steps)
}

/// Builds the web app with trunk (installing trunk and wasm-bindgen-cli into `target/tools` the
/// first time, through `scripts/web-tools.sh`).
fn build_web() -> Result<()> {
    if !Path::new("Trunk.toml").is_file() {
        bail!(
            "no Trunk.toml in {}: run the demo from the repository root (or pass --no-web)",
            std::env::current_dir()?.display()
        );
    }
    let tools = std::env::current_dir()?.join("target/tools/bin");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let have = std::process::Command::new("trunk")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!(
            "trunk is not installed: installing trunk and wasm-bindgen-cli into target/tools (once; ~15 min on 2 cores)"
        );
        let ok = std::process::Command::new("bash")
            .arg("scripts/web-tools.sh")
            .status()
            .context("cannot run scripts/web-tools.sh")?
            .success();
        if !ok {
            bail!(
                "installing the web tools failed (see above); rerun with --no-web to skip the web app"
            );
        }
    }
    let ok = std::process::Command::new("trunk")
        .args(["build", "--release", "--offline"])
        .env("PATH", &path)
        .status()
        .context("cannot run trunk")?
        .success();
    if !ok {
        bail!("`trunk build --release --offline` failed (see above)");
    }
    // No `wasm-opt` here: the page is served from this machine, where the worker's size costs
    // nothing, and `scripts/wasm-opt.sh` takes ~5 minutes on 2 cores. Publishing runs it (README).
    Ok(())
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Longest request line or header line the server reads (bytes).
const MAX_LINE: usize = 8 * 1024;
/// Most header lines per request.
const MAX_HEADERS: usize = 100;
/// Most connections served at once; more are answered 503 at once.
const MAX_CONNECTIONS: usize = 32;

/// Reads one line of at most [`MAX_LINE`] bytes (`None`: too long, or the connection ended).
fn read_line<R: BufRead>(r: &mut R) -> Option<String> {
    let mut buf = Vec::new();
    let mut limited = <&mut R as std::io::Read>::take(r, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', &mut buf).ok()?;
    if n == 0 || n > MAX_LINE {
        return None;
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn status(s: &mut TcpStream, code: &str) -> Result<()> {
    write!(
        s,
        "HTTP/1.1 {code}\r\nContent-Length: 0\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    )?;
    Ok(())
}

fn respond(mut s: TcpStream, root: &Path, csp: &str) -> Result<()> {
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.set_write_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let Some(line) = read_line(&mut r) else {
        return status(&mut s, "400 Bad Request");
    };
    // Headers are read (bounded) and ignored.
    let mut headers = 0;
    loop {
        match read_line(&mut r) {
            Some(h) if h.trim().is_empty() => break,
            Some(_) if headers < MAX_HEADERS => headers += 1,
            _ => return status(&mut s, "431 Request Header Fields Too Large"),
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return status(&mut s, "405 Method Not Allowed");
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let rel = if path == "/" {
        "index.html"
    } else {
        path.trim_start_matches('/')
    };
    let file = root.join(rel);
    let safe = !rel
        .split('/')
        .any(|c| c == ".." || c.is_empty() || c.starts_with('.'));
    match (safe, std::fs::read(&file)) {
        (true, Ok(body)) => {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                 X-Content-Type-Options: nosniff\r\nContent-Security-Policy: {csp}\r\n\
                 Connection: close\r\n\r\n",
                mime(&file),
                body.len()
            )?;
            if method == "GET" {
                s.write_all(&body)?;
            }
        }
        _ => status(&mut s, "404 Not Found")?,
    }
    Ok(())
}

/// Serves `root` on 127.0.0.1:`port` until interrupted: at most [`MAX_CONNECTIONS`] at once,
/// each with read and write timeouts and bounded request and header lines.
pub fn serve(root: &Path, port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (busy? pass --port N)"))?;
    println!(
        "open http://127.0.0.1:{}/   (serving {}; Ctrl-C to stop)",
        listener.local_addr()?.port(),
        root.display()
    );
    serve_on(listener, root)
}

/// [`serve`] on a bound listener.
pub fn serve_on(listener: TcpListener, root: &Path) -> Result<()> {
    let live = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let csp: std::sync::Arc<str> =
        crate::site::csp_for(&std::fs::read_to_string(root.join("index.html")).unwrap_or_default())
            .into();
    for mut stream in listener.incoming().flatten() {
        use std::sync::atomic::Ordering;
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            live.fetch_sub(1, Ordering::SeqCst);
            let _ = status(&mut stream, "503 Service Unavailable");
            continue;
        }
        let root = root.to_path_buf();
        let live = live.clone();
        let csp = csp.clone();
        std::thread::spawn(move || {
            let _ = respond(stream, &root, &csp);
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}
