//! 82576 advanced descriptors (datasheet 7.1.5 and 7.2.2): the receive
//! one-buffer format and the transmit data and context formats, as the
//! shared rings' [`RxFormat`] and [`TxFormat`].

use crate::offload::{self, OffloadError};
use crate::packet::{Packet, RxFlags, TxFlags};
use crate::ring::Desc;
use crate::rx::{RxFormat, RxMeta, SplitLens};
use crate::tx::{TxFormat, TxPacketInfo};

// Receive write-back: status/error in the low dword of `hi`.
pub const RXD_STAT_DD: u64 = 1 << 0;
pub const RXD_STAT_EOP: u64 = 1 << 1;
pub const RXD_STAT_VP: u32 = 1 << 3;
pub const RXD_STAT_UDPCS: u32 = 1 << 4;
pub const RXD_STAT_TCPCS: u32 = 1 << 5;
pub const RXD_STAT_IPCS: u32 = 1 << 6;
pub const RXDEXT_STATERR_TCPE: u32 = 1 << 29;
pub const RXDEXT_STATERR_IPE: u32 = 1 << 30;
pub const RXDEXT_STATERR_RXE: u32 = 1 << 31;
/// RSS type field of `pkt_info` (bits 3:0 of the low word of `lo`).
pub const RXDADV_RSSTYPE_MASK: u64 = 0xF;
/// Packet type (bits 16:4 of `lo`) bit 11: the frame matched an EtherType
/// filter (ETQF), whose index is in packet type bits 2:0 (82576 datasheet
/// 7.1.5 advanced receive descriptor write-back; DPDK's
/// E1000_RXDADV_PKTTYPE_ETQF).
pub const RXDADV_PKTTYPE_ETQF: u64 = 1 << 15;
/// Header split write-back, in `hdr_info` (bits 31:16 of `lo`): HDR_LEN
/// (bits 30:21 of `lo`) and SPH (bit 31), split header present.
pub const RXDADV_HDRBUFLEN_SHIFT: u32 = 21;
pub const RXDADV_HDRBUFLEN_MASK: u64 = 0x3FF;
pub const RXDADV_SPH: u64 = 1 << 31;
/// HBO in the extended errors: the header did not fit the header buffer.
pub const RXDADV_ERR_HBO: u64 = 1 << 23;

/// Advanced receive descriptors: one buffer (SRRCTL.DESCTYPE 001b), or a
/// packet and a header buffer (header split, 010b).
///
/// Header split as QEMU's igb (>= 8.2) emulates it, where it differs from
/// the 82576 datasheet (7.1.4, 7.1.5):
/// - PSRTYPE is ignored: TCP and UDP over IPv4/IPv6 are split after the L4
///   header, other IP frames after the L3 header, non-IP frames never.
/// - HDR_LEN and SPH are written in every descriptor of a frame (the
///   datasheet defines them in the first only); this format is asked about
///   the first descriptor only.
/// - A frame it does not split still reports HDR_LEN (the header buffer
///   size for non-IP frames), with SPH clear: HDR_LEN is read only with
///   SPH.
/// - Headers longer than the header buffer set both SPH and HBO and the
///   frame is not split (whole in the packet buffer): HBO wins here.
/// - A descriptor with a zero header address is skipped while splitting,
///   even a later descriptor of a frame whose header buffer is never used:
///   the ring keeps a header buffer posted on every descriptor.
pub struct AdvRx;

