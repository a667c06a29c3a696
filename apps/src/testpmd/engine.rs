//! The forwarding engine: streams (RX port/queue -> TX port/queue) spread
//! over the forwarding lcores, each lcore a thread pinned to its CPU and
//! bound to its pool lcore id, polling its streams until told to stop.
//!
//! Streams follow DPDK's paired topology: port 0 forwards to port 1 and
//! back, 2 to 3, and so on; an odd last port (or a single port) forwards to
//! itself. icmpecho answers on the port a request came in on. Each port has
//! max(rxq, txq) streams; stream q owns RX queue q of its port (if q < rxq)
//! and TX queue q of its peer port (if q < txq), so every queue belongs to
//! exactly one stream and one core.

use super::capture::CaptureSink;
use super::csum::{self, CsumOffloads};
use super::fivetswap;
use super::frames::{self, EchoAction, UdpTemplate};
use super::noisy::{Noisy, NoisyConfig, NoisyFwd};
use super::options::FwdMode;
use super::report::{BurstSpread, FwdCounters, StreamForward};
use pmd::{Packet, RxQueue, Segment, TxQueue};
use pool::Pool;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// Where a stream receives and sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub rx_port: usize,
    pub rx_queue: u16,
    pub tx_port: usize,
    pub tx_queue: u16,
}

/// The peer of `port` among `nports` in the paired topology.
pub fn peer_port(port: usize, nports: usize) -> usize {
    let p = port ^ 1;
    if p < nports { p } else { port }
}

/// The streams of `nports` ports with `rxq`/`txq` queues in `mode`.
pub fn stream_specs(nports: usize, rxq: u16, txq: u16, mode: FwdMode) -> Vec<StreamSpec> {
    let mut v = Vec::new();
    for p in 0..nports {
        let tx_port = if mode == FwdMode::Icmpecho {
            p
        } else {
            peer_port(p, nports)
        };
        for q in 0..rxq.max(txq) {
            v.push(StreamSpec {
                rx_port: p,
                rx_queue: q,
                tx_port,
                tx_queue: q,
            });
        }
    }
    v
}

/// Which lcore (index into the forwarding lcores) runs stream `i`.
pub fn lcore_of_stream(i: usize, nlcores: usize) -> usize {
    i % nlcores.max(1)
}

/// A stream's counters, written by its lcore only (plain load + store, no
/// read-modify-write) and read by the main thread for live statistics.
#[derive(Debug, Default)]
pub struct StreamCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    rx_consumed: AtomicU64,
}

fn bump(c: &AtomicU64, by: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl StreamCounters {
    pub fn snapshot(&self) -> FwdCounters {
        FwdCounters {
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            tx_packets: self.tx_packets.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            tx_dropped: self.tx_dropped.load(Ordering::Relaxed),
            rx_consumed: self.rx_consumed.load(Ordering::Relaxed),
        }
    }
}

/// Per-stream settings of the header-writing modes.
#[derive(Debug, Clone)]
pub struct ModeParams {
    pub mode: FwdMode,
    pub burst: usize,
    /// MAC of the RX port (icmpecho answers from it).
    pub rx_mac: [u8; 6],
    /// MAC of the TX port.
    pub tx_mac: [u8; 6],
    /// The TX port's peer (destination for mac, txonly, flowgen).
    pub tx_peer: [u8; 6],
    /// txonly/flowgen: segment lengths of a frame.
    pub txpkts: Vec<u16>,
    pub tx_ip: (Ipv4Addr, Ipv4Addr),
    pub tx_udp: (u16, u16),
    pub flows: u32,
    /// `set fwd MODE retry`: retry a partly sent burst.
    pub retry: Option<TxRetry>,
    /// csum: where the TX port computes each checksum.
    pub csum: CsumOffloads,
    pub noisy: NoisyConfig,
    /// txonly (and tx_first): vary the IPv4 source per packet.
    pub multi_flow: bool,
    /// The lcore the stream runs on (multi-flow source addresses).
    pub lcore: usize,
    pub record_cycles: bool,
    pub record_bursts: bool,
}

/// DPDK's `burst_tx_delay_time` / `burst_tx_retry_num`: when the TX queue
/// takes only part of a burst, wait `delay_us` and offer the rest again,
/// at most `num` times, before dropping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRetry {
    pub delay_us: u32,
    pub num: u32,
}

