//! PCI addresses (`DDDD:BB:DD.F`) and the PCI configuration-space facts hw needs.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A PCI function address: domain, bus, device (slot) and function.
///
/// Parses the long form `DDDD:BB:DD.F` and the short form `BB:DD.F` (domain 0),
/// hexadecimal, either case. Displays in the long, lower-case form that sysfs uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    domain: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// Builds an address from its parts; `None` if `device > 31` or `function > 7`.
    pub fn new(domain: u16, bus: u8, device: u8, function: u8) -> Option<Self> {
        (device <= 31 && function <= 7).then_some(Self {
            domain,
            bus,
            device,
            function,
        })
    }
    /// The PCI domain (segment).
    pub fn domain(&self) -> u16 {
        self.domain
    }
    /// The bus number.
    pub fn bus(&self) -> u8 {
        self.bus
    }
    /// The device (slot) number, 0..=31.
    pub fn device(&self) -> u8 {
        self.device
    }
    /// The function number, 0..=7.
    pub fn function(&self) -> u8 {
        self.function
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

fn hex_field(input: &str, part: &str, digits: usize, what: &'static str) -> Result<u32, Error> {
    if part.len() != digits || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidPciAddress {
            input: input.to_owned(),
            reason: what,
        });
    }
    u32::from_str_radix(part, 16).map_err(|_| Error::InvalidPciAddress {
        input: input.to_owned(),
        reason: what,
    })
}

impl FromStr for PciAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let input = s.trim();
        let bad = |reason| Error::InvalidPciAddress {
            input: s.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split(':').collect();
        let (domain, bus, devfn) = match parts.as_slice() {
            [d, b, df] => (
                hex_field(s, d, 4, "the domain must be 4 hex digits (DDDD:BB:DD.F)")?,
                *b,
                *df,
            ),
            [b, df] => (0, *b, *df),
            _ => return Err(bad("expected DDDD:BB:DD.F or BB:DD.F")),
        };
        let bus = hex_field(s, bus, 2, "the bus must be 2 hex digits (DDDD:BB:DD.F)")?;
        let (dev, func) = devfn
            .split_once('.')
            .ok_or_else(|| bad("missing '.' before the function number (DDDD:BB:DD.F)"))?;
        let dev = hex_field(s, dev, 2, "the device must be 2 hex digits (DDDD:BB:DD.F)")?;
        let func = hex_field(
            s,
            func,
            1,
            "the function must be 1 hex digit (DDDD:BB:DD.F)",
        )?;
        let domain = u16::try_from(domain).map_err(|_| bad("domain out of range"))?;
        let bus = u8::try_from(bus).map_err(|_| bad("bus out of range"))?;
        let dev = u8::try_from(dev).map_err(|_| bad("device out of range"))?;
        let func = u8::try_from(func).map_err(|_| bad("function out of range"))?;
        if dev > 31 {
            return Err(bad("the device number must be at most 1f"));
        }
        if func > 7 {
            return Err(bad("the function number must be at most 7"));
        }
        Ok(Self {
            domain,
            bus,
            device: dev,
            function: func,
        })
    }
}

/// Configuration-space register offsets and bits (PCI Local Bus Specification names).
pub mod config {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u64 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u64 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u64 = 0x04;
    /// Command: memory space enable.
    pub const COMMAND_MEMORY: u16 = 1 << 1;
    /// Command: bus master enable.
    pub const COMMAND_MASTER: u16 = 1 << 2;
    /// Command: INTx emulation disable.
    pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
    /// Status register (16 bits).
    pub const STATUS: u64 = 0x06;
    /// Status: the device has a capability list.
    pub const STATUS_CAP_LIST: u16 = 1 << 4;
    /// Capabilities pointer (8 bits).
    pub const CAPABILITY_LIST: u64 = 0x34;
    /// Capability ID of the PCI Express capability.
    pub const CAP_ID_EXP: u8 = 0x10;
    /// Size of a PCI Express capability structure, version 2 (PCIe base
    /// specification 7.5.3): the registers [`crate::vfio::Device::pcie_update16`]
    /// may reach.
    pub const EXP_CAP_SIZE: u64 = 0x3C;
    /// PCIe capability: Device Control 2 (completion timeout value in bits
    /// 3:0).
    pub const EXP_DEVCTL2: u64 = 0x28;
    /// PCIe capability: Link Control (ASPM control in bits 1:0).
    pub const EXP_LNKCTL: u64 = 0x10;
    /// Link Control: ASPM L0s entry enabled.
    pub const EXP_LNKCTL_ASPM_L0S: u16 = 1 << 0;
    /// Link Control: ASPM L1 entry enabled.
    pub const EXP_LNKCTL_ASPM_L1: u16 = 1 << 1;
}

