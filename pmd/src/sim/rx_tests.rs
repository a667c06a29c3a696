//! The receive ring against the simulated device.

use std::sync::Arc;

use pool::{Pool, PoolConfig};

use super::SimQueue;
use crate::igb::desc::AdvRx;
use crate::packet::Packet;
use crate::rx::{RxBufLayout, RxRing};
use crate::stats::{QueueCounters, QueueSnapshot};

const SIZE: u16 = 64;
const THRESH: u16 = 16;
/// Device buffer of 1 KiB behind 128 bytes of headroom in 2 KiB pool buffers.
const LAYOUT: RxBufLayout = RxBufLayout {
    headroom: 128,
    buf_len: 1024,
};
const BUF: usize = 1024;

/// An RX ring of igb advanced descriptors over `dev` (one buffer per
/// descriptor, no header split).
fn new_ring(
    dev: SimQueue,
    pool: &Arc<Pool>,
    queue: u16,
    counters: &Arc<QueueCounters>,
) -> Result<RxRing<AdvRx, SimQueue>, crate::rx::RxSetupError> {
    RxRing::new(
        dev,
        pool.clone(),
        LAYOUT,
        None,
        queue,
        THRESH,
        counters.clone(),
    )
}

struct Rig {
    dev: SimQueue,
    ring: RxRing<AdvRx, SimQueue>,
    pool: Arc<Pool>,
    counters: Arc<QueueCounters>,
}

fn rig(pool_bufs: usize) -> Rig {
    let pool = Pool::with_host_memory(&PoolConfig::new("rx-sim", pool_bufs).with_buf_size(2048))
        .expect("host pool");
    let dev = SimQueue::new(SIZE);
    let counters = Arc::new(QueueCounters::default());
    let mut ring = new_ring(dev.clone(), &pool, 3, &counters).expect("ring");
    ring.start();
    Rig {
        dev,
        ring,
        pool,
        counters,
    }
}

impl Rig {
    fn burst(&mut self, max: usize) -> Vec<Packet> {
        let mut out = Vec::new();
        let n = self.ring.rx_burst(&mut out, max);
        assert_eq!(n, out.len());
        out
    }
    fn counters(&self) -> QueueSnapshot {
        self.counters.snapshot()
    }
    fn tails(&self) -> Vec<u16> {
        self.dev.state().tails.clone()
    }
}

/// Where a received packet's segments start, for the device; checks each
/// starts after the headroom of its pool buffer.
fn seg_addrs(p: &Packet) -> Vec<u64> {
    p.segments()
        .map(|s| {
            assert_eq!(s.offset(), LAYOUT.headroom);
            s.dma_addr()
        })
        .collect()
}

#[test]
fn every_descriptor_but_one_is_posted_at_start() {
    let r = rig(256);
    assert_eq!(r.tails(), vec![SIZE - 1], "one tail write, size - 1");
    let s = r.dev.state();
    assert_eq!(s.owned(), SIZE - 1);
    let mut addrs: Vec<u64> = s.descs.iter().map(|d| d.lo).collect();
    assert!(s.descs.iter().all(|d| d.hi == 0), "no stale DD");
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(
        addrs.len(),
        usize::from(SIZE),
        "a distinct buffer per descriptor"
    );
}

#[test]
fn tail_is_written_once_per_burst_and_never_reaches_the_head() {
    let mut r = rig(256);
    // The device fills everything it owns; one more frame has no room.
    let mut sent = Vec::new();
    for _ in 0..SIZE - 1 {
        sent.push(r.dev.receive(60, BUF, 0).expect("room"));
    }
    assert!(
        r.dev.receive(60, BUF, 0).is_none(),
        "the held-back descriptor is not the device's"
    );

    // DPDK's rule: the tail is written once more than `rx_free_thresh`
    // (16, a quarter of this ring) refills are held.
    let mut got = r.burst(16);
    assert_eq!(got.len(), 16);
    assert_eq!(r.tails(), vec![SIZE - 1], "16 held, not above 16: no write");
    got.extend(r.burst(1));
    assert_eq!(r.tails(), vec![SIZE - 1, 16], "the 17th refill: one write");
    got.extend(r.burst(32));
    assert_eq!(got.len(), 49);
    assert_eq!(
        r.tails(),
        vec![SIZE - 1, 16, 48],
        "one write for 32 refills"
    );
    let got2 = r.burst(32);
    assert_eq!(got2.len(), 14);
    assert_eq!(r.tails().len(), 3, "14 held: no write");
    // Nothing new: no write either.
    assert!(r.burst(32).is_empty());
    assert_eq!(r.tails().len(), 3);

    for (p, a) in got.iter().chain(&got2).zip(&sent) {
        assert_eq!(seg_addrs(p), vec![a[0]], "the buffer the device wrote");
        assert_eq!(p.len(), 60);
        assert_eq!(p.queue, 3);
    }
    {
        let s = r.dev.state();
        assert_ne!(s.tail(), s.head, "RDT == RDH would hand the device nothing");
        assert_eq!(s.owned(), 49);
    }
    // Three more frames: the 17th held refill crosses the threshold, the
    // device gets every descriptor but one back.
    for _ in 0..3 {
        r.dev.receive(60, BUF, 0).expect("room");
    }
    assert_eq!(r.burst(32).len(), 3);
    let s = r.dev.state();
    assert_eq!(s.tails, vec![SIZE - 1, 16, 48, 1]);
    assert_eq!(s.owned(), SIZE - 1);
    let c = r.counters();
    assert_eq!((c.packets, c.bytes), (66, 66 * 60));
    assert_eq!(
        c.ring_full, 2,
        "the first two polls found the ring full (the device had no descriptor until the 17th refill)"
    );
}

