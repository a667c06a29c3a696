//! What testpmd prints: the per-port "Forward statistics" and accumulated
//! totals at stop (laid out as DPDK's testpmd does, plus Mpps and Mbit/s),
//! `show port stats` blocks with throughput since the previous show, xstats,
//! port info, and the JSON objects of `--json`.
//!
//! Rates count frame bytes without the FCS, as the drivers report them.

use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// A port's device counters, as testpmd shows them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames the port had to drop (no free descriptor).
    pub rx_missed: u64,
    pub rx_errors: u64,
    /// Receives that failed for lack of a pool buffer.
    pub rx_nombuf: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

impl PortCounters {
    /// Counter-by-counter difference (`self` later than `base`).
    pub fn since(&self, base: &PortCounters) -> PortCounters {
        PortCounters {
            rx_packets: self.rx_packets.saturating_sub(base.rx_packets),
            rx_bytes: self.rx_bytes.saturating_sub(base.rx_bytes),
            rx_missed: self.rx_missed.saturating_sub(base.rx_missed),
            rx_errors: self.rx_errors.saturating_sub(base.rx_errors),
            rx_nombuf: self.rx_nombuf.saturating_sub(base.rx_nombuf),
            tx_packets: self.tx_packets.saturating_sub(base.tx_packets),
            tx_bytes: self.tx_bytes.saturating_sub(base.tx_bytes),
            tx_errors: self.tx_errors.saturating_sub(base.tx_errors),
        }
    }
}

/// What the forwarding streams counted, for one stream or summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FwdCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets the TX queue did not take (dropped by testpmd).
    pub tx_dropped: u64,
    /// Received packets the mode chose not to send (rxonly, icmpecho).
    pub rx_consumed: u64,
}

impl FwdCounters {
    pub fn add(&mut self, o: &FwdCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.tx_dropped += o.tx_dropped;
        self.rx_consumed += o.rx_consumed;
    }
}

/// Packets and bits per second.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub rx_pps: f64,
    pub rx_bps: f64,
    pub tx_pps: f64,
    pub tx_bps: f64,
}

impl Rates {
    pub fn of(
        rx_packets: u64,
        rx_bytes: u64,
        tx_packets: u64,
        tx_bytes: u64,
        dt: Duration,
    ) -> Rates {
        let s = dt.as_secs_f64();
        if s <= 0.0 {
            return Rates::default();
        }
        Rates {
            rx_pps: rx_packets as f64 / s,
            rx_bps: rx_bytes as f64 * 8.0 / s,
            tx_pps: tx_packets as f64 / s,
            tx_bps: tx_bytes as f64 * 8.0 / s,
        }
    }
}

/// One port's line of the forward report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortForward {
    pub port: usize,
    pub rx_packets: u64,
    /// Frames the device dropped on receive while forwarding ran.
    pub rx_dropped: u64,
    pub rx_total: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
    pub tx_total: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_mpps: f64,
    pub rx_mbps: f64,
    pub tx_mpps: f64,
    pub tx_mbps: f64,
    /// csum mode: received frames the device flagged with a bad IPv4 /
    /// TCP-UDP checksum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_ip_csum: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_l4_csum: Option<u64>,
    /// `--record-burst-stats`: bursts received on / sent to this port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bursts: Option<BurstSpread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bursts: Option<BurstSpread>,
}

/// How many bursts had each size (index = packets in the burst, 0 for an
/// empty poll), as DPDK's `--record-burst-stats` keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct BurstSpread(pub Vec<u64>);

impl BurstSpread {
    /// Room for bursts of 0..=`max_burst` packets.
    pub fn new(max_burst: usize) -> Self {
        BurstSpread(vec![0; max_burst + 1])
    }

    /// One burst of `n` packets.
    #[inline]
    pub fn record(&mut self, n: usize) {
        if let Some(c) = self.0.get_mut(n) {
            *c += 1;
        }
    }

