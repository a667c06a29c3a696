//! Helpers for tests that drive the guest's `pmdcheck`: test flows built
//! with [`crate::frames`], and parsing of its `key=value` output lines.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frames::{FrameSpec, Ip, L4};

/// The IPv4 hosts of the test flows.
pub fn ip4() -> Ip {
    Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
}

/// The IPv6 hosts of the test flows.
pub fn ip6() -> Ip {
    Ip::V6(
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    )
}

/// Flow number `n` to `dst`: ports, payload seed and TCP sequence derived
/// from `n`, so every flow's frames differ and hash differently.
pub fn flow(dst: [u8; 6], ip: Ip, l4: L4, len: usize, n: u16) -> FrameSpec {
    FrameSpec {
        ip,
        l4,
        sport: 1000 + n,
        dport: 5000 + n.wrapping_mul(7),
        seed: n as u8,
        seq: 1000 * u32::from(n),
        ..FrameSpec::udp4(dst, len)
    }
}

/// The value of word `key=value` in `line`.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A numeric field (decimal, or hex with `0x`); panics with the line if it
/// is missing or malformed (a test failure).
pub fn num(line: &str, key: &str) -> u64 {
    let v = field(line, key).unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    v.parse()
        .or_else(|_| u64::from_str_radix(v.trim_start_matches("0x"), 16))
        .unwrap_or_else(|_| panic!("bad {key}={v}"))
}

/// Every line of `out` starting with `prefix`.
pub fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The first line of `out` starting with `prefix`; panics with the output
/// if there is none.
pub fn line_with<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

/// A comma-separated list of numbers (`qstats rx=1,2`).
pub fn list(line: &str, key: &str) -> Vec<u64> {
    field(line, key)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .split(',')
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad {key} in {line:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pmdcheck_lines() {
        let out = "x\nstats ipackets=5 ibytes=300\nqstats rx=2,3 tx=0,0\nrx q=1 rss=0x1f";
        let s = line_with(out, "stats ");
        assert_eq!(num(s, "ipackets"), 5);
        assert_eq!(field(s, "ibytes"), Some("300"));
        assert_eq!(field(s, "obytes"), None);
        assert_eq!(list(line_with(out, "qstats "), "rx"), vec![2, 3]);
        assert_eq!(num(line_with(out, "rx "), "rss"), 0x1f);
        assert_eq!(lines_with(out, "rx ").len(), 1);
    }

    #[test]
    fn flows_differ() {
        let a = flow([2; 6], ip4(), L4::Tcp, 100, 1).build();
        let b = flow([2; 6], ip4(), L4::Tcp, 100, 2).build();
        assert_ne!(a, b);
        assert_eq!(a.len(), 100);
    }
}
