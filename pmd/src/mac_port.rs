//! The port both Intel 1 GbE families make of their shared MAC block,
//! written once: [`MacPort`] holds the [`Mac`], the VFIO device and the
//! station address, does the bring-up they share (BAR 0, bus mastering,
//! global reset, EEPROM MAC, filter tables) and the end of open (counters
//! from zero, link wait), and implements every [`PortOps`] operation that
//! is the same on both. What a chip does its own way (extra interrupt
//! registers, the MTU limit, stopping queues, configuring and starting its
//! queues) is its [`Chip`] impl.
//!
//! The open is [`open`]: the one-time device setup ([`MacPort::bring_up`]:
//! VFIO reset, BAR, bus mastering, [`init_hw`]) then the chip's
//! [`Chip::start_queues`]. A restart after [`PortOps::stop`]
//! ([`PortOps::start`]) runs [`init_hw`] and [`Chip::start_queues`] again
//! on the same device.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fence::{DmaFence, QueueStopped};
use crate::flow::{FilterKind, FlowEntry, FlowError, FlowId, FlowRule, FlowTable};
use crate::intr::{EventFd, MsixPlan, Vectors};
use crate::mac::regs::*;
use crate::mac::{self, Family, FcThresholds, FlowControl, Mac, RxMode};
use crate::phy;
use crate::port::{LinkStatus, OpenArgs, Opened, PortConfig, PortOps, Queues, RxQueueConfig};
use crate::queue::{self, Limits};
use crate::ring::QueueBar;
use crate::rss;
use crate::stats::{HwCounter, HwStats};

/// How long CTRL.RST may take to self-clear (both families).
pub const RESET_TIMEOUT: Duration = Duration::from_millis(100);