    pub fn add(&mut self, o: &BurstSpread) {
        if self.0.len() < o.0.len() {
            self.0.resize(o.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// DPDK's line: `  RX-bursts : TOTAL [P% of 0 pkts + P% of N pkts +
    /// P% of M pkts + P% of other]`: empty polls always first, then the two
    /// most frequent sizes, the rest as "other"; the list ends as soon as
    /// the sizes shown cover every burst. `None` when nothing was counted.
    pub fn line(&self, rx_tx: &str) -> Option<String> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        // (count, size): size 0 first, then the two largest counts.
        let mut top = [
            (self.0.first().copied().unwrap_or(0), 0usize),
            (0, 0),
            (0, 0),
        ];
        for (size, &n) in self.0.iter().enumerate().skip(1) {
            if n == 0 {
                continue;
            }
            if n > top[1].0 {
                top[2] = top[1];
                top[1] = (n, size);
            } else if n > top[2].0 {
                top[2] = (n, size);
            }
        }
        let mut s = format!("  {rx_tx}-bursts : {total} [");
        let (mut covered, mut pct_sum) = (0u64, 0i64);
        for (count, size) in top {
            covered += count;
            if covered == total {
                let _ = write!(s, "{}% of {size} pkts]", 100 - pct_sum);
                return Some(s);
            }
            let pct = (count as f64 / total as f64 * 100.0) as i64;
            let _ = write!(s, "{pct}% of {size} pkts + ");
            pct_sum += pct;
        }
        let _ = write!(s, "{}% of other]", 100 - pct_sum);
        Some(s)
    }
}

/// `--record-core-cycles`: the CPU cycles the forwarding lcores spent on
/// polls that handled packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreCycles {
    pub total_cycles: u64,
    /// Packets received (sent, for txonly and flowgen).
    pub packets: u64,
    /// The cycle counter's rate.
    pub mhz: u64,
}

impl CoreCycles {
    /// DPDK's line.
    pub fn line(&self, mode: &str) -> Option<String> {
        if self.packets == 0 {
            return None;
        }
        Some(format!(
            "  CPU cycles/packet={:.2} (total cycles={} / total {mode} packets={}) at {} MHz Clock",
            self.total_cycles as f64 / self.packets as f64,
            self.total_cycles,
            self.packets,
            self.mhz
        ))
    }
}

impl PortForward {
    /// `fwd`: the streams' counts on this port (RX side from streams that
    /// receive on it, TX side from streams that send on it); `dev`: the
    /// port's device counters over the same run.
    pub fn new(port: usize, fwd: &FwdCounters, dev: &PortCounters, elapsed: Duration) -> Self {
        let r = Rates::of(
            fwd.rx_packets,
            fwd.rx_bytes,
            fwd.tx_packets,
            fwd.tx_bytes,
            elapsed,
        );
        let rx_dropped = dev.rx_missed + dev.rx_nombuf;
        PortForward {
            port,
            rx_packets: fwd.rx_packets,
            rx_dropped,
            rx_total: fwd.rx_packets + rx_dropped,
            tx_packets: fwd.tx_packets,
            tx_dropped: fwd.tx_dropped,
            tx_total: fwd.tx_packets + fwd.tx_dropped,
            rx_bytes: fwd.rx_bytes,
            tx_bytes: fwd.tx_bytes,
            rx_mpps: r.rx_pps / 1e6,
            rx_mbps: r.rx_bps / 1e6,
            tx_mpps: r.tx_pps / 1e6,
            tx_mbps: r.tx_bps / 1e6,
            bad_ip_csum: None,
            bad_l4_csum: None,
            rx_bursts: None,
            tx_bursts: None,
        }
    }
}

/// One stream's line, shown when a port has more than one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamForward {
    pub rx_port: usize,
    pub rx_queue: u16,
    pub tx_port: usize,
    pub tx_queue: u16,
    pub counters: FwdCounters,
    /// `--record-burst-stats`: (RX, TX) burst sizes of this stream.
    #[serde(skip)]
    pub bursts: Option<(BurstSpread, BurstSpread)>,
}

/// The four counter lines of a port's or the accumulated block, as DPDK's
/// testpmd prints them: packets/dropped/total each way (with `between`
/// after the RX line: csum mode's Bad-ipcsum lines), then Mpps and Mbit/s.
fn counter_lines(s: &mut String, rx: [u64; 3], tx: [u64; 3], rates: [f64; 4], between: &str) {
    let _ = writeln!(
        s,
        "  RX-packets: {:<14} RX-dropped: {:<14} RX-total: {}",
        rx[0], rx[1], rx[2]
    );
    s.push_str(between);
    let _ = writeln!(
        s,
        "  TX-packets: {:<14} TX-dropped: {:<14} TX-total: {}",
        tx[0], tx[1], tx[2]
    );
    let _ = writeln!(
        s,
        "  RX-Mpps: {:<17.6} RX-Mbit/s: {:<15.3}",
        rates[0], rates[1]
    );
    let _ = writeln!(
        s,
        "  TX-Mpps: {:<17.6} TX-Mbit/s: {:<15.3}",
        rates[2], rates[3]
    );
}

