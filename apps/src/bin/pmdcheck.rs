//! `pmdcheck`: exercises one port through the `pmd` API for end-to-end
//! tests. Every subcommand opens the port, waits for link, prints
//! `pmdcheck: ready` (send traffic after that line), does its job, prints the
//! port's counters, closes the port and prints the pool's in-use count.
//!
//! ```text
//! pmdcheck echo    --pci P [--rxq N] [--count N] [--macswap] [--idle-ms T] [--burst B]
//!                  [--csum] [--tso MSS] [--vlan TCI] [--segments K]
//! pmdcheck rx-dump --pci P [--rxq N] [--count N] [--idle-ms T] [--vlan-strip] [--mtu M]
//! pmdcheck fwd     --pci P --to Q [--count N] [--idle-ms T] [--mtu M]
//! (every subcommand: [--pool-bufs N], the shared pool's size, default 8192)
//! pmdcheck filters --pci P [--mtu M] [--promisc] --step S [--step S ..]
//! pmdcheck open-fail --pci P --link-timeout-ms 0 [--watch-ms T]
//! pmdcheck link    --pci P [--hold-ms T]
//! ```
//! `open-fail` expects the open to fail (a link wait too short for the
//! device: RX was already enabled), prints `pmdcheck: open failed: ERROR`
//! and `pool in_use=N` right after, then takes every buffer of the pool,
//! fills each with a pattern, waits `--watch-ms` (send traffic meanwhile)
//! and prints `watch buffers=N overwritten=M`: a buffer the failed port
//! had posted and the device wrote after the pool got it back shows as
//! overwritten. Exits non-zero if the open succeeded or a buffer was
//! overwritten.
//!
//! `link` only brings the port up and down: open, wait for link, print
//! `@@mark link-up`, hold the link `--hold-ms`, close, print `@@mark closed`
//! (the golden trace test cuts QEMU's register trace at those marks).
//! `filters` applies each step's setting in turn (`promisc=on|off`,
//! `allmulti=on|off`, `uc=MAC,..` extra unicast addresses (`MAC*N`: N from MAC up), `mc=MAC,..`
//! multicast filter, an empty list clears; `mtu=N`; `none`), zeroes the
//! counters, prints `pmdcheck: step I SETTING` and then one
//! `rx step=I len=L data=HEX` line per received frame until a frame with
//! EtherType 0x88B5 to the port's own address ends the step (that marker is
//! received and counted but not printed), then
//! `step-stats step=I ipackets=.. ibytes=.. ierrors=.. imissed=.. sw_packets=..
//! rx_multicast_packets=.. rx_broadcast_packets=.. rx_oversize_errors=..`.
//! A setting the port refuses prints `error step=I MESSAGE` and the step
//! runs with the port unchanged.
//! `fwd` forwards between two ports in both directions (testpmd's io mode)
//! and prints `fwd a_to_b=N b_to_a=M`, then each port's counters (first
//! `--pci`, then `--to`).
//! `echo` sends each received frame back; with offload options it asks the
//! device to fill checksums, segment (TSO), insert a tag, or sends the frame
//! copied into K segments, so a test can send templates and check what the
//! device makes of them. `--tag T` is appended to the ready line.
//! Output lines (one per fact, `key=value` words):
//! - `rx q=Q len=L rss=0xH rss_ok=0|1 vlan=V|- ip=good|bad|- l4=good|bad|- flow=0|1 segs=S data=HEX`
//! - `stats ipackets=.. opackets=.. ibytes=.. obytes=.. imissed=.. ierrors=.. oerrors=.. rx_nombuf=..`
//! - `qstats rx=a,b,.. tx=a,b,..`
//! - `mmio packets=N tail_writes=W reads=R writes=W per_packet=F`
//! - `pool in_use=N` after close.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hw::PciAddress;
use pmd::{Packet, Port, PortConfig, RxFlags, RxOffloads, TxFlags};
use pool::{Pool, PoolConfig};

