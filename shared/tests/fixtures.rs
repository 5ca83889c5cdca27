//! Parity with the reference tensors of `shared/fixtures` (an independent PyTorch float64
//! implementation of the spec), at the tolerances its README suggests.

mod common;

use common::*;
use foolmap::burn::tensor::{Device, Tensor};
use foolmap::explain::interpreter::{explain_traced, logits, signal};
use foolmap::explain::rules::BiasMode;
use foolmap::explain::{BnMode, GradOptions, LrpOptions, Sweep};
use foolmap::fooling::{self, FoolingType};
use foolmap::maps::rot180;
use foolmap::{Interpreter, InterpreterOptions};

fn dev() -> Device {
    Device::flex()
}

fn map_tol(case: &str, interp: Interpreter) -> (f32, bool) {
    // (tolerance, input-level SqueezeNet map with local float32 effects)
    let squeeze_input =
        case.starts_with("squeezenet") && interp.level() == foolmap::explain::Level::Input;
    (1e-4, squeeze_input)
}

fn check_map(case: &str, name: &str, got: &[f32], want: &[f32], squeeze_input: bool) {
    if squeeze_input {
        // README: 1e-2 for the SqueezeNet input-level maps, or 99 % of pixels within 1e-4.
        assert_mostly_close(&format!("{case} {name}"), got, want, 1e-4, 0.99, 1e-2);
    } else {
        assert_close(&format!("{case} {name}"), got, want, 1e-4);
    }
}

#[test]
fn logits_and_tap_activations_match() {
    for case in CASES {
        let fx = fixture(case);
        let (net, sd) = case_net(case);
        let p = params(&net, &sd, &dev());
        let x = tensor::<4>(&fx, "input", &dev());
        let tr = net.seq.trace(&p, x);
        let l = values(logits(&tr));
        let tol = if case.starts_with("squeezenet") {
            1e-3
        } else {
            1e-4
        };
        assert_close(
            &format!("{case} logits"),
            &l,
            &fx.tensors["logits"].data,
            tol,
        );
        assert_rel(
            &format!("{case} tap.activation"),
            &values(tr.inputs[net.tap].clone()),
            &fx.tensors["tap.activation"].data,
            1e-4,
        );
    }
}

#[test]
fn tap_and_input_signals_match() {
    let grad = Sweep::Gradient(GradOptions::default());
    let lrp = Sweep::Lrp(LrpOptions::default());
    for case in CASES {
        let fx = fixture(case);
        let (net, sd) = case_net(case);
        let p = params(&net, &sd, &dev());
        let tr = net.seq.trace(&p, tensor::<4>(&fx, "input", &dev()));
        let cls = labels(&fx, "labels");
        let tg = values(signal(&net, &p, &tr, &cls, net.tap, &grad).unwrap());
        assert_rel(
            &format!("{case} tap.gradient"),
            &tg,
            &fx.tensors["tap.gradient"].data,
            1e-4,
        );
        let tr_ = values(signal(&net, &p, &tr, &cls, net.tap, &lrp).unwrap());
        assert_rel(
            &format!("{case} tap.relevance"),
            &tr_,
            &fx.tensors["tap.relevance"].data,
            1e-4,
        );
        if let Some(want) = fx.tensors.get("input.gradient") {
            let ig = values(signal(&net, &p, &tr, &cls, 0, &grad).unwrap());
            assert_rel(&format!("{case} input.gradient"), &ig, &want.data, 1e-4);
        }
        if let Some(want) = fx.tensors.get("input.relevance") {
            let ir = values(signal(&net, &p, &tr, &cls, 0, &lrp).unwrap());
            assert_rel(&format!("{case} input.relevance"), &ir, &want.data, 1e-4);
        }
    }
}

