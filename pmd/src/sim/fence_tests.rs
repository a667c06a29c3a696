//! The DMA lifetime rule ([`crate::fence`]) against the simulated device:
//! the device keeps writing into every buffer it was given after a failed
//! queue disable or a failed open, and no buffer it writes is one the pool
//! could hand out.

use std::sync::Arc;

use pool::{Netmem, Pool, PoolConfig};

use super::SimQueue;
use crate::fence::{self, DmaFence, QueueStopped};
use crate::igb::desc::{AdvRx, AdvTx};
use crate::packet::{Packet, Segment};
use crate::port::{LinkStatus, PortOps, RxQueue, TxQueue};
use crate::rx::{RxBufLayout, RxRing};
use crate::stats::{HwStats, QueueCounters};
use crate::tx::TxRing;

const SIZE: u16 = 64;
const BUFS: usize = 256;
const BUF_SIZE: usize = 2048;
const LAYOUT: RxBufLayout = RxBufLayout {
    headroom: 128,
    buf_len: 1024,
};

/// Port operations whose queue disables confirm or not, as asked.
struct Ops {
    confirms: bool,
}

impl PortOps for Ops {
    crate::sim::port_ops_basics!();
    fn link(&self) -> LinkStatus {
        LinkStatus {
            up: false,
            speed: 0,
            full_duplex: false,
            flow_control: crate::port::FlowControl::None,
        }
    }
    fn read_hw_stats(&self, _hw: &mut HwStats) {}
    fn disable_rx_queue(&self, _queue: u16) -> Option<QueueStopped> {
        self.confirms.then(QueueStopped::confirmed)
    }
    fn disable_tx_queue(&self, _queue: u16) -> Option<QueueStopped> {
        self.confirms.then(QueueStopped::confirmed)
    }
    fn stop(&self) -> Option<QueueStopped> {
        self.confirms.then(QueueStopped::confirmed)
    }
    fn close(&self) {}
    fn check_config(
        &self,
        _cfg: &crate::port::PortConfig,
        _rxq: &[crate::port::RxQueueConfig],
    ) -> crate::Result<()> {
        Ok(())
    }
    fn start(
        &self,
        _cfg: &crate::port::PortConfig,
        _rxq: &[crate::port::RxQueueConfig],
    ) -> crate::Result<crate::port::Queues> {
        Err(crate::Error::RestartUnsupported {
            driver: "sim",
            why: "this test device has no rings to rebuild",
        })
    }
}

fn host_pool(name: &str) -> Arc<Pool> {
    Pool::with_host_memory(&PoolConfig::new(name, BUFS).with_buf_size(BUF_SIZE)).expect("host pool")
}

/// A started RX ring over a simulated device behind `fence`, which has
/// received and delivered a few frames (so the ring has refilled).
fn live_ring(pool: &Arc<Pool>, fence: &Arc<DmaFence>) -> (SimQueue, RxRing<AdvRx, SimQueue>) {
    let dev = SimQueue::with_fence(SIZE, fence.clone());
    let mut ring = RxRing::<AdvRx, _>::new(
        dev.clone(),
        pool.clone(),
        LAYOUT,
        None,
        0,
        8,
        Arc::new(QueueCounters::default()),
    )
    .expect("ring");
    ring.start();
    for _ in 0..10 {
        dev.receive(60, 1024, 0).expect("room");
    }
    let mut out = Vec::new();
    assert_eq!(ring.rx_burst(&mut out, 32), 10);
    drop(out);
    (dev, ring)
}

/// Every buffer the pool can hand out now; asserts none of them holds an
/// address the device writes to, then gives them back.
fn assert_device_writes_no_free_buffer(pool: &Pool, device_writes: &[u64]) {
    let free = BUFS - pool.in_use();
    let mut got: Vec<Netmem> = Vec::new();
    assert_eq!(
        pool.alloc_bulk(&mut got, free),
        free,
        "the pool's free buffers"
    );
    for b in &got {
        let (lo, hi) = (b.dma_addr(), b.dma_addr() + b.capacity() as u64);
        for &a in device_writes {
            assert!(
                !(lo..hi).contains(&a),
                "the device writes {a:#x}, inside buffer {lo:#x}..{hi:#x} the pool handed out"
            );
        }
    }
}

