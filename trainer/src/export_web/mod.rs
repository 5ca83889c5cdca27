//! `foolmap export-web`: the files the browser app loads from its own origin: compact weights of
//! an original model and its fooled variants, a manifest (architecture, classes, preprocessing,
//! tap, fooling type, interpreter, λ, and the `eval` figures when an `eval.json` sits beside the
//! fooled weights), and a gallery of demo images copied from the data root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use foolmap::state::StoreDtype;
use foolmap::{Architecture, Dataset, StateDict};

use foolmap::manifest::{Figures, Manifest, ModelEntry, PhotoSet, Role};

mod files;
use files::{copy_app, copy_gallery};

use crate::fool::checkpoint::RunMeta;
use crate::io::atomic::write_atomic;
use crate::io::weights::key;

/// Flags of `foolmap export-web`.
#[derive(Debug, Args)]
pub struct ExportWebArgs {
    /// Fooled models: released files (`models/<id>.safetensors`, whose card supplies the
    /// figures), run folders (holding `final.safetensors`, optionally `eval.json`) or safetensors
    /// files written by `foolmap fool`. One architecture per dataset: a CIFAR-10 set for the
    /// gallery and optionally an ImageNet set (e.g. SqueezeNet 1.0), which the page uses for a
    /// user's own photos.
    #[arg(long, value_delimiter = ',', required = true)]
    pub fooled: Vec<PathBuf>,
    /// Original weights (default: the data root's pretrained file of the fooled runs' arch).
    #[arg(long)]
    pub original: Option<PathBuf>,
    /// Output folder (the built web app's folder, e.g. `target/dist`).
    #[arg(long, default_value = "target/dist")]
    pub out: PathBuf,
    /// Write a self-contained static site into this folder instead: the built app of `--out`
    /// (`foolmap web-build`'s files) copied in, then the models, gallery and manifest; relative
    /// URLs only, a Content-Security-Policy in `index.html`, no local paths. Any static host
    /// serves it.
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// Gallery images per class (CIFAR-10 test images; ImageNet models get the demo photos).
    #[arg(long, default_value_t = 2)]
    pub gallery_per_class: usize,
    /// Store 32-bit floats instead of 16-bit.
    #[arg(long)]
    pub f32: bool,
}

/// A fooled run to export.
struct Run {
    weights: PathBuf,
    sd: StateDict,
    /// Its run's config and step.
    meta: RunMeta,
    /// The figures the page shows (from `eval.json` or the model's card).
    eval: Option<Figures>,
}

fn read_run(p: &Path) -> Result<Run> {
    if !p.exists() {
        bail!(
            "--fooled {}: no such file or folder (expected a `foolmap fool` run folder holding final.safetensors, or that file)",
            p.display()
        );
    }
    let weights = if p.is_dir() {
        p.join("final.safetensors")
    } else {
        p.to_path_buf()
    };
    let bytes = std::fs::read(&weights)
        .with_context(|| format!("cannot read fooled weights {}", weights.display()))?;
    let sd = StateDict::from_safetensors(&bytes, &weights.display().to_string())?;
    let meta = RunMeta::from_metadata(&sd.metadata, &weights.display().to_string())?;
    // A released model: the figures of its card (report half), checked against the file.
    let card_path = crate::card::card_path(&weights);
    if card_path.is_file() {
        let card = crate::card::read(&card_path)?;
        if card.file
            == weights
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        {
            crate::card::verify(&weights, &bytes)?;
            return Ok(Run {
                weights,
                sd,
                meta,
                eval: Some(Figures::from(&card)),
            });
        }
    }
    let eval_path = weights.with_file_name("eval.json");
    let eval = if eval_path.is_file() {
        let report: crate::eval::EvalReport = crate::io::json::read(&eval_path)?;
        Some(Figures::from(&report))
    } else {
        None
    };
    Ok(Run {
        weights,
        sd,
        meta,
        eval,
    })
}

/// The file name alone: the manifest is published with the page and carries no local paths.
fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_weights(sd: &StateDict, dtype: StoreDtype, path: &Path) -> Result<usize> {
    let mut sd = sd.clone();
    sd.metadata.retain(|k, _| k == key::ARCH);
    let bytes = sd.to_safetensors(dtype)?;
    write_atomic(path, &bytes)?;
    Ok(bytes.len())
}