/// Accumulated totals over all ports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub rx_total: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
    pub tx_total: u64,
    pub rx_mpps: f64,
    pub rx_mbps: f64,
    pub tx_mpps: f64,
    pub tx_mbps: f64,
}

/// The report printed when forwarding stops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForwardReport {
    pub mode: String,
    pub elapsed_s: f64,
    pub ports: Vec<PortForward>,
    pub streams: Vec<StreamForward>,
    pub total: Totals,
    /// `--record-core-cycles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_cycles: Option<CoreCycles>,
}

impl ForwardReport {
    pub fn new(
        mode: &str,
        elapsed: Duration,
        ports: Vec<PortForward>,
        streams: Vec<StreamForward>,
    ) -> Self {
        let sum = |f: fn(&PortForward) -> u64| ports.iter().map(f).sum::<u64>();
        let (rxb, txb) = (sum(|p| p.rx_bytes), sum(|p| p.tx_bytes));
        let (rxp, txp) = (sum(|p| p.rx_packets), sum(|p| p.tx_packets));
        let r = Rates::of(rxp, rxb, txp, txb, elapsed);
        let total = Totals {
            rx_packets: rxp,
            rx_dropped: sum(|p| p.rx_dropped),
            rx_total: sum(|p| p.rx_total),
            tx_packets: txp,
            tx_dropped: sum(|p| p.tx_dropped),
            tx_total: sum(|p| p.tx_total),
            rx_mpps: r.rx_pps / 1e6,
            rx_mbps: r.rx_bps / 1e6,
            tx_mpps: r.tx_pps / 1e6,
            tx_mbps: r.tx_bps / 1e6,
        };
        ForwardReport {
            mode: mode.to_string(),
            elapsed_s: elapsed.as_secs_f64(),
            ports,
            streams,
            total,
            core_cycles: None,
        }
    }

    /// The human report.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let streams_per_port = |p: usize| self.streams.iter().filter(|x| x.rx_port == p).count();
        let many = self.ports.iter().any(|p| streams_per_port(p.port) > 1);
        if many {
            for st in &self.streams {
                let _ = writeln!(
                    s,
                    "\n  ------- Forward Stats for RX Port={:2}/Queue={:2} -> TX Port={:2}/Queue={:2} -------",
                    st.rx_port, st.rx_queue, st.tx_port, st.tx_queue
                );
                let c = &st.counters;
                let _ = writeln!(
                    s,
                    "  RX-packets: {:<14} TX-packets: {:<14} TX-dropped: {}",
                    c.rx_packets, c.tx_packets, c.tx_dropped
                );
                if let Some((rx, tx)) = &st.bursts {
                    for l in [rx.line("RX"), tx.line("TX")].into_iter().flatten() {
                        let _ = writeln!(s, "{l}");
                    }
                }
            }
        }
        for p in &self.ports {
            let _ = writeln!(
                s,
                "\n  ---------------------- Forward statistics for port {:<2} ----------------------",
                p.port
            );
            let mut between = String::new();
            if let (Some(ip), Some(l4)) = (p.bad_ip_csum, p.bad_l4_csum) {
                // No tunnel is parsed, so the outer counts are 0.
                let _ = writeln!(
                    between,
                    "  Bad-ipcsum: {ip:<14} Bad-l4csum: {l4:<14} Bad-outer-l4csum: {:<14}",
                    0
                );
                let _ = writeln!(between, "  Bad-outer-ipcsum: {:<14}", 0);
            }
            counter_lines(
                &mut s,
                [p.rx_packets, p.rx_dropped, p.rx_total],
                [p.tx_packets, p.tx_dropped, p.tx_total],
                [p.rx_mpps, p.rx_mbps, p.tx_mpps, p.tx_mbps],
                &between,
            );
            if !many {
                let lines = [
                    p.rx_bursts.as_ref().and_then(|b| b.line("RX")),
                    p.tx_bursts.as_ref().and_then(|b| b.line("TX")),
                ];
                for l in lines.into_iter().flatten() {
                    let _ = writeln!(s, "{l}");
                }
            }
            let _ = writeln!(s, "  {}", "-".repeat(76));
        }
        let t = &self.total;
        let _ = writeln!(
            s,
            "\n  +++++++++++++++ Accumulated forward statistics for all ports +++++++++++++++"
        );
        counter_lines(
            &mut s,
            [t.rx_packets, t.rx_dropped, t.rx_total],
            [t.tx_packets, t.tx_dropped, t.tx_total],
            [t.rx_mpps, t.rx_mbps, t.tx_mpps, t.tx_mbps],
            "",
        );
        let _ = writeln!(
            s,
            "  Forwarding time: {:.3} s ({} mode)",
            self.elapsed_s, self.mode
        );
        let _ = writeln!(s, "  {}", "+".repeat(76));
        if let Some(l) = self.core_cycles.as_ref().and_then(|c| c.line(&self.mode)) {
            let _ = writeln!(s, "\n{l}");
        }
        s
    }

    /// The `--json` line: `{"event":"final", ...}`.
    pub fn json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), "final".into());
        }
        v.to_string()
    }
}

