//! Logical cores: a thread binds itself to an lcore id (as DPDK's
//! `rte_lcore_id`), and every pool gives that id its own cache.
//!
//! An id is held by at most one live thread at a time: [`set_current`]
//! claims it process-wide and the claim ends when the thread calls
//! [`clear_current`] or exits (or binds another id); when it ends, the
//! id's cache in every pool goes back to that pool's ring. That exclusivity is what lets a pool touch an
//! lcore's cache without atomics.

use crate::sync::{AtomicBool, Ordering, sync_static};
use std::cell::{Cell, RefCell};

use thiserror::Error;

/// Most lcore ids a process can use.
#[cfg(not(loom))]
pub const MAX_LCORES: usize = 128;
/// Most lcore ids a process can use (few under loom: each is a modelled
/// atomic).
#[cfg(loom)]
pub const MAX_LCORES: usize = 4;

const NONE: usize = usize::MAX;

sync_static!(CLAIMED: [AtomicBool; MAX_LCORES] = [const { AtomicBool::new(false) }; MAX_LCORES],
    std::array::from_fn(|_| AtomicBool::new(false)));

#[cfg(not(loom))]
std::thread_local! {
    /// The calling thread's lcore id, `NONE` if it has none. Const-initialised
    /// without a destructor, so reading it is a plain thread-local load.
    static CURRENT: Cell<usize> = const { Cell::new(NONE) };
    /// Owns the claim; dropped at thread exit.
    static CLAIM: RefCell<Option<Claim>> = const { RefCell::new(None) };
    /// Live [`Pin`]s of this thread (each a `Pool::lcore_cache` handle):
    /// while there are any, the thread's id stays bound.
    static PINNED: Cell<usize> = const { Cell::new(0) };
}

/// Keeps the calling thread's lcore id bound while it lives (a cache
/// handle holds one): `set_current` to another id is refused, and
/// `clear_current` leaves the id bound. Not `Send`: it belongs to the
/// thread whose id it pins.
pub(crate) struct Pin(std::marker::PhantomData<*const ()>);

impl Pin {
    /// Pins the calling thread's id; `None` if the thread has none (or is
    /// exiting).
    pub(crate) fn new() -> Option<Pin> {
        if current_raw() == NONE {
            return None;
        }
        PINNED.try_with(|p| p.set(p.get() + 1)).ok()?;
        Some(Pin(std::marker::PhantomData))
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if crate::sync::model_failed() {
            return;
        }
        let _ = PINNED.try_with(|p| p.set(p.get().saturating_sub(1)));
    }
}

fn pinned() -> bool {
    // A thread whose PINNED is gone is exiting; count it as pinned (a
    // handle might still be alive in another thread-local).
    !matches!(PINNED.try_with(Cell::get), Ok(0))
}

// The same, per modelled thread (loom's macro takes no const initialiser).
#[cfg(loom)]
loom::thread_local! {
    /// The calling thread's lcore id, `NONE` if it has none. Const-initialised
    /// without a destructor, so reading it is a plain thread-local load.
    static CURRENT: Cell<usize> = Cell::new(NONE);
    /// Owns the claim; dropped at thread exit.
    static CLAIM: RefCell<Option<Claim>> = RefCell::new(None);
    /// Live [`Pin`]s of this thread.
    static PINNED: Cell<usize> = Cell::new(0);
}

/// Why an lcore id could not be bound.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LcoreError {
    #[error("lcore id {id} is out of range: ids go from 0 to {}", MAX_LCORES - 1)]
    OutOfRange { id: usize },
    #[error("lcore id {id} is already bound to another live thread")]
    Taken { id: usize },
    #[error("this thread is exiting; it can no longer bind an lcore id")]
    ThreadExiting,
    #[error("lcore id {id} is pinned by a live Pool::lcore_cache handle of this thread")]
    Pinned { id: usize },
}

struct Claim(usize);