/// What one chip does differently; each method gets the port's [`Mac`].
pub trait Chip: Send + Sync + 'static {
    /// Queue, ring and MTU limits; `LIMITS.driver` is the driver name.
    const LIMITS: Limits;
    /// Which variant of the shared semaphores and reset the chip uses.
    const FAMILY: Family;
    /// Receive address (RAL/RAH) entries: all are cleared at open, entries
    /// 1.. hold extra unicast filters.
    const RAR_ENTRIES: usize;
    /// How many times the NVM checksum is read before the open fails
    /// ([`Mac::validate_nvm_checksum`]).
    const NVM_CHECKSUM_ATTEMPTS: u32 = 1;
    /// Why the chip cannot split headers (`None`: it can), for
    /// [`queue::check_rx_pools`].
    const NO_HEADER_SPLIT: Option<&'static str>;
    /// The statistics register table.
    const COUNTERS: &'static [HwCounter];
    /// Programs and starts every queue per `cfg` (`rxq`: one per RX queue)
    /// on a device just initialised by [`init_hw`] (RCTL/TCTL off): the
    /// rings over `doorbell`, receive and transmit settings, RSS, VLAN,
    /// MTU; receive and transmit enabled last.
    fn start_queues(
        &self,
        mac: &Mac,
        cfg: &PortConfig,
        rxq: &[RxQueueConfig],
        doorbell: &QueueBar,
    ) -> Result<Queues>;
    /// Required initialisation bits and errata settings after reset.
    fn init_hw_bits(&self, _mac: &Mac) {}
    /// PCI configuration the chip needs (ASPM, completion timeout), once
    /// per open after [`init_hw`], before bus mastering is turned on.
    fn pci_setup(&self, _device: &hw::vfio::Device, _mac: &Mac) {}
    /// Copper link setup after the PHY is powered up: CTRL.SLU, PHY reset,
    /// the PHY's own settings, the advertisement for `fc`, autoneg restart.
    fn setup_copper(&self, mac: &Mac, fc: FlowControl) -> Result<()>;
    /// Flow control thresholds for frames up to `mtu`.
    fn fc_thresholds(&self, mtu: u16) -> FcThresholds;
    /// Stops receive port-wide (default: RCTL.EN off; the 82574 stops it by
    /// reset in [`Chip::stop_queues`] instead).
    fn stop_rx(&self, mac: &Mac) {
        mac.set_rctl_bits(RCTL_EN, false);
    }
    /// Masks interrupt causes beyond IMC (the 82576's extended ones);
    /// called before and after every global reset.
    fn mask_extra_interrupts(&self, _mac: &Mac) {}
    /// Applies an MTU already checked against [`Chip::LIMITS`], or refuses
    /// one the running receive configuration cannot take (nothing changed).
    fn set_mtu(&self, mac: &Mac, mtu: u16) -> Result<()>;
    /// See [`PortOps::disable_rx_queue`]: true only when the device
    /// confirmed the queue off.
    fn disable_rx_queue(&self, mac: &Mac, queue: u16) -> bool;
    /// See [`PortOps::disable_tx_queue`]: true only when confirmed off.
    fn disable_tx_queue(&self, mac: &Mac, queue: u16) -> bool;
    /// The queue part of [`PortOps::stop`], between RCTL.EN off and
    /// TCTL.EN off: true only when every queue is confirmed off.
    fn stop_queues(&self, mac: &Mac, rx_queues: u16, tx_queues: u16) -> bool;
    /// Routes the causes of `plan` to their MSI-X vectors ([`crate::intr`]:
    /// other causes to vector 0, RX queue q to 1 + q), sets the RX
    /// vectors' moderation, the auto-clear and auto-mask of each used
    /// vector, and unmasks the link state change when `plan.lsc`; RX
    /// vectors stay masked until [`Chip::set_rx_interrupt`]. Called with
    /// the vectors enabled in VFIO, after [`Chip::start_queues`].
    fn configure_msix(&self, mac: &Mac, plan: &MsixPlan);
    /// Arms (pending cause cleared, vector unmasked) or disarms (masked)
    /// RX queue `queue`'s vector.
    fn set_rx_interrupt(&self, mac: &Mac, queue: u16, on: bool);
    /// Unmasks the other-causes vector again after its interrupt was
    /// handled (ICR read).
    fn rearm_link_interrupt(&self, mac: &Mac);
    /// Which of the chip's queue filters matches `rule` (normalized), or
    /// why none can ([`FlowError::Unsupported`]).
    fn flow_filter(&self, rule: &FlowRule) -> std::result::Result<FilterKind, FlowError>;
    /// How many filters of `kind` the chip has.
    fn flow_slots(&self, _kind: FilterKind) -> usize {
        0
    }
    /// Programs filter `slot` of `kind` to steer `rule` (normalized) to
    /// `queue`, or turns it off (`None`).
    fn write_flow_filter(
        &self,
        _mac: &Mac,
        _kind: FilterKind,
        _slot: usize,
        _rule: Option<(&FlowRule, u16)>,
    ) {
    }
}

/// Port-wide state of one device driven through its shared MAC block.
pub struct MacPort<C> {
    pub mac: Mac,
    device: hw::vfio::Device,
    station: [u8; 6],
    rx_queues: AtomicU16,
    tx_queues: AtomicU16,
    chip: C,
    /// BAR 0 and the DMA fence every ring of the current start releases
    /// its buffers through ([`crate::fence`]): marked stopped by a stop
    /// the device confirmed, by the reset of the next start (which puts a
    /// new fence here) and by [`PortOps::close`].
    doorbell: Mutex<QueueBar>,
    closed: AtomicBool,
    /// Reads that found the device gone (all ones), for xstats.
    device_removed: AtomicU64,
    /// The flow control asked for, and whether CTRL.RFCE/TFCE were
    /// resolved for the current link.
    fc_requested: Mutex<FlowControl>,
    fc_resolved: AtomicBool,
    /// Flow rules and the RSS redirection table they leave
    /// ([`crate::flow`]).
    flows: Mutex<Flows>,
    /// The extra unicast and the multicast addresses last set, put back
    /// after the reset of a restart.
    filters: Mutex<Filters>,
    /// The port's interrupt eventfds (made at the first start that asks
    /// for interrupts) and, while MSI-X is enabled, what was programmed
    /// ([`crate::intr`]).
    intr: Mutex<Option<Vectors>>,
}

