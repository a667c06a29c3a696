//! The receive ring, written once for every driver. A driver supplies the
//! descriptor format ([`RxFormat`]); the ring does the rest: buffers from the
//! pool (the calling lcore's cache), DD polling, chaining multi-descriptor
//! frames, dropping and counting what cannot be delivered, and writing the
//! tail register at most once per burst and never reading it back.
//!
//! With header split (a format with [`RxFormat::HEADER_SPLIT`] and a header
//! pool) each descriptor carries two buffers: a header buffer (a page) and
//! a packet buffer (a page or a device-memory net_iov). The device uses
//! only the first descriptor's header buffer of a frame; the ring replaces
//! that one and leaves the others posted. A packet then starts with the
//! header segment (empty when the device did not split the frame) followed
//! by the payload segments.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use pool::{Netmem, Pool};

use crate::fence::{self, DmaFence, QueueStopped};
use crate::packet::{Packet, RxFlags, Segment};
use crate::ring::{DESC_LEN, Desc, DmaQueue, QueueHw, Ring, RingTooSmall, WIDE_DESC_LEN};
use crate::stats::QueueCounters;

/// A receive descriptor format (16 bytes: `lo`, `hi` quadwords).
pub trait RxFormat: Send + 'static {
    /// The read-format descriptor giving the device a buffer at `dma`.
    fn buffer_desc(dma: u64) -> Desc;
    /// True when the format has a header buffer address (header split).
    const HEADER_SPLIT: bool = false;
    /// The read-format descriptor with a packet buffer at `pkt` and a header
    /// buffer at `hdr`; used only when [`RxFormat::HEADER_SPLIT`].
    fn split_desc(pkt: u64, _hdr: u64) -> Desc {
        Self::buffer_desc(pkt)
    }
    /// With header split: what the write-back of one descriptor (quadwords
    /// `lo`, `hi` and, for 32-byte formats, `q2`) says of its two buffers;
    /// `first`: the frame's first descriptor. `None` for a write-back the
    /// device cannot have written (the ring drops the frame, counted in
    /// [`QueueCounters::bad_desc`]).
    fn split_lens(_lo: u64, hi: u64, _q2: u64, _first: bool) -> Option<SplitLens> {
        Some(SplitLens {
            header: 0,
            split: false,
            payload: Self::len(hi),
        })
    }
    /// Bytes per descriptor: [`DESC_LEN`], or [`WIDE_DESC_LEN`] for a
    /// format whose descriptors have two more quadwords (written by
    /// [`RxFormat::split_desc_upper`]).
    const DESC_LEN: usize = DESC_LEN;
    /// True when the format exists only with header split (a ring without
    /// a header pool is refused).
    const SPLIT_ONLY: bool = false;
    /// Quadwords 2 and 3 of a read-format descriptor of a
    /// [`WIDE_DESC_LEN`] format, written with every
    /// [`RxFormat::split_desc`].
    fn split_desc_upper() -> Desc {
        Desc::default()
    }
    /// Descriptor done (DD) in a written-back high quadword.
    fn done(hi: u64) -> bool;
    /// End of packet (EOP).
    fn eop(hi: u64) -> bool;
    /// Bytes the device wrote into this descriptor's buffer.
    fn len(hi: u64) -> u16;
    /// The RSS hash, VLAN tag and checksum flags the last descriptor of a
    /// frame reports. `None` when the device flagged the frame as errored
    /// (RXE): the ring then drops and counts it.
    fn meta(lo: u64, hi: u64) -> Option<RxMeta>;
    /// Fills `pkt`'s RSS hash, VLAN and checksum flags from [`RxFormat::meta`]
    /// (the hash and tag only when reported); false for an errored frame.
    #[inline]
    fn fill(lo: u64, hi: u64, pkt: &mut Packet) -> bool {
        let Some(m) = Self::meta(lo, hi) else {
            return false;
        };
        if m.flags.contains(RxFlags::RSS_HASH) {
            pkt.rss_hash = m.rss_hash;
        }
        if m.flags.contains(RxFlags::VLAN_STRIPPED) {
            pkt.vlan_tci = m.vlan_tci;
        }
        pkt.rx_flags = m.flags;
        true
    }
}

