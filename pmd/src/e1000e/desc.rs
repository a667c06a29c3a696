//! 82574L descriptor formats for the shared rings.
//!
//! Receive: extended descriptors (RFCTL.EXTEN, datasheet 7.1.5.2). The read
//! format is `{buffer address, 0}`; the write-back puts MRQ (RSS type in
//! bits 3:0) and the RSS hash (with RXCSUM.PCSD) in the low quadword and
//! the extended status/error dword, length and VLAN tag in the high one:
//! every field the ring reads sits where the 82576's advanced write-back
//! has it, with the same bit meanings. So the receive format *is* the igb
//! one ([`ExtRx`] names it); the tests below pin the 82574L layout so a
//! change there that does not fit this device fails here.
//!
//! Receive with header split: packet-split descriptors (RCTL.DTYP 01b,
//! [`PsRx`]), 32 bytes each.
//!
//! Transmit: the TCP/IP context descriptor and the extended data
//! descriptor (datasheet 7.2.10.2/7.2.10.3); one context per queue.

use crate::offload::{self, OffloadError};
use crate::packet::{Packet, TxFlags};
use crate::ring::{Desc, WIDE_DESC_LEN};
use crate::rx::{RxFormat, RxMeta, SplitLens};
use crate::tx::{TxFormat, TxPacketInfo};

/// Extended receive descriptors (see the module comment).
pub type ExtRx = crate::igb::desc::AdvRx;

/// Packet-split write-back, quadword 2: header status (bits 15:0), then
/// the lengths of buffers 1, 2 and 3 (bits 31:16, 47:32, 63:48).
/// HDRSP (header status bit 15): the device split the frame, buffer 0
/// holds its headers.
pub const RXDPS_HDRSTAT_HDRSP: u64 = 1 << 15;
/// HDR_LEN (header status bits 9:0): the header length.
pub const RXDPS_HDRSTAT_HDRLEN_MASK: u64 = 0x3FF;
/// Read format: the address of an unused buffer (2 and 3 here), as Linux's
/// e1000e writes it ("hw null ptr").
pub const PS_NULL_BUFFER: u64 = !0;

/// 82574L packet-split receive descriptors (RCTL.DTYP 01b; 82574 datasheet
/// 7.1.5, packet split receive descriptor), 32 bytes:
/// - read format: four buffer addresses. Buffer 0 is the header buffer
///   (PSRCTL.BSIZE0, a page of the header pool), buffer 1 the payload
///   buffer (BSIZE1, a net_iov chunk or page); buffers 2 and 3 are unused
///   (BSIZE2/3 0, addresses [`PS_NULL_BUFFER`]), so a descriptor holds
///   one payload buffer, as the shared ring has one per slot.
/// - write-back: quadword 0 MRQ and RSS hash (as the extended format),
///   quadword 1 the extended status/errors, length 0 (bytes in buffer 0)
///   and VLAN tag, exactly where the extended format has status, length and
///   tag, so DD, EOP and the metadata are read as [`ExtRx`] reads them;
///   quadword 2 header status (HDRSP, HDR_LEN) and lengths 1..3;
///   quadword 3 reserved.
///
/// What lands where: a split frame has its headers in buffer 0 and the
/// rest in buffer 1 (later descriptors of a frame leave buffer 0 empty). A
/// frame the device does not split (not IP, or headers longer than
/// BSIZE0) is written from its start into buffer 0, up to BSIZE0 bytes,
/// then into buffer 1 (Linux's e1000e: "In the case of a non-split,
/// skb->data is linearly filled, followed by the page buffers"): the ring
/// reports those bytes as the head segment without
/// [`crate::RxFlags::HEADER_SPLIT`]. Unlike the 82576's DESCTYPE 010b,
/// the 82574 has no mode that keeps an unsplit frame out of the header
/// buffer, so such a frame's first bytes are CPU-readable.
///
/// QEMU's e1000e (hw/net/e1000e_core.c), where it differs:
/// - it packet-splits only with RFCTL.EXTEN set as well;
/// - it splits TCP/UDP over IPv4/IPv6 after the L4 header and other IP
///   frames after the L3 header (fragments unless RFCTL.IPFRSP_DIS);
///   a header longer than BSIZE0 is not split;
/// - it writes HDR_LEN/HDRSP into every descriptor of a frame (length 0
///   is 0 on the later ones, which is what is read here);
/// - it fills a descriptor's buffers up to BSIZE0 + BSIZE1 bytes, and a
///   split frame's payload beyond BSIZE1 runs into the unused buffers,
///   where it stops on an assertion (the whole emulator). The driver
///   therefore sizes BSIZE1 for a whole frame (see
///   [`crate::e1000e::psrctl_value`]), as Linux's e1000e does;
/// - it skips a descriptor whose buffer 0 address is 0: every descriptor
///   keeps a header buffer posted, as the ring does anyway.
pub struct PsRx;

