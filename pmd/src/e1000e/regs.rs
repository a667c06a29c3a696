//! 82574L register offsets and bit fields, named as in the Intel 82574 GbE
//! Controller Family Datasheet (section 10) and Linux `e1000e`'s `regs.h` /
//! `defines.h`. Offsets are byte offsets into BAR0. What the 82574L shares
//! with the 82576 (CTRL, STATUS, EERD, MDIC, RCTL/TCTL, RXCSUM, RAL/RAH,
//! MTA, VFTA, RSS key/RETA/MRQC, the statistics block) lives in
//! [`crate::mac::regs`] and is re-exported; this file holds only what the
//! 82574L has alone.
//!
//! Queue registers: queue n at +0x100 * n from queue 0 (two queues).

#![allow(dead_code)]

pub use crate::mac::regs::*;

// General.
pub const ICS: usize = 0x00C8;
/// AIT: Adaptive IFS Throttle (82574 datasheet section 10); 0: off.
pub const AIT: usize = 0x0458;
pub const IAM: usize = 0x00E0;
/// EIAC: MSI-X auto clear, bits 24:20 as IMS RXQ0..Other.
pub const EIAC: usize = 0x00DC;
/// IVAR: MSI-X allocation; 4-bit entries (vector in bits 2:0, valid bit
/// 3): RX0 at 3:0, RX1 7:4, TX0 11:8, TX1 15:12, Other 19:16.
pub const IVAR: usize = 0x00E4;
pub const IVAR_INT_ALLOC_VALID: u32 = 0x8;
pub const IVAR_RX_SHIFT: [u32; 2] = [0, 4];
pub const IVAR_OTHER_SHIFT: u32 = 16;
/// EITR(n): per-vector interrupt throttling, interval in 256 ns units.
pub const fn eitr(n: usize) -> usize {
    0x00E8 + 4 * n
}
/// IMS/ICR bits of the MSI-X causes.
pub const IMS_RXQ0: u32 = 1 << 20;
pub const IMS_RXQ1: u32 = 1 << 21;
pub const IMS_TXQ0: u32 = 1 << 22;
pub const IMS_TXQ1: u32 = 1 << 23;
pub const IMS_OTHER: u32 = 1 << 24;
/// CTRL_EXT.EIAME: an MSI-X message masks its IAM bits in IMS.
pub const CTRL_EXT_EIAME: u32 = 1 << 24;
/// CTRL_EXT.IAME: an ICR read or write masks the IAM bits (off in MSI-X
/// mode: ICR is read by the other-causes handler only).
pub const CTRL_EXT_IAME: u32 = 1 << 27;
/// CTRL_EXT.PBA_CLR: the MSI-X pending bits clear with their ICR bits.
pub const CTRL_EXT_PBA_CLR: u32 = 1 << 31;
/// PSRCTL: packet split receive control, the buffer sizes of a
/// packet-split descriptor (82574 datasheet section 10, PSRCTL).
pub const PSRCTL: usize = 0x2170;
/// BSIZE0 (bits 6:0): buffer 0, the header buffer, in 128-byte units.
pub const PSRCTL_BSIZE0_MASK: u32 = 0x7F;
pub const PSRCTL_BSIZE0_UNIT: usize = 128;
/// BSIZE1 (bits 13:8): buffer 1, in 1 KiB units; BSIZE2 (21:16) and
/// BSIZE3 (29:24) likewise, 0 leaving that buffer unused.
pub const PSRCTL_BSIZE1_SHIFT: u32 = 8;
pub const PSRCTL_BSIZE2_SHIFT: u32 = 16;
pub const PSRCTL_BSIZE3_SHIFT: u32 = 24;
pub const PSRCTL_BSIZEN_MASK: u32 = 0x3F;
pub const PSRCTL_BSIZEN_UNIT: usize = 1024;
/// The ranges the datasheet gives (and Linux's e1000e restates): buffer 0
/// 128..=16256 bytes, buffer 1 1024..=64512.
pub const PSRCTL_BSIZE0_MAX: usize = PSRCTL_BSIZE0_MASK as usize * PSRCTL_BSIZE0_UNIT;
pub const PSRCTL_BSIZEN_MAX: usize = PSRCTL_BSIZEN_MASK as usize * PSRCTL_BSIZEN_UNIT;

// Per-queue registers (n = 0, 1).
pub const fn rdbal(n: usize) -> usize {
    0x2800 + 0x100 * n
}
pub const fn rdbah(n: usize) -> usize {
    0x2804 + 0x100 * n
}
pub const fn rdlen(n: usize) -> usize {
    0x2808 + 0x100 * n
}
pub const fn rdh(n: usize) -> usize {
    0x2810 + 0x100 * n
}
pub const fn rdt(n: usize) -> usize {
    0x2818 + 0x100 * n
}
pub const fn rxdctl(n: usize) -> usize {
    0x2828 + 0x100 * n
}
pub const fn tdbal(n: usize) -> usize {
    0x3800 + 0x100 * n
}
pub const fn tdbah(n: usize) -> usize {
    0x3804 + 0x100 * n
}
pub const fn tdlen(n: usize) -> usize {
    0x3808 + 0x100 * n
}
pub const fn tdh(n: usize) -> usize {
    0x3810 + 0x100 * n
}
pub const fn tdt(n: usize) -> usize {
    0x3818 + 0x100 * n
}
pub const fn txdctl(n: usize) -> usize {
    0x3828 + 0x100 * n
}
pub const fn tarc(n: usize) -> usize {
    0x3840 + 0x100 * n
}

