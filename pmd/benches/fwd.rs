//! Host-side cost per forwarded packet: `rx_burst` → `tx_burst` through the
//! real RX/TX ring code against a device simulated in memory (no emulator).
//!
//! Each iteration the simulated device does inline what the silicon does:
//! it writes back every RX descriptor it owns (up to the burst) as a 60-byte
//! frame (DD, EOP, length in the high quadword: 82576 advanced / 82574L
//! extended receive write-back), and fetches every TX descriptor up to the
//! tail, setting DD in those with RS. The ring then receives a burst and
//! transmits it; buffers go back to the pool at TX cleanup.
//!
//! The bench thread holds lcore id 0, as testpmd's forwarding lcores hold
//! theirs, so buffers come from and go back to the pool's lcore cache.
//!
//! Method (printed with the table): per format and burst, `ROUNDS` pairs of
//! rounds, alternated: a forwarding round (`measure_fwd`: device step plus
//! `rx_burst` and `tx_burst`) and a device-only round (`measure_device`:
//! the same device step on queues of the same size, the same number of
//! frames per step and RS on the same descriptors, with the tails moved by
//! the bench instead of the rings, two stores a step). Each round is timed
//! with rdtsc (TSC reference cycles) and, where the kernel gives a hardware
//! instruction counter (`perf_event_open`, user space only), counted in
//! instructions. Printed: the medians of the forwarding rounds (total), of
//! the device rounds (device) and of the per-pair differences (driver).
//!
//! `--packets N --format igb|e1000e --burst B` runs one pair of N packets
//! each (after a warm-up in `warm_up`), for
//! `valgrind --tool=callgrind --toggle-collect='*measure_*'`: the inclusive
//! costs of `fwd::measure_fwd` and `fwd::measure_device`
//! (`callgrind_annotate --inclusive=yes`) divided by N are the total and the
//! device's instructions per packet; `scripts/fwd-insns` runs all six cases
//! that way.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use pmd::Packet;
use pmd::e1000e::desc::{CtxTx, ExtRx};
use pmd::igb::desc::{AdvRx, AdvTx};
use pmd::ring::{Desc, QueueHw};
use pmd::rx::{RxBufLayout, RxFormat, RxRing};
use pmd::stats::QueueCounters;
use pmd::tx::{TxFormat, TxRing};
use pool::{Pool, PoolConfig};

const RING: u16 = 512;
const FRAME: u64 = 60;
/// DD (bit 0) and EOP (bit 1) of the receive write-back status.
const RX_DD_EOP: u64 = 0b11;
/// RS in the transmit command (bit 27 on both families) and DD in the
/// write-back status (bit 32 of the high quadword).
const TX_RS: u64 = 1 << 27;
const TX_DD: u64 = 1 << 32;

/// Head and tail of one simulated queue.
struct Regs {
    head: AtomicU16,
    tail: AtomicU16,
}

/// One simulated queue: its descriptors as in DMA memory (16 bytes each,
/// the low quadword first) and its registers. Relaxed atomics compile to
/// plain loads and stores on x86-64; they only make the memory shareable
/// between the ring and the device step. The descriptor slice is held by
/// its own (fat) pointer, so an access is one bounds check against the
/// length beside it, as the ring's own shadow slices are.
#[derive(Clone)]
struct BenchQueue {
    descs: Arc<[[AtomicU64; 2]]>,
    regs: Arc<Regs>,
}

impl BenchQueue {
    fn new(size: u16) -> BenchQueue {
        BenchQueue {
            descs: (0..size)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            regs: Arc::new(Regs {
                head: AtomicU16::new(0),
                tail: AtomicU16::new(0),
            }),
        }
    }
    fn next(i: u16) -> u16 {
        if i + 1 == RING { 0 } else { i + 1 }
    }
    /// The device receives up to `n` frames into the descriptors it owns.
    fn receive(&self, n: usize) {
        let m = &self.regs;
        let tail = m.tail.load(Ordering::Relaxed);
        let mut h = m.head.load(Ordering::Relaxed);
        let mut k = 0;
        while k < n && h != tail {
            let d = &self.descs[usize::from(h)];
            d[0].store(0, Ordering::Relaxed);
            d[1].store(RX_DD_EOP | (FRAME << 32), Ordering::Relaxed);
            h = Self::next(h);
            k += 1;
        }
        m.head.store(h, Ordering::Relaxed);
    }
    /// The device sends every descriptor up to the tail.
    fn transmit(&self) {
        let m = &self.regs;
        let tail = m.tail.load(Ordering::Relaxed);
        let mut h = m.head.load(Ordering::Relaxed);
        while h != tail {
            let d = &self.descs[usize::from(h)][1];
            let hi = d.load(Ordering::Relaxed);
            if hi & TX_RS != 0 {
                d.store(hi | TX_DD, Ordering::Relaxed);
            }
            h = Self::next(h);
        }
        m.head.store(h, Ordering::Relaxed);
    }
}

