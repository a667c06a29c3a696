//! The igb driver: Intel 82576 (datasheet names throughout).
//!
//! - [`regs`]: register offsets and bits.
//! - [`desc`]: advanced RX/TX descriptor formats for the shared rings.
//! - [`stats`]: the statistics register table.
//! - this file: the device table, bring-up (reset, EEPROM MAC, PHY
//!   autonegotiation through MDIC, link wait), queue setup (RSS, checksum,
//!   VLAN strip, MTU) and the port-wide operations.

pub mod desc;
pub mod flow;
pub mod regs;
pub mod stats;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::flow::{FilterKind, FlowError, FlowRule};
use crate::intr::{self, MsixPlan};
use crate::mac::{self, Family, FcThresholds, FlowControl, Mac};
use crate::mac_port::{self, Chip};
use crate::phy;
use crate::port::{DeviceId, Driver, OpenArgs, Opened, PortConfig, Queues, RxQueueConfig, Support};
use crate::queue::{self, Limits};
use crate::ring::QueueBar;
use crate::rss;
use crate::rx::RxBufLayout;
use crate::stats::HwCounter;
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
    name: Igb::LIMITS.driver,
    ids: DEVICE_IDS,
    open,
};

/// Ethernet header + CRC + two VLAN tags beyond the MTU.
const FRAME_OVERHEAD: u16 = 14 + 4 + 8;
/// SRRCTL.BSIZEPACKET granularity and largest value (127 KiB, but a
/// descriptor's length field and our pools make 16 KiB plenty).
const RX_BUF_UNIT: usize = 1024;
const RX_BUF_MAX: usize = 16 * 1024;

const QUEUE_TIMEOUT: Duration = Duration::from_millis(100);

/// What the 82576 does its own way (see [`Chip`]); the port is
/// `MacPort<Igb>`.
pub struct Igb;

impl Chip for Igb {
    /// Eight queue pairs: Linux igb's cap for the 82576 with RSS (the
    /// register map has 16).
    const LIMITS: Limits = Limits::intel_1g("igb", 8);
    const FAMILY: Family = Family::I82576;
    const RAR_ENTRIES: usize = RAR_ENTRIES_82576;
    const NO_HEADER_SPLIT: Option<&'static str> = None;
    const COUNTERS: &'static [HwCounter] = stats::COUNTERS;

    /// Receive (datasheet 4.5.9) then transmit (4.5.10) per `cfg`.
    fn start_queues(
        &self,
        mac: &Mac,
        cfg: &PortConfig,
        rxq: &[RxQueueConfig],
        doorbell: &QueueBar,
    ) -> Result<Queues> {
        start_queues(mac, cfg, rxq, doorbell)
    }

    /// What Intel's igb sets after every reset besides the shared reset
    /// (its vmm_control for the 82576; 82576 datasheet section 8, DTXCTL,
    /// RPLOLR, DTXSWC, VT_CTL): DTXCTL.VLAN_ADDED (the MAC inserts the VLAN
    /// tags it is asked to, and accounts for them), RPLOLR.STRVLAN, VMDq
    /// loopback (DTXSWC) and replication (VT_CTL) off since no pools are
    /// used; and the unicast hash table (UTA) cleared as Intel's init_hw
    /// does (82576 datasheet section 8, UTA; no hash filtering is used).
    fn init_hw_bits(&self, mac: &Mac) {
        mac.update(DTXCTL, |v| v | DTXCTL_VLAN_ADDED);
        mac.update(RPLOLR, |v| v | RPLOLR_STRVLAN);
        mac.update(DTXSWC, |v| v & !DTXSWC_VMDQ_LOOPBACK_EN);
        mac.update(VT_CTL, |v| v & !VT_CTL_VM_REPL_EN);
        for i in 0..UTA_LEN {
            mac.w(UTA + 4 * i, 0);
        }
    }

