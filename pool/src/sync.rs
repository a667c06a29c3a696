//! Atomics and cells used by the lock-free structures, swapped for loom's
//! model-checked versions under `cfg(loom)`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicUsize;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicUsize;

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
