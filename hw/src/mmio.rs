//! BAR MMIO: 32-bit volatile register access, bounds- and alignment-checked.

use std::sync::Arc;
#[cfg(feature = "mmio-count")]
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::Error;
use crate::vfio::{Device, DeviceInner};

/// A memory BAR mapped through the VFIO device fd.
///
/// Register offsets come from the driver, never from a user or the device, so an
/// offset outside the BAR or not 4-byte aligned is a driver bug: `read32` and
/// `write32` panic on it. The BAR keeps its device open.
///
/// With the `mmio-count` feature, every access is counted ([`Bar::access_counts`]).
pub struct Bar {
    map: MmapRaw,
    index: u32,
    /// `None` only for the host-test constructor.
    device: Option<Arc<DeviceInner>>,
    #[cfg(feature = "mmio-count")]
    reads: AtomicU64,
    #[cfg(feature = "mmio-count")]
    writes: AtomicU64,
}

// SAFETY: the mapping is device memory accessed only through volatile reads/writes
// of whole registers; concurrent accesses from several threads are what the device
// sees from several CPUs and create no Rust-level data race on Rust objects.
unsafe impl Sync for Bar {}
// SAFETY: as above; the mapping is not tied to the creating thread.
unsafe impl Send for Bar {}

impl std::fmt::Debug for Bar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bar")
            .field("device", &self.device.as_ref().map(|d| d.addr()))
            .field("index", &self.index)
            .field("len", &self.map.len())
            .finish()
    }
}

impl Bar {
    pub(crate) fn map(device: &Device, index: u32) -> Result<Self, Error> {
        let map = device.mmap_region(index)?;
        Ok(Self {
            map,
            index,
            device: Some(device.inner().clone()),
            #[cfg(feature = "mmio-count")]
            reads: AtomicU64::new(0),
            #[cfg(feature = "mmio-count")]
            writes: AtomicU64::new(0),
        })
    }

    /// A BAR over plain anonymous memory, for host tests of the accessors.
    #[cfg(test)]
    pub(crate) fn anonymous(len: usize) -> Self {
        let map = memmap2::MmapOptions::new().len(len).map_anon().unwrap();
        Self {
            map: MmapRaw::from(map),
            index: 0,
            device: None,
            #[cfg(feature = "mmio-count")]
            reads: AtomicU64::new(0),
            #[cfg(feature = "mmio-count")]
            writes: AtomicU64::new(0),
        }
    }

    /// The BAR index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Never true: empty BARs are refused.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    #[inline]
    #[track_caller]
    fn reg(&self, offset: usize) -> *mut u32 {
        assert!(
            offset.is_multiple_of(4) && offset.checked_add(4).is_some_and(|e| e <= self.map.len()),
            "driver bug: register offset {offset:#x} outside BAR{} ({:#x} bytes) or unaligned",
            self.index,
            self.map.len()
        );
        // SAFETY: offset + 4 <= len was just checked, so the pointer stays in the mapping.
        unsafe { self.map.as_mut_ptr().add(offset).cast::<u32>() }
    }

    /// Reads the 32-bit register at `offset`.
    ///
    /// # Panics
    /// If `offset` is not 4-byte aligned or outside the BAR (a driver bug).
    #[inline]
    #[track_caller]
    pub fn read32(&self, offset: usize) -> u32 {
        let p = self.reg(offset);
        #[cfg(feature = "mmio-count")]
        self.reads.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `p` is in the mapping and 4-byte aligned (page-aligned base + checked offset).
        unsafe { p.read_volatile() }
    }

    /// Writes the 32-bit register at `offset`.
    ///
    /// # Panics
    /// If `offset` is not 4-byte aligned or outside the BAR (a driver bug).
    #[inline]
    #[track_caller]
    pub fn write32(&self, offset: usize, value: u32) {
        let p = self.reg(offset);
        #[cfg(feature = "mmio-count")]
        self.writes.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `p` is in the mapping and 4-byte aligned (page-aligned base + checked offset).
        unsafe { p.write_volatile(value) }
    }

    /// `(reads, writes)` since the BAR was mapped or the last [`Bar::reset_access_counts`].
    #[cfg(feature = "mmio-count")]
    pub fn access_counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }

    /// Zeroes the access counters.
    #[cfg(feature = "mmio-count")]
    pub fn reset_access_counts(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_read_back_what_was_written() {
        let bar = Bar::anonymous(0x2_0000);
        bar.write32(0, 0xdead_beef);
        bar.write32(0x1_fffc, 7);
        assert_eq!(bar.read32(0), 0xdead_beef);
        assert_eq!(bar.read32(0x1_fffc), 7);
        assert_eq!(bar.read32(4), 0);
        #[cfg(feature = "mmio-count")]
        {
            assert_eq!(bar.access_counts(), (3, 2));
            bar.reset_access_counts();
            assert_eq!(bar.access_counts(), (0, 0));
        }
    }

    #[test]
    #[should_panic(expected = "outside BAR0")]
    fn offset_past_the_end_panics() {
        Bar::anonymous(4096).read32(4096);
    }

    #[test]
    #[should_panic(expected = "or unaligned")]
    fn unaligned_offset_panics() {
        Bar::anonymous(4096).write32(2, 0);
    }

    #[test]
    #[should_panic(expected = "outside BAR0")]
    fn offset_overflow_panics() {
        Bar::anonymous(4096).read32(usize::MAX - 3);
    }
}
