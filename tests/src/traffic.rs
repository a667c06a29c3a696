//! The host-side traffic generator: streams numbered UDP frames at a target
//! rate into one NIC's wire, counts and checks what comes back on another
//! (or the same) NIC's wire, shows a live progress line and ends with a
//! summary.
//!
//! Frames in flight (sent, not yet back) are bounded: QEMU's igb drops a
//! batch that finds its RX ring full and no counter sees it, so the bound
//! (default 128, a quarter of a 512-entry ring) is what keeps a run
//! loss-free. Before counting, the generator sends probe frames until one
//! comes back, which is when the guest's links are up and forwarding runs.
//!
//! Each frame is Ethernet/IPv4/UDP; its payload holds a magic, the run's id,
//! the sequence number and a pattern derived from it, so every received
//! frame is checked from the IPv4 header to its last byte (the Ethernet
//! addresses are not checked: mac and macswap forwarding rewrite them).

use crate::peer::FramePeer;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Payload magic of a counted frame.
const MAGIC: u32 = 0x7267_656e; // "rgen"
/// Payload magic of a probe frame (sent before counting starts).
const PROBE_MAGIC: u32 = 0x7267_7072; // "rgpr"
const ETH_HLEN: usize = 14;
const HDRS: usize = ETH_HLEN + 20 + 8;
/// magic, run id, sequence number.
const STAMP: usize = 4 + 4 + 8;
/// Smallest frame the generator sends (headers and stamp fit).
pub const MIN_FRAME: usize = 60;
/// Largest frame the generator sends (no jumbo: the default MTU).
pub const MAX_FRAME: usize = 1514;
/// Most frames the sender puts in one write.
const BATCH: u64 = 32;
/// Number of UDP source ports the frames cycle through (flows, for RSS).
const FLOWS: u64 = 16;

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    /// Target rate in frames per second (the in-flight bound may hold it lower).
    pub rate_pps: u64,
    /// How long to send for (after the warm-up).
    pub duration: Duration,
    /// Frame length without FCS, MIN_FRAME..=MAX_FRAME.
    pub frame_len: usize,
    /// Most frames sent and not yet received back.
    pub max_in_flight: u64,
    /// Destination MAC of the frames (the NIC they are sent to).
    pub dst_mac: [u8; 6],
    /// Source MAC of the frames (the host).
    pub src_mac: [u8; 6],
    /// Longest wait for the first probe to come back.
    pub warmup_timeout: Duration,
    /// How long to wait for the last frames after sending stops.
    pub drain: Duration,
    /// Show a progress line this often (None: silent).
    pub progress: Option<Duration>,
    /// Stop after this many counted frames, even before `duration` (the
    /// bench's fixed measuring windows).
    pub max_frames: Option<u64>,
    /// Longest a send may block on the NIC's netdev socket (QEMU stops
    /// reading it while the NIC cannot receive); then the run fails with
    /// [`TrafficError::SendTimeout`] instead of hanging.
    pub send_timeout: Duration,
}

impl Default for TrafficConfig {
    /// 20 kpps of 60-byte frames for 10 s, at most 128 in flight.
    fn default() -> Self {
        TrafficConfig {
            rate_pps: 20_000,
            duration: Duration::from_secs(10),
            frame_len: 60,
            max_in_flight: 128,
            dst_mac: crate::vm::nic_mac(0),
            src_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0xaa],
            warmup_timeout: Duration::from_secs(20),
            drain: Duration::from_secs(3),
            progress: None,
            max_frames: None,
            send_timeout: Duration::from_secs(5),
        }
    }
}

/// What a run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficReport {
    /// Counted frames sent.
    pub sent: u64,
    /// Counted frames received back intact, each once.
    pub received: u64,
    /// Sent and never received.
    pub lost: u64,
    /// Received with a payload that differs from what was sent.
    pub corrupted: u64,
    /// Received more than once.
    pub duplicates: u64,
    /// Received after a later frame had already arrived.
    pub reordered: u64,
    /// Frames on the receive wire that the generator did not send (and
    /// returning probes).
    pub foreign: u64,
    /// Times the sender waited the full stall limit at the in-flight bound.
    pub stalls: u64,
    /// Probe frames sent during the warm-up (they cross the forwarder too).
    pub probes: u64,
    /// Time from the first probe to the first probe back.
    pub warmup: Duration,
    /// Sending time (warm-up and drain excluded).
    pub elapsed: Duration,
}

