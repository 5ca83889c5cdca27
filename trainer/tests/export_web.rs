//! `foolmap export-web`: the manifest, weights and gallery the web app loads, and the errors for
//! files that are not fooled runs.

use std::path::{Path, PathBuf};

use foolmap::state::StoreDtype;
use foolmap::{Architecture, StateDict};
use foolmap_trainer::export_web::{ExportWebArgs, run as export};
use foolmap_trainer::fool::{FoolArgs, FoolSettings, run as fool};

fn data_root() -> PathBuf {
    std::env::var("FOOLMAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data")
}

fn short_run(out: &Path) {
    let a = FoolArgs {
        quiet: true,
        settings: FoolSettings {
            arch: Some("resnet20".parse().unwrap()),
            fooling: Some("location".parse().unwrap()),
            interpreter: Some("grad_cam".parse().unwrap()),
            steps: Some(2),
            batch_size: Some(4),
            checkpoint_every: Some(2),
            lr: Some(1e-4),
            lambda: Some(3.0),
            out: Some(out.to_path_buf()),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    };
    fool(
        &a,
        Some(&data_root()),
        &foolmap::burn::tensor::Device::flex(),
    )
    .expect("fool");
}

fn args(fooled: Vec<PathBuf>, out: &Path) -> ExportWebArgs {
    ExportWebArgs {
        fooled,
        original: None,
        out: out.to_path_buf(),
        gallery_per_class: 1,
        f32: false,
        site: None,
    }
}

#[test]
fn export_writes_manifest_weights_and_gallery() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    short_run(&run);
    std::fs::write(
        run.join("eval.json"),
        // What `foolmap eval --json` writes (a typed EvalReport; a hand-written subset is refused).
        r#"{"arch": "resnet20", "fooling": "location", "data": "test", "split": "all", "n": 10,
            "threshold": 0.15, "direction": "lower",
            "original": {"weights": "o", "top1": 0.9, "top5": 1.0},
            "fooled": {"weights": "f", "top1": 0.8, "top5": 1.0},
            "interpreters": {"grad_cam": {"n": 10, "fsr": 0.5, "fsr_original": 0.0, "mean_statistic": 0.2,
                "mean_statistic_original": 0.3, "threshold": 0.15, "cdf": []}}}"#,
    )
    .unwrap();
    let dist = tmp.path().join("dist");
    let path = export(&args(vec![run.clone()], &dist), Some(&data_root())).expect("export");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // The page reads it with the same type.
    let typed = foolmap::manifest::Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(typed.fooled().count(), 1);
    assert_eq!(
        typed.fooled().next().and_then(|f| f.interpreter),
        Some(foolmap::Interpreter::GradCam)
    );
    assert_eq!(m["arch"], "resnet20");
    assert_eq!(m["tap"], "layer3.2");
    assert_eq!(m["input_size"], 32);
    assert_eq!(m["classes"].as_array().unwrap().len(), 10);
    let models = m["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["role"], "original");
    let f = &models[1];
    assert_eq!(f["role"], "fooled");
    assert_eq!(f["fooling"], "location");
    assert_eq!(f["interpreter"], "grad_cam");
    assert_eq!(f["lambda"], 3.0);
    assert_eq!(f["steps"], 2);
    assert_eq!(f["eval"]["interpreters"]["grad_cam"]["fsr"], 0.5);
    // f16 weights that load back into the architecture and equal the run's weights to f16 precision.
    let w = dist.join(f["file"].as_str().unwrap());
    let sd = StateDict::from_safetensors(&std::fs::read(&w).unwrap(), "web").unwrap();
    let full = StateDict::from_safetensors(
        &std::fs::read(run.join("final.safetensors")).unwrap(),
        "run",
    )
    .unwrap();
    let key = "layer3.2.conv2.weight";
    let (a, b) = (&sd.tensors[key], &full.tensors[key]);
    assert_eq!(a.shape, b.shape);
    let err = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
        .fold(0f32, f32::max);
    assert!(err < 2e-3, "f16 relative error {err}");
    assert_eq!(
        sd.to_safetensors(StoreDtype::F16).unwrap().len() as u64,
        f["bytes"].as_u64().unwrap()
    );
    foolmap_trainer::io::weights::load(
        Architecture::ResNet20,
        &w,
        &foolmap::burn::tensor::Device::flex(),
    )
    .expect("exported weights load");
    // The manifest is published: no local paths in it.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(tmp.path().to_str().unwrap()) && !text.contains("shared/data"),
        "local paths in the manifest"
    );
    // Ids from weight metadata never reach a file name unparsed.
    let mut sd_evil = full.clone();
    let cfg = sd_evil.metadata["config"].replace("\"location\"", "\"../../evil\"");
    sd_evil.metadata.insert("config".into(), cfg);
    let evil = tmp.path().join("evil.safetensors");
    std::fs::write(&evil, sd_evil.to_safetensors(StoreDtype::F32).unwrap()).unwrap();
    let e = format!(
        "{:#}",
        export(
            &args(vec![evil], &tmp.path().join("dist2")),
            Some(&data_root())
        )
        .unwrap_err()
    );
    assert!(
        e.contains("evil.safetensors") && e.contains("fooling"),
        "{e}"
    );
    assert!(!tmp.path().join("evil").exists());
    // One gallery image per class, decodable, with its label.
    let g = m["gallery"].as_array().unwrap();
    assert_eq!(g.len(), 10);
    for e in g {
        let bytes = std::fs::read(dist.join(e["file"].as_str().unwrap())).unwrap();
        let img = foolmap::image::decode(&bytes, "g").unwrap();
        assert_eq!((img.width, img.height), (32, 32));
        assert!(e["label"].as_u64().unwrap() < 10);
    }
}

