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

/// `w.go()` compiled for the widest vector unit this CPU has: AVX-512 or AVX2 on x86-64, picked
/// at run time; elsewhere as built.
#[inline(always)]
pub(super) fn wide<W: Wide>(w: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { avx512(w) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2(w) };
        }
    }
    w.go()
}

/// The vector unit the own CPU kernels use on this CPU, as `wide` picks it: `"AVX-512"` (where
/// the direct 3×3 convolutions of `cpu_conv` run too), `"AVX2"`, or `"baseline"` (as built).
/// `foolmap bench` names it beside the CPU model.
pub fn vector_unit() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "AVX2";
        }
    }
    "baseline"
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
