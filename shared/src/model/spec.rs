//! Parameter declarations made while an architecture is laid out: each layer node with its
//! torchvision-named parameters and their random initialisation.

use super::{BatchNorm, Conv, Linear, Node};
use crate::params::{Init, ParamId, ParamKind, ParamSpec};

/// Declares parameters while an architecture is being laid out.
#[derive(Debug, Default)]
pub struct SpecBuilder {
    /// Declared parameters, in order.
    pub specs: Vec<ParamSpec>,
}

impl SpecBuilder {
    fn declare(&mut self, name: String, shape: Vec<usize>, init: Init, kind: ParamKind) -> ParamId {
        self.specs.push(ParamSpec {
            name,
            shape,
            init,
            kind,
        });
        ParamId(self.specs.len() - 1)
    }

    /// A convolution node `name` with `name.weight` (and `name.bias`).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Node {
        let fan_in = cin * k * k;
        let weight = self.declare(
            format!("{name}.weight"),
            vec![cout, cin, k, k],
            Init::KaimingNormal { fan_in },
            ParamKind::Trainable,
        );
        let bias = bias.then(|| {
            self.declare(
                format!("{name}.bias"),
                vec![cout],
                Init::Uniform { lo: -0.1, hi: 0.1 },
                ParamKind::Trainable,
            )
        });
        Node::Conv(Conv {
            weight,
            bias,
            stride,
            padding,
        })
    }

    /// An eval-mode BatchNorm node with torchvision keys `weight, bias, running_mean, running_var`.
    ///
    /// Random initialisation is deliberately not the identity (γ ∈ U(0.5,1.5), β, μ ~ N(0,0.1²),
    /// σ² ∈ U(0.5,1.5)) so that tests exercise the BatchNorm handling, as the fixtures do.
    pub fn bn(&mut self, name: &str, c: usize) -> Node {
        let gamma = self.declare(
            format!("{name}.weight"),
            vec![c],
            Init::Uniform { lo: 0.5, hi: 1.5 },
            ParamKind::Trainable,
        );
        let beta = self.declare(
            format!("{name}.bias"),
            vec![c],
            Init::Normal { std: 0.1 },
            ParamKind::Trainable,
        );
        let mean = self.declare(
            format!("{name}.running_mean"),
            vec![c],
            Init::Normal { std: 0.1 },
            ParamKind::Buffer,
        );
        let var = self.declare(
            format!("{name}.running_var"),
            vec![c],
            Init::Uniform { lo: 0.5, hi: 1.5 },
            ParamKind::Buffer,
        );
        Node::BatchNorm(BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps: 1e-5,
        })
    }

    /// A fully connected node with torchvision keys.
    pub fn linear(&mut self, name: &str, fin: usize, fout: usize) -> Node {
        let weight = self.declare(
            format!("{name}.weight"),
            vec![fout, fin],
            Init::KaimingNormal { fan_in: fin },
            ParamKind::Trainable,
        );
        let bias = self.declare(
            format!("{name}.bias"),
            vec![fout],
            Init::Uniform { lo: -0.1, hi: 0.1 },
            ParamKind::Trainable,
        );
        Node::Linear(Linear { weight, bias })
    }
}
