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
}
