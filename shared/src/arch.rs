//! The architecture registry (spec §2): torchvision-exact layouts, key names and default taps.
//!
//! [`Architecture`] drives the CLI, the web dropdowns and generated tests. Each builder is also
//! exposed with an explicit configuration so that tests can instantiate small widths of every
//! family (`vgg`, `resnet`, `densenet`, `squeezenet`, `cifar_resnet`).

use crate::error::{FoolmapError, Result};
use crate::model::{Fire, MaxPool, Node, Residual, Seq, Shortcut, SpecBuilder};
use crate::params::ParamSpec;

/// Which input pipeline a network expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// ImageNet: Resize(256, antialias) → CenterCrop(224) → mean/std; 1000 classes.
    ImageNet,
    /// CIFAR-10: 32×32 RGB → mean/std; 10 classes.
    Cifar10,
}

impl Dataset {
    /// Per-channel mean used by every model here (torchvision's ImageNet statistics; the CIFAR
    /// ResNets of the data mirror use the same).
    pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    /// Per-channel standard deviation.
    pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

    /// Side of the square network input.
    pub fn input_size(self) -> usize {
        match self {
            Dataset::ImageNet => 224,
            Dataset::Cifar10 => 32,
        }
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            Dataset::ImageNet => 1000,
            Dataset::Cifar10 => 10,
        }
    }
}

/// A network: structure, parameter declarations and tap (spec §2).
#[derive(Debug, Clone)]
pub struct Net {
    /// Registry id (`resnet20`, `vgg19`, ...) or a test name.
    pub id: String,
    /// The layers.
    pub seq: Seq,
    /// Parameter declarations in torchvision order.
    pub specs: Vec<ParamSpec>,
    /// Index of the top-level node whose *input* is the tap.
    pub tap: usize,
    /// Input pipeline.
    pub dataset: Dataset,
    /// Number of output classes.
    pub num_classes: usize,
}

impl Net {
    /// Number of trainable parameters (torchvision's published count; BatchNorm running
    /// statistics excluded).
    pub fn num_parameters(&self) -> usize {
        self.specs
            .iter()
            .filter(|s| s.kind == crate::params::ParamKind::Trainable)
            .map(|s| s.shape.iter().product::<usize>())
            .sum()
    }

    /// Module path of the tap node (e.g. `layer3.2`).
    pub fn tap_name(&self) -> &str {
        &self.seq.nodes[self.tap].0
    }

    /// Moves the tap to the input of the top-level node `name`.
    pub fn with_tap(mut self, name: &str) -> Result<Self> {
        self.tap = self
            .seq
            .position(name)
            .ok_or_else(|| FoolmapError::UnknownName {
                kind: "tap layer",
                name: name.to_string(),
                choices: self.seq.nodes.iter().map(|(n, _)| n.clone()).collect(),
            })?;
        Ok(self)
    }

    fn finish(
        id: &str,
        seq: Seq,
        b: SpecBuilder,
        tap: &str,
        dataset: Dataset,
        classes: usize,
    ) -> Self {
        let tap = seq
            .position(tap)
            .unwrap_or_else(|| panic!("builder bug: tap `{tap}` not in `{id}`"));
        Net {
            id: id.to_string(),
            seq,
            specs: b.specs,
            tap,
            dataset,
            num_classes: classes,
        }
    }
}

macro_rules! registry {
    ($( $variant:ident => $id:literal ),* $(,)?) => {
        /// Every architecture foolmap knows, with torchvision-style ids.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Architecture { $( #[doc = $id] $variant ),* }

        impl Architecture {
            /// All architectures, in registry order.
            pub const ALL: &'static [Architecture] = &[$(Architecture::$variant),*];

            /// Stable id (torchvision name, or `resnetNN` for the CIFAR ResNets).
            pub fn id(self) -> &'static str {
                match self { $(Architecture::$variant => $id),* }
            }
        }
    };
}

