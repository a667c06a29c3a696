//! Device memory: peer-to-peer DMA targets (another device's BAR, or an mmap-able fd).

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use crate::Error;
use crate::vfio::{Container, Device, DeviceInner};

/// A region another device (or a dmabuf/file exporter) owns, mapped into the process's
/// VFIO container so a NIC can DMA into it.
///
/// Safe code gets no access to its bytes: only [`DeviceMemory::iova`] and
/// [`DeviceMemory::len`]. Tests may look inside through the explicitly unsafe
/// [`DeviceMemory::host_view`].
#[derive(Debug)]
pub struct DeviceMemory {
    map: MmapRaw,
    iova: u64,
    container: &'static Container,
    _device: Option<Arc<DeviceInner>>,
}

// SAFETY: no Rust reference to the bytes is ever created; the raw mapping may be
// moved and shared between threads.
unsafe impl Send for DeviceMemory {}
// SAFETY: as above.
unsafe impl Sync for DeviceMemory {}

impl std::fmt::Debug for DeviceInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.addr())
    }
}

/// IOVA alignment for a region: its largest power-of-two divisor, between 4 KiB and 1 GiB.
fn region_align(len: u64) -> u64 {
    let pow = 1u64 << len.trailing_zeros().min(30);
    pow.max(4096)
}

impl DeviceMemory {
    /// Maps BAR `bar` of `device` (e.g. the ivshmem BAR2) into the container.
    pub fn from_bar(device: &Device, bar: u32) -> Result<Self, Error> {
        let map = device.mmap_region(bar)?;
        Self::enter(
            map,
            Some(device.inner().clone()),
            device.inner().container(),
        )
    }

    /// Maps `len` bytes of an mmap-able fd (dmabuf, memfd, file) shared, into the container.
    pub fn from_fd(fd: impl AsFd, len: usize) -> Result<Self, Error> {
        if len == 0 {
            return Err(Error::EmptyRegion);
        }
        let map = MmapOptions::new()
            .len(len)
            .map_raw(fd.as_fd().as_raw_fd())
            .map_err(|source| Error::MapFd { len, source })?;
        Self::enter(map, None, Container::global()?)
    }

    fn enter(
        map: MmapRaw,
        device: Option<Arc<DeviceInner>>,
        container: &'static Container,
    ) -> Result<Self, Error> {
        let len = map.len() as u64;
        // SAFETY: `map` stays mapped until Drop, which unmaps the IOVA first.
        let iova = unsafe { container.map(map.as_mut_ptr(), len, region_align(len))? };
        Ok(Self {
            map,
            iova,
            container,
            _device: device,
        })
    }

    /// The IOVA a device uses to reach the region.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Never true: empty regions are refused.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// A host-side view of the bytes, for tests that check what a device wrote.
    ///
    /// # Safety
    /// The caller accepts that devices may change the bytes at any time and uses the
    /// view only to inspect or seed test data, never as the datapath's memory.
    pub unsafe fn host_view(&self) -> HostView<'_> {
        HostView { mem: self }
    }
}

impl Drop for DeviceMemory {
    fn drop(&mut self) {
        self.container.unmap(self.iova);
    }
}

/// Volatile, bounds-checked byte access to a [`DeviceMemory`], for tests only.
#[derive(Debug)]
pub struct HostView<'a> {
    mem: &'a DeviceMemory,
}

impl HostView<'_> {
    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|e| e <= self.mem.len()),
            "host view access of {len} bytes at {offset:#x} outside {:#x} bytes",
            self.mem.len()
        );
    }

    /// Copies bytes out of the region, one volatile byte read at a time.
    ///
    /// # Panics
    /// If the range is outside the region.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        self.check(offset, out.len());
        let base = self.mem.map.as_mut_ptr();
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: offset + i < len was checked above.
            *b = unsafe { base.add(offset + i).read_volatile() };
        }
    }

    /// Copies bytes into the region with volatile writes.
    ///
    /// # Panics
    /// If the range is outside the region.
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        let base = self.mem.map.as_mut_ptr();
        for (i, b) in data.iter().enumerate() {
            // SAFETY: offset + i < len was checked above.
            unsafe { base.add(offset + i).write_volatile(*b) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::region_align;

    #[test]
    fn alignment_follows_the_region_size() {
        assert_eq!(region_align(16 << 20), 16 << 20);
        assert_eq!(region_align(3 << 21), 2 << 20);
        assert_eq!(region_align(100), 4096);
        assert_eq!(region_align(8 << 30), 1 << 30);
    }
}
