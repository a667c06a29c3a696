//! The port lifecycle ([`Port::stop`], [`Port::reconfigure`],
//! [`Port::start`]) over simulated queues: a restart builds rings of the new
//! configuration, queue handles must be given back first, a started port
//! refuses a new configuration, counters carry on, and buffers go back to
//! the pool only once the device is proven stopped (a confirmed stop, or
//! the reset a restart does).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool::{Pool, PoolConfig};

use super::SimQueue;
use crate::error::Error;
use crate::fence::{DmaFence, QueueStopped};
use crate::igb::desc::{AdvRx, AdvTx};
use crate::intr::{EventFd, IntrConf, wait_readable};
use crate::port::{LinkStatus, Opened, Port, PortConfig, PortOps, Queues, RxQueueConfig};
use crate::rx::{RxBufLayout, RxRing};
use crate::stats::{HwCounter, HwStats, QueueCounters};
use crate::tx::TxRing;

const BUFS: usize = 2048;
const LAYOUT: RxBufLayout = RxBufLayout {
    headroom: 128,
    buf_len: 1024,
};
static NO_COUNTERS: &[HwCounter] = &[];

/// A device whose queues are simulated: each start (the open's included)
/// "resets" it (the previous fence is marked stopped, as a completed reset
/// proves) and builds rings of the configuration over new simulated
/// queues; its stop confirms the queues off or not, as asked.
struct SimPort {
    confirms: bool,
    fence: Mutex<Arc<DmaFence>>,
    /// The simulated RX and TX queues of the current start.
    devs: Mutex<(Vec<SimQueue>, Vec<SimQueue>)>,
    starts: Mutex<u32>,
    /// The interrupt side ([`crate::intr`]): the link vector's and RX
    /// queue 0's eventfds (the test signals them as the device would),
    /// ICR.LSC pending, the link state, and every arm/disarm asked for.
    link_fd: Arc<EventFd>,
    rx_fd: Arc<EventFd>,
    lsc: AtomicBool,
    up: AtomicBool,
    armed: Mutex<Vec<(u16, bool)>>,
}

impl SimPort {
    fn rx_dev(&self, q: usize) -> SimQueue {
        self.devs.lock().expect("devs").0[q].clone()
    }
    fn fence(&self) -> Arc<DmaFence> {
        self.fence.lock().expect("fence").clone()
    }
    /// The device fires the link vector with the link now `up` and
    /// ICR.LSC set if `lsc`.
    fn fire_link(&self, up: bool, lsc: bool) {
        self.up.store(up, Ordering::Release);
        self.lsc.store(lsc, Ordering::Release);
        self.link_fd.write(1).expect("signal");
    }
    /// Every RX interrupt arm (true) and disarm (false) asked for so far.
    fn armed(&self) -> Vec<(u16, bool)> {
        self.armed.lock().expect("armed").clone()
    }
}

