//! The same forward pass on the CPU backend (`flex`) and on `wgpu` (any adapter, including a
//! software Vulkan one such as Mesa's lavapipe) agrees within 1e-4.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use foolmap::burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use foolmap::explain::interpreter::explain;
use foolmap::{Architecture, Interpreter, InterpreterOptions, StateDict};

fn fixture() -> StateDict {
    let p = std::env::var("FOOLMAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("fixtures/resnet20_cifar10.safetensors");
    StateDict::from_safetensors(&std::fs::read(&p).unwrap(), "fixture").unwrap()
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn flex_and_wgpu_agree_on_logits_and_maps() {
    let fx = fixture();
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/weights/resnet20_cifar10.safetensors");
    let weights = std::env::var("FOOLMAP_SHARED")
        .map(|s| PathBuf::from(s).join("data/weights/resnet20_cifar10.safetensors"))
        .unwrap_or(weights);
    let input = &fx.tensors["input"];
    let labels: Vec<usize> = fx.tensors["labels"]
        .data
        .iter()
        .map(|&v| v as usize)
        .collect();
    let mut out = Vec::new();
    for dev in [Device::flex(), Device::wgpu(DeviceKind::DefaultDevice)] {
        let (net, p) =
            foolmap_trainer::weights::load(Architecture::ResNet20, &weights, &dev).unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(input.data.clone(), [4, 3, 32, 32]), &dev);
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