    /// The PCIe completion timeout in Device Control 2 when the device has
    /// a version 2 capability (GCR.CAP_VER2) and no timeout in GCR, as
    /// Intel's set_pcie_completion_timeout does (82576 datasheet section 8,
    /// GCR; issue 10 item 5): 16 ms - 55 ms instead of the 50 us - 50 ms
    /// default. The GCR part is in [`Mac::global_reset`]. QEMU's igb
    /// reports GCR.CAP_VER2 (GCR reads 0x06850200 after reset), so this runs
    /// there; vfio-pci passes Device Control 2 writes.
    fn pci_setup(&self, device: &hw::vfio::Device, mac: &Mac) {
        let gcr = mac.r(GCR);
        if gcr & GCR_CMPL_TMOUT_MASK != 0 || gcr & GCR_CAP_VER2 == 0 {
            return;
        }
        match device.pcie_update16(hw::pci::config::EXP_DEVCTL2, 0, DEVCTL2_CMPL_TMOUT_16MS) {
            Ok(Some((before, after))) => log::info!(
                "{}: PCIe Device Control 2 completion timeout {before:#06x} -> {after:#06x}",
                mac.addr()
            ),
            Ok(None) => {}
            Err(e) => log::warn!("{e}; PCIe completion timeout left at its default"),
        }
    }

    /// Copper link as Intel's setup_copper_link_82575 and
    /// copper_link_setup_igp do it (82576 datasheet 3.5.x link setup,
    /// 8.27 PHY registers): the MAC follows the PHY (CTRL.SLU, no forced
    /// speed/duplex), PHY reset (the PHY is powered up again after it),
    /// D0 low-power link up off, automatic MDI/MDI-X, the advertisement,
    /// autonegotiation restarted. QEMU's igb brings its link up only on
    /// the restart.
    fn setup_copper(&self, mac: &Mac, fc: FlowControl) -> Result<()> {
        mac.update(CTRL, |c| (c | CTRL_SLU) & !(CTRL_FRCSPD | CTRL_FRCDPLX));
        phy::hw_reset(mac)?;
        phy::power_up(mac)?;
        // The IGP registers above 15: QEMU's igb PHY model has neither and
        // answers MDIC.ERROR; real 82576s have both (8.27.3).
        for (reg, set, clear) in [
            (IGP_PORT_CFG, 0, IGP_PORT_CFG_D0_LPLU),
            (
                IGP_PORT_CTRL,
                IGP_PORT_CTRL_AUTO_MDIX,
                IGP_PORT_CTRL_FORCE_MDIX,
            ),
        ] {
            if let Err(e) = phy::update(mac, reg, |v| (v & !clear) | set) {
                log::debug!("{e} (IGP register {reg:#x}; QEMU does not model it)");
            }
        }
        phy::setup_autoneg(mac, fc)?;
        phy::restart_autoneg(mac)
    }

    /// 82576 receive packet buffer 64 KiB (RXPBS reset value, 82576
    /// 8.3.x), FCRTH/FCRTL in 16-byte units, pause time 0xFFFF as Intel's
    /// igb sets them.
    fn fc_thresholds(&self, mtu: u16) -> FcThresholds {
        FcThresholds::for_buffer(64, max_frame(mtu), 16, 0xFFFF)
    }

    fn mask_extra_interrupts(&self, mac: &Mac) {
        mac.w(EIMC, u32::MAX);
        mac.w(EIAC, 0);
        mac.w(EIAM, 0);
    }

    fn set_mtu(&self, mac: &Mac, mtu: u16) -> Result<()> {
        // Frames longer than one buffer are received as several segments,
        // so only the length limit changes.
        mac.w(RLPML, max_frame(mtu));
        Ok(())
    }

    fn disable_rx_queue(&self, mac: &Mac, queue: u16) -> bool {
        disable_queue(mac, rxdctl(usize::from(queue)), "RX", queue)
    }

