//! The transmit ring against the simulated device.

use std::sync::Arc;

use pool::{Pool, PoolConfig};

use super::SimQueue;
use crate::igb::desc::{ADVTXD_DCMD_EOP, ADVTXD_DCMD_RS, AdvTx};
use crate::packet::{Packet, Segment, TxFlags};
use crate::stats::QueueCounters;
use crate::tx::TxRing;

const SIZE: u16 = 64;
const RS: u16 = 8;

struct Rig {
    dev: SimQueue,
    ring: TxRing<AdvTx, SimQueue>,
    pool: Arc<Pool>,
    counters: Arc<QueueCounters>,
}

fn rig() -> Rig {
    let pool = Pool::with_host_memory(&PoolConfig::new("tx-sim", 1024).with_buf_size(2048))
        .expect("host pool");
    let dev = SimQueue::new(SIZE);
    let counters = Arc::new(QueueCounters::default());
    let ring = TxRing::<AdvTx, _>::new(dev.clone(), RS, RS, counters.clone()).expect("ring");
    Rig {
        dev,
        ring,
        pool,
        counters,
    }
}

impl Rig {
    /// `n` packets of `segs` segments of 100 bytes each.
    fn packets(&self, n: usize, segs: usize) -> Vec<Packet> {
        (0..n)
            .map(|_| {
                let seg =
                    || Segment::new(self.pool.alloc().expect("buffer"), 0, 100).expect("window");
                let mut p = Packet::from_segment(seg());
                for _ in 1..segs {
                    p.push_segment(seg());
                }
                p
            })
            .collect()
    }
    fn cmd(&self, i: u16) -> u32 {
        self.dev.state().descs[usize::from(i)].hi as u32
    }
}

#[test]
fn one_tail_write_per_burst_and_rs_every_threshold() {
    let mut r = rig();
    let mut pkts = r.packets(20, 1);
    assert_eq!(r.ring.tx_burst(&mut pkts), 20);
    assert!(pkts.is_empty());
    assert_eq!(r.dev.state().tails, vec![20], "one tail write");
    let rs: Vec<u16> = (0..20)
        .filter(|&i| r.cmd(i) & ADVTXD_DCMD_RS != 0)
        .collect();
    assert_eq!(rs, vec![7, 15], "RS on every 8th descriptor only");
    assert!((0..20).all(|i| r.cmd(i) & ADVTXD_DCMD_EOP != 0));
    let c = r.counters.snapshot();
    assert_eq!((c.packets, c.bytes), (20, 2000));
    // An empty burst writes nothing.
    assert_eq!(r.ring.tx_burst(&mut Vec::new()), 0);
    assert_eq!(r.dev.state().tails.len(), 1);
}

#[test]
fn multi_segment_packet_has_eop_on_its_last_descriptor() {
    let mut r = rig();
    let mut pkts = r.packets(1, 3);
    let addrs: Vec<u64> = pkts[0].segments().map(|s| s.dma_addr()).collect();
    assert_eq!(r.ring.tx_burst(&mut pkts), 1);
    let s = r.dev.state();
    assert_eq!(s.tails, vec![3]);
    let got: Vec<u64> = s.descs[..3].iter().map(|d| d.lo).collect();
    assert_eq!(got, addrs);
    let eop: Vec<bool> = s.descs[..3]
        .iter()
        .map(|d| d.hi as u32 & ADVTXD_DCMD_EOP != 0)
        .collect();
    assert_eq!(eop, vec![false, false, true]);
}

#[test]
fn backpressure_leaves_the_rest_with_the_caller_until_dd() {
    let mut r = rig();
    let mut pkts = r.packets(200, 1);
    let order: Vec<u64> = pkts.iter().map(|p| p.head().dma_addr()).collect();
    let taken = r.ring.tx_burst(&mut pkts);
    assert_eq!(
        taken,
        usize::from(SIZE) - 1,
        "size - 1: the tail never catches the head"
    );
    assert_eq!(pkts.len(), 200 - taken);
    let left: Vec<u64> = pkts.iter().map(|p| p.head().dma_addr()).collect();
    assert_eq!(left, order[taken..], "the rest stay, in order");
    // Nothing completed: nothing more fits, and no tail write.
    assert_eq!(r.ring.tx_burst(&mut pkts), 0);
    assert_eq!(r.dev.state().tails, vec![SIZE - 1]);
    let in_use = r.pool.in_use();

    // A DD on a descriptor without RS is not what cleanup looks at.
    r.dev.state().descs[0].hi |= 1 << 32;
    assert_eq!(r.ring.cleanup(), 0);

    // The device sends everything and writes DD into the RS'd descriptors
    // (7, 15, .., 55): 56 freed; the 7 after the last RS wait.
    assert_eq!(r.dev.transmit_all(), SIZE - 1);
    assert_eq!(r.ring.tx_burst(&mut pkts), 56);
    assert_eq!(
        r.pool.in_use(),
        in_use - 56,
        "completed buffers back in the pool"
    );
    assert_eq!(r.dev.state().tails, vec![SIZE - 1, (SIZE - 1 + 56) % SIZE]);
    assert_eq!(pkts.len(), 200 - taken - 56);
}

#[test]
fn packets_that_can_never_fit_are_dropped_not_blocking() {
    let mut r = rig();
    // 64 - 8 = 56 descriptors at most per packet.
    assert_eq!(r.ring.max_packet_descs(), 56);
    let mut pkts = r.packets(1, 57);
    pkts.extend(r.packets(1, 56));
    // A packet with no bytes.
    pkts.push(Packet::from_segment(
        Segment::new(r.pool.alloc().expect("buffer"), 0, 0).expect("empty window"),
    ));
    pkts.extend(r.packets(1, 1));
    assert_eq!(
        r.ring.tx_burst(&mut pkts),
        4,
        "all taken: none blocks the queue"
    );
    assert!(pkts.is_empty());
    let c = r.counters.snapshot();
    assert_eq!(
        (c.packets, c.errors),
        (2, 2),
        "the 57-segment and the empty one dropped"
    );
    assert_eq!(r.dev.state().tails, vec![57], "56 + 1 descriptors queued");
}

