//! testpmd's command line, as DPDK users know it, and its validation.
//!
//! Two spellings are accepted:
//! - DPDK's: EAL options, `--`, application options
//!   (`testpmd -l 0-1 -a 0000:00:03.0 -a 0000:00:04.0 -- -i --rxq=1`). After
//!   the `--`, `-a` means `--auto-start` and `-i` `--interactive`, as in DPDK.
//! - One flat list (`testpmd -a 0000:00:03.0 --forward-mode=mac`), where `-a`
//!   is `--allow`.
//!
//! Everything is checked here, before any device is touched: a bad option
//! gives one line on stderr and exit status 2 ([`USAGE_EXIT`]).

use super::lcores;
use super::noisy::{NoisyConfig, NoisyFwd};
use clap::{Args, Parser};
use hw::PciAddress;
use pmd::rss::HashTypes;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Exit status for a bad command line (as getopt-style tools use).
pub const USAGE_EXIT: i32 = 2;

/// Most ports one testpmd drives.
pub const MAX_PORTS: usize = 8;
/// Most RX or TX queues per port (the 82576 has 8 usable pairs; the driver
/// refuses more than a device has when it opens the port).
pub const MAX_QUEUES: u16 = 8;
/// Descriptor ring sizes the hardware takes: 64..=4096, a multiple of 8.
pub const MIN_DESC: u16 = 64;
pub const MAX_DESC: u16 = 4096;
/// Largest burst (DPDK's `MAX_PKT_BURST`).
pub const MAX_BURST: u16 = 512;
/// Largest frame testpmd builds or expects (jumbo, without FCS).
pub const MAX_FRAME: usize = 9018 - 4;
/// Smallest frame txonly/flowgen build: Ethernet + IPv4 + UDP headers.
pub const MIN_TXPKT: usize = 14 + 20 + 8;
/// Headroom the driver leaves in front of packet data.
const HEADROOM: usize = pmd::HEADROOM as usize;
/// Per-lcore pool cache testpmd asks for.
pub const MBUF_CACHE: usize = 256;

/// What each forwarding stream does with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FwdMode {
    /// Send what was received, untouched (no packet data is read).
    Io,
    /// Rewrite the Ethernet source to the TX port's MAC and the destination
    /// to the TX port's peer.
    Mac,
    /// Swap the Ethernet source and destination.
    Macswap,
    /// Receive and free.
    Rxonly,
    /// Build UDP frames from the pool and send them.
    Txonly,
    /// As txonly, over many flows (the destination IP address varies).
    Flowgen,
    /// Answer ARP requests and ICMP echo requests on the port they came in
    /// on; drop everything else.
    Icmpecho,
    /// Swap source and destination of the MAC, IPv4/IPv6 and UDP/TCP
    /// headers.
    #[serde(rename = "5tswap")]
    FiveTswap,
    /// Recompute IP/UDP/TCP checksums in software or hardware (`csum set`)
    /// and rewrite the MACs as mac mode does.
    Csum,
    /// io forwarding through a FIFO with simulated memory lookups
    /// (DPDK's noisy_vnf).
    Noisy,
}

impl FwdMode {
    pub const ALL: [FwdMode; 10] = [
        FwdMode::Io,
        FwdMode::Mac,
        FwdMode::Macswap,
        FwdMode::Rxonly,
        FwdMode::Txonly,
        FwdMode::Flowgen,
        FwdMode::Icmpecho,
        FwdMode::FiveTswap,
        FwdMode::Csum,
        FwdMode::Noisy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FwdMode::Io => "io",
            FwdMode::Mac => "mac",
            FwdMode::Macswap => "macswap",
            FwdMode::Rxonly => "rxonly",
            FwdMode::Txonly => "txonly",
            FwdMode::Flowgen => "flowgen",
            FwdMode::Icmpecho => "icmpecho",
            FwdMode::FiveTswap => "5tswap",
            FwdMode::Csum => "csum",
            FwdMode::Noisy => "noisy",
        }
    }

    /// True for the modes that generate traffic instead of receiving it.
    pub fn generates(self) -> bool {
        matches!(self, FwdMode::Txonly | FwdMode::Flowgen)
    }

    fn names() -> String {
        FwdMode::ALL.map(FwdMode::name).join(", ")
    }
}

impl fmt::Display for FwdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FwdMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FwdMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown forward mode {s:?} (one of {})", FwdMode::names()))
    }
}

/// A MAC address, `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        let bad = || format!("{s:?} is not a MAC address (expected aa:bb:cc:dd:ee:ff)");
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (b, p) in mac.iter_mut().zip(parts) {
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Mac(mac))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// DPDK's default peer of port `p`: 02:00:00:00:00:p.
pub fn default_peer(port: usize) -> Mac {
    Mac([2, 0, 0, 0, 0, port as u8])
}

/// `--eth-peer=N,aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthPeer {
    pub port: usize,
    pub mac: Mac,
}

fn parse_eth_peer(s: &str) -> Result<EthPeer, String> {
    let (p, m) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected PORT,aa:bb:cc:dd:ee:ff"))?;
    let port = p
        .trim()
        .parse()
        .map_err(|_| format!("{p:?} is not a port number"))?;
    Ok(EthPeer {
        port,
        mac: m.trim().parse()?,
    })
}

/// `--txpkts` segment lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TxPkts(Vec<u16>);

fn parse_txpkts(s: &str) -> Result<TxPkts, String> {
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{t:?} is not a segment length (1..=65535)"))
        })
        .collect::<Result<Vec<u16>, String>>()
        .map(TxPkts)
}

fn parse_pci(s: &str) -> Result<PciAddress, String> {
    s.parse::<PciAddress>().map_err(|e| e.to_string())
}

fn parse_ip_pair(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected SRC,DST IPv4 addresses"))?;
    let ip = |t: &str| {
        t.trim()
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("{t:?} is not an IPv4 address"))
    };
    Ok((ip(a)?, ip(b)?))
}

