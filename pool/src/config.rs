//! Pool configuration.

/// Largest per-lcore cache (as DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`).
pub const MAX_CACHE_SIZE: usize = 512;
/// Most buffers one pool holds (buffer indices are 32-bit).
pub const MAX_BUFFERS: usize = 1 << 31;

/// How a pool is cut and cached. Build with [`PoolConfig::new`] and the
/// `with_*` setters; the pool constructors validate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Name used in logs and the leak report.
    pub name: String,
    /// Bytes per buffer (page pools) or per chunk (net_iov pools); a
    /// non-zero multiple of 64. Page buffers never straddle a page of the
    /// backing memory (a hugepage for `hw::dma::DmaMemory`).
    pub buf_size: usize,
    /// Number of buffers.
    pub count: usize,
    /// Per-lcore cache size (0: no cache, every operation uses the ring).
    /// Refill and flush move half of it at a time.
    pub cache_size: usize,
    /// Shared ring size; 0 picks the next power of two >= `count`.
    pub ring_size: usize,
    /// Number of lcore caches: lcore ids `0..lcores` use one each; other
    /// threads use the shared ring directly.
    pub lcores: usize,
    /// Track each buffer's state (one store per buffer on alloc, a check
    /// and a store per buffer on release, in the buffer's metadata):
    /// detects double release of unshared handles and lets the leak report
    /// name every buffer still out.
    ///
    /// Default: on in debug builds, off in release builds
    /// (`cfg!(debug_assertions)` of the pool crate). Safe code cannot
    /// release an owned handle twice (handles release on drop, once); a
    /// double release needs a broken `unsafe` contract
    /// (`Netmem::from_raw` or `Pool::free_raw_bulk` given one word twice),
    /// so tracking is a debugging aid, and it costs about 3x the
    /// instructions of the untracked cached bulk path (`pool-bench` reports
    /// both). Without it, the leak report still names buffers held through
    /// shared or full references (their counts differ from a free
    /// buffer's) and counts every buffer out.
    pub track_state: bool,
}

impl PoolConfig {
    /// `count` buffers of 2048 bytes, a 256-entry cache per lcore, 2
    /// lcores, state tracking in debug builds only (see
    /// [`PoolConfig::track_state`]).
    pub fn new(name: impl Into<String>, count: usize) -> Self {
        Self {
            name: name.into(),
            buf_size: 2048,
            count,
            cache_size: 256,
            ring_size: 0,
            lcores: 2,
            track_state: cfg!(debug_assertions),
        }
    }

    pub fn with_buf_size(mut self, buf_size: usize) -> Self {
        self.buf_size = buf_size;
        self
    }

    pub fn with_cache_size(mut self, cache_size: usize) -> Self {
        self.cache_size = cache_size;
        self
    }

    pub fn with_ring_size(mut self, ring_size: usize) -> Self {
        self.ring_size = ring_size;
        self
    }

    pub fn with_track_state(mut self, on: bool) -> Self {
        self.track_state = on;
        self
    }

    pub fn with_lcores(mut self, lcores: usize) -> Self {
        self.lcores = lcores;
        self
    }

    /// The ring size the pool will use.
    pub(crate) fn effective_ring_size(&self) -> usize {
        if self.ring_size == 0 {
            self.count.max(1).next_power_of_two()
        } else {
            self.ring_size
        }
    }

    /// Checks what does not depend on the memory provider.
    pub(crate) fn validate(&self) -> Result<(), crate::PoolError> {
        use crate::PoolError;
        if self.count == 0 {
            return Err(PoolError::ZeroCount);
        }
        if self.count > MAX_BUFFERS {
            return Err(PoolError::TooManyBuffers {
                count: self.count,
                max: MAX_BUFFERS,
            });
        }
        let ring = self.effective_ring_size();
        if !ring.is_power_of_two() || ring < self.count {
            return Err(PoolError::RingSize {
                ring,
                count: self.count,
            });
        }
        if self.cache_size > MAX_CACHE_SIZE {
            return Err(PoolError::CacheSize {
                cache: self.cache_size,
                max: MAX_CACHE_SIZE,
            });
        }
        if self.lcores > crate::lcore::MAX_LCORES {
            return Err(PoolError::Lcores {
                lcores: self.lcores,
                max: crate::lcore::MAX_LCORES,
            });
        }
        Ok(())
    }
}