#[test]
fn files_that_are_not_fooled_runs_are_refused_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    // A pretrained checkpoint is not a fooled run (no `config` metadata).
    let plain = data_root().join("weights/resnet20_cifar10.safetensors");
    let e = export(&args(vec![plain], &dist), Some(&data_root()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("resnet20_cifar10.safetensors") && e.contains("foolmap fool"),
        "{e}"
    );
    // A missing path, and a folder without final weights.
    let e = export(
        &args(vec![tmp.path().join("nothing")], &dist),
        Some(&data_root()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nothing") && e.contains("no such file"), "{e}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = export(&args(vec![empty], &dist), Some(&data_root()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("final.safetensors"), "{e}");
    // A malformed eval.json beside the weights.
    let run = tmp.path().join("run");
    short_run(&run);
    std::fs::write(run.join("eval.json"), "{ not json").unwrap();
    let e = format!(
        "{:#}",
        export(&args(vec![run.clone()], &dist), Some(&data_root())).unwrap_err()
    );
    assert!(e.contains("eval.json"), "{e}");
    // A well-formed one of the wrong shape: the field is named.
    std::fs::write(
        run.join("eval.json"),
        r#"{"arch": "resnet20", "fooling": 3}"#,
    )
    .unwrap();
    let e = format!(
        "{:#}",
        export(&args(vec![run], &dist), Some(&data_root())).unwrap_err()
    );
    assert!(e.contains("eval.json: field `fooling`"), "{e}");
}

#[test]
fn a_site_folder_holds_the_app_the_models_and_the_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    short_run(&run);
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("index.html"),
        "<html><head></head><body><script type=\"module\">import init from './app.js';</script></body></html>",
    )
    .unwrap();
    std::fs::write(app.join("app.js"), "export default 1;").unwrap();
    std::fs::write(app.join("notes.txt"), "not part of the app").unwrap();
    let site = tmp.path().join("site");
    let mut a = args(vec![run], &app);
    a.site = Some(site.clone());
    export(&a, Some(&data_root())).unwrap();
    assert!(site.join("app.js").is_file() && site.join("models/manifest.json").is_file());
    assert!(!site.join("notes.txt").exists());
    let html = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(
        html.contains("http-equiv=\"Content-Security-Policy\""),
        "{html}"
    );
    assert!(html.contains("'sha256-"));
    let manifest = std::fs::read_to_string(site.join("models/manifest.json")).unwrap();
    assert!(!manifest.contains(tmp.path().to_str().unwrap()));
    // Without a built app, --site says what to do.
    let mut b = args(vec![tmp.path().join("run")], &tmp.path().join("nothing"));
    b.site = Some(tmp.path().join("site2"));
    let e = format!("{:#}", export(&b, Some(&data_root())).unwrap_err());
    assert!(e.contains("foolmap web-build"), "{e}");
}

fn released(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(file)
}

#[test]
fn a_cifar_and_an_imagenet_model_make_a_gallery_set_and_a_photo_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    // The photo model first: the CIFAR-10 set still becomes the gallery's.
    let fooled = vec![
        released("squeezenet1_0-location-lrp_t.safetensors"),
        released("resnet20-location-grad_cam.safetensors"),
    ];
    let path = export(&args(fooled.clone(), &dist), Some(&data_root())).expect("export");
    let m = foolmap::manifest::Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(m.arch, Architecture::ResNet20);
    assert_eq!(m.fooled().count(), 1);
    let p = m.photo.as_ref().expect("a photo set");
    assert_eq!(p.arch, Architecture::SqueezeNet1_0);
    assert_eq!((p.dataset.as_str(), p.input_size), ("imagenet", 224));
    assert_eq!(p.classes.len(), 1000);
    assert_eq!(m.upload_set(), foolmap::manifest::SetKind::Photo);
    let sq = m
        .fooled_of(foolmap::manifest::SetKind::Photo)
        .next()
        .unwrap();
    assert_eq!(sq.interpreter, Some(foolmap::Interpreter::LrpT));
    // The released card's figures travel with it (report half; it misses the target).
    let e = sq.eval.as_ref().expect("card figures");
    assert_eq!(e.meets_target, Some(false));
    assert_eq!(e.split, Some(foolmap::split::Subset::Report));
    // Both originals are written and load into their architectures; the demo photos are copied.
    for set in [
        foolmap::manifest::SetKind::Gallery,
        foolmap::manifest::SetKind::Photo,
    ] {
        let o = m.original_of(set).unwrap();
        foolmap_trainer::io::weights::load(
            o.arch,
            &dist.join(&o.file),
            &foolmap::burn::tensor::Device::flex(),
        )
        .expect("original loads");
    }
    assert!(!p.gallery.is_empty());
    for g in &p.gallery {
        assert!(dist.join(&g.file).is_file(), "{}", g.file);
        // Each photo has a 96 × 96 JPEG preview, a small fraction of the photo's bytes, showing
        // the photo's centre (its mean colour is the centre square's, within JPEG's error).
        let thumb = dist.join(g.thumb.as_ref().expect("a photo has a preview"));
        let tb = std::fs::read(&thumb).unwrap();
        let photo = std::fs::read(dist.join(&g.file)).unwrap();
        assert!(tb.starts_with(&[0xFF, 0xD8]), "{}: a JPEG", thumb.display());
        assert!(
            tb.len() * 10 < photo.len(),
            "{}: {} bytes",
            thumb.display(),
            tb.len()
        );
        let t = image::load_from_memory(&tb).unwrap().to_rgb8();
        assert_eq!(t.dimensions(), (96, 96));
        let full = image::load_from_memory(&photo).unwrap().to_rgb8();
        let side = full.width().min(full.height());
        let (x0, y0) = ((full.width() - side) / 2, (full.height() - side) / 2);
        let mean = |px: &mut dyn Iterator<Item = [u8; 3]>| {
            let (mut s, mut n) = ([0f64; 3], 0f64);
            for p in px {
                for c in 0..3 {
                    s[c] += p[c] as f64;
                }
                n += 1.0;
            }
            s.map(|v| v / n)
        };
        let mt = mean(&mut t.pixels().map(|p| p.0));
        let mf = mean(
            &mut (y0..y0 + side)
                .flat_map(|y| (x0..x0 + side).map(move |x| (x, y)))
                .map(|(x, y)| full.get_pixel(x, y).0),
        );
        for c in 0..3 {
            assert!(
                (mt[c] - mf[c]).abs() < 4.0,
                "{}: channel {c}: {mt:?} vs {mf:?}",
                g.file
            );
        }
    }
    // The CIFAR-10 images are their own previews.
    assert!(m.gallery.iter().all(|g| g.thumb.is_none()));
    // `--original` cannot say which set it is for.
    let mut a = args(fooled, &tmp.path().join("dist2"));
    a.original = Some(data_root().join("weights/resnet20_cifar10.safetensors"));
    let e = format!("{:#}", export(&a, Some(&data_root())).unwrap_err());
    assert!(
        e.contains("--original") && e.contains("two architectures"),
        "{e}"
    );
}

#[test]
fn two_models_sets_of_one_dataset_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = released("resnet20-location-grad_cam.safetensors");
    let mut sd = StateDict::from_safetensors(&std::fs::read(&src).unwrap(), "r").unwrap();
    let cfg = sd.metadata["config"].replace("\"resnet20\"", "\"resnet32\"");
    sd.metadata.insert("config".into(), cfg);
    let other = tmp.path().join("other.safetensors");
    std::fs::write(&other, sd.to_safetensors(StoreDtype::F32).unwrap()).unwrap();
    let e = format!(
        "{:#}",
        export(
            &args(vec![src, other], &tmp.path().join("dist")),
            Some(&data_root())
        )
        .unwrap_err()
    );
    assert!(
        e.contains("resnet20")
            && e.contains("resnet32")
            && e.contains("one architecture per dataset"),
        "{e}"
    );
}
