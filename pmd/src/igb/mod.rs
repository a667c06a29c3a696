//! The igb driver: Intel 82576 (datasheet names throughout).
//!
//! - [`regs`]: register offsets and bits.
//! - [`desc`]: advanced RX/TX descriptor formats for the shared rings.
//! - [`stats`]: the statistics register table.
//! - this file: the device table, bring-up (reset, EEPROM MAC, PHY
//!   autonegotiation through MDIC, link wait), queue setup (RSS, checksum,
//!   VLAN strip, MTU) and the port-wide operations.

pub mod desc;
pub mod regs;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hw::PciAddress;
use hw::mmio::Bar;

use crate::error::{Error, Result};
use crate::mac::RxMode;
use crate::port::{
    DeviceId, Driver, LinkStatus, OpenArgs, Opened, PortOps, RxBurst, Support, TxBurst,
};
use crate::ring::{DmaQueue, check_ring_size};
use crate::rss;
use crate::rx::{RxBufLayout, RxRing, RxSetupError};
use crate::stats::{HwStats, QueueCounters};
use crate::tx::TxRing;
use desc::{AdvRx, AdvTx};
use regs::*;

const INTEL: u16 = 0x8086;
const SERDES: &str = "fiber/SerDes links (PCS setup) are not implemented; only the copper PHY is";

/// PCI IDs of the 82576 family and its igb-class relatives.
pub static DEVICE_IDS: &[DeviceId] = &[
    DeviceId {
        vendor: INTEL,
        device: 0x10C9,
        name: "82576",
        support: Support::Yes,
    },
    DeviceId {
        vendor: INTEL,
        device: 0x10E8,
        name: "82576 quad copper",
        support: Support::Yes,
    },
    DeviceId {
        vendor: INTEL,
        device: 0x1526,
        name: "82576 quad copper ET2",
        support: Support::Yes,
    },
    DeviceId {
        vendor: INTEL,
        device: 0x150A,
        name: "82576NS",
        support: Support::Yes,
    },
    DeviceId {
        vendor: INTEL,
        device: 0x10E6,
        name: "82576 fiber",
        support: Support::Refused(SERDES),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x10E7,
        name: "82576 SerDes",
        support: Support::Refused(SERDES),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x150D,
        name: "82576 SerDes quad",
        support: Support::Refused(SERDES),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x1518,
        name: "82576NS SerDes",
        support: Support::Refused(SERDES),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x10CA,
        name: "82576 virtual function",
        support: Support::Refused(
            "a VF is driven through its PF's mailbox, which this driver does not implement",
        ),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x10A7,
        name: "82575EB copper",
        support: Support::Refused(
            "the 82575 has 4 queues and a different RSS/queue layout; only the 82576 is supported",
        ),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x1521,
        name: "I350 copper",
        support: Support::Refused(
            "I350 differences (EEE, DMA coalescing, register changes) are not implemented",
        ),
    },
    DeviceId {
        vendor: INTEL,
        device: 0x1533,
        name: "I210 copper",
        support: Support::Refused("I210 differences (flash NVM, 4 queues) are not implemented"),
    },
];

pub static DRIVER: Driver = Driver {
    name: "igb",
    ids: DEVICE_IDS,
    open,
};

/// Queue pairs used at most (Linux igb's cap for the 82576 with RSS; the
/// register map has 16).
pub const MAX_QUEUES: u16 = 8;
pub const MIN_RING: u16 = 64;
pub const MAX_RING: u16 = 4096;
/// Ring lengths must be multiples of 128 bytes: 8 descriptors.
pub const RING_MULTIPLE: u16 = 8;
pub const MIN_MTU: u16 = 68;
pub const MAX_MTU: u16 = 9000;
/// Ethernet header + CRC + two VLAN tags beyond the MTU.
const FRAME_OVERHEAD: u16 = 14 + 4 + 8;
/// SRRCTL.BSIZEPACKET granularity and largest value (127 KiB, but a
/// descriptor's length field and our pools make 16 KiB plenty).
const RX_BUF_UNIT: usize = 1024;
const RX_BUF_MAX: usize = 16 * 1024;

const RESET_TIMEOUT: Duration = Duration::from_millis(100);
const MDIC_TIMEOUT: Duration = Duration::from_millis(50);
const EERD_TIMEOUT: Duration = Duration::from_millis(50);
const QUEUE_TIMEOUT: Duration = Duration::from_millis(100);

fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > timeout {
            return done();
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Port-wide state of one 82576.
pub struct Igb {
    addr: PciAddress,
    bar: Arc<Bar>,
    device: hw::vfio::Device,
    mac: [u8; 6],
    /// Serialises read-modify-write of RCTL and the filter tables.
    /// Also holds the receive mode RCTL.UPE/MPE are derived from.
    ctl: Mutex<RxMode>,
    rx_queues: u16,
    tx_queues: u16,
    /// ICR.RXO (receive overrun) seen while reading statistics: the device
    /// dropped frames for lack of descriptors without counting them.
    rx_overrun_events: AtomicU64,
}

impl Igb {
    fn r(&self, reg: usize) -> u32 {
        self.bar.read32(reg)
    }
    fn w(&self, reg: usize, v: u32) {
        self.bar.write32(reg, v)
    }

    fn mask_interrupts(&self) {
        self.w(IMC, u32::MAX);
        self.w(EIMC, u32::MAX);
        self.w(EIAC, 0);
        self.w(EIAM, 0);
        // Reading ICR clears pending causes.
        let _ = self.r(ICR);
    }

    /// Global reset (CTRL.RST), waiting for the bit to self-clear.
    fn reset(&self) -> Result<()> {
        self.mask_interrupts();
        self.w(RCTL, 0);
        self.w(TCTL, TCTL_PSP);
        let _ = self.r(STATUS); // flush posted writes
        std::thread::sleep(Duration::from_millis(10));
        let ctrl = self.r(CTRL);
        self.w(CTRL, ctrl | CTRL_RST);
        // Datasheet 4.3.1: wait at least 1 ms before polling.
        std::thread::sleep(Duration::from_millis(2));
        if !poll(RESET_TIMEOUT, || self.r(CTRL) & CTRL_RST == 0) {
            return Err(Error::ResetTimeout {
                addr: self.addr,
                ms: RESET_TIMEOUT.as_millis() as u64,
            });
        }
        self.mask_interrupts();
        // Tell firmware a driver owns the device.
        let ext = self.r(CTRL_EXT);
        self.w(CTRL_EXT, ext | CTRL_EXT_DRV_LOAD);
        Ok(())
    }

    /// One EEPROM word through EERD; `None` if the read does not complete.
    fn eeprom_word(&self, word: u32) -> Option<u16> {
        self.w(EERD, (word << EERD_ADDR_SHIFT) | EERD_START);
        let mut v = 0;
        let ok = poll(EERD_TIMEOUT, || {
            v = self.r(EERD);
            v & EERD_DONE != 0
        });
        ok.then_some((v >> EERD_DATA_SHIFT) as u16)
    }

    /// The MAC address from EEPROM words 0..2; falls back to RAL0/RAH0
    /// (which the device loads from the EEPROM at reset) if EERD fails.
    fn read_mac(&self) -> [u8; 6] {
        let words: Option<Vec<u16>> = (0..3).map(|w| self.eeprom_word(w)).collect();
        match words {
            Some(w) => {
                let mut m = [0u8; 6];
                for (i, word) in w.iter().enumerate() {
                    m[2 * i..2 * i + 2].copy_from_slice(&word.to_le_bytes());
                }
                m
            }
            None => {
                log::warn!(
                    "{}: EEPROM read through EERD timed out; using RAL0/RAH0",
                    self.addr
                );
                let lo = self.r(ral(0)).to_le_bytes();
                let hi = self.r(rah(0)).to_le_bytes();
                [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
            }
        }
    }

    fn mdic(&self, cmd: u32, reg: u32) -> Result<u32> {
        self.w(
            MDIC,
            cmd | (reg << MDIC_REGADD_SHIFT) | (PHY_ADDR << MDIC_PHYADD_SHIFT),
        );
        let mut v = 0;
        if !poll(MDIC_TIMEOUT, || {
            v = self.r(MDIC);
            v & MDIC_READY != 0
        }) {
            return Err(Error::Mdic {
                addr: self.addr,
                reg,
                what: "timed out",
            });
        }
        if v & MDIC_ERROR != 0 {
            return Err(Error::Mdic {
                addr: self.addr,
                reg,
                what: "reported an error",
            });
        }
        Ok(v & MDIC_DATA_MASK)
    }

    fn phy_read(&self, reg: u32) -> Result<u16> {
        Ok(self.mdic(MDIC_OP_READ, reg)? as u16)
    }

    fn phy_write(&self, reg: u32, v: u16) -> Result<()> {
        self.mdic(MDIC_OP_WRITE | u32::from(v), reg).map(|_| ())
    }

    /// Link setup: MAC follows the PHY (SLU, no forced speed/duplex), PHY
    /// autonegotiation enabled and restarted through MDIC.
    fn setup_link(&self) -> Result<()> {
        let ctrl = self.r(CTRL);
        self.w(CTRL, (ctrl | CTRL_SLU) & !(CTRL_FRCSPD | CTRL_FRCDPLX));
        let bmcr = self.phy_read(MII_BMCR)?;
        self.phy_write(MII_BMCR, bmcr | BMCR_ANENABLE | BMCR_ANRESTART)?;
        Ok(())
    }

    fn write_rar(&self, i: usize, mac: &[u8; 6], valid: bool) {
        let lo = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let mut hi = u32::from(u16::from_le_bytes([mac[4], mac[5]]));
        if valid {
            hi |= RAH_AV;
        }
        // RAH last: the AV bit makes the entry live.
        self.w(rah(i), 0);
        self.w(ral(i), lo);
        self.w(rah(i), hi);
    }

    /// Changes the receive mode with `f` and writes RCTL.UPE/MPE to match.
    fn set_rx_mode(&self, f: impl FnOnce(&mut RxMode)) {
        let mut mode = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut mode);
        let v = self.r(RCTL) & !(RCTL_UPE | RCTL_MPE);
        self.w(RCTL, v | mode.rctl_bits());
    }

    fn program_rss(&self, cfg: &rss::RssConfig) {
        for (i, v) in rss::key_registers(&cfg.key).iter().enumerate() {
            self.w(RSSRK + 4 * i, *v);
        }
        let reta = cfg
            .reta
            .unwrap_or_else(|| rss::default_reta(self.rx_queues));
        for (i, v) in rss::reta_registers(&reta).iter().enumerate() {
            self.w(RETA + 4 * i, *v);
        }
        let t = cfg.hash_types;
        let mut mrqc = MRQC_ENABLE_RSS_MQ;
        for (ty, bit) in [
            (rss::HashTypes::IPV4, MRQC_RSS_FIELD_IPV4),
            (rss::HashTypes::IPV4_TCP, MRQC_RSS_FIELD_IPV4_TCP),
            (rss::HashTypes::IPV4_UDP, MRQC_RSS_FIELD_IPV4_UDP),
            // The _EX fields hash IPv6 with extension headers too; without
            // them the hash equals the plain one. Set both, as Linux igb
            // does (QEMU's igb only looks at the _EX bits for TCP/IPv6).
            (
                rss::HashTypes::IPV6,
                MRQC_RSS_FIELD_IPV6 | MRQC_RSS_FIELD_IPV6_EX,
            ),
            (
                rss::HashTypes::IPV6_TCP,
                MRQC_RSS_FIELD_IPV6_TCP | MRQC_RSS_FIELD_IPV6_TCP_EX,
            ),
            (
                rss::HashTypes::IPV6_UDP,
                MRQC_RSS_FIELD_IPV6_UDP | MRQC_RSS_FIELD_IPV6_UDP_EX,
            ),
        ] {
            if t.contains(ty) {
                mrqc |= bit;
            }
        }
        self.w(MRQC, mrqc);
    }

    fn max_frame(mtu: u16) -> u32 {
        u32::from(mtu) + u32::from(FRAME_OVERHEAD)
    }

    fn disable_queue(&self, ctl_reg: usize, what: &str, queue: u16) {
        let v = self.r(ctl_reg);
        if v & RXDCTL_ENABLE == 0 {
            return;
        }
        self.w(ctl_reg, v & !RXDCTL_ENABLE);
        if !poll(QUEUE_TIMEOUT, || self.r(ctl_reg) & RXDCTL_ENABLE == 0) {
            log::warn!(
                "{}: {what} queue {queue} did not report disabled",
                self.addr
            );
        }
    }
}

fn open(args: OpenArgs<'_>) -> Result<Opened> {
    let OpenArgs {
        device,
        addr,
        config: cfg,
        pools,
        ..
    } = args;
    if cfg.rx_queues == 0
        || cfg.rx_queues > MAX_QUEUES
        || cfg.tx_queues == 0
        || cfg.tx_queues > MAX_QUEUES
    {
        return Err(Error::Config(format!(
            "igb takes 1..={MAX_QUEUES} RX and TX queues, got {} RX and {} TX",
            cfg.rx_queues, cfg.tx_queues
        )));
    }
    for (what, n) in [("RX", cfg.rx_desc), ("TX", cfg.tx_desc)] {
        if !check_ring_size(n, MIN_RING, MAX_RING, RING_MULTIPLE) {
            return Err(Error::Config(format!(
                "igb {what} rings take {MIN_RING}..={MAX_RING} descriptors in multiples of {RING_MULTIPLE}, got {n}"
            )));
        }
    }
    if cfg.mtu < MIN_MTU || cfg.mtu > MAX_MTU {
        return Err(Error::BadMtu {
            mtu: cfg.mtu,
            min: MIN_MTU,
            max: MAX_MTU,
        });
    }
    let bar = Arc::new(device.map_bar(0).map_err(|source| Error::MapBar {
        addr,
        bar: 0,
        source,
    })?);
    device
        .enable_bus_master()
        .map_err(|source| Error::BusMaster { addr, source })?;
    let rx_mode = RxMode {
        promiscuous: cfg.promiscuous,
        allmulti: cfg.allmulti,
    };
    let mut igb = Igb {
        addr,
        bar: bar.clone(),
        device,
        mac: [0; 6],
        ctl: Mutex::new(rx_mode),
        rx_queues: cfg.rx_queues,
        tx_queues: cfg.tx_queues,
        rx_overrun_events: AtomicU64::new(0),
    };
    igb.reset()?;
    igb.mac = igb.read_mac();
    log::info!(
        "{addr}: MAC {}",
        igb.mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    );
    igb.write_rar(0, &igb.mac, true);
    for i in 1..RAR_ENTRIES {
        igb.write_rar(i, &[0; 6], false);
    }
    for i in 0..MTA_LEN {
        igb.w(MTA + 4 * i, 0);
        igb.w(VFTA + 4 * i, 0);
    }
    igb.setup_link()?;

    // Receive (datasheet 4.5.9).
    igb.w(RCTL, 0);
    let doorbell: Arc<dyn crate::ring::Doorbell> = bar.clone();
    let mut rx: Vec<Box<dyn RxBurst>> = Vec::new();
    let mut rx_counters = Vec::new();
    for q in 0..cfg.rx_queues {
        let n = usize::from(q);
        let pool = &pools[n];
        let layout = RxBufLayout::for_pool(pool.buf_size(), RX_BUF_UNIT, RX_BUF_MAX).ok_or(
            Error::BufferTooSmall {
                queue: q,
                buf_size: pool.buf_size(),
                min: RX_BUF_UNIT,
            },
        )?;
        let hwq = DmaQueue::new(cfg.rx_desc, doorbell.clone(), rdt(n)).map_err(|source| {
            Error::RingAlloc {
                dir: "RX",
                queue: q,
                source,
            }
        })?;
        let (base, len) = (hwq.iova(), hwq.byte_len());
        let counters = Arc::new(QueueCounters::default());
        let mut ring = RxRing::<AdvRx>::new(
            hwq,
            pool.clone(),
            layout,
            q,
            cfg.rx_free_thresh,
            counters.clone(),
        )
        .map_err(|e| match e {
            RxSetupError::PoolTooSmall { needed } => Error::PoolTooSmall { queue: q, needed },
        })?;
        igb.w(rxdctl(n), 0);
        igb.w(rdbal(n), base as u32);
        igb.w(rdbah(n), (base >> 32) as u32);
        igb.w(rdlen(n), len);
        igb.w(
            srrctl(n),
            (u32::from(layout.buf_len) >> SRRCTL_BSIZEPKT_SHIFT) | SRRCTL_DESCTYPE_ADV_ONEBUF,
        );
        igb.w(rdh(n), 0);
        igb.w(rdt(n), 0);
        // Prefetch/host/write-back thresholds as DPDK's igb defaults.
        igb.w(
            rxdctl(n),
            RXDCTL_ENABLE
                | (8 << RXDCTL_PTHRESH_SHIFT)
                | (8 << RXDCTL_HTHRESH_SHIFT)
                | (4 << RXDCTL_WTHRESH_SHIFT),
        );
        if !poll(QUEUE_TIMEOUT, || igb.r(rxdctl(n)) & RXDCTL_ENABLE != 0) {
            return Err(Error::QueueEnableTimeout {
                addr,
                queue: q,
                ms: QUEUE_TIMEOUT.as_millis() as u64,
            });
        }
        ring.start();
        rx.push(Box::new(ring));
        rx_counters.push(counters);
    }
    // Checksum offload reporting; PCSD puts the RSS hash in the descriptor
    // (and is required for RSS).
    igb.w(RXCSUM, RXCSUM_IPOFLD | RXCSUM_TUOFLD | RXCSUM_PCSD);
    igb.program_rss(&cfg.rss);
    igb.w(RLPML, Igb::max_frame(cfg.mtu));
    igb.w(VET, 0x8100_8100);
    let ctrl = igb.r(CTRL);
    igb.w(
        CTRL,
        if cfg.vlan_strip {
            ctrl | CTRL_VME
        } else {
            ctrl & !CTRL_VME
        },
    );
    igb.w(
        RCTL,
        RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_LPE | rx_mode.rctl_bits(),
    );

    // Transmit (datasheet 4.5.10).
    let mut tx: Vec<Box<dyn TxBurst>> = Vec::new();
    let mut tx_counters = Vec::new();
    for q in 0..cfg.tx_queues {
        let n = usize::from(q);
        let hwq = DmaQueue::new(cfg.tx_desc, doorbell.clone(), tdt(n)).map_err(|source| {
            Error::RingAlloc {
                dir: "TX",
                queue: q,
                source,
            }
        })?;
        let (base, len) = (hwq.iova(), hwq.byte_len());
        igb.w(txdctl(n), 0);
        igb.w(tdbal(n), base as u32);
        igb.w(tdbah(n), (base >> 32) as u32);
        igb.w(tdlen(n), len);
        igb.w(tdh(n), 0);
        igb.w(tdt(n), 0);
        // 82576 erratum (also DPDK's): WTHRESH must be 1, else a lone packet
        // can sit in the ring without its descriptor being written back.
        igb.w(
            txdctl(n),
            TXDCTL_ENABLE
                | (8 << TXDCTL_PTHRESH_SHIFT)
                | (1 << TXDCTL_HTHRESH_SHIFT)
                | (1 << TXDCTL_WTHRESH_SHIFT),
        );
        if !poll(QUEUE_TIMEOUT, || igb.r(txdctl(n)) & TXDCTL_ENABLE != 0) {
            return Err(Error::QueueEnableTimeout {
                addr,
                queue: q,
                ms: QUEUE_TIMEOUT.as_millis() as u64,
            });
        }
        let counters = Arc::new(QueueCounters::default());
        tx.push(Box::new(TxRing::<AdvTx>::new(
            hwq,
            cfg.tx_rs_thresh,
            cfg.tx_free_thresh,
            counters.clone(),
        )));
        tx_counters.push(counters);
    }
    igb.w(
        TCTL,
        TCTL_EN
            | TCTL_PSP
            | TCTL_RTLC
            | (COLLISION_THRESHOLD << TCTL_CT_SHIFT)
            | (COLLISION_DISTANCE << TCTL_COLD_SHIFT),
    );

    // Start statistics from zero.
    let mut scratch = HwStats::new(stats::COUNTERS);
    let igb = Arc::new(igb);
    igb.read_hw_stats(&mut scratch);

    if cfg.wait_for_link {
        let ok = poll(cfg.link_timeout, || igb.r(STATUS) & STATUS_LU != 0);
        if !ok {
            return Err(Error::LinkTimeout {
                addr,
                ms: cfg.link_timeout.as_millis() as u64,
            });
        }
        log::info!("{addr}: link {}", igb.link());
    }
    Ok(Opened {
        ops: igb,
        rx,
        tx,
        rx_counters,
        tx_counters,
        hw_counters: stats::COUNTERS,
    })
}

impl PortOps for Igb {
    fn driver_name(&self) -> &'static str {
        "igb"
    }

    fn mac_addr(&self) -> [u8; 6] {
        self.mac
    }

    fn link(&self) -> LinkStatus {
        let s = self.r(STATUS);
        let up = s & STATUS_LU != 0;
        let speed = match (s & STATUS_SPEED_MASK) >> STATUS_SPEED_SHIFT {
            0 => 10,
            1 => 100,
            _ => 1000,
        };
        LinkStatus {
            up,
            speed: if up { speed } else { 0 },
            full_duplex: up && s & STATUS_FD != 0,
        }
    }

    fn read_hw_stats(&self, hw: &mut HwStats) {
        hw.accumulate(|reg| self.r(reg));
        if self.r(ICR) & ICR_RXO != 0 {
            self.rx_overrun_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn events(&self) -> Vec<(String, u64)> {
        vec![(
            "rx_overrun_events".to_string(),
            self.rx_overrun_events.load(Ordering::Relaxed),
        )]
    }

    fn set_promiscuous(&self, on: bool) {
        self.set_rx_mode(|m| m.promiscuous = on)
    }

    fn set_allmulti(&self, on: bool) {
        self.set_rx_mode(|m| m.allmulti = on)
    }

    fn set_unicast_filters(&self, addrs: &[[u8; 6]]) -> Result<()> {
        if addrs.len() > RAR_ENTRIES - 1 {
            return Err(Error::FilterFull {
                max: RAR_ENTRIES - 1,
            });
        }
        let _g = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        for i in 1..RAR_ENTRIES {
            match addrs.get(i - 1) {
                Some(a) => self.write_rar(i, a, true),
                None => self.write_rar(i, &[0; 6], false),
            }
        }
        Ok(())
    }

    fn set_multicast_filters(&self, addrs: &[[u8; 6]]) {
        let mut mta = [0u32; MTA_LEN];
        for a in addrs {
            // RCTL.MO = 00: hash = destination address bits 47:36.
            let h = ((u16::from(a[4]) >> 4) | (u16::from(a[5]) << 4)) & 0xFFF;
            mta[usize::from(h >> 5)] |= 1 << (h & 0x1F);
        }
        let _g = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        for (i, v) in mta.iter().enumerate() {
            self.w(MTA + 4 * i, *v);
        }
    }

    fn set_mtu(&self, mtu: u16) -> Result<()> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(Error::BadMtu {
                mtu,
                min: MIN_MTU,
                max: MAX_MTU,
            });
        }
        // Frames longer than one buffer are received as several segments,
        // so only the length limit changes.
        self.w(RLPML, Igb::max_frame(mtu));
        Ok(())
    }

    fn disable_rx_queue(&self, queue: u16) {
        self.disable_queue(rxdctl(usize::from(queue)), "RX", queue);
    }

    fn disable_tx_queue(&self, queue: u16) {
        let n = usize::from(queue);
        // Let the device finish what was queued (TDH catches up with TDT).
        if !poll(QUEUE_TIMEOUT, || self.r(tdh(n)) == self.r(tdt(n))) {
            log::warn!("{}: TX queue {queue} did not drain", self.addr);
        }
        self.disable_queue(txdctl(n), "TX", queue);
    }

    fn stop(&self) {
        {
            let _g = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
            let r = self.r(RCTL);
            self.w(RCTL, r & !RCTL_EN);
        }
        for q in 0..self.rx_queues {
            self.disable_rx_queue(q);
        }
        for q in 0..self.tx_queues {
            self.disable_tx_queue(q);
        }
        let t = self.r(TCTL);
        self.w(TCTL, t & !TCTL_EN);
        let _ = self.r(STATUS);
    }

    #[cfg(feature = "mmio-count")]
    fn mmio_counts(&self) -> Option<(u64, u64)> {
        Some(self.bar.access_counts())
    }

    fn close(&self) {
        self.stop();
        if let Err(e) = self.reset() {
            log::warn!("{}: {e}", self.addr);
        }
        let ext = self.r(CTRL_EXT);
        self.w(CTRL_EXT, ext & !CTRL_EXT_DRV_LOAD);
        if let Err(e) = self.device.disable_bus_master() {
            log::warn!("{}: disabling bus mastering: {e}", self.addr);
        }
    }
}
