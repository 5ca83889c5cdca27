//! Weight import in the three formats users hold, the single error listing every mismatch, and
//! bad inputs (empty, truncated, another architecture, non-image, missing data folder).

mod common;

use common::{repo, shared_data};
use foolmap::arch;
use foolmap::burn::tensor::Device;
use foolmap::{Architecture, ParamStore, StateDict};
use foolmap_trainer::io::weights::{load, read_state_dict};

fn tiny() -> foolmap::Net {
    arch::cifar_resnet("tiny_resnet", 1, 4, 10)
}

#[test]
fn zip_pth_legacy_and_safetensors_agree() {
    let dir = repo().join("tests/data");
    let st = read_state_dict(&dir.join("tiny_resnet.safetensors")).unwrap();
    let zip = read_state_dict(&dir.join("tiny_resnet.pth")).unwrap();
    let legacy = read_state_dict(&dir.join("tiny_resnet_legacy.th")).unwrap();
    let net = tiny();
    for sd in [&st, &zip, &legacy] {
        // num_batches_tracked is present in the PyTorch files and ignored by the fit check.
        ParamStore::from_state_dict(&net.specs, sd, "tiny", "t", &Device::flex()).expect("fits");
        for s in &net.specs {
            assert_eq!(
                sd.tensors[&s.name].data, st.tensors[&s.name].data,
                "{}",
                s.name
            );
        }
    }
    assert!(zip.tensors.contains_key("bn1.num_batches_tracked"));
    assert!(
        legacy
            .tensors
            .keys()
            .all(|k| !k.starts_with("module.") && !k.starts_with("state_dict."))
    );
}

#[test]
fn real_legacy_checkpoint_equals_the_safetensors_mirror() {
    let w = shared_data().join("weights");
    let legacy = read_state_dict(&w.join("resnet20-12fca82f.th")).unwrap();
    let st = read_state_dict(&w.join("resnet20_cifar10.safetensors")).unwrap();
    let net = Architecture::ResNet20.build();
    for s in &net.specs {
        assert_eq!(
            legacy.tensors[&s.name].data, st.tensors[&s.name].data,
            "{}",
            s.name
        );
    }
}

#[test]
fn mismatched_checkpoint_lists_every_problem_in_one_error() {
    let w = shared_data().join("weights");
    let e = load(
        Architecture::ResNet32,
        &w.join("resnet20_cifar10.safetensors"),
        &Device::flex(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("resnet20_cifar10.safetensors") && e.contains("resnet32"),
        "{e}"
    );
    assert!(e.contains("missing tensor `layer1.3.conv1.weight`"), "{e}");
    // Shape mismatch, unexpected tensor, missing tensor in one message.
    let mut sd: StateDict =
        read_state_dict(&repo().join("tests/data/tiny_resnet.safetensors")).unwrap();
    sd.tensors.get_mut("linear.weight").unwrap().shape = vec![5, 32];
    sd.tensors.remove("bn1.weight");
    let extra = sd.tensors["linear.bias"].clone();
    sd.insert("fc.bias", extra);
    let e =
        ParamStore::from_state_dict(&tiny().specs, &sd, "tiny", "x.safetensors", &Device::flex())
            .unwrap_err()
            .to_string();
    assert!(
        e.contains("missing tensor `bn1.weight` (expected shape [4])"),
        "{e}"
    );
    assert!(
        e.contains("tensor `linear.weight` has shape [5, 32], expected [10, 16]"),
        "{e}"
    );
    assert!(e.contains("unexpected tensor `fc.bias`"), "{e}");
}

#[test]
fn empty_truncated_and_foreign_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let e = read_state_dict(&empty).unwrap_err().to_string();
    assert!(
        e.contains("empty.safetensors") && e.contains("empty"),
        "{e}"
    );

    let src = std::fs::read(repo().join("tests/data/tiny_resnet.pth")).unwrap();
    let cut = tmp.path().join("cut.pth");
    std::fs::write(&cut, &src[..src.len() / 2]).unwrap();
    let e = read_state_dict(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.pth"), "{e}");

    let src = std::fs::read(repo().join("tests/data/tiny_resnet_legacy.th")).unwrap();
    let cut = tmp.path().join("cut.th");
    std::fs::write(&cut, &src[..src.len() - 100]).unwrap();
    let e = format!("{:#}", read_state_dict(&cut).unwrap_err());
    assert!(e.contains("cut.th"), "{e}");

    let text = tmp.path().join("notes.safetensors");
    std::fs::write(&text, b"this is not a weight file at all").unwrap();
    let e = read_state_dict(&text).unwrap_err().to_string();
    assert!(e.contains("notes.safetensors"), "{e}");

    let e = load(
        Architecture::SqueezeNet1_0,
        &shared_data().join("weights/resnet20_cifar10.safetensors"),
        &Device::flex(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unexpected tensor `conv1.weight`")
            && e.contains("missing tensor `features.0.weight`"),
        "{e}"
    );
}

#[test]
fn missing_data_folder_is_a_clear_error() {
    let e = foolmap_trainer::io::data::cifar10(std::path::Path::new("/nonexistent/cifar"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/cifar") && e.contains("does not exist"),
        "{e}"
    );
    let e = foolmap_trainer::io::data::data_root(Some(std::path::Path::new("/nonexistent/root")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/root"), "{e}");
}

#[test]
fn torchvision_layouts_round_trip_through_safetensors() {
    // VGG19, ResNet50, DenseNet121: exact torchvision key/shape lists (no pretrained weights
    // exist offline), parameter counts as published by torchvision, a generated checkpoint loads
    // back and runs a forward pass.
    let dev = Device::flex();
    for (a, n_params, n_keys, probe) in [
        (
            Architecture::Vgg19,
            143_667_240usize,
            38usize,
            ("features.34.weight", vec![512usize, 512, 3, 3]),
        ),
        (
            Architecture::ResNet50,
            25_557_032,
            320,
            ("layer4.2.conv3.weight", vec![2048, 512, 1, 1]),
        ),
        (
            Architecture::DenseNet121,
            7_978_856,
            727,
            (
                "features.denseblock4.denselayer16.conv2.weight",
                vec![32, 128, 3, 3],
            ),
        ),
    ] {
        let net = a.build();
        let trainable: usize = net
            .specs
            .iter()
            .filter(|s| s.kind == foolmap::params::ParamKind::Trainable)
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        assert_eq!(trainable, n_params, "{a}: parameter count");
        // torchvision's state_dict also holds one num_batches_tracked per BatchNorm.
        let n_bn = net
            .specs
            .iter()
            .filter(|s| s.name.ends_with("running_mean"))
            .count();
        assert_eq!(net.specs.len() + n_bn, n_keys, "{a}: state_dict length");
        let s = net
            .specs
            .iter()
            .find(|s| s.name == probe.0)
            .unwrap_or_else(|| panic!("{a}: no {}", probe.0));
        assert_eq!(s.shape, probe.1);
        let p = ParamStore::random(&net.specs, 1, &dev);
        let bytes = p
            .to_state_dict()
            .to_safetensors(foolmap::state::StoreDtype::F32)
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join(format!("{a}.safetensors"));
        std::fs::write(&f, bytes).unwrap();
        let (net2, p2) = load(a, &f, &dev).unwrap();
        let x = foolmap::burn::tensor::Tensor::<4>::zeros([1, 3, 224, 224], &dev).add_scalar(0.1);
        let y = net2.seq.forward(&p2, x);
        assert_eq!(y.dims(), [1, 1000, 1, 1], "{a}");
    }
}
