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

use crate::error::Result;
use crate::mac::{Family, FcThresholds, FlowControl, Mac, RxMode};
use crate::mac_port::{Chip, MacPort, Queues};
use crate::phy;
use crate::port::{DeviceId, Driver, OpenArgs, Opened, Support};
use crate::queue::{self, Limits};
use crate::rss;
use crate::stats::HwCounter;
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
    name: E1000e::LIMITS.driver,
    ids: DEVICE_IDS,
    open,
};

/// The statistics registers: the 82574L's block matches the 82576's (same
/// offsets, names and clear-on-read behaviour), so the table is shared.
pub static COUNTERS: &[HwCounter] = crate::igb::stats::COUNTERS;

/// RCTL.FLXBUF granularity and largest size.
const RX_BUF_UNIT: usize = 1024;
const RX_BUF_MAX: usize = RCTL_FLXBUF_MAX_KB as usize * 1024;

/// What the 82574L does its own way (see [`Chip`]); the port is
/// `MacPort<E1000e>`.
pub struct E1000e;

impl Chip for E1000e {
    /// Two RX and two TX queues; RX queue 1 is reached only through RSS.
    const LIMITS: Limits = Limits::intel_1g("e1000e", 2);
    const FAMILY: Family = Family::I82574;

    /// Copper link as Intel's setup_copper_link_82571 and the M88/BM
    /// copper_link_setup do it for the 82574's PHY (82574 datasheet 10.3
    /// PHY registers): the MAC follows the PHY (CTRL.SLU, no forced
    /// speed/duplex), PHY reset, automatic MDI/MDI-X, polarity reversal
    /// on, downshift enabled, committed by a PHY software reset; then the
    /// advertisement and autonegotiation restart.
    fn setup_copper(&self, mac: &Mac, fc: FlowControl) -> Result<()> {
        mac.update(CTRL, |c| (c | CTRL_SLU) & !(CTRL_FRCSPD | CTRL_FRCDPLX));
        phy::hw_reset(mac)?;
        phy::power_up(mac)?;
        phy::update(mac, PHY_SPEC_CTRL, |v| {
            (v & !(PHY_SPEC_CTRL_MDIX_MASK | PHY_SPEC_CTRL_POLARITY_REVERSAL_DIS))
                | PHY_SPEC_CTRL_AUTO_MDIX
                | PHY_SPEC_CTRL_DOWNSHIFT_EN
        })?;
        phy::sw_reset(mac)?;
        phy::power_up(mac)?;
        phy::setup_autoneg(mac, fc)?;
        phy::restart_autoneg(mac)
    }

    /// The initialisation bits Intel's code sets for the 82574 after every
    /// reset (its initialize_hw_bits for the 82571 family, and the 82574
    /// datasheet's CTRL, CTRL_EXT, TARC, GCR and GCR2 register
    /// descriptions): TXDCTL(0/1) bit 22, TARC0 bits 30:27 cleared
    /// and bit 26 set (TARC1 is left alone on the 82574), CTRL bit 29
    /// cleared, CTRL_EXT bit 23 cleared and 22 set, GCR bit 22 and
    /// L1_ACT_WITHOUT_L0S_RX, GCR2 bit 0 (the PCIe completion erratum that
    /// shows as TX hangs with ASPM on), and the packet buffer split at
    /// 32 KiB for receive as Linux's e1000e does (PBA; FC thresholds follow
    /// it). QEMU ignores all of these except TXDCTL and TARC.ENABLE (bit
    /// 10, preserved here).
    fn init_hw_bits(&self, mac: &Mac) {
        for n in 0..2 {
            mac.update(txdctl(n), |v| v | TXDCTL_COUNT_DESC);
        }
        mac.update(tarc(0), |v| (v & !(0xF << 27)) | (1 << 26));
        mac.update(CTRL, |v| v & !(1 << 29));
        mac.update(CTRL_EXT, |v| (v & !(1 << 23)) | (1 << 22));
        mac.update(GCR, |v| v | GCR_82574_INIT | GCR_L1_ACT_WITHOUT_L0S_RX);
        mac.update(GCR2, |v| v | 1);
        mac.w(PBA, PBA_RX_KB);
    }

    /// 82574: the receive packet buffer [`init_hw_bits`](Chip::init_hw_bits)
    /// sets (PBA), FCRTH/FCRTL in 8-byte units, pause time 0x680 as
    /// Linux's e1000e.
    fn fc_thresholds(&self, mtu: u16) -> FcThresholds {
        FcThresholds::for_buffer(PBA_RX_KB, u32::from(mtu) + 14 + 4 + 4, 8, 0x0680)
    }

    fn set_mtu(&self, mac: &Mac, mtu: u16) {
        // Frames longer than one buffer span several descriptors, so only
        // RCTL.LPE changes (see STANDARD_MTU).
        mac.set_rctl_bits(RCTL_LPE, lpe_for(mtu) != 0);
    }

    fn disable_rx_queue(&self, mac: &Mac, _queue: u16) -> bool {
        // The 82574L has no per-queue receive enable: the port's receive
        // stops. Nothing reports when a frame already being written has
        // landed, so the queue is never confirmed off here: its buffers
        // wait for the reset of close (crate::fence).
        mac.set_rctl_bits(RCTL_EN, false);
        mac.flush();
        false
    }

