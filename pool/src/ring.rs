//! A bounded multi-producer multi-consumer ring of machine words with bulk,
//! all-or-nothing enqueue and dequeue (the design of DPDK's `rte_ring`).
//!
//! Producers reserve a span by advancing `prod_head` with a CAS, copy their
//! words into the slots, then publish by moving `prod_tail` past the span
//! once every earlier producer has published. Consumers do the same with
//! `cons_head`/`cons_tail`. A producer only writes slots below
//! `cons_tail + capacity`, so a slot is never written while a consumer may
//! still read it; a consumer only reads slots below `prod_tail`, so it never
//! reads a slot before its producer finished writing it.
//!
//! Unlike `rte_ring`, each side keeps in its own line the other side's
//! tail as one of its threads last read it (`seen`, a lower bound, since
//! tails only grow): an operation the bound already allows reads nothing
//! of the other side's line, and only one that the bound refuses reads the
//! tail itself. On two cores sharing one ring, an operation with room or
//! words to spare then moves one contended line fewer (two cores, no
//! cache: single to bulk4 1.4-2.4x rte_mempool with it, 0.96-1.01x
//! before; the README has the run). The price is a few instructions on
//! one core (no cache, bulk4: 50.3 instead of 47.1 per buffer).
//!
//! Not lock-free in the strict sense: a thread preempted between its head
//! and tail updates delays others of its side (they spin, then yield).

use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::{AtomicUsize, spin_wait};

#[cfg(loom)]
type Slot = loom::cell::UnsafeCell<usize>;
#[cfg(not(loom))]
type Slot = core::cell::UnsafeCell<usize>;

use crate::words::INLINE_WORDS;
#[cfg(not(loom))]
use crate::words::copy_words;

/// Spins until `tail` reaches `head` (Acquire loads): an earlier thread of
/// the same side has reserved a span but not yet published it. Out of line,
/// so the uncontended enqueue and dequeue keep few registers.
#[cold]
#[inline(never)]
fn wait_until(tail: &AtomicUsize, head: usize) {
    let mut spins = 0;
    while tail.load(Acquire) != head {
        spin_wait(&mut spins);
    }
}

/// One side's head and tail in one line, as rte_ring's `headtail`: a
/// producer's reservation (the head CAS) brings the line its publish (the
/// tail store) then writes, and a consumer's read of that tail pulls one
/// line per side. With head and tail on lines of their own every operation
/// moved four contended lines between two cores instead of two; measured
/// below 0.9x rte_mempool with no cache on two cores.
struct HeadTail {
    head: AtomicUsize,
    tail: AtomicUsize,
    /// The other side's tail as a thread of this side last read it: a
    /// lower bound of that tail (tails only grow), kept in this side's
    /// line so that an operation the bound already allows does not read
    /// the other side's line at all (see `enqueue_bulk`).
    seen: AtomicUsize,
}

pub(crate) struct Ring {
    prod: CachePadded<HeadTail>,
    cons: CachePadded<HeadTail>,
    mask: usize,
    slots: Box<[SlotLine]>,
}

/// Words per slot line: 128 bytes, the pair of cache lines x86-64's
/// adjacent-line prefetch moves together (crossbeam's `CachePadded`).
const LINE_WORDS: usize = 16;

/// The ring's slots in 128-byte-aligned lines, as rte_ring's slot array
/// starts cache-line aligned. With the allocator's 16-byte alignment a span
/// of whole lines straddled one line more, and two cores moving adjacent
/// spans (bulks of 16 or 32) wrote the line between them both.
#[repr(C, align(128))]
struct SlotLine([Slot; LINE_WORDS]);

// SAFETY: slots are only accessed inside spans reserved through the head
// CAS and published through the tail stores (module docs), so no slot is
// accessed by two threads without a happens-before edge between them.
unsafe impl Sync for Ring {}
// SAFETY: the ring owns plain words; moving it between threads is fine.
unsafe impl Send for Ring {}

