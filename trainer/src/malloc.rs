//! The C allocator's thresholds for tensor-sized buffers (BENCHMARKS.md, "The allocator keeps
//! tensor buffers").
//!
//! Every step of `fool`, `train` or `accuracy` allocates and frees the same buffers again: the
//! activations, the im2col patch matrices of the convolutions, the gradients (ResNet-20 at batch
//! 128: 8 MiB per 16-channel activation). glibc's defaults hand much of that memory back to the
//! kernel between steps (buffers above the mmap threshold are unmapped on `free`; the top of a heap is
//! trimmed beyond the trim threshold), so the next step faults the same pages in again and the
//! kernel zeroes them: a tenth of a ResNet-20 fooling step's CPU time in `perf`, and the step 1.5×
//! slower. [`tune`] raises both thresholds once, at start-up, so freed buffers stay in the
//! process and are reused. The peak memory is the same (the buffers were needed anyway); what
//! changes is that the process keeps it until it ends.
//!
//! `FOOLMAP_MALLOC=default` keeps glibc's defaults (to measure the difference). Other C libraries
//! (musl, macOS, Windows) are left as they are.

use std::sync::OnceLock;

/// The threshold set for both `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD`, in bytes: 1 GiB. Buffers
/// below it come from the heap and freed memory below it stays mapped. (A thread's arena can
/// hold at most 64 MiB, so a larger buffer allocated on a worker thread is still mapped on its own.)
pub const THRESHOLD: usize = 1 << 30;

/// The environment variable that turns the tuning off (`FOOLMAP_MALLOC=default`).
pub const ENV: &str = "FOOLMAP_MALLOC";

/// What [`tune`] did, for `foolmap --version` and the bench blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// glibc, with both thresholds at [`THRESHOLD`].
    GlibcTuned,
    /// glibc's defaults: `FOOLMAP_MALLOC=default` was set, or glibc refused a value.
    GlibcDefault,
    /// Not glibc: the platform's allocator as it is.
    Platform,
}

impl std::fmt::Display for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocator::GlibcTuned => write!(
                f,
                "glibc, buffers kept (mmap and trim thresholds {} MiB)",
                THRESHOLD >> 20
            ),
            Allocator::GlibcDefault => write!(f, "glibc defaults"),
            Allocator::Platform => write!(f, "the platform's"),
        }
    }
}

static STATE: OnceLock<Allocator> = OnceLock::new();

/// Sets the thresholds unless `FOOLMAP_MALLOC=default`; call it first in `main`, before any
/// thread starts. Later calls return the first call's result.
pub fn tune() -> Allocator {
    *STATE.get_or_init(|| {
        let off = std::env::var(ENV).is_ok_and(|v| v == "default");
        apply(!off)
    })
}

/// What the process runs with: [`tune`]'s result, or (where `main` did not call it, as in tests)
/// the platform's defaults.
pub fn current() -> Allocator {
    STATE.get().copied().unwrap_or(if GLIBC {
        Allocator::GlibcDefault
    } else {
        Allocator::Platform
    })
}

const GLIBC: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply(on: bool) -> Allocator {
    if !on {
        return Allocator::GlibcDefault;
    }
    let value = libc::c_int::try_from(THRESHOLD).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` only changes the allocator's parameters; glibc serialises it against
    // allocations in other threads (and `main` calls this before starting any).
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, value) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, value) == 1
    };
    if ok {
        Allocator::GlibcTuned
    } else {
        Allocator::GlibcDefault
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply(_on: bool) -> Allocator {
    Allocator::Platform
}