impl Default for TxRetry {
    /// DPDK's BURST_TX_WAIT_US and BURST_TX_RETRIES.
    fn default() -> Self {
        TxRetry {
            delay_us: 1,
            num: 64,
        }
    }
}

/// The CPU's cycle counter (the TSC on x86-64; nanoseconds elsewhere).
#[inline]
pub fn cycles_now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and exists on every x86-64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
    }
}

/// What `--record-burst-stats`, `--record-core-cycles` and the csum mode
/// counted on one stream (plain fields: written by its lcore, read after
/// the lcore gave the stream back).
#[derive(Debug, Default, Clone)]
pub struct StreamExtras {
    /// (RX, TX) burst sizes.
    pub bursts: Option<(BurstSpread, BurstSpread)>,
    /// Cycles of polls that handled packets.
    pub cycles: u64,
    pub bad_ip_csum: u64,
    pub bad_l4_csum: u64,
}

/// A stream with the queues it owns.
pub struct Stream {
    pub spec: StreamSpec,
    pub rx: Option<RxQueue>,
    pub tx: Option<TxQueue>,
    pub counters: Arc<StreamCounters>,
    /// Frames received on / sent to the captured port.
    pub capture_rx: Option<CaptureSink>,
    pub capture_tx: Option<CaptureSink>,
    pub params: ModeParams,
    /// Frames txonly/flowgen (and tx_first) build.
    template: Vec<u8>,
    flow: u32,
    /// txonly-multi-flow's source address counter.
    ip_var: u8,
    pub extras: StreamExtras,
    /// noisy mode's FIFO and lookup memory.
    noisy: Option<Box<Noisy>>,
    /// Any of cycle counting, burst histograms or noisy: the one flag the
    /// burst loop tests when none is on.
    extras_on: bool,
}

impl Stream {
    pub fn new(
        spec: StreamSpec,
        rx: Option<RxQueue>,
        tx: Option<TxQueue>,
        params: ModeParams,
    ) -> Self {
        let mut s = Stream {
            spec,
            rx,
            tx,
            counters: Arc::new(StreamCounters::default()),
            capture_rx: None,
            capture_tx: None,
            params,
            template: Vec::new(),
            flow: 0,
            ip_var: 0,
            extras: StreamExtras::default(),
            noisy: None,
            extras_on: false,
        };
        s.set_params(s.params.clone());
        s
    }

    /// Changes the mode settings (between runs) and clears what the
    /// previous run counted beside the counters.
    pub fn set_params(&mut self, params: ModeParams) {
        self.params = params;
        self.template.clear();
        // A noisy flush sends up to the whole FIFO in one burst.
        let largest = if self.params.mode == FwdMode::Noisy {
            self.params.burst.max(self.params.noisy.tx_sw_buffer_size)
        } else {
            self.params.burst
        };
        self.extras = StreamExtras {
            bursts: self.params.record_bursts.then(|| {
                let b = BurstSpread::new(largest);
                (b.clone(), b)
            }),
            ..StreamExtras::default()
        };
        self.noisy = (self.params.mode == FwdMode::Noisy).then(|| {
            let seed = (self.spec.rx_port as u64) << 16 | u64::from(self.spec.rx_queue);
            Box::new(Noisy::new(self.params.noisy, seed ^ 0x9e37_79b9_7f4a_7c15))
        });
        self.extras_on =
            self.params.record_cycles || self.extras.bursts.is_some() || self.noisy.is_some();
        // Every mode keeps the txonly frame: `start tx_first` sends it.
        let len: usize = self.params.txpkts.iter().map(|l| usize::from(*l)).sum();
        let mut t = vec![0u8; len];
        // Payload: a counting pattern, so captures show what was sent.
        for (i, b) in t.iter_mut().enumerate().skip(frames::UDP_HLEN) {
            *b = i as u8;
        }
        frames::write_udp_headers(&mut t, len, &self.udp_template(0));
        self.template = t;
    }

