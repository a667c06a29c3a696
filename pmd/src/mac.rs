//! The MAC-block registers and operations the 82576 (igb) and the 82574L
//! (e1000e) share: same offsets, same bits (82576 datasheet section 8,
//! 82574L datasheet section 10; Linux `e1000_regs.h`/`e1000_defines.h`
//! names). A driver holds a [`Mac`] over its BAR and calls these instead of
//! writing them again: reset with completion wait, interrupt masking, the
//! EEPROM MAC address through EERD, the receive address (RAL/RAH) and
//! multicast (MTA) tables, RCTL filter bits, link state from STATUS, and
//! clear-on-read statistics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// RFCTL.IPV6_EX_DIS: do not parse IPv6 extension headers (the 82576
    /// erratum setting Intel's rx_fifo_flush applies; the 82574 has the
    /// bit at the same place).
    pub const RFCTL_IPV6_EX_DIS: u32 = 1 << 16;
    /// WUC: Wake Up Control (82576 datasheet section 8, WUC; 82574
    /// datasheet section 10, WUC): PME enable and APM wake-up. Written 0
    /// after reset as Linux's igb and e1000e do: no wake-up while a driver
    /// owns the port (this driver does not do Wake-on-LAN).
    pub const WUC: usize = 0x5800;
    pub const MTA: usize = 0x5200;
    /// Multicast table array: 128 32-bit registers (4096 hash bits).
    pub const MTA_LEN: usize = 128;
    pub const RAL0: usize = 0x5400;
    pub const RAH0: usize = 0x5404;
    /// Receive address registers RAL/RAH[0..15] of the 82574 (82574
    /// datasheet section 10, RAL/RAH).
    pub const RAR_ENTRIES: usize = 16;
    /// The 82576 has 24: RAL/RAH[0..15] at 0x5400 and RA2 entries 16..23 at
    /// 0x54E0 (82576 datasheet section 8, RAL/RAH); Linux's igb clears all
    /// of them at init.
    pub const RAR_ENTRIES_82576: usize = 24;
    /// RAL/RAH entries 16.. (82576 only).
    pub const RA2_BASE: usize = 0x54E0;
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
    /// 82576: TCTL_EXT, whose COLD field (bits 19:10) holds the collision
    /// distance (82576 8.12.3).
    pub const TCTL_EXT: usize = 0x0404;
    pub const TCTL_EXT_COLD_SHIFT: u32 = 10;
    pub const TCTL_EXT_COLD_MASK: u32 = 0x3FF << TCTL_EXT_COLD_SHIFT;
    pub const TIPG: usize = 0x0410;

    /// Receive address low for filter `i` (16.. are the 82576's RA2
    /// entries at 0x54E0).
    pub const fn ral(i: usize) -> usize {
        if i < 16 {
            RAL0 + 8 * i
        } else {
            RA2_BASE + 8 * (i - 16)
        }
    }
    /// Receive address high for filter `i`.
    pub const fn rah(i: usize) -> usize {
        ral(i) + 4
    }

    pub const CTRL_FD: u32 = 1 << 0;
    /// CTRL.GIO_MASTER_DISABLE: stop issuing PCIe master requests (82576
    /// datasheet 8.2.1, 82574 datasheet 10.2.2.1); STATUS.GIO_MASTER_ENABLE
    /// clears once none are pending.
    pub const CTRL_GIO_MASTER_DISABLE: u32 = 1 << 2;
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
    /// STATUS.LAN_ID (82576: bits 3:2, the port of a multi-port device;
    /// always 0 on the single-port 82574).
    pub const STATUS_FUNC_SHIFT: u32 = 2;
    pub const STATUS_FUNC_MASK: u32 = 3 << STATUS_FUNC_SHIFT;

    /// EECD.PRES: an NVM is present; EECD.AUTO_RD: the hardware finished
    /// loading its configuration from the NVM after reset (82576 8.4.1,
    /// 82574 10.2.2.3).
    pub const EECD_PRES: u32 = 1 << 8;
    pub const EECD_AUTO_RD: u32 = 1 << 9;

    /// EEMNGCTL: CFG_DONE per port, bit 18 + port (82576 8.4.6; the 82574
    /// has port 0's only).
    pub const EEMNGCTL: usize = 0x1010;
    pub const EEMNGCTL_CFG_DONE_PORT_0: u32 = 1 << 18;

    /// 82574: EXTCNF_CTRL.MDIO_SW_OWNERSHIP, the software/firmware
    /// ownership of the MDIO interface and the NVM (82574 10.2.2.5).
    pub const EXTCNF_CTRL: usize = 0x0F00;
    pub const EXTCNF_CTRL_MDIO_SW_OWNERSHIP: u32 = 1 << 5;

    /// SWSM: SMBI (software semaphore) and SWESMBI (software/firmware
    /// semaphore) (82576 8.6.1, 82574 10.2.2.2).
    pub const SWSM: usize = 0x5B50;
    pub const SWSM_SMBI: u32 = 1 << 0;
    pub const SWSM_SWESMBI: u32 = 1 << 1;
    /// 82576: SW_FW_SYNC, one software bit per resource in bits 15:0 and
    /// its firmware twin 16 bits up (82576 8.6.3).
    pub const SW_FW_SYNC: usize = 0x5B5C;
    pub const SWFW_EEP_SM: u32 = 1 << 0;
    pub const SWFW_PHY0_SM: u32 = 1 << 1;
    pub const SWFW_PHY1_SM: u32 = 1 << 2;
    pub const SWFW_PHY2_SM: u32 = 1 << 5;
    pub const SWFW_PHY3_SM: u32 = 1 << 6;

    /// GCR: PCIe control (82576 8.6.2, 82574 10.2.2.9).
    pub const GCR: usize = 0x5B00;
    /// 82576: GCR completion timeout value (bits 15:12), resend (16), and
    /// the PCIe capability version 2 flag (18).
    pub const GCR_CMPL_TMOUT_MASK: u32 = 0xF << 12;
    pub const GCR_CMPL_TMOUT_10MS: u32 = 1 << 12;
    pub const GCR_CMPL_TMOUT_RESEND: u32 = 1 << 16;
    pub const GCR_CAP_VER2: u32 = 1 << 18;
    /// 82574: GCR bit 22 (initialisation bit of 10.2.2.9) and
    /// L1_ACT_WITHOUT_L0S_RX (bit 27).
    pub const GCR_82574_INIT: u32 = 1 << 22;
    pub const GCR_L1_ACT_WITHOUT_L0S_RX: u32 = 1 << 27;
    /// 82574: GCR2 bit 0, the PCIe completion erratum workaround.
    pub const GCR2: usize = 0x5B64;

    /// MANC: manageability control (82576 8.22.1, 82574 10.2.8.1).
    pub const MANC: usize = 0x5820;
    /// MANC.ARP_EN: the firmware answers ARP requests itself.
    pub const MANC_ARP_EN: u32 = 1 << 13;
    /// MANC.RCV_TCO_EN: the firmware receives manageability traffic (keep
    /// the link up for it at close).
    pub const MANC_RCV_TCO_EN: u32 = 1 << 17;
    /// MANC.BLK_PHY_RST_ON_IDE: the PHY must not be reset (IDE-R/SoL).
    pub const MANC_BLK_PHY_RST_ON_IDE: u32 = 1 << 18;

    // Flow control (82576 3.7.5 / 8.2.x, 82574 3.3.4 / 10.2.2.x).
    pub const FCAL: usize = 0x0028;
    pub const FCAH: usize = 0x002C;
    pub const FCT: usize = 0x0030;
    pub const FCTTV: usize = 0x0170;
    pub const FCRTL: usize = 0x2160;
    pub const FCRTH: usize = 0x2168;
    /// The 802.3x PAUSE destination 01:80:c2:00:00:01 (FCAL/FCAH) and
    /// EtherType 0x8808 (FCT).
    pub const FCAL_PAUSE: u32 = 0x00C2_8001;
    pub const FCAH_PAUSE: u32 = 0x0100;
    pub const FCT_PAUSE: u32 = 0x8808;
    /// FCRTL.XONE: send XON when the buffer drains below the low mark.
    pub const FCRTL_XONE: u32 = 1 << 31;

    /// NVM words 0x00..=0x3F sum (wrapping, 16 bits) to NVM_SUM when the
    /// image is valid; word 0x3F is the checksum word that makes it so
    /// (82576 datasheet section 6, NVM map, checksum word; 82574 datasheet
    /// section 6, the same rule).
    pub const NVM_CHECKSUM_REG: u32 = 0x3F;
    pub const NVM_SUM: u16 = 0xBABA;

    /// NVM words: the alternate MAC address pointer (82576 6.2.x; 0xFFFF
    /// or 0 when there is none), each port's entry 3 words further.
    pub const NVM_ALT_MAC_ADDR_PTR: u32 = 0x37;

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
    pub const TCTL_CT_MASK: u32 = 0xFF << TCTL_CT_SHIFT;
    pub const TCTL_COLD_MASK: u32 = 0x3FF << TCTL_COLD_SHIFT;
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

