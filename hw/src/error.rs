//! `hw::Error`: one variant per failing call, each message saying what to do.

use std::io;
use std::path::PathBuf;

use crate::hugepages::HugePageSize;
use crate::pci::PciAddress;

/// Everything that can go wrong in hw. Each message names the object, the failing
/// call and, where the user can fix it, how.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PCI address string is not `DDDD:BB:DD.F` / `BB:DD.F`.
    #[error("invalid PCI address {input:?}: {reason}")]
    InvalidPciAddress {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The device is already open in this process (a second [`crate::vfio::Device::open`]
    /// of one address would let the second driver reset the first one's queues).
    #[error(
        "PCI device {addr} is already open in this process: a device can be opened once \
         (give each port a different address, or clone the open Device to share it)"
    )]
    AlreadyOpen {
        /// The device.
        addr: PciAddress,
    },

    /// `/sys/bus/pci/devices/<addr>` does not exist.
    #[error(
        "no PCI device {addr}: /sys/bus/pci/devices/{addr} does not exist (list devices with `devbind --status`)"
    )]
    NoSuchDevice {
        /// The address asked for.
        addr: PciAddress,
    },

    /// The device is bound to a driver other than vfio-pci (or to none).
    #[error(
        "PCI device {addr} is {}, not vfio-pci: bind it with `devbind --bind vfio-pci {addr}` \
         (or: echo vfio-pci > /sys/bus/pci/devices/{addr}/driver_override; {}echo {addr} > /sys/bus/pci/drivers_probe)",
        match driver { Some(d) => format!("bound to {d}"), None => "bound to no driver".to_owned() },
        match driver { Some(d) => format!("echo {addr} > /sys/bus/pci/drivers/{d}/unbind; "), None => String::new() }
    )]
    NotBoundToVfio {
        /// The device.
        addr: PciAddress,
        /// Its current driver, if any.
        driver: Option<String>,
    },

    /// The device has no IOMMU group: the kernel runs without an IOMMU.
    #[error(
        "PCI device {addr} has no IOMMU group (/sys/bus/pci/devices/{addr}/iommu_group is missing): \
         the kernel runs without an IOMMU; enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on \
         (AMD: amd_iommu=on), then check that /sys/kernel/iommu_groups is not empty"
    )]
    NoIommu {
        /// The device.
        addr: PciAddress,
    },

    /// Another device in the same IOMMU group is bound to a host driver.
    #[error(
        "IOMMU group {group} of {addr} is not viable: every device in the group must be bound to vfio-pci \
         (or to no driver); bind these with `devbind --bind vfio-pci <addr>`: {}",
        others.iter().map(|(a, d)| format!("{a} ({})", d.as_deref().unwrap_or("no driver"))).collect::<Vec<_>>().join(", ")
    )]
    GroupNotViable {
        /// The device asked for.
        addr: PciAddress,
        /// Its IOMMU group.
        group: u32,
        /// The group's devices that block it, with their drivers.
        others: Vec<(String, Option<String>)>,
    },

    /// Reading sysfs failed.
    #[error("cannot read {path}: {source}")]
    Sysfs {
        /// The sysfs path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Writing a sysfs attribute failed (devbind).
    #[error("cannot write {value:?} to {path}: {source} (run as root)")]
    SysfsWrite {
        /// The sysfs attribute.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The driver to bind to is not registered.
    #[error(
        "driver {driver} is not loaded (no /sys/bus/pci/drivers/{driver}): load it with `modprobe {driver}`"
    )]
    DriverNotLoaded {
        /// The driver.
        driver: String,
    },

    /// After binding, the device is not on the asked driver.
    #[error(
        "binding {addr} to {driver} did not take: it is now {}; see the kernel log (dmesg)",
        now.as_deref().unwrap_or("bound to no driver")
    )]
    BindFailed {
        /// The device.
        addr: PciAddress,
        /// The driver asked for.
        driver: String,
        /// The driver it has now.
        now: Option<String>,
    },

    /// `/dev/vfio/vfio` cannot be opened or does not speak the type1 IOMMU API.
    #[error(
        "cannot open the VFIO container /dev/vfio/vfio: {source}; load the driver with `modprobe vfio-pci` (and vfio_iommu_type1)"
    )]
    VfioUnavailable {
        /// What vfio-ioctls reported.
        #[source]
        source: vfio_ioctls::VfioError,
    },

    /// Opening the group or the device through VFIO failed for another reason.
    #[error("cannot open PCI device {addr} through VFIO (IOMMU group {group}): {source}")]
    OpenDevice {
        /// The device.
        addr: PciAddress,
        /// Its group.
        group: u32,
        /// What vfio-ioctls reported.
        #[source]
        source: vfio_ioctls::VfioError,
    },

    /// `VFIO_DEVICE_GET_INFO` failed.
    #[error("VFIO_DEVICE_GET_INFO on PCI device {addr} failed: {source}")]
    DeviceInfo {
        /// The device.
        addr: PciAddress,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// `VFIO_DEVICE_GET_REGION_INFO` failed: the device has no such region.
    #[error("PCI device {addr} has no region {index} (VFIO_DEVICE_GET_REGION_INFO: {source})")]
    RegionInfo {
        /// The device.
        addr: PciAddress,
        /// The region (BAR 0..=5, ROM 6, config 7).
        index: u32,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The BAR exists as a region index but is not implemented by the device.
    #[error("BAR {index} of PCI device {addr} is not implemented (size 0)")]
    RegionEmpty {
        /// The device.
        addr: PciAddress,
        /// The region index.
        index: u32,
    },

    /// The region cannot be mmapped (I/O-port BAR, ROM, config space...).
    #[error(
        "region {index} of PCI device {addr} cannot be mmapped (VFIO does not report VFIO_REGION_INFO_FLAG_MMAP: \
         an I/O-port BAR, the ROM or the config space); use a memory BAR"
    )]
    RegionNotMappable {
        /// The device.
        addr: PciAddress,
        /// The region index.
        index: u32,
    },

    /// mmap of a region through the device fd failed.
    #[error("cannot mmap region {index} of PCI device {addr}: {source}")]
    MapRegion {
        /// The device.
        addr: PciAddress,
        /// The region index.
        index: u32,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// pread of the config space failed.
    #[error(
        "cannot read {len} bytes at offset {offset:#x} of the config space of {addr}: {source}"
    )]
    ConfigRead {
        /// The device.
        addr: PciAddress,
        /// Config-space offset.
        offset: u64,
        /// Access width.
        len: usize,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// pwrite of the config space failed.
    #[error(
        "cannot write {len} bytes at offset {offset:#x} of the config space of {addr}: {source}"
    )]
    ConfigWrite {
        /// The device.
        addr: PciAddress,
        /// Config-space offset.
        offset: u64,
        /// Access width.
        len: usize,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The device does not support `VFIO_DEVICE_RESET`.
    #[error(
        "PCI device {addr} cannot be reset: VFIO reports no reset method (no FLR, PM or bus reset)"
    )]
    ResetUnsupported {
        /// The device.
        addr: PciAddress,
    },

    /// `VFIO_DEVICE_RESET` failed.
    #[error("VFIO_DEVICE_RESET of PCI device {addr} failed: {source}")]
    Reset {
        /// The device.
        addr: PciAddress,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// `VFIO_DEVICE_GET_IRQ_INFO` failed or the device has too few MSI-X vectors.
    #[error("PCI device {addr} offers {available} MSI-X vectors, {requested} requested")]
    MsixVectors {
        /// The device.
        addr: PciAddress,
        /// Vectors the device has.
        available: u32,
        /// Vectors asked for.
        requested: u32,
    },

    /// Creating an eventfd failed.
    #[error("cannot create an eventfd for an MSI-X vector: {source}")]
    EventFd {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// `VFIO_DEVICE_SET_IRQS` (MSI-X) failed.
    #[error("VFIO_DEVICE_SET_IRQS (MSI-X, {count} vectors) on PCI device {addr} failed: {source}")]
    SetIrqs {
        /// The device.
        addr: PciAddress,
        /// Vectors (0 = disable).
        count: u32,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A zero-length DMA or device-memory region was asked for.
    #[error("a DMA region must not be empty")]
    EmptyRegion,

    /// `memfd_create(MFD_HUGETLB)` failed.
    #[error("cannot create a {size} hugetlb memfd: {source} (is hugetlbfs enabled in the kernel?)")]
    HugepageMemfd {
        /// Page size.
        size: HugePageSize,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Too few free hugepages of the asked size.
    #[error(
        "not enough {size} hugepages: {needed} needed, {free} free of {total} reserved; reserve more with \
         `echo {} > {}` (for 2 MiB pages also /proc/sys/vm/nr_hugepages)",
        total + needed.saturating_sub(*free), size.nr_hugepages_path()
    )]
    NoHugepages {
        /// Page size.
        size: HugePageSize,
        /// Pages needed for the mapping.
        needed: u64,
        /// Pages free before the attempt.
        free: u64,
        /// Pages reserved in total.
        total: u64,
    },

    /// mmap of hugepages failed for a reason other than too few pages.
    #[error("cannot map {len} bytes of {size} hugepages: {source}")]
    HugepageMap {
        /// Page size.
        size: HugePageSize,
        /// Bytes.
        len: usize,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// madvise(MADV_DONTFORK) failed.
    #[error("madvise(MADV_DONTFORK) on DMA memory failed: {source}")]
    DontFork {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// mmap of an fd for device memory failed.
    #[error("cannot mmap {len} bytes of the device-memory fd: {source}")]
    MapFd {
        /// Bytes.
        len: usize,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// No free IOVA range is large enough.
    #[error(
        "IOVA space exhausted: no free {len:#x}-byte range aligned to {align:#x} below {limit:#x} \
         ({width}-bit IOMMU address width{}); free DMA memory or use fewer, larger regions",
        if *restricted { ", narrowed by Container::set_dma_mask_bits" } else { "" }
    )]
    IovaExhausted {
        /// Bytes asked for.
        len: u64,
        /// Alignment asked for.
        align: u64,
        /// Highest usable IOVA + 1.
        limit: u64,
        /// Address width in bits.
        width: u32,
        /// Whether the space was narrowed by the user.
        restricted: bool,
    },

    /// `VFIO_IOMMU_MAP_DMA` failed with ENOMEM: pinned memory beyond RLIMIT_MEMLOCK.
    #[error(
        "VFIO_IOMMU_MAP_DMA of {len} bytes failed with ENOMEM: VFIO pins DMA memory and counts it against \
         RLIMIT_MEMLOCK ({}); raise it with `ulimit -l unlimited` (or memlock in /etc/security/limits.conf), \
         or run with CAP_IPC_LOCK",
        match limit { Some(l) => format!("limit {l} bytes"), None => "limit unknown".to_owned() }
    )]
    MemlockLimit {
        /// Bytes asked for.
        len: u64,
        /// The soft RLIMIT_MEMLOCK, if finite.
        limit: Option<u64>,
    },

    /// `VFIO_IOMMU_MAP_DMA` failed otherwise.
    #[error("VFIO_IOMMU_MAP_DMA of {len} bytes at IOVA {iova:#x} failed: {source}")]
    DmaMap {
        /// IOVA.
        iova: u64,
        /// Bytes.
        len: u64,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// `VFIO_IOMMU_GET_INFO` failed or reported no usable IOVA range.
    #[error("VFIO_IOMMU_GET_INFO failed: {source}")]
    IommuInfo {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A region allocated before the first device joined lies outside the IOMMU's ranges.
    #[error(
        "DMA memory at IOVA {iova:#x} ({len:#x} bytes) was allocated before any device was open and lies \
         outside the IOMMU's usable ranges; open the devices before allocating DMA memory"
    )]
    IovaOutsideIommu {
        /// IOVA.
        iova: u64,
        /// Bytes.
        len: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> PciAddress {
        PciAddress::new(0, 0, 3, 0).unwrap()
    }

    #[test]
    fn memlock_message_gives_the_limit_and_the_fix() {
        let m = Error::MemlockLimit {
            len: 2 << 20,
            limit: Some(65536),
        }
        .to_string();
        assert!(
            m.contains("2097152 bytes") && m.contains("limit 65536 bytes"),
            "{m}"
        );
        assert!(
            m.contains("ulimit -l unlimited") && m.contains("CAP_IPC_LOCK"),
            "{m}"
        );
        let m = Error::MemlockLimit {
            len: 1,
            limit: None,
        }
        .to_string();
        assert!(m.contains("limit unknown"), "{m}");
    }

    #[test]
    fn region_messages_name_device_and_region() {
        let m = Error::RegionNotMappable {
            addr: addr(),
            index: 2,
        }
        .to_string();
        assert!(
            m.contains("region 2 of PCI device 0000:00:03.0 cannot be mmapped"),
            "{m}"
        );
        let m = Error::RegionEmpty {
            addr: addr(),
            index: 5,
        }
        .to_string();
        assert!(
            m.contains("BAR 5 of PCI device 0000:00:03.0 is not implemented"),
            "{m}"
        );
    }

    #[test]
    fn no_hugepages_message_computes_the_new_total() {
        let m = Error::NoHugepages {
            size: HugePageSize::Size1G,
            needed: 3,
            free: 1,
            total: 4,
        }
        .to_string();
        assert!(m.contains("3 needed, 1 free of 4 reserved"), "{m}");
        assert!(
            m.contains("echo 6 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"),
            "{m}"
        );
    }

    #[test]
    fn vfio_unavailable_says_which_module() {
        let m = Error::VfioUnavailable {
            source: vfio_ioctls::VfioError::OpenContainer(io::Error::from_raw_os_error(
                libc::ENOENT,
            )),
        }
        .to_string();
        assert!(
            m.contains("/dev/vfio/vfio") && m.contains("modprobe vfio-pci"),
            "{m}"
        );
    }

    #[test]
    fn bind_errors_say_what_to_do() {
        let m = Error::DriverNotLoaded {
            driver: "vfio-pci".into(),
        }
        .to_string();
        assert!(m.contains("modprobe vfio-pci"), "{m}");
        let m = Error::BindFailed {
            addr: addr(),
            driver: "vfio-pci".into(),
            now: None,
        }
        .to_string();
        assert!(
            m.contains("bound to no driver") && m.contains("dmesg"),
            "{m}"
        );
    }
}
