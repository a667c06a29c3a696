//! Allocation, release, caches and providers, through the public API.

use std::sync::Arc;

use pool::{BufferKind, Netmem, Pool, PoolConfig, PoolError, lcore};

fn page_pool(count: usize, cache: usize) -> Arc<Pool> {
    let cfg = PoolConfig::new("test", count)
        .with_cache_size(cache)
        .with_lcores(lcore::MAX_LCORES);
    Pool::with_host_memory(&cfg).unwrap()
}

/// Runs `f` on a fresh thread bound to `id` (lcore ids are process-wide,
/// so each test uses its own).
fn on_lcore<T: Send + 'static>(id: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        lcore::set_current(id).unwrap();
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn every_buffer_has_a_distinct_in_region_dma_address_and_never_straddles_a_page() {
    let cfg = PoolConfig::new("dma", 2000)
        .with_buf_size(3008)
        .with_cache_size(0);
    let p = Pool::with_host_memory(&cfg).unwrap();
    let mut all = Vec::new();
    assert_eq!(p.alloc_bulk(&mut all, 2000), 2000);
    let mut addrs: Vec<u64> = all.iter().map(Netmem::dma_addr).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 2000);
    for a in &addrs {
        let page = pool::HOST_PAGE_SIZE as u64;
        assert_eq!(
            a / page,
            (a + 3008 - 1) / page,
            "buffer at {a:#x} straddles a page"
        );
    }
    for w in addrs.windows(2) {
        assert!(w[1] - w[0] >= 3008, "buffers overlap");
    }
    assert!(p.alloc().is_none(), "pool of 2000 is exhausted");
    assert_eq!(p.in_use(), 2000);
    pool::free_bulk(all);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn alloc_bulk_is_all_or_nothing() {
    on_lcore(10, || {
        let p = page_pool(100, 32);
        let mut v = Vec::new();
        assert_eq!(p.alloc_bulk(&mut v, 60), 60);
        assert_eq!(p.alloc_bulk(&mut v, 41), 0);
        assert_eq!(v.len(), 60, "a refused bulk appends nothing");
        assert_eq!(p.alloc_bulk(&mut v, 40), 40);
        assert_eq!(p.stats().alloc_empty, 1);
        assert_eq!(p.in_use(), 100);
        p.free_bulk(v.drain(..));
        let s = p.stats();
        assert_eq!(s.in_use, 0);
        assert_eq!(s.in_ring + s.in_caches, 100);
    });
}

#[test]
fn page_bytes_are_writable_when_unique_and_net_iov_bytes_are_unreachable() {
    let p = page_pool(8, 0);
    let mut a = p.alloc().unwrap();
    assert!(!a.is_net_iov());
    a.bytes_mut().unwrap()[..4].copy_from_slice(b"abcd");
    assert_eq!(&a.bytes().unwrap()[..4], b"abcd");
    assert_eq!(a.capacity(), 2048);
    let f = a.frag_ref();
    assert!(a.is_shared() && f.is_shared());
    assert!(a.bytes_mut().is_none(), "a shared page is read-only");
    assert_eq!(&f.bytes().unwrap()[..4], b"abcd");
    drop(f);
    assert!(
        a.bytes_mut().is_some(),
        "the last reference is writable again"
    );
    assert!(!a.is_shared(), "and released as unshared");

    let cfg = PoolConfig::new("iov", 8).with_buf_size(4096);
    let d = Pool::with_host_net_iovs(&cfg).unwrap();
    assert_eq!(d.kind(), BufferKind::NetIov);
    let mut n = d.alloc().unwrap();
    assert!(n.is_net_iov());
    assert!(n.bytes().is_none() && n.bytes_mut().is_none() && n.as_page().is_none());
    assert!(n.page_ref().is_none());
    assert_eq!(n.ref_count(), 1);
    assert_eq!(n.pfn_trace(), 0);
    let owner = n.net_iov_owner().unwrap();
    assert_eq!(
        n.dma_addr(),
        owner.region_iova + owner.index as u64 * 4096,
        "net_iov DMA address = base + index * size"
    );
}