#[test]
fn every_map_matches() {
    let o = InterpreterOptions::default();
    for case in CASES {
        let fx = fixture(case);
        let (net, sd) = case_net(case);
        let p = params(&net, &sd, &dev());
        let tr = net.seq.trace(&p, tensor::<4>(&fx, "input", &dev()));
        for (key, labels_key, prefix) in [
            ("labels", "labels", "map"),
            ("labels_c2", "labels_c2", "map_c2"),
        ] {
            let _ = key;
            let cls = labels(&fx, labels_key);
            for interp in [
                Interpreter::SimpleGrad,
                Interpreter::SimpleGradT,
                Interpreter::GradCam,
                Interpreter::LrpT,
                Interpreter::Lrp,
                Interpreter::LrpNorm,
            ] {
                let name = format!("{prefix}.{}", interp.id());
                let Some(want) = fx.tensors.get(&name) else {
                    continue;
                };
                let got = values(explain_traced(&net, &p, &tr, &cls, interp, &o).unwrap());
                let (_, sq) = map_tol(case, interp);
                if interp == Interpreter::Lrp {
                    // Raw relevance: compare relative to its scale.
                    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let g: Vec<f32> = got.iter().map(|v| v / scale).collect();
                    let w: Vec<f32> = want.data.iter().map(|v| v / scale).collect();
                    check_map(case, &name, &g, &w, sq);
                } else {
                    check_map(case, &name, &got, &want.data, sq);
                }
            }
        }
    }
}

#[test]
fn lrp_alternatives_match() {
    let o = InterpreterOptions::default();
    for case in CASES {
        let fx = fixture(case);
        let (net, sd) = case_net(case);
        let p = params(&net, &sd, &dev());
        let tr = net.seq.trace(&p, tensor::<4>(&fx, "input", &dev()));
        let cls = labels(&fx, "labels");
        let variants = [
            (
                "bias_positive",
                LrpOptions {
                    bias: BiasMode::Positive,
                    ..LrpOptions::default()
                },
            ),
            (
                "bn_identity",
                LrpOptions {
                    bn: BnMode::Identity,
                    ..LrpOptions::default()
                },
            ),
        ];
        for (alt, lrp) in variants {
            let oo = InterpreterOptions { lrp, ..o };
            for interp in [Interpreter::LrpT, Interpreter::Lrp] {
                let name = format!("alt.{alt}.{}", interp.id());
                let Some(want) = fx.tensors.get(&name) else {
                    continue;
                };
                let got = values(explain_traced(&net, &p, &tr, &cls, interp, &oo).unwrap());
                if interp == Interpreter::Lrp {
                    if case.starts_with("squeezenet") {
                        let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
                        let g: Vec<f32> = got.iter().map(|v| v / scale).collect();
                        let w: Vec<f32> = want.data.iter().map(|v| v / scale).collect();
                        assert_mostly_close(&format!("{case} {name}"), &g, &w, 1e-4, 0.99, 1e-2);
                    } else {
                        assert_rel(&format!("{case} {name}"), &got, &want.data, 1e-4);
                    }
                } else {
                    assert_close(&format!("{case} {name}"), &got, &want.data, 1e-4);
                }
            }
        }
    }
}

fn fixture_map(fx: &foolmap::StateDict, key: &str) -> Tensor<3> {
    tensor::<3>(fx, key, &dev())
}

fn rel1(name: &str, got: f32, want: f32) {
    let d = (got - want).abs() / want.abs().max(1e-6);
    assert!(
        d <= 1e-4 || (got - want).abs() <= 1e-6,
        "{name}: {got} vs {want} (rel {d:e})"
    );
}

