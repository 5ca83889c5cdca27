//! Setting a run up: the network, the starting weights and the original, and the fooling
//! session (fresh, or resumed from the run's checkpoint).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foolmap::burn::tensor::Device;
use foolmap::params::{ParamKind, ParamSpec};
use foolmap::session::FoolingSession;
use foolmap::train::Objective;
use foolmap::{InterpreterOptions, Net, ParamStore};

use super::checkpoint::{load_checkpoint, truncate_log};
use crate::io::data;
use foolmap::artifact::run::{FoolConfig, trains, under};

/// The network, the starting weights, and the reference the fooling loss compares against.
pub(super) struct Models {
    pub(super) net: Net,
    /// The resolved starting weights file.
    pub(super) weights: PathBuf,
    /// The starting weights.
    pub(super) p0: ParamStore,
    /// The frozen original when training starts from other weights (`original`).
    pub(super) p_ref: Option<ParamStore>,
}

impl Models {
    /// The reference model of the fooling loss: the original, even when training starts elsewhere.
    pub(super) fn reference(&self) -> &ParamStore {
        self.p_ref.as_ref().unwrap_or(&self.p0)
    }
}

/// Builds the network, checks `train_only` against it, and loads the starting weights (the data
/// root's pretrained file unless `weights` is set; `cfg.weights` is set to the file used) and
/// the original.
pub(super) fn load_models(
    cfg: &mut FoolConfig,
    root: Option<&Path>,
    device: &Device,
) -> Result<Models> {
    let arch = cfg.arch;
    let net = arch.build();
    for m in &cfg.train_only {
        let covers = |s: &ParamSpec| s.kind == ParamKind::Trainable && under(&s.name, m);
        if !net.specs.iter().any(covers) {
            let tops: std::collections::BTreeSet<&str> = net
                .specs
                .iter()
                .filter_map(|s| s.name.rsplit_once('.').map(|(m, _)| m))
                .collect();
            bail!(
                "invalid config field `train_only`: `{m}` holds no trainable parameter of `{arch}`; \
                 module paths are e.g. {}",
                tops.iter().take(6).cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let weights = match &cfg.weights {
        Some(w) => w.clone(),
        None => {
            let f = arch
                .weights_file()
                .with_context(|| format!("no pretrained weights for `{arch}`: set `weights`"))?;
            data::data_root(root)?.join("weights").join(f)
        }
    };
    cfg.weights = Some(weights.clone());
    let load = |w: &Path| -> Result<ParamStore> {
        let sd = crate::io::weights::read_for_specs(arch, &net.specs, w)?;
        let name = w.display().to_string();
        Ok(ParamStore::from_state_dict(
            &net.specs,
            &sd,
            arch.id(),
            &name,
            device,
        )?)
    };
    let p0 = load(&weights)?;
    let p_ref = match &cfg.original {
        Some(w) if *w != weights => Some(load(w)?),
        _ => None,
    };
    Ok(Models {
        net,
        weights,
        p0,
        p_ref,
    })
}

/// A new session on the starting weights, or (`resume`) the checkpoint's weights and Adam state,
/// with the step it starts after; a resumed run's log lines after its checkpoint are dropped
/// (those steps run again).
pub(super) fn start_session(
    cfg: &FoolConfig,
    resume: bool,
    out: &Path,
    m: &Models,
    device: &Device,
) -> Result<(FoolingSession, u64)> {
    let ad = device.clone().autodiff();
    let train_only = cfg.train_only.clone();
    let trainable = move |s: &ParamSpec| trains(&train_only, &s.name);
    let objective = Objective {
        kind: cfg.fooling,
        interpreter: cfg.interpreter,
        lambda: cfg.lambda,
        options: InterpreterOptions::default(),
    };
    if !resume {
        let p = m.p0.to_device(&ad).require_grad_where(trainable);
        return Ok((FoolingSession::new(objective, p, cfg.lr), 0));
    }
    let ck = load_checkpoint(out)?;
    let arch = cfg.arch.id();
    let p = ParamStore::from_state_dict(&m.net.specs, &ck.params, arch, "checkpoint", &ad)?
        .require_grad_where(trainable);
    let mut session = FoolingSession::new(objective, p, cfg.lr);
    let map = ck.adam;
    session
        .adam
        .restore(&session.params, ck.adam_t, &|k| map.get(k).cloned(), device)
        .with_context(|| {
            format!(
                "--resume: the optimizer state of {}",
                out.join("checkpoint.safetensors").display()
            )
        })?;
    truncate_log(&out.join("log.jsonl"), ck.step)?;
    truncate_log(&out.join("val.jsonl"), ck.step)?;
    Ok((session, ck.step))
}