    fn udp_template(&self, flow: u32) -> UdpTemplate {
        let p = &self.params;
        let dst = u32::from(p.tx_ip.1).wrapping_add(flow);
        UdpTemplate {
            dst_mac: p.tx_peer,
            src_mac: p.tx_mac,
            src_ip: p.tx_ip.0,
            dst_ip: Ipv4Addr::from(dst),
            src_port: p.tx_udp.0,
            dst_port: p.tx_udp.1,
        }
    }

    pub fn report(&self) -> StreamForward {
        StreamForward {
            rx_port: self.spec.rx_port,
            rx_queue: self.spec.rx_queue,
            tx_port: self.spec.tx_port,
            tx_queue: self.spec.tx_queue,
            counters: self.counters.snapshot(),
            bursts: self.extras.bursts.clone(),
        }
    }

    /// After forwarding stopped: frees what the mode still holds (noisy's
    /// FIFO), counting it as dropped.
    pub fn finish_run(&mut self) {
        if let Some(n) = self.noisy.as_mut() {
            let held = n.discard();
            bump(&self.counters.tx_dropped, held as u64);
        }
    }

    /// One txonly burst, whatever the mode (`start tx_first`).
    pub fn tx_first_burst(&mut self, scratch: &mut Vec<Packet>, pool: &Pool) {
        scratch.clear();
        let t0 = if self.params.record_cycles {
            cycles_now()
        } else {
            0
        };
        self.generate_txonly(scratch, pool);
        self.transmit(scratch, t0, None);
    }

    /// One burst of the stream's mode. Returns the packets handled (for
    /// the idle check); `scratch` is the lcore's reusable burst vector.
    #[inline]
    pub fn run_burst(&mut self, scratch: &mut Vec<Packet>, pool: &Pool) -> usize {
        scratch.clear();
        let burst = self.params.burst;
        let extras = self.extras_on;
        let t0 = if extras && self.params.record_cycles {
            cycles_now()
        } else {
            0
        };
        // Bytes of the burst as offered to TX, when the mode knows them
        // without another pass over the packets.
        let mut offered_bytes = None;
        if self.params.mode.generates() {
            self.generate(scratch, pool);
        } else {
            let Some(rx) = self.rx.as_mut() else {
                return 0;
            };
            let n = rx.rx_burst(scratch, burst);
            if extras && let Some((b, _)) = self.extras.bursts.as_mut() {
                b.record(n);
            }
            if n == 0 {
                if extras && let Some(nz) = self.noisy.as_mut() {
                    nz.flush_due(scratch, std::time::Instant::now());
                    return self.transmit(scratch, t0, None);
                }
                return 0;
            }
            let bytes = burst_bytes(scratch);
            bump(&self.counters.rx_packets, n as u64);
            bump(&self.counters.rx_bytes, bytes);
            if let Some(c) = &self.capture_rx {
                c.record(scratch);
            }
            match self.params.mode {
                // These modes forward every packet received, lengths
                // unchanged: the bytes offered are the bytes received.
                FwdMode::Io => offered_bytes = Some(bytes),
                FwdMode::Mac => {
                    let (dst, src) = (self.params.tx_peer, self.params.tx_mac);
                    for p in scratch.iter_mut() {
                        if let Some(d) = p.data_mut() {
                            frames::set_macs(d, dst, src);
                        }
                    }
                    offered_bytes = Some(bytes);
                }
                FwdMode::Macswap => {
                    for p in scratch.iter_mut() {
                        if let Some(d) = p.data_mut() {
                            frames::swap_macs(d);
                        }
                    }
                }
                FwdMode::Rxonly => {
                    bump(&self.counters.rx_consumed, n as u64);
                    scratch.clear();
                    return n;
                }
                FwdMode::Icmpecho => {
                    let mac = self.params.rx_mac;
                    let before = scratch.len();
                    scratch.retain_mut(|p| {
                        let whole = p.segment_count() == 1;
                        whole
                            && p.data_mut()
                                .is_some_and(|d| frames::icmpecho(d, mac) == EchoAction::Reply)
                    });
                    bump(&self.counters.rx_consumed, (before - scratch.len()) as u64);
                }
                FwdMode::FiveTswap => {
                    for p in scratch.iter_mut() {
                        if let Some(d) = p.data_mut() {
                            fivetswap::swap(d);
                        }
                    }
                }
                FwdMode::Csum => self.csum_burst(scratch),
                FwdMode::Noisy => {
                    let fwd = self.params.noisy.fwd;
                    if fwd != NoisyFwd::Io {
                        let (dst, src) = (self.params.tx_peer, self.params.tx_mac);
                        for d in scratch.iter_mut().filter_map(Packet::data_mut) {
                            match fwd {
                                NoisyFwd::Mac => {
                                    frames::set_macs(d, dst, src);
                                }
                                NoisyFwd::Macswap => {
                                    frames::swap_macs(d);
                                }
                                NoisyFwd::FiveTswap => {
                                    fivetswap::swap(d);
                                }
                                NoisyFwd::Io => {}
                            }
                        }
                    }
                    if let Some(nz) = self.noisy.as_mut() {
                        nz.received(scratch);
                        if scratch.is_empty() {
                            nz.flush_due(scratch, std::time::Instant::now());
                        }
                    }
                    if scratch.is_empty() {
                        self.count_cycles(t0);
                        return n;
                    }
                }
                FwdMode::Txonly | FwdMode::Flowgen => {}
            }
        }
        self.transmit(scratch, t0, offered_bytes)
    }

