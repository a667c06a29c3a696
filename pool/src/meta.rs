//! Per-buffer metadata and the handle encoding (private to the pool core).
//!
//! A handle is the address of the buffer's [`Meta`] (32-byte aligned), with
//! bit 0 set for a net_iov ([`NET_IOV`]), as Linux tags `netmem_ref`. Both
//! kinds share exactly these fields, so reading them never depends on the
//! kind; nothing of a page beyond them is mirrored.

use std::sync::atomic::AtomicU64;

use crate::pool::Core;

/// Tag bit of a net_iov handle.
pub(crate) const NET_IOV: usize = 1;

/// `pp_magic`: set on every buffer a pool owns.
pub(crate) const PP_MAGIC: u32 = 0x0050_5040;

/// `refs` value of a buffer sitting in the pool (cache or ring).
pub(crate) const REFS_FREE: u64 = 0;
/// `refs` value of a buffer given back to its provider.
pub(crate) const REFS_RETIRED: u64 = u64::MAX;
/// One pool reference (low 32 bits of `refs`).
pub(crate) const PP_ONE: u64 = 1;
/// One full (page) reference (high 32 bits of `refs`).
pub(crate) const FULL_ONE: u64 = 1 << 32;
/// A freshly allocated buffer: one pool reference, the base full count.
pub(crate) const REFS_ONE: u64 = PP_ONE | FULL_ONE;

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
    /// `REFS_FREE`, `REFS_RETIRED`, or pp_ref (low half) | full ref count
    /// (high half; stays 1 for a net_iov).
    pub(crate) refs: AtomicU64,
    /// DMA address (IOVA) of the buffer.
    pub(crate) dma: u64,
    /// Index in the pool.
    pub(crate) index: u32,
    /// `PP_MAGIC` while the pool owns the buffer.
    pub(crate) magic: u32,
}

const _: () = assert!(std::mem::size_of::<Meta>() == 32);
const _: () = assert!(std::mem::align_of::<Meta>() > NET_IOV);

/// The metadata a handle points to.
///
/// # Safety
/// `raw` must be a handle produced by a pool whose core is still allocated
/// (true for every live `Netmem`/`PageRef`: a core with buffers out is never
/// freed).
#[inline(always)]
pub(crate) unsafe fn meta<'a>(raw: usize) -> &'a Meta {
    // SAFETY: by the caller's contract, `raw & !NET_IOV` is the address of a
    // live, aligned `Meta` inside its pool's metadata array.
    unsafe { &*((raw & !NET_IOV) as *const Meta) }
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