registry! {
    Vgg11 => "vgg11", Vgg13 => "vgg13", Vgg16 => "vgg16", Vgg19 => "vgg19",
    Vgg11Bn => "vgg11_bn", Vgg13Bn => "vgg13_bn", Vgg16Bn => "vgg16_bn", Vgg19Bn => "vgg19_bn",
    ResNet18 => "resnet18", ResNet34 => "resnet34", ResNet50 => "resnet50", ResNet101 => "resnet101",
    DenseNet121 => "densenet121", DenseNet161 => "densenet161", DenseNet169 => "densenet169",
    DenseNet201 => "densenet201",
    SqueezeNet1_0 => "squeezenet1_0", SqueezeNet1_1 => "squeezenet1_1",
    ResNet20 => "resnet20", ResNet32 => "resnet32", ResNet44 => "resnet44", ResNet56 => "resnet56",
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Architecture {
    type Err = FoolmapError;
    fn from_str(s: &str) -> Result<Self> {
        Architecture::ALL
            .iter()
            .copied()
            .find(|a| a.id() == s)
            .ok_or_else(|| FoolmapError::UnknownName {
                kind: "architecture",
                name: s.to_string(),
                choices: Architecture::ALL
                    .iter()
                    .map(|a| a.id().to_string())
                    .collect(),
            })
    }
}

const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const VGG13: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
];
const VGG16: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
const VGG19: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

impl Architecture {
    /// Input pipeline of the architecture.
    pub fn dataset(self) -> Dataset {
        use Architecture::*;
        match self {
            ResNet20 | ResNet32 | ResNet44 | ResNet56 => Dataset::Cifar10,
            _ => Dataset::ImageNet,
        }
    }

    /// Builds the structure and parameter declarations.
    pub fn build(self) -> Net {
        use Architecture::*;
        let id = self.id();
        let classes = self.dataset().num_classes();
        match self {
            Vgg11 | Vgg13 | Vgg16 | Vgg19 | Vgg11Bn | Vgg13Bn | Vgg16Bn | Vgg19Bn => {
                let cfg = match self {
                    Vgg11 | Vgg11Bn => VGG11,
                    Vgg13 | Vgg13Bn => VGG13,
                    Vgg16 | Vgg16Bn => VGG16,
                    _ => VGG19,
                };
                let bn = matches!(self, Vgg11Bn | Vgg13Bn | Vgg16Bn | Vgg19Bn);
                vgg(id, cfg, bn, 7, 4096, classes)
            }
            ResNet18 => resnet(id, false, &[2, 2, 2, 2], 64, classes),
            ResNet34 => resnet(id, false, &[3, 4, 6, 3], 64, classes),
            ResNet50 => resnet(id, true, &[3, 4, 6, 3], 64, classes),
            ResNet101 => resnet(id, true, &[3, 4, 23, 3], 64, classes),
            DenseNet121 => densenet(id, 32, &[6, 12, 24, 16], 64, 4, classes),
            DenseNet161 => densenet(id, 48, &[6, 12, 36, 24], 96, 4, classes),
            DenseNet169 => densenet(id, 32, &[6, 12, 32, 32], 64, 4, classes),
            DenseNet201 => densenet(id, 32, &[6, 12, 48, 32], 64, 4, classes),
            SqueezeNet1_0 => squeezenet(id, false, 1, classes),
            SqueezeNet1_1 => squeezenet(id, true, 1, classes),
            ResNet20 => cifar_resnet(id, 3, 16, classes),
            ResNet32 => cifar_resnet(id, 5, 16, classes),
            ResNet44 => cifar_resnet(id, 7, 16, classes),
            ResNet56 => cifar_resnet(id, 9, 16, classes),
        }
    }

