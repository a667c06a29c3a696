//! Loom models of the pool's lock-free paths, run over the crate's real
//! code (`Pool`, `Netmem`, `PageRef`, `lcore`) with a heap-backed test
//! provider. The buffer bytes the CPU would touch are modelled by loom
//! cells in the provider (`Witness::payload`), so a missing
//! happens-before between one owner's writes and the next owner's (or the
//! provider's release of the memory) is a data race loom reports.
//!
//! `scripts/loom-mutants` weakens each ordering of these paths, one at a
//! time, and checks that one of these models (or the ring's) fails; the
//! table of which model catches which weakening is in `docs/design.md`
//! ("Loom models and what they catch").
//!
//! A model whose thread panics must not panic again while unwinding (that
//! aborts the test binary and hides which model failed): the pool's
//! destructors do nothing then (`sync::model_failed`), nor does
//! `TestRegion`'s.

use std::alloc::Layout;
use std::ptr::NonNull;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::sync::Ordering::{Acquire, Relaxed, SeqCst};
use crate::{DmaRegion, Netmem, Pool, PoolConfig, lcore};

const PAGE: usize = 4096;
const BUF: usize = 64;

/// What the models watch of a provider's memory.
struct Witness {
    /// One cell per buffer standing for its bytes.
    payload: Vec<UnsafeCell<u64>>,
    /// Times the provider's memory was released (dropped).
    freed: AtomicUsize,
}

impl Witness {
    fn new(count: usize) -> Arc<Self> {
        Arc::new(Witness {
            payload: (0..count).map(|_| UnsafeCell::new(0)).collect(),
            freed: AtomicUsize::new(0),
        })
    }

    /// A CPU read of buffer `nm`'s bytes by one of its holders.
    fn read(&self, nm: &Netmem) -> u64 {
        self.payload[nm.index() as usize].with(|p| {
            // SAFETY: loom checks this access against every other one.
            unsafe { *p }
        })
    }

    /// A CPU write into buffer `nm`'s bytes by its current owner.
    fn write(&self, nm: &Netmem, v: u64) {
        self.payload[nm.index() as usize].with_mut(|p| {
            // SAFETY: loom checks this access against every other one.
            unsafe { *p = v }
        });
    }
}

/// A one-page heap region whose release is visible to the models.
struct TestRegion {
    ptr: NonNull<u8>,
    witness: Arc<Witness>,
}

const LAYOUT: Layout = match Layout::from_size_align(PAGE, PAGE) {
    Ok(l) => l,
    Err(_) => panic!("bad layout"),
};

impl TestRegion {
    fn new(witness: &Arc<Witness>) -> Self {
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(LAYOUT) };
        TestRegion {
            ptr: NonNull::new(p).expect("test allocation"),
            witness: Arc::clone(witness),
        }
    }
}

impl Drop for TestRegion {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A model failed (perhaps inside one of these cells): touching
            // them again would panic in a destructor and abort the binary,
            // hiding which model failed. Leak the page.
            return;
        }
        // Freeing the memory is a write to every buffer's bytes: it must
        // come after every owner's last access.
        for c in &self.witness.payload {
            // SAFETY: loom checks the access.
            c.with_mut(|p| unsafe { *p = u64::MAX });
        }
        self.witness.freed.fetch_add(1, SeqCst);
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), LAYOUT) };
    }
}

// SAFETY: the region owns its allocation; the pointer is not tied to a
// thread and is only dereferenced through the pool's buffer API.
unsafe impl Send for TestRegion {}
// SAFETY: as above.
unsafe impl Sync for TestRegion {}

// SAFETY: `ptr` is valid for PAGE bytes for the region's lifetime, page
// aligned; the IOVA is a fake, page-aligned, unique enough for a model.
unsafe impl DmaRegion for TestRegion {
    fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }
    fn iova(&self) -> u64 {
        0x1000_0000
    }
    fn len(&self) -> usize {
        PAGE
    }
    fn page_size(&self) -> usize {
        PAGE
    }
}