/// A port's flow rules with the RETA it was opened with and the one
/// programmed now ([`crate::flow`]).
pub struct Flows {
    table: FlowTable,
    rx_queues: u16,
    base_reta: [u8; rss::RETA_LEN],
    reta: [u8; rss::RETA_LEN],
}

impl Flows {
    /// No rules; RSS as `cfg` programs it.
    pub fn new(cfg: &PortConfig) -> Flows {
        let reta = cfg
            .rss
            .reta
            .unwrap_or_else(|| rss::default_reta(cfg.rx_queues));
        Flows {
            table: FlowTable::default(),
            rx_queues: cfg.rx_queues,
            base_reta: reta,
            reta,
        }
    }

    /// Checks `rule` with the chip and the table, programs a filter for it
    /// and takes its queue out of RSS.
    pub fn add<C: Chip>(
        &mut self,
        mac: &Mac,
        chip: &C,
        rule: &FlowRule,
        queue: u16,
    ) -> std::result::Result<FlowEntry, FlowError> {
        let norm = rule.normalized();
        let kind = chip.flow_filter(&norm)?;
        let e = self
            .table
            .plan(rule, queue, self.rx_queues, kind, chip.flow_slots(kind))?;
        chip.write_flow_filter(mac, kind, e.slot, Some((&norm, queue)));
        self.table.insert(e);
        self.update_reta(mac);
        Ok(e)
    }

    /// Turns rule `id`'s filter off and gives RSS back a queue no rule
    /// steers to any more.
    pub fn remove<C: Chip>(
        &mut self,
        mac: &Mac,
        chip: &C,
        id: FlowId,
    ) -> std::result::Result<FlowEntry, FlowError> {
        let e = self.table.remove(id)?;
        chip.write_flow_filter(mac, e.kind, e.slot, None);
        self.update_reta(mac);
        Ok(e)
    }

    pub fn entries(&self) -> &[FlowEntry] {
        self.table.entries()
    }

    /// Reprograms the RETA registers that differ from what the rules now
    /// leave RSS ([`rss::reta_avoiding`]). Only a chip that accepted a rule
    /// gets here with a table to change (the 82574L, whose RETA entries
    /// select queues by bit 7, refuses every rule), so the 82576's RETA
    /// format is the one written.
    fn update_reta(&mut self, mac: &Mac) {
        let want = rss::reta_avoiding(
            &self.base_reta,
            self.rx_queues,
            &self.table.steered_queues(),
        );
        let (old, new) = (rss::reta_registers(&self.reta), rss::reta_registers(&want));
        for (i, (o, n)) in old.iter().zip(&new).enumerate() {
            if o != n {
                mac.w(RETA + 4 * i, *n);
            }
        }
        self.reta = want;
    }
}

/// The address filters set at run time: extra unicast, multicast.
type Filters = (Vec<[u8; 6]>, Vec<[u8; 6]>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data (a fence handle, addresses): still consistent after a
    // panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A driver's open over its [`Chip`]: pools checked, the one-time device
/// setup ([`MacPort::bring_up`]), the queues configured and started
/// ([`Chip::start_queues`]), and the end of open ([`MacPort::finish`]).
pub fn open<C: Chip>(args: OpenArgs<'_>, chip: C) -> Result<Opened> {
    queue::check_rx_pools(C::LIMITS.driver, &args.rxq, C::NO_HEADER_SPLIT)?;
    let (port, setup) = MacPort::bring_up(args, chip)?;
    let queues = port
        .chip
        .start_queues(&port.mac, setup.cfg, &setup.rxq, &setup.doorbell)?;
    port.interrupts_on(setup.cfg)?;
    port.finish(setup.cfg, queues)
}

/// The register part of bring-up, over any [`Mac`] (device BAR or the
/// strict register model): stale locks cleared, global reset, the chip's
/// init bits, wake-up control cleared (WUC), DRV_LOAD, manageability ARP
/// interception off, the NVM checksum validated, the MAC address, filter
/// tables, PHY power-up and copper link setup, flow control registers.
/// Returns the station address.
pub fn init_hw<C: Chip>(mac: &Mac, chip: &C, cfg: &PortConfig) -> Result<[u8; 6]> {
    mac.clear_stale_locks();
    chip.mask_extra_interrupts(mac);
    mac.global_reset(RESET_TIMEOUT)?;
    chip.mask_extra_interrupts(mac);
    chip.init_hw_bits(mac);
    mac.w(WUC, 0);
    mac.set_driver_loaded(true);
    mac.take_manageability();
    mac.validate_nvm_checksum(C::NVM_CHECKSUM_ATTEMPTS)?;
    let station = mac.read_mac()?;
    mac.init_filters(&station, C::RAR_ENTRIES);
    phy::power_up(mac)?;
    chip.setup_copper(mac, cfg.flow_control)?;
    mac.program_flow_control(cfg.flow_control, chip.fc_thresholds(cfg.mtu));
    Ok(station)
}

/// What an open works with after [`MacPort::bring_up`].
pub struct Setup<'a> {
    pub cfg: &'a PortConfig,
    /// One buffer configuration per RX queue.
    pub rxq: Vec<RxQueueConfig>,
    /// BAR 0, where the rings' tail registers are, and the port's DMA
    /// fence.
    pub doorbell: QueueBar,
}

