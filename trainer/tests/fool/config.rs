//! Config resolution: malformed files name the field; flags, files and resolved configs agree.

use foolmap_trainer::fool::{FoolArgs, FoolSettings, resolve};

#[test]
fn malformed_configs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("lamda = 2.0\n", "unknown field `lamda`"),
        (
            "distill = 1\n",
            "field `distill`: invalid type: integer `1`, expected a boolean (line 1, column 11)",
        ),
        (
            "lr = \"fast\"\n",
            "field `lr`: invalid type: string \"fast\"",
        ),
        (
            "fooling = \"frame\"\n",
            "field `fooling`: unknown fooling type",
        ),
        ("interpreter = \"lrp\"\n", "cannot be fooled"),
        ("steps = [1\n", "TOML parse error"),
        ("c1 = 12\n", "field `c1`"),
        (
            "schedule = [\"800:2\"]\n",
            "field `schedule[0]`: `800:2`: expected STEP:LAMBDA:LR[:BATCH]",
        ),
        ("schedule = 3\n", "field `schedule`"),
        (
            "schedule = [\"800:2:1e-5\", \"500:1:1e-5\"]\n",
            "phase `500:1:0.00001`: phases must start at increasing steps",
        ),
        ("schedule = [\"800:-1:1e-5\"]\n", "lambda"),
        (
            "schedule = [\"800:1:0\"]\n",
            "learning rate must be a positive number",
        ),
        (
            "schedule = [\"800:1:1e-5:0\"]\n",
            "phase `800:1:0.00001:0`: the batch size must be ≥ 1",
        ),
        ("schedule = [\"800:1:1e-5:32:9\"]\n", "field `schedule[0]`"),
        ("max_drop = -0.5\n", "field `max_drop`"),
        ("val_every = 10\nval_images = 0\n", "`val_images` ≥ 1"),
        (
            "train_only = \"linear\"\n",
            "field `train_only`: invalid type: string \"linear\", expected a sequence",
        ),
    ] {
        let f = tmp.path().join("run.toml");
        std::fs::write(&f, text).unwrap();
        let e = resolve(&FoolArgs {
            config: Some(f),
            ..FoolArgs::default()
        })
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
    // Flags override the file and defaults follow spec §6 where the paper has them.
    let c = resolve(&FoolArgs {
        settings: FoolSettings {
            arch: Some("resnet50".parse().unwrap()),
            interpreter: Some("grad_cam".parse().unwrap()),
            fooling: Some("topk".parse().unwrap()),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    })
    .unwrap();
    assert_eq!((c.lr, c.lambda), (3e-6, 6.0));
}

#[test]
fn flags_and_config_files_parse_into_the_same_typed_layer() {
    use clap::Parser;
    use foolmap::fooling::FoolingType;
    use foolmap::{Architecture, Interpreter};
    use foolmap_trainer::{Cli, Command};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.display().to_string();
    let cli = Cli::try_parse_from([
        "foolmap",
        "fool",
        "--arch",
        "resnet56",
        "--fooling",
        "topk",
        "--interpreter",
        "grad_cam",
        "--then",
        "800:2:5e-5",
        "--then",
        "900:1:1e-5:16",
        "--distill",
        "--train-only",
        "layer3.2,linear",
        "--steps",
        "1000",
        "--out",
        &out_s,
    ])
    .unwrap();
    let Command::Fool(a) = cli.command else {
        panic!("not the fool command")
    };
    let s = &a.settings;
    assert_eq!(
        (s.arch, s.fooling, s.interpreter, s.distill),
        (
            Some(Architecture::ResNet56),
            Some(FoolingType::TopK),
            Some(Interpreter::GradCam),
            Some(true)
        )
    );
    assert_eq!(
        s.train_only.as_deref(),
        Some(&["layer3.2".to_string(), "linear".to_string()][..])
    );
    let f = tmp.path().join("run.toml");
    std::fs::write(
        &f,
        format!(
            "arch = \"resnet56\"\nfooling = \"topk\"\ninterpreter = \"grad_cam\"\n\
             schedule = [\"800:2:5e-5\", \"900:1:1e-5:16\"]\ndistill = true\n\
             train_only = [\"layer3.2\", \"linear\"]\nsteps = 1000\nout = {:?}\n",
            out_s
        ),
    )
    .unwrap();
    let from_file = resolve(&FoolArgs {
        config: Some(f),
        ..FoolArgs::default()
    })
    .unwrap();
    assert_eq!(from_file, resolve(&a).unwrap());
    assert_eq!(from_file.schedule[1].batch_size, Some(16));
    // A bad flag value is refused by the parser, naming the flag and the registry's choices.
    for (argv, needles) in [
        (
            &["foolmap", "fool", "--fooling", "frame"][..],
            &["--fooling", "unknown fooling type"][..],
        ),
        (
            &["foolmap", "fool", "--then", "800:2"],
            &["--then", "expected STEP:LAMBDA:LR[:BATCH]"],
        ),
        (&["foolmap", "fool", "--distill", "maybe"], &["--distill"]),
    ] {
        let e = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(needles.iter().all(|n| e.contains(n)), "{argv:?}: {e}");
    }
}

#[test]
fn a_resolved_config_written_as_toml_resolves_to_itself() {
    // Every field of the resolved config is a field of the settings layer (which refuses unknown
    // fields), with the same meaning: resolving the written file gives the same config back.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = resolve(&FoolArgs {
        settings: FoolSettings {
            arch: Some("squeezenet1_0".parse().unwrap()),
            weights: Some(tmp.path().join("w.safetensors")),
            original: Some(tmp.path().join("o.safetensors")),
            val_data: Some(tmp.path().join("val")),
            schedule: Some(vec!["5:1:1e-5:4".parse().unwrap()]),
            train_only: Some(vec!["classifier".into()]),
            distill: Some(true),
            keep_every: Some(3),
            val_every: Some(2),
            ..FoolSettings::default()
        },
        ..FoolArgs::default()
    })
    .unwrap();
    let f = tmp.path().join("resolved.toml");
    std::fs::write(&f, toml::to_string(&cfg).unwrap()).unwrap();
    let back = resolve(&FoolArgs {
        config: Some(f),
        ..FoolArgs::default()
    })
    .unwrap();
    assert_eq!(back, cfg);
}