#[derive(Parser)]
#[command(about = "End-to-end checks of the pmd drivers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Buffers in the pool every port of the run shares (fewer than the
    /// rings and the TX queue's unreclaimed buffers need makes the RX
    /// refill fail: rx_nombuf).
    #[arg(long, global = true, default_value_t = 8192)]
    pool_bufs: usize,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// PCI address of the port.
    #[arg(long)]
    pci: PciAddress,
    /// RX queues (RSS spreads over them).
    #[arg(long, default_value_t = 1)]
    rxq: u16,
    /// Stop after this many packets.
    #[arg(long, default_value_t = u64::MAX)]
    count: u64,
    /// Stop after this long without a packet (after the first one).
    #[arg(long, default_value_t = 3000)]
    idle_ms: u64,
    /// Give up after this long in total.
    #[arg(long, default_value_t = 60_000)]
    max_ms: u64,
    #[arg(long, default_value_t = 32)]
    burst: usize,
    #[arg(long, default_value_t = 1500)]
    mtu: u16,
    #[arg(long)]
    vlan_strip: bool,
    /// Do not ask for RX checksum validation (RxOffloads::checksum off).
    #[arg(long)]
    no_rx_cksum: bool,
    /// Ask for the RSS hash even with one RX queue (RxOffloads::rss_hash).
    #[arg(long)]
    rss_hash: bool,
    #[arg(long)]
    promisc: bool,
    /// Appended to the ready line.
    #[arg(long, default_value = "")]
    tag: String,
    /// How long open waits for the link (default: the driver's).
    #[arg(long)]
    link_timeout_ms: Option<u64>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send every received frame back (unchanged, or with MACs swapped).
    Echo {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        macswap: bool,
        /// Ask for IPv4 header and TCP/UDP checksums.
        #[arg(long)]
        csum: bool,
        /// TCP segmentation with this MSS.
        #[arg(long)]
        tso: Option<u16>,
        /// Insert this VLAN TCI.
        #[arg(long)]
        vlan: Option<u16>,
        /// Copy each frame into this many segments before sending.
        #[arg(long)]
        segments: Option<usize>,
    },
    /// Print one line per received packet.
    RxDump {
        #[command(flatten)]
        c: Common,
        /// Steer frames of EtherType T to RX queue Q first (`T:Q`, T in
        /// hex with 0x), with a flow rule.
        #[arg(long, value_parser = parse_ethertype_rule)]
        flow_ethertype: Option<(u16, u16)>,
    },
    /// Apply filter/MTU settings step by step and report what each step
    /// received.
    Filters {
        #[command(flatten)]
        c: Common,
        /// One setting per step (see the module documentation).
        #[arg(long = "step")]
        steps: Vec<String>,
    },
    /// Open expecting failure, then check no pool buffer is written.
    OpenFail {
        #[command(flatten)]
        c: Common,
        /// How long to watch the pool's buffers after the failed open.
        #[arg(long, default_value_t = 3000)]
        watch_ms: u64,
    },
    /// Open, wait for link, hold it, close: nothing else.
    Link {
        #[command(flatten)]
        c: Common,
        /// How long to hold the link up before closing.
        #[arg(long, default_value_t = 1000)]
        hold_ms: u64,
    },
    /// Forward between `--pci` and `--to`, both ways, packets unchanged.
    Fwd {
        #[command(flatten)]
        c: Common,
        /// PCI address of the second port.
        #[arg(long)]
        to: PciAddress,
    },
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn make_pool(bufs: usize) -> Result<Arc<Pool>, String> {
    let cfg = PoolConfig::new("pmdcheck", bufs).with_buf_size(2048 + usize::from(pmd::HEADROOM));
    let dma =
        hw::dma::DmaMemory::allocate(bufs * cfg.buf_size + (2 << 20), hw::HugePageSize::Size2M)
            .map_err(|e| format!("DMA memory for the pool: {e}"))?;
    Pool::with_pages(dma, &cfg).map_err(|e| format!("pool: {e}"))
}

fn open(c: &Common, pool: &Arc<Pool>) -> Result<Port, String> {
    let cfg = PortConfig {
        rx_queues: c.rxq,
        tx_queues: c.rxq,
        mtu: c.mtu,
        vlan_strip: c.vlan_strip,
        rx_offloads: RxOffloads {
            checksum: !c.no_rx_cksum,
            rss_hash: c.rss_hash,
        },
        promiscuous: c.promisc,
        ..PortConfig::default()
    };
    let cfg = match c.link_timeout_ms {
        Some(ms) => PortConfig {
            link_timeout: Duration::from_millis(ms),
            ..cfg
        },
        None => cfg,
    };
    let port = Port::open(&c.pci, &cfg, std::slice::from_ref(pool)).map_err(|e| e.to_string())?;
    println!(
        "pmdcheck: port {} driver={} device={:?} link={}",
        c.pci,
        port.driver_name(),
        port.device_name(),
        port.link()
    );
    Ok(port)
}

