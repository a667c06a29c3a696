//! The public port API: open a port by PCI address (the driver is chosen by
//! PCI ID), take its queues out to the cores that poll them, and manage the
//! port (link, statistics, filters, MTU, stop/close) from any thread.
//!
//! Lifecycle, as DPDK's `rte_eth_dev_stop`/`configure`/`start`: an open
//! port is started. [`Port::stop`] stops it (its queue handles stop
//! working; their buffers go back once the device is proven stopped,
//! [`crate::fence`]); [`Port::reconfigure`] changes what the next start
//! builds (queue counts, ring sizes, MTU, VLAN strip, RSS, thresholds) and
//! [`Port::start`] brings the queues up again on the same VFIO device.
//! Every queue handle taken out must be given back (dropped) before
//! `reconfigure` or `start`: [`Error::QueueInUse`] names the first one
//! still out.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hw::PciAddress;
use pool::Pool;

use crate::error::{Error, Result};
use crate::fence::QueueStopped;
use crate::flow::{FlowEntry, FlowError, FlowId, FlowRule};
use crate::intr::{EventFd, IntrConf, LinkEvents};
pub use crate::mac::FlowControl;
use crate::packet::Packet;
use crate::rss::RssConfig;
use crate::stats::{HwCounter, HwStats, PortStats, QueueCounters, QueueSnapshot, XStat};

/// How to bring a port up.
#[derive(Clone, Debug)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// Descriptors per RX ring.
    pub rx_desc: u16,
    /// Descriptors per TX ring.
    pub tx_desc: u16,
    /// Largest IP packet; frames up to MTU + 14 + 4 (+ VLAN tags) are
    /// received, longer ones span several buffers.
    pub mtu: u16,
    pub rss: RssConfig,
    pub promiscuous: bool,
    pub allmulti: bool,
    /// Strip VLAN tags on receive into [`Packet::vlan_tci`].
    pub vlan_strip: bool,
    /// Receive offloads asked for (DPDK's `rx_offloads`).
    pub rx_offloads: RxOffloads,
    /// Wait for link up in [`Port::open`] (else check [`Port::link`]).
    pub wait_for_link: bool,
    pub link_timeout: Duration,
    /// RX: refilled descriptors are handed back with one tail (RDT) write
    /// once more than this many are held (DPDK's `rx_free_thresh`), capped
    /// at a quarter of the ring. Default 128 (on a 512 ring; 64 on 256):
    /// one RDT write per 129 packets at most. Measured in the guest with
    /// TDT once per non-empty burst (bursts average ~30 frames there):
    /// 0.038-0.041 register writes per forwarded packet at burst 32 and no
    /// reads; with 64 it was 0.043-0.046 (DPDK's igb, threshold 32:
    /// 0.047-0.055; its em: 0.063-0.069; `scripts/bench --mmio`).
    pub rx_free_thresh: u16,
    /// TX: Report Status every this many descriptors.
    pub tx_rs_thresh: u16,
    /// TX: clean up when fewer descriptors than this are free.
    pub tx_free_thresh: u16,
    /// 802.3x flow control to advertise and use (default full, as Linux's
    /// igb/e1000e); what the link partner agrees to is in
    /// [`LinkStatus::flow_control`].
    pub flow_control: FlowControl,
    /// Interrupts to enable (DPDK's `intr_conf`): link state change
    /// events and RX queue interrupts ([`crate::intr`]). Off by default:
    /// a polling port enables no MSI-X vector.
    pub intr_conf: IntrConf,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 512,
            tx_desc: 512,
            mtu: 1500,
            rss: RssConfig::default(),
            promiscuous: false,
            allmulti: false,
            vlan_strip: false,
            rx_offloads: RxOffloads::default(),
            wait_for_link: true,
            link_timeout: Duration::from_secs(10),
            rx_free_thresh: 128,
            tx_rs_thresh: 32,
            tx_free_thresh: 32,
            flow_control: FlowControl::Full,
            intr_conf: IntrConf::default(),
        }
    }
}

/// Receive offloads a port is asked for (DPDK's `rx_offloads`; VLAN
/// stripping is [`PortConfig::vlan_strip`]). Each costs the device work per
/// frame, so only what is asked for is turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxOffloads {
    /// IP and TCP/UDP checksum validation, reported in
    /// [`Packet::rx_flags`](crate::Packet) (`*_CKSUM_GOOD`/`_BAD`). On by
    /// default, as in Linux's igb/e1000e (NETIF_F_RXCSUM).
    pub checksum: bool,
    /// The RSS hash in every packet (`RxFlags::RSS_HASH`) even with one RX
    /// queue. With more than one RX queue RSS is on whatever this says (it
    /// spreads the flows) and the hash is reported. Off by default.
    pub rss_hash: bool,
}

impl Default for RxOffloads {
    fn default() -> Self {
        RxOffloads {
            checksum: true,
            rss_hash: false,
        }
    }
}

impl PortConfig {
    /// Whether the device hashes (RSS): more than one RX queue, or the hash
    /// asked for.
    pub fn rss_enabled(&self) -> bool {
        self.rx_queues > 1 || self.rx_offloads.rss_hash
    }
}

/// Link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    /// Mbit/s (0 when down).
    pub speed: u32,
    pub full_duplex: bool,
    /// Flow control as resolved after autonegotiation (none when down).
    pub flow_control: FlowControl,
}

impl std::fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.up {
            let d = if self.full_duplex { "full" } else { "half" };
            write!(
                f,
                "up {} Mbps {d}-duplex, flow control {}",
                self.speed, self.flow_control
            )
        } else {
            write!(f, "down")
        }
    }
}

