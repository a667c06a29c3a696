//! Ring bookkeeping shared by every driver: descriptor memory, the tail
//! doorbell and index arithmetic. A descriptor is 16 bytes on the 82576
//! (advanced) and the 82574L (extended) rings, seen here as two
//! little-endian quadwords, or 32 bytes (the 82574L's packet-split receive
//! descriptors: two more quadwords, [`QueueHw::write_upper`] and
//! [`QueueHw::read_q2`]); what the bits mean is the driver's business
//! ([`crate::rx::RxFormat`], [`crate::tx::TxFormat`]).

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

/// Bytes per descriptor (every format but the 82574L's packet split).
pub const DESC_LEN: usize = 16;
/// Bytes per 82574L packet-split receive descriptor (four buffer addresses).
pub const WIDE_DESC_LEN: usize = 32;
/// The unit RDH/RDT (and TDH/TDT) count in: 16 bytes of ring, on both
/// families, whatever the descriptor size. With 32-byte packet-split
/// descriptors the tail of descriptor `i` is `2 * i` (Linux's e1000e writes
/// `i << 1` for them; QEMU's e1000e advances its head by
/// `rx_desc_len / 16` per descriptor).
pub const RING_UNIT: usize = 16;
/// The descriptor rings' base must be 128-byte aligned (both datasheets).
pub const RING_ALIGN: usize = 128;

/// One descriptor as two little-endian quadwords: `lo` at offset 0, `hi` at 8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub lo: u64,
    pub hi: u64,
}

/// The memory and doorbell of one hardware queue, as a ring sees them.
///
/// Production rings use [`DmaQueue`]; tests substitute a simulated device.
pub trait QueueHw: Send {
    /// Number of descriptors.
    fn size(&self) -> u16;
    /// Writes descriptor `i` (both quadwords, `hi` last).
    fn write(&mut self, i: u16, d: Desc);
    /// Reads the high quadword (where DD lives on both families).
    fn read_hi(&self, i: u16) -> u64;
    /// Reads the low quadword.
    fn read_lo(&self, i: u16) -> u64;
    /// Bytes per descriptor of this queue's memory: [`DESC_LEN`], or
    /// [`WIDE_DESC_LEN`] for a queue built for 32-byte descriptors.
    fn desc_len(&self) -> usize {
        DESC_LEN
    }
    /// Writes quadwords 2 and 3 of a 32-byte descriptor (`lo` at byte 16,
    /// `hi` at 24). Rings call it only on queues whose
    /// [`QueueHw::desc_len`] is [`WIDE_DESC_LEN`] (checked when the ring is
    /// built); on a 16-byte queue it writes nothing.
    fn write_upper(&mut self, _i: u16, _d: Desc) {}
    /// Reads quadword 2 of a 32-byte descriptor (0 on a 16-byte queue).
    fn read_q2(&self, _i: u16) -> u64 {
        0
    }
    /// Writes the tail register: one MMIO write.
    fn write_tail(&mut self, value: u16);
    /// The fence of the device that DMAs into this queue's buffers
    /// ([`crate::fence`]); `None` when no device can (host memory).
    fn fence(&self) -> Option<&crate::fence::DmaFence> {
        None
    }
}

/// Fewest descriptors a ring works with: one held back so the tail never
/// equals the head, at least one for the device.
pub const MIN_RING: u16 = 2;

/// A ring too small to work with (below [`MIN_RING`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a descriptor ring needs at least {MIN_RING} descriptors, got {size}")]
pub struct RingTooSmall {
    pub size: u16,
}

/// Ring index arithmetic for a ring of `size` entries (at least
/// [`MIN_RING`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    size: u16,
}

