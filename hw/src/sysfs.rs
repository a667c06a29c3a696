//! What sysfs says about PCI devices: drivers, IDs, IOMMU groups; binding.
//!
//! The root is a parameter (`/sys` in production) so that host tests can check
//! every error path against a fake tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{Error, PciAddress};

/// The driver name VFIO devices must be bound to.
pub const VFIO_PCI: &str = "vfio-pci";

/// Drivers that do not stop an IOMMU group from being viable (as the kernel's VFIO
/// allows): VFIO itself, pci-stub, and PCIe port bridges.
const VIABLE_DRIVERS: [&str; 3] = [VFIO_PCI, "pci-stub", "pcieport"];

/// A view of a sysfs tree.
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
}

/// One PCI device as sysfs describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDeviceInfo {
    /// Its address.
    pub addr: PciAddress,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code (24 bits: class, subclass, prog-if).
    pub class: u32,
    /// Bound driver.
    pub driver: Option<String>,
    /// IOMMU group, if the kernel has an IOMMU.
    pub iommu_group: Option<u32>,
    /// Network interfaces the kernel driver created (`net/`).
    pub interfaces: Vec<String>,
}

impl PciDeviceInfo {
    /// Whether the class code is 02h (network controller).
    pub fn is_network(&self) -> bool {
        self.class >> 16 == 0x02
    }
}

impl Default for Sysfs {
    fn default() -> Self {
        Self::new("/sys")
    }
}

