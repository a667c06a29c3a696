//! hw: the platform layer of the poll-mode driver.
//!
//! - [`PciAddress`]: `DDDD:BB:DD.F` addresses.
//! - [`vfio::Container`] / [`vfio::Device`]: the one per-process VFIO type1
//!   container, and PCI devices opened through it (config space, bus master,
//!   reset, MSI-X to eventfd).
//! - [`mmio::Bar`]: checked, volatile 32-bit register access.
//! - [`dma::DmaMemory`]: hugepage DMA memory in the container's IOMMU.
//! - [`devmem::DeviceMemory`]: another device's BAR or an fd, as a DMA target.
//! - [`sysfs::Sysfs`]: what sysfs says about PCI devices; bind/unbind (devbind).
//! - [`Error`]: every failure, with what to do about it.

pub mod devmem;
pub mod dma;
mod error;
pub mod hugepages;
pub mod iova;
pub mod mmio;
pub mod pci;
pub mod sysfs;
pub mod vfio;

pub use error::Error;
pub use hugepages::HugePageSize;
pub use pci::PciAddress;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
