//! The transmit ring, written once for every driver. A driver supplies the
//! descriptor format ([`TxFormat`]): data and context descriptor encodings
//! and the context it needs for a packet's offloads. The ring does the rest:
//! context caching, RS only every `rs_thresh` descriptors (on a packet's last
//! descriptor), cleanup from the DD bit of RS'd descriptors (no register
//! read), the tail register written once per burst, and backpressure.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use pool::{Netmem, free_slots};

use crate::offload::{self, OffloadError};
use crate::packet::{Packet, Segment, TxFlags};
use crate::ring::{Desc, DmaQueue, QueueHw, Ring, RingTooSmall};
use crate::stats::QueueCounters;

/// Why the ring refuses a packet: it is never posted (and, in
/// [`TxRing::tx_burst`], dropped and counted as an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("the packet has no bytes")]
    Empty,
    #[error("the packet needs {need} descriptors; one packet may use at most {max} on this queue")]
    TooManySegments { need: usize, max: usize },
    #[error("segment {index}'s window does not fit its buffer")]
    BadWindow { index: usize },
    #[error(transparent)]
    Offload(#[from] OffloadError),
}

/// What a data descriptor needs to know of its packet.
#[derive(Clone, Copy, Debug)]
pub struct TxPacketInfo {
    pub flags: TxFlags,
    /// Total bytes of the packet.
    pub len: u32,
    /// Header bytes (L2+L3+L4) for TSO, else 0.
    pub tso_hdr_len: u32,
    /// Context slot the packet uses, if any.
    pub ctx_slot: Option<u8>,
    /// VLAN tag to insert (with [`TxFlags::VLAN`]), for devices that take
    /// it from the data descriptor (82574L) rather than the context.
    pub vlan_tci: u16,
}

/// A transmit descriptor format.
pub trait TxFormat: Send + 'static {
    /// What a context descriptor holds; equal contexts are not re-sent.
    type Ctx: Copy + PartialEq + Send + std::fmt::Debug;
    /// Context slots per queue on the device (IDX values).
    const CTX_SLOTS: usize;
    /// The context the packet's offloads need, `None` if none. `Err` when
    /// the device cannot do what is asked.
    fn context(pkt: &Packet) -> Result<Option<Self::Ctx>, OffloadError>;
    /// The context descriptor loading `ctx` into `slot`.
    fn context_desc(ctx: &Self::Ctx, slot: u8) -> Desc;
    /// A data descriptor for one segment.
    fn data_desc(addr: u64, len: u16, pkt: &TxPacketInfo, first: bool, last: bool) -> Desc;
    /// Sets Report Status on a descriptor made by [`TxFormat::data_desc`].
    fn set_rs(d: &mut Desc);
    /// DD in a written-back high quadword.
    fn done(hi: u64) -> bool;
}

/// The CPU's part of a packet's offloads, in the function it is expanded
/// in (`?` returns the [`OffloadError`]): the software VLAN tag, the
/// checksum seeds; gives the TSO header length and the context the packet
/// needs. A macro rather than a function so that [`TxRing::tx_prepare`]
/// and the burst do exactly the same steps while the burst's code stays as
/// it was: as a shared function it cost the short path 3 instructions a
/// packet on the 82574L format (callgrind, `fwd --format e1000e --burst 32`:
/// 257.1 against 254.0), the compiler laying out the loop differently.
macro_rules! offload_steps {
    ($f:ty, $sw_vlan:expr, $pkt:expr) => {{
        let pkt: &mut Packet = $pkt;
        if $sw_vlan && pkt.tx.flags.contains(TxFlags::VLAN) {
            offload::insert_vlan(pkt)?;
        }
        // Nothing requested, nothing to check or patch (the common case
        // skips the call).
        let tso_hdr_len = if pkt.tx.flags.is_empty() {
            0
        } else {
            offload::prepare(pkt)? as u32
        };
        (tso_hdr_len, <$f>::context(pkt)?)
    }};
}

