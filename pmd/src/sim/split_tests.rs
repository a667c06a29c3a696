//! Header split through the shared RX ring: the simulated 82576 queue
//! writes back advanced header-split descriptors, and the tests check
//! what the ring makes of them (header page segment, device-memory payload
//! fragments at the addresses the device was given, which buffers are
//! replaced), the configuration checks, and that every buffer goes back to
//! its pool.

use std::sync::Arc;

use pool::{Pool, PoolConfig};

use super::{SimQueue, SplitRig};
use crate::igb::desc::AdvRx;
use crate::igb::regs::{
    SRRCTL_BSIZEHDR_MAX, SRRCTL_BSIZEHDR_UNIT, SRRCTL_DESCTYPE_HDR_SPLIT, srrctl,
};
use crate::port::RxQueueConfig;
use crate::queue::{self, MIN_HEADER_BUF};
use crate::ring::{Desc, QueueHw};
use crate::rx::{RxBufLayout, RxFormat, RxRing, RxSetupError};
use crate::stats::QueueCounters;
use crate::{Error, RxFlags};

const SIZE: u16 = 16;
const CHUNK: usize = 4096;
const HDR: usize = 256;

/// What the simulated device did with one descriptor.
#[derive(Debug, Clone, Copy)]
struct Used {
    pkt_addr: u64,
    hdr_addr: u64,
}

const DD: u64 = 1;
const EOP: u64 = 2;
const SPH: u64 = 1 << 31;
const HBO: u64 = 1 << 23;

type Rig = SplitRig<AdvRx>;

impl SplitRig<AdvRx> {
    fn new() -> Rig {
        SplitRig::start(SimQueue::new(SIZE), "hs", HDR, CHUNK, |headers| {
            let layout = RxBufLayout::for_pool(CHUNK, 1024, 16384).unwrap();
            let hl = queue::rx_header_layout(0, headers, SRRCTL_BSIZEHDR_UNIT, SRRCTL_BSIZEHDR_MAX)
                .unwrap();
            (layout, hl)
        })
    }

    /// Writes a frame back the way the 82576 does in header split mode:
    /// `hdr_info` = (split header length, SPH) on the first descriptor,
    /// the payload over as many packet buffers as it needs.
    fn receive(&mut self, payload_len: usize, split: Option<u16>, hbo: bool) -> Vec<Used> {
        let mut used = Vec::new();
        let mut left = payload_len;
        loop {
            let n = left.min(CHUNK);
            left -= n;
            let last = left == 0;
            let lo = match split {
                Some(hl) if used.is_empty() => SPH | (u64::from(hl) << 21),
                _ => 0,
            };
            let hi =
                DD | if last { EOP } else { 0 } | if hbo { HBO } else { 0 } | ((n as u64) << 32);
            let posted = self.dev.write_back_desc(Desc { lo, hi });
            used.push(Used {
                pkt_addr: posted.lo,
                hdr_addr: posted.hi,
            });
            if last {
                return used;
            }
        }
    }
}

#[test]
fn split_frame_is_a_header_page_and_a_device_memory_fragment() {
    let mut r = Rig::new();
    let used = r.receive(1472, Some(42), false);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1);
    let p = &pkts[0];
    assert!(p.rx_flags.contains(RxFlags::HEADER_SPLIT));
    assert_eq!(p.len(), 42 + 1472);
    assert_eq!(p.segment_count(), 2);
    let segs: Vec<_> = p.segments().collect();
    // Headers: a readable page at the header address the device was given.
    assert!(!segs[0].netmem().is_net_iov());
    assert_eq!(segs[0].dma_addr(), used[0].hdr_addr);
    assert_eq!(segs[0].data().map(<[u8]>::len), Some(42));
    // Payload: device memory, never readable, where the device wrote it.
    assert!(segs[1].netmem().is_net_iov());
    assert_eq!(segs[1].data(), None);
    assert_eq!(p.to_vec(), None);
    assert_eq!(segs[1].dma_addr(), used[0].pkt_addr);
    let frag = segs[1].devmem_frag().expect("a device-memory fragment");
    assert_eq!(frag.len, 1472);
    assert_eq!(frag.region_iova + frag.offset, used[0].pkt_addr);
    assert_eq!(frag.offset % CHUNK as u64, 0);
    assert_eq!(segs[0].devmem_frag(), None);
    // The consumed descriptor was given fresh buffers of both kinds.
    let again = (r.ring.hw().read_lo(0), r.ring.hw().read_hi(0));
    assert_ne!(again.0, used[0].pkt_addr);
    assert_ne!(again.1, used[0].hdr_addr);
    assert_eq!(again.1 & DD, 0, "a header address never looks done");
    drop(pkts);
    assert!(r.ring.release(None) >= 2 * usize::from(SIZE));
    assert_eq!((r.headers.in_use(), r.payload.in_use()), (0, 0));
}