    #[inline]
    fn count_cycles(&mut self, t0: u64) {
        if self.extras_on && self.params.record_cycles {
            self.extras.cycles = self
                .extras
                .cycles
                .wrapping_add(cycles_now().wrapping_sub(t0));
        }
    }

    /// csum mode: counts bad received checksums, rewrites the MACs, and
    /// recomputes or requests every checksum.
    fn csum_burst(&mut self, burst: &mut [Packet]) {
        let (dst, src, cfg) = (self.params.tx_peer, self.params.tx_mac, self.params.csum);
        for p in burst.iter_mut() {
            if p.rx_flags.contains(pmd::RxFlags::IP_CKSUM_BAD) {
                self.extras.bad_ip_csum += 1;
            }
            if p.rx_flags.contains(pmd::RxFlags::L4_CKSUM_BAD) {
                self.extras.bad_l4_csum += 1;
            }
            let len = p.len();
            if let Some(d) = p.data_mut() {
                frames::set_macs(d, dst, src);
                p.tx = csum::process(d, len, cfg);
            }
        }
    }

    /// The TX half of a burst: sends `scratch` (retrying as `set fwd MODE
    /// retry` asks), counts, drops what the queue did not take. Returns
    /// the packets offered.
    #[inline]
    fn transmit(
        &mut self,
        scratch: &mut Vec<Packet>,
        t0: u64,
        offered_bytes: Option<u64>,
    ) -> usize {
        let offered = scratch.len();
        if offered == 0 {
            return 0;
        }
        let Some(tx) = self.tx.as_mut() else {
            bump(&self.counters.tx_dropped, offered as u64);
            scratch.clear();
            return offered;
        };
        if let Some(c) = &self.capture_tx {
            // Recorded before the queue takes them (it removes what it takes).
            c.record(scratch);
        }
        let bytes_offered = offered_bytes.unwrap_or_else(|| burst_bytes(scratch));
        let mut sent = tx.tx_burst(scratch);
        if let Some(r) = self.params.retry
            && !scratch.is_empty()
        {
            for _ in 0..r.num {
                // Busy-waits, as DPDK's rte_delay_us: a sleep would take
                // tens of microseconds at least.
                let until = std::time::Instant::now()
                    + std::time::Duration::from_micros(u64::from(r.delay_us));
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                sent += tx.tx_burst(scratch);
                if scratch.is_empty() {
                    break;
                }
            }
        }
        if self.extras_on
            && let Some((_, b)) = self.extras.bursts.as_mut()
        {
            b.record(sent);
        }
        // What TX left (ring full) is rare: no pass when it took all.
        let bytes_left = if scratch.is_empty() {
            0
        } else {
            burst_bytes(scratch)
        };
        bump(&self.counters.tx_packets, sent as u64);
        bump(&self.counters.tx_bytes, bytes_offered - bytes_left);
        if !scratch.is_empty() {
            bump(&self.counters.tx_dropped, scratch.len() as u64);
            scratch.clear();
        }
        self.count_cycles(t0);
        offered
    }

