//! VFIO: the one per-process type1 container and devices opened through it.
//!
//! Built on vfio-ioctls (legacy `/dev/vfio/vfio` type1 container, not iommufd,
//! which lacks peer-to-peer mapping). Where vfio-ioctls swallows a failure
//! (region read/write, reset, region info for a bad index) or can panic in Drop,
//! hw makes the call itself on the device fd so each failure is a typed
//! [`Error`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::mem::{self, ManuallyDrop};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use vfio_bindings::bindings::vfio::{
    VFIO_BASE, VFIO_DEVICE_FLAGS_RESET, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE, VFIO_TYPE, vfio_device_info, vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info, vfio_irq_info, vfio_region_info,
};
use vfio_ioctls::{VfioContainer, VfioDevice, VfioError, VfioOps};
pub use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::{
    ioctl, ioctl_with_mut_ptr, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref,
};
use vmm_sys_util::ioctl_io_nr;

use crate::iova::IovaAllocator;
use crate::mmio::Bar;
use crate::pci::config;
use crate::sysfs::Sysfs;
use crate::{Error, PciAddress};

ioctl_io_nr!(VFIO_DEVICE_GET_INFO, VFIO_TYPE as u32, VFIO_BASE + 7);
ioctl_io_nr!(VFIO_DEVICE_GET_REGION_INFO, VFIO_TYPE as u32, VFIO_BASE + 8);
ioctl_io_nr!(VFIO_DEVICE_GET_IRQ_INFO, VFIO_TYPE as u32, VFIO_BASE + 9);
ioctl_io_nr!(VFIO_DEVICE_SET_IRQS, VFIO_TYPE as u32, VFIO_BASE + 10);
ioctl_io_nr!(VFIO_DEVICE_RESET, VFIO_TYPE as u32, VFIO_BASE + 11);
ioctl_io_nr!(VFIO_IOMMU_GET_INFO, VFIO_TYPE as u32, VFIO_BASE + 12);
ioctl_io_nr!(VFIO_IOMMU_MAP_DMA, VFIO_TYPE as u32, VFIO_BASE + 13);
ioctl_io_nr!(VFIO_IOMMU_UNMAP_DMA, VFIO_TYPE as u32, VFIO_BASE + 14);

fn argsz<T>() -> u32 {
    mem::size_of::<T>() as u32
}

/// One DMA mapping the container knows about.
#[derive(Debug)]
struct Mapping {
    vaddr: u64,
    len: u64,
    /// Whether it is in the IOMMU now (false until the first group joins, and again
    /// after the last group left, which makes the kernel drop every mapping).
    mapped: bool,
}

#[derive(Debug)]
struct State {
    /// Open `Device`s per IOMMU group.
    groups: HashMap<u32, usize>,
    /// Whether the IOMMU is set and its IOVA ranges are in `iova`.
    iommu_known: bool,
    iova: IovaAllocator,
    maps: BTreeMap<u64, Mapping>,
}

/// The process's one VFIO type1 container: every device joins it, so every device
/// can reach every DMA region.
///
/// DMA memory may be allocated before any device is open: its IOVA then comes
/// from a provisional range valid on every x86 IOMMU ([`IovaAllocator::provisional`])
/// and it is entered into the IOMMU when the first device's group joins.
pub struct Container {
    vfio: Arc<VfioContainer>,
    state: Mutex<State>,
}

