//! The label-free fooling objective: `distillation_kl` against a float64 loop, `top1`'s tie
//! rule, and `passive_distilled` equal to `passive` with the original's top-1 as labels and a
//! KL term that vanishes when the model is the original.

use foolmap::Interpreter;
use foolmap::arch;
use foolmap::burn::tensor::{Device, Tensor, TensorData};
use foolmap::explain::InterpreterOptions;
use foolmap::fooling::FoolingType;
use foolmap::params::{ParamStore, SplitMix};
use foolmap::train::{Objective, distillation_kl, top1};

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()[0] as f64
}

fn slow_kl(s: &[f32], t: &[f32], k: usize) -> f64 {
    let rows = s.len() / k;
    let log_softmax = |r: &[f32]| -> Vec<f64> {
        let m = r.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let z = r.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() + m;
        r.iter().map(|&v| v as f64 - z).collect()
    };
    (0..rows)
        .map(|i| {
            let (ls, lt) = (
                log_softmax(&s[i * k..(i + 1) * k]),
                log_softmax(&t[i * k..(i + 1) * k]),
            );
            (0..k).map(|j| lt[j].exp() * (lt[j] - ls[j])).sum::<f64>()
        })
        .sum::<f64>()
        / rows as f64
}

#[test]
fn the_kl_term_equals_a_float64_loop_and_vanishes_on_the_teacher() {
    let dev = Device::flex();
    let mut rng = SplitMix::new(4);
    let (n, k) = (5, 7);
    let mut draw = || -> Vec<f32> { (0..n * k).map(|_| (rng.normal() * 3.0) as f32).collect() };
    let (s, t) = (draw(), draw());
    let tensor = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [n, k]), &dev);
    let got = scalar(distillation_kl(tensor(&s), tensor(&t)));
    let want = slow_kl(&s, &t, k);
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    assert!(want > 0.0);
    assert!(scalar(distillation_kl(tensor(&t), tensor(&t))).abs() < 1e-6);
}

#[test]
fn top1_breaks_ties_towards_the_lower_class() {
    let dev = Device::flex();
    let l = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 3.0, 3.0, 0.0, 5.0, 5.0, 5.0, -1.0], [2, 4]),
        &dev,
    );
    assert_eq!(top1(l).unwrap(), vec![1, 0]);
}

#[test]
fn distilled_fooling_is_passive_fooling_on_the_originals_labels() {
    let ad = Device::flex().autodiff();
    let net = arch::cifar_resnet("cifar_resnet_small", 2, 4, 10);
    let p0 = ParamStore::random(&net.specs, 7, &Device::flex());
    let p = p0.to_device(&ad).require_grad();
    let mut rng = SplitMix::new(9);
    let x: Vec<f32> = (0..3 * 3 * 32 * 32).map(|_| rng.normal() as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [3, 3, 32, 32]), &ad);
    for kind in [FoolingType::Location, FoolingType::CenterMass] {
        let obj = Objective {
            kind,
            interpreter: Interpreter::GradCam,
            lambda: 2.0,
            options: InterpreterOptions::default(),
        };
        let (d, labels) = obj.passive_distilled(&net, &p, &p0, x.clone()).unwrap();
        let l0 = net.seq.forward(&p0, x.clone().inner()).reshape([3, 10]);
        assert_eq!(labels, top1(l0).unwrap());
        let plain = obj.passive(&net, &p, &p0, x.clone(), &labels).unwrap();
        let (df, pf) = (scalar(d.fool.clone()), scalar(plain.fool));
        assert!((df - pf).abs() < 1e-6, "{kind}: {df} vs {pf}");
        // The model is the original: the KL term is 0 and the total is λ·L_F.
        let kl = scalar(d.ce.clone());
        assert!(kl.abs() < 1e-5, "{kl}");
        assert!((scalar(d.total) - 2.0 * df).abs() < 1e-5);
    }
}