/// What a header-split write-back reports of one descriptor's buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitLens {
    /// Bytes the device wrote into the header buffer. The ring takes the
    /// header buffer of a frame's first descriptor only: a later descriptor
    /// reporting header bytes drops the frame.
    pub header: u16,
    /// The device split the frame: the header buffer holds exactly its
    /// headers ([`RxFlags::HEADER_SPLIT`]). Without it the header buffer
    /// holds `header` bytes of the frame's start (0 where the device puts
    /// an unsplit frame whole into the packet buffers).
    pub split: bool,
    /// Bytes the device wrote into the packet buffer.
    pub payload: u16,
}

/// What a receive write-back reports of a frame besides its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The RSS hash (0 without [`RxFlags::RSS_HASH`]).
    pub rss_hash: u32,
    /// The stripped tag (0 without [`RxFlags::VLAN_STRIPPED`]).
    pub vlan_tci: u16,
    pub flags: RxFlags,
}

/// The buffers the device may be writing, kept as raw handle words (no
/// `Netmem` exists for a buffer while the device owns it, as the pool's DMA
/// contract asks). 0 marks an empty slot. They leave only through
/// [`Shadow::take`] (the device wrote the descriptor back: its buffer is
/// done) or [`Shadow::release_all`] / drop, which go through the device's
/// fence ([`crate::fence`]): freed only once the device is proven stopped.
struct Shadow(Vec<usize>);

impl Shadow {
    fn new(size: usize) -> Shadow {
        Shadow(vec![0; size])
    }
    /// Puts `b` in slot `i`, returning what was there.
    fn replace(&mut self, i: usize, b: Netmem) -> Option<Netmem> {
        let old = std::mem::replace(&mut self.0[i], b.into_raw());
        Self::own(old)
    }
    /// Puts `b` in slot `i` of a ring of `self.0.len()` slots, returning
    /// what was there: the hot-path form of [`Shadow::replace`] for an
    /// index the ring arithmetic keeps below the ring size.
    #[inline(always)]
    fn swap(&mut self, i: u16, b: Netmem) -> Option<Netmem> {
        let i = usize::from(i);
        debug_assert!(i < self.0.len());
        // SAFETY: ring indexes come from `Ring` (`next`, `add`), whose
        // results are below the ring size, and the shadow has one slot per
        // descriptor (`Shadow::new(size)`), so `i` is in bounds.
        let w = unsafe { self.0.get_unchecked_mut(i) };
        Self::own(std::mem::replace(w, b.into_raw()))
    }
    /// Empties slot `i`.
    fn take(&mut self, i: usize) -> Option<Netmem> {
        let old = std::mem::take(&mut self.0[i]);
        Self::own(old)
    }
    /// The DMA address of slot `i`'s buffer.
    fn dma_addr(&mut self, i: usize) -> Option<u64> {
        let b = self.take(i)?;
        let a = b.dma_addr();
        self.0[i] = b.into_raw();
        Some(a)
    }
    fn own(raw: usize) -> Option<Netmem> {
        // SAFETY: every non-zero word in the shadow came from
        // `Netmem::into_raw` and leaves the shadow exactly once (the slot is
        // overwritten or zeroed as it is taken here).
        (raw != 0).then(|| unsafe { Netmem::from_raw(raw) })
    }
    /// Empties every slot through `fence` (see [`crate::fence`]); returns
    /// how many buffers there were.
    fn release_all(&mut self, fence: Option<&DmaFence>, proof: Option<QueueStopped>) -> usize {
        let mut n = 0;
        for w in self.0.iter_mut() {
            let raw = std::mem::take(w);
            if raw != 0 {
                n += 1;
                fence::release_raw(fence, raw, proof);
            }
        }
        n
    }
}

impl Drop for Shadow {
    fn drop(&mut self) {
        // Only reached with words left when a ring is dropped without
        // `release_with_fence` having run (it always runs first in
        // `RxRing::drop`); nothing here may free a posted buffer, so what
        // is left is forgotten (leaked) rather than freed.
        let left = self.0.iter().filter(|&&w| w != 0).count();
        if left > 0 {
            log::error!("RX ring dropped with {left} posted buffers and no fence: leaked");
        }
    }
}

/// Why the frame being assembled is thrown away; its remaining
/// descriptors are recycled up to its EOP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discard {
    /// No replacement buffer: counted in `nombuf` at EOP.
    NoBuf,
    /// The device's write-back was impossible: counted in `bad_desc` at EOP.
    Bad,
    /// Already counted in `bad_desc` (the frame overran the ring, so its
    /// EOP may never come): nothing more is counted at EOP.
    Counted,
}