/// Register access the MAC block goes through: BAR 0 on a device, a
/// register model in host tests ([`crate::sim`]).
pub trait Regs: Send + Sync {
    fn read32(&self, offset: usize) -> u32;
    fn write32(&self, offset: usize, value: u32);
}

impl Regs for Bar {
    #[inline]
    fn read32(&self, offset: usize) -> u32 {
        Bar::read32(self, offset)
    }
    #[inline]
    fn write32(&self, offset: usize, value: u32) {
        Bar::write32(self, offset, value)
    }
}

/// Which family's variant of the shared mechanisms (semaphores, reset
/// extras, MAC address source) a [`Mac`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 82576: SWSM + SW_FW_SYNC, per-port CFG_DONE, GCR completion timeout,
    /// alternate MAC address in the NVM.
    I82576,
    /// 82574L: EXTCNF_CTRL.MDIO_SW_OWNERSHIP for PHY and NVM, also held
    /// across CTRL.RST; 25 ms settle after the NVM auto-read.
    I82574,
}

/// What a hardware semaphore guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Phy,
    Nvm,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Phy => "PHY",
            Resource::Nvm => "NVM",
        }
    }
}

/// Flow control (IEEE 802.3x PAUSE): what the port asks for in
/// [`crate::PortConfig`], and what autonegotiation resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowControl {
    None,
    /// Honour received PAUSE frames (CTRL.RFCE), send none.
    Rx,
    /// Send PAUSE frames (CTRL.TFCE), ignore received ones.
    Tx,
    /// Both (Linux igb's and e1000e's default for copper).
    #[default]
    Full,
}

impl std::fmt::Display for FlowControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlowControl::None => "none",
            FlowControl::Rx => "rx",
            FlowControl::Tx => "tx",
            FlowControl::Full => "full",
        })
    }
}

impl FlowControl {
    pub fn rx_pause(self) -> bool {
        matches!(self, FlowControl::Rx | FlowControl::Full)
    }
    pub fn tx_pause(self) -> bool {
        matches!(self, FlowControl::Tx | FlowControl::Full)
    }
}

/// Flow control thresholds of one chip (FCRTH/FCRTL in bytes, FCTTV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FcThresholds {
    pub high: u32,
    pub low: u32,
    pub pause_time: u16,
}

impl FcThresholds {
    /// Intel's rule for a receive packet buffer of `pba_kb` KiB: the high
    /// mark at 90% of the buffer, but at least `headroom` bytes (room for
    /// frames in flight) below its end, rounded down to `granule`; the low
    /// mark one granule below it.
    pub fn for_buffer(pba_kb: u32, headroom: u32, granule: u32, pause_time: u16) -> Self {
        let size = pba_kb * 1024;
        let high = (size * 9 / 10).min(size.saturating_sub(headroom)) & !(granule - 1);
        FcThresholds {
            high,
            low: high - granule,
            pause_time,
        }
    }
}

/// Steps of the bring-up a host test can remove, to show the strict
/// register model failing without them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    MasterDisable,
    AutoReadWait,
    Semaphore,
    PhyPowerUp,
    MacFromRar,
}

