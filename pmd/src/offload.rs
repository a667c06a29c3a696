//! Transmit offload preparation shared by both Intel families: the device
//! computes TCP/UDP checksums starting from the value already in the
//! checksum field, so software seeds it with the pseudo-header sum (for TSO
//! without the length, which the device adds per segment), and the IPv4
//! header checksum field is zeroed when the device is asked to fill it.
//! Also a header parser that fills [`TxOffload`] lengths from a frame.
//!
//! Device memory: a packet may carry payload in net_iov segments (a chunk of
//! a device-memory region the CPU must never read). Every CPU path here
//! touches only the first segment, and only when it is a page that holds
//! all the bytes the path needs; otherwise it refuses with a typed error:
//! - [`prepare`] reads and writes the L2+L3+L4 headers of the first segment
//!   (the checksum seed is the pseudo-header, the L4 length comes from the
//!   segments' lengths, never from their bytes). Headers reaching past the
//!   first segment into device memory: [`OffloadError::HeadersInDeviceMemory`].
//! - [`insert_vlan`] moves the first segment's 12 address bytes into its
//!   headroom; the tag needs nothing else of the frame. Addresses not all
//!   in the first page: the same refusal.
//! - There is no software checksum fallback and no linearising copy in the
//!   driver: an offload the device cannot do is refused
//!   ([`crate::tx::TxError`]), never done by the CPU over the payload.
//!   [`checksum`] and [`csum_add`] take byte slices, which only pages give
//!   ([`crate::Segment::data`] is `None` for a net_iov).

use crate::packet::{Packet, TxFlags, TxOffload};

/// Why a packet's offload request cannot be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("offload headers are not in the packet's first, CPU-readable segment")]
    HeadersNotReadable,
    #[error("offload header lengths do not match the frame")]
    BadHeaders,
    #[error("TSO needs an MSS between 1 and {max}, got {mss}")]
    BadMss { mss: u16, max: u16 },
    #[error("offload headers of {len} bytes exceed the device's {max}")]
    HeadersTooLong { len: usize, max: usize },
    #[error(
        "no room for a VLAN tag: the first segment needs 4 bytes of headroom and a full Ethernet header"
    )]
    NoVlanRoom,
    #[error(
        "the CPU would need {need} header bytes but the first segment (a page) holds {head}; the rest is device memory, which the CPU never reads"
    )]
    HeadersInDeviceMemory { need: usize, head: usize },
}

/// The refusal for headers that do not fit the first segment: device
/// memory when a later segment is a net_iov (the CPU would have to read
/// it), else header lengths that do not match the frame.
fn short_headers(pkt: &Packet, need: usize) -> OffloadError {
    if pkt.segments().skip(1).any(|s| s.netmem().is_net_iov()) {
        OffloadError::HeadersInDeviceMemory {
            need,
            head: usize::from(pkt.head().len()),
        }
    } else {
        OffloadError::BadHeaders
    }
}

/// Checks a TSO request against a device's limits; returns the header
/// length (L2+L3+L4) the segments repeat.
pub fn tso_header_len(o: &TxOffload, max_mss: u16, max_hdr: usize) -> Result<usize, OffloadError> {
    if o.mss == 0 || o.mss > max_mss {
        return Err(OffloadError::BadMss {
            mss: o.mss,
            max: max_mss,
        });
    }
    let hdr = usize::from(o.l2_len) + usize::from(o.l3_len) + usize::from(o.l4_len);
    if hdr > max_hdr {
        return Err(OffloadError::HeadersTooLong {
            len: hdr,
            max: max_hdr,
        });
    }
    Ok(hdr)
}

