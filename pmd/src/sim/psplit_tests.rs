//! The 82574L's packet split through the shared RX ring: the simulated
//! queue has 32-byte descriptors and writes back packet-split descriptors
//! as the 82574 datasheet lays them out (length 0 and status in quadword
//! 1, header status and lengths 1..3 in quadword 2); the tests check the
//! read format the ring posts (header buffer, payload buffer, two null
//! buffers), the packets it makes (the same header page and device-memory
//! fragments as the 82576's header split), what it refuses, and that no
//! buffer goes back to a pool before the device is proven stopped.

use std::sync::Arc;

use pool::{Pool, PoolConfig};

use super::{SimQueue, SplitRig};
use crate::RxFlags;
use crate::e1000e::desc::{PS_NULL_BUFFER, PsRx};
use crate::e1000e::regs::{PSRCTL_BSIZE0_MAX, PSRCTL_BSIZE0_UNIT};
use crate::fence::DmaFence;
use crate::queue;
use crate::ring::{Desc, QueueHw};
use crate::rx::{RxBufLayout, RxRing, RxSetupError};
use crate::stats::QueueCounters;

const SIZE: u16 = 16;
const CHUNK: usize = 4096;
const HDR: usize = 256;
const DD: u64 = 1;
const EOP: u64 = 2;
const HDRSP: u64 = 1 << 15;

/// The buffers of one read-format descriptor as posted.
#[derive(Debug, Clone, Copy)]
struct Posted {
    hdr: u64,
    pkt: u64,
    upper: Desc,
}

type Rig = SplitRig<PsRx>;

fn layouts() -> (RxBufLayout, RxBufLayout) {
    let pl = RxBufLayout::for_pool(CHUNK, 1024, 64512).unwrap();
    let hl = RxBufLayout::for_pool(HDR, PSRCTL_BSIZE0_UNIT, PSRCTL_BSIZE0_MAX).unwrap();
    (pl, hl)
}

impl SplitRig<PsRx> {
    fn with(dev: SimQueue) -> Rig {
        SplitRig::start(dev, "ps", HDR, CHUNK, |_| layouts())
    }

    fn new() -> Rig {
        Rig::with(SimQueue::new(SIZE).wide())
    }

    /// The device writes back the packet-split descriptor at its head:
    /// `len0` bytes in buffer 0, `lens` in buffers 1..3, header status
    /// `hdr_status`, `last`: EOP. Returns what had been posted there.
    fn write_back(&self, len0: u16, lens: [u16; 3], hdr_status: u64, last: bool) -> Posted {
        let mut s = self.dev.state();
        assert!(s.owned() > 0, "the simulated device owns no descriptor");
        let h = usize::from(s.head);
        let posted = Posted {
            hdr: s.descs[h].lo,
            pkt: s.descs[h].hi,
            upper: s.upper[h],
        };
        let status = DD | if last { EOP } else { 0 };
        s.descs[h] = Desc {
            lo: 0,
            hi: status | (u64::from(len0) << 32),
        };
        s.upper[h] = Desc {
            lo: hdr_status
                | (u64::from(lens[0]) << 16)
                | (u64::from(lens[1]) << 32)
                | (u64::from(lens[2]) << 48),
            hi: 0,
        };
        s.head = (s.head + 1) % SIZE;
        posted
    }

    /// A frame split after `hdr` header bytes with `payload` bytes.
    fn split(&self, hdr: u16, payload: u16) -> Posted {
        self.write_back(hdr, [payload, 0, 0], HDRSP | u64::from(hdr), true)
    }

    fn done(mut self) {
        self.ring.release(None);
        assert_eq!((self.headers.in_use(), self.payload.in_use()), (0, 0));
    }
}