impl TrafficReport {
    /// True when every frame came back intact, once.
    pub fn lossless(&self) -> bool {
        self.sent > 0
            && self.received == self.sent
            && self.lost == 0
            && self.corrupted == 0
            && self.duplicates == 0
    }

    /// Frames per second actually sent.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.sent as f64 / s } else { 0.0 }
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "sent {}, received {}, lost {}, corrupted {}, duplicates {}, reordered {} in {:.1} s ({:.0} frames/s)",
            self.sent,
            self.received,
            self.lost,
            self.corrupted,
            self.duplicates,
            self.reordered,
            self.elapsed.as_secs_f64(),
            self.rate()
        )
    }
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("frame length {0} is outside {MIN_FRAME}..={MAX_FRAME}")]
    FrameLen(usize),
    #[error("the rate and the in-flight bound must be at least 1")]
    Zero,
    #[error(
        "no probe frame came back within {0:?}: is the guest forwarding, and are its links up?"
    )]
    NoForwarding(Duration),
    #[error("sending on the NIC's wire: {0}")]
    Send(std::io::Error),
    #[error(
        "the NIC's wire took no frame for {0:?} after {1} counted frames: the guest NIC stopped receiving"
    )]
    SendTimeout(Duration, u64),
}

/// Builds the frame with sequence number `seq` (counted when `magic` is
/// [`MAGIC`]).
fn frame(cfg: &TrafficConfig, magic: u32, run: u32, seq: u64) -> Vec<u8> {
    let len = cfg.frame_len;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&cfg.dst_mac);
    f[6..12].copy_from_slice(&cfg.src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[ETH_HLEN..ETH_HLEN + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - ETH_HLEN) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[198, 18, 1, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 1, 2]);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp = &mut f[ETH_HLEN + 20..HDRS];
    udp[0..2].copy_from_slice(&(10_000 + (seq % FLOWS) as u16).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - ETH_HLEN - 20) as u16).to_be_bytes());
    let p = &mut f[HDRS..];
    p[0..4].copy_from_slice(&magic.to_be_bytes());
    p[4..8].copy_from_slice(&run.to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[STAMP..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_add(i) as u8;
    }
    f
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What one received frame is.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Counted(u64),
    Corrupted,
    Probe,
    Foreign,
}

fn classify(cfg: &TrafficConfig, run: u32, f: &[u8]) -> Seen {
    if f.len() < HDRS + STAMP {
        return Seen::Foreign;
    }
    let p = &f[HDRS..];
    let magic = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    let frun = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    if frun != run || (magic != MAGIC && magic != PROBE_MAGIC) {
        return Seen::Foreign;
    }
    if magic == PROBE_MAGIC {
        return Seen::Probe;
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&p[8..16]);
    let seq = u64::from_be_bytes(s);
    let want = frame(cfg, MAGIC, run, seq);
    // Compare from the IPv4 header on; forward modes may rewrite the MACs.
    if f.len() == want.len() && f[12..] == want[12..] {
        Seen::Counted(seq)
    } else {
        Seen::Corrupted
    }
}

/// Counters the receiver shares with the sender and the progress line.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    received: AtomicU64,
    done: AtomicBool,
}

/// Sends well-formed 64-byte UDP frames to `peer`'s NIC at about `pps`,
/// open loop (uncounted background load, e.g. across link flaps), until
/// `stop`; returns how many.
pub fn blast(peer: &FramePeer, dst: [u8; 6], pps: u64, stop: &AtomicBool) -> u64 {
    let batch = 8u64;
    let gap = Duration::from_secs_f64(batch as f64 / pps as f64);
    let mut sent = 0u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let frames: Vec<Vec<u8>> = (0..batch)
            .map(|i| crate::testpmd_out::udp(dst, (sent + i) as u8, 64))
            .collect();
        peer.send_batch(&frames).expect("send to the NIC");
        sent += batch;
        next += gap;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    sent
}