#[test]
fn a_full_ring_is_counted_at_poll_time_whatever_the_burst_size() {
    // Issue 11's overdrive: a 64 ring kept full, polled with bursts of 8
    // (never one burst taking every device-owned descriptor).
    // Every poll while the device has no free descriptor (until the
    // refills are handed back with a tail write) counts.
    let mut r = rig(512);
    for _ in 0..4 {
        while r.dev.receive(60, BUF, 0).is_some() {}
        let before = r.counters().ring_full;
        assert_eq!(r.burst(8).len(), 8);
        assert_eq!(r.counters().ring_full, before + 1, "a full ring polled");
        while !r.burst(8).is_empty() {}
    }
    // A ring with room is never counted.
    let before = r.counters().ring_full;
    for _ in 0..10 {
        r.dev.receive(60, BUF, 0).expect("room");
        assert_eq!(r.burst(8).len(), 1);
    }
    assert_eq!(r.counters().ring_full, before);
}

#[test]
fn a_burst_draining_a_full_ring_counts_ring_full() {
    let mut r = rig(256);
    while r.dev.receive(60, BUF, 0).is_some() {}
    assert_eq!(r.burst(128).len(), usize::from(SIZE) - 1);
    assert_eq!(r.counters().ring_full, 1);
    r.dev.receive(60, BUF, 0).expect("room");
    assert_eq!(r.burst(128).len(), 1);
    assert_eq!(r.counters().ring_full, 1);
}

#[test]
fn wraps_around_many_times_with_partial_bursts() {
    let mut r = rig(256);
    let mut expected = std::collections::VecDeque::new();
    let mut received = 0usize;
    let lens = [60usize, 1024, 1514, 3000, 9018, 64, 2048];
    let mut k = 0;
    while received < 10 * usize::from(SIZE) {
        // Fill a varying number of frames, read with a smaller burst.
        for _ in 0..(k % 11) + 1 {
            let len = lens[k % lens.len()];
            k += 1;
            match r.dev.receive(len, BUF, 0) {
                Some(a) => expected.push_back((len, a)),
                None => break,
            }
        }
        for p in r.burst((k % 5) + 1) {
            let (len, addrs) = expected.pop_front().expect("a frame was sent");
            assert_eq!(p.len(), len);
            assert_eq!(seg_addrs(&p), addrs);
            let lens: Vec<u16> = p.segments().map(|s| s.len()).collect();
            assert!(
                lens[..lens.len() - 1]
                    .iter()
                    .all(|&l| usize::from(l) == BUF)
            );
            received += 1;
        }
        let s = r.dev.state();
        assert!(s.owned() < SIZE, "never more than size - 1 owned");
    }
    while let Some(&(len, _)) = expected.front() {
        let got = r.burst(32);
        assert!(!got.is_empty(), "frames of {len} bytes left undelivered");
        for p in got {
            assert_eq!(p.len(), expected.pop_front().expect("sent").0);
        }
    }
    let tails = r.tails();
    assert!(tails.len() > 10, "the tail moved as the ring wrapped");
    assert_eq!(r.counters().bad_desc + r.counters().nombuf, 0);
}

#[test]
fn scattered_frame_waits_for_its_eop() {
    let mut r = rig(256);
    // First two descriptors of a 3000-byte frame written back, the EOP one
    // not yet.
    let a0 = r.dev.write_back_raw(1 | (1024u64 << 32));
    let a1 = r.dev.write_back_raw(1 | (1024u64 << 32));
    assert!(r.burst(32).is_empty(), "no partial frame delivered");
    assert!(r.burst(32).is_empty());
    let a2 = r.dev.write_back_raw(1 | 2 | (952u64 << 32));
    r.dev.receive(60, BUF, 0).expect("room");
    let got = r.burst(32);
    assert_eq!(got.len(), 2);
    let p = &got[0];
    assert_eq!(p.len(), 3000);
    assert_eq!(p.segment_count(), 3);
    assert_eq!(seg_addrs(p), vec![a0, a1, a2]);
    assert_eq!(got[1].len(), 60);
}

