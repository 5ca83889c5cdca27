//! Residual networks (spec §2): torchvision's ImageNet ResNets and the CIFAR ResNets of the
//! data mirror (akamaster layout).

use super::{Dataset, Net};
use crate::model::{MaxPool, Node, Residual, Seq, Shortcut, SpecBuilder};

/// torchvision ResNet (v1.5: stride on the 3×3 conv of a Bottleneck). Tap: input of the last
/// block of `layer4` (ResNet50: `layer4.2`, spec §2).
pub fn resnet(
    id: &str,
    bottleneck: bool,
    blocks: &[usize; 4],
    width: usize,
    classes: usize,
) -> Net {
    let mut b = SpecBuilder::default();
    let mut seq = Seq::default();
    push_stem(&mut b, &mut seq, width);
    let expansion = if bottleneck { 4 } else { 1 };
    let mut cin = width;
    let mut last = String::new();
    for (l, &n) in blocks.iter().enumerate() {
        let planes = width << l;
        for j in 0..n {
            let stride = if l > 0 && j == 0 { 2 } else { 1 };
            let name = format!("layer{}.{j}", l + 1);
            let cout = planes * expansion;
            let br = if bottleneck {
                bottleneck_branch(&mut b, &name, cin, planes, cout, stride)
            } else {
                basic_branch(&mut b, &name, cin, planes, stride)
            };
            let shortcut = if stride != 1 || cin != cout {
                projection(&mut b, &name, cin, cout, stride)
            } else {
                Shortcut::Identity
            };
            seq.push(name.clone(), residual(br, shortcut));
            last = name;
            cin = cout;
        }
    }
    seq.push("avgpool", Node::GlobalAvgPool);
    seq.push("fc", b.linear("fc", cin, classes));
    Net::finish(id, seq, b, &last, Dataset::ImageNet, classes)
}

/// The ImageNet ResNet stem: `conv1` 7×7/2, `bn1`, `relu`, `maxpool` 3×3/2.
fn push_stem(b: &mut SpecBuilder, seq: &mut Seq, width: usize) {
    seq.push("conv1", b.conv("conv1", 3, width, 7, 2, 3, false));
    seq.push("bn1", b.bn("bn1", width));
    seq.push("relu", Node::Relu);
    seq.push(
        "maxpool",
        Node::MaxPool(MaxPool {
            kernel: 3,
            stride: 2,
            padding: 1,
            ceil: false,
        }),
    );
}

/// Branch of a BasicBlock `name`: conv 3×3 (stride) + BN + ReLU, conv 3×3 + BN.
fn basic_branch(b: &mut SpecBuilder, name: &str, cin: usize, planes: usize, stride: usize) -> Seq {
    let mut br = Seq::default();
    br.push(
        format!("{name}.conv1"),
        b.conv(&format!("{name}.conv1"), cin, planes, 3, stride, 1, false),
    );
    br.push(format!("{name}.bn1"), b.bn(&format!("{name}.bn1"), planes));
    br.push(format!("{name}.relu1"), Node::Relu);
    br.push(
        format!("{name}.conv2"),
        b.conv(&format!("{name}.conv2"), planes, planes, 3, 1, 1, false),
    );
    br.push(format!("{name}.bn2"), b.bn(&format!("{name}.bn2"), planes));
    br
}

/// Branch of a Bottleneck `name`: conv 1×1, conv 3×3 (stride), conv 1×1 to `cout`, each with BN
/// (ReLU between them).
fn bottleneck_branch(
    b: &mut SpecBuilder,
    name: &str,
    cin: usize,
    planes: usize,
    cout: usize,
    stride: usize,
) -> Seq {
    let mut br = Seq::default();
    br.push(
        format!("{name}.conv1"),
        b.conv(&format!("{name}.conv1"), cin, planes, 1, 1, 0, false),
    );
    br.push(format!("{name}.bn1"), b.bn(&format!("{name}.bn1"), planes));
    br.push(format!("{name}.relu1"), Node::Relu);
    br.push(
        format!("{name}.conv2"),
        b.conv(
            &format!("{name}.conv2"),
            planes,
            planes,
            3,
            stride,
            1,
            false,
        ),
    );
    br.push(format!("{name}.bn2"), b.bn(&format!("{name}.bn2"), planes));
    br.push(format!("{name}.relu2"), Node::Relu);
    br.push(
        format!("{name}.conv3"),
        b.conv(&format!("{name}.conv3"), planes, cout, 1, 1, 0, false),
    );
    br.push(format!("{name}.bn3"), b.bn(&format!("{name}.bn3"), cout));
    br
}

/// Projection shortcut `name.downsample`: conv 1×1 (stride) + BN.
fn projection(b: &mut SpecBuilder, name: &str, cin: usize, cout: usize, stride: usize) -> Shortcut {
    let mut ds = Seq::default();
    ds.push(
        format!("{name}.downsample.0"),
        b.conv(
            &format!("{name}.downsample.0"),
            cin,
            cout,
            1,
            stride,
            0,
            false,
        ),
    );
    ds.push(
        format!("{name}.downsample.1"),
        b.bn(&format!("{name}.downsample.1"), cout),
    );
    Shortcut::Projection(ds)
}

/// A residual block node `ReLU(branch(x) + shortcut(x))`.
fn residual(branch: Seq, shortcut: Shortcut) -> Node {
    Node::Residual(Box::new(Residual { branch, shortcut }))
}

/// CIFAR ResNet of He et al. 2016 (akamaster layout): 3 stages of `n` BasicBlocks with option-A
/// shortcuts, widths `w, 2w, 4w`. Tap: input of the last block of `layer3` (spec §2).
pub fn cifar_resnet(id: &str, n: usize, w: usize, classes: usize) -> Net {
    let mut b = SpecBuilder::default();
    let mut seq = Seq::default();
    seq.push("conv1", b.conv("conv1", 3, w, 3, 1, 1, false));
    seq.push("bn1", b.bn("bn1", w));
    seq.push("relu", Node::Relu);
    let mut cin = w;
    let mut last = String::new();
    for l in 0..3 {
        let planes = w << l;
        for j in 0..n {
            let stride = if l > 0 && j == 0 { 2 } else { 1 };
            let name = format!("layer{}.{j}", l + 1);
            let br = basic_branch(&mut b, &name, cin, planes, stride);
            let shortcut = if stride != 1 || cin != planes {
                Shortcut::OptionA { pad: planes / 4 }
            } else {
                Shortcut::Identity
            };
            seq.push(name.clone(), residual(br, shortcut));
            last = name;
            cin = planes;
        }
    }
    seq.push("avgpool", Node::GlobalAvgPool);
    seq.push("linear", b.linear("linear", cin, classes));
    Net::finish(id, seq, b, &last, Dataset::Cifar10, classes)
}