fn parse_port_pair(s: &str) -> Result<(u16, u16), String> {
    let port = |t: &str| {
        t.trim()
            .parse::<u16>()
            .map_err(|_| format!("{t:?} is not a UDP port (0..=65535)"))
    };
    match s.split_once(',') {
        Some((a, b)) => Ok((port(a)?, port(b)?)),
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e7)
        .ok_or_else(|| format!("{s:?} is not a positive number of seconds"))
}

fn parse_log_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a log level (off, error, warn, info, debug, trace)"))
}

/// EAL options (before `--` in DPDK's spelling).
#[derive(Args, Debug)]
struct EalArgs {
    /// PCI address of a port to use; repeat for more ports (port ids follow
    /// this order).
    #[arg(short = 'a', long = "allow", value_name = "PCI", value_parser = parse_pci)]
    allow: Vec<PciAddress>,
    /// Lcores to run on: the first runs the prompt and statistics, the others
    /// forward (with only one, it forwards too). Default: all CPUs.
    #[arg(short = 'l', long = "lcores", value_name = "LIST")]
    lcores: Option<String>,
    /// Memory channels (accepted for DPDK compatibility; no effect).
    #[arg(short = 'n', value_name = "N", hide = true)]
    _channels: Option<u32>,
    /// Log level: off, error, warn, info, debug, trace.
    #[arg(long = "log-level", value_name = "LEVEL", value_parser = parse_log_level)]
    log_level: Option<log::LevelFilter>,
    /// Serve no telemetry socket (by default DPDK's telemetry v2 socket is
    /// served at /var/run/dpdk/PREFIX/dpdk_telemetry.v2 for root).
    #[arg(long = "no-telemetry")]
    no_telemetry: bool,
    /// The runtime directory's name (DPDK's default "rte"): where the
    /// telemetry socket goes.
    #[arg(long = "file-prefix", value_name = "PREFIX", default_value = "rte", value_parser = parse_file_prefix)]
    file_prefix: String,
}

fn parse_file_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('/') || s == "." || s == ".." {
        Err(format!(
            "{s:?} is not a file prefix (a non-empty name without '/')"
        ))
    } else {
        Ok(s.to_string())
    }
}

