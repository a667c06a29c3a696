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
use crate::rss;
use crate::stats::HwStats;

/// Register offsets and bits common to both families. A driver's own
/// `regs` re-exports these and adds only what its chip has alone.
pub mod regs {
    #![allow(dead_code)]

    // General control and status.
    pub const CTRL: usize = 0x0000;
    pub const STATUS: usize = 0x0008;
    pub const EECD: usize = 0x0010;
    pub const EERD: usize = 0x0014;
    pub const CTRL_EXT: usize = 0x0018;
    pub const MDIC: usize = 0x0020;
    pub const VET: usize = 0x0038;

    // Interrupts (masked; the drivers poll).
    pub const ICR: usize = 0x00C0;
    pub const IMS: usize = 0x00D0;
    pub const IMC: usize = 0x00D8;

    // Receive.
    pub const RCTL: usize = 0x0100;
    pub const RXCSUM: usize = 0x5000;
    pub const RFCTL: usize = 0x5008;
    pub const MTA: usize = 0x5200;
    /// Multicast table array: 128 32-bit registers (4096 hash bits).
    pub const MTA_LEN: usize = 128;
    pub const RAL0: usize = 0x5400;
    pub const RAH0: usize = 0x5404;
    /// Receive address registers RAL/RAH[0..15] (the 82576's RA2 entries
    /// 16..23 at 0x54E0 are not used).
    pub const RAR_ENTRIES: usize = 16;
    pub const VFTA: usize = 0x5600;
    /// VLAN filter table array: 128 32-bit registers.
    pub const VFTA_LEN: usize = 128;
    pub const MRQC: usize = 0x5818;
    pub const RETA: usize = 0x5C00;
    /// 32 RETA registers of four one-byte entries (128 entries).
    pub const RETA_REGS: usize = 32;
    pub const RSSRK: usize = 0x5C80;
    /// 10 RSS key registers (40 bytes).
    pub const RSSRK_REGS: usize = 10;

    // Transmit.
    pub const TCTL: usize = 0x0400;
    pub const TIPG: usize = 0x0410;

    /// Receive address low for filter `i`.
    pub const fn ral(i: usize) -> usize {
        RAL0 + 8 * i
    }
    /// Receive address high for filter `i`.
    pub const fn rah(i: usize) -> usize {
        RAH0 + 8 * i
    }

    pub const CTRL_FD: u32 = 1 << 0;
    pub const CTRL_SLU: u32 = 1 << 6;
    pub const CTRL_FRCSPD: u32 = 1 << 11;
    pub const CTRL_FRCDPLX: u32 = 1 << 12;
    pub const CTRL_RST: u32 = 1 << 26;
    pub const CTRL_RFCE: u32 = 1 << 27;
    pub const CTRL_TFCE: u32 = 1 << 28;
    pub const CTRL_VME: u32 = 1 << 30;
    pub const CTRL_PHY_RST: u32 = 1 << 31;

    pub const STATUS_FD: u32 = 1 << 0;
    pub const STATUS_LU: u32 = 1 << 1;
    pub const STATUS_SPEED_SHIFT: u32 = 6;
    pub const STATUS_SPEED_MASK: u32 = 3 << STATUS_SPEED_SHIFT;
    pub const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;

    pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;

    /// EERD: START at bit 0, DONE at bit 1, word address from bit 2, data
    /// in bits 31:16 (82576 and 82574L alike).
    pub const EERD_START: u32 = 1 << 0;
    pub const EERD_DONE: u32 = 1 << 1;
    pub const EERD_ADDR_SHIFT: u32 = 2;
    pub const EERD_DATA_SHIFT: u32 = 16;

