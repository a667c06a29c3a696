//! The netmem pool: one buffer model for hugepage pages (CPU-readable DMA
//! memory) and device-memory chunks (net_iovs), after Linux's page_pool
//! devmem support (see `docs/design.md` and
//! `shared/notes/netmem-semantics.md`).
//!
//! - [`Pool`] (shared as `Arc<Pool>`) is built over one provider:
//!   [`Pool::with_pages`] ([`DmaRegion`], e.g. `hw::dma::DmaMemory`),
//!   [`Pool::with_net_iovs`] ([`DeviceRegion`], e.g.
//!   `hw::devmem::DeviceMemory`), or [`Pool::with_host_memory`] for tests;
//!   in general [`Pool::with_provider`] over a [`MemoryProvider`] (the
//!   kernel's `memory_provider_ops`), such as [`HostPages`] or the device
//!   memory of a [`DevmemBinding`] (bound to RX queues of a port).
//! - [`Netmem`] is one machine word: the address of the buffer's metadata
//!   with bit 0 set for a net_iov. The metadata holds the owning pool, so a
//!   drop finds its pool with one load.
//! - Each pool has one LIFO cache per lcore ([`lcore::set_current`]), used
//!   without atomics by that lcore's thread only, refilled from and flushed
//!   to a shared bulk MPMC ring in halves. Threads without an lcore id use
//!   the ring directly.
//!
//! Reference rules: see [`netmem`](Netmem) docs.
//!
//! Per-buffer state tracking ([`PoolConfig::track_state`]) is on by default
//! in debug builds and off in release builds: it only catches misuse of the
//! unsafe raw-handle API (a word released twice), and it triples the cost
//! of the cached path, which is otherwise a copy of handle words.

mod config;
mod error;
pub mod lcore;
mod meta;
mod netmem;
mod pool;
mod provider;
mod ring;
mod stats;
mod sync;
mod words;

#[cfg(all(test, loom))]
mod loom_models;

pub use config::{MAX_BUFFERS, MAX_CACHE_SIZE, PoolConfig};
pub use error::PoolError;
pub use netmem::{NetIovOwner, Netmem, PageRef};
pub use pool::{
    BufferKind, HOST_PAGE_SIZE, LcoreCache, Outstanding, Pool, PoolId, free_bulk, free_slots,
};
pub use provider::{
    BindConfig, BindTarget, BindingId, DeviceRegion, DevmemBinding, DmaRegion, HostDeviceMemory,
    HostMemory, HostPages, MemoryProvider, ProviderLayout,
};
pub use stats::PoolStats;