/// Where one RX queue's buffers come from.
///
/// [`RxQueueConfig::new`]: one pool of CPU-readable pages; the device writes
/// each frame into one or more of its buffers.
///
/// [`RxQueueConfig::header_split`]: header split (device-memory receive, as
/// devmem TCP): the device writes each frame's L2+L3+L4 headers into a
/// buffer of `header_pool` (pages the CPU reads) and the payload into
/// buffers of `payload_pool`, which may be device memory (net_iovs) that
/// safe code can never read. Received packets then have their headers as
/// the first segment and the payload as further segments
/// ([`crate::packet::Segment::devmem_frag`]). A frame the device does not
/// split (not TCP/UDP over IP, or headers larger than a header buffer)
/// arrives without [`crate::RxFlags::HEADER_SPLIT`]: on the igb with an
/// empty first segment and the whole frame in payload buffers; on the
/// e1000e (packet-split descriptors, [`crate::e1000e::desc::PsRx`]) with
/// the frame's first bytes, up to a header buffer, in the first segment
/// (a page) and the rest in payload buffers, as the 82574 places it.
#[derive(Clone, Debug)]
pub struct RxQueueConfig {
    pool: Arc<Pool>,
    header_pool: Option<Arc<Pool>>,
    drop_en: Option<bool>,
}

impl RxQueueConfig {
    /// One buffer pool (pages) for whole frames.
    pub fn new(pool: Arc<Pool>) -> Self {
        RxQueueConfig {
            pool,
            header_pool: None,
            drop_en: None,
        }
    }
    /// Header split: headers into `header_pool` (pages), payload into
    /// `payload_pool` (net_iovs or pages). Only drivers whose device splits
    /// headers accept it (igb; e1000e on every RX queue of the port, with
    /// payload buffers that hold a whole frame); others refuse the port
    /// with [`Error::HeaderSplitUnsupported`].
    pub fn header_split(header_pool: Arc<Pool>, payload_pool: Arc<Pool>) -> Self {
        RxQueueConfig {
            pool: payload_pool,
            header_pool: Some(header_pool),
            drop_en: None,
        }
    }
    /// Drop frames for this queue when it has no free descriptor instead
    /// of holding them in the shared packet buffer (DPDK's `rx_drop_en`;
    /// 82576 SRRCTL.DROP_EN). Unset: on with more than one RX queue, so
    /// one starved queue cannot stall the others. The 82574 has no
    /// per-queue drop and ignores it.
    pub fn rx_drop_en(mut self, on: bool) -> Self {
        self.drop_en = Some(on);
        self
    }
    /// The queue's drop setting, if one was given.
    pub fn drop_en(&self) -> Option<bool> {
        self.drop_en
    }
    /// The pool of the device's packet buffers (the payload pool with
    /// header split).
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
    /// The header pool, with header split.
    pub fn header_pool(&self) -> Option<&Arc<Pool>> {
        self.header_pool.as_ref()
    }
}

/// The receive side of one queue, as a ring implements it.
pub trait RxBurst: Send {
    fn rx_burst(&mut self, out: &mut Vec<Packet>, max: usize) -> usize;
    /// Gives back every buffer ([`crate::fence`]: posted ones only with
    /// `proof` or once the device is proven stopped).
    fn release(&mut self, proof: Option<QueueStopped>) -> usize;
}

/// The transmit side of one queue, as a ring implements it.
pub trait TxBurst: Send {
    fn tx_burst(&mut self, pkts: &mut Vec<Packet>) -> usize;
    /// As [`crate::tx::TxRing::tx_prepare`].
    fn tx_prepare(&self, pkt: &mut Packet) -> std::result::Result<(), crate::tx::TxError>;
    fn cleanup(&mut self) -> u16;
    /// As [`RxBurst::release`].
    fn release(&mut self, proof: Option<QueueStopped>) -> usize;
}

impl<F: crate::rx::RxFormat, H: crate::ring::QueueHw> RxBurst for crate::rx::RxRing<F, H> {
    fn rx_burst(&mut self, out: &mut Vec<Packet>, max: usize) -> usize {
        crate::rx::RxRing::rx_burst(self, out, max)
    }
    fn release(&mut self, proof: Option<QueueStopped>) -> usize {
        crate::rx::RxRing::release(self, proof)
    }
}

impl<F: crate::tx::TxFormat, H: crate::ring::QueueHw> TxBurst for crate::tx::TxRing<F, H> {
    fn tx_burst(&mut self, pkts: &mut Vec<Packet>) -> usize {
        crate::tx::TxRing::tx_burst(self, pkts)
    }
    fn tx_prepare(&self, pkt: &mut Packet) -> std::result::Result<(), crate::tx::TxError> {
        crate::tx::TxRing::tx_prepare(self, pkt)
    }
    fn cleanup(&mut self) -> u16 {
        crate::tx::TxRing::cleanup(self)
    }
    fn release(&mut self, proof: Option<QueueStopped>) -> usize {
        crate::tx::TxRing::release(self, proof)
    }
}