fn flag(f: RxFlags, good: RxFlags, bad: RxFlags) -> &'static str {
    if f.contains(bad) {
        "bad"
    } else if f.contains(good) {
        "good"
    } else {
        "-"
    }
}

fn describe(p: &Packet) -> String {
    let f = p.rx_flags;
    let vlan = if f.contains(RxFlags::VLAN_STRIPPED) {
        p.vlan_tci.to_string()
    } else {
        "-".into()
    };
    format!(
        "rx q={} len={} rss=0x{:08x} rss_ok={} vlan={vlan} ip={} l4={} flow={} segs={} data={}",
        p.queue,
        p.len(),
        p.rss_hash,
        u8::from(f.contains(RxFlags::RSS_HASH)),
        flag(f, RxFlags::IP_CKSUM_GOOD, RxFlags::IP_CKSUM_BAD),
        flag(f, RxFlags::L4_CKSUM_GOOD, RxFlags::L4_CKSUM_BAD),
        u8::from(f.contains(RxFlags::FLOW_MATCH)),
        p.segment_count(),
        p.to_vec()
            .map(|v| hex(&v))
            .unwrap_or_else(|| "device-memory".into()),
    )
}

fn print_stats(port: &Port) {
    let s = port.stats();
    println!(
        "stats ipackets={} opackets={} ibytes={} obytes={} imissed={} ierrors={} oerrors={} rx_nombuf={}",
        s.ipackets, s.opackets, s.ibytes, s.obytes, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf
    );
    let j = |v: &[u64]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    println!("qstats rx={} tx={}", j(&s.q_ipackets), j(&s.q_opackets));
    let x = port.xstats();
    let pick = [
        "tx_tso_packets",
        "rx_overrun_events",
        "rx_total_packets",
        "tx_total_packets",
        "rx_oversize_errors",
        "rx_undersize_errors",
        "rx_length_errors",
        "rx_no_buffer_count",
        "rx_missed_packets",
    ];
    let parts: Vec<String> = x
        .iter()
        .filter(|s| pick.contains(&s.name.as_str()) || s.name.ends_with("ring_full"))
        .map(|s| format!("{}={}", s.name, s.value))
        .collect();
    println!("xstats count={} {}", x.len(), parts.join(" "));
}

/// Receive loop shared by echo and rx-dump: calls `each` with every burst.
fn rx_loop(
    c: &Common,
    rxq: &mut [pmd::RxQueue],
    mut each: impl FnMut(&mut Vec<Packet>) -> Result<(), String>,
) -> Result<u64, String> {
    let start = Instant::now();
    let mut last = None::<Instant>;
    let mut total = 0u64;
    let mut pkts = Vec::with_capacity(c.burst);
    println!("pmdcheck: ready {}", c.tag);
    while total < c.count {
        let mut got = 0;
        for q in rxq.iter_mut() {
            let max = c.burst.min((c.count - total) as usize);
            let n = q.rx_burst(&mut pkts, max);
            if n > 0 {
                got += n;
                total += n as u64;
                each(&mut pkts)?;
                pkts.clear();
            }
        }
        if idle_or_over(c, got, &mut last, start) {
            break;
        }
    }
    Ok(total)
}

/// See `open-fail` in the module documentation.
fn open_fail(c: &Common, pool: &Arc<Pool>, watch_ms: u64) -> Result<(), String> {
    const PATTERN: u8 = 0xa5;
    match open(c, pool) {
        Ok(port) => {
            port.close();
            return Err("the open succeeded; open-fail needs an open that fails".into());
        }
        Err(e) => println!("pmdcheck: open failed: {e}"),
    }
    println!("pool in_use={}", pool.in_use());
    // Buffers the failed port freed may sit in this lcore's cache.
    pool.flush_cache();
    let mut bufs = Vec::new();
    pool.alloc_bulk(&mut bufs, pool.count());
    for b in bufs.iter_mut() {
        if let Some(d) = b.bytes_mut() {
            d.fill(PATTERN);
        }
    }
    println!("pmdcheck: watching {} buffers", bufs.len());
    std::thread::sleep(Duration::from_millis(watch_ms));
    let overwritten = bufs
        .iter()
        .filter(|b| b.bytes().is_some_and(|d| d.iter().any(|&x| x != PATTERN)))
        .count();
    println!("watch buffers={} overwritten={overwritten}", bufs.len());
    pool.free_bulk(bufs);
    println!("pool in_use={}", pool.in_use());
    if overwritten > 0 {
        return Err(format!(
            "{overwritten} pool buffers were written after the failed open gave them back"
        ));
    }
    Ok(())
}