    fn disable_tx_queue(&self, mac: &Mac, queue: u16) -> bool {
        let n = usize::from(queue);
        // Let the device finish what was queued.
        mac.drain_tx(tdbal(n), queue);
        disable_queue(mac, txdctl(n), "TX", queue)
    }

    fn stop_queues(&self, mac: &Mac, rx_queues: u16, tx_queues: u16) -> bool {
        let mut off = true;
        for q in 0..rx_queues {
            off &= self.disable_rx_queue(mac, q);
        }
        for q in 0..tx_queues {
            off &= self.disable_tx_queue(mac, q);
        }
        off
    }

    fn configure_msix(&self, mac: &Mac, plan: &MsixPlan) {
        configure_msix(mac, plan)
    }

    /// Arm: the queue's EICR bit cleared (write 1), then its EIMS bit set;
    /// disarm: its EIMC bit.
    fn set_rx_interrupt(&self, mac: &Mac, queue: u16, on: bool) {
        let bit = 1 << intr::rx_vector(queue);
        if on {
            mac.w(EICR, bit);
            mac.w(EIMS, bit);
        } else {
            mac.w(EIMC, bit);
        }
    }

    /// EIMS of the other vector (EIAM masked it as it fired).
    fn rearm_link_interrupt(&self, mac: &Mac) {
        mac.w(EIMS, 1 << intr::OTHER_VECTOR);
    }

    /// EtherType (ETQF) and 5-tuple (FTQF) filters ([`flow`]).
    fn flow_filter(&self, rule: &FlowRule) -> std::result::Result<FilterKind, FlowError> {
        flow::filter_for(rule)
    }

    fn flow_slots(&self, kind: FilterKind) -> usize {
        flow::slots(kind)
    }

    fn write_flow_filter(
        &self,
        mac: &Mac,
        kind: FilterKind,
        slot: usize,
        rule: Option<(&FlowRule, u16)>,
    ) {
        flow::write(mac, kind, slot, rule)
    }
}

/// EITR for an interval of `us` microseconds (bits 14:2, 1 us units),
/// with CNT_IGNR as Linux's igb writes it on the 82576.
pub fn eitr_value(us: u16) -> u32 {
    ((u32::from(us) << 2) & EITR_INTERVAL_MASK) | EITR_CNT_IGNR
}

/// The IVAR0 register and bit offset of RX queue `queue`'s entry: a table
/// of 8 rows of 2 columns, queue q in row q & 7, column q >> 3 (the 82576
/// datasheet's IVAR0 description).
pub fn ivar_rx(queue: u16) -> (usize, u32) {
    let q = u32::from(queue);
    (IVAR0 + 4 * (q & 7) as usize, (q & 8) << 1)
}

/// MSI-X routing on the 82576 (the datasheet's MSI-X chapter and GPIE,
/// IVAR, EIAC, EIAM, EITR registers; the order of
/// Linux's igb_configure_msix and DPDK's eth_igb_configure_msix_intr):
/// GPIE first (Multiple_MSIX, PBA support, EIAME, NSICR: the IVAR and
/// auto-clear settings act only in MSI-X mode), the other causes to
/// vector 0 (IVAR_MISC), RX queue q to vector 1 + q (IVAR0) with its EITR,
/// EIAC and EIAM for every vector in use (auto-clear of EICR and
/// auto-mask as each fires), RX vectors masked until armed, and the other
/// vector with IMS.LSC unmasked when link events are asked for.
///
/// QEMU's igb differs from the datasheet here: it ignores EIAM (a vector
/// is not masked as it fires: an armed RX vector keeps firing at the EITR
/// pace until it is disarmed), stores the complement of an EIAM write, and
/// ORs EIAC writes into the register instead of replacing it; none of this
/// changes what the driver sees, since it disarms a queue after the wake.
pub fn configure_msix(mac: &Mac, plan: &MsixPlan) {
    mac.w(GPIE, GPIE_MSIX_MODE | GPIE_PBA | GPIE_EIAME | GPIE_NSICR);
    mac.w(IVAR_MISC, (intr::OTHER_VECTOR | IVAR_VALID) << 8);
    let mut rx_bits = 0;
    for q in 0..plan.rx_queues {
        let v = intr::rx_vector(q);
        let (reg, shift) = ivar_rx(q);
        mac.update(reg, |x| {
            (x & !(0xFF << shift)) | ((v | IVAR_VALID) << shift)
        });
        mac.w(eitr(v as usize), eitr_value(plan.rx_interval_us));
        rx_bits |= 1 << v;
    }
    let mask = plan.vector_mask();
    mac.w(EIAC, mask);
    mac.w(EIAM, mask);
    mac.w(EIMC, rx_bits);
    if plan.lsc {
        mac.w(EIMS, 1 << intr::OTHER_VECTOR);
        mac.w(IMS, ICR_LSC);
    }
    mac.flush();
}

