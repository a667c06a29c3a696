//! A simulated NIC queue for host tests of the shared rings
//! ([`crate::rx::RxRing`], [`crate::tx::TxRing`]): descriptor memory is a
//! plain vector the test drives as the device would, with the device's head
//! pointer, and every tail write is recorded. [`QueueHw`] has no way to read
//! the tail back, so a ring never reads RDT/TDT by construction; the tests
//! check how often and with what values it writes it.

/// The [`crate::port::PortOps`] methods every test double of a port has
/// alike: its name and address, no events, and receive-mode, filter and MTU
/// settings accepted and ignored (the doubles differ in link, statistics,
/// stop confirmation and restart).
macro_rules! port_ops_basics {
    () => {
        fn driver_name(&self) -> &'static str {
            "sim"
        }
        fn mac_addr(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn events(&self) -> Vec<(String, u64)> {
            Vec::new()
        }
        fn set_promiscuous(&self, _on: bool) {}
        fn set_allmulti(&self, _on: bool) {}
        fn set_unicast_filters(&self, _addrs: &[[u8; 6]]) -> crate::Result<()> {
            Ok(())
        }
        fn set_multicast_filters(&self, _addrs: &[[u8; 6]]) {}
        fn set_mtu(&self, _mtu: u16) -> crate::Result<()> {
            Ok(())
        }
    };
}
pub(crate) use port_ops_basics;

mod devmem_tx_tests;
mod fence_tests;
mod lifecycle_tests;
mod psplit_tests;
mod rx_tests;
mod split_tests;
pub mod strict;
mod strict_tests;
mod tx_tests;

use std::sync::{Arc, Mutex, MutexGuard};

use pool::{Pool, PoolConfig};

use crate::Packet;
use crate::fence::DmaFence;
use crate::ring::{Desc, QueueHw};
use crate::rx::{RxBufLayout, RxFormat, RxRing};
use crate::stats::QueueCounters;

/// What the device side of one queue holds.
#[derive(Debug)]
pub struct SimState {
    pub descs: Vec<Desc>,
    /// Quadwords 2 and 3 of each descriptor of a queue of 32-byte
    /// descriptors ([`SimQueue::with_desc_len`]); empty otherwise.
    pub upper: Vec<Desc>,
    /// Every tail value the ring wrote, oldest first.
    pub tails: Vec<u16>,
    /// The device's head (RDH/TDH): next descriptor it uses.
    pub head: u16,
}

impl SimState {
    /// The tail last written (0 before any write, as after reset).
    pub fn tail(&self) -> u16 {
        self.tails.last().copied().unwrap_or(0)
    }
    /// Descriptors the device owns: from its head up to the tail.
    pub fn owned(&self) -> u16 {
        let size = self.descs.len() as u16;
        (self.tail() + size - self.head) % size
    }
}

/// One simulated queue; clones share the state (the ring owns one, the
/// test keeps another to play the device).
#[derive(Clone, Debug)]
pub struct SimQueue {
    state: Arc<Mutex<SimState>>,
    /// The simulated device's DMA fence; `None`: the ring frees at once, as
    /// over host memory no device writes.
    fence: Option<Arc<DmaFence>>,
    /// Bytes per descriptor the queue reports ([`QueueHw::desc_len`]).
    desc_len: usize,
}

impl SimQueue {
    pub fn new(size: u16) -> SimQueue {
        SimQueue {
            state: Arc::new(Mutex::new(SimState {
                descs: vec![Desc::default(); usize::from(size)],
                upper: Vec::new(),
                tails: Vec::new(),
                head: 0,
            })),
            fence: None,
            desc_len: crate::ring::DESC_LEN,
        }
    }

    /// This queue with 32-byte descriptors ([`crate::ring::WIDE_DESC_LEN`],
    /// the 82574L's packet split): quadwords 2 and 3 of each are kept in
    /// [`SimState::upper`].
    pub fn wide(mut self) -> SimQueue {
        self.desc_len = crate::ring::WIDE_DESC_LEN;
        let n = self.state().descs.len();
        self.state().upper = vec![Desc::default(); n];
        self
    }