impl QueueHw for BenchQueue {
    fn size(&self) -> u16 {
        RING
    }
    fn write(&mut self, i: u16, d: Desc) {
        // The two quadwords in the order `DmaQueue::write` stores them.
        let q = &self.descs[usize::from(i)];
        q[0].store(d.lo, Ordering::Relaxed);
        q[1].store(d.hi, Ordering::Relaxed);
    }
    fn read_hi(&self, i: u16) -> u64 {
        self.descs[usize::from(i)][1].load(Ordering::Relaxed)
    }
    fn read_lo(&self, i: u16) -> u64 {
        self.descs[usize::from(i)][0].load(Ordering::Relaxed)
    }
    fn write_tail(&mut self, value: u16) {
        self.regs.tail.store(value, Ordering::Relaxed);
    }
}

struct Fwd<R: RxFormat, T: TxFormat> {
    rx_dev: BenchQueue,
    tx_dev: BenchQueue,
    rx: RxRing<R, BenchQueue>,
    tx: TxRing<T, BenchQueue>,
    burst: usize,
    pkts: Vec<Packet>,
    _pool: Arc<Pool>,
}

/// RS every this many TX descriptors (the ring's `rs_thresh` here).
const RS_THRESH: u16 = 32;

impl<R: RxFormat, T: TxFormat> Fwd<R, T> {
    fn new(burst: usize) -> Fwd<R, T> {
        let pool = Pool::with_host_memory(&PoolConfig::new("fwd-bench", 4096).with_buf_size(2048))
            .expect("host pool for the bench");
        let layout = RxBufLayout {
            headroom: 128,
            buf_len: 1024,
        };
        let rx_dev = BenchQueue::new(RING);
        let tx_dev = BenchQueue::new(RING);
        let counters = Arc::new(QueueCounters::default());
        let mut rx = RxRing::new(
            rx_dev.clone(),
            pool.clone(),
            layout,
            None,
            0,
            32,
            counters.clone(),
        )
        .expect("rx ring");
        rx.start();
        let tx = TxRing::new(tx_dev.clone(), RS_THRESH, 32, counters).expect("tx ring");
        Fwd {
            rx_dev,
            tx_dev,
            rx,
            tx,
            burst,
            pkts: Vec::with_capacity(burst),
            _pool: pool,
        }
    }

    /// One device step and one forwarding burst; returns packets sent.
    #[inline(always)]
    fn step(&mut self) -> usize {
        self.rx_dev.receive(self.burst);
        self.rx.rx_burst(&mut self.pkts, self.burst);
        let sent = self.tx.tx_burst(&mut self.pkts);
        // Whatever did not fit is dropped (back to the pool), as testpmd does.
        self.pkts.clear();
        self.tx_dev.transmit();
        sent
    }
}

/// The device alone: the step of [`Fwd::step`] with no ring behind it.
/// The bench hands the device every RX descriptor but one and `burst` more
/// TX descriptors each step (RS on every [`RS_THRESH`]th, as the TX ring
/// sets it), so it writes back `burst` frames and fetches `burst`
/// descriptors a step, as when forwarding.
struct Device {
    rx_dev: BenchQueue,
    tx_dev: BenchQueue,
    burst: usize,
}

impl Device {
    fn new(burst: usize) -> Device {
        let (mut rx_dev, mut tx_dev) = (BenchQueue::new(RING), BenchQueue::new(RING));
        rx_dev.write_tail(RING - 1);
        for i in 0..RING {
            let rs = if (i + 1) % RS_THRESH == 0 { TX_RS } else { 0 };
            tx_dev.write(
                i,
                Desc {
                    lo: 0,
                    hi: rs | FRAME,
                },
            );
        }
        Device {
            rx_dev,
            tx_dev,
            burst,
        }
    }

