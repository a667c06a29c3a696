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

/// The byte at `offset` of a device-memory region that `devmem-tx` filled
/// from `seed`: a hash of the position (and seed), so a chunk sent from the
/// wrong place, a window shifted by one byte or a stale region never passes
/// for the right bytes. The host-side test computes the same function.
pub fn region_byte(seed: u64, offset: u64) -> u8 {
    let mut x = (offset ^ seed.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 40) as u8
}

/// `len` bytes of [`region_byte`] from `offset` on.
pub fn region_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| region_byte(seed, offset + i))
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

    #[test]
    fn region_bytes_depend_on_the_position_and_the_seed() {
        let a = super::region_bytes(7, 0, 8192);
        assert_eq!(a[4096..], super::region_bytes(7, 4096, 4096)[..]);
        // No period of a chunk, nor of a byte shift.
        assert_ne!(a[..4096], a[4096..]);
        assert_ne!(a[1..4097], a[..4096]);
        assert_ne!(a, super::region_bytes(8, 0, 8192));
        // Every byte value occurs: not a narrow sequence.
        let mut seen = [false; 256];
        a.iter().for_each(|&b| seen[usize::from(b)] = true);
        assert!(seen.iter().all(|&s| s));
    }
}