#[test]
fn bad_offload_requests_are_taken_and_counted() {
    let mut r = rig();
    let mut pkts = r.packets(2, 1);
    // TSO without an MSS cannot be done.
    pkts[0].tx.flags = TxFlags::IPV4 | TxFlags::TCP_SEG;
    assert_eq!(r.ring.tx_burst(&mut pkts), 2);
    let c = r.counters.snapshot();
    assert_eq!((c.packets, c.errors), (1, 1));
}

#[test]
fn buffers_all_return_to_the_pool_when_the_ring_goes() {
    let mut r = rig();
    let mut pkts = r.packets(40, 2);
    let taken = r.ring.tx_burst(&mut pkts);
    assert!(taken > 0 && !pkts.is_empty());
    drop(pkts);
    assert!(r.pool.in_use() > 0);
    drop(r.ring);
    assert_eq!(r.pool.in_use(), 0);
}

#[test]
fn rings_below_two_descriptors_are_refused() {
    for size in [0, 1] {
        let e = TxRing::<AdvTx, _>::new(SimQueue::new(size), 1, 1, Default::default());
        assert!(e.is_err());
    }
}

#[test]
fn a_segment_window_beyond_its_buffer_is_dropped_and_counted_never_posted() {
    let mut r = rig();
    let buf = || r.pool.alloc().expect("buffer");
    // 2048-byte buffers: (2000, 4000) reaches 3952 bytes past the end,
    // (2048, 1) one byte; a bad window in a later segment counts too.
    let mut pkts = vec![
        Packet::from_segment(Segment::new_unchecked(buf(), 2000, 4000)),
        Packet::from_segment(Segment::new_unchecked(buf(), 2048, 1)),
        {
            let mut p = Packet::from_segment(Segment::new(buf(), 0, 100).expect("window"));
            p.push_segment(Segment::new_unchecked(buf(), 0, 2049));
            p
        },
        Packet::from_segment(Segment::new(buf(), 0, 2048).expect("the whole buffer fits")),
    ];
    assert_eq!(r.ring.tx_burst(&mut pkts), 4, "all taken");
    let c = r.counters.snapshot();
    assert_eq!(c.errors, 3, "the three bad windows dropped and counted");
    assert_eq!(c.packets, 1);
    let s = r.dev.state();
    let posted: Vec<_> = s.descs.iter().filter(|d| d.hi != 0).collect();
    assert_eq!(
        posted.len(),
        1,
        "only the good packet's descriptor is posted"
    );
    assert_eq!(posted[0].hi & 0xFFFF, 2048, "its length");
    drop(s);
    assert_eq!(r.pool.in_use(), 1, "the dropped packets' buffers are back");
}

#[test]
fn cleanup_frees_exactly_the_completed_batches_across_many_wraps() {
    let mut r = rig();
    // Bursts of 5 one-segment packets: RS batches of 8 straddle bursts
    // and the ring's end, so the bulk free runs over split slot ranges.
    let mut sent = 0usize;
    let mut order = Vec::new();
    for _ in 0..100 {
        let mut pkts = r.packets(5, 1);
        order.extend(pkts.iter().map(|p| p.head().dma_addr()));
        assert_eq!(r.ring.tx_burst(&mut pkts), 5, "room for every burst");
        sent += 5;
        let s = r.dev.state();
        let last = usize::from((s.tail() + SIZE - 1) % SIZE);
        assert_eq!(s.descs[last].lo, order[sent - 1], "posted in order");
        drop(s);
        r.dev.transmit_all();
        r.ring.cleanup();
        assert_eq!(
            r.pool.in_use(),
            sent % usize::from(RS),
            "after {sent}: only the descriptors after the last RS hold buffers"
        );
    }
    assert!(sent > 7 * usize::from(SIZE), "wrapped several times");
    assert_eq!(r.counters.snapshot().packets, sent as u64);
}

#[test]
fn plain_and_offload_packets_interleave_in_order() {
    let mut r = rig();
    // Plain packets take the short path; VLAN ones a context descriptor
    // (one per change of tag) and multi-segment ones the general path.
    let mut want = Vec::new();
    for round in 0..40u16 {
        let mut pkts = r.packets(3, 1);
        pkts.extend(r.packets(1, 3));
        pkts[1].tx.flags = TxFlags::VLAN;
        pkts[1].tx.vlan_tci = round % 3;
        for p in &pkts {
            want.extend(p.segments().map(|s| s.dma_addr()));
        }
        let before = r.dev.state().tail();
        assert_eq!(r.ring.tx_burst(&mut pkts), 4);
        let s = r.dev.state();
        let mut i = before;
        let mut got = Vec::new();
        while i != s.tail() {
            let d = s.descs[usize::from(i)];
            // Data descriptors (DTYP 0011b); contexts carry no buffer.
            if (d.hi as u32) & 0x00F0_0000 == 0x0030_0000 {
                got.push(d.lo);
            }
            i = (i + 1) % SIZE;
        }
        drop(s);
        let from = want.len() - got.len();
        assert_eq!(got, want[from..], "round {round}: every segment, in order");
        assert_eq!(got.len(), 6);
        r.dev.transmit_all();
    }
    let c = r.counters.snapshot();
    assert_eq!((c.packets, c.errors), (160, 0));
    drop(r.ring);
    assert_eq!(r.pool.in_use(), 0);
}