impl PsRx {
    /// Length 0, 1, 2, 3 and the header status of a write-back.
    fn lengths(hi: u64, q2: u64) -> ([u16; 4], u64) {
        (
            [
                (hi >> 32) as u16,
                (q2 >> 16) as u16,
                (q2 >> 32) as u16,
                (q2 >> 48) as u16,
            ],
            q2 & 0xFFFF,
        )
    }
}

impl RxFormat for PsRx {
    /// Never used: the format exists only with header split.
    #[inline]
    fn buffer_desc(dma: u64) -> Desc {
        Self::split_desc(dma, 0)
    }
    const HEADER_SPLIT: bool = true;
    const SPLIT_ONLY: bool = true;
    const DESC_LEN: usize = WIDE_DESC_LEN;
    /// Buffer 0 (quadword 0) the header buffer, buffer 1 (quadword 1) the
    /// payload buffer. DD is bit 0 of quadword 1 once written back: the
    /// payload buffer's address is even (pool buffers are 64-byte aligned,
    /// headroom a multiple of 64), so a stale DD is never seen.
    #[inline]
    fn split_desc(pkt: u64, hdr: u64) -> Desc {
        Desc { lo: hdr, hi: pkt }
    }
    #[inline]
    fn split_desc_upper() -> Desc {
        Desc {
            lo: PS_NULL_BUFFER,
            hi: PS_NULL_BUFFER,
        }
    }
    /// Length 0 is what buffer 0 holds, length 1 what buffer 1 holds;
    /// HDRSP says whether that is a split header. Bytes in buffers 2 or 3,
    /// which are never posted, are a write-back the device cannot have
    /// written.
    #[inline]
    fn split_lens(_lo: u64, hi: u64, q2: u64, _first: bool) -> Option<SplitLens> {
        let ([l0, l1, l2, l3], status) = Self::lengths(hi, q2);
        if l2 != 0 || l3 != 0 {
            return None;
        }
        Some(SplitLens {
            header: l0,
            split: status & RXDPS_HDRSTAT_HDRSP != 0,
            payload: l1,
        })
    }
    #[inline]
    fn done(hi: u64) -> bool {
        ExtRx::done(hi)
    }
    #[inline]
    fn eop(hi: u64) -> bool {
        ExtRx::eop(hi)
    }
    /// Length 0 (the header buffer's bytes); the ring reads a split
    /// format's lengths through [`RxFormat::split_lens`].
    #[inline]
    fn len(hi: u64) -> u16 {
        ExtRx::len(hi)
    }
    #[inline]
    fn meta(lo: u64, hi: u64) -> Option<RxMeta> {
        ExtRx::meta(lo, hi)
    }
}

// Transmit: the low dword of `hi` is cmd_and_length (context) or
// DTALEN/DTYP/DCMD (data); its high dword is the status, POPTS and VLAN
// (data) or status, HDRLEN and MSS (context).
/// DTYP of a data descriptor (bits 23:20 = 0001b); a context is 0000b.
pub const TXD_DTYP_D: u32 = 0x0010_0000;
pub const TXD_CMD_EOP: u32 = 0x0100_0000;
pub const TXD_CMD_IFCS: u32 = 0x0200_0000;
pub const TXD_CMD_TSE: u32 = 0x0400_0000;
pub const TXD_CMD_RS: u32 = 0x0800_0000;
pub const TXD_CMD_DEXT: u32 = 0x2000_0000;
pub const TXD_CMD_VLE: u32 = 0x4000_0000;
/// Context TUCMD: the L4 protocol is TCP (else UDP).
pub const TXD_CMD_TCP: u32 = 0x0100_0000;
/// Context TUCMD: the L3 protocol is IPv4 (else IPv6).
pub const TXD_CMD_IP: u32 = 0x0200_0000;
/// Status DD in the high dword.
pub const TXD_STAT_DD: u32 = 1 << 0;
/// POPTS (bits 15:8 of the data descriptor's high dword).
pub const TXD_POPTS_IXSM: u32 = 0x01 << 8;
pub const TXD_POPTS_TXSM: u32 = 0x02 << 8;
pub const TXD_VLAN_SHIFT: u32 = 16;
/// PAYLEN / DTALEN field width.
pub const TXD_LEN_MASK: u32 = 0xF_FFFF;