/// Walks the capability list of a config space read through `read8` and
/// returns the offset of the capability with ID `id`, if present. A list
/// that loops or points below the standard header ends the walk.
pub fn find_capability(
    mut read8: impl FnMut(u64) -> Result<u8, Error>,
    id: u8,
) -> Result<Option<u64>, Error> {
    let status = u16::from_le_bytes([read8(config::STATUS)?, read8(config::STATUS + 1)?]);
    if status & config::STATUS_CAP_LIST == 0 {
        return Ok(None);
    }
    let mut at = u64::from(read8(config::CAPABILITY_LIST)? & 0xFC);
    // 48 capabilities fit in the 192 bytes after the header.
    for _ in 0..48 {
        if at < 0x40 {
            return Ok(None);
        }
        if read8(at)? == id {
            return Ok(Some(at));
        }
        at = u64::from(read8(at + 1)? & 0xFC);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_capability_and_survives_a_looping_list() {
        let mut cfg = [0u8; 256];
        cfg[config::STATUS as usize] = config::STATUS_CAP_LIST as u8;
        cfg[config::CAPABILITY_LIST as usize] = 0x40;
        // PM at 0x40 -> MSI at 0x50 -> PCIe at 0xa0.
        cfg[0x40] = 0x01;
        cfg[0x41] = 0x50;
        cfg[0x50] = 0x05;
        cfg[0x51] = 0xa0;
        cfg[0xa0] = config::CAP_ID_EXP;
        let read = |c: [u8; 256]| move |o: u64| Ok(c[o as usize]);
        assert_eq!(
            find_capability(read(cfg), config::CAP_ID_EXP).unwrap(),
            Some(0xa0)
        );
        assert_eq!(find_capability(read(cfg), 0x11).unwrap(), None);
        let mut looped = cfg;
        looped[0x51] = 0x40;
        assert_eq!(
            find_capability(read(looped), config::CAP_ID_EXP).unwrap(),
            None
        );
        let mut none = cfg;
        none[config::STATUS as usize] = 0;
        assert_eq!(
            find_capability(read(none), config::CAP_ID_EXP).unwrap(),
            None
        );
    }

    #[test]
    fn parses_long_and_short_forms() {
        let a: PciAddress = "0000:00:03.0".parse().unwrap();
        assert_eq!(a, PciAddress::new(0, 0, 3, 0).unwrap());
        let b: PciAddress = "af:1F.7".parse().unwrap();
        assert_eq!(b.to_string(), "0000:af:1f.7");
        let c: PciAddress = "ABCD:01:02.3".parse().unwrap();
        assert_eq!(
            (c.domain(), c.bus(), c.device(), c.function()),
            (0xabcd, 1, 2, 3)
        );
        assert_eq!(c.to_string(), "abcd:01:02.3");
    }

    #[test]
    fn display_round_trips() {
        for s in ["0000:00:00.0", "ffff:ff:1f.7", "0001:02:03.4"] {
            assert_eq!(s.parse::<PciAddress>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for (bad, needle) in [
            ("", "expected DDDD:BB:DD.F"),
            ("0000:00:03", "missing '.'"),
            ("0:00:03.0", "domain must be 4 hex digits"),
            ("0000:0:03.0", "bus must be 2 hex digits"),
            ("0000:00:3.0", "device must be 2 hex digits"),
            ("0000:00:03.8", "at most 7"),
            ("0000:00:20.0", "at most 1f"),
            ("0000:00:03.00", "function must be 1 hex digit"),
            ("0000:g0:03.0", "bus must be 2 hex digits"),
            ("1:0000:00:03.0", "expected DDDD:BB:DD.F"),
            ("+000:00:03.0", "domain must be 4 hex digits"),
        ] {
            let err = bad.parse::<PciAddress>().unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, Error::InvalidPciAddress { .. }),
                "{bad}: {msg}"
            );
            assert!(msg.contains(needle), "{bad:?}: {msg:?} lacks {needle:?}");
            assert!(
                msg.contains(&format!("{bad:?}")),
                "{msg} does not quote the input"
            );
        }
    }
}