#[test]
fn the_ring_posts_header_and_payload_buffers_and_two_null_buffers() {
    let r = Rig::new();
    let s = r.dev.state();
    for i in 0..usize::from(SIZE) {
        let (d, u) = (s.descs[i], s.upper[i]);
        assert_ne!(d.lo, 0, "buffer 0: a header buffer on every descriptor");
        assert_ne!(d.hi, 0);
        assert_eq!(d.hi & DD, 0, "a payload address never looks done");
        assert_eq!((u.lo, u.hi), (PS_NULL_BUFFER, PS_NULL_BUFFER));
    }
    drop(s);
    assert_eq!(r.ring.hw().desc_len(), 32);
    r.done();
}

#[test]
fn a_split_frame_is_a_header_page_and_a_device_memory_fragment() {
    let mut r = Rig::new();
    let posted = r.split(42, 1472);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1);
    let p = &pkts[0];
    assert!(p.rx_flags.contains(RxFlags::HEADER_SPLIT));
    assert_eq!((p.len(), p.segment_count()), (42 + 1472, 2));
    let segs: Vec<_> = p.segments().collect();
    assert!(!segs[0].netmem().is_net_iov());
    assert_eq!(segs[0].dma_addr(), posted.hdr);
    assert_eq!(segs[0].data().map(<[u8]>::len), Some(42));
    assert!(segs[1].netmem().is_net_iov());
    assert_eq!(segs[1].data(), None);
    assert_eq!(segs[1].dma_addr(), posted.pkt);
    assert_eq!((posted.upper.lo, posted.upper.hi), (!0, !0));
    let frag = segs[1].devmem_frag().expect("a device-memory fragment");
    assert_eq!(frag.len, 1472);
    assert_eq!(frag.region_iova + frag.offset, posted.pkt);
    // Reposted with fresh buffers of both kinds, and the null buffers the
    // write-back overwrote written again.
    let s = r.dev.state();
    assert_ne!(s.descs[0].lo, posted.hdr);
    assert_ne!(s.descs[0].hi, posted.pkt);
    assert_eq!((s.upper[0].lo, s.upper[0].hi), (!0, !0));
    drop(s);
    assert_eq!(r.counters.snapshot().packets, 1);
    drop(pkts);
    r.done();
}

#[test]
fn an_unsplit_frame_starts_in_the_header_buffer_without_the_split_flag() {
    let mut r = Rig::new();
    // Not split (HDRSP clear): the first 256 bytes (BSIZE0) in buffer 0,
    // the rest in buffer 1; and a short non-IP frame whole in buffer 0.
    let a = r.write_back(256, [300, 0, 0], 0, true);
    r.write_back(60, [0, 0, 0], 0, true);
    // A headers-only split frame (a TCP ACK): no payload segment.
    r.split(54, 0);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 3);
    assert!(!pkts[0].rx_flags.contains(RxFlags::HEADER_SPLIT));
    assert_eq!((pkts[0].len(), pkts[0].segment_count()), (556, 2));
    assert_eq!(pkts[0].head().len(), 256);
    assert_eq!(pkts[0].head().dma_addr(), a.hdr);
    assert_eq!(
        pkts[0]
            .segments()
            .nth(1)
            .and_then(|s| s.devmem_frag())
            .map(|f| f.len),
        Some(300)
    );
    assert!(!pkts[1].rx_flags.contains(RxFlags::HEADER_SPLIT));
    assert_eq!((pkts[1].len(), pkts[1].segment_count()), (60, 1));
    assert!(pkts[2].rx_flags.contains(RxFlags::HEADER_SPLIT));
    assert_eq!((pkts[2].len(), pkts[2].segment_count()), (54, 1));
    drop(pkts);
    r.done();
}

