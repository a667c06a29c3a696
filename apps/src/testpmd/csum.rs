//! The `csum` forward mode: for each received frame of Ethernet [VLAN] /
//! IPv4|IPv6 / UDP|TCP, the checksums are computed again, each either in
//! software or by the TX port's hardware as `csum set ip|udp|tcp hw|sw
//! PORT` chose (the offloads both the 82576 and the 82574L have), and the
//! Ethernet addresses are rewritten as in mac mode (DPDK's default
//! `csum mac-swap on`). A UDP checksum of 0 (none) is left alone, as DPDK
//! does. Received frames the device flagged with a bad IP or L4 checksum
//! are counted (the report's Bad-ipcsum / Bad-l4csum).

use pmd::TxFlags;
use pmd::TxOffload;
use pmd::offload::{checksum, csum_add, csum_fold, parse_headers};

/// Where each checksum is computed on a TX port (`true`: hardware).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CsumOffloads {
    pub ip: bool,
    pub udp: bool,
    pub tcp: bool,
}

/// The layers `csum set` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumLayer {
    Ip,
    Udp,
    Tcp,
    /// Named by DPDK but offered by neither chip (the 82574L has no SCTP
    /// offload; neither has tunnel offloads): refused with DPDK's words.
    Sctp,
    OuterIp,
    OuterUdp,
}

impl CsumLayer {
    pub fn parse(s: &str) -> Option<CsumLayer> {
        Some(match s {
            "ip" => CsumLayer::Ip,
            "udp" => CsumLayer::Udp,
            "tcp" => CsumLayer::Tcp,
            "sctp" => CsumLayer::Sctp,
            "outer-ip" => CsumLayer::OuterIp,
            "outer-udp" => CsumLayer::OuterUdp,
            _ => return None,
        })
    }

    /// DPDK's name of the offload in messages.
    pub fn label(self) -> &'static str {
        match self {
            CsumLayer::Ip => "IP",
            CsumLayer::Udp => "UDP",
            CsumLayer::Tcp => "TCP",
            CsumLayer::Sctp => "SCTP",
            CsumLayer::OuterIp => "Outer-Ip",
            CsumLayer::OuterUdp => "Outer-Udp",
        }
    }
}

/// A checksum offload neither chip has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} checksum offload is not supported", .0.label())]
pub struct NotOffered(pub CsumLayer);

impl CsumOffloads {
    /// Sets one layer; an error for the layers no chip offers.
    pub fn set(&mut self, layer: CsumLayer, hw: bool) -> Result<(), NotOffered> {
        match layer {
            CsumLayer::Ip => self.ip = hw,
            CsumLayer::Udp => self.udp = hw,
            CsumLayer::Tcp => self.tcp = hw,
            CsumLayer::Sctp | CsumLayer::OuterIp | CsumLayer::OuterUdp => {
                return Err(NotOffered(layer));
            }
        }
        Ok(())
    }

