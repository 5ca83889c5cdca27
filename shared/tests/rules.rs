//! Each LRP rule against a slow, obvious re-implementation; relevance conservation on bias-free
//! networks; the BatchNorm canonizer leaves outputs unchanged; a finite-difference check of a
//! fooling loss through a map.

mod common;

use foolmap::arch::{self, Net};
use foolmap::burn::tensor::module::max_pool2d_with_indices;
use foolmap::burn::tensor::{Device, Int, Tensor, TensorData};
use foolmap::explain::interpreter::{explain_traced, logits, signal};
use foolmap::explain::rules::{self, BiasMode};
use foolmap::explain::{LrpOptions, Sweep, fold_bn};
use foolmap::fooling;
use foolmap::model::{MaxPool, Node};
use foolmap::params::{ParamStore, SplitMix};
use foolmap::{Interpreter, InterpreterOptions, StateDict};

fn dev() -> Device {
    Device::flex()
}

fn randv(n: usize, rng: &mut SplitMix) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

fn t4(v: &[f32], s: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.to_vec(), s), &dev())
}

fn sgn(z: f64) -> f64 {
    if z >= 0.0 { 1.0 } else { -1.0 }
}

#[test]
fn alpha_beta_rule_matches_slow_loops() {
    let mut rng = SplitMix::new(3);
    let (ci, co, h, w, k, s, p) = (2usize, 3usize, 5usize, 6usize, 3usize, 2usize, 1usize);
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let a = randv(ci * h * w, &mut rng);
    let wt = randv(co * ci * k * k, &mut rng);
    let b = randv(co, &mut rng);
    let r = randv(co * ho * wo, &mut rng);
    for mode in [BiasMode::Signed, BiasMode::Positive, BiasMode::Twice] {
        let got = common::values(rules::alpha1_beta0(
            t4(&a, [1, ci, h, w]),
            t4(&wt, [co, ci, k, k]),
            Some(Tensor::from_data(TensorData::new(b.clone(), [co]), &dev())),
            t4(&r, [1, co, ho, wo]),
            s,
            p,
            mode,
            0.01,
        ));
        let mut want = vec![0f64; ci * h * w];
        for o in 0..co {
            for oy in 0..ho {
                for ox in 0..wo {
                    let taps = |f: &mut dyn FnMut(usize, usize, f64, f64)| {
                        for c in 0..ci {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (iy, ix) = (
                                        (oy * s + ky) as i64 - p as i64,
                                        (ox * s + kx) as i64 - p as i64,
                                    );
                                    if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                        continue;
                                    }
                                    let ii = (c * h + iy as usize) * w + ix as usize;
                                    let wv = wt[((o * ci + c) * k + ky) * k + kx] as f64;
                                    let av = a[ii] as f64;
                                    let contrib = if av >= 0.0 {
                                        av * wv.max(0.0)
                                    } else {
                                        av * wv.min(0.0)
                                    };
                                    f(ii, 0, contrib, 0.0);
                                }
                            }
                        }
                    };
                    let mut z = 0.0;
                    taps(&mut |_, _, c, _| z += c);
                    let bb = b[o] as f64;
                    z += match mode {
                        BiasMode::Signed => bb,
                        BiasMode::Positive => bb.max(0.0),
                        BiasMode::Twice => 2.0 * bb,
                    };
                    let q = r[(o * ho + oy) * wo + ox] as f64 / (z + 0.01 * sgn(z));
                    taps(&mut |ii, _, c, _| want[ii] += c * q);
                }
            }
        }
        let want: Vec<f32> = want.into_iter().map(|v| v as f32).collect();
        common::assert_rel(&format!("alpha1_beta0 {mode:?}"), &got, &want, 1e-4);
    }
}