#[test]
fn a_frame_over_two_descriptors_chains_payload_and_keeps_the_second_header_buffer() {
    let mut r = Rig::new();
    // The datasheet's multi-descriptor split frame: headers in the first
    // descriptor's buffer 0, later descriptors' buffer 0 left empty.
    let first = r.write_back(54, [4096, 0, 0], HDRSP | 54, false);
    let second = r.write_back(0, [1000, 0, 0], HDRSP | 54, true);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1);
    let segs: Vec<_> = pkts[0].segments().collect();
    assert_eq!(segs.len(), 3);
    assert_eq!(segs[0].len(), 54);
    assert_eq!(
        (segs[1].dma_addr(), segs[2].dma_addr()),
        (first.pkt, second.pkt)
    );
    assert_eq!((segs[1].len(), segs[2].len()), (4096, 1000));
    let s = r.dev.state();
    assert_ne!(s.descs[0].lo, first.hdr, "the first header buffer replaced");
    assert_eq!(s.descs[1].lo, second.hdr, "the second one kept posted");
    drop(s);
    drop(pkts);
    r.done();
}

#[test]
fn impossible_write_backs_are_dropped_and_counted() {
    let mut r = Rig::new();
    // Bytes in buffer 2 (never posted); a later descriptor with bytes in
    // its header buffer; a header longer than the header buffer; a payload
    // longer than the payload buffer.
    r.write_back(42, [100, 7, 0], HDRSP | 42, true);
    r.write_back(42, [4096, 0, 0], HDRSP | 42, false);
    r.write_back(10, [100, 0, 0], 0, true);
    r.split(HDR as u16 + 1, 100);
    r.split(42, CHUNK as u16 + 1);
    // Then a good frame still comes through.
    r.split(42, 100);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].len(), 142);
    let c = r.counters.snapshot();
    assert_eq!((c.bad_desc, c.packets), (4, 1));
    drop(pkts);
    r.done();
}

#[test]
fn posted_buffers_wait_for_the_device_to_be_proven_stopped() {
    let fence = DmaFence::new("ps-sim");
    let mut r = Rig::with(SimQueue::with_fence(SIZE, fence.clone()).wide());
    r.split(42, 1000);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1);
    drop(pkts);
    r.ring.release(None);
    // Every posted header and payload buffer (one per descriptor each) is
    // held: the device may still write them.
    assert_eq!(fence.held(), 2 * usize::from(SIZE));
    assert_eq!(
        (r.headers.in_use(), r.payload.in_use()),
        (usize::from(SIZE), usize::from(SIZE))
    );
    fence.mark_stopped();
    assert_eq!((r.headers.in_use(), r.payload.in_use()), (0, 0));
}

#[test]
fn a_packet_split_ring_refuses_what_cannot_work() {
    let pages = Pool::with_host_memory(&PoolConfig::new("ps-cfg", 64).with_buf_size(HDR)).unwrap();
    let iovs = Pool::with_host_net_iovs(&PoolConfig::new("ps-cfg-iov", 64)).unwrap();
    let (pl, hl) = layouts();
    let counters = Arc::new(QueueCounters::default());
    // No header pool: packet split descriptors need one.
    let r = RxRing::<PsRx, SimQueue>::new(
        SimQueue::new(SIZE).wide(),
        iovs.clone(),
        pl,
        None,
        0,
        4,
        counters.clone(),
    );
    assert!(matches!(r, Err(RxSetupError::NeedsHeaderSplit)));
    // Ring memory of 16-byte descriptors for a 32-byte format.
    let r = RxRing::<PsRx, SimQueue>::new(
        SimQueue::new(SIZE),
        iovs.clone(),
        pl,
        Some((pages.clone(), hl)),
        0,
        4,
        counters,
    );
    assert!(matches!(
        r,
        Err(RxSetupError::DescLen {
            format: 32,
            queue: 16
        })
    ));
    assert_eq!((pages.in_use(), iovs.in_use()), (0, 0));
    // Header buffers below the largest headers.
    let tiny = Pool::with_host_memory(&PoolConfig::new("ps-tiny", 8).with_buf_size(64)).unwrap();
    assert!(queue::rx_header_layout(0, &tiny, PSRCTL_BSIZE0_UNIT, PSRCTL_BSIZE0_MAX).is_err());
}