/// TSO limits: MSS and header length as the context descriptor's fields
/// can hold them (HDRLEN is 8 bits) and the 82574L's 9 KB jumbo frame.
pub const TSO_MAX_MSS: u16 = 9216;
pub const TSO_MAX_HDR: usize = 255;

/// The fields of a TCP/IP context descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpIpCtx {
    /// IPCSS, IPCSO, IPCSE, TUCSS, TUCSO, TUCSE (low quadword).
    offsets: u64,
    /// PAYLEN and TUCMD (DTYP 0000b).
    cmd_and_length: u32,
    hdr_len: u8,
    mss: u16,
}

/// Context and extended data transmit descriptors.
pub struct CtxTx;

impl TxFormat for CtxTx {
    type Ctx = TcpIpCtx;
    /// The 82574L keeps one context per queue.
    const CTX_SLOTS: usize = 1;

    fn context(pkt: &Packet) -> Result<Option<TcpIpCtx>, OffloadError> {
        let o = &pkt.tx;
        let f = o.flags;
        let l4 = TxFlags::TCP_CKSUM | TxFlags::UDP_CKSUM | TxFlags::TCP_SEG;
        if !f.intersects(l4 | TxFlags::IP_CKSUM) {
            return Ok(None);
        }
        let l2 = u64::from(o.l2_len);
        let l3_end = l2 + u64::from(o.l3_len);
        let ipv4 = f.contains(TxFlags::IPV4);
        let tcp = f.intersects(TxFlags::TCP_CKSUM | TxFlags::TCP_SEG);
        let mut offsets = 0u64;
        if ipv4 {
            // IPCSS, IPCSO (the header checksum field), IPCSE (inclusive).
            offsets |= l2 | ((l2 + 10) << 8) | ((l3_end - 1) << 16);
        } else {
            offsets |= l2;
        }
        if f.intersects(l4) {
            let field = if tcp { 16 } else { 6 };
            // TUCSS, TUCSO; TUCSE 0 = to the end of the packet.
            offsets |= (l3_end << 32) | ((l3_end + field) << 40);
        }
        let mut cmd_and_length = TXD_CMD_DEXT;
        if ipv4 {
            cmd_and_length |= TXD_CMD_IP;
        }
        if tcp {
            cmd_and_length |= TXD_CMD_TCP;
        }
        let (mut hdr_len, mut mss) = (0u8, 0u16);
        if f.contains(TxFlags::TCP_SEG) {
            let hdr = offload::tso_header_len(o, TSO_MAX_MSS, TSO_MAX_HDR)?;
            let payload = pkt.len().checked_sub(hdr).ok_or(OffloadError::BadHeaders)?;
            let paylen =
                u32::try_from(payload).map_err(|_| OffloadError::BadHeaders)? & TXD_LEN_MASK;
            cmd_and_length |= TXD_CMD_TSE | paylen;
            hdr_len = hdr as u8;
            mss = o.mss;
        }
        Ok(Some(TcpIpCtx {
            offsets,
            cmd_and_length,
            hdr_len,
            mss,
        }))
    }

    fn context_desc(ctx: &TcpIpCtx, _slot: u8) -> Desc {
        Desc {
            lo: ctx.offsets,
            hi: u64::from(ctx.cmd_and_length)
                | (u64::from(ctx.hdr_len) << 40)
                | (u64::from(ctx.mss) << 48),
        }
    }

