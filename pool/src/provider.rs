//! Memory providers: what a pool is cut from.
//!
//! Two unsafe traits describe the memory the pool needs, so the pool does
//! not depend on how the memory was obtained: [`DmaRegion`] for memory the
//! CPU may read and write and a device reaches by IOVA (hugepage pages),
//! and [`DeviceRegion`] for memory only a device reaches (net_iov chunks).
//! The hw crate's types implement them; [`HostMemory`] and
//! [`HostDeviceMemory`] are plain-memory stand-ins for host tests.

use crate::sync::{AtomicU64, Ordering, sync_static};
use std::alloc::Layout;
use std::ptr::NonNull;

use crate::PoolError;

/// CPU-readable, DMA-mapped memory.
///
/// # Safety
/// An implementor guarantees, for as long as the value lives:
/// - `as_ptr()..as_ptr() + len()` is one allocation valid for reads and
///   writes, and nothing else creates references to it (the pool hands out
///   its bytes);
/// - the same bytes are reachable by devices at `iova()..iova() + len()`
///   (contiguous in IOVA space, CPU offset = IOVA offset);
/// - `page_size()` is a power of two and the memory is backed by pages of
///   that size starting at `as_ptr()`;
/// - all four methods always return the same values.
pub unsafe trait DmaRegion: Send + Sync + 'static {
    fn as_ptr(&self) -> NonNull<u8>;
    fn iova(&self) -> u64;
    fn len(&self) -> usize;
    fn page_size(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Device memory: an IOVA range a device can DMA into, never touched by the
/// CPU through the pool.
///
/// # Safety
/// An implementor guarantees that `iova()..iova() + len()` stays mapped for
/// devices in the process's IOMMU container for as long as the value lives,
/// and that both methods always return the same values.
pub unsafe trait DeviceRegion: Send + Sync + 'static {
    fn iova(&self) -> u64;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

sync_static!(
/// Fake IOVAs for host memory: distinct, page-aligned, far from 0.
NEXT_FAKE_IOVA: AtomicU64 = AtomicU64::new(0x10_0000_0000), AtomicU64::new(0x10_0000_0000));

fn fake_iova(len: usize, align: usize) -> u64 {
    let span = (len as u64).next_multiple_of(align as u64) + align as u64;
    let base = NEXT_FAKE_IOVA.fetch_add(span, Ordering::Relaxed);
    base.next_multiple_of(align as u64)
}

/// Plain, zeroed host memory with a fake IOVA (no device can reach it): the
/// provider for host tests and benchmarks.
pub struct HostMemory {
    ptr: NonNull<u8>,
    layout: Layout,
    iova: u64,
    page_size: usize,
}

// SAFETY: HostMemory owns its allocation exclusively; it is plain memory.
unsafe impl Send for HostMemory {}
// SAFETY: HostMemory exposes no interior mutability itself; access to the
// bytes is arbitrated by the pool that owns it.
unsafe impl Sync for HostMemory {}

impl HostMemory {
    /// `len` zeroed bytes aligned to `page_size` (a power of two >= 4096).
    pub fn new(len: usize, page_size: usize) -> Result<Self, PoolError> {
        if !page_size.is_power_of_two() || page_size < 4096 {
            return Err(PoolError::PageSize(page_size));
        }
        let len = len.max(1).next_multiple_of(page_size);
        let layout =
            Layout::from_size_align(len, page_size).map_err(|_| PoolError::HostAlloc { len })?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(PoolError::HostAlloc { len })?;
        Ok(Self {
            ptr,
            layout,
            iova: fake_iova(len, page_size),
            page_size,
        })
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

// SAFETY: the allocation is owned, valid for `len` bytes for the value's
// life, aligned to `page_size`; the fake IOVA range has the same length.
unsafe impl DmaRegion for HostMemory {
    fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }
    fn iova(&self) -> u64 {
        self.iova
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
    fn page_size(&self) -> usize {
        self.page_size
    }
}

/// A fake device-memory region: an IOVA range with no backing (host tests
/// of net_iov pools; the pool never touches net_iov bytes).
pub struct HostDeviceMemory {
    iova: u64,
    len: usize,
}

impl HostDeviceMemory {
    pub fn new(len: usize) -> Self {
        Self {
            iova: fake_iova(len, 4096),
            len,
        }
    }
}

// SAFETY: nothing accesses this range; it exists only to give net_iovs
// distinct DMA addresses in host tests, and the values never change.
unsafe impl DeviceRegion for HostDeviceMemory {
    fn iova(&self) -> u64 {
        self.iova
    }
    fn len(&self) -> usize {
        self.len
    }
}

// SAFETY: DmaMemory owns a hugepage mapping of `len()` bytes at `as_ptr()`,
// mapped into the VFIO container at `iova()` (contiguous, IOVA aligned to
// the page size) until it is dropped; no other Rust reference to its bytes
// is created by hw; the values are fixed at allocation. Devices write the
// bytes only while a driver has posted a buffer, i.e. while no `Netmem`
// for it exists (the driver holds it as a raw word).
unsafe impl DmaRegion for hw::dma::DmaMemory {
    fn as_ptr(&self) -> NonNull<u8> {
        hw::dma::DmaMemory::as_ptr(self)
    }
    fn iova(&self) -> u64 {
        hw::dma::DmaMemory::iova(self)
    }
    fn len(&self) -> usize {
        hw::dma::DmaMemory::len(self)
    }
    fn page_size(&self) -> usize {
        hw::dma::DmaMemory::page_size(self).bytes()
    }
}

// SAFETY: DeviceMemory stays mapped into the VFIO container at `iova()` for
// `len()` bytes until it is dropped; the values are fixed at creation.
unsafe impl DeviceRegion for hw::devmem::DeviceMemory {
    fn iova(&self) -> u64 {
        hw::devmem::DeviceMemory::iova(self)
    }
    fn len(&self) -> usize {
        hw::devmem::DeviceMemory::len(self)
    }
}