static GLOBAL: OnceLock<Container> = OnceLock::new();
static GLOBAL_INIT: Mutex<()> = Mutex::new(());

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("fd", &self.vfio.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl Container {
    /// The per-process container, opened (`/dev/vfio/vfio`, type1v2 checked) on first use.
    pub fn global() -> Result<&'static Container, Error> {
        if let Some(c) = GLOBAL.get() {
            return Ok(c);
        }
        let _guard = GLOBAL_INIT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = GLOBAL.get() {
            return Ok(c);
        }
        let vfio = VfioContainer::new(None).map_err(|source| Error::VfioUnavailable { source })?;
        let c = Container {
            vfio: Arc::new(vfio),
            state: Mutex::new(State {
                groups: HashMap::new(),
                iommu_known: false,
                iova: IovaAllocator::provisional(),
                maps: BTreeMap::new(),
            }),
        };
        Ok(GLOBAL.get_or_init(|| c))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is
        // a single insert/remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The usable IOVA ranges (inclusive), as `VFIO_IOMMU_GET_INFO` reported them
    /// once a device is open; the provisional range before.
    pub fn iova_ranges(&self) -> Vec<(u64, u64)> {
        self.state().iova.ranges().to_vec()
    }

    /// The IOVA address width in bits in use (the IOMMU's, or a narrower DMA mask).
    pub fn iova_width(&self) -> u32 {
        self.state().iova.width()
    }

    /// Whether a device has joined and the IOMMU's own ranges are known.
    pub fn iommu_ready(&self) -> bool {
        self.state().iommu_known
    }

    /// Restricts new IOVAs to below `2^bits`, for devices whose DMA mask is narrower
    /// than the IOMMU's address width (both NICs here do 64-bit DMA, so hw never
    /// needs it itself).
    pub fn set_dma_mask_bits(&self, bits: u32) {
        self.state().iova.set_dma_mask_bits(bits);
    }

    fn query_iova_ranges(&self) -> io::Result<Vec<(u64, u64)>> {
        let mut info = vfio_iommu_type1_info {
            argsz: argsz::<vfio_iommu_type1_info>(),
            ..Default::default()
        };
        // SAFETY: the container fd is valid; the kernel writes at most `argsz` bytes
        // into `info`, which is exactly that size.
        let r = unsafe { ioctl_with_mut_ref(&*self.vfio, VFIO_IOMMU_GET_INFO(), &mut info) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if info.flags & VFIO_IOMMU_INFO_CAPS == 0 || info.argsz <= argsz::<vfio_iommu_type1_info>()
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel reports no IOVA-range capability (needs Linux 5.4 or later)",
            ));
        }
        let words = (info.argsz as usize).div_ceil(8);
        let mut buf = vec![0u64; words];
        let need = info.argsz;
        let head = vfio_iommu_type1_info {
            argsz: need,
            ..Default::default()
        };
        // SAFETY: `buf` holds at least size_of::<vfio_iommu_type1_info>() bytes, is 8-byte
        // aligned, and the struct is plain data.
        unsafe { buf.as_mut_ptr().cast::<vfio_iommu_type1_info>().write(head) };
        // SAFETY: `buf` is `need` bytes or more, so the kernel's write stays inside it.
        let r = unsafe {
            ioctl_with_mut_ptr(
                &*self.vfio,
                VFIO_IOMMU_GET_INFO(),
                buf.as_mut_ptr().cast::<u8>(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        parse_iova_ranges(&bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no IOVA-range capability in VFIO_IOMMU_GET_INFO",
            )
        })
    }

    fn dma_map(&self, iova: u64, m: &Mapping) -> Result<(), Error> {
        let map = vfio_iommu_type1_dma_map {
            argsz: argsz::<vfio_iommu_type1_dma_map>(),
            flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: m.vaddr,
            iova,
            size: m.len,
        };
        // SAFETY: the container fd is valid and `map` is a complete, correctly sized
        // request; the mapped memory's lifetime is guaranteed by `map()`'s caller.
        let r = unsafe { ioctl_with_ref(&*self.vfio, VFIO_IOMMU_MAP_DMA(), &map) };
        if r == 0 {
            return Ok(());
        }
        let source = io::Error::last_os_error();
        if source.raw_os_error() == Some(libc::ENOMEM) {
            return Err(Error::MemlockLimit {
                len: m.len,
                limit: memlock_limit(),
            });
        }
        Err(Error::DmaMap {
            iova,
            len: m.len,
            source,
        })
    }

    fn dma_unmap(&self, iova: u64, len: u64) -> io::Result<()> {
        let mut unmap = vfio_iommu_type1_dma_unmap {
            argsz: argsz::<vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size: len,
            ..Default::default()
        };
        // SAFETY: the container fd is valid and `unmap` is correctly sized.
        let r = unsafe { ioctl_with_mut_ref(&*self.vfio, VFIO_IOMMU_UNMAP_DMA(), &mut unmap) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Allocates an IOVA for `[vaddr, vaddr + len)` and maps it (now, or when the
    /// first device joins). Returns the IOVA.
    ///
    /// # Safety
    /// `[vaddr, vaddr + len)` must be a mapping of this process that stays mapped
    /// until [`Container::unmap`] is called with the returned IOVA.
    pub(crate) unsafe fn map(&self, vaddr: *mut u8, len: u64, align: u64) -> Result<u64, Error> {
        let mut st = self.state();
        let iova = st.iova.alloc(len, align)?;
        let mut m = Mapping {
            vaddr: vaddr as u64,
            len,
            mapped: false,
        };
        if st.iommu_known {
            if let Err(e) = self.dma_map(iova, &m) {
                st.iova.free(iova);
                return Err(e);
            }
            m.mapped = true;
        }
        st.maps.insert(iova, m);
        Ok(iova)
    }

    /// Whether `[iova, iova + len)` lies inside one mapping of this container
    /// (DMA memory or device memory entered with [`Container::map`]): what a
    /// device of the container can reach there.
    pub fn is_mapped(&self, iova: u64, len: u64) -> bool {
        let st = self.state();
        st.maps
            .range(..=iova)
            .next_back()
            .is_some_and(|(&base, m)| iova.checked_add(len).is_some_and(|end| end <= base + m.len))
    }

    /// Removes a mapping made by [`Container::map`] and frees its IOVA.
    pub(crate) fn unmap(&self, iova: u64) {
        let mut st = self.state();
        if let Some(m) = st.maps.remove(&iova) {
            if m.mapped
                && let Err(e) = self.dma_unmap(iova, m.len)
            {
                log::error!(
                    "VFIO_IOMMU_UNMAP_DMA of IOVA {iova:#x} ({} bytes) failed: {e}",
                    m.len
                );
            }
            st.iova.free(iova);
        }
    }

    /// Called after a device of `group` joined: learns the IOMMU's ranges and maps
    /// what was allocated before.
    fn attach(&self, group: u32) -> Result<(), Error> {
        let mut st = self.state();
        *st.groups.entry(group).or_insert(0) += 1;
        if !st.iommu_known {
            let ranges = self
                .query_iova_ranges()
                .map_err(|source| Error::IommuInfo { source })?;
            log::info!("IOMMU IOVA ranges: {ranges:x?}");
            let outside = st.iova.set_ranges(ranges);
            if let Some(&(iova, len)) = outside.first() {
                return Err(Error::IovaOutsideIommu { iova, len });
            }
            let st = &mut *st;
            for (&iova, m) in st.maps.iter_mut().filter(|(_, m)| !m.mapped) {
                self.dma_map(iova, m)?;
                m.mapped = true;
            }
            st.iommu_known = true;
        }
        Ok(())
    }

    /// Called after a device of `group` closed.
    fn detach(&self, group: u32) {
        let mut st = self.state();
        if let Some(n) = st.groups.get_mut(&group) {
            *n -= 1;
            if *n == 0 {
                st.groups.remove(&group);
            }
        }
        // When the last group leaves, the kernel releases the IOMMU and every
        // mapping with it; they are entered again when a device joins.
        if st.groups.is_empty() && self.query_iova_ranges().is_err() {
            st.iommu_known = false;
            for m in st.maps.values_mut() {
                m.mapped = false;
            }
        }
    }
}

/// Parses the IOVA-range capability out of a `VFIO_IOMMU_GET_INFO` reply.
pub(crate) fn parse_iova_ranges(b: &[u8]) -> Option<Vec<(u64, u64)>> {
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_ne_bytes)
    };
    let mut off = u32_at(16)? as usize; // vfio_iommu_type1_info.cap_offset
    let mut hops = 0;
    while off != 0 && hops < 64 {
        let id = u32_at(off)? & 0xffff;
        let next = u32_at(off + 4)? as usize;
        if id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
            let n = u32_at(off + 8)? as usize;
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let r = off + 16 + i * 16;
                v.push((u64_at(r)?, u64_at(r + 8)?));
            }
            return (!v.is_empty()).then_some(v);
        }
        off = next;
        hops += 1;
    }
    None
}

