//! The header work of the forward modes, on plain byte slices: MAC rewrite
//! and swap, the UDP frame txonly/flowgen send, and the ARP and ICMP echo
//! replies of icmpecho.

use std::net::Ipv4Addr;

pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_UDP: u8 = 17;
const ARP_OP_REQUEST: u16 = 1;
const ARP_OP_REPLY: u16 = 2;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Swaps the Ethernet destination and source (macswap). Frames shorter
/// than an Ethernet header are left alone; returns whether it swapped.
pub fn swap_macs(frame: &mut [u8]) -> bool {
    if frame.len() < ETH_HLEN {
        return false;
    }
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&frame[0..6]);
    frame.copy_within(6..12, 0);
    frame[6..12].copy_from_slice(&dst);
    true
}

/// Sets the Ethernet destination and source (mac mode).
pub fn set_macs(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) -> bool {
    if frame.len() < ETH_HLEN {
        return false;
    }
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
    true
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What txonly and flowgen put in every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTemplate {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Length of the Ethernet, IPv4 and UDP headers [`write_udp_headers`] writes.
pub const UDP_HLEN: usize = ETH_HLEN + 20 + 8;

/// Writes Ethernet/IPv4/UDP headers for a frame of `frame_len` bytes into
/// the first [`UDP_HLEN`] bytes of `hdr` (the payload is the caller's). The
/// IPv4 header checksum is computed; the UDP checksum is 0 (none), which
/// IPv4 allows. Returns false when `hdr` is too short or `frame_len` cannot
/// hold the headers.
pub fn write_udp_headers(hdr: &mut [u8], frame_len: usize, t: &UdpTemplate) -> bool {
    if hdr.len() < UDP_HLEN || !(UDP_HLEN..=usize::from(u16::MAX)).contains(&frame_len) {
        return false;
    }
    hdr[0..6].copy_from_slice(&t.dst_mac);
    hdr[6..12].copy_from_slice(&t.src_mac);
    put16(hdr, 12, ETHERTYPE_IPV4);
    let ip = &mut hdr[ETH_HLEN..ETH_HLEN + 20];
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip, 2, (frame_len - ETH_HLEN) as u16);
    put16(ip, 4, 0); // identification
    put16(ip, 6, 0x4000); // don't fragment
    ip[8] = 64; // TTL
    ip[9] = IPPROTO_UDP;
    put16(ip, 10, 0);
    ip[12..16].copy_from_slice(&t.src_ip.octets());
    ip[16..20].copy_from_slice(&t.dst_ip.octets());
    let c = inet_checksum(ip);
    put16(ip, 10, c);
    let udp = &mut hdr[ETH_HLEN + 20..UDP_HLEN];
    put16(udp, 0, t.src_port);
    put16(udp, 2, t.dst_port);
    put16(udp, 4, (frame_len - ETH_HLEN - 20) as u16);
    put16(udp, 6, 0);
    true
}

/// What icmpecho does with a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoAction {
    /// The frame was rewritten in place into a reply: send it back.
    Reply,
    /// Not an ARP request nor an ICMP echo request: drop it.
    Drop,
}

/// Turns an ARP request or an ICMP echo request (optionally behind one
/// 802.1Q tag) into its reply in place, from `port_mac`. ARP requests are
/// answered for any target address, as DPDK's icmpecho does, so a host can
/// resolve and ping whatever address it picks for the port.
pub fn icmpecho(frame: &mut [u8], port_mac: [u8; 6]) -> EchoAction {
    if frame.len() < ETH_HLEN {
        return EchoAction::Drop;
    }
    let mut l3 = ETH_HLEN;
    let mut ethertype = be16(frame, 12);
    if ethertype == ETHERTYPE_VLAN {
        if frame.len() < ETH_HLEN + 4 {
            return EchoAction::Drop;
        }
        ethertype = be16(frame, 16);
        l3 += 4;
    }
    match ethertype {
        ETHERTYPE_ARP => arp_reply(frame, l3, port_mac),
        ETHERTYPE_IPV4 => icmp_reply(frame, l3, port_mac),
        _ => EchoAction::Drop,
    }
}

