//! Mutation fuzzing of every parser that reads a user's file: safetensors, PyTorch `.pth` (zip)
//! and legacy `torch.save` pickles, images (decode + both datasets' preprocessing), and run configs
//! (TOML → validated config). A stable-toolchain harness: seeded mutations (bit flips, interesting
//! bytes and integers, insertions, deletions, duplications, truncation) of a committed corpus
//! (`tests/fuzz/corpus`, `tests/data`), each input run under `catch_unwind`. `cargo run --release
//! --example fuzz` drives it with an allocation-counting allocator; a test runs a short pass.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use foolmap::params::SplitMix;
use foolmap::{Architecture, Dataset};

/// A parser under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `StateDict::from_safetensors`.
    Safetensors,
    /// `.pth` zip and legacy pickle through `weights::read_state_dict_within` (ResNet-20's budget).
    Pytorch,
    /// `image::decode`, then the CIFAR-10 and ImageNet evaluation crops.
    Image,
    /// A run config through `fool::resolve`.
    Config,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [
        Target::Safetensors,
        Target::Pytorch,
        Target::Image,
        Target::Config,
    ];

    /// Its id.
    pub fn id(self) -> &'static str {
        match self {
            Target::Safetensors => "safetensors",
            Target::Pytorch => "pytorch",
            Target::Image => "image",
            Target::Config => "config",
        }
    }

    /// Its seed inputs under the repository root.
    pub fn corpus(self, repo: &Path) -> Vec<PathBuf> {
        let c = repo.join("tests/fuzz/corpus");
        let d = repo.join("tests/data");
        match self {
            Target::Safetensors => vec![d.join("tiny_resnet.safetensors")],
            Target::Pytorch => vec![d.join("tiny_resnet.pth"), d.join("tiny_resnet_legacy.th")],
            Target::Image => ["tiny.png", "tiny.jpg", "gray.png", "alpha.png"]
                .iter()
                .map(|f| c.join(f))
                .collect(),
            Target::Config => vec![c.join("run.toml")],
        }
    }
}

/// Outcome counts of a fuzzing pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs run.
    pub executions: u64,
    /// Inputs the parser accepted.
    pub accepted: u64,
    /// Inputs refused with an error.
    pub refused: u64,
    /// Inputs that panicked (saved to the crash folder).
    pub panics: u64,
}

const INTERESTING_U64: [u64; 9] = [
    0,
    1,
    0x7f,
    0x80,
    0xffff_ffff,
    0x1_0000_0005,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
    1 << 40,
];

/// Applies 1–4 random mutations to `input`.
pub fn mutate(input: &[u8], rng: &mut SplitMix) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let n = v.len();
        match rng.below(8) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                v[i] = [0u8, 0xff, 0x7f, 0x80, b'{', b'"', b'\n', b'.'][rng.below(8)];
            }
            2 if n >= 8 => {
                let i = rng.below(n - 7);
                let x = INTERESTING_U64[rng.below(INTERESTING_U64.len())];
                let bytes = if rng.below(2) == 0 {
                    x.to_le_bytes()
                } else {
                    x.to_be_bytes()
                };
                let w = [1usize, 2, 4, 8][rng.below(4)];
                v[i..i + w].copy_from_slice(&bytes[..w]);
            }
            3 => {
                let i = rng.below(n + 1);
                let k = 1 + rng.below(16);
                let ins: Vec<u8> = (0..k).map(|_| rng.below(256) as u8).collect();
                v.splice(i..i, ins);
            }
            4 if n > 1 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(64));
                v.drain(i..i + k);
            }
            5 if n > 1 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(256));
                let chunk = v[i..i + k].to_vec();
                let at = rng.below(n + 1);
                v.splice(at..at, chunk);
            }
            6 if n > 1 => v.truncate(rng.below(n)),
            _ if n > 0 => {
                // Text-level: replace a number with a huge or negative one (configs, JSON headers).
                let i = rng.below(n);
                let s = ["-1", "18446744073709551615", "1e309", "NaN", "0", "\"x\""][rng.below(6)];
                v.splice(i..i, s.bytes());
            }
            _ => v.push(rng.below(256) as u8),
        }
    }
    v
}

/// Runs one input through `target`: `Ok(true)` accepted, `Ok(false)` refused, `Err` on a panic.
/// `scratch` is a file the file-based parsers read.
pub fn run_one(target: Target, input: &[u8], scratch: &Path) -> std::result::Result<bool, String> {
    let r = catch_unwind(AssertUnwindSafe(|| -> bool {
        match target {
            Target::Safetensors => foolmap::StateDict::from_safetensors(input, "fuzz").is_ok(),
            Target::Pytorch => {
                if std::fs::write(scratch, input).is_err() {
                    return false;
                }
                let n = 272_474 + 2_725 + 1_000; // ResNet-20's values + 1 % + 1,000, as `load` allows
                crate::io::weights::read_state_dict_within(
                    scratch,
                    Some((Architecture::ResNet20, n)),
                )
                .is_ok()
            }
            Target::Image => match foolmap::image::decode(input, "fuzz") {
                Ok(img) => {
                    let a = foolmap::image::eval_crop(&img, Dataset::Cifar10);
                    let b = foolmap::image::eval_crop(&img, Dataset::ImageNet);
                    a.width == 32 && b.width == 224
                }
                Err(_) => false,
            },
            Target::Config => {
                if std::fs::write(scratch, input).is_err() {
                    return false;
                }
                let a = crate::fool::FoolArgs {
                    config: Some(scratch.to_path_buf()),
                    ..crate::fool::FoolArgs::default()
                };
                crate::fool::resolve(&a).is_ok()
            }
        }
    }));
    r.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

/// Runs `iterations` mutated inputs through `target`, seeded by `seed`; a panicking input is
/// written to `crashes/<target>-<n>.bin`.
pub fn fuzz(
    target: Target,
    repo: &Path,
    iterations: u64,
    seed: u64,
    crashes: &Path,
) -> Result<Stats> {
    let seeds: Vec<Vec<u8>> = target
        .corpus(repo)
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("corpus file {}", p.display())))
        .collect::<Result<_>>()?;
    let dir = std::env::temp_dir().join(format!(
        "foolmap-fuzz-{}-{}-{seed}",
        std::process::id(),
        target.id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let scratch = dir.join(match target {
        Target::Config => "input.toml",
        _ => "input.bin",
    });
    let mut rng = SplitMix::new(seed);
    let mut st = Stats::default();
    // Quiet panics while fuzzing (they are counted and saved instead).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..iterations {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(base, &mut rng);
        st.executions += 1;
        match run_one(target, &input, &scratch) {
            Ok(true) => st.accepted += 1,
            Ok(false) => st.refused += 1,
            Err(msg) => {
                st.panics += 1;
                std::fs::create_dir_all(crashes)?;
                let f = crashes.join(format!("{}-{}.bin", target.id(), st.panics));
                std::fs::write(&f, &input)?;
                eprintln!(
                    "{}: panic ({msg}); input saved to {}",
                    target.id(),
                    f.display()
                );
            }
        }
    }
    std::panic::set_hook(hook);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(st)
}