impl<C: Chip> MacPort<C> {
    /// Checks the configuration against the chip's limits and brings the
    /// device to a known state before it may DMA again, in this order:
    /// bus mastering off (a previous owner killed mid-traffic left its
    /// rings enabled, pointing at IOVAs that are gone or now belong to
    /// someone else), the VFIO device reset (FLR or PM reset, where the
    /// kernel offers one for the function; said in the log when it does
    /// not), memory space on (the reset restores config space) so BAR 0
    /// can be programmed, the MAC global reset (CTRL.RST, the CTRL register
    /// in 82576 datasheet section 8 and 82574L datasheet section 10: queue,
    /// ring and RCTL/TCTL registers back to their defaults), and only then
    /// bus mastering on. Then it marks the
    /// driver loaded, reads the MAC address, initialises the address,
    /// multicast and VLAN filter tables and records the receive mode the
    /// configuration asks for ([`Mac::rx_mode`], for the chip's first RCTL
    /// write).
    pub fn bring_up(args: OpenArgs<'_>, chip: C) -> Result<(MacPort<C>, Setup<'_>)> {
        let OpenArgs {
            device,
            addr,
            config: cfg,
            rxq,
            ..
        } = args;
        C::LIMITS.check(cfg)?;
        let bus_master = |source| Error::BusMaster { addr, source };
        device.disable_bus_master().map_err(bus_master)?;
        if device.can_reset() {
            match device.reset() {
                Ok(()) => log::info!("{addr}: VFIO device reset done"),
                // The MAC reset below, with bus mastering off, still stops
                // whatever the device was doing.
                Err(e) => log::warn!("{e}; going on with the MAC global reset"),
            }
        } else {
            log::info!(
                "{addr}: VFIO offers no device reset for this function (no FLR or PM reset); \
                 relying on the MAC global reset with bus mastering off"
            );
        }
        device.enable_memory_space().map_err(bus_master)?;
        // SAFETY: pmd is the driver that upholds map_bar's contract: its
        // registers are written only by this crate, which gives the device
        // only IOVAs of its own descriptor rings (DmaQueue) and of pool
        // buffers it holds as raw handles until the device is proven
        // stopped (crate::fence, docs/design.md "The unsafe boundary").
        let bar = Arc::new(
            unsafe { device.map_bar(0) }.map_err(|source| Error::MapBar {
                addr,
                bar: 0,
                source,
            })?,
        );
        let doorbell = QueueBar {
            bar: bar.clone(),
            fence: DmaFence::new(addr.to_string()),
        };
        let mut port = MacPort {
            mac: Mac::for_chip(addr, bar, C::FAMILY),
            device,
            station: [0; 6],
            rx_queues: AtomicU16::new(cfg.rx_queues),
            tx_queues: AtomicU16::new(cfg.tx_queues),
            chip,
            doorbell: Mutex::new(doorbell.clone()),
            closed: AtomicBool::new(false),
            device_removed: AtomicU64::new(0),
            fc_requested: Mutex::new(cfg.flow_control),
            fc_resolved: AtomicBool::new(false),
            flows: Mutex::new(Flows::new(cfg)),
            filters: Mutex::new((Vec::new(), Vec::new())),
            intr: Mutex::new(None),
        };
        port.station = init_hw(&port.mac, &port.chip, cfg)?;
        port.chip.pci_setup(&port.device, &port.mac);
        // SAFETY: as for map_bar above; the global reset init_hw just did
        // left no ring address of an earlier user in the device.
        unsafe { port.device.enable_bus_master() }.map_err(bus_master)?;
        log::info!("{addr}: MAC {}", mac::format_mac(&port.station));
        port.mac.init_rx_mode(RxMode {
            promiscuous: cfg.promiscuous,
            allmulti: cfg.allmulti,
        });
        Ok((port, Setup { cfg, rxq, doorbell }))
    }

