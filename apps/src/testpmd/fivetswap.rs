//! The `5tswap` forward mode: swaps source and destination at layers 2, 3
//! and 4 (Ethernet addresses; IPv4 or IPv6 addresses; UDP or TCP ports),
//! parsing each layer and stopping at the first it does not know, as
//! DPDK's 5tswap engine does. VLAN (802.1Q) and QinQ (802.1ad) tags are
//! walked over. Swapping two fields of a one's-complement sum leaves every
//! checksum right, so none is recomputed.

use super::frames::{ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_VLAN, IPPROTO_UDP};

/// 802.1ad service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88A8;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const IPPROTO_TCP: u8 = 6;

/// How far [`swap`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swapped {
    /// Shorter than an Ethernet header: untouched.
    Nothing,
    /// MACs only (not IP, or the IP header is cut short).
    L2,
    /// MACs and IP addresses (not UDP/TCP, or its header is cut short).
    L3,
    /// MACs, IP addresses and L4 ports.
    L4,
}

fn swap_range(f: &mut [u8], a: usize, b: usize, len: usize) {
    for i in 0..len {
        f.swap(a + i, b + i);
    }
}

/// Swaps the 5-tuple of `frame` in place; returns how far it got.
pub fn swap(frame: &mut [u8]) -> Swapped {
    if frame.len() < ETH_HLEN {
        return Swapped::Nothing;
    }
    swap_range(frame, 0, 6, 6);
    let mut at = 12;
    let mut et = u16::from_be_bytes([frame[at], frame[at + 1]]);
    while et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ {
        at += 4;
        let Some(b) = frame.get(at..at + 2) else {
            return Swapped::L2;
        };
        et = u16::from_be_bytes([b[0], b[1]]);
    }
    let l3 = at + 2;
    let (proto, l4) = match et {
        ETHERTYPE_IPV4 => {
            let Some(ver_ihl) = frame.get(l3).copied() else {
                return Swapped::L2;
            };
            let ihl = usize::from(ver_ihl & 0x0f) * 4;
            if ihl < 20 || frame.len() < l3 + ihl {
                return Swapped::L2;
            }
            swap_range(frame, l3 + 12, l3 + 16, 4);
            (frame[l3 + 9], l3 + ihl)
        }
        ETHERTYPE_IPV6 => {
            if frame.len() < l3 + 40 {
                return Swapped::L2;
            }
            swap_range(frame, l3 + 8, l3 + 24, 16);
            (frame[l3 + 6], l3 + 40)
        }
        _ => return Swapped::L2,
    };
    let need = match proto {
        IPPROTO_UDP => 8,
        IPPROTO_TCP => 20,
        _ => return Swapped::L3,
    };
    if frame.len() < l4 + need {
        return Swapped::L3;
    }
    swap_range(frame, l4, l4 + 2, 2);
    Swapped::L4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testpmd::frames::inet_checksum;

    /// Ethernet / [tag] / IPv4 / UDP-or-TCP with valid checksums.
    fn v4(tag: Option<u16>, proto: u8) -> Vec<u8> {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2];
        if let Some(t) = tag {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 5]);
        }
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let l4len = if proto == IPPROTO_TCP { 20 } else { 8 } + 4;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + l4len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let c = inet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x04, 0x00, 0x08, 0x00]); // ports 1024 -> 2048
        f.resize(f.len() + l4len - 4, 0);
        f
    }

    #[test]
    fn udp_and_tcp_over_ipv4_swap_all_three_layers() {
        for proto in [IPPROTO_UDP, IPPROTO_TCP] {
            let orig = v4(None, proto);
            let mut f = orig.clone();
            assert_eq!(swap(&mut f), Swapped::L4);
            assert_eq!(f[0..6], orig[6..12]);
            assert_eq!(f[6..12], orig[0..6]);
            assert_eq!(f[26..30], [10, 0, 0, 2]);
            assert_eq!(f[30..34], [10, 0, 0, 1]);
            assert_eq!(f[34..38], [0x08, 0x00, 0x04, 0x00]);
            assert_eq!(inet_checksum(&f[14..34]), 0, "IPv4 sum unchanged");
            assert_eq!(f[38..], orig[38..], "the rest untouched");
            // Swapping twice gives the frame back.
            swap(&mut f);
            assert_eq!(f, orig);
        }
    }

    #[test]
    fn vlan_and_qinq_tags_are_walked() {
        for tag in [ETHERTYPE_VLAN, ETHERTYPE_QINQ] {
            let mut f = v4(Some(tag), IPPROTO_UDP);
            assert_eq!(swap(&mut f), Swapped::L4);
            assert_eq!(f[30..34], [10, 0, 0, 2]);
            assert_eq!(f[38..42], [0x08, 0x00, 0x04, 0x00]);
        }
    }

    #[test]
    fn ipv6_addresses_swap() {
        let mut f = vec![1u8; 6];
        f.extend_from_slice(&[2; 6]);
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, IPPROTO_UDP, 64]);
        f.extend_from_slice(&[0xaa; 16]);
        f.extend_from_slice(&[0xbb; 16]);
        f.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        assert_eq!(swap(&mut f), Swapped::L4);
        assert_eq!(f[22..38], [0xbb; 16]);
        assert_eq!(f[38..54], [0xaa; 16]);
        assert_eq!(f[54..58], [0, 2, 0, 1]);
    }

    #[test]
    fn unknown_or_short_layers_stop_the_swap() {
        let mut icmp = v4(None, 1);
        assert_eq!(swap(&mut icmp), Swapped::L3);
        assert_eq!(icmp[34..38], [0x04, 0x00, 0x08, 0x00], "ports untouched");
        let mut arp = v4(None, IPPROTO_UDP);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(swap(&mut arp), Swapped::L2);
        assert_eq!(arp[26..30], [10, 0, 0, 1]);
        let mut cut = v4(None, IPPROTO_TCP);
        cut.truncate(40);
        assert_eq!(swap(&mut cut), Swapped::L3);
        assert_eq!(swap(&mut [0u8; 13]), Swapped::Nothing);
        let mut tag_only = vec![0u8; 14];
        tag_only[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert_eq!(swap(&mut tag_only), Swapped::L2);
    }
}