/// Runs the generator: frames go to `tx`'s NIC, come back on `rx`'s.
pub fn run(
    tx: &FramePeer,
    rx: &FramePeer,
    cfg: &TrafficConfig,
) -> Result<TrafficReport, TrafficError> {
    if !(MIN_FRAME..=MAX_FRAME).contains(&cfg.frame_len) {
        return Err(TrafficError::FrameLen(cfg.frame_len));
    }
    if cfg.rate_pps == 0 || cfg.max_in_flight == 0 {
        return Err(TrafficError::Zero);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let run = std::process::id().rotate_left(16) ^ nanos;
    let mut report = TrafficReport::default();

    // Warm-up: a probe every 50 ms until one comes back.
    let t0 = Instant::now();
    let mut probe = 0u64;
    'warm: loop {
        if t0.elapsed() > cfg.warmup_timeout {
            return Err(TrafficError::NoForwarding(cfg.warmup_timeout));
        }
        tx.send_batch_within(&[frame(cfg, PROBE_MAGIC, run, probe)], cfg.send_timeout)
            .map_err(|e| send_error(e, cfg, 0))?;
        probe += 1;
        let until = Instant::now() + Duration::from_millis(50);
        while let Some(f) = rx.recv(until.saturating_duration_since(Instant::now())) {
            if classify(cfg, run, &f) == Seen::Probe {
                break 'warm;
            }
        }
    }
    report.warmup = t0.elapsed();
    report.probes = probe;
    // Let the other probes come back before counting starts.
    std::thread::sleep(Duration::from_millis(200));
    for f in rx.drain() {
        if classify(cfg, run, &f) != Seen::Probe {
            report.foreign += 1;
        }
    }

    let live = &Live::default();
    let start = Instant::now();
    let (recv_result, send_result) = std::thread::scope(|s| {
        let receiver = s.spawn(|| receive(rx, cfg, run, live));
        let progress = cfg
            .progress
            .map(|every| s.spawn(move || show_progress(live, cfg, start, every)));
        let sent = send(tx, cfg, run, live, start);
        // Wait for the stragglers, then stop the receiver.
        let deadline = Instant::now() + cfg.drain;
        while Instant::now() < deadline
            && live.received.load(Ordering::Relaxed) < live.sent.load(Ordering::Relaxed)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        live.done.store(true, Ordering::Relaxed);
        let r = receiver.join();
        if let Some(p) = progress {
            let _ = p.join();
        }
        (r, sent)
    });
    (report.elapsed, report.stalls) = send_result?;
    let got = recv_result.unwrap_or_default();
    report.sent = live.sent.load(Ordering::Relaxed);
    report.received = got.received;
    report.corrupted = got.corrupted;
    report.duplicates = got.duplicates;
    report.reordered = got.reordered;
    report.foreign += got.foreign;
    report.lost = report.sent.saturating_sub(report.received);
    Ok(report)
}

#[derive(Default)]
struct Received {
    received: u64,
    corrupted: u64,
    duplicates: u64,
    reordered: u64,
    foreign: u64,
}

fn receive(rx: &FramePeer, cfg: &TrafficConfig, run: u32, live: &Live) -> Received {
    let mut r = Received::default();
    let mut seen: Vec<u64> = Vec::new();
    let mut highest: Option<u64> = None;
    while !live.done.load(Ordering::Relaxed) {
        let Some(f) = rx.recv(Duration::from_millis(20)) else {
            continue;
        };
        match classify(cfg, run, &f) {
            // A sequence number never sent is a damaged frame.
            Seen::Counted(seq) if seq >= live.sent.load(Ordering::Relaxed) => r.corrupted += 1,
            Seen::Counted(seq) => {
                let (w, b) = ((seq / 64) as usize, seq % 64);
                if seen.len() <= w {
                    seen.resize(w + 1, 0);
                }
                if seen[w] & (1 << b) != 0 {
                    r.duplicates += 1;
                    continue;
                }
                seen[w] |= 1 << b;
                if highest.is_some_and(|h| seq < h) {
                    r.reordered += 1;
                }
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
                r.received += 1;
                live.received.store(r.received, Ordering::Relaxed);
            }
            Seen::Corrupted => r.corrupted += 1,
            Seen::Probe | Seen::Foreign => r.foreign += 1,
        }
    }
    r
}