fn memlock_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `r`.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// What `VFIO_DEVICE_GET_REGION_INFO` says about one region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region index (BARs 0..=5, ROM 6, config 7, VGA 8).
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Size in bytes (0: not implemented).
    pub size: u64,
    /// Offset of the region in the device fd.
    pub offset: u64,
}

impl RegionInfo {
    /// Whether the region can be mmapped.
    pub fn mappable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_MMAP != 0
    }
    /// Whether the region can be read.
    pub fn readable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_READ != 0
    }
    /// Whether the region can be written.
    pub fn writable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_WRITE != 0
    }
}

pub(crate) struct DeviceInner {
    addr: PciAddress,
    group: u32,
    flags: u32,
    config: RegionInfo,
    container: &'static Container,
    vfio: ManuallyDrop<VfioDevice>,
    /// Declared last: released after `Drop::drop` has closed the device fd.
    _claim: OpenClaim,
}

/// The addresses of the devices this process has open (see [`OpenClaim`]).
static OPEN_DEVICES: Mutex<BTreeSet<PciAddress>> = Mutex::new(BTreeSet::new());

/// This process's claim on one device, held from the start of
/// [`Device::open`] until the device is closed. A second open of the same
/// address in the process is refused while the claim lives: the kernel
/// would hand out a second fd to the same function, and the second
/// driver's reset would stop the first one's queues under it.
struct OpenClaim(PciAddress);