fn link_name(path: &Path) -> Option<String> {
    fs::read_link(path)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

impl Sysfs {
    /// A sysfs tree rooted at `root` (`/sys` normally).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `<root>/bus/pci/devices/<addr>`.
    pub fn device_dir(&self, addr: &PciAddress) -> PathBuf {
        self.root.join("bus/pci/devices").join(addr.to_string())
    }

    /// Whether the device exists.
    pub fn exists(&self, addr: &PciAddress) -> bool {
        self.device_dir(addr).exists()
    }

    /// The driver the device is bound to.
    pub fn driver(&self, addr: &PciAddress) -> Option<String> {
        link_name(&self.device_dir(addr).join("driver"))
    }

    /// The device's IOMMU group number.
    pub fn iommu_group(&self, addr: &PciAddress) -> Option<u32> {
        link_name(&self.device_dir(addr).join("iommu_group")).and_then(|n| n.parse().ok())
    }

    /// Names (addresses) of the devices in IOMMU group `group`, sorted.
    pub fn group_devices(&self, group: u32) -> Result<Vec<String>, Error> {
        let dir = self
            .root
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("devices");
        let rd = fs::read_dir(&dir).map_err(|source| Error::Sysfs {
            path: dir.clone(),
            source,
        })?;
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    fn read_hex(&self, addr: &PciAddress, attr: &str) -> Result<u32, Error> {
        let path = self.device_dir(addr).join(attr);
        let s = fs::read_to_string(&path).map_err(|source| Error::Sysfs {
            path: path.clone(),
            source,
        })?;
        u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).map_err(|_| Error::Sysfs {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, format!("not hex: {s:?}")),
        })
    }

    /// Everything devbind shows about one device.
    pub fn info(&self, addr: &PciAddress) -> Result<PciDeviceInfo, Error> {
        if !self.exists(addr) {
            return Err(Error::NoSuchDevice { addr: *addr });
        }
        let interfaces = fs::read_dir(self.device_dir(addr).join("net"))
            .map(|rd| {
                let mut v: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        Ok(PciDeviceInfo {
            addr: *addr,
            vendor: self.read_hex(addr, "vendor")? as u16,
            device: self.read_hex(addr, "device")? as u16,
            class: self.read_hex(addr, "class")?,
            driver: self.driver(addr),
            iommu_group: self.iommu_group(addr),
            interfaces,
        })
    }

    /// Every PCI device, sorted by address (names that do not parse are skipped).
    pub fn devices(&self) -> Result<Vec<PciDeviceInfo>, Error> {
        let dir = self.root.join("bus/pci/devices");
        let rd = fs::read_dir(&dir).map_err(|source| Error::Sysfs {
            path: dir.clone(),
            source,
        })?;
        let mut addrs: Vec<PciAddress> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        addrs.sort();
        addrs.iter().map(|a| self.info(a)).collect()
    }

    /// The checks `Device::open` makes before touching VFIO, in the order a user
    /// fixes them: the device exists, is bound to vfio-pci, has an IOMMU group,
    /// and every other device in the group is bound to vfio-pci or nothing.
    /// Returns the group number.
    pub fn check_vfio_ready(&self, addr: &PciAddress) -> Result<u32, Error> {
        if !self.exists(addr) {
            return Err(Error::NoSuchDevice { addr: *addr });
        }
        let driver = self.driver(addr);
        if driver.as_deref() != Some(VFIO_PCI) {
            return Err(Error::NotBoundToVfio {
                addr: *addr,
                driver,
            });
        }
        let group = self
            .iommu_group(addr)
            .ok_or(Error::NoIommu { addr: *addr })?;
        let others = self.group_blockers(addr, group)?;
        if !others.is_empty() {
            return Err(Error::GroupNotViable {
                addr: *addr,
                group,
                others,
            });
        }
        Ok(group)
    }

    /// Devices in `group` (other than `addr`) whose driver makes the group not viable.
    pub fn group_blockers(
        &self,
        addr: &PciAddress,
        group: u32,
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        let me = addr.to_string();
        Ok(self
            .group_devices(group)?
            .into_iter()
            .filter(|d| *d != me)
            .filter_map(|d| {
                let drv = link_name(&self.root.join("bus/pci/devices").join(&d).join("driver"));
                match drv.as_deref() {
                    None => None,
                    Some(x) if VIABLE_DRIVERS.contains(&x) => None,
                    Some(_) => Some((d, drv)),
                }
            })
            .collect())
    }

    fn write_attr(&self, path: PathBuf, value: &str) -> Result<(), Error> {
        fs::write(&path, value).map_err(|source| Error::SysfsWrite {
            path,
            value: value.to_owned(),
            source,
        })
    }

    /// Unbinds the device from its current driver (no-op if it has none).
    pub fn unbind(&self, addr: &PciAddress) -> Result<(), Error> {
        if !self.exists(addr) {
            return Err(Error::NoSuchDevice { addr: *addr });
        }
        match self.driver(addr) {
            None => Ok(()),
            Some(d) => self.write_attr(
                self.root.join("bus/pci/drivers").join(d).join("unbind"),
                &addr.to_string(),
            ),
        }
    }

    /// Whether a driver of this name is registered (its module loaded).
    pub fn driver_loaded(&self, driver: &str) -> bool {
        self.root.join("bus/pci/drivers").join(driver).exists()
    }

    /// Binds the device to `driver` through `driver_override` and `drivers_probe`
    /// (unbinding it first), as dpdk-devbind does, and checks that it took.
    pub fn bind(&self, addr: &PciAddress, driver: &str) -> Result<(), Error> {
        if !self.exists(addr) {
            return Err(Error::NoSuchDevice { addr: *addr });
        }
        if !self.driver_loaded(driver) {
            return Err(Error::DriverNotLoaded {
                driver: driver.to_owned(),
            });
        }
        if self.driver(addr).as_deref() == Some(driver) {
            return Ok(());
        }
        self.unbind(addr)?;
        self.write_attr(self.device_dir(addr).join("driver_override"), driver)?;
        self.write_attr(self.root.join("bus/pci/drivers_probe"), &addr.to_string())?;
        match self.driver(addr) {
            Some(d) if d == driver => Ok(()),
            now => Err(Error::BindFailed {
                addr: *addr,
                driver: driver.to_owned(),
                now,
            }),
        }
    }

    /// Unbinds the device, clears `driver_override` and lets the kernel probe its own
    /// driver again (the way back from vfio-pci). Returns the driver it now has.
    pub fn unbind_to_kernel(&self, addr: &PciAddress) -> Result<Option<String>, Error> {
        self.unbind(addr)?;
        self.write_attr(self.device_dir(addr).join("driver_override"), "\n")?;
        self.write_attr(self.root.join("bus/pci/drivers_probe"), &addr.to_string())?;
        Ok(self.driver(addr))
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake sysfs tree for host tests.
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    pub struct FakeSysfs {
        pub root: PathBuf,
    }

    impl FakeSysfs {
        pub fn new(tag: &str) -> Self {
            let root = std::env::temp_dir().join(format!("hw-sysfs-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for d in ["bus/pci/devices", "bus/pci/drivers", "kernel/iommu_groups"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            Self { root }
        }

        /// Adds a device with IDs, class, optional driver and group.
        pub fn add(
            &self,
            addr: &str,
            ids: (u16, u16, u32),
            driver: Option<&str>,
            group: Option<u32>,
        ) {
            let dev_real = self.root.join("devices/pci0000:00").join(addr);
            std::fs::create_dir_all(&dev_real).unwrap();
            std::fs::write(dev_real.join("vendor"), format!("0x{:04x}\n", ids.0)).unwrap();
            std::fs::write(dev_real.join("device"), format!("0x{:04x}\n", ids.1)).unwrap();
            std::fs::write(dev_real.join("class"), format!("0x{:06x}\n", ids.2)).unwrap();
            symlink(&dev_real, self.root.join("bus/pci/devices").join(addr)).unwrap();
            if let Some(d) = driver {
                let drv = self.root.join("bus/pci/drivers").join(d);
                std::fs::create_dir_all(&drv).unwrap();
                symlink(&drv, dev_real.join("driver")).unwrap();
            }
            if let Some(g) = group {
                let gdir = self.root.join("kernel/iommu_groups").join(g.to_string());
                std::fs::create_dir_all(gdir.join("devices")).unwrap();
                symlink(&gdir, dev_real.join("iommu_group")).unwrap();
                symlink(&dev_real, gdir.join("devices").join(addr)).unwrap();
            }
        }

        pub fn path(&self) -> &Path {
            &self.root
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSysfs;
    use super::*;

    const IGB: (u16, u16, u32) = (0x8086, 0x10c9, 0x020000);

    fn a(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn ready_device_passes_and_returns_its_group() {
        let fs = FakeSysfs::new("ready");
        fs.add("0000:00:03.0", IGB, Some("vfio-pci"), Some(7));
        fs.add("0000:00:03.1", IGB, None, Some(7));
        let s = Sysfs::new(fs.path());
        assert_eq!(s.check_vfio_ready(&a("0000:00:03.0")).unwrap(), 7);
    }

    #[test]
    fn missing_device_says_so_and_points_at_devbind() {
        let fs = FakeSysfs::new("missing");
        let err = Sysfs::new(fs.path())
            .check_vfio_ready(&a("0000:00:09.0"))
            .unwrap_err();
        assert!(matches!(err, Error::NoSuchDevice { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("no PCI device 0000:00:09.0") && msg.contains("devbind --status"),
            "{msg}"
        );
    }

    #[test]
    fn other_driver_says_how_to_bind() {
        let fs = FakeSysfs::new("otherdrv");
        fs.add("0000:00:03.0", IGB, Some("igb"), Some(3));
        fs.add("0000:00:04.0", IGB, None, Some(4));
        let s = Sysfs::new(fs.path());
        let msg = s
            .check_vfio_ready(&a("0000:00:03.0"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bound to igb, not vfio-pci"), "{msg}");
        assert!(
            msg.contains("devbind --bind vfio-pci 0000:00:03.0"),
            "{msg}"
        );
        assert!(msg.contains("/sys/bus/pci/drivers/igb/unbind"), "{msg}");
        assert!(msg.contains("driver_override"), "{msg}");
        let msg = s
            .check_vfio_ready(&a("0000:00:04.0"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bound to no driver"), "{msg}");
        assert!(!msg.contains("/unbind"), "{msg}");
    }

    #[test]
    fn no_group_means_no_iommu() {
        let fs = FakeSysfs::new("noiommu");
        fs.add("0000:00:03.0", IGB, Some("vfio-pci"), None);
        let err = Sysfs::new(fs.path())
            .check_vfio_ready(&a("0000:00:03.0"))
            .unwrap_err();
        assert!(matches!(err, Error::NoIommu { .. }));
        assert!(err.to_string().contains("intel_iommu=on"), "{err}");
    }

    #[test]
    fn group_not_viable_lists_the_other_devices() {
        let fs = FakeSysfs::new("viable");
        fs.add("0000:00:03.0", IGB, Some("vfio-pci"), Some(5));
        fs.add("0000:00:03.1", IGB, Some("igb"), Some(5));
        fs.add("0000:00:03.2", IGB, Some("e1000e"), Some(5));
        fs.add("0000:00:03.3", IGB, Some("pcieport"), Some(5));
        let err = Sysfs::new(fs.path())
            .check_vfio_ready(&a("0000:00:03.0"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::GroupNotViable { group: 5, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("0000:00:03.1 (igb)") && msg.contains("0000:00:03.2 (e1000e)"),
            "{msg}"
        );
        assert!(
            !msg.contains("0000:00:03.3"),
            "a bridge does not block: {msg}"
        );
    }

    #[test]
    fn lists_devices_with_ids_driver_group() {
        let fs = FakeSysfs::new("list");
        fs.add(
            "0000:00:04.0",
            (0x8086, 0x10d3, 0x020000),
            Some("vfio-pci"),
            Some(4),
        );
        fs.add("0000:00:03.0", IGB, None, Some(3));
        fs.add(
            "0000:00:05.0",
            (0x1af4, 0x1110, 0x050000),
            Some("vfio-pci"),
            Some(5),
        );
        let v = Sysfs::new(fs.path()).devices().unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].addr, a("0000:00:03.0"));
        assert_eq!(
            (v[0].vendor, v[0].device, v[0].driver.clone()),
            (0x8086, 0x10c9, None)
        );
        assert_eq!(v[1].driver.as_deref(), Some("vfio-pci"));
        assert_eq!(v[1].iommu_group, Some(4));
        assert!(v[1].is_network() && !v[2].is_network());
    }

    #[test]
    fn bind_writes_override_and_probe() {
        let fs = FakeSysfs::new("bind");
        fs.add("0000:00:03.0", IGB, None, Some(3));
        let s = Sysfs::new(fs.path());
        let err = s.bind(&a("0000:00:03.0"), "vfio-pci").unwrap_err();
        assert!(err.to_string().contains("modprobe vfio-pci"), "{err}");
        std::fs::create_dir_all(fs.path().join("bus/pci/drivers/vfio-pci")).unwrap();
        // The fake kernel does not probe, so the bind is reported as not taken.
        let err = s.bind(&a("0000:00:03.0"), "vfio-pci").unwrap_err();
        assert!(matches!(err, Error::BindFailed { now: None, .. }), "{err}");
        let ov = std::fs::read_to_string(
            fs.path()
                .join("bus/pci/devices/0000:00:03.0/driver_override"),
        )
        .unwrap();
        assert_eq!(ov, "vfio-pci");
        let probe = std::fs::read_to_string(fs.path().join("bus/pci/drivers_probe")).unwrap();
        assert_eq!(probe, "0000:00:03.0");
    }
}
