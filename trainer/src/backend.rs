//! Devices and models: the backend a `--device` flag names, and a model's weights found (the
//! data root's pretrained file unless given) and loaded with its class names.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::ValueEnum;
use foolmap::burn::tensor::Device;
use foolmap::{Architecture, Dataset, Net, ParamStore};

use crate::io::{data, weights};

/// Where tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CPU (Burn's `flex` backend).
    Cpu,
    /// GPU through wgpu (needs the `wgpu` cargo feature).
    Wgpu,
    /// NVIDIA GPU 0 through CUDA (needs the `cuda` cargo feature).
    Cuda,
    /// CPU through LibTorch (needs the `tch` cargo feature and libtorch 2.9.0, see README).
    Libtorch,
    /// NVIDIA GPU 0 through LibTorch (the `tch` feature with a CUDA build of libtorch).
    LibtorchCuda,
}

// `Device::libtorch*` is deprecated in Burn 0.22 (burn-tch will be removed); it is kept as an
// optional, measured backend (BENCHMARKS.md).
#[allow(deprecated)]
pub fn device(d: DeviceArg) -> Result<Device> {
    match d {
        DeviceArg::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => Ok(Device::wgpu(
            foolmap::burn::tensor::DeviceKind::DefaultDevice,
        )),
        #[cfg(not(feature = "wgpu"))]
        DeviceArg::Wgpu => bail!(
            "--device wgpu: this build has no GPU support (the default build is CPU-only): rebuild with `cargo build --release --features gpu`"
        ),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceArg::Cuda => bail!(
            "--device cuda: this build has no CUDA support: rebuild with `cargo build --release --features cuda` (or use `--device wgpu`)"
        ),
        #[cfg(feature = "tch")]
        DeviceArg::Libtorch => Ok(Device::libtorch()),
        #[cfg(feature = "tch")]
        DeviceArg::LibtorchCuda => Ok(Device::libtorch_cuda(0)),
        #[cfg(not(feature = "tch"))]
        DeviceArg::Libtorch | DeviceArg::LibtorchCuda => bail!(
            "--device {}: this build has no LibTorch backend: see the README (`--features tch`, libtorch 2.9.0)",
            if d == DeviceArg::Libtorch {
                "libtorch"
            } else {
                "libtorch-cuda"
            }
        ),
    }
}

/// `explicit`, else the data root's pretrained file of `arch`; errors name `flag`, the option
/// that would supply the file.
pub fn weights_path(
    arch: Architecture,
    explicit: Option<PathBuf>,
    root: Option<&Path>,
    flag: &str,
) -> Result<PathBuf> {
    if let Some(w) = explicit {
        return Ok(w);
    }
    let Some(file) = arch.weights_file() else {
        bail!(
            "no pretrained weights for `{arch}` in the data root: pass {flag} FILE (the torchvision \
             checkpoint is {})",
            arch.checkpoint_url()
        );
    };
    let p = data::data_root(root)?.join("weights").join(file);
    if !p.is_file() {
        bail!(
            "weights file {} is missing: run `foolmap data fetch` or pass {flag}",
            p.display()
        );
    }
    Ok(p)
}

/// A model of `arch` with weights `w` (default: the data root's pretrained file).
pub fn load_model(
    arch: Architecture,
    w: Option<PathBuf>,
    root: Option<&Path>,
    device: &Device,
) -> Result<(Net, ParamStore)> {
    let path = weights_path(arch, w, root, "--weights")?;
    weights::load(arch, &path, device)
}

/// Class names of `dataset` (ImageNet's from the data root's label file when present).
pub fn class_names(dataset: Dataset, root: Option<&Path>) -> Vec<String> {
    let imagenet = data::data_root(root).ok().and_then(|r| {
        let p = r.join("labels/imagenet-simple-labels.json");
        std::fs::read(&p)
            .ok()
            .and_then(|b| foolmap::labels::parse_imagenet_labels(&b, &p.display().to_string()).ok())
    });
    foolmap::labels::names(dataset, imagenet.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let e = device(DeviceArg::Cuda).unwrap_err().to_string();
        assert!(
            e.contains("--device cuda") && e.contains("--features cuda"),
            "{e}"
        );
    }

    #[test]
    fn the_cpu_device_is_always_there() {
        assert!(device(DeviceArg::Cpu).is_ok());
    }
}