    /// A queue of a device that DMAs until `fence` is marked stopped.
    pub fn with_fence(size: u16, fence: Arc<DmaFence>) -> SimQueue {
        SimQueue {
            fence: Some(fence),
            ..SimQueue::new(size)
        }
    }

    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("sim state lock")
    }

    /// Where a live NIC keeps writing whatever the driver did with its
    /// ring: the buffer address of every descriptor it was last given (read
    /// format, as posted; it knows nothing of the driver's bookkeeping).
    /// Tests check that none of these lies in a buffer the pool can hand
    /// out.
    pub fn dma_into_posted(&self) -> Vec<u64> {
        let s = self.state();
        s.descs.iter().map(|d| d.lo).filter(|&a| a != 0).collect()
    }

    /// The device receives a frame of `len` bytes into buffers of `buf_len`
    /// bytes at its head, writing advanced/extended write-backs (DD, EOP on
    /// the last, the length; `staterr` ORed into each). Returns the buffer
    /// addresses it used, or `None` (frame dropped, nothing written) when it
    /// owns too few descriptors, as a NIC does.
    pub fn receive(&self, len: usize, buf_len: usize, staterr: u64) -> Option<Vec<u64>> {
        let n = len.div_ceil(buf_len).max(1);
        let mut s = self.state();
        if usize::from(s.owned()) < n {
            return None;
        }
        let mut addrs = Vec::new();
        let mut left = len;
        for k in 0..n {
            let chunk = left.min(buf_len);
            left -= chunk;
            let eop = if k + 1 == n { 2 } else { 0 };
            addrs.push(s.descs[usize::from(s.head)].lo);
            self_write_back(&mut s, 1 | eop | staterr | ((chunk as u64) << 32));
        }
        Some(addrs)
    }

    /// The device writes back one receive descriptor at its head with
    /// `hi` as the high quadword, exactly as given (faults included).
    /// Returns the buffer address that was posted there.
    pub fn write_back_raw(&self, hi: u64) -> u64 {
        let mut s = self.state();
        assert!(s.owned() > 0, "the simulated device owns no descriptor");
        let addr = s.descs[usize::from(s.head)].lo;
        self_write_back(&mut s, hi);
        addr
    }

    /// The device writes back one receive descriptor at its head with both
    /// quadwords as given (a header-split write-back has `hdr_info` in
    /// `lo`). Returns the read-format descriptor that was posted there.
    pub fn write_back_desc(&self, d: Desc) -> Desc {
        let mut s = self.state();
        assert!(s.owned() > 0, "the simulated device owns no descriptor");
        let h = usize::from(s.head);
        let posted = s.descs[h];
        self_write_back(&mut s, d.hi);
        s.descs[h].lo = d.lo;
        posted
    }

    /// The transmit side: the device fetches every descriptor up to the
    /// tail and writes DD into those with RS set (bit 27 of the command, as
    /// both families have it). Returns how many it fetched.
    pub fn transmit_all(&self) -> u16 {
        let mut s = self.state();
        let size = s.descs.len() as u16;
        let mut n = 0;
        while s.head != s.tail() {
            let h = usize::from(s.head);
            if s.descs[h].hi & (1 << 27) != 0 {
                s.descs[h].hi |= 1 << 32;
            }
            s.head = (s.head + 1) % size;
            n += 1;
        }
        n
    }
}

/// A started header-split RX ring over a simulated queue, as the tests of
/// the 82576's header split and the 82574L's packet split drive it: 64
/// header buffers in host pages, 64 payload chunks of host net_iovs, queue
/// 0, free threshold 4. The tests add what their device writes back.
pub struct SplitRig<F: RxFormat> {
    pub dev: SimQueue,
    pub ring: RxRing<F, SimQueue>,
    pub headers: Arc<Pool>,
    pub payload: Arc<Pool>,
    pub counters: Arc<QueueCounters>,
}

impl<F: RxFormat> SplitRig<F> {
    /// Pools `NAME-headers` of `hdr`-byte buffers and `NAME-payload` of
    /// `chunk`-byte ones; `layouts` gives the payload and header buffer
    /// layouts (it may look at the header pool).
    pub fn start(
        dev: SimQueue,
        name: &str,
        hdr: usize,
        chunk: usize,
        layouts: impl FnOnce(&Arc<Pool>) -> (RxBufLayout, RxBufLayout),
    ) -> Self {
        let headers = Pool::with_host_memory(
            &PoolConfig::new(format!("{name}-headers"), 64).with_buf_size(hdr),
        )
        .expect("header pool");
        let payload = Pool::with_host_net_iovs(
            &PoolConfig::new(format!("{name}-payload"), 64).with_buf_size(chunk),
        )
        .expect("payload pool");
        let counters = Arc::new(QueueCounters::default());
        let (pl, hl) = layouts(&headers);
        let mut ring = RxRing::<F, SimQueue>::new(
            dev.clone(),
            payload.clone(),
            pl,
            Some((headers.clone(), hl)),
            0,
            4,
            counters.clone(),
        )
        .expect("header-split ring");
        ring.start();
        SplitRig {
            dev,
            ring,
            headers,
            payload,
            counters,
        }
    }

    /// What one burst (up to 32 packets) takes.
    pub fn burst(&mut self) -> Vec<Packet> {
        let mut out = Vec::new();
        self.ring.rx_burst(&mut out, 32);
        out
    }
}

fn self_write_back(s: &mut SimState, hi: u64) {
    let size = s.descs.len() as u16;
    let h = usize::from(s.head);
    s.descs[h] = Desc { lo: 0, hi };
    s.head = (s.head + 1) % size;
}

impl QueueHw for SimQueue {
    fn size(&self) -> u16 {
        self.state().descs.len() as u16
    }
    fn write(&mut self, i: u16, d: Desc) {
        self.state().descs[usize::from(i)] = d;
    }
    fn read_hi(&self, i: u16) -> u64 {
        self.state().descs[usize::from(i)].hi
    }
    fn read_lo(&self, i: u16) -> u64 {
        self.state().descs[usize::from(i)].lo
    }
    fn desc_len(&self) -> usize {
        self.desc_len
    }
    fn write_upper(&mut self, i: u16, d: Desc) {
        if let Some(u) = self.state().upper.get_mut(usize::from(i)) {
            *u = d;
        }
    }
    fn read_q2(&self, i: u16) -> u64 {
        self.state().upper.get(usize::from(i)).map_or(0, |u| u.lo)
    }
    fn write_tail(&mut self, value: u16) {
        let mut s = self.state();
        assert!(
            usize::from(value) < s.descs.len(),
            "tail {value} out of the ring"
        );
        s.tails.push(value);
    }
    fn fence(&self) -> Option<&DmaFence> {
        self.fence.as_deref()
    }
}
