//! 82576 register offsets and bit fields, named as in the Intel 82576 GbE
//! Controller Datasheet (section 8) and Linux `igb`'s `e1000_regs.h` /
//! `e1000_defines.h`. Offsets are byte offsets into BAR0. What the 82576
//! shares with the 82574L (CTRL, STATUS, EERD, MDIC, RCTL/TCTL, RXCSUM,
//! RAL/RAH, MTA, VFTA, RSS key/RETA/MRQC, the statistics block) lives in
//! [`crate::mac::regs`] and is re-exported; this file holds only what the
//! 82576 has alone.
//!
//! Queue registers use the datasheet's primary map (0xC000 + 0x40 * n for RX,
//! 0xE000 + 0x40 * n for TX), valid for all 16 queues; the 0x2800/0x3800
//! aliases of queues 0..3 are 82575 compatibility and are not used.

#![allow(dead_code)]

pub use crate::mac::regs::*;

// Extended interrupts (masked while the driver only polls; MSI-X
// routing with PortConfig::intr_conf, crate::intr).
pub const EICR: usize = 0x1580;
pub const EIMS: usize = 0x1524;
pub const EIMC: usize = 0x1528;
pub const EIAC: usize = 0x152C;
pub const EIAM: usize = 0x1530;
pub const GPIE: usize = 0x1514;
/// GPIE.NSICR: every ICR read clears it (not only with INT_ASSERTED).
pub const GPIE_NSICR: u32 = 1 << 0;
/// GPIE.Multiple_MSIX: MSI-X mode, causes reported per vector in EICR.
pub const GPIE_MSIX_MODE: u32 = 1 << 4;
/// GPIE.EIAME: the EIAM bits of a vector mask it (EIMS) when it fires.
pub const GPIE_EIAME: u32 = 1 << 30;
/// GPIE.PBA_support: MSI-X pending bits instead of EICR polling.
pub const GPIE_PBA: u32 = 1 << 31;
/// IVAR0: 8 registers, queue q's RX entry in IVAR0[q & 7] at bit
/// (q & 8) << 1, its TX entry 8 bits higher; an entry is the vector
/// (bits 4:0) and INT_Alloc_val (bit 7).
pub const IVAR0: usize = 0x1700;
/// IVAR_MISC: the TCP timer's entry in bits 7:0, the other causes' in 15:8.
pub const IVAR_MISC: usize = 0x1740;
pub const IVAR_VALID: u32 = 0x80;
/// EITR(n): interval at bits 14:2 in 1 us units.
pub const fn eitr(n: usize) -> usize {
    0x1680 + 4 * n
}
pub const EITR_INTERVAL_MASK: u32 = 0x7FFC;
/// EITR.CNT_INGR: a write does not reset the ITR counter (Linux's igb sets
/// it on the 82576).
pub const EITR_CNT_IGNR: u32 = 1 << 31;

// Receive.
pub const RLPML: usize = 0x5004;
/// VT_CTL: virtualization control; VM_REPL_EN (bit 30) replicates
/// multicast/broadcast to every pool.
pub const VT_CTL: usize = 0x581C;
pub const VT_CTL_VM_REPL_EN: u32 = 1 << 30;
/// RPLOLR: replication offload; STRVLAN (bit 30) strips VLAN tags of
/// replicated packets.
pub const RPLOLR: usize = 0x5AF0;
pub const RPLOLR_STRVLAN: u32 = 1 << 30;
/// UTA: unicast table array, 128 hash registers.
pub const UTA: usize = 0xA000;
pub const UTA_LEN: usize = 128;

// Transmit.
/// DTXCTL: DMA TX control; VLAN_ADDED (bit 3): the MAC adds VLAN tags.
pub const DTXCTL: usize = 0x3590;
pub const DTXCTL_VLAN_ADDED: u32 = 1 << 3;
/// DTXSWC: DMA TX switch control; VMDQ_LOOPBACK_EN (bit 31): VM to VM
/// loopback.
pub const DTXSWC: usize = 0x3500;
pub const DTXSWC_VMDQ_LOOPBACK_EN: u32 = 1 << 31;

