//! Hugepage DMA memory mapped into the container's IOMMU.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use crate::Error;
pub use crate::hugepages::HugePageSize;
use crate::hugepages::HugePages;
use crate::vfio::Container;

/// Plain data that may be read from and written to DMA memory: every bit pattern
/// is a valid value and there is no padding a device could observe.
///
/// # Safety
/// Implement only for `Copy` types with no invalid bit patterns (no `bool`, enums,
/// references or pointers), e.g. `#[repr(C)]` structs of integers such as
/// descriptor layouts.
pub unsafe trait DmaValue: Copy + 'static {}

macro_rules! dma_value {
    ($($t:ty),*) => { $(
        // SAFETY: every bit pattern is a valid integer.
        unsafe impl DmaValue for $t {}
    )* };
}
dma_value!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);
// SAFETY: an array of plain data is plain data.
unsafe impl<T: DmaValue, const N: usize> DmaValue for [T; N] {}

/// Hugepage-backed, shared, populated, `MADV_DONTFORK` memory, mapped into the
/// process's VFIO container at an IOVA that respects the IOMMU's address width.
/// Unmapped from the IOMMU, then from the process, on drop.
///
/// A device may write it at any time: access it only through
/// [`DmaMemory::read`]/[`DmaMemory::write`] (volatile) or raw pointers.
#[derive(Debug)]
pub struct DmaMemory {
    pages: HugePages,
    iova: u64,
    container: &'static Container,
}

impl DmaMemory {
    /// Allocates `len` bytes (rounded up to whole pages) of `page_size` hugepages and
    /// maps them for DMA. Fails with [`Error::NoHugepages`] saying how many pages to
    /// reserve, [`Error::MemlockLimit`], [`Error::IovaExhausted`], or
    /// [`Error::VfioUnavailable`].
    pub fn allocate(len: usize, page_size: HugePageSize) -> Result<Self, Error> {
        let pages = HugePages::map(len, page_size)?;
        let container = Container::global()?;
        // SAFETY: `pages` stays mapped until Drop, which unmaps the IOVA first.
        let iova = unsafe {
            container.map(
                pages.as_mut_ptr(),
                pages.len() as u64,
                page_size.bytes() as u64,
            )?
        };
        Ok(Self {
            pages,
            iova,
            container,
        })
    }

    /// Start of the memory in this process.
    pub fn as_ptr(&self) -> NonNull<u8> {
        // A successful mmap never returns null; fall back to dangling is unreachable.
        NonNull::new(self.pages.as_mut_ptr()).unwrap_or(NonNull::dangling())
    }

    /// The IOVA of the first byte (what a device is given).
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes (a whole number of pages).
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Never true: empty regions are refused.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The hugepage size backing the memory.
    pub fn page_size(&self) -> HugePageSize {
        self.pages.page_size()
    }

    #[track_caller]
    fn at<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset
                .checked_add(size_of::<T>())
                .is_some_and(|e| e <= self.len())
                && offset.is_multiple_of(align_of::<T>()),
            "driver bug: DMA access of {} bytes at offset {offset:#x} outside {:#x} bytes or misaligned",
            size_of::<T>(),
            self.len()
        );
        // SAFETY: offset + size_of::<T>() <= len was just checked.
        unsafe { self.pages.as_mut_ptr().add(offset).cast::<T>() }
    }

    /// Volatile read of a `T` at `offset`.
    ///
    /// # Panics
    /// If `offset` is out of bounds or not aligned for `T` (offsets are computed by
    /// drivers, never taken from a user or a device).
    #[inline]
    #[track_caller]
    pub fn read<T: DmaValue>(&self, offset: usize) -> T {
        let p = self.at::<T>(offset);
        // SAFETY: `p` is in bounds and aligned; T accepts any bit pattern.
        unsafe { p.read_volatile() }
    }

    /// Volatile write of a `T` at `offset`.
    ///
    /// # Panics
    /// As [`DmaMemory::read`].
    #[inline]
    #[track_caller]
    pub fn write<T: DmaValue>(&self, offset: usize, value: T) {
        let p = self.at::<T>(offset);
        // SAFETY: `p` is in bounds and aligned; the memory is ours and shared only with devices.
        unsafe { p.write_volatile(value) }
    }
}

impl Drop for DmaMemory {
    fn drop(&mut self) {
        self.container.unmap(self.iova);
    }
}