// RCTL fields the 82576 does not have.
/// Descriptor minimum threshold size: 1/2 of the ring (00b).
pub const RCTL_RDMTS_HALF: u32 = 0 << 8;
/// Descriptor type: 00b legacy/extended one-buffer (with RFCTL.EXTEN).
pub const RCTL_DTYP_MASK: u32 = 3 << 10;
/// Descriptor type 01b: packet split (32-byte descriptors, PSRCTL sizes).
pub const RCTL_DTYP_PS: u32 = 1 << 10;
/// FLXBUF: receive buffer size in KiB (1..15); 0 selects BSIZE/BSEX.
pub const RCTL_FLXBUF_SHIFT: u32 = 27;
pub const RCTL_FLXBUF_MASK: u32 = 0xF << RCTL_FLXBUF_SHIFT;
pub const RCTL_FLXBUF_MAX_KB: u32 = 15;

// RFCTL.
pub const RFCTL_ISCSI_DIS: u32 = 1 << 0;
pub const RFCTL_NFSW_DIS: u32 = 1 << 6;
pub const RFCTL_NFSR_DIS: u32 = 1 << 7;
pub const RFCTL_IPV6_DIS: u32 = 1 << 10;
pub const RFCTL_IPV6_XSUM_DIS: u32 = 1 << 11;
pub const RFCTL_ACK_DIS: u32 = 1 << 12;
/// Extended receive descriptors (the brief's and some docs' "EXSTEN").
pub const RFCTL_EXTEN: u32 = 1 << 15;
pub const RFCTL_NEW_IPV6_EXT_DIS: u32 = 1 << 17;
// RFCTL_IPV6_EX_DIS (bit 16) is the 82576's bit at the same place, shared
// from crate::mac::regs.

// MRQC: MRQE (bits 1:0) = 01b enables RSS (the hash field enables are
// shared).
pub const MRQC_ENABLE_RSS_2Q: u32 = 0x1;
/// RETA entry: bit 7 selects the queue (0 or 1); bits 6:0 are unused.
pub const RETA_QUEUE_SHIFT: u32 = 7;

// TXDCTL / TARC.
/// Thresholds in descriptors rather than cache lines.
pub const TXDCTL_GRAN: u32 = 1 << 24;
/// Bit 22 must be written 1 (Linux: E1000_TXDCTL_COUNT_DESC).
pub const TXDCTL_COUNT_DESC: u32 = 1 << 22;
/// RXDCTL: PTHRESH (5:0), HTHRESH (13:8), WTHRESH (21:16), GRAN (24).
pub const RXDCTL_GRAN: u32 = 1 << 24;
/// The RXDCTL this driver writes: GRAN, PTHRESH 32, HTHRESH 4, WTHRESH 1.
pub const RXDCTL_VALUE: u32 = RXDCTL_GRAN | (1 << 16) | (4 << 8) | 0x20;
/// PBA: packet buffer allocation, receive part in KiB (82574 datasheet, PBA);
/// the rest of the 40 KiB goes to transmit.
pub const PBA: usize = 0x1000;
/// The receive share Linux's e1000e gives the 82574 with standard frames.
pub const PBA_RX_KB: u32 = 32;
/// TARC.ENABLE: the queue's transmit requests are served.
pub const TARC_ENABLE: u32 = 1 << 10;

// TIPG for copper (IPGT 8, IPGR1 8, IPGR2 6).
pub const TIPG_COPPER: u32 = 8 | (8 << 10) | (6 << 20);

pub const VET_8021Q: u32 = 0x8100;

// 82574 PHY (BM, M88-compatible) Copper Control 1 register (82574
// datasheet 10.3.x, "PHY Specific Control", page 0 register 16).
pub const PHY_SPEC_CTRL: u32 = 0x10;
/// Polarity reversal disable (cleared: automatic polarity correction).
pub const PHY_SPEC_CTRL_POLARITY_REVERSAL_DIS: u16 = 1 << 1;
/// MDI crossover mode (bits 6:5); 11b: automatic.
pub const PHY_SPEC_CTRL_MDIX_MASK: u16 = 3 << 5;
pub const PHY_SPEC_CTRL_AUTO_MDIX: u16 = 3 << 5;
/// Downshift enable (bit 11): link at a lower speed after repeated
/// failed 1000BASE-T attempts.
pub const PHY_SPEC_CTRL_DOWNSHIFT_EN: u16 = 1 << 11;
/// The 82574's BM PHY, revision 2 (PHYSID1 << 16 | PHYSID2; Linux's
/// BME1000_E_PHY_ID_R2), which needs the register 29/30 setting.
pub const BME1000_E_PHY_ID_R2: u32 = 0x0141_0CB1;
pub const BM_R2_REG_29: u32 = 29;
pub const BM_R2_REG_30: u32 = 30;
/// Page 0 register 25: its bit 0 is smart power down (Linux's
/// IGP02E1000_PHY_POWER_MGMT / IGP02E1000_PM_SPD, cleared at reset).
pub const PHY_POWER_MGMT: u32 = 0x19;
pub const PHY_POWER_MGMT_SPD: u16 = 1 << 0;