impl OpenClaim {
    fn take(addr: &PciAddress) -> Result<OpenClaim, Error> {
        let mut open = OPEN_DEVICES.lock().unwrap_or_else(|p| p.into_inner());
        if !open.insert(*addr) {
            return Err(Error::AlreadyOpen { addr: *addr });
        }
        Ok(OpenClaim(*addr))
    }
}

impl Drop for OpenClaim {
    fn drop(&mut self) {
        OPEN_DEVICES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

impl DeviceInner {
    pub(crate) fn fd(&self) -> RawFd {
        self.vfio.as_raw_fd()
    }
    pub(crate) fn addr(&self) -> PciAddress {
        self.addr
    }
    pub(crate) fn container(&self) -> &'static Container {
        self.container
    }
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        // vfio-ioctls' Drop re-reads the iommu_group link and unwraps; if sysfs changed
        // under us (device removed or rebound) it would panic, so the device is leaked
        // instead (its fd closes at exit).
        if Sysfs::default().iommu_group(&self.addr) != Some(self.group) {
            log::warn!(
                "{}: IOMMU group link changed while open; leaving its VFIO fd open",
                self.addr
            );
            return;
        }
        // SAFETY: `vfio` is dropped exactly once, here, and never used afterwards.
        let r = catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut self.vfio)
        }));
        if r.is_err() {
            log::error!(
                "{}: vfio-ioctls panicked while closing the device",
                self.addr
            );
        }
        self.container.detach(self.group);
    }
}

/// A PCI device opened through VFIO, in the process's container.
///
/// Cloning is cheap and shares the device; BARs and device-memory regions keep it
/// open while they exist.
#[derive(Clone)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("addr", &self.inner.addr)
            .field("group", &self.inner.group)
            .finish_non_exhaustive()
    }
}