impl RxFormat for AdvRx {
    #[inline]
    fn buffer_desc(dma: u64) -> Desc {
        // Header address 0: no header split; its bit 0 overlaps DD and must
        // be 0 so a stale DD is never seen.
        Desc { lo: dma, hi: 0 }
    }
    const HEADER_SPLIT: bool = true;
    #[inline]
    fn split_desc(pkt: u64, hdr: u64) -> Desc {
        // Header buffers are 64-byte aligned pool buffers plus a headroom
        // that is a multiple of 64, so bit 0 (DD's place) is clear.
        Desc { lo: pkt, hi: hdr }
    }
    /// HDR_LEN with SPH (and no HBO) on a frame's first descriptor: the
    /// header buffer holds the headers; otherwise nothing is in it (an
    /// unsplit frame is whole in the packet buffer, DESCTYPE 010b). Later
    /// descriptors' HDR_LEN/SPH are not looked at (see the type's notes).
    #[inline]
    fn split_lens(lo: u64, hi: u64, _q2: u64, first: bool) -> Option<SplitLens> {
        let split = first && lo & RXDADV_SPH != 0 && hi & RXDADV_ERR_HBO == 0;
        Some(SplitLens {
            header: if split {
                ((lo >> RXDADV_HDRBUFLEN_SHIFT) & RXDADV_HDRBUFLEN_MASK) as u16
            } else {
                0
            },
            split,
            payload: Self::len(hi),
        })
    }
    #[inline]
    fn done(hi: u64) -> bool {
        hi & RXD_STAT_DD != 0
    }
    #[inline]
    fn eop(hi: u64) -> bool {
        hi & RXD_STAT_EOP != 0
    }
    #[inline]
    fn len(hi: u64) -> u16 {
        (hi >> 32) as u16
    }
    #[inline]
    fn meta(lo: u64, hi: u64) -> Option<RxMeta> {
        let staterr = hi as u32;
        if staterr & RXDEXT_STATERR_RXE != 0 {
            return None;
        }
        let checked = RXD_STAT_VP | RXD_STAT_UDPCS | RXD_STAT_TCPCS | RXD_STAT_IPCS;
        if staterr & checked == 0 && lo & (RXDADV_RSSTYPE_MASK | RXDADV_PKTTYPE_ETQF) == 0 {
            // No hash, no tag, no checksum checked (those offloads off, or
            // a frame they do not apply to), no EtherType filter match:
            // nothing to report.
            return Some(RxMeta::default());
        }
        // Each flag from its status bit without a branch: a checked
        // checksum's GOOD flag moves one place up (to BAD) when its error
        // bit is set.
        let bit = |n: u32| ((staterr >> n) & 1) as u16;
        let rss = u16::from(lo & RXDADV_RSSTYPE_MASK != 0);
        let etqf = u16::from(lo & RXDADV_PKTTYPE_ETQF != 0);
        let vp = bit(RXD_STAT_VP.trailing_zeros());
        let ipcs = bit(RXD_STAT_IPCS.trailing_zeros());
        let ipe = bit(RXDEXT_STATERR_IPE.trailing_zeros());
        let l4cs = bit(RXD_STAT_TCPCS.trailing_zeros()) | bit(RXD_STAT_UDPCS.trailing_zeros());
        let l4e = bit(RXDEXT_STATERR_TCPE.trailing_zeros());
        const _: () = assert!(RxFlags::IP_CKSUM_BAD.0 == RxFlags::IP_CKSUM_GOOD.0 << 1);
        const _: () = assert!(RxFlags::L4_CKSUM_BAD.0 == RxFlags::L4_CKSUM_GOOD.0 << 1);
        let f = (rss * RxFlags::RSS_HASH.0)
            | (etqf * RxFlags::FLOW_MATCH.0)
            | (vp * RxFlags::VLAN_STRIPPED.0)
            | ((ipcs * RxFlags::IP_CKSUM_GOOD.0) << ipe)
            | ((l4cs * RxFlags::L4_CKSUM_GOOD.0) << l4e);
        Some(RxMeta {
            rss_hash: ((lo >> 32) as u32) & 0u32.wrapping_sub(u32::from(rss)),
            vlan_tci: ((hi >> 48) as u16) & 0u16.wrapping_sub(vp),
            flags: RxFlags(f),
        })
    }
}