impl PortOps for SimPort {
    crate::sim::port_ops_basics!();
    fn link_interrupt_fd(&self) -> Option<Arc<EventFd>> {
        Some(self.link_fd.clone())
    }
    fn ack_link_interrupt(&self) -> bool {
        self.lsc.swap(false, Ordering::AcqRel)
    }
    fn rx_interrupt_fd(&self, queue: u16) -> Option<Arc<EventFd>> {
        (queue == 0).then(|| self.rx_fd.clone())
    }
    fn set_rx_interrupt(&self, queue: u16, on: bool) {
        self.armed.lock().expect("armed").push((queue, on));
    }
    fn link(&self) -> LinkStatus {
        LinkStatus {
            up: self.up.load(Ordering::Acquire),
            speed: 1000,
            full_duplex: true,
            flow_control: crate::port::FlowControl::None,
        }
    }
    fn read_hw_stats(&self, _hw: &mut HwStats) {}
    fn disable_rx_queue(&self, _queue: u16) -> Option<QueueStopped> {
        self.confirms.then(QueueStopped::confirmed)
    }
    fn disable_tx_queue(&self, _queue: u16) -> Option<QueueStopped> {
        self.confirms.then(QueueStopped::confirmed)
    }
    fn stop(&self) -> Option<QueueStopped> {
        if self.confirms {
            self.fence().mark_stopped();
        }
        self.confirms.then(QueueStopped::confirmed)
    }
    fn check_config(&self, cfg: &PortConfig, _rxq: &[RxQueueConfig]) -> crate::Result<()> {
        crate::queue::Limits::intel_1g("sim", 2).check(cfg)
    }
    fn start(&self, cfg: &PortConfig, rxq: &[RxQueueConfig]) -> crate::Result<Queues> {
        self.check_config(cfg, rxq)?;
        let fence = {
            let mut f = self.fence.lock().expect("fence");
            f.mark_stopped();
            *f = DmaFence::new("sim");
            f.clone()
        };
        let mut q = Queues::default();
        let mut devs = (Vec::new(), Vec::new());
        for (i, c) in rxq.iter().enumerate() {
            let dev = SimQueue::with_fence(cfg.rx_desc, fence.clone());
            let counters = Arc::new(QueueCounters::default());
            let mut ring = RxRing::<AdvRx, _>::new(
                dev.clone(),
                c.pool().clone(),
                LAYOUT,
                None,
                i as u16,
                cfg.rx_free_thresh,
                counters.clone(),
            )
            .map_err(|e| Error::Config(format!("{e:?}")))?;
            ring.start();
            q.push_rx(ring, counters);
            devs.0.push(dev);
        }
        for _ in 0..cfg.tx_queues {
            let dev = SimQueue::with_fence(cfg.tx_desc, fence.clone());
            let counters = Arc::new(QueueCounters::default());
            let ring = TxRing::<AdvTx, _>::new(
                dev.clone(),
                cfg.tx_rs_thresh,
                cfg.tx_free_thresh,
                counters.clone(),
            )
            .map_err(|e| Error::Config(e.to_string()))?;
            q.push_tx(ring, counters);
            devs.1.push(dev);
        }
        *self.devs.lock().expect("devs") = devs;
        *self.starts.lock().expect("starts") += 1;
        Ok(q)
    }
    fn close(&self) {
        self.fence().mark_stopped();
    }
    fn held_buffers(&self) -> usize {
        self.fence().held()
    }
}

fn cfg(rx_desc: u16) -> PortConfig {
    PortConfig {
        rx_desc,
        tx_desc: 64,
        rx_free_thresh: 8,
        wait_for_link: false,
        ..PortConfig::default()
    }
}

/// A port opened over a [`SimPort`] with `cfg`.
fn open(confirms: bool, cfg: &PortConfig) -> (Arc<Pool>, Arc<SimPort>, Port) {
    let pool = Pool::with_host_memory(&PoolConfig::new("life", BUFS).with_buf_size(2048))
        .expect("host pool");
    let ops = Arc::new(SimPort {
        confirms,
        fence: Mutex::new(DmaFence::new("sim")),
        devs: Mutex::new((Vec::new(), Vec::new())),
        starts: Mutex::new(0),
        link_fd: Arc::new(EventFd::new(libc::EFD_NONBLOCK).expect("eventfd")),
        rx_fd: Arc::new(EventFd::new(libc::EFD_NONBLOCK).expect("eventfd")),
        lsc: AtomicBool::new(false),
        up: AtomicBool::new(true),
        armed: Mutex::new(Vec::new()),
    });
    let rxq = vec![RxQueueConfig::new(pool.clone()); usize::from(cfg.rx_queues)];
    let q = ops.start(cfg, &rxq).expect("open");
    let port = Port::from_opened(
        "0000:00:03.0".parse().expect("address"),
        "sim",
        "sim",
        Opened {
            ops: ops.clone(),
            rx: q.rx,
            tx: q.tx,
            rx_counters: q.rx_counters,
            tx_counters: q.tx_counters,
            hw_counters: NO_COUNTERS,
        },
        cfg.clone(),
        rxq,
    );
    (pool, ops, port)
}

/// The device receives `n` frames on RX queue 0 and the app takes them
/// through `q`.
fn receive(q: &mut crate::port::RxQueue, ops: &SimPort, n: usize) -> usize {
    let dev = ops.rx_dev(0);
    for _ in 0..n {
        dev.receive(60, 1024, 0).expect("room");
    }
    let mut out = Vec::new();
    let got = q.rx_burst(&mut out, n);
    drop(out);
    got
}

