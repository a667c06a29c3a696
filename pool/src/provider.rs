//! Memory providers: what a pool is cut from.
//!
//! Two unsafe traits describe memory: [`DmaRegion`] for memory the CPU may
//! read and write and a device reaches by IOVA (hugepage pages), and
//! [`DeviceRegion`] for memory only a device reaches (net_iov chunks). The
//! hw crate's types implement them; [`HostMemory`] and [`HostDeviceMemory`]
//! are plain-memory stand-ins for host tests.
//!
//! A pool gets its buffers through a [`MemoryProvider`], in the role of
//! Linux's `memory_provider_ops`: `init` when a pool is built over it,
//! `alloc_bulk` when the pool needs buffers (at build, and whenever its
//! ring runs dry), `release` for a buffer the pool gives back
//! ([`crate::Pool::release_to_provider`], and every buffer it still holds
//! when it is freed), `destroy` when the pool is gone. Two providers:
//! [`HostPages`] (CPU-readable pages of one [`DmaRegion`], what
//! [`crate::Pool::with_pages`] builds on) and [`DevmemBinding`] (net_iov
//! chunks of a [`DeviceRegion`] bound to RX queues of a port, the dmabuf
//! binding of devmem TCP). The provider is reached only on the pool's slow
//! paths: its cached alloc and free do not change.

use std::any::Any;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::sync::{AtomicU64, Ordering, sync_static};
use std::alloc::Layout;
use std::ptr::NonNull;

use crate::{BufferKind, Netmem, Pool, PoolConfig, PoolError};

