//! The DMA lifetime rule, written once: a buffer a device was given goes
//! back to its pool (or to the CPU) only after the device is proven
//! stopped.
//!
//! Proof comes in two sizes:
//! - for one queue, a [`QueueStopped`]: the driver saw the device confirm
//!   the queue disabled (igb RXDCTL/TXDCTL.ENABLE read back clear). Only
//!   this crate can make one.
//! - for the whole port, its [`DmaFence`] marked stopped: a device reset
//!   completed or bus mastering was turned off ([`DmaFence::mark_stopped`],
//!   called by the port's close and by its `Drop`, open's error paths
//!   included).
//!
//! A ring releasing its posted buffers without a [`QueueStopped`] (a
//! queue disable that timed out, a chip that cannot confirm a queue off,
//! a ring dropped while the port is live) hands them to the port's fence:
//! they are freed when the fence is marked stopped. A fence dropped while
//! never marked stopped (the device could not be reset nor its bus
//! mastering turned off) leaks what it holds on purpose: counted in
//! [`leaked_buffers`] and logged once, never freed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pool::Netmem;

/// Buffers leaked on purpose by every fence of the process so far.
static LEAKED: AtomicU64 = AtomicU64::new(0);
/// Set once the first leak has been logged.
static LEAK_LOGGED: AtomicBool = AtomicBool::new(false);

/// Buffers this process leaked because a device could not be proven
/// stopped (see the module docs).
pub fn leaked_buffers() -> u64 {
    LEAKED.load(Ordering::Relaxed)
}

/// Proof that the device no longer reads or writes one queue's buffers.
#[derive(Clone, Copy, Debug)]
pub struct QueueStopped(());

impl QueueStopped {
    /// Made only where the device confirmed the queue off.
    pub(crate) fn confirmed() -> QueueStopped {
        QueueStopped(())
    }
}

/// Whether one device can still DMA into the buffers its rings were given,
/// and the buffers waiting for it to be proven stopped.
#[derive(Debug)]
pub struct DmaFence {
    name: String,
    stopped: AtomicBool,
    /// Raw handle words ([`Netmem::into_raw`]) released while the device
    /// was not proven stopped.
    held: Mutex<Vec<usize>>,
}

impl DmaFence {
    /// A fence for a device that may be doing DMA (`name`: for logs).
    pub fn new(name: impl Into<String>) -> Arc<DmaFence> {
        Arc::new(DmaFence {
            name: name.into(),
            stopped: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        })
    }

    /// True once the device is proven stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Buffers held back because the device is not proven stopped.
    pub fn held(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device is proven stopped (a reset completed, or bus mastering is
    /// off): every buffer held so far goes back to its pool, and later
    /// releases free at once.
    pub(crate) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
        let held = std::mem::take(&mut *self.lock());
        if !held.is_empty() {
            log::info!(
                "{}: device stopped, {} held buffers returned",
                self.name,
                held.len()
            );
        }
        for raw in held {
            drop(own(raw));
        }
    }

    /// Releases a raw handle word the device was given: freed now when
    /// `proof` is given or the device is proven stopped, else held until
    /// it is.
    pub(crate) fn release_raw(&self, raw: usize, proof: Option<QueueStopped>) {
        if raw == 0 {
            return;
        }
        if proof.is_some() || self.is_stopped() {
            drop(own(raw));
            return;
        }
        let mut held = self.lock();
        // Checked again under the lock: mark_stopped empties the list
        // after setting the flag.
        if self.is_stopped() {
            drop(held);
            drop(own(raw));
        } else {
            held.push(raw);
        }
    }
}

/// Releases `raw` through `fence` (a ring over host memory has none: no
/// device writes it, it is freed at once).
pub(crate) fn release_raw(fence: Option<&DmaFence>, raw: usize, proof: Option<QueueStopped>) {
    match fence {
        Some(f) => f.release_raw(raw, proof),
        None => drop(own(raw)),
    }
}

/// As [`release_raw`] for an owned handle.
pub(crate) fn release(fence: Option<&DmaFence>, b: Netmem, proof: Option<QueueStopped>) {
    release_raw(fence, b.into_raw(), proof)
}

fn own(raw: usize) -> Option<Netmem> {
    // SAFETY: every non-zero word handed to a fence came from
    // `Netmem::into_raw` and is taken back exactly once (here, from the
    // held list or straight from the caller).
    (raw != 0).then(|| unsafe { Netmem::from_raw(raw) })
}

impl Drop for DmaFence {
    fn drop(&mut self) {
        let held = std::mem::take(self.held.get_mut().unwrap_or_else(|e| e.into_inner()));
        if held.is_empty() {
            return;
        }
        // Never proven stopped: the device may still write these, so they
        // never go back (the words are forgotten).
        LEAKED.fetch_add(held.len() as u64, Ordering::Relaxed);
        if !LEAK_LOGGED.swap(true, Ordering::Relaxed) {
            log::error!(
                "{}: the device could not be proven stopped; {} buffers it may still write are leaked \
                 (never returned to their pool); later leaks are only counted",
                self.name,
                held.len()
            );
        }
    }
}
