//! Runs a piece of CPU work compiled for the widest vector unit at hand (`docs/method.md` §9).
//!
//! The crate is built for baseline x86-64, whose SSE2 handles 4 `f32` lanes at a time, while
//! Burn's element-wise kernels and `gemm` pick AVX-512 or AVX2 at run time. The own loops (the
//! element-wise passes of [`super::cpu_channel`], `im2col` and `col2im` of [`super::cpu_conv`])
//! do the same through [`wide`]: their body is a [`Wide`] whose `go` is `#[inline(always)]`, so
//! that each target-feature copy below really contains it (a closure stays out of line, as
//! SSE2 code). Values do not change: the same operations lane by lane, and Rust never fuses a
//! product and a sum into a multiply-add.

/// Work that [`wide`] compiles for the vector unit at hand; `go` must be `#[inline(always)]`.
pub(super) trait Wide {
    type Out;
    fn go(self) -> Self::Out;
}

/// The widest vector unit of this CPU that the own kernels use, detected at run time (x86-64;
/// elsewhere [`Unit::Baseline`], as built).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Off x86-64 only `Baseline` is ever detected.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) enum Unit {
    Avx512,
    Avx2,
    Baseline,
}

/// This CPU's [`Unit`] (the detection is cached by the standard library).
pub(super) fn unit() -> Unit {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Unit::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Unit::Avx2;
        }
    }
    Unit::Baseline
}

/// `w.go()` compiled for the widest vector unit this CPU has: AVX-512 or AVX2 on x86-64, picked
/// at run time; elsewhere as built.
#[inline(always)]
pub(super) fn wide<W: Wide>(w: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    match unit() {
        // SAFETY: the CPU has AVX-512F (detected by `unit`).
        Unit::Avx512 => return unsafe { avx512(w) },
        // SAFETY: the CPU has AVX2 (detected by `unit`).
        Unit::Avx2 => return unsafe { avx2(w) },
        Unit::Baseline => {}
    }
    w.go()
}

/// The vector unit the own CPU kernels use on this CPU, as [`unit`] finds it: `"AVX-512"`
/// (where the direct 3×3 convolutions of `cpu_conv` run too), `"AVX2"`, or `"baseline"` (as
/// built). `foolmap bench` names it beside the CPU model.
pub fn vector_unit() -> &'static str {
    match unit() {
        Unit::Avx512 => "AVX-512",
        Unit::Avx2 => "AVX2",
        Unit::Baseline => "baseline",
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<W: Wide>(w: W) -> W::Out {
    w.go()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<W: Wide>(w: W) -> W::Out {
    w.go()
}