/// One transmit queue's ring.
pub struct TxRing<F: TxFormat, H: QueueHw = DmaQueue> {
    hw: H,
    ring: Ring,
    /// Next descriptor to fill.
    next: u16,
    /// Oldest descriptor not yet cleaned.
    clean: u16,
    /// Free descriptors (at most size - 1: the tail never catches the head).
    free: u16,
    /// Positions of descriptors sent with RS, oldest first.
    rs_marks: VecDeque<u16>,
    /// Descriptors written since the last RS.
    since_rs: u16,
    rs_thresh: u16,
    free_thresh: u16,
    /// The buffer of each descriptor's segment, released at cleanup
    /// (`None` for a context descriptor's slot and free slots).
    bufs: Vec<Option<Netmem>>,
    ctx: Vec<Option<F::Ctx>>,
    ctx_next: usize,
    /// First data descriptor of the packet being queued.
    data_start: u16,
    /// Insert VLAN tags in software (the device cannot at the moment).
    sw_vlan: bool,
    counters: Arc<QueueCounters>,
    _format: PhantomData<F>,
}

impl<F: TxFormat, H: QueueHw> TxRing<F, H> {
    /// A ring over `hw` with RS set every `rs_thresh` descriptors (clamped
    /// to 1..=size/2) and cleanup when fewer than `free_thresh` descriptors
    /// are free.
    pub fn new(
        hw: H,
        rs_thresh: u16,
        free_thresh: u16,
        counters: Arc<QueueCounters>,
    ) -> Result<Self, RingTooSmall> {
        let size = hw.size();
        let ring = Ring::new(size)?;
        let mut bufs = Vec::with_capacity(usize::from(size));
        bufs.resize_with(usize::from(size), || None);
        Ok(TxRing {
            hw,
            ring,
            next: 0,
            clean: 0,
            free: size - 1,
            rs_marks: VecDeque::with_capacity(usize::from(size)),
            since_rs: 0,
            rs_thresh: rs_thresh.clamp(1, size / 2),
            free_thresh: free_thresh.clamp(1, size - 1),
            bufs,
            ctx: vec![None; F::CTX_SLOTS],
            ctx_next: 0,
            data_start: 0,
            sw_vlan: false,
            counters,
            _format: PhantomData,
        })
    }

    /// Most descriptors one packet may use: up to `rs_thresh - 1`
    /// descriptors can wait for a later RS and stay uncleaned, so a larger
    /// packet might never fit.
    pub fn max_packet_descs(&self) -> usize {
        usize::from(self.ring.size() - self.rs_thresh)
    }

    /// Inserts requested VLAN tags in software instead of asking the
    /// device (the 82574L inserts tags only while CTRL.VME, which also
    /// strips received tags, is on).
    pub fn set_software_vlan(&mut self, on: bool) {
        self.sw_vlan = on;
    }

    /// The queue's hardware handle.
    pub fn hw(&self) -> &H {
        &self.hw
    }

    /// Frees the descriptors of every RS'd batch the device has completed.
    /// Reads only descriptor memory. Returns descriptors freed. The
    /// buffers of a batch go back to their pools in bulk, straight from
    /// the batch's slots (one or two runs of the shadow, two when the batch
    /// wraps): [`pool::free_slots`], one checked copy of words into the
    /// lcore cache when the run is all unshared buffers of one pool.
    pub fn cleanup(&mut self) -> u16 {
        let mut freed = 0;
        while let Some(&pos) = self.rs_marks.front() {
            if !F::done(self.hw.read_hi(pos)) {
                break;
            }
            self.rs_marks.pop_front();
            let end = self.ring.next(pos);
            // A batch is at most size - 1 descriptors (`free` never
            // exceeds it), so `clean == end` only for none.
            freed += self.ring.distance(self.clean, end);
            let (from, to) = (usize::from(self.clean), usize::from(end));
            if from < to {
                free_slots(&mut self.bufs[from..to]);
            } else {
                let (head, tail) = self.bufs.split_at_mut(from);
                free_slots(tail);
                free_slots(&mut head[..to]);
            }
            self.clean = end;
        }
        self.free += freed;
        freed
    }

