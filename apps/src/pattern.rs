//! The test pattern the guest programs (`probe`, `hwcheck`) write into
//! device memory and the host-side tests look for in the ivshmem file: one
//! definition, so the writer and the checker can never disagree.

/// Bytes of the pattern, in a page.
pub const LEN: usize = 4096;

/// [`LEN`] bytes of a xorshift sequence from `seed`, so that a stale or
/// zeroed region never passes for a written one.
pub fn pattern(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_give_different_non_constant_patterns() {
        let a = super::pattern(1);
        let b = super::pattern(2);
        assert_eq!(a.len(), super::LEN);
        assert_ne!(a, b);
        assert!(a.iter().any(|&x| x != a[0]));
        assert_eq!(a, super::pattern(1));
    }
}
