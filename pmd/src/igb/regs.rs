//! 82576 register offsets and bit fields, named as in the Intel 82576 GbE
//! Controller Datasheet (section 8) and Linux `igb`'s `e1000_regs.h` /
//! `e1000_defines.h`. Offsets are byte offsets into BAR0.
//!
//! Queue registers use the datasheet's primary map (0xC000 + 0x40 * n for RX,
//! 0xE000 + 0x40 * n for TX), valid for all 16 queues; the 0x2800/0x3800
//! aliases of queues 0..3 are 82575 compatibility and are not used.

#![allow(dead_code)]

// General control and status.
pub const CTRL: usize = 0x0000;
pub const STATUS: usize = 0x0008;
pub const EECD: usize = 0x0010;
pub const EERD: usize = 0x0014;
pub const CTRL_EXT: usize = 0x0018;
pub const MDIC: usize = 0x0020;
pub const VET: usize = 0x0038;

// Interrupts (masked; the driver polls).
pub const ICR: usize = 0x00C0;
pub const IMS: usize = 0x00D0;
pub const IMC: usize = 0x00D8;
pub const EICR: usize = 0x1580;
pub const EIMS: usize = 0x1524;
pub const EIMC: usize = 0x1528;
pub const EIAC: usize = 0x152C;
pub const EIAM: usize = 0x1530;
pub const GPIE: usize = 0x1514;

// Receive.
pub const RCTL: usize = 0x0100;
pub const RXCSUM: usize = 0x5000;
pub const RLPML: usize = 0x5004;
pub const RFCTL: usize = 0x5008;
pub const MTA: usize = 0x5200;
pub const MTA_LEN: usize = 128;
pub const RAL0: usize = 0x5400;
pub const RAH0: usize = 0x5404;
/// Receive address registers 0..15 (RA); 16..23 (RA2) start at 0x54E0.
pub const RAR_ENTRIES: usize = 16;
pub const VFTA: usize = 0x5600;
pub const MRQC: usize = 0x5818;
pub const VT_CTL: usize = 0x581C;
pub const RETA: usize = 0x5C00;
pub const RETA_REGS: usize = 32;
pub const RSSRK: usize = 0x5C80;
pub const RSSRK_REGS: usize = 10;

// Transmit.
pub const TCTL: usize = 0x0400;
pub const TCTL_EXT: usize = 0x0404;
pub const TIPG: usize = 0x0410;
pub const DTXCTL: usize = 0x3590;

/// Receive address low for filter `i` (0..16).
pub const fn ral(i: usize) -> usize {
    RAL0 + 8 * i
}
/// Receive address high for filter `i` (0..16).
pub const fn rah(i: usize) -> usize {
    RAH0 + 8 * i
}

// Per-queue registers.
pub const fn rdbal(n: usize) -> usize {
    0xC000 + 0x40 * n
}
pub const fn rdbah(n: usize) -> usize {
    0xC004 + 0x40 * n
}
pub const fn rdlen(n: usize) -> usize {
    0xC008 + 0x40 * n
}
pub const fn srrctl(n: usize) -> usize {
    0xC00C + 0x40 * n
}
pub const fn rdh(n: usize) -> usize {
    0xC010 + 0x40 * n
}
pub const fn rdt(n: usize) -> usize {
    0xC018 + 0x40 * n
}
pub const fn rxdctl(n: usize) -> usize {
    0xC028 + 0x40 * n
}
pub const fn rqdpc(n: usize) -> usize {
    0xC030 + 0x40 * n
}
pub const fn tdbal(n: usize) -> usize {
    0xE000 + 0x40 * n
}
pub const fn tdbah(n: usize) -> usize {
    0xE004 + 0x40 * n
}
pub const fn tdlen(n: usize) -> usize {
    0xE008 + 0x40 * n
}
pub const fn tdh(n: usize) -> usize {
    0xE010 + 0x40 * n
}
pub const fn tdt(n: usize) -> usize {
    0xE018 + 0x40 * n
}
pub const fn txdctl(n: usize) -> usize {
    0xE028 + 0x40 * n
}

// CTRL bits.
pub const CTRL_FD: u32 = 1 << 0;
pub const CTRL_SLU: u32 = 1 << 6;
pub const CTRL_FRCSPD: u32 = 1 << 11;
pub const CTRL_FRCDPLX: u32 = 1 << 12;
pub const CTRL_RST: u32 = 1 << 26;
pub const CTRL_RFCE: u32 = 1 << 27;
pub const CTRL_TFCE: u32 = 1 << 28;
pub const CTRL_VME: u32 = 1 << 30;
pub const CTRL_PHY_RST: u32 = 1 << 31;