fn max_frame(mtu: u16) -> u32 {
    u32::from(mtu) + u32::from(FRAME_OVERHEAD)
}

/// Clears a queue's RXDCTL/TXDCTL.ENABLE and waits for the device to
/// report it off (datasheet 4.5.9.1: ENABLE reads back 0 once the queue's
/// DMA is stopped). True only when it did: otherwise the queue's buffers
/// must not be freed (crate::fence). An all-ones read (device gone) is not
/// a confirmation.
fn disable_queue(mac: &Mac, ctl_reg: usize, what: &str, queue: u16) -> bool {
    let v = mac.r(ctl_reg);
    if v != u32::MAX && v & RXDCTL_ENABLE == 0 {
        return true;
    }
    mac.w(ctl_reg, v & !RXDCTL_ENABLE);
    let off = mac::poll(QUEUE_TIMEOUT, || {
        let v = mac.r(ctl_reg);
        v != u32::MAX && v & RXDCTL_ENABLE == 0
    });
    if !off {
        log::warn!(
            "{}: {what} queue {queue} did not report disabled; its buffers are held until the device is reset",
            mac.addr()
        );
    }
    off
}

/// Sets RXDCTL/TXDCTL to `value` (with ENABLE) and waits for the device to
/// report the queue on.
fn enable_queue(mac: &Mac, ctl_reg: usize, value: u32, queue: u16) -> Result<()> {
    mac.w(ctl_reg, value);
    if mac::poll(QUEUE_TIMEOUT, || mac.r(ctl_reg) & RXDCTL_ENABLE != 0) {
        Ok(())
    } else {
        Err(Error::QueueEnableTimeout {
            addr: mac.addr(),
            queue,
            ms: QUEUE_TIMEOUT.as_millis() as u64,
        })
    }
}

/// The MRQC value for `types`.
pub fn mrqc_for(types: rss::HashTypes) -> u32 {
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
        if types.contains(ty) {
            mrqc |= bit;
        }
    }
    mrqc
}

/// PSRTYPE for header split: every header type the 82576 can split at.
const PSRTYPE_ALL: u32 =
    PSRTYPE_L2HDR | PSRTYPE_IPV4HDR | PSRTYPE_IPV6HDR | PSRTYPE_TCPHDR | PSRTYPE_UDPHDR;