// Transmit: cmd_type_len (low dword of `hi`) and olinfo_status (high dword).
pub const ADVTXD_DTYP_CTXT: u32 = 0x0020_0000;
pub const ADVTXD_DTYP_DATA: u32 = 0x0030_0000;
pub const ADVTXD_DCMD_EOP: u32 = 0x0100_0000;
pub const ADVTXD_DCMD_IFCS: u32 = 0x0200_0000;
pub const ADVTXD_DCMD_RS: u32 = 0x0800_0000;
pub const ADVTXD_DCMD_DEXT: u32 = 0x2000_0000;
pub const ADVTXD_DCMD_VLE: u32 = 0x4000_0000;
pub const ADVTXD_DCMD_TSE: u32 = 0x8000_0000;
pub const ADVTXD_STAT_DD: u32 = 1 << 0;
pub const ADVTXD_IDX_SHIFT: u32 = 4;
pub const ADVTXD_POPTS_IXSM: u32 = 0x100;
pub const ADVTXD_POPTS_TXSM: u32 = 0x200;
pub const ADVTXD_PAYLEN_SHIFT: u32 = 14;
pub const ADVTXD_MACLEN_SHIFT: u32 = 9;
pub const ADVTXD_VLAN_SHIFT: u32 = 16;
pub const ADVTXD_TUCMD_IPV4: u32 = 0x0000_0400;
pub const ADVTXD_TUCMD_L4T_UDP: u32 = 0x0000_0000;
pub const ADVTXD_TUCMD_L4T_TCP: u32 = 0x0000_0800;
pub const ADVTXD_L4LEN_SHIFT: u32 = 8;
pub const ADVTXD_MSS_SHIFT: u32 = 16;

/// Largest TSO MSS and header length the 82576 takes (datasheet 7.2.4).
pub const TSO_MAX_MSS: u16 = 9216;
pub const TSO_MAX_HDR: usize = 512;

/// The fields of an advanced context descriptor (without the slot index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvCtx {
    vlan_macip_lens: u32,
    type_tucmd_mlhl: u32,
    mss_l4len: u32,
}

/// Advanced transmit descriptors.
pub struct AdvTx;

impl TxFormat for AdvTx {
    type Ctx = AdvCtx;
    /// The 82576 keeps two contexts per queue (IDX 0 and 1).
    const CTX_SLOTS: usize = 2;

    fn context(pkt: &Packet) -> Result<Option<AdvCtx>, OffloadError> {
        let o = &pkt.tx;
        let f = o.flags;
        let csum = TxFlags::IP_CKSUM | TxFlags::TCP_CKSUM | TxFlags::UDP_CKSUM | TxFlags::TCP_SEG;
        if !f.intersects(csum | TxFlags::VLAN) {
            return Ok(None);
        }
        let mut vlan_macip_lens = 0;
        let mut type_tucmd_mlhl = ADVTXD_DTYP_CTXT | ADVTXD_DCMD_DEXT;
        let mut mss_l4len = 0;
        if f.contains(TxFlags::VLAN) {
            vlan_macip_lens |= u32::from(o.vlan_tci) << ADVTXD_VLAN_SHIFT;
        }
        if f.intersects(csum) {
            vlan_macip_lens |= u32::from(o.l3_len) | (u32::from(o.l2_len) << ADVTXD_MACLEN_SHIFT);
            if f.contains(TxFlags::IPV4) {
                type_tucmd_mlhl |= ADVTXD_TUCMD_IPV4;
            }
            if f.intersects(TxFlags::TCP_CKSUM | TxFlags::TCP_SEG) {
                type_tucmd_mlhl |= ADVTXD_TUCMD_L4T_TCP;
            } else {
                type_tucmd_mlhl |= ADVTXD_TUCMD_L4T_UDP;
            }
        }
        if f.contains(TxFlags::TCP_SEG) {
            offload::tso_header_len(o, TSO_MAX_MSS, TSO_MAX_HDR)?;
            mss_l4len = (u32::from(o.l4_len) << ADVTXD_L4LEN_SHIFT)
                | (u32::from(o.mss) << ADVTXD_MSS_SHIFT);
        }
        Ok(Some(AdvCtx {
            vlan_macip_lens,
            type_tucmd_mlhl,
            mss_l4len,
        }))
    }

