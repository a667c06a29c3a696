//! Every atomic, lock and thread-local the pool uses, swapped for loom's
//! model-checked versions under `cfg(loom)` (the loom models in `ring.rs`
//! and `pool.rs` run the crate's real code over them).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

/// A `static` initialised lazily under loom (loom's objects cannot be built
/// in a const context, and each model execution needs fresh ones) and
/// const-initialised otherwise: `sync_static!(NAME: Type = const_expr, loom_expr);`.
macro_rules! sync_static {
    ($(#[$attr:meta])* $name:ident : $t:ty = $init:expr, $loom_init:expr) => {
        $(#[$attr])*
        #[cfg(not(loom))]
        static $name: $t = $init;
        #[cfg(loom)]
        loom::lazy_static! {
            $(#[$attr])*
            static ref $name: $t = $loom_init;
        }
    };
}
pub(crate) use sync_static;

/// Whether a loom model failed and this thread is unwinding out of it
/// (always false outside loom). The pool's destructors then do nothing: a
/// loom object touched while the model unwinds panics again, a panic in a
/// destructor during unwinding aborts the whole test binary, and the abort
/// hides which model failed and why. Leaking is harmless there: the model
/// has failed already.
#[inline(always)]
pub(crate) fn model_failed() -> bool {
    #[cfg(loom)]
    {
        std::thread::panicking()
    }
    #[cfg(not(loom))]
    {
        false
    }
}

/// Hint inside a spin-wait; under loom it yields so the model can progress.
#[inline]
pub(crate) fn spin_wait(iteration: &mut u32) {
    #[cfg(loom)]
    {
        let _ = iteration;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        *iteration += 1;
        if *iteration < 64 {
            core::hint::spin_loop();
        } else {
            // Another thread was preempted between its head update and its
            // tail update: let it run (the machine may have few cores).
            std::thread::yield_now();
        }
    }
}