#[test]
fn losses_statistics_and_topk_positions_match() {
    for case in CASES {
        let fx = fixture(case);
        for m in [
            "lrp_t",
            "grad_cam",
            "simple_grad_t",
            "simple_grad",
            "lrp_norm",
        ] {
            let Some(_) = fx.tensors.get(&format!("map.{m}")) else {
                continue;
            };
            let h = fixture_map(&fx, &format!("map.{m}"));
            let h0 = rot180(h.clone());
            // top-k positions
            let pos = fooling::topk_positions(&h0).unwrap();
            let want_pos: Vec<usize> = fx.tensors[&format!("topk_positions.{m}")]
                .data
                .iter()
                .map(|&v| v as usize)
                .collect();
            // Equal up to float32 ties: the values at each rank agree.
            let h0v = values(h0.clone());
            let hw = h0v.len() / pos.len();
            let got_vals: Vec<f32> = pos
                .iter()
                .enumerate()
                .flat_map(|(i, p)| p.iter().map(move |&j| (i, j)))
                .map(|(i, j)| h0v[i * hw + j])
                .collect();
            let k = pos[0].len();
            let want_vals: Vec<f32> = want_pos
                .iter()
                .enumerate()
                .map(|(n, &j)| h0v[(n / k) * hw + j])
                .collect();
            assert_eq!(got_vals, want_vals, "{case} topk_positions.{m}");
            let exact = pos
                .concat()
                .iter()
                .zip(&want_pos)
                .filter(|(a, b)| a == b)
                .count();
            assert!(
                exact as f64 >= 0.99 * want_pos.len() as f64,
                "{case} topk_positions.{m}: only {exact} identical"
            );
            // statistics
            for (kind, key) in [
                (FoolingType::Location, "location"),
                (FoolingType::TopK, "topk"),
                (FoolingType::CenterMass, "center_mass"),
            ] {
                let got = values(fooling::statistic(kind, h.clone(), Some(h0.clone())).unwrap());
                let want = &fx.tensors[&format!("stat.{m}.{key}")].data;
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    rel1(&format!("{case} stat.{m}.{key}[{i}]"), *g, *w);
                }
                if let Some(lw) = fx.tensors.get(&format!("loss.{m}.{key}")) {
                    let l =
                        values(fooling::passive_loss(kind, h.clone(), Some(h0.clone())).unwrap());
                    rel1(&format!("{case} loss.{m}.{key}"), l[0], lw.data[0]);
                }
            }
            if let Some(lw) = fx.tensors.get(&format!("loss.{m}.active")) {
                let h2 = fixture_map(&fx, &format!("map_c2.{m}"));
                let l = values(fooling::active_loss(
                    h.clone(),
                    h2.clone(),
                    h0.clone(),
                    rot180(h2),
                ));
                rel1(&format!("{case} loss.{m}.active"), l[0], lw.data[0]);
            }
        }
    }
}

/// `wgrad.*`: gradients of the four fooling losses w.r.t. parameters, through the maps.
#[test]
fn loss_gradients_through_maps_match() {
    let ad = Device::flex().autodiff();
    let o = InterpreterOptions::default();
    for case in CASES {
        let fx = fixture(case);
        let (net, sd) = case_net(case);
        let base = params(&net, &sd, &ad);
        let x = tensor::<4>(&fx, "input", &ad);
        let c1 = labels(&fx, "labels");
        let c2 = labels(&fx, "labels_c2");
        let pnames: Vec<String> = fx
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix("wgrad.lrp_t.location.").map(str::to_string))
            .collect();
        assert!(!pnames.is_empty(), "{case}: no wgrad tensors");
        for interp in Interpreter::FOOLABLE {
            for kind in FoolingType::ALL {
                let p = base.clone().require_grad();
                let tr = net.seq.trace(&p, x.clone());
                let h = explain_traced(&net, &p, &tr, &c1, *interp, &o).unwrap();
                let h0 = rot180(h.clone().detach());
                let loss = match kind {
                    FoolingType::Active => {
                        let h2 = explain_traced(&net, &p, &tr, &c2, *interp, &o).unwrap();
                        let h20 = rot180(h2.clone().detach());
                        fooling::active_loss(h, h2, h0, h20)
                    }
                    k => fooling::passive_loss(*k, h, Some(h0)).unwrap(),
                };
                let grads = loss.backward();
                let key = kind.id().replace('-', "_");
                for pn in &pnames {
                    let name = format!("wgrad.{}.{key}.{pn}", interp.id());
                    let want = &fx.tensors[&name].data;
                    let id = p.id(pn).unwrap();
                    let got = p
                        .flat(id)
                        .grad(&grads)
                        .map(values)
                        .unwrap_or_else(|| vec![0.0; want.len()]);
                    assert_rel(&format!("{case} {name}"), &got, want, 1e-3);
                }
            }
        }
    }
}