/// The refill threshold a ring of `size` descriptors uses when asked for
/// `asked`: at most a quarter of the ring, so the device always owns at
/// least three quarters of it between tail writes.
pub fn rx_free_thresh(asked: u16, size: u16) -> u16 {
    asked.min(size / 4)
}

/// What one burst counts, added to the queue's counters once at its end.
#[derive(Default)]
struct Tally {
    delivered: usize,
    bytes: u64,
    errors: u64,
    nombuf: u64,
    bad: u64,
}

/// The words of the warning [`RxRing`] logs when it drops a write-back the
/// device cannot have written (the guest rig looks for them: QEMU's igb and
/// e1000e rarely leave one, docs/silicon.md).
pub const IMPOSSIBLE_WRITE_BACK: &str = "impossible write-back";

/// Buffers the ring refills from the pool at a time.
const REFILL_BULK: usize = 32;

/// A buffer from `spare`, refilled from `pool` in bulk when empty.
#[inline]
fn take_fresh(spare: &mut Vec<Netmem>, pool: &Pool) -> Option<Netmem> {
    if let Some(b) = spare.pop() {
        return Some(b);
    }
    if pool.alloc_bulk(spare, REFILL_BULK) > 0 {
        spare.pop()
    } else {
        None
    }
}

/// The longest frame piece one descriptor may deliver without a window
/// check: within the device buffer and, at `layout.headroom`, within a
/// pool buffer of `buf_size` bytes (every buffer of a pool has its size).
fn max_len(layout: RxBufLayout, buf_size: usize) -> u16 {
    let room = buf_size.saturating_sub(usize::from(layout.headroom));
    layout.buf_len.min(u16::try_from(room).unwrap_or(u16::MAX))
}

/// All `size` buffers of a fresh ring's slots, from `pool`.
fn fill_slots(pool: &Pool, size: u16) -> Result<Shadow, RxSetupError> {
    let n = usize::from(size);
    let mut got = Vec::with_capacity(n);
    if pool.alloc_bulk(&mut got, n) != n {
        return Err(RxSetupError::PoolTooSmall { needed: n });
    }
    let mut bufs = Shadow::new(n);
    for (i, b) in got.into_iter().enumerate() {
        bufs.replace(i, b);
    }
    Ok(bufs)
}

/// The header side of a header-split ring: one header buffer per
/// descriptor.
struct HeaderBufs {
    bufs: Shadow,
    spare: Vec<Netmem>,
    pool: Arc<Pool>,
    layout: RxBufLayout,
}

/// How a driver sizes a queue's buffers: the device writes at most
/// `buf_len` bytes per descriptor at `headroom` into each pool buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxBufLayout {
    pub headroom: u16,
    pub buf_len: u16,
}

impl RxBufLayout {
    /// Splits a pool buffer of `pool_buf` bytes into headroom and a device
    /// buffer that is a multiple of `unit` bytes (the device's buffer-size
    /// granularity: 1 KiB for SRRCTL.BSIZEPACKET). The device buffer is as
    /// large as possible; headroom takes what is left, up to
    /// [`crate::packet::HEADROOM`]. `None` when not even one unit fits.
    pub fn for_pool(pool_buf: usize, unit: usize, max: usize) -> Option<RxBufLayout> {
        let buf = (pool_buf.min(max) / unit) * unit;
        if buf == 0 {
            return None;
        }
        let headroom = (pool_buf - buf).min(usize::from(crate::packet::HEADROOM));
        Some(RxBufLayout {
            headroom: headroom as u16,
            buf_len: u16::try_from(buf).ok()?,
        })
    }
}

/// One receive queue's ring.
pub struct RxRing<F: RxFormat, H: QueueHw = DmaQueue> {
    hw: H,
    ring: Ring,
    /// Next descriptor to look at.
    next: u16,
    /// The tail value last written; descriptors from `next` up to it (not
    /// included) belong to the device.
    tail: u16,
    /// Descriptors refilled since the tail was last written.
    held: u16,
    /// The tail is written once more than this many are held.
    free_thresh: u16,
    bufs: Shadow,
    spare: Vec<Netmem>,
    pool: Arc<Pool>,
    layout: RxBufLayout,
    /// The longest write-back whose window (`layout.headroom`, length)
    /// fits the pool's buffers and the device buffer: `layout.buf_len`,
    /// or less when the layout is larger than the pool's buffers.
    max_len: u16,
    /// Header buffers, with header split.
    hdr: Option<HeaderBufs>,
    /// Frame being assembled across descriptors (and bursts).
    partial: Option<Packet>,
    /// Descriptors the frame being assembled has used so far.
    frame_descs: u16,
    /// Set when the frame being assembled is dropped.
    discard: Option<Discard>,
    queue: u16,
    counters: Arc<QueueCounters>,
    _format: PhantomData<F>,
}

