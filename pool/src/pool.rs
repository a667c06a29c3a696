//! The pool: buffers cut from one provider, a shared ring, one cache per
//! lcore.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::LazyLock;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::PoolError;
use crate::config::{MAX_CACHE_SIZE, PoolConfig};
use crate::lcore;
use crate::meta::{
    self, META_SIZE, Meta, NET_IOV, POISON, RAW_CHECKS, REFS_ONE, REFS_RETIRED, SHARED, STATE_FREE,
    STATE_KEPT, STATE_KIND, STATE_OUT, STATE_RAW, TAG_MASK,
};
use crate::netmem::{self, Netmem};
use crate::provider::{
    DeviceRegion, DmaRegion, HostDeviceMemory, HostMemory, HostPages, MemoryProvider, NetIovRegion,
    ProviderLayout,
};
use crate::ring::Ring;
use crate::stats::{Counters, PoolStats, Stat};
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Mutex, MutexGuard, sync_static};
use crate::words::{copy_words, copy_words_from_cache, copy_words_offsets};

/// Page size of the host memory behind [`Pool::with_host_memory`]: a 2 MiB
/// "hugepage", so placement follows the same rules as real DMA memory.
pub const HOST_PAGE_SIZE: usize = 2 << 20;

/// Buffers handed to the pool per batch when freeing in bulk.
const FREE_BATCH: usize = 64;

/// Buffers taken from the provider at least, when the ring runs dry (as
/// page_pool's slow-path refill).
const ACQUIRE_BATCH: usize = 64;

sync_static!(
/// Every pool core not yet freed: live pools, and destroyed pools waiting
/// for their last buffer. Lets an exiting lcore thread flush its cache in
/// every pool (`flush_lcore`) and the release path find destroyed pools;
/// a core is freed only after it left this list, under its lock.
CORES: Mutex<Vec<usize>> = Mutex::new(Vec::new()), Mutex::new(Vec::new()));

fn cores() -> MutexGuard<'static, Vec<usize>> {
    // The list stays consistent across a panic (plain pushes and removes).
    CORES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves lcore `id`'s cache of every pool to that pool's ring (the lcore
/// claim calls it when it ends: thread exit, `clear_current`, rebind).
///
/// The caller holds the claim on `id`, so no other thread touches these
/// caches meanwhile.
pub(crate) fn flush_lcore(id: usize) {
    let mut cores = cores();
    for &c in cores.iter() {
        // SAFETY: a core in the list is allocated (it is freed only after
        // being removed, under this lock).
        let core = unsafe { &*(c as *const Core) };
        core.flush_slot(id);
    }
    reclaim_destroyed(&mut cores);
}

/// Seconds between two "still out" warnings of a destroyed pool.
const DESTROY_WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Time origin of `Core::warned_at`.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Frees every destroyed core whose buffers are all back (the retry of
/// `page_pool_release_retry`: run on each release into a destroyed pool,
/// each pool creation and each lcore flush, so a release that raced the
/// destroy is caught up later). The caller holds the `CORES` lock.
fn reclaim_destroyed(cores: &mut Vec<usize>) {
    cores.retain(|&c| {
        // SAFETY: a core in the list is allocated (see CORES).
        let core = unsafe { &*(c as *const Core) };
        // Relaxed: `dead` is set under the CORES lock this caller holds.
        if !core.dead.load(Relaxed) || core.stats().in_use != 0 {
            return true;
        }
        log::info!(
            "pool '{}': the last buffer out at destroy is back; its memory is freed",
            core.name
        );
        // SAFETY: the pool was destroyed (no Pool, so no allocation) and
        // every buffer is counted back, the counter update being the last
        // access of a release: nothing refers to the core any more. It
        // leaves the list (under the lock) as it is freed, once.
        drop(unsafe { Box::from_raw(c as *mut Core) });
        false
    });
}

/// Splits words that are no handle of the pool at hand into those in the
/// metadata range of another live pool and strays, without dereferencing
/// any word.
fn owners_of(words: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let cores = cores();
    words.iter().partition(|&&w| {
        cores.iter().any(|&c| {
            // SAFETY: a core in the list is allocated (see CORES).
            unsafe { &*(c as *const Core) }.is_handle(w)
        })
    })
}

/// Identity of a pool (stable while the pool lives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolId(pub(crate) usize);

/// What a pool's buffers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferKind {
    /// CPU-readable pages of DMA memory.
    Page,
    /// Device-memory chunks (no CPU access).
    NetIov,
}

/// A buffer still out when its pool was destroyed (or now, for
/// [`Pool::outstanding`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outstanding {
    pub index: u32,
    pub dma: u64,
    pub pp_ref: u32,
    pub ref_count: u32,
}

/// One lcore's cache: a LIFO stack of raw handles, stored inline (as
/// DPDK's `rte_mempool_cache`) so that reaching an entry takes no pointer
/// load; `cache_size` of the pool bounds `len`.
struct CacheStack {
    len: usize,
    objs: [MaybeUninit<usize>; MAX_CACHE_SIZE],
}

/// An lcore's counters and cache. `repr(C)` with the counters first: the
/// counters and `len` share the slot's first 128 bytes, the entries follow,
/// and the slot is `CachePadded` (128-byte aligned on x86-64), so two
/// lcores never write the same cache line or adjacent-line pair.
#[repr(C)]
struct LcoreSlot {
    stats: Counters,
    cache: UnsafeCell<CacheStack>,
    /// Under loom, a modelled cell touched on every use of the slot, so
    /// that the models see two threads using one lcore's cache unordered
    /// (the cache itself is plain memory loom cannot watch).
    #[cfg(loom)]
    owner: loom::cell::UnsafeCell<()>,
}

impl LcoreSlot {
    /// Records a use of the slot (loom only; nothing otherwise).
    #[inline(always)]
    fn witness(&self) {
        #[cfg(loom)]
        self.owner.with_mut(|_| ());
    }
}

/// Everything a pool owns. Allocated on its own so that it can outlive the
/// `Pool` value when buffers are still out at destroy (it is then leaked).
/// `repr(C)` with the fields the fast paths read first (one cache line,
/// read-only after construction).
#[repr(C)]
pub(crate) struct Core {
    lcores: Box<[CachePadded<LcoreSlot>]>,
    cache_size: usize,
    /// Handle of buffer 0 (metadata address | kind tag) and the mask of
    /// the offset bits that must be clear: the metadata array has a power
    /// of two of entries (`count` buffers, the rest padding that is never
    /// handed out), so a word `w` is an unshared handle of this pool iff
    /// `(w - handle_base) & handle_mask == 0` (wrapping subtraction).
    handle_base: usize,
    handle_mask: usize,
    count: usize,
    /// Per-buffer state tracking (double release detection, exact leak
    /// report) on.
    pub(crate) track: bool,
    /// Set (under the `CORES` lock) when the pool was destroyed with
    /// buffers out: every release then takes `put_after_destroy`, and the
    /// core is freed when the last buffer is back (as Linux's
    /// `page_pool_release_retry`).
    dead: AtomicBool,
    /// Seconds (since `EPOCH`) of the last "still out" warning of a
    /// destroyed pool (rate limit).
    warned_at: AtomicU64,
    pub(crate) name: String,
    tag: usize,
    pub(crate) buf_size: usize,
    pub(crate) cpu_base: *mut u8,
    pub(crate) iova_base: u64,
    metas: Box<[Meta]>,
    ring: Ring,
    shared: CachePadded<Counters>,
    warned_bad_ref: AtomicBool,
    warned_double: AtomicBool,
    warned_wrong: AtomicBool,
    /// Buffers taken from the provider at build.
    initial: usize,
    /// Where the buffers come from and go back to (slow paths only).
    provider: Arc<dyn MemoryProvider>,
}

// SAFETY: lcore caches are only touched by the thread holding that lcore id
// (ids are exclusive process-wide, see `lcore`); everything else is atomic
// or immutable after construction; `cpu_base` points into memory the core
// owns through `provider`.
unsafe impl Sync for Core {}
// SAFETY: as above; nothing in the core is tied to a thread.
unsafe impl Send for Core {}

/// A netmem pool over one provider. Share it as `Arc<Pool>`.
pub struct Pool {
    core: NonNull<Core>,
}

// SAFETY: the Pool is a pointer to a Sync + Send core.
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

impl Pool {
    /// A page pool over CPU-readable DMA memory (e.g. `hw::dma::DmaMemory`).
    /// Buffers of `cfg.buf_size` bytes are packed into each page of the
    /// region and never straddle two pages; the region is mapped once, by
    /// its provider ([`HostPages`]), for as long as the pool lives.
    pub fn with_pages(region: impl DmaRegion, cfg: &PoolConfig) -> Result<Arc<Pool>, PoolError> {
        Self::with_provider(Arc::new(HostPages::new(region)), cfg)
    }