    #[inline]
    fn data_desc(addr: u64, len: u16, pkt: &TxPacketInfo, first: bool, last: bool) -> Desc {
        let f = pkt.flags;
        let mut cmd = u32::from(len) | TXD_DTYP_D | TXD_CMD_DEXT | TXD_CMD_IFCS;
        if last {
            cmd |= TXD_CMD_EOP;
        }
        let tso = f.contains(TxFlags::TCP_SEG);
        if tso {
            cmd |= TXD_CMD_TSE;
        }
        let mut upper = 0u32;
        // The datasheet has the device take POPTS from a packet's first
        // descriptor; QEMU's e1000e takes it from each one (the last wins),
        // so every descriptor of the packet carries it.
        let _ = first;
        if f.contains(TxFlags::IP_CKSUM) || (tso && f.contains(TxFlags::IPV4)) {
            upper |= TXD_POPTS_IXSM;
        }
        if f.intersects(TxFlags::TCP_CKSUM | TxFlags::UDP_CKSUM | TxFlags::TCP_SEG) {
            upper |= TXD_POPTS_TXSM;
        }
        if f.contains(TxFlags::VLAN) {
            cmd |= TXD_CMD_VLE;
            upper |= u32::from(pkt.vlan_tci) << TXD_VLAN_SHIFT;
        }
        Desc {
            lo: addr,
            hi: u64::from(cmd) | (u64::from(upper) << 32),
        }
    }

    #[inline]
    fn set_rs(d: &mut Desc) {
        d.hi |= u64::from(TXD_CMD_RS);
    }

    #[inline]
    fn done(hi: u64) -> bool {
        (hi >> 32) as u32 & TXD_STAT_DD != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::RxFlags;

    /// An 82574L extended write-back as the datasheet lays it out.
    fn ext_writeback(mrq: u32, rss: u32, staterr: u32, len: u16, vlan: u16) -> (u64, u64) {
        (
            u64::from(mrq) | (u64::from(rss) << 32),
            u64::from(staterr) | (u64::from(len) << 32) | (u64::from(vlan) << 48),
        )
    }

    fn host_packet(len: usize) -> Packet {
        let cfg = pool::PoolConfig::new("desc-test", 8).with_buf_size(2048);
        let pool = pool::Pool::with_host_memory(&cfg).expect("host pool");
        Packet::from_bytes(&pool, &vec![0u8; len]).expect("packet")
    }

    #[test]
    fn packet_split_read_format_is_header_payload_and_two_null_buffers() {
        let d = PsRx::split_desc(0x8000_1000, 0x4000_0100);
        assert_eq!(d.lo, 0x4000_0100, "buffer 0: the header buffer");
        assert_eq!(d.hi, 0x8000_1000, "buffer 1: the payload buffer");
        assert!(!PsRx::done(d.hi));
        let u = PsRx::split_desc_upper();
        assert_eq!((u.lo, u.hi), (!0, !0), "buffers 2 and 3 unused");
        assert_eq!(PsRx::DESC_LEN, 32);
    }

    #[test]
    fn packet_split_writeback_decodes_on_the_82574l_layout() {
        // DD | EOP | TCPCS | IPCS, length 0 = 54 header bytes, VLAN 5;
        // header status HDRSP | HDR_LEN 54, length 1 = 1460.
        let staterr = 1 | 2 | (1 << 5) | (1 << 6);
        let (lo, hi) = ext_writeback(0, 0, staterr, 54, 0);
        let q2 = (1 << 15) | 54 | (1460u64 << 16);
        assert!(PsRx::done(hi) && PsRx::eop(hi));
        assert_eq!(
            PsRx::split_lens(lo, hi, q2, true),
            Some(SplitLens {
                header: 54,
                split: true,
                payload: 1460
            })
        );
        let mut p = host_packet(64);
        assert!(PsRx::fill(lo, hi, &mut p));
        assert_eq!(p.rx_flags, RxFlags::IP_CKSUM_GOOD | RxFlags::L4_CKSUM_GOOD);
        // Not split (HDRSP clear): 256 bytes of the frame's start in
        // buffer 0, the rest in buffer 1.
        let (lo, hi) = ext_writeback(0, 0, 3, 256, 0);
        assert_eq!(
            PsRx::split_lens(lo, hi, 44u64 << 16, true),
            Some(SplitLens {
                header: 256,
                split: false,
                payload: 44
            })
        );
        // Bytes in buffer 2 or 3, never posted: impossible.
        assert_eq!(PsRx::split_lens(lo, hi, 1 << 32, true), None);
        assert_eq!(PsRx::split_lens(lo, hi, 1 << 48, false), None);
        // RXE: the frame is dropped as on the extended format.
        let (lo, hi) = ext_writeback(0, 0, 3 | (1 << 31), 54, 0);
        assert!(!PsRx::fill(lo, hi, &mut host_packet(64)));
    }

    #[test]
    fn extended_rx_read_format_is_address_then_zero() {
        let d = ExtRx::buffer_desc(0x1234_5000);
        assert_eq!(
            d,
            Desc {
                lo: 0x1234_5000,
                hi: 0
            }
        );
        assert!(!ExtRx::done(d.hi));
    }

    #[test]
    fn extended_rx_writeback_decodes_on_the_82574l_layout() {
        // DD | EOP | VP | TCPCS | IPCS, no errors; RSS type 1 (TCP/IPv4),
        // queue 1 in MRQ bits 8+.
        let staterr = 1 | 2 | (1 << 3) | (1 << 5) | (1 << 6);
        let (lo, hi) = ext_writeback(1 | (1 << 8), 0xcafe_f00d, staterr, 1514, 0x0064);
        assert!(ExtRx::done(hi) && ExtRx::eop(hi));
        assert_eq!(ExtRx::len(hi), 1514);
        let mut p = host_packet(64);
        assert!(ExtRx::fill(lo, hi, &mut p));
        assert_eq!(p.rss_hash, 0xcafe_f00d);
        assert_eq!(p.vlan_tci, 0x0064);
        assert_eq!(
            p.rx_flags,
            RxFlags::RSS_HASH
                | RxFlags::VLAN_STRIPPED
                | RxFlags::IP_CKSUM_GOOD
                | RxFlags::L4_CKSUM_GOOD
        );

        // UDP: TCPCS | UDPCS with TCPE (bit 29); IPE (bit 30); no RSS type.
        let staterr = 1 | 2 | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 29) | (1 << 30);
        let (lo, hi) = ext_writeback(0, 0, staterr, 60, 0);
        let mut p = host_packet(64);
        assert!(ExtRx::fill(lo, hi, &mut p));
        assert_eq!(p.rx_flags, RxFlags::IP_CKSUM_BAD | RxFlags::L4_CKSUM_BAD);

        // Not EOP: a middle descriptor of a multi-buffer frame.
        let (_, hi) = ext_writeback(0, 0, 1, 2048, 0);
        assert!(ExtRx::done(hi) && !ExtRx::eop(hi));

        // RXE (bit 31): the ring drops the frame.
        let (lo, hi) = ext_writeback(0, 0, 1 | 2 | (1 << 31), 60, 0);
        assert!(!ExtRx::fill(lo, hi, &mut host_packet(64)));
    }