    /// Counts a read that found the device gone, logging the first.
    fn note_removed(&self) {
        if self.device_removed.fetch_add(1, Ordering::Relaxed) == 0 {
            log::error!(
                "{}: the device reads all ones: removed or hung; link down, counters frozen",
                self.mac.addr()
            );
        }
    }

    fn flows(&self) -> MutexGuard<'_, Flows> {
        // The table is plain data kept consistent under the lock.
        self.flows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Global reset with every interrupt cause masked before and after.
    fn reset(&self) -> Result<()> {
        self.chip.mask_extra_interrupts(&self.mac);
        self.mac.global_reset(RESET_TIMEOUT)?;
        self.chip.mask_extra_interrupts(&self.mac);
        Ok(())
    }

    /// Ends an open: the hardware counters start from zero, the link is
    /// waited for if `cfg` asks, and the port is handed out with `queues`.
    pub fn finish(self, cfg: &PortConfig, queues: Queues) -> Result<Opened> {
        self.mac.set_counter_table(C::COUNTERS);
        self.counters_from_zero_and_link(cfg)?;
        Ok(Opened {
            ops: Arc::new(self),
            rx: queues.rx,
            tx: queues.tx,
            rx_counters: queues.rx_counters,
            tx_counters: queues.tx_counters,
            hw_counters: C::COUNTERS,
        })
    }

    /// The end of an open or a start: the device's counters read and
    /// dropped (they start from zero), the link waited for if `cfg` asks.
    fn counters_from_zero_and_link(&self, cfg: &PortConfig) -> Result<()> {
        self.mac.read_counters(&mut HwStats::new(C::COUNTERS));
        if cfg.wait_for_link {
            self.mac.wait_for_link(cfg.link_timeout)?;
            let l = self.link();
            log::info!("{}: link {l}", self.mac.addr());
        }
        Ok(())
    }

    /// Receive off, every queue stopped (the chip's way), transmit off:
    /// the first part of both [`PortOps::stop`] and [`PortOps::close`].
    /// True when every queue was confirmed off.
    fn stop_traffic(&self) -> bool {
        self.chip.stop_rx(&self.mac);
        let off = self.chip.stop_queues(
            &self.mac,
            self.rx_queues.load(Ordering::Relaxed),
            self.tx_queues.load(Ordering::Relaxed),
        );
        self.mac.update(TCTL, |v| v & !TCTL_EN);
        self.mac.flush();
        off
    }

    fn fence(&self) -> Arc<DmaFence> {
        lock(&self.doorbell).fence.clone()
    }