/// PCIe Device Control 2 completion timeout value 16 ms - 55 ms (PCIe
/// base specification; Intel's PCIE_DEVICE_CONTROL2_16ms).
pub const DEVCTL2_CMPL_TMOUT_16MS: u16 = 0x5;

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
/// Packet Split Receive Type, one per pool (queue n uses PSRTYPE(n % 8)).
pub const fn psrtype(n: usize) -> usize {
    0x5480 + 4 * n
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

// CTRL_EXT bits.
pub const CTRL_EXT_PFRSTD: u32 = 1 << 14;

// IGP PHY (82576 internal PHY) registers beyond clause 22 (82576
// datasheet 8.27.x).
/// Port Control: MDI/MDI-X selection (bits 13:12).
pub const IGP_PORT_CTRL: u32 = 0x12;
/// Port Control: automatic MDI/MDI-X crossover.
pub const IGP_PORT_CTRL_AUTO_MDIX: u16 = 1 << 12;
/// Port Control: force MDI-X when automatic crossover is off.
pub const IGP_PORT_CTRL_FORCE_MDIX: u16 = 1 << 13;
/// Power Management: low-power link up controls.
pub const IGP_PORT_CFG: u32 = 0x19;
/// Power Management: D0 low-power link up (off while the port is used,
/// as Intel's set_d0_lplu_state clears it).
pub const IGP_PORT_CFG_D0_LPLU: u16 = 1 << 1;

// SRRCTL.
pub const SRRCTL_BSIZEPKT_SHIFT: u32 = 10;
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7F;
/// BSIZEHEADER: header buffer size in 64-byte units at bits 11:8, so the
/// size in bytes shifted left by 2 (at most 15 units, 960 bytes).
pub const SRRCTL_BSIZEHDR_SHIFT: u32 = 2;
pub const SRRCTL_BSIZEHDR_MASK: u32 = 0xF00;
pub const SRRCTL_BSIZEHDR_UNIT: usize = 64;
pub const SRRCTL_BSIZEHDR_MAX: usize = 15 * 64;
/// DESCTYPE (bits 27:25): advanced one buffer (001b), header split
/// (010b), header split always using the header buffer (101b).
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 1 << 25;
pub const SRRCTL_DESCTYPE_HDR_SPLIT: u32 = 2 << 25;
pub const SRRCTL_DESCTYPE_HDR_SPLIT_ALWAYS: u32 = 5 << 25;
pub const SRRCTL_DROP_EN: u32 = 1 << 31;

// PSRTYPE: the headers the device recognises for header split.
pub const PSRTYPE_TCPHDR: u32 = 1 << 4;
pub const PSRTYPE_UDPHDR: u32 = 1 << 5;
pub const PSRTYPE_IPV4HDR: u32 = 1 << 8;
pub const PSRTYPE_IPV6HDR: u32 = 1 << 9;
pub const PSRTYPE_L2HDR: u32 = 1 << 12;

// RXDCTL / TXDCTL.
pub const RXDCTL_PTHRESH_SHIFT: u32 = 0;
pub const RXDCTL_HTHRESH_SHIFT: u32 = 8;
pub const RXDCTL_WTHRESH_SHIFT: u32 = 16;
pub const RXDCTL_ENABLE: u32 = 1 << 25;
pub const TXDCTL_PTHRESH_SHIFT: u32 = 0;
pub const TXDCTL_HTHRESH_SHIFT: u32 = 8;
pub const TXDCTL_WTHRESH_SHIFT: u32 = 16;
pub const TXDCTL_ENABLE: u32 = 1 << 25;

// MRQC: the RSS enable and the hash fields the 82574L lacks.
pub const MRQC_ENABLE_RSS_MQ: u32 = 0x2;
pub const MRQC_RSS_FIELD_IPV6_TCP: u32 = 1 << 21;
pub const MRQC_RSS_FIELD_IPV4_UDP: u32 = 1 << 22;
pub const MRQC_RSS_FIELD_IPV6_UDP: u32 = 1 << 23;
pub const MRQC_RSS_FIELD_IPV6_UDP_EX: u32 = 1 << 24;

/// VET: 802.1Q (low half) and the extended VLAN EtherType (high half).
pub const VET_8021Q_BOTH: u32 = 0x8100_8100;

// Queue filters (82576 datasheet 7.1.2 receive queue assignment, 8.10
// filter registers; Linux igb's e1000_regs.h / e1000_82575.h and DPDK's
// e1000 base code spell them the same). The 82576 has 8 EtherType filters
// and 8 5-tuple filters; the 82580/I350 call the filter at 0x59E0 TTQF (a
// 2-tuple filter), on the 82576 it is FTQF, whose masks make it a 2-tuple
// (protocol + destination port) filter too.
/// ETQF: EtherType queue filter n (0..8).
pub const fn etqf(n: usize) -> usize {
    0x5CB0 + 4 * n
}
pub const ETQF_FILTERS: usize = 8;
pub const ETQF_ETYPE_MASK: u32 = 0xFFFF;
/// Rx Queue (bits 18:16).
pub const ETQF_QUEUE_SHIFT: u32 = 16;
pub const ETQF_QUEUE_MASK: u32 = 0x7 << ETQF_QUEUE_SHIFT;
pub const ETQF_FILTER_ENABLE: u32 = 1 << 26;
pub const ETQF_QUEUE_ENABLE: u32 = 1 << 31;
/// SAQF: source IPv4 address of 5-tuple filter n, network byte order.
pub const fn saqf(n: usize) -> usize {
    0x5980 + 4 * n
}
/// DAQF: destination IPv4 address of 5-tuple filter n, network byte order.
pub const fn daqf(n: usize) -> usize {
    0x59A0 + 4 * n
}
/// SPQF: source port of 5-tuple filter n (bits 15:0, network byte order).
pub const fn spqf(n: usize) -> usize {
    0x59C0 + 4 * n
}
/// FTQF: 5-tuple queue filter n: protocol, queue, enable and compare masks.
pub const fn ftqf(n: usize) -> usize {
    0x59E0 + 4 * n
}
/// IMIR: immediate interrupt / 5-tuple destination port and priority of
/// filter n.
pub const fn imir(n: usize) -> usize {
    0x5A80 + 4 * n
}
/// IMIREXT: size and TCP control bit conditions of filter n.
pub const fn imirext(n: usize) -> usize {
    0x5AA0 + 4 * n
}
pub const FTQF_FILTERS: usize = 8;
pub const FTQF_PROTOCOL_MASK: u32 = 0xFF;
pub const FTQF_QUEUE_ENABLE: u32 = 1 << 8;
/// VF_BP: the pool (VF) is not compared (no VMDq here).
pub const FTQF_VF_BP: u32 = 1 << 15;
/// Rx Queue (bits 19:16).
pub const FTQF_QUEUE_SHIFT: u32 = 16;
pub const FTQF_QUEUE_MASK: u32 = 0xF << FTQF_QUEUE_SHIFT;
/// Mask bits 31:28: set = that field is not compared.
pub const FTQF_MASK_PROTO_BP: u32 = 1 << 28;
pub const FTQF_MASK_SOURCE_ADDR_BP: u32 = 1 << 29;
pub const FTQF_MASK_DEST_ADDR_BP: u32 = 1 << 30;
pub const FTQF_MASK_SOURCE_PORT_BP: u32 = 1 << 31;
pub const FTQF_MASK: u32 = 0xF << 28;
pub const IMIR_DSTPORT: u32 = 0xFFFF;
/// PORT_IM_EN: raise an immediate interrupt on a match (not used: the
/// driver polls).
pub const IMIR_PORT_IM_EN: u32 = 1 << 16;
/// PORT_BP: the destination port is not compared.
pub const IMIR_PORT_BP: u32 = 1 << 17;
/// Priority (bits 31:29): the higher wins among 5-tuple filters that match.
pub const IMIR_PRIORITY_SHIFT: u32 = 29;
pub const IMIR_PRIORITY_MAX: u32 = 7;
/// SIZE_BP: the packet size is not compared.
pub const IMIREXT_SIZE_BP: u32 = 1 << 12;
/// CTRL_BP: the TCP control bits are not compared.
pub const IMIREXT_CTRL_BP: u32 = 1 << 19;