#[test]
fn a_buffer_freed_on_another_lcore_returns_through_that_lcores_cache() {
    let p = page_pool(64, 32);
    let p1 = Arc::clone(&p);
    let bufs = on_lcore(11, move || {
        let mut v = Vec::new();
        assert_eq!(p1.alloc_bulk(&mut v, 8), 8);
        v
    });
    assert_eq!(p.stats().alloc_fast, 8, "lcore 11 allocated from its cache");
    let p2 = Arc::clone(&p);
    on_lcore(12, move || {
        drop(bufs);
        let s = p2.stats();
        assert_eq!(s.recycle_cached, 8, "freed into lcore 12's cache");
        assert_eq!(s.in_use, 0);
        // Lcore 12 now allocates those buffers from its own cache.
        let again = p2.alloc().unwrap();
        assert_eq!(p2.stats().alloc_refill, 1, "only lcore 11 refilled");
        drop(again);
    });
    // This test thread has no lcore id: it uses the ring directly.
    let x = p.alloc().unwrap();
    drop(x);
    let s = p.stats();
    assert_eq!((s.alloc_slow, s.recycle_ring), (1, 1));
}

#[test]
fn into_raw_and_from_raw_round_trip() {
    let p = page_pool(4, 0);
    let a = p.alloc().unwrap();
    let dma = a.dma_addr();
    let raw = a.into_raw();
    assert_eq!(p.in_use(), 1, "a raw handle still owns the buffer");
    // SAFETY: `raw` came from into_raw and is used once.
    let back = unsafe { Netmem::from_raw(raw) };
    assert_eq!(back.dma_addr(), dma);
    drop(back);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn bad_configurations_are_refused() {
    let e = |cfg: PoolConfig| Pool::with_host_memory(&cfg).err();
    assert_eq!(e(PoolConfig::new("z", 0)), Some(PoolError::ZeroCount));
    assert!(matches!(
        e(PoolConfig::new("b", 4).with_buf_size(100)),
        Some(PoolError::BufSize { .. })
    ));
    assert!(matches!(
        e(PoolConfig::new("r", 100).with_ring_size(64)),
        Some(PoolError::RingSize { .. })
    ));
    assert!(matches!(
        e(PoolConfig::new("c", 100).with_cache_size(4096)),
        Some(PoolError::CacheSize { .. })
    ));
    // A net_iov chunk has no page size to name: the message says what a
    // chunk must be, not "page size 18446744073709551615".
    let bad = Pool::with_net_iovs(
        pool::HostDeviceMemory::new(4096),
        &PoolConfig::new("n", 2).with_buf_size(100),
    )
    .err();
    assert_eq!(bad, Some(PoolError::ChunkSize { size: 100 }));
    assert_eq!(
        bad.map(|e| e.to_string()).as_deref(),
        Some("net_iov chunk size 100 is invalid: it must be a non-zero multiple of 64 bytes")
    );
    let small = pool::HostDeviceMemory::new(4096);
    assert!(matches!(
        Pool::with_net_iovs(small, &PoolConfig::new("s", 2).with_buf_size(4096)),
        Err(PoolError::RegionTooSmall { .. })
    ));
}

#[test]
fn state_tracking_defaults_to_debug_builds_only() {
    let cfg = PoolConfig::new("default", 4).with_cache_size(0);
    assert_eq!(cfg.track_state, cfg!(debug_assertions));
    let p = Pool::with_host_memory(&cfg).unwrap();
    let a = p.alloc().unwrap();
    // Counted out either way; named by the leak report only when tracked
    // (an unshared handle leaves no other trace in the metadata).
    assert_eq!(p.in_use(), 1);
    assert_eq!(p.outstanding().len(), usize::from(cfg!(debug_assertions)));
    drop(a);
    assert_eq!((p.in_use(), p.outstanding().len()), (0, 0));
}

#[test]
fn a_pool_emptied_by_threads_exiting_without_flush_is_whole_again() {
    // Each thread leaves what it cached (a refill is half the cache plus
    // the request) in its lcore's cache and exits without flush_cache:
    // four of them would hold 68 of the 64 buffers.
    let p = page_pool(64, 32);
    for id in 20..24 {
        let p = Arc::clone(&p);
        on_lcore(id, move || {
            let mut v = Vec::new();
            assert_eq!(p.alloc_bulk(&mut v, 1), 1);
            p.free_bulk(v.drain(..));
        });
    }
    let s = p.stats();
    assert_eq!((s.in_use, s.in_ring, s.in_caches), (0, 64, 0), "{s:?}");
    // This thread has no lcore id: every buffer is in the ring for it.
    let mut all = Vec::new();
    assert_eq!(p.alloc_bulk(&mut all, 64), 64);
    // clear_current ends a claim as thread exit does.
    let p2 = Arc::clone(&p);
    std::thread::spawn(move || {
        lcore::set_current(24).unwrap();
        p2.free_bulk(all.drain(..));
        assert!(p2.stats().in_caches > 0);
        lcore::clear_current();
        assert_eq!(p2.stats().in_ring, 64);
    })
    .join()
    .unwrap();
}

#[test]
fn a_bulk_larger_than_the_cache_is_served_from_the_cache_first() {
    on_lcore(25, || {
        let p = page_pool(512, 256);
        let mut v = Vec::new();
        assert_eq!(p.alloc_bulk(&mut v, 512), 512);
        p.free_bulk(v.drain(..));
        let s = p.stats();
        assert_eq!((s.in_ring, s.in_caches), (256, 256), "{s:?}");
        // A 512-entry ring refill while half the buffers sit cached.
        assert_eq!(p.alloc_bulk(&mut v, 512), 512);
        assert_eq!(p.stats().in_caches, 0);
        // All or nothing: with one buffer out, 512 cannot be had, and the
        // refusal takes nothing from the cache.
        let one = v.pop().unwrap();
        p.free_bulk(v.drain(..));
        let before = p.stats();
        assert_eq!(p.alloc_bulk(&mut v, 512), 0);
        assert!(v.is_empty());
        let after = p.stats();
        assert_eq!(
            (after.in_caches, after.in_ring, after.in_use),
            (before.in_caches, before.in_ring, 1)
        );
        drop(one);
        assert_eq!(p.alloc_bulk(&mut v, 512), 512);
    });
}

#[test]
fn free_puts_one_buffer_in_the_cache_and_hands_others_to_their_owner() {
    on_lcore(26, || {
        let p = page_pool(8, 4);
        let q = page_pool(8, 4);
        let a = p.alloc().unwrap();
        p.free(a);
        let s = p.stats();
        // The refill took half the cache (2) above the one asked: 3 cached.
        assert_eq!(
            (s.in_use, s.in_caches, s.recycle_cached),
            (0, 3, 1),
            "{s:?}"
        );
        // A fragment reference: the shared handle drops a pp_ref, and the
        // buffer comes back when the last one goes.
        let mut b = p.alloc().unwrap();
        let frag = b.frag_ref();
        p.free(frag);
        assert_eq!(b.pp_ref_count(), 1);
        assert_eq!(p.in_use(), 1);
        p.free(b);
        assert_eq!(p.in_use(), 0);
        // A buffer of another pool: counted as wrong pool, and home again.
        let c = q.alloc().unwrap();
        p.free(c);
        assert_eq!(p.stats().wrong_pool, 1);
        assert_eq!((q.in_use(), p.in_use()), (0, 0));
        assert_eq!(q.stats().in_caches + q.stats().in_ring, 8);
    });
}

#[test]
fn an_lcore_cache_handle_uses_the_lcores_cache_and_pins_its_id() {
    on_lcore(27, || {
        let p = page_pool(64, 16);
        {
            let mut c = p.lcore_cache().expect("lcore 27 has a cache");
            let mut v = Vec::new();
            assert_eq!(c.alloc_bulk(&mut v, 8), 8);
            let one = c.alloc().unwrap();
            // The id cannot move while the handle lives.
            assert_eq!(
                lcore::set_current(28),
                Err(lcore::LcoreError::Pinned { id: 27 })
            );
            lcore::clear_current();
            assert_eq!(lcore::current(), Some(27));
            c.free(one);
            c.free_bulk_from(&mut v, 8);
            assert!(v.is_empty());
            let s = p.stats();
            assert_eq!(
                (s.in_use, s.alloc_fast, s.recycle_cached),
                (0, 9, 9),
                "{s:?}"
            );
        }
        // Dropped: the id can move again, and its cache goes to the ring.
        lcore::set_current(28).unwrap();
        assert_eq!(p.stats().in_ring, 64);
    });
    // A thread without an lcore id gets no handle.
    assert!(page_pool(8, 4).lcore_cache().is_none());
}

#[test]
fn an_lcore_cache_burst_with_a_shared_or_foreign_handle_takes_the_checked_path() {
    on_lcore(29, || {
        // Tracking off: the one-pass check-and-copy path.
        let cfg = |name| {
            PoolConfig::new(name, 64)
                .with_cache_size(16)
                .with_lcores(lcore::MAX_LCORES)
                .with_track_state(false)
        };
        let p = Pool::with_host_memory(&cfg("p")).unwrap();
        let q = Pool::with_host_memory(&cfg("q")).unwrap();
        let mut c = p.lcore_cache().unwrap();
        let mut v = Vec::new();
        assert_eq!(c.alloc_bulk(&mut v, 4), 4);
        c.free_bulk_from(&mut v, 4);
        assert_eq!(p.stats().in_use, 0);
        // A fragment reference and a buffer of another pool in one burst.
        assert_eq!(c.alloc_bulk(&mut v, 3), 3);
        let frag = v[0].frag_ref();
        v.push(frag);
        v.push(q.alloc().unwrap());
        c.free_bulk_from(&mut v, 5);
        assert!(v.is_empty());
        assert_eq!((p.in_use(), q.in_use()), (0, 0));
        assert_eq!(p.stats().wrong_pool, 1);
        let s = p.stats();
        assert_eq!(s.in_ring + s.in_caches, 64, "{s:?}");
    });
}

#[test]
fn an_lcore_cache_with_tracking_records_every_buffer_and_catches_a_double_release() {
    // With state tracking the handle's copy-only fast paths must not be
    // taken: every buffer is marked out and back, from the cache too.
    on_lcore(41, || {
        let cfg = PoolConfig::new("tracked-lcore", 64)
            .with_cache_size(16)
            .with_lcores(lcore::MAX_LCORES)
            .with_track_state(true);
        let p = Pool::with_host_memory(&cfg).unwrap();
        let mut c = p.lcore_cache().unwrap();
        let mut v = Vec::new();
        assert_eq!(c.alloc_bulk(&mut v, 8), 8);
        c.free_bulk_from(&mut v, 8);
        // These come from the cache now.
        assert_eq!(c.alloc_bulk(&mut v, 8), 8);
        assert_eq!(p.outstanding().len(), 8);
        c.free_bulk_from(&mut v, 4);
        assert_eq!(p.outstanding().len(), 4);
        let raw = v.pop().unwrap().into_raw();
        // SAFETY: deliberately broken contract (the word is released
        // twice) to check that the pool catches it; no bytes are touched.
        unsafe {
            c.free(Netmem::from_raw(raw));
            c.free(Netmem::from_raw(raw));
        }
        assert_eq!(p.stats().double_release, 1);
        c.free_bulk_from(&mut v, 3);
        assert_eq!((p.outstanding().len(), p.in_use()), (0, 0));
        let mut all = Vec::new();
        assert_eq!(c.alloc_bulk(&mut all, 64), 64);
        assert_eq!(c.alloc_bulk(&mut all, 1), 0, "no buffer was duplicated");
        c.free_bulk_from(&mut all, 64);
    });
}
