//! The buffer handles: [`Netmem`] (an owned pool reference) and [`PageRef`]
//! (an owned full reference to a page).
//!
//! Reference rules (see `shared/notes/netmem-semantics.md`):
//! - every buffer carries `pp_ref`, the pool's count; a page also carries a
//!   full (ordinary) count whose base value is 1;
//! - a `Netmem` holds one pool reference. A fresh one is the buffer's only
//!   reference ("unshared"): releasing it touches no count at all.
//!   [`Netmem::frag_ref`] takes another pool reference (for a net_iov too:
//!   net_iov fragments are pool references) and marks both handles shared
//!   (bit 1 of the word), so their releases drop `pp_ref` atomically;
//! - a `PageRef` holds one full reference; only pages have them
//!   ([`Netmem::page_ref`] returns `None` for a net_iov, whose `ref_count()`
//!   reads 1 always);
//! - which count a release drops is fixed by the handle: an unshared
//!   `Netmem` is the only reference, a shared one drops a pool reference, a
//!   `PageRef` drops a full reference. The buffer returns to its pool when
//!   both are back to their base (pp_ref 0, full 1), from whichever drop
//!   got there.
//!
//! Handles release on drop, so safe code can neither leak a buffer nor
//! release it twice. Only the unsafe raw-word API ([`Netmem::into_raw`],
//! [`Netmem::from_raw`], [`crate::Pool::free_raw_bulk`]) can; what is caught
//! then:
//! - debug builds, pools with `PoolConfig::track_state` (the debug
//!   default): every double free, of any handle kind (owned page, owned
//!   net_iov, shared fragment handle of either). Each buffer counts its
//!   words given out by `into_raw`; taking one back when the buffer has
//!   none out (or is back in the pool) is reported (the `double_release`
//!   counter, an error logged once) before any count changes: `from_raw`
//!   then returns a poisoned handle whose release is ignored and which
//!   gives no access to the bytes, `free_raw_bulk` refuses the word with
//!   [`crate::PoolError::DoubleFree`];
//! - release builds with `track_state` on: a second release of an owned
//!   (unshared) handle is reported and ignored; a double free of a shared
//!   handle is not caught;
//! - every build: `free_raw_bulk` checks each word against the pool's
//!   metadata range before touching any memory (a word that is no handle
//!   of a live pool is refused with [`crate::PoolError::NotAHandle`]); a
//!   shared release that finds `pp_ref` already 0 is reported and ignored;
//! - anything else is undefined behaviour, as the `unsafe` contracts say:
//!   in a release build without tracking, a word taken back twice makes two
//!   owners of one buffer, which the pool may hand out again while one of
//!   them still uses it.

use crate::sync::Ordering::{AcqRel, Acquire, Relaxed};
use std::fmt;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use crate::meta::{
    self, FULL_ONE, NET_IOV, POISON, PP_ONE, RAW_CHECKS, REFS_ONE, SHARED, full_of, pp_of,
};
use crate::pool::{Core, PoolId};

/// One-word owned handle to a pool buffer: a page (CPU-readable hugepage
/// memory) or a net_iov (a device-memory chunk), fixed by bit 0 of the word.
///
/// Dropping it releases its pool reference; the buffer goes back into the
/// current lcore's cache (see [`crate::lcore`]) when that was the last
/// reference.
#[repr(transparent)]
pub struct Netmem(NonZeroUsize);

// SAFETY: a Netmem is an owned reference; the metadata it points to is only
// changed through atomics, and its pool core is Sync.
unsafe impl Send for Netmem {}
// SAFETY: shared access only reads metadata atomically, takes references
// with atomic increments, or reads page bytes (which need `&mut` to write).
unsafe impl Sync for Netmem {}

const _: () = assert!(std::mem::size_of::<Netmem>() == std::mem::size_of::<usize>());
const _: () = assert!(std::mem::size_of::<Option<Netmem>>() == std::mem::size_of::<usize>());

impl Netmem {
    /// Wraps a raw handle taken from a pool's free store.
    ///
    /// # Safety
    /// `raw` is a handle of a live pool, and the caller transfers to the new
    /// value one pool reference it owns.
    #[inline(always)]
    pub(crate) unsafe fn from_owned_raw(raw: usize) -> Self {
        // SAFETY: handles are addresses of `Meta` values, never 0.
        Self(unsafe { NonZeroUsize::new_unchecked(raw) })
    }

    #[inline(always)]
    fn raw(&self) -> usize {
        self.0.get()
    }