fn arp_reply(frame: &mut [u8], l3: usize, port_mac: [u8; 6]) -> EchoAction {
    // Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
    if frame.len() < l3 + 28 {
        return EchoAction::Drop;
    }
    let a = l3;
    if be16(frame, a) != 1
        || be16(frame, a + 2) != ETHERTYPE_IPV4
        || frame[a + 4] != 6
        || frame[a + 5] != 4
        || be16(frame, a + 6) != ARP_OP_REQUEST
    {
        return EchoAction::Drop;
    }
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&frame[a + 8..a + 14]);
    let mut spa = [0u8; 4];
    spa.copy_from_slice(&frame[a + 14..a + 18]);
    let mut tpa = [0u8; 4];
    tpa.copy_from_slice(&frame[a + 24..a + 28]);
    frame[0..6].copy_from_slice(&sha);
    frame[6..12].copy_from_slice(&port_mac);
    put16(frame, a + 6, ARP_OP_REPLY);
    frame[a + 8..a + 14].copy_from_slice(&port_mac);
    frame[a + 14..a + 18].copy_from_slice(&tpa);
    frame[a + 18..a + 24].copy_from_slice(&sha);
    frame[a + 24..a + 28].copy_from_slice(&spa);
    EchoAction::Reply
}

fn icmp_reply(frame: &mut [u8], l3: usize, port_mac: [u8; 6]) -> EchoAction {
    if frame.len() < l3 + 20 {
        return EchoAction::Drop;
    }
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    if frame[l3] >> 4 != 4 || ihl < 20 || frame[l3 + 9] != IPPROTO_ICMP {
        return EchoAction::Drop;
    }
    let total = usize::from(be16(frame, l3 + 2));
    if total < ihl + 8 || l3 + total > frame.len() {
        return EchoAction::Drop;
    }
    // Fragments are not reassembled: only answer whole datagrams.
    if be16(frame, l3 + 6) & 0x3fff != 0 {
        return EchoAction::Drop;
    }
    let icmp = l3 + ihl;
    if frame[icmp] != ICMP_ECHO_REQUEST || frame[icmp + 1] != 0 {
        return EchoAction::Drop;
    }
    if !swap_macs(frame) {
        return EchoAction::Drop;
    }
    frame[6..12].copy_from_slice(&port_mac);
    // Swapping source and destination leaves the IPv4 header sum unchanged.
    let mut src = [0u8; 4];
    src.copy_from_slice(&frame[l3 + 12..l3 + 16]);
    frame.copy_within(l3 + 16..l3 + 20, l3 + 12);
    frame[l3 + 16..l3 + 20].copy_from_slice(&src);
    frame[icmp] = ICMP_ECHO_REPLY;
    put16(frame, icmp + 2, 0);
    let c = inet_checksum(&frame[icmp..l3 + total]);
    put16(frame, icmp + 2, c);
    EchoAction::Reply
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const HOST: [u8; 6] = [2, 0, 0, 0, 0, 9];

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        f
    }

    fn echo_request(payload: &[u8]) -> Vec<u8> {
        let mut f = PORT.to_vec();
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = 20 + 8 + payload.len();
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, IPPROTO_ICMP, 0, 0]);
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let c = inet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut icmp = vec![ICMP_ECHO_REQUEST, 0, 0, 0, 0xbe, 0xef, 0, 7];
        icmp.extend_from_slice(payload);
        let c = inet_checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071's example words sum to 0xddf2; the checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(inet_checksum(&data), !0xddf2);
        // A buffer with its own checksum in place sums to zero.
        let mut with = data.to_vec();
        with.extend_from_slice(&inet_checksum(&data).to_be_bytes());
        assert_eq!(inet_checksum(&with), 0);
    }

    #[test]
    fn macswap_and_mac_rewrite() {
        let mut f = echo_request(b"x");
        assert!(swap_macs(&mut f));
        assert_eq!(&f[0..6], &HOST);
        assert_eq!(&f[6..12], &PORT);
        assert!(set_macs(&mut f, [1; 6], [2; 6]));
        assert_eq!(&f[0..12], &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert!(!swap_macs(&mut [0u8; 10]));
    }

    #[test]
    fn udp_headers_are_valid_ipv4() {
        let t = UdpTemplate {
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: PORT,
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            src_port: 9,
            dst_port: 9,
        };
        let mut f = vec![0u8; 64];
        assert!(write_udp_headers(&mut f, 64, &t));
        assert_eq!(be16(&f, 12), ETHERTYPE_IPV4);
        assert_eq!(inet_checksum(&f[14..34]), 0, "IPv4 header checksum");
        assert_eq!(be16(&f, 16), 50, "IPv4 total length");
        assert_eq!(be16(&f, 38), 30, "UDP length");
        assert_eq!(&f[26..30], &[198, 18, 0, 1]);
        assert!(!write_udp_headers(&mut f, 20, &t));
        assert!(!write_udp_headers(&mut [0u8; 20], 64, &t));
    }

    #[test]
    fn arp_request_becomes_reply() {
        let mut f = arp_request([10, 0, 0, 2]);
        assert_eq!(icmpecho(&mut f, PORT), EchoAction::Reply);
        assert_eq!(&f[0..6], &HOST, "to the asker");
        assert_eq!(&f[6..12], &PORT);
        assert_eq!(be16(&f, 20), ARP_OP_REPLY);
        assert_eq!(&f[22..28], &PORT, "sender hardware address");
        assert_eq!(&f[28..32], &[10, 0, 0, 2], "sender protocol address");
        assert_eq!(&f[32..38], &HOST);
        assert_eq!(&f[38..42], &[10, 0, 0, 1]);
        // A reply is not answered.
        assert_eq!(icmpecho(&mut f, PORT), EchoAction::Drop);
    }

    #[test]
    fn echo_request_becomes_valid_reply() {
        let payload: Vec<u8> = (0..56u8).collect();
        let mut f = echo_request(&payload);
        assert_eq!(icmpecho(&mut f, PORT), EchoAction::Reply);
        assert_eq!(&f[0..6], &HOST);
        assert_eq!(&f[6..12], &PORT);
        assert_eq!(&f[26..30], &[10, 0, 0, 2], "source is the old destination");
        assert_eq!(&f[30..34], &[10, 0, 0, 1]);
        assert_eq!(inet_checksum(&f[14..34]), 0, "IPv4 checksum still right");
        assert_eq!(f[34], ICMP_ECHO_REPLY);
        assert_eq!(inet_checksum(&f[34..]), 0, "ICMP checksum right");
        assert_eq!(&f[38..42], &[0xbe, 0xef, 0, 7], "id and sequence kept");
        assert_eq!(&f[42..], &payload[..]);
    }

    #[test]
    fn echo_behind_vlan_tag_is_answered() {
        let plain = echo_request(b"abcd");
        let mut f = plain[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        f.extend_from_slice(&plain[12..]);
        assert_eq!(icmpecho(&mut f, PORT), EchoAction::Reply);
        assert_eq!(f[38], ICMP_ECHO_REPLY);
        assert_eq!(inet_checksum(&f[38..]), 0);
    }

    #[test]
    fn other_frames_are_dropped() {
        let mut udp = vec![0u8; 64];
        let t = UdpTemplate {
            dst_mac: PORT,
            src_mac: HOST,
            src_ip: Ipv4Addr::LOCALHOST,
            dst_ip: Ipv4Addr::LOCALHOST,
            src_port: 1,
            dst_port: 2,
        };
        assert!(write_udp_headers(&mut udp, 64, &t));
        assert_eq!(icmpecho(&mut udp, PORT), EchoAction::Drop);
        let mut short = echo_request(b"");
        short.truncate(30);
        assert_eq!(icmpecho(&mut short, PORT), EchoAction::Drop);
        let mut reply = echo_request(b"");
        reply[34] = ICMP_ECHO_REPLY;
        assert_eq!(icmpecho(&mut reply, PORT), EchoAction::Drop);
    }
}