/// Inserts the 802.1Q tag `pkt.tx.vlan_tci` into the frame in software
/// (into the first segment's headroom), clears the VLAN request and grows
/// `l2_len` accordingly.
pub fn insert_vlan(pkt: &mut Packet) -> Result<(), OffloadError> {
    let tci = pkt.tx.vlan_tci;
    // l2_len 0 means "not given"; otherwise it grows by the tag.
    let l2_len = match pkt.tx.l2_len {
        0 => 0,
        n => n.checked_add(4).ok_or(OffloadError::BadHeaders)?,
    };
    if pkt.head().data().is_none() {
        return Err(OffloadError::HeadersNotReadable);
    }
    if pkt.head().len() < 12 {
        return Err(match short_headers(pkt, 12) {
            OffloadError::BadHeaders => OffloadError::NoVlanRoom,
            e => e,
        });
    }
    let head = pkt.head_mut();
    let (off, len) = (head.offset(), head.len());
    if off < 4 {
        return Err(OffloadError::NoVlanRoom);
    }
    if !head.set_window(off - 4, len + 4) {
        return Err(OffloadError::NoVlanRoom);
    }
    let d = head.data_mut().ok_or(OffloadError::HeadersNotReadable)?;
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    d[14..16].copy_from_slice(&tci.to_be_bytes());
    pkt.tx.flags = TxFlags(pkt.tx.flags.0 & !TxFlags::VLAN.0);
    pkt.tx.l2_len = l2_len;
    Ok(())
}

/// One's-complement sum of 16-bit big-endian words (odd byte padded),
/// added to `sum`. Any length: carries out of 32 bits are folded back in
/// (2^32 is 1 in one's-complement 16-bit arithmetic), so nothing overflows.
pub fn csum_add(sum: u32, bytes: &[u8]) -> u32 {
    let mut s = u64::from(sum);
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        s += u64::from(*b) << 8;
    }
    while s > u64::from(u32::MAX) {
        s = (s & u64::from(u32::MAX)) + (s >> 32);
    }
    // The loop left at most 32 bits.
    s as u32
}

/// Folds a 32-bit one's-complement sum to 16 bits.
pub fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum of `bytes` (complemented fold).
pub fn checksum(bytes: &[u8]) -> u16 {
    !csum_fold(csum_add(0, bytes))
}

/// Fills the header lengths and L3 flags of `off` from an Ethernet frame
/// (untagged or one 802.1Q tag; IPv4 with options or IPv6 without extension
/// headers; TCP or UDP). Returns the L4 protocol number.
pub fn parse_headers(frame: &[u8], off: &mut TxOffload) -> Option<u8> {
    let mut l2 = 14usize;
    let mut et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if et == 0x8100 {
        et = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l2 = 18;
    }
    let (l3_len, proto) = match et {
        0x0800 => {
            off.flags.insert(TxFlags::IPV4);
            (usize::from(frame.get(l2)? & 0x0F) * 4, *frame.get(l2 + 9)?)
        }
        0x86DD => {
            off.flags.insert(TxFlags::IPV6);
            (40, *frame.get(l2 + 6)?)
        }
        _ => return None,
    };
    off.l2_len = l2 as u8;
    off.l3_len = l3_len as u16;
    if proto == 6 {
        off.l4_len = (frame.get(l2 + l3_len + 12)? >> 4) * 4;
    } else if proto == 17 {
        off.l4_len = 8;
    }
    Some(proto)
}