    /// Enables the MSI-X vectors `cfg.intr_conf` asks for (eventfds made
    /// once per port, then reused) and programs the chip's routing and
    /// moderation ([`Chip::configure_msix`]). Nothing without interrupts.
    fn interrupts_on(&self, cfg: &PortConfig) -> Result<()> {
        // A start that failed after enabling them (its link wait) left
        // them on: off first, so the vector count can change.
        self.interrupts_off();
        let ic = cfg.intr_conf;
        if !ic.any() {
            return Ok(());
        }
        let plan = MsixPlan {
            lsc: ic.lsc,
            rx_queues: if ic.rxq { cfg.rx_queues } else { 0 },
            rx_interval_us: ic.rx_interval_us,
        };
        let mut g = lock(&self.intr);
        if g.is_none() {
            *g = Some(Vectors::new()?);
        }
        let Some(v) = g.as_mut() else {
            return Ok(());
        };
        let fds = v.fds_for(&plan)?;
        let refs: Vec<&EventFd> = fds.iter().map(|f| &**f).collect();
        self.device
            .enable_msix_eventfds(&refs)
            .map_err(|source| Error::Msix {
                addr: self.mac.addr(),
                vectors: plan.vectors(),
                source,
            })?;
        self.chip.configure_msix(&self.mac, &plan);
        v.on = Some(plan);
        log::info!(
            "{}: MSI-X on: {} vectors (link changes {}, {} RX queue interrupts, EITR {} us)",
            self.mac.addr(),
            plan.vectors(),
            if plan.lsc { "on" } else { "off" },
            plan.rx_queues,
            plan.rx_interval_us
        );
        Ok(())
    }

    /// Masks every interrupt cause and disables MSI-X (at stop, close and
    /// drop, before the reset and before the device is released). The
    /// eventfds are kept for the next start.
    fn interrupts_off(&self) {
        let mut g = lock(&self.intr);
        let Some(v) = g.as_mut() else {
            return;
        };
        if v.on.take().is_none() {
            return;
        }
        self.chip.mask_extra_interrupts(&self.mac);
        self.mac.mask_interrupts();
        if let Err(e) = self.device.disable_msix() {
            log::warn!("{}: disabling MSI-X: {e}", self.mac.addr());
        }
    }

    /// The plan programmed now, if MSI-X is on.
    fn msix_plan(&self) -> Option<MsixPlan> {
        lock(&self.intr).as_ref().and_then(|v| v.on)
    }
}