    /// Queues packets from the front of `pkts`, removing those taken; the
    /// rest stay in `pkts` (ring full). Returns how many were taken.
    /// Packets the device cannot send (an offload request it cannot honour,
    /// no bytes, more segments than [`Self::max_packet_descs`], a segment
    /// window beyond its buffer) are taken, dropped and counted as errors.
    ///
    /// One pass: each packet is checked against the room left (a cleanup
    /// when it does not fit, the burst ends when it still does not) and
    /// queued at once. A one-segment packet asking for no offload (the
    /// forwarding case) takes a short path: one data descriptor, no
    /// context, no offload code.
    pub fn tx_burst(&mut self, pkts: &mut Vec<Packet>) -> usize {
        if self.free < self.free_thresh {
            self.cleanup();
        }
        let max_need = self.max_packet_descs();
        let n = pkts.len();
        let base = pkts.as_mut_ptr();
        // SAFETY: the vector forgets its packets while they are moved out
        // one by one below (a panic then leaks them instead of dropping
        // one twice); `rest` puts the ones not taken back at the front.
        unsafe { pkts.set_len(0) };
        let (mut taken, mut sent, mut bytes, mut errors) = (0usize, 0u64, 0u64, 0u64);
        while taken < n {
            // SAFETY: `taken < n`, the initialised length before set_len.
            let at = unsafe { base.add(taken) };
            // SAFETY: `at` points to an initialised packet not yet taken.
            let p = unsafe { &*at };
            if self.free > 0 && p_is_plain(p) {
                // SAFETY: packet `taken` is initialised and taken once: the
                // index moves past it and `rest` copies only those after it.
                let seg = unsafe { Packet::take_head(at) };
                taken += 1;
                match self.enqueue_plain(seg) {
                    Some(len) => {
                        sent += 1;
                        bytes += u64::from(len);
                    }
                    None => errors += 1,
                }
                continue;
            }
            let need = Self::descs_needed(p);
            if need <= max_need && need > usize::from(self.free) {
                self.cleanup();
                if need > usize::from(self.free) {
                    break;
                }
            }
            // SAFETY: packet `taken` is initialised and read out once: the
            // index moves past it right away and `rest` copies only those
            // after it.
            let mut pkt = unsafe { at.read() };
            taken += 1;
            // A segment window beyond its buffer would have the device read
            // a neighbour's bytes onto the wire: never posted. (The checks
            // of `shape_error`, which names them for `tx_prepare`; written
            // out here, as calling it cost the short path instructions.)
            if need > max_need || pkt.is_empty() || !pkt.segments().all(Segment::window_fits) {
                errors += 1;
                continue;
            }
            match self.enqueue(&mut pkt) {
                Ok(()) => {
                    sent += 1;
                    bytes += pkt.len() as u64;
                    self.store_buffers(pkt);
                }
                Err(_) => errors += 1,
            }
        }
        let rest = n - taken;
        if rest > 0 {
            // SAFETY: packets `taken..n` are initialised and were not read
            // out; they move to the front (the regions may overlap: `copy`)
            // and the vector owns them again.
            unsafe {
                std::ptr::copy(base.add(taken), base, rest);
                pkts.set_len(rest);
            }
        }
        if sent > 0 {
            self.hw.write_tail(self.next);
        }
        let c = &self.counters;
        QueueCounters::add(&c.packets, sent);
        QueueCounters::add(&c.bytes, bytes);
        QueueCounters::add(&c.errors, errors);
        taken
    }

    /// Queues a one-segment packet with no offload request (its only
    /// segment `seg`) into a free descriptor: one data descriptor (RS every
    /// `rs_thresh`), its buffer kept in the descriptor's slot. Returns its
    /// length, or `None` when it has no bytes or its window does not fit
    /// its buffer (dropped, never posted).
    #[inline(always)]
    fn enqueue_plain(&mut self, seg: Segment) -> Option<u16> {
        let len = seg.len();
        if len == 0 || !seg.window_fits() {
            return None;
        }
        let info = TxPacketInfo {
            flags: TxFlags::default(),
            len: u32::from(len),
            tso_hdr_len: 0,
            ctx_slot: None,
            vlan_tci: 0,
        };
        let mut d = F::data_desc(seg.dma_addr(), len, &info, true, true);
        let i = self.next;
        self.since_rs += 1;
        if self.since_rs >= self.rs_thresh {
            F::set_rs(&mut d);
            self.rs_marks.push_back(i);
            self.since_rs = 0;
        }
        self.hw.write(i, d);
        let slot = usize::from(i);
        debug_assert!(slot < self.bufs.len());
        // SAFETY: `next` comes from `Ring` arithmetic, below the ring size,
        // and `bufs` has one slot per descriptor. The slot is free: the
        // descriptor was counted in `free`, so cleanup emptied it.
        unsafe { *self.bufs.get_unchecked_mut(slot) = Some(seg.into_netmem()) };
        self.next = self.ring.next(i);
        self.free -= 1;
        Some(len)
    }

    /// Descriptors `p` may use: one per segment, one for a context.
    fn descs_needed(p: &Packet) -> usize {
        p.segment_count() + usize::from(!p.tx.flags.is_empty())
    }

