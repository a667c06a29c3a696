//! Receive-side scaling: the Toeplitz hash, the hash input of each packet
//! type, and the redirection table (RETA). The driver programs the key and
//! the table; the device computes the hash. The functions here let an app or
//! a test predict which queue a flow lands on.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of the RSS key in bytes (82576 and 82574L: ten 32-bit RSSRK words).
pub const KEY_LEN: usize = 40;
/// Entries in the redirection table (82576 and 82574L).
pub const RETA_LEN: usize = 128;

/// The default key: the one Microsoft's RSS specification uses for its
/// verification suite, also DPDK's and Linux's historical default.
pub const DEFAULT_KEY: [u8; KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Which packet types are hashed (a set; DPDK `RTE_ETH_RSS_*` meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashTypes(pub u16);

impl HashTypes {
    pub const IPV4: HashTypes = HashTypes(1 << 0);
    pub const IPV4_TCP: HashTypes = HashTypes(1 << 1);
    pub const IPV4_UDP: HashTypes = HashTypes(1 << 2);
    pub const IPV6: HashTypes = HashTypes(1 << 3);
    pub const IPV6_TCP: HashTypes = HashTypes(1 << 4);
    pub const IPV6_UDP: HashTypes = HashTypes(1 << 5);
    /// Every type above.
    pub const ALL: HashTypes = HashTypes(0x3F);
    /// IPv4, TCP/IPv4, IPv6, TCP/IPv6: what the 82574L can hash.
    pub const NO_UDP: HashTypes = HashTypes(0x1B);

    /// True when every type of `other` is in the set.
    pub fn contains(self, other: HashTypes) -> bool {
        self.0 & other.0 == other.0
    }
    /// The types in both sets.
    pub fn intersection(self, other: HashTypes) -> HashTypes {
        HashTypes(self.0 & other.0)
    }
}

/// RSS settings of a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssConfig {
    pub key: [u8; KEY_LEN],
    pub hash_types: HashTypes,
    /// Queue of each RETA entry; `None` spreads entries round-robin over the
    /// RX queues (entry i -> queue i % n), as DPDK and Linux do.
    pub reta: Option<[u8; RETA_LEN]>,
}

impl Default for RssConfig {
    fn default() -> Self {
        RssConfig {
            key: DEFAULT_KEY,
            hash_types: HashTypes::ALL,
            reta: None,
        }
    }
}

/// The round-robin table for `queues` queues.
pub fn default_reta(queues: u16) -> [u8; RETA_LEN] {
    let mut t = [0u8; RETA_LEN];
    let q = queues.max(1) as usize;
    for (i, e) in t.iter_mut().enumerate() {
        *e = (i % q) as u8;
    }
    t
}

/// The queue a hash selects: RETA indexed by the hash's low 7 bits.
pub fn queue_for_hash(reta: &[u8; RETA_LEN], hash: u32) -> u16 {
    u16::from(reta[(hash as usize) & (RETA_LEN - 1)])
}

/// The Toeplitz hash of `input` under `key` (as the Microsoft RSS
/// specification defines it: for each set bit of the input, XOR in the 32
/// key bits starting at that bit position).
pub fn toeplitz(key: &[u8; KEY_LEN], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // The 32-bit window of key bits, starting at bit 0.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (next_key_byte, &byte) in (4..).zip(input) {
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            // Shift in the next key bit.
            let kb = key.get(next_key_byte).copied().unwrap_or(0);
            window = (window << 1) | u32::from((kb >> bit) & 1);
        }
    }
    result
}

/// Hash input of an IPv4 packet without ports: source then destination.
pub fn input_ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut v = Vec::with_capacity(8);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v
}

/// Hash input of a TCP or UDP over IPv4 packet: addresses, then ports.
pub fn input_ipv4_l4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut v = input_ipv4(src, dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v
}

/// Hash input of an IPv6 packet without ports.
pub fn input_ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v
}