/// How long each wait of the shared mechanisms may take.
pub mod timeouts {
    use std::time::Duration;
    /// STATUS.GIO_MASTER_ENABLE to clear (Intel: 800 x 100 us).
    pub const MASTER_DISABLE: Duration = Duration::from_millis(80);
    /// EECD.AUTO_RD after reset (Intel: 10 x 1 ms).
    pub const AUTO_READ: Duration = Duration::from_millis(10);
    /// EEMNGCTL.CFG_DONE (Intel: 100 x 1 ms).
    pub const CFG_DONE: Duration = Duration::from_millis(100);
    /// SWSM.SMBI and SWSM.SWESMBI each (Intel: (NVM words + 1) x 50 us,
    /// about 100 ms for a 2 KiB-word NVM).
    pub const SWSM: Duration = Duration::from_millis(100);
    /// SW_FW_SYNC free of the firmware's bit (Intel: 200 x 5 ms).
    pub const SW_FW_SYNC: Duration = Duration::from_millis(1000);
    /// EXTCNF_CTRL.MDIO_SW_OWNERSHIP to latch (Intel: 10 x 2 ms).
    pub const MDIO_OWNERSHIP: Duration = Duration::from_millis(20);
    /// One EERD read.
    pub const EERD: Duration = Duration::from_millis(50);
}

/// A held hardware semaphore; released on drop.
pub struct HwLock<'a> {
    mac: &'a Mac,
    res: Resource,
    held: bool,
    _sw: std::sync::MutexGuard<'a, ()>,
}

impl Drop for HwLock<'_> {
    fn drop(&mut self) {
        if self.held {
            self.mac.release(self.res);
        }
    }
}

/// The shared MAC block of one device.
pub struct Mac {
    addr: PciAddress,
    regs: Arc<dyn Regs>,
    bar: Option<Arc<Bar>>,
    family: Option<Family>,
    /// Serialises read-modify-write of RCTL and the filter tables, and
    /// holds the receive mode RCTL.UPE/MPE are derived from.
    ctl: Mutex<RxMode>,
    /// Serialises this process's users of the hardware semaphores (Linux
    /// holds a mutex around them too).
    sw_lock: Mutex<()>,
    /// MANC as found at open, restored at close.
    manc_at_open: Mutex<Option<u32>>,
    /// Counter table for carrying clear-on-read counters across resets.
    counters: std::sync::OnceLock<&'static [crate::stats::HwCounter]>,
    /// Counter register images read just before resets since the last
    /// [`Mac::read_counters`].
    carried: Mutex<Vec<Vec<(usize, u32)>>>,
    /// ICR.RXO seen while reading statistics: the device dropped frames for
    /// lack of descriptors (QEMU counts these nowhere else).
    rx_overrun_events: AtomicU64,
    /// ICR.LSC seen by any ICR read since [`Mac::take_lsc`] (the statistics
    /// read clears ICR too, so the link interrupt's handler asks here).
    lsc_seen: AtomicBool,
    #[cfg(test)]
    skip: Mutex<Vec<Step>>,
}

impl Mac {
    /// A MAC block over BAR 0 without a family: raw register access only
    /// (EERD without semaphores), as a probe needs.
    pub fn new(addr: PciAddress, bar: Arc<Bar>) -> Mac {
        let mut m = Mac::over(addr, bar.clone(), None);
        m.bar = Some(bar);
        m
    }

    /// A MAC block of `family` over BAR 0.
    pub fn for_chip(addr: PciAddress, bar: Arc<Bar>, family: Family) -> Mac {
        let mut m = Mac::over(addr, bar.clone(), Some(family));
        m.bar = Some(bar);
        m
    }

    /// A MAC block over any register implementation (host tests).
    pub fn over(addr: PciAddress, regs: Arc<dyn Regs>, family: Option<Family>) -> Mac {
        Mac {
            addr,
            regs,
            bar: None,
            family,
            ctl: Mutex::new(RxMode::default()),
            sw_lock: Mutex::new(()),
            manc_at_open: Mutex::new(None),
            counters: std::sync::OnceLock::new(),
            carried: Mutex::new(Vec::new()),
            rx_overrun_events: AtomicU64::new(0),
            lsc_seen: AtomicBool::new(false),
            #[cfg(test)]
            skip: Mutex::new(Vec::new()),
        }
    }

    pub fn addr(&self) -> PciAddress {
        self.addr
    }
    /// BAR 0, when the block runs over a device.
    pub fn bar(&self) -> Option<&Arc<Bar>> {
        self.bar.as_ref()
    }
    pub fn family(&self) -> Option<Family> {
        self.family
    }
    #[inline]
    pub fn r(&self, reg: usize) -> u32 {
        self.regs.read32(reg)
    }
    #[inline]
    pub fn w(&self, reg: usize, v: u32) {
        self.regs.write32(reg, v)
    }

    /// Whether a test removed `step` from the bring-up.
    #[inline]
    pub(crate) fn skips(&self, step: Step) -> bool {
        #[cfg(test)]
        {
            lock(&self.skip).contains(&step)
        }
        #[cfg(not(test))]
        {
            let _ = step;
            false
        }
    }
    #[cfg(test)]
    #[allow(dead_code)] // the strict register model's tests remove steps
    pub(crate) fn skip_step(&self, step: Step) {
        lock(&self.skip).push(step);
    }

    /// Read-modify-write of `reg` under the port's control lock.
    pub fn update(&self, reg: usize, f: impl FnOnce(u32) -> u32) {
        let _g = lock(&self.ctl);
        let v = self.r(reg);
        self.w(reg, f(v));
    }
    /// Sets or clears `bits` of RCTL.
    pub fn set_rctl_bits(&self, bits: u32, on: bool) {
        self.update(RCTL, |v| if on { v | bits } else { v & !bits });
    }
    /// Records the receive mode RCTL was first written with.
    pub fn init_rx_mode(&self, mode: RxMode) {
        *lock(&self.ctl) = mode;
    }
    /// The receive mode RCTL.UPE/MPE are derived from.
    pub fn rx_mode(&self) -> RxMode {
        *lock(&self.ctl)
    }
    /// Changes the receive mode with `f` and writes RCTL.UPE/MPE to match.
    pub fn set_rx_mode(&self, f: impl FnOnce(&mut RxMode)) {
        let mut mode = lock(&self.ctl);
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
        self.read_icr();
    }