fn finish(port: Port, pool: &Arc<Pool>) {
    print_stats(&port);
    port.close();
    println!("pool in_use={}", pool.in_use());
}

fn run(cli: Cli) -> Result<(), String> {
    pool::lcore::set_current(0).map_err(|e| e.to_string())?;
    let pool = make_pool(cli.pool_bufs)?;
    match cli.cmd {
        Cmd::Echo {
            c,
            macswap,
            csum,
            tso,
            vlan,
            segments,
        } => {
            let offload = Offload { csum, tso, vlan };
            let port = open(&c, &pool)?;
            let mut rxq: Vec<_> = (0..c.rxq)
                .map(|i| port.take_rx_queue(i))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let mut txq = port.take_tx_queue(0).map_err(|e| e.to_string())?;
            let before = port.mmio_counts();
            let mut tx_retries = 0u64;
            let n = rx_loop(&c, &mut rxq, |pkts| {
                if macswap {
                    for p in pkts.iter_mut() {
                        if let Some(d) = p.data_mut().filter(|d| d.len() >= 12) {
                            let (a, b) = d.split_at_mut(6);
                            a.swap_with_slice(&mut b[..6]);
                        }
                    }
                }
                if let Some(k) = segments {
                    let copies: Vec<Packet> = pkts
                        .iter()
                        .map(|p| build(&pool, &p.to_vec().unwrap_or_default(), k))
                        .collect::<Result<_, _>>()?;
                    pkts.clear();
                    pkts.extend(copies);
                }
                for p in pkts.iter_mut() {
                    offload.apply(p)?;
                }
                while !pkts.is_empty() {
                    if txq.tx_burst(pkts) == 0 {
                        tx_retries += 1;
                        std::hint::spin_loop();
                    }
                }
                Ok(())
            })?;
            let after = port.mmio_counts();
            println!("pmdcheck: echoed {n} (tx retries {tx_retries})");
            if let (Some((r0, w0)), Some((r1, w1))) = (before, after) {
                let (r, w) = (r1 - r0, w1 - w0);
                println!(
                    "mmio packets={n} reads={r} writes={w} per_packet={:.4}",
                    (r + w) as f64 / n.max(1) as f64
                );
            }
            drop(rxq);
            drop(txq);
            finish(port, &pool);
        }
        Cmd::Link { c, hold_ms } => {
            let port = open(&c, &pool)?;
            let l = port
                .wait_for_link(Duration::from_millis(c.max_ms))
                .map_err(|e| e.to_string())?;
            println!("pmdcheck: link {l}");
            println!("@@mark link-up");
            std::thread::sleep(Duration::from_millis(hold_ms));
            port.close();
            println!("@@mark closed");
        }
        Cmd::Fwd { c, to } => {
            let a = open(&c, &pool)?;
            let b = open(
                &Common {
                    pci: to,
                    ..c.clone()
                },
                &pool,
            )?;
            let (ab, ba) = forward(&c, &a, &b)?;
            println!("fwd a_to_b={ab} b_to_a={ba}");
            print_stats(&a);
            print_stats(&b);
            a.close();
            b.close();
            println!("pool in_use={}", pool.in_use());
        }
        Cmd::OpenFail { c, watch_ms } => open_fail(&c, &pool, watch_ms)?,
        Cmd::Filters { c, steps } => {
            let port = open(&c, &pool)?;
            filters(&c, &port, &steps)?;
            finish(port, &pool);
        }
        Cmd::RxDump { c, flow_ethertype } => {
            let port = open(&c, &pool)?;
            if let Some((t, q)) = flow_ethertype {
                let id = port
                    .add_flow_rule(pmd::FlowRule::ethertype(t), q)
                    .map_err(|e| e.to_string())?;
                println!("pmdcheck: flow rule #{id} ethertype {t:#06x} -> queue {q}");
            }
            let mut rxq: Vec<_> = (0..c.rxq)
                .map(|i| port.take_rx_queue(i))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let n = rx_loop(&c, &mut rxq, |pkts| {
                for p in pkts.iter() {
                    println!("{}", describe(p));
                }
                Ok(())
            })?;
            println!("pmdcheck: received {n}");
            drop(rxq);
            finish(port, &pool);
        }
    }
    Ok(())
}