    #[inline(always)]
    fn meta(&self) -> &meta::Meta {
        // SAFETY: a live handle keeps its pool core allocated.
        unsafe { meta::meta(self.raw()) }
    }

    #[inline(always)]
    fn core(&self) -> &Core {
        // SAFETY: a live handle keeps its pool core allocated.
        unsafe { meta::core(self.raw()) }
    }

    /// Gives up ownership without releasing: the word can be kept (e.g. in
    /// a descriptor ring's software shadow while the NIC owns the buffer)
    /// and turned back into a `Netmem` with [`Netmem::from_raw`].
    #[inline(always)]
    pub fn into_raw(self) -> usize {
        let raw = self.raw();
        if RAW_CHECKS && raw & POISON == 0 {
            self.core().give_raw(raw);
        }
        std::mem::forget(self);
        raw
    }

    /// Takes back a word produced by [`Netmem::into_raw`].
    ///
    /// # Safety
    /// `raw` must come from `into_raw` and be taken back once, here or by
    /// [`crate::Pool::free_raw_bulk`] (the reference it stands for is owned
    /// again by the result). Taking a word back twice is a double free:
    /// in debug builds with state tracking it is reported and the second
    /// result is a poisoned handle (no bytes, release ignored); otherwise
    /// see the module docs for what is caught, and what is undefined.
    #[inline(always)]
    pub unsafe fn from_raw(raw: usize) -> Self {
        if RAW_CHECKS && raw & POISON == 0 {
            // SAFETY: by the contract, `raw` is a handle from into_raw of a
            // pool whose core is still allocated.
            let core = unsafe { meta::core(raw) };
            if !core.take_back_raw(raw) {
                core.report_double_release(raw & !SHARED);
                // SAFETY: as above, with a spare tag bit set.
                return unsafe { Self::from_owned_raw(raw | POISON) };
            }
        }
        // SAFETY: by the contract, `raw` is a non-zero handle from into_raw.
        unsafe { Self::from_owned_raw(raw) }
    }

    /// Whether the debug checks found this handle to be a double free (its
    /// release is then ignored and it gives no access to the bytes).
    pub fn is_poisoned(&self) -> bool {
        self.raw() & POISON != 0
    }

    /// Whether this is a device-memory chunk (no CPU access).
    #[inline(always)]
    pub fn is_net_iov(&self) -> bool {
        self.raw() & NET_IOV != 0
    }

    /// The device (IOVA) address of the buffer's first byte.
    #[inline(always)]
    pub fn dma_addr(&self) -> u64 {
        self.meta().dma
    }

