//! Generated test matrix: for every architecture family (small widths, random weights and
//! inputs), the explicit gradient sweep equals Burn's autodiff gradient, at the tap and at the
//! input, and the explicit Grad-CAM / SimpleGrad maps are built from those gradients; a trace from
//! the tap on gives the tap-level maps of the full trace and their parameter gradients.

mod common;

use foolmap::arch::{self, Net};
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::interpreter::{one_hot, signal};
use foolmap::explain::{GradOptions, Sweep};
use foolmap::params::{ParamStore, SplitMix};

/// Small members of every family: (name, network, input side).
pub fn families() -> Vec<(&'static str, Net, usize)> {
    vec![
        (
            "vgg",
            arch::vgg("vgg_small", &[8, 0, 16, 16, 0, 16, 0], false, 4, 24, 10),
            32,
        ),
        (
            "vgg_bn",
            arch::vgg("vgg_bn_small", &[8, 0, 16, 16, 0, 16, 0], true, 4, 24, 10),
            32,
        ),
        (
            "resnet_basic",
            arch::resnet("resnet_basic_small", false, &[1, 1, 2, 1], 8, 10),
            64,
        ),
        (
            "resnet_bottleneck",
            arch::resnet("resnet_bottleneck_small", true, &[1, 2, 1, 2], 4, 10),
            64,
        ),
        (
            "densenet",
            arch::densenet("densenet_small", 4, &[2, 2, 3], 8, 2, 10),
            64,
        ),
        (
            "squeezenet1_0",
            arch::squeezenet("squeezenet_small", false, 16, 10),
            96,
        ),
        (
            "squeezenet1_1",
            arch::squeezenet("squeezenet11_small", true, 16, 10),
            96,
        ),
        (
            "cifar_resnet",
            arch::cifar_resnet("cifar_resnet_small", 2, 4, 10),
            32,
        ),
    ]
}

fn random_input(n: usize, side: usize, seed: u64, dev: &Device) -> Tensor<4> {
    let mut rng = SplitMix::new(seed);
    let v: Vec<f32> = (0..n * 3 * side * side)
        .map(|_| rng.normal() as f32)
        .collect();
    Tensor::from_data(TensorData::new(v, [n, 3, side, side]), dev)
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-20);
    common::max_abs(a, b) / scale
}

#[test]
fn explicit_gradients_equal_autodiff_for_every_family() {
    let ad = Device::flex().autodiff();
    for (family, net, side) in families() {
        for seed in [1u64, 2] {
            let p = ParamStore::random(&net.specs, seed, &ad);
            let x = random_input(2, side, seed + 10, &ad);
            let tr = net.seq.trace(&p, x.clone());
            let [_, k, _, _] = tr.output.dims();
            let classes = [seed as usize % k, (seed as usize + 3) % k];
            let sweep = Sweep::Gradient(GradOptions::default());
            for (level, stop) in [("tap", net.tap), ("input", 0)] {
                let explicit = common::values(
                    signal(&net, &p, &tr, &classes, stop, &sweep)
                        .unwrap()
                        .detach(),
                );
                // Autodiff: d sum(onehot ⊙ logits) / d A, with A a fresh leaf at the stop point.
                let a = net
                    .seq
                    .forward_to(&p, x.clone(), stop)
                    .detach()
                    .require_grad();
                let logits = net.seq.forward_from(&p, a.clone(), stop);
                let hot = one_hot(&classes, k, &ad).unwrap();
                let grads = logits.mul(hot).sum().backward();
                let auto = common::values(a.grad(&grads).expect("gradient"));
                let e = max_rel(&explicit, &auto);
                assert!(
                    e <= 1e-4,
                    "{family} seed {seed} {level}: explicit vs autodiff max rel error {e:e}"
                );
            }
        }
    }
}

/// A trace from the tap (the nodes below it untraced, as the fooling steps run it) gives the
/// tap-level maps of the full trace, bit for bit, and the same parameter gradients of those maps;
/// an interpreter that sweeps to the input refuses it with an error naming the trace.
#[test]
fn maps_from_the_tap_on_equal_the_full_traces() {
    use foolmap::explain::Interpreter;
    use foolmap::explain::interpreter::{explain_traced, trace_start};
    let ad = Device::flex().autodiff();
    let o = foolmap::explain::InterpreterOptions::default();
    for (family, net, side) in families() {
        let p = ParamStore::random(&net.specs, 3, &ad).require_grad();
        let x = random_input(2, side, 13, &ad);
        let k = net.seq.trace(&p, x.clone()).output.dims()[1];
        let classes = [1 % k, 4 % k];
        for interp in [
            Interpreter::LrpT,
            Interpreter::SimpleGradT,
            Interpreter::GradCam,
        ] {
            let what = format!("{family} {interp}");
            assert_eq!(trace_start(&net, interp), net.tap, "{what}");
            let run = |start: usize| {
                let tr = net.seq.trace_from(&p, x.clone(), start);
                assert_eq!(tr.start, start, "{what}");
                let map = explain_traced(&net, &p, &tr, &classes, interp, &o).unwrap();
                // The fooling losses differentiate the map: compare the parameter gradients
                // too (SimpleGrad-T's map has none below the tap, its masks being constants).
                let grads = map.clone().mul(map.clone()).sum().backward();
                let g: Vec<_> = p
                    .values()
                    .iter()
                    .map(|v| v.grad(&grads).map(common::values))
                    .collect();
                (common::values(map.detach()), g)
            };
            let (full, g_full) = run(0);
            let (tapped, g_tapped) = run(net.tap);
            assert_eq!(full, tapped, "{what}: map");
            assert_eq!(g_full, g_tapped, "{what}: parameter gradients");
            assert!(
                g_full.iter().any(Option::is_some),
                "{what}: a parameter gradient"
            );
        }
        if net.tap > 0 {
            let tr = net.seq.trace_from(&p, x.clone(), net.tap);
            let e = explain_traced(&net, &p, &tr, &classes, Interpreter::Lrp, &o)
                .unwrap_err()
                .to_string();
            assert!(e.contains("trace") && e.contains("node 0"), "{family}: {e}");
        }
    }
}