/// Hash input of a TCP or UDP over IPv6 packet.
pub fn input_ipv6_l4(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut v = input_ipv6(src, dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v
}

/// The hash a device configured with `types` computes for an Ethernet frame,
/// or `None` when the frame's type is not hashed. Parses untagged and
/// single-tagged frames; IPv6 extension headers are not followed.
pub fn frame_hash(key: &[u8; KEY_LEN], types: HashTypes, frame: &[u8]) -> Option<u32> {
    let mut et_off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 {
        et_off = 16;
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
    }
    let l3 = frame.get(et_off + 2..)?;
    match ethertype {
        0x0800 => {
            let ihl = usize::from(l3.first()? & 0x0F) * 4;
            let proto = *l3.get(9)?;
            let src = Ipv4Addr::from(<[u8; 4]>::try_from(l3.get(12..16)?).ok()?);
            let dst = Ipv4Addr::from(<[u8; 4]>::try_from(l3.get(16..20)?).ok()?);
            let frag = u16::from_be_bytes([*l3.get(6)?, *l3.get(7)?]) & 0x3FFF != 0;
            let ports = l3.get(ihl..ihl + 4);
            let l4 = match (proto, frag, ports) {
                (6, false, Some(p)) if types.contains(HashTypes::IPV4_TCP) => Some(p),
                (17, false, Some(p)) if types.contains(HashTypes::IPV4_UDP) => Some(p),
                _ => None,
            };
            if let Some(p) = l4 {
                let (sp, dp) = (
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                );
                return Some(toeplitz(key, &input_ipv4_l4(src, dst, sp, dp)));
            }
            types
                .contains(HashTypes::IPV4)
                .then(|| toeplitz(key, &input_ipv4(src, dst)))
        }
        0x86DD => {
            let next = *l3.get(6)?;
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(l3.get(8..24)?).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(l3.get(24..40)?).ok()?);
            let ports = l3.get(40..44);
            let l4 = match (next, ports) {
                (6, Some(p)) if types.contains(HashTypes::IPV6_TCP) => Some(p),
                (17, Some(p)) if types.contains(HashTypes::IPV6_UDP) => Some(p),
                _ => None,
            };
            if let Some(p) = l4 {
                let (sp, dp) = (
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                );
                return Some(toeplitz(key, &input_ipv6_l4(src, dst, sp, dp)));
            }
            types
                .contains(HashTypes::IPV6)
                .then(|| toeplitz(key, &input_ipv6(src, dst)))
        }
        _ => None,
    }
}

/// Packs a key into the ten little-endian RSSRK register values (byte 0 of
/// the key in the low byte of RSSRK0).
pub fn key_registers(key: &[u8; KEY_LEN]) -> [u32; KEY_LEN / 4] {
    let mut r = [0u32; KEY_LEN / 4];
    for (i, w) in r.iter_mut().enumerate() {
        *w = u32::from_le_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]);
    }
    r
}

/// Packs a table into the 32 RETA register values, four one-byte entries per
/// register, entry 4i in the low byte of RETA[i].
pub fn reta_registers(reta: &[u8; RETA_LEN]) -> [u32; RETA_LEN / 4] {
    let mut r = [0u32; RETA_LEN / 4];
    for (i, w) in r.iter_mut().enumerate() {
        *w = u32::from_le_bytes([
            reta[4 * i],
            reta[4 * i + 1],
            reta[4 * i + 2],
            reta[4 * i + 3],
        ]);
    }
    r
}