/// Port-wide operations a driver provides. Called from any thread; a driver
/// serialises read-modify-write register updates itself.
pub trait PortOps: Send + Sync {
    fn driver_name(&self) -> &'static str;
    fn mac_addr(&self) -> [u8; 6];
    fn link(&self) -> LinkStatus;
    /// Adds the device's clear-on-read counters to `hw`.
    fn read_hw_stats(&self, hw: &mut HwStats);
    /// Driver-level event counters (name, value) for xstats.
    fn events(&self) -> Vec<(String, u64)>;
    fn set_promiscuous(&self, on: bool);
    fn set_allmulti(&self, on: bool);
    /// Extra unicast addresses accepted besides the port's own.
    fn set_unicast_filters(&self, addrs: &[[u8; 6]]) -> Result<()>;
    /// Multicast addresses accepted (hash filter).
    fn set_multicast_filters(&self, addrs: &[[u8; 6]]);
    fn set_mtu(&self, mtu: u16) -> Result<()>;
    /// Stops one RX queue. `Some` when the device confirmed it off (it
    /// writes nothing to the queue's buffers any more), `None` when that
    /// is not proven (the buffers then wait for the device's fence).
    fn disable_rx_queue(&self, queue: u16) -> Option<QueueStopped>;
    /// Stops one TX queue; as [`PortOps::disable_rx_queue`] for reads.
    fn disable_tx_queue(&self, queue: u16) -> Option<QueueStopped>;
    /// Stops receive and transmit on the whole port; `Some` when the
    /// device is proven stopped (every queue confirmed off, or a completed
    /// reset; then buffers the port's fence held are released too).
    fn stop(&self) -> Option<QueueStopped>;
    /// Checks a configuration for the next [`PortOps::start`] without
    /// touching the device (`rxq`: one per RX queue).
    fn check_config(&self, cfg: &PortConfig, rxq: &[RxQueueConfig]) -> Result<()>;
    /// Brings a stopped port up again per `cfg` (`rxq`: one per RX queue),
    /// as the open did after its one-time device setup: the device is
    /// reset and initialised again (which proves the previous rings
    /// stopped), then the new queues are built and started.
    fn start(&self, cfg: &PortConfig, rxq: &[RxQueueConfig]) -> Result<Queues>;
    /// Quiesces the device for good: reset, interrupts masked, bus
    /// mastering off; marks the device's fence stopped when either the
    /// reset or bus mastering off succeeded.
    fn close(&self);
    /// Buffers held (not yet freed) because the device is not proven
    /// stopped, for xstats.
    fn held_buffers(&self) -> usize {
        0
    }
    /// `(reads, writes)` of the register BAR so far, when counted.
    fn mmio_counts(&self) -> Option<(u64, u64)> {
        None
    }
    /// Steers frames matching `rule` to RX queue `queue` ([`crate::flow`]);
    /// by default nothing can be matched.
    fn add_flow_rule(
        &self,
        rule: &FlowRule,
        _queue: u16,
    ) -> std::result::Result<FlowId, FlowError> {
        Err(FlowError::Unsupported {
            driver: self.driver_name(),
            rule: rule.to_string(),
            why: "the driver has no flow filters".into(),
        })
    }
    /// Removes a rule, returning what it was.
    fn remove_flow_rule(&self, id: FlowId) -> std::result::Result<FlowEntry, FlowError> {
        Err(FlowError::NoSuchRule { id })
    }
    /// The rules installed, oldest first.
    fn flow_rules(&self) -> Vec<FlowEntry> {
        Vec::new()
    }
    /// The eventfd of the link (other causes) vector, when link interrupts
    /// were ever enabled ([`crate::intr`]).
    fn link_interrupt_fd(&self) -> Option<Arc<EventFd>> {
        None
    }
    /// After the link vector fired: reads ICR (clearing it) and unmasks
    /// the vector again; true when ICR.LSC was seen since the last call.
    fn ack_link_interrupt(&self) -> bool {
        false
    }
    /// The eventfd of RX queue `queue`'s vector, when RX interrupts are on.
    fn rx_interrupt_fd(&self, _queue: u16) -> Option<Arc<EventFd>> {
        None
    }
    /// Arms (clears the pending cause, unmasks) or disarms (masks) RX
    /// queue `queue`'s interrupt.
    fn set_rx_interrupt(&self, _queue: u16, _on: bool) {}
}

/// The queues a driver built, in queue order (at open and at each start).
#[derive(Default)]
pub struct Queues {
    pub rx: Vec<Box<dyn RxBurst>>,
    pub tx: Vec<Box<dyn TxBurst>>,
    pub rx_counters: Vec<Arc<QueueCounters>>,
    pub tx_counters: Vec<Arc<QueueCounters>>,
}

impl Queues {
    /// Adds the next RX queue (already started).
    pub fn push_rx(&mut self, ring: impl RxBurst + 'static, counters: Arc<QueueCounters>) {
        self.rx.push(Box::new(ring));
        self.rx_counters.push(counters);
    }
    /// Adds the next TX queue.
    pub fn push_tx(&mut self, ring: impl TxBurst + 'static, counters: Arc<QueueCounters>) {
        self.tx.push(Box::new(ring));
        self.tx_counters.push(counters);
    }
}

/// What a driver's open returns.
pub struct Opened {
    pub ops: Arc<dyn PortOps>,
    pub rx: Vec<Box<dyn RxBurst>>,
    pub tx: Vec<Box<dyn TxBurst>>,
    pub rx_counters: Vec<Arc<QueueCounters>>,
    pub tx_counters: Vec<Arc<QueueCounters>>,
    pub hw_counters: &'static [HwCounter],
}

/// Everything a driver's open gets.
pub struct OpenArgs<'a> {
    pub device: hw::vfio::Device,
    pub addr: PciAddress,
    pub ids: (u16, u16),
    pub name: &'static str,
    pub config: &'a PortConfig,
    /// One buffer configuration per RX queue (the same pools repeated if
    /// shared).
    pub rxq: Vec<RxQueueConfig>,
}