#[test]
fn epsilon_rule_matches_slow_loops() {
    let mut rng = SplitMix::new(4);
    let (n, fi, fo) = (2usize, 5usize, 3usize);
    let a = randv(n * fi, &mut rng);
    let wt = randv(fo * fi, &mut rng);
    let b = randv(fo, &mut rng);
    let r = randv(n * fo, &mut rng);
    let got = common::values(rules::epsilon(
        Tensor::from_data(TensorData::new(a.clone(), [n, fi]), &dev()),
        Tensor::from_data(TensorData::new(wt.clone(), [fo, fi]), &dev()),
        Tensor::from_data(TensorData::new(b.clone(), [fo]), &dev()),
        Tensor::from_data(TensorData::new(r.clone(), [n, fo]), &dev()),
        0.01,
    ));
    let mut want = vec![0f32; n * fi];
    for i in 0..n {
        for kk in 0..fo {
            let z: f64 = (0..fi)
                .map(|j| a[i * fi + j] as f64 * wt[kk * fi + j] as f64)
                .sum::<f64>()
                + b[kk] as f64;
            let q = r[i * fo + kk] as f64 / (z + 0.01 * sgn(z));
            for j in 0..fi {
                want[i * fi + j] += (a[i * fi + j] as f64 * wt[kk * fi + j] as f64 * q) as f32;
            }
        }
    }
    common::assert_rel("epsilon", &got, &want, 1e-4);
}

#[test]
fn winner_take_all_sums_overlapping_windows() {
    let mut rng = SplitMix::new(5);
    let (c, h, w) = (2usize, 7usize, 7usize);
    let a = randv(c * h * w, &mut rng);
    let mp = MaxPool {
        kernel: 3,
        stride: 2,
        padding: 1,
        ceil: false,
    };
    let (_, idx) = max_pool2d_with_indices(t4(&a, [1, c, h, w]), mp.options());
    let [_, _, ho, wo] = idx.dims();
    let r = randv(c * ho * wo, &mut rng);
    let got = common::values(rules::winner_take_all(
        t4(&r, [1, c, ho, wo]),
        idx.reshape([1, c, ho * wo]),
        [h, w],
    ));
    let mut want = vec![0f32; c * h * w];
    for ch in 0..c {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut best: Option<(f32, usize)> = None;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) = ((oy * 2 + ky) as i64 - 1, (ox * 2 + kx) as i64 - 1);
                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                            continue;
                        }
                        let ii = (ch * h + iy as usize) * w + ix as usize;
                        if best.is_none_or(|(v, _)| a[ii] > v) {
                            best = Some((a[ii], ii));
                        }
                    }
                }
                want[best.expect("window").1] += r[(ch * ho + oy) * wo + ox];
            }
        }
    }
    common::assert_close("winner_take_all", &got, &want, 1e-6);
}

#[test]
fn pooling_rules_match_slow_loops() {
    let mut rng = SplitMix::new(6);
    let (c, h, w, k) = (2usize, 4usize, 6usize, 2usize);
    let a = randv(c * h * w, &mut rng);
    let r = randv(c * (h / k) * (w / k), &mut rng);
    let got = common::values(rules::avg_pool_lrp(
        t4(&a, [1, c, h, w]),
        t4(&r, [1, c, h / k, w / k]),
        k,
    ));
    let mut want = vec![0f32; c * h * w];
    for ch in 0..c {
        for oy in 0..h / k {
            for ox in 0..w / k {
                let cells: Vec<usize> = (0..k * k)
                    .map(|i| (ch * h + oy * k + i / k) * w + ox * k + i % k)
                    .collect();
                let mean: f64 =
                    cells.iter().map(|&i| a[i].max(0.0) as f64).sum::<f64>() / (k * k) as f64;
                for &i in &cells {
                    want[i] = (a[i].max(0.0) as f64 * r[(ch * (h / k) + oy) * (w / k) + ox] as f64
                        / (mean + 1e-8)
                        / (k * k) as f64) as f32;
                }
            }
        }
    }
    common::assert_rel("avg_pool_lrp", &got, &want, 1e-4);

    let rg = randv(c, &mut rng);
    let got = common::values(rules::global_avg_pool_lrp(
        t4(&a, [1, c, h, w]),
        t4(&rg, [1, c, 1, 1]),
    ));
    let mut want = vec![0f32; c * h * w];
    for ch in 0..c {
        let tot: f64 = (0..h * w).map(|i| a[ch * h * w + i].max(0.0) as f64).sum();
        for i in 0..h * w {
            want[ch * h * w + i] =
                (a[ch * h * w + i].max(0.0) as f64 * rg[ch] as f64 / (tot + 1e-8)) as f32;
        }
    }
    common::assert_rel("global_avg_pool_lrp", &got, &want, 1e-4);

    let (bv, sv, rv) = (randv(8, &mut rng), randv(8, &mut rng), randv(8, &mut rng));
    let (rb, rs) = rules::residual_split(
        t4(&bv, [1, 2, 2, 2]),
        t4(&sv, [1, 2, 2, 2]),
        t4(&rv, [1, 2, 2, 2]),
        false,
    );
    let (rb, rs) = (common::values(rb), common::values(rs));
    for i in 0..8 {
        let (bp, sp) = (bv[i].max(0.0), sv[i].max(0.0));
        let d = bp + sp + 1e-12;
        assert!(
            (rb[i] - bp / d * rv[i]).abs() < 1e-5 && (rs[i] - sp / d * rv[i]).abs() < 1e-5,
            "residual split {i}"
        );
    }
}