impl Ring {
    pub fn new(size: u16) -> Result<Ring, RingTooSmall> {
        if size < MIN_RING {
            return Err(RingTooSmall { size });
        }
        Ok(Ring { size })
    }
    pub fn size(self) -> u16 {
        self.size
    }
    /// `i + n` wrapped.
    #[inline(always)]
    pub fn add(self, i: u16, n: u16) -> u16 {
        let size = u32::from(self.size);
        let mut s = u32::from(i) + u32::from(n);
        // Hot path: callers pass `i < size` and `n <= size`, so one compare
        // and subtract wraps it (no division per packet). The remainder
        // fallback keeps the result exact for any other input.
        if s >= size {
            s -= size;
            if s >= size {
                s %= size;
            }
        }
        // `s` is below `size`, a u16.
        s as u16
    }
    /// `i + 1` wrapped, for `i < size`: one compare, no division.
    #[inline(always)]
    pub fn next(self, i: u16) -> u16 {
        let n = i.wrapping_add(1);
        if n >= self.size { 0 } else { n }
    }
    /// `i - 1` wrapped.
    pub fn prev(self, i: u16) -> u16 {
        if i == 0 { self.size - 1 } else { i - 1 }
    }
    /// Entries from `from` up to (not including) `to`, going forward.
    pub fn distance(self, from: u16, to: u16) -> u16 {
        if to >= from {
            to - from
        } else {
            self.size - from + to
        }
    }
}

/// Checks a ring size against a device's limits: within `min..=max` and a
/// multiple of `multiple` (the ring length in bytes must be a multiple of 128,
/// so 8 descriptors).
pub fn check_ring_size(size: u16, min: u16, max: u16, multiple: u16) -> bool {
    size >= min && size <= max && size.is_multiple_of(multiple)
}

/// A register window a queue writes its tail through.
pub trait Doorbell: Send + Sync {
    fn write32(&self, offset: usize, value: u32);
}

impl Doorbell for hw::mmio::Bar {
    fn write32(&self, offset: usize, value: u32) {
        hw::mmio::Bar::write32(self, offset, value)
    }
}

/// Where a port's rings ring their doorbells, and the port's DMA fence
/// (what every ring over device-visible memory releases buffers through).
#[derive(Clone)]
pub struct QueueBar {
    pub bar: Arc<dyn Doorbell>,
    pub fence: Arc<crate::fence::DmaFence>,
}

/// A descriptor ring in hugepage DMA memory plus its tail register.
pub struct DmaQueue {
    mem: hw::dma::DmaMemory,
    size: u16,
    /// Bytes per descriptor ([`DESC_LEN`] or [`WIDE_DESC_LEN`]).
    desc_len: usize,
    bar: Arc<dyn Doorbell>,
    tail: usize,
    fence: Arc<crate::fence::DmaFence>,
}

impl DmaQueue {
    /// Allocates and zeroes a ring of `size` descriptors whose tail register
    /// is at `tail` in `qb`'s BAR; its buffers are released through `qb`'s
    /// fence.
    pub fn new(size: u16, qb: &QueueBar, tail: usize) -> Result<DmaQueue, hw::Error> {
        Self::with_desc_len(size, DESC_LEN, qb, tail)
    }
    /// As [`DmaQueue::new`] with `desc_len`-byte descriptors ([`DESC_LEN`]
    /// or [`WIDE_DESC_LEN`]; anything else is taken as [`DESC_LEN`]).
    pub fn with_desc_len(
        size: u16,
        desc_len: usize,
        qb: &QueueBar,
        tail: usize,
    ) -> Result<DmaQueue, hw::Error> {
        let desc_len = if desc_len == WIDE_DESC_LEN {
            WIDE_DESC_LEN
        } else {
            DESC_LEN
        };
        let len = usize::from(size) * desc_len;
        let mem = hw::dma::DmaMemory::allocate(len, hw::HugePageSize::Size2M)?;
        let q = DmaQueue {
            mem,
            size,
            desc_len,
            bar: qb.bar.clone(),
            tail,
            fence: qb.fence.clone(),
        };
        for off in (0..len).step_by(8) {
            q.mem.write::<u64>(off, 0);
        }
        Ok(q)
    }
    /// Device address of descriptor 0.
    pub fn iova(&self) -> u64 {
        self.mem.iova()
    }
    /// Ring length in bytes (RDLEN/TDLEN).
    pub fn byte_len(&self) -> u32 {
        u32::from(self.size) * self.desc_len as u32
    }
}