/// Forwards both ways between `a` and `b` (queue 0 of each) until
/// `c.count` packets in total or `c.idle_ms` without one. Returns the
/// packets forwarded a->b and b->a.
fn forward(c: &Common, a: &Port, b: &Port) -> Result<(u64, u64), String> {
    let e = |e: pmd::Error| e.to_string();
    let mut rx = [
        a.take_rx_queue(0).map_err(e)?,
        b.take_rx_queue(0).map_err(e)?,
    ];
    let mut tx = [
        b.take_tx_queue(0).map_err(e)?,
        a.take_tx_queue(0).map_err(e)?,
    ];
    let mut done = [0u64; 2];
    let start = Instant::now();
    let mut last = None::<Instant>;
    let mut pkts = Vec::with_capacity(c.burst);
    println!("pmdcheck: ready {}", c.tag);
    while done[0] + done[1] < c.count {
        let mut got = 0;
        for (dir, (r, t)) in rx.iter_mut().zip(tx.iter_mut()).enumerate() {
            let n = r.rx_burst(&mut pkts, c.burst);
            got += n;
            done[dir] += n as u64;
            while !pkts.is_empty() {
                if t.tx_burst(&mut pkts) == 0 {
                    std::hint::spin_loop();
                }
            }
        }
        if got == 0 && last.is_none_or(|l| l.elapsed() >= Duration::from_millis(50)) {
            // Idle for 50 ms: reclaim what the TX rings have sent (their
            // own cleanup waits until fewer than tx_free_thresh
            // descriptors are free). With a pool smaller than the rings
            // and the TX queues' unreclaimed buffers, the buffers the RX
            // refill failed for (rx_nombuf) come back this way, and
            // forwarding goes on (DPDK's rte_eth_tx_done_cleanup).
            for t in tx.iter_mut() {
                t.cleanup();
            }
        }
        if idle_or_over(c, got, &mut last, start) {
            break;
        }
    }
    Ok((done[0], done[1]))
}

/// EtherType of the frame that ends a `filters` step (IEEE 802 local
/// experimental EtherType 1), sent to the port's own address.
const STEP_END_ETHERTYPE: u16 = 0x88B5;

fn parse_ethertype_rule(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?}: expected 0xTTTT:QUEUE");
    let (t, q) = s.split_once(':').ok_or_else(bad)?;
    let t = u16::from_str_radix(t.strip_prefix("0x").ok_or_else(bad)?, 16).map_err(|_| bad())?;
    Ok((t, q.parse().map_err(|_| bad())?))
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC address {s:?} (want aa:bb:cc:dd:ee:ff)"))?;
    bytes
        .try_into()
        .map_err(|_| format!("bad MAC address {s:?} (want six bytes)"))
}

/// Applies one `filters` step. `Err` for a malformed step; `Ok(Some(e))`
/// when the port refuses the setting.
fn apply_step(port: &Port, step: &str) -> Result<Option<String>, String> {
    let (key, value) = step.split_once('=').unwrap_or((step, ""));
    let on = || match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("step {step:?}: {key} takes on or off")),
    };
    // `MAC*N`: N addresses from MAC up, counting in the last byte (keeps a
    // long list within the guest's kernel command line).
    let macs = || -> Result<Vec<[u8; 6]>, String> {
        let mut out = Vec::new();
        for item in value.split(',').filter(|m| !m.is_empty()) {
            let (m, n) = match item.split_once('*') {
                Some((m, n)) => (
                    m,
                    n.parse::<u8>()
                        .map_err(|_| format!("step {step:?}: {item}: MAC*N takes N in 0..=255"))?,
                ),
                None => (item, 1),
            };
            let first = parse_mac(m)?;
            for i in 0..n {
                let mut a = first;
                a[5] = first[5].wrapping_add(i);
                out.push(a);
            }
        }
        Ok(out)
    };
    let refused = |r: pmd::Result<()>| r.err().map(|e| e.to_string());
    Ok(match key {
        "none" => None,
        "promisc" => {
            port.set_promiscuous(on()?);
            None
        }
        "allmulti" => {
            port.set_allmulti(on()?);
            None
        }
        "uc" => refused(port.set_unicast_filters(&macs()?)),
        "mc" => {
            port.set_multicast_filters(&macs()?);
            None
        }
        "mtu" => {
            let mtu = value
                .parse()
                .map_err(|_| format!("step {step:?}: mtu takes a number"))?;
            refused(port.set_mtu(mtu))
        }
        _ => return Err(format!("unknown step {step:?}")),
    })
}