    fn context_desc(ctx: &AdvCtx, slot: u8) -> Desc {
        let mss_l4len_idx = ctx.mss_l4len | (u32::from(slot) << ADVTXD_IDX_SHIFT);
        Desc {
            // seqnum_seed (high dword of lo) is 0.
            lo: u64::from(ctx.vlan_macip_lens),
            hi: u64::from(ctx.type_tucmd_mlhl) | (u64::from(mss_l4len_idx) << 32),
        }
    }

    #[inline]
    fn data_desc(addr: u64, len: u16, pkt: &TxPacketInfo, first: bool, last: bool) -> Desc {
        let f = pkt.flags;
        let mut cmd = u32::from(len) | ADVTXD_DTYP_DATA | ADVTXD_DCMD_DEXT | ADVTXD_DCMD_IFCS;
        if last {
            cmd |= ADVTXD_DCMD_EOP;
        }
        if f.contains(TxFlags::VLAN) {
            cmd |= ADVTXD_DCMD_VLE;
        }
        let tso = f.contains(TxFlags::TCP_SEG);
        if tso {
            cmd |= ADVTXD_DCMD_TSE;
        }
        // The device takes PAYLEN, POPTS and IDX from the first descriptor.
        let mut olinfo = 0;
        if first {
            let paylen = if tso {
                pkt.len - pkt.tso_hdr_len
            } else {
                pkt.len
            };
            olinfo = paylen << ADVTXD_PAYLEN_SHIFT;
            if let Some(slot) = pkt.ctx_slot {
                olinfo |= u32::from(slot) << ADVTXD_IDX_SHIFT;
            }
            if f.contains(TxFlags::IP_CKSUM) || (tso && f.contains(TxFlags::IPV4)) {
                olinfo |= ADVTXD_POPTS_IXSM;
            }
            if f.intersects(TxFlags::TCP_CKSUM | TxFlags::UDP_CKSUM | TxFlags::TCP_SEG) {
                olinfo |= ADVTXD_POPTS_TXSM;
            }
        }
        Desc {
            lo: addr,
            hi: u64::from(cmd) | (u64::from(olinfo) << 32),
        }
    }

    #[inline]
    fn set_rs(d: &mut Desc) {
        d.hi |= u64::from(ADVTXD_DCMD_RS);
    }

    #[inline]
    fn done(hi: u64) -> bool {
        (hi >> 32) as u32 & ADVTXD_STAT_DD != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_writeback_fields_decode() {
        // DD|EOP|VP|IPCS|TCPCS, TCPE set; length 1514; VLAN 0x2005.
        let staterr = 1 | 2 | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 29);
        let hi = staterr as u64 | (1514u64 << 32) | (0x2005u64 << 48);
        let lo = 1u64 | (0xdead_beefu64 << 32); // RSS type TCPv4
        assert!(AdvRx::done(hi) && AdvRx::eop(hi));
        assert_eq!(AdvRx::len(hi), 1514);
        assert!(!AdvRx::done(AdvRx::buffer_desc(0x1000).hi));

        let pool = pool::Pool::with_host_memory(&pool::PoolConfig::new("desc-test", 4)).unwrap();
        let mut pkt = Packet::new(pool.alloc().unwrap(), 0, 60).unwrap();
        assert!(AdvRx::fill(lo, hi, &mut pkt));
        assert_eq!(pkt.rss_hash, 0xdead_beef);
        assert_eq!(pkt.vlan_tci, 0x2005);
        let want = RxFlags::RSS_HASH
            | RxFlags::VLAN_STRIPPED
            | RxFlags::IP_CKSUM_GOOD
            | RxFlags::L4_CKSUM_BAD;
        assert_eq!(pkt.rx_flags, want);
        // RXE: the ring drops the frame.
        assert!(!AdvRx::fill(lo, hi | (1 << 31), &mut pkt));
        // An EtherType filter match (ETQF 2), not hashed.
        let etqf = RXDADV_PKTTYPE_ETQF | (2 << 4);
        assert!(AdvRx::fill(etqf, hi, &mut pkt));
        assert!(pkt.rx_flags.contains(RxFlags::FLOW_MATCH));
        assert!(!pkt.rx_flags.contains(RxFlags::RSS_HASH));
    }