/// Seeds checksum fields for the offloads `pkt.tx` requests. Returns the
/// total header length (L2+L3+L4) for TSO, else 0.
pub fn prepare(pkt: &mut Packet) -> Result<usize, OffloadError> {
    let off = pkt.tx;
    let l4_csum = off
        .flags
        .intersects(TxFlags::TCP_CKSUM | TxFlags::UDP_CKSUM | TxFlags::TCP_SEG);
    if !l4_csum && !off.flags.contains(TxFlags::IP_CKSUM) {
        return Ok(0);
    }
    let total = pkt.len();
    let l2 = usize::from(off.l2_len);
    let l3 = usize::from(off.l3_len);
    let l4 = usize::from(off.l4_len);
    let tso = off.flags.contains(TxFlags::TCP_SEG);
    let udp = off.flags.contains(TxFlags::UDP_CKSUM) && !tso;
    let hdr_end = l2
        + l3
        + if udp {
            8
        } else if l4_csum {
            l4.max(20)
        } else {
            0
        };
    if pkt.head().data().is_none() {
        return Err(OffloadError::HeadersNotReadable);
    }
    // Checked before any byte is touched: the headers are the first
    // segment's, and nothing past it is read.
    if usize::from(pkt.head().len()) < hdr_end {
        return Err(short_headers(pkt, hdr_end));
    }
    let data = pkt.data_mut().ok_or(OffloadError::HeadersNotReadable)?;
    let ipv4 = off.flags.contains(TxFlags::IPV4);
    if ipv4 && (l3 < 20 || data[l2] >> 4 != 4) {
        return Err(OffloadError::BadHeaders);
    }
    if !ipv4 && (l3 < 40 || data[l2] >> 4 != 6) {
        return Err(OffloadError::BadHeaders);
    }
    if ipv4 && (off.flags.contains(TxFlags::IP_CKSUM) || tso) {
        data[l2 + 10] = 0;
        data[l2 + 11] = 0;
    }
    if !l4_csum {
        return Ok(0);
    }
    let l4_total = total - l2 - l3;
    let proto = if udp { 17u32 } else { 6u32 };
    let mut sum = if ipv4 {
        csum_add(0, &data[l2 + 12..l2 + 20])
    } else {
        csum_add(0, &data[l2 + 8..l2 + 40])
    };
    sum += proto;
    if !tso {
        sum += l4_total as u32;
    }
    let field = l2 + l3 + if udp { 6 } else { 16 };
    // The seed is the folded, not complemented, pseudo-header sum.
    let seed = csum_fold(sum);
    data[field..field + 2].copy_from_slice(&seed.to_be_bytes());
    Ok(if tso { l2 + l3 + l4 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_ipv4_header() {
        // Example header from RFC 1071 discussions: checksum 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn checksum_of_any_length_does_not_overflow() {
        // 2^17 words of 0xFFFF would overflow a 32-bit running sum; their
        // one's-complement sum is 0xFFFF (negative zero), checksum 0.
        let ones = vec![0xFFu8; 1 << 18];
        assert_eq!(checksum(&ones), 0);
        // 0x0001 repeated 2^17 times: 2^17 mod 0xFFFF = 2.
        let words: Vec<u8> = (0..1 << 17).flat_map(|_| [0u8, 1]).collect();
        assert_eq!(csum_fold(csum_add(0, &words)), 2);
        assert_eq!(csum_fold(csum_add(u32::MAX, &[0xFF, 0xFF])), 0xFFFF);
    }

    #[test]
    fn software_vlan_insertion_uses_the_headroom() {
        let cfg = pool::PoolConfig::new("vlan-test", 2).with_buf_size(512);
        let pool = pool::Pool::with_host_memory(&cfg).expect("host pool");
        let frame: Vec<u8> = (0..60u8).collect();
        let mut p = Packet::from_bytes(&pool, &frame).expect("packet");
        p.tx.flags = TxFlags::VLAN | TxFlags::IPV4;
        p.tx.vlan_tci = 0x2064;
        p.tx.l2_len = 14;
        insert_vlan(&mut p).expect("room in the headroom");
        let d = p.to_vec().expect("readable");
        assert_eq!(d.len(), 64);
        assert_eq!(&d[..12], &frame[..12]);
        assert_eq!(&d[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&d[16..], &frame[12..]);
        assert_eq!(p.tx.flags, TxFlags::IPV4);
        assert_eq!(p.tx.l2_len, 18);

        // Without headroom it refuses rather than sending untagged.
        let buf = pool.alloc().expect("buffer");
        let mut p = Packet::new(buf, 0, 60).expect("packet");
        p.tx.flags = TxFlags::VLAN;
        assert_eq!(insert_vlan(&mut p), Err(OffloadError::NoVlanRoom));

        // An L2 length that cannot grow by the tag is refused, frame untouched.
        drop(p);
        let mut p = Packet::from_bytes(&pool, &frame).expect("packet");
        p.tx.flags = TxFlags::VLAN;
        p.tx.l2_len = 253;
        assert_eq!(insert_vlan(&mut p), Err(OffloadError::BadHeaders));
        assert_eq!(p.to_vec().expect("readable"), frame);
    }

    #[test]
    fn parses_tagged_ipv4_tcp_headers() {
        let mut f = vec![0u8; 18 + 24 + 32];
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[16..18].copy_from_slice(&[0x08, 0x00]);
        f[18] = 0x46; // IHL 6 (options)
        f[18 + 9] = 6;
        f[18 + 24 + 12] = 8 << 4; // data offset 8 words
        let mut off = TxOffload::default();
        assert_eq!(parse_headers(&f, &mut off), Some(6));
        assert_eq!((off.l2_len, off.l3_len, off.l4_len), (18, 24, 32));
        assert!(off.flags.contains(TxFlags::IPV4));
    }
}
