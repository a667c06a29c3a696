//! The MAC-block registers and operations the 82576 (igb) and the 82574L
//! (e1000e) share: same offsets, same bits (82576 datasheet section 8,
//! 82574L datasheet section 10; Linux `e1000_regs.h`/`e1000_defines.h`
//! names). A driver holds a [`Mac`] over its BAR and calls these instead of
//! writing them again: reset with completion wait, interrupt masking, the
//! EEPROM MAC address through EERD, the receive address (RAL/RAH) and
//! multicast (MTA) tables, RCTL filter bits, link state from STATUS, and
//! clear-on-read statistics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hw::PciAddress;
use hw::mmio::Bar;

use crate::error::{Error, Result};
use crate::port::LinkStatus;
use crate::stats::HwStats;

/// Register offsets and bits common to both families.
pub mod regs {
    pub const CTRL: usize = 0x0000;
    pub const STATUS: usize = 0x0008;
    pub const EERD: usize = 0x0014;
    pub const CTRL_EXT: usize = 0x0018;
    pub const ICR: usize = 0x00C0;
    pub const IMC: usize = 0x00D8;
    pub const RCTL: usize = 0x0100;
    pub const TCTL: usize = 0x0400;
    pub const MTA: usize = 0x5200;
    /// Multicast table array: 128 32-bit registers (4096 hash bits).
    pub const MTA_LEN: usize = 128;
    pub const RAL0: usize = 0x5400;
    pub const RAH0: usize = 0x5404;
    pub const VFTA: usize = 0x5600;
    /// VLAN filter table array: 128 32-bit registers.
    pub const VFTA_LEN: usize = 128;

    /// Receive address low for filter `i`.
    pub const fn ral(i: usize) -> usize {
        RAL0 + 8 * i
    }
    /// Receive address high for filter `i`.
    pub const fn rah(i: usize) -> usize {
        RAH0 + 8 * i
    }

    pub const CTRL_SLU: u32 = 1 << 6;
    pub const CTRL_FRCSPD: u32 = 1 << 11;
    pub const CTRL_FRCDPLX: u32 = 1 << 12;
    pub const CTRL_RST: u32 = 1 << 26;
    pub const CTRL_VME: u32 = 1 << 30;

    pub const STATUS_FD: u32 = 1 << 0;
    pub const STATUS_LU: u32 = 1 << 1;
    pub const STATUS_SPEED_SHIFT: u32 = 6;
    pub const STATUS_SPEED_MASK: u32 = 3 << STATUS_SPEED_SHIFT;

    pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;

    /// EERD: START at bit 0, DONE at bit 1, word address from bit 2, data
    /// in bits 31:16 (82576 and 82574L alike).
    pub const EERD_START: u32 = 1 << 0;
    pub const EERD_DONE: u32 = 1 << 1;
    pub const EERD_ADDR_SHIFT: u32 = 2;
    pub const EERD_DATA_SHIFT: u32 = 16;

    /// ICR.RXO: receiver overrun (frames dropped for lack of descriptors).
    pub const ICR_RXO: u32 = 1 << 6;

    pub const RCTL_EN: u32 = 1 << 1;
    pub const RCTL_UPE: u32 = 1 << 3;
    pub const RCTL_MPE: u32 = 1 << 4;
    pub const RCTL_LPE: u32 = 1 << 5;
    pub const RCTL_BAM: u32 = 1 << 15;
    pub const RCTL_SECRC: u32 = 1 << 26;

    pub const TCTL_EN: u32 = 1 << 1;
    pub const TCTL_PSP: u32 = 1 << 3;
    pub const TCTL_CT_SHIFT: u32 = 4;
    pub const TCTL_COLD_SHIFT: u32 = 12;
    pub const TCTL_RTLC: u32 = 1 << 24;
    /// TCTL.CT and TCTL.COLD for full duplex (both datasheets' defaults).
    pub const COLLISION_THRESHOLD: u32 = 15;
    pub const COLLISION_DISTANCE: u32 = 63;

