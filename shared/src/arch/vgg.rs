//! torchvision VGG (spec §2): plain conv stacks with optional BatchNorm, three-layer classifier.

use super::{Dataset, Net};
use crate::model::{MaxPool, Node, Seq, SpecBuilder};

/// VGG11 `features` widths (0 = max-pool).
pub(super) const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
/// VGG13 `features` widths (0 = max-pool).
pub(super) const VGG13: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
];
/// VGG16 `features` widths (0 = max-pool).
pub(super) const VGG16: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
/// VGG19 `features` widths (0 = max-pool).
pub(super) const VGG19: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

/// torchvision VGG: `features` from `cfg` (0 = max-pool), then `classifier.{0,3,6}`.
///
/// `spatial` is the side of the last feature map (7 for 224 inputs; torchvision's
/// AdaptiveAvgPool2d(7) is then the identity and is omitted). Tap: input of the last conv
/// (VGG19: `features.34`, spec §2).
pub fn vgg(
    id: &str,
    cfg: &[usize],
    bn: bool,
    spatial: usize,
    hidden: usize,
    classes: usize,
) -> Net {
    let mut b = SpecBuilder::default();
    let mut seq = Seq::default();
    let (mut i, mut cin, mut last_conv) = (0usize, 3usize, String::new());
    for &v in cfg {
        if v == 0 {
            seq.push(
                format!("features.{i}"),
                Node::MaxPool(MaxPool {
                    kernel: 2,
                    stride: 2,
                    padding: 0,
                    ceil: false,
                }),
            );
            i += 1;
            continue;
        }
        let name = format!("features.{i}");
        seq.push(name.clone(), b.conv(&name, cin, v, 3, 1, 1, true));
        last_conv = name;
        i += 1;
        if bn {
            let name = format!("features.{i}");
            seq.push(name.clone(), b.bn(&name, v));
            i += 1;
        }
        seq.push(format!("features.{i}"), Node::Relu);
        i += 1;
        cin = v;
    }
    seq.push("flatten", Node::Flatten);
    seq.push(
        "classifier.0",
        b.linear("classifier.0", cin * spatial * spatial, hidden),
    );
    seq.push("classifier.1", Node::Relu);
    seq.push("classifier.2", Node::Dropout);
    seq.push("classifier.3", b.linear("classifier.3", hidden, hidden));
    seq.push("classifier.4", Node::Relu);
    seq.push("classifier.5", Node::Dropout);
    seq.push("classifier.6", b.linear("classifier.6", hidden, classes));
    Net::finish(id, seq, b, &last_conv, Dataset::ImageNet, classes)
}