/// The SRRCTL value of a queue: packet buffer size, and with a header
/// layout, header split.
///
/// Header split uses DESCTYPE 010b, not split-always (101b), because of
/// what the 82576 does with frames it cannot split (datasheet 7.1.4): in
/// 010b such a frame goes whole into the packet buffer, so with a
/// device-memory payload pool nothing but parsed headers ever lands in
/// CPU-readable memory (the safe state is the unreadable one). In 101b a
/// frame no longer than the header buffer goes whole into the header
/// buffer, and an unsplittable one has its first BSIZEHEADER bytes put
/// there: payload bytes in readable pages, which devmem must never allow.
pub fn srrctl_value(packet: RxBufLayout, header: Option<RxBufLayout>) -> u32 {
    let bsize = u32::from(packet.buf_len) >> SRRCTL_BSIZEPKT_SHIFT;
    match header {
        None => bsize | SRRCTL_DESCTYPE_ADV_ONEBUF,
        Some(h) => {
            bsize
                | ((u32::from(h.buf_len) << SRRCTL_BSIZEHDR_SHIFT) & SRRCTL_BSIZEHDR_MASK)
                | SRRCTL_DESCTYPE_HDR_SPLIT
        }
    }
}

/// SRRCTL.DROP_EN for a queue: as asked, else on with more than one RX
/// queue.
fn srrctl_drop_bit(asked: Option<bool>, rx_queues: u16) -> u32 {
    if asked.unwrap_or(rx_queues > 1) {
        SRRCTL_DROP_EN
    } else {
        0
    }
}

fn open(args: OpenArgs<'_>) -> Result<Opened> {
    mac_port::open(args, Igb)
}