/// A pool of `count` 64-byte buffers with `lcores` caches of `cache`
/// entries and the smallest ring that holds them.
fn pool(count: usize, lcores: usize, cache: usize) -> (Arc<Witness>, std::sync::Arc<Pool>) {
    let w = Witness::new(count);
    let cfg = PoolConfig::new("loom", count)
        .with_buf_size(BUF)
        .with_cache_size(cache)
        .with_ring_size(count.next_power_of_two())
        .with_lcores(lcores)
        .with_track_state(false);
    let p = Pool::with_pages(TestRegion::new(&w), &cfg).expect("model pool");
    (w, p)
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Allocates once; if the pool had the buffer, writes it (the next owner)
/// and frees it.
fn reuse(w: &Witness, pool: &Pool) {
    if let Some(nm) = pool.alloc() {
        w.write(&nm, 2);
    }
}

/// After the model: every buffer back exactly once (count preserved, no
/// duplicate in the ring, none in use).
fn all_back_once(pool: &Pool, count: usize) {
    assert_eq!(pool.in_use(), 0, "buffers still counted in use");
    let mut got = Vec::new();
    while let Some(nm) = pool.alloc() {
        got.push(nm);
        assert!(got.len() <= count, "a buffer came back twice");
    }
    let mut idx: Vec<u32> = got.iter().map(|n| n.index()).collect();
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), count, "a buffer was lost or duplicated");
}

/// Meta.refs, pool references: two holders of one buffer (a handle and a
/// fragment) drop concurrently; one of them returns it, the other's
/// writes happen before the next owner's.
#[test]
fn loom_frag_refs_last_dropper_returns_once() {
    model(|| {
        let (w, pool) = pool(1, 0, 0);
        let mut nm = pool.alloc().expect("one buffer");
        let frag = nm.frag_ref();
        let (w2, p2) = (Arc::clone(&w), std::sync::Arc::clone(&pool));
        let t = thread::spawn(move || {
            w2.write(&nm, 1);
            drop(nm);
            reuse(&w2, &p2);
        });
        drop(frag);
        reuse(&w, &pool);
        t.join().unwrap();
        all_back_once(&pool, 1);
    });
}

/// Meta.refs, a reference taken (`frag_ref`) by one holder while another
/// holder's reference drops: the count never reaches zero early.
#[test]
fn loom_frag_ref_taken_while_another_drops() {
    model(|| {
        let (w, pool) = pool(1, 0, 0);
        let mut nm = pool.alloc().expect("one buffer");
        let frag = nm.frag_ref();
        let (w2, p2) = (Arc::clone(&w), std::sync::Arc::clone(&pool));
        let t = thread::spawn(move || {
            let mut nm = nm;
            let f2 = nm.frag_ref();
            drop(nm);
            w2.write(&f2, 1);
            drop(f2);
            reuse(&w2, &p2);
        });
        drop(frag);
        reuse(&w, &pool);
        t.join().unwrap();
        all_back_once(&pool, 1);
    });
}

/// Meta.refs, `is_unique` (what `bytes_mut` checks before writing): a
/// fragment holder reads the buffer and drops its reference while the
/// other holder asks for the bytes to write; when it is told it holds the
/// only reference, the fragment holder's read happened before its write.
/// (The writer is the spawned thread: with the roles the other way round
/// loom 0.7 explored a single execution, its parent's check before the
/// child's release, and missed a `Relaxed` check.)
#[test]
fn loom_bytes_mut_only_after_the_other_holders_last_read() {
    model(|| {
        let (w, pool) = pool(1, 0, 0);
        let mut nm = pool.alloc().expect("one buffer");
        let frag = nm.frag_ref();
        let w2 = Arc::clone(&w);
        let t = thread::spawn(move || {
            let mut nm = nm;
            if nm.bytes_mut().is_some() {
                w2.write(&nm, 1);
            }
            nm
        });
        // The fragment holder's last access: a read of the bytes.
        let _ = w.read(&frag);
        drop(frag);
        let mut nm = t.join().unwrap();
        assert!(nm.bytes_mut().is_some(), "the only holder cannot write");
        w.write(&nm, 2);
        drop(nm);
        all_back_once(&pool, 1);
    });
}

/// Meta.refs, full (page) references: two `PageRef`s of a page that left
/// the pool's accounting drop concurrently; the last returns it once.
#[test]
fn loom_page_refs_last_dropper_returns_once() {
    model(|| {
        let (w, pool) = pool(1, 0, 0);
        let mut nm = pool.alloc().expect("one buffer");
        let p1 = nm.page_ref().expect("a page");
        w.write(&nm, 1);
        drop(nm);
        let p2 = p1.clone();
        let (w2, pl2) = (Arc::clone(&w), std::sync::Arc::clone(&pool));
        let t = thread::spawn(move || {
            // A holder's last CPU access before its release.
            w2.payload[0].with_mut(|p| {
                // SAFETY: loom checks the access.
                unsafe { *p = 3 }
            });
            drop(p1);
            reuse(&w2, &pl2);
        });
        drop(p2);
        reuse(&w, &pool);
        t.join().unwrap();
        all_back_once(&pool, 1);
    });
}