    #[test]
    fn rx_flags_match_the_status_bits_in_every_combination() {
        // The status and error bits `fill` reads, each on or off, with and
        // without an RSS type: the flags as the datasheet defines them.
        let bits = [3u32, 4, 5, 6, 29, 30];
        let pool = pool::Pool::with_host_memory(&pool::PoolConfig::new("flags-test", 4)).unwrap();
        for combo in 0..(1u32 << bits.len()) {
            for rss_type in [0u64, 1] {
                let staterr = bits
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| combo & (1 << k) != 0)
                    .fold(1 | 2, |s, (_, b)| s | (1u32 << b));
                let hi = u64::from(staterr) | (60u64 << 32) | (0x0123u64 << 48);
                let lo = rss_type | (0x5555_aaaau64 << 32);
                let mut want = RxFlags::default();
                if rss_type != 0 {
                    want.insert(RxFlags::RSS_HASH);
                }
                if staterr & RXD_STAT_VP != 0 {
                    want.insert(RxFlags::VLAN_STRIPPED);
                }
                if staterr & RXD_STAT_IPCS != 0 {
                    want.insert(if staterr & RXDEXT_STATERR_IPE != 0 {
                        RxFlags::IP_CKSUM_BAD
                    } else {
                        RxFlags::IP_CKSUM_GOOD
                    });
                }
                if staterr & (RXD_STAT_TCPCS | RXD_STAT_UDPCS) != 0 {
                    want.insert(if staterr & RXDEXT_STATERR_TCPE != 0 {
                        RxFlags::L4_CKSUM_BAD
                    } else {
                        RxFlags::L4_CKSUM_GOOD
                    });
                }
                let mut pkt = Packet::new(pool.alloc().unwrap(), 0, 60).unwrap();
                assert!(AdvRx::fill(lo, hi, &mut pkt));
                assert_eq!(pkt.rx_flags, want, "staterr {staterr:#x} rss {rss_type}");
                let hash = if rss_type != 0 { 0x5555_aaaa } else { 0 };
                assert_eq!(pkt.rss_hash, hash);
                let tag = if staterr & RXD_STAT_VP != 0 {
                    0x0123
                } else {
                    0
                };
                assert_eq!(pkt.vlan_tci, tag);
            }
        }
    }

    #[test]
    fn tx_data_descriptor_layout() {
        let info = TxPacketInfo {
            flags: TxFlags::IPV4 | TxFlags::TCP_SEG | TxFlags::VLAN,
            len: 9000,
            tso_hdr_len: 54,
            ctx_slot: Some(1),
            vlan_tci: 0,
        };
        let mut d = AdvTx::data_desc(0xabc0, 2048, &info, true, false);
        assert_eq!(d.lo, 0xabc0);
        let cmd = d.hi as u32;
        assert_eq!(cmd & 0xFFFF, 2048);
        assert_eq!(cmd & ADVTXD_DTYP_DATA, ADVTXD_DTYP_DATA);
        assert!(cmd & ADVTXD_DCMD_TSE != 0 && cmd & ADVTXD_DCMD_VLE != 0);
        assert!(cmd & ADVTXD_DCMD_EOP == 0 && cmd & ADVTXD_DCMD_RS == 0);
        let olinfo = (d.hi >> 32) as u32;
        assert_eq!(olinfo >> ADVTXD_PAYLEN_SHIFT, 9000 - 54);
        assert_eq!((olinfo >> ADVTXD_IDX_SHIFT) & 7, 1);
        assert!(olinfo & ADVTXD_POPTS_TXSM != 0 && olinfo & ADVTXD_POPTS_IXSM != 0);
        AdvTx::set_rs(&mut d);
        assert!(d.hi as u32 & ADVTXD_DCMD_RS != 0);
        assert!(!AdvTx::done(d.hi));
        assert!(AdvTx::done(1u64 << 32));
        let later = AdvTx::data_desc(0, 100, &info, false, true);
        assert_eq!((later.hi >> 32) as u32, 0);
    }
}