    /// The port of a multi-port device (STATUS.LAN_ID; 0 on the 82574).
    pub fn function(&self) -> u8 {
        match self.family {
            Some(Family::I82576) => {
                ((self.r(STATUS) & STATUS_FUNC_MASK) >> STATUS_FUNC_SHIFT) as u8
            }
            _ => 0,
        }
    }

    // ---- Hardware semaphores (82576 datasheet 4.6.x "software and
    // firmware synchronization", 82574 datasheet 10.2.2.5). ----

    /// Takes the semaphore that guards `res` against the manageability
    /// firmware (and the other ports): on the 82576 SWSM.SMBI, then
    /// SWSM.SWESMBI, then this port's SW_FW_SYNC bit once the firmware's is
    /// clear; on the 82574 EXTCNF_CTRL.MDIO_SW_OWNERSHIP.
    pub fn acquire(&self, res: Resource) -> Result<HwLock<'_>> {
        let sw = lock(&self.sw_lock);
        let held = match self.family {
            Some(_) if self.skips(Step::Semaphore) => false,
            Some(Family::I82576) => {
                self.acquire_swfw(self.swfw_mask(res), res)?;
                true
            }
            Some(Family::I82574) => {
                self.acquire_mdio_ownership()?;
                true
            }
            None => false,
        };
        Ok(HwLock {
            mac: self,
            res,
            held,
            _sw: sw,
        })
    }

    fn release(&self, res: Resource) {
        match self.family {
            Some(Family::I82576) => self.release_swfw(self.swfw_mask(res)),
            Some(Family::I82574) => {
                self.update(EXTCNF_CTRL, |v| v & !EXTCNF_CTRL_MDIO_SW_OWNERSHIP)
            }
            None => {}
        }
    }

    /// This port's SW_FW_SYNC bit for `res` (PHY0..PHY3 by LAN ID).
    fn swfw_mask(&self, res: Resource) -> u32 {
        match res {
            Resource::Nvm => SWFW_EEP_SM,
            Resource::Phy => match self.function() {
                0 => SWFW_PHY0_SM,
                1 => SWFW_PHY1_SM,
                2 => SWFW_PHY2_SM,
                _ => SWFW_PHY3_SM,
            },
        }
    }

    /// SWSM.SMBI then SWSM.SWESMBI. Reading SWSM with SMBI clear sets it
    /// (the read is the test-and-set); SWESMBI is ours once it reads back
    /// set after we wrote it.
    fn get_hw_semaphore(&self) -> Result<()> {
        if !poll(timeouts::SWSM, || self.r(SWSM) & SWSM_SMBI == 0) {
            return Err(Error::SmbiTimeout {
                addr: self.addr,
                ms: timeouts::SWSM.as_millis() as u64,
            });
        }
        let got = poll(timeouts::SWSM, || {
            let v = self.r(SWSM);
            self.w(SWSM, v | SWSM_SWESMBI);
            self.r(SWSM) & SWSM_SWESMBI != 0
        });
        if !got {
            self.put_hw_semaphore();
            return Err(Error::SwesmbiTimeout {
                addr: self.addr,
                ms: timeouts::SWSM.as_millis() as u64,
            });
        }
        Ok(())
    }

    fn put_hw_semaphore(&self) {
        let v = self.r(SWSM);
        self.w(SWSM, v & !(SWSM_SMBI | SWSM_SWESMBI));
    }

    fn acquire_swfw(&self, mask: u32, res: Resource) -> Result<()> {
        let fw = mask << 16;
        let start = Instant::now();
        loop {
            self.get_hw_semaphore()?;
            let sync = self.r(SW_FW_SYNC);
            if sync & (mask | fw) == 0 {
                self.w(SW_FW_SYNC, sync | mask);
                self.put_hw_semaphore();
                return Ok(());
            }
            // Firmware (or another port's software) holds it: let go of
            // SWSM so it can finish, and retry.
            self.put_hw_semaphore();
            if start.elapsed() > timeouts::SW_FW_SYNC {
                return Err(Error::SwFwSyncTimeout {
                    addr: self.addr,
                    resource: res.name(),
                    sync,
                    ms: timeouts::SW_FW_SYNC.as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn release_swfw(&self, mask: u32) {
        // Intel spins here until SWSM is free; bounded here, and the bit is
        // cleared either way (it is ours).
        let sem = self.get_hw_semaphore();
        let sync = self.r(SW_FW_SYNC);
        self.w(SW_FW_SYNC, sync & !mask);
        match sem {
            Ok(()) => self.put_hw_semaphore(),
            Err(e) => log::warn!("{e} (releasing SW_FW_SYNC {mask:#x} anyway)"),
        }
    }

    fn acquire_mdio_ownership(&self) -> Result<()> {
        let got = poll(timeouts::MDIO_OWNERSHIP, || {
            let v = self.r(EXTCNF_CTRL);
            self.w(EXTCNF_CTRL, v | EXTCNF_CTRL_MDIO_SW_OWNERSHIP);
            self.r(EXTCNF_CTRL) & EXTCNF_CTRL_MDIO_SW_OWNERSHIP != 0
        });
        if got {
            Ok(())
        } else {
            self.update(EXTCNF_CTRL, |v| v & !EXTCNF_CTRL_MDIO_SW_OWNERSHIP);
            Err(Error::MdioOwnershipTimeout {
                addr: self.addr,
                ms: timeouts::MDIO_OWNERSHIP.as_millis() as u64,
            })
        }
    }

    /// Clears locks a previous user (a crashed process, a boot agent) may
    /// have left, before the first NVM or PHY access, as DPDK's igb does
    /// at init (82576: SWSM forced free, then this port's PHY and the NVM
    /// SW_FW_SYNC bits taken and released; only software bits are
    /// touched) and Linux's e1000e for the 82574 (SWSM.SMBI cleared).
    pub fn clear_stale_locks(&self) {
        match self.family {
            Some(Family::I82576) => {
                if self.get_hw_semaphore().is_err() {
                    log::info!("{}: SWSM was held; releasing it", self.addr);
                }
                self.put_hw_semaphore();
                for res in [Resource::Phy, Resource::Nvm] {
                    let _sw = lock(&self.sw_lock);
                    let mask = self.swfw_mask(res);
                    if let Err(e) = self.acquire_swfw(mask, res) {
                        log::info!("{e}; clearing this driver's {} bit", res.name());
                    }
                    self.release_swfw(mask);
                }
            }
            Some(Family::I82574) => {
                let v = self.r(SWSM);
                if v & SWSM_SMBI != 0 {
                    log::info!("{}: SWSM.SMBI was left set; clearing it", self.addr);
                }
                self.w(SWSM, v & !SWSM_SMBI);
            }
            None => {}
        }
    }

    // ---- Reset (82576 datasheet 4.3.1, 82574 datasheet 4.6.x / 5.x). ----

    /// CTRL.GIO_MASTER_DISABLE, then STATUS.GIO_MASTER_ENABLE polled clear:
    /// no PCIe master request is pending when the MAC resets, so the bus
    /// cannot stick on a half-done transaction (82576 5.2.3.3, 82574
    /// 5.2.x "master disable"). A timeout is logged and the reset goes on,
    /// as Intel's code does.
    pub fn disable_pcie_master(&self) {
        if self.skips(Step::MasterDisable) {
            return;
        }
        self.update(CTRL, |c| c | CTRL_GIO_MASTER_DISABLE);
        if !poll(timeouts::MASTER_DISABLE, || {
            self.r(STATUS) & STATUS_GIO_MASTER_ENABLE == 0
        }) {
            log::warn!(
                "{}: PCIe master requests still pending after {} ms; resetting anyway",
                self.addr,
                timeouts::MASTER_DISABLE.as_millis()
            );
        }
    }

    /// 82576: raise the PCIe completion timeout from its 50 us - 50 ms
    /// default, as Intel's code does (82576 8.6.2 GCR; with a version 2
    /// capability the value lives in PCIe Device Control 2 instead, which
    /// [`crate::igb`] programs through config space), and clear
    /// GCR.CMPL_TMOUT_RESEND.
    fn set_completion_timeout(&self) {
        let gcr = self.r(GCR);
        let mut v = gcr;
        if gcr & GCR_CMPL_TMOUT_MASK == 0 && gcr & GCR_CAP_VER2 == 0 {
            v |= GCR_CMPL_TMOUT_10MS;
        }
        v &= !GCR_CMPL_TMOUT_RESEND;
        self.w(GCR, v);
    }

    /// Global reset as Intel's reset_hw does it: master disable, (82576)
    /// completion timeout, interrupts masked, receive off, transmit
    /// disabled, 10 ms for in-flight DMA, (82574) MDIO ownership taken
    /// around CTRL.RST (it defaults to firmware after a reset), CTRL.RST
    /// self-clear, EECD.AUTO_RD (the NVM configuration is loaded, RAR0
    /// included), then the 82574's 25 ms for the PHY configuration that
    /// follows AUTO_RD or the 82576's per-port EEMNGCTL.CFG_DONE, and
    /// pending interrupt causes cleared (82576 4.3.1, 82574 4.6.x).
    pub fn global_reset(&self, timeout: Duration) -> Result<()> {
        self.carry_counters();
        self.disable_pcie_master();
        if self.family == Some(Family::I82576) {
            self.set_completion_timeout();
        }
        self.mask_interrupts();
        self.w(RCTL, 0);
        self.update(TCTL, |t| (t & !TCTL_EN) | TCTL_PSP);
        self.flush();
        // Let in-flight DMA finish (Linux waits 10 ms here too).
        std::thread::sleep(Duration::from_millis(10));
        let ownership = match self.family {
            Some(Family::I82574) => match self.acquire(Resource::Phy) {
                Ok(l) => Some(l),
                Err(e) => {
                    log::warn!("{e}; resetting without MDIO ownership");
                    None
                }
            },
            _ => None,
        };
        let ctrl = self.r(CTRL);
        self.w(CTRL, ctrl | CTRL_RST);
        drop(ownership);
        std::thread::sleep(Duration::from_millis(2));
        if !poll(timeout, || self.r(CTRL) & CTRL_RST == 0) {
            return Err(Error::ResetTimeout {
                addr: self.addr,
                ms: timeout.as_millis() as u64,
            });
        }
        if let Some(family) = self.family
            && let Err(e) = self.wait_auto_read()
        {
            if !matches!(family, Family::I82576) {
                // The 82571 family stops: MAC registers are not to be
                // touched before the NVM load finished.
                return Err(e);
            }
            // Intel's 82575/82576 reset logs a missing AUTO_RD and goes on
            // (a board without an NVM never sets it and must still get
            // link); read_mac's RAR0 check catches an unloaded address.
            // QEMU's igb does not set EECD.AUTO_RD after CTRL.RST.
            log::debug!("{e}; going on as Intel's 82576 reset does");
        }
        match self.family {
            Some(Family::I82574) => std::thread::sleep(Duration::from_millis(25)),
            Some(Family::I82576) => self.wait_cfg_done(),
            None => {}
        }
        self.mask_interrupts();
        Ok(())
    }

    /// EECD.AUTO_RD: the device finished loading the NVM (RAR0, PHY and
    /// PCIe settings); nothing it loads may be read before.
    fn wait_auto_read(&self) -> Result<()> {
        if self.skips(Step::AutoReadWait) {
            return Ok(());
        }
        if poll(timeouts::AUTO_READ, || self.r(EECD) & EECD_AUTO_RD != 0) {
            Ok(())
        } else {
            Err(Error::AutoReadTimeout {
                addr: self.addr,
                ms: timeouts::AUTO_READ.as_millis() as u64,
            })
        }
    }

    /// EEMNGCTL.CFG_DONE of this port (82576 8.4.6). Intel's code logs a
    /// timeout and continues (a device without manageability firmware may
    /// never set it); so does this.
    pub fn wait_cfg_done(&self) {
        let bit = EEMNGCTL_CFG_DONE_PORT_0 << self.function();
        if !poll(timeouts::CFG_DONE, || self.r(EEMNGCTL) & bit != 0) {
            // QEMU's igb does not implement EEMNGCTL.
            log::debug!(
                "{}: EEMNGCTL.CFG_DONE not set after {} ms",
                self.addr,
                timeouts::CFG_DONE.as_millis()
            );
        }
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

    /// Turns off the firmware's ARP interception (MANC.ARP_EN) so ARP
    /// requests reach the host, as Linux does at open; the value found is
    /// restored by [`Mac::restore_manageability`].
    pub fn take_manageability(&self) {
        let manc = self.r(MANC);
        *lock(&self.manc_at_open) = Some(manc);
        if manc & MANC_ARP_EN != 0 {
            self.w(MANC, manc & !MANC_ARP_EN);
        }
    }

    /// Gives ARP interception back to the firmware if it had it at open.
    pub fn restore_manageability(&self) {
        if let Some(manc) = lock(&self.manc_at_open).take()
            && manc & MANC_ARP_EN != 0
        {
            self.update(MANC, |v| v | MANC_ARP_EN);
        }
    }

    // ---- NVM (82576 datasheet 8.4.3 EERD, 82574 10.2.2.4). ----

    /// One EEPROM word through EERD without a semaphore; `None` if the read
    /// does not complete. For tools; the drivers use [`Mac::nvm_read`].
    pub fn eeprom_word(&self, word: u32) -> Option<u16> {
        self.eerd(word).ok()
    }

    fn eerd(&self, word: u32) -> Result<u16> {
        self.w(EERD, (word << EERD_ADDR_SHIFT) | EERD_START);
        let mut v = 0;
        let ok = poll(timeouts::EERD, || {
            v = self.r(EERD);
            v & EERD_DONE != 0
        });
        if ok {
            Ok((v >> EERD_DATA_SHIFT) as u16)
        } else {
            Err(Error::NvmTimeout {
                addr: self.addr,
                word,
                ms: timeouts::EERD.as_millis() as u64,
            })
        }
    }

    /// `n` NVM words from `word` through EERD, under the NVM semaphore.
    pub fn nvm_read(&self, word: u32, n: u32) -> Result<Vec<u16>> {
        let _l = self.acquire(Resource::Nvm)?;
        (word..word + n).map(|w| self.eerd(w)).collect()
    }

    /// Validates the NVM checksum as Intel's validate_nvm_checksum does at
    /// probe: words 0x00..=0x3F, read through EERD under the NVM semaphore,
    /// sum (wrapping) to 0xBABA. A blank or corrupt EEPROM fails with
    /// [`Error::NvmChecksum`] before anything it holds (MAC address, PHY
    /// and PCIe settings) is trusted. `attempts` reads are tried (Linux's
    /// e1000e tries 3 times: the 82573 family's first read may fail while
    /// firmware still owns the NVM). QEMU builds its EEPROM images with a
    /// valid checksum word (0x3F), so the check passes there.
    pub fn validate_nvm_checksum(&self, attempts: u32) -> Result<()> {
        let mut last = Ok(());
        for _ in 0..attempts.max(1) {
            last = self
                .nvm_read(0, NVM_CHECKSUM_REG + 1)
                .and_then(|words| match nvm_sum(&words) {
                    NVM_SUM => Ok(()),
                    sum => Err(Error::NvmChecksum {
                        addr: self.addr,
                        sum,
                    }),
                });
            if last.is_ok() {
                return last;
            }
        }
        last
    }

    // ---- MAC address (Intel's read_mac_addr: RAR0 as the device loaded
    // it for this port; 82576 datasheet 6.2.1 / 8.10.x, 82574 10.2.x). ----

    /// 82576: an alternate MAC address (NVM word 0x37 points at one entry
    /// per port, 3 words each) replaces RAR0, as Intel's
    /// check_alt_mac_addr does. Unreadable or absent: RAR0 is kept.
    fn install_alt_mac(&self) {
        let ptr = match self.nvm_read(NVM_ALT_MAC_ADDR_PTR, 1) {
            Ok(w) => w[0],
            Err(e) => {
                log::warn!("{e}; no alternate MAC address used");
                return;
            }
        };
        if ptr == 0xFFFF || ptr == 0 {
            return;
        }
        let at = u32::from(ptr) + 3 * u32::from(self.function());
        match self.nvm_read(at, 3) {
            Ok(w) => {
                let m = words_to_mac(&w);
                if m[0] & 1 == 0 && m != [0; 6] {
                    log::info!("{}: alternate MAC address {}", self.addr, format_mac(&m));
                    self.write_rar(0, &m, true);
                }
            }
            Err(e) => log::warn!("{e}; no alternate MAC address used"),
        }
    }

    /// The port's MAC address: RAR0/RAH0 as the device loaded them for
    /// this port after reset (or the alternate address, 82576), as Intel's
    /// read_mac_addr does; EEPROM words 0-2 only if RAR0 holds no valid
    /// unicast address (they are port 0's on a multi-port 82576).
    pub fn read_mac(&self) -> Result<[u8; 6]> {
        if self.family == Some(Family::I82576) {
            self.install_alt_mac();
        }
        let lo = self.r(ral(0)).to_le_bytes();
        let hi = self.r(rah(0)).to_le_bytes();
        let rar = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];
        if !self.skips(Step::MacFromRar) && rar != [0; 6] && rar[0] & 1 == 0 {
            return Ok(rar);
        }
        let words = self.nvm_read(0, 3)?;
        let m = words_to_mac(&words);
        log::warn!(
            "{}: RAR0 holds no address ({}); using EEPROM words 0-2 ({}), port 0's on a multi-port card",
            self.addr,
            format_mac(&rar),
            format_mac(&m)
        );
        Ok(m)
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
        let _g = lock(&self.ctl);
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
        let _g = lock(&self.ctl);
        for (i, v) in mta.iter().enumerate() {
            self.w(MTA + 4 * i, *v);
        }
    }

    /// Writes the RSS key, the 32 redirection-table registers (already in
    /// the chip's entry encoding) and MRQC.
    /// RXCSUM for a port's receive offloads (the same bits on both chips;
    /// 82576 datasheet 8.10.14, 82574 datasheet 10.2.5.15): IPOFL/TUOFL
    /// when checksum validation is asked for; PCSD whenever RSS is on, so the
    /// write-back carries the RSS hash (the 82574L hashes only with PCSD
    /// set). Neither: the write-back carries the fragment checksum, which no
    /// one reads.
    pub fn rxcsum_for(cfg: &crate::PortConfig) -> u32 {
        let mut v = 0;
        if cfg.rx_offloads.checksum {
            v |= RXCSUM_IPOFL | RXCSUM_TUOFL;
        }
        if cfg.rss_enabled() {
            v |= RXCSUM_PCSD;
        }
        v
    }

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

    /// Transmit on, read-modify-write as Intel's code does (bits this
    /// driver does not own keep their reset values): pad short frames,
    /// retransmit on late collision, the collision threshold, and the
    /// collision distance: in TCTL.COLD on the 82574, in TCTL_EXT.COLD on
    /// the 82576 (82576 8.12.2/8.12.3, where TCTL.COLD is reserved).
    pub fn enable_transmit(&self) {
        let cold = if self.family == Some(Family::I82576) {
            self.update(TCTL_EXT, |v| {
                (v & !TCTL_EXT_COLD_MASK) | (COLLISION_DISTANCE << TCTL_EXT_COLD_SHIFT)
            });
            0
        } else {
            COLLISION_DISTANCE << TCTL_COLD_SHIFT
        };
        self.update(TCTL, |t| {
            (t & !(TCTL_CT_MASK | TCTL_COLD_MASK))
                | TCTL_EN
                | TCTL_PSP
                | TCTL_RTLC
                | (COLLISION_THRESHOLD << TCTL_CT_SHIFT)
                | cold
        });
    }

    /// Flow control registers (82576 3.7.5.x, 82574 3.3.4.x): the PAUSE
    /// address and type, the pause time, and the receive buffer marks at
    /// which XOFF/XON are sent (only when this port sends PAUSE frames, as
    /// Intel's set_fc_watermarks does; 0 otherwise).
    pub fn program_flow_control(&self, mode: FlowControl, t: FcThresholds) {
        self.w(FCAL, FCAL_PAUSE);
        self.w(FCAH, FCAH_PAUSE);
        self.w(FCT, FCT_PAUSE);
        self.w(FCTTV, u32::from(t.pause_time));
        let (low, high) = if mode.tx_pause() {
            (t.low | FCRTL_XONE, t.high)
        } else {
            (0, 0)
        };
        self.w(FCRTL, low);
        self.w(FCRTH, high);
    }

    /// CTRL.RFCE/TFCE for a resolved mode.
    pub fn force_flow_control(&self, mode: FlowControl) {
        self.update(CTRL, |c| {
            let mut c = c & !(CTRL_RFCE | CTRL_TFCE);
            if mode.rx_pause() {
                c |= CTRL_RFCE;
            }
            if mode.tx_pause() {
                c |= CTRL_TFCE;
            }
            c
        });
    }

    /// Link state from STATUS, flow control from CTRL.RFCE/TFCE (one read
    /// each).
    pub fn link(&self) -> LinkStatus {
        let mut l = link_from_status(self.r(STATUS));
        if l.up {
            let c = self.r(CTRL);
            l.flow_control = match (c & CTRL_RFCE != 0, c & CTRL_TFCE != 0) {
                (true, true) => FlowControl::Full,
                (true, false) => FlowControl::Rx,
                (false, true) => FlowControl::Tx,
                (false, false) => FlowControl::None,
            };
        }
        l
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

    /// The counter table to carry across resets (clear-on-read counters a
    /// reset would otherwise lose before [`Mac::read_counters`] saw them).
    pub fn set_counter_table(&self, table: &'static [crate::stats::HwCounter]) {
        let _ = self.counters.set(table);
    }

    fn carry_counters(&self) {
        if self.device_gone() {
            return;
        }
        if let Some(table) = self.counters.get() {
            let mut img = Vec::with_capacity(table.len() * 2);
            for c in table.iter() {
                img.push((c.lo, self.r(c.lo)));
                if let Some(hi) = c.hi {
                    img.push((hi, self.r(hi)));
                }
            }
            lock(&self.carried).push(img);
        }
    }

    /// Adds the clear-on-read counters of `hw`'s table (and any read just
    /// before a reset since the last call) and notes a receive overrun
    /// (ICR.RXO) if one happened since the last call. False (and nothing
    /// read from the device added) when the device reads all ones: removed
    /// or hung.
    pub fn read_counters(&self, hw: &mut HwStats) -> bool {
        for img in std::mem::take(&mut *lock(&self.carried)) {
            hw.accumulate(
                |reg| {
                    img.iter()
                        .find(|(r, _)| *r == reg)
                        .map(|(_, v)| *v)
                        .unwrap_or(0)
                },
                || false,
            );
        }
        if !hw.accumulate(|reg| self.r(reg), || self.device_gone()) {
            return false;
        }
        self.read_icr();
        true
    }

    /// Reads ICR (which clears it: both chips in MSI-X mode as the driver
    /// programs them, and without MSI-X) and notes what the driver counts
    /// of it: a receive overrun (ICR.RXO) and a link state change
    /// (ICR.LSC, for [`Mac::take_lsc`]). Every ICR read goes through here,
    /// so neither is lost to another reader.
    pub fn read_icr(&self) -> u32 {
        let icr = self.r(ICR);
        if icr != u32::MAX {
            if icr & ICR_RXO != 0 {
                self.rx_overrun_events.fetch_add(1, Ordering::Relaxed);
            }
            if icr & ICR_LSC != 0 {
                self.lsc_seen.store(true, Ordering::Release);
            }
        }
        icr
    }

    /// Whether an ICR read saw ICR.LSC since the last call.
    pub fn take_lsc(&self) -> bool {
        self.lsc_seen.swap(false, Ordering::AcqRel)
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wrapping 16-bit sum of NVM words (valid image: [`NVM_SUM`] over
/// words 0x00..=0x3F).
pub fn nvm_sum(words: &[u16]) -> u16 {
    words.iter().fold(0u16, |a, w| a.wrapping_add(*w))
}

/// Three little-endian NVM words as a MAC address.
pub fn words_to_mac(w: &[u16]) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, word) in w.iter().take(3).enumerate() {
        m[2 * i..2 * i + 2].copy_from_slice(&word.to_le_bytes());
    }
    m
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
        flow_control: FlowControl::None,
    }
}

/// A register file for host tests of the MAC-block steps: every write
/// recorded, CTRL.RST self-clearing, EECD.AUTO_RD set, EERD answering from
/// an NVM image, EXTCNF_CTRL ownership granted, MDIC answering from a PHY
/// register file (with the 82574 BM PHY's ID).
#[cfg(test)]
pub(crate) mod fake {
    use super::regs::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    pub struct FakeRegs {
        pub regs: Mutex<HashMap<usize, u32>>,
        pub writes: Mutex<Vec<(usize, u32)>>,
        pub nvm: Mutex<Vec<u16>>,
        pub phy: Mutex<HashMap<u32, u16>>,
    }

    impl FakeRegs {
        /// An NVM image whose words 0..=0x3F sum to 0xBABA.
        pub fn new() -> FakeRegs {
            let mut nvm = vec![0u16; 0x40];
            nvm[0] = 0x1b52;
            nvm[1] = 0x5400;
            nvm[2] = 0x5634;
            let sum = super::nvm_sum(&nvm[..0x3F]);
            nvm[0x3F] = NVM_SUM.wrapping_sub(sum);
            let phy = HashMap::from([(2, 0x0141), (3, 0x0cb1), (0, 0x1140)]);
            FakeRegs {
                regs: Mutex::new(HashMap::from([(RAL0, 0x0054_521b), (RAH0, 0x3456)])),
                writes: Mutex::new(Vec::new()),
                nvm: Mutex::new(nvm),
                phy: Mutex::new(phy),
            }
        }
        pub fn writes(&self) -> Vec<(usize, u32)> {
            self.writes.lock().unwrap().clone()
        }
        pub fn reg(&self, off: usize) -> u32 {
            self.regs.lock().unwrap().get(&off).copied().unwrap_or(0)
        }
    }

    impl super::Regs for FakeRegs {
        fn read32(&self, off: usize) -> u32 {
            let v = self.reg(off);
            match off {
                EECD => v | EECD_AUTO_RD,
                _ => v,
            }
        }
        fn write32(&self, off: usize, v: u32) {
            self.writes.lock().unwrap().push((off, v));
            let stored = match off {
                CTRL => v & !(CTRL_RST | CTRL_PHY_RST),
                EERD if v & EERD_START != 0 => {
                    let w = (v >> EERD_ADDR_SHIFT) as usize;
                    let d = self.nvm.lock().unwrap().get(w).copied().unwrap_or(0xFFFF);
                    (u32::from(d) << EERD_DATA_SHIFT) | EERD_DONE
                }
                MDIC => {
                    let reg = (v >> MDIC_REGADD_SHIFT) & 0x1F;
                    let mut phy = self.phy.lock().unwrap();
                    let data = if v & MDIC_OP_WRITE != 0 {
                        // BMCR.RESET self-clears.
                        let d = (v & MDIC_DATA_MASK) as u16;
                        phy.insert(reg, if reg == 0 { d & !(1 << 15) } else { d });
                        d
                    } else {
                        phy.get(&reg).copied().unwrap_or(0)
                    };
                    (v & !MDIC_DATA_MASK) | u32::from(data) | MDIC_READY
                }
                _ => v,
            };
            self.regs.lock().unwrap().insert(off, stored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_mac(family: Family) -> (Arc<fake::FakeRegs>, Mac) {
        let regs = Arc::new(fake::FakeRegs::new());
        let addr = PciAddress::new(0, 0, 3, 0).expect("address");
        let mac = Mac::over(addr, regs.clone(), Some(family));
        (regs, mac)
    }

    #[test]
    fn a_valid_nvm_checksum_passes_and_a_corrupt_one_is_a_typed_error() {
        for family in [Family::I82576, Family::I82574] {
            let (regs, mac) = fake_mac(family);
            mac.validate_nvm_checksum(1).expect("valid image");
            let eerd_reads = regs
                .writes()
                .iter()
                .filter(|(o, v)| *o == EERD && v & EERD_START != 0)
                .count();
            assert_eq!(eerd_reads, 0x40, "words 0x00..=0x3F read through EERD");
            regs.nvm.lock().unwrap()[5] ^= 0x0100;
            match mac.validate_nvm_checksum(3) {
                Err(Error::NvmChecksum { sum, .. }) => assert_eq!(sum, 0xBABA ^ 0x0100),
                other => panic!("{family:?}: corrupt NVM accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn receive_address_entries_16_to_23_are_the_82576_ra2_block() {
        assert_eq!((ral(0), rah(0)), (0x5400, 0x5404));
        assert_eq!((ral(15), rah(15)), (0x5478, 0x547C));
        assert_eq!((ral(16), rah(16)), (0x54E0, 0x54E4));
        assert_eq!((ral(23), rah(23)), (0x5518, 0x551C));
        let (regs, mac) = fake_mac(Family::I82576);
        mac.init_filters(&[2, 0, 0, 0, 0, 1], RAR_ENTRIES_82576);
        let w: Vec<usize> = regs.writes().iter().map(|(o, _)| *o).collect();
        assert!(
            w.contains(&0x551C) && !w.contains(&0x5480),
            "RA2 written, PSRTYPE not"
        );
    }

    #[test]
    fn status_decodes_to_link() {
        let up = link_from_status(STATUS_LU | STATUS_FD | (2 << STATUS_SPEED_SHIFT));
        assert_eq!(
            up,
            LinkStatus {
                up: true,
                speed: 1000,
                full_duplex: true,
                flow_control: FlowControl::None,
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