/// Why a receive ring could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RxSetupError {
    #[error("pool has too few free buffers to fill {needed} RX descriptors")]
    PoolTooSmall { needed: usize },
    #[error(transparent)]
    RingTooSmall(#[from] RingTooSmall),
    #[error("header split asked of a descriptor format without a header buffer")]
    NoHeaderSplit,
    #[error("the descriptor format works only with header split, and no header pool was given")]
    NeedsHeaderSplit,
    #[error(
        "the descriptor format has {format}-byte descriptors, the queue's memory {queue}-byte ones"
    )]
    DescLen { format: usize, queue: usize },
}

impl<F: RxFormat, H: QueueHw> RxRing<F, H> {
    /// A ring over `hw`, every descriptor given a buffer from `pool` and,
    /// with `header` (header split), a header buffer from that pool. The
    /// tail is not written: call [`RxRing::start`] once the device side of
    /// the queue is configured.
    pub fn new(
        hw: H,
        pool: Arc<Pool>,
        layout: RxBufLayout,
        header: Option<(Arc<Pool>, RxBufLayout)>,
        queue: u16,
        free_thresh: u16,
        counters: Arc<QueueCounters>,
    ) -> Result<Self, RxSetupError> {
        if header.is_some() && !F::HEADER_SPLIT {
            return Err(RxSetupError::NoHeaderSplit);
        }
        if header.is_none() && F::SPLIT_ONLY {
            return Err(RxSetupError::NeedsHeaderSplit);
        }
        if hw.desc_len() != F::DESC_LEN {
            return Err(RxSetupError::DescLen {
                format: F::DESC_LEN,
                queue: hw.desc_len(),
            });
        }
        let size = hw.size();
        let ring = Ring::new(size)?;
        let mut bufs = fill_slots(&pool, size)?;
        let hdr = match header {
            Some((pool, layout)) => match fill_slots(&pool, size) {
                Ok(hbufs) => Some(HeaderBufs {
                    bufs: hbufs,
                    spare: Vec::with_capacity(REFILL_BULK),
                    pool,
                    layout,
                }),
                Err(e) => {
                    // Not posted yet: no device has seen them.
                    bufs.release_all(None, None);
                    return Err(e);
                }
            },
            None => None,
        };
        let mut r = RxRing {
            hw,
            ring,
            next: 0,
            tail: 0,
            held: 0,
            free_thresh: rx_free_thresh(free_thresh, size),
            bufs,
            spare: Vec::with_capacity(REFILL_BULK),
            max_len: max_len(layout, pool.buf_size()),
            pool,
            layout,
            hdr,
            partial: None,
            frame_descs: 0,
            discard: None,
            queue,
            counters,
            _format: PhantomData,
        };
        for i in 0..size {
            r.post(i);
        }
        Ok(r)
    }

    /// Writes descriptor `i` in read format from the buffers its slots
    /// hold.
    #[inline]
    fn post(&mut self, i: u16) {
        let idx = usize::from(i);
        let Some(pkt) = self.bufs.dma_addr(idx) else {
            return;
        };
        let pkt = pkt + u64::from(self.layout.headroom);
        let hdr = self
            .hdr
            .as_mut()
            .and_then(|h| Some(h.bufs.dma_addr(idx)? + u64::from(h.layout.headroom)));
        let d = match hdr {
            Some(hdr) => {
                if F::DESC_LEN == WIDE_DESC_LEN {
                    // Every write-back overwrites these quadwords too.
                    self.hw.write_upper(i, F::split_desc_upper());
                }
                F::split_desc(pkt, hdr)
            }
            None => F::buffer_desc(pkt),
        };
        self.hw.write(i, d);
    }