#[test]
fn jumbo_payload_spans_chunks_and_only_the_first_header_buffer_is_replaced() {
    let mut r = Rig::new();
    let used = r.receive(9014 - 54, Some(54), false);
    assert_eq!(used.len(), 3);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1);
    let p = &pkts[0];
    assert_eq!(p.len(), 9014);
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(segs.len(), 4);
    assert_eq!(segs[0].len(), 54);
    for (s, u) in segs[1..].iter().zip(&used) {
        assert_eq!(s.dma_addr(), u.pkt_addr);
        assert!(s.data().is_none());
    }
    assert_eq!(
        segs[1..]
            .iter()
            .map(|s| usize::from(s.len()))
            .sum::<usize>(),
        9014 - 54
    );
    // Descriptors 1 and 2 kept their (unused) header buffers.
    assert_ne!(r.ring.hw().read_hi(0), used[0].hdr_addr);
    assert_eq!(r.ring.hw().read_hi(1), used[1].hdr_addr);
    assert_eq!(r.ring.hw().read_hi(2), used[2].hdr_addr);
    drop(pkts);
    r.ring.release(None);
    assert_eq!((r.headers.in_use(), r.payload.in_use()), (0, 0));
}

/// Issue 11 item 11 (devmem-rx lost frames it counted nowhere): with every
/// net_iov of the payload pool held by the application (tokens not yet
/// returned), a frame's payload buffer cannot be replaced: the frame is
/// dropped, its buffers are given straight back to the device, and the drop
/// is counted in `nombuf` (the port's rx_nombuf). Once the net_iovs come
/// back, frames are delivered again.
#[test]
fn a_held_device_memory_pool_counts_each_dropped_frame_as_nombuf() {
    let mut r = Rig::new();
    let mut held = Vec::new();
    let free = 64 - r.payload.in_use();
    assert_eq!(r.payload.alloc_bulk(&mut held, free), free);
    let used: Vec<Vec<Used>> = (0..3).map(|_| r.receive(1000, Some(42), false)).collect();
    assert!(r.burst().is_empty(), "no payload buffer: dropped");
    let c = r.counters.snapshot();
    assert_eq!((c.nombuf, c.packets, c.bad_desc), (3, 0, 0));
    for (i, u) in used.iter().enumerate() {
        assert_eq!(
            r.ring.hw().read_lo(i as u16),
            u[0].pkt_addr,
            "descriptor {i} given its own payload buffer back"
        );
    }
    r.payload.free_bulk(held);
    r.receive(1000, Some(42), false);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 1, "delivered once net_iovs are back");
    assert_eq!(r.counters.snapshot().nombuf, 3);
    drop(pkts);
    r.ring.release(None);
    assert_eq!((r.headers.in_use(), r.payload.in_use()), (0, 0));
}

#[test]
fn unsplit_frames_go_whole_to_device_memory() {
    let mut r = Rig::new();
    // Not split (a non-IP frame), and headers larger than the header buffer
    // (SPH with HBO): the whole frame is payload, the header segment empty.
    r.receive(300, None, false);
    r.receive(1000, Some(700), true);
    // A headers-only frame: no payload segment.
    r.receive(0, Some(54), false);
    let pkts = r.burst();
    assert_eq!(pkts.len(), 3);
    for (p, len) in pkts[..2].iter().zip([300, 1000]) {
        assert!(!p.rx_flags.contains(RxFlags::HEADER_SPLIT));
        assert_eq!(p.head().len(), 0);
        assert_eq!(p.len(), len);
        assert_eq!(p.segment_count(), 2);
        assert!(p.segments().nth(1).unwrap().devmem_frag().is_some());
    }
    assert!(pkts[2].rx_flags.contains(RxFlags::HEADER_SPLIT));
    assert_eq!((pkts[2].len(), pkts[2].segment_count()), (54, 1));
    drop(pkts);
    r.ring.release(None);
    assert_eq!((r.headers.in_use(), r.payload.in_use()), (0, 0));
}

