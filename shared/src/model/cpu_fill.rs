//! Outputs that the workers writing them initialise (`docs/method.md` §9).
//!
//! A large `vec![0.0; n]` on the calling thread is one serial `memset` (glibc's `calloc` zeroes
//! reused heap memory) while the other cores wait: in a SqueezeNet fooling step the zeroed
//! outputs of the convolutions and of the max pool's gradient measured 3–4 % of the samples, all
//! on the calling thread. The own kernels instead allocate without initialising, hand each worker
//! its own pieces, and the worker fills a piece just before it writes it (in cache).

use std::mem::MaybeUninit;

/// `s` filled with `v`, as the initialised slice it now is.
pub(super) fn filled<T: Copy>(s: &mut [MaybeUninit<T>], v: T) -> &mut [T] {
    s.fill(MaybeUninit::new(v));
    // SAFETY: every element was initialised just above, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(s as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// A new vector of `len` elements, built by `init(spare)` on its uninitialised storage (`len`
/// long). `init` must initialise every element of `spare`, e.g. through [`filled`] on pieces that
/// cover it; if it panics, the vector is dropped empty.
///
/// # Safety
/// `init` must leave all `len` elements of `spare` initialised.
pub(super) unsafe fn build<T>(len: usize, init: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    init(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller's contract: `init` initialised the first `len` elements.
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod tests {
    use super::{build, filled};

    /// Pieces filled one by one (as workers do) make up the whole vector, in order.
    #[test]
    fn filled_pieces_make_up_the_vector() {
        // SAFETY: the chunks cover the storage, and each is filled.
        let v = unsafe {
            build(10, |spare| {
                for (i, c) in spare.chunks_mut(3).enumerate() {
                    filled(c, i as i32).iter_mut().for_each(|x| *x += 10);
                }
            })
        };
        assert_eq!(v, [10, 10, 10, 11, 11, 11, 12, 12, 12, 13]);
        let empty: Vec<f32> = unsafe { build(0, |s| assert!(s.is_empty())) };
        assert!(empty.is_empty());
    }
}