    // MDIC (PHY register access).
    pub const MDIC_DATA_MASK: u32 = 0xFFFF;
    pub const MDIC_REGADD_SHIFT: u32 = 16;
    pub const MDIC_PHYADD_SHIFT: u32 = 21;
    pub const MDIC_OP_WRITE: u32 = 1 << 26;
    pub const MDIC_OP_READ: u32 = 2 << 26;
    pub const MDIC_READY: u32 = 1 << 28;
    pub const MDIC_ERROR: u32 = 1 << 30;

    /// ICR.LSC: link status change.
    pub const ICR_LSC: u32 = 1 << 2;
    /// ICR.RXO: receiver overrun (frames dropped for lack of descriptors).
    pub const ICR_RXO: u32 = 1 << 6;

    pub const RCTL_EN: u32 = 1 << 1;
    pub const RCTL_SBP: u32 = 1 << 2;
    pub const RCTL_UPE: u32 = 1 << 3;
    pub const RCTL_MPE: u32 = 1 << 4;
    pub const RCTL_LPE: u32 = 1 << 5;
    pub const RCTL_LBM_MASK: u32 = 3 << 6;
    pub const RCTL_MO_SHIFT: u32 = 12;
    pub const RCTL_BAM: u32 = 1 << 15;
    pub const RCTL_VFE: u32 = 1 << 18;
    pub const RCTL_SECRC: u32 = 1 << 26;

    // RXCSUM (Linux names; the 82576 datasheet spells the first two
    // IPOFLD/TUOFLD).
    pub const RXCSUM_IPOFL: u32 = 1 << 8;
    pub const RXCSUM_TUOFL: u32 = 1 << 9;
    pub const RXCSUM_CRCOFL: u32 = 1 << 11;
    /// Packet checksum disable: the descriptor carries the RSS hash instead
    /// of the packet checksum (required for RSS).
    pub const RXCSUM_PCSD: u32 = 1 << 13;

    // MRQC hash field enables both families have (bits 1:0, the RSS
    // enable, differ).
    pub const MRQC_RSS_FIELD_IPV4_TCP: u32 = 1 << 16;
    pub const MRQC_RSS_FIELD_IPV4: u32 = 1 << 17;
    /// TCP over IPv6, with or without extension headers.
    pub const MRQC_RSS_FIELD_IPV6_TCP_EX: u32 = 1 << 18;
    pub const MRQC_RSS_FIELD_IPV6_EX: u32 = 1 << 19;
    pub const MRQC_RSS_FIELD_IPV6: u32 = 1 << 20;

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

    /// A queue's ring registers from its RDBAL/TDBAL: BAH, LEN, head (RDH/
    /// TDH) and tail (RDT/TDT) follow at these offsets on both families.
    pub const RING_BAH: usize = 0x04;
    pub const RING_LEN: usize = 0x08;
    pub const RING_HEAD: usize = 0x10;
    pub const RING_TAIL: usize = 0x18;