/// The `filters` scenario on queue 0 (one queue keeps frames in order, so
/// the end marker comes after every frame sent before it).
fn filters(c: &Common, port: &Port, steps: &[String]) -> Result<(), String> {
    if c.rxq != 1 {
        return Err("filters runs on one RX queue (--rxq 1)".into());
    }
    let own = port.mac_addr();
    let mut rxq = port.take_rx_queue(0).map_err(|e| e.to_string())?;
    let mut pkts = Vec::with_capacity(c.burst);
    for (i, step) in steps.iter().enumerate() {
        if let Some(e) = apply_step(port, step)? {
            println!("error step={i} {e}");
        }
        port.reset_stats();
        println!("pmdcheck: step {i} {step}");
        let start = Instant::now();
        let mut ended = false;
        while !ended {
            if start.elapsed() > Duration::from_millis(c.max_ms) {
                return Err(format!(
                    "step {i} ({step}): no end marker within {} ms",
                    c.max_ms
                ));
            }
            if rxq.rx_burst(&mut pkts, c.burst) == 0 {
                continue;
            }
            for p in pkts.drain(..) {
                let data = p.to_vec().unwrap_or_default();
                let marker = data.len() >= 14
                    && data[..6] == own
                    && data[12..14] == STEP_END_ETHERTYPE.to_be_bytes();
                if marker {
                    ended = true;
                } else {
                    println!("rx step={i} len={} data={}", p.len(), hex(&data));
                }
            }
        }
        let s = port.stats();
        let x = port.xstats();
        let xs = |name: &str| x.iter().find(|s| s.name == name).map_or(0, |s| s.value);
        println!(
            "step-stats step={i} ipackets={} ibytes={} ierrors={} imissed={} sw_packets={} \
             rx_multicast_packets={} rx_broadcast_packets={} rx_oversize_errors={}",
            s.ipackets,
            s.ibytes,
            s.ierrors,
            s.imissed,
            s.q_ipackets.iter().sum::<u64>(),
            xs("rx_multicast_packets"),
            xs("rx_broadcast_packets"),
            xs("rx_oversize_errors"),
        );
    }
    Ok(())
}

/// Offloads `echo` asks for.
struct Offload {
    csum: bool,
    tso: Option<u16>,
    vlan: Option<u16>,
}

impl Offload {
    fn apply(&self, p: &mut Packet) -> Result<(), String> {
        let mut o = pmd::TxOffload::default();
        if self.csum || self.tso.is_some() {
            let data = p.data().ok_or("headers not readable")?;
            let proto = pmd::offload::parse_headers(data, &mut o)
                .ok_or("frame has no IPv4/IPv6 header to offload")?;
            if o.flags.contains(TxFlags::IPV4) {
                o.flags.insert(TxFlags::IP_CKSUM);
            }
            o.flags.insert(match proto {
                6 => TxFlags::TCP_CKSUM,
                17 => TxFlags::UDP_CKSUM,
                _ => TxFlags::default(),
            });
        }
        if let Some(mss) = self.tso {
            o.flags.insert(TxFlags::TCP_SEG);
            o.mss = mss;
        }
        if let Some(tci) = self.vlan {
            o.flags.insert(TxFlags::VLAN);
            o.vlan_tci = tci;
        }
        p.tx = o;
        Ok(())
    }
}

/// A packet holding `bytes` in `segments` roughly equal segments.
fn build(pool: &Arc<Pool>, bytes: &[u8], segments: usize) -> Result<Packet, String> {
    let segments = segments.clamp(1, bytes.len().max(1));
    let chunk = bytes.len().div_ceil(segments);
    let mut pkt: Option<Packet> = None;
    for part in bytes.chunks(chunk) {
        let p = Packet::from_bytes(pool, part).ok_or("pool empty")?;
        match pkt.as_mut() {
            None => pkt = Some(p),
            Some(head) => p.into_segments().for_each(|s| head.push_segment(s)),
        }
    }
    pkt.ok_or_else(|| "empty frame".into())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pmdcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a receive loop should end: `idle_ms` without a packet after the
/// first one, or `max_ms` in all. Records the time of the last packet.
fn idle_or_over(c: &Common, got: usize, last: &mut Option<Instant>, start: Instant) -> bool {
    let now = Instant::now();
    if got > 0 {
        *last = Some(now);
        return false;
    }
    last.is_some_and(|l| now - l > Duration::from_millis(c.idle_ms))
        || now - start > Duration::from_millis(c.max_ms)
}