/// `show port stats N`: device counters and throughput since the previous
/// show (`rates`; zero the first time).
pub fn port_stats_text(port: usize, c: &PortCounters, rates: &Rates) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n  ######################## NIC statistics for port {port:<2} ########################"
    );
    let _ = writeln!(
        s,
        "  RX-packets: {:<10} RX-missed: {:<10} RX-bytes:  {}",
        c.rx_packets, c.rx_missed, c.rx_bytes
    );
    let _ = writeln!(s, "  RX-errors: {}", c.rx_errors);
    let _ = writeln!(s, "  RX-nombuf:  {:<10}", c.rx_nombuf);
    let _ = writeln!(
        s,
        "  TX-packets: {:<10} TX-errors: {:<10} TX-bytes:  {}",
        c.tx_packets, c.tx_errors, c.tx_bytes
    );
    let _ = writeln!(s, "\n  Throughput (since last show)");
    let _ = writeln!(
        s,
        "  Rx-pps: {:>12.0}          Rx-bps: {:>12.0}",
        rates.rx_pps, rates.rx_bps
    );
    let _ = writeln!(
        s,
        "  Tx-pps: {:>12.0}          Tx-bps: {:>12.0}",
        rates.tx_pps, rates.tx_bps
    );
    let _ = writeln!(s, "  {}", "#".repeat(76));
    s
}

/// One port's entry of a `--json` periodic line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortSample {
    pub port: usize,
    #[serde(flatten)]
    pub counters: PortCounters,
    #[serde(flatten)]
    pub rates: Rates,
}

/// The `--json` periodic line: `{"event":"stats","elapsed_s":..,"ports":[..]}`.
pub fn stats_json(elapsed: Duration, ports: &[PortSample]) -> String {
    serde_json::json!({
        "event": "stats",
        "elapsed_s": elapsed.as_secs_f64(),
        "ports": ports,
    })
    .to_string()
}

/// `show port xstats N`.
pub fn xstats_text(port: usize, xstats: &[(String, u64)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "###### NIC extended statistics for port {port:<2}");
    for (name, v) in xstats {
        let _ = writeln!(s, "{name}: {v}");
    }
    s
}

/// What `show port info` tells about a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortInfo {
    pub port: usize,
    pub pci: String,
    pub driver: String,
    pub mac: String,
    pub link_up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
    /// Flow control autonegotiation resolved (none, rx, tx, full).
    pub flow_control: String,
    pub promisc: bool,
    pub allmulti: bool,
    pub mtu: u32,
    pub rxq: u16,
    pub txq: u16,
    pub rxd: u16,
    pub txd: u16,
    /// Started (else stopped or closed).
    pub started: bool,
    /// The receive offloads in effect, DPDK's names.
    pub rx_offloads: String,
}

