//! torchvision DenseNet (spec §2), with dense layers and transitions as top-level nodes.

use super::{Dataset, Net};
use crate::model::{MaxPool, Node, Seq, SpecBuilder};

/// torchvision DenseNet. Dense layers and transitions are flattened into top-level nodes so
/// that the tap (input of the last dense layer, DenseNet121: `features.denseblock4.denselayer16`,
/// spec §2) is a top-level node input.
pub fn densenet(
    id: &str,
    growth: usize,
    blocks: &[usize],
    init: usize,
    bn_size: usize,
    classes: usize,
) -> Net {
    let mut b = SpecBuilder::default();
    let mut seq = Seq::default();
    seq.push(
        "features.conv0",
        b.conv("features.conv0", 3, init, 7, 2, 3, false),
    );
    seq.push("features.norm0", b.bn("features.norm0", init));
    seq.push("features.relu0", Node::Relu);
    seq.push(
        "features.pool0",
        Node::MaxPool(MaxPool {
            kernel: 3,
            stride: 2,
            padding: 1,
            ceil: false,
        }),
    );
    let mut c = init;
    let mut last = String::new();
    for (bi, &n) in blocks.iter().enumerate() {
        for li in 0..n {
            let name = format!("features.denseblock{}.denselayer{}", bi + 1, li + 1);
            let mut br = Seq::default();
            let mid = bn_size * growth;
            br.push(format!("{name}.norm1"), b.bn(&format!("{name}.norm1"), c));
            br.push(format!("{name}.relu1"), Node::Relu);
            br.push(
                format!("{name}.conv1"),
                b.conv(&format!("{name}.conv1"), c, mid, 1, 1, 0, false),
            );
            br.push(format!("{name}.norm2"), b.bn(&format!("{name}.norm2"), mid));
            br.push(format!("{name}.relu2"), Node::Relu);
            br.push(
                format!("{name}.conv2"),
                b.conv(&format!("{name}.conv2"), mid, growth, 3, 1, 1, false),
            );
            seq.push(name.clone(), Node::Dense(Box::new(br)));
            last = name;
            c += growth;
        }
        if bi + 1 < blocks.len() {
            let t = format!("features.transition{}", bi + 1);
            seq.push(format!("{t}.norm"), b.bn(&format!("{t}.norm"), c));
            seq.push(format!("{t}.relu"), Node::Relu);
            seq.push(
                format!("{t}.conv"),
                b.conv(&format!("{t}.conv"), c, c / 2, 1, 1, 0, false),
            );
            seq.push(format!("{t}.pool"), Node::AvgPool(2));
            c /= 2;
        }
    }
    seq.push("features.norm5", b.bn("features.norm5", c));
    seq.push("relu", Node::Relu);
    seq.push("avgpool", Node::GlobalAvgPool);
    seq.push("classifier", b.linear("classifier", c, classes));
    Net::finish(id, seq, b, &last, Dataset::ImageNet, classes)
}
