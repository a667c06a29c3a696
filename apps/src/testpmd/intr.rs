//! Interrupts in testpmd: `--rx-intr` (l3fwd-power's habit: poll while
//! busy, sleep on the RX queues' interrupts when idle) and the link state
//! change events printed as DPDK's testpmd prints them.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pmd::{LinkEvents, LinkStatus, Packet};
use pool::Pool;

use super::engine::Stream;

/// How long one sleep waits before looking at the stop flag again.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What an `--rx-intr` lcore did, for its line in the report.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SleepReport {
    /// CPU time the lcore's thread used (awake), and the wall time it ran.
    pub cpu: Duration,
    pub wall: Duration,
    /// Times it armed the interrupts and went to sleep.
    pub sleeps: u64,
    /// Sleeps an RX interrupt ended (the others ended for the stop).
    pub wakeups: u64,
    /// Arms whose re-poll found frames (no sleep).
    pub rechecks_busy: u64,
}

impl SleepReport {
    /// The report line of lcore `lcore`.
    pub fn line(&self, lcore: usize) -> String {
        let wall = self.wall.as_secs_f64();
        let pct = if wall > 0.0 {
            100.0 * self.cpu.as_secs_f64() / wall
        } else {
            0.0
        };
        format!(
            "Lcore {lcore}: rx-intr: awake CPU time {:.3} s of {:.3} s ({pct:.1}%), \
             sleeps={} wakeups={} busy-rechecks={}",
            self.cpu.as_secs_f64(),
            wall,
            self.sleeps,
            self.wakeups,
            self.rechecks_busy
        )
    }
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes; the clock id is a
    // constant every Linux has.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn poll_all(streams: &mut [Stream], scratch: &mut Vec<Packet>, pool: &Pool) -> usize {
    streams.iter_mut().map(|s| s.run_burst(scratch, pool)).sum()
}

fn set_armed(streams: &mut [Stream], on: bool) {
    for s in streams.iter_mut() {
        if let Some(rx) = s.rx.as_mut() {
            let r = if on {
                rx.enable_interrupt()
            } else {
                rx.disable_interrupt()
            };
            if let Err(e) = r {
                log::warn!("{e}");
            }
        }
    }
}

/// The forwarding loop of an `--rx-intr` lcore: bursts while any stream
/// has frames; after `idle_polls` rounds with none, the RX interrupts of
/// every stream are armed and the rings polled once more (a frame written
/// back before the arm raised no interrupt), and only when that finds
/// nothing the lcore sleeps on the queues' eventfds; the interrupts are
/// disarmed on wake. Runs until `stop`.
pub fn lcore_loop(
    streams: &mut [Stream],
    scratch: &mut Vec<Packet>,
    pool: &Pool,
    stop: &AtomicBool,
    idle_polls: u32,
) -> SleepReport {
    let (cpu0, t0) = (thread_cpu_time(), Instant::now());
    let fds: Vec<RawFd> = streams
        .iter()
        .filter_map(|s| s.rx.as_ref().and_then(|r| r.interrupt_fd()))
        .collect();
    let mut rep = SleepReport::default();
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if poll_all(streams, scratch, pool) > 0 {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < idle_polls || fds.is_empty() {
            continue;
        }
        idle = 0;
        set_armed(streams, true);
        if poll_all(streams, scratch, pool) > 0 {
            rep.rechecks_busy += 1;
            set_armed(streams, false);
            continue;
        }
        rep.sleeps += 1;
        while !stop.load(Ordering::Relaxed) {
            match pmd::intr::wait_readable(&fds, Some(STOP_CHECK)) {
                Ok(ready) if ready.contains(&true) => {
                    rep.wakeups += 1;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!("{e}; polling instead");
                    break;
                }
            }
        }
        set_armed(streams, false);
    }
    rep.cpu = thread_cpu_time().saturating_sub(cpu0);
    rep.wall = t0.elapsed();
    rep
}

/// The text of one link state change: DPDK testpmd's event line, then
/// the link as DPDK's link status check prints it.
pub fn event_lines(port: usize, l: &LinkStatus) -> String {
    let state = if l.up {
        format!(
            "Link Up - speed {} Mbps - {}",
            l.speed,
            if l.full_duplex {
                "full-duplex"
            } else {
                "half-duplex"
            }
        )
    } else {
        "Link Down".to_string()
    };
    format!("\nPort {port}: link state change event\nPort {port}: {state}")
}

/// One thread per port waiting on its link state change events and
/// printing them; stopped and joined when dropped.
pub struct LscWatcher {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LscWatcher {
    /// Watches `(port id, events)`; `json`: print to stderr (stdout holds
    /// the JSON report).
    pub fn start(ports: Vec<(usize, LinkEvents)>, json: bool) -> LscWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (id, mut ev) in ports {
            // What fired before the watch began is the start's link-up,
            // which the link status check printed.
            let _ = ev.wait(Duration::ZERO);
            let stop = stop.clone();
            let t = std::thread::Builder::new()
                .name(format!("lsc-{id}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match ev.wait(STOP_CHECK) {
                            Ok(Some(e)) => {
                                let s = event_lines(id, &e.status);
                                if json {
                                    eprintln!("{s}");
                                } else {
                                    println!("{s}");
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                log::warn!("port {id}: link events: {e}");
                                return;
                            }
                        }
                    }
                });
            match t {
                Ok(t) => threads.push(t),
                Err(e) => log::warn!("port {id}: no link event thread: {e}"),
            }
        }
        LscWatcher { stop, threads }
    }
}

impl Drop for LscWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmd::FlowControl;

    #[test]
    fn event_lines_are_dpdks() {
        let up = LinkStatus {
            up: true,
            speed: 1000,
            full_duplex: true,
            flow_control: FlowControl::Full,
        };
        assert_eq!(
            event_lines(1, &up),
            "\nPort 1: link state change event\nPort 1: Link Up - speed 1000 Mbps - full-duplex"
        );
        let down = LinkStatus { up: false, ..up };
        assert!(event_lines(0, &down).ends_with("Port 0: Link Down"));
    }

    #[test]
    fn a_sleeping_thread_uses_no_cpu_time_and_a_spinning_one_does() {
        let c0 = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - c0;
        // Spinning advances it (however loaded the machine: the loop ends
        // when 20 ms of CPU time were used, or fails after 10 s of wall).
        let c1 = thread_cpu_time();
        let t = Instant::now();
        while thread_cpu_time() - c1 < Duration::from_millis(20) {
            assert!(t.elapsed() < Duration::from_secs(10), "no CPU time counted");
            std::hint::spin_loop();
        }
        assert!(slept < Duration::from_millis(10), "{slept:?}");
    }

    #[test]
    fn report_line_gives_the_awake_share() {
        let r = SleepReport {
            cpu: Duration::from_millis(100),
            wall: Duration::from_secs(4),
            sleeps: 3,
            wakeups: 2,
            rechecks_busy: 1,
        };
        assert_eq!(
            r.line(1),
            "Lcore 1: rx-intr: awake CPU time 0.100 s of 4.000 s (2.5%), sleeps=3 wakeups=2 busy-rechecks=1"
        );
    }
}