/// Application options (after `--` in DPDK's spelling).
#[derive(Args, Debug)]
struct AppArgs {
    /// Run an interactive prompt.
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// With -i: start forwarding at once.
    #[arg(long = "auto-start")]
    auto_start: bool,
    /// Number of forwarding lcores (default: every lcore but the first).
    #[arg(long = "nb-cores", value_name = "N")]
    nb_cores: Option<usize>,
    /// RX queues per port.
    #[arg(long = "rxq", value_name = "N", default_value_t = 1)]
    rxq: u16,
    /// TX queues per port.
    #[arg(long = "txq", value_name = "N", default_value_t = 1)]
    txq: u16,
    /// RX descriptors per queue.
    // Parsed wider than they are stored so that the range check below,
    // which names the real limits, sees any number (clap's own u16 check
    // would name 0..=65535).
    #[arg(long = "rxd", value_name = "N", default_value_t = 512)]
    rxd: u64,
    /// TX descriptors per queue.
    #[arg(long = "txd", value_name = "N", default_value_t = 512)]
    txd: u64,
    /// RX free threshold: refilled descriptors go back to the NIC with one
    /// RDT write once more than N are held (0 <= N < --rxd; the driver caps
    /// it at a quarter of the ring; default: the driver's, 128).
    #[arg(long = "rxfreet", value_name = "N")]
    rxfreet: Option<u64>,
    /// TX RS bit threshold: Report Status every N descriptors (1 <= N < --txd).
    #[arg(long = "txrst", value_name = "N")]
    txrst: Option<u64>,
    /// TX free threshold: sent descriptors are reclaimed once fewer than N
    /// are free (1 <= N < --txd).
    #[arg(long = "txfreet", value_name = "N")]
    txfreet: Option<u64>,
    /// Packets per burst (1..=512).
    #[arg(long = "burst", value_name = "N", default_value_t = 32)]
    burst: u64,
    /// Bytes per packet buffer, headroom included (a multiple of 64,
    /// 1024..=16384; DPDK's default 2176 is 2048 of data after 128 of
    /// headroom).
    #[arg(long = "mbuf-size", value_name = "N", default_value_t = 2176)]
    mbuf_size: usize,
    /// Buffers in the pool (default: enough for every ring plus caches).
    #[arg(long = "total-num-mbufs", value_name = "N")]
    total_num_mbufs: Option<usize>,
    /// io, mac, macswap, rxonly, txonly, flowgen, icmpecho, 5tswap, csum or
    /// noisy.
    #[arg(long = "forward-mode", value_name = "MODE", default_value = "io")]
    forward_mode: FwdMode,
    /// Destination MAC for mac/txonly/flowgen on a port: PORT,aa:bb:cc:dd:ee:ff
    /// (default 02:00:00:00:00:PORT).
    #[arg(long = "eth-peer", value_name = "PORT,MAC", value_parser = parse_eth_peer)]
    eth_peer: Vec<EthPeer>,
    /// Segment lengths of txonly/flowgen frames (their sum is the frame
    /// length, without FCS).
    #[arg(long = "txpkts", value_name = "LEN[,LEN...]", value_parser = parse_txpkts)]
    txpkts: Option<TxPkts>,
    /// Source and destination IPv4 address of generated frames.
    #[arg(long = "tx-ip", value_name = "SRC,DST", value_parser = parse_ip_pair)]
    tx_ip: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Source and destination UDP port of generated frames.
    #[arg(long = "tx-udp", value_name = "SRC[,DST]", value_parser = parse_port_pair)]
    tx_udp: Option<(u16, u16)>,
    /// Number of flows flowgen cycles through.
    #[arg(long = "flows", value_name = "N", default_value_t = 1024)]
    flows: u32,
    /// Print port statistics every N seconds (plain text, or a JSON line
    /// with --json).
    #[arg(long = "stats-period", value_name = "SECS", value_parser = parse_secs)]
    stats_period: Option<f64>,
    /// Stop forwarding and exit after this many seconds.
    #[arg(long = "duration", value_name = "SECS", value_parser = parse_secs)]
    duration: Option<f64>,
    /// Stop forwarding and exit once the streams have received this many
    /// packets (sent, in txonly and flowgen).
    #[arg(long = "max-packets", value_name = "N")]
    max_packets: Option<u64>,
    /// Stop forwarding and exit once no packet arrived for this long after
    /// the first one.
    #[arg(long = "idle-timeout", value_name = "SECS", value_parser = parse_secs)]
    idle_timeout: Option<f64>,
    /// Machine-readable statistics: one JSON object per line on stdout
    /// (periodic and final); human text goes to stderr.
    #[arg(long = "json")]
    json: bool,
    /// Write the frames port --capture-port receives and transmits to this
    /// pcap file.
    #[arg(long = "capture-out", value_name = "FILE")]
    capture_out: Option<PathBuf>,
    /// The port --capture-out records.
    #[arg(long = "capture-port", value_name = "PORT", default_value_t = 0)]
    capture_port: usize,
    /// Leave promiscuous mode off (it is on by default, as in DPDK).
    #[arg(long = "no-promisc")]
    no_promisc: bool,
    /// Ask the NIC to validate IP/TCP/UDP checksums on receive (off by
    /// default, as in DPDK's testpmd).
    #[arg(long = "enable-rx-cksum")]
    enable_rx_cksum: bool,
    /// Strip VLAN tags on receive.
    #[arg(long = "enable-hw-vlan-strip")]
    enable_hw_vlan_strip: bool,
    /// No RSS: with several RX queues every frame goes to queue 0.
    #[arg(long = "disable-rss", conflicts_with_all = ["rss_ip", "rss_udp"])]
    disable_rss: bool,
    /// RSS over IPv4/IPv6 addresses only (DPDK's testpmd default; ours
    /// hashes every type the chip has, addresses and TCP/UDP ports, unless
    /// told otherwise).
    #[arg(long = "rss-ip", conflicts_with = "rss_udp")]
    rss_ip: bool,
    /// RSS over UDP/IPv4 and UDP/IPv6 addresses and ports (the 82574L has
    /// no UDP hash types: it then hashes nothing).
    #[arg(long = "rss-udp")]
    rss_udp: bool,
    /// Seconds to wait for every port's link before forwarding anyway.
    #[arg(long = "link-timeout", value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    link_timeout: f64,
    /// Non-interactive: send one txonly burst on every stream before
    /// forwarding (to start traffic between looped ports).
    #[arg(long = "tx-first")]
    tx_first: bool,
    /// txonly: vary the IPv4 source address per packet (many flows).
    #[arg(long = "txonly-multi-flow")]
    txonly_multi_flow: bool,
    /// Prompt commands to run before forwarding starts (repeatable).
    #[arg(long = "cmdline-file", value_name = "FILE")]
    cmdline_file: Vec<PathBuf>,
    /// Count the CPU cycles forwarding spends on polls that handle packets
    /// and print cycles per packet at stop.
    #[arg(long = "record-core-cycles")]
    record_core_cycles: bool,
    /// Keep a histogram of RX and TX burst sizes and print it at stop.
    #[arg(long = "record-burst-stats")]
    record_burst_stats: bool,
    /// Sleep on RX interrupts when idle, as l3fwd-power: poll while
    /// busy, arm the queues' interrupts after --rx-intr-idle-polls empty
    /// polls, poll once more, then sleep until a frame arrives.
    #[arg(long = "rx-intr")]
    rx_intr: bool,
    /// --rx-intr: empty polls in a row before sleeping (l3fwd-power's
    /// SUSPEND_THRESHOLD).
    #[arg(
        long = "rx-intr-idle-polls",
        value_name = "N",
        default_value = "300",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    rx_intr_idle_polls: u32,
    /// Do not enable link state change interrupts (on by default, as in
    /// DPDK's testpmd, which prints each "link state change event").
    #[arg(long = "no-lsc-interrupt")]
    no_lsc_interrupt: bool,
    /// noisy: header work before buffering: io, mac, macswap or 5tswap.
    #[arg(long = "noisy-forward-mode", value_name = "MODE", default_value = "io")]
    noisy_forward_mode: NoisyFwd,
    /// noisy: FIFO size in packets per stream (0: no buffering).
    #[arg(
        long = "noisy-tx-sw-buffer-size",
        value_name = "N",
        default_value_t = 0
    )]
    noisy_tx_sw_buffer_size: u64,
    /// noisy: flush the FIFO after N ms (0: never).
    #[arg(
        long = "noisy-tx-sw-buffer-flushtime",
        value_name = "MS",
        default_value_t = 0
    )]
    noisy_tx_sw_buffer_flushtime: u64,
    /// noisy: MiB of lookup memory per stream.
    #[arg(long = "noisy-lkup-memory", value_name = "MB", default_value_t = 0)]
    noisy_lkup_memory: u64,
    /// noisy: random writes per packet.
    #[arg(long = "noisy-lkup-num-writes", value_name = "N", default_value_t = 0)]
    noisy_lkup_num_writes: u64,
    /// noisy: random reads per packet.
    #[arg(long = "noisy-lkup-num-reads", value_name = "N", default_value_t = 0)]
    noisy_lkup_num_reads: u64,
    /// noisy: random read-modify-writes per packet.
    #[arg(
        long = "noisy-lkup-num-reads-writes",
        value_name = "N",
        default_value_t = 0
    )]
    noisy_lkup_num_reads_writes: u64,
}