/// CPU-readable, DMA-mapped memory.
///
/// # Safety
/// An implementor guarantees, for as long as the value lives:
/// - `as_ptr()..as_ptr() + len()` is one allocation valid for reads and
///   writes, and nothing else creates references to it (the pool hands out
///   its bytes);
/// - the same bytes are reachable by devices at `iova()..iova() + len()`
///   (contiguous in IOVA space, CPU offset = IOVA offset);
/// - `page_size()` is a power of two and the memory is backed by pages of
///   that size starting at `as_ptr()`;
/// - all four methods always return the same values.
pub unsafe trait DmaRegion: Send + Sync + 'static {
    fn as_ptr(&self) -> NonNull<u8>;
    fn iova(&self) -> u64;
    fn len(&self) -> usize;
    fn page_size(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Device memory: an IOVA range a device can DMA into, never touched by the
/// CPU through the pool.
///
/// # Safety
/// An implementor guarantees that `iova()..iova() + len()` stays mapped for
/// devices in the process's IOMMU container for as long as the value lives,
/// and that both methods always return the same values.
pub unsafe trait DeviceRegion: Send + Sync + 'static {
    fn iova(&self) -> u64;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a provider's buffers are, fixed by [`MemoryProvider::init`].
#[derive(Debug, Clone, Copy)]
pub struct ProviderLayout {
    pub kind: BufferKind,
    /// Buffers the provider can supply in all (indices `0..count`).
    pub count: usize,
    /// Bytes per buffer (a page buffer's size, a net_iov's chunk size).
    pub buf_size: usize,
    /// CPU address of IOVA `iova_base` (pages); null for net_iovs.
    pub cpu_base: *mut u8,
    /// IOVA of the provider's memory; every buffer lies at or above it.
    pub iova_base: u64,
}

/// A pool's source of buffers (Linux's `memory_provider_ops`). The pool
/// keeps one metadata entry per index the provider can supply; a buffer
/// is the pool's from the `alloc_bulk` that handed it out until the pool
/// hands it back with `release`.
///
/// # Safety
/// An implementor guarantees that, after `init` returned a layout:
/// - `dma_addr(i)` for `i < count` is constant, and with `kind == Page`
///   buffer `i`'s `buf_size` bytes are valid for reads and writes at
///   `cpu_base + (dma_addr(i) - iova_base)` for as long as the provider
///   lives, and reachable by devices at `dma_addr(i)`;
/// - with `kind == NetIov`, `dma_addr(i)..+buf_size` stays mapped for
///   devices while the buffer is handed out (until its `release`);
/// - `alloc_bulk` never hands out an index twice without a `release` of it
///   in between, across every pool built over the provider.
pub unsafe trait MemoryProvider: Send + Sync + 'static {
    /// A pool is being built over the provider with `cfg`: checks it and
    /// returns the layout of the buffers.
    fn init(&self, cfg: &PoolConfig) -> Result<ProviderLayout, PoolError>;
    /// IOVA of buffer `index`'s first byte.
    fn dma_addr(&self, index: usize) -> u64;
    /// Appends up to `n` free buffer indices to `out`; how many.
    fn alloc_bulk(&self, out: &mut Vec<u32>, n: usize) -> usize;
    /// Takes back a buffer `alloc_bulk` handed out.
    fn release(&self, index: u32);
    /// The pool built by the matching `init` is gone (every buffer it held
    /// was released first).
    fn destroy(&self);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data (a free list, flags): consistent across a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Free indices of a provider, LIFO (the most recently released first: its
/// metadata is the likeliest to be in cache).
#[derive(Debug, Default)]
struct FreeList {
    free: Vec<u32>,
}

impl FreeList {
    fn full(count: usize) -> Self {
        FreeList {
            free: (0..count as u32).rev().collect(),
        }
    }
    fn take(&mut self, out: &mut Vec<u32>, n: usize) -> usize {
        let k = n.min(self.free.len());
        out.extend(self.free.drain(self.free.len() - k..).rev());
        k
    }
}

/// A provider's free list with its length readable without the lock, so
/// that a pool that finds its ring empty while the provider has nothing
/// either (the steady state of an exhausted pool) pays one load, not a lock.
#[derive(Debug, Default)]
struct SharedFree {
    list: Mutex<FreeList>,
    len: std::sync::atomic::AtomicUsize,
}

impl SharedFree {
    fn fill(&self, count: usize) {
        let mut l = lock(&self.list);
        *l = FreeList::full(count);
        self.len
            .store(l.free.len(), std::sync::atomic::Ordering::Relaxed);
    }
    fn take(&self, out: &mut Vec<u32>, n: usize) -> usize {
        // Relaxed: a stale 0 only defers the take to the pool's next try.
        if self.len.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut l = lock(&self.list);
        let k = l.take(out, n);
        self.len
            .store(l.free.len(), std::sync::atomic::Ordering::Relaxed);
        k
    }
    fn put(&self, index: u32) {
        let mut l = lock(&self.list);
        l.free.push(index);
        self.len
            .store(l.free.len(), std::sync::atomic::Ordering::Relaxed);
    }
    fn count(&self) -> usize {
        lock(&self.list).free.len()
    }
}

/// The layout [`HostPages`] settled on at `init`.
#[derive(Debug, Clone, Copy)]
struct PagesLayout {
    per_page: usize,
    page_size: usize,
    buf_size: usize,
    count: usize,
}

/// CPU-readable pages of one [`DmaRegion`] (the hugepage provider): buffers
/// of the pool's `buf_size` packed into each page, never straddling two.
/// Serves one pool.
pub struct HostPages {
    region: Box<dyn DmaRegion>,
    layout: Mutex<Option<PagesLayout>>,
    free: SharedFree,
}

impl HostPages {
    pub fn new(region: impl DmaRegion) -> Self {
        HostPages {
            region: Box::new(region),
            layout: Mutex::new(None),
            free: SharedFree::default(),
        }
    }

    /// Buffers free in the provider (not held by the pool).
    pub fn free_count(&self) -> usize {
        self.free.count()
    }
}

// SAFETY: `init` checks the region holds `count` buffers of `buf_size`
// packed per page (the region's bytes are valid for the provider's life,
// by DmaRegion's contract, and reachable at CPU offset = IOVA offset);
// the free list hands each index out once until it is released.
unsafe impl MemoryProvider for HostPages {
    fn init(&self, cfg: &PoolConfig) -> Result<ProviderLayout, PoolError> {
        let region = &*self.region;
        let page_size = region.page_size();
        if !page_size.is_power_of_two() || page_size < 4096 {
            return Err(PoolError::PageSize(page_size));
        }
        if cfg.buf_size == 0 || !cfg.buf_size.is_multiple_of(64) || cfg.buf_size > page_size {
            return Err(PoolError::BufSize {
                size: cfg.buf_size,
                page_size,
            });
        }
        let cpu = region.as_ptr().as_ptr() as usize;
        let iova = region.iova();
        if !cpu.is_multiple_of(page_size) || !iova.is_multiple_of(page_size as u64) {
            return Err(PoolError::RegionMisaligned {
                cpu,
                iova,
                page_size,
            });
        }
        let per_page = page_size / cfg.buf_size;
        let pages = cfg.count.div_ceil(per_page);
        let need = (pages - 1) * page_size + (cfg.count - (pages - 1) * per_page) * cfg.buf_size;
        if region.len() < need {
            return Err(PoolError::RegionTooSmall {
                count: cfg.count,
                need,
                have: region.len(),
            });
        }
        let mut layout = lock(&self.layout);
        if layout.is_some() {
            return Err(PoolError::ProviderInUse);
        }
        *layout = Some(PagesLayout {
            per_page,
            page_size,
            buf_size: cfg.buf_size,
            count: cfg.count,
        });
        self.free.fill(cfg.count);
        Ok(ProviderLayout {
            kind: BufferKind::Page,
            count: cfg.count,
            buf_size: cfg.buf_size,
            cpu_base: region.as_ptr().as_ptr(),
            iova_base: iova,
        })
    }

    fn dma_addr(&self, i: usize) -> u64 {
        let Some(l) = *lock(&self.layout) else {
            return self.region.iova();
        };
        debug_assert!(i < l.count);
        self.region.iova() + ((i / l.per_page) * l.page_size + (i % l.per_page) * l.buf_size) as u64
    }

    fn alloc_bulk(&self, out: &mut Vec<u32>, n: usize) -> usize {
        self.free.take(out, n)
    }

    fn release(&self, index: u32) {
        self.free.put(index);
    }

    fn destroy(&self) {}
}

/// Net_iov chunks of a [`DeviceRegion`] for one pool, with no port binding
/// ([`crate::Pool::with_net_iovs`]).
pub(crate) struct NetIovRegion {
    region: Box<dyn DeviceRegion>,
    chunk: Mutex<Option<usize>>,
    free: SharedFree,
}

impl NetIovRegion {
    pub(crate) fn new(region: impl DeviceRegion) -> Self {
        NetIovRegion {
            region: Box::new(region),
            chunk: Mutex::new(None),
            free: SharedFree::default(),
        }
    }
}

// SAFETY: `init` checks the region holds `count` chunks; the region stays
// mapped while the provider lives (DeviceRegion's contract); the free list
// hands each index out once until it is released.
unsafe impl MemoryProvider for NetIovRegion {
    fn init(&self, cfg: &PoolConfig) -> Result<ProviderLayout, PoolError> {
        if cfg.buf_size == 0 || !cfg.buf_size.is_multiple_of(64) {
            return Err(PoolError::ChunkSize { size: cfg.buf_size });
        }
        let need = cfg.count.saturating_mul(cfg.buf_size);
        if self.region.len() < need {
            return Err(PoolError::RegionTooSmall {
                count: cfg.count,
                need,
                have: self.region.len(),
            });
        }
        let mut chunk = lock(&self.chunk);
        if chunk.is_some() {
            return Err(PoolError::ProviderInUse);
        }
        *chunk = Some(cfg.buf_size);
        self.free.fill(cfg.count);
        Ok(ProviderLayout {
            kind: BufferKind::NetIov,
            count: cfg.count,
            buf_size: cfg.buf_size,
            cpu_base: std::ptr::null_mut(),
            iova_base: self.region.iova(),
        })
    }

    fn dma_addr(&self, i: usize) -> u64 {
        self.region.iova() + (i * lock(&self.chunk).unwrap_or(0)) as u64
    }

    fn alloc_bulk(&self, out: &mut Vec<u32>, n: usize) -> usize {
        self.free.take(out, n)
    }

    fn release(&self, index: u32) {
        self.free.put(index);
    }

    fn destroy(&self) {}
}

sync_static!(
/// Fake IOVAs for host memory: distinct, page-aligned, far from 0.
NEXT_FAKE_IOVA: AtomicU64 = AtomicU64::new(0x10_0000_0000), AtomicU64::new(0x10_0000_0000));

fn fake_iova(len: usize, align: usize) -> u64 {
    let span = (len as u64).next_multiple_of(align as u64) + align as u64;
    let base = NEXT_FAKE_IOVA.fetch_add(span, Ordering::Relaxed);
    base.next_multiple_of(align as u64)
}

/// Plain, zeroed host memory with a fake IOVA (no device can reach it): the
/// provider for host tests and benchmarks.
pub struct HostMemory {
    ptr: NonNull<u8>,
    layout: Layout,
    iova: u64,
    page_size: usize,
}

// SAFETY: HostMemory owns its allocation exclusively; it is plain memory.
unsafe impl Send for HostMemory {}
// SAFETY: HostMemory exposes no interior mutability itself; access to the
// bytes is arbitrated by the pool that owns it.
unsafe impl Sync for HostMemory {}

impl HostMemory {
    /// `len` zeroed bytes aligned to `page_size` (a power of two >= 4096).
    pub fn new(len: usize, page_size: usize) -> Result<Self, PoolError> {
        if !page_size.is_power_of_two() || page_size < 4096 {
            return Err(PoolError::PageSize(page_size));
        }
        let len = len.max(1).next_multiple_of(page_size);
        let layout =
            Layout::from_size_align(len, page_size).map_err(|_| PoolError::HostAlloc { len })?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(PoolError::HostAlloc { len })?;
        Ok(Self {
            ptr,
            layout,
            iova: fake_iova(len, page_size),
            page_size,
        })
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

// SAFETY: the allocation is owned, valid for `len` bytes for the value's
// life, aligned to `page_size`; the fake IOVA range has the same length.
unsafe impl DmaRegion for HostMemory {
    fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }
    fn iova(&self) -> u64 {
        self.iova
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
    fn page_size(&self) -> usize {
        self.page_size
    }
}

/// A fake device-memory region: an IOVA range with no backing (host tests
/// of net_iov pools; the pool never touches net_iov bytes).
pub struct HostDeviceMemory {
    iova: u64,
    len: usize,
}

impl HostDeviceMemory {
    pub fn new(len: usize) -> Self {
        Self {
            iova: fake_iova(len, 4096),
            len,
        }
    }
}

// SAFETY: nothing accesses this range; it exists only to give net_iovs
// distinct DMA addresses in host tests, and the values never change.
unsafe impl DeviceRegion for HostDeviceMemory {
    fn iova(&self) -> u64 {
        self.iova
    }
    fn len(&self) -> usize {
        self.len
    }
}

// SAFETY: DmaMemory owns a hugepage mapping of `len()` bytes at `as_ptr()`,
// mapped into the VFIO container at `iova()` (contiguous, IOVA aligned to
// the page size) until it is dropped; no other Rust reference to its bytes
// is created by hw; the values are fixed at allocation. Devices write the
// bytes only while a driver has posted a buffer, i.e. while no `Netmem`
// for it exists (the driver holds it as a raw word).
unsafe impl DmaRegion for hw::dma::DmaMemory {
    fn as_ptr(&self) -> NonNull<u8> {
        hw::dma::DmaMemory::as_ptr(self)
    }
    fn iova(&self) -> u64 {
        hw::dma::DmaMemory::iova(self)
    }
    fn len(&self) -> usize {
        hw::dma::DmaMemory::len(self)
    }
    fn page_size(&self) -> usize {
        hw::dma::DmaMemory::page_size(self).bytes()
    }
}

// SAFETY: DeviceMemory stays mapped into the VFIO container at `iova()` for
// `len()` bytes until it is dropped; the values are fixed at creation.
unsafe impl DeviceRegion for hw::devmem::DeviceMemory {
    fn iova(&self) -> u64 {
        hw::devmem::DeviceMemory::iova(self)
    }
    fn len(&self) -> usize {
        hw::devmem::DeviceMemory::len(self)
    }
}

/// Identity of a device-memory binding (devmem TCP's dmabuf id), unique in
/// the process, never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingId(pub u32);

impl std::fmt::Display for BindingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The port side of a binding, as its driver describes it (pmd implements
/// it for `Port`): which RX queues exist, whether each splits headers, how
/// many buffers each posts, and what its device can reach.
pub trait BindTarget {
    /// The port's identity (its PCI address): one binding per queue of it.
    fn bind_key(&self) -> String;
    fn rx_queue_count(&self) -> u16;
    /// Whether RX queue `queue` writes headers and payload into separate
    /// buffers (device memory may take payload only).
    fn rx_header_split(&self, queue: u16) -> bool;
    /// Buffers RX queue `queue` keeps posted (its descriptor count).
    fn rx_ring_size(&self, queue: u16) -> usize;
    /// Whether `[iova, iova + len)` is mapped in the IOMMU container the
    /// port's device DMAs through.
    fn dma_reachable(&self, iova: u64, len: u64) -> bool;
}

/// How [`DevmemBinding::bind`] cuts its region.
#[derive(Debug, Clone, Copy)]
pub struct BindConfig {
    /// Bytes per net_iov chunk (a non-zero multiple of 64).
    pub chunk_size: usize,
    /// Use only the region's first `len` bytes (`None`: all of it).
    pub len: Option<usize>,
}

impl BindConfig {
    pub fn new(chunk_size: usize) -> Self {
        BindConfig {
            chunk_size,
            len: None,
        }
    }
    pub fn with_len(mut self, len: usize) -> Self {
        self.len = Some(len);
        self
    }
}

/// Queues bound to a binding, process-wide: (port key, queue) -> binding.
static BOUND: Mutex<Vec<(String, u16, BindingId)>> = Mutex::new(Vec::new());
static NEXT_BINDING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// A device region as the binding keeps it: downcastable, for the host
/// view of the concrete type.
trait AnyRegion: DeviceRegion {
    fn as_any(&self) -> &dyn Any;
}

impl<T: DeviceRegion> AnyRegion for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct BindState {
    free: FreeList,
    /// Pools built over the binding and not yet destroyed.
    pools: usize,
    /// Set by a successful unbind: nothing is handed out any more.
    unbound: bool,
}

struct BindingInner {
    id: BindingId,
    port: String,
    queues: Vec<u16>,
    chunk: usize,
    count: usize,
    iova: u64,
    /// The region while bound; taken (and so unmapped) by a successful
    /// unbind.
    region: RwLock<Option<Box<dyn AnyRegion>>>,
    state: Mutex<BindState>,
    /// `state.free`'s length, readable without the lock (as `SharedFree`).
    free_len: std::sync::atomic::AtomicUsize,
    returned: Condvar,
}

impl BindingInner {
    fn unclaim_queues(&self) {
        lock(&BOUND).retain(|(_, _, b)| *b != self.id);
    }
}

// SAFETY: chunk `i` is `iova + i * chunk` with `i < count`, inside the
// bound range, which `bind` checked is in the container; the region stays
// in `region` (mapped) until `unbind`, which takes it only when every
// chunk is back in the free list (none handed out); after that
// `alloc_bulk` hands out nothing. The free list hands each index out once
// until it is released, whichever pool asks.
unsafe impl MemoryProvider for BindingInner {
    fn init(&self, cfg: &PoolConfig) -> Result<ProviderLayout, PoolError> {
        if self
            .region
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
        {
            return Err(PoolError::Unbound { binding: self.id.0 });
        }
        if cfg.buf_size != self.chunk {
            return Err(PoolError::ChunkMismatch {
                binding: self.id.0,
                chunk: self.chunk,
                buf_size: cfg.buf_size,
            });
        }
        lock(&self.state).pools += 1;
        Ok(ProviderLayout {
            kind: BufferKind::NetIov,
            count: self.count,
            buf_size: self.chunk,
            cpu_base: std::ptr::null_mut(),
            iova_base: self.iova,
        })
    }

    fn dma_addr(&self, i: usize) -> u64 {
        self.iova + (i * self.chunk) as u64
    }

    fn alloc_bulk(&self, out: &mut Vec<u32>, n: usize) -> usize {
        // Relaxed: a stale 0 only defers the take to the pool's next try.
        if self.free_len.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut st = lock(&self.state);
        if st.unbound {
            return 0;
        }
        let k = st.free.take(out, n);
        self.free_len
            .store(st.free.free.len(), std::sync::atomic::Ordering::Relaxed);
        k
    }

    fn release(&self, index: u32) {
        let mut st = lock(&self.state);
        st.free.free.push(index);
        self.free_len
            .store(st.free.free.len(), std::sync::atomic::Ordering::Relaxed);
        if st.free.free.len() == self.count {
            self.returned.notify_all();
        }
    }

    fn destroy(&self) {
        let mut st = lock(&self.state);
        st.pools = st.pools.saturating_sub(1);
        self.returned.notify_all();
    }
}

/// A device-memory region bound to RX queues of one port (devmem TCP's
/// dmabuf binding, `NETDEV_CMD_BIND_RX`): the memory provider of those
/// queues' net_iov pools ([`DevmemBinding::pool`]). Its free list holds
/// the chunks no pool holds; tokens the application returns
/// ([`DevmemBinding::return_tokens`], `SO_DEVMEM_DONTNEED`'s role) go back
/// to their pool, and so to the queue's refill, so a flow runs for as long
/// as tokens come back however small the region. [`DevmemBinding::unbind`]
/// waits for every chunk to come back, then unmaps the region.
pub struct DevmemBinding {
    inner: Arc<BindingInner>,
}

impl std::fmt::Debug for DevmemBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevmemBinding")
            .field("id", &self.inner.id)
            .field("port", &self.inner.port)
            .field("queues", &self.inner.queues)
            .field("chunks", &self.inner.count)
            .finish()
    }
}

impl DevmemBinding {
    /// Binds `region` to RX queues `queues` of `port`, cut into
    /// `cfg.chunk_size` chunks. Refused: no queue or a queue the port does
    /// not have; a queue already bound (to this or another binding); a
    /// queue without header split; a region not mapped where the port's
    /// device DMAs; fewer chunks than the bound queues keep posted.
    pub fn bind(
        region: impl DeviceRegion,
        port: &dyn BindTarget,
        queues: &[u16],
        cfg: &BindConfig,
    ) -> Result<DevmemBinding, PoolError> {
        let key = port.bind_key();
        if queues.is_empty() {
            return Err(PoolError::NoQueues { port: key });
        }
        let chunk = cfg.chunk_size;
        if chunk == 0 || !chunk.is_multiple_of(64) {
            return Err(PoolError::ChunkSize { size: chunk });
        }
        let len = cfg.len.unwrap_or(region.len());
        if len > region.len() {
            return Err(PoolError::RegionTooSmall {
                count: len / chunk,
                need: len,
                have: region.len(),
            });
        }
        let mut seen = Vec::new();
        for &q in queues {
            if q >= port.rx_queue_count() {
                return Err(PoolError::NoSuchQueue {
                    port: key,
                    queue: q,
                    queues: port.rx_queue_count(),
                });
            }
            if seen.contains(&q) {
                return Err(PoolError::QueueAlreadyBound {
                    port: key,
                    queue: q,
                    binding: 0,
                });
            }
            seen.push(q);
            if !port.rx_header_split(q) {
                return Err(PoolError::NoHeaderSplit {
                    port: key,
                    queue: q,
                });
            }
        }
        if !port.dma_reachable(region.iova(), len as u64) {
            return Err(PoolError::RegionNotInContainer {
                iova: region.iova(),
                len,
            });
        }
        let count = len / chunk;
        let need: usize = queues.iter().map(|&q| port.rx_ring_size(q)).sum();
        if count < need {
            return Err(PoolError::RegionTooSmallForRing {
                chunks: count,
                chunk,
                need,
                queues: queues.len(),
            });
        }
        if count > crate::MAX_BUFFERS {
            return Err(PoolError::TooManyBuffers {
                count,
                max: crate::MAX_BUFFERS,
            });
        }
        let id = BindingId(NEXT_BINDING.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        {
            let mut bound = lock(&BOUND);
            for &q in queues {
                if let Some((_, _, b)) = bound.iter().find(|(p, bq, _)| *p == key && *bq == q) {
                    return Err(PoolError::QueueAlreadyBound {
                        port: key,
                        queue: q,
                        binding: b.0,
                    });
                }
            }
            bound.extend(queues.iter().map(|&q| (key.clone(), q, id)));
        }
        log::info!(
            "devmem binding {id}: {count} chunks of {chunk} bytes at IOVA {:#x} bound to {key} RX queues {queues:?}",
            region.iova()
        );
        Ok(DevmemBinding {
            inner: Arc::new(BindingInner {
                id,
                port: key,
                queues: queues.to_vec(),
                chunk,
                count,
                iova: region.iova(),
                region: RwLock::new(Some(Box::new(region))),
                state: Mutex::new(BindState {
                    free: FreeList::full(count),
                    pools: 0,
                    unbound: false,
                }),
                free_len: std::sync::atomic::AtomicUsize::new(count),
                returned: Condvar::new(),
            }),
        })
    }

    pub fn id(&self) -> BindingId {
        self.inner.id
    }

    /// The RX queues bound.
    pub fn queues(&self) -> &[u16] {
        &self.inner.queues
    }

    /// Chunks in the bound range.
    pub fn chunk_count(&self) -> usize {
        self.inner.count
    }

    pub fn chunk_size(&self) -> usize {
        self.inner.chunk
    }

    /// IOVA of chunk 0.
    pub fn iova(&self) -> u64 {
        self.inner.iova
    }

    /// Bytes bound (`chunk_count * chunk_size`).
    pub fn len(&self) -> usize {
        self.inner.count * self.inner.chunk
    }

    pub fn is_empty(&self) -> bool {
        self.inner.count == 0
    }

    /// Chunks not in the binding's free list: held by a pool over it (in
    /// its ring or caches, posted to a queue, or out as tokens).
    pub fn outstanding(&self) -> usize {
        self.inner.count - lock(&self.inner.state).free.free.len()
    }

    /// The net_iov pool of bound queue `queue` (the page_pool a queue
    /// restarted with this binding's memory provider gets): chunks are
    /// taken from the binding `cfg.count` at build, more whenever the pool
    /// runs dry, and all of them go back to the binding when the pool is
    /// destroyed with every buffer back. `cfg.buf_size` is set to the
    /// chunk size.
    pub fn pool(&self, queue: u16, cfg: &PoolConfig) -> Result<Arc<Pool>, PoolError> {
        if !self.inner.queues.contains(&queue) {
            return Err(PoolError::QueueNotBound {
                binding: self.inner.id.0,
                queue,
            });
        }
        let cfg = cfg.clone().with_buf_size(self.inner.chunk);
        Pool::with_provider(self.inner.clone(), &cfg)
    }

    /// Returns tokens the application held (`SO_DEVMEM_DONTNEED`): each
    /// drops its pool reference, so its chunk refills the queue. A buffer
    /// of no pool over this binding is refused with
    /// [`PoolError::NotOfBinding`] (and released to its own pool, like the
    /// rest); how many were returned otherwise.
    pub fn return_tokens(
        &self,
        tokens: impl IntoIterator<Item = Netmem>,
    ) -> Result<usize, PoolError> {
        let mut n = 0;
        let mut err = None;
        for t in tokens {
            let ours = t.net_iov_owner().is_some_and(|o| {
                o.region_iova == self.inner.iova && (o.index as usize) < self.inner.count
            });
            if !ours && err.is_none() {
                err = Some(PoolError::NotOfBinding {
                    binding: self.inner.id.0,
                    pool: t.pool_name().to_string(),
                });
            }
            drop(t);
            n += usize::from(ours);
        }
        err.map_or(Ok(n), Err)
    }

    /// Runs `f` on the bound region as its concrete type `R` (e.g. to take
    /// `hw::devmem::DeviceMemory::host_view` for a test's validation);
    /// `None` when the region is another type.
    pub fn with_region<R: DeviceRegion, T>(&self, f: impl FnOnce(&R) -> T) -> Option<T> {
        let guard = self
            .inner
            .region
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let region = guard.as_ref()?;
        region.as_any().downcast_ref::<R>().map(f)
    }

    /// Unbinds: waits up to `timeout` for every chunk to be back in the
    /// binding's free list (the queues' pools destroyed, every token
    /// returned), then releases the queues and drops the region (unmapping
    /// it). Past the timeout the binding is given back with
    /// [`PoolError::UnbindTimeout`], still bound, so the caller can return
    /// what is out and try again.
    pub fn unbind(self, timeout: Duration) -> Result<(), (DevmemBinding, PoolError)> {
        let inner = &self.inner;
        let start = Instant::now();
        let st = lock(&inner.state);
        let (mut st, _) = inner
            .returned
            .wait_timeout_while(st, timeout, |st| st.free.free.len() < inner.count)
            .unwrap_or_else(PoisonError::into_inner);
        let out = inner.count - st.free.free.len();
        let pools = st.pools;
        st.unbound = out == 0;
        drop(st);
        if out != 0 {
            let err = PoolError::UnbindTimeout {
                binding: inner.id.0,
                outstanding: out,
                pools,
                waited_ms: start.elapsed().as_millis() as u64,
            };
            return Err((self, err));
        }
        inner.unclaim_queues();
        let region = inner
            .region
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(region);
        log::info!(
            "devmem binding {}: unbound from {} RX queues {:?}, region unmapped",
            inner.id,
            inner.port,
            inner.queues
        );
        Ok(())
    }
}

impl Drop for DevmemBinding {
    /// Without an unbind the queues are released; the region stays mapped
    /// until the last pool over it is gone.
    fn drop(&mut self) {
        self.inner.unclaim_queues();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pool;

    /// A port as a binding sees it, with the IOVA ranges its "container"
    /// maps.
    struct FakePort {
        key: &'static str,
        queues: u16,
        split: Vec<bool>,
        ring: usize,
        mapped: Vec<(u64, u64)>,
    }

    impl FakePort {
        fn new(key: &'static str, queues: u16, ring: usize, region: &HostDeviceMemory) -> Self {
            FakePort {
                key,
                queues,
                split: vec![true; usize::from(queues)],
                ring,
                mapped: vec![(region.iova(), region.len() as u64)],
            }
        }
    }

    impl BindTarget for FakePort {
        fn bind_key(&self) -> String {
            self.key.to_string()
        }
        fn rx_queue_count(&self) -> u16 {
            self.queues
        }
        fn rx_header_split(&self, queue: u16) -> bool {
            self.split[usize::from(queue)]
        }
        fn rx_ring_size(&self, _queue: u16) -> usize {
            self.ring
        }
        fn dma_reachable(&self, iova: u64, len: u64) -> bool {
            self.mapped
                .iter()
                .any(|&(b, l)| iova >= b && iova + len <= b + l)
        }
    }

    const CHUNK: usize = 4096;

    fn region(chunks: usize) -> HostDeviceMemory {
        HostDeviceMemory::new(chunks * CHUNK)
    }

    #[test]
    fn a_buffer_released_to_its_provider_is_handed_out_again() {
        let p =
            Pool::with_host_net_iovs(&PoolConfig::new("again", 2).with_buf_size(CHUNK)).unwrap();
        let a = p.alloc().unwrap();
        let dma = a.dma_addr();
        p.release_to_provider(a).unwrap();
        // Both buffers again: the released one came back from the provider
        // when the ring ran dry (before, it was retired for good).
        let mut got = Vec::new();
        assert_eq!(p.alloc_bulk(&mut got, 2), 2);
        assert!(got.iter().any(|n| n.dma_addr() == dma));
        let s = p.stats();
        assert_eq!(
            (s.released_to_provider, s.acquired_from_provider, s.held),
            (1, 1, 2)
        );
        assert_eq!(s.in_use, 2);
        drop(got);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn host_pages_get_back_every_buffer_when_the_pool_is_freed() {
        let mem = HostMemory::new(2 << 20, 2 << 20).unwrap();
        let provider = Arc::new(HostPages::new(mem));
        let p = Pool::with_provider(provider.clone(), &PoolConfig::new("pages", 8)).unwrap();
        assert_eq!(provider.free_count(), 0);
        let a = p.alloc().unwrap();
        p.release_to_provider(a).unwrap();
        assert_eq!(provider.free_count(), 1);
        // One provider serves one pool.
        assert_eq!(
            Pool::with_provider(provider.clone(), &PoolConfig::new("second", 8)).err(),
            Some(PoolError::ProviderInUse)
        );
        drop(p);
        assert_eq!(provider.free_count(), 8);
    }

    #[test]
    fn binding_the_same_queue_twice_is_refused() {
        let (r1, r2) = (region(64), region(64));
        let mut port = FakePort::new("twice", 2, 16, &r1);
        port.mapped.push((r2.iova(), r2.len() as u64));
        let b = DevmemBinding::bind(r1, &port, &[1], &BindConfig::new(CHUNK)).unwrap();
        let err = DevmemBinding::bind(r2, &port, &[0, 1], &BindConfig::new(CHUNK)).unwrap_err();
        assert_eq!(
            err,
            PoolError::QueueAlreadyBound {
                port: "twice".into(),
                queue: 1,
                binding: b.id().0
            }
        );
        // Named twice in one bind.
        let r3 = region(64);
        port.mapped.push((r3.iova(), r3.len() as u64));
        assert!(matches!(
            DevmemBinding::bind(r3, &port, &[0, 0], &BindConfig::new(CHUNK)),
            Err(PoolError::QueueAlreadyBound {
                queue: 0,
                binding: 0,
                ..
            })
        ));
        // After unbind the queue is free again.
        b.unbind(Duration::ZERO).unwrap();
        let r4 = region(64);
        port.mapped.push((r4.iova(), r4.len() as u64));
        DevmemBinding::bind(r4, &port, &[1], &BindConfig::new(CHUNK)).unwrap();
    }

    #[test]
    fn binding_a_queue_without_header_split_is_refused() {
        let r = region(64);
        let mut port = FakePort::new("nosplit", 2, 16, &r);
        port.split[1] = false;
        assert_eq!(
            DevmemBinding::bind(r, &port, &[0, 1], &BindConfig::new(CHUNK)).unwrap_err(),
            PoolError::NoHeaderSplit {
                port: "nosplit".into(),
                queue: 1
            }
        );
        // Nothing was claimed by the refused bind.
        let r = region(64);
        let port = FakePort::new("nosplit", 2, 16, &r);
        DevmemBinding::bind(r, &port, &[0], &BindConfig::new(CHUNK)).unwrap();
    }

    #[test]
    fn a_region_too_small_for_the_rings_is_refused() {
        let r = region(31);
        let port = FakePort::new("small", 2, 16, &r);
        assert_eq!(
            DevmemBinding::bind(r, &port, &[0, 1], &BindConfig::new(CHUNK)).unwrap_err(),
            PoolError::RegionTooSmallForRing {
                chunks: 31,
                chunk: CHUNK,
                need: 32,
                queues: 2
            }
        );
        // The same with a bound length shorter than the region.
        let r = region(64);
        let port = FakePort::new("small", 1, 16, &r);
        let cfg = BindConfig::new(CHUNK).with_len(15 * CHUNK);
        assert!(matches!(
            DevmemBinding::bind(r, &port, &[0], &cfg),
            Err(PoolError::RegionTooSmallForRing {
                chunks: 15,
                need: 16,
                ..
            })
        ));
    }

    #[test]
    fn a_region_not_in_the_container_is_refused() {
        let r = region(64);
        let (iova, len) = (r.iova(), r.len());
        let mut port = FakePort::new("elsewhere", 1, 16, &r);
        port.mapped.clear();
        assert_eq!(
            DevmemBinding::bind(r, &port, &[0], &BindConfig::new(CHUNK)).unwrap_err(),
            PoolError::RegionNotInContainer { iova, len }
        );
        // Partly mapped is not mapped.
        let r = region(64);
        let mut port = FakePort::new("elsewhere", 1, 16, &r);
        port.mapped[0].1 -= 4096;
        assert!(matches!(
            DevmemBinding::bind(r, &port, &[0], &BindConfig::new(CHUNK)),
            Err(PoolError::RegionNotInContainer { .. })
        ));
    }

    #[test]
    fn a_queue_the_port_lacks_and_no_queue_are_refused() {
        let r = region(64);
        let port = FakePort::new("few", 2, 16, &r);
        assert_eq!(
            DevmemBinding::bind(r, &port, &[2], &BindConfig::new(CHUNK)).unwrap_err(),
            PoolError::NoSuchQueue {
                port: "few".into(),
                queue: 2,
                queues: 2
            }
        );
        let r = region(64);
        assert_eq!(
            DevmemBinding::bind(r, &port, &[], &BindConfig::new(CHUNK)).unwrap_err(),
            PoolError::NoQueues { port: "few".into() }
        );
    }

    #[test]
    fn unbind_with_buffers_out_times_out_then_succeeds_once_they_are_back() {
        let r = region(32);
        let port = FakePort::new("unbind", 1, 16, &r);
        let b = DevmemBinding::bind(r, &port, &[0], &BindConfig::new(CHUNK)).unwrap();
        let pool = b.pool(0, &PoolConfig::new("q0", 32)).unwrap();
        let token = pool.alloc().unwrap();
        assert_eq!(b.outstanding(), 32);
        // The pool is alive and a token is out.
        let t0 = Instant::now();
        let (b, err) = b.unbind(Duration::from_millis(50)).unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert!(
            matches!(
                err,
                PoolError::UnbindTimeout {
                    outstanding: 32,
                    pools: 1,
                    ..
                }
            ),
            "{err}"
        );
        // The pool destroyed with the token still out: the core waits for
        // it, and so do its 32 chunks.
        drop(pool);
        let (b, err) = b.unbind(Duration::from_millis(10)).unwrap_err();
        assert!(matches!(
            err,
            PoolError::UnbindTimeout {
                outstanding: 32,
                pools: 1,
                ..
            }
        ));
        // The token returned from another thread while unbind waits.
        let back = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(token);
        });
        b.unbind(Duration::from_secs(10)).unwrap();
        back.join().unwrap();
    }

    #[test]
    fn a_flow_many_times_the_region_runs_on_returned_tokens() {
        // 16 chunks, two queues with rings of 4: each "packet" takes a
        // chunk as a ring refill would, the application holds it as a token
        // and returns tokens in batches of 3.
        let r = region(16);
        let port = FakePort::new("refill", 2, 4, &r);
        let b = DevmemBinding::bind(r, &port, &[0, 1], &BindConfig::new(CHUNK)).unwrap();
        let q0 = b.pool(0, &PoolConfig::new("q0", 12)).unwrap();
        let q1 = b.pool(1, &PoolConfig::new("q1", 4)).unwrap();
        assert_eq!((q0.stats().held, q1.stats().held), (12, 4));
        let region_bytes = b.len();
        let mut received = 0usize;
        let mut tokens = Vec::new();
        let mut dmas = std::collections::HashSet::new();
        while received < 10 * region_bytes {
            let nm = q1.alloc().expect("a chunk: tokens came back");
            dmas.insert(nm.dma_addr());
            received += nm.capacity();
            tokens.push(nm);
            if tokens.len() == 3 {
                assert_eq!(b.return_tokens(tokens.drain(..)), Ok(3));
            }
        }
        assert_eq!(b.return_tokens(tokens.drain(..)), Ok(received / CHUNK % 3));
        assert_eq!(received, 10 * region_bytes);
        assert!(dmas.len() <= 4, "queue 1 ran on its own 4 chunks");
        // Queue 0's pool goes away: its chunks refill the binding's free
        // list, and queue 1 takes them when it runs dry.
        drop(q0);
        assert_eq!(b.outstanding(), 4);
        let mut all = Vec::new();
        assert_eq!(q1.alloc_bulk(&mut all, 16), 16);
        assert_eq!(q1.stats().acquired_from_provider, 12);
        // A token of another pool is refused (and still released).
        let other = Pool::with_host_net_iovs(&PoolConfig::new("other", 1)).unwrap();
        assert!(matches!(
            b.return_tokens([other.alloc().unwrap()]),
            Err(PoolError::NotOfBinding { .. })
        ));
        assert_eq!(other.in_use(), 0);
        assert_eq!(b.return_tokens(all), Ok(16));
        drop(q1);
        assert_eq!(b.outstanding(), 0);
        b.unbind(Duration::ZERO).unwrap();
    }

    #[test]
    fn an_unbound_binding_hands_out_nothing_more() {
        let r = region(16);
        let port = FakePort::new("after", 1, 4, &r);
        let b = DevmemBinding::bind(r, &port, &[0], &BindConfig::new(CHUNK)).unwrap();
        // A pool that holds nothing does not keep the binding.
        let p = b.pool(0, &PoolConfig::new("q0", 1)).unwrap();
        let nm = p.alloc().unwrap();
        p.release_to_provider(nm).unwrap();
        assert_eq!(b.outstanding(), 0);
        b.unbind(Duration::ZERO).unwrap();
        assert!(p.alloc().is_none(), "the region is unmapped");
    }

    #[test]
    fn the_bound_region_is_reachable_as_its_type() {
        let r = region(16);
        let iova = r.iova();
        let port = FakePort::new("view", 1, 4, &r);
        let b = DevmemBinding::bind(r, &port, &[0], &BindConfig::new(CHUNK)).unwrap();
        assert_eq!(b.with_region(|r: &HostDeviceMemory| r.iova()), Some(iova));
        assert_eq!(b.with_region(|_: &HostMemoryRegionless| ()), None);
        assert!(matches!(
            b.pool(1, &PoolConfig::new("q1", 1)),
            Err(PoolError::QueueNotBound { queue: 1, .. })
        ));
    }

    /// A region type the binding does not hold.
    struct HostMemoryRegionless;
    // SAFETY: never used as a region (only as a downcast target).
    unsafe impl DeviceRegion for HostMemoryRegionless {
        fn iova(&self) -> u64 {
            0
        }
        fn len(&self) -> usize {
            0
        }
    }
}
