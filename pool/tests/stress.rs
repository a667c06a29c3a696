//! Multi-thread stress: cross-core frees through caches and ring, shared
//! fragments freed on other cores; at the end every buffer is back and
//! the counters agree.

use std::sync::Arc;
use std::sync::mpsc;

use pool::{Netmem, Pool, PoolConfig, lcore};

#[test]
fn cross_core_frees_return_every_buffer_and_counters_agree() {
    const COUNT: usize = 4096;
    const ROUNDS: usize = 3000;
    let cfg = PoolConfig::new("stress", COUNT)
        .with_cache_size(64)
        .with_lcores(lcore::MAX_LCORES);
    let p = Pool::with_host_memory(&cfg).unwrap();
    // Four workers: lcores 40..43 (cached) and one thread with no lcore.
    let n_workers = 4;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n_workers)
        .map(|_| mpsc::channel::<Vec<Netmem>>())
        .unzip();
    let start = Arc::new(std::sync::Barrier::new(n_workers));
    let handles: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(w, rx)| {
            let p = Arc::clone(&p);
            let next = txs[(w + 1) % n_workers].clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                if w < 3 {
                    lcore::set_current(40 + w).unwrap();
                }
                start.wait();
                let mut empty = 0u64;
                for r in 0..ROUNDS {
                    // Free whatever the previous worker sent us.
                    while let Ok(batch) = rx.try_recv() {
                        if r % 2 == 0 {
                            p.free_bulk(batch);
                        } else {
                            drop(batch);
                        }
                    }
                    let n = 1 + (r * 7 + w) % 48;
                    let mut v = Vec::new();
                    if p.alloc_bulk(&mut v, n) == 0 {
                        empty += 1;
                        continue;
                    }
                    for b in v.iter_mut() {
                        if let Some(bytes) = b.bytes_mut() {
                            bytes[0] = w as u8;
                        }
                    }
                    if r % 5 == 0 {
                        // Share a fragment with the next worker.
                        let f = v[0].frag_ref();
                        let _ = next.send(vec![f]);
                    }
                    if r % 3 == 0 {
                        p.free_bulk_from(&mut v, n / 2);
                    }
                    let _ = next.send(v);
                }
                // Stop sending, then free everything the previous worker
                // still sends until it is done too (so each worker frees
                // through its own path even if it ran ahead of its
                // sender), then hand this lcore's cache back to the ring
                // before the thread exits.
                drop(next);
                for batch in rx {
                    drop(batch);
                }
                p.flush_cache();
                empty
            })
        })
        .collect();
    drop(txs);
    let empties: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let s = p.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(
        s.double_release + s.wrong_pool + s.recycle_ring_full,
        0,
        "{s:?}"
    );
    assert_eq!(s.alloc_empty, empties);
    assert!(
        s.recycle_cached > 0
            && s.recycle_ring > 0
            && s.alloc_refill > 0
            && s.recycle_cache_full > 0,
        "caches, ring, refills and flushes were all exercised: {s:?}"
    );
    assert_eq!(s.in_ring + s.in_caches, COUNT as u64, "{s:?}");
    assert_eq!(
        s.alloc_fast + s.alloc_slow,
        s.recycle_cached + s.recycle_ring,
        "every allocation was recycled once"
    );
    // Every buffer can be taken again, each exactly once.
    let all: Vec<Netmem> = std::thread::spawn({
        let p = Arc::clone(&p);
        move || {
            let mut v = Vec::new();
            assert_eq!(p.alloc_bulk(&mut v, COUNT), COUNT);
            assert!(p.alloc().is_none());
            v
        }
    })
    .join()
    .unwrap();
    let mut dmas: Vec<u64> = all.iter().map(Netmem::dma_addr).collect();
    dmas.sort_unstable();
    dmas.dedup();
    assert_eq!(dmas.len(), COUNT);
    drop(all);
    assert!(p.outstanding().is_empty());
}