/// The flat spelling: every option in one list.
#[derive(Parser, Debug)]
#[command(
    name = "testpmd",
    version,
    about = "Forward packets between ports of the igb/e1000e poll-mode driver, as DPDK's testpmd does"
)]
struct Flat {
    #[command(flatten)]
    eal: EalArgs,
    #[command(flatten)]
    app: AppArgs,
}

/// DPDK's spelling, part one: EAL options only.
#[derive(Parser, Debug)]
#[command(name = "testpmd", version, about = "testpmd EAL options (before --)")]
struct EalOnly {
    #[command(flatten)]
    eal: EalArgs,
}

/// DPDK's spelling, part two: application options, with `-a` = auto-start.
#[derive(Parser, Debug)]
#[command(
    name = "testpmd",
    no_binary_name = true,
    version,
    about = "testpmd application options (after --)"
)]
struct AppOnly {
    #[command(flatten)]
    app: AppArgs,
    /// Start forwarding at once (DPDK's -a after --).
    #[arg(short = 'a', hide = true)]
    auto_start_short: bool,
}

/// Where --capture-out writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    pub port: usize,
    pub path: PathBuf,
}

/// Everything testpmd needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports, in port-id order.
    pub ports: Vec<PciAddress>,
    /// Every lcore given (ascending).
    pub lcores: Vec<usize>,
    /// The lcores that forward (each runs on its own pinned thread).
    pub fwd_lcores: Vec<usize>,
    pub rxq: u16,
    pub txq: u16,
    pub rxd: u16,
    pub txd: u16,
    /// `--rxfreet`, `--txrst`, `--txfreet` (None: the driver's default).
    pub rx_free_thresh: Option<u16>,
    pub tx_rs_thresh: Option<u16>,
    pub tx_free_thresh: Option<u16>,
    pub burst: u16,
    pub mbuf_size: usize,
    pub total_num_mbufs: usize,
    pub mode: FwdMode,
    /// The peer MAC of each port (index = port id).
    pub peers: Vec<Mac>,
    pub txpkts: Vec<u16>,
    pub tx_ip: (Ipv4Addr, Ipv4Addr),
    pub tx_udp: (u16, u16),
    pub flows: u32,
    pub stats_period: Option<Duration>,
    pub duration: Option<Duration>,
    pub max_packets: Option<u64>,
    pub idle_timeout: Option<Duration>,
    pub interactive: bool,
    /// `--tx-first`: bursts of txonly before forwarding (0 or 1).
    pub tx_first: u32,
    pub txonly_multi_flow: bool,
    pub cmdline_files: Vec<PathBuf>,
    pub record_core_cycles: bool,
    pub record_burst_stats: bool,
    /// `--rx-intr`: empty polls before an lcore sleeps on RX interrupts.
    pub rx_intr: Option<u32>,
    /// Link state change events printed (not `--no-lsc-interrupt`).
    pub lsc_interrupt: bool,
    pub noisy: NoisyConfig,
    pub auto_start: bool,
    pub json: bool,
    pub capture: Option<CaptureSpec>,
    pub promisc: bool,
    /// `--enable-rx-cksum`.
    pub rx_cksum: bool,
    /// `--enable-hw-vlan-strip`.
    pub vlan_strip: bool,
    /// The RSS hash types (every type by default, `--rss-ip`, `--rss-udp`,
    /// `--disable-rss`: none); used with more than one RX queue.
    pub rss_types: HashTypes,
    pub link_timeout: Duration,
    pub log_level: Option<log::LevelFilter>,
    /// Serve the telemetry socket (no `--no-telemetry`).
    pub telemetry: bool,
    /// `--file-prefix`: the runtime directory's name.
    pub file_prefix: String,
}

impl Config {
    /// Length of the frames txonly/flowgen build.
    pub fn tx_frame_len(&self) -> usize {
        self.txpkts.iter().map(|l| usize::from(*l)).sum()
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Box<Config>),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Info(String),
}

/// One line describing a bad command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn clap_error(e: clap::Error) -> Result<Parsed, UsageError> {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(Parsed::Info(e.to_string())),
        _ => {
            // Clap's message spans several lines (usage, hints): keep its
            // first line, and the list of possible values if it gives one.
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines
                .next()
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ")
                .to_string();
            let extra: Vec<&str> = lines
                .filter(|l| l.starts_with("[possible values") || l.starts_with("tip:"))
                .collect();
            let mut msg = first;
            for x in extra {
                msg.push_str("; ");
                msg.push_str(x.trim_start_matches("tip: "));
            }
            Err(UsageError(msg))
        }
    }
}

fn parse_with<T: Parser>(args: &[String]) -> Result<T, Result<Parsed, UsageError>> {
    T::try_parse_from(args).map_err(clap_error)
}

/// Parses and validates `args` (the program name first). `cpus` are the CPU
/// ids this process may run on.
pub fn parse(args: &[String], cpus: &[usize]) -> Result<Parsed, UsageError> {
    let (eal, app) = match args.iter().position(|a| a == "--") {
        Some(split) => {
            let eal = match parse_with::<EalOnly>(&args[..split]) {
                Ok(e) => e.eal,
                Err(r) => return r,
            };
            let mut app = match parse_with::<AppOnly>(&args[split + 1..]) {
                Ok(a) => a,
                Err(r) => return r,
            };
            app.app.auto_start |= app.auto_start_short;
            (eal, app.app)
        }
        None => match parse_with::<Flat>(args) {
            Ok(f) => (f.eal, f.app),
            Err(r) => return r,
        },
    };
    validate(eal, app, cpus).map(|c| Parsed::Run(Box::new(c)))
}

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// The noisy options, copied out of [`AppArgs`] for checking.
struct NoisyArgs {
    noisy_tx_sw_buffer_size: u64,
    noisy_tx_sw_buffer_flushtime: u64,
    noisy_lkup_memory: u64,
    noisy_lkup_num_writes: u64,
    noisy_lkup_num_reads: u64,
    noisy_lkup_num_reads_writes: u64,
}

