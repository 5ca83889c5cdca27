//! Helpers shared by the integration tests: where the steering repo's `shared/` folder is, and
//! loading of fixture files and weights.
#![allow(dead_code)]

use std::path::PathBuf;

use foolmap::arch::{self, Net};
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::{Architecture, ParamStore, StateDict};

/// `../shared` beside the clone (or `$FOOLMAP_SHARED`).
pub fn shared_dir() -> PathBuf {
    if let Ok(p) = std::env::var("FOOLMAP_SHARED") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub fn load_sd(path: PathBuf) -> StateDict {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    StateDict::from_safetensors(&bytes, &path.display().to_string()).expect("decode")
}

pub fn fixture(case: &str) -> StateDict {
    load_sd(
        shared_dir()
            .join("fixtures")
            .join(format!("{case}.safetensors")),
    )
}

/// The four fixture cases: network, weights.
pub fn case_net(case: &str) -> (Net, StateDict) {
    let fx = shared_dir().join("fixtures");
    let data = shared_dir().join("data/weights");
    match case {
        "resnet20_cifar10" => (
            Architecture::ResNet20.build(),
            load_sd(data.join("resnet20_cifar10.safetensors")),
        ),
        "squeezenet1_0_photos" => (
            Architecture::SqueezeNet1_0.build(),
            load_sd(data.join("squeezenet1_0_imagenet.safetensors")),
        ),
        "tiny_vgg" => (tiny_vgg(), load_sd(fx.join("tiny_vgg_weights.safetensors"))),
        "tiny_densenet" => (
            tiny_densenet(),
            load_sd(fx.join("tiny_densenet_weights.safetensors")),
        ),
        other => panic!("unknown case {other}"),
    }
}

/// The fixtures' tiny VGG (32×32 input, no BatchNorm).
pub fn tiny_vgg() -> Net {
    arch::vgg(
        "tiny_vgg",
        &[8, 8, 0, 16, 16, 0, 16, 16, 0],
        false,
        4,
        32,
        10,
    )
}

/// torchvision `DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2)`.
pub fn tiny_densenet() -> Net {
    arch::densenet("tiny_densenet", 8, &[2, 2], 16, 2, 10)
}

pub const CASES: [&str; 4] = [
    "resnet20_cifar10",
    "squeezenet1_0_photos",
    "tiny_vgg",
    "tiny_densenet",
];

pub fn params(net: &Net, sd: &StateDict, device: &Device) -> ParamStore {
    ParamStore::from_state_dict(&net.specs, sd, &net.id, "test", device).expect("weights fit")
}

pub fn tensor<const D: usize>(sd: &StateDict, key: &str, device: &Device) -> Tensor<D> {
    let t = &sd.tensors[key];
    let shape: [usize; D] = t.shape.clone().try_into().expect("rank");
    Tensor::from_data(TensorData::new(t.data.clone(), shape), device)
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

pub fn labels(sd: &StateDict, key: &str) -> Vec<usize> {
    sd.tensors[key].data.iter().map(|&v| v as usize).collect()
}

/// Max |a − b| (panics on length mismatch).
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts `got ≈ want` with absolute tolerance `atol`, naming the tensor.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], atol: f32) {
    let d = max_abs(got, want);
    assert!(d <= atol, "{name}: max |Δ| = {d:e} > {atol:e}");
}

/// Asserts that at least `frac` of the values are within `atol` and all within `worst`.
pub fn assert_mostly_close(
    name: &str,
    got: &[f32],
    want: &[f32],
    atol: f32,
    frac: f64,
    worst: f32,
) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let ok = got
        .iter()
        .zip(want)
        .filter(|(x, y)| (*x - *y).abs() <= atol)
        .count();
    let f = ok as f64 / got.len() as f64;
    let d = max_abs(got, want);
    assert!(
        f >= frac && d <= worst,
        "{name}: {:.3}% within {atol:e} (need {:.1}%), max |Δ| {d:e}",
        100.0 * f,
        100.0 * frac
    );
}

/// Relative check: max |a − b| / max |b| ≤ rtol.
pub fn assert_rel(name: &str, got: &[f32], want: &[f32], rtol: f32) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let d = max_abs(got, want) / scale;
    assert!(d <= rtol, "{name}: relative error {d:e} > {rtol:e}");
}