    /// A net_iov pool over device memory (e.g. `hw::devmem::DeviceMemory`):
    /// the region is cut into `cfg.buf_size` chunks, chunk `i` at DMA
    /// address `iova + i * buf_size`. The CPU never touches them. (For
    /// device memory bound to RX queues, see [`crate::DevmemBinding`].)
    pub fn with_net_iovs(
        region: impl DeviceRegion,
        cfg: &PoolConfig,
    ) -> Result<Arc<Pool>, PoolError> {
        Self::with_provider(Arc::new(NetIovRegion::new(region)), cfg)
    }

    /// A pool over a memory provider: `provider.init` fixes the buffers'
    /// layout, `cfg.count` of them are taken from the provider now, and
    /// more (up to all the provider has) whenever the pool runs dry; a
    /// buffer given to [`Pool::release_to_provider`] goes back to it, and
    /// so does every buffer the pool holds when it is freed.
    pub fn with_provider(
        provider: Arc<dyn MemoryProvider>,
        cfg: &PoolConfig,
    ) -> Result<Arc<Pool>, PoolError> {
        cfg.validate()?;
        let layout = provider.init(cfg)?;
        if layout.count > crate::MAX_BUFFERS {
            provider.destroy();
            return Err(PoolError::TooManyBuffers {
                count: layout.count,
                max: crate::MAX_BUFFERS,
            });
        }
        Ok(Self::build(cfg, layout, provider))
    }

    /// A page pool over plain host memory with fake IOVAs (host tests and
    /// benchmarks: no device can reach it).
    pub fn with_host_memory(cfg: &PoolConfig) -> Result<Arc<Pool>, PoolError> {
        cfg.validate()?;
        if cfg.buf_size == 0 || cfg.buf_size > HOST_PAGE_SIZE {
            return Err(PoolError::BufSize {
                size: cfg.buf_size,
                page_size: HOST_PAGE_SIZE,
            });
        }
        let per_page = HOST_PAGE_SIZE / cfg.buf_size;
        let len = cfg.count.div_ceil(per_page) * HOST_PAGE_SIZE;
        Self::with_pages(HostMemory::new(len, HOST_PAGE_SIZE)?, cfg)
    }

    /// A net_iov pool over a fake device region (host tests).
    pub fn with_host_net_iovs(cfg: &PoolConfig) -> Result<Arc<Pool>, PoolError> {
        let len = cfg.count.saturating_mul(cfg.buf_size);
        Self::with_net_iovs(HostDeviceMemory::new(len), cfg)
    }

    fn build(
        cfg: &PoolConfig,
        layout: ProviderLayout,
        provider: Arc<dyn MemoryProvider>,
    ) -> Arc<Pool> {
        let tag = match layout.kind {
            BufferKind::Page => 0,
            BufferKind::NetIov => NET_IOV,
        };
        let (count, cpu_base, iova_base) = (layout.count, layout.cpu_base, layout.iova_base);
        let mut initial = Vec::new();
        provider.alloc_bulk(&mut initial, cfg.count.min(count));
        initial.retain(|&i| (i as usize) < count);
        let mut held = vec![false; count];
        for &i in &initial {
            held[i as usize] = true;
        }
        // A power of two of entries, so that ownership is one mask test
        // (`handle_mask`). The padding entries past `count` belong to no
        // buffer: retired, never in the ring or a cache.
        let slots = count.next_power_of_two();
        let metas: Box<[Meta]> = (0..slots)
            .map(|i| {
                let real = i < count;
                Meta {
                    pool: std::ptr::null(),
                    refs: AtomicU64::new(if held.get(i) == Some(&true) {
                        REFS_ONE
                    } else {
                        REFS_RETIRED
                    }),
                    dma: if real {
                        provider.dma_addr(i)
                    } else {
                        iova_base
                    },
                    index: i as u32,
                    state: AtomicU32::new(STATE_FREE),
                }
            })
            .collect();
        let lcores = (0..cfg.lcores)
            .map(|_| {
                CachePadded::new(LcoreSlot {
                    stats: Counters::default(),
                    cache: UnsafeCell::new(CacheStack {
                        len: 0,
                        objs: [MaybeUninit::uninit(); MAX_CACHE_SIZE],
                    }),
                    #[cfg(loom)]
                    owner: loom::cell::UnsafeCell::new(()),
                })
            })
            .collect();
        let core = Box::new(Core {
            name: cfg.name.clone(),
            tag,
            buf_size: layout.buf_size,
            count,
            initial: initial.len(),
            cpu_base,
            iova_base,
            handle_base: 0,
            handle_mask: !(slots * std::mem::size_of::<Meta>() - 1) | TAG_MASK,
            track: cfg.track_state,
            dead: AtomicBool::new(false),
            warned_at: AtomicU64::new(0),
            metas,
            cache_size: cfg.cache_size,
            lcores,
            ring: Ring::new(cfg.effective_ring_size().max(count.next_power_of_two())),
            shared: CachePadded::new(Counters::default()),
            warned_bad_ref: AtomicBool::new(false),
            warned_double: AtomicBool::new(false),
            warned_wrong: AtomicBool::new(false),
            provider,
        });
        let core = Box::into_raw(core);
        // SAFETY: `core` was just allocated and is not shared yet; set each
        // buffer's owner and put every handle in the ring (which has room
        // for all of them: validated ring size >= count).
        unsafe {
            let c = &mut *core;
            for m in c.metas.iter_mut() {
                m.pool = core;
            }
            c.handle_base = c.metas.as_ptr() as usize | tag;
            let raws: Vec<usize> = initial
                .iter()
                .map(|&i| &c.metas[i as usize] as *const Meta as usize | tag)
                .collect();
            let filled = c.ring.enqueue_bulk(&raws);
            debug_assert!(filled);
        }
        {
            let mut cores = cores();
            reclaim_destroyed(&mut cores);
            cores.push(core as usize);
        }
        log::debug!(
            "pool '{}': {} of {} {} buffers of {} bytes, cache {} x {} lcores, ring {}",
            cfg.name,
            initial.len(),
            count,
            if tag == NET_IOV { "net_iov" } else { "page" },
            layout.buf_size,
            cfg.cache_size,
            cfg.lcores,
            cfg.effective_ring_size().max(count.next_power_of_two())
        );
        Arc::new(Pool {
            // SAFETY: from Box::into_raw, never null.
            core: unsafe { NonNull::new_unchecked(core) },
        })
    }

    #[inline(always)]
    fn core(&self) -> &Core {
        // SAFETY: the core lives at least as long as the Pool.
        unsafe { self.core.as_ref() }
    }

    pub fn id(&self) -> PoolId {
        PoolId(self.core.as_ptr() as usize)
    }

    pub fn name(&self) -> &str {
        &self.core().name
    }

    pub fn kind(&self) -> BufferKind {
        if self.core().tag == NET_IOV {
            BufferKind::NetIov
        } else {
            BufferKind::Page
        }
    }

    pub fn buf_size(&self) -> usize {
        self.core().buf_size
    }

    pub fn count(&self) -> usize {
        self.core().count
    }

    /// Buffers each lcore cache holds at most (the configured size).
    pub fn cache_size(&self) -> usize {
        self.core().cache_size
    }