#[test]
fn device_faults_are_dropped_and_counted_never_delivered() {
    let mut r = rig(256);
    // Length beyond the 1 KiB buffer (and beyond the pool buffer).
    r.dev.write_back_raw(1 | 2 | (1025u64 << 32));
    r.dev.write_back_raw(1 | 2 | (0xFFFFu64 << 32));
    // A zero-length frame.
    r.dev.write_back_raw(1 | 2);
    // What QEMU's igb left once (issue 11): DD, EOP and IPIDV on a
    // descriptor still holding its read-format buffer address, length 0.
    r.dev.write_back_raw(0x203);
    // A bad length in the middle of a scattered frame drops all of it.
    r.dev.write_back_raw(1 | (1024u64 << 32));
    r.dev.write_back_raw(1 | (4000u64 << 32));
    r.dev.write_back_raw(1 | 2 | (100u64 << 32));
    // RXE: an errored frame (counted as an error, not a fault).
    r.dev.receive(60, BUF, 1 << 31).expect("room");
    // Then a good one.
    let good = r.dev.receive(1514, BUF, 0).expect("room");
    let got = r.burst(32);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), 1514);
    assert_eq!(seg_addrs(&got[0]), good);
    let c = r.counters();
    assert_eq!(c.bad_desc, 5);
    assert_eq!(c.errors, 1);
    assert_eq!(c.packets, 1);
    drop(got);
    drop(r.ring);
    assert_eq!(r.pool.in_use(), 0, "dropped frames' buffers went back");
}

#[test]
fn a_frame_longer_than_the_ring_is_dropped_once() {
    let mut r = rig(256);
    // The device writes every descriptor it owns without EOP.
    for _ in 0..SIZE - 1 {
        r.dev.write_back_raw(1 | (1024u64 << 32));
    }
    assert!(r.burst(128).is_empty());
    assert_eq!(r.counters().bad_desc, 1, "counted when it overran the ring");
    // It goes on (the tail was written: the device owns descriptors again)
    // and finally ends; nothing more is counted, the next frame is fine.
    for _ in 0..5 {
        r.dev.write_back_raw(1 | (1024u64 << 32));
    }
    r.dev.write_back_raw(1 | 2 | (10u64 << 32));
    r.dev.receive(100, BUF, 0).expect("room");
    let got = r.burst(128);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), 100);
    assert_eq!(r.counters().bad_desc, 1);
    // Memory stayed bounded: the ring's buffers, its spares and one packet.
    assert!(r.pool.in_use() <= usize::from(SIZE) + 32 + 1);
}

#[test]
fn empty_pool_recycles_the_buffer_and_counts_nombuf() {
    // Exactly one buffer per descriptor: none to refill with.
    let mut r = rig(usize::from(SIZE));
    let posted: Vec<u64> = r.dev.state().descs.iter().map(|d| d.lo).collect();
    for _ in 0..3 {
        r.dev.receive(60, BUF, 0).expect("room");
    }
    assert!(r.burst(32).is_empty());
    let c = r.counters();
    assert_eq!((c.nombuf, c.packets), (3, 0));
    let s = r.dev.state();
    for (d, a) in s.descs.iter().zip(&posted).take(3) {
        assert_eq!(d.lo, *a, "same buffer re-posted");
        assert_eq!(d.hi, 0, "DD cleared");
    }
}

#[test]
fn dropping_the_ring_returns_every_buffer() {
    let mut r = rig(256);
    assert!(r.pool.in_use() >= usize::from(SIZE));
    for _ in 0..10 {
        r.dev.receive(60, BUF, 0).expect("room");
    }
    // Half a scattered frame stays inside the ring.
    r.dev.write_back_raw(1 | (1024u64 << 32));
    let got = r.burst(4);
    assert_eq!(got.len(), 4);
    let _ = r.burst(32);
    drop(got);
    assert!(r.pool.in_use() > 0);
    drop(r.ring);
    assert_eq!(r.pool.in_use(), 0);
}