#[test]
fn rx_queue_whose_disable_is_not_confirmed_holds_its_buffers_until_the_device_stops() {
    let pool = host_pool("fence-rx");
    let fence = DmaFence::new("sim");
    let (dev, ring) = live_ring(&pool, &fence);
    let q = RxQueue::over(Box::new(ring), Arc::new(Ops { confirms: false }), 0);
    drop(q);
    // The disable was not confirmed: the device still owns its ring and
    // writes a frame into every buffer it was given.
    let writes = dev.dma_into_posted();
    assert_eq!(writes.len(), usize::from(SIZE));
    assert_eq!(fence.held(), usize::from(SIZE), "posted buffers held");
    assert_eq!(
        pool.in_use(),
        usize::from(SIZE),
        "only posted buffers are out"
    );
    assert_device_writes_no_free_buffer(&pool, &writes);
    // The device is reset (close): the held buffers go back.
    fence.mark_stopped();
    assert_eq!(fence.held(), 0);
    assert_eq!(
        pool.in_use(),
        0,
        "every buffer back once the device stopped"
    );
}

#[test]
fn rx_queue_whose_disable_is_confirmed_frees_at_once() {
    let pool = host_pool("fence-rx-ok");
    let fence = DmaFence::new("sim");
    let (_dev, ring) = live_ring(&pool, &fence);
    drop(RxQueue::over(
        Box::new(ring),
        Arc::new(Ops { confirms: true }),
        0,
    ));
    assert_eq!(fence.held(), 0);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn rings_dropped_by_a_failed_open_are_held_and_leaked_if_the_device_never_stops() {
    let pool = host_pool("fence-open");
    let before = fence::leaked_buffers();
    let fence = DmaFence::new("sim");
    let (dev, ring) = live_ring(&pool, &fence);
    // An open failing after RX was enabled drops its rings with the
    // device live (the port's Drop then tries reset / bus mastering off;
    // here both "fail": the fence is never marked stopped).
    drop(ring);
    let writes = dev.dma_into_posted();
    assert_device_writes_no_free_buffer(&pool, &writes);
    // The last holders of the fence go (the simulated device's handle is
    // one).
    drop(dev);
    drop(fence);
    assert_eq!(
        pool.in_use(),
        usize::from(SIZE),
        "never proven stopped: leaked, not freed"
    );
    assert!(fence::leaked_buffers() >= before + u64::from(SIZE));
    assert_device_writes_no_free_buffer(&pool, &writes);
}

#[test]
fn port_stop_without_confirmation_holds_buffers_until_the_fence_stops() {
    let pool = host_pool("fence-stop");
    let fence = DmaFence::new("sim");
    let (dev, mut ring) = live_ring(&pool, &fence);
    let ops = Ops { confirms: false };
    // As Port::stop: release with whatever proof stop gave.
    crate::port::RxBurst::release(&mut ring, ops.stop());
    assert_device_writes_no_free_buffer(&pool, &dev.dma_into_posted());
    assert_eq!(pool.in_use(), usize::from(SIZE));
    fence.mark_stopped();
    assert_eq!(pool.in_use(), 0);
    // Later releases (the ring's drop) free at once.
    drop(ring);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn tx_buffers_the_device_may_still_read_are_held_until_it_stops() {
    let pool = host_pool("fence-tx");
    let fence = DmaFence::new("sim");
    let dev = SimQueue::with_fence(SIZE, fence.clone());
    let mut ring = TxRing::<AdvTx, _>::new(dev.clone(), 8, 8, Arc::new(QueueCounters::default()))
        .expect("ring");
    let mut pkts: Vec<Packet> = (0..5)
        .map(|_| {
            Packet::from_segment(
                Segment::new(pool.alloc().expect("buffer"), 0, 100).expect("window"),
            )
        })
        .collect();
    assert_eq!(ring.tx_burst(&mut pkts), 5);
    let q = TxQueue::over(Box::new(ring), Arc::new(Ops { confirms: false }), 0);
    drop(q);
    assert_eq!(fence.held(), 5, "posted TX buffers held");
    assert_eq!(pool.in_use(), 5);
    fence.mark_stopped();
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_ring_refused_for_too_few_header_buffers_gives_its_packet_buffers_back() {
    let pool = host_pool("fence-hs");
    let headers = Pool::with_host_memory(&PoolConfig::new("fence-hs-h", 8).with_buf_size(256))
        .expect("header pool");
    let hl = RxBufLayout {
        headroom: 0,
        buf_len: 256,
    };
    let r = RxRing::<AdvRx, _>::new(
        SimQueue::new(SIZE),
        pool.clone(),
        LAYOUT,
        Some((headers.clone(), hl)),
        0,
        8,
        Arc::new(QueueCounters::default()),
    );
    assert!(matches!(
        r,
        Err(crate::rx::RxSetupError::PoolTooSmall { needed: 64 })
    ));
    assert_eq!(
        pool.in_use(),
        0,
        "the packet buffers, never posted, are back"
    );
    assert_eq!(headers.in_use(), 0);
}
