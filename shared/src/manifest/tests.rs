//! The manifest's parsing, checks and set lookups.

use super::*;

fn sample() -> Manifest {
    let entry = |id: &str, role| ModelEntry {
        id: id.into(),
        role,
        arch: Architecture::ResNet20,
        file: format!("models/{id}.safetensors"),
        bytes: 10,
        original: None,
        fooling: (role == Role::Fooled).then_some(FoolingType::Location),
        interpreter: (role == Role::Fooled).then_some(Interpreter::GradCam),
        lambda: Some(10.0),
        lr: None,
        steps: Some(3500),
        batch_size: None,
        c1: None,
        c2: None,
        eval: None,
        weights_source: None,
    };
    Manifest {
        version: 1,
        arch: Architecture::ResNet20,
        dataset: "cifar10".into(),
        input_size: 32,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        tap: "layer3.2".into(),
        dtype: "f16".into(),
        classes: vec!["airplane".into()],
        models: vec![entry("o", Role::Original), entry("f", Role::Fooled)],
        gallery: vec![],
        photo: None,
    }
}

#[test]
fn a_manifest_round_trips_with_ids_for_enums() {
    let m = sample();
    let text = serde_json::to_string(&m).unwrap();
    assert!(text.contains("\"interpreter\":\"grad_cam\"") && text.contains("\"role\":\"fooled\""));
    assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
}

#[test]
fn errors_name_the_entry_and_the_field() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v.as_object_mut().unwrap().remove("arch");
    let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("missing field `arch`"), "{e}");
    let mut v = serde_json::to_value(sample()).unwrap();
    v["models"][1]["interpreter"] = "gradcamm".into();
    let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("models[1]") && e.contains("gradcamm"), "{e}");
    let mut v = serde_json::to_value(sample()).unwrap();
    v["models"][0].as_object_mut().unwrap().remove("id");
    let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("models[0]") && e.contains("`id`"), "{e}");
    let mut v = serde_json::to_value(sample()).unwrap();
    v["models"].as_array_mut().unwrap().truncate(1);
    assert!(
        Manifest::parse(v.to_string().as_bytes())
            .unwrap_err()
            .contains("fooled")
    );
    let e = Manifest::parse(b"not json").unwrap_err();
    assert!(e.starts_with(FILE), "{e}");
}

fn with_photo_set() -> Manifest {
    let mut m = sample();
    let mut models = sample().models;
    for x in &mut models {
        x.arch = Architecture::SqueezeNet1_0;
        x.id = format!("sq-{}", x.id);
    }
    m.photo = Some(PhotoSet {
        arch: Architecture::SqueezeNet1_0,
        dataset: "imagenet".into(),
        input_size: 224,
        tap: "features.12".into(),
        classes: vec!["tench".into(), "goldfish".into()],
        models,
        gallery: vec![],
    });
    m
}

#[test]
fn own_photos_go_to_the_photo_set_and_models_are_found_in_either_set() {
    let m = sample();
    assert_eq!(m.upload_set(), SetKind::Gallery);
    assert_eq!(
        m.original_of(SetKind::Photo).map(|x| &x.id),
        Some(&"o".to_string())
    );
    let m = with_photo_set();
    assert_eq!(m.upload_set(), SetKind::Photo);
    assert_eq!(m.kind_of("f"), Some(SetKind::Gallery));
    assert_eq!(m.kind_of("sq-f"), Some(SetKind::Photo));
    assert_eq!(m.kind_of("nope"), None);
    assert_eq!(
        m.model("sq-o").map(|x| x.arch),
        Some(Architecture::SqueezeNet1_0)
    );
    assert_eq!(m.fooled_of(SetKind::Photo).count(), 1);
    assert_eq!(m.classes_of(SetKind::Photo)[1], "goldfish");
    assert_eq!(m.classes_of(SetKind::Gallery)[0], "airplane");
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
}

#[test]
fn a_photo_set_is_checked_like_the_gallery_set() {
    let mut v = serde_json::to_value(with_photo_set()).unwrap();
    v["photo"]["models"][1]["arch"] = "resnet20".into();
    let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(
        e.contains("photo.models[1].arch") && e.contains("resnet20"),
        "{e}"
    );
    let mut v = serde_json::to_value(with_photo_set()).unwrap();
    v["photo"]["models"].as_array_mut().unwrap().truncate(1);
    let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("photo.models") && e.contains("fooled"), "{e}");
}