#[test]
fn rings_too_small_or_pools_too_small_are_refused() {
    let pool = Pool::with_host_memory(&PoolConfig::new("rx-sim-small", 8).with_buf_size(2048))
        .expect("host pool");
    let c = Arc::new(QueueCounters::default());
    for size in [0, 1] {
        let e = new_ring(SimQueue::new(size), &pool, 0, &c);
        assert!(matches!(e, Err(crate::rx::RxSetupError::RingTooSmall(_))));
    }
    let e = new_ring(SimQueue::new(16), &pool, 0, &c);
    assert!(matches!(
        e,
        Err(crate::rx::RxSetupError::PoolTooSmall { needed: 16 })
    ));
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_layout_larger_than_the_pool_buffers_drops_what_would_not_fit() {
    // 1088-byte pool buffers: 128 bytes of headroom leave 960, less than
    // the layout's 1024-byte device buffer.
    let pool = Pool::with_host_memory(&PoolConfig::new("rx-small", 256).with_buf_size(1088))
        .expect("host pool");
    let dev = SimQueue::new(SIZE);
    let counters = Arc::new(QueueCounters::default());
    let mut ring = new_ring(dev.clone(), &pool, 0, &counters).expect("ring");
    ring.start();
    dev.write_back_raw(1 | 2 | (960u64 << 32));
    dev.write_back_raw(1 | 2 | (961u64 << 32));
    dev.write_back_raw(1 | 2 | (1024u64 << 32));
    dev.write_back_raw(1 | 2 | (60u64 << 32));
    let mut out = Vec::new();
    assert_eq!(ring.rx_burst(&mut out, 32), 2);
    let lens: Vec<usize> = out.iter().map(Packet::len).collect();
    assert_eq!(lens, vec![960, 60], "the frames that fit, in order");
    assert!(out.iter().all(|p| p.head().window_fits()));
    let c = counters.snapshot();
    assert_eq!((c.packets, c.bad_desc), (2, 2));
}

/// The device writing frames from its own thread while the ring polls, as
/// QEMU's NIC models and real silicon do: every frame is delivered once,
/// in the order the device wrote them, from the buffer the device was
/// given, and the device is never handed a descriptor that still holds a
/// write-back (its `lo` would be taken for a buffer address). Bursts of
/// varying size, so bursts end both at `max` and at a not-yet-written
/// descriptor, with the tail written at the threshold.
#[test]
fn a_device_thread_and_the_polling_ring_agree_on_every_descriptor() {
    use crate::igb::desc::{RXD_STAT_DD, RXD_STAT_EOP};
    use crate::ring::Desc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const FRAMES: u64 = 50_000;
    // A write-back's low quadword (an IPv4 ID and checksum, as the 82574L
    // and 82576 write without RSS): never a pool buffer's address.
    const JUNK: u64 = 0xdead_0000_0000_0000;
    let Rig {
        dev,
        mut ring,
        pool: _pool,
        counters,
    } = rig(1024);
    let done = AtomicBool::new(false);
    let (posted, got) = std::thread::scope(|s| {
        let device = s.spawn(|| {
            let mut posted = Vec::with_capacity(FRAMES as usize);
            let mut seq = 0u64;
            while seq < FRAMES {
                if dev.state().owned() == 0 {
                    std::thread::yield_now();
                    continue;
                }
                let hi = RXD_STAT_DD | RXD_STAT_EOP | (60u64 << 32);
                let was = dev.write_back_desc(Desc {
                    lo: JUNK | (seq << 16),
                    hi,
                });
                posted.push(was.lo);
                seq += 1;
                // Bursts of arrivals, then a pause.
                if seq.is_multiple_of(97) {
                    std::thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
            posted
        });
        let mut got = Vec::with_capacity(FRAMES as usize);
        let mut out = Vec::new();
        let mut k = 0usize;
        loop {
            let finished = done.load(Ordering::Acquire);
            k += 1;
            let max = [32, 1, 7, 32, 64, 3][k % 6];
            ring.rx_burst(&mut out, max);
            for p in out.drain(..) {
                got.push(p.head().dma_addr());
            }
            if finished && got.len() as u64 >= FRAMES {
                break;
            }
            // Whatever is still missing once the device is done never comes.
            if finished && k > 100_000_000 {
                break;
            }
        }
        (device.join().expect("device thread"), got)
    });
    assert!(
        posted.iter().all(|&a| a & JUNK != JUNK),
        "the device was handed a descriptor still holding a write-back"
    );
    assert_eq!(got.len(), posted.len(), "frames delivered vs written");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != posted[i]) {
        panic!(
            "frame {i}: delivered buffer {:#x}, the device wrote {:#x}",
            got[i], posted[i]
        );
    }
    let c = counters.snapshot();
    assert_eq!(c.packets, FRAMES);
    assert_eq!((c.errors, c.bad_desc, c.nombuf), (0, 0, 0));
}