fn device_info(fd: RawFd) -> io::Result<vfio_device_info> {
    let mut info = vfio_device_info {
        argsz: argsz::<vfio_device_info>(),
        ..Default::default()
    };
    // SAFETY: `fd` is an open VFIO device fd; the kernel writes at most argsz bytes.
    let r = unsafe { ioctl_with_mut_ref(&RawFdRef(fd), VFIO_DEVICE_GET_INFO(), &mut info) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

fn region_info(fd: RawFd, index: u32) -> io::Result<RegionInfo> {
    let mut info = vfio_region_info {
        argsz: argsz::<vfio_region_info>(),
        index,
        ..Default::default()
    };
    // SAFETY: `fd` is an open VFIO device fd; the kernel writes at most argsz bytes.
    let r = unsafe { ioctl_with_mut_ref(&RawFdRef(fd), VFIO_DEVICE_GET_REGION_INFO(), &mut info) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RegionInfo {
        index,
        flags: info.flags,
        size: info.size,
        offset: info.offset,
    })
}

/// Borrowed raw fd for the ioctl helpers, which take `&impl AsRawFd`.
struct RawFdRef(RawFd);
impl AsRawFd for RawFdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Device {
    /// Opens the device at `addr` through its IOMMU group and joins the global
    /// container.
    ///
    /// Checks, in this order, with an error saying what to do for each: the
    /// device is not already open in this process ([`Error::AlreadyOpen`]:
    /// share the [`Device`] by cloning it instead), exists, is bound to
    /// vfio-pci, has an IOMMU group, its group is viable, VFIO is loaded.
    pub fn open(addr: &PciAddress) -> Result<Device, Error> {
        let claim = OpenClaim::take(addr)?;
        let sysfs = Sysfs::default();
        let group = sysfs.check_vfio_ready(addr)?;
        let container = Container::global()?;
        let ops: Arc<dyn VfioOps> = container.vfio.clone();
        let vfio =
            VfioDevice::new(&sysfs.device_dir(addr), ops, false).map_err(
                |source| match source {
                    VfioError::GroupViable => Error::GroupNotViable {
                        addr: *addr,
                        group,
                        others: sysfs.group_blockers(addr, group).unwrap_or_default(),
                    },
                    source => Error::OpenDevice {
                        addr: *addr,
                        group,
                        source,
                    },
                },
            )?;
        let fd = vfio.as_raw_fd();
        let flags = device_info(fd)
            .map(|i| i.flags)
            .map_err(|source| Error::DeviceInfo {
                addr: *addr,
                source,
            });
        let config =
            region_info(fd, VFIO_PCI_CONFIG_REGION_INDEX).map_err(|source| Error::RegionInfo {
                addr: *addr,
                index: VFIO_PCI_CONFIG_REGION_INDEX,
                source,
            });
        // From here on, dropping `inner` closes the device and detaches the group.
        let mut inner = DeviceInner {
            addr: *addr,
            group,
            flags: 0,
            config: RegionInfo {
                index: VFIO_PCI_CONFIG_REGION_INDEX,
                flags: 0,
                size: 0,
                offset: 0,
            },
            container,
            vfio: ManuallyDrop::new(vfio),
            _claim: claim,
        };
        // attach() counts the group first, so Drop's detach balances even on error.
        container.attach(group)?;
        inner.flags = flags?;
        inner.config = config?;
        log::info!("opened {addr} (IOMMU group {group}) through VFIO");
        Ok(Device {
            inner: Arc::new(inner),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<DeviceInner> {
        &self.inner
    }

    /// Its PCI address.
    pub fn addr(&self) -> PciAddress {
        self.inner.addr
    }

    /// Its IOMMU group.
    pub fn iommu_group(&self) -> u32 {
        self.inner.group
    }

    /// Information about region `index` (BAR 0..=5, ROM 6, config 7).
    pub fn region_info(&self, index: u32) -> Result<RegionInfo, Error> {
        region_info(self.inner.fd(), index).map_err(|source| Error::RegionInfo {
            addr: self.inner.addr,
            index,
            source,
        })
    }

    /// Maps BAR `index` for MMIO. Errors if the BAR is absent, empty or not mmap-able.
    ///
    /// # Safety
    /// Register writes through the [`Bar`] (safe once it exists) can aim the
    /// device's DMA at any IOVA of the container, including memory other
    /// safe code owns (pool buffers, other rings). The caller takes on,
    /// for every write made through this BAR: the device is given only
    /// IOVAs of memory reserved for it, which stays mapped and is not
    /// handed to anyone else until the device is proven stopped (queue
    /// disable confirmed, reset completed or bus mastering off). Reading
    /// registers alone is harmless, but the BAR cannot tell.
    pub unsafe fn map_bar(&self, index: u32) -> Result<Bar, Error> {
        Bar::map(self, index)
    }

    /// Maps region `index` whole over the device fd, after checking it is
    /// non-empty and mmap-able: the one place both register BARs
    /// ([`Bar`]) and device-memory BARs (`DeviceMemory::from_bar`) map.
    pub(crate) fn mmap_region(&self, index: u32) -> Result<memmap2::MmapRaw, Error> {
        let addr = self.addr();
        let region = self.region_info(index)?;
        if region.size == 0 {
            return Err(Error::RegionEmpty { addr, index });
        }
        if !region.mappable() {
            return Err(Error::RegionNotMappable { addr, index });
        }
        let len =
            usize::try_from(region.size).map_err(|_| Error::RegionNotMappable { addr, index })?;
        memmap2::MmapOptions::new()
            .offset(region.offset)
            .len(len)
            .map_raw(self.inner().fd())
            .map_err(|source| Error::MapRegion {
                addr,
                index,
                source,
            })
    }

    fn config_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let len = buf.len();
        let err = |source| Error::ConfigRead {
            addr: self.inner.addr,
            offset,
            len,
            source,
        };
        if offset + buf.len() as u64 > self.inner.config.size {
            return Err(err(io::Error::from(io::ErrorKind::InvalidInput)));
        }
        let pos = (self.inner.config.offset + offset) as libc::off_t;
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes; the fd is open.
        let n = unsafe { libc::pread(self.inner.fd(), buf.as_mut_ptr().cast(), buf.len(), pos) };
        match n {
            n if n < 0 => Err(err(io::Error::last_os_error())),
            n if n as usize != buf.len() => Err(err(io::Error::from(io::ErrorKind::UnexpectedEof))),
            _ => Ok(()),
        }
    }

    fn config_write(&self, offset: u64, buf: &[u8]) -> Result<(), Error> {
        let err = |source| Error::ConfigWrite {
            addr: self.inner.addr,
            offset,
            len: buf.len(),
            source,
        };
        if offset + buf.len() as u64 > self.inner.config.size {
            return Err(err(io::Error::from(io::ErrorKind::InvalidInput)));
        }
        let pos = (self.inner.config.offset + offset) as libc::off_t;
        // SAFETY: `buf` is valid for `buf.len()` bytes of reads; the fd is open.
        let n = unsafe { libc::pwrite(self.inner.fd(), buf.as_ptr().cast(), buf.len(), pos) };
        match n {
            n if n < 0 => Err(err(io::Error::last_os_error())),
            n if n as usize != buf.len() => Err(err(io::Error::from(io::ErrorKind::WriteZero))),
            _ => Ok(()),
        }
    }

    /// Reads a byte of config space.
    pub fn config_read8(&self, offset: u64) -> Result<u8, Error> {
        let mut b = [0u8; 1];
        self.config_read(offset, &mut b)?;
        Ok(b[0])
    }
    /// Reads 16 bits of config space (little-endian).
    pub fn config_read16(&self, offset: u64) -> Result<u16, Error> {
        let mut b = [0u8; 2];
        self.config_read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    /// Reads 32 bits of config space (little-endian).
    pub fn config_read32(&self, offset: u64) -> Result<u32, Error> {
        let mut b = [0u8; 4];
        self.config_read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// Writes 16 bits of config space (crate-private: COMMAND.MASTER is
    /// set only through the unsafe [`Device::enable_bus_master`]).
    pub(crate) fn config_write16(&self, offset: u64, v: u16) -> Result<(), Error> {
        self.config_write(offset, &v.to_le_bytes())
    }
    /// Writes 32 bits of config space (crate-private, as config_write16).
    #[allow(dead_code)]
    pub(crate) fn config_write32(&self, offset: u64, v: u32) -> Result<(), Error> {
        self.config_write(offset, &v.to_le_bytes())
    }

    /// Offset of the PCI Express capability in config space, if the device
    /// has one.
    pub fn pcie_capability(&self) -> Result<Option<u64>, Error> {
        crate::pci::find_capability(|o| self.config_read8(o), config::CAP_ID_EXP)
    }

    /// Read-modify-write of the 16-bit register `reg` bytes into the PCI
    /// Express capability (e.g. [`config::EXP_LNKCTL`],
    /// [`config::EXP_DEVCTL2`]): `clear` cleared, `set` set. Returns the
    /// value before and the value read back after (vfio-pci passes only
    /// some of these registers' writes to the device, so a caller checks
    /// the read-back), or `None` without a PCIe capability. Nothing
    /// outside the capability (COMMAND in particular) is reachable.
    pub fn pcie_update16(
        &self,
        reg: u64,
        clear: u16,
        set: u16,
    ) -> Result<Option<(u16, u16)>, Error> {
        let Some(cap) = self.pcie_capability()? else {
            return Ok(None);
        };
        if reg + 2 > config::EXP_CAP_SIZE {
            return Err(Error::ConfigWrite {
                addr: self.inner.addr,
                offset: cap + reg,
                len: 2,
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
        let before = self.config_read16(cap + reg)?;
        let want = (before & !clear) | set;
        if want != before {
            self.config_write16(cap + reg, want)?;
        }
        Ok(Some((before, self.config_read16(cap + reg)?)))
    }

    /// Vendor and device ID from config space.
    pub fn ids(&self) -> Result<(u16, u16), Error> {
        Ok((
            self.config_read16(config::VENDOR_ID)?,
            self.config_read16(config::DEVICE_ID)?,
        ))
    }

    fn update_command(&self, set: u16, clear: u16) -> Result<(), Error> {
        let cmd = self.config_read16(config::COMMAND)?;
        self.config_write16(config::COMMAND, (cmd | set) & !clear)
    }

    /// Sets COMMAND.MASTER (and memory space) so the device may DMA.
    ///
    /// # Safety
    /// From here the device may write any IOVA it was given (descriptor
    /// rings and buffer addresses programmed earlier, or left by a previous
    /// user of the device). The caller guarantees every such IOVA is memory
    /// reserved for the device, as for [`Device::map_bar`], until the
    /// device is proven stopped.
    pub unsafe fn enable_bus_master(&self) -> Result<(), Error> {
        self.update_command(config::COMMAND_MASTER | config::COMMAND_MEMORY, 0)
    }

    /// Sets COMMAND.MEMORY (BAR access) and leaves COMMAND.MASTER as it is:
    /// the registers can be programmed while the device still may not DMA.
    pub fn enable_memory_space(&self) -> Result<(), Error> {
        self.update_command(config::COMMAND_MEMORY, 0)
    }

    /// Clears COMMAND.MASTER: the device stops issuing DMA.
    pub fn disable_bus_master(&self) -> Result<(), Error> {
        self.update_command(0, config::COMMAND_MASTER)
    }

    /// Whether COMMAND.MASTER is set.
    pub fn bus_master_enabled(&self) -> Result<bool, Error> {
        Ok(self.config_read16(config::COMMAND)? & config::COMMAND_MASTER != 0)
    }

    /// Whether VFIO offers a reset method for the device (`VFIO_DEVICE_FLAGS_RESET`).
    pub fn can_reset(&self) -> bool {
        self.inner.flags & VFIO_DEVICE_FLAGS_RESET != 0
    }

    /// Resets the device with `VFIO_DEVICE_RESET` (FLR, PM or bus reset, as the
    /// kernel chooses).
    pub fn reset(&self) -> Result<(), Error> {
        if !self.can_reset() {
            return Err(Error::ResetUnsupported {
                addr: self.inner.addr,
            });
        }
        // SAFETY: the fd is an open VFIO device; the ioctl takes no argument.
        let r = unsafe { ioctl(&RawFdRef(self.inner.fd()), VFIO_DEVICE_RESET()) };
        if r < 0 {
            return Err(Error::Reset {
                addr: self.inner.addr,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Number of MSI-X vectors the device offers (0 if none).
    pub fn msix_vectors(&self) -> u32 {
        let mut info = vfio_irq_info {
            argsz: argsz::<vfio_irq_info>(),
            index: VFIO_PCI_MSIX_IRQ_INDEX,
            ..Default::default()
        };
        // SAFETY: the fd is an open VFIO device; the kernel writes at most argsz bytes.
        let r = unsafe {
            ioctl_with_mut_ref(
                &RawFdRef(self.inner.fd()),
                VFIO_DEVICE_GET_IRQ_INFO(),
                &mut info,
            )
        };
        if r < 0 { 0 } else { info.count }
    }

    /// Enables MSI-X vectors `0..count`, each signalling its own eventfd (returned in
    /// vector order). A later interrupt mode waits on these.
    pub fn enable_msix(&self, count: u32) -> Result<Vec<EventFd>, Error> {
        let available = self.msix_vectors();
        if count == 0 || count > available {
            return Err(Error::MsixVectors {
                addr: self.inner.addr,
                available,
                requested: count,
            });
        }
        let fds = (0..count)
            .map(|_| {
                EventFd::new(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
                    .map_err(|source| Error::EventFd { source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.set_msix(VFIO_IRQ_SET_DATA_EVENTFD, &raw)?;
        Ok(fds)
    }

    /// Enables MSI-X vectors `0..fds.len()`, vector `i` signalling `fds[i]`:
    /// eventfds the caller keeps across a disable and a later enable (a
    /// port's interrupt handles stay valid over its stop and start).
    pub fn enable_msix_eventfds(&self, fds: &[&EventFd]) -> Result<(), Error> {
        let available = self.msix_vectors();
        let count = fds.len() as u32;
        if count == 0 || count > available {
            return Err(Error::MsixVectors {
                addr: self.inner.addr,
                available,
                requested: count,
            });
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.set_msix(VFIO_IRQ_SET_DATA_EVENTFD, &raw)
    }

    /// Disables every MSI-X vector.
    pub fn disable_msix(&self) -> Result<(), Error> {
        self.set_msix(VFIO_IRQ_SET_DATA_NONE, &[])
    }

    fn set_msix(&self, data: u32, fds: &[RawFd]) -> Result<(), Error> {
        // struct vfio_irq_set { argsz, flags, index, start, count; data[] } then the fds.
        let mut buf: Vec<u32> = vec![
            0,
            data | VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_PCI_MSIX_IRQ_INDEX,
            0,
            fds.len() as u32,
        ];
        buf.extend(fds.iter().map(|&f| f as u32));
        buf[0] = (buf.len() * 4) as u32;
        // SAFETY: `buf` is a complete vfio_irq_set of `argsz` bytes followed by
        // `count` eventfds, which the kernel only reads.
        let r = unsafe {
            ioctl_with_ptr(
                &RawFdRef(self.inner.fd()),
                VFIO_DEVICE_SET_IRQS(),
                buf.as_ptr(),
            )
        };
        if r < 0 {
            return Err(Error::SetIrqs {
                addr: self.inner.addr,
                count: fds.len() as u32,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_open_in_the_process_is_refused_until_closed() {
        // An address no test machine has, so nothing else claims it.
        let addr: PciAddress = "00fe:fe:1f.7".parse().unwrap();
        let first = OpenClaim::take(&addr).unwrap();
        // Device::open checks the claim before touching sysfs or VFIO, so
        // this runs on a host without either.
        match Device::open(&addr) {
            Err(e @ Error::AlreadyOpen { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("00fe:fe:1f.7") && msg.contains("already open"),
                    "{msg}"
                );
            }
            other => panic!("second open of {addr}: {other:?}"),
        }
        drop(first);
        // Released: the next open gets past the claim (and fails later, on
        // the missing sysfs entry).
        match Device::open(&addr) {
            Err(Error::NoSuchDevice { addr: a }) => assert_eq!(a, addr),
            other => panic!("open after close: {other:?}"),
        }
        assert!(OpenClaim::take(&addr).is_ok());
    }

    fn reply(cap_offset: u32, caps: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        b[16..20].copy_from_slice(&cap_offset.to_ne_bytes());
        b.extend_from_slice(caps);
        b
    }

    fn range_cap(next: u32, ranges: &[(u64, u64)]) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE as u16).to_ne_bytes());
        c.extend_from_slice(&1u16.to_ne_bytes());
        c.extend_from_slice(&next.to_ne_bytes());
        c.extend_from_slice(&(ranges.len() as u32).to_ne_bytes());
        c.extend_from_slice(&0u32.to_ne_bytes());
        for (a, b) in ranges {
            c.extend_from_slice(&a.to_ne_bytes());
            c.extend_from_slice(&b.to_ne_bytes());
        }
        c
    }

    #[test]
    fn parses_the_iova_range_capability() {
        let ranges = [(0, 0xfedf_ffff), (0xfef0_0000, (1u64 << 39) - 1)];
        let b = reply(24, &range_cap(0, &ranges));
        assert_eq!(parse_iova_ranges(&b).unwrap(), ranges.to_vec());
    }

    #[test]
    fn skips_other_capabilities_and_rejects_truncation() {
        // A migration capability (id 3, 24 bytes) first, then the ranges.
        let mut other = vec![0u8; 24];
        other[0..2].copy_from_slice(&3u16.to_ne_bytes());
        other[4..8].copy_from_slice(&48u32.to_ne_bytes());
        let mut caps = other;
        caps.extend(range_cap(0, &[(0x1000, 0xffff_ffff)]));
        let b = reply(24, &caps);
        assert_eq!(parse_iova_ranges(&b).unwrap(), vec![(0x1000, 0xffff_ffff)]);
        assert_eq!(parse_iova_ranges(&b[..b.len() - 4]), None);
        assert_eq!(parse_iova_ranges(&reply(0, &[])), None);
    }
}
