//! Hugepage-backed shared memory: the host half of [`crate::dma::DmaMemory`].
//!
//! memmap2's anonymous maps are private, so a shared hugepage mapping is made from a
//! `memfd_create(MFD_HUGETLB | MFD_HUGE_2MB/1GB)` file mapped `MAP_SHARED | MAP_POPULATE`
//! (the same pages a `MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB` mapping would give).
//! Lengths are rounded up to the page size first: memmap2 would otherwise leak the
//! unaligned tail of a hugetlb mapping on unmap.

use std::ffi::CStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::Error;

/// The two x86-64 hugepage sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HugePageSize {
    /// 2 MiB pages.
    Size2M,
    /// 1 GiB pages.
    Size1G,
}

impl HugePageSize {
    /// log2 of the page size (21 or 30), as `MAP_HUGE_SHIFT`/`MFD_HUGE_SHIFT` want it.
    pub const fn shift(self) -> u32 {
        match self {
            Self::Size2M => 21,
            Self::Size1G => 30,
        }
    }
    /// The page size in bytes.
    pub const fn bytes(self) -> usize {
        1 << self.shift()
    }
    /// `len` rounded up to a whole number of pages; `None` on overflow.
    pub fn round_up(self, len: usize) -> Option<usize> {
        let mask = self.bytes() - 1;
        len.checked_add(mask).map(|l| l & !mask)
    }
    /// The sysfs directory of this pool, e.g. `/sys/kernel/mm/hugepages/hugepages-2048kB`.
    pub fn sysfs_dir(self) -> PathBuf {
        PathBuf::from(format!(
            "/sys/kernel/mm/hugepages/hugepages-{}kB",
            self.bytes() / 1024
        ))
    }
    /// The file a user writes to reserve pages of this size.
    pub fn nr_hugepages_path(self) -> String {
        self.sysfs_dir().join("nr_hugepages").display().to_string()
    }
    /// `(total, free)` pages of this size reserved in the system; `(0, 0)` if the
    /// kernel has no pool of this size.
    pub fn reserved(self) -> (u64, u64) {
        let read = |name: &str| {
            std::fs::read_to_string(self.sysfs_dir().join(name))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        (read("nr_hugepages"), read("free_hugepages"))
    }
}

impl fmt::Display for HugePageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Size2M => "2 MiB",
            Self::Size1G => "1 GiB",
        })
    }
}

const MFD_HUGE_SHIFT: u32 = 26;

/// A shared, populated, `MADV_DONTFORK` hugepage mapping (not yet IOMMU-mapped).
#[derive(Debug)]
pub struct HugePages {
    map: MmapRaw,
    size: HugePageSize,
    _memfd: File,
}

impl HugePages {
    /// Maps `len` bytes (rounded up to whole pages) of `size` hugepages.
    pub fn map(len: usize, size: HugePageSize) -> Result<Self, Error> {
        if len == 0 {
            return Err(Error::EmptyRegion);
        }
        let len = size.round_up(len).ok_or(Error::HugepageMap {
            size,
            len,
            source: io::Error::from(io::ErrorKind::InvalidInput),
        })?;
        let name: &CStr = c"hw-dma";
        let flags = libc::MFD_CLOEXEC | libc::MFD_HUGETLB | (size.shift() << MFD_HUGE_SHIFT);
        // SAFETY: `name` is a NUL-terminated string that outlives the call; flags are valid.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd < 0 {
            return Err(Error::HugepageMemfd {
                size,
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
        let memfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        memfd
            .set_len(len as u64)
            .map_err(|source| Error::HugepageMap { size, len, source })?;
        let (total, free) = size.reserved();
        let map = MmapOptions::new()
            .len(len)
            .populate()
            .map_raw(&memfd)
            .map_err(|source| {
                let needed = (len / size.bytes()) as u64;
                if source.raw_os_error() == Some(libc::ENOMEM) || free < needed {
                    Error::NoHugepages {
                        size,
                        needed,
                        free,
                        total,
                    }
                } else {
                    Error::HugepageMap { size, len, source }
                }
            })?;
        map.advise(Advice::DontFork)
            .map_err(|source| Error::DontFork { source })?;
        Ok(Self {
            map,
            size,
            _memfd: memfd,
        })
    }

    /// Start of the mapping.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Never true: empty mappings are refused.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
    /// The hugepage size backing the mapping.
    pub fn page_size(&self) -> HugePageSize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_whole_pages() {
        let m2 = HugePageSize::Size2M;
        assert_eq!(m2.bytes(), 2 << 20);
        assert_eq!(m2.round_up(1), Some(2 << 20));
        assert_eq!(m2.round_up(2 << 20), Some(2 << 20));
        assert_eq!(m2.round_up((2 << 20) + 1), Some(4 << 20));
        assert_eq!(HugePageSize::Size1G.round_up(3), Some(1 << 30));
        assert_eq!(m2.round_up(usize::MAX), None);
    }

    #[test]
    fn names_the_sysfs_pool() {
        assert_eq!(
            HugePageSize::Size2M.nr_hugepages_path(),
            "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
        );
        assert_eq!(
            HugePageSize::Size1G.nr_hugepages_path(),
            "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
        );
    }
}