/// The runs grouped by architecture (in order of first appearance): one set per architecture,
/// at most one per dataset. With two, the CIFAR-10 set is the gallery's and the ImageNet set
/// the photo set (a user's own photos go to it).
fn group_by_arch(runs: Vec<Run>) -> Result<Vec<(Architecture, Vec<Run>)>> {
    if runs.is_empty() {
        bail!("--fooled: give at least one run");
    }
    let mut sets: Vec<(Architecture, Vec<Run>)> = Vec::new();
    for r in runs {
        let arch = r.meta.config.arch;
        match sets.iter_mut().find(|(a, _)| *a == arch) {
            Some((_, v)) => v.push(r),
            None => sets.push((arch, vec![r])),
        }
    }
    if sets.len() > 2 || (sets.len() == 2 && sets[0].0.dataset() == sets[1].0.dataset()) {
        let archs: Vec<String> = sets.iter().map(|(a, _)| a.id().to_string()).collect();
        bail!(
            "--fooled holds models of {}: export one architecture per dataset (a CIFAR-10 set for \
             the gallery, optionally an ImageNet set for photos)",
            archs.join(", ")
        );
    }
    sets.sort_by_key(|(a, _)| a.dataset() != Dataset::Cifar10);
    Ok(sets)
}

/// One exported set: its architecture's facts and its models (original first).
struct ExportedSet {
    arch: Architecture,
    tap: String,
    classes: Vec<String>,
    models: Vec<ModelEntry>,
}

/// Writes a set's original and fooled models.
fn export_set(
    a: &ExportWebArgs,
    root: Option<&Path>,
    (arch, runs): (Architecture, &[Run]),
    dtype: StoreDtype,
    models_dir: &Path,
) -> Result<ExportedSet> {
    let net = arch.build();
    let original = export_original(a, root, (arch, &net), dtype, models_dir)?;
    let orig_id = original.id.clone();
    let mut models = vec![original];
    for r in runs {
        let entry = export_fooled(r, (arch, &net), dtype, models_dir, &models, &orig_id)?;
        models.push(entry);
    }
    Ok(ExportedSet {
        arch,
        tap: net.tap_name().into(),
        classes: crate::backend::class_names(arch.dataset(), root),
        models,
    })
}

fn dataset_id(d: Dataset) -> String {
    match d {
        Dataset::Cifar10 => "cifar10",
        Dataset::ImageNet => "imagenet",
    }
    .into()
}

/// Writes the original model (checked against the architecture now, not in the browser).
fn export_original(
    a: &ExportWebArgs,
    root: Option<&Path>,
    (arch, net): (Architecture, &foolmap::Net),
    dtype: StoreDtype,
    models_dir: &Path,
) -> Result<ModelEntry> {
    let original_path = crate::backend::weights_path(arch, a.original.clone(), root, "--original")?;
    let sd0 = crate::io::weights::read_state_dict(&original_path)?;
    // Checked against the architecture now, not in the browser.
    foolmap::ParamStore::from_state_dict(
        &net.specs,
        &sd0,
        arch.id(),
        &original_path.display().to_string(),
        &foolmap::burn::tensor::Device::flex(),
    )?;
    let orig_id = format!("{}-original", arch.id());
    let mut sd0 = sd0;
    sd0.metadata.insert(key::ARCH.into(), arch.id().into());
    let n0 = write_weights(
        &sd0,
        dtype,
        &models_dir.join(format!("{orig_id}.safetensors")),
    )?;

    Ok(ModelEntry {
        id: orig_id.clone(),
        role: Role::Original,
        arch,
        file: format!("models/{orig_id}.safetensors"),
        bytes: n0 as u64,
        original: None,
        fooling: None,
        interpreter: None,
        lambda: None,
        lr: None,
        steps: None,
        batch_size: None,
        c1: None,
        c2: None,
        eval: None,
        weights_source: Some(file_name(&original_path)),
    })
}