    /// File name of the pretrained weights inside the data root's `weights/` folder, where the
    /// data mirror (or `foolmap data fetch`) provides them.
    pub fn weights_file(self) -> Option<&'static str> {
        use Architecture::*;
        match self {
            ResNet20 => Some("resnet20_cifar10.safetensors"),
            ResNet32 => Some("resnet32_cifar10.safetensors"),
            ResNet44 => Some("resnet44_cifar10.safetensors"),
            ResNet56 => Some("resnet56_cifar10.safetensors"),
            SqueezeNet1_0 => Some("squeezenet1_0_imagenet.safetensors"),
            _ => None,
        }
    }

    /// Official download URL of the published checkpoint (torchvision or akamaster). The
    /// 8-hex-digit suffix of the file name is the prefix of its SHA-256, as torch.hub checks.
    pub fn checkpoint_url(self) -> &'static str {
        use Architecture::*;
        match self {
            Vgg11 => "https://download.pytorch.org/models/vgg11-8a719046.pth",
            Vgg13 => "https://download.pytorch.org/models/vgg13-19584684.pth",
            Vgg16 => "https://download.pytorch.org/models/vgg16-397923af.pth",
            Vgg19 => "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            Vgg11Bn => "https://download.pytorch.org/models/vgg11_bn-6002323d.pth",
            Vgg13Bn => "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth",
            Vgg16Bn => "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth",
            Vgg19Bn => "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth",
            ResNet18 => "https://download.pytorch.org/models/resnet18-f37072fd.pth",
            ResNet34 => "https://download.pytorch.org/models/resnet34-b627a593.pth",
            ResNet50 => "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            ResNet101 => "https://download.pytorch.org/models/resnet101-63fe2227.pth",
            DenseNet121 => "https://download.pytorch.org/models/densenet121-a639ec97.pth",
            DenseNet161 => "https://download.pytorch.org/models/densenet161-8d451a50.pth",
            DenseNet169 => "https://download.pytorch.org/models/densenet169-b2777c0a.pth",
            DenseNet201 => "https://download.pytorch.org/models/densenet201-c1103571.pth",
            SqueezeNet1_0 => "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth",
            SqueezeNet1_1 => "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
            ResNet20 => {
                "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet20-12fca82f.th"
            }
            ResNet32 => {
                "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet32-d509ac18.th"
            }
            ResNet44 => {
                "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet44-014dd654.th"
            }
            ResNet56 => {
                "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet56-4bfd9763.th"
            }
        }
    }
}

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
    let expansion = if bottleneck { 4 } else { 1 };
    let mut cin = width;
    let mut last = String::new();
    for (l, &n) in blocks.iter().enumerate() {
        let planes = width << l;
        for j in 0..n {
            let stride = if l > 0 && j == 0 { 2 } else { 1 };
            let name = format!("layer{}.{j}", l + 1);
            let mut br = Seq::default();
            let cout = planes * expansion;
            if bottleneck {
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
            } else {
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
            }
            let shortcut = if stride != 1 || cin != cout {
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
            } else {
                Shortcut::Identity
            };
            seq.push(
                name.clone(),
                Node::Residual(Box::new(Residual {
                    branch: br,
                    shortcut,
                })),
            );
            last = name;
            cin = cout;
        }
    }
    seq.push("avgpool", Node::GlobalAvgPool);
    seq.push("fc", b.linear("fc", cin, classes));
    Net::finish(id, seq, b, &last, Dataset::ImageNet, classes)
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
            let shortcut = if stride != 1 || cin != planes {
                Shortcut::OptionA { pad: planes / 4 }
            } else {
                Shortcut::Identity
            };
            seq.push(
                name.clone(),
                Node::Residual(Box::new(Residual {
                    branch: br,
                    shortcut,
                })),
            );
            last = name;
            cin = planes;
        }
    }
    seq.push("avgpool", Node::GlobalAvgPool);
    seq.push("linear", b.linear("linear", cin, classes));
    Net::finish(id, seq, b, &last, Dataset::Cifar10, classes)
}

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

/// torchvision SqueezeNet 1.0 / 1.1 (channel widths divided by `div` for tests). Tap: input of
/// `features.12`, the last Fire module.
pub fn squeezenet(id: &str, v1_1: bool, div: usize, classes: usize) -> Net {
    let mut b = SpecBuilder::default();
    let mut seq = Seq::default();
    let d = |c: usize| (c / div).max(1);
    let pool = || {
        Node::MaxPool(MaxPool {
            kernel: 3,
            stride: 2,
            padding: 0,
            ceil: true,
        })
    };
    let fire =
        |b: &mut SpecBuilder, seq: &mut Seq, i: usize, cin: usize, s: usize, e: usize| -> usize {
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
        };
    // (index, squeeze, expand) of each Fire; pools elsewhere.
    let layout: &[(usize, usize, usize)] = if v1_1 {
        seq.push("features.0", b.conv("features.0", 3, d(64), 3, 2, 0, true));
        &[
            (3, 16, 64),
            (4, 16, 64),
            (6, 32, 128),
            (7, 32, 128),
            (9, 48, 192),
            (10, 48, 192),
            (11, 64, 256),
            (12, 64, 256),
        ]
    } else {
        seq.push("features.0", b.conv("features.0", 3, d(96), 7, 2, 0, true));
        &[
            (3, 16, 64),
            (4, 16, 64),
            (5, 32, 128),
            (7, 32, 128),
            (8, 48, 192),
            (9, 48, 192),
            (10, 64, 256),
            (12, 64, 256),
        ]
    };
    seq.push("features.1", Node::Relu);
    let pools: &[usize] = if v1_1 { &[2, 5, 8] } else { &[2, 6, 11] };
    let mut c = if v1_1 { d(64) } else { d(96) };
    let mut next = 0;
    for i in 2..=12 {
        if pools.contains(&i) {
            seq.push(format!("features.{i}"), pool());
        } else {
            let (idx, s, e) = layout[next];
            debug_assert_eq!(idx, i);
            next += 1;
            c = fire(&mut b, &mut seq, i, c, d(s), d(e));
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