impl<C: Chip> PortOps for MacPort<C> {
    fn driver_name(&self) -> &'static str {
        C::LIMITS.driver
    }

    fn mac_addr(&self) -> [u8; 6] {
        self.station
    }

    fn link(&self) -> LinkStatus {
        if self.mac.r(STATUS) == u32::MAX {
            self.note_removed();
        }
        let l = self.mac.link();
        if !l.up {
            self.fc_resolved.store(false, Ordering::Relaxed);
            return l;
        }
        if self.fc_resolved.swap(true, Ordering::Relaxed) {
            return l;
        }
        // First look at this link: resolve flow control once.
        let fc = *lock(&self.fc_requested);
        match phy::configure_flow_control(&self.mac, fc) {
            Ok(_) => self.mac.link(),
            Err(e) => {
                log::warn!("{e}; flow control left off");
                self.fc_resolved.store(false, Ordering::Relaxed);
                l
            }
        }
    }

    fn read_hw_stats(&self, hw: &mut HwStats) {
        if !self.mac.read_counters(hw) {
            self.note_removed();
        }
    }

    fn events(&self) -> Vec<(String, u64)> {
        let mut v = self.mac.events();
        v.push((
            "device_removed".to_string(),
            self.device_removed.load(Ordering::Relaxed),
        ));
        v
    }

    fn set_promiscuous(&self, on: bool) {
        self.mac.set_rx_mode(|m| m.promiscuous = on)
    }

    fn set_allmulti(&self, on: bool) {
        self.mac.set_rx_mode(|m| m.allmulti = on)
    }

    fn set_unicast_filters(&self, addrs: &[[u8; 6]]) -> Result<()> {
        let mut f = lock(&self.filters);
        self.mac.set_unicast_filters(addrs, C::RAR_ENTRIES)?;
        f.0 = addrs.to_vec();
        Ok(())
    }

    fn set_multicast_filters(&self, addrs: &[[u8; 6]]) {
        let mut f = lock(&self.filters);
        self.mac.set_multicast_filters(addrs);
        f.1 = addrs.to_vec();
    }

    fn set_mtu(&self, mtu: u16) -> Result<()> {
        C::LIMITS.check_mtu(mtu)?;
        self.chip.set_mtu(&self.mac, mtu)
    }

    fn disable_rx_queue(&self, queue: u16) -> Option<QueueStopped> {
        self.chip
            .disable_rx_queue(&self.mac, queue)
            .then(QueueStopped::confirmed)
    }

    fn disable_tx_queue(&self, queue: u16) -> Option<QueueStopped> {
        self.chip
            .disable_tx_queue(&self.mac, queue)
            .then(QueueStopped::confirmed)
    }

    /// Receive off, every queue stopped (the chip's way), transmit off,
    /// then as DPDK's igb and em stop: a global reset, wake-up control
    /// cleared and the PHY powered down, so the link goes down while the
    /// port is stopped ([`PortOps::start`] powers it up again). Either the
    /// queues confirmed off or the completed reset proves the device
    /// stopped: the fence is marked (what queues dropped earlier left in
    /// it goes back too).
    fn stop(&self) -> Option<QueueStopped> {
        self.interrupts_off();
        let off = self.stop_traffic();
        let reset = self.reset();
        match &reset {
            Ok(()) => {
                self.mac.w(WUC, 0);
                if let Err(e) = phy::power_down(&self.mac) {
                    log::warn!("{e}; the link stays up while the port is stopped");
                }
            }
            Err(e) => log::warn!("{e}"),
        }
        self.fc_resolved.store(false, Ordering::Relaxed);
        let proven = off || reset.is_ok();
        if proven {
            self.fence().mark_stopped();
        }
        proven.then(QueueStopped::confirmed)
    }

    fn check_config(&self, cfg: &PortConfig, rxq: &[RxQueueConfig]) -> Result<()> {
        C::LIMITS.check(cfg)?;
        queue::check_rx_pools(C::LIMITS.driver, rxq, C::NO_HEADER_SPLIT)
    }

    /// The restart: [`init_hw`] again (global reset, PHY and link setup,
    /// flow control for `cfg`), which proves the previous rings stopped
    /// (their fence is marked and replaced); the receive mode and address
    /// filters as they were before the stop; then the chip's
    /// [`Chip::start_queues`] and the end of an open.
    fn start(&self, cfg: &PortConfig, rxq: &[RxQueueConfig]) -> Result<Queues> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::RestartUnsupported {
                driver: C::LIMITS.driver,
                why: "the port is closed",
            });
        }
        self.check_config(cfg, rxq)?;
        let addr = self.mac.addr();
        let mode = self.mac.rx_mode();
        init_hw(&self.mac, &self.chip, cfg)?;
        let doorbell = {
            let mut d = lock(&self.doorbell);
            // The global reset just completed: the old rings' buffers the
            // fence held are safe to free.
            d.fence.mark_stopped();
            d.fence = DmaFence::new(addr.to_string());
            d.clone()
        };
        self.mac.init_rx_mode(mode);
        {
            let f = lock(&self.filters);
            self.mac.set_unicast_filters(&f.0, C::RAR_ENTRIES)?;
            self.mac.set_multicast_filters(&f.1);
        }
        *lock(&self.fc_requested) = cfg.flow_control;
        self.fc_resolved.store(false, Ordering::Relaxed);
        // Flow rules do not survive a restart (DPDK's default, without
        // RTE_ETH_DEV_CAPA_FLOW_RULE_KEEP): the global reset cleared their
        // filters and the queue count may have changed; the table starts
        // empty with RSS as `cfg` programs it.
        {
            let mut flows = self.flows();
            let dropped = flows.entries().len();
            if dropped > 0 {
                log::info!("{addr}: {dropped} flow rules dropped by the restart");
            }
            *flows = Flows::new(cfg);
        }
        self.rx_queues.store(cfg.rx_queues, Ordering::Relaxed);
        self.tx_queues.store(cfg.tx_queues, Ordering::Relaxed);
        let queues = self.chip.start_queues(&self.mac, cfg, rxq, &doorbell)?;
        self.interrupts_on(cfg)?;
        self.counters_from_zero_and_link(cfg)?;
        Ok(queues)
    }

    fn held_buffers(&self) -> usize {
        self.fence().held()
    }

    fn add_flow_rule(&self, rule: &FlowRule, queue: u16) -> std::result::Result<FlowId, FlowError> {
        let e = self.flows().add(&self.mac, &self.chip, rule, queue)?;
        self.mac.flush();
        log::info!(
            "{}: flow rule #{} ({}) to queue {queue} in {} filter {}",
            self.mac.addr(),
            e.id,
            e.rule,
            e.kind.name(),
            e.slot
        );
        Ok(e.id)
    }

    fn remove_flow_rule(&self, id: FlowId) -> std::result::Result<FlowEntry, FlowError> {
        let e = self.flows().remove(&self.mac, &self.chip, id)?;
        self.mac.flush();
        log::info!("{}: flow rule #{id} removed", self.mac.addr());
        Ok(e)
    }

    fn flow_rules(&self) -> Vec<FlowEntry> {
        self.flows().entries().to_vec()
    }

    fn link_interrupt_fd(&self) -> Option<Arc<EventFd>> {
        lock(&self.intr).as_ref().map(|v| v.other.clone())
    }

    /// ICR read through [`Mac::read_icr`] (any reader's LSC counts), then
    /// the other-causes vector unmasked again while link interrupts are on.
    fn ack_link_interrupt(&self) -> bool {
        self.mac.read_icr();
        if self.msix_plan().is_some_and(|p| p.lsc) {
            self.chip.rearm_link_interrupt(&self.mac);
        }
        self.mac.take_lsc()
    }

    fn rx_interrupt_fd(&self, queue: u16) -> Option<Arc<EventFd>> {
        let g = lock(&self.intr);
        let v = g.as_ref()?;
        if queue >= v.on?.rx_queues {
            return None;
        }
        v.rx.get(usize::from(queue)).cloned()
    }

    fn set_rx_interrupt(&self, queue: u16, on: bool) {
        if self.msix_plan().is_some_and(|p| queue < p.rx_queues) {
            self.chip.set_rx_interrupt(&self.mac, queue, on);
        }
    }

    #[cfg(feature = "mmio-count")]
    fn mmio_counts(&self) -> Option<(u64, u64)> {
        self.mac.bar().map(|b| b.access_counts())
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // MSI-X off before the device is quiesced and later released.
        self.interrupts_off();
        // Its own reset and PHY power-down follow (as before the port's
        // stop gained them).
        self.stop_traffic();
        // Either a completed reset or bus mastering off proves the device
        // stopped (crate::fence); only then do held buffers go back.
        let reset = self.reset();
        if let Err(e) = &reset {
            log::warn!("{e}");
        }
        self.mac.restore_manageability();
        if let Err(e) = phy::power_down(&self.mac) {
            log::warn!("{e}");
        }
        self.mac.set_driver_loaded(false);
        let master_off = self.device.disable_bus_master();
        if let Err(e) = &master_off {
            log::warn!("{}: disabling bus mastering: {e}", self.mac.addr());
        }
        if reset.is_ok() || master_off.is_ok() {
            self.fence().mark_stopped();
        }
    }
}

