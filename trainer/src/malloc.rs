//! The C allocator's thresholds for tensor-sized buffers (BENCHMARKS.md, "The allocator keeps
//! tensor buffers", and session 33).
//!
//! Every step of `fool`, `train` or `accuracy` allocates and frees the same buffers again: the
//! activations, the im2col patch matrices of the convolutions, the gradients (ResNet-20 at batch
//! 128: 8 MiB per 16-channel activation). glibc's defaults hand much of that memory back to the
//! kernel between steps (buffers above the mmap threshold are unmapped on `free`; the top of a heap is
//! trimmed beyond the trim threshold), so the next step faults the same pages in again and the
//! kernel zeroes them: a tenth of a ResNet-20 fooling step's CPU time in `perf`, and the step 1.5×
//! slower. [`tune`] sets both once, at start-up: buffers below 1 GiB come from the heap, and the
//! heap is never trimmed, so freed buffers stay in the process and are reused. (A 1 GiB trim
//! threshold was not enough for VGG-16, whose step frees more than that at once: the kernel then
//! zeroed pages for 40–60 % of its step.) The peak memory is the same (the buffers were needed
//! anyway); what changes is that the process keeps it until it ends, or until [`release`].
//!
//! `FOOLMAP_MALLOC=default` keeps glibc's defaults (to measure the difference). Other C libraries
//! (musl, macOS, Windows) are left as they are.

use std::sync::OnceLock;

/// The `M_MMAP_THRESHOLD` set, in bytes: 1 GiB. Buffers below it come from the heap, which is
/// never trimmed (`M_TRIM_THRESHOLD` −1), so freed memory stays mapped. (A thread's arena can
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
                "glibc, buffers kept (mmap threshold {} MiB, no trimming)",
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
            && libc::mallopt(libc::M_TRIM_THRESHOLD, -1) == 1
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

/// Hands the heap's free memory back to the kernel (glibc's `malloc_trim`), for a caller that
/// measures the memory of what comes next (`foolmap bench` before each row). Elsewhere a no-op.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free memory to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
