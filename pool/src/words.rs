//! Copying handle words between the caller's table, the lcore caches and
//! the ring.

/// The longest copy [`copy_words`] does without calling `memcpy`.
pub(crate) const INLINE_WORDS: usize = 16;

/// Copies `N` words (a constant size: a few register moves, no call).
/// With `NARROW`, the loads are one word wide.
///
/// Why narrow: the entries of an lcore cache were often just stored one
/// word at a time (a release's checked copy into the cache), and a wider
/// load over several such stores cannot be served from the store buffer:
/// it waits for them to reach the cache (measured: bulks of 4 through an
/// lcore cache about 10% slower with 16-byte loads). The loads are
/// volatile only so that the compiler keeps them one word wide.
///
/// # Safety
/// As [`copy_words`], for `N` words.
#[inline(always)]
unsafe fn copy_fixed<const N: usize, const NARROW: bool>(dst: *mut usize, src: *const usize) {
    let words = if NARROW {
        let mut words = [0usize; N];
        for (i, w) in words.iter_mut().enumerate() {
            // SAFETY: i < N, within the source (caller's contract).
            *w = unsafe { src.add(i).read_volatile() };
        }
        words
    } else {
        // SAFETY: the caller's contract; `read_unaligned` asks nothing
        // more than word alignment.
        unsafe { (src as *const [usize; N]).read_unaligned() }
    };
    // SAFETY: as above.
    unsafe { (dst as *mut [usize; N]).write_unaligned(words) };
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
unsafe fn copy_words_as<const NARROW: bool>(dst: *mut usize, src: *const usize, n: usize) {
    // SAFETY: in every arm, `k <= n` words from the start and `k` ending at
    // `n` are within both ranges; the ranges do not overlap (caller's
    // contract), so both copies read only source words, and the words
    // written twice get the same value.
    unsafe {
        // Single buffers first, and a whole bulk of 4 in one piece out of
        // the cache (the pair of halves measured a few percent slower).
        if NARROW {
            if n == 1 {
                return copy_fixed::<1, NARROW>(dst, src);
            }
            if n == 4 {
                return copy_fixed::<4, NARROW>(dst, src);
            }
        }
        match n {
            0 => {}
            1 => copy_fixed::<1, NARROW>(dst, src),
            2 => copy_fixed::<2, NARROW>(dst, src),
            3..=4 => {
                copy_fixed::<2, NARROW>(dst, src);
                copy_fixed::<2, NARROW>(dst.add(n - 2), src.add(n - 2));
            }
            5..=8 => {
                copy_fixed::<4, NARROW>(dst, src);
                copy_fixed::<4, NARROW>(dst.add(n - 4), src.add(n - 4));
            }
            9..=16 => {
                copy_fixed::<8, NARROW>(dst, src);
                copy_fixed::<8, NARROW>(dst.add(n - 8), src.add(n - 8));
            }
            _ => core::ptr::copy_nonoverlapping(src, dst, n),
        }
    }
}

/// [`copy_words`] with one-word loads, for copies out of an lcore cache
/// (see `copy_fixed`).
///
/// # Safety
/// As [`copy_words`].
#[inline(always)]
pub(crate) unsafe fn copy_words_from_cache(dst: *mut usize, src: *const usize, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy_words_as::<true>(dst, src, n) }
}

/// Copies `n` words (see `copy_words_as`).
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `n` words, and the two
/// ranges do not overlap.
#[inline(always)]
pub(crate) unsafe fn copy_words(dst: *mut usize, src: *const usize, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy_words_as::<false>(dst, src, n) }
}

/// Copies `N` words and returns the OR of each word minus `base`.
///
/// # Safety
/// As [`copy_words`], for `N` words.
#[inline(always)]
unsafe fn copy_fixed_offsets<const N: usize>(
    dst: *mut usize,
    src: *const usize,
    base: usize,
) -> usize {
    let mut words = [0usize; N];
    for (i, w) in words.iter_mut().enumerate() {
        // SAFETY: i < N, within the source (caller's contract). One-word
        // loads: the caller's table was just filled one word at a time
        // (see `copy_fixed`).
        *w = unsafe { src.add(i).read_volatile() };
    }
    // SAFETY: as above.
    unsafe { (dst as *mut [usize; N]).write_unaligned(words) };
    words.iter().fold(0, |bad, &w| bad | w.wrapping_sub(base))
}

/// [`copy_words`] that also returns the OR of every copied word minus
/// `base` (wrapping): the ownership test of a release (`& handle_mask ==
/// 0`) done on the words as they pass, with no second pass and no branch
/// per word. Words copied twice by the overlapping moves are ORed twice,
/// which changes nothing.
///
/// # Safety
/// As [`copy_words`].
#[inline(always)]
pub(crate) unsafe fn copy_words_offsets(
    dst: *mut usize,
    src: *const usize,
    n: usize,
    base: usize,
) -> usize {
    // SAFETY: in every arm, as in `copy_words`.
    unsafe {
        if n == 1 {
            return copy_fixed_offsets::<1>(dst, src, base);
        }
        if n == 4 {
            return copy_fixed_offsets::<4>(dst, src, base);
        }
        match n {
            0 => 0,
            1 => copy_fixed_offsets::<1>(dst, src, base),
            2 => copy_fixed_offsets::<2>(dst, src, base),
            3..=4 => {
                copy_fixed_offsets::<2>(dst, src, base)
                    | copy_fixed_offsets::<2>(dst.add(n - 2), src.add(n - 2), base)
            }
            5..=8 => {
                copy_fixed_offsets::<4>(dst, src, base)
                    | copy_fixed_offsets::<4>(dst.add(n - 4), src.add(n - 4), base)
            }
            9..=16 => {
                copy_fixed_offsets::<8>(dst, src, base)
                    | copy_fixed_offsets::<8>(dst.add(n - 8), src.add(n - 8), base)
            }
            _ => {
                // One pass (the compiler vectorises it; the OR keeps it
                // from becoming a `memcpy` call plus a second pass).
                let mut bad = 0;
                for i in 0..n {
                    let w = src.add(i).read();
                    bad |= w.wrapping_sub(base);
                    dst.add(i).write(w);
                }
                bad
            }
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

    #[test]
    fn the_offsets_of_every_word_are_ored() {
        let base = 0x1000;
        for n in 0..=40usize {
            // Words at multiples of 64 above base: offsets with the low
            // six bits clear, except one word (at each position in turn)
            // which is off by 8.
            for odd in 0..=n {
                let src: Vec<usize> = (0..n)
                    .map(|i| base + 64 * i + if i == odd { 8 } else { 0 })
                    .collect();
                let mut dst = vec![0usize; n];
                // SAFETY: both hold n words.
                let bad = unsafe { copy_words_offsets(dst.as_mut_ptr(), src.as_ptr(), n, base) };
                assert_eq!(dst, src, "n {n}");
                assert_eq!(bad & 63, if odd < n { 8 } else { 0 }, "n {n} odd {odd}");
            }
        }
    }
}