fn validate(eal: EalArgs, app: AppArgs, cpus: &[usize]) -> Result<Config, UsageError> {
    if eal.allow.is_empty() {
        return err(
            "no port given: name each port with -a/--allow <PCI address>, e.g. -a 0000:00:03.0",
        );
    }
    if eal.allow.len() > MAX_PORTS {
        return err(format!(
            "{} ports given; testpmd drives at most {MAX_PORTS}",
            eal.allow.len()
        ));
    }
    for (i, a) in eal.allow.iter().enumerate() {
        if eal.allow[..i].contains(a) {
            return err(format!("port {a} is given twice with -a/--allow"));
        }
    }
    let nports = eal.allow.len();

    let lcores = match &eal.lcores {
        Some(list) => lcores::parse_list(list).map_err(UsageError)?,
        None => cpus.to_vec(),
    };
    if lcores.is_empty() {
        return err("no CPU is available to run on");
    }
    lcores::check_exist(&lcores, cpus).map_err(UsageError)?;
    let candidates: Vec<usize> = if lcores.len() > 1 {
        lcores[1..].to_vec()
    } else {
        lcores.clone()
    };
    let nb_cores = app.nb_cores.unwrap_or(candidates.len());
    if nb_cores == 0 {
        return err("--nb-cores must be at least 1");
    }
    if nb_cores > candidates.len() {
        return err(format!(
            "--nb-cores={nb_cores} but only {} forwarding lcore(s) are available ({}); list more with -l",
            candidates.len(),
            lcores::format_list(&candidates)
        ));
    }
    let fwd_lcores = candidates[..nb_cores].to_vec();

    for (name, q) in [("--rxq", app.rxq), ("--txq", app.txq)] {
        if q == 0 || q > MAX_QUEUES {
            return err(format!("{name}={q} is out of range (1..={MAX_QUEUES})"));
        }
    }
    for (name, d) in [("--rxd", app.rxd), ("--txd", app.txd)] {
        if !(u64::from(MIN_DESC)..=u64::from(MAX_DESC)).contains(&d) || !d.is_multiple_of(8) {
            return err(format!(
                "{name}={d}: descriptor rings take {MIN_DESC}..={MAX_DESC} entries, a multiple of 8"
            ));
        }
    }
    if app.burst == 0 || app.burst > u64::from(MAX_BURST) {
        return err(format!(
            "--burst={} is out of range (1..={MAX_BURST})",
            app.burst
        ));
    }
    // Checked above: each fits a u16.
    let (rxd, txd, burst) = (app.rxd as u16, app.txd as u16, app.burst as u16);
    let thresh = |name: &str, v: Option<u64>, min: u64, ring: u16, ring_opt: &str| match v {
        None => Ok(None),
        Some(n) if (min..u64::from(ring)).contains(&n) => Ok(Some(n as u16)),
        Some(n) => Err(format!(
            "{name}={n} is out of range ({min}..{ring}: below {ring_opt}={ring})"
        )),
    };
    let rx_free_thresh = thresh("--rxfreet", app.rxfreet, 0, rxd, "--rxd").or_else(err)?;
    let tx_rs_thresh = thresh("--txrst", app.txrst, 1, txd, "--txd").or_else(err)?;
    let tx_free_thresh = thresh("--txfreet", app.txfreet, 1, txd, "--txd").or_else(err)?;
    if !(1024..=16384).contains(&app.mbuf_size) || !app.mbuf_size.is_multiple_of(64) {
        return err(format!(
            "--mbuf-size={} must be a multiple of 64 in 1024..=16384",
            app.mbuf_size
        ));
    }
    if app.rx_intr && (app.forward_mode.generates() || app.forward_mode == FwdMode::Noisy) {
        return err(format!(
            "--rx-intr needs a forward mode that only receives, not {}",
            app.forward_mode
        ));
    }
    let nq = usize::from(app.rxq.max(app.txq));
    let in_rings = nports
        * (usize::from(app.rxq) * usize::from(rxd) + usize::from(app.txq) * usize::from(txd));
    let in_flight = fwd_lcores.len() * nq.max(1) * usize::from(burst) * 2;
    let caches = (lcores.iter().max().copied().unwrap_or(0) + 1) * MBUF_CACHE;
    let needed = in_rings + in_flight + caches;
    let total_num_mbufs = match app.total_num_mbufs {
        Some(n) if n < needed => {
            return err(format!(
                "--total-num-mbufs={n} is too few: the rings, bursts and lcore caches need at least {needed}"
            ));
        }
        Some(n) if n > (1 << 24) => {
            return err(format!(
                "--total-num-mbufs={n} is too many (at most {})",
                1 << 24
            ));
        }
        Some(n) => n,
        None => needed + 1024,
    };

    let mut peers: Vec<Mac> = (0..nports).map(default_peer).collect();
    for p in &app.eth_peer {
        if p.port >= nports {
            return err(format!(
                "--eth-peer names port {} but only ports 0..{} exist",
                p.port,
                nports - 1
            ));
        }
        peers[p.port] = p.mac;
    }

    let txpkts = app.txpkts.map_or_else(|| vec![64], |t| t.0);
    let total: usize = txpkts.iter().map(|l| usize::from(*l)).sum();
    if !(MIN_TXPKT..=MAX_FRAME).contains(&total) {
        return err(format!(
            "--txpkts adds up to {total} bytes; a generated frame takes {MIN_TXPKT}..={MAX_FRAME}"
        ));
    }
    let seg_room = app.mbuf_size - HEADROOM;
    if let Some(l) = txpkts.iter().find(|l| usize::from(**l) > seg_room) {
        return err(format!(
            "--txpkts segment of {l} bytes does not fit a {}-byte buffer after its {}-byte headroom",
            app.mbuf_size, HEADROOM
        ));
    }
    if usize::from(txpkts[0]) < MIN_TXPKT {
        return err(format!(
            "--txpkts first segment is {} bytes; it must hold the {MIN_TXPKT} bytes of headers",
            txpkts[0]
        ));
    }
    if app.flows == 0 {
        return err("--flows must be at least 1");
    }

    let stops = app.duration.is_some() || app.max_packets.is_some() || app.idle_timeout.is_some();
    if app.interactive && stops {
        return err(
            "--duration, --max-packets and --idle-timeout end a non-interactive run; with -i, use stop and quit",
        );
    }
    if app.interactive && app.tx_first {
        return err("--tx-first applies to a non-interactive run; with -i, use start tx_first [N]");
    }
    if app.auto_start && !app.interactive {
        return err("--auto-start only applies with -i (a non-interactive run always starts)");
    }
    if app.max_packets == Some(0) {
        return err("--max-packets must be at least 1");
    }
    if app.idle_timeout.is_some() && app.forward_mode.generates() {
        return err(format!(
            "--idle-timeout watches received packets, but {} mode receives none; use --duration or --max-packets",
            app.forward_mode
        ));
    }
    let n = NoisyArgs {
        noisy_tx_sw_buffer_size: app.noisy_tx_sw_buffer_size,
        noisy_tx_sw_buffer_flushtime: app.noisy_tx_sw_buffer_flushtime,
        noisy_lkup_memory: app.noisy_lkup_memory,
        noisy_lkup_num_writes: app.noisy_lkup_num_writes,
        noisy_lkup_num_reads: app.noisy_lkup_num_reads,
        noisy_lkup_num_reads_writes: app.noisy_lkup_num_reads_writes,
    };
    let lookups = n.noisy_lkup_num_writes + n.noisy_lkup_num_reads + n.noisy_lkup_num_reads_writes;
    if lookups > 0 && n.noisy_lkup_memory == 0 {
        return err("--noisy-lkup-num-* need --noisy-lkup-memory=MB greater than 0");
    }
    if n.noisy_lkup_memory > 1024 {
        return err(format!(
            "--noisy-lkup-memory={} is too much (at most 1024 MiB per stream)",
            n.noisy_lkup_memory
        ));
    }
    if n.noisy_tx_sw_buffer_size > 65_536 {
        return err(format!(
            "--noisy-tx-sw-buffer-size={} is out of range (0..=65536)",
            n.noisy_tx_sw_buffer_size
        ));
    }
    if n.noisy_tx_sw_buffer_flushtime > 0 && n.noisy_tx_sw_buffer_size == 0 {
        return err(
            "--noisy-tx-sw-buffer-flushtime needs a FIFO: give --noisy-tx-sw-buffer-size too",
        );
    }
    let noisy = NoisyConfig {
        fwd: app.noisy_forward_mode,
        tx_sw_buffer_size: n.noisy_tx_sw_buffer_size as usize,
        tx_sw_buffer_flushtime_ms: n.noisy_tx_sw_buffer_flushtime,
        lkup_memory_mb: n.noisy_lkup_memory as usize,
        lkup_num_writes: n.noisy_lkup_num_writes,
        lkup_num_reads: n.noisy_lkup_num_reads,
        lkup_num_reads_writes: n.noisy_lkup_num_reads_writes,
    };
    let capture = match app.capture_out {
        Some(path) => {
            if app.capture_port >= nports {
                return err(format!(
                    "--capture-port={} but only ports 0..{} exist",
                    app.capture_port,
                    nports - 1
                ));
            }
            if path.as_os_str().is_empty() {
                return err("--capture-out needs a file name");
            }
            Some(CaptureSpec {
                port: app.capture_port,
                path,
            })
        }
        None => None,
    };

    Ok(Config {
        ports: eal.allow,
        lcores,
        fwd_lcores,
        rxq: app.rxq,
        txq: app.txq,
        rxd,
        txd,
        rx_free_thresh,
        tx_rs_thresh,
        tx_free_thresh,
        burst,
        mbuf_size: app.mbuf_size,
        total_num_mbufs,
        mode: app.forward_mode,
        peers,
        txpkts,
        tx_ip: app
            .tx_ip
            .unwrap_or((Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2))),
        tx_udp: app.tx_udp.unwrap_or((9, 9)),
        flows: app.flows,
        stats_period: app.stats_period.map(Duration::from_secs_f64),
        duration: app.duration.map(Duration::from_secs_f64),
        max_packets: app.max_packets,
        idle_timeout: app.idle_timeout.map(Duration::from_secs_f64),
        interactive: app.interactive,
        tx_first: u32::from(app.tx_first),
        txonly_multi_flow: app.txonly_multi_flow,
        cmdline_files: app.cmdline_file,
        record_core_cycles: app.record_core_cycles,
        record_burst_stats: app.record_burst_stats,
        rx_intr: app.rx_intr.then_some(app.rx_intr_idle_polls),
        lsc_interrupt: !app.no_lsc_interrupt,
        noisy,
        auto_start: app.auto_start,
        json: app.json,
        capture,
        promisc: !app.no_promisc,
        rx_cksum: app.enable_rx_cksum,
        vlan_strip: app.enable_hw_vlan_strip,
        rss_types: if app.disable_rss {
            HashTypes(0)
        } else if app.rss_udp {
            HashTypes(HashTypes::IPV4_UDP.0 | HashTypes::IPV6_UDP.0)
        } else if app.rss_ip {
            HashTypes(HashTypes::IPV4.0 | HashTypes::IPV6.0)
        } else {
            HashTypes::ALL
        },
        link_timeout: Duration::from_secs_f64(app.link_timeout),
        log_level: eal.log_level,
        telemetry: !eal.no_telemetry,
        file_prefix: eal.file_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: [usize; 2] = [0, 1];

    fn args(s: &str) -> Vec<String> {
        std::iter::once("testpmd")
            .chain(s.split_whitespace())
            .map(String::from)
            .collect()
    }

    fn ok(s: &str) -> Config {
        match parse(&args(s), &CPUS) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn bad(s: &str) -> String {
        match parse(&args(s), &CPUS) {
            Err(UsageError(m)) => {
                assert!(!m.contains('\n'), "{s}: more than one line: {m}");
                m
            }
            other => panic!("{s}: accepted: {other:?}"),
        }
    }

    const TWO: &str = "-a 0000:00:03.0 -a 0000:00:04.0";

    #[test]
    fn flat_and_dpdk_spellings_agree() {
        let flat = ok(&format!("-l 0-1 {TWO} --rxq=1 --forward-mode=mac -i"));
        let dpdk = ok(&format!("-l 0-1 {TWO} -- -i --rxq=1 --forward-mode=mac"));
        for c in [&flat, &dpdk] {
            assert_eq!(c.ports.len(), 2);
            assert_eq!(c.ports[1].to_string(), "0000:00:04.0");
            assert_eq!(c.lcores, vec![0, 1]);
            assert_eq!(c.fwd_lcores, vec![1]);
            assert_eq!(c.mode, FwdMode::Mac);
            assert!(c.interactive);
        }
    }

    #[test]
    fn dash_a_after_double_dash_is_auto_start() {
        let c = ok(&format!("{TWO} -- -i -a"));
        assert!(c.auto_start);
        assert_eq!(c.ports.len(), 2);
    }

    #[test]
    fn defaults_are_dpdks() {
        let c = ok("-a 00:03.0");
        assert_eq!(c.burst, 32);
        assert_eq!(c.mode, FwdMode::Io);
        assert_eq!(c.peers[0], Mac([2, 0, 0, 0, 0, 0]));
        assert_eq!(c.txpkts, vec![64]);
        assert!(c.promisc);
        assert_eq!(c.ports[0].to_string(), "0000:00:03.0");
        // -l absent: every CPU; the first runs the prompt.
        assert_eq!(c.fwd_lcores, vec![1]);
    }

    #[test]
    fn receive_offloads_only_when_asked() {
        let c = ok("-a 00:03.0");
        assert!(!c.rx_cksum && !c.vlan_strip, "DPDK asks for none");
        assert_eq!(c.rss_types, HashTypes::ALL);
        assert_eq!(
            ok("-a 00:03.0 --rss-ip").rss_types,
            HashTypes(HashTypes::IPV4.0 | HashTypes::IPV6.0)
        );
        let c = ok("-a 00:03.0 --enable-rx-cksum --enable-hw-vlan-strip --rss-udp");
        assert!(c.rx_cksum && c.vlan_strip);
        assert_eq!(
            c.rss_types,
            HashTypes(HashTypes::IPV4_UDP.0 | HashTypes::IPV6_UDP.0)
        );
        assert_eq!(ok("-a 00:03.0 --disable-rss").rss_types, HashTypes(0));
        let e = bad("-a 00:03.0 --disable-rss --rss-ip");
        assert!(e.contains("cannot be used with"), "{e}");
    }

    #[test]
    fn single_lcore_forwards_itself() {
        let c = ok("-l 1 -a 00:03.0");
        assert_eq!(c.fwd_lcores, vec![1]);
    }

    #[test]
    fn eth_peer_and_txpkts() {
        let c = ok(&format!(
            "{TWO} --eth-peer=1,aa:bb:cc:dd:ee:ff --txpkts=64,36 --forward-mode=txonly"
        ));
        assert_eq!(c.peers[0], default_peer(0));
        assert_eq!(c.peers[1].to_string(), "AA:BB:CC:DD:EE:FF");
        assert_eq!(c.tx_frame_len(), 100);
    }

    #[test]
    fn every_invalid_option_is_one_line() {
        let cases: &[(&str, &str)] = &[
            ("", "no port given"),
            ("-a 0000:00:3.0", "2 hex digits"),
            ("-a zz", "DDDD:BB:DD.F"),
            ("-a 00:03.0 -a 0000:00:03.0", "given twice"),
            ("-a 00:03.0 -l 0-x", "not a number"),
            ("-a 00:03.0 -l 0,7", "lcore 7 does not exist"),
            ("-a 00:03.0 -l 0-1 --nb-cores=2", "only 1 forwarding lcore"),
            ("-a 00:03.0 --nb-cores=0", "at least 1"),
            ("-a 00:03.0 --rxq=0", "--rxq=0 is out of range"),
            ("-a 00:03.0 --txq=9", "--txq=9 is out of range"),
            ("-a 00:03.0 --rxd=32", "--rxd=32"),
            ("-a 00:03.0 --txd=100", "multiple of 8"),
            ("-a 00:03.0 --rxd=abc", "invalid value"),
            ("-a 00:03.0 --burst=0", "--burst=0"),
            ("-a 00:03.0 --burst=513", "--burst=513"),
            ("-a 00:03.0 --burst=70000", "(1..=512)"),
            ("-a 00:03.0 --rxd=70000", "64..=4096"),
            (
                "-a 00:03.0 --rxfreet=512",
                "--rxfreet=512 is out of range (0..512",
            ),
            ("-a 00:03.0 --txrst=0", "--txrst=0 is out of range (1..512"),
            (
                "-a 00:03.0 --txd=256 --txfreet=256",
                "--txfreet=256 is out of range (1..256",
            ),
            ("-a 00:03.0 --txd=100000", "64..=4096"),
            ("-a 00:03.0 --mbuf-size=1000", "--mbuf-size=1000"),
            ("-a 00:03.0 --total-num-mbufs=10", "too few"),
            ("-a 00:03.0 --forward-mode=csumx", "unknown forward mode"),
            ("-a 00:03.0 -i --tx-first", "non-interactive"),
            ("-a 00:03.0 --noisy-lkup-num-reads=4", "--noisy-lkup-memory"),
            ("-a 00:03.0 --noisy-forward-mode=csum", "expected io, mac"),
            ("-a 00:03.0 --noisy-lkup-memory=5000", "too much"),
            (
                "-a 00:03.0 --noisy-tx-sw-buffer-size=100000",
                "out of range",
            ),
            (
                "-a 00:03.0 --noisy-tx-sw-buffer-flushtime=10",
                "needs a FIFO",
            ),
            ("-a 00:03.0 --cmdline-file=", "value is required"),
            ("-a 00:03.0 --eth-peer=1,02:00:00:00:00:01", "port 1"),
            ("-a 00:03.0 --eth-peer=0,02:00:00", "not a MAC address"),
            ("-a 00:03.0 --eth-peer=02:00:00:00:00:01", "PORT,"),
            ("-a 00:03.0 --txpkts=20", "adds up to 20"),
            ("-a 00:03.0 --txpkts=20,100", "first segment"),
            ("-a 00:03.0 --txpkts=64,x", "not a segment length"),
            ("-a 00:03.0 --txpkts=9000,1000", "adds up to 10000"),
            ("-a 00:03.0 --txpkts=4000", "does not fit"),
            ("-a 00:03.0 --stats-period=0", "positive number"),
            ("-a 00:03.0 --duration=-1", "invalid value"),
            ("-a 00:03.0 --duration=x", "positive number"),
            ("-a 00:03.0 -i --duration=5", "non-interactive"),
            ("-a 00:03.0 --auto-start", "only applies with -i"),
            ("-a 00:03.0 --max-packets=0", "at least 1"),
            (
                "-a 00:03.0 --forward-mode=txonly --idle-timeout=1",
                "receives none",
            ),
            ("-a 00:03.0 --capture-out=/tmp/x --capture-port=1", "port"),
            ("-a 00:03.0 --tx-ip=1.2.3.4", "SRC,DST"),
            ("-a 00:03.0 --tx-ip=1.2.3.4,1.2.3", "not an IPv4"),
            ("-a 00:03.0 --tx-udp=70000", "not a UDP port"),
            ("-a 00:03.0 --flows=0", "--flows"),
            ("-a 00:03.0 --log-level=loud", "not a log level"),
            ("-a 00:03.0 --bogus", "unexpected argument"),
            ("-a 00:03.0 -- --allow 00:04.0", "unexpected argument"),
        ];
        for (line, needle) in cases {
            let m = bad(line);
            assert!(m.contains(needle), "{line:?}: {m:?} lacks {needle:?}");
        }
    }

    #[test]
    fn dpdk_options_scripts_pass_are_taken() {
        let c = ok(&format!(
            "-l 0-1 {TWO} --no-telemetry -- --tx-first --txonly-multi-flow --record-core-cycles \
             --record-burst-stats --cmdline-file=/tmp/a --cmdline-file /tmp/b --forward-mode=noisy \
             --noisy-tx-sw-buffer-size=64 --noisy-tx-sw-buffer-flushtime=10 --noisy-lkup-memory=2 \
             --noisy-lkup-num-writes=1 --noisy-lkup-num-reads=2 --noisy-lkup-num-reads-writes=3 \
             --noisy-forward-mode=5tswap"
        ));
        assert_eq!(c.tx_first, 1);
        assert!(!c.telemetry, "--no-telemetry turns the socket off");
        let t = ok(&format!("{TWO} --file-prefix=tp1"));
        assert!(t.telemetry);
        assert_eq!(t.file_prefix, "tp1");
        assert_eq!(ok(TWO).file_prefix, "rte");
        assert!(bad(&format!("{TWO} --file-prefix=a/b")).contains("file prefix"));
        assert!(c.txonly_multi_flow && c.record_core_cycles && c.record_burst_stats);
        assert_eq!(
            c.cmdline_files,
            vec![PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b")]
        );
        assert_eq!(c.mode, FwdMode::Noisy);
        assert_eq!(
            c.noisy,
            NoisyConfig {
                fwd: NoisyFwd::FiveTswap,
                tx_sw_buffer_size: 64,
                tx_sw_buffer_flushtime_ms: 10,
                lkup_memory_mb: 2,
                lkup_num_writes: 1,
                lkup_num_reads: 2,
                lkup_num_reads_writes: 3,
            }
        );
        // --stats-period now works with -i too.
        let i = ok(&format!("{TWO} -- -i --stats-period=2"));
        assert_eq!(i.stats_period, Some(Duration::from_secs(2)));
        for m in ["5tswap", "csum", "noisy"] {
            assert_eq!(ok(&format!("{TWO} --forward-mode={m}")).mode.name(), m);
        }
    }

    #[test]
    fn rx_intr_and_lsc_options() {
        let d = ok(TWO);
        assert_eq!((d.rx_intr, d.lsc_interrupt), (None, true), "DPDK's default");
        let c = ok(&format!("{TWO} --rx-intr --no-lsc-interrupt"));
        assert_eq!((c.rx_intr, c.lsc_interrupt), (Some(300), false));
        let c = ok(&format!(
            "{TWO} --forward-mode=macswap --rx-intr --rx-intr-idle-polls=10"
        ));
        assert_eq!(c.rx_intr, Some(10));
        for (line, needle) in [
            (
                format!("{TWO} --rx-intr --forward-mode=txonly"),
                "only receives",
            ),
            (
                format!("{TWO} --rx-intr --forward-mode=noisy"),
                "only receives",
            ),
            (
                format!("{TWO} --rx-intr --rx-intr-idle-polls=0"),
                "0 is not in 1",
            ),
        ] {
            let m = bad(&line);
            assert!(m.contains(needle), "{line:?}: {m:?} lacks {needle:?}");
        }
    }

    #[test]
    fn help_is_info_not_error() {
        match parse(&args("--help"), &CPUS) {
            Ok(Parsed::Info(t)) => assert!(t.contains("--forward-mode")),
            other => panic!("{other:?}"),
        }
    }
}