    /// Replacement buffers for a consumed descriptor: a packet buffer and,
    /// with header split on a frame's first descriptor, a header buffer.
    /// `None` (nothing taken) when a pool is empty.
    #[inline]
    fn fresh_buffers(&mut self, first: bool) -> Option<(Netmem, Option<Netmem>)> {
        let b = take_fresh(&mut self.spare, &self.pool)?;
        match self.hdr.as_mut() {
            Some(h) if first => match take_fresh(&mut h.spare, &h.pool) {
                Some(hb) => Some((b, Some(hb))),
                None => {
                    self.spare.push(b);
                    None
                }
            },
            _ => Some((b, None)),
        }
    }

    /// Hands the device every descriptor but one (tail = size - 1, so the
    /// tail never equals the head while buffers are posted).
    pub fn start(&mut self) {
        self.tail = self.ring.prev(self.next);
        self.hw.write_tail(self.tail);
        self.held = 0;
    }

    /// The queue's hardware handle (for drivers' queue registers).
    pub fn hw(&self) -> &H {
        &self.hw
    }

    /// Drops the frame being assembled; its later descriptors are recycled
    /// up to its EOP. The first reason given is the one counted.
    fn discard(&mut self, why: Discard) {
        self.partial = None;
        if self.discard.is_none() {
            self.discard = Some(why);
        }
    }

    /// Receives up to `max` packets, appending them to `out`. Returns how
    /// many were appended.
    ///
    /// Nothing the device writes back can make this panic or read outside
    /// a buffer: a frame with a length beyond its buffer, with no bytes, or
    /// spanning more descriptors than the device could own is dropped and
    /// counted in [`QueueCounters::bad_desc`]. A frame whose EOP descriptor
    /// is not written yet stays on the ring for a later burst.
    ///
    /// The common frame (one descriptor, a length within the buffer, no
    /// header split, no frame being assembled, a replacement buffer at
    /// hand) takes a short path: its buffer becomes the packet, the fresh
    /// one is posted in its place, and nothing else is looked at. Every
    /// other descriptor goes through [`RxRing::slow_desc`].
    pub fn rx_burst(&mut self, out: &mut Vec<Packet>, max: usize) -> usize {
        // An empty poll ends at its first read. The device writes back in
        // ring order, so with the oldest descriptor not done none after it
        // is (the ring-full check below has nothing to find), `held` is
        // already within `free_thresh` (every burst ends so) and nothing
        // was counted. DPDK's igb and em receive paths end the same way;
        // this is most of what a poll loop does while idle.
        if !F::done(self.hw.read_hi(self.next)) {
            return 0;
        }
        let device_owned = self.ring.distance(self.next, self.tail);
        // Ring occupancy at poll time: the last descriptor the device was
        // given already written back means it had no free descriptor left,
        // so frames arriving since were dropped (counted by MPC/RNBC where
        // the silicon has them; QEMU counts none, so the ring counts the
        // polls that found it full). One descriptor read per burst.
        let full_at_poll = device_owned > 0 && F::done(self.hw.read_hi(self.ring.prev(self.tail)));
        let mut t = Tally::default();
        // Hoisted out of the loop: the short path needs a ring without
        // header split; `max_len` bounds a length the window check of
        // `Segment::new` would accept (see `RxRing::new`).
        let short = self.hdr.is_none();
        let (headroom, max_len, queue) = (self.layout.headroom, self.max_len, self.queue);
        out.reserve(max);
        while t.delivered < max {
            let i = self.next;
            let hi = self.hw.read_hi(i);
            if !F::done(hi) {
                break;
            }
            let len = F::len(hi);
            if short
                && self.frame_descs == 0
                && F::eop(hi)
                && len.wrapping_sub(1) < max_len
                && let Some(fresh) = self.spare.pop()
            {
                let lo = self.hw.read_lo(i);
                let dma = fresh.dma_addr() + u64::from(headroom);
                let old = self.bufs.swap(i, fresh);
                self.hw.write(i, F::buffer_desc(dma));
                self.next = self.ring.next(i);
                self.held += 1;
                match old {
                    Some(buf) => match F::meta(lo, hi) {
                        Some(m) => {
                            // `0 < len <= max_len`: the window fits the buffer.
                            let seg = Segment::new_within(buf, headroom, len);
                            let pkt = Packet::received(seg, m.rss_hash, m.vlan_tci, m.flags, queue);
                            let at = out.len();
                            debug_assert!(at < out.capacity());
                            // SAFETY: `reserve(max)` above made room for
                            // `max` more packets and fewer than `max` were
                            // appended (`delivered < max`), so slot `at` is
                            // allocated; it is written, then counted.
                            unsafe {
                                out.as_mut_ptr().add(at).write(pkt);
                                out.set_len(at + 1);
                            }
                            t.bytes += u64::from(len);
                            t.delivered += 1;
                        }
                        // `buf` goes back to the pool here.
                        None => t.errors += 1,
                    },
                    // An empty slot (never while the ring runs): a frame of
                    // no buffer, as the general path counts it.
                    None => t.bad += 1,
                }
                continue;
            }
            if short && self.spare.is_empty() && self.refill_spare() {
                // Buffers again: the short path may take this descriptor.
                continue;
            }
            if let Some(pkt) = self.slow_desc(i, hi, &mut t) {
                t.bytes += pkt.len() as u64;
                out.push(pkt);
                t.delivered += 1;
            }
        }
        // DPDK's igb: the refilled descriptors go back with one tail write
        // once more than `rx_free_thresh` are held, one behind `next` so the
        // tail never equals the head.
        if self.held > self.free_thresh {
            self.tail = self.ring.prev(self.next);
            self.hw.write_tail(self.tail);
            self.held = 0;
        }
        let c = &self.counters;
        if full_at_poll {
            QueueCounters::add(&c.ring_full, 1);
        }
        QueueCounters::add(&c.packets, t.delivered as u64);
        QueueCounters::add(&c.bytes, t.bytes);
        QueueCounters::add(&c.errors, t.errors);
        QueueCounters::add(&c.nombuf, t.nombuf);
        QueueCounters::add(&c.bad_desc, t.bad);
        t.delivered
    }

