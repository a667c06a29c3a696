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
//! `cargo bench -p pmd` prints cycles (rdtsc) per forwarded packet for igb's
//! advanced and e1000e's descriptor formats at bursts 1, 8 and 32.
//! `--packets N --format igb|e1000e --burst B` runs one case of N packets in
//! `measure` only (after a warm-up in `warm_up`), for
//! `valgrind --tool=callgrind --toggle-collect='*measure*'`: the collected
//! instruction count divided by N is the instructions per packet.

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

/// Descriptor memory and head/tail of one simulated queue. Relaxed atomics
/// compile to plain loads and stores on x86-64; they only make the memory
/// shareable between the ring and the device step.
struct Mem {
    lo: Box<[AtomicU64]>,
    hi: Box<[AtomicU64]>,
    head: AtomicU16,
    tail: AtomicU16,
}

#[derive(Clone)]
struct BenchQueue(Arc<Mem>);

impl BenchQueue {
    fn new(size: u16) -> BenchQueue {
        let v = || (0..size).map(|_| AtomicU64::new(0)).collect();
        BenchQueue(Arc::new(Mem {
            lo: v(),
            hi: v(),
            head: AtomicU16::new(0),
            tail: AtomicU16::new(0),
        }))
    }
    fn next(i: u16) -> u16 {
        if i + 1 == RING { 0 } else { i + 1 }
    }
    /// The device receives up to `n` frames into the descriptors it owns.
    fn receive(&self, n: usize) {
        let m = &self.0;
        let tail = m.tail.load(Ordering::Relaxed);
        let mut h = m.head.load(Ordering::Relaxed);
        let mut k = 0;
        while k < n && h != tail {
            let i = usize::from(h);
            m.lo[i].store(0, Ordering::Relaxed);
            m.hi[i].store(RX_DD_EOP | (FRAME << 32), Ordering::Relaxed);
            h = Self::next(h);
            k += 1;
        }
        m.head.store(h, Ordering::Relaxed);
    }
    /// The device sends every descriptor up to the tail.
    fn transmit(&self) {
        let m = &self.0;
        let tail = m.tail.load(Ordering::Relaxed);
        let mut h = m.head.load(Ordering::Relaxed);
        while h != tail {
            let i = usize::from(h);
            let hi = m.hi[i].load(Ordering::Relaxed);
            if hi & TX_RS != 0 {
                m.hi[i].store(hi | TX_DD, Ordering::Relaxed);
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
        let i = usize::from(i);
        self.0.lo[i].store(d.lo, Ordering::Relaxed);
        self.0.hi[i].store(d.hi, Ordering::Relaxed);
    }
    fn read_hi(&self, i: u16) -> u64 {
        self.0.hi[usize::from(i)].load(Ordering::Relaxed)
    }
    fn read_lo(&self, i: u16) -> u64 {
        self.0.lo[usize::from(i)].load(Ordering::Relaxed)
    }
    fn write_tail(&mut self, value: u16) {
        self.0.tail.store(value, Ordering::Relaxed);
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
        let tx = TxRing::new(tx_dev.clone(), 32, 32, counters).expect("tx ring");
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

#[inline(never)]
fn warm_up<R: RxFormat, T: TxFormat>(f: &mut Fwd<R, T>) {
    let mut n = 0;
    while n < 100_000 {
        n += f.step();
    }
}

/// Forwards `packets` packets; returns (packets, cycles).
#[inline(never)]
fn measure<R: RxFormat, T: TxFormat>(f: &mut Fwd<R, T>, packets: usize) -> (usize, u64) {
    let t0 = cycles();
    let mut n = 0;
    while n < packets {
        n += black_box(f.step());
    }
    (n, cycles() - t0)
}

#[cfg(target_arch = "x86_64")]
fn cycles() -> u64 {
    // SAFETY: RDTSC has no memory effects; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn cycles() -> u64 {
    // No TSC: nanoseconds stand in (the column header says which).
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn run<R: RxFormat, T: TxFormat>(burst: usize, packets: usize, rounds: usize) -> f64 {
    let mut f = Fwd::<R, T>::new(burst);
    warm_up(&mut f);
    let mut per: Vec<f64> = (0..rounds)
        .map(|_| {
            let (n, c) = measure(&mut f, packets);
            c as f64 / n as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}

fn main() {
    // As testpmd's forwarding lcores: the thread has an lcore id, so the
    // pool serves it from its lcore cache.
    if let Err(e) = pool::lcore::set_current(0) {
        eprintln!("lcore 0: {e}");
        std::process::exit(2);
    }
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
        let c = match format.as_str() {
            "igb" => run::<AdvRx, AdvTx>(burst, packets, 1),
            "e1000e" => run::<ExtRx, CtxTx>(burst, packets, 1),
            other => {
                eprintln!("--format is igb or e1000e, got {other:?}");
                std::process::exit(2);
            }
        };
        println!("{format} burst {burst}: {packets} packets in measure, {c:.1} cycles/packet");
        return;
    }
    println!("host-side forwarding, rx_burst -> tx_burst, 60-byte frames, ring {RING}");
    println!("median of 9 rounds of 1M packets, cycles (rdtsc) per forwarded packet");
    println!("{:<8} {:>6} {:>10}", "format", "burst", "cycles/pkt");
    for burst in [1, 8, 32] {
        let c = run::<AdvRx, AdvTx>(burst, 1_000_000, 9);
        println!("{:<8} {:>6} {:>10.1}", "igb", burst, c);
        let c = run::<ExtRx, CtxTx>(burst, 1_000_000, 9);
        println!("{:<8} {:>6} {:>10.1}", "e1000e", burst, c);
    }
}