    /// One buffer, or `None` if the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Netmem> {
        let mut raw = [MaybeUninit::uninit()];
        if self.core().get(&mut raw) {
            // SAFETY: a successful get initialised the slot with a handle
            // whose pool reference we now own.
            Some(unsafe { Netmem::from_owned_raw(raw[0].assume_init()) })
        } else {
            None
        }
    }

    /// Appends exactly `n` buffers to `out` and returns `n`, or appends
    /// nothing and returns 0 if the pool cannot supply all of them (as
    /// DPDK's `rte_mempool_get_bulk`).
    #[inline]
    pub fn alloc_bulk(&self, out: &mut Vec<Netmem>, n: usize) -> usize {
        out.reserve(n);
        let len = out.len();
        // SAFETY: after `reserve(n)` the `n` slots past `len` are allocated
        // (uninitialised); Netmem is repr(transparent) over a usize-sized
        // integer, so they can be written as `MaybeUninit<usize>`.
        let slots = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().add(len) as *mut MaybeUninit<usize>, n)
        };
        if !self.core().get(slots) {
            return 0;
        }
        // SAFETY: get initialised all n slots with owned, non-zero handles.
        unsafe { out.set_len(len + n) };
        n
    }

    /// The calling thread's lcore cache in this pool, looked up once (as
    /// DPDK's `rte_mempool_default_cache` with `rte_mempool_generic_get`
    /// and `_put`): its calls skip the per-call lcore lookup. `None` when
    /// the thread has no lcore id or the pool no cache for it. While the
    /// handle lives, the thread's lcore id stays bound (see
    /// [`lcore::set_current`]).
    pub fn lcore_cache(&self) -> Option<LcoreCache<'_>> {
        let core = self.core();
        let slot = core.my_slot()?;
        let pin = lcore::Pin::new()?;
        Some(LcoreCache {
            pool: self,
            slot,
            // With tracking every buffer's state changes on its way: no
            // fast path (a limit of 0 and a mask of 0 turn both off).
            size: if core.track { 0 } else { core.cache_size },
            have_mask: if core.track { 0 } else { usize::MAX },
            handle_base: core.handle_base,
            handle_mask: core.handle_mask,
            _pin: pin,
        })
    }

    /// Releases one buffer to this pool (the mirror of [`Pool::alloc`], as
    /// DPDK's `rte_mempool_put`): an unshared handle of this pool goes
    /// straight into the lcore cache without its metadata being read; any
    /// other handle is released as [`Pool::free_bulk`] releases it (a
    /// buffer of another pool is reported and goes to its own pool).
    #[inline]
    pub fn free(&self, nm: Netmem) {
        let core = self.core();
        let raw = nm.into_word();
        if core.owns_unshared(raw) {
            core.put_unshared(&[raw]);
        } else {
            core.free_other(raw);
        }
    }

    /// Releases buffers, checking that each belongs to this pool. A buffer
    /// of another pool is reported (warning once, `wrong_pool` counter) and
    /// released into its own pool.
    pub fn free_bulk(&self, items: impl IntoIterator<Item = Netmem>) {
        let mut it = items.into_iter().peekable();
        while it.peek().is_some() {
            self.core().free_iter(&mut it, Some(self.core()));
        }
    }

    /// Releases the last `n` handles of `from` (all of them if it holds
    /// fewer), as `free_bulk` does, but without iterating handle by handle
    /// when all are unshared handles of this pool: one vectorisable check
    /// and a copy of words into the lcore cache (the mirror of
    /// [`Pool::alloc_bulk`]).
    #[inline]
    pub fn free_bulk_from(&self, from: &mut Vec<Netmem>, n: usize) {
        let len = from.len();
        let start = len - n.min(len);
        let tail = &from[start..];
        // SAFETY: Netmem is repr(transparent) over a usize-sized word.
        let raws = unsafe { std::slice::from_raw_parts(tail.as_ptr() as *const usize, tail.len()) };
        if self.core().owns_all_unshared(raws) {
            self.core().put_unshared(raws);
            // SAFETY: the handles' ownership moved to the pool above; the
            // vector forgets them without dropping.
            unsafe { from.set_len(start) };
        } else {
            self.free_bulk(from.drain(start..));
        }
    }

    /// Releases handles kept as raw words (e.g. a TX ring's software
    /// shadow), with the checks of [`Pool::free_bulk`] (a handle of another
    /// live pool is reported and released into its own pool).
    ///
    /// Every word is checked against the metadata range of this pool (then
    /// of the other live pools) before any memory is touched: a word that
    /// is no buffer handle is refused, never dereferenced, and so is (in
    /// debug builds with state tracking) a word taken back twice. The valid
    /// words are released either way; the error names the first refused.
    ///
    /// # Safety
    /// Each word must come from [`Netmem::into_raw`] and be released only
    /// once (here or through `Netmem::from_raw`); ownership moves to the
    /// pool. (The checks above catch some violations; see the `netmem`
    /// docs for which, per build.)
    pub unsafe fn free_raw_bulk(&self, raws: &[usize]) -> Result<(), PoolError> {
        let core = self.core();
        if !(RAW_CHECKS && core.track) && core.holds_all_unshared(raws) {
            core.put_unshared(raws);
            return Ok(());
        }
        let mut first_err = None;
        let mut foreign = Vec::new();
        for &raw in raws {
            let refused = if core.is_handle(raw) {
                if raw & POISON != 0 {
                    // A poisoned word was reported when it was found.
                    None
                } else if RAW_CHECKS && core.track && !core.take_back_raw(raw) {
                    core.report_double_release(raw & !SHARED);
                    // SAFETY: `raw` is in this pool's metadata range.
                    let index = unsafe { meta::meta(raw) }.index;
                    Some(PoolError::DoubleFree {
                        pool: core.name.clone(),
                        index,
                    })
                } else {
                    netmem::release(raw);
                    None
                }
            } else {
                foreign.push(raw);
                None
            };
            if first_err.is_none() {
                first_err = refused;
            }
        }
        if !foreign.is_empty() {
            let (owned, strays) = owners_of(&foreign);
            for raw in owned {
                // SAFETY: `raw` is in the metadata range of a live pool
                // (checked under the registry lock); by the caller's
                // contract it carries a reference, which keeps it alive.
                let m = unsafe { meta::meta(raw) };
                // SAFETY: as above.
                let owner = unsafe { meta::core(raw) };
                if RAW_CHECKS && owner.track && raw & POISON == 0 && !owner.take_back_raw(raw) {
                    owner.report_double_release(raw & !SHARED);
                    if first_err.is_none() {
                        first_err = Some(PoolError::DoubleFree {
                            pool: owner.name.clone(),
                            index: m.index,
                        });
                    }
                    continue;
                }
                core.report_wrong_pool(raw);
            }
            if let Some(&word) = strays.first() {
                core.count(Stat::NotAHandle, strays.len() as u64);
                log::error!(
                    "pool '{}': free_raw_bulk got {} words that are no buffer handle (first {:#x}); refused",
                    core.name,
                    strays.len(),
                    word
                );
                if first_err.is_none() {
                    first_err = Some(PoolError::NotAHandle {
                        pool: core.name.clone(),
                        word,
                    });
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Gives a buffer back to its provider (`release_netmem`, as page_pool
    /// returns pages when it shrinks or is destroyed): it leaves this pool
    /// and joins the provider's free list, from which this pool, or another
    /// over the same provider, takes it again when its ring runs dry. The
    /// handle must hold the
    /// buffer's only reference: a buffer still referenced elsewhere (e.g. a
    /// net_iov whose pp_ref is not 1) is reported (a warning once per pool,
    /// the `release_bad_ref` counter) and NOT freed: it stays out of
    /// circulation and shows in the leak report.
    pub fn release_to_provider(&self, nm: Netmem) -> Result<(), PoolError> {
        let core = self.core();
        if nm.pool_id() != self.id() {
            let err = PoolError::WrongPool {
                pool: core.name.clone(),
                owner: nm.pool_name().to_string(),
                index: nm.index(),
            };
            core.report_wrong_pool(nm.into_word());
            return Err(err);
        }
        let raw = nm.into_word() & !SHARED;
        // SAFETY: we owned a reference to this buffer of this live pool.
        let m = unsafe { meta::meta(raw) };
        match m
            .refs
            .compare_exchange(REFS_ONE, REFS_RETIRED, AcqRel, Acquire)
        {
            Ok(_) => {
                if core.track {
                    m.state.store(STATE_FREE, Relaxed);
                }
                core.count(Stat::ReleasedToProvider, 1);
                // Back in the provider's free list: this pool (or another
                // over the same provider) takes it again when it runs dry.
                core.provider.release(m.index);
                Ok(())
            }
            Err(cur) => {
                m.state.store(STATE_KEPT, Relaxed);
                core.count(Stat::ReleaseBadRef, 1);
                let (pp, full) = (meta::pp_of(cur), meta::full_of(cur));
                if !core.warned_bad_ref.swap(true, Relaxed) {
                    log::warn!(
                        "pool '{}': {} #{} released to its provider with pp_ref {} (ref {}); \
                         not freed (further cases are only counted)",
                        core.name,
                        if raw & NET_IOV != 0 {
                            "net_iov"
                        } else {
                            "page"
                        },
                        m.index,
                        pp,
                        full
                    );
                }
                Err(PoolError::ReleasedWhileReferenced {
                    pool: core.name.clone(),
                    index: m.index,
                    pp_ref: pp,
                    full_ref: full,
                })
            }
        }
    }

    /// Moves every buffer of the calling lcore's cache to the shared ring
    /// (as `rte_mempool_cache_flush`). The end of an lcore claim (thread
    /// exit, `lcore::clear_current`, binding another id) does this for
    /// every pool, so calling it is only needed to hand the cache back
    /// earlier.
    pub fn flush_cache(&self) {
        self.core().flush_slot(lcore::current_raw());
    }

    /// Buffers currently out of the pool.
    pub fn in_use(&self) -> usize {
        self.core().stats().in_use as usize
    }

    pub fn stats(&self) -> PoolStats {
        self.core().stats()
    }

    /// Buffers not in the pool (allocated, or kept out after a bad release).
    pub fn outstanding(&self) -> Vec<Outstanding> {
        self.core().outstanding()
    }
}

/// One lcore's cache of one pool, from [`Pool::lcore_cache`]: the same
/// calls as the pool's, without looking the calling thread's lcore up on
/// each. Not `Send`: it belongs to the thread whose lcore it caches for.
pub struct LcoreCache<'a> {
    pool: &'a Pool,
    slot: &'a LcoreSlot,
    /// What the fast paths read, copied out of the core once (it is
    /// immutable while the pool lives).
    /// The cache size, 0 with tracking (`free_bulk_from`'s fast path
    /// then never applies).
    size: usize,
    /// ANDed with the cache's length in `alloc_bulk`'s fast path: all ones,
    /// 0 with tracking (the fast path then never applies).
    have_mask: usize,
    handle_base: usize,
    handle_mask: usize,
    _pin: lcore::Pin,
}

impl LcoreCache<'_> {
    /// As [`Pool::alloc`].
    #[inline]
    pub fn alloc(&mut self) -> Option<Netmem> {
        let mut raw = [MaybeUninit::uninit()];
        if self.pool.core().get_in(self.slot, &mut raw) {
            // SAFETY: a successful get initialised the slot with a handle
            // whose pool reference we now own.
            Some(unsafe { Netmem::from_owned_raw(raw[0].assume_init()) })
        } else {
            None
        }
    }

    /// The lcore's cache.
    #[inline(always)]
    fn stack(&mut self) -> &mut CacheStack {
        // SAFETY: only the thread holding this lcore id reaches its slot,
        // the handle pins the id to this thread (it is not Send), and the
        // borrow ends before any other path touches the cache.
        unsafe { &mut *self.slot.cache.get() }
    }

    /// As [`Pool::alloc_bulk`]: exactly `n` buffers appended, or none.
    #[inline]
    pub fn alloc_bulk(&mut self, out: &mut Vec<Netmem>, n: usize) -> usize {
        out.reserve(n);
        let len = out.len();
        let have_mask = self.have_mask;
        let cache = self.stack();
        let have = cache.len;
        if n <= have & have_mask {
            let start = have - n;
            // SAFETY: `start..have` is initialised cache; after `reserve(n)`
            // the `n` slots past `len` are allocated; the two do not
            // overlap.
            unsafe {
                copy_words_from_cache(
                    out.as_mut_ptr().add(len) as *mut usize,
                    cache.objs.as_ptr().add(start) as *const usize,
                    n,
                )
            };
            cache.len = start;
            self.slot.stats.add_local(Stat::AllocFast, n as u64);
            // SAFETY: the n slots now hold owned, non-zero handles.
            unsafe { out.set_len(len + n) };
            return n;
        }
        // SAFETY: as in `Pool::alloc_bulk`.
        let slots = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().add(len) as *mut MaybeUninit<usize>, n)
        };
        if !self.pool.core().get_in(self.slot, slots) {
            return 0;
        }
        // SAFETY: get initialised all n slots with owned, non-zero handles.
        unsafe { out.set_len(len + n) };
        n
    }

    /// As [`Pool::free`].
    #[inline]
    pub fn free(&mut self, nm: Netmem) {
        let core = self.pool.core();
        let raw = nm.into_word();
        if core.owns_unshared(raw) {
            core.put_unshared_in(self.slot, &[raw]);
        } else {
            core.free_other(raw);
        }
    }

    /// As [`Pool::free_bulk_from`]. The ownership check and the copy into
    /// the cache are one pass: the words are copied past the cache's top,
    /// and kept only if every one is an unshared handle of this pool.
    #[inline]
    pub fn free_bulk_from(&mut self, from: &mut Vec<Netmem>, n: usize) {
        let len = from.len();
        let start = len - n.min(len);
        let k = len - start;
        let (size, base, mask) = (self.size, self.handle_base, self.handle_mask);
        let cache = self.stack();
        let top = cache.len;
        if top + k <= size {
            // SAFETY: `start..len` are initialised handles of the vector
            // (Netmem is a repr(transparent) word); `top + k <= size`,
            // within the cache; the two do not overlap.
            let bad = unsafe {
                copy_words_offsets(
                    (cache.objs.as_mut_ptr() as *mut usize).add(top),
                    (from.as_ptr() as *const usize).add(start),
                    k,
                    base,
                )
            };
            if bad & mask == 0 {
                cache.len = top + k;
                self.slot.stats.add_local(Stat::RecycleCached, k as u64);
                // SAFETY: the handles' ownership moved to the cache.
                unsafe { from.set_len(start) };
                return;
            }
        }
        let core = self.pool.core();
        let tail = &from[start..];
        // SAFETY: Netmem is repr(transparent) over a usize-sized word.
        let raws = unsafe { std::slice::from_raw_parts(tail.as_ptr() as *const usize, tail.len()) };
        if core.owns_all_unshared(raws) {
            core.put_unshared_in(self.slot, raws);
            // SAFETY: the handles' ownership moved to the pool above.
            unsafe { from.set_len(start) };
        } else {
            self.pool.free_bulk(from.drain(start..));
        }
    }
}