impl<C> Drop for MacPort<C> {
    /// A port dropped without [`PortOps::close`] (an open that failed after
    /// its queues were built, RX DMA already on) is quiesced here: its
    /// rings' buffers are held by the fence until then, and freed only when
    /// the reset or bus mastering off succeeded (else leaked).
    fn drop(&mut self) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let addr = self.mac.addr();
        if lock(&self.intr).as_ref().is_some_and(|v| v.on.is_some())
            && let Err(e) = self.device.disable_msix()
        {
            log::warn!("{addr}: disabling MSI-X while dropping the port: {e}");
        }
        // The reset stops every queue; it writes RCTL 0 itself 10 ms before
        // CTRL.RST as Intel's reset_hw does (so the 82574's receiver is
        // never disabled without the reset that must follow, issue 10
        // item 9).
        let reset = self.mac.global_reset(RESET_TIMEOUT);
        if let Err(e) = &reset {
            log::warn!("{addr}: reset while dropping the port: {e}");
        }
        let master_off = self.device.disable_bus_master();
        if let Err(e) = &master_off {
            log::warn!("{addr}: disabling bus mastering while dropping the port: {e}");
        }
        if reset.is_ok() || master_off.is_ok() {
            lock(&self.doorbell).fence.mark_stopped();
        }
    }
}