    /// RAH.AV: the entry is valid.
    pub const RAH_AV: u32 = 1 << 31;
}

use regs::*;

/// Polls `done` every 100 us until it returns true or `timeout` passes;
/// returns its last answer.
pub fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > timeout {
            return done();
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

const EERD_TIMEOUT: Duration = Duration::from_millis(50);

/// Promiscuous and all-multicast as the user set them. Both map onto
/// RCTL.MPE, so turning one off must keep the bit if the other needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMode {
    pub promiscuous: bool,
    pub allmulti: bool,
}

impl RxMode {
    /// RCTL.UPE and RCTL.MPE for this mode: promiscuous receives every
    /// unicast and multicast frame, all-multicast every multicast frame.
    pub fn rctl_bits(self) -> u32 {
        let mut bits = 0;
        if self.promiscuous {
            bits |= RCTL_UPE | RCTL_MPE;
        }
        if self.allmulti {
            bits |= RCTL_MPE;
        }
        bits
    }
}

/// The shared MAC block of one device.
pub struct Mac {
    addr: PciAddress,
    bar: Arc<Bar>,
    /// Serialises read-modify-write of RCTL and the filter tables, and
    /// holds the receive mode RCTL.UPE/MPE are derived from.
    ctl: Mutex<RxMode>,
    /// ICR.RXO seen while reading statistics: the device dropped frames for
    /// lack of descriptors (QEMU counts these nowhere else).
    rx_overrun_events: AtomicU64,
}

impl Mac {
    pub fn new(addr: PciAddress, bar: Arc<Bar>) -> Mac {
        Mac {
            addr,
            bar,
            ctl: Mutex::new(RxMode::default()),
            rx_overrun_events: AtomicU64::new(0),
        }
    }

