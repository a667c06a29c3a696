//! Errors of the pool crate.

use thiserror::Error;

/// Why a pool could not be built or an operation was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PoolError {
    #[error("pool buffer count is 0: configure at least one buffer")]
    ZeroCount,
    #[error(
        "buffer size {size} is invalid: it must be a non-zero multiple of 64 bytes and at most the memory's page size {page_size}"
    )]
    BufSize { size: usize, page_size: usize },
    #[error("net_iov chunk size {size} is invalid: it must be a non-zero multiple of 64 bytes")]
    ChunkSize { size: usize },
    #[error("page size {0} is invalid: it must be a power of two of at least 4096 bytes")]
    PageSize(usize),
    #[error(
        "memory region at CPU address {cpu:#x} / IOVA {iova:#x} is not aligned to its page size {page_size}"
    )]
    RegionMisaligned {
        cpu: usize,
        iova: u64,
        page_size: usize,
    },
    #[error("memory region of {have} bytes is too small: {count} buffers need {need} bytes")]
    RegionTooSmall {
        count: usize,
        need: usize,
        have: usize,
    },
    #[error("{count} buffers exceed the pool limit of {max}")]
    TooManyBuffers { count: usize, max: usize },
    #[error("ring size {ring} is invalid: it must be a power of two and hold all {count} buffers")]
    RingSize { ring: usize, count: usize },
    #[error("per-lcore cache size {cache} exceeds the maximum {max}")]
    CacheSize { cache: usize, max: usize },
    #[error("{lcores} lcores requested, at most {max} are supported")]
    Lcores { lcores: usize, max: usize },
    #[error("could not allocate {len} bytes of host memory for the pool")]
    HostAlloc { len: usize },
    #[error("buffer #{index} of pool '{pool}' belongs to another pool '{owner}'")]
    WrongPool {
        pool: String,
        owner: String,
        index: u32,
    },
    #[error(
        "word {word:#x} handed to pool '{pool}' is not a buffer handle of any live pool; refused, not dereferenced"
    )]
    NotAHandle { pool: String, word: usize },
    #[error(
        "buffer #{index} of pool '{pool}' was freed twice (a raw word taken back more often than into_raw gave it); refused"
    )]
    DoubleFree { pool: String, index: u32 },
    #[error(
        "buffer #{index} of pool '{pool}' released to its provider with pp_ref {pp_ref} (ref {full_ref}); it is kept out of circulation"
    )]
    ReleasedWhileReferenced {
        pool: String,
        index: u32,
        pp_ref: u32,
        full_ref: u32,
    },
    #[error("this memory provider already serves a pool (it serves one)")]
    ProviderInUse,
    #[error("device-memory binding {binding} is unbound: it supplies no more buffers")]
    Unbound { binding: u32 },
    #[error(
        "pool buffer size {buf_size} differs from device-memory binding {binding}'s chunk size {chunk}"
    )]
    ChunkMismatch {
        binding: u32,
        chunk: usize,
        buf_size: usize,
    },
    #[error("bind to {port}: no RX queue given")]
    NoQueues { port: String },
    #[error("bind to {port}: RX queue {queue} does not exist (the port has {queues})")]
    NoSuchQueue {
        port: String,
        queue: u16,
        queues: u16,
    },
    #[error(
        "bind to {port}: RX queue {queue} is already bound{}",
        if *binding == 0 { " (named twice)".to_string() } else { format!(" to device-memory binding {binding}") }
    )]
    QueueAlreadyBound {
        port: String,
        queue: u16,
        /// The binding holding it (0: named twice in one bind).
        binding: u32,
    },
    #[error(
        "bind to {port}: RX queue {queue} does not split headers; device memory takes payload only \
         (open the queue with RxQueueConfig::header_split, as tcp-data-split on)"
    )]
    NoHeaderSplit { port: String, queue: u16 },
    #[error(
        "device memory at IOVA {iova:#x} ({len} bytes) is not mapped in the IOMMU container the port's device uses"
    )]
    RegionNotInContainer { iova: u64, len: usize },
    #[error(
        "device memory of {chunks} chunks of {chunk} bytes is too small: the {queues} bound RX queues keep {need} buffers posted"
    )]
    RegionTooSmallForRing {
        chunks: usize,
        chunk: usize,
        need: usize,
        queues: usize,
    },
    #[error("RX queue {queue} is not bound to device-memory binding {binding}")]
    QueueNotBound { binding: u32, queue: u16 },
    #[error(
        "a token of pool '{pool}' returned to device-memory binding {binding}, which it is not of"
    )]
    NotOfBinding { binding: u32, pool: String },
    #[error(
        "unbind of device-memory binding {binding}: {outstanding} net_iovs still out after {waited_ms} ms \
         ({pools} pools over it not freed: close the port, drop them and return every token); still bound"
    )]
    UnbindTimeout {
        binding: u32,
        outstanding: usize,
        pools: usize,
        waited_ms: u64,
    },
}