    /// `csum show PORT`, in DPDK's lines.
    pub fn show(&self) -> String {
        let w = |hw: bool| if hw { "hw" } else { "sw" };
        format!(
            "Parse tunnel is off\nIP checksum offload is {}\nUDP checksum offload is {}\nTCP checksum offload is {}",
            w(self.ip),
            w(self.udp),
            w(self.tcp)
        )
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Recomputes the checksums of `frame` (the packet's first segment;
/// `pkt_len` is the whole packet's length) as `cfg` says: software ones in
/// place, hardware ones as the returned offload request (default, that is
/// none, when everything was done in software or the frame is not one the
/// mode knows). An L4 checksum is done in software when the segment does
/// not hold the whole datagram or the frame carries padding after it (the
/// hardware would sum the padding).
pub fn process(frame: &mut [u8], pkt_len: usize, cfg: CsumOffloads) -> TxOffload {
    let mut off = TxOffload::default();
    let Some(proto) = parse_headers(frame, &mut off) else {
        return TxOffload::default();
    };
    let l2 = usize::from(off.l2_len);
    let l3 = usize::from(off.l3_len);
    let ipv4 = off.flags.contains(TxFlags::IPV4);
    if frame.len() < l2 + l3 || (ipv4 && l3 < 20) {
        return TxOffload::default();
    }
    let l4_end = if ipv4 {
        l2 + usize::from(be16(frame, l2 + 2))
    } else {
        l2 + 40 + usize::from(be16(frame, l2 + 4))
    };
    let mut flags = TxFlags::default();
    if ipv4 {
        if cfg.ip {
            flags.insert(TxFlags::IP_CKSUM);
        } else {
            frame[l2 + 10..l2 + 12].fill(0);
            let c = checksum(&frame[l2..l2 + l3]);
            frame[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
        }
    }
    let l4 = l2 + l3;
    let (field, hw, need) = match proto {
        17 => (l4 + 6, cfg.udp, 8),
        6 => (l4 + 16, cfg.tcp, 20),
        _ => (0, false, usize::MAX),
    };
    if need != usize::MAX && l4_end >= l4 + need && frame.len() >= l4 + need {
        let udp = proto == 17;
        let skip = udp && be16(frame, field) == 0;
        let whole = l4_end <= frame.len();
        if !skip {
            if hw && l4_end == pkt_len {
                flags.insert(if udp {
                    TxFlags::UDP_CKSUM
                } else {
                    TxFlags::TCP_CKSUM
                });
            } else if whole {
                frame[field..field + 2].fill(0);
                let mut sum = if ipv4 {
                    csum_add(0, &frame[l2 + 12..l2 + 20])
                } else {
                    csum_add(0, &frame[l2 + 8..l2 + 40])
                };
                sum = csum_add(sum, &[0, proto]);
                sum = csum_add(sum, &((l4_end - l4) as u16).to_be_bytes());
                sum = csum_add(sum, &frame[l4..l4_end]);
                let mut c = !csum_fold(sum);
                if udp && c == 0 {
                    c = 0xffff;
                }
                frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
    if flags.is_empty() {
        return TxOffload::default();
    }
    off.flags.insert(flags);
    off.l4_len = if proto == 6 && frame.len() > l4 + 12 {
        (frame[l4 + 12] >> 4) * 4
    } else {
        off.l4_len
    };
    off
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet / IPv4 / UDP-or-TCP with the checksums deliberately wrong.
    fn broken(proto: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![1u8; 6];
        f.extend_from_slice(&[2; 6]);
        f.extend_from_slice(&[0x08, 0x00]);
        let l4len = if proto == 6 { 20 } else { 8 } + payload;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + l4len) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 7, 0, 0, 64, proto, 0xde, 0xad, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        let mut l4 = vec![0x04, 0x00, 0x08, 0x00];
        if proto == 6 {
            l4.extend_from_slice(&[
                0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0xbe, 0xef, 0, 0,
            ]);
        } else {
            l4.extend_from_slice(&(l4len as u16).to_be_bytes());
            l4.extend_from_slice(&[0xbe, 0xef]);
        }
        l4.extend((0..payload).map(|i| i as u8));
        f.extend_from_slice(&l4);
        f
    }

    /// The L4 checksum over the pseudo-header verifies to zero.
    fn l4_ok(f: &[u8]) -> bool {
        let total = usize::from(be16(f, 16));
        let mut s = csum_add(0, &f[26..34]);
        s = csum_add(s, &[0, f[23]]);
        s = csum_add(s, &((total - 20) as u16).to_be_bytes());
        s = csum_add(s, &f[34..14 + total]);
        !csum_fold(s) == 0
    }

    #[test]
    fn software_checksums_are_right_and_nothing_is_asked_of_the_device() {
        for proto in [17u8, 6] {
            for payload in [0usize, 1, 33] {
                let mut f = broken(proto, payload);
                let len = f.len();
                let off = process(&mut f, len, CsumOffloads::default());
                assert_eq!(off, TxOffload::default(), "no offload requested");
                assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
                assert!(l4_ok(&f), "proto {proto} payload {payload}");
            }
        }
    }

    #[test]
    fn hardware_checksums_are_requested_with_header_lengths() {
        let mut f = broken(6, 10);
        let len = f.len();
        let cfg = CsumOffloads {
            ip: true,
            udp: true,
            tcp: true,
        };
        let off = process(&mut f, len, cfg);
        assert!(
            off.flags
                .contains(TxFlags::IPV4 | TxFlags::IP_CKSUM | TxFlags::TCP_CKSUM)
        );
        assert_eq!((off.l2_len, off.l3_len, off.l4_len), (14, 20, 20));
        // Mixed: IP in hardware, UDP in software.
        let mut u = broken(17, 5);
        let len = u.len();
        let off = process(
            &mut u,
            len,
            CsumOffloads {
                ip: true,
                udp: false,
                tcp: false,
            },
        );
        assert!(off.flags.contains(TxFlags::IP_CKSUM));
        assert!(!off.flags.contains(TxFlags::UDP_CKSUM));
        assert!(l4_ok(&u));
    }

    #[test]
    fn zero_udp_checksum_and_padding_are_respected() {
        let mut f = broken(17, 4);
        f[40..42].fill(0);
        let len = f.len();
        process(&mut f, len, CsumOffloads::default());
        assert_eq!(f[40..42], [0, 0], "UDP checksum 0 means none: kept");
        // Padding after the datagram: hardware would sum it, so software.
        let mut p = broken(17, 4);
        p.extend_from_slice(&[0; 6]);
        let len = p.len();
        let off = process(
            &mut p,
            len,
            CsumOffloads {
                ip: false,
                udp: true,
                tcp: false,
            },
        );
        assert!(!off.flags.contains(TxFlags::UDP_CKSUM));
        assert!(l4_ok(&p));
    }

    #[test]
    fn other_frames_are_left_alone() {
        let mut arp = broken(17, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let before = arp.clone();
        let len = arp.len();
        assert_eq!(
            process(&mut arp, len, CsumOffloads::default()),
            TxOffload::default()
        );
        assert_eq!(arp, before);
        let mut cfg = CsumOffloads::default();
        assert_eq!(
            cfg.set(CsumLayer::Sctp, true).unwrap_err().to_string(),
            "SCTP checksum offload is not supported"
        );
        assert!(cfg.set(CsumLayer::Udp, true).is_ok());
        assert!(cfg.show().contains("UDP checksum offload is hw"));
        assert!(cfg.show().contains("IP checksum offload is sw"));
    }
}
