//! The e1000e driver: Intel 82574L (datasheet names throughout).
//!
//! - [`regs`]: register offsets and bits.
//! - [`desc`]: extended RX and context/data TX descriptor formats for the
//!   shared rings.
//! - this file: the device table, bring-up (reset, EEPROM MAC, link check),
//!   queue setup (extended descriptors, RSS over two queues, checksum, VLAN
//!   strip) and the port-wide operations.
//!
//! What the 82574L does differently from the 82576, and how it is handled:
//! no per-queue enable bits (RXDCTL/TXDCTL have none): receive is stopped
//! port-wide with RCTL.EN and a TX queue through TARC.ENABLE; the buffer
//! size is RCTL.FLXBUF (KiB) and latches only when RCTL is written with EN
//! set, so RFCTL and the rings are programmed first; RSS has no UDP hash
//! types and its RETA selects the queue with bit 7 of each entry; VLAN
//! insertion (VLE) works only while CTRL.VME is on, which also strips
//! received tags, so without `vlan_strip` tags are inserted in software; the
//! statistics block is the 82576's (same offsets, clear on read).

pub mod desc;
pub mod regs;

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::mac::{self, Mac, RxMode};
use crate::port::{
    DeviceId, Driver, LinkStatus, OpenArgs, Opened, PortOps, RxBurst, Support, TxBurst,
};
use crate::queue::{self, Limits};
use crate::rss;
use crate::stats::{HwCounter, HwStats};
use desc::{CtxTx, ExtRx};
use regs::*;

const INTEL: u16 = 0x8086;

/// PCI IDs of the 82574 family.
pub static DEVICE_IDS: &[DeviceId] = &[
    DeviceId {
        vendor: INTEL,
        device: 0x10D3,
        name: "82574L",
        support: Support::Yes,
    },
    DeviceId {
        vendor: INTEL,
        device: 0x10F6,
        name: "82574LA",
        support: Support::Yes,
    },
    DeviceId {
        vendor: INTEL,
        device: 0x150C,
        name: "82583V",
        support: Support::Refused(
            "the 82583V lacks jumbo frames, MSI-X and the second queue pair this driver \
             configures; it is not implemented",
        ),
    },
];

pub static DRIVER: Driver = Driver {
    name: "e1000e",
    ids: DEVICE_IDS,
    open,
};

/// The statistics registers: the 82574L's block matches the 82576's (same
/// offsets, names and clear-on-read behaviour), so the table is shared.
pub static COUNTERS: &[HwCounter] = crate::igb::stats::COUNTERS;

pub const LIMITS: Limits = Limits {
    driver: "e1000e",
    // Two RX and two TX queues; RX queue 1 is reached only through RSS.
    max_queues: 2,
    min_ring: 64,
    max_ring: 4096,
    ring_multiple: 8,
    min_mtu: 68,
    // 9018-byte jumbo frames (datasheet 1.5): 9000 + 14 + 4.
    max_mtu: 9000,
};

/// RCTL.FLXBUF granularity and largest size.
const RX_BUF_UNIT: usize = 1024;
const RX_BUF_MAX: usize = RCTL_FLXBUF_MAX_KB as usize * 1024;

const RESET_TIMEOUT: Duration = Duration::from_millis(100);
const DRAIN_TIMEOUT: Duration = Duration::from_millis(100);

/// Port-wide state of one 82574L.
pub struct E1000e {
    mac: Mac,
    device: hw::vfio::Device,
    addr: [u8; 6],
    rx_queues: u16,
    tx_queues: u16,
}

/// The MRQC value for `types` (the 82574L hashes no UDP: those types are
/// dropped, and such packets get the address-only hash).
pub fn mrqc_for(types: rss::HashTypes) -> u32 {
    let mut mrqc = MRQC_ENABLE_RSS_2Q;
    for (ty, bit) in [
        (rss::HashTypes::IPV4, MRQC_RSS_FIELD_IPV4),
        (rss::HashTypes::IPV4_TCP, MRQC_RSS_FIELD_IPV4_TCP),
        (rss::HashTypes::IPV6, MRQC_RSS_FIELD_IPV6),
        (rss::HashTypes::IPV6_TCP, MRQC_RSS_FIELD_IPV6_TCP_EX),
    ] {
        if types.contains(ty) {
            mrqc |= bit;
        }
    }
    mrqc
}

/// The 32 RETA register values: entry i selects queue `reta[i]` (0 or 1)
/// through bit 7 of its byte.
pub fn reta_registers(reta: &[u8; rss::RETA_LEN]) -> [u32; RETA_REGS] {
    let mut bytes = [0u8; rss::RETA_LEN];
    for (b, q) in bytes.iter_mut().zip(reta) {
        *b = (q & 1) << RETA_QUEUE_SHIFT;
    }
    rss::reta_registers(&bytes)
}