/// The redirection table `base` with every entry that points at one of
/// the `steered` queues (those flow rules own, [`crate::flow`]) given, in
/// entry order, round-robin to the other queues of `queues`, so RSS
/// spreads nothing onto a steered queue. `base` itself when nothing is
/// steered or every queue is (no other queue to spread over).
pub fn reta_avoiding(base: &[u8; RETA_LEN], queues: u16, steered: &[u16]) -> [u8; RETA_LEN] {
    let others: Vec<u8> = (0..queues.min(256))
        .filter(|q| !steered.contains(q))
        .map(|q| q as u8)
        .collect();
    if others.is_empty() || others.len() == usize::from(queues) {
        return *base;
    }
    let mut t = *base;
    let mut next = others.iter().cycle();
    for e in t.iter_mut() {
        if steered.contains(&u16::from(*e))
            && let Some(&q) = next.next()
        {
            *e = q;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verification values from the Microsoft RSS specification
    // ("Verifying the RSS Hash Calculation"), default key.
    #[test]
    fn toeplitz_matches_the_rss_specification_ipv4() {
        let cases = [
            (
                "66.9.149.187",
                2794,
                "161.142.100.80",
                1766,
                0x323e8fc2,
                0x51ccc178,
            ),
            (
                "199.92.111.2",
                14230,
                "65.69.140.83",
                4739,
                0xd718262a,
                0xc626b0ea,
            ),
            (
                "24.19.198.95",
                12898,
                "12.22.207.184",
                38024,
                0xd2d0a5de,
                0x5c2b394a,
            ),
            (
                "38.27.205.30",
                48228,
                "209.142.163.6",
                2217,
                0x82989176,
                0xafc7327f,
            ),
            (
                "153.39.163.191",
                44251,
                "202.188.127.2",
                1303,
                0x5d1809c5,
                0x10e828a2,
            ),
        ];
        for (src, sp, dst, dp, ip_only, with_ports) in cases {
            let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(
                toeplitz(&DEFAULT_KEY, &input_ipv4(s, d)),
                ip_only,
                "{src}->{dst}"
            );
            assert_eq!(
                toeplitz(&DEFAULT_KEY, &input_ipv4_l4(s, d, sp, dp)),
                with_ports,
                "{src}:{sp}->{dst}:{dp}"
            );
        }
    }

    #[test]
    fn toeplitz_matches_the_rss_specification_ipv6() {
        let cases = [
            (
                "3ffe:2501:200:1fff::7",
                2794,
                "3ffe:2501:200:3::1",
                1766,
                0x2cc18cd5,
                0x40207d3d,
            ),
            (
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                "ff02::1",
                4739,
                0x0f0c461c,
                0xdde51bbf,
            ),
            (
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                "fe80::200:f8ff:fe21:67cf",
                38024,
                0x4b61e985,
                0x02d1feef,
            ),
        ];
        for (src, sp, dst, dp, ip_only, with_ports) in cases {
            let (s, d): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(
                toeplitz(&DEFAULT_KEY, &input_ipv6(s, d)),
                ip_only,
                "{src}->{dst}"
            );
            assert_eq!(
                toeplitz(&DEFAULT_KEY, &input_ipv6_l4(s, d, sp, dp)),
                with_ports,
                "{src}:{sp}->{dst}:{dp}"
            );
        }
    }

    #[test]
    fn frame_hash_follows_the_enabled_types() {
        // Ethernet + IPv4 + UDP header, 66.9.149.187:2794 -> 161.142.100.80:1766.
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&[66, 9, 149, 187]);
        f[14 + 16..14 + 20].copy_from_slice(&[161, 142, 100, 80]);
        f[34..36].copy_from_slice(&2794u16.to_be_bytes());
        f[36..38].copy_from_slice(&1766u16.to_be_bytes());
        assert_eq!(
            frame_hash(&DEFAULT_KEY, HashTypes::ALL, &f),
            Some(0x51ccc178)
        );
        // Without UDP hashing the device falls back to the address-only hash.
        assert_eq!(
            frame_hash(&DEFAULT_KEY, HashTypes::NO_UDP, &f),
            Some(0x323e8fc2)
        );
        assert_eq!(frame_hash(&DEFAULT_KEY, HashTypes::IPV6, &f), None);
    }

    #[test]
    fn register_packing_is_little_endian_per_word() {
        let k = key_registers(&DEFAULT_KEY);
        assert_eq!(k[0], 0xda565a6d);
        let reta = default_reta(4);
        let r = reta_registers(&reta);
        assert_eq!(r[0], 0x03020100);
        assert_eq!(queue_for_hash(&reta, 0x51ccc178), (0x78 % 4) as u16);
    }

    #[test]
    fn steered_queues_leave_the_table_and_come_back_with_nothing_steered() {
        let base = default_reta(4);
        let t = reta_avoiding(&base, 4, &[1]);
        assert!(t.iter().all(|&q| q != 1), "no entry left on queue 1");
        // Entries on other queues stay; queue 1's go to 0, 2, 3, 0, ...
        assert_eq!(&t[..8], &[0, 0, 2, 3, 0, 2, 2, 3]);
        let per = |q: u8| t.iter().filter(|&&e| e == q).count();
        assert_eq!(per(0) + per(2) + per(3), RETA_LEN);
        assert!(per(0).abs_diff(per(2)) <= 1 && per(2).abs_diff(per(3)) <= 1);
        assert_eq!(reta_avoiding(&base, 4, &[]), base);
        assert_eq!(reta_avoiding(&base, 4, &[0, 1, 2, 3]), base, "nowhere else");
        assert_eq!(reta_avoiding(&default_reta(1), 1, &[0]), default_reta(1));
        let two = reta_avoiding(&default_reta(2), 2, &[1]);
        assert!(two.iter().all(|&q| q == 0));
    }
}