/// Binds lcore 0, waiting while another thread holds it.
fn claim0() {
    loop {
        match lcore::set_current(0) {
            Ok(()) => return,
            Err(lcore::LcoreError::Taken { .. }) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// lcore claims: two threads bind the same lcore id; never both at once
/// (checked by an occupancy flag and by loom watching the slot), and the
/// claim's end (flush of its cache to the ring) happens before the next
/// holder's use of the slot.
#[test]
fn loom_lcore_claim_is_exclusive_and_handed_over() {
    model(|| {
        let (w, pool) = pool(2, 1, 2);
        let inside = Arc::new(AtomicUsize::new(0));
        let run = {
            let (w, pool, inside) = (Arc::clone(&w), std::sync::Arc::clone(&pool), inside);
            move || {
                claim0();
                assert_eq!(inside.fetch_add(1, Relaxed), 0, "lcore 0 claimed twice");
                if let Some(nm) = pool.alloc() {
                    w.write(&nm, 1);
                }
                inside.fetch_sub(1, Relaxed);
                lcore::clear_current();
            }
        };
        let r2 = run.clone();
        let t = thread::spawn(run);
        r2();
        t.join().unwrap();
        all_back_once(&pool, 2);
    });
}

/// Per-lcore caches with cross-lcore frees: lcore 0 allocates and writes
/// a buffer and hands it to lcore 1, which writes and frees it into its
/// own cache and flushes; lcore 0 then gets it back through the ring
/// (every buffer of the pool, so it must get that one) and writes it.
/// At the end every buffer is back exactly once.
#[test]
fn loom_cross_lcore_free_returns_through_the_ring() {
    model(|| {
        const N: usize = 2;
        let (w, pool) = pool(N, 2, 1);
        let mailbox: Arc<Mutex<Option<Netmem>>> = Arc::new(Mutex::new(None));
        let (w2, p2, m2) = (
            Arc::clone(&w),
            std::sync::Arc::clone(&pool),
            Arc::clone(&mailbox),
        );
        let b = thread::spawn(move || {
            lcore::set_current(1).unwrap();
            let nm = loop {
                if let Some(nm) = m2.lock().unwrap().take() {
                    break nm;
                }
                thread::yield_now();
            };
            w2.write(&nm, 2);
            drop(nm);
            p2.flush_cache();
            lcore::clear_current();
        });
        lcore::set_current(0).unwrap();
        let nm = pool.alloc().expect("a buffer");
        w.write(&nm, 1);
        *mailbox.lock().unwrap() = Some(nm);
        // Take every buffer: the last one is the one lcore 1 frees.
        let mut mine = Vec::new();
        while mine.len() < N {
            match pool.alloc() {
                Some(nm) => {
                    w.write(&nm, 3);
                    mine.push(nm);
                }
                None => thread::yield_now(),
            }
        }
        drop(mine);
        lcore::clear_current();
        b.join().unwrap();
        all_back_once(&pool, N);
    });
}

/// Pool::drop's last-release path: the pool is destroyed while another
/// thread still holds and writes a buffer (from an lcore cache or
/// without one); its memory is released exactly once, after that
/// thread's last access, never before.
fn destroy_with_buffer_out(lcores: usize) {
    model(move || {
        let (w, pool) = pool(1, lcores, lcores);
        let nm = pool.alloc().expect("one buffer");
        let w2 = Arc::clone(&w);
        let t = thread::spawn(move || {
            if lcores > 0 {
                lcore::set_current(0).unwrap();
            }
            assert_eq!(
                w2.freed.load(Acquire),
                0,
                "memory freed while a buffer is out"
            );
            w2.write(&nm, 1);
            drop(nm);
            lcore::clear_current();
        });
        drop(pool);
        t.join().unwrap();
        assert!(w.freed.load(Acquire) <= 1, "memory freed twice");
        // A release that raced the destroy is caught up by the next
        // reclaim (here: creating a pool).
        let (_w, other) = pool_again();
        drop(other);
        assert_eq!(w.freed.load(Acquire), 1, "memory never freed");
    });
}

fn pool_again() -> (Arc<Witness>, std::sync::Arc<Pool>) {
    pool(1, 0, 0)
}

#[test]
fn loom_destroy_frees_once_after_last_release() {
    destroy_with_buffer_out(0);
}

#[test]
fn loom_destroy_frees_once_after_last_cached_release() {
    destroy_with_buffer_out(1);
}