/// Sends for `cfg.duration` at `cfg.rate_pps`, never more than
/// `cfg.max_in_flight` ahead of the receiver; returns the sending time and
/// the number of stalls at the bound.
fn send(
    tx: &FramePeer,
    cfg: &TrafficConfig,
    run: u32,
    live: &Live,
    start: Instant,
) -> Result<(Duration, u64), TrafficError> {
    let interval = Duration::from_secs_f64(1.0 / cfg.rate_pps as f64);
    let mut next = start;
    let mut seq = 0u64;
    let mut stalls = 0u64;
    let mut written_off = 0u64;
    // A frame that never comes back would hold the bound forever: after
    // this long at the bound without progress, send anyway.
    let stall_limit = Duration::from_millis(500);
    loop {
        let now = Instant::now();
        if now.duration_since(start) >= cfg.duration || cfg.max_frames.is_some_and(|m| seq >= m) {
            break;
        }
        if next > now {
            let ahead = next - now;
            if ahead > Duration::from_micros(200) {
                std::thread::sleep(ahead);
            }
            continue;
        }
        let mut waited = Instant::now();
        let mut last = live.received.load(Ordering::Relaxed);
        while seq
            .saturating_sub(live.received.load(Ordering::Relaxed))
            .saturating_sub(written_off)
            >= cfg.max_in_flight
        {
            let got = live.received.load(Ordering::Relaxed);
            if got != last {
                last = got;
                waited = Instant::now();
            } else if waited.elapsed() > stall_limit {
                // What is still out is taken for lost (the final count
                // says for sure): stop waiting for it.
                stalls += 1;
                written_off = seq.saturating_sub(got);
                break;
            }
            std::thread::yield_now();
        }
        // Every frame due by now, up to the in-flight room and a batch of
        // 32, goes out in one write. Counted as sent before it is on the
        // wire: the receiver takes a sequence number beyond `sent` for a
        // damaged frame.
        let room = cfg
            .max_in_flight
            .saturating_sub(
                seq.saturating_sub(live.received.load(Ordering::Relaxed))
                    .saturating_sub(written_off),
            )
            .max(1);
        let due = (Instant::now().saturating_duration_since(next).as_secs_f64()
            / interval.as_secs_f64()) as u64
            + 1;
        let n = due
            .min(room)
            .min(BATCH)
            .min(cfg.max_frames.map_or(u64::MAX, |m| m - seq));
        let batch: Vec<Vec<u8>> = (seq..seq + n).map(|s| frame(cfg, MAGIC, run, s)).collect();
        seq += n;
        live.sent.store(seq, Ordering::Relaxed);
        tx.send_batch_within(&batch, cfg.send_timeout)
            .map_err(|e| send_error(e, cfg, seq))?;
        next += interval * n as u32;
        // Do not bank more than a few milliseconds of credit after a stall.
        let floor = Instant::now().checked_sub(Duration::from_millis(5));
        if let Some(f) = floor
            && next < f
        {
            next = f;
        }
    }
    Ok((start.elapsed(), stalls))
}

fn send_error(e: std::io::Error, cfg: &TrafficConfig, seq: u64) -> TrafficError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        TrafficError::SendTimeout(cfg.send_timeout, seq)
    } else {
        TrafficError::Send(e)
    }
}