    /// Checks `pkt` as [`Self::tx_burst`] would and carries out the CPU's
    /// part of its offloads (software VLAN tag, checksum seeds), without
    /// posting it: the typed reason a burst would drop it (DPDK's
    /// `rte_eth_tx_prepare`). Sending it afterwards redoes nothing
    /// visible: the tag request is cleared once inserted and the seeds
    /// come out the same. Touches no byte past the first segment, so a
    /// packet with device-memory (net_iov) payload is refused rather than
    /// read ([`crate::offload`]).
    pub fn tx_prepare(&self, pkt: &mut Packet) -> Result<(), TxError> {
        if let Some(e) = shape_error(pkt, Self::descs_needed(pkt), self.max_packet_descs()) {
            return Err(e);
        }
        let _ = offload_steps!(F, self.sw_vlan, pkt);
        Ok(())
    }

    /// Writes the descriptors of one packet (its buffers are stored by
    /// [`Self::store_buffers`] in the same order).
    fn enqueue(&mut self, pkt: &mut Packet) -> Result<(), OffloadError> {
        let (tso_hdr_len, ctx) = offload_steps!(F, self.sw_vlan, pkt);
        let mut info = TxPacketInfo {
            flags: pkt.tx.flags,
            len: pkt.len() as u32,
            tso_hdr_len,
            ctx_slot: None,
            vlan_tci: pkt.tx.vlan_tci,
        };
        if let Some(c) = ctx {
            let slot = match self.ctx.iter().position(|s| *s == Some(c)) {
                Some(s) => s,
                None => {
                    let s = self.ctx_next;
                    self.ctx_next = (s + 1) % F::CTX_SLOTS;
                    self.ctx[s] = Some(c);
                    self.hw.write(self.next, F::context_desc(&c, s as u8));
                    self.advance();
                    s
                }
            };
            info.ctx_slot = Some(slot as u8);
        }
        self.data_start = self.next;
        let n = pkt.segment_count();
        for (k, seg) in pkt.segments().enumerate() {
            let last = k + 1 == n;
            let mut d = F::data_desc(seg.dma_addr(), seg.len(), &info, k == 0, last);
            let rs = last && self.since_rs + 1 >= self.rs_thresh;
            if rs {
                F::set_rs(&mut d);
                self.rs_marks.push_back(self.next);
            }
            self.hw.write(self.next, d);
            self.advance();
            if rs {
                self.since_rs = 0;
            }
        }
        Ok(())
    }

    fn advance(&mut self) {
        self.next = self.ring.next(self.next);
        self.free -= 1;
        self.since_rs += 1;
    }

    fn store_buffers(&mut self, pkt: Packet) {
        let i = self.data_start;
        let (head, more) = pkt.into_parts();
        self.bufs[usize::from(i)] = Some(head.into_netmem());
        // One-segment packets (the common case) have no vector to walk.
        if !more.is_empty() {
            let mut i = self.ring.next(i);
            for seg in more {
                self.bufs[usize::from(i)] = Some(seg.into_netmem());
                i = self.ring.next(i);
            }
        }
    }

    /// Gives back every buffer still on the ring: to its pool with `proof`
    /// that the queue is off or once the device's fence is marked stopped,
    /// held by the fence until then ([`crate::fence`]).
    pub fn release(&mut self, proof: Option<crate::fence::QueueStopped>) -> usize {
        let mut n = 0;
        let fence = self.hw.fence();
        for b in self.bufs.iter_mut() {
            if let Some(b) = b.take() {
                crate::fence::release(fence, b, proof);
                n += 1;
            }
        }
        self.rs_marks.clear();
        self.clean = self.next;
        self.free = self.ring.size() - 1;
        n
    }
}

/// Why a packet of `need` descriptors cannot be posted on a ring taking
/// at most `max` per packet, if it cannot (its offloads aside).
fn shape_error(p: &Packet, need: usize, max: usize) -> Option<TxError> {
    if need > max {
        return Some(TxError::TooManySegments { need, max });
    }
    if p.is_empty() {
        return Some(TxError::Empty);
    }
    p.segments()
        .position(|s| !s.window_fits())
        .map(|index| TxError::BadWindow { index })
}

/// True for a one-segment packet asking for no offload.
#[inline(always)]
fn p_is_plain(p: &Packet) -> bool {
    p.tx.flags.is_empty() && p.segment_count() == 1
}

impl<F: TxFormat, H: QueueHw> Drop for TxRing<F, H> {
    fn drop(&mut self) {
        // The device may still read posted buffers: they wait for its fence.
        self.release(None);
    }
}