/// Sets every bias-like value to zero: conv/linear biases, BatchNorm β and running mean.
fn bias_free(net: &Net, seed: u64) -> ParamStore {
    let p = ParamStore::random(&net.specs, seed, &dev());
    let mut sd: StateDict = p.to_state_dict();
    for (k, t) in sd.tensors.iter_mut() {
        if k.ends_with(".bias") || k.ends_with("running_mean") {
            t.data.iter_mut().for_each(|v| *v = 0.0);
        }
    }
    ParamStore::from_state_dict(&net.specs, &sd, &net.id, "bias-free", &dev()).expect("fits")
}

#[test]
fn lrp_conserves_relevance_on_bias_free_networks() {
    let nets = vec![
        (
            arch::vgg("vgg", &[8, 0, 16, 0, 16, 0], false, 4, 16, 10),
            32,
        ),
        (
            arch::vgg("vgg_bn", &[8, 0, 16, 0, 16, 0], true, 4, 16, 10),
            32,
        ),
        (arch::cifar_resnet("cifar_resnet", 2, 4, 10), 32),
        (
            arch::resnet("resnet_bottleneck", true, &[1, 1, 1, 1], 4, 10),
            64,
        ),
        (arch::densenet("densenet", 4, &[2, 2], 8, 2, 10), 32),
        (arch::squeezenet("squeezenet", false, 16, 10), 96),
    ];
    // The stabilisers (ε of the Linear rule, 0.01 of the conv rule) are the only terms that do
    // not conserve; shrink them so that the test checks the rules' bookkeeping, not ε.
    let lrp = Sweep::Lrp(LrpOptions {
        epsilon: 1e-12,
        stabilizer: 1e-12,
        ..LrpOptions::default()
    });
    for (net, side) in nets {
        let p = bias_free(&net, 11);
        let mut rng = SplitMix::new(12);
        let x = t4(&randv(2 * 3 * side * side, &mut rng), [2, 3, side, side]);
        let tr = net.seq.trace(&p, x);
        let l = common::values(logits(&tr));
        let k = net.num_classes;
        let classes: Vec<usize> = (0..2)
            .map(|i| {
                (0..k)
                    .max_by(|&a, &b| l[i * k + a].total_cmp(&l[i * k + b]))
                    .unwrap_or(0)
            })
            .collect();
        let r = signal(&net, &p, &tr, &classes, 0, &lrp).unwrap();
        let rv = common::values(r);
        let per = 3 * side * side;
        for i in 0..2 {
            let sum: f64 = rv[i * per..(i + 1) * per].iter().map(|&v| v as f64).sum();
            let abs: f64 = rv[i * per..(i + 1) * per]
                .iter()
                .map(|&v| v.abs() as f64)
                .sum();
            let logit = l[i * k + classes[i]] as f64;
            let e = (sum - logit).abs() / logit.abs().max(1e-12);
            eprintln!(
                "{}: Σ R {sum:e}, Σ |R| {abs:e}, logit {logit:e}, rel {e:e}",
                net.id
            );
            assert!(
                e <= 1e-3,
                "{}: Σ R_input = {sum} vs logit {logit} (rel {e:e})",
                net.id
            );
        }
    }
}