    // Statistics (clear on read; the 82574L's block is the 82576's). 64-bit
    // counters are an L/H pair.
    pub const CRCERRS: usize = 0x4000;
    pub const ALGNERRC: usize = 0x4004;
    pub const SYMERRS: usize = 0x4008;
    pub const RXERRC: usize = 0x400C;
    pub const MPC: usize = 0x4010;
    pub const SCC: usize = 0x4014;
    pub const ECOL: usize = 0x4018;
    pub const MCC: usize = 0x401C;
    pub const LATECOL: usize = 0x4020;
    pub const COLC: usize = 0x4028;
    pub const DC: usize = 0x4030;
    pub const TNCRS: usize = 0x4034;
    pub const SEC: usize = 0x4038;
    pub const CEXTERR: usize = 0x403C;
    pub const RLEC: usize = 0x4040;
    pub const XONRXC: usize = 0x4048;
    pub const XONTXC: usize = 0x404C;
    pub const XOFFRXC: usize = 0x4050;
    pub const XOFFTXC: usize = 0x4054;
    pub const FCRUC: usize = 0x4058;
    pub const PRC64: usize = 0x405C;
    pub const PRC127: usize = 0x4060;
    pub const PRC255: usize = 0x4064;
    pub const PRC511: usize = 0x4068;
    pub const PRC1023: usize = 0x406C;
    pub const PRC1522: usize = 0x4070;
    pub const GPRC: usize = 0x4074;
    pub const BPRC: usize = 0x4078;
    pub const MPRC: usize = 0x407C;
    pub const GPTC: usize = 0x4080;
    pub const GORCL: usize = 0x4088;
    pub const GORCH: usize = 0x408C;
    pub const GOTCL: usize = 0x4090;
    pub const GOTCH: usize = 0x4094;
    pub const RNBC: usize = 0x40A0;
    pub const RUC: usize = 0x40A4;
    pub const RFC: usize = 0x40A8;
    pub const ROC: usize = 0x40AC;
    pub const RJC: usize = 0x40B0;
    pub const MGTPRC: usize = 0x40B4;
    pub const MGTPDC: usize = 0x40B8;
    pub const MGTPTC: usize = 0x40BC;
    pub const TORL: usize = 0x40C0;
    pub const TORH: usize = 0x40C4;
    pub const TOTL: usize = 0x40C8;
    pub const TOTH: usize = 0x40CC;
    pub const TPR: usize = 0x40D0;
    pub const TPT: usize = 0x40D4;
    pub const PTC64: usize = 0x40D8;
    pub const PTC127: usize = 0x40DC;
    pub const PTC255: usize = 0x40E0;
    pub const PTC511: usize = 0x40E4;
    pub const PTC1023: usize = 0x40E8;
    pub const PTC1522: usize = 0x40EC;
    pub const MPTC: usize = 0x40F0;
    pub const BPTC: usize = 0x40F4;
    pub const TSCTC: usize = 0x40F8;
    pub const TSCTFC: usize = 0x40FC;
    pub const IAC: usize = 0x4100;
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
/// How long a TX queue may take to fetch what was queued.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(100);

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
    /// The receive mode RCTL.UPE/MPE are derived from.
    pub fn rx_mode(&self) -> RxMode {
        *self.ctl.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Writes the RSS key, the 32 redirection-table registers (already in
    /// the chip's entry encoding) and MRQC.
    pub fn program_rss(&self, key: &[u8; rss::KEY_LEN], reta: &[u32; RETA_REGS], mrqc: u32) {
        for (i, v) in rss::key_registers(key).iter().enumerate() {
            self.w(RSSRK + 4 * i, *v);
        }
        for (i, v) in reta.iter().enumerate() {
            self.w(RETA + 4 * i, *v);
        }
        self.w(MRQC, mrqc);
    }

    /// Places a descriptor ring whose base-address-low register (RDBAL or
    /// TDBAL) is at `bal`: its device address and byte length, head and
    /// tail 0. Both families keep BAH, LEN, head and tail at `bal` + 4, 8,
    /// 0x10 and 0x18 ([`RING_BAH`] ..).
    pub fn program_ring(&self, bal: usize, base: u64, len: u32) {
        self.w(bal, base as u32);
        self.w(bal + RING_BAH, (base >> 32) as u32);
        self.w(bal + RING_LEN, len);
        self.w(bal + RING_HEAD, 0);
        self.w(bal + RING_TAIL, 0);
    }

    /// Waits for the device to fetch every queued descriptor of TX queue
    /// `queue`, whose TDBAL is at `bal` (TDH reaches TDT); logs if it does
    /// not within 100 ms.
    pub fn drain_tx(&self, bal: usize, queue: u16) {
        let (head, tail) = (bal + RING_HEAD, bal + RING_TAIL);
        if !poll(DRAIN_TIMEOUT, || self.r(head) == self.r(tail)) {
            log::warn!("{}: TX queue {queue} did not drain", self.addr);
        }
    }

    /// Transmit on: pad short frames, retransmit on late collision, the
    /// full-duplex collision threshold and distance.
    pub fn enable_transmit(&self) {
        self.w(
            TCTL,
            TCTL_EN
                | TCTL_PSP
                | TCTL_RTLC
                | (COLLISION_THRESHOLD << TCTL_CT_SHIFT)
                | (COLLISION_DISTANCE << TCTL_COLD_SHIFT),
        );
    }

    /// Link state from STATUS (one read).
    pub fn link(&self) -> LinkStatus {
        link_from_status(self.r(STATUS))
    }

    /// Polls STATUS.LU until the link is up or `timeout` passes.
    pub fn wait_for_link(&self, timeout: Duration) -> Result<LinkStatus> {
        if poll(timeout, || link_from_status(self.r(STATUS)).up) {
            Ok(self.link())
        } else {
            Err(Error::LinkTimeout {
                addr: self.addr,
                ms: timeout.as_millis() as u64,
            })
        }
    }

    /// Adds the clear-on-read counters of `hw`'s table and notes a receive
    /// overrun (ICR.RXO) if one happened since the last call. False (and
    /// nothing added) when the device reads all ones: removed or hung.
    pub fn read_counters(&self, hw: &mut HwStats) -> bool {
        if !hw.accumulate(|reg| self.r(reg), || self.device_gone()) {
            return false;
        }
        let icr = self.r(ICR);
        if icr != u32::MAX && icr & ICR_RXO != 0 {
            self.rx_overrun_events.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// True when STATUS reads all ones: no live 8257x returns that (bits
    /// of STATUS are reserved and read 0), a removed or hung device on
    /// PCIe does for every read.
    pub fn device_gone(&self) -> bool {
        self.r(STATUS) == u32::MAX
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

/// Decodes STATUS into a [`LinkStatus`]. All ones (a removed or hung
/// device's read) is link down, never "up 1000 Mbps".
pub fn link_from_status(s: u32) -> LinkStatus {
    let up = s != u32::MAX && s & STATUS_LU != 0;
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
    fn an_all_ones_status_is_a_device_gone_not_a_link_up() {
        let l = link_from_status(u32::MAX);
        assert!(!l.up, "all ones decoded as {l}");
        assert_eq!((l.speed, l.full_duplex), (0, false));
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
    fn both_families_keep_ring_registers_where_program_ring_writes_them() {
        use crate::e1000e::{E1000e, regs as e};
        use crate::igb::{Igb, regs as i};
        use crate::mac_port::Chip;
        type Reg = fn(usize) -> usize;
        // (queues, [BAL, BAH, LEN, head, tail]) for RX and TX of each chip.
        let (iq, eq) = (Igb::LIMITS.max_queues, E1000e::LIMITS.max_queues);
        let maps: [(u16, [Reg; 5]); 4] = [
            (iq, [i::rdbal, i::rdbah, i::rdlen, i::rdh, i::rdt]),
            (iq, [i::tdbal, i::tdbah, i::tdlen, i::tdh, i::tdt]),
            (eq, [e::rdbal, e::rdbah, e::rdlen, e::rdh, e::rdt]),
            (eq, [e::tdbal, e::tdbah, e::tdlen, e::tdh, e::tdt]),
        ];
        for (queues, [bal, rest @ ..]) in maps {
            for n in 0..usize::from(queues) {
                let want = [RING_BAH, RING_LEN, RING_HEAD, RING_TAIL].map(|o| bal(n) + o);
                assert_eq!(rest.map(|r| r(n)), want, "queue {n} at {:#x}", bal(n));
            }
        }
    }

    #[test]
    fn multicast_hash_uses_address_bits_47_to_36() {
        // 01:00:5e:00:00:01 -> bits 47:36 = 0x010 (byte 5 = 0x01, byte 4 high nibble 0).
        assert_eq!(multicast_hash(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), 0x010);
        assert_eq!(multicast_hash(&[0, 0, 0, 0, 0xF0, 0xFF]), 0xFFF);
    }
}