    fn disable_tx_queue(&self, mac: &Mac, queue: u16) -> bool {
        let n = usize::from(queue);
        mac.drain_tx(tdbal(n), queue);
        mac.update(tarc(n), |v| v & !TARC_ENABLE);
        mac.flush();
        // No per-queue DMA-stopped status either.
        false
    }

    fn stop_queues(&self, mac: &Mac, _rx_queues: u16, tx_queues: u16) -> bool {
        for q in 0..tx_queues {
            mac.drain_tx(tdbal(usize::from(q)), q);
        }
        false
    }
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

/// Programs RSS for `rx_queues` queues (UDP hash types dropped).
fn program_rss(mac: &Mac, cfg: &rss::RssConfig, rx_queues: u16) {
    let reta = cfg.reta.unwrap_or_else(|| rss::default_reta(rx_queues));
    let types = cfg.hash_types.intersection(rss::HashTypes::NO_UDP);
    if types != cfg.hash_types {
        log::info!(
            "{}: the 82574L has no UDP RSS hash types; UDP packets get the address hash",
            mac.addr()
        );
    }
    mac.program_rss(&cfg.key, &reta_registers(&reta), mrqc_for(types));
}

/// Why this driver refuses header split.
const NO_HEADER_SPLIT: &str = "the 82574L splits only through its packet-split descriptors \
     (RCTL.DTYP 01b, PSRCTL), which this driver does not implement";

fn open(args: OpenArgs<'_>) -> Result<Opened> {
    queue::check_rx_pools(E1000e::LIMITS.driver, &args.rxq, Some(NO_HEADER_SPLIT))?;
    let (port, setup) = MacPort::bring_up(args, E1000e)?;
    let (cfg, doorbell) = (setup.cfg, setup.doorbell);
    let pools: Vec<_> = setup.rxq.iter().map(|c| c.pool().clone()).collect();
    let mac = &port.mac;

    // Link: the MAC follows the PHY's autonegotiation (copper).
    mac.update(CTRL, |c| {
        let c = c & !(CTRL_FRCSPD | CTRL_FRCDPLX);
        let c = if cfg.vlan_strip {
            c | CTRL_VME
        } else {
            c & !CTRL_VME
        };
        c | CTRL_SLU
    });
    mac.w(VET, VET_8021Q);

    // Receive (datasheet 4.6.5): everything before RCTL.EN, which latches
    // the buffer size and descriptor type.
    mac.w(RCTL, 0);
    mac.w(
        RFCTL,
        RFCTL_EXTEN | RFCTL_ISCSI_DIS | RFCTL_NFSW_DIS | RFCTL_NFSR_DIS,
    );
    // One RCTL.FLXBUF for both queues: the smallest pool decides.
    let smallest = (0..cfg.rx_queues)
        .min_by_key(|&q| pools[usize::from(q)].buf_size())
        .unwrap_or(0);
    let layout = queue::rx_layout(
        smallest,
        &pools[usize::from(smallest)],
        RX_BUF_UNIT,
        RX_BUF_MAX,
    )?;
    let mut rx_rings = Vec::new();
    for q in 0..cfg.rx_queues {
        let n = usize::from(q);
        let b = queue::rx_ring::<ExtRx>(q, cfg, &pools[n], layout, None, &doorbell, rdt(n))?;
        mac.program_ring(rdbal(n), b.base, b.len);
        rx_rings.push(b);
    }
    // Checksum status always; PCSD puts the RSS hash in the descriptor (and
    // is what enables RSS).
    mac.w(RXCSUM, RXCSUM_IPOFL | RXCSUM_TUOFL | RXCSUM_PCSD);
    program_rss(mac, &cfg.rss, cfg.rx_queues);
    mac.w(RCTL, rctl_value(layout.buf_len, mac.rx_mode(), cfg.mtu));
    let mut queues = Queues::default();
    for mut b in rx_rings {
        b.ring.start();
        queues.push_rx(b.ring, b.counters);
    }

    // Transmit (datasheet 4.6.6).
    for q in 0..cfg.tx_queues {
        let n = usize::from(q);
        let mut b = queue::tx_ring::<CtxTx>(q, cfg, &doorbell, tdt(n))?;
        // The 82574L inserts tags (VLE) only while CTRL.VME is on, which
        // also strips received tags: without VLAN stripping the ring
        // inserts them in software.
        b.ring.set_software_vlan(!cfg.vlan_strip);
        mac.program_ring(tdbal(n), b.base, b.len);
        // WTHRESH 0: write-back only for RS'd descriptors, which the ring
        // batches.
        mac.w(txdctl(n), TXDCTL_GRAN | TXDCTL_COUNT_DESC);
        if n == 0 {
            // 82574 erratum (Linux's e1000e applies it): TXDCTL(1) must
            // equal TXDCTL(0) even when queue 1 is unused.
            mac.w(txdctl(1), TXDCTL_GRAN | TXDCTL_COUNT_DESC);
        }
        mac.update(tarc(n), |t| t | TARC_ENABLE);
        queues.push_tx(b.ring, b.counters);
    }
    mac.w(TIPG, TIPG_COPPER);
    mac.enable_transmit();

    port.finish(cfg, queues, COUNTERS)
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