// STATUS bits.
pub const STATUS_FD: u32 = 1 << 0;
pub const STATUS_LU: u32 = 1 << 1;
pub const STATUS_SPEED_SHIFT: u32 = 6;
pub const STATUS_SPEED_MASK: u32 = 3 << STATUS_SPEED_SHIFT;
pub const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;

// CTRL_EXT bits.
pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;
pub const CTRL_EXT_PFRSTD: u32 = 1 << 14;

// EERD (82576 layout: DONE at bit 1, address from bit 2).
pub const EERD_START: u32 = 1 << 0;
pub const EERD_DONE: u32 = 1 << 1;
pub const EERD_ADDR_SHIFT: u32 = 2;
pub const EERD_DATA_SHIFT: u32 = 16;

// MDIC.
pub const MDIC_DATA_MASK: u32 = 0xFFFF;
pub const MDIC_REGADD_SHIFT: u32 = 16;
pub const MDIC_PHYADD_SHIFT: u32 = 21;
pub const MDIC_OP_WRITE: u32 = 1 << 26;
pub const MDIC_OP_READ: u32 = 2 << 26;
pub const MDIC_READY: u32 = 1 << 28;
pub const MDIC_ERROR: u32 = 1 << 30;
/// The internal PHY's MDIO address on the 82576.
pub const PHY_ADDR: u32 = 1;

// IEEE 802.3 clause 22 PHY registers (Linux `mii.h` names).
pub const MII_BMCR: u32 = 0x00;
pub const MII_BMSR: u32 = 0x01;
pub const BMCR_ANRESTART: u16 = 1 << 9;
pub const BMCR_ANENABLE: u16 = 1 << 12;
pub const BMCR_RESET: u16 = 1 << 15;
pub const BMSR_LSTATUS: u16 = 1 << 2;
pub const BMSR_ANEGCOMPLETE: u16 = 1 << 5;

// RCTL bits.
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

// SRRCTL.
pub const SRRCTL_BSIZEPKT_SHIFT: u32 = 10;
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7F;
pub const SRRCTL_BSIZEHDR_SHIFT: u32 = 2; // header size in 64-byte units at bits 8..11
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 1 << 25;
pub const SRRCTL_DROP_EN: u32 = 1 << 31;

// RXDCTL / TXDCTL.
pub const RXDCTL_PTHRESH_SHIFT: u32 = 0;
pub const RXDCTL_HTHRESH_SHIFT: u32 = 8;
pub const RXDCTL_WTHRESH_SHIFT: u32 = 16;
pub const RXDCTL_ENABLE: u32 = 1 << 25;
pub const TXDCTL_PTHRESH_SHIFT: u32 = 0;
pub const TXDCTL_HTHRESH_SHIFT: u32 = 8;
pub const TXDCTL_WTHRESH_SHIFT: u32 = 16;
pub const TXDCTL_ENABLE: u32 = 1 << 25;

// RXCSUM.
pub const RXCSUM_IPOFLD: u32 = 1 << 8;
pub const RXCSUM_TUOFLD: u32 = 1 << 9;
pub const RXCSUM_CRCOFL: u32 = 1 << 11;
pub const RXCSUM_PCSD: u32 = 1 << 13;

// MRQC.
pub const MRQC_ENABLE_RSS_MQ: u32 = 0x2;
pub const MRQC_RSS_FIELD_IPV4_TCP: u32 = 1 << 16;
pub const MRQC_RSS_FIELD_IPV4: u32 = 1 << 17;
pub const MRQC_RSS_FIELD_IPV6_TCP_EX: u32 = 1 << 18;
pub const MRQC_RSS_FIELD_IPV6_EX: u32 = 1 << 19;
pub const MRQC_RSS_FIELD_IPV6: u32 = 1 << 20;
pub const MRQC_RSS_FIELD_IPV6_TCP: u32 = 1 << 21;
pub const MRQC_RSS_FIELD_IPV4_UDP: u32 = 1 << 22;
pub const MRQC_RSS_FIELD_IPV6_UDP: u32 = 1 << 23;
pub const MRQC_RSS_FIELD_IPV6_UDP_EX: u32 = 1 << 24;

// RAH.
pub const RAH_AV: u32 = 1 << 31;

// TCTL.
pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;
pub const TCTL_CT_SHIFT: u32 = 4;
pub const TCTL_COLD_SHIFT: u32 = 12;
pub const TCTL_RTLC: u32 = 1 << 24;
pub const COLLISION_THRESHOLD: u32 = 15;
pub const COLLISION_DISTANCE: u32 = 63;

// Statistics (clear on read). 64-bit counters are an L/H pair.
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

// ICR bits.
pub const ICR_LSC: u32 = 1 << 2;
/// Receiver overrun: a frame was dropped for lack of descriptors.
pub const ICR_RXO: u32 = 1 << 6;