    /// txonly: a burst of the template frame (with multi-flow, each with
    /// the next source address: DPDK's `(dst | var << 8) + lcore`).
    fn generate_txonly(&mut self, out: &mut Vec<Packet>, pool: &Pool) {
        for _ in 0..self.params.burst {
            let Some(mut p) = build(pool, &self.template, &self.params.txpkts) else {
                break;
            };
            if self.params.multi_flow {
                let mut t = self.udp_template(0);
                let src = (u32::from(self.params.tx_ip.1) | (u32::from(self.ip_var) << 8))
                    .wrapping_add(self.params.lcore as u32);
                self.ip_var = self.ip_var.wrapping_add(1);
                t.src_ip = Ipv4Addr::from(src);
                if let Some(d) = p.data_mut() {
                    frames::write_udp_headers(d, self.template.len(), &t);
                }
            }
            out.push(p);
        }
    }

    /// txonly/flowgen: fills `out` with up to a burst of frames from `pool`.
    fn generate(&mut self, out: &mut Vec<Packet>, pool: &Pool) {
        let flowgen = self.params.mode == FwdMode::Flowgen;
        if !flowgen {
            return self.generate_txonly(out, pool);
        }
        for _ in 0..self.params.burst {
            let Some(mut p) = build(pool, &self.template, &self.params.txpkts) else {
                break;
            };
            if flowgen {
                let t = self.udp_template(self.flow);
                self.flow = (self.flow + 1) % self.params.flows;
                if let Some(d) = p.data_mut() {
                    frames::write_udp_headers(d, self.template.len(), &t);
                }
            }
            out.push(p);
        }
    }
}

/// Bytes of the packets of a burst.
#[inline]
fn burst_bytes(pkts: &[Packet]) -> u64 {
    pkts.iter().map(|p| p.len() as u64).sum()
}

/// A packet holding `frame`, cut into segments of `segs` bytes.
fn build(pool: &Pool, frame: &[u8], segs: &[u16]) -> Option<Packet> {
    if segs.len() <= 1 {
        return Packet::from_bytes(pool, frame);
    }
    let mut pkt: Option<Packet> = None;
    let mut at = 0usize;
    for (i, &len) in segs.iter().enumerate() {
        let len = usize::from(len);
        let off = if i == 0 {
            usize::from(pmd::HEADROOM)
        } else {
            0
        };
        let mut buf = pool.alloc()?;
        buf.bytes_mut()?
            .get_mut(off..off + len)?
            .copy_from_slice(frame.get(at..at + len)?);
        at += len;
        let seg = Segment::new(buf, off as u16, len as u16).ok()?;
        match pkt.as_mut() {
            None => pkt = Some(Packet::from_segment(seg)),
            Some(p) => p.push_segment(seg),
        }
    }
    pkt
}

/// The streams one lcore polls.
pub struct LcoreWork {
    pub lcore: usize,
    pub streams: Vec<Stream>,
    /// `--rx-intr`: empty polls before sleeping on RX interrupts
    /// ([`super::intr::lcore_loop`]).
    pub rx_intr: Option<u32>,
    /// What the `--rx-intr` loop did in the last run.
    pub sleep: Option<super::intr::SleepReport>,
}

/// Forwarding in progress: one thread per lcore with streams.
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<LcoreWork, (LcoreWork, String)>>>,
}

/// Why forwarding could not start on an lcore.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("starting the thread of lcore {lcore}: {source}")]
    Spawn {
        lcore: usize,
        source: std::io::Error,
    },
}

/// Starts one pinned thread per entry of `work`; each first sends
/// `tx_first` txonly bursts on every stream (`start tx_first N`).
pub fn launch(
    work: Vec<LcoreWork>,
    pool: Arc<Pool>,
    tx_first: u32,
) -> Result<Running, LaunchError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for w in work {
        let stop = stop.clone();
        let pool = pool.clone();
        let lcore = w.lcore;
        let h = std::thread::Builder::new()
            .name(format!("lcore-{lcore}"))
            .spawn(move || lcore_main(w, &pool, &stop, tx_first))
            .map_err(|source| LaunchError::Spawn { lcore, source })?;
        threads.push(h);
    }
    Ok(Running { stop, threads })
}

