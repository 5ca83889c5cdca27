//! What `foolmap bench --suite compare` measures: the step kinds, the cases (model and batch
//! size) and foolmap's figures of one row.

use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use foolmap::{Architecture, Interpreter};

/// One step kind of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Forward pass without autodiff.
    Inference,
    /// Cross-entropy, backward, Adam.
    Train,
    /// A fooling step with the given tap-level interpreter.
    Fool(Interpreter),
}

impl Kind {
    /// Every kind, in table order.
    pub fn all() -> Vec<Kind> {
        let mut v = vec![Kind::Inference, Kind::Train];
        v.extend(Interpreter::FOOLABLE.iter().map(|&i| Kind::Fool(i)));
        v
    }

    /// The id shared with `bench/torch_reference.py` (`inference`, `train`, `fool:grad_cam`).
    pub fn id(self) -> String {
        match self {
            Kind::Inference => "inference".into(),
            Kind::Train => "train".into(),
            Kind::Fool(i) => format!("fool:{}", i.id()),
        }
    }
}

/// A model and batch size of the comparison (`resnet20:32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Architecture.
    pub arch: Architecture,
    /// Images per step.
    pub batch: usize,
}

impl FromStr for Case {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| anyhow!("`{s}`: expected ARCH:BATCH, e.g. resnet20:32"))?;
        let batch: usize = b
            .parse()
            .map_err(|_| anyhow!("`{s}`: batch `{b}` is not a positive integer"))?;
        if batch == 0 {
            bail!("`{s}`: the batch size must be at least 1");
        }
        Ok(Case {
            arch: a.parse()?,
            batch,
        })
    }
}

/// Parses `resnet20:32,squeezenet1_0:4`.
pub fn parse_cases(s: &str) -> Result<Vec<Case>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse())
        .collect()
}

/// foolmap's figures of one row.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Case.
    pub case: Case,
    /// Step kind.
    pub kind: Kind,
    /// Images/s, step alone.
    pub step_ips: f64,
    /// Images/s, decode + augmentation + step.
    pub e2e_ips: Option<f64>,
    /// Peak host memory of the row, MiB.
    pub peak_mib: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse_and_errors_name_the_part() {
        let c = parse_cases("resnet20:32, squeezenet1_0:4").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].arch, Architecture::SqueezeNet1_0);
        assert_eq!(c[1].batch, 4);
        let e = parse_cases("resnet20").unwrap_err().to_string();
        assert!(e.contains("ARCH:BATCH"), "{e}");
        let e = parse_cases("resnet20:0").unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse_cases("resnet21:4").unwrap_err().to_string();
        assert!(e.contains("resnet20"), "{e}");
    }

    #[test]
    fn kind_ids_match_the_torch_script() {
        let script = include_str!("../../../bench/torch_reference.py");
        for k in Kind::all() {
            assert!(
                script.contains(&k.id()) || script.contains(k.id().split(':').next().unwrap_or("")),
                "{}",
                k.id()
            );
        }
        let ids: Vec<String> = Kind::all().iter().map(|k| k.id()).collect();
        assert_eq!(
            ids,
            [
                "inference",
                "train",
                "fool:lrp_t",
                "fool:grad_cam",
                "fool:simple_grad_t"
            ]
        );
    }
}