/// Writes one fooled model (checked against the architecture) with its recipe; its id is
/// `<arch>-<fooling>-<interpreter>`, numbered when `models` already holds that id.
fn export_fooled(
    r: &Run,
    (arch, net): (Architecture, &foolmap::Net),
    dtype: StoreDtype,
    models_dir: &Path,
    models: &[ModelEntry],
    orig_id: &str,
) -> Result<ModelEntry> {
    foolmap::ParamStore::from_state_dict(
        &net.specs,
        &r.sd,
        arch.id(),
        &r.weights.display().to_string(),
        &foolmap::burn::tensor::Device::flex(),
    )?;
    let cfg = &r.meta.config;
    let (fooling, interp) = (cfg.fooling, cfg.interpreter);
    let mut id = format!("{}-{}-{}", arch.id(), fooling.id(), interp.id());
    let n_same = models.iter().filter(|m| m.id.starts_with(&id)).count();
    if n_same > 0 {
        id = format!("{id}-{}", n_same + 1);
    }
    let n = write_weights(&r.sd, dtype, &models_dir.join(format!("{id}.safetensors")))?;
    Ok(ModelEntry {
        id: id.clone(),
        role: Role::Fooled,
        arch,
        file: format!("models/{id}.safetensors"),
        bytes: n as u64,
        original: Some(orig_id.to_string()),
        fooling: Some(fooling),
        interpreter: Some(interp),
        lambda: Some(cfg.lambda),
        lr: Some(cfg.lr),
        steps: Some(r.meta.step),
        batch_size: Some(cfg.batch_size),
        c1: Some(cfg.c1),
        c2: Some(cfg.c2),
        eval: r.eval.clone(),
        weights_source: Some(file_name(&r.weights)),
    })
}

/// Runs `export-web`.
pub fn run(a: &ExportWebArgs, root: Option<&Path>) -> Result<PathBuf> {
    if let Some(site) = &a.site {
        copy_app(&a.out, site)?;
        let inner = ExportWebArgs {
            fooled: a.fooled.clone(),
            original: a.original.clone(),
            out: site.clone(),
            gallery_per_class: a.gallery_per_class,
            f32: a.f32,
            site: None,
        };
        let manifest = run(&inner, root)?;
        println!(
            "static site in {}: copy the folder to any static host (all URLs are relative)",
            site.display()
        );
        return Ok(manifest);
    }
    let runs: Vec<Run> = a
        .fooled
        .iter()
        .map(|p| read_run(p))
        .collect::<Result<_>>()?;
    let n_models = runs.len();
    let sets = group_by_arch(runs)?;
    if sets.len() > 1 && a.original.is_some() {
        bail!(
            "--original is ambiguous with models of two architectures: export them one at a time"
        );
    }
    let dtype = if a.f32 {
        StoreDtype::F32
    } else {
        StoreDtype::F16
    };
    let models_dir = a.out.join("models");
    std::fs::create_dir_all(&models_dir)
        .with_context(|| format!("cannot create {}", models_dir.display()))?;
    let mut exported = Vec::new();
    for (arch, runs) in &sets {
        exported.push(export_set(a, root, (*arch, runs), dtype, &models_dir)?);
    }
    let mut exported = exported.into_iter();
    let main = exported.next().context("no model set")?;
    let photo = match exported.next() {
        Some(p) => Some(PhotoSet {
            arch: p.arch,
            dataset: dataset_id(p.arch.dataset()),
            input_size: p.arch.dataset().input_size(),
            tap: p.tap,
            classes: p.classes,
            models: p.models,
            gallery: copy_gallery(p.arch.dataset(), a.gallery_per_class, root, &a.out)?,
        }),
        None => None,
    };
    let dataset = main.arch.dataset();
    let gallery = copy_gallery(dataset, a.gallery_per_class, root, &a.out)?;
    let manifest = Manifest {
        version: 1,
        arch: main.arch,
        dataset: dataset_id(dataset),
        input_size: dataset.input_size(),
        mean: Dataset::MEAN,
        std: Dataset::STD,
        tap: main.tap,
        dtype: if a.f32 { "f32" } else { "f16" }.into(),
        classes: main.classes,
        models: main.models,
        gallery,
        photo,
    };
    let path = models_dir.join("manifest.json");
    write_atomic(&path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    // The page's Content-Security-Policy, for static hosts that send none.
    crate::site::add_csp_meta(&a.out.join("index.html"))?;
    println!(
        "wrote {} ({} fooled models, {} gallery images{})",
        path.display(),
        n_models,
        manifest.gallery.len(),
        manifest.photo.as_ref().map_or(String::new(), |p| format!(
            "; own photos go to {} ({} fooled)",
            p.arch,
            p.models.len() - 1
        ))
    );
    Ok(path)
}
