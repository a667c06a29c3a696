//! Copying handle words between the caller's table, the lcore caches and
//! the ring.

/// The longest copy [`copy_words`] does without calling `memcpy`.
pub(crate) const INLINE_WORDS: usize = 16;

/// Copies `N` words (a constant size: a few register moves, no call).
///
/// # Safety
/// As [`copy_words`], for `N` words.
#[inline(always)]
unsafe fn copy_fixed<const N: usize>(dst: *mut usize, src: *const usize) {
    // SAFETY: the caller's contract; unaligned access is allowed for
    // arrays of words at word-aligned addresses (and read_unaligned does
    // not require more).
    unsafe {
        (dst as *mut [usize; N]).write_unaligned((src as *const [usize; N]).read_unaligned())
    };
}

/// Copies `n` words. Bursts of up to 16 words are two constant-size copies
/// that may overlap in the destination (the first `k` words and the last
/// `k`, `k` the power of two with `k <= n <= 2k`): a couple of register
/// moves and at most three branches, where a loop would be turned into a
/// call to `memcpy` by the compiler and cost more than the copy. Larger
/// copies call `memcpy`.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `n` words, and the two
/// ranges do not overlap.
#[inline(always)]
pub(crate) unsafe fn copy_words(dst: *mut usize, src: *const usize, n: usize) {
    // SAFETY: in every arm, `k <= n` words from the start and `k` ending at
    // `n` are within both ranges; the ranges do not overlap (caller's
    // contract), so both copies read only source words, and the words
    // written twice get the same value.
    unsafe {
        match n {
            0 => {}
            1 => copy_fixed::<1>(dst, src),
            2 => copy_fixed::<2>(dst, src),
            3..=4 => {
                copy_fixed::<2>(dst, src);
                copy_fixed::<2>(dst.add(n - 2), src.add(n - 2));
            }
            5..=8 => {
                copy_fixed::<4>(dst, src);
                copy_fixed::<4>(dst.add(n - 4), src.add(n - 4));
            }
            9..=16 => {
                copy_fixed::<8>(dst, src);
                copy_fixed::<8>(dst.add(n - 8), src.add(n - 8));
            }
            _ => core::ptr::copy_nonoverlapping(src, dst, n),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_length_copies_exactly_its_words() {
        for n in 0..=40usize {
            let src: Vec<usize> = (1..=n).collect();
            // Guards on both sides of the destination stay untouched.
            let mut dst = vec![usize::MAX; n + 2];
            // SAFETY: `src` holds n words, `dst[1..]` has room for n + 1.
            unsafe { copy_words(dst.as_mut_ptr().add(1), src.as_ptr(), n) };
            assert_eq!(dst[0], usize::MAX, "n {n}");
            assert_eq!(&dst[1..=n], &src[..], "n {n}");
            assert_eq!(dst[n + 1], usize::MAX, "n {n}");
        }
    }
}