    pub fn addr(&self) -> PciAddress {
        self.addr
    }
    pub fn bar(&self) -> &Arc<Bar> {
        &self.bar
    }
    #[inline]
    pub fn r(&self, reg: usize) -> u32 {
        self.bar.read32(reg)
    }
    #[inline]
    pub fn w(&self, reg: usize, v: u32) {
        self.bar.write32(reg, v)
    }
    /// Read-modify-write of `reg` under the port's control lock.
    pub fn update(&self, reg: usize, f: impl FnOnce(u32) -> u32) {
        let _g = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        let v = self.r(reg);
        self.w(reg, f(v));
    }
    /// Sets or clears `bits` of RCTL.
    pub fn set_rctl_bits(&self, bits: u32, on: bool) {
        self.update(RCTL, |v| if on { v | bits } else { v & !bits });
    }
    /// Records the receive mode RCTL was first written with.
    pub fn init_rx_mode(&self, mode: RxMode) {
        *self.ctl.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }
    /// Changes the receive mode with `f` and writes RCTL.UPE/MPE to match.
    pub fn set_rx_mode(&self, f: impl FnOnce(&mut RxMode)) {
        let mut mode = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut mode);
        let v = self.r(RCTL) & !(RCTL_UPE | RCTL_MPE);
        self.w(RCTL, v | mode.rctl_bits());
    }
    /// Forces posted writes out (a STATUS read).
    pub fn flush(&self) {
        let _ = self.r(STATUS);
    }

    /// Masks every interrupt cause (IMC) and clears pending ones (ICR read).
    pub fn mask_interrupts(&self) {
        self.w(IMC, u32::MAX);
        let _ = self.r(ICR);
    }

    /// Global reset: receive and transmit off, then CTRL.RST, waiting for
    /// the bit to self-clear (both datasheets: at least 1 ms before
    /// polling). Interrupts are masked before and after.
    pub fn global_reset(&self, timeout: Duration) -> Result<()> {
        self.mask_interrupts();
        self.w(RCTL, 0);
        self.w(TCTL, TCTL_PSP);
        self.flush();
        // Let in-flight DMA finish (Linux waits 10 ms here too).
        std::thread::sleep(Duration::from_millis(10));
        let ctrl = self.r(CTRL);
        self.w(CTRL, ctrl | CTRL_RST);
        std::thread::sleep(Duration::from_millis(2));
        if !poll(timeout, || self.r(CTRL) & CTRL_RST == 0) {
            return Err(Error::ResetTimeout {
                addr: self.addr,
                ms: timeout.as_millis() as u64,
            });
        }
        self.mask_interrupts();
        Ok(())
    }

    /// Sets or clears CTRL_EXT.DRV_LOAD (tells firmware a driver owns the
    /// device).
    pub fn set_driver_loaded(&self, on: bool) {
        self.update(CTRL_EXT, |v| {
            if on {
                v | CTRL_EXT_DRV_LOAD
            } else {
                v & !CTRL_EXT_DRV_LOAD
            }
        });
    }

    /// One EEPROM word through EERD; `None` if the read does not complete.
    pub fn eeprom_word(&self, word: u32) -> Option<u16> {
        self.w(EERD, (word << EERD_ADDR_SHIFT) | EERD_START);
        let mut v = 0;
        let ok = poll(EERD_TIMEOUT, || {
            v = self.r(EERD);
            v & EERD_DONE != 0
        });
        ok.then_some((v >> EERD_DATA_SHIFT) as u16)
    }

    /// The MAC address from EEPROM words 0..2; falls back to RAL0/RAH0
    /// (which the device loads from the EEPROM at reset) if EERD fails.
    pub fn read_mac(&self) -> [u8; 6] {
        let words: Option<Vec<u16>> = (0..3).map(|w| self.eeprom_word(w)).collect();
        match words {
            Some(w) => {
                let mut m = [0u8; 6];
                for (i, word) in w.iter().enumerate() {
                    m[2 * i..2 * i + 2].copy_from_slice(&word.to_le_bytes());
                }
                m
            }
            None => {
                log::warn!(
                    "{}: EEPROM read through EERD timed out; using RAL0/RAH0",
                    self.addr
                );
                let lo = self.r(ral(0)).to_le_bytes();
                let hi = self.r(rah(0)).to_le_bytes();
                [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
            }
        }
    }

    /// Writes receive address entry `i`.
    pub fn write_rar(&self, i: usize, mac: &[u8; 6], valid: bool) {
        let lo = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let mut hi = u32::from(u16::from_le_bytes([mac[4], mac[5]]));
        if valid {
            hi |= RAH_AV;
        }
        // RAH last: the AV bit makes the entry live.
        self.w(rah(i), 0);
        self.w(ral(i), lo);
        self.w(rah(i), hi);
    }

    /// The port's own address in entry 0, every other of `rar_entries`
    /// invalid, the multicast and VLAN filter tables cleared.
    pub fn init_filters(&self, mac: &[u8; 6], rar_entries: usize) {
        self.write_rar(0, mac, true);
        for i in 1..rar_entries {
            self.write_rar(i, &[0; 6], false);
        }
        for i in 0..MTA_LEN {
            self.w(MTA + 4 * i, 0);
        }
        for i in 0..VFTA_LEN {
            self.w(VFTA + 4 * i, 0);
        }
    }

    /// Extra unicast addresses in entries 1.. of `rar_entries`.
    pub fn set_unicast_filters(&self, addrs: &[[u8; 6]], rar_entries: usize) -> Result<()> {
        if addrs.len() > rar_entries - 1 {
            return Err(Error::FilterFull {
                max: rar_entries - 1,
            });
        }
        let _g = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        for i in 1..rar_entries {
            match addrs.get(i - 1) {
                Some(a) => self.write_rar(i, a, true),
                None => self.write_rar(i, &[0; 6], false),
            }
        }
        Ok(())
    }

    /// The multicast hash table for `addrs` (RCTL.MO = 00: hash bits are
    /// destination address bits 47:36).
    pub fn set_multicast_filters(&self, addrs: &[[u8; 6]]) {
        let mut mta = [0u32; MTA_LEN];
        for a in addrs {
            let h = multicast_hash(a);
            mta[usize::from(h >> 5)] |= 1 << (h & 0x1F);
        }
        let _g = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        for (i, v) in mta.iter().enumerate() {
            self.w(MTA + 4 * i, *v);
        }
    }

    /// Link state from STATUS (one read).
    pub fn link(&self) -> LinkStatus {
        link_from_status(self.r(STATUS))
    }

    /// Polls STATUS.LU until the link is up or `timeout` passes.
    pub fn wait_for_link(&self, timeout: Duration) -> Result<LinkStatus> {
        if poll(timeout, || self.r(STATUS) & STATUS_LU != 0) {
            Ok(self.link())
        } else {
            Err(Error::LinkTimeout {
                addr: self.addr,
                ms: timeout.as_millis() as u64,
            })
        }
    }

    /// Adds the clear-on-read counters of `hw`'s table and notes a receive
    /// overrun (ICR.RXO) if one happened since the last call.
    pub fn read_counters(&self, hw: &mut HwStats) {
        hw.accumulate(|reg| self.r(reg));
        if self.r(ICR) & ICR_RXO != 0 {
            self.rx_overrun_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Driver-level event counters for xstats.
    pub fn events(&self) -> Vec<(String, u64)> {
        vec![(
            "rx_overrun_events".to_string(),
            self.rx_overrun_events.load(Ordering::Relaxed),
        )]
    }
}

/// The 12-bit MTA hash of a multicast address for RCTL.MO = 00.
pub fn multicast_hash(a: &[u8; 6]) -> u16 {
    ((u16::from(a[4]) >> 4) | (u16::from(a[5]) << 4)) & 0xFFF
}

/// Decodes STATUS into a [`LinkStatus`].
pub fn link_from_status(s: u32) -> LinkStatus {
    let up = s & STATUS_LU != 0;
    let speed = match (s & STATUS_SPEED_MASK) >> STATUS_SPEED_SHIFT {
        0 => 10,
        1 => 100,
        _ => 1000,
    };
    LinkStatus {
        up,
        speed: if up { speed } else { 0 },
        full_duplex: up && s & STATUS_FD != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_decodes_to_link() {
        let up = link_from_status(STATUS_LU | STATUS_FD | (2 << STATUS_SPEED_SHIFT));
        assert_eq!(
            up,
            LinkStatus {
                up: true,
                speed: 1000,
                full_duplex: true
            }
        );
        assert_eq!(
            link_from_status(1 << STATUS_SPEED_SHIFT | STATUS_LU).speed,
            100
        );
        let down = link_from_status(STATUS_FD | (2 << STATUS_SPEED_SHIFT));
        assert!(!down.up && down.speed == 0 && !down.full_duplex);
    }

    #[test]
    fn promiscuous_and_allmulti_share_mpe_without_undoing_each_other() {
        let m = |promiscuous, allmulti| RxMode {
            promiscuous,
            allmulti,
        };
        assert_eq!(m(false, false).rctl_bits(), 0);
        assert_eq!(m(true, false).rctl_bits(), RCTL_UPE | RCTL_MPE);
        assert_eq!(m(false, true).rctl_bits(), RCTL_MPE);
        assert_eq!(m(true, true).rctl_bits(), RCTL_UPE | RCTL_MPE);
    }

    #[test]
    fn multicast_hash_uses_address_bits_47_to_36() {
        // 01:00:5e:00:00:01 -> bits 47:36 = 0x010 (byte 5 = 0x01, byte 4 high nibble 0).
        assert_eq!(multicast_hash(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), 0x010);
        assert_eq!(multicast_hash(&[0, 0, 0, 0, 0xF0, 0xFF]), 0xFFF);
    }
}