/// The largest MTU received with RCTL.LPE off. The 82574L has no RLPML:
/// without LPE it takes frames up to 1522 bytes (1500 + Ethernet header,
/// one VLAN tag and FCS), with LPE up to its jumbo limit, so an MTU above
/// this turns LPE on and a smaller one is not enforced by the device (as
/// in Linux e1000e and DPDK's em driver).
pub const STANDARD_MTU: u16 = 1500;

/// RCTL.LPE for `mtu`.
pub fn lpe_for(mtu: u16) -> u32 {
    if mtu > STANDARD_MTU { RCTL_LPE } else { 0 }
}

/// RCTL for receive enabled with `buf_len`-byte buffers, frames up to
/// `mtu` and receive mode `mode`.
pub fn rctl_value(buf_len: u16, mode: RxMode, mtu: u16) -> u32 {
    let kb = u32::from(buf_len) / RX_BUF_UNIT as u32;
    RCTL_EN
        | RCTL_BAM
        | RCTL_SECRC
        | lpe_for(mtu)
        | RCTL_RDMTS_HALF
        | ((kb << RCTL_FLXBUF_SHIFT) & RCTL_FLXBUF_MASK)
        | mode.rctl_bits()
}

impl E1000e {
    fn r(&self, reg: usize) -> u32 {
        self.mac.r(reg)
    }
    fn w(&self, reg: usize, v: u32) {
        self.mac.w(reg, v)
    }

    fn program_rss(&self, cfg: &rss::RssConfig) {
        for (i, v) in rss::key_registers(&cfg.key).iter().enumerate() {
            self.w(RSSRK + 4 * i, *v);
        }
        let reta = cfg
            .reta
            .unwrap_or_else(|| rss::default_reta(self.rx_queues));
        for (i, v) in reta_registers(&reta).iter().enumerate() {
            self.w(RETA + 4 * i, *v);
        }
        let types = cfg.hash_types.intersection(rss::HashTypes::NO_UDP);
        if types != cfg.hash_types {
            log::info!(
                "{}: the 82574L has no UDP RSS hash types; UDP packets get the address hash",
                self.mac.addr()
            );
        }
        self.w(MRQC, mrqc_for(types));
    }