    /// Refills the empty spare stack from the pool in one bulk call;
    /// false when the pool could not supply a bulk.
    #[cold]
    #[inline(never)]
    fn refill_spare(&mut self) -> bool {
        self.pool.alloc_bulk(&mut self.spare, REFILL_BULK) > 0
    }

    /// Consumes descriptor `i` (written back, high quadword `hi`) in the
    /// general way: replacement buffers (or the descriptor's own given back
    /// and the frame dropped), chaining a frame over descriptors, header
    /// split, and every drop counted in `t`. Returns the frame when `i` is
    /// the EOP descriptor of one to deliver. Kept out of line: the short
    /// path's loop in [`RxRing::rx_burst`] stays as small as without it.
    #[inline(never)]
    fn slow_desc(&mut self, i: u16, hi: u64, t: &mut Tally) -> Option<Packet> {
        let lo = self.hw.read_lo(i);
        let idx = usize::from(i);
        // With header split, what the write-back says of both buffers,
        // read before the descriptor is posted again.
        let lens = self.hdr.is_some().then(|| {
            let q2 = if F::DESC_LEN == WIDE_DESC_LEN {
                self.hw.read_q2(i)
            } else {
                0
            };
            F::split_lens(lo, hi, q2, self.frame_descs == 0)
        });
        // Replacement buffers first: without them, the descriptor's
        // buffers are given straight back to the device and the frame
        // is dropped.
        let (filled, header) = match self.fresh_buffers(self.frame_descs == 0) {
            Some((b, h)) => {
                let old = self.bufs.replace(idx, b);
                let old_h = match (h, self.hdr.as_mut()) {
                    (Some(h), Some(hs)) => hs.bufs.replace(idx, h),
                    _ => None,
                };
                (old, old_h)
            }
            None => {
                self.discard(Discard::NoBuf);
                (None, None)
            }
        };
        self.post(i);
        self.next = self.ring.next(i);
        self.held += 1;
        self.frame_descs = self.frame_descs.saturating_add(1);

        if let Some(buf) = filled {
            let (len, split) = match lens {
                None => (F::len(hi), None),
                Some(Some(l)) => (l.payload, Some(l)),
                Some(None) => {
                    // A write-back the device cannot have written.
                    self.discard(Discard::Bad);
                    (0, None)
                }
            };
            if len > self.layout.buf_len {
                // More bytes than the buffer holds: a mangled write-back.
                self.discard(Discard::Bad);
            } else if let (Some(h), Some(hs), Some(l)) = (header, self.hdr.as_ref(), split) {
                // Header split, a frame's first descriptor: the header
                // segment (empty when the device put an unsplit frame
                // whole into the packet buffer) starts the packet.
                if l.header > hs.layout.buf_len {
                    self.discard(Discard::Bad);
                } else {
                    match Segment::new(h, hs.layout.headroom, l.header) {
                        Ok(head) => {
                            let mut p = Packet::from_segment(head);
                            if l.split {
                                p.rx_flags = RxFlags::HEADER_SPLIT;
                            }
                            if len > 0 {
                                match Segment::new(buf, self.layout.headroom, len) {
                                    Ok(seg) => {
                                        p.push_segment(seg);
                                        self.partial = Some(p);
                                    }
                                    Err(_) => self.discard(Discard::Bad),
                                }
                            } else {
                                self.partial = Some(p);
                            }
                        }
                        Err(_) => self.discard(Discard::Bad),
                    }
                }
            } else if split.is_some_and(|l| l.header > 0) {
                // A later descriptor's header buffer written: the ring
                // keeps those posted (it takes a frame's first one only),
                // so the bytes are not delivered and the frame is dropped.
                self.discard(Discard::Bad);
            } else if len > 0 && self.discard.is_none() {
                // The window is checked against the buffer (a layout
                // larger than the pool's buffers is dropped, not read).
                match Segment::new(buf, self.layout.headroom, len) {
                    Ok(seg) => match self.partial.as_mut() {
                        Some(p) => p.push_segment(seg),
                        None => self.partial = Some(Packet::from_segment(seg)),
                    },
                    Err(_) => self.discard(Discard::Bad),
                }
            }
            // Otherwise `buf` (empty, or of a dropped frame) goes back
            // to the pool here.
        }
        if !F::eop(hi) {
            // A frame fits in the size - 1 descriptors the device owns at
            // most; one without EOP by then is a device fault.
            if self.frame_descs >= self.ring.size() - 1 && self.discard != Some(Discard::Counted) {
                self.partial = None;
                self.discard = Some(Discard::Counted);
                t.bad += 1;
            }
            return None;
        }
        self.frame_descs = 0;
        let mut pkt = match (self.discard.take(), self.partial.take()) {
            (None, Some(pkt)) => pkt,
            (Some(Discard::NoBuf), _) => {
                t.nombuf += 1;
                return None;
            }
            // Bad, or a frame of zero bytes.
            (Some(Discard::Bad), _) | (None, None) => {
                t.bad += 1;
                self.report_bad(i, lo, hi, t.bad);
                return None;
            }
            (Some(Discard::Counted), _) => return None,
        };
        let split = pkt.rx_flags;
        if !F::fill(lo, hi, &mut pkt) {
            t.errors += 1;
            return None;
        }
        pkt.rx_flags.insert(split);
        pkt.queue = self.queue;
        Some(pkt)
    }

