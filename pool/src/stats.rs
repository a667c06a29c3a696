//! Pool statistics, named as Linux's page_pool keeps them.

use crate::sync::{AtomicU64, Ordering};

/// Counter indices.
#[derive(Clone, Copy)]
#[repr(usize)]
pub(crate) enum Stat {
    AllocFast,
    AllocSlow,
    AllocEmpty,
    AllocRefill,
    RecycleCached,
    RecycleCacheFull,
    RecycleRing,
    RecycleRingFull,
    RecycleReleasedRefcnt,
    ReleasedToProvider,
    DoubleRelease,
    WrongPool,
    ReleaseBadRef,
    NotAHandle,
    AcquiredFromProvider,
}

pub(crate) const N_STATS: usize = 15;

/// A set of counters. Per-lcore sets have a single writer (the lcore's
/// thread), which adds with a load and a store (no read-modify-write);
/// the shared set is updated with `fetch_add`.
#[derive(Default)]
pub(crate) struct Counters([AtomicU64; N_STATS]);

impl Counters {
    /// Single-writer add.
    ///
    /// Only the thread owning this set may call it (the lcore's thread).
    #[inline(always)]
    pub(crate) fn add_local(&self, s: Stat, v: u64) {
        let c = &self.0[s as usize];
        c.store(c.load(Ordering::Relaxed) + v, Ordering::Release);
    }

    #[inline]
    pub(crate) fn add_shared(&self, s: Stat, v: u64) {
        // Release: the count of a returned buffer is the release's last
        // access, and a reader (`get`, Acquire) that sees it may free the
        // pool (the destroy's last-release path); nothing is read here.
        self.0[s as usize].fetch_add(v, Ordering::Release);
    }

    pub(crate) fn get(&self, s: Stat) -> u64 {
        self.0[s as usize].load(Ordering::Acquire)
    }
}

/// A snapshot of a pool's statistics (buffers unless noted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers handed out from an lcore cache.
    pub alloc_fast: u64,
    /// Buffers handed out straight from the shared ring.
    pub alloc_slow: u64,
    /// Allocation requests refused because the pool was empty.
    pub alloc_empty: u64,
    /// Allocation requests that refilled an lcore cache from the ring.
    pub alloc_refill: u64,
    /// Buffers recycled into an lcore cache.
    pub recycle_cached: u64,
    /// Buffers flushed from a full lcore cache to the ring.
    pub recycle_cache_full: u64,
    /// Buffers recycled straight into the ring.
    pub recycle_ring: u64,
    /// Buffers that did not fit the ring (never expected: lost, logged).
    pub recycle_ring_full: u64,
    /// Pages whose last pool reference dropped while full references were
    /// held: they return when the last full reference drops.
    pub recycle_released_refcnt: u64,
    /// Buffers given back to the provider (its free list, from which the
    /// pool may take them again).
    pub released_to_provider: u64,
    /// Buffers taken from the provider after the build, when the ring ran
    /// dry.
    pub acquired_from_provider: u64,
    /// Releases of a buffer the pool already held (reported, ignored).
    pub double_release: u64,
    /// Buffers handed to this pool that belong to another (reported,
    /// released to their own pool).
    pub wrong_pool: u64,
    /// Buffers released to the provider while still referenced (reported,
    /// not freed).
    pub release_bad_ref: u64,
    /// Words handed to `free_raw_bulk` that are no buffer handle of a live
    /// pool (refused, never dereferenced).
    pub not_a_handle: u64,
    /// Buffers currently out of the pool.
    pub in_use: u64,
    /// Buffers in the shared ring (snapshot).
    pub in_ring: u64,
    /// Buffers in the lcore caches (snapshot; exact when no lcore is busy).
    pub in_caches: u64,
    /// Buffers the pool's provider can supply (the metadata entries).
    pub count: u64,
    /// Buffers the pool holds from its provider (taken at build and after,
    /// less those released to it): in use, in the ring or in caches.
    pub held: u64,
}

impl PoolStats {
    pub(crate) fn add_counters(&mut self, c: &Counters) {
        self.alloc_fast += c.get(Stat::AllocFast);
        self.alloc_slow += c.get(Stat::AllocSlow);
        self.alloc_empty += c.get(Stat::AllocEmpty);
        self.alloc_refill += c.get(Stat::AllocRefill);
        self.recycle_cached += c.get(Stat::RecycleCached);
        self.recycle_cache_full += c.get(Stat::RecycleCacheFull);
        self.recycle_ring += c.get(Stat::RecycleRing);
        self.recycle_ring_full += c.get(Stat::RecycleRingFull);
        self.recycle_released_refcnt += c.get(Stat::RecycleReleasedRefcnt);
        self.released_to_provider += c.get(Stat::ReleasedToProvider);
        self.double_release += c.get(Stat::DoubleRelease);
        self.wrong_pool += c.get(Stat::WrongPool);
        self.release_bad_ref += c.get(Stat::ReleaseBadRef);
        self.not_a_handle += c.get(Stat::NotAHandle);
        self.acquired_from_provider += c.get(Stat::AcquiredFromProvider);
    }

    /// Buffers allocated and not yet returned (or returned to the provider).
    pub(crate) fn compute_in_use(&self) -> u64 {
        (self.alloc_fast + self.alloc_slow)
            .saturating_sub(self.recycle_cached + self.recycle_ring + self.released_to_provider)
    }
}