    fn tcp4_packet(len: usize, flags: TxFlags, mss: u16) -> Packet {
        let mut p = host_packet(len);
        p.tx.flags = flags;
        p.tx.l2_len = 14;
        p.tx.l3_len = 20;
        p.tx.l4_len = 20;
        p.tx.mss = mss;
        p
    }

    #[test]
    fn checksum_context_fields() {
        let p = tcp4_packet(
            200,
            TxFlags::IPV4 | TxFlags::IP_CKSUM | TxFlags::TCP_CKSUM,
            0,
        );
        let c = CtxTx::context(&p).expect("valid").expect("needs a context");
        let d = CtxTx::context_desc(&c, 0);
        // IPCSS 14, IPCSO 24, IPCSE 33, TUCSS 34, TUCSO 50, TUCSE 0.
        assert_eq!(d.lo & 0xFF, 14);
        assert_eq!((d.lo >> 8) & 0xFF, 24);
        assert_eq!((d.lo >> 16) & 0xFFFF, 33);
        assert_eq!((d.lo >> 32) & 0xFF, 34);
        assert_eq!((d.lo >> 40) & 0xFF, 50);
        assert_eq!(d.lo >> 48, 0);
        let cmd = d.hi as u32;
        assert_eq!(cmd & 0x00F0_0000, 0, "DTYP 0000b: context");
        assert_eq!(cmd, TXD_CMD_DEXT | TXD_CMD_IP | TXD_CMD_TCP);
        assert_eq!(d.hi >> 32, 0, "no TSO: HDRLEN and MSS 0");

        // UDP over IPv6: no IP checksum, TUCSO at the UDP checksum.
        let mut p = host_packet(100);
        p.tx.flags = TxFlags::IPV6 | TxFlags::UDP_CKSUM;
        p.tx.l2_len = 18;
        p.tx.l3_len = 40;
        let d = CtxTx::context_desc(&CtxTx::context(&p).unwrap().unwrap(), 0);
        assert_eq!((d.lo >> 8) & 0xFF_FFFF, 0);
        assert_eq!((d.lo >> 32) & 0xFF, 58);
        assert_eq!((d.lo >> 40) & 0xFF, 64);
        assert_eq!(d.hi as u32, TXD_CMD_DEXT);

        // VLAN only: no context.
        let mut p = host_packet(60);
        p.tx.flags = TxFlags::VLAN;
        assert_eq!(CtxTx::context(&p), Ok(None));
    }