/// `show port info N`.
pub fn port_info_text(i: &PortInfo) -> String {
    let on = |b: bool| if b { "enabled" } else { "disabled" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n********************* Infos for port {:<2} *********************",
        i.port
    );
    let _ = writeln!(s, "MAC address: {}", i.mac);
    let _ = writeln!(s, "Device name: {}", i.pci);
    let _ = writeln!(s, "Driver name: {}", i.driver);
    let _ = writeln!(
        s,
        "Port status: {}",
        if i.started { "started" } else { "stopped" }
    );
    let _ = writeln!(s, "Link status: {}", if i.link_up { "up" } else { "down" });
    if i.link_up {
        let _ = writeln!(s, "Link speed: {} Mbps", i.speed_mbps);
        let _ = writeln!(
            s,
            "Link duplex: {}",
            if i.full_duplex {
                "full-duplex"
            } else {
                "half-duplex"
            }
        );
        let _ = writeln!(s, "Flow control: {}", i.flow_control);
    }
    let _ = writeln!(s, "MTU: {}", i.mtu);
    let _ = writeln!(s, "Promiscuous mode: {}", on(i.promisc));
    let _ = writeln!(s, "Allmulticast mode: {}", on(i.allmulti));
    let _ = writeln!(s, "Current number of RX queues: {}", i.rxq);
    let _ = writeln!(s, "Current number of TX queues: {}", i.txq);
    let _ = writeln!(s, "RX descriptors per queue: {}", i.rxd);
    let _ = writeln!(s, "TX descriptors per queue: {}", i.txd);
    let _ = writeln!(s, "Rx offloads: {}", i.rx_offloads);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ForwardReport {
        let secs = Duration::from_secs(2);
        let fwd0 = FwdCounters {
            rx_packets: 2_000_000,
            rx_bytes: 128_000_000,
            tx_packets: 1_000_000,
            tx_bytes: 64_000_000,
            tx_dropped: 5,
            rx_consumed: 0,
        };
        let fwd1 = FwdCounters {
            rx_packets: 1_000_005,
            rx_bytes: 64_000_320,
            tx_packets: 2_000_000,
            tx_bytes: 128_000_000,
            tx_dropped: 0,
            rx_consumed: 0,
        };
        let dev0 = PortCounters {
            rx_missed: 7,
            ..Default::default()
        };
        let ports = vec![
            PortForward::new(0, &fwd0, &dev0, secs),
            PortForward::new(1, &fwd1, &PortCounters::default(), secs),
        ];
        ForwardReport::new("io", secs, ports, Vec::new())
    }

    fn spread(pairs: &[(usize, u64)]) -> BurstSpread {
        let mut b = BurstSpread::new(32);
        for &(size, n) in pairs {
            b.0[size] = n;
        }
        b
    }

    #[test]
    fn burst_lines_read_as_dpdks() {
        // Every burst full: empty polls first, then the one size.
        assert_eq!(
            spread(&[(32, 212_557)]).line("TX").unwrap(),
            "  TX-bursts : 212557 [0% of 0 pkts + 100% of 32 pkts]"
        );
        assert_eq!(
            spread(&[(0, 3), (1, 1)]).line("RX").unwrap(),
            "  RX-bursts : 4 [75% of 0 pkts + 25% of 1 pkts]"
        );
        // Three sizes besides 0: the two most frequent, then "other".
        assert_eq!(
            spread(&[(0, 50), (4, 30), (8, 15), (2, 5)])
                .line("RX")
                .unwrap(),
            "  RX-bursts : 100 [50% of 0 pkts + 30% of 4 pkts + 15% of 8 pkts + 5% of other]"
        );
        // Exactly two sizes besides 0: no "other".
        assert_eq!(
            spread(&[(0, 1), (4, 1), (8, 1)]).line("RX").unwrap(),
            "  RX-bursts : 3 [33% of 0 pkts + 33% of 4 pkts + 34% of 8 pkts]"
        );
        assert_eq!(BurstSpread::new(32).line("RX"), None);
        let mut a = spread(&[(1, 2)]);
        a.add(&spread(&[(1, 3), (0, 1)]));
        a.record(2);
        a.record(999);
        assert_eq!((a.0[0], a.0[1], a.0[2], a.total()), (1, 5, 1, 7));
    }

    #[test]
    fn csum_bursts_and_cycles_have_dpdks_lines() {
        let mut r = report();
        r.ports[0].bad_ip_csum = Some(3);
        r.ports[0].bad_l4_csum = Some(4);
        r.ports[0].tx_bursts = Some(spread(&[(32, 2)]));
        r.core_cycles = Some(CoreCycles {
            total_cycles: 1000,
            packets: 8,
            mhz: 2600,
        });
        let t = r.text();
        assert!(
            t.contains(
                "  Bad-ipcsum: 3              Bad-l4csum: 4              Bad-outer-l4csum: 0"
            ),
            "{t}"
        );
        let block0 = t.split("Forward statistics for port 1").next().unwrap();
        let rx = block0.find("RX-packets").unwrap();
        let bad = block0.find("Bad-ipcsum").unwrap();
        let tx = block0.find("TX-packets").unwrap();
        assert!(rx < bad && bad < tx, "between RX and TX:\n{block0}");
        assert!(block0.contains("  TX-bursts : 2 [0% of 0 pkts + 100% of 32 pkts]"));
        assert!(t.contains(
            "\n  CPU cycles/packet=125.00 (total cycles=1000 / total io packets=8) at 2600 MHz Clock\n"
        ));
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["ports"][0]["bad_ip_csum"], 3);
        assert_eq!(v["core_cycles"]["total_cycles"], 1000);
        assert!(v["ports"][1].get("bad_ip_csum").is_none());
    }

    #[test]
    fn rates_are_per_second() {
        let r = report();
        let p0 = &r.ports[0];
        assert_eq!(p0.rx_mpps, 1.0);
        assert_eq!(p0.rx_mbps, 512.0);
        assert_eq!(p0.tx_mpps, 0.5);
        assert_eq!(p0.rx_dropped, 7);
        assert_eq!(p0.rx_total, 2_000_007);
        assert_eq!(p0.tx_total, 1_000_005);
        assert_eq!(r.total.rx_packets, 3_000_005);
        assert_eq!(r.total.tx_packets, 3_000_000);
        assert_eq!(r.total.tx_dropped, 5);
        assert_eq!(r.total.tx_mpps, 1.5);
    }

    #[test]
    fn text_has_dpdks_blocks() {
        let t = report().text();
        assert!(t.contains("Forward statistics for port 0"));
        assert!(t.contains("Forward statistics for port 1"));
        assert!(t.contains("Accumulated forward statistics for all ports"));
        assert!(
            t.contains("RX-packets: 2000000        RX-dropped: 7              RX-total: 2000007")
        );
        assert!(t.contains("RX-Mpps: 1.000000"));
        assert!(t.contains("RX-Mbit/s: 512.000"));
        assert!(t.contains("TX-Mpps: 1.500000"));
    }

    #[test]
    fn json_is_one_parseable_line() {
        let j = report().json();
        assert!(!j.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["event"], "final");
        assert_eq!(v["ports"][0]["rx_dropped"], 7);
        assert_eq!(v["total"]["tx_packets"], 3_000_000);
        assert_eq!(v["mode"], "io");
    }

    #[test]
    fn periodic_json_flattens_counters() {
        let s = PortSample {
            port: 1,
            counters: PortCounters {
                rx_packets: 10,
                ..Default::default()
            },
            rates: Rates::of(10, 640, 0, 0, Duration::from_secs(1)),
        };
        let v: serde_json::Value =
            serde_json::from_str(&stats_json(Duration::from_millis(1500), &[s])).unwrap();
        assert_eq!(v["event"], "stats");
        assert_eq!(v["elapsed_s"], 1.5);
        assert_eq!(v["ports"][0]["rx_packets"], 10);
        assert_eq!(v["ports"][0]["rx_bps"], 5120.0);
    }

    #[test]
    fn port_stats_and_since() {
        let a = PortCounters {
            rx_packets: 100,
            tx_bytes: 6400,
            ..Default::default()
        };
        let b = PortCounters {
            rx_packets: 40,
            tx_bytes: 1400,
            ..Default::default()
        };
        let d = a.since(&b);
        assert_eq!(d.rx_packets, 60);
        assert_eq!(d.tx_bytes, 5000);
        let t = port_stats_text(0, &a, &Rates::of(60, 0, 0, 5000, Duration::from_secs(1)));
        assert!(t.contains("NIC statistics for port 0"));
        assert!(t.contains("RX-packets: 100"));
        assert!(t.contains("Rx-pps:           60"));
        assert!(t.contains("Tx-bps:        40000"));
    }
}