impl Drop for Pool {
    /// Destroys the pool. With every buffer back its memory is freed now;
    /// otherwise it is freed when the last buffer comes back (as Linux's
    /// `page_pool_release_retry`), and until then the buffers out stay
    /// valid, and a warning at most once a minute names them.
    fn drop(&mut self) {
        if crate::sync::model_failed() {
            return;
        }
        let core = self.core();
        let mut cores = cores();
        // From here every release takes the locked path (which may free
        // the core); a release that read the flag just before is counted
        // by the time it ends, and the next reclaim catches it up.
        // Relaxed: the reclaim reads it under the same lock; a release's
        // unlocked read needs no order (either path counts the buffer in).
        core.dead.store(true, Relaxed);
        let in_use = core.stats().in_use;
        if in_use == 0 {
            reclaim_destroyed(&mut cores);
            return;
        }
        log::error!(
            "pool '{}' destroyed with {} buffers still in use; its memory is freed when the last comes back",
            core.name,
            in_use,
        );
        // Under the lock: a release that brings the last buffer back frees
        // the core, and waits for this.
        core.warn_still_out();
        drop(cores);
    }
}

impl Drop for Core {
    /// Every buffer the pool still holds (in its ring and caches: the core
    /// is freed only with none out) goes back to the provider, then the
    /// provider learns the pool is gone.
    fn drop(&mut self) {
        for m in &self.metas[..self.count] {
            if m.refs.load(Acquire) != REFS_RETIRED
                && m.state.load(Relaxed) & STATE_KIND != STATE_KEPT
            {
                self.provider.release(m.index);
            }
        }
        self.provider.destroy();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("count", &self.count())
            .field("buf_size", &self.buf_size())
            .finish()
    }
}

/// Releases buffers of any pools, in batches per pool.
pub fn free_bulk(items: impl IntoIterator<Item = Netmem>) {
    let mut it = items.into_iter().peekable();
    while let Some(first) = it.peek() {
        // SAFETY: `first` is a live handle, so its core is alive.
        let core = unsafe { meta::core(first.raw_word()) };
        core.free_iter(&mut it, None);
    }
}

/// Releases the buffers held in `slots` (of any pools) and empties every
/// slot: a TX ring's completed batch, straight from its shadow.
///
/// When every slot holds an unshared handle of one pool (the first slot's)
/// and the calling lcore's cache in that pool has room, the words are
/// copied into the cache and checked in the same pass (a subtraction and
/// an OR per word, no branch, no metadata read: the check of
/// [`Pool::free_bulk_from`]), then the slots are zeroed (a full cache moves
/// its top half to the pool's ring first). Anything else (an empty slot, a
/// buffer of another pool, a shared handle, no lcore id, more slots than
/// the cache holds, state tracking, a destroyed pool) takes [`free_bulk`]'s
/// path, buffer by buffer where needed.
#[inline]
pub fn free_slots(slots: &mut [Option<Netmem>]) {
    if let Some(Some(first)) = slots.first() {
        // SAFETY: `first` is a live handle, so its core is alive.
        let core = unsafe { meta::core(first.raw_word()) };
        if core.take_slots(slots) {
            return;
        }
    }
    free_bulk(slots.iter_mut().filter_map(Option::take));
}

