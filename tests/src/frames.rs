//! A small Ethernet frame builder and parser for the end-to-end tests:
//! Ethernet (optionally 802.1Q tagged), IPv4 or IPv6, UDP or TCP, with
//! correct checksums (or a deliberately broken one), padded to a total
//! length. Also the parsing a test needs to check what a NIC sent (TSO
//! segments, inserted tags, offloaded checksums).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethernet types.
pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86DD;
pub const ETH_VLAN: u16 = 0x8100;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Addresses of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// L4 protocol of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Udp,
    Tcp,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub vlan: Option<u16>,
    pub ip: Ip,
    pub l4: L4,
    pub sport: u16,
    pub dport: u16,
    /// Total frame length without FCS (payload sized to reach it; at least
    /// the headers).
    pub len: usize,
    /// Payload seed (bytes are a function of it and their offset).
    pub seed: u8,
    /// TCP sequence number.
    pub seq: u32,
    /// Break the IPv4 header checksum.
    pub bad_ip_csum: bool,
    /// Break the TCP/UDP checksum.
    pub bad_l4_csum: bool,
    /// Leave the checksum fields 0 (for a NIC to fill in).
    pub no_csum: bool,
}

impl FrameSpec {
    /// A UDP/IPv4 frame of `len` bytes between two fixed hosts.
    pub fn udp4(dst: [u8; 6], len: usize) -> FrameSpec {
        FrameSpec {
            dst,
            src: [0x02, 0, 0, 0, 0, 0x01],
            vlan: None,
            ip: Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)),
            l4: L4::Udp,
            sport: 1024,
            dport: 2048,
            len,
            seed: 0,
            seq: 1,
            bad_ip_csum: false,
            bad_l4_csum: false,
            no_csum: false,
        }
    }

    /// Header bytes before the L4 payload.
    pub fn header_len(&self) -> usize {
        let l2 = if self.vlan.is_some() { 18 } else { 14 };
        let l3 = match self.ip {
            Ip::V4(..) => 20,
            Ip::V6(..) => 40,
        };
        let l4 = match self.l4 {
            L4::Udp => 8,
            L4::Tcp => 20,
        };
        l2 + l3 + l4
    }

    pub fn build(&self) -> Vec<u8> {
        let hdr = self.header_len();
        let total = self.len.max(hdr);
        let payload: Vec<u8> = (0..total - hdr)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(self.seed))
            .collect();
        let mut f = Vec::with_capacity(total);
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&self.src);
        if let Some(tci) = self.vlan {
            f.extend_from_slice(&ETH_VLAN.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        let l4_len = total - hdr + if self.l4 == L4::Udp { 8 } else { 20 };
        let proto = if self.l4 == L4::Udp {
            PROTO_UDP
        } else {
            PROTO_TCP
        };
        let l3_start = f.len();
        match self.ip {
            Ip::V4(s, d) => {
                f.extend_from_slice(&ETH_IPV4.to_be_bytes());
                let ip_start = f.len();
                f.extend_from_slice(&[0x45, 0]);
                f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
                f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                if !self.no_csum {
                    let mut c = checksum(&f[ip_start..ip_start + 20]);
                    if self.bad_ip_csum {
                        c ^= 0x5a5a;
                    }
                    f[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
                }
            }
            Ip::V6(s, d) => {
                f.extend_from_slice(&ETH_IPV6.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
        }
        let _ = l3_start;
        let l4_start = f.len();
        f.extend_from_slice(&self.sport.to_be_bytes());
        f.extend_from_slice(&self.dport.to_be_bytes());
        match self.l4 {
            L4::Udp => {
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0]);
            }
            L4::Tcp => {
                f.extend_from_slice(&self.seq.to_be_bytes());
                f.extend_from_slice(&0u32.to_be_bytes());
                f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            }
        }
        f.extend_from_slice(&payload);
        if !self.no_csum {
            let mut c = l4_checksum(&f, self.ip, proto, l4_start);
            if self.bad_l4_csum {
                c ^= 0x5a5a;
            }
            let at = l4_start + if self.l4 == L4::Udp { 6 } else { 16 };
            f[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        f
    }
}

/// One's-complement sum of big-endian 16-bit words.
pub fn sum16(mut s: u32, b: &[u8]) -> u32 {
    let mut it = b.chunks_exact(2);
    for c in &mut it {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [x] = it.remainder() {
        s += u32::from(*x) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// The Internet checksum.
pub fn checksum(b: &[u8]) -> u16 {
    !fold(sum16(0, b))
}

/// The one's-complement of the pseudo-header plus L4 segment sum (field
/// included as it is): 0 when a received segment's checksum is right.
fn l4_residue(f: &[u8], ip: Ip, proto: u8, l4_start: usize) -> u16 {
    let seg = &f[l4_start..];
    let mut s = match ip {
        Ip::V4(a, b) => sum16(sum16(0, &a.octets()), &b.octets()),
        Ip::V6(a, b) => sum16(sum16(0, &a.octets()), &b.octets()),
    };
    s += u32::from(proto) + seg.len() as u32;
    !fold(sum16(s, seg))
}

/// The TCP/UDP checksum to put in the segment at `l4_start`, whose checksum
/// field must be 0 (UDP sends a computed 0 as 0xFFFF).
pub fn l4_checksum(f: &[u8], ip: Ip, proto: u8, l4_start: usize) -> u16 {
    match l4_residue(f, ip, proto, l4_start) {
        0 if proto == PROTO_UDP => 0xFFFF,
        c => c,
    }
}

/// What a parsed frame holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub vlan: Option<u16>,
    pub ip: Ip,
    pub proto: u8,
    pub l3_start: usize,
    pub l4_start: usize,
    pub payload_start: usize,
    /// IPv4 header checksum right (true for IPv6).
    pub ip_csum_ok: bool,
    /// TCP/UDP checksum right.
    pub l4_csum_ok: bool,
    pub tcp_seq: Option<u32>,
    pub tcp_flags: Option<u8>,
    pub ip_id: Option<u16>,
}

impl Parsed {
    pub fn payload<'a>(&self, f: &'a [u8]) -> &'a [u8] {
        &f[self.payload_start..]
    }
}

/// Parses an Ethernet frame as built here (IPv4 without options, IPv6
/// without extension headers). Trailing padding of short IPv4 frames is
/// excluded from the L4 segment using the IP total length.
pub fn parse(f: &[u8]) -> Option<Parsed> {
    let mut off = 12;
    let mut et = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    let mut vlan = None;
    if et == ETH_VLAN {
        vlan = Some(u16::from_be_bytes([*f.get(14)?, *f.get(15)?]));
        off = 16;
        et = u16::from_be_bytes([*f.get(16)?, *f.get(17)?]);
    }
    let l3 = off + 2;
    let (ip, proto, l4, end, ip_ok, ip_id) = match et {
        ETH_IPV4 => {
            let ihl = usize::from(f.get(l3)? & 0xF) * 4;
            let tot = usize::from(u16::from_be_bytes([*f.get(l3 + 2)?, *f.get(l3 + 3)?]));
            let s = Ipv4Addr::from(<[u8; 4]>::try_from(f.get(l3 + 12..l3 + 16)?).ok()?);
            let d = Ipv4Addr::from(<[u8; 4]>::try_from(f.get(l3 + 16..l3 + 20)?).ok()?);
            let ok = checksum(f.get(l3..l3 + ihl)?) == 0;
            let id = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]);
            (Ip::V4(s, d), f[l3 + 9], l3 + ihl, l3 + tot, ok, Some(id))
        }
        ETH_IPV6 => {
            let plen = usize::from(u16::from_be_bytes([*f.get(l3 + 4)?, *f.get(l3 + 5)?]));
            let s = Ipv6Addr::from(<[u8; 16]>::try_from(f.get(l3 + 8..l3 + 24)?).ok()?);
            let d = Ipv6Addr::from(<[u8; 16]>::try_from(f.get(l3 + 24..l3 + 40)?).ok()?);
            (Ip::V6(s, d), f[l3 + 6], l3 + 40, l3 + 40 + plen, true, None)
        }
        _ => return None,
    };
    let seg = f.get(..end)?;
    let l4_ok = l4_residue(seg, ip, proto, l4) == 0
        || (proto == PROTO_UDP && u16::from_be_bytes([*seg.get(l4 + 6)?, seg[l4 + 7]]) == 0);
    let (payload_start, seq, flags) = match proto {
        PROTO_TCP => {
            let doff = usize::from(seg.get(l4 + 12)? >> 4) * 4;
            let seq = u32::from_be_bytes(seg.get(l4 + 4..l4 + 8)?.try_into().ok()?);
            (l4 + doff, Some(seq), Some(seg[l4 + 13]))
        }
        _ => (l4 + 8, None, None),
    };
    Some(Parsed {
        vlan,
        ip,
        proto,
        l3_start: l3,
        l4_start: l4,
        payload_start: payload_start.min(end),
        ip_csum_ok: ip_ok,
        l4_csum_ok: l4_ok,
        tcp_seq: seq,
        tcp_flags: flags,
        ip_id,
    })
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes of a hex string; `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Removes an 802.1Q tag from a frame (what a NIC's VLAN strip does).
pub fn strip_vlan(f: &[u8]) -> Vec<u8> {
    if f.len() >= 18 && u16::from_be_bytes([f[12], f[13]]) == ETH_VLAN {
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&f[16..]);
        v
    } else {
        f.to_vec()
    }
}

/// Inserts an 802.1Q tag after the MAC addresses (what a NIC's VLAN
/// insertion does).
pub fn insert_vlan(f: &[u8], tci: u16) -> Vec<u8> {
    let mut v = f[..12.min(f.len())].to_vec();
    v.extend_from_slice(&ETH_VLAN.to_be_bytes());
    v.extend_from_slice(&tci.to_be_bytes());
    v.extend_from_slice(f.get(12..).unwrap_or_default());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_parse_with_good_checksums() {
        for ip in [
            Ip::V4(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)),
            Ip::V6(
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ),
        ] {
            for l4 in [L4::Udp, L4::Tcp] {
                for vlan in [None, Some(0x2005)] {
                    let spec = FrameSpec {
                        ip,
                        l4,
                        vlan,
                        ..FrameSpec::udp4([2; 6], 300)
                    };
                    let f = spec.build();
                    assert_eq!(f.len(), 300);
                    let p = parse(&f).unwrap();
                    assert!(p.ip_csum_ok && p.l4_csum_ok, "{ip:?} {l4:?} {vlan:?}");
                    assert_eq!(p.vlan, vlan);
                    let bad = FrameSpec {
                        bad_l4_csum: true,
                        ..spec.clone()
                    }
                    .build();
                    assert!(!parse(&bad).unwrap().l4_csum_ok);
                }
            }
        }
        let bad_ip = FrameSpec {
            bad_ip_csum: true,
            ..FrameSpec::udp4([2; 6], 60)
        }
        .build();
        assert!(!parse(&bad_ip).unwrap().ip_csum_ok);
        assert_eq!(
            strip_vlan(
                &FrameSpec {
                    vlan: Some(5),
                    ..FrameSpec::udp4([2; 6], 100)
                }
                .build()
            )
            .len(),
            96
        );
    }
}
