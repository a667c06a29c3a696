//! What the guest tests of testpmd share: the host's frame source, a short
//! paced traffic run, and the numbers of testpmd's text report.

use std::time::Duration;

use crate::frames::FrameSpec;
use crate::traffic::TrafficConfig;

/// The host side's source MAC in test frames.
pub const HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// A well-formed UDP/IPv4 frame of `len` bytes from [`HOST`] to `dst`.
pub fn udp(dst: [u8; 6], seed: u8, len: usize) -> Vec<u8> {
    FrameSpec {
        src: HOST,
        seed,
        ..FrameSpec::udp4(dst, len)
    }
    .build()
}

/// A paced generator run of `secs` at `rate` frames/s with at most 64 in
/// flight (half a small RX ring, which QEMU's igb does not overrun).
pub fn quick_traffic(dst: [u8; 6], secs: u64, rate: u64) -> TrafficConfig {
    TrafficConfig {
        rate_pps: rate,
        duration: Duration::from_secs(secs),
        max_in_flight: 64,
        dst_mac: dst,
        ..TrafficConfig::default()
    }
}

/// The numbers of a text "Forward statistics for port N" block:
/// (RX-packets, RX-dropped, TX-packets, TX-dropped). Panics (a test
/// failure) naming the output when the block is missing or malformed.
pub fn fwd_stats(out: &str, port: usize) -> (u64, u64, u64, u64) {
    let head = format!("Forward statistics for port {port} ");
    // The block's lines up to its closing dashes (csum mode puts its
    // Bad-ipcsum lines between RX and TX, as DPDK does).
    let block: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains(&head))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("----"))
        .collect();
    let nums = |prefix: &str| -> Vec<u64> {
        block
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .copied()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let rx = nums("RX-packets:");
    let tx = nums("TX-packets:");
    assert_eq!(rx.len(), 3, "RX line of port {port} in:\n{out}");
    assert_eq!(tx.len(), 3, "TX line of port {port} in:\n{out}");
    (rx[0], rx[1], tx[0], tx[1])
}

/// csum mode's (Bad-ipcsum, Bad-l4csum) of port `port`'s block.
pub fn bad_csums(out: &str, port: usize) -> Option<(u64, u64)> {
    let head = format!("Forward statistics for port {port} ");
    let line = out
        .lines()
        .skip_while(|l| !l.contains(&head))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("----"))
        .find(|l| l.trim_start().starts_with("Bad-ipcsum:"))?;
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((*n.first()?, *n.get(1)?))
}

/// The `  RX-bursts : ...` / `  TX-bursts : ...` line (`rx_tx` "RX" or
/// "TX") of port `port`'s block.
pub fn burst_line(out: &str, port: usize, rx_tx: &str) -> Option<String> {
    let head = format!("Forward statistics for port {port} ");
    let want = format!("{rx_tx}-bursts :");
    out.lines()
        .skip_while(|l| !l.contains(&head))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("----"))
        .find(|l| l.trim_start().starts_with(&want))
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fwd_stats_reads_a_port_block() {
        let out = "  ---------------------- Forward statistics for port 1  ----------------------\n  RX-packets: 10             RX-dropped: 2             RX-total: 12\n  TX-packets: 9              TX-dropped: 1             TX-total: 10\n";
        assert_eq!(fwd_stats(out, 1), (10, 2, 9, 1));
    }

    #[test]
    fn fwd_stats_skips_csum_lines() {
        let out = "  ---------------------- Forward statistics for port 0  ----------------------\n  RX-packets: 4              RX-dropped: 0             RX-total: 4\n  Bad-ipcsum: 2              Bad-l4csum: 1              Bad-outer-l4csum: 0\n  Bad-outer-ipcsum: 0\n  TX-packets: 3              TX-dropped: 1             TX-total: 4\n  ----\n";
        assert_eq!(fwd_stats(out, 0), (4, 0, 3, 1));
        assert_eq!(bad_csums(out, 0), Some((2, 1)));
    }

    #[test]
    #[should_panic(expected = "RX line of port 0")]
    fn a_missing_block_fails_naming_the_port() {
        fwd_stats("nothing here", 0);
    }
}