    #[test]
    fn tso_context_and_limits() {
        let p = tcp4_packet(9000, TxFlags::IPV4 | TxFlags::TCP_SEG, 1448);
        let d = CtxTx::context_desc(&CtxTx::context(&p).unwrap().unwrap(), 0);
        let cmd = d.hi as u32;
        assert_eq!(cmd & TXD_LEN_MASK, 9000 - 54, "PAYLEN excludes headers");
        assert!(cmd & TXD_CMD_TSE != 0 && cmd & TXD_CMD_TCP != 0 && cmd & TXD_CMD_IP != 0);
        assert_eq!((d.hi >> 40) & 0xFF, 54, "HDRLEN");
        assert_eq!(d.hi >> 48, 1448, "MSS");

        let bad = tcp4_packet(9000, TxFlags::IPV4 | TxFlags::TCP_SEG, 0);
        assert!(matches!(
            CtxTx::context(&bad),
            Err(OffloadError::BadMss { .. })
        ));
        // Headers longer than the packet itself.
        let short = tcp4_packet(40, TxFlags::IPV4 | TxFlags::TCP_SEG, 1000);
        assert_eq!(CtxTx::context(&short), Err(OffloadError::BadHeaders));
        let mut long = tcp4_packet(9000, TxFlags::IPV4 | TxFlags::TCP_SEG, 1000);
        long.tx.l3_len = 240;
        assert!(matches!(
            CtxTx::context(&long),
            Err(OffloadError::HeadersTooLong { .. })
        ));
    }

    #[test]
    fn data_descriptor_layout() {
        let info = TxPacketInfo {
            flags: TxFlags::IPV4 | TxFlags::TCP_SEG | TxFlags::VLAN,
            len: 9000,
            tso_hdr_len: 54,
            ctx_slot: Some(0),
            vlan_tci: 0x2005,
        };
        let mut d = CtxTx::data_desc(0xabc0, 2048, &info, true, false);
        assert_eq!(d.lo, 0xabc0);
        let cmd = d.hi as u32;
        assert_eq!(cmd & TXD_LEN_MASK, 2048);
        assert_eq!(cmd & 0x00F0_0000, TXD_DTYP_D);
        assert!(cmd & TXD_CMD_DEXT != 0 && cmd & TXD_CMD_IFCS != 0);
        assert!(cmd & TXD_CMD_TSE != 0 && cmd & TXD_CMD_VLE != 0);
        assert!(cmd & TXD_CMD_EOP == 0 && cmd & TXD_CMD_RS == 0);
        let upper = (d.hi >> 32) as u32;
        assert_eq!(
            upper & (TXD_POPTS_IXSM | TXD_POPTS_TXSM),
            TXD_POPTS_IXSM | TXD_POPTS_TXSM
        );
        assert_eq!(upper >> TXD_VLAN_SHIFT, 0x2005);
        CtxTx::set_rs(&mut d);
        assert!(d.hi as u32 & TXD_CMD_RS != 0);
        assert!(!CtxTx::done(d.hi));
        assert!(CtxTx::done(u64::from(TXD_STAT_DD) << 32));

        let last = CtxTx::data_desc(0, 100, &info, false, true);
        assert!(last.hi as u32 & TXD_CMD_EOP != 0);
        assert_eq!(
            ((last.hi >> 32) as u32) & 0xFF00,
            TXD_POPTS_IXSM | TXD_POPTS_TXSM,
            "POPTS on every descriptor of the packet"
        );
        let plain = TxPacketInfo {
            flags: TxFlags::IPV4,
            ..info
        };
        assert_eq!(CtxTx::data_desc(0, 60, &plain, true, true).hi >> 32, 0);
    }
}