impl QueueHw for DmaQueue {
    fn size(&self) -> u16 {
        self.size
    }
    #[inline]
    fn write(&mut self, i: u16, d: Desc) {
        let off = usize::from(i) * self.desc_len;
        // Two 8-byte stores, the low quadword (the buffer address) first
        // and the high one (which clears DD) last, as DPDK's and Linux's
        // drivers write them. The device reads a descriptor only once the
        // tail has moved past it and the tail write is ordered after these
        // stores (see write_tail); a single 16-byte store is not used: it
        // is a vector store whose atomicity and order the ISA leaves open
        // (and TCG emulates in pieces).
        self.mem.write::<u64>(off, d.lo.to_le());
        self.mem.write::<u64>(off + 8, d.hi.to_le());
    }
    #[inline]
    fn read_hi(&self, i: u16) -> u64 {
        let v = u64::from_le(self.mem.read::<u64>(usize::from(i) * self.desc_len + 8));
        // Nothing of the descriptor (or its buffer) may be read before DD.
        fence(Ordering::Acquire);
        v
    }
    #[inline]
    fn read_lo(&self, i: u16) -> u64 {
        u64::from_le(self.mem.read::<u64>(usize::from(i) * self.desc_len))
    }
    fn desc_len(&self) -> usize {
        self.desc_len
    }
    #[inline]
    fn write_upper(&mut self, i: u16, d: Desc) {
        if self.desc_len == WIDE_DESC_LEN {
            let off = usize::from(i) * WIDE_DESC_LEN + DESC_LEN;
            // Two 8-byte stores, as in `write`.
            self.mem.write::<u64>(off, d.lo.to_le());
            self.mem.write::<u64>(off + 8, d.hi.to_le());
        }
    }
    #[inline]
    fn read_q2(&self, i: u16) -> u64 {
        if self.desc_len == WIDE_DESC_LEN {
            u64::from_le(
                self.mem
                    .read::<u64>(usize::from(i) * WIDE_DESC_LEN + DESC_LEN),
            )
        } else {
            0
        }
    }
    fn write_tail(&mut self, value: u16) {
        // Descriptor stores must be visible to the device before the tail.
        fence(Ordering::Release);
        self.bar
            .write32(self.tail, tail_register(value, self.desc_len));
    }
    fn fence(&self) -> Option<&crate::fence::DmaFence> {
        Some(&self.fence)
    }
}

/// The RDT/TDT value that hands the device descriptors up to (not
/// including) `index` of a ring of `desc_len`-byte descriptors: the
/// registers count [`RING_UNIT`]s.
pub fn tail_register(index: u16, desc_len: usize) -> u32 {
    u32::from(index) * (desc_len / RING_UNIT).max(1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_registers_count_16_byte_units() {
        assert_eq!(tail_register(5, DESC_LEN), 5);
        assert_eq!(tail_register(5, WIDE_DESC_LEN), 10);
        assert_eq!(tail_register(4095, WIDE_DESC_LEN), 8190);
    }

    #[test]
    fn index_arithmetic_wraps() {
        let r = Ring::new(64).expect("valid size");
        assert_eq!(r.add(63, 1), 0);
        assert_eq!(r.next(63), 0);
        assert_eq!(r.next(62), 63);
        assert_eq!(r.next(0), 1);
        assert_eq!(r.add(60, 10), 6);
        assert_eq!(r.prev(0), 63);
        assert_eq!(r.prev(5), 4);
        assert_eq!(r.distance(10, 10), 0);
        assert_eq!(r.distance(60, 4), 8);
        assert_eq!(r.distance(4, 60), 56);
    }

    #[test]
    fn add_matches_the_remainder_for_every_input() {
        for size in [2u16, 7, 64, 4096] {
            let r = Ring::new(size).expect("valid size");
            for i in (0..=u16::MAX).step_by(97).chain(0..size) {
                for n in [0u16, 1, size - 1, size, size + 1, u16::MAX] {
                    let want = ((u32::from(i) + u32::from(n)) % u32::from(size)) as u16;
                    assert_eq!(r.add(i, n), want, "size {size} i {i} n {n}");
                }
            }
        }
    }

    #[test]
    fn rings_below_two_descriptors_are_refused() {
        assert_eq!(Ring::new(0), Err(RingTooSmall { size: 0 }));
        assert_eq!(Ring::new(1), Err(RingTooSmall { size: 1 }));
        assert!(Ring::new(2).is_ok());
    }

    #[test]
    fn ring_sizes_follow_the_limits() {
        assert!(check_ring_size(64, 64, 4096, 8));
        assert!(check_ring_size(4096, 64, 4096, 8));
        assert!(!check_ring_size(63, 64, 4096, 8));
        assert!(!check_ring_size(4104, 64, 4096, 8));
        assert!(!check_ring_size(100, 64, 4096, 8));
    }
}
