//! The IOVA allocator: first fit over the IOMMU's usable ranges.
//!
//! The usable ranges come from `VFIO_IOMMU_GET_INFO`'s IOVA-range capability
//! (`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`), which the kernel derives from the
//! IOMMU's address width (VT-d MGAW: 39 or 48 bits under QEMU) minus reserved
//! windows such as the MSI doorbell at 0xfee00000. It is the one source that
//! already accounts for both, so hw reads nothing else. Until the first group
//! joins the container the ranges are unknown and [`IovaAllocator::provisional`]
//! is used: [4 GiB, 2^39), which every VT-d/AMD-Vi implementation can address and
//! which holds no reserved window.

use std::collections::BTreeMap;

use crate::Error;

/// IOVAs below this are never handed out, so a zero DMA address is always a bug.
pub const MIN_IOVA: u64 = 1 << 20;

/// The narrowest address width any x86 IOMMU offers (VT-d 3-level tables).
pub const PROVISIONAL_WIDTH: u32 = 39;

/// First-fit allocator of aligned IOVA ranges.
#[derive(Debug, Clone)]
pub struct IovaAllocator {
    /// Usable inclusive ranges `(first, last)`, sorted.
    ranges: Vec<(u64, u64)>,
    /// Allocated `start -> len`.
    used: BTreeMap<u64, u64>,
    /// Highest usable IOVA + 1 chosen by the user (DMA mask), if any.
    mask_limit: Option<u64>,
}

impl IovaAllocator {
    /// An allocator over the given inclusive ranges (as the kernel reports them).
    pub fn new(mut ranges: Vec<(u64, u64)>) -> Self {
        ranges.retain(|&(a, b)| a <= b);
        ranges.sort_unstable();
        Self {
            ranges,
            used: BTreeMap::new(),
            mask_limit: None,
        }
    }

    /// The range used before the IOMMU has reported its own: [4 GiB, 2^39).
    pub fn provisional() -> Self {
        Self::new(vec![(1 << 32, (1 << PROVISIONAL_WIDTH) - 1)])
    }

    /// Highest usable IOVA + 1 (the IOMMU's, narrowed by any DMA mask).
    pub fn limit(&self) -> u64 {
        let top = self
            .ranges
            .last()
            .map_or(0, |&(_, last)| last.saturating_add(1));
        self.mask_limit.map_or(top, |m| m.min(top))
    }

    /// Address width in bits implied by [`Self::limit`] (rounded up).
    pub fn width(&self) -> u32 {
        let l = self.limit();
        if l <= 1 {
            0
        } else {
            64 - (l - 1).leading_zeros()
        }
    }

    /// Restricts allocations to IOVAs below `2^bits` (a device's DMA mask).
    pub fn set_dma_mask_bits(&mut self, bits: u32) {
        self.mask_limit = if bits >= 64 { None } else { Some(1u64 << bits) };
    }

    /// Replaces the usable ranges, keeping the allocations. Returns the allocations
    /// that do not fit in the new ranges (they stay allocated).
    pub fn set_ranges(&mut self, ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        let mask = self.mask_limit;
        *self = Self {
            used: std::mem::take(&mut self.used),
            ..Self::new(ranges)
        };
        self.mask_limit = mask;
        self.used
            .iter()
            .filter(|&(&s, &l)| !self.fits(s, l))
            .map(|(&s, &l)| (s, l))
            .collect()
    }

