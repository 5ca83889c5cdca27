//! BatchNorm recalibration against slow loops, and its defining property on a whole ResNet: after
//! re-estimating on one batch, the eval-mode network reproduces the train-mode pass on that batch.

mod common;

use foolmap::Architecture;
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::model::{Seq, SpecBuilder};
use foolmap::params::{ParamStore, SplitMix};
use foolmap::recalibrate::BatchNormStatistics;

fn dev() -> Device {
    Device::flex()
}

fn randv(n: usize, rng: &mut SplitMix, scale: f64, shift: f64) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.normal() * scale + shift) as f32)
        .collect()
}

/// `(y, batch mean, unbiased batch variance)` of one train-mode BatchNorm, by loops.
fn slow_batch_norm(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    gamma: &[f32],
    beta: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = (n * h * w) as f64;
    let idx = |i: usize, ch: usize, s: usize| (i * c + ch) * h * w + s;
    let mut y = vec![0f32; x.len()];
    let (mut means, mut vars) = (vec![0f32; c], vec![0f32; c]);
    for ch in 0..c {
        let mut sum = 0.0;
        for i in 0..n {
            for s in 0..h * w {
                sum += x[idx(i, ch, s)] as f64;
            }
        }
        let mu = sum / m;
        let mut sq = 0.0;
        for i in 0..n {
            for s in 0..h * w {
                sq += (x[idx(i, ch, s)] as f64 - mu).powi(2);
            }
        }
        let var = sq / m;
        for i in 0..n {
            for s in 0..h * w {
                let z = (x[idx(i, ch, s)] as f64 - mu) / (var + 1e-5).sqrt();
                y[idx(i, ch, s)] = (z * gamma[ch] as f64 + beta[ch] as f64) as f32;
            }
        }
        means[ch] = mu as f32;
        vars[ch] = (var * m / (m - 1.0)) as f32;
    }
    (y, means, vars)
}

#[test]
fn one_batch_norm_normalises_with_batch_statistics_and_averages_them() {
    let mut b = SpecBuilder::default();
    let bn = b.bn("bn", 3);
    let mut seq = Seq::default();
    seq.push("bn", bn);
    let p = ParamStore::random(&b.specs, 5, &dev());
    let gamma = common::values(p.flat(p.id("bn.weight").expect("γ")).clone());
    let beta = common::values(p.flat(p.id("bn.bias").expect("β")).clone());
    let dims = [4, 3, 5, 2];
    let mut rng = SplitMix::new(9);
    let batches: Vec<Vec<f32>> = (0..2).map(|_| randv(120, &mut rng, 2.0, 1.5)).collect();

    let mut stats = BatchNormStatistics::new();
    let mut want_mean = [0f32; 3];
    let mut want_var = [0f32; 3];
    for x in &batches {
        let got = stats.observe(
            &seq,
            &p,
            Tensor::from_data(TensorData::new(x.clone(), dims), &dev()),
        );
        let (y, mean, var) = slow_batch_norm(x, dims, &gamma, &beta);
        common::assert_close("train-mode output", &common::values(got), &y, 1e-4);
        for ch in 0..3 {
            want_mean[ch] += mean[ch] / 2.0;
            want_var[ch] += var[ch] / 2.0;
        }
    }
    assert_eq!(stats.num_layers(), 1);
    let q = stats.apply(&p).expect("recalibrated");
    let flat = |name: &str| common::values(q.flat(q.id(name).expect(name)).clone());
    common::assert_close("running_mean", &flat("bn.running_mean"), &want_mean, 1e-5);
    common::assert_close("running_var", &flat("bn.running_var"), &want_var, 1e-4);
    // γ and β are not touched.
    common::assert_close("γ", &flat("bn.weight"), &gamma, 0.0);
    common::assert_close("β", &flat("bn.bias"), &beta, 0.0);
}

#[test]
fn a_resnet_recalibrated_on_one_batch_reproduces_its_train_mode_pass() {
    let net = Architecture::ResNet20.build();
    let p = ParamStore::random(&net.specs, 11, &dev());
    let mut rng = SplitMix::new(2);
    let x = Tensor::<4>::from_data(
        TensorData::new(randv(6 * 3 * 32 * 32, &mut rng, 1.0, 0.0), [6, 3, 32, 32]),
        &dev(),
    );
    let mut stats = BatchNormStatistics::new();
    let train = common::values(stats.observe(&net.seq, &p, x.clone()));
    let bn_layers = net
        .specs
        .iter()
        .filter(|s| s.name.ends_with(".running_mean"))
        .count();
    assert_eq!(stats.num_layers(), bn_layers);
    assert_eq!(bn_layers, 19);
    let q = stats.apply(&p).expect("recalibrated");
    let eval = common::values(net.seq.forward(&q, x.clone()));
    // Equal up to the unbiased-variance factor m/(m−1) (m ≥ 6·8·8 = 384 at the last stage).
    common::assert_rel("eval after recalibration", &eval, &train, 5e-3);
    // With the stale random statistics the eval-mode pass is something else entirely.
    let stale = common::values(net.seq.forward(&p, x));
    assert!(common::max_abs(&stale, &train) > 0.1);
}

#[test]
fn nothing_observed_is_an_error() {
    let net = Architecture::ResNet20.build();
    let p = ParamStore::random(&net.specs, 1, &dev());
    let err = BatchNormStatistics::new().apply(&p).expect_err("empty");
    assert!(err.to_string().contains("no batch was observed"), "{err}");
}
