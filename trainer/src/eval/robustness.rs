//! Robustness checks of a model's explanations: Gaussian weight noise and cascading model
//! randomisation (the sanity check of Adebayo et al. 2018).

use anyhow::Result;
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::explain;
use foolmap::metrics;
use foolmap::params::{ParamKind, SplitMix};
use foolmap::scores::read_back as vals;
use foolmap::{Interpreter, InterpreterOptions, Net, ParamStore};

/// Gaussian noise on the trainable weights: `w + σ·std(w)·N(0, 1)` per tensor.
pub fn perturb(p: &ParamStore, sigma: f64, seed: u64, device: &Device) -> Result<ParamStore> {
    let mut rng = SplitMix::new(seed);
    let mut values = Vec::with_capacity(p.len());
    for (s, v) in p.specs().iter().zip(p.values()) {
        if s.kind != ParamKind::Trainable || sigma == 0.0 {
            values.push(v.clone());
            continue;
        }
        let data = vals(v.clone())?;
        let n = data.len() as f64;
        let mean = data.iter().map(|&x| x as f64).sum::<f64>() / n;
        let std = (data.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let noisy: Vec<f32> = data
            .iter()
            .map(|&x| (x as f64 + sigma * std * rng.normal()) as f32)
            .collect();
        values.push(Tensor::from_data(
            TensorData::new(noisy, [data.len()]),
            device,
        ));
    }
    let mut out = p.clone();
    out.set_values(values);
    Ok(out)
}

/// Cascading model randomisation (Adebayo et al. 2018): re-initialise the parameter groups of
/// the top-level nodes from the output downwards and record the mean Spearman correlation of
/// the map with the map of the intact model. Returns `(layers randomised, similarity)`.
pub fn sanity(
    net: &Net,
    p: &ParamStore,
    x: Tensor<4>,
    labels: &[usize],
    interp: Interpreter,
    device: &Device,
) -> Result<Vec<(String, f64)>> {
    let o = InterpreterOptions::default();
    let reference = vals(explain(net, p, x.clone(), labels, interp, &o)?)?;
    let n = labels.len();
    let cells = reference.len() / n.max(1);
    let random = ParamStore::random(p.specs(), 99, device);
    let mut values: Vec<Tensor<1>> = p.values().to_vec();
    let mut out = vec![("none".to_string(), 1.0)];
    let groups: Vec<String> = net
        .seq
        .nodes
        .iter()
        .rev()
        .map(|(name, _)| name.clone())
        .collect();
    for g in groups {
        let prefix = format!("{g}.");
        let mut touched = false;
        for (i, s) in p.specs().iter().enumerate() {
            if s.kind == ParamKind::Trainable && s.name.starts_with(&prefix) {
                values[i] = random.values()[i].clone();
                touched = true;
            }
        }
        if !touched {
            continue;
        }
        let mut q = p.clone();
        q.set_values(values.clone());
        let m = vals(explain(net, &q, x.clone(), labels, interp, &o)?)?;
        let sim = (0..n)
            .map(|i| {
                metrics::spearman(
                    &reference[i * cells..(i + 1) * cells],
                    &m[i * cells..(i + 1) * cells],
                )
            })
            .sum::<f64>()
            / n as f64;
        out.push((g, sim));
    }
    Ok(out)
}