    /// Bytes in the buffer (the pool's buffer or chunk size).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.core().buf_size
    }

    /// The buffer's index in its pool.
    pub fn index(&self) -> u32 {
        self.meta().index
    }

    /// Identity of the owning pool (compare with [`crate::Pool::id`]).
    pub fn pool_id(&self) -> PoolId {
        PoolId(self.meta().pool as usize)
    }

    /// Name of the owning pool.
    pub fn pool_name(&self) -> &str {
        &self.core().name
    }

    /// The pool reference count (`pp_ref_count`).
    pub fn pp_ref_count(&self) -> u32 {
        pp_of(self.meta().refs.load(Acquire))
    }

    /// The ordinary (full) reference count; always 1 for a net_iov, which
    /// has only pool references.
    pub fn ref_count(&self) -> u32 {
        if self.is_net_iov() {
            1
        } else {
            full_of(self.meta().refs.load(Acquire))
        }
    }

    /// Whether this handle holds the buffer's only reference.
    pub fn is_unique(&self) -> bool {
        self.raw() & SHARED == 0 || self.meta().refs.load(Acquire) == REFS_ONE
    }

    /// Whether this handle was marked shared by a fragment or full
    /// reference (its release then drops `pp_ref` atomically).
    pub fn is_shared(&self) -> bool {
        self.raw() & SHARED != 0
    }

    /// Marks this handle shared (it keeps its pool reference).
    fn mark_shared(&mut self) {
        if self.raw() & SHARED == 0 {
            // SAFETY: setting bit 1 of a non-zero word keeps it non-zero.
            self.0 = unsafe { NonZeroUsize::new_unchecked(self.raw() | SHARED) };
        }
    }

    /// Frame number for tracing only: IOVA / 4096 for a page, 0 (a
    /// placeholder) for a net_iov.
    pub fn pfn_trace(&self) -> u64 {
        if self.is_net_iov() {
            0
        } else {
            self.dma_addr() >> 12
        }
    }

    /// Where a net_iov sits in its device-memory region; `None` for a page.
    pub fn net_iov_owner(&self) -> Option<NetIovOwner> {
        self.is_net_iov().then(|| {
            let core = self.core();
            NetIovOwner {
                region_iova: core.iova_base,
                index: self.meta().index,
                chunk_size: core.buf_size,
            }
        })
    }

    /// The page's bytes; `None` for a net_iov.
    #[inline]
    pub fn bytes(&self) -> Option<&[u8]> {
        let ptr = self.cpu_ptr()?;
        // SAFETY: a page buffer is `capacity()` bytes inside its pool's
        // CPU-mapped region, alive while this handle is; writes need a
        // unique `&mut Netmem` (bytes_mut), so none happens through the
        // pool while this shared borrow lives.
        Some(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.capacity()) })
    }

    /// The page's bytes for writing; `None` for a net_iov or when other
    /// references (fragments or full references) to the page exist.
    #[inline]
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.is_unique() {
            return None;
        }
        // The only reference left: release it as unshared from now on.
        self.0 = NonZeroUsize::new(self.raw() & !SHARED)?;
        let ptr = self.cpu_ptr()?;
        // SAFETY: as in `bytes`; this handle is the buffer's only reference
        // and is borrowed mutably, so no other reference to the bytes exists
        // or can be created while the slice lives.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), self.capacity()) })
    }

    /// Alias of [`Netmem::bytes`] under the name the design uses.
    pub fn as_page(&self) -> Option<&[u8]> {
        self.bytes()
    }

    fn cpu_ptr(&self) -> Option<NonNull<u8>> {
        if self.raw() & (NET_IOV | POISON) != 0 {
            return None;
        }
        let core = self.core();
        let offset = (self.dma_addr() - core.iova_base) as usize;
        // SAFETY: pages' DMA addresses are `iova_base + offset` with the
        // buffer inside the region, whose CPU mapping starts at `cpu_base`.
        NonNull::new(unsafe { core.cpu_base.add(offset) })
    }

    /// Takes another pool reference to the same buffer (a fragment
    /// reference, as `page_pool_ref_netmem`), for pages and net_iovs alike.
    /// Both this handle and the new one are shared from now on (their
    /// releases drop `pp_ref`); `&mut` because this handle's own release
    /// rule changes with it.
    pub fn frag_ref(&mut self) -> Netmem {
        if self.is_poisoned() {
            // A double free holds no reference: neither does its copy.
            // SAFETY: the same non-zero word, released as a no-op.
            return unsafe { Self::from_owned_raw(self.raw()) };
        }
        self.mark_shared();
        let prev = self.meta().refs.fetch_add(PP_ONE, Relaxed);
        if pp_of(prev) >= u32::MAX / 2 {
            // As Arc does on overflow: a program holding 2^31 references to
            // one buffer is broken beyond recovery.
            std::process::abort();
        }
        // SAFETY: we just took the reference the new handle owns.
        unsafe { Self::from_owned_raw(self.raw()) }
    }

    /// Takes a full (ordinary) reference on a page; `None` for a net_iov,
    /// which has no such count. This handle becomes shared (its release
    /// must then check the full count).
    pub fn page_ref(&mut self) -> Option<PageRef> {
        if self.raw() & (NET_IOV | POISON) != 0 {
            return None;
        }
        self.mark_shared();
        let prev = self.meta().refs.fetch_add(FULL_ONE, Relaxed);
        if full_of(prev) >= u32::MAX / 2 {
            std::process::abort();
        }
        // SAFETY: the word with bit 1 clear is still a non-zero address.
        Some(PageRef(unsafe {
            NonZeroUsize::new_unchecked(self.raw() & !SHARED)
        }))
    }
}

impl Drop for Netmem {
    #[inline(always)]
    fn drop(&mut self) {
        if crate::sync::model_failed() {
            return;
        }
        release(self.raw());
    }
}

impl fmt::Debug for Netmem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(if self.is_net_iov() { "NetIov" } else { "Page" })
            .field("pool", &self.pool_name())
            .field("index", &self.index())
            .field("dma", &format_args!("{:#x}", self.dma_addr()))
            .field("shared", &self.is_shared())
            .field("pp_ref", &self.pp_ref_count())
            .field("ref", &self.ref_count())
            .finish()
    }
}

/// Where a net_iov sits in its device-memory region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetIovOwner {
    /// IOVA of the region's first byte.
    pub region_iova: u64,
    /// Chunk index: the chunk's DMA address is `region_iova + index * chunk_size`.
    pub index: u32,
    pub chunk_size: usize,
}