impl Ring {
    /// A ring of `capacity` slots; `capacity` must be a power of two (the
    /// pool configuration checks it).
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Self {
            prod: CachePadded::new(HeadTail {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
                seen: AtomicUsize::new(0),
            }),
            cons: CachePadded::new(HeadTail {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
                seen: AtomicUsize::new(0),
            }),
            mask: capacity - 1,
            slots: (0..capacity.div_ceil(LINE_WORDS))
                .map(|_| SlotLine(std::array::from_fn(|_| Slot::new(0))))
                .collect(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The first slot word. Outside loom the lines are contiguous words:
    /// `Slot` is `UnsafeCell<usize>` (the layout of `usize`) and a line is
    /// exactly `LINE_WORDS` of them (128 bytes, its alignment, so no
    /// padding), so words `0..capacity` follow this pointer.
    #[cfg(not(loom))]
    #[inline(always)]
    fn base(&self) -> *mut usize {
        self.slots.as_ptr() as *mut usize
    }

    /// Slot `i & mask` (loom's per-slot path).
    #[cfg(loom)]
    fn slot(&self, i: usize) -> &Slot {
        let i = i & self.mask;
        &self.slots[i / LINE_WORDS].0[i % LINE_WORDS]
    }

    /// Words currently in the ring (a snapshot).
    ///
    /// `cons_tail` is read before `prod_tail`: both only grow and
    /// `cons_tail <= prod_tail` always holds, so the later `prod_tail` is at
    /// least the earlier `cons_tail` (read the other way round, consumers
    /// can pass the `prod_tail` read in between, and the difference wraps
    /// to "full" on an empty ring). When `cons_tail` is the same before and
    /// after, the pair is what the ring held at the `prod_tail` read (that
    /// read acquires: the producer that stored it had seen a `cons_tail` at
    /// least `tail - capacity`, so the `cons_tail` read after it is no older
    /// and an unchanged one pairs with a `tail` at most `capacity` ahead;
    /// `loom_len_never_pairs_a_late_prod_tail_with_an_early_cons_tail`); under
    /// constant traffic a few retries give up on exactness, and the result
    /// stays within `0..=capacity`.
    pub(crate) fn len(&self) -> usize {
        let mut head = self.cons.tail.load(Acquire);
        for _ in 0..4 {
            let tail = self.prod.tail.load(Acquire);
            let again = self.cons.tail.load(Acquire);
            if again == head {
                return tail.wrapping_sub(head).min(self.capacity());
            }
            head = again;
        }
        // Relaxed: no exactness is claimed here, only the range. The lower
        // bound `tail >= head` holds whatever this load's ordering: `head`
        // was read with Acquire from the `cons_tail` store of a consumer
        // that had read a `prod_tail` at least `head`, so coherence keeps
        // this later read at least that new; the upper bound is the clamp.
        let tail = self.prod.tail.load(Relaxed);
        tail.wrapping_sub(head).min(self.capacity())
    }

    /// Enqueues all of `items` or none; returns whether it did.
    #[inline(always)]
    pub(crate) fn enqueue_bulk(&self, items: &[usize]) -> bool {
        let n = items.len();
        if n == 0 {
            return true;
        }
        let cap = self.capacity();
        // Orderings (scripts/loom-mutants weakens each; a model fails):
        // - Every read of `prod_head` acquires (this load, `fresh`, the
        //   CAS's failure) and the CAS releases: a head read from another
        //   producer's reservation comes with the `cons_tail` that producer
        //   checked it against, so the `cons_tail` read after it is no
        //   older, and a head never meets a tail older than its own
        //   reservation (that pair reports a ring with room "full":
        //   `loom_producer_never_finds_a_ring_with_room_full`).
        // - The CAS's success does not acquire: the slots we then write
        //   are covered by our own `cons_tail` read, and the next producer
        //   needs only our check (which our release carries), not what the
        //   producers before us saw.
        // - `cons_tail` acquires: the reads of the slots we reuse, by the
        //   consumers that freed them, happen before our writes.
        // - The wait for `prod_tail` acquires and the publish releases: a
        //   consumer that sees our tail sees the earlier producers' slots
        //   too (our plain store does not continue their release sequence).
        // - `seen` (the consumers' tail as some producer last read it)
        //   is read with Acquire and written with Release: a producer that
        //   trusts a bound another producer read inherits that producer's
        //   acquire of `cons_tail`, so the consumers' reads of the slots
        //   below the bound still happen before our writes.
        let mut head = self.prod.head.load(Acquire);
        let mut cons_tail = self.prod.seen.load(Acquire);
        loop {
            // Free slots by the bound. It is never more than the truth
            // (the bound only lags `cons_tail`), so a span it allows is
            // free. A bound older than `head - cap` or newer than `head`
            // wraps the difference past `cap`: out of step, read the tail.
            let free = cap.wrapping_sub(head.wrapping_sub(cons_tail));
            if free < n || free > cap {
                let now = self.cons.tail.load(Acquire);
                if now != cons_tail {
                    cons_tail = now;
                    self.prod.seen.store(now, Release);
                    continue;
                }
                // `cons_tail` was read after `head` and is current as far
                // as this producer can tell.
                if free < n {
                    let fresh = self.prod.head.load(Acquire);
                    if fresh != head {
                        head = fresh;
                        continue;
                    }
                    return false;
                }
                // `cons_tail` past a stale head: the CAS below fails (the
                // head moved) and retries with the current one.
            }
            match self
                .prod
                .head
                .compare_exchange_weak(head, head.wrapping_add(n), Release, Acquire)
            {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        if n <= INLINE_WORDS && (head & self.mask) + n <= cap {
            self.write_span(head, items);
            self.publish(&self.prod.tail, head, n);
        } else {
            self.write_and_publish(head, items);
        }
        true
    }

    /// The rest of an enqueue whose span wraps or is too long for an
    /// inline copy: out of line, so that the common short enqueue keeps
    /// its few values in scratch registers.
    #[inline(never)]
    fn write_and_publish(&self, head: usize, items: &[usize]) {
        self.write_slots(head, items);
        self.publish(&self.prod.tail, head, items.len());
    }

    /// Moves `tail` (prod_tail or cons_tail) from `head` past the `n`
    /// words of our span, once every earlier span of the same side is
    /// published.
    #[inline(always)]
    fn publish(&self, tail: &AtomicUsize, head: usize, n: usize) {
        if tail.load(Acquire) != head {
            wait_until(tail, head);
        }
        tail.store(head.wrapping_add(n), Release);
    }

    /// Fills all of `dst` from the ring, or takes nothing; returns whether
    /// it did.
    #[inline(always)]
    pub(crate) fn dequeue_bulk(&self, dst: &mut [MaybeUninit<usize>]) -> bool {
        let n = dst.len();
        if n == 0 {
            return true;
        }
        // Orderings: as in `enqueue_bulk`, with the sides swapped (a head
        // that never meets an older `prod_tail`:
        // `loom_consumer_never_finds_a_ring_with_words_empty`; the slots we
        // read published by `prod_tail`; our `cons_tail` carrying the
        // earlier consumers' reads to the producers that reuse the slots).
        let cap = self.capacity();
        let mut head = self.cons.head.load(Acquire);
        let mut prod_tail = self.cons.seen.load(Acquire);
        loop {
            // Words by the bound (`seen`: never more than the truth); out
            // of step with `head` when it wraps past `cap`.
            let avail = prod_tail.wrapping_sub(head);
            if avail < n || avail > cap {
                let now = self.prod.tail.load(Acquire);
                if now != prod_tail {
                    prod_tail = now;
                    self.cons.seen.store(now, Release);
                    continue;
                }
                if avail < n {
                    let fresh = self.cons.head.load(Acquire);
                    if fresh != head {
                        head = fresh;
                        continue;
                    }
                    return false;
                }
                // With a stale head the tail may be behind it; the CAS
                // below then fails (the head moved) and retries.
            }
            match self
                .cons
                .head
                .compare_exchange_weak(head, head.wrapping_add(n), Release, Acquire)
            {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        if n <= INLINE_WORDS && (head & self.mask) + n <= cap {
            self.read_span(head, dst);
            self.publish(&self.cons.tail, head, n);
        } else {
            self.read_and_publish(head, dst);
        }
        true
    }

    /// The rest of a dequeue whose span wraps or is long (as
    /// `write_and_publish`).
    #[inline(never)]
    fn read_and_publish(&self, head: usize, dst: &mut [MaybeUninit<usize>]) {
        self.read_slots(head, dst);
        self.publish(&self.cons.tail, head, dst.len());
    }

    /// `write_slots` for a span that does not wrap.
    #[cfg(not(loom))]
    #[inline(always)]
    fn write_span(&self, head: usize, items: &[usize]) {
        let base = self.base();
        // SAFETY: as in `write_slots`; the span does not wrap (caller's
        // check: (head & mask) + len <= capacity), so it lies inside the
        // slot array from `head & mask`.
        unsafe { copy_words(base.add(head & self.mask), items.as_ptr(), items.len()) };
    }

    /// `read_slots` for a span that does not wrap.
    #[cfg(not(loom))]
    #[inline(always)]
    fn read_span(&self, head: usize, dst: &mut [MaybeUninit<usize>]) {
        let base = self.base() as *const usize;
        // SAFETY: as in `read_slots`; the span does not wrap (caller's
        // check), so it lies inside the slot array from `head & mask`.
        unsafe {
            copy_words(
                dst.as_mut_ptr() as *mut usize,
                base.add(head & self.mask),
                dst.len(),
            )
        };
    }

    #[cfg(loom)]
    fn write_span(&self, head: usize, items: &[usize]) {
        self.write_slots(head, items);
    }

    #[cfg(loom)]
    fn read_span(&self, head: usize, dst: &mut [MaybeUninit<usize>]) {
        self.read_slots(head, dst);
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn write_slots(&self, head: usize, items: &[usize]) {
        let start = head & self.mask;
        let first = items.len().min(self.capacity() - start);
        let base = self.base();
        // SAFETY: the span [head, head + len) was reserved by our CAS and is
        // below cons_tail + capacity, so no other thread accesses these
        // slots until we publish prod_tail; `UnsafeCell<usize>` has the
        // layout of `usize`; both copies stay inside the slot array
        // (start + first <= capacity, items.len() - first <= start).
        unsafe {
            copy_words(base.add(start), items.as_ptr(), first);
            copy_words(base, items.as_ptr().add(first), items.len() - first);
        }
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn read_slots(&self, head: usize, dst: &mut [MaybeUninit<usize>]) {
        let n = dst.len();
        let start = head & self.mask;
        let first = n.min(self.capacity() - start);
        let base = self.base() as *const usize;
        let out = dst.as_mut_ptr() as *mut usize;
        // SAFETY: the span [head, head + n) was reserved by our CAS and lies
        // below prod_tail (published with Release, read with Acquire), so
        // producers finished writing it and none writes it until we publish
        // cons_tail; `dst` has room for `n` words (MaybeUninit<usize> has the
        // layout of usize); reads stay inside the slot array as in
        // `write_slots`.
        unsafe {
            copy_words(out, base.add(start), first);
            copy_words(out.add(first), base, n - first);
        }
    }

    #[cfg(loom)]
    fn write_slots(&self, head: usize, items: &[usize]) {
        for (i, &item) in items.iter().enumerate() {
            let slot = self.slot(head.wrapping_add(i));
            // SAFETY: reserved span, see the non-loom version.
            slot.with_mut(|p| unsafe { *p = item });
        }
    }

    #[cfg(loom)]
    fn read_slots(&self, head: usize, dst: &mut [MaybeUninit<usize>]) {
        for (i, d) in dst.iter_mut().enumerate() {
            let slot = self.slot(head.wrapping_add(i));
            // SAFETY: reserved and published span, see the non-loom version.
            d.write(slot.with(|p| unsafe { *p }));
        }
    }

    /// Test helper: dequeues `n` words appended to `out`, or none.
    #[cfg(test)]
    pub(crate) fn dequeue_vec(&self, out: &mut Vec<usize>, n: usize) -> bool {
        let mut tmp = vec![MaybeUninit::uninit(); n];
        if !self.dequeue_bulk(&mut tmp) {
            return false;
        }
        // SAFETY: a successful dequeue initialised all of `tmp`.
        out.extend(tmp.iter().map(|w| unsafe { w.assume_init() }));
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The layout rte_ring has and the two-core bench needs: slots start
    /// on a 128-byte line (a span of whole lines shares none with the next
    /// span) and each side's head and tail share one line.
    #[cfg(not(loom))]
    #[test]
    fn slots_start_on_a_line_and_each_side_keeps_head_and_tail_together() {
        for cap in [2usize, 16, 64, 4096] {
            let r = Ring::new(cap);
            assert_eq!(r.base() as usize % 128, 0, "capacity {cap}");
            assert!(r.slots.len() * LINE_WORDS >= cap);
            for side in [&*r.prod, &*r.cons] {
                let (h, t) = (
                    &side.head as *const _ as usize,
                    &side.tail as *const _ as usize,
                );
                assert_eq!(h / 128, t / 128, "head and tail on different lines");
            }
            let (p, c) = (&*r.prod as *const _ as usize, &*r.cons as *const _ as usize);
            assert!(p.abs_diff(c) >= 128, "the two sides share a line");
        }
    }

    #[test]
    fn all_or_nothing_at_the_edges() {
        let r = Ring::new(8);
        assert!(r.enqueue_bulk(&[1, 2, 3, 4, 5, 6]));
        assert!(!r.enqueue_bulk(&[7, 8, 9]), "only 2 slots free");
        assert_eq!(r.len(), 6);
        let mut out = Vec::new();
        assert!(!r.dequeue_vec(&mut out, 7));
        assert!(out.is_empty());
        assert!(r.dequeue_vec(&mut out, 4));
        assert_eq!(out, [1, 2, 3, 4]);
        // Wraps around the end of the slot array.
        assert!(r.enqueue_bulk(&[7, 8, 9, 10, 11, 12]));
        assert_eq!(r.len(), 8);
        out.clear();
        assert!(r.dequeue_vec(&mut out, 8));
        assert_eq!(out, [5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(r.len(), 0);
    }

    proptest! {
        /// The ring behaves as a bounded FIFO queue for any sequence of
        /// bulk operations.
        #[test]
        fn matches_a_bounded_fifo(ops in proptest::collection::vec((any::<bool>(), 0usize..20), 1..200)) {
            let r = Ring::new(16);
            let mut model = std::collections::VecDeque::new();
            let mut next = 0usize;
            for (enq, n) in ops {
                if enq {
                    let items: Vec<usize> = (next..next + n).collect();
                    let ok = r.enqueue_bulk(&items);
                    prop_assert_eq!(ok, model.len() + n <= 16);
                    if ok { model.extend(items); next += n; }
                } else {
                    let mut out = Vec::new();
                    let ok = r.dequeue_vec(&mut out, n);
                    prop_assert_eq!(ok, model.len() >= n);
                    if ok {
                        let want: Vec<usize> = model.drain(..n).collect();
                        prop_assert_eq!(out, want);
                    }
                }
                prop_assert_eq!(r.len(), model.len());
            }
        }
    }

    #[test]
    fn concurrent_bulk_traffic_loses_and_duplicates_nothing() {
        use std::sync::Arc;
        let r = Arc::new(Ring::new(64));
        let per_thread = 20_000usize;
        let producers: Vec<_> = (0..2)
            .map(|t| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let mut i = 0;
                    while i < per_thread {
                        let n = (i % 7 + 1).min(per_thread - i);
                        let items: Vec<usize> = (i..i + n).map(|v| t * per_thread + v).collect();
                        if r.enqueue_bulk(&items) {
                            i += n;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut idle = 0u32;
                    while got.len() < per_thread && idle < 2_000_000 {
                        if r.dequeue_vec(&mut got, c % 3 + 1) {
                            idle = 0;
                        } else {
                            idle += 1;
                            std::thread::yield_now();
                        }
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut all: Vec<usize> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        let mut rest = Vec::new();
        while r.dequeue_vec(&mut rest, 1) {}
        all.extend(rest);
        all.sort_unstable();
        assert_eq!(all, (0..2 * per_thread).collect::<Vec<_>>());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Explores every execution with at most two preemptions (the races
    /// these models look for need none or one: a stale value is a choice
    /// of the load, not of the schedule), which keeps them to seconds.
    fn bounded(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(f);
    }

    /// Up to three tries of `f`, yielding to the other threads in between
    /// (an unbounded spin would not end under loom); whether one succeeded.
    fn tries(mut f: impl FnMut() -> bool) -> bool {
        (0..3).any(|_| {
            f() || {
                thread::yield_now();
                false
            }
        })
    }

    /// A thread that dequeues `n` words (asserting it can) and returns them.
    fn spawn_take(r: &Arc<Ring>, n: usize) -> thread::JoinHandle<Vec<usize>> {
        let r = Arc::clone(r);
        thread::spawn(move || {
            let mut out = Vec::new();
            assert!(r.dequeue_vec(&mut out, n));
            out
        })
    }

    /// Two producers race for a ring with room for only some of their
    /// bulks; a consumer takes whatever is published. Every word enqueued
    /// is dequeued exactly once, in per-producer order.
    #[test]
    fn loom_two_producers_one_consumer() {
        loom::model(|| {
            let r = Arc::new(Ring::new(4));
            let p: Vec<_> = [[1, 2], [3, 4]]
                .into_iter()
                .map(|items| {
                    let r = Arc::clone(&r);
                    thread::spawn(move || r.enqueue_bulk(&items))
                })
                .collect();
            let mut got = Vec::new();
            r.dequeue_vec(&mut got, 2);
            let oks: Vec<bool> = p.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(oks.iter().all(|&ok| ok), "4 slots hold both bulks");
            while r.dequeue_vec(&mut got, 1) {}
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2, 3, 4]);
            let pos = |v| got.iter().position(|&x| x == v).unwrap();
            assert!(pos(1) < pos(2) && pos(3) < pos(4));
        });
    }

    /// `len` while a word passes through the ring: never more than the one
    /// word that is ever in it (the old order, `prod_tail` before
    /// `cons_tail`, reported a full ring here).
    #[test]
    fn loom_len_is_a_consistent_snapshot() {
        loom::model(|| {
            let r = Arc::new(Ring::new(4));
            let t = {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let len = r.len();
                    assert!(len <= 1, "len {len} with at most one word in the ring");
                })
            };
            assert!(r.enqueue_bulk(&[1]));
            let mut out = Vec::new();
            assert!(r.dequeue_vec(&mut out, 1));
            t.join().unwrap();
            assert_eq!(r.len(), 0);
        });
    }

    /// A producer and two consumers on a 2-slot ring that wraps: no word is
    /// lost or read twice, and a full ring refuses the bulk whole.
    #[test]
    fn loom_one_producer_two_consumers_wrapping() {
        loom::model(|| {
            let r = Arc::new(Ring::new(2));
            assert!(r.enqueue_bulk(&[9]));
            let mut first = Vec::new();
            assert!(r.dequeue_vec(&mut first, 1));
            let c: Vec<_> = (0..2)
                .map(|_| {
                    let r = Arc::clone(&r);
                    thread::spawn(move || {
                        let mut out = Vec::new();
                        r.dequeue_vec(&mut out, 1);
                        out
                    })
                })
                .collect();
            let pushed = r.enqueue_bulk(&[1, 2]);
            assert!(pushed);
            let mut got: Vec<usize> = c.into_iter().flat_map(|h| h.join().unwrap()).collect();
            while r.dequeue_vec(&mut got, 1) {}
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
        });
    }

    /// A producer waiting for room on a full ring reuses a slot only after
    /// the consumer that freed it has read it: the consumer's read happens
    /// before the producer's write (the producer's Acquire of `cons_tail`),
    /// which loom checks on the slot's cell.
    #[test]
    fn loom_producer_overwrites_a_slot_only_after_its_reader() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            assert!(r.enqueue_bulk(&[1, 2]));
            let c = spawn_take(&r, 1);
            // Full until the consumer's dequeue is published.
            while !r.enqueue_bulk(&[3]) {
                thread::yield_now();
            }
            let mut got = c.join().unwrap();
            while r.dequeue_vec(&mut got, 1) {}
            assert_eq!(got, [1, 2, 3]);
        });
    }

    /// Two producers publish in reservation order; the consumer waits for
    /// both words and so synchronises only with the later producer's
    /// `prod_tail` store, yet reads the earlier producer's slot too: the
    /// later producer's wait (Acquire of the earlier one's tail) is what
    /// carries the earlier slot write to the consumer. No joins before the
    /// reads, which would hide the race.
    #[test]
    fn loom_consumer_reads_an_earlier_producers_slot_through_a_later_tail() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            let p: Vec<_> = [1, 2]
                .into_iter()
                .map(|v| {
                    let r = Arc::clone(&r);
                    thread::spawn(move || assert!(r.enqueue_bulk(&[v])))
                })
                .collect();
            let mut got = Vec::new();
            // A few tries, yielding to the producers in between (an
            // unbounded spin would not end under loom).
            let early = tries(|| r.dequeue_vec(&mut got, 2));
            for h in p {
                h.join().unwrap();
            }
            if !early {
                assert!(r.dequeue_vec(&mut got, 2));
            }
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
        });
    }

    /// Two consumers publish in reservation order; a producer waiting for
    /// two free slots synchronises only with the later consumer's
    /// `cons_tail` store, yet overwrites the earlier consumer's slot too:
    /// the later consumer's wait (Acquire of the earlier one's tail)
    /// carries the earlier slot read to the producer.
    #[test]
    fn loom_producer_overwrites_an_earlier_consumers_slot_through_a_later_tail() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            assert!(r.enqueue_bulk(&[1, 2]));
            let c: Vec<_> = (0..2)
                .map(|_| {
                    let r = Arc::clone(&r);
                    thread::spawn(move || {
                        let mut out = Vec::new();
                        assert!(r.dequeue_vec(&mut out, 1));
                        out
                    })
                })
                .collect();
            let early = tries(|| r.enqueue_bulk(&[3, 4]));
            let mut got: Vec<usize> = c.into_iter().flat_map(|h| h.join().unwrap()).collect();
            if !early {
                assert!(r.enqueue_bulk(&[3, 4]));
            }
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            let mut rest = Vec::new();
            assert!(r.dequeue_vec(&mut rest, 2));
            assert_eq!(rest, [3, 4]);
        });
    }

    /// `len` while words pass one at a time through a 2-slot ring three
    /// times (so `prod_tail` runs ahead of any `cons_tail` value by more
    /// than the capacity): never more than the one word ever in the ring.
    /// A `prod_tail` read that does not acquire could pair a late
    /// `prod_tail` with an early `cons_tail` read twice (unchanged) and
    /// report a full ring.
    #[test]
    fn loom_len_never_pairs_a_late_prod_tail_with_an_early_cons_tail() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            let t = {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let len = r.len();
                    assert!(len <= 1, "len {len} with at most one word in the ring");
                })
            };
            let mut out = Vec::new();
            for v in 0..3 {
                assert!(r.enqueue_bulk(&[v]));
                assert!(r.dequeue_vec(&mut out, 1));
            }
            t.join().unwrap();
            assert_eq!(out, [0, 1, 2]);
            assert_eq!(r.len(), 0);
        });
    }

    /// A producer racing another thread's enqueue/dequeue/enqueue/...
    /// sequence on a 2-slot ring that never holds more than the other
    /// thread's one word and its own: its enqueue must succeed. Reading a
    /// late `prod_head` (or one handed back by a failed CAS) without the
    /// `cons_tail` its reserver saw pairs it with an old `cons_tail` and
    /// reports the ring full.
    #[test]
    fn loom_producer_never_finds_a_ring_with_room_full() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            let t = {
                let r = Arc::clone(&r);
                thread::spawn(move || r.enqueue_bulk(&[9]))
            };
            let mut got = Vec::new();
            for v in 0..3 {
                assert!(r.enqueue_bulk(&[v]));
                if v < 2 {
                    assert!(r.dequeue_vec(&mut got, 1));
                }
            }
            assert!(t.join().unwrap(), "enqueue refused with a slot free");
            while r.dequeue_vec(&mut got, 1) {}
            got.sort_unstable();
            assert_eq!(got, [0, 1, 2, 9]);
        });
    }

    /// The consumers' mirror: a consumer racing another thread's
    /// dequeue/enqueue/dequeue/... sequence on a 2-slot ring that always
    /// holds a word for it must get one. Reading a late `cons_head`
    /// without the `prod_tail` its reserver saw reports the ring empty.
    #[test]
    fn loom_consumer_never_finds_a_ring_with_words_empty() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            assert!(r.enqueue_bulk(&[1, 2]));
            let t = {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let mut out = Vec::new();
                    r.dequeue_vec(&mut out, 1);
                    out
                })
            };
            let mut got = Vec::new();
            for v in 3..5 {
                assert!(r.dequeue_vec(&mut got, 1));
                assert!(r.enqueue_bulk(&[v]));
            }
            assert!(r.dequeue_vec(&mut got, 1));
            let theirs = t.join().unwrap();
            assert_eq!(
                theirs.len(),
                1,
                "dequeue found no word in a ring that had one"
            );
            got.extend(theirs);
            got.sort_unstable();
            assert_eq!(got, [1, 2, 3, 4]);
        });
    }

    /// A consumer that trusts the producers' tail another consumer read
    /// (`seen`) and so reads no `prod_tail` itself still sees the
    /// producer's slot write: the other consumer's Acquire of `prod_tail`
    /// and its Release of `seen`, then our Acquire of it, carry the write
    /// to our read (loom checks it on the slot's cell). No joins before the
    /// reads, which would hide the race.
    #[test]
    fn loom_consumer_trusting_another_consumers_bound_sees_the_slot() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            let p = {
                let r = Arc::clone(&r);
                thread::spawn(move || assert!(r.enqueue_bulk(&[1, 2])))
            };
            let take = |r: &Ring| {
                let mut out = Vec::new();
                tries(|| r.dequeue_vec(&mut out, 1));
                out
            };
            let c = {
                let r = Arc::clone(&r);
                thread::spawn(move || take(&r))
            };
            let mut got = take(&r);
            got.extend(c.join().unwrap());
            p.join().unwrap();
            while r.dequeue_vec(&mut got, 1) {}
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
        });
    }

    /// The producers' mirror: a producer that trusts the consumers' tail
    /// another producer read writes a freed slot only after the consumer
    /// that freed it has read it.
    #[test]
    fn loom_producer_trusting_another_producers_bound_writes_after_the_read() {
        bounded(|| {
            let r = Arc::new(Ring::new(2));
            assert!(r.enqueue_bulk(&[1, 2]));
            let c = spawn_take(&r, 2);
            let put = |r: &Ring, v: usize| tries(|| r.enqueue_bulk(&[v]));
            let p = {
                let r = Arc::clone(&r);
                thread::spawn(move || put(&r, 3))
            };
            let mine = put(&r, 4);
            let mut got = c.join().unwrap();
            let theirs = p.join().unwrap();
            if !theirs {
                assert!(r.enqueue_bulk(&[3]));
            }
            if !mine {
                assert!(r.enqueue_bulk(&[4]));
            }
            assert_eq!(got, [1, 2]);
            while r.dequeue_vec(&mut got, 1) {}
            got[2..].sort_unstable();
            assert_eq!(got, [1, 2, 3, 4]);
        });
    }
}