    /// Logs a dropped impossible write-back (its EOP descriptor `i`,
    /// quadwords `lo`, `hi`) for the 1st, 2nd, 4th, 8th... of the queue,
    /// so a faulty device is visible without a log line per frame. QEMU's
    /// igb was seen (issue 11) leaving DD and the status on a descriptor
    /// the ring had already re-armed, with length 0 and the read-format
    /// buffer address still in `lo`: a write-back whose first part never
    /// landed.
    #[cold]
    fn report_bad(&self, i: u16, lo: u64, hi: u64, in_burst: u64) {
        let n = self.counters.bad_desc.load(Ordering::Relaxed) + in_burst;
        if n.is_power_of_two() {
            log::warn!(
                "RX queue {}: {IMPOSSIBLE_WRITE_BACK} at descriptor {i} (lo {lo:#018x}, hi {hi:#018x}) dropped; {n} so far",
                self.queue
            );
        }
    }

    /// Gives back every buffer the ring holds. Those the device was given
    /// (posted) go to their pool only with `proof` that the queue is off,
    /// or once the device's fence is marked stopped; until then the fence
    /// holds them ([`crate::fence`]). Spare and partly assembled buffers
    /// (the CPU's) go back at once. Returns how many buffers there were.
    pub fn release(&mut self, proof: Option<QueueStopped>) -> usize {
        let mut n = self.spare.len();
        self.spare.clear();
        let fence = self.hw.fence();
        n += self.bufs.release_all(fence, proof);
        if let Some(h) = self.hdr.as_mut() {
            n += h.spare.len();
            h.spare.clear();
            n += h.bufs.release_all(fence, proof);
        }
        if let Some(p) = self.partial.take() {
            n += p.segment_count();
        }
        self.frame_descs = 0;
        self.discard = None;
        n
    }

    /// The ring index arithmetic (ring size).
    pub fn size(&self) -> u16 {
        self.ring.size()
    }
}