/// An owned full (ordinary) reference to a page, as `get_page` takes: it
/// keeps the page out of the pool until dropped, and reads its bytes.
pub struct PageRef(NonZeroUsize);

// SAFETY: as for Netmem.
unsafe impl Send for PageRef {}
// SAFETY: as for Netmem; a PageRef only reads the bytes.
unsafe impl Sync for PageRef {}

impl PageRef {
    fn meta(&self) -> &meta::Meta {
        // SAFETY: a live handle keeps its pool core allocated.
        unsafe { meta::meta(self.0.get()) }
    }

    pub fn dma_addr(&self) -> u64 {
        self.meta().dma
    }

    /// The full reference count (1 is the base, each `PageRef` adds 1).
    pub fn ref_count(&self) -> u32 {
        full_of(self.meta().refs.load(Acquire))
    }

    pub fn pp_ref_count(&self) -> u32 {
        pp_of(self.meta().refs.load(Acquire))
    }

    /// The page's bytes (read-only: a full reference never writes).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: a live handle keeps its pool core allocated.
        let core = unsafe { meta::core(self.0.get()) };
        let offset = (self.dma_addr() - core.iova_base) as usize;
        // SAFETY: PageRefs exist only for pages, whose bytes are inside the
        // pool's CPU-mapped region; while a PageRef lives no handle is
        // unique, so `bytes_mut` refuses and nothing writes through the pool.
        unsafe { std::slice::from_raw_parts(core.cpu_base.add(offset), core.buf_size) }
    }
}

impl Clone for PageRef {
    fn clone(&self) -> Self {
        let prev = self.meta().refs.fetch_add(FULL_ONE, Relaxed);
        if full_of(prev) >= u32::MAX / 2 {
            std::process::abort();
        }
        PageRef(self.0)
    }
}

impl Drop for PageRef {
    fn drop(&mut self) {
        if crate::sync::model_failed() {
            return;
        }
        let raw = self.0.get();
        let meta = self.meta();
        // Relaxed load and CAS failure: the value only seeds the next CAS,
        // or leads to a report that touches no buffer; the successful
        // decrement (AcqRel) is what orders this holder's accesses before
        // the last holder's return of the buffer (loom_models).
        let mut cur = meta.refs.load(Relaxed);
        loop {
            if cur == meta::REFS_RETIRED || full_of(cur) < 2 {
                // SAFETY: live handle.
                unsafe { meta::core(raw) }.report_double_release(raw);
                return;
            }
            match meta
                .refs
                .compare_exchange_weak(cur, cur - FULL_ONE, AcqRel, Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur - FULL_ONE == FULL_ONE {
            // Last reference of any kind: back to the pool.
            meta.refs.store(REFS_ONE, Relaxed);
            // SAFETY: live handle; we own the buffer now.
            unsafe { meta::core(raw) }.put_unshared(&[raw]);
        }
    }
}

impl fmt::Debug for PageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageRef")
            .field("dma", &format_args!("{:#x}", self.dma_addr()))
            .field("ref", &self.ref_count())
            .finish()
    }
}

/// Releases the reference a handle word holds.
#[inline(always)]
pub(crate) fn release(raw: usize) {
    if raw & (SHARED | POISON) == 0 {
        // SAFETY: the caller owned the buffer's only reference, so the core
        // is alive.
        unsafe { meta::core(raw) }.put_unshared(&[raw]);
    } else {
        release_shared(raw);
    }
}

/// Drops one pool reference held by a shared handle.
#[cold]
pub(crate) fn release_shared(raw: usize) {
    if raw & POISON != 0 {
        // A double free found by the debug checks: reported when found.
        return;
    }
    let raw = raw & !SHARED;
    // SAFETY: the caller owned a reference, so the core is alive.
    let meta = unsafe { meta::meta(raw) };
    // SAFETY: as above.
    let core = unsafe { meta::core(raw) };
    // Relaxed load and CAS failure, as in `PageRef::drop`.
    let mut cur = meta.refs.load(Relaxed);
    loop {
        if cur == meta::REFS_RETIRED || pp_of(cur) == 0 {
            core.report_double_release(raw);
            return;
        }
        match meta
            .refs
            .compare_exchange_weak(cur, cur - PP_ONE, AcqRel, Relaxed)
        {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    let new = cur - PP_ONE;
    if pp_of(new) == 0 {
        if full_of(new) == 1 {
            meta.refs.store(REFS_ONE, Relaxed);
            core.put_unshared(&[raw]);
        } else {
            // Full references remain: the page leaves the pool's accounting
            // until the last PageRef drops.
            core.count_released_refcnt();
        }
    }
}
