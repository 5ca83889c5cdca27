//! `ParamStore::non_finite`, the per-step weight check of a fooling run: it names the first
//! parameter holding a NaN or ±Inf, on plain and autodiff devices, and never flags large finite
//! weights (the sum it reads back cannot overflow). And the interpreter lists derived from the
//! registry (foolable = tap level; the page's offer).

use foolmap::Architecture;
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::params::ParamStore;

/// `p` with `value` written at index `at` of parameter `name`.
fn with_value(p: &ParamStore, name: &str, at: usize, value: f32, device: &Device) -> ParamStore {
    let id = p.id(name).expect("parameter");
    let mut values = p.values().to_vec();
    let mut v = values[id.0]
        .to_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    v[at] = value;
    let n = v.len();
    values[id.0] = Tensor::from_data(TensorData::new(v, [n]), device);
    let mut out = p.clone();
    out.set_values(values);
    out
}

#[test]
fn non_finite_names_the_first_bad_parameter_and_ignores_large_finite_ones() {
    let net = Architecture::ResNet20.build();
    for (device, leaves) in [(Device::flex(), false), (Device::flex().autodiff(), true)] {
        let p = ParamStore::random(&net.specs, 3, &device);
        let p = if leaves { p.require_grad() } else { p };
        assert_eq!(p.non_finite().unwrap(), None);
        // Finite values whose plain sum would overflow f32 are not flagged.
        let mut big = p.clone();
        for at in 0..4 {
            big = with_value(&big, "conv1.weight", at, f32::MAX, &device);
        }
        assert_eq!(big.non_finite().unwrap(), None);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let q = with_value(&p, "layer3.2.bn2.bias", 7, bad, &device);
            assert_eq!(
                q.non_finite().unwrap().as_deref(),
                Some("layer3.2.bn2.bias"),
                "{bad}"
            );
            // Two bad tensors: the first in declaration order is named.
            let q = with_value(&q, "layer1.0.conv2.weight", 0, bad, &device);
            assert_eq!(
                q.non_finite().unwrap().as_deref(),
                Some("layer1.0.conv2.weight"),
                "{bad}"
            );
        }
    }
}

/// The registry is the one source of the interpreter lists: the foolable ones are exactly the
/// tap-level ones, and the page's offer is them plus their input-level counterparts.
#[test]
fn the_interpreter_lists_follow_the_registry() {
    use foolmap::Interpreter;
    use foolmap::explain::interpreter::Level;
    let tap: Vec<Interpreter> = Interpreter::ALL
        .iter()
        .copied()
        .filter(|i| i.level() == Level::Tap)
        .collect();
    assert_eq!(Interpreter::FOOLABLE, tap.as_slice());
    let offered = Interpreter::offered();
    assert_eq!(&offered[..tap.len()], tap.as_slice());
    for i in &offered[tap.len()..] {
        assert_eq!(i.level(), Level::Input);
        assert!(tap.iter().any(|t| t.at_level(Level::Input) == Some(*i)));
    }
    for id in offered.iter().map(|i| i.id()) {
        assert_eq!(id.parse::<Interpreter>().unwrap().id(), id);
    }
}
