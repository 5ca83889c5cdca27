//! The architecture registry (spec §2): torchvision-exact layouts, key names and default taps.
//!
//! [`Architecture`] drives the CLI, the web dropdowns and generated tests. Each builder is also
//! exposed with an explicit configuration so that tests can instantiate small widths of every
//! family (`vgg`, `resnet`, `densenet`, `squeezenet`, `cifar_resnet`).

mod densenet;
mod resnet;
mod squeezenet;
mod vgg;

use crate::error::{FoolmapError, Result};
use crate::model::{Seq, SpecBuilder};
use crate::params::ParamSpec;
use vgg::{VGG11, VGG13, VGG16, VGG19};

pub use densenet::densenet;
pub use resnet::{cifar_resnet, resnet};
pub use squeezenet::squeezenet;
pub use vgg::vgg;

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