    #[inline(always)]
    fn step(&mut self) -> usize {
        let m = &self.rx_dev.regs;
        let h = m.head.load(Ordering::Relaxed);
        m.tail
            .store(if h == 0 { RING - 1 } else { h - 1 }, Ordering::Relaxed);
        self.rx_dev.receive(self.burst);
        let m = &self.tx_dev.regs;
        let t = u32::from(m.tail.load(Ordering::Relaxed)) + self.burst as u32;
        m.tail
            .store((t % u32::from(RING)) as u16, Ordering::Relaxed);
        self.tx_dev.transmit();
        self.burst
    }
}

trait Step {
    fn step(&mut self) -> usize;
}

impl<R: RxFormat, T: TxFormat> Step for Fwd<R, T> {
    #[inline(always)]
    fn step(&mut self) -> usize {
        Fwd::step(self)
    }
}

impl Step for Device {
    #[inline(always)]
    fn step(&mut self) -> usize {
        Device::step(self)
    }
}

#[inline(never)]
fn warm_up(f: &mut impl Step) {
    let mut n = 0;
    while n < 100_000 {
        n += f.step();
    }
}

/// What one round cost: packets, TSC cycles, instructions (`None`
/// without a hardware counter).
#[derive(Clone, Copy)]
struct Cost {
    packets: usize,
    cycles: u64,
    insns: Option<u64>,
}

impl Cost {
    fn per_packet(self) -> (f64, Option<f64>) {
        let n = self.packets as f64;
        (self.cycles as f64 / n, self.insns.map(|i| i as f64 / n))
    }
}

/// The loop both measure functions run.
#[inline(always)]
fn timed(f: &mut impl Step, packets: usize, ctr: &Insns) -> Cost {
    let i0 = ctr.read();
    let t0 = cycles();
    let mut n = 0;
    while n < packets {
        n += black_box(f.step());
    }
    let c = cycles() - t0;
    let i1 = ctr.read();
    Cost {
        packets: n,
        cycles: c,
        insns: i0.zip(i1).map(|(a, b)| b - a),
    }
}

/// Forwards `packets` packets (device step included).
#[inline(never)]
fn measure_fwd<R: RxFormat, T: TxFormat>(f: &mut Fwd<R, T>, packets: usize, ctr: &Insns) -> Cost {
    timed(f, packets, ctr)
}

/// Runs the device alone for `packets` frames.
#[inline(never)]
fn measure_device(d: &mut Device, packets: usize, ctr: &Insns) -> Cost {
    timed(d, packets, ctr)
}

#[cfg(target_arch = "x86_64")]
fn cycles() -> u64 {
    // SAFETY: RDTSC has no memory effects; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn cycles() -> u64 {
    // No TSC: nanoseconds stand in (the method line says which).
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The calling thread's user-space instruction counter, if the kernel
/// gives one (`perf_event_open`, `PERF_COUNT_HW_INSTRUCTIONS`).
struct Insns(Option<i32>);

impl Insns {
    #[cfg(target_os = "linux")]
    fn open() -> Insns {
        // struct perf_event_attr as 64-bit words, zero past `flags`:
        // type (PERF_TYPE_HARDWARE = 0) | size << 32, config
        // (PERF_COUNT_HW_INSTRUCTIONS = 1), sample period, sample type,
        // read format, then the flag bits (exclude_kernel = bit 5,
        // exclude_hv = bit 6).
        let mut attr = [0u64; 16];
        attr[0] = (std::mem::size_of_val(&attr) as u64) << 32;
        attr[1] = 1;
        attr[5] = (1 << 5) | (1 << 6);
        // SAFETY: perf_event_open reads `size` bytes of `attr`, which is
        // that long; pid 0 / cpu -1: this thread on any CPU, no group.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                attr.as_ptr(),
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                0 as libc::c_ulong,
            )
        };
        Insns((fd >= 0).then_some(fd as i32))
    }
    #[cfg(not(target_os = "linux"))]
    fn open() -> Insns {
        Insns(None)
    }
    #[cfg(target_os = "linux")]
    fn read(&self) -> Option<u64> {
        let fd = self.0?;
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into `v`, a u64 on the stack.
        let n = unsafe { libc::read(fd, (&raw mut v).cast(), 8) };
        (n == 8).then_some(v)
    }
    #[cfg(not(target_os = "linux"))]
    fn read(&self) -> Option<u64> {
        None
    }
}