/// Whether a listed device is driven or refused (and why).
#[derive(Clone, Copy, Debug)]
pub enum Support {
    Yes,
    Refused(&'static str),
}

/// One PCI ID a driver knows.
#[derive(Clone, Copy, Debug)]
pub struct DeviceId {
    pub vendor: u16,
    pub device: u16,
    pub name: &'static str,
    pub support: Support,
}

/// A driver: its PCI IDs and its open function.
pub struct Driver {
    pub name: &'static str,
    pub ids: &'static [DeviceId],
    pub open: fn(OpenArgs<'_>) -> Result<Opened>,
}

/// Every driver, probed in order.
pub static DRIVERS: &[&Driver] = &[&crate::igb::DRIVER, &crate::e1000e::DRIVER];

/// The driver and device entry for a PCI ID.
pub fn find_driver(vendor: u16, device: u16) -> Option<(&'static Driver, &'static DeviceId)> {
    DRIVERS.iter().find_map(|d| {
        d.ids
            .iter()
            .find(|id| id.vendor == vendor && id.device == device)
            .map(|id| (*d, id))
    })
}

struct QueueSlot<T> {
    queue: Option<T>,
    /// Set while the queue's handle is out (taken and not yet dropped).
    out: Arc<AtomicBool>,
}

impl<T> QueueSlot<T> {
    fn new(queue: T) -> Self {
        QueueSlot {
            queue: Some(queue),
            out: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The driver's per-queue counters of the running queues, and the
/// baseline of the last [`Port::reset_stats`].
struct Counters {
    rx: Vec<Arc<QueueCounters>>,
    tx: Vec<Arc<QueueCounters>>,
    base: (Vec<QueueSnapshot>, Vec<QueueSnapshot>),
}

impl Counters {
    /// Takes over the counters of a new set of queues: each carries on
    /// from the figures of the queue of the same index before (so counts
    /// survive a restart), and queues that are new start from zero.
    fn replace(&mut self, rx: Vec<Arc<QueueCounters>>, tx: Vec<Arc<QueueCounters>>) {
        for (new, old) in rx.iter().zip(&self.rx) {
            new.absorb(old.snapshot());
        }
        for (new, old) in tx.iter().zip(&self.tx) {
            new.absorb(old.snapshot());
        }
        self.base.0.resize(rx.len(), QueueSnapshot::default());
        self.base.1.resize(tx.len(), QueueSnapshot::default());
        self.rx = rx;
        self.tx = tx;
    }
}

struct Shared {
    ops: Arc<dyn PortOps>,
    hw_stats: Mutex<HwStats>,
    counters: Mutex<Counters>,
}

/// What the port runs with and whether it is started.
struct Life {
    started: bool,
    config: PortConfig,
    /// One per RX queue of `config`.
    rxq: Vec<RxQueueConfig>,
}

/// An open port.
pub struct Port {
    addr: PciAddress,
    driver: &'static str,
    device_name: &'static str,
    shared: Arc<Shared>,
    life: Mutex<Life>,
    rx: Mutex<Vec<QueueSlot<Box<dyn RxBurst>>>>,
    tx: Mutex<Vec<QueueSlot<Box<dyn TxBurst>>>>,
    closed: AtomicBool,
    /// Set while the port's [`LinkEvents`] is out.
    link_events_taken: Arc<AtomicBool>,
}

/// A port as a device-memory binding sees it ([`pool::DevmemBinding::bind`]):
/// its RX queues as configured now (header split is on for a queue opened
/// with [`RxQueueConfig::header_split`], as `tcp-data-split` on), their
/// descriptor counts, and the process's VFIO container (the one every
/// device DMAs through).
impl pool::BindTarget for Port {
    fn bind_key(&self) -> String {
        self.addr.to_string()
    }
    fn rx_queue_count(&self) -> u16 {
        lock(&self.life).config.rx_queues
    }
    fn rx_header_split(&self, queue: u16) -> bool {
        lock(&self.life)
            .rxq
            .get(usize::from(queue))
            .is_some_and(|q| q.header_pool().is_some())
    }
    fn rx_ring_size(&self, _queue: u16) -> usize {
        usize::from(lock(&self.life).config.rx_desc)
    }
    fn dma_reachable(&self, iova: u64, len: u64) -> bool {
        hw::vfio::Container::global().is_ok_and(|c| c.is_mapped(iova, len))
    }
}

/// One configuration per RX queue of `rx_queues` from one for all or one
/// per queue (the last one repeated for queues beyond those given).
fn per_queue(rxq: &[RxQueueConfig], rx_queues: u16) -> Vec<RxQueueConfig> {
    (0..usize::from(rx_queues))
        .filter_map(|q| rxq.get(q.min(rxq.len().saturating_sub(1))).cloned())
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind that
    // is still consistent (counters, queue slots), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Port {
    /// Opens the device at `addr` with whichever driver fits its PCI ID and
    /// brings it up per `config`. `pools`: one pool shared by all RX queues,
    /// or one per RX queue.
    pub fn open(addr: &PciAddress, config: &PortConfig, pools: &[Arc<Pool>]) -> Result<Port> {
        let rxq: Vec<RxQueueConfig> = pools.iter().cloned().map(RxQueueConfig::new).collect();
        Self::open_with_queues(addr, config, &rxq)
    }

    /// As [`Port::open`], with each RX queue's buffers described by an
    /// [`RxQueueConfig`] (e.g. header split into device memory): one
    /// configuration for all RX queues, or one per RX queue.
    pub fn open_with_queues(
        addr: &PciAddress,
        config: &PortConfig,
        rxq: &[RxQueueConfig],
    ) -> Result<Port> {
        if rxq.is_empty() || (rxq.len() != 1 && rxq.len() != usize::from(config.rx_queues)) {
            return Err(Error::Config(format!(
                "give one pool or one per RX queue ({}), not {}",
                config.rx_queues,
                rxq.len()
            )));
        }
        let device = hw::vfio::Device::open(addr).map_err(|source| Error::Open {
            addr: *addr,
            source,
        })?;
        let (vendor, dev_id) = device.ids().map_err(|source| Error::PciIds {
            addr: *addr,
            source,
        })?;
        let Some((driver, id)) = find_driver(vendor, dev_id) else {
            return Err(Error::Unsupported {
                addr: *addr,
                vendor,
                device: dev_id,
            });
        };
        if let Support::Refused(why) = id.support {
            return Err(Error::Refused {
                addr: *addr,
                name: id.name,
                vendor,
                device: dev_id,
                why,
            });
        }
        let rxq = per_queue(rxq, config.rx_queues);
        log::info!(
            "{addr}: {} ({vendor:04x}:{dev_id:04x}), driver {}",
            id.name,
            driver.name
        );
        let opened = (driver.open)(OpenArgs {
            device,
            addr: *addr,
            ids: (vendor, dev_id),
            name: id.name,
            config,
            rxq: rxq.clone(),
        })?;
        Ok(Port::from_opened(
            *addr,
            driver.name,
            id.name,
            opened,
            config.clone(),
            rxq,
        ))
    }

    /// The port a driver's open built (also over a simulated device in
    /// host tests).
    pub(crate) fn from_opened(
        addr: PciAddress,
        driver: &'static str,
        device_name: &'static str,
        opened: Opened,
        config: PortConfig,
        rxq: Vec<RxQueueConfig>,
    ) -> Port {
        let nrx = opened.rx_counters.len();
        let ntx = opened.tx_counters.len();
        Port {
            addr,
            driver,
            device_name,
            shared: Arc::new(Shared {
                ops: opened.ops,
                hw_stats: Mutex::new(HwStats::new(opened.hw_counters)),
                counters: Mutex::new(Counters {
                    rx: opened.rx_counters,
                    tx: opened.tx_counters,
                    base: (
                        vec![QueueSnapshot::default(); nrx],
                        vec![QueueSnapshot::default(); ntx],
                    ),
                }),
            }),
            life: Mutex::new(Life {
                started: true,
                config,
                rxq,
            }),
            rx: Mutex::new(opened.rx.into_iter().map(QueueSlot::new).collect()),
            tx: Mutex::new(opened.tx.into_iter().map(QueueSlot::new).collect()),
            closed: AtomicBool::new(false),
            link_events_taken: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn pci_address(&self) -> PciAddress {
        self.addr
    }
    /// The driver's name ("igb", "e1000e").
    pub fn driver_name(&self) -> &'static str {
        self.driver
    }
    /// The device's name from the driver's table.
    pub fn device_name(&self) -> &'static str {
        self.device_name
    }
    pub fn mac_addr(&self) -> [u8; 6] {
        self.shared.ops.mac_addr()
    }
    /// RX queues of the configuration (after [`Port::reconfigure`]: of the
    /// next start).
    pub fn rx_queue_count(&self) -> u16 {
        lock(&self.life).config.rx_queues
    }
    /// TX queues of the configuration.
    pub fn tx_queue_count(&self) -> u16 {
        lock(&self.life).config.tx_queues
    }
    /// The configuration the port runs with (stopped: the one the next
    /// start uses).
    pub fn config(&self) -> PortConfig {
        lock(&self.life).config.clone()
    }
    /// The receive offloads in effect, by DPDK's `RTE_ETH_RX_OFFLOAD_*`
    /// names: checksum status and the RSS hash (both drivers set RXCSUM
    /// IPOFL/TUOFL/PCSD), scatter (frames longer than a buffer span
    /// several), VLAN strip when configured.
    pub fn rx_offloads(&self) -> Vec<&'static str> {
        let mut v = vec![
            "IPV4_CKSUM",
            "UDP_CKSUM",
            "TCP_CKSUM",
            "RSS_HASH",
            "SCATTER",
        ];
        if lock(&self.life).config.vlan_strip {
            v.insert(0, "VLAN_STRIP");
        }
        v
    }
    /// False between [`Port::stop`] and the next successful
    /// [`Port::start`].
    pub fn is_started(&self) -> bool {
        lock(&self.life).started
    }

    /// Takes RX queue `i` out of the port, to be polled by one core.
    pub fn take_rx_queue(&self, i: u16) -> Result<RxQueue> {
        let life = lock(&self.life);
        if !life.started {
            return Err(Error::PortStopped { addr: self.addr });
        }
        let mut rx = lock(&self.rx);
        let slot = rx.get_mut(usize::from(i));
        let Some((ring, out)) = slot.and_then(|s| Some((s.queue.take()?, s.out.clone()))) else {
            return Err(Error::NoSuchQueue {
                dir: "RX",
                queue: i,
            });
        };
        out.store(true, Ordering::Release);
        let intr = if life.config.intr_conf.rxq {
            self.shared.ops.rx_interrupt_fd(i)
        } else {
            None
        };
        Ok(RxQueue {
            ring,
            ops: self.shared.ops.clone(),
            index: i,
            out,
            intr,
        })
    }

    /// Takes TX queue `i` out of the port, to be used by one core.
    pub fn take_tx_queue(&self, i: u16) -> Result<TxQueue> {
        let life = lock(&self.life);
        if !life.started {
            return Err(Error::PortStopped { addr: self.addr });
        }
        let mut tx = lock(&self.tx);
        let slot = tx.get_mut(usize::from(i));
        let Some((ring, out)) = slot.and_then(|s| Some((s.queue.take()?, s.out.clone()))) else {
            return Err(Error::NoSuchQueue {
                dir: "TX",
                queue: i,
            });
        };
        out.store(true, Ordering::Release);
        Ok(TxQueue {
            ring,
            ops: self.shared.ops.clone(),
            index: i,
            out,
        })
    }

    /// The first queue whose handle is still out, as the error to return.
    fn check_given_back(&self) -> Result<()> {
        let rx_out = lock(&self.rx)
            .iter()
            .position(|s| s.out.load(Ordering::Acquire));
        let tx_out = lock(&self.tx)
            .iter()
            .position(|s| s.out.load(Ordering::Acquire));
        match (rx_out, tx_out) {
            (Some(q), _) => Err(("RX", q)),
            (None, Some(q)) => Err(("TX", q)),
            (None, None) => Ok(()),
        }
        .map_err(|(dir, q)| Error::QueueInUse {
            addr: self.addr,
            dir,
            queue: q as u16,
        })
    }

    /// `(reads, writes)` of the port's register BAR since it was mapped,
    /// when built with the `mmio-count` feature.
    pub fn mmio_counts(&self) -> Option<(u64, u64)> {
        self.shared.ops.mmio_counts()
    }

    /// Current link state (one register read, no interrupt needed).
    pub fn link(&self) -> LinkStatus {
        self.shared.ops.link()
    }

    /// The port's link state change events (DPDK's
    /// `RTE_ETH_EVENT_INTR_LSC`), when opened with
    /// [`IntrConf::lsc`](crate::IntrConf) ([`Error::InterruptsOff`]
    /// otherwise); one [`LinkEvents`] at a time
    /// ([`Error::LinkEventsTaken`]). It stays valid across stop and start.
    ///
    /// ```no_run
    /// # fn f(port: &pmd::Port) -> pmd::Result<()> {
    /// let mut events = port.link_events()?;
    /// if let Some(e) = events.wait(std::time::Duration::from_secs(1))? {
    ///     println!("link state change event: {}", e.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn link_events(&self) -> Result<LinkEvents> {
        let off = Error::InterruptsOff {
            addr: self.addr,
            what: "link state change",
            field: "lsc",
        };
        if !lock(&self.life).config.intr_conf.lsc {
            return Err(off);
        }
        let fd = self.shared.ops.link_interrupt_fd().ok_or(off)?;
        if self.link_events_taken.swap(true, Ordering::AcqRel) {
            return Err(Error::LinkEventsTaken { addr: self.addr });
        }
        Ok(LinkEvents::new(
            fd,
            self.shared.ops.clone(),
            self.link_events_taken.clone(),
        ))
    }

    /// Polls the link until it is up or `timeout` passes.
    pub fn wait_for_link(&self, timeout: Duration) -> Result<LinkStatus> {
        let start = std::time::Instant::now();
        loop {
            let l = self.link();
            if l.up {
                return Ok(l);
            }
            if start.elapsed() >= timeout {
                return Err(Error::LinkTimeout {
                    addr: self.addr,
                    ms: timeout.as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Port statistics: the device's counters (accumulated: they clear on
    /// read) and the driver's per-queue counters since the last reset.
    pub fn stats(&self) -> PortStats {
        let mut s = PortStats::default();
        {
            let mut hw = lock(&self.shared.hw_stats);
            self.shared.ops.read_hw_stats(&mut hw);
            hw.fill(&mut s);
        }
        let counters = lock(&self.shared.counters);
        let base = &counters.base;
        for (c, b) in counters.rx.iter().zip(&base.0) {
            let q = c.snapshot().since(*b);
            s.q_ipackets.push(q.packets);
            s.q_ibytes.push(q.bytes);
            s.q_errors.push(q.errors + q.bad_desc);
            s.ierrors += q.errors + q.bad_desc;
            // As DPDK: rx_nombuf is the driver's, imissed the device's
            // (MPC); RX-dropped adds the two, so nothing is in both.
            s.rx_nombuf += q.nombuf;
        }
        for (c, b) in counters.tx.iter().zip(&base.1) {
            let q = c.snapshot().since(*b);
            s.q_opackets.push(q.packets);
            s.q_obytes.push(q.bytes);
            s.oerrors += q.errors;
        }
        s
    }

    /// Every counter by name: the basic stats, each hardware counter, each
    /// queue's software counters and the driver's event counters.
    pub fn xstats(&self) -> Vec<XStat> {
        let s = self.stats();
        let mut v = Vec::new();
        let mut push = |name: String, value: u64| v.push(XStat { name, value });
        push("rx_good_packets".into(), s.ipackets);
        push("tx_good_packets".into(), s.opackets);
        push("rx_good_bytes".into(), s.ibytes);
        push("tx_good_bytes".into(), s.obytes);
        push("rx_missed_errors".into(), s.imissed);
        push("rx_errors".into(), s.ierrors);
        push("tx_errors".into(), s.oerrors);
        push("rx_mbuf_allocation_errors".into(), s.rx_nombuf);
        for (name, value) in lock(&self.shared.hw_stats).iter() {
            push(name.to_string(), value);
        }
        let counters = lock(&self.shared.counters);
        let base = &counters.base;
        for (i, (c, b)) in counters.rx.iter().zip(&base.0).enumerate() {
            let q = c.snapshot().since(*b);
            push(format!("rx_q{i}_packets"), q.packets);
            push(format!("rx_q{i}_bytes"), q.bytes);
            push(format!("rx_q{i}_errors"), q.errors);
            push(format!("rx_q{i}_nombuf"), q.nombuf);
            push(format!("rx_q{i}_ring_full"), q.ring_full);
            push(format!("rx_q{i}_bad_desc"), q.bad_desc);
        }
        for (i, (c, b)) in counters.tx.iter().zip(&base.1).enumerate() {
            let q = c.snapshot().since(*b);
            push(format!("tx_q{i}_packets"), q.packets);
            push(format!("tx_q{i}_bytes"), q.bytes);
            push(format!("tx_q{i}_errors"), q.errors);
        }
        drop(counters);
        push(
            "leaked_buffers".into(),
            self.shared.ops.held_buffers() as u64 + crate::fence::leaked_buffers(),
        );
        for (name, value) in self.shared.ops.events() {
            push(name, value);
        }
        v
    }

    /// Zeroes every counter.
    pub fn reset_stats(&self) {
        {
            let mut hw = lock(&self.shared.hw_stats);
            self.shared.ops.read_hw_stats(&mut hw);
            hw.clear();
        }
        let mut counters = lock(&self.shared.counters);
        counters.base.0 = counters.rx.iter().map(|c| c.snapshot()).collect();
        counters.base.1 = counters.tx.iter().map(|c| c.snapshot()).collect();
    }

    /// Turns promiscuous receive on or off (kept in [`Port::config`]).
    pub fn set_promiscuous(&self, on: bool) {
        let mut life = lock(&self.life);
        self.shared.ops.set_promiscuous(on);
        life.config.promiscuous = on;
    }
    /// Turns all-multicast receive on or off (kept in [`Port::config`]).
    pub fn set_allmulti(&self, on: bool) {
        let mut life = lock(&self.life);
        self.shared.ops.set_allmulti(on);
        life.config.allmulti = on;
    }
    /// Unicast addresses accepted besides the port's own.
    pub fn set_unicast_filters(&self, addrs: &[[u8; 6]]) -> Result<()> {
        self.shared.ops.set_unicast_filters(addrs)
    }
    /// Multicast addresses accepted.
    pub fn set_multicast_filters(&self, addrs: &[[u8; 6]]) {
        self.shared.ops.set_multicast_filters(addrs)
    }
    /// Changes the MTU now (started or not) and for every later start.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        let mut life = lock(&self.life);
        self.shared.ops.set_mtu(mtu)?;
        life.config.mtu = mtu;
        Ok(())
    }

    /// Steers every received frame that matches `rule` to RX queue
    /// `queue`, with a hardware filter of the chip ([`crate::flow`]); RSS
    /// then spreads the other frames over the queues no rule steers to.
    /// Refused with a typed [`FlowError`]: a match the chip cannot make
    /// (the 82574L has no queue filters at all), a queue out of range, a
    /// full filter table, a rule with the same match installed.
    ///
    /// ```no_run
    /// # fn f(port: &pmd::Port) -> Result<(), pmd::flow::FlowError> {
    /// use pmd::flow::FlowRule;
    /// // What `flow create 0 ingress pattern eth / ipv4 / udp dst is 5000
    /// // / end actions queue index 1 / end` asks for.
    /// let id = port.add_flow_rule(FlowRule::udp_dst(5000), 1)?;
    /// port.remove_flow_rule(id)?;
    /// # Ok(()) }
    /// ```
    pub fn add_flow_rule(
        &self,
        rule: FlowRule,
        queue: u16,
    ) -> std::result::Result<FlowId, FlowError> {
        self.shared.ops.add_flow_rule(&rule, queue)
    }

    /// Removes rule `id`; when it was the last rule of its queue, RSS
    /// spreads onto that queue again.
    pub fn remove_flow_rule(&self, id: FlowId) -> std::result::Result<FlowEntry, FlowError> {
        self.shared.ops.remove_flow_rule(id)
    }

    /// The rules installed, oldest first.
    pub fn flow_rules(&self) -> Vec<FlowEntry> {
        self.shared.ops.flow_rules()
    }

    /// Removes every rule (testpmd's `flow flush`); returns how many.
    pub fn flush_flow_rules(&self) -> usize {
        let mut n = 0;
        for e in self.flow_rules() {
            if self.remove_flow_rule(e.id).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Stops receive and transmit (`rte_eth_dev_stop`); nothing when
    /// already stopped. The device's counters are read first (a chip that
    /// stops by reset would clear them). Buffers of queues still held by
    /// the port go back to their pools now when the device confirms every
    /// queue off, else at the next start's or close's reset
    /// ([`crate::fence`]); queues taken out return theirs when dropped,
    /// and must be before [`Port::start`].
    pub fn stop(&self) {
        let mut life = lock(&self.life);
        if !life.started {
            return;
        }
        {
            let mut hw = lock(&self.shared.hw_stats);
            self.shared.ops.read_hw_stats(&mut hw);
        }
        let proof = self.shared.ops.stop();
        for s in lock(&self.rx).iter_mut() {
            if let Some(q) = s.queue.as_mut() {
                q.release(proof);
            }
        }
        for s in lock(&self.tx).iter_mut() {
            if let Some(q) = s.queue.as_mut() {
                q.release(proof);
            }
        }
        life.started = false;
        log::info!(
            "{}: stopped ({})",
            self.addr,
            if proof.is_some() {
                "proven stopped"
            } else {
                "queues not confirmed off: their buffers wait for a reset"
            }
        );
    }

    /// Sets what the next [`Port::start`] builds (`rte_eth_dev_configure`
    /// plus the queue setups): queue counts, ring sizes, MTU, VLAN strip,
    /// RSS, thresholds, flow control. The RX buffers keep coming from the
    /// port's pools (the last one given repeated for added queues). The
    /// port must be stopped ([`Error::PortStarted`]) with every queue
    /// handle given back ([`Error::QueueInUse`]); `cfg` is checked against
    /// the device now. `promiscuous`/`allmulti` are the port's current
    /// mode ([`Port::set_promiscuous`]), not taken from `cfg`.
    pub fn reconfigure(&self, cfg: &PortConfig) -> Result<()> {
        let rxq = per_queue(&lock(&self.life).rxq, cfg.rx_queues);
        self.reconfigure_with_queues(cfg, &rxq)
    }

    /// As [`Port::reconfigure`] with new buffer configurations: one for
    /// all RX queues, or one per RX queue.
    pub fn reconfigure_with_queues(&self, cfg: &PortConfig, rxq: &[RxQueueConfig]) -> Result<()> {
        let mut life = lock(&self.life);
        if life.started {
            return Err(Error::PortStarted { addr: self.addr });
        }
        self.check_given_back()?;
        if rxq.is_empty() || (rxq.len() != 1 && rxq.len() != usize::from(cfg.rx_queues)) {
            return Err(Error::Config(format!(
                "give one pool or one per RX queue ({}), not {}",
                cfg.rx_queues,
                rxq.len()
            )));
        }
        let rxq = per_queue(rxq, cfg.rx_queues);
        self.shared.ops.check_config(cfg, &rxq)?;
        life.config = cfg.clone();
        life.rxq = rxq;
        log::info!(
            "{}: configured {} RX / {} TX queues, {} / {} descriptors, MTU {}",
            self.addr,
            cfg.rx_queues,
            cfg.tx_queues,
            cfg.rx_desc,
            cfg.tx_desc,
            cfg.mtu
        );
        Ok(())
    }

    /// Starts a stopped port again with its configuration
    /// (`rte_eth_dev_start`); nothing when already started. Every queue
    /// handle taken before must have been given back (dropped):
    /// [`Error::QueueInUse`] names the first one still out. The driver
    /// resets and initialises the device again (the reset proves the old
    /// rings stopped, so what its fence held goes back) and builds fresh
    /// rings, to be taken with [`Port::take_rx_queue`]. Counters carry on.
    /// On an error the port stays stopped.
    pub fn start(&self) -> Result<()> {
        let mut life = lock(&self.life);
        if life.started {
            return Ok(());
        }
        if self.is_closed() {
            return Err(Error::PortClosed { addr: self.addr });
        }
        self.check_given_back()?;
        {
            let mut hw = lock(&self.shared.hw_stats);
            self.shared.ops.read_hw_stats(&mut hw);
        }
        let q = self.shared.ops.start(&life.config, &life.rxq)?;
        *lock(&self.rx) = q.rx.into_iter().map(QueueSlot::new).collect();
        *lock(&self.tx) = q.tx.into_iter().map(QueueSlot::new).collect();
        lock(&self.shared.counters).replace(q.rx_counters, q.tx_counters);
        life.started = true;
        log::info!("{}: started", self.addr);
        Ok(())
    }

    /// Stops the port and quiesces the device (reset, bus mastering off).
    pub fn close(self) {
        self.close_in_place();
    }

    /// As [`Port::close`] where the `Port` cannot be given up yet (an
    /// application's table of ports, DPDK's `rte_eth_dev_close` by port
    /// id): stops the port and quiesces the device (reset, bus mastering
    /// off, so held buffers go back); it cannot be started again
    /// ([`Error::PortClosed`]). The VFIO device is released when the `Port`
    /// is dropped.
    pub fn close_in_place(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut life = lock(&self.life);
        if life.started {
            let mut hw = lock(&self.shared.hw_stats);
            self.shared.ops.read_hw_stats(&mut hw);
        }
        // The driver's close stops traffic itself before its reset and bus
        // mastering off, which mark the fence stopped: the rings still in
        // the port then free their buffers at once (else the fence keeps
        // them: leaked, counted).
        self.shared.ops.close();
        for s in lock(&self.rx).iter_mut() {
            if let Some(q) = s.queue.as_mut() {
                q.release(None);
            }
        }
        for s in lock(&self.tx).iter_mut() {
            if let Some(q) = s.queue.as_mut() {
                q.release(None);
            }
        }
        life.started = false;
        log::info!("{}: closed", self.addr);
    }

    /// True after [`Port::close_in_place`].
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.close_in_place();
    }
}

/// One RX queue, owned by the core that polls it (`Send`, not `Sync`).
/// Dropping it gives it back to the port (disabled, its buffers released
/// per [`crate::fence`]).
pub struct RxQueue {
    ring: Box<dyn RxBurst>,
    ops: Arc<dyn PortOps>,
    index: u16,
    out: Arc<AtomicBool>,
    /// The queue's interrupt eventfd, with RX interrupts on.
    intr: Option<Arc<EventFd>>,
}

impl RxQueue {
    /// An RX queue over any ring (host tests of the drop path).
    #[cfg(test)]
    pub(crate) fn over(ring: Box<dyn RxBurst>, ops: Arc<dyn PortOps>, index: u16) -> RxQueue {
        RxQueue {
            ring,
            ops,
            index,
            out: Arc::new(AtomicBool::new(true)),
            intr: None,
        }
    }
    /// Receives up to `max` packets into `out` (appended); returns how many.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut Vec<Packet>, max: usize) -> usize {
        self.ring.rx_burst(out, max)
    }
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The eventfd the queue's interrupt signals (to epoll/poll on, or
    /// [`crate::intr::wait_readable`]), when the port was opened with
    /// [`IntrConf::rxq`](crate::IntrConf).
    pub fn interrupt_fd(&self) -> Option<RawFd> {
        self.intr.as_ref().map(|f| f.as_raw_fd())
    }

    /// Arms the queue's interrupt (`rte_eth_dev_rx_intr_enable`): drains
    /// its eventfd, clears the pending cause and unmasks the vector. The
    /// next frame written back signals [`RxQueue::interrupt_fd`] once
    /// (the device masks the vector again as it fires). Frames that
    /// arrived before this call raise nothing: poll the ring once more
    /// after it and before sleeping ([`crate::intr`]). Two register writes;
    /// nothing in [`RxQueue::rx_burst`] depends on it.
    pub fn enable_interrupt(&mut self) -> Result<()> {
        let fd = self
            .intr
            .as_ref()
            .ok_or(Error::RxInterruptsOff { queue: self.index })?;
        crate::intr::drain(fd);
        self.ops.set_rx_interrupt(self.index, true);
        Ok(())
    }

    /// Masks the queue's interrupt (`rte_eth_dev_rx_intr_disable`) and
    /// drains its eventfd.
    pub fn disable_interrupt(&mut self) -> Result<()> {
        let fd = self
            .intr
            .as_ref()
            .ok_or(Error::RxInterruptsOff { queue: self.index })?;
        self.ops.set_rx_interrupt(self.index, false);
        crate::intr::drain(fd);
        Ok(())
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        // The device must stop writing into the ring's buffers before they go
        // back to the pool: without its confirmation they wait for the
        // port's fence (crate::fence).
        if self.intr.is_some() {
            self.ops.set_rx_interrupt(self.index, false);
        }
        let proof = self.ops.disable_rx_queue(self.index);
        self.ring.release(proof);
        self.out.store(false, Ordering::Release);
    }
}

/// One TX queue, owned by the core that uses it (`Send`, not `Sync`).
pub struct TxQueue {
    ring: Box<dyn TxBurst>,
    ops: Arc<dyn PortOps>,
    index: u16,
    out: Arc<AtomicBool>,
}

impl TxQueue {
    /// A TX queue over any ring (host tests of the drop path).
    #[cfg(test)]
    pub(crate) fn over(ring: Box<dyn TxBurst>, ops: Arc<dyn PortOps>, index: u16) -> TxQueue {
        TxQueue {
            ring,
            ops,
            index,
            out: Arc::new(AtomicBool::new(true)),
        }
    }
    /// Queues packets from the front of `pkts` and removes those taken; the
    /// rest (ring full) stay in `pkts`. Returns how many were taken.
    #[inline]
    pub fn tx_burst(&mut self, pkts: &mut Vec<Packet>) -> usize {
        self.ring.tx_burst(pkts)
    }
    /// Checks a packet and does the CPU's part of its offloads without
    /// sending it: the typed reason [`Self::tx_burst`] would drop it (see
    /// [`crate::tx::TxRing::tx_prepare`]; DPDK's `rte_eth_tx_prepare`).
    pub fn tx_prepare(&self, pkt: &mut Packet) -> std::result::Result<(), crate::tx::TxError> {
        self.ring.tx_prepare(pkt)
    }
    /// Frees completed descriptors now (tx_burst does this when needed).
    pub fn cleanup(&mut self) -> u16 {
        self.ring.cleanup()
    }
    pub fn index(&self) -> u16 {
        self.index
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        let proof = self.ops.disable_tx_queue(self.index);
        self.ring.release(proof);
        self.out.store(false, Ordering::Release);
    }
}