impl Drop for Claim {
    fn drop(&mut self) {
        // (Under loom the model's thread-locals are dropped after the
        // model, outside it, when it failed.)
        if crate::sync::model_failed() {
            return;
        }
        if pinned() {
            // A cache handle of this id may still be used (from another
            // thread-local's destructor): keep the id claimed for good so
            // that no other thread can reach its caches.
            log::error!(
                "lcore {}: thread exits while a Pool::lcore_cache handle lives; the id stays taken",
                self.0
            );
            return;
        }
        // Stop using the id before another thread may claim it, and hand
        // what this lcore cached in every pool back to the pools' rings, so
        // that a thread exiting without `Pool::flush_cache` strands nothing.
        let _ = CURRENT.try_with(|c| c.set(NONE));
        crate::pool::flush_lcore(self.0);
        CLAIMED[self.0].store(false, Ordering::Release);
    }
}

/// Binds the calling thread to lcore `id` (releasing any id it held).
pub fn set_current(id: usize) -> Result<(), LcoreError> {
    if id >= MAX_LCORES {
        return Err(LcoreError::OutOfRange { id });
    }
    if current() == Some(id) {
        return Ok(());
    }
    if let Some(cur) = current()
        && pinned()
    {
        return Err(LcoreError::Pinned { id: cur });
    }
    // Acquire on success: the previous holder's uses of the id's caches
    // (ended by its Release store in `Claim::drop`) happen before ours.
    // Nothing needs ordering on failure (we touch nothing) nor a release
    // of ours here (the next holder synchronises with our Claim::drop).
    if CLAIMED[id]
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(LcoreError::Taken { id });
    }
    let new = Claim(id);
    CLAIM
        .try_with(|slot| {
            // Dropping the previous claim (if any) clears CURRENT, so set
            // the new id afterwards.
            let old = slot.replace(None);
            drop(old);
            CURRENT.with(|c| c.set(id));
            *slot.borrow_mut() = Some(new);
        })
        .map_err(|_| LcoreError::ThreadExiting)
}

/// Unbinds the calling thread from its lcore id, if any. While a
/// `Pool::lcore_cache` handle of this thread lives, the id stays bound
/// (logged as an error).
pub fn clear_current() {
    if current().is_some() && pinned() {
        log::error!(
            "lcore::clear_current while a Pool::lcore_cache handle lives: lcore {:?} stays bound",
            current()
        );
        return;
    }
    let _ = CLAIM.try_with(|slot| drop(slot.replace(None)));
}

/// The calling thread's lcore id.
#[inline]
pub fn current() -> Option<usize> {
    let id = current_raw();
    (id != NONE).then_some(id)
}

/// The calling thread's lcore id, `usize::MAX` if none (hot path).
#[inline]
pub(crate) fn current_raw() -> usize {
    CURRENT.try_with(Cell::get).unwrap_or(NONE)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_exclusive_and_freed_at_thread_exit() {
        let id = 97;
        std::thread::spawn(move || {
            set_current(id).map_err(|e| e.to_string())?;
            assert_eq!(current(), Some(id));
            // Another thread cannot take it while we hold it.
            let other = std::thread::spawn(move || set_current(id)).join();
            assert_eq!(other.ok(), Some(Err(LcoreError::Taken { id })));
            Ok::<(), String>(())
        })
        .join()
        .map_err(|_| "thread panicked")
        .and_then(|r| r.map_err(|_| "set_current failed"))
        .unwrap();
        // The first thread exited: the id is free again.
        std::thread::spawn(move || {
            assert_eq!(set_current(id), Ok(()));
            clear_current();
            assert_eq!(current(), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn out_of_range_is_refused() {
        assert_eq!(
            set_current(MAX_LCORES),
            Err(LcoreError::OutOfRange { id: MAX_LCORES })
        );
    }

    #[test]
    fn rebinding_moves_the_claim() {
        std::thread::spawn(|| {
            set_current(98).unwrap();
            set_current(99).unwrap();
            assert_eq!(current(), Some(99));
            // 98 was released by the rebind.
            std::thread::spawn(|| set_current(98))
                .join()
                .unwrap()
                .unwrap();
        })
        .join()
        .unwrap();
    }
}
