//! torchvision SqueezeNet 1.0 / 1.1 (spec §2): a conv stem, Fire modules between ceil-mode
//! max-pools, and a convolutional classifier.

use super::{Dataset, Net};
use crate::model::{Fire, MaxPool, Node, Seq, SpecBuilder};

/// (index, squeeze, expand) of each Fire of SqueezeNet 1.0; pools elsewhere.
const FIRES_1_0: &[(usize, usize, usize)] = &[
    (3, 16, 64),
    (4, 16, 64),
    (5, 32, 128),
    (7, 32, 128),
    (8, 48, 192),
    (9, 48, 192),
    (10, 64, 256),
    (12, 64, 256),
];

/// (index, squeeze, expand) of each Fire of SqueezeNet 1.1; pools elsewhere.
const FIRES_1_1: &[(usize, usize, usize)] = &[
    (3, 16, 64),
    (4, 16, 64),
    (6, 32, 128),
    (7, 32, 128),
    (9, 48, 192),
    (10, 48, 192),
    (11, 64, 256),
    (12, 64, 256),
];

/// torchvision SqueezeNet 1.0 / 1.1 (channel widths divided by `div` for tests). Tap: input of
/// `features.12`, the last Fire module.
pub fn squeezenet(id: &str, v1_1: bool, div: usize, classes: usize) -> Net {
    let mut b = SpecBuilder::default();
    let mut seq = Seq::default();
    let d = |c: usize| (c / div).max(1);
    // Stem width and kernel, Fire layout, pool indices.
    let (stem, k, layout, pools): (usize, usize, _, &[usize]) = if v1_1 {
        (64, 3, FIRES_1_1, &[2, 5, 8])
    } else {
        (96, 7, FIRES_1_0, &[2, 6, 11])
    };
    seq.push(
        "features.0",
        b.conv("features.0", 3, d(stem), k, 2, 0, true),
    );
    seq.push("features.1", Node::Relu);
    let mut c = d(stem);
    let mut next = 0;
    for i in 2..=12 {
        if pools.contains(&i) {
            seq.push(format!("features.{i}"), ceil_pool());
        } else {
            let (idx, s, e) = layout[next];
            debug_assert_eq!(idx, i);
            next += 1;
            c = push_fire(&mut b, &mut seq, i, c, d(s), d(e));
        }
    }
    seq.push("classifier.0", Node::Dropout);
    seq.push(
        "classifier.1",
        b.conv("classifier.1", c, classes, 1, 1, 0, true),
    );
    seq.push("classifier.2", Node::Relu);
    seq.push("classifier.3", Node::GlobalAvgPool);
    Net::finish(id, seq, b, "features.12", Dataset::ImageNet, classes)
}

/// SqueezeNet's max-pool: 3×3, stride 2, ceil mode.
fn ceil_pool() -> Node {
    Node::MaxPool(MaxPool {
        kernel: 3,
        stride: 2,
        padding: 0,
        ceil: true,
    })
}

/// Appends the Fire module `features.{i}` (squeeze `s`, expand `e` + `e`) after `cin` channels;
/// returns its output channels `2·e`.
fn push_fire(
    b: &mut SpecBuilder,
    seq: &mut Seq,
    i: usize,
    cin: usize,
    s: usize,
    e: usize,
) -> usize {
    let name = format!("features.{i}");
    let mut sq = Seq::default();
    sq.push(
        format!("{name}.squeeze"),
        b.conv(&format!("{name}.squeeze"), cin, s, 1, 1, 0, true),
    );
    sq.push(format!("{name}.squeeze_activation"), Node::Relu);
    let mut e1 = Seq::default();
    e1.push(
        format!("{name}.expand1x1"),
        b.conv(&format!("{name}.expand1x1"), s, e, 1, 1, 0, true),
    );
    e1.push(format!("{name}.expand1x1_activation"), Node::Relu);
    let mut e3 = Seq::default();
    e3.push(
        format!("{name}.expand3x3"),
        b.conv(&format!("{name}.expand3x3"), s, e, 3, 1, 1, true),
    );
    e3.push(format!("{name}.expand3x3_activation"), Node::Relu);
    seq.push(
        name,
        Node::Fire(Box::new(Fire {
            squeeze: sq,
            expand1x1: e1,
            expand3x3: e3,
        })),
    );
    2 * e
}