/// A one-buffer format without a header address.
struct OneBuf;

impl RxFormat for OneBuf {
    fn buffer_desc(dma: u64) -> Desc {
        Desc { lo: dma, hi: 0 }
    }
    fn done(hi: u64) -> bool {
        hi & 1 != 0
    }
    fn eop(hi: u64) -> bool {
        hi & 2 != 0
    }
    fn len(hi: u64) -> u16 {
        (hi >> 32) as u16
    }
    fn meta(_lo: u64, _hi: u64) -> Option<crate::rx::RxMeta> {
        Some(Default::default())
    }
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let pages = Pool::with_host_memory(&PoolConfig::new("cfg-pages", 64)).unwrap();
    let iovs = Pool::with_host_net_iovs(&PoolConfig::new("cfg-iovs", 64)).unwrap();
    let tiny = Pool::with_host_memory(&PoolConfig::new("cfg-tiny", 64).with_buf_size(64)).unwrap();

    // Device memory without header split: headers would be unreadable.
    let e = queue::check_rx_pools("igb", &[RxQueueConfig::new(iovs.clone())], None).unwrap_err();
    assert!(
        matches!(&e, Error::WrongPoolKind { role: "packet", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("header_split"), "{e}");
    // Headers into device memory.
    let e = queue::check_rx_pools(
        "igb",
        &[RxQueueConfig::header_split(iovs.clone(), iovs.clone())],
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::WrongPoolKind { role: "header", .. }),
        "{e}"
    );
    // A driver without header split.
    let e = queue::check_rx_pools(
        "e1000e",
        &[RxQueueConfig::header_split(pages.clone(), iovs.clone())],
        Some("no packet-split descriptors"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::HeaderSplitUnsupported {
                driver: "e1000e",
                queue: 0,
                ..
            }
        ),
        "{e}"
    );
    // What works.
    queue::check_rx_pools(
        "igb",
        &[RxQueueConfig::header_split(pages.clone(), iovs.clone())],
        None,
    )
    .unwrap();
    queue::check_rx_pools("e1000e", &[RxQueueConfig::new(pages.clone())], Some("x")).unwrap();
    // Header buffers too small for the largest headers.
    let e =
        queue::rx_header_layout(3, &tiny, SRRCTL_BSIZEHDR_UNIT, SRRCTL_BSIZEHDR_MAX).unwrap_err();
    assert!(
        matches!(
            e,
            Error::HeaderBufferTooSmall {
                queue: 3,
                buf_size: 64,
                min: MIN_HEADER_BUF
            }
        ),
        "{e}"
    );
    // A ring format without header buffers.
    let hw = SimQueue::new(8);
    let layout = RxBufLayout::for_pool(2048, 1024, 16384).unwrap();
    let r = RxRing::<OneBuf, SimQueue>::new(
        hw,
        pages.clone(),
        layout,
        Some((pages.clone(), layout)),
        0,
        4,
        Arc::new(QueueCounters::default()),
    );
    assert!(matches!(r, Err(RxSetupError::NoHeaderSplit)));
}

#[test]
fn srrctl_asks_for_header_split_with_the_header_size() {
    let pkt = RxBufLayout {
        headroom: 0,
        buf_len: 4096,
    };
    let hdr = RxBufLayout {
        headroom: 0,
        buf_len: 256,
    };
    let v = crate::igb::srrctl_value(pkt, Some(hdr));
    assert_eq!(v & 0x7F, 4, "BSIZEPACKET in KiB");
    assert_eq!((v >> 8) & 0xF, 4, "BSIZEHEADER in 64-byte units");
    assert_eq!(v & (7 << 25), SRRCTL_DESCTYPE_HDR_SPLIT);
    assert_eq!(crate::igb::srrctl_value(pkt, None) & (7 << 25), 1 << 25);
    assert_eq!(srrctl(1), 0xC04C);
}
