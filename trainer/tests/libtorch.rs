//! The optional LibTorch backend (`--features tch`) computes what the CPU backend (`flex`)
//! computes: logits and tap maps of the real ResNet-20 within 1e-4, and one fooling step (loss
//! and updated weights) within 1e-4 relative. Runs only in a `tch` build (README: Backends).
#![cfg(feature = "tch")]
#![allow(deprecated)] // `Device::libtorch` is deprecated in Burn 0.22; kept as an optional backend.

mod common;

use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::explain;
use foolmap::fooling::FoolingType;
use foolmap::train::{Adam, Objective};
use foolmap::{Architecture, Interpreter, InterpreterOptions};

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn flex_and_libtorch_agree_on_logits_maps_and_a_fooling_step() {
    let (input, labels) = common::resnet20_fixture_batch();
    let weights = common::resnet20_weights();
    let mut out = Vec::new();
    for dev in [Device::flex(), Device::libtorch()] {
        let (net, p) =
            foolmap_trainer::io::weights::load(Architecture::ResNet20, &weights, &dev).unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [4, 3, 32, 32]), &dev);
        let o = InterpreterOptions::default();
        let logits = vals(net.seq.forward(&p, x.clone()));
        let mut maps = Vec::new();
        for i in Interpreter::FOOLABLE {
            maps.push(vals(explain(&net, &p, x.clone(), &labels, *i, &o).unwrap()));
        }
        // One Location / Grad-CAM fooling step with Adam.
        let ad = dev.clone().autodiff();
        let pa = p.to_device(&ad).require_grad();
        let obj = Objective {
            kind: FoolingType::Location,
            interpreter: Interpreter::GradCam,
            lambda: 1.0,
            options: o,
        };
        let xa = Tensor::<4>::from_data(TensorData::new(input.clone(), [4, 3, 32, 32]), &ad);
        let loss = obj.passive(&net, &pa, &p, xa, &labels).unwrap();
        let total = vals(loss.total.clone().inner());
        let mut adam = Adam::new(&pa, 1e-3);
        let stepped = adam.step(&pa, loss.total.backward());
        let w = vals(stepped.values()[0].clone().inner());
        out.push((logits, maps, total, w));
    }
    let (a, b) = (&out[0], &out[1]);
    let d = max_abs(&a.0, &b.0);
    assert!(d <= 1e-4, "logits differ by {d}");
    for (i, (ma, mb)) in Interpreter::FOOLABLE.iter().zip(a.1.iter().zip(&b.1)) {
        let d = max_abs(ma, mb);
        assert!(d <= 1e-4, "{i} maps differ by {d}");
    }
    let rel = (a.2[0] - b.2[0]).abs() / a.2[0].abs().max(1e-6);
    assert!(rel <= 1e-4, "losses {} vs {}", a.2[0], b.2[0]);
    let d = max_abs(&a.3, &b.3);
    assert!(
        d <= 1e-4,
        "first weight tensor after one Adam step differs by {d}"
    );
}
