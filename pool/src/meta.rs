//! Per-buffer metadata and the handle encoding (private to the pool core).
//!
//! A handle is the address of the buffer's [`Meta`] (32-byte aligned), with
//! bit 0 set for a net_iov ([`NET_IOV`]), as Linux tags `netmem_ref`, and
//! bit 1 set for a shared pool reference ([`SHARED`]). Both kinds share
//! exactly these fields, so reading them never depends on the kind; nothing
//! of a page beyond them is mirrored.
//!
//! A handle without `SHARED` is the buffer's only reference: `refs` then
//! reads `REFS_ONE` and nothing reads or writes the metadata when it is
//! released, which is what keeps the fast path a copy of words. A `SHARED`
//! handle is one of `pp_of(refs)` pool references and is released with an
//! atomic decrement.

use crate::sync::{AtomicU32, AtomicU64};

use crate::pool::Core;

/// Tag bit of a net_iov handle.
pub(crate) const NET_IOV: usize = 1;
/// Tag bit of a shared (counted) pool reference.
pub(crate) const SHARED: usize = 2;
/// Bits of a handle that are not part of the metadata address.
pub(crate) const TAG_MASK: usize = 31;
/// Metadata size: handle offsets divided by it are buffer indices.
pub(crate) const META_SIZE: usize = std::mem::size_of::<Meta>();
/// Width of `TAG_MASK`.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const TAG_BITS: u32 = TAG_MASK.count_ones();

/// `refs` value of a buffer given back to its provider.
pub(crate) const REFS_RETIRED: u64 = u64::MAX;
/// One pool reference (low 32 bits of `refs`).
pub(crate) const PP_ONE: u64 = 1;
/// One full (page) reference (high 32 bits of `refs`).
pub(crate) const FULL_ONE: u64 = 1 << 32;
/// A buffer in the pool or held by one unshared handle: one pool
/// reference, the base full count.
pub(crate) const REFS_ONE: u64 = PP_ONE | FULL_ONE;

/// Tag bit of a handle found to be a double free by the debug checks (see
/// [`RAW_CHECKS`]): its release is ignored and it gives no access to the
/// buffer's bytes.
pub(crate) const POISON: usize = 4;

/// `state` of a buffer in the pool (tracked only with
/// `PoolConfig::track_state`). The state's kind is the top byte; the low
/// 24 bits count the buffer's words given out by `Netmem::into_raw` and not
/// yet taken back (debug builds with tracking, see [`RAW_CHECKS`]).
pub(crate) const STATE_FREE: u32 = (b'F' as u32) << 24;
/// `state` of a buffer handed out (tracked only with `track_state`), with
/// no raw word out.
pub(crate) const STATE_OUT: u32 = (b'O' as u32) << 24;
/// `state` of a buffer kept out of circulation after a release to the
/// provider while still referenced (set with or without `track_state`, so
/// that the leak report always names it).
pub(crate) const STATE_KEPT: u32 = (b'K' as u32) << 24;
/// The raw-word count of a `state`.
pub(crate) const STATE_RAW: u32 = (1 << 24) - 1;
/// The kind of a `state`.
pub(crate) const STATE_KIND: u32 = !STATE_RAW;

/// Whether raw words are counted per buffer (debug builds, in pools that
/// track states): `into_raw` adds one, `from_raw` and `free_raw_bulk` take
/// one back, and taking back a word the buffer has none of (or of a buffer
/// in the pool) is a double free, caught before it touches any count.
/// Release builds compile this out (it would cost `into_raw` two loads).
pub(crate) const RAW_CHECKS: bool = cfg!(debug_assertions);

#[inline]
pub(crate) fn pp_of(refs: u64) -> u32 {
    refs as u32
}

#[inline]
pub(crate) fn full_of(refs: u64) -> u32 {
    (refs >> 32) as u32
}

/// The fields a pool keeps for each buffer, page or net_iov alike.
#[repr(C, align(32))]
pub(crate) struct Meta {
    /// Owning pool (`pp`); written once before the pool is shared.
    pub(crate) pool: *const Core,
    /// pp_ref (low half) | full ref count (high half; stays 1 for a
    /// net_iov), or `REFS_RETIRED`.
    pub(crate) refs: AtomicU64,
    /// DMA address (IOVA) of the buffer.
    pub(crate) dma: u64,
    /// Index in the pool.
    pub(crate) index: u32,
    /// `STATE_FREE` / `STATE_OUT` (plus the raw-word count) when the pool
    /// tracks states (double release detection), else `STATE_FREE`;
    /// `STATE_KEPT` after a refused release to the provider.
    pub(crate) state: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Meta>() == 32);
// Handle offsets divided by the metadata size are buffer indices.
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Meta>() == 1 << TAG_BITS);
// Under loom the atomics are larger: the size must stay a power of two
// (handle ownership is a mask test).
#[cfg(loom)]
const _: () = assert!(std::mem::size_of::<Meta>().is_power_of_two());
const _: () = assert!(std::mem::align_of::<Meta>() > TAG_MASK);

/// The metadata a handle points to.
///
/// # Safety
/// `raw` must be a handle produced by a pool whose core is still allocated
/// (true for every live `Netmem`/`PageRef`: a core with buffers out is never
/// freed).
#[inline(always)]
pub(crate) unsafe fn meta<'a>(raw: usize) -> &'a Meta {
    // SAFETY: by the caller's contract, `raw & !TAG_MASK` is the address of a
    // live, aligned `Meta` inside its pool's metadata array.
    unsafe { &*((raw & !TAG_MASK) as *const Meta) }
}

/// The pool core a handle belongs to.
///
/// # Safety
/// As for [`meta`].
#[inline(always)]
pub(crate) unsafe fn core<'a>(raw: usize) -> &'a Core {
    // SAFETY: caller's contract; `pool` was set at pool creation to the
    // core, which outlives every buffer handed out.
    unsafe { &*meta(raw).pool }
}