    /// The usable inclusive ranges.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    fn fits(&self, start: u64, len: u64) -> bool {
        let Some(last) = start.checked_add(len - 1) else {
            return false;
        };
        last < self.limit() && self.ranges.iter().any(|&(a, b)| a <= start && last <= b)
    }

    /// Allocates `len` bytes aligned to `align` (a power of two).
    pub fn alloc(&mut self, len: u64, align: u64) -> Result<u64, Error> {
        let exhausted = || Error::IovaExhausted {
            len,
            align,
            limit: self.limit(),
            width: self.width(),
            restricted: self.mask_limit.is_some(),
        };
        if len == 0 {
            return Err(Error::EmptyRegion);
        }
        let align = align.max(1);
        if !align.is_power_of_two() {
            return Err(exhausted());
        }
        let limit = self.limit();
        for &(first, last) in &self.ranges {
            let end = last.min(limit.saturating_sub(1));
            let mut cand = align_up(first.max(MIN_IOVA), align);
            while let Some(c) = cand {
                let Some(c_last) = c.checked_add(len - 1) else {
                    break;
                };
                if c_last > end {
                    break;
                }
                // The allocation starting at or before c_last with the highest start.
                match self.used.range(..=c_last).next_back() {
                    Some((&s, &l)) if s + l > c => cand = align_up(s + l, align),
                    _ => {
                        self.used.insert(c, len);
                        return Ok(c);
                    }
                }
            }
        }
        Err(exhausted())
    }

    /// Frees the allocation starting at `iova`; returns its length.
    pub fn free(&mut self, iova: u64) -> Option<u64> {
        self.used.remove(&iova)
    }

    /// Bytes currently allocated.
    pub fn allocated(&self) -> u64 {
        self.used.values().sum()
    }
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    v.checked_add(align - 1).map(|x| x & !(align - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M2: u64 = 2 << 20;

    #[test]
    fn first_fit_aligned_and_reuses_freed_space() {
        let mut a = IovaAllocator::new(vec![(0, (1 << 39) - 1)]);
        let x = a.alloc(M2, M2).unwrap();
        assert_eq!(x, M2, "IOVA 0..1 MiB is never handed out");
        let y = a.alloc(4096, 4096).unwrap();
        assert_eq!(y, 1 << 20, "first fit: the gap below the first block");
        let z = a.alloc(M2, M2).unwrap();
        assert_eq!(z, 2 * M2, "stays 2 MiB aligned, after the first block");
        assert_eq!(a.free(x), Some(M2));
        assert_eq!(a.alloc(M2, M2).unwrap(), x);
        assert_eq!(a.free(12345), None);
        assert_eq!(a.allocated(), 2 * M2 + 4096);
    }

    #[test]
    fn respects_reserved_holes_and_width() {
        // What VT-d reports: the MSI window is carved out.
        let mut a = IovaAllocator::new(vec![(0, 0xfedf_ffff), (0xfef0_0000, (1 << 39) - 1)]);
        assert_eq!(a.width(), 39);
        let big = a.alloc(1 << 32, 1 << 30).unwrap();
        assert!(big >= 0xfef0_0000, "{big:#x} overlaps the MSI window");
        assert_eq!(big % (1 << 30), 0);
        for _ in 0..1000 {
            let v = a.alloc(M2, M2).unwrap();
            assert!(!(0xfee0_0000..0xfef0_0000).contains(&v) && v + M2 <= 1 << 39);
            assert!(v + M2 <= 0xfee0_0000 || v >= 0xfef0_0000);
        }
    }

    #[test]
    fn exhaustion_is_a_typed_error_naming_the_width() {
        let mut a = IovaAllocator::new(vec![(0, (1 << 24) - 1)]);
        let mut got = 0;
        while a.alloc(M2, M2).is_ok() {
            got += 1;
        }
        assert_eq!(
            got, 7,
            "16 MiB minus the first MiB holds seven 2 MiB blocks"
        );
        let err = a.alloc(M2, M2).unwrap_err();
        assert!(
            matches!(err, Error::IovaExhausted { width: 24, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("IOVA space exhausted") && msg.contains("24-bit"),
            "{msg}"
        );
    }

    #[test]
    fn dma_mask_narrows_the_space() {
        let mut a = IovaAllocator::new(vec![(0, (1 << 48) - 1)]);
        a.set_dma_mask_bits(23);
        assert_eq!(a.width(), 23);
        assert_eq!(a.alloc(4 << 20, M2).unwrap(), M2);
        let err = a.alloc(4 << 20, M2).unwrap_err();
        assert!(err.to_string().contains("set_dma_mask_bits"), "{err}");
        a.set_dma_mask_bits(64);
        assert!(a.alloc(4 << 20, M2).is_ok());
    }

    #[test]
    fn provisional_allocations_checked_against_real_ranges() {
        let mut a = IovaAllocator::provisional();
        let x = a.alloc(M2, M2).unwrap();
        assert_eq!(x, 1 << 32);
        assert!(a.set_ranges(vec![(0, (1 << 48) - 1)]).is_empty());
        let bad = a.set_ranges(vec![(0, (1 << 32) - 1)]);
        assert_eq!(bad, vec![(x, M2)]);
    }

    #[test]
    fn zero_length_and_bad_alignment_are_refused() {
        let mut a = IovaAllocator::provisional();
        assert!(matches!(a.alloc(0, 4096), Err(Error::EmptyRegion)));
        assert!(matches!(a.alloc(4096, 3), Err(Error::IovaExhausted { .. })));
        let mut top = IovaAllocator::new(vec![(u64::MAX - (1 << 21), u64::MAX)]);
        assert!(top.alloc(1 << 20, 1 << 20).is_ok());
        assert!(top.alloc(1 << 22, 1 << 20).is_err());
    }
}