/// As [`receive`], taking RX queue 0 and giving it back (dropping it).
fn forward(port: &Port, ops: &SimPort, n: usize) -> usize {
    let mut q = port.take_rx_queue(0).expect("RX queue 0");
    receive(&mut q, ops, n)
}

#[test]
fn a_stopped_port_restarts_with_the_new_ring_size_and_counters_carry_on() {
    let (pool, ops, port) = open(true, &cfg(512));
    let mut q = port.take_rx_queue(0).expect("RX queue 0");
    assert_eq!(receive(&mut q, &ops, 20), 20);
    assert!(
        pool.in_use() >= 512,
        "the ring's posted buffers (and refills held)"
    );
    // A started port refuses a new configuration (DPDK: "Please stop port 0
    // first").
    assert!(matches!(
        port.reconfigure(&cfg(256)),
        Err(Error::PortStarted { .. })
    ));
    drop(q);
    port.stop();
    assert!(!port.is_started());
    assert_eq!(pool.in_use(), 0, "confirmed stop: every buffer back");
    assert!(matches!(
        port.take_rx_queue(0),
        Err(Error::PortStopped { .. })
    ));
    port.reconfigure(&cfg(256)).expect("reconfigure");
    assert_eq!(port.config().rx_desc, 256);
    // A bad configuration is refused and the old one kept.
    assert!(matches!(port.reconfigure(&cfg(100)), Err(Error::Config(_))));
    assert_eq!(port.config().rx_desc, 256);
    port.start().expect("start");
    assert!(port.is_started());
    assert_eq!(ops.rx_dev(0).state().descs.len(), 256, "the new ring size");
    assert_eq!(pool.in_use(), 256);
    assert_eq!(forward(&port, &ops, 7), 7);
    let s = port.stats();
    assert_eq!(s.q_ipackets, vec![27], "counts carry on over the restart");
    port.reset_stats();
    assert_eq!(port.stats().q_ipackets, vec![0]);
    port.close();
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn queues_still_taken_are_named_and_block_start_and_reconfigure() {
    let (_pool, _ops, port) = open(
        true,
        &PortConfig {
            rx_queues: 2,
            tx_queues: 2,
            ..cfg(64)
        },
    );
    let rx1 = port.take_rx_queue(1).expect("RX 1");
    let tx0 = port.take_tx_queue(0).expect("TX 0");
    port.stop();
    let e = port.reconfigure(&cfg(128)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::QueueInUse {
                dir: "RX",
                queue: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("RX queue 1 is still taken"), "{e}");
    drop(rx1);
    let e = port.start().unwrap_err();
    assert!(
        matches!(
            e,
            Error::QueueInUse {
                dir: "TX",
                queue: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        !port.is_started(),
        "a refused start leaves the port stopped"
    );
    drop(tx0);
    port.reconfigure(&cfg(128)).expect("all given back");
    port.start().expect("start");
    assert_eq!(port.rx_queue_count(), 1);
    assert!(port.take_rx_queue(1).is_err(), "one RX queue now");
    port.take_rx_queue(0).expect("RX 0 of the new start");
}

#[test]
fn an_unconfirmed_stop_frees_nothing_until_the_restart_resets_the_device() {
    let (pool, ops, port) = open(false, &cfg(128));
    assert_eq!(forward(&port, &ops, 5), 5);
    let old = ops.rx_dev(0);
    port.stop();
    // Not proven stopped: the device may still write every buffer it was
    // given, so none is back in the pool.
    let writes = old.dma_into_posted();
    assert_eq!(writes.len(), 128);
    assert_eq!(pool.in_use(), 128, "no early free");
    assert_eq!(ops.held_buffers(), 128);
    port.start()
        .expect("restart (its reset proves the old rings stopped)");
    assert_eq!(*ops.starts.lock().expect("starts"), 2);
    assert_eq!(
        pool.in_use(),
        128,
        "the old ring's buffers back, the new ring's posted"
    );
    assert_eq!(ops.held_buffers(), 0);
    port.close();
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_port_closed_in_place_gives_every_buffer_back_and_does_not_start_again() {
    let (pool, ops, port) = open(false, &cfg(64));
    assert_eq!(forward(&port, &ops, 3), 3);
    port.close_in_place();
    assert!(port.is_closed() && !port.is_started());
    assert_eq!(
        pool.in_use(),
        0,
        "the close's reset proves the device stopped"
    );
    assert!(matches!(port.start(), Err(Error::PortClosed { .. })));
    assert_eq!(*ops.starts.lock().expect("starts"), 1, "no restart tried");
}

/// The telemetry socket's ethdev commands over a live port: the counters
/// `Port::xstats` publishes, the started state through a stop and a start,
/// and a closed port gone from the list, as a released ethdev in DPDK.
#[test]
fn telemetry_ethdev_commands_follow_the_port() {
    use crate::telemetry::{Telemetry, register_ethdev};
    let (_pool, ops, port) = open(true, &cfg(256));
    let port = Arc::new(port);
    let mut t = Telemetry::new("test");
    register_ethdev(&mut t, vec![port.clone()]).expect("register");
    assert_eq!(forward(&port, &ops, 7), 7);
    let x = t.reply(b"/ethdev/xstats,0");
    assert!(x.contains("\"rx_q0_packets\":7,"), "{x}");
    let hidden = t.reply(b"/ethdev/xstats,0,hide_zero=true");
    assert!(
        hidden.contains("\"rx_q0_packets\":7") && !hidden.contains(":0,"),
        "{hidden}"
    );
    assert!(
        t.reply(b"/ethdev/stats,0")
            .starts_with(r#"{"/ethdev/stats":{"ipackets":0,"opackets":0,"#)
    );
    let info = t.reply(b"/ethdev/info,0");
    assert!(
        info.contains("\"dev_started\":1") && info.contains("\"rxq_state\":[1]"),
        "{info}"
    );
    assert_eq!(
        t.reply(b"/ethdev/link_status,0"),
        r#"{"/ethdev/link_status":{"status":"UP","speed":1000,"duplex":"full-duplex"}}"#
    );
    port.stop();
    let info = t.reply(b"/ethdev/info,0");
    assert!(
        info.contains("\"dev_started\":0") && info.contains("\"rxq_state\":[0]"),
        "{info}"
    );
    port.set_promiscuous(true);
    assert!(t.reply(b"/ethdev/info,0").contains("\"promiscuous\":1"));
    assert_eq!(t.reply(b"/ethdev/list"), r#"{"/ethdev/list":[0]}"#);
    port.close_in_place();
    assert_eq!(t.reply(b"/ethdev/list"), r#"{"/ethdev/list":[]}"#);
    assert_eq!(t.reply(b"/ethdev/stats,0"), r#"{"/ethdev/stats":null}"#);
    assert_eq!(t.reply(b"/ethdev/stats,1"), r#"{"/ethdev/stats":null}"#);
}

fn intr_cfg(lsc: bool, rxq: bool) -> PortConfig {
    PortConfig {
        intr_conf: IntrConf {
            lsc,
            rxq,
            ..IntrConf::default()
        },
        ..cfg(64)
    }
}

fn readable(fd: RawFd) -> bool {
    wait_readable(&[fd], Some(Duration::ZERO)).expect("poll")[0]
}

/// A port opened with `cfg` and its RX queue 0, taken.
fn open_with_queue_0(cfg: &PortConfig) -> (Arc<SimPort>, Port, crate::port::RxQueue) {
    let (_pool, ops, port) = open(true, cfg);
    let q = port.take_rx_queue(0).expect("queue 0");
    (ops, port, q)
}

#[test]
fn with_interrupts_off_link_events_and_rx_arming_are_refused() {
    let (ops, port, mut q) = open_with_queue_0(&cfg(64));
    assert!(matches!(
        port.link_events(),
        Err(Error::InterruptsOff { field: "lsc", .. })
    ));
    assert_eq!(q.interrupt_fd(), None);
    assert!(matches!(
        q.enable_interrupt(),
        Err(Error::RxInterruptsOff { queue: 0 })
    ));
    drop(q);
    assert!(
        ops.armed().is_empty(),
        "nothing armed or disarmed: no per-queue interrupt work when off"
    );
}

#[test]
fn link_events_report_each_change_and_only_one_queue_is_out() {
    let (_pool, ops, port) = open(true, &intr_cfg(true, false));
    let mut ev = port.link_events().expect("link events");
    assert!(matches!(
        port.link_events(),
        Err(Error::LinkEventsTaken { .. })
    ));
    let tick = Duration::from_millis(10);
    assert_eq!(ev.wait(tick).expect("wait"), None, "nothing fired");
    // The link goes down: ICR.LSC and the vector.
    ops.fire_link(false, true);
    let down = ev.wait(tick).expect("wait").expect("the down event");
    assert!(!down.status.up);
    assert!(!readable(ev.fd()), "the wait drained the eventfd");
    // The vector for another cause (RXO): no event.
    ops.fire_link(false, false);
    assert_eq!(ev.wait(tick).expect("wait"), None);
    // Up again, with ICR.LSC already cleared by another ICR reader (the
    // statistics): the changed state still makes it an event.
    ops.fire_link(true, false);
    let up = ev.wait(tick).expect("wait").expect("the up event");
    assert!(up.status.up);
    drop(ev);
    let again = port.link_events().expect("free again once dropped");
    // It survives a stop and a start (the port's eventfds stay).
    port.stop();
    port.start().expect("restart");
    assert_eq!(again.fd(), ops.link_fd.as_raw_fd());
}

#[test]
fn an_rx_interrupt_is_armed_with_its_eventfd_drained_and_disarmed_on_drop() {
    let (ops, _port, mut q) = open_with_queue_0(&intr_cfg(false, true));
    let fd = q.interrupt_fd().expect("RX interrupts on");
    // A stale signal from an earlier sleep must not wake the next one.
    ops.rx_fd.write(3).expect("signal");
    q.enable_interrupt().expect("arm");
    assert!(!readable(fd), "arming drains the eventfd");
    assert_eq!(ops.armed(), [(0, true)]);
    ops.rx_fd.write(1).expect("the device fires");
    assert!(wait_readable(&[fd], Some(Duration::from_millis(100))).expect("poll")[0]);
    q.disable_interrupt().expect("disarm");
    assert!(!readable(fd));
    drop(q);
    assert_eq!(
        ops.armed(),
        [(0, true), (0, false), (0, false)],
        "a queue given back is disarmed"
    );
}

/// Binds a 1 MiB host region to RX queue 1 of `port`, which must refuse.
fn bind_queue_1(port: &Port) -> pool::PoolError {
    use pool::{BindConfig, DevmemBinding, HostDeviceMemory};
    DevmemBinding::bind(
        HostDeviceMemory::new(1 << 20),
        port,
        &[1],
        &BindConfig::new(4096),
    )
    .expect_err("the bind must be refused")
}

#[test]
fn a_port_tells_a_devmem_binding_which_queues_split_headers() {
    use pool::{BindTarget, PoolError};
    let c = PortConfig {
        rx_queues: 2,
        ..cfg(128)
    };
    let (pool, _ops, port) = open(true, &c);
    assert_eq!(port.bind_key(), "0000:00:03.0");
    assert_eq!((port.rx_queue_count(), port.rx_ring_size(1)), (2, 128));
    // Opened without header split: device memory cannot take whole frames.
    assert!(!port.rx_header_split(1));
    let err = bind_queue_1(&port);
    assert!(
        matches!(err, PoolError::NoHeaderSplit { queue: 1, .. }),
        "{err}"
    );
    // Header split on queue 1 (tcp-data-split on): what is refused now is
    // the fake region, which no container maps.
    let headers = Pool::with_host_memory(&PoolConfig::new("hdr", 512).with_buf_size(256))
        .expect("header pool");
    port.stop();
    port.reconfigure_with_queues(
        &c,
        &[
            RxQueueConfig::new(pool.clone()),
            RxQueueConfig::header_split(headers, pool.clone()),
        ],
    )
    .expect("reconfigure");
    assert!(port.rx_header_split(1) && !port.rx_header_split(0));
    let err = bind_queue_1(&port);
    assert!(
        matches!(err, PoolError::RegionNotInContainer { .. }),
        "{err}"
    );
}