impl Netmem {
    /// Gives the word to the pool's own release paths: ownership moves with
    /// it, and it is not counted as a raw word given out (the debug checks
    /// count only words that leave through [`Netmem::into_raw`]).
    #[inline(always)]
    fn into_word(self) -> usize {
        let raw = self.raw_word();
        std::mem::forget(self);
        raw
    }

    /// The word, without giving up ownership.
    #[inline(always)]
    fn raw_word(&self) -> usize {
        // SAFETY: Netmem is repr(transparent) over a usize-sized word.
        unsafe { std::mem::transmute_copy::<Netmem, usize>(self) }
    }
}

impl Core {
    /// Whether `raw` is an unshared handle of this pool (no memory access).
    #[inline(always)]
    fn owns_unshared(&self, raw: usize) -> bool {
        raw.wrapping_sub(self.handle_base) & self.handle_mask == 0
    }

    /// Whether `raw` is a handle of this pool, of any tag (shared,
    /// poisoned): in the metadata range, aligned to an entry, and one of
    /// the `count` buffers (not padding). No memory access.
    #[inline]
    pub(crate) fn is_handle(&self, raw: usize) -> bool {
        let off = (raw & !(SHARED | POISON)).wrapping_sub(self.handle_base);
        off.is_multiple_of(META_SIZE) && off / META_SIZE < self.count
    }

    /// Whether every word is an unshared handle of one of this pool's
    /// `count` buffers (exact, unlike `owns_all_unshared`, which lets
    /// padding entries through and is only for words known to be handles).
    #[inline]
    fn holds_all_unshared(&self, raws: &[usize]) -> bool {
        let base = self.handle_base;
        let (bad, max) = raws.iter().fold((0usize, 0usize), |(bad, max), &raw| {
            let off = raw.wrapping_sub(base);
            (bad | off, max.max(off))
        });
        bad & TAG_MASK == 0 && (raws.is_empty() || max / META_SIZE < self.count)
    }

    /// Debug raw-word accounting: `raw` was given out by `into_raw`.
    pub(crate) fn give_raw(&self, raw: usize) {
        if self.track {
            // SAFETY: a live handle of this pool.
            unsafe { meta::meta(raw) }.state.fetch_add(1, Relaxed);
        }
    }

