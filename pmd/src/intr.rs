//! Interrupts, as DPDK's `intr_conf.lsc` / `intr_conf.rxq`: link state
//! change events and per-queue RX interrupts, each an MSI-X vector that
//! VFIO signals on an eventfd. Nothing here runs per packet: with
//! [`IntrConf`] off (the default) no vector is enabled and no register
//! beyond the polling driver's is written.
//!
//! Vectors (both chips, as Linux's igb and DPDK's `E1000_MISC_VEC_ID` /
//! `E1000_RX_VEC_START`): vector [`OTHER_VECTOR`] (0) takes the "other"
//! causes, of which the driver unmasks only ICR.LSC; vector
//! [`rx_vector`]`(q)` = 1 + q takes RX queue q's write-backs. No TX cause
//! is routed.
//!
//! - Link changes: [`crate::Port::link_events`] gives the one
//!   [`LinkEvents`] queue of a port (an event queue rather than a
//!   callback: the application decides which thread waits, and a callback
//!   would run on a driver thread the application does not own). Each
//!   [`LinkEvents::wait`] that finds the vector signalled reads ICR (which
//!   clears it and re-arms the edge the device signals on), unmasks the
//!   vector again and reports the link as it is then.
//! - RX: [`crate::RxQueue::enable_interrupt`] clears the queue's pending
//!   cause, drains its eventfd and unmasks its vector;
//!   [`crate::RxQueue::interrupt_fd`] is what to wait on (epoll/poll, or
//!   [`wait_readable`]); [`crate::RxQueue::disable_interrupt`] masks it.
//!   The device auto-masks the vector when it fires (82576 GPIE.EIAME with
//!   EIAM; 82574 CTRL_EXT.EIAME with IAM), so one interrupt wakes the
//!   sleeper and the next needs a new enable. A frame that arrived between
//!   the application's last empty poll and the enable raised no
//!   interrupt (its cause was cleared by the enable): the application
//!   must poll the ring once more after enabling and before sleeping,
//!   as l3fwd-power does.
//!
//! Moderation: each RX vector's EITR is set to [`IntrConf::rx_interval_us`]
//! (125 µs by default: at most 8000 interrupts per second and queue; the
//! first interrupt after an idle spell is not delayed, as the interval
//! counts from the previous one).
//!
//! Lifecycle: the eventfds belong to the port for its whole life, so a
//! [`LinkEvents`] or an RX queue's fd stays valid across
//! [`crate::Port::stop`] and [`crate::Port::start`]; the vectors are
//! masked and MSI-X disabled at every stop and close (and when the port is
//! dropped), before the device is reset or released, and enabled again by
//! each start that asks for interrupts.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use hw::vfio::EventFd;

use crate::error::{Error, Result};
use crate::port::{LinkStatus, PortOps};

/// The vector of the "other" causes (link state change).
pub const OTHER_VECTOR: u32 = 0;

/// The vector of RX queue `queue`.
pub const fn rx_vector(queue: u16) -> u32 {
    1 + queue as u32
}

/// EITR of an RX vector by default: 125 µs between interrupts at least.
pub const DEFAULT_RX_INTERVAL_US: u16 = 125;

/// Which interrupts a port enables (DPDK's `rte_eth_intr_conf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntrConf {
    /// Link state change events ([`crate::Port::link_events`]).
    pub lsc: bool,
    /// One RX interrupt per RX queue ([`crate::RxQueue::enable_interrupt`]).
    pub rxq: bool,
    /// Smallest gap between two interrupts of one RX queue, in µs (the
    /// vector's EITR); 0: no moderation.
    pub rx_interval_us: u16,
}

impl Default for IntrConf {
    fn default() -> Self {
        IntrConf {
            lsc: false,
            rxq: false,
            rx_interval_us: DEFAULT_RX_INTERVAL_US,
        }
    }
}

impl IntrConf {
    /// Whether any vector is needed.
    pub fn any(&self) -> bool {
        self.lsc || self.rxq
    }
}

/// What a chip programs for one start: which causes get vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixPlan {
    /// ICR.LSC unmasked on [`OTHER_VECTOR`].
    pub lsc: bool,
    /// RX queues `0..rx_queues` routed to [`rx_vector`] (0: none).
    pub rx_queues: u16,
    pub rx_interval_us: u16,
}

impl MsixPlan {
    /// Vectors to enable: the other vector and one per routed RX queue.
    pub fn vectors(&self) -> u32 {
        1 + u32::from(self.rx_queues)
    }
    /// Bit per vector in use (EIAC/EIAM/EIMS on the 82576).
    pub fn vector_mask(&self) -> u32 {
        let rx = ((1u64 << self.vectors()) - 1) as u32 & !(1 << OTHER_VECTOR);
        rx | if self.lsc { 1 << OTHER_VECTOR } else { 0 }
    }
}