fn show_progress(live: &Live, cfg: &TrafficConfig, start: Instant, every: Duration) {
    let tty = std::io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64);
    while !live.done.load(Ordering::Relaxed) {
        std::thread::sleep(every);
        if live.done.load(Ordering::Relaxed) {
            break;
        }
        let sent = live.sent.load(Ordering::Relaxed);
        let recv = live.received.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (sent - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        last = (now, sent);
        let t = start
            .elapsed()
            .as_secs_f64()
            .min(cfg.duration.as_secs_f64());
        let line = format!(
            "gen: {t:5.1}/{:.0} s  rate {:>8.0} pps  sent {sent:>9}  received {recv:>9}  in flight {:>4}",
            cfg.duration.as_secs_f64(),
            rate,
            sent.saturating_sub(recv)
        );
        let mut e = std::io::stderr().lock();
        if tty {
            let _ = write!(e, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_well_formed_and_checked() {
        let cfg = TrafficConfig::default();
        let f = frame(&cfg, MAGIC, 7, 1234);
        assert_eq!(f.len(), 60);
        assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
        assert_eq!(classify(&cfg, 7, &f), Seen::Counted(1234));
        // Rewritten MACs are fine; payload damage is not.
        let mut m = f.clone();
        m[0..12].copy_from_slice(&[9; 12]);
        assert_eq!(classify(&cfg, 7, &m), Seen::Counted(1234));
        let mut bad = f.clone();
        bad[59] ^= 1;
        assert_eq!(classify(&cfg, 7, &bad), Seen::Corrupted);
        assert_eq!(classify(&cfg, 8, &f), Seen::Foreign, "another run");
        assert_eq!(classify(&cfg, 7, &f[..40]), Seen::Foreign);
        assert_eq!(
            classify(&cfg, 7, &frame(&cfg, PROBE_MAGIC, 7, 1)),
            Seen::Probe
        );
        let big = TrafficConfig {
            frame_len: 1514,
            ..TrafficConfig::default()
        };
        assert_eq!(
            classify(&big, 7, &frame(&big, MAGIC, 7, 99)),
            Seen::Counted(99)
        );
    }

    use crate::peer::PeerSocket;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    /// A peer and the far end of its socket (what QEMU would hold).
    fn wire(name: &str) -> (FramePeer, UnixStream) {
        let path = std::env::temp_dir().join(format!("gen-{}-{name}.sock", std::process::id()));
        let sock = PeerSocket::bind(&path).unwrap();
        let far = UnixStream::connect(&path).unwrap();
        (sock.accept(Duration::from_secs(5)).unwrap(), far)
    }

    /// Stands in for the guest: forwards frames from one wire to the other,
    /// dropping every `drop_every`th counted frame and corrupting one.
    fn forwarder(mut from: UnixStream, mut to: UnixStream, drop_every: Option<u64>, corrupt: bool) {
        std::thread::spawn(move || {
            let mut n = 0u64;
            loop {
                let mut len = [0u8; 4];
                if from.read_exact(&mut len).is_err() {
                    return;
                }
                let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
                if from.read_exact(&mut f).is_err() {
                    return;
                }
                let counted = u32::from_be_bytes([f[42], f[43], f[44], f[45]]) == MAGIC;
                if counted {
                    n += 1;
                    if drop_every.is_some_and(|d| n.is_multiple_of(d)) {
                        continue;
                    }
                    if corrupt && n == 5 {
                        f[50] ^= 0xff; // the sequence number's high byte
                    }
                    if corrupt && n == 7 {
                        let last = f.len() - 1;
                        f[last] ^= 0xff; // the pattern
                    }
                }
                if to.write_all(&len).and_then(|_| to.write_all(&f)).is_err() {
                    return;
                }
            }
        });
    }

    fn quick() -> TrafficConfig {
        TrafficConfig {
            rate_pps: 5_000,
            duration: Duration::from_millis(400),
            drain: Duration::from_millis(500),
            warmup_timeout: Duration::from_secs(5),
            ..TrafficConfig::default()
        }
    }

    #[test]
    fn a_clean_wire_is_lossless() {
        let (tx, tx_far) = wire("clean-tx");
        let (rx, rx_far) = wire("clean-rx");
        forwarder(tx_far, rx_far, None, false);
        let r = run(&tx, &rx, &quick()).unwrap();
        assert!(r.lossless(), "{}", r.summary());
        // 5 kpps for 0.4 s: pacing never sends more than 2000 frames (plus
        // one batch); a loaded machine may send fewer, which is not an error.
        assert!(r.sent > 0 && r.sent <= 2000 + 32, "{}", r.summary());
        assert_eq!(r.foreign, 0);
    }

    #[test]
    fn losses_and_damage_are_counted() {
        let (tx, tx_far) = wire("lossy-tx");
        let (rx, rx_far) = wire("lossy-rx");
        forwarder(tx_far, rx_far, Some(10), true);
        let r = run(&tx, &rx, &quick()).unwrap();
        assert!(!r.lossless());
        assert_eq!(r.lost, r.sent - r.received);
        assert_eq!(r.corrupted, 2);
        // Every 10th dropped, two corrupted (counted as not received).
        assert_eq!(r.lost, r.sent / 10 + 2, "{}", r.summary());
    }

    #[test]
    fn no_forwarding_is_reported() {
        let (tx, _tx_far) = wire("dead-tx");
        let (rx, _rx_far) = wire("dead-rx");
        let cfg = TrafficConfig {
            warmup_timeout: Duration::from_millis(300),
            ..quick()
        };
        match run(&tx, &rx, &cfg) {
            Err(TrafficError::NoForwarding(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_in_flight_bound_holds() {
        // A rate far above what the wire carries: the bound paces the
        // sender, and nothing is lost or stalls.
        let (tx, tx_far) = wire("bound-tx");
        let (rx, rx_far) = wire("bound-rx");
        forwarder(tx_far, rx_far, None, false);
        let cfg = TrafficConfig {
            rate_pps: 1_000_000,
            max_in_flight: 4,
            ..quick()
        };
        let r = run(&tx, &rx, &cfg).unwrap();
        assert!(r.lossless(), "{}", r.summary());
        assert_eq!(r.stalls, 0);
    }

    #[test]
    fn max_frames_ends_the_run_early() {
        let (tx, tx_far) = wire("max-tx");
        let (rx, rx_far) = wire("max-rx");
        forwarder(tx_far, rx_far, None, false);
        let cfg = TrafficConfig {
            rate_pps: 1_000_000,
            duration: Duration::from_secs(30),
            max_frames: Some(1000),
            ..quick()
        };
        let r = run(&tx, &rx, &cfg).unwrap();
        assert!(r.lossless(), "{}", r.summary());
        assert_eq!(r.sent, 1000);
        assert!(r.elapsed < Duration::from_secs(10), "{}", r.summary());
    }

    #[test]
    fn a_nic_that_stops_receiving_fails_the_run_instead_of_hanging() {
        // The far end forwards the probes, then stops reading the wire, as
        // QEMU does while a NIC's RX ring has no free descriptor.
        let (tx, mut tx_far) = wire("stuck-tx");
        let (rx, mut rx_far) = wire("stuck-rx");
        std::thread::spawn(move || {
            let mut n = 0;
            loop {
                let mut len = [0u8; 4];
                if tx_far.read_exact(&mut len).is_err() {
                    return;
                }
                let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
                if tx_far.read_exact(&mut f).is_err() {
                    return;
                }
                if rx_far
                    .write_all(&len)
                    .and_then(|_| rx_far.write_all(&f))
                    .is_err()
                {
                    return;
                }
                n += 1;
                if n == 100 {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        });
        let cfg = TrafficConfig {
            rate_pps: 1_000_000,
            duration: Duration::from_secs(60),
            max_in_flight: 1 << 30,
            send_timeout: Duration::from_millis(300),
            ..quick()
        };
        let t0 = Instant::now();
        match run(&tx, &rx, &cfg) {
            Err(TrafficError::SendTimeout(d, n)) => {
                assert_eq!(d, Duration::from_millis(300));
                assert!(n >= 99, "{n}");
            }
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    }

    #[test]
    fn bad_configs_are_refused() {
        let (tx, _a) = wire("cfg-tx");
        let (rx, _b) = wire("cfg-rx");
        let c = TrafficConfig {
            frame_len: 59,
            ..quick()
        };
        assert!(matches!(run(&tx, &rx, &c), Err(TrafficError::FrameLen(59))));
        let c = TrafficConfig {
            rate_pps: 0,
            ..quick()
        };
        assert!(matches!(run(&tx, &rx, &c), Err(TrafficError::Zero)));
    }

    #[test]
    fn summary_and_verdict() {
        let r = TrafficReport {
            sent: 10,
            received: 10,
            elapsed: Duration::from_secs(2),
            ..Default::default()
        };
        assert!(r.lossless());
        assert_eq!(r.rate(), 5.0);
        assert!(r.summary().starts_with("sent 10, received 10, lost 0"));
        let lossy = TrafficReport {
            lost: 1,
            received: 9,
            ..r.clone()
        };
        assert!(!lossy.lossless());
    }
}