    /// Waits for the device to fetch every queued descriptor of TX queue
    /// `n` (TDH reaches TDT).
    fn drain_tx(&self, n: usize) {
        if !mac::poll(DRAIN_TIMEOUT, || self.r(tdh(n)) == self.r(tdt(n))) {
            log::warn!("{}: TX queue {n} did not drain", self.mac.addr());
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
    LIMITS.check(cfg)?;
    let bar = Arc::new(device.map_bar(0).map_err(|source| crate::Error::MapBar {
        addr,
        bar: 0,
        source,
    })?);
    device
        .enable_bus_master()
        .map_err(|source| crate::Error::BusMaster { addr, source })?;
    let mac = Mac::new(addr, bar.clone());
    mac.global_reset(RESET_TIMEOUT)?;
    mac.set_driver_loaded(true);
    let mut dev = E1000e {
        mac,
        device,
        addr: [0; 6],
        rx_queues: cfg.rx_queues,
        tx_queues: cfg.tx_queues,
    };
    dev.addr = dev.mac.read_mac();
    log::info!("{addr}: MAC {}", mac::format_mac(&dev.addr));
    dev.mac.init_filters(&dev.addr, RAR_ENTRIES);

    // Link: the MAC follows the PHY's autonegotiation (copper).
    let ctrl = dev.r(CTRL) & !(CTRL_FRCSPD | CTRL_FRCDPLX);
    let ctrl = if cfg.vlan_strip {
        ctrl | CTRL_VME
    } else {
        ctrl & !CTRL_VME
    };
    dev.w(CTRL, ctrl | CTRL_SLU);
    dev.w(VET, VET_8021Q);

    // Receive (datasheet 4.6.5): everything before RCTL.EN, which latches
    // the buffer size and descriptor type.
    dev.w(RCTL, 0);
    dev.w(
        RFCTL,
        RFCTL_EXTEN | RFCTL_ISCSI_DIS | RFCTL_NFSW_DIS | RFCTL_NFSR_DIS,
    );
    // One RCTL.FLXBUF for both queues: the smallest pool decides.
    let smallest = (0..cfg.rx_queues)
        .min_by_key(|&q| pools[usize::from(q)].buf_size())
        .unwrap_or(0);
    let rx_mode = RxMode {
        promiscuous: cfg.promiscuous,
        allmulti: cfg.allmulti,
    };
    let layout = queue::rx_layout(
        smallest,
        &pools[usize::from(smallest)],
        RX_BUF_UNIT,
        RX_BUF_MAX,
    )?;
    let doorbell: Arc<dyn crate::ring::Doorbell> = bar.clone();
    let mut rx_rings = Vec::new();
    let mut rx_counters = Vec::new();
    for q in 0..cfg.rx_queues {
        let n = usize::from(q);
        let b = queue::rx_ring::<ExtRx>(q, cfg, &pools[n], layout, &doorbell, rdt(n))?;
        dev.w(rdbal(n), b.base as u32);
        dev.w(rdbah(n), (b.base >> 32) as u32);
        dev.w(rdlen(n), b.len);
        dev.w(rdh(n), 0);
        dev.w(rdt(n), 0);
        rx_rings.push(b.ring);
        rx_counters.push(b.counters);
    }
    // Checksum status always; PCSD puts the RSS hash in the descriptor (and
    // is what enables RSS).
    dev.w(RXCSUM, RXCSUM_IPOFL | RXCSUM_TUOFL | RXCSUM_PCSD);
    dev.program_rss(&cfg.rss);
    dev.w(RCTL, rctl_value(layout.buf_len, rx_mode, cfg.mtu));
    dev.mac.init_rx_mode(rx_mode);
    let mut rx: Vec<Box<dyn RxBurst>> = Vec::new();
    for mut ring in rx_rings {
        ring.start();
        rx.push(Box::new(ring));
    }

    // Transmit (datasheet 4.6.6).
    let mut tx: Vec<Box<dyn TxBurst>> = Vec::new();
    let mut tx_counters = Vec::new();
    for q in 0..cfg.tx_queues {
        let n = usize::from(q);
        let mut b = queue::tx_ring::<CtxTx>(q, cfg, &doorbell, tdt(n))?;
        // The 82574L inserts tags (VLE) only while CTRL.VME is on, which
        // also strips received tags: without VLAN stripping the ring
        // inserts them in software.
        b.ring.set_software_vlan(!cfg.vlan_strip);
        dev.w(tdbal(n), b.base as u32);
        dev.w(tdbah(n), (b.base >> 32) as u32);
        dev.w(tdlen(n), b.len);
        dev.w(tdh(n), 0);
        dev.w(tdt(n), 0);
        // WTHRESH 0: write-back only for RS'd descriptors, which the ring
        // batches.
        dev.w(txdctl(n), TXDCTL_GRAN | TXDCTL_COUNT_DESC);
        let t = dev.r(tarc(n));
        dev.w(tarc(n), t | TARC_ENABLE);
        tx.push(Box::new(b.ring));
        tx_counters.push(b.counters);
    }
    dev.w(TIPG, TIPG_COPPER);
    dev.w(
        TCTL,
        TCTL_EN
            | TCTL_PSP
            | TCTL_RTLC
            | (COLLISION_THRESHOLD << TCTL_CT_SHIFT)
            | (COLLISION_DISTANCE << TCTL_COLD_SHIFT),
    );

    // Start the statistics from zero.
    let dev = Arc::new(dev);
    dev.read_hw_stats(&mut HwStats::new(COUNTERS));

    if cfg.wait_for_link {
        let l = dev.mac.wait_for_link(cfg.link_timeout)?;
        log::info!("{addr}: link {l}");
    }
    Ok(Opened {
        ops: dev,
        rx,
        tx,
        rx_counters,
        tx_counters,
        hw_counters: COUNTERS,
    })
}

impl PortOps for E1000e {
    fn driver_name(&self) -> &'static str {
        "e1000e"
    }

    fn mac_addr(&self) -> [u8; 6] {
        self.addr
    }

    fn link(&self) -> LinkStatus {
        self.mac.link()
    }

    fn read_hw_stats(&self, hw: &mut HwStats) {
        self.mac.read_counters(hw)
    }

    fn events(&self) -> Vec<(String, u64)> {
        self.mac.events()
    }

    fn set_promiscuous(&self, on: bool) {
        self.mac.set_rx_mode(|m| m.promiscuous = on)
    }

    fn set_allmulti(&self, on: bool) {
        self.mac.set_rx_mode(|m| m.allmulti = on)
    }

    fn set_unicast_filters(&self, addrs: &[[u8; 6]]) -> Result<()> {
        self.mac.set_unicast_filters(addrs, RAR_ENTRIES)
    }

    fn set_multicast_filters(&self, addrs: &[[u8; 6]]) {
        self.mac.set_multicast_filters(addrs)
    }

    fn set_mtu(&self, mtu: u16) -> Result<()> {
        // Frames longer than one buffer span several descriptors, so only
        // RCTL.LPE changes (see STANDARD_MTU).
        LIMITS.check_mtu(mtu)?;
        self.mac.set_rctl_bits(RCTL_LPE, lpe_for(mtu) != 0);
        Ok(())
    }

    fn disable_rx_queue(&self, _queue: u16) {
        // The 82574L has no per-queue receive enable: the port's receive
        // stops, so the device writes into no ring after this.
        self.mac.set_rctl_bits(RCTL_EN, false);
        self.mac.flush();
    }

    fn disable_tx_queue(&self, queue: u16) {
        let n = usize::from(queue);
        self.drain_tx(n);
        self.mac.update(tarc(n), |v| v & !TARC_ENABLE);
        self.mac.flush();
    }

    fn stop(&self) {
        self.mac.set_rctl_bits(RCTL_EN, false);
        for q in 0..self.tx_queues {
            self.drain_tx(usize::from(q));
        }
        self.mac.update(TCTL, |v| v & !TCTL_EN);
        self.mac.flush();
    }

    #[cfg(feature = "mmio-count")]
    fn mmio_counts(&self) -> Option<(u64, u64)> {
        Some(self.mac.bar().access_counts())
    }

    fn close(&self) {
        self.stop();
        if let Err(e) = self.mac.global_reset(RESET_TIMEOUT) {
            log::warn!("{e}");
        }
        self.mac.set_driver_loaded(false);
        if let Err(e) = self.device.disable_bus_master() {
            log::warn!("{}: disabling bus mastering: {e}", self.mac.addr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_without_udp() {
        let m = mrqc_for(rss::HashTypes::ALL.intersection(rss::HashTypes::NO_UDP));
        assert_eq!(m & 3, MRQC_ENABLE_RSS_2Q);
        assert_eq!(
            m & 0xFFFF_0000,
            MRQC_RSS_FIELD_IPV4
                | MRQC_RSS_FIELD_IPV4_TCP
                | MRQC_RSS_FIELD_IPV6
                | MRQC_RSS_FIELD_IPV6_TCP_EX
        );
        assert_eq!(mrqc_for(rss::HashTypes::IPV4_UDP), MRQC_ENABLE_RSS_2Q);
    }

    #[test]
    fn reta_selects_the_queue_with_bit_7() {
        let r = reta_registers(&rss::default_reta(2));
        // Entries 0..3 -> queues 0,1,0,1: bytes 00 80 00 80.
        assert_eq!(r[0], 0x8000_8000);
        assert!(r.iter().all(|&v| v == 0x8000_8000));
        let one = reta_registers(&rss::default_reta(1));
        assert!(one.iter().all(|&v| v == 0));
    }

    #[test]
    fn rctl_latches_buffer_size_in_kib() {
        let m = |promiscuous, allmulti| RxMode {
            promiscuous,
            allmulti,
        };
        let v = rctl_value(2048, m(false, false), 1500);
        assert!(v & RCTL_EN != 0 && v & RCTL_SECRC != 0);
        assert_eq!(v & RCTL_LPE, 0, "no long frames at MTU 1500");
        assert_ne!(rctl_value(2048, m(false, false), 1501) & RCTL_LPE, 0);
        assert_eq!((v & RCTL_FLXBUF_MASK) >> RCTL_FLXBUF_SHIFT, 2);
        assert_eq!(v & RCTL_DTYP_MASK, 0, "one-buffer descriptors");
        assert_eq!(v & (RCTL_UPE | RCTL_MPE), 0);
        assert_eq!(
            rctl_value(15 * 1024, m(true, false), 9000) & (RCTL_UPE | RCTL_MPE | RCTL_FLXBUF_MASK),
            RCTL_UPE | RCTL_MPE | (15 << RCTL_FLXBUF_SHIFT)
        );
        assert_eq!(
            rctl_value(1024, m(false, true), 1500) & (RCTL_UPE | RCTL_MPE),
            RCTL_MPE
        );
    }

    #[test]
    fn device_table_supports_the_82574l_and_names_the_82583v() {
        let (d, id) = crate::port::find_driver(0x8086, 0x10D3).expect("82574L listed");
        assert_eq!(d.name, "e1000e");
        assert!(matches!(id.support, Support::Yes));
        let (_, id) = crate::port::find_driver(0x8086, 0x150C).expect("82583V listed");
        assert_eq!(id.name, "82583V");
        assert!(matches!(id.support, Support::Refused(_)));
    }
}
