//! The same forward pass on the CPU backend (`flex`) and on `wgpu` (any adapter, including a
//! software Vulkan one such as Mesa's lavapipe) agrees within 1e-4.
#![cfg(feature = "wgpu")]

mod common;

use foolmap::burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use foolmap::explain::interpreter::explain;
use foolmap::{Architecture, Interpreter, InterpreterOptions};

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn flex_and_wgpu_agree_on_logits_and_maps() {
    let (input, labels) = common::resnet20_fixture_batch();
    let weights = common::resnet20_weights();
    let mut out = Vec::new();
    for dev in [Device::flex(), Device::wgpu(DeviceKind::DefaultDevice)] {
        let (net, p) =
            foolmap_trainer::io::weights::load(Architecture::ResNet20, &weights, &dev).unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [4, 3, 32, 32]), &dev);
        let logits = vals(net.seq.forward(&p, x.clone()));
        let o = InterpreterOptions::default();
        let lrp = vals(explain(&net, &p, x.clone(), &labels, Interpreter::LrpT, &o).unwrap());
        let cam = vals(explain(&net, &p, x, &labels, Interpreter::GradCam, &o).unwrap());
        out.push((logits, lrp, cam));
    }
    let d = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let (a, b) = (&out[0], &out[1]);
    assert!(d(&a.0, &b.0) <= 1e-4, "logits differ by {}", d(&a.0, &b.0));
    assert!(
        d(&a.1, &b.1) <= 1e-4,
        "lrp_t maps differ by {}",
        d(&a.1, &b.1)
    );
    assert!(
        d(&a.2, &b.2) <= 1e-4,
        "grad_cam maps differ by {}",
        d(&a.2, &b.2)
    );
}