/// Medians of one case: (total, device, driver) cycles and instructions
/// per packet.
struct Figures {
    cycles: [f64; 3],
    insns: Option<[f64; 3]>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn medians(pairs: &[(f64, f64)]) -> [f64; 3] {
    [
        median(pairs.iter().map(|p| p.0).collect()),
        median(pairs.iter().map(|p| p.1).collect()),
        median(pairs.iter().map(|p| p.0 - p.1).collect()),
    ]
}

fn run<R: RxFormat, T: TxFormat>(
    burst: usize,
    packets: usize,
    rounds: usize,
    ctr: &Insns,
) -> Figures {
    let mut f = Fwd::<R, T>::new(burst);
    let mut d = Device::new(burst);
    warm_up(&mut f);
    warm_up(&mut d);
    let mut cyc = Vec::with_capacity(rounds);
    let mut ins = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (fc, fi) = measure_fwd(&mut f, packets, ctr).per_packet();
        let (dc, di) = measure_device(&mut d, packets, ctr).per_packet();
        cyc.push((fc, dc));
        if let (Some(fi), Some(di)) = (fi, di) {
            ins.push((fi, di));
        }
    }
    Figures {
        cycles: medians(&cyc),
        insns: (ins.len() == rounds).then(|| medians(&ins)),
    }
}

const ROUNDS: usize = 15;
const PACKETS: usize = 1_000_000;

fn main() {
    // As testpmd's forwarding lcores: the thread has an lcore id, so the
    // pool serves it from its lcore cache.
    if let Err(e) = pool::lcore::set_current(0) {
        eprintln!("lcore 0: {e}");
        std::process::exit(2);
    }
    let ctr = Insns::open();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(n) = arg("--packets") {
        let Ok(packets) = n.parse::<usize>() else {
            eprintln!("--packets needs a number, got {n:?}");
            std::process::exit(2);
        };
        let burst = match arg("--burst").map(|b| b.parse::<usize>()) {
            None => 32,
            Some(Ok(b)) if b > 0 => b,
            Some(_) => {
                eprintln!("--burst needs a number above 0");
                std::process::exit(2);
            }
        };
        let format = arg("--format").unwrap_or_else(|| "igb".into());
        let f = match format.as_str() {
            "igb" => run::<AdvRx, AdvTx>(burst, packets, 1, &ctr),
            "e1000e" => run::<ExtRx, CtxTx>(burst, packets, 1, &ctr),
            other => {
                eprintln!("--format is igb or e1000e, got {other:?}");
                std::process::exit(2);
            }
        };
        let [t, d, r] = f.cycles;
        println!(
            "{format} burst {burst}: {packets} packets in measure_fwd and in measure_device; \
             cycles/packet total {t:.1}, device {d:.1}, driver {r:.1}"
        );
        return;
    }
    println!("host-side forwarding, rx_burst -> tx_burst, 60-byte frames, ring {RING}");
    println!(
        "per case {ROUNDS} alternated pairs of rounds of {PACKETS} packets: forwarding \
         (device step + rings) and device step alone on the same frames"
    );
    println!(
        "medians per forwarded packet: total, device, driver (median of the per-pair \
         differences total - device)"
    );
    #[cfg(target_arch = "x86_64")]
    println!("cycles: rdtsc (TSC reference cycles)");
    #[cfg(not(target_arch = "x86_64"))]
    println!("cycles: nanoseconds (no TSC on this architecture)");
    if ctr.0.is_none() {
        println!(
            "instructions: no hardware counter here (perf_event_open refused); \
             count them with scripts/fwd-insns (callgrind)"
        );
    } else {
        println!("instructions: perf_event_open hardware counter, user space only");
    }
    println!(
        "{:<8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "format", "burst", "cyc total", "cyc dev", "cyc drv", "ins total", "ins dev", "ins drv"
    );
    let row = |name: &str, burst: usize, f: Figures| {
        let ins = match f.insns {
            Some([t, d, r]) => format!("{t:>9.1} {d:>9.1} {r:>9.1}"),
            None => format!("{:>9} {:>9} {:>9}", "-", "-", "-"),
        };
        let [t, d, r] = f.cycles;
        println!("{name:<8} {burst:>5} {t:>9.1} {d:>9.1} {r:>9.1} {ins}");
    };
    for burst in [1, 8, 32] {
        row(
            "igb",
            burst,
            run::<AdvRx, AdvTx>(burst, PACKETS, ROUNDS, &ctr),
        );
        row(
            "e1000e",
            burst,
            run::<ExtRx, CtxTx>(burst, PACKETS, ROUNDS, &ctr),
        );
    }
}