#[test]
fn batchnorm_canonizer_leaves_outputs_unchanged() {
    let net = arch::cifar_resnet("cifar_resnet", 1, 4, 10);
    let p = ParamStore::random(&net.specs, 21, &dev());
    let mut rng = SplitMix::new(22);
    let x = t4(&randv(2 * 3 * 16 * 16, &mut rng), [2, 3, 16, 16]);
    let (Node::Conv(conv), Node::BatchNorm(bn)) = (&net.seq.nodes[0].1, &net.seq.nodes[1].1) else {
        panic!("conv1, bn1 expected")
    };
    let reference = bn.apply(&p, conv.apply(&p, x.clone()));
    let (w, b) = fold_bn(conv, bn, &p);
    let folded = foolmap::burn::tensor::module::conv2d(
        x,
        w,
        Some(b),
        foolmap::burn::tensor::ops::ConvOptions::new(
            [conv.stride; 2],
            [conv.padding; 2],
            [1, 1],
            1,
        ),
    );
    common::assert_rel(
        "folded conv",
        &common::values(folded),
        &common::values(reference),
        1e-5,
    );
    // The parameters themselves are untouched (the canonizer is a pure function).
    let again = ParamStore::random(&net.specs, 21, &dev());
    for (a, b) in p.values().iter().zip(again.values()) {
        assert_eq!(common::values(a.clone()), common::values(b.clone()));
    }
}

#[test]
fn fooling_loss_gradient_matches_finite_differences() {
    let ad = Device::flex().autodiff();
    let (net, sd) = common::case_net("tiny_vgg");
    let fx = common::fixture("tiny_vgg");
    let x_plain = common::tensor::<4>(&fx, "input", &dev());
    let classes = common::labels(&fx, "labels");
    let o = InterpreterOptions::default();
    let loss_at = |sd: &StateDict, device: &Device, x: Tensor<4>, grad: bool| {
        let mut p = ParamStore::from_state_dict(&net.specs, sd, "tiny_vgg", "fd", device).unwrap();
        if grad {
            p = p.require_grad();
        }
        let tr = net.seq.trace(&p, x);
        let h = explain_traced(&net, &p, &tr, &classes, Interpreter::GradCam, &o).unwrap();
        (fooling::location_loss(h), p)
    };
    let (loss, p) = loss_at(&sd, &ad, common::tensor::<4>(&fx, "input", &ad), true);
    let grads = loss.backward();
    for (pname, entries) in [
        ("classifier.6.weight", [0usize, 7, 33]),
        ("features.12.weight", [0, 5, 1000]),
        ("features.10.weight", [3, 100, 500]),
    ] {
        let g = common::values(
            p.flat(p.id(pname).unwrap())
                .grad(&grads)
                .expect("parameter on the map path has a gradient"),
        );
        for &e in &entries {
            let h = 2e-3f32;
            let eval = |delta: f32| {
                let mut s = sd.clone();
                s.tensors.get_mut(pname).unwrap().data[e] += delta;
                common::values(loss_at(&s, &dev(), x_plain.clone(), false).0)[0] as f64
            };
            let fd = (eval(h) - eval(-h)) / (2.0 * h as f64);
            let ad_v = g[e] as f64;
            assert!(
                (fd - ad_v).abs() <= 2e-3 + 5e-2 * ad_v.abs(),
                "{pname}[{e}]: finite difference {fd:e} vs autodiff {ad_v:e}"
            );
        }
    }
    let _: Option<Tensor<1, Int>> = None;
}