/// The eventfds of a port's vectors, kept for the port's life.
pub(crate) struct Vectors {
    pub other: Arc<EventFd>,
    pub rx: Vec<Arc<EventFd>>,
    /// The plan programmed, while MSI-X is enabled.
    pub on: Option<MsixPlan>,
}

fn new_fd() -> Result<Arc<EventFd>> {
    EventFd::new(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
        .map(Arc::new)
        .map_err(Error::Interrupt)
}

impl Vectors {
    pub fn new() -> Result<Vectors> {
        Ok(Vectors {
            other: new_fd()?,
            rx: Vec::new(),
            on: None,
        })
    }
    /// The fds of vectors `0..plan.vectors()`, creating RX ones not made yet.
    pub fn fds_for(&mut self, plan: &MsixPlan) -> Result<Vec<Arc<EventFd>>> {
        while self.rx.len() < usize::from(plan.rx_queues) {
            self.rx.push(new_fd()?);
        }
        let mut v = vec![self.other.clone()];
        v.extend(self.rx.iter().take(usize::from(plan.rx_queues)).cloned());
        Ok(v)
    }
}

/// Reads (and so resets) an eventfd's count; 0 when it was not signalled.
pub fn drain(fd: &EventFd) -> u64 {
    fd.read().unwrap_or(0)
}

/// Waits until one of `fds` is readable or `timeout` passes (`None`:
/// forever); returns, per fd, whether it is readable. A signal
/// interrupting the wait returns all false.
pub fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) -> Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    // SAFETY: `p` is a valid array of `p.len()` pollfd structures that
    // poll only reads and writes within for the duration of the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(Error::Interrupt(e));
    }
    Ok(p.iter().map(|x| x.revents & libc::POLLIN != 0).collect())
}

/// One link state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    /// The link as read when the event was taken.
    pub status: LinkStatus,
}

/// A port's link state change events ([`crate::Port::link_events`]); one
/// per port at a time.
pub struct LinkEvents {
    fd: Arc<EventFd>,
    ops: Arc<dyn PortOps>,
    last_up: bool,
    taken: Arc<AtomicBool>,
}

impl LinkEvents {
    pub(crate) fn new(
        fd: Arc<EventFd>,
        ops: Arc<dyn PortOps>,
        taken: Arc<AtomicBool>,
    ) -> LinkEvents {
        let last_up = ops.link().up;
        LinkEvents {
            fd,
            ops,
            last_up,
            taken,
        }
    }

    /// The eventfd the link vector signals, for the application's own
    /// epoll; call [`LinkEvents::wait`] with a zero timeout once it is
    /// readable.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits up to `timeout` for the link vector. `Some` when it fired and
    /// ICR.LSC was set or the link's up/down state differs from the last
    /// event's; `None` on timeout or a signal the device raised for
    /// another cause (RXO).
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<LinkEvent>> {
        let ready = wait_readable(&[self.fd()], Some(timeout))?;
        if !ready.first().copied().unwrap_or(false) {
            return Ok(None);
        }
        drain(&self.fd);
        let lsc = self.ops.ack_link_interrupt();
        let status = self.ops.link();
        if lsc || status.up != self.last_up {
            self.last_up = status.up;
            return Ok(Some(LinkEvent { status }));
        }
        Ok(None)
    }
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.taken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_masks_name_the_vectors_in_use() {
        let p = MsixPlan {
            lsc: true,
            rx_queues: 2,
            rx_interval_us: 125,
        };
        assert_eq!((p.vectors(), p.vector_mask()), (3, 0b111));
        let rx_only = MsixPlan { lsc: false, ..p };
        assert_eq!(rx_only.vector_mask(), 0b110);
        let lsc_only = MsixPlan { rx_queues: 0, ..p };
        assert_eq!((lsc_only.vectors(), lsc_only.vector_mask()), (1, 0b1));
    }

    #[test]
    fn an_eventfd_wakes_the_waiter_and_drains_to_zero() {
        let fd = new_fd().unwrap();
        let r = fd.as_raw_fd();
        assert_eq!(
            wait_readable(&[r], Some(Duration::ZERO)).unwrap(),
            vec![false]
        );
        fd.write(1).unwrap();
        assert_eq!(
            wait_readable(&[r], Some(Duration::from_millis(100))).unwrap(),
            vec![true]
        );
        assert_eq!(drain(&fd), 1);
        assert_eq!(drain(&fd), 0);
        assert_eq!(
            wait_readable(&[r], Some(Duration::ZERO)).unwrap(),
            vec![false]
        );
    }
}