fn lcore_main(
    mut w: LcoreWork,
    pool: &Pool,
    stop: &AtomicBool,
    tx_first: u32,
) -> Result<LcoreWork, (LcoreWork, String)> {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: w.lcore }) {
        let msg = format!("could not pin lcore {} to CPU {}", w.lcore, w.lcore);
        return Err((w, msg));
    }
    if let Err(e) = pool::lcore::set_current(w.lcore) {
        let msg = format!("lcore {}: {e}", w.lcore);
        return Err((w, msg));
    }
    let burst = w.streams.iter().map(|s| s.params.burst).max().unwrap_or(32);
    let mut scratch: Vec<Packet> = Vec::with_capacity(burst);
    for _ in 0..tx_first {
        for s in w.streams.iter_mut() {
            s.tx_first_burst(&mut scratch, pool);
        }
    }
    if let Some(idle_polls) = w.rx_intr {
        w.sleep = Some(super::intr::lcore_loop(
            &mut w.streams,
            &mut scratch,
            pool,
            stop,
            idle_polls,
        ));
    } else {
        while !stop.load(Ordering::Relaxed) {
            for s in w.streams.iter_mut() {
                s.run_burst(&mut scratch, pool);
            }
        }
    }
    drop(scratch);
    pool::lcore::clear_current();
    Ok(w)
}

impl Running {
    /// Tells every lcore to stop and takes their streams back. Errors of
    /// lcores that could not run are returned with the streams.
    pub fn stop(self) -> (Vec<LcoreWork>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut work = Vec::new();
        let mut errors = Vec::new();
        for t in self.threads {
            match t.join() {
                Ok(Ok(w)) => work.push(w),
                Ok(Err((w, e))) => {
                    work.push(w);
                    errors.push(e);
                }
                Err(_) => errors.push("a forwarding lcore panicked; its queues are lost".into()),
            }
        }
        (work, errors)
    }

    /// True when every lcore thread has ended (they end early only on error).
    pub fn any_finished(&self) -> bool {
        self.threads.iter().any(JoinHandle::is_finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_topology() {
        assert_eq!(peer_port(0, 2), 1);
        assert_eq!(peer_port(1, 2), 0);
        assert_eq!(peer_port(0, 1), 0);
        assert_eq!(peer_port(2, 3), 2, "odd last port loops");
        let s = stream_specs(2, 1, 1, FwdMode::Io);
        assert_eq!(
            s,
            vec![
                StreamSpec {
                    rx_port: 0,
                    rx_queue: 0,
                    tx_port: 1,
                    tx_queue: 0
                },
                StreamSpec {
                    rx_port: 1,
                    rx_queue: 0,
                    tx_port: 0,
                    tx_queue: 0
                },
            ]
        );
    }

    #[test]
    fn every_queue_has_one_stream() {
        for mode in FwdMode::ALL {
            for (n, rxq, txq) in [(1, 1, 1), (2, 2, 2), (2, 1, 4), (3, 4, 1)] {
                let s = stream_specs(n, rxq, txq, mode);
                let mut rx: Vec<(usize, u16)> = s
                    .iter()
                    .filter(|x| x.rx_queue < rxq)
                    .map(|x| (x.rx_port, x.rx_queue))
                    .collect();
                let mut tx: Vec<(usize, u16)> = s
                    .iter()
                    .filter(|x| x.tx_queue < txq)
                    .map(|x| (x.tx_port, x.tx_queue))
                    .collect();
                rx.sort_unstable();
                tx.sort_unstable();
                let all = |q: u16| -> Vec<(usize, u16)> {
                    (0..n).flat_map(|p| (0..q).map(move |i| (p, i))).collect()
                };
                assert_eq!(rx, all(rxq), "{mode} {n} {rxq} {txq}");
                assert_eq!(tx, all(txq), "{mode} {n} {rxq} {txq}");
            }
        }
        assert!(
            stream_specs(2, 1, 1, FwdMode::Icmpecho)
                .iter()
                .all(|s| s.rx_port == s.tx_port)
        );
    }

    #[test]
    fn streams_spread_over_lcores() {
        let got: Vec<usize> = (0..5).map(|i| lcore_of_stream(i, 2)).collect();
        assert_eq!(got, vec![0, 1, 0, 1, 0]);
    }
}