impl<F: RxFormat, H: QueueHw> Drop for RxRing<F, H> {
    fn drop(&mut self) {
        // Without proof: posted buffers wait for the device's fence.
        self.release(None);
    }
}

#[cfg(test)]
mod doorbell_tests {
    //! Register writes per forwarded packet with the port's default
    //! thresholds, counted on the simulated device (every tail write is
    //! recorded; [`QueueHw`] has no register read at all, so the rings
    //! cannot read RDH/RDT/TDH/TDT on any path).
    use super::*;
    use crate::PortConfig;
    use crate::e1000e::desc::{CtxTx, ExtRx};
    use crate::igb::desc::{AdvRx, AdvTx};
    use crate::sim::SimQueue;
    use crate::tx::{TxFormat, TxRing};
    use pool::PoolConfig;

    const RING: u16 = 512;
    const LAYOUT: RxBufLayout = RxBufLayout {
        headroom: 128,
        buf_len: 1024,
    };

    /// Forwards `packets` 60-byte frames at `burst`; returns (RDT writes,
    /// TDT writes, packets forwarded) after the ring's start.
    fn forward<R: RxFormat, T: TxFormat>(burst: usize, packets: usize) -> (usize, usize, usize) {
        let cfg = PortConfig::default();
        let pool = Pool::with_host_memory(&PoolConfig::new("doorbells", 4096).with_buf_size(2048))
            .expect("host pool");
        let (rx_dev, tx_dev) = (SimQueue::new(RING), SimQueue::new(RING));
        let counters = Arc::new(QueueCounters::default());
        let mut rx = RxRing::<R, SimQueue>::new(
            rx_dev.clone(),
            pool,
            LAYOUT,
            None,
            0,
            cfg.rx_free_thresh,
            counters.clone(),
        )
        .expect("rx ring");
        rx.start();
        let mut tx = TxRing::<T, SimQueue>::new(
            tx_dev.clone(),
            cfg.tx_rs_thresh,
            cfg.tx_free_thresh,
            counters,
        )
        .expect("tx ring");
        let rdt_at_start = rx_dev.state().tails.len();
        let mut pkts = Vec::with_capacity(burst);
        let mut sent = 0;
        while sent < packets {
            for _ in 0..burst {
                if rx_dev.receive(60, 1024, 0).is_none() {
                    break;
                }
            }
            rx.rx_burst(&mut pkts, burst);
            sent += tx.tx_burst(&mut pkts);
            assert!(pkts.is_empty(), "the TX ring took the whole burst");
            tx_dev.transmit_all();
            // The device never sees a tail equal to its head with buffers
            // posted (that would read as an empty ring).
            let s = rx_dev.state();
            assert_ne!(s.tail(), s.head, "RDT caught up with RDH");
        }
        let rdt = rx_dev.state().tails.len() - rdt_at_start;
        let tdt = tx_dev.state().tails.len();
        (rdt, tdt, sent)
    }

    fn check<R: RxFormat, T: TxFormat>(name: &str) {
        let (rdt, tdt, n) = forward::<R, T>(32, 32 * 3000);
        let per = (rdt + tdt) as f64 / n as f64;
        assert!(
            per <= 0.045,
            "{name}: {rdt} RDT + {tdt} TDT writes for {n} packets = {per:.4} per packet, above 0.045"
        );
        assert_eq!(tdt, n / 32, "{name}: TDT once per non-empty burst");
        // Burst 1: still one TDT per burst, RDT once per 129 packets.
        let (rdt, tdt, n) = forward::<R, T>(1, 129 * 50);
        assert_eq!(tdt, n, "{name}: burst 1, TDT once per packet");
        assert_eq!(rdt, n / 129, "{name}: burst 1, RDT once per 129 refills");
    }

    #[test]
    fn igb_doorbells_per_forwarded_packet_at_burst_32_stay_under_0_045() {
        check::<AdvRx, AdvTx>("igb");
    }

    #[test]
    fn e1000e_doorbells_per_forwarded_packet_at_burst_32_stay_under_0_045() {
        check::<ExtRx, CtxTx>("e1000e");
    }

    #[test]
    fn the_refill_threshold_is_capped_at_a_quarter_of_the_ring() {
        assert_eq!(rx_free_thresh(64, 512), 64);
        assert_eq!(rx_free_thresh(64, 64), 16);
        assert_eq!(rx_free_thresh(500, 512), 128);
        assert_eq!(rx_free_thresh(0, 512), 0);
    }
}