    /// Debug raw-word accounting: takes back one of the buffer's raw words;
    /// false (nothing changed) if it has none out or is in the pool, i.e.
    /// the word was already taken back: a double free. Always true without
    /// tracking.
    pub(crate) fn take_back_raw(&self, raw: usize) -> bool {
        if !self.track {
            return true;
        }
        // SAFETY: a handle of this live pool (caller's contract).
        let state = &unsafe { meta::meta(raw) }.state;
        let mut cur = state.load(Relaxed);
        loop {
            if cur & STATE_KIND != STATE_OUT || cur & STATE_RAW == 0 {
                return false;
            }
            match state.compare_exchange_weak(cur, cur - 1, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// `free_slots`' fast path: moves the handles of `slots` into the
    /// calling lcore's cache and zeroes the slots, when all of them are
    /// unshared handles of this pool and the cache can hold them (a full
    /// cache moves its top half to the ring first, as `put_slow` does);
    /// false otherwise (no slot changed: the words copied past the cache's
    /// top are not counted in). Words known to be handles (the slots hold `Netmem`s), so
    /// the unshared-ownership test of `owns_unshared` is exact for them; an
    /// empty slot (0) fails it (no user-space address minus 0 lies within
    /// the metadata array).
    #[inline(always)]
    fn take_slots(&self, slots: &mut [Option<Netmem>]) -> bool {
        let n = slots.len();
        if self.track || self.dead.load(Relaxed) {
            return false;
        }
        let Some(slot) = self.my_slot() else {
            return false;
        };
        // SAFETY: only the thread holding this lcore id reaches its slot,
        // and nothing below re-enters the cache.
        let cache = unsafe { &mut *slot.cache.get() };
        if n > self.cache_size - cache.len {
            if n > self.cache_size {
                return false;
            }
            // As `put_slow` does: the top of the cache to the ring first.
            self.flush(cache, n, &slot.stats);
        }
        let top = cache.len;
        // SAFETY: `Option<Netmem>` is one word with `None` as 0 (Netmem is
        // a repr(transparent) NonZeroUsize; sizes asserted in `netmem`), so
        // the slots are `n` readable words; `top + n <= cache_size`, within
        // the cache; the slots are not part of the cache.
        let bad = unsafe {
            copy_words_offsets(
                (cache.objs.as_mut_ptr() as *mut usize).add(top),
                slots.as_ptr() as *const usize,
                n,
                self.handle_base,
            )
        };
        if bad & self.handle_mask != 0 {
            return false;
        }
        cache.len = top + n;
        slot.stats.add_local(Stat::RecycleCached, n as u64);
        // SAFETY: every handle's ownership moved to the cache above; the
        // slots are overwritten with all-zero words, which are `None`,
        // without dropping the values moved out.
        unsafe { std::ptr::write_bytes(slots.as_mut_ptr(), 0, n) };
        true
    }

    /// Whether every word is an unshared handle of this pool: no memory
    /// access and no branch per word (a subtraction, an AND and an OR,
    /// which vectorise).
    #[inline(always)]
    fn owns_all_unshared(&self, raws: &[usize]) -> bool {
        let (base, mask) = (self.handle_base, self.handle_mask);
        raws.iter()
            .fold(0usize, |bad, &raw| bad | raw.wrapping_sub(base))
            & mask
            == 0
    }

    /// Releases up to `FREE_BATCH` handles from `it`: unshared handles of
    /// this pool are gathered and put in one go (a copy of words); any
    /// other handle takes the per-buffer path, and is reported as a wrong
    /// pool first when `expected` (the pool the caller named) is not its
    /// owner.
    #[inline(always)]
    fn free_iter<I: Iterator<Item = Netmem>>(
        &self,
        it: &mut std::iter::Peekable<I>,
        expected: Option<&Core>,
    ) {
        let mut batch = [0usize; FREE_BATCH];
        let mut n = 0;
        let mut foreign = false;
        for slot in batch.iter_mut() {
            let Some(nm) = it.next() else { break };
            let raw = nm.into_word();
            *slot = raw;
            n += 1;
            foreign |= !self.owns_unshared(raw);
        }
        if !foreign {
            self.put_unshared(&batch[..n]);
            return;
        }
        for &raw in &batch[..n] {
            if self.owns_unshared(raw) {
                self.put_unshared(&[raw]);
                continue;
            }
            // SAFETY: `raw` carried an owned reference: its core is alive.
            let owner = unsafe { meta::core(raw) };
            if let Some(e) = expected
                && !std::ptr::eq(owner, e)
            {
                e.report_wrong_pool(raw);
                continue;
            }
            netmem::release(raw);
        }
    }

    /// Releases an owned handle given to this pool that is not one of its
    /// unshared handles: a shared reference of this pool is dropped, a
    /// buffer of another pool reported and released into its own pool.
    #[cold]
    fn free_other(&self, raw: usize) {
        // SAFETY: `raw` carried an owned reference: its core is alive.
        let owner = unsafe { meta::core(raw) };
        if std::ptr::eq(owner, self) {
            netmem::release(raw);
        } else {
            self.report_wrong_pool(raw);
        }
    }

    /// Moves every buffer of lcore `id`'s cache to the ring. Only the
    /// thread holding the claim on `id` may call it.
    fn flush_slot(&self, id: usize) {
        let Some(slot) = self.lcores.get(id) else {
            return;
        };
        slot.witness();
        // SAFETY: the caller holds lcore `id`, so no other thread touches
        // its slot, and nothing here re-enters the cache.
        let cache = unsafe { &mut *slot.cache.get() };
        let objs = &cache.objs[..cache.len];
        // SAFETY: entries below `len` are initialised handles.
        let objs: &[usize] =
            unsafe { std::slice::from_raw_parts(objs.as_ptr() as *const usize, objs.len()) };
        if objs.is_empty() {
            return;
        }
        if self.ring.enqueue_bulk(objs) {
            slot.stats
                .add_local(Stat::RecycleCacheFull, objs.len() as u64);
        } else {
            self.lost_ring_full(objs.len());
            slot.stats
                .add_local(Stat::RecycleRingFull, objs.len() as u64);
        }
        cache.len = 0;
    }

    /// The calling thread's lcore slot in this pool, if it has one.
    #[inline(always)]
    fn my_slot(&self) -> Option<&LcoreSlot> {
        let slot = self.lcores.get(lcore::current_raw()).map(|s| &**s);
        if let Some(s) = slot {
            s.witness();
        }
        slot
    }

    /// Counts on the caller's lcore set, or the shared set.
    #[inline(always)]
    fn count(&self, s: Stat, v: u64) {
        match self.my_slot() {
            Some(slot) => slot.stats.add_local(s, v),
            None => self.shared.add_shared(s, v),
        }
    }

    /// Fills all of `dst` with handles (each now owning one pool
    /// reference), or nothing.
    #[inline(always)]
    fn get(&self, dst: &mut [MaybeUninit<usize>]) -> bool {
        match self.my_slot() {
            Some(slot) => self.get_in(slot, dst),
            None => self.get_slow(dst),
        }
    }

    /// `get` with the caller's lcore slot already looked up.
    #[inline(always)]
    fn get_in(&self, slot: &LcoreSlot, dst: &mut [MaybeUninit<usize>]) -> bool {
        let n = dst.len();
        {
            // SAFETY: only the thread holding this lcore id reaches its
            // slot (a `LcoreCache` pins the id), and nothing here re-enters
            // the cache.
            let cache = unsafe { &mut *slot.cache.get() };
            let len = cache.len;
            if n <= len {
                let start = len - n;
                // SAFETY: `start..len` is within the cache (len <= its
                // size) and initialised; `dst` has room for `n` words and
                // is not part of the cache.
                unsafe {
                    copy_words_from_cache(
                        dst.as_mut_ptr() as *mut usize,
                        cache.objs.as_ptr().add(start) as *const usize,
                        n,
                    )
                };
                cache.len = start;
                slot.stats.add_local(Stat::AllocFast, n as u64);
                if self.track {
                    self.mark_out(dst);
                }
                return true;
            }
        }
        if self.cache_size == 0 {
            return self.get_ring_in(slot, dst);
        }
        self.get_slow(dst)
    }

    /// A pool without a cache: straight from the ring, counted on the
    /// lcore's set (what `get_slow` does for a request larger than the
    /// cache, without its second lcore lookup and dispatch).
    #[inline(always)]
    fn get_ring_in(&self, slot: &LcoreSlot, dst: &mut [MaybeUninit<usize>]) -> bool {
        if !self.dequeue_or_acquire(dst) {
            slot.stats.add_local(Stat::AllocEmpty, 1);
            return false;
        }
        slot.stats.add_local(Stat::AllocSlow, dst.len() as u64);
        if self.track {
            self.mark_out(dst);
        }
        true
    }

    /// Records each buffer of a filled `dst` as handed out (tracking).
    #[inline]
    fn mark_out(&self, dst: &[MaybeUninit<usize>]) {
        for d in dst {
            // SAFETY: filled with handles of this pool by the caller.
            let raw = unsafe { d.assume_init() };
            // SAFETY: a handle of this live pool.
            unsafe { meta::meta(raw) }.state.store(STATE_OUT, Relaxed);
        }
    }

    #[inline(never)]
    fn get_slow(&self, dst: &mut [MaybeUninit<usize>]) -> bool {
        let n = dst.len();
        if n == 0 {
            return true;
        }
        let slot = self.my_slot();
        let ok = match slot {
            Some(slot) if n <= self.cache_size => {
                // SAFETY: only the thread holding this lcore id reaches its
                // slot, and nothing below re-enters the cache.
                let cache = unsafe { &mut *slot.cache.get() };
                if cache.len < n && !self.refill(cache, n, &slot.stats) {
                    slot.stats.add_local(Stat::AllocEmpty, 1);
                    return false;
                }
                let start = cache.len - n;
                dst.copy_from_slice(&cache.objs[start..cache.len]);
                cache.len = start;
                slot.stats.add_local(Stat::AllocFast, n as u64);
                true
            }
            Some(slot) => {
                // Larger than the cache: what the cache holds first (the
                // most recently used buffers), the rest from the ring; the
                // cache is taken from only once the ring delivered.
                // SAFETY: only the thread holding this lcore id reaches its
                // slot, and nothing below re-enters the cache.
                let cache = unsafe { &mut *slot.cache.get() };
                let k = cache.len.min(n);
                if !self.dequeue_or_acquire(&mut dst[k..]) {
                    slot.stats.add_local(Stat::AllocEmpty, 1);
                    return false;
                }
                if k > 0 {
                    let start = cache.len - k;
                    // SAFETY: `start..len` is within the cache and
                    // initialised; `dst` has room for `k <= n` words and is
                    // not part of the cache.
                    unsafe {
                        copy_words_from_cache(
                            dst.as_mut_ptr() as *mut usize,
                            cache.objs.as_ptr().add(start) as *const usize,
                            k,
                        )
                    };
                    cache.len = start;
                    slot.stats.add_local(Stat::AllocFast, k as u64);
                }
                slot.stats.add_local(Stat::AllocSlow, (n - k) as u64);
                true
            }
            None => {
                let ok = self.dequeue_or_acquire(dst);
                let (s, v) = if ok {
                    (Stat::AllocSlow, n as u64)
                } else {
                    (Stat::AllocEmpty, 1)
                };
                self.shared.add_shared(s, v);
                ok
            }
        };
        if ok && self.track {
            self.mark_out(dst);
        }
        ok
    }

    /// Fills `dst` from the ring; when the ring cannot, takes buffers from
    /// the provider first (the slow path's `alloc_netmems`).
    #[inline(always)]
    fn dequeue_or_acquire(&self, dst: &mut [MaybeUninit<usize>]) -> bool {
        self.ring.dequeue_bulk(dst) || self.acquire_and_dequeue(dst)
    }

    /// Takes at least `dst.len()` (and at least `ACQUIRE_BATCH`) buffers
    /// from the provider into the ring, then fills `dst` from it.
    #[cold]
    #[inline(never)]
    fn acquire_and_dequeue(&self, dst: &mut [MaybeUninit<usize>]) -> bool {
        let mut idx = Vec::new();
        if self
            .provider
            .alloc_bulk(&mut idx, dst.len().max(ACQUIRE_BATCH))
            == 0
        {
            return false;
        }
        let raws: Vec<usize> = idx
            .iter()
            .filter_map(|&i| {
                let Some(m) = self.metas[..self.count].get(i as usize) else {
                    log::error!(
                        "pool '{}': its provider handed out buffer #{i}, past its {} buffers; ignored",
                        self.name,
                        self.count
                    );
                    return None;
                };
                // The buffer was retired (with the provider): this pool
                // is its only holder now.
                m.state.store(STATE_FREE, Relaxed);
                m.refs.store(REFS_ONE, Release);
                Some(m as *const Meta as usize | self.tag)
            })
            .collect();
        self.count(Stat::AcquiredFromProvider, raws.len() as u64);
        if !self.ring.enqueue_bulk(&raws) {
            // The ring holds every buffer of the provider: cannot happen.
            self.lost_ring_full(raws.len());
            return false;
        }
        self.ring.dequeue_bulk(dst)
    }

    /// Brings the cache to at least `n` entries from the ring, aiming at
    /// half the cache size above `n`.
    #[cold]
    fn refill(&self, cache: &mut CacheStack, n: usize, stats: &Counters) -> bool {
        let size = self.cache_size;
        let target = (size / 2 + n).min(size);
        let want = target - cache.len;
        let got = if self.ring.dequeue_bulk(&mut cache.objs[cache.len..target]) {
            want
        } else {
            let need = n - cache.len;
            if !self.dequeue_or_acquire(&mut cache.objs[cache.len..n]) {
                return false;
            }
            need
        };
        cache.len += got;
        stats.add_local(Stat::AllocRefill, 1);
        true
    }

    /// Takes back unshared handles of this pool (refs at `REFS_ONE`).
    #[inline(always)]
    pub(crate) fn put_unshared(&self, raws: &[usize]) {
        if self.dead.load(Relaxed) {
            self.put_after_destroy(raws);
            return;
        }
        if self.track {
            self.put_tracked(raws);
        } else {
            self.put(raws);
        }
    }

    /// Tracking: checks that every buffer is out (one pass, no branch per
    /// buffer), flips them to free and puts them; a burst with a buffer
    /// the pool already holds takes the filtering path.
    #[inline]
    fn put_tracked(&self, raws: &[usize]) {
        let bad = raws.iter().fold(0u32, |bad, &raw| {
            // SAFETY: unshared handles of this live pool.
            bad | (unsafe { meta::meta(raw) }.state.load(Relaxed) ^ STATE_OUT)
        });
        if bad != 0 {
            self.put_tracked_filtering(raws);
            return;
        }
        for &raw in raws {
            // SAFETY: as above.
            unsafe { meta::meta(raw) }.state.store(STATE_FREE, Relaxed);
        }
        self.put(raws);
    }

    /// Checks and flips each buffer's state; releasing a buffer the pool
    /// already holds is reported and skipped.
    #[cold]
    fn put_tracked_filtering(&self, raws: &[usize]) {
        let mut ok = [0usize; FREE_BATCH];
        for chunk in raws.chunks(FREE_BATCH) {
            let mut n = 0;
            for &raw in chunk {
                // SAFETY: handles of this live pool.
                let m = unsafe { meta::meta(raw) };
                // Load and store, not swap: a locked exchange per buffer
                // would cost more than the rest of the release. Sequential
                // double releases (the only kind safe code can reach,
                // through from_raw misuse) are caught either way.
                if m.state.load(Relaxed) == STATE_OUT {
                    m.state.store(STATE_FREE, Relaxed);
                    ok[n] = raw;
                    n += 1;
                } else {
                    self.report_double_release(raw);
                }
            }
            self.put(&ok[..n]);
        }
    }

    #[inline(always)]
    fn put(&self, raws: &[usize]) {
        match self.my_slot() {
            Some(slot) => self.put_in(slot, raws),
            None => self.put_slow(raws),
        }
    }

    /// `put_unshared` from a `LcoreCache`: the pool is alive (the handle
    /// borrows it), so only tracking can divert the release.
    #[inline(always)]
    fn put_unshared_in(&self, slot: &LcoreSlot, raws: &[usize]) {
        if self.track {
            self.put_tracked(raws);
        } else {
            self.put_in(slot, raws);
        }
    }

    /// `put` with the caller's lcore slot already looked up.
    #[inline(always)]
    fn put_in(&self, slot: &LcoreSlot, raws: &[usize]) {
        let n = raws.len();
        {
            // SAFETY: only the thread holding this lcore id reaches its
            // slot (a `LcoreCache` pins the id), and nothing here re-enters
            // the cache.
            let cache = unsafe { &mut *slot.cache.get() };
            let len = cache.len;
            if n <= self.cache_size - len {
                // SAFETY: `len..len + n` is within the cache (checked just
                // above against its size, which is the length of `objs`);
                // `raws` is not part of the cache.
                unsafe {
                    copy_words(
                        cache.objs.as_mut_ptr().add(len) as *mut usize,
                        raws.as_ptr(),
                        n,
                    )
                };
                cache.len = len + n;
                slot.stats.add_local(Stat::RecycleCached, n as u64);
                return;
            }
        }
        if self.cache_size == 0 {
            self.put_ring_in(slot, raws);
            return;
        }
        self.put_slow(raws);
    }

    /// A pool without a cache: straight into the ring, counted on the
    /// lcore's set (what `put_slow` does then, without its second lcore
    /// lookup and dispatch).
    #[inline(always)]
    fn put_ring_in(&self, slot: &LcoreSlot, raws: &[usize]) {
        let n = raws.len() as u64;
        if self.ring.enqueue_bulk(raws) {
            slot.stats.add_local(Stat::RecycleRing, n);
        } else {
            self.lost_ring_full(raws.len());
            slot.stats.add_local(Stat::RecycleRingFull, n);
        }
    }

    #[inline(never)]
    fn put_slow(&self, raws: &[usize]) {
        let n = raws.len();
        let slot = self.my_slot();
        match slot {
            Some(slot) if n <= self.cache_size => {
                // SAFETY: only the thread holding this lcore id reaches its
                // slot, and nothing below re-enters the cache.
                let cache = unsafe { &mut *slot.cache.get() };
                if cache.len + n > self.cache_size {
                    self.flush(cache, n, &slot.stats);
                }
                let len = cache.len;
                for (d, &r) in cache.objs[len..len + n].iter_mut().zip(raws) {
                    d.write(r);
                }
                cache.len = len + n;
                slot.stats.add_local(Stat::RecycleCached, n as u64);
            }
            Some(slot) if self.cache_size > 0 => {
                for chunk in raws.chunks(self.cache_size) {
                    self.put(chunk);
                }
                let _ = slot;
            }
            _ => {
                let (s, v) = if self.ring.enqueue_bulk(raws) {
                    (Stat::RecycleRing, n as u64)
                } else {
                    self.lost_ring_full(n);
                    (Stat::RecycleRingFull, n as u64)
                };
                match slot {
                    Some(slot) => slot.stats.add_local(s, v),
                    None => self.shared.add_shared(s, v),
                }
            }
        }
    }

    /// Makes room for `n` more entries by moving the top of the cache to
    /// the ring, down to half the cache size (or less for a large `n`).
    #[cold]
    fn flush(&self, cache: &mut CacheStack, n: usize, stats: &Counters) {
        let target = (self.cache_size / 2).min(self.cache_size - n);
        let moved = &cache.objs[target..cache.len];
        // SAFETY: entries below `len` are initialised handles.
        let moved: &[usize] =
            unsafe { std::slice::from_raw_parts(moved.as_ptr() as *const usize, moved.len()) };
        let count = moved.len() as u64;
        if self.ring.enqueue_bulk(moved) {
            stats.add_local(Stat::RecycleCacheFull, count);
        } else {
            self.lost_ring_full(moved.len());
            stats.add_local(Stat::RecycleRingFull, count);
        }
        cache.len = target;
    }

    /// A release into a destroyed pool: the buffers go to the ring (no
    /// cache: nobody will allocate them), and the core is freed if they
    /// were the last ones out (this may free `self`).
    #[cold]
    #[inline(never)]
    fn put_after_destroy(&self, raws: &[usize]) {
        let mut cores = cores();
        if self.track {
            self.put_tracked_filtering_to_ring(raws);
        } else {
            self.put_ring(raws);
        }
        if self.stats().in_use != 0 {
            self.warn_still_out();
            return;
        }
        // `self` is not used past this point: the reclaim may free it.
        reclaim_destroyed(&mut cores);
    }

    /// Puts handles straight into the ring, counted on the shared set.
    fn put_ring(&self, raws: &[usize]) {
        let n = raws.len() as u64;
        if self.ring.enqueue_bulk(raws) {
            self.shared.add_shared(Stat::RecycleRing, n);
        } else {
            self.lost_ring_full(raws.len());
            self.shared.add_shared(Stat::RecycleRingFull, n);
        }
    }

    /// `put_tracked_filtering`, into the ring.
    fn put_tracked_filtering_to_ring(&self, raws: &[usize]) {
        for &raw in raws {
            // SAFETY: handles of this core, which is still allocated.
            let m = unsafe { meta::meta(raw) };
            if m.state.load(Relaxed) == STATE_OUT {
                m.state.store(STATE_FREE, Relaxed);
                self.put_ring(&[raw]);
            } else {
                self.report_double_release(raw);
            }
        }
    }

    /// Names the buffers still out of a destroyed pool: at most once per
    /// `DESTROY_WARN_INTERVAL` (and at the destroy itself).
    #[cold]
    fn warn_still_out(&self) {
        let now = EPOCH.elapsed().as_secs() + DESTROY_WARN_INTERVAL.as_secs();
        let last = self.warned_at.load(Relaxed);
        if last != 0 && now < last + DESTROY_WARN_INTERVAL.as_secs() {
            return;
        }
        if self
            .warned_at
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
        {
            return;
        }
        let out = self.outstanding();
        let in_use = self.stats().in_use;
        log::warn!(
            "pool '{}' (destroyed): {} buffers still out, its memory waits for them{}",
            self.name,
            in_use,
            if self.track {
                ""
            } else {
                " (enable PoolConfig::track_state to name every one)"
            }
        );
        for o in out.iter().take(32) {
            log::warn!(
                "pool '{}' (destroyed): buffer #{} dma {:#x} pp_ref {} ref {} still out",
                self.name,
                o.index,
                o.dma,
                o.pp_ref,
                o.ref_count
            );
        }
        if out.len() > 32 {
            log::warn!("pool '{}': ... and {} more", self.name, out.len() - 32);
        }
    }

    #[cold]
    fn lost_ring_full(&self, n: usize) {
        log::error!(
            "pool '{}': ring full, {} buffers lost (a buffer was released twice through from_raw?)",
            self.name,
            n
        );
    }

    #[cold]
    pub(crate) fn report_double_release(&self, raw: usize) {
        self.count(Stat::DoubleRelease, 1);
        if !self.warned_double.swap(true, Relaxed) {
            // SAFETY: `raw` points into this live pool's metadata.
            let m = unsafe { meta::meta(raw) };
            log::error!(
                "pool '{}': buffer #{} (dma {:#x}) released while not held (double release); ignored, \
                 further cases are only counted",
                self.name,
                m.index,
                m.dma
            );
        }
    }

    /// Reports a buffer handed to this pool that belongs to another, then
    /// releases it into its own pool.
    #[cold]
    fn report_wrong_pool(&self, raw: usize) {
        self.count(Stat::WrongPool, 1);
        if !self.warned_wrong.swap(true, Relaxed) {
            // SAFETY: `raw` carries an owned reference: its core is alive.
            let owner = unsafe { meta::core(raw) };
            log::warn!(
                "pool '{}': got a buffer of pool '{}'; released to its own pool, further cases are only counted",
                self.name,
                owner.name
            );
        }
        netmem::release(raw);
    }

    pub(crate) fn count_released_refcnt(&self) {
        self.count(Stat::RecycleReleasedRefcnt, 1);
    }

    fn stats(&self) -> PoolStats {
        let mut s = PoolStats::default();
        for slot in self.lcores.iter() {
            s.add_counters(&slot.stats);
        }
        s.add_counters(&self.shared);
        s.in_use = s.compute_in_use();
        s.in_ring = self.ring.len() as u64;
        s.held =
            (self.initial as u64 + s.acquired_from_provider).saturating_sub(s.released_to_provider);
        s.in_caches = s.held.saturating_sub(s.in_use + s.in_ring);
        s.count = self.count as u64;
        s
    }

    /// Buffers known to be out: with state tracking, every one; without,
    /// those whose counts differ from an unshared handle's (shared,
    /// page-referenced, or kept out after a bad release).
    fn outstanding(&self) -> Vec<Outstanding> {
        self.metas[..self.count]
            .iter()
            .filter_map(|m| {
                let r = m.refs.load(Acquire);
                let state = m.state.load(Acquire);
                let out = state & STATE_KIND == STATE_KEPT
                    || if self.track {
                        state & STATE_KIND == STATE_OUT
                    } else {
                        r != REFS_ONE && r != REFS_RETIRED
                    };
                out.then(|| Outstanding {
                    index: m.index,
                    dma: m.dma,
                    pp_ref: meta::pp_of(r),
                    ref_count: if self.tag == NET_IOV {
                        1
                    } else {
                        meta::full_of(r)
                    },
                })
            })
            .collect()
    }
}

#[cfg(all(test, not(loom)))]
mod slot_tests {
    //! `free_slots`: the one-pass fast path and every case it must leave
    //! to the general path.
    use super::*;

    /// A host pool of 256 buffers without state tracking (the fast path's
    /// case in release builds), caches for lcores 0..16.
    fn pool(name: &str, cache: usize) -> Arc<Pool> {
        Pool::with_host_memory(
            &PoolConfig::new(name, 256)
                .with_buf_size(2048)
                .with_cache_size(cache)
                .with_track_state(false)
                .with_lcores(16),
        )
        .expect("host pool")
    }

    /// Runs `f` on a thread holding lcore `id`.
    fn on_lcore(id: usize, f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            lcore::set_current(id).expect("lcore id for the test");
            f();
        })
        .join()
        .expect("test thread");
    }

    fn slots_of(p: &Pool, n: usize) -> Vec<Option<Netmem>> {
        let mut v = Vec::new();
        assert_eq!(p.alloc_bulk(&mut v, n), n);
        v.into_iter().map(Some).collect()
    }

    fn indexes(slots: &[Option<Netmem>]) -> Vec<u32> {
        slots.iter().flatten().map(Netmem::index).collect()
    }

    #[test]
    fn a_batch_of_one_pool_goes_into_the_lcore_cache_in_one_piece() {
        on_lcore(10, || {
            let p = pool("slots-fast", 128);
            let mut slots = slots_of(&p, 32);
            let want = indexes(&slots);
            let before = p.stats().recycle_cached;
            free_slots(&mut slots);
            assert!(slots.iter().all(Option::is_none), "every slot emptied");
            assert_eq!(p.in_use(), 0);
            assert_eq!(p.stats().recycle_cached - before, 32);
            // They sit on top of the lcore cache, in slot order.
            let mut again = Vec::new();
            assert_eq!(p.alloc_bulk(&mut again, 32), 32);
            assert_eq!(again.iter().map(Netmem::index).collect::<Vec<_>>(), want);
        });
    }

    #[test]
    fn an_empty_slot_anywhere_is_skipped_and_the_rest_freed() {
        on_lcore(11, || {
            let p = pool("slots-gap", 128);
            for gap in [0, 5, 31] {
                let mut slots = slots_of(&p, 32);
                drop(slots[gap].take());
                free_slots(&mut slots);
                assert!(slots.iter().all(Option::is_none), "gap {gap}");
                assert_eq!(p.in_use(), 0, "gap {gap}");
            }
            // Nothing but the buffers went into the cache: the whole pool
            // comes out again, every buffer once.
            let mut all = Vec::new();
            assert_eq!(p.alloc_bulk(&mut all, 256), 256);
            let mut idx: Vec<u32> = all.iter().map(Netmem::index).collect();
            idx.sort_unstable();
            idx.dedup();
            assert_eq!(idx.len(), 256);
        });
    }

    #[test]
    fn buffers_of_another_pool_go_back_to_their_own_pool() {
        on_lcore(12, || {
            let (a, b) = (pool("slots-a", 128), pool("slots-b", 128));
            let mut slots = slots_of(&a, 16);
            slots.splice(8..8, slots_of(&b, 8));
            let (ca, cb) = (a.stats().recycle_cached, b.stats().recycle_cached);
            free_slots(&mut slots);
            assert!(slots.iter().all(Option::is_none));
            assert_eq!((a.in_use(), b.in_use()), (0, 0));
            assert_eq!(a.stats().recycle_cached - ca, 16);
            assert_eq!(b.stats().recycle_cached - cb, 8);
        });
    }

    #[test]
    fn a_shared_handle_drops_its_reference_only() {
        on_lcore(13, || {
            let p = pool("slots-shared", 128);
            let mut slots = slots_of(&p, 32);
            let mut keep = slots[7].take().expect("a buffer");
            slots[7] = Some(keep.frag_ref());
            let kept = keep.index();
            free_slots(&mut slots);
            assert!(slots.iter().all(Option::is_none));
            // The buffer is still held by `keep`: not back in the pool.
            assert_eq!(p.in_use(), 1);
            assert_eq!(keep.pp_ref_count(), 1);
            let mut all = Vec::new();
            assert_eq!(p.alloc_bulk(&mut all, 255), 255);
            assert!(
                all.iter().all(|b| b.index() != kept),
                "handed out while held"
            );
            drop(all);
            drop(keep);
            assert_eq!(p.in_use(), 0);
        });
    }

    #[test]
    fn a_batch_larger_than_the_room_in_the_cache_still_frees_everything() {
        on_lcore(14, || {
            let p = pool("slots-full", 8);
            let mut slots = slots_of(&p, 32);
            free_slots(&mut slots);
            assert!(slots.iter().all(Option::is_none));
            assert_eq!(p.in_use(), 0);
        });
    }

    #[test]
    fn a_full_cache_moves_its_top_half_to_the_ring_first() {
        on_lcore(15, || {
            let p = pool("slots-flush", 64);
            let mut fill = Vec::new();
            assert_eq!(p.alloc_bulk(&mut fill, 96), 96);
            let mut slots: Vec<Option<Netmem>> = fill.split_off(64).into_iter().map(Some).collect();
            // 64 buffers one at a time: the cache is full.
            drop(fill);
            let s0 = p.stats();
            free_slots(&mut slots);
            assert!(slots.iter().all(Option::is_none));
            assert_eq!(p.in_use(), 0);
            let s1 = p.stats();
            assert_eq!(s1.recycle_cached - s0.recycle_cached, 32);
            assert_eq!(
                s1.recycle_cache_full - s0.recycle_cache_full,
                32,
                "half the cache to the ring"
            );
        });
    }

    #[test]
    fn without_an_lcore_id_the_ring_takes_them() {
        std::thread::spawn(|| {
            let p = pool("slots-nolcore", 128);
            let mut slots = slots_of(&p, 32);
            let cached = p.stats().recycle_cached;
            free_slots(&mut slots);
            assert!(slots.iter().all(Option::is_none));
            assert_eq!(p.in_use(), 0);
            assert_eq!(p.stats().recycle_cached, cached, "no lcore cache used");
        })
        .join()
        .expect("test thread");
    }
}