/// Every queue of a port just initialised (at open and at each restart).
fn start_queues(
    mac: &Mac,
    cfg: &PortConfig,
    rxq: &[RxQueueConfig],
    doorbell: &QueueBar,
) -> Result<Queues> {
    // Receive (datasheet 4.5.9).
    mac.w(RCTL, 0);
    let mut queues = Queues::default();
    for q in 0..cfg.rx_queues {
        let n = usize::from(q);
        let pool = rxq[n].pool();
        let layout = queue::rx_layout(q, pool, RX_BUF_UNIT, RX_BUF_MAX)?;
        let header = match rxq[n].header_pool() {
            Some(h) => Some((
                h,
                queue::rx_header_layout(q, h, SRRCTL_BSIZEHDR_UNIT, SRRCTL_BSIZEHDR_MAX)?,
            )),
            None => None,
        };
        let mut b = queue::rx_ring::<AdvRx>(q, cfg, pool, layout, header, doorbell, rdt(n))?;
        mac.w(rxdctl(n), 0);
        mac.program_ring(rdbal(n), b.base, b.len);
        if header.is_some() {
            mac.w(psrtype(n % 8), PSRTYPE_ALL);
        }
        // SRRCTL.DROP_EN (82576 datasheet section 8, SRRCTL; issue 10 item
        // 7; DPDK's rx_drop_en): a
        // queue without free descriptors drops its frames instead of
        // holding them in the packet buffer all queues share, so one
        // starved queue cannot stall the others. On by default with more
        // than one RX queue. (QEMU's igb drops on a full ring either way.)
        mac.w(
            srrctl(n),
            srrctl_value(layout, header.map(|(_, l)| l))
                | srrctl_drop_bit(rxq[n].drop_en(), cfg.rx_queues),
        );
        // PTHRESH/HTHRESH as DPDK; WTHRESH 1, DPDK's 82576 RX default: a larger
        // one can hold a lone packet's write-back while interrupts are masked
        // (82576 datasheet 8.10.10 RXDCTL.WTHRESH).
        enable_queue(
            mac,
            rxdctl(n),
            RXDCTL_ENABLE
                | (8 << RXDCTL_PTHRESH_SHIFT)
                | (8 << RXDCTL_HTHRESH_SHIFT)
                | (1 << RXDCTL_WTHRESH_SHIFT),
            q,
        )?;
        b.ring.start();
        queues.push_rx(b.ring, b.counters);
    }
    // Only the offloads asked for (issue 12 item 3): checksum reporting,
    // and RSS (MRQC, the key and RETA) with more than one RX queue or the
    // hash asked for; otherwise MRQC 0: no hashing, every frame to queue 0.
    mac.w(RXCSUM, Mac::rxcsum_for(cfg));
    if cfg.rss_enabled() {
        let reta = cfg
            .rss
            .reta
            .unwrap_or_else(|| rss::default_reta(cfg.rx_queues));
        mac.program_rss(
            &cfg.rss.key,
            &rss::reta_registers(&reta),
            mrqc_for(cfg.rss.hash_types),
        );
    } else {
        mac.w(MRQC, 0);
    }
    mac.w(RLPML, max_frame(cfg.mtu));
    mac.w(VET, VET_8021Q_BOTH);
    // RFCTL.IPV6_EX_DIS: the 82576 erratum setting (Intel's
    // rx_fifo_flush_82575 sets it for every 82575/82576; 82576
    // specification update, IPv6 extension header parsing; issue 10 item
    // 10): no IPv6 extension header parsing, so such packets get the
    // plain IPv6 RSS hash and no L4 checksum. QEMU's igb honours it.
    mac.update(RFCTL, |v| v | RFCTL_IPV6_EX_DIS);
    mac.update(CTRL, |c| {
        if cfg.vlan_strip {
            c | CTRL_VME
        } else {
            c & !CTRL_VME
        }
    });
    mac.w(
        RCTL,
        RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_LPE | mac.rx_mode().rctl_bits(),
    );

    // Transmit (datasheet 4.5.10).
    for q in 0..cfg.tx_queues {
        let n = usize::from(q);
        let b = queue::tx_ring::<AdvTx>(q, cfg, doorbell, tdt(n))?;
        mac.w(txdctl(n), 0);
        mac.program_ring(tdbal(n), b.base, b.len);
        // 82576 erratum (also DPDK's): WTHRESH must be 1, else a lone packet
        // can sit in the ring without its descriptor being written back.
        enable_queue(
            mac,
            txdctl(n),
            TXDCTL_ENABLE
                | (8 << TXDCTL_PTHRESH_SHIFT)
                | (1 << TXDCTL_HTHRESH_SHIFT)
                | (1 << TXDCTL_WTHRESH_SHIFT),
            q,
        )?;
        queues.push_tx(b.ring, b.counters);
    }
    mac.enable_transmit();
    Ok(queues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_en_is_on_with_several_queues_unless_asked_off() {
        assert_eq!(srrctl_drop_bit(None, 1), 0);
        assert_eq!(srrctl_drop_bit(None, 2), SRRCTL_DROP_EN);
        assert_eq!(srrctl_drop_bit(Some(false), 4), 0);
        assert_eq!(srrctl_drop_bit(Some(true), 1), SRRCTL_DROP_EN);
    }

    #[test]
    fn rss_hashes_every_type_with_the_ipv6_ex_fields() {
        let m = mrqc_for(rss::HashTypes::ALL);
        assert_eq!(m & 7, MRQC_ENABLE_RSS_MQ);
        assert_eq!(
            m & 0xFFFF_0000,
            MRQC_RSS_FIELD_IPV4
                | MRQC_RSS_FIELD_IPV4_TCP
                | MRQC_RSS_FIELD_IPV4_UDP
                | MRQC_RSS_FIELD_IPV6
                | MRQC_RSS_FIELD_IPV6_EX
                | MRQC_RSS_FIELD_IPV6_TCP
                | MRQC_RSS_FIELD_IPV6_TCP_EX
                | MRQC_RSS_FIELD_IPV6_UDP
                | MRQC_RSS_FIELD_IPV6_UDP_EX
        );
        assert_eq!(
            mrqc_for(rss::HashTypes::IPV4_UDP),
            MRQC_ENABLE_RSS_MQ | MRQC_RSS_FIELD_IPV4_UDP
        );
    }

    /// The RETA entries (one byte each) the fake device holds.
    fn reta_of(regs: &crate::mac::fake::FakeRegs) -> Vec<u8> {
        (0..32)
            .flat_map(|i| regs.reg(RETA + 4 * i).to_le_bytes())
            .collect()
    }

    #[test]
    fn a_flow_rule_programs_ftqf_and_keeps_rss_off_its_queue_until_removed() {
        use crate::flow::{FlowError, FlowId, FlowRule};
        use crate::mac::fake::FakeRegs;
        use crate::mac_port::Flows;
        use crate::port::PortConfig;
        use std::sync::Arc;

        let regs = Arc::new(FakeRegs::new());
        let addr = hw::PciAddress::new(0, 0, 3, 0).expect("address");
        let mac = Mac::over(addr, regs.clone(), Some(Family::I82576));
        let cfg = PortConfig {
            rx_queues: 4,
            ..PortConfig::default()
        };
        // The open programs the round-robin table.
        let base = rss::default_reta(4);
        for (i, v) in rss::reta_registers(&base).iter().enumerate() {
            mac.w(RETA + 4 * i, *v);
        }
        let mut flows = Flows::new(&cfg);
        let before = regs.writes().len();
        let e = flows
            .add(&mac, &Igb, &FlowRule::udp_dst(5000), 1)
            .expect("udp dst 5000 to queue 1");
        assert_eq!((e.id, e.slot), (FlowId(0), 0));
        let writes = regs.writes()[before..].to_vec();
        assert_eq!(
            writes[..6],
            flow::five_tuple_writes(0, &FlowRule::udp_dst(5000).normalized(), 1),
            "the 5-tuple registers of filter 0, FTQF last"
        );
        assert_eq!(regs.reg(ftqf(0)) & FTQF_QUEUE_ENABLE, FTQF_QUEUE_ENABLE);
        // Then only RETA registers, and RSS leaves queue 1 alone.
        assert!(
            writes[6..]
                .iter()
                .all(|(o, _)| (RETA..RETA + 128).contains(o))
        );
        assert!(!writes[6..].is_empty());
        let reta = reta_of(&regs);
        assert!(reta.iter().all(|&q| q != 1), "{reta:?}");
        assert!([0, 2, 3].iter().all(|q| reta.contains(q)));

        // Refusals leave the device as it was.
        let n = regs.writes().len();
        assert_eq!(
            flows.add(&mac, &Igb, &FlowRule::udp_dst(5000), 2),
            Err(FlowError::Duplicate { id: FlowId(0) })
        );
        assert_eq!(
            flows.add(&mac, &Igb, &FlowRule::udp_dst(6000), 4),
            Err(FlowError::QueueOutOfRange {
                queue: 4,
                rx_queues: 4
            })
        );
        assert!(matches!(
            flows.add(
                &mac,
                &Igb,
                &FlowRule::ethertype(crate::flow::ETHERTYPE_IPV6),
                1
            ),
            Err(FlowError::Unsupported { .. })
        ));
        assert_eq!(regs.writes().len(), n, "nothing written for a refused rule");

        // Seven more 5-tuple rules fill the table; the ninth is refused.
        for p in 1..8 {
            flows
                .add(&mac, &Igb, &FlowRule::udp_dst(5000 + p), 1)
                .expect("room");
        }
        assert_eq!(
            flows.add(&mac, &Igb, &FlowRule::udp_dst(6000), 1),
            Err(FlowError::TableFull {
                kind: crate::flow::FilterKind::FiveTuple,
                slots: 8
            })
        );
        // An EtherType rule uses ETQF, which has its own eight.
        let et = flows
            .add(&mac, &Igb, &FlowRule::ethertype(0x88B5), 2)
            .expect("ETQF");
        assert_eq!(regs.reg(etqf(et.slot)), flow::etqf_value(0x88B5, 2));
        assert!(reta_of(&regs).iter().all(|&q| q == 0 || q == 3));

        // Removing every rule clears the filters and restores the table.
        for e in flows.entries().to_vec() {
            flows.remove(&mac, &Igb, e.id).expect("remove");
        }
        assert_eq!(regs.reg(ftqf(0)), FTQF_VF_BP | FTQF_MASK);
        assert_eq!(regs.reg(etqf(0)), 0);
        assert_eq!(reta_of(&regs), base.to_vec());
        assert_eq!(
            flows.remove(&mac, &Igb, FlowId(0)),
            Err(FlowError::NoSuchRule { id: FlowId(0) })
        );
    }

    fn fake() -> (std::sync::Arc<crate::mac::fake::FakeRegs>, Mac) {
        let regs = std::sync::Arc::new(crate::mac::fake::FakeRegs::new());
        let addr = hw::PciAddress::new(0, 0, 3, 0).expect("address");
        let mac = Mac::over(addr, regs.clone(), Some(Family::I82576));
        (regs, mac)
    }

    fn pos(w: &[(usize, u32)], reg: usize) -> usize {
        w.iter()
            .position(|(r, _)| *r == reg)
            .unwrap_or_else(|| panic!("{reg:#x} not written: {w:x?}"))
    }

    #[test]
    fn msix_routes_other_to_vector_0_and_rx_queues_after_it() {
        let (regs, mac) = fake();
        let plan = MsixPlan {
            lsc: true,
            rx_queues: 2,
            rx_interval_us: 125,
        };
        configure_msix(&mac, &plan);
        assert_eq!(
            regs.reg(GPIE),
            GPIE_MSIX_MODE | GPIE_PBA | GPIE_EIAME | GPIE_NSICR
        );
        assert_eq!(
            regs.reg(IVAR_MISC),
            0x80 << 8,
            "other causes: vector 0, valid"
        );
        assert_eq!(regs.reg(IVAR0), 0x81, "RX 0: vector 1");
        assert_eq!(regs.reg(IVAR0 + 4), 0x82, "RX 1: vector 2");
        assert_eq!(regs.reg(eitr(1)), (125 << 2) | EITR_CNT_IGNR);
        assert_eq!(regs.reg(eitr(2)), (125 << 2) | EITR_CNT_IGNR);
        assert_eq!((regs.reg(EIAC), regs.reg(EIAM)), (0b111, 0b111));
        assert_eq!(regs.reg(EIMC), 0b110, "RX vectors masked until armed");
        assert_eq!(regs.reg(EIMS), 0b001);
        assert_eq!(regs.reg(IMS), ICR_LSC);
        let w = regs.writes();
        assert!(pos(&w, GPIE) < pos(&w, IVAR_MISC) && pos(&w, GPIE) < pos(&w, IVAR0));
        // Queues 8..15 use the upper half of the same rows.
        assert_eq!(ivar_rx(9), (IVAR0 + 4, 16));
        assert_eq!(ivar_rx(7), (IVAR0 + 28, 0));
    }

    #[test]
    fn msix_without_link_events_leaves_lsc_masked() {
        let (regs, mac) = fake();
        configure_msix(
            &mac,
            &MsixPlan {
                lsc: false,
                rx_queues: 1,
                rx_interval_us: 0,
            },
        );
        let w = regs.writes();
        assert!(!w.iter().any(|&(r, _)| r == IMS || r == EIMS), "{w:x?}");
        assert_eq!((regs.reg(EIAC), regs.reg(EIMC)), (0b10, 0b10));
        assert_eq!(regs.reg(eitr(1)), EITR_CNT_IGNR, "0: no moderation");
    }

    #[test]
    fn arming_clears_the_pending_cause_before_unmasking() {
        let (regs, mac) = fake();
        Igb.set_rx_interrupt(&mac, 3, true);
        Igb.set_rx_interrupt(&mac, 3, false);
        Igb.rearm_link_interrupt(&mac);
        assert_eq!(
            regs.writes(),
            vec![(EICR, 1 << 4), (EIMS, 1 << 4), (EIMC, 1 << 4), (EIMS, 1)]
        );
    }
}
