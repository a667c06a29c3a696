//! The e1000e driver: Intel 82574L (datasheet names throughout).
//!
//! - [`regs`]: register offsets and bits.
//! - [`desc`]: extended and packet-split RX and context/data TX descriptor
//!   formats for the shared rings.
//! - this file: the device table, bring-up (reset, EEPROM MAC, link check),
//!   queue setup (extended descriptors, or packet-split ones for header
//!   split, RSS over two queues, checksum, VLAN strip) and the port-wide
//!   operations.
//!
//! What the 82574L does differently from the 82576, and how it is handled:
//! no per-queue enable bits (RXDCTL/TXDCTL have none), and the receiver
//! must not be disabled on live traffic (RCTL.EN off without a reset can
//! hang it; Linux's FLAG2_NO_DISABLE_RX): the port is stopped by a global
//! reset, which proves every queue off, and a queue dropped while the port
//! runs is left to that reset (its buffers wait in the DMA fence); the
//! buffer
//! size is RCTL.FLXBUF (KiB) and latches only when RCTL is written with EN
//! set, so RFCTL and the rings are programmed first; RSS has no UDP hash
//! types and its RETA selects the queue with bit 7 of each entry; VLAN
//! insertion (VLE) works only while CTRL.VME is on, which also strips
//! received tags, so without `vlan_strip` tags are inserted in software; the
//! statistics block is the 82576's (same offsets, clear on read).

pub mod desc;
pub mod regs;

use crate::error::Result;
use crate::flow::{FilterKind, FlowError, FlowRule};
use crate::intr::{self, MsixPlan};
use crate::mac::{Family, FcThresholds, FlowControl, Mac, RxMode};
use crate::mac_port::{self, Chip, RESET_TIMEOUT};
use crate::phy;
use crate::port::{DeviceId, Driver, OpenArgs, Opened, PortConfig, Queues, RxQueueConfig, Support};
use crate::queue::{self, Limits};
use crate::ring::QueueBar;
use crate::rss;
use crate::rx::RxBufLayout;
use crate::stats::HwCounter;
use desc::{CtxTx, ExtRx, PsRx};
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
    const RAR_ENTRIES: usize = RAR_ENTRIES;
    /// Linux's e1000e reads the checksum up to 3 times before it gives up.
    const NVM_CHECKSUM_ATTEMPTS: u32 = 3;
    /// Header split through packet-split descriptors ([`desc::PsRx`]).
    const NO_HEADER_SPLIT: Option<&'static str> = None;
    const COUNTERS: &'static [HwCounter] = COUNTERS;

    /// Link and VLAN, receive (datasheet 4.6.5), transmit (4.6.6) per
    /// `cfg`.
    fn start_queues(
        &self,
        mac: &Mac,
        cfg: &PortConfig,
        rxq: &[RxQueueConfig],
        doorbell: &QueueBar,
    ) -> Result<Queues> {
        start_queues(mac, cfg, rxq, doorbell)
    }

    /// ASPM L0s and L1 off (issue 10 item 4; Linux's e1000e does it for
    /// the 82574, FLAG2_DISABLE_ASPM_L0S/L1: the 82574 errata list TX hangs
    /// and corrupted completions with ASPM on; 82574 datasheet section 5,
    /// PCIe power management, and its specification update). See
    /// [`disable_aspm`].
    fn pci_setup(&self, device: &hw::vfio::Device, mac: &Mac) {
        disable_aspm(device, mac.addr());
    }

    /// Copper link as Intel's setup_copper_link_82571 and the M88/BM
    /// copper_link_setup do it for the 82574's PHY (82574 datasheet
    /// section 10, PHY registers; issue 10 item 1): the MAC follows the PHY
    /// (CTRL.SLU, no forced speed/duplex), PHY reset, automatic MDI/MDI-X,
    /// polarity correction on, downshift enabled (on the BM PHY revision 2
    /// first written off and committed, then on, with the revision-2
    /// register 29/30 setting; Linux does both), committed by a PHY
    /// software reset; smart power down off; then the advertisement and
    /// autonegotiation restart.
    fn setup_copper(&self, mac: &Mac, fc: FlowControl) -> Result<()> {
        mac.update(CTRL, |c| (c | CTRL_SLU) & !(CTRL_FRCSPD | CTRL_FRCDPLX));
        phy::hw_reset(mac)?;
        phy::power_up(mac)?;
        let id = (u32::from(phy::read(mac, phy::MII_PHYSID1)?) << 16)
            | u32::from(phy::read(mac, phy::MII_PHYSID2)?);
        let r2 = id == BME1000_E_PHY_ID_R2;
        let pscr = phy::read(mac, PHY_SPEC_CTRL)?;
        let pscr = (pscr & !(PHY_SPEC_CTRL_MDIX_MASK | PHY_SPEC_CTRL_POLARITY_REVERSAL_DIS))
            | PHY_SPEC_CTRL_AUTO_MDIX;
        if r2 {
            // Revision 2: downshift must go off and be committed before it
            // is turned on.
            phy::write(mac, PHY_SPEC_CTRL, pscr & !PHY_SPEC_CTRL_DOWNSHIFT_EN)?;
            phy::sw_reset(mac)?;
        }
        phy::write(mac, PHY_SPEC_CTRL, pscr | PHY_SPEC_CTRL_DOWNSHIFT_EN)?;
        if r2 {
            // The BM PHY revision 2 setting Intel's code writes (page 0
            // register 29 = 3, then register 30 = 0); undocumented in the
            // 82574 datasheet, applied as Linux's e1000e applies it.
            phy::write(mac, BM_R2_REG_29, 0x0003)?;
            phy::write(mac, BM_R2_REG_30, 0x0000)?;
        }
        phy::sw_reset(mac)?;
        phy::power_up(mac)?;
        // Smart power down off for a faster link, as Linux's e1000e_reset
        // does for chips with FLAG_HAS_SMART_POWER_DOWN (the 82574): bit 0
        // of page 0 register 25 (Linux's IGP02E1000_PHY_POWER_MGMT.SPD;
        // QEMU's e1000e models the register as PHY_OEM_BITS).
        phy::update(mac, PHY_POWER_MGMT, |v| v & !PHY_POWER_MGMT_SPD)?;
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
    /// it); adaptive IFS throttling off (AIT 0, as Linux's reset_adaptive
    /// leaves it). QEMU ignores all of these except TXDCTL and TARC.ENABLE
    /// (bit 10, preserved here). Issue 10 item 4; 82574 datasheet section
    /// 10 (CTRL, CTRL_EXT, TARC, TXDCTL, GCR, GCR2, PBA, AIT).
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
        mac.w(AIT, 0);
    }

    /// 82574: the receive packet buffer [`init_hw_bits`](Chip::init_hw_bits)
    /// sets (PBA), FCRTH/FCRTL in 8-byte units, pause time 0x680 as
    /// Linux's e1000e.
    fn fc_thresholds(&self, mtu: u16) -> FcThresholds {
        FcThresholds::for_buffer(PBA_RX_KB, u32::from(mtu) + 14 + 4 + 4, 8, 0x0680)
    }

    fn set_mtu(&self, mac: &Mac, mtu: u16) -> Result<()> {
        // With packet split every frame must fit one payload buffer (see
        // psrctl_value): an MTU whose frames do not is refused, read back
        // from the PSRCTL the running port was given.
        if mac.r(RCTL) & RCTL_DTYP_MASK == RCTL_DTYP_PS {
            let payload = ((mac.r(PSRCTL) >> PSRCTL_BSIZE1_SHIFT) & PSRCTL_BSIZEN_MASK) as usize
                * PSRCTL_BSIZEN_UNIT;
            let frame = max_stored_frame(mtu);
            if frame > payload {
                return Err(PacketSplitError::FrameTooLong { frame, payload }.into());
            }
        }
        // Frames longer than one buffer span several descriptors, so only
        // RCTL.LPE changes (see STANDARD_MTU).
        mac.set_rctl_bits(RCTL_LPE, lpe_for(mtu) != 0);
        Ok(())
    }

    /// Nothing here: the 82574 receiver is stopped by the reset in
    /// [`Chip::stop_queues`], never by RCTL.EN off on live traffic (issue 10
    /// item 9; Linux's e1000e leaves RCTL.EN alone on the 82574,
    /// FLAG2_NO_DISABLE_RX, because the 82574 can hang when its receiver
    /// is disabled while frames arrive; 82574 specification update).
    fn stop_rx(&self, _mac: &Mac) {}

    fn disable_rx_queue(&self, _mac: &Mac, _queue: u16) -> bool {
        // The 82574L has no per-queue receive enable, and RCTL.EN must not
        // be cleared on live traffic (stop_rx): the queue keeps its
        // descriptors until the port's reset. It is never confirmed off
        // here, so its buffers wait in the DMA fence for that reset
        // (crate::fence).
        false
    }

    fn disable_tx_queue(&self, mac: &Mac, queue: u16) -> bool {
        // The device fetches what was queued; the ring posts nothing more
        // (its tail is never written again). TARC.ENABLE (bit 10) is left
        // alone: Intel's code defines it ("enable Tx queue") but never
        // clears it, and only QEMU is known to honour it as a queue stop.
        // No per-queue DMA-stopped status either: the buffers wait for the
        // port's reset.
        mac.drain_tx(tdbal(usize::from(queue)), queue);
        false
    }

    /// Drains every TX queue, then stops the port by a global reset (the
    /// 82574's way to stop receive, see [`Chip::stop_rx`]; it stops
    /// transmit too). A completed reset proves every queue off.
    fn stop_queues(&self, mac: &Mac, _rx_queues: u16, tx_queues: u16) -> bool {
        for q in 0..tx_queues {
            mac.drain_tx(tdbal(usize::from(q)), q);
        }
        match mac.global_reset(RESET_TIMEOUT) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("{e}; the 82574's queues are not proven stopped");
                false
            }
        }
    }

    /// The 82574L has no receive queue filters: no EtherType queue filters
    /// (ETQF), no 5-tuple/2-tuple filters (FTQF/TTQF, IMIR), no SYN or
    /// flexible queue filters (its flexible filters, FFLT/FFMT/FFVT, only
    /// wake the host, 82574L datasheet 5.6). Its only queue selection is
    /// RSS over two queues (MRQC/RETA), a hash that cannot pick one flow,
    /// so every rule is refused; RSS stays as configured and an
    /// application that needs a queue of its own flow uses the 82576.
    fn configure_msix(&self, mac: &Mac, plan: &MsixPlan) {
        configure_msix(mac, plan)
    }

    /// Arm: the queue's ICR bit cleared (write 1), then its IMS bit set;
    /// disarm: its IMC bit.
    fn set_rx_interrupt(&self, mac: &Mac, queue: u16, on: bool) {
        let bit = IMS_RXQ0 << queue.min(1);
        if on {
            mac.w(ICR, bit);
            mac.w(IMS, bit);
        } else {
            mac.w(IMC, bit);
        }
    }

    /// IMS.OTHER and IMS.LSC again, as Linux's e1000_msix_other does after
    /// its ICR read. (QEMU's e1000e clears ICR on that read whenever
    /// ICR.INT_ASSERTED is set, which it sets with any cause, as its
    /// source says real 82574s do with auto-mask off; with ICR.OTHER left
    /// set it would not signal the vector for the next link change.)
    fn rearm_link_interrupt(&self, mac: &Mac) {
        mac.w(IMS, IMS_OTHER | ICR_LSC);
    }

    fn flow_filter(&self, rule: &FlowRule) -> std::result::Result<FilterKind, FlowError> {
        Err(FlowError::Unsupported {
            driver: "e1000e",
            rule: rule.to_string(),
            why: "the 82574L has no receive queue filters (no ETQF, FTQF or 2-tuple filters); \
                  its queues are chosen by the RSS hash only"
                .into(),
        })
    }
}

/// The config-space access [`disable_aspm`] needs: the VFIO device, or a
/// fake in host tests.
pub trait PcieLink {
    /// Read-modify-write of PCIe Link Control clearing `clear`: the value
    /// before and read back after, `None` without a PCIe capability
    /// ([`hw::vfio::Device::pcie_update16`]).
    fn update_link_control(&self, clear: u16) -> std::result::Result<Option<(u16, u16)>, String>;
    /// Asks the host kernel to turn off ASPM state `state` (`l0s_aspm`,
    /// `l1_aspm`) on this device's link, on both of its ends (sysfs
    /// `link/<state>`, written "0").
    fn host_disable(&self, state: &str) -> std::io::Result<()>;
}

impl PcieLink for hw::vfio::Device {
    fn update_link_control(&self, clear: u16) -> std::result::Result<Option<(u16, u16)>, String> {
        self.pcie_update16(hw::pci::config::EXP_LNKCTL, clear, 0)
            .map_err(|e| e.to_string())
    }
    fn host_disable(&self, state: &str) -> std::io::Result<()> {
        std::fs::write(
            format!("/sys/bus/pci/devices/{}/link/{state}", self.addr()),
            "0",
        )
    }
}

/// What [`disable_aspm`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aspm {
    /// No PCIe capability (or config space unreadable): nothing to do.
    NoCapability,
    /// L0s and L1 were already off (Link Control as read).
    WasOff(u16),
    /// Turned off (Link Control read back after).
    TurnedOff(u16),
    /// Still on after every way was tried (Link Control as read back).
    StillOn(u16),
}

const ASPM_BITS: u16 = hw::pci::config::EXP_LNKCTL_ASPM_L0S | hw::pci::config::EXP_LNKCTL_ASPM_L1;

/// ASPM L0s and L1 off on the 82574's link (PCIe Link Control, PCIe base
/// specification 7.5.3.7; Linux's e1000e for the 82574). First the
/// device's Link Control through VFIO; vfio-pci does not pass Link Control
/// writes to the device (it lets through only Device Control and Device
/// Control 2), so when the read-back still shows ASPM on, the host
/// kernel's per-link ASPM control is asked (sysfs `link/l0s_aspm`,
/// `link/l1_aspm`, which clears both ends of the link as Linux's own
/// pci_disable_link_state does). If both fail, the open goes on with a
/// warning naming what to do (ASPM is a power setting; the 82574's errata
/// are rare TX hangs, not a reason to refuse the port). QEMU's e1000e,
/// attached as a root-complex integrated endpoint, reads ASPM off.
pub fn disable_aspm(link: &impl PcieLink, addr: hw::PciAddress) -> Aspm {
    let (before, after) = match link.update_link_control(ASPM_BITS) {
        Ok(Some(v)) => v,
        Ok(None) => {
            log::info!("{addr}: no PCIe capability; no ASPM to turn off");
            return Aspm::NoCapability;
        }
        Err(e) => {
            log::warn!("{e}; ASPM L0s/L1 left as the host set them");
            return Aspm::NoCapability;
        }
    };
    if before & ASPM_BITS == 0 {
        log::info!("{addr}: ASPM L0s/L1 off (PCIe Link Control {before:#06x})");
        return Aspm::WasOff(before);
    }
    let mut now = after;
    if now & ASPM_BITS != 0 {
        for (bit, state) in [
            (hw::pci::config::EXP_LNKCTL_ASPM_L0S, "l0s_aspm"),
            (hw::pci::config::EXP_LNKCTL_ASPM_L1, "l1_aspm"),
        ] {
            if now & bit != 0
                && let Err(e) = link.host_disable(state)
            {
                log::debug!("{addr}: host ASPM control {state}: {e}");
            }
        }
        now = match link.update_link_control(0) {
            Ok(Some((v, _))) => v,
            _ => now,
        };
    }
    if now & ASPM_BITS == 0 {
        log::info!(
            "{addr}: ASPM L0s/L1 turned off (PCIe Link Control {before:#06x} -> {now:#06x})"
        );
        Aspm::TurnedOff(now)
    } else {
        log::warn!(
            "{addr}: ASPM still on (PCIe Link Control {now:#06x}): the 82574 needs L0s and L1 off \
             (Intel errata); vfio-pci does not pass Link Control writes and the host's ASPM control \
             refused: boot the host with pcie_aspm=off, or write 0 to \
             /sys/bus/pci/devices/{addr}/link/l0s_aspm and l1_aspm"
        );
        Aspm::StillOn(now)
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
    rctl_common(mode, mtu) | ((kb << RCTL_FLXBUF_SHIFT) & RCTL_FLXBUF_MASK)
}

/// RCTL for packet-split receive: DTYP 01b, the buffer sizes in PSRCTL
/// (FLXBUF 0 and BSIZE/BSEX left 0: they size one-buffer descriptors only;
/// QEMU ignores them with DTYP set too).
pub fn rctl_packet_split(mode: RxMode, mtu: u16) -> u32 {
    rctl_common(mode, mtu) | RCTL_DTYP_PS
}

fn rctl_common(mode: RxMode, mtu: u16) -> u32 {
    RCTL_EN | RCTL_BAM | RCTL_SECRC | lpe_for(mtu) | RCTL_RDMTS_HALF | mode.rctl_bits()
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

/// Why a packet-split (header split) configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketSplitError {
    #[error(
        "PSRCTL.BSIZE0 takes header buffers of 128..=16256 bytes in 128-byte units, got {bytes}"
    )]
    HeaderBuffer { bytes: usize },
    #[error(
        "PSRCTL.BSIZE1 takes payload buffers of 1024..=64512 bytes in 1 KiB units, got {bytes}"
    )]
    PayloadBuffer { bytes: usize },
    #[error(
        "frames of up to {frame} bytes (the MTU) do not fit one {payload}-byte payload buffer; \
         give the payload pool buffers of at least {frame} bytes or lower the MTU"
    )]
    FrameTooLong { frame: usize, payload: usize },
    #[error(
        "the 82574L's descriptor type (RCTL.DTYP) and buffer sizes (PSRCTL) are port-wide: \
         either every RX queue has header split or none has"
    )]
    NotEveryQueue,
}

/// The longest frame the port stores for `mtu` (CRC stripped): 1518 bytes
/// with RCTL.LPE off (the 82574L then takes frames up to 1522 bytes with
/// FCS, one VLAN tag), else the MTU plus the Ethernet header and a tag.
pub fn max_stored_frame(mtu: u16) -> usize {
    usize::from(mtu.max(STANDARD_MTU)) + 14 + 4
}

/// PSRCTL for packet split with header buffers of `header` and payload
/// buffers of `payload` (the ring's device buffer sizes) and frames of up to
/// `frame` bytes: BSIZE0 the header buffer, BSIZE1 the payload buffer,
/// BSIZE2/3 0 (unused, see [`desc::PsRx`]). Sizes the chip refuses are
/// typed errors. A frame must fit one payload buffer: the datasheet lets a
/// packet-split frame span descriptors (the ring handles that), but QEMU's
/// e1000e stops on an assertion when a split frame's payload passes buffer
/// 1 (see [`desc::PsRx`]), and Linux's e1000e sizes its buffers so none
/// does.
pub fn psrctl_value(
    header: RxBufLayout,
    payload: RxBufLayout,
    frame: usize,
) -> std::result::Result<u32, PacketSplitError> {
    let h = usize::from(header.buf_len);
    let p = usize::from(payload.buf_len);
    if !(PSRCTL_BSIZE0_UNIT..=PSRCTL_BSIZE0_MAX).contains(&h)
        || !h.is_multiple_of(PSRCTL_BSIZE0_UNIT)
    {
        return Err(PacketSplitError::HeaderBuffer { bytes: h });
    }
    if !(PSRCTL_BSIZEN_UNIT..=PSRCTL_BSIZEN_MAX).contains(&p)
        || !p.is_multiple_of(PSRCTL_BSIZEN_UNIT)
    {
        return Err(PacketSplitError::PayloadBuffer { bytes: p });
    }
    if frame > p {
        return Err(PacketSplitError::FrameTooLong { frame, payload: p });
    }
    Ok(((h / PSRCTL_BSIZE0_UNIT) as u32 & PSRCTL_BSIZE0_MASK)
        | (((p / PSRCTL_BSIZEN_UNIT) as u32 & PSRCTL_BSIZEN_MASK) << PSRCTL_BSIZE1_SHIFT))
}

/// RFCTL: extended status (EXTEN; QEMU packet-splits only with it, and
/// the extended write-back is what the rings read), no iSCSI/NFS header
/// parsing; with packet split also no IPv6 extension header parsing
/// (IPV6_EX_DIS, NEW_IPV6_EXT_DIS): Linux's e1000e sets both for packet
/// split "because some malformed IPv6 headers can hang the Rx".
/// IPFRSP_DIS (bit 14) stays clear: IP fragments are split after their IP
/// header, so their payload too stays out of the CPU-readable header page
/// (QEMU's e1000e honours the bit the same way).
pub fn rfctl_value(packet_split: bool) -> u32 {
    let base = RFCTL_EXTEN | RFCTL_ISCSI_DIS | RFCTL_NFSW_DIS | RFCTL_NFSR_DIS;
    if packet_split {
        base | RFCTL_IPV6_EX_DIS | RFCTL_NEW_IPV6_EXT_DIS
    } else {
        base
    }
}

/// Base and length of RX queue `n`'s ring, and its RXDCTL (82574
/// datasheet section 10, RXDCTL): thresholds in descriptors, prefetch as
/// Linux's e1000e sets it for the 82574 (FLAG2_DMA_BURST: PTHRESH 32,
/// HTHRESH 4). Linux's WTHRESH 4 relies on its RDTR/RADV timers to flush
/// held write-backs; this driver programs no timers, so WTHRESH 1: each
/// descriptor written back at once.
fn program_rx_queue(mac: &Mac, n: usize, base: u64, len: u32) {
    mac.program_ring(rdbal(n), base, len);
    mac.w(rxdctl(n), RXDCTL_VALUE);
}

/// EITR for an interval of `us` microseconds (256 ns units).
pub fn eitr_value(us: u16) -> u32 {
    (u32::from(us) * 1000 / 256).min(0xFFFF)
}

/// MSI-X routing on the 82574 (the datasheet's MSI-X section and IVAR,
/// EIAC, IAM, CTRL_EXT, EITR registers; the registers
/// Linux's e1000_configure_msix writes): RFCTL.ACK_DIS (Linux's workaround
/// of spurious interrupts in MSI-X mode), one IVAR write routing the other
/// causes to vector 0 and RX queue q to vector 1 + q, each RX vector's
/// EITR, CTRL_EXT with PBA_CLR and EIAME and without IAME (ICR is read only
/// by the other-causes handler), IAM and EIAC with the RX causes (each RX
/// vector masks itself in IMS and clears its ICR bit as it fires), the RX
/// causes masked until armed, and IMS.OTHER with IMS.LSC when link events
/// are asked for.
///
/// QEMU's e1000e differs from the datasheet here: with CTRL_EXT.EIAME it
/// clears the cause's IAM bit instead of its IMS bit, and it masks IMS by
/// EIAC instead while CTRL_EXT.IAME is clear; with this programming both
/// mask a fired RX vector, so the driver sees the same.
pub fn configure_msix(mac: &Mac, plan: &MsixPlan) {
    mac.update(RFCTL, |v| v | RFCTL_ACK_DIS);
    let mut ivar = (IVAR_INT_ALLOC_VALID | intr::OTHER_VECTOR) << IVAR_OTHER_SHIFT;
    let mut rx_bits = 0;
    for q in 0..plan.rx_queues.min(2) {
        let v = intr::rx_vector(q);
        ivar |= (IVAR_INT_ALLOC_VALID | v) << IVAR_RX_SHIFT[usize::from(q)];
        rx_bits |= IMS_RXQ0 << q;
        mac.w(eitr(v as usize), eitr_value(plan.rx_interval_us));
    }
    mac.w(IVAR, ivar);
    mac.update(CTRL_EXT, |v| {
        (v & !CTRL_EXT_IAME) | CTRL_EXT_PBA_CLR | CTRL_EXT_EIAME
    });
    mac.w(IAM, rx_bits);
    mac.w(EIAC, rx_bits);
    mac.w(IMC, rx_bits);
    if plan.lsc {
        mac.w(IMS, IMS_OTHER | ICR_LSC);
    }
    mac.flush();
}

fn open(args: OpenArgs<'_>) -> Result<Opened> {
    mac_port::open(args, E1000e)
}

/// Every queue of a port just initialised (at open and at each restart).
fn start_queues(
    mac: &Mac,
    cfg: &PortConfig,
    rxq: &[RxQueueConfig],
    doorbell: &QueueBar,
) -> Result<Queues> {
    let pools: Vec<_> = rxq.iter().map(|c| c.pool().clone()).collect();

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
    // the buffer sizes and descriptor type.
    mac.w(RCTL, 0);
    let rxq = &rxq[..usize::from(cfg.rx_queues).min(rxq.len())];
    let split = rxq.iter().filter(|c| c.header_pool().is_some()).count();
    if split != 0 && split != rxq.len() {
        return Err(PacketSplitError::NotEveryQueue.into());
    }
    let split = split != 0;
    mac.w(RFCTL, rfctl_value(split));
    // One buffer size for both queues (RCTL.FLXBUF, or PSRCTL.BSIZE1 with
    // packet split): the smallest pool decides; with packet split the
    // smallest header pool decides PSRCTL.BSIZE0.
    let smallest = (0..cfg.rx_queues)
        .min_by_key(|&q| pools[usize::from(q)].buf_size())
        .unwrap_or(0);
    let max = if split { PSRCTL_BSIZEN_MAX } else { RX_BUF_MAX };
    let layout = queue::rx_layout(smallest, &pools[usize::from(smallest)], RX_BUF_UNIT, max)?;
    let header = match rxq
        .iter()
        .enumerate()
        .filter_map(|(q, c)| Some((q as u16, c.header_pool()?)))
        .min_by_key(|(_, h)| h.buf_size())
    {
        Some((q, h)) => {
            let hl = queue::rx_header_layout(q, h, PSRCTL_BSIZE0_UNIT, PSRCTL_BSIZE0_MAX)?;
            mac.w(PSRCTL, psrctl_value(hl, layout, max_stored_frame(cfg.mtu))?);
            Some(hl)
        }
        None => None,
    };
    // Each ring started (its tail written) once RCTL.EN is on, as before.
    type Start = Box<dyn FnOnce(&mut Queues)>;
    let mut rx_rings: Vec<Start> = Vec::new();
    for q in 0..cfg.rx_queues {
        let n = usize::from(q);
        let start: Start = match (header, rxq[n].header_pool()) {
            (Some(hl), Some(h)) => {
                let mut b = queue::rx_ring::<PsRx>(
                    q,
                    cfg,
                    &pools[n],
                    layout,
                    Some((h, hl)),
                    doorbell,
                    rdt(n),
                )?;
                program_rx_queue(mac, n, b.base, b.len);
                Box::new(move |qs: &mut Queues| {
                    b.ring.start();
                    qs.push_rx(b.ring, b.counters);
                })
            }
            _ => {
                let mut b =
                    queue::rx_ring::<ExtRx>(q, cfg, &pools[n], layout, None, doorbell, rdt(n))?;
                program_rx_queue(mac, n, b.base, b.len);
                Box::new(move |qs: &mut Queues| {
                    b.ring.start();
                    qs.push_rx(b.ring, b.counters);
                })
            }
        };
        rx_rings.push(start);
    }
    // Only the offloads asked for (issue 12 item 3): checksum reporting,
    // and RSS with two RX queues or the hash asked for (PCSD puts the hash
    // in the descriptor and is what enables RSS); otherwise MRQC 0.
    mac.w(RXCSUM, Mac::rxcsum_for(cfg));
    if cfg.rss_enabled() {
        program_rss(mac, &cfg.rss, cfg.rx_queues);
    } else {
        mac.w(MRQC, 0);
    }
    mac.w(
        RCTL,
        if split {
            rctl_packet_split(mac.rx_mode(), cfg.mtu)
        } else {
            rctl_value(layout.buf_len, mac.rx_mode(), cfg.mtu)
        },
    );
    let mut queues = Queues::default();
    for start in rx_rings {
        start(&mut queues);
    }

    // Transmit (datasheet 4.6.6).
    for q in 0..cfg.tx_queues {
        let n = usize::from(q);
        let mut b = queue::tx_ring::<CtxTx>(q, cfg, doorbell, tdt(n))?;
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
        // TARC.ENABLE (bit 10): QEMU's e1000e transmits from a queue only
        // with it set; Intel's shared code names the bit "enable Tx queue"
        // and the 82574 resets with it set, so this is a no-op on silicon.
        mac.update(tarc(n), |t| t | TARC_ENABLE);
        queues.push_tx(b.ring, b.counters);
    }
    mac.w(TIPG, TIPG_COPPER);
    mac.enable_transmit();
    Ok(queues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::fake::FakeRegs;
    use std::cell::RefCell;
    use std::sync::Arc;

    fn fake_mac() -> (Arc<FakeRegs>, Mac) {
        let regs = Arc::new(FakeRegs::new());
        let addr = hw::PciAddress::new(0, 0, 4, 0).expect("address");
        (regs.clone(), Mac::over(addr, regs, Some(Family::I82574)))
    }

    /// Every RCTL write that clears EN must be followed, before any other
    /// RCTL write, by CTRL.RST: the 82574's receiver is never disabled
    /// without the reset.
    fn assert_rx_never_disabled_without_reset(writes: &[(usize, u32)]) {
        for (i, (off, v)) in writes.iter().enumerate() {
            if *off == RCTL && v & RCTL_EN == 0 {
                let reset = writes[i + 1..]
                    .iter()
                    .take_while(|(o, _)| *o != RCTL)
                    .any(|(o, v)| *o == CTRL && v & CTRL_RST != 0);
                assert!(
                    reset,
                    "RCTL {v:#x} written at {i} without a reset following"
                );
            }
        }
    }

    #[test]
    fn the_82574_stops_receive_by_reset_and_never_by_rctl_en_alone() {
        let (regs, mac) = fake_mac();
        mac.w(RCTL, RCTL_EN | RCTL_BAM);
        assert!(!E1000e.disable_rx_queue(&mac, 1), "no per-queue proof");
        E1000e.stop_rx(&mac);
        assert!(
            regs.writes().iter().all(|(o, _)| *o != CTRL),
            "dropping a queue or stop_rx resets nothing by itself"
        );
        assert_ne!(regs.reg(RCTL) & RCTL_EN, 0, "RCTL.EN left on live traffic");
        assert!(
            E1000e.stop_queues(&mac, 2, 2),
            "a completed reset proves the queues off"
        );
        let w = regs.writes();
        assert!(w.iter().any(|(o, v)| *o == CTRL && v & CTRL_RST != 0));
        assert_rx_never_disabled_without_reset(&w);
    }

    fn layout(buf_len: u16) -> RxBufLayout {
        RxBufLayout {
            headroom: 0,
            buf_len,
        }
    }

    #[test]
    fn psrctl_has_the_header_and_payload_sizes_and_refuses_what_the_chip_cannot_take() {
        let frame = max_stored_frame(1500);
        assert_eq!(frame, 1518);
        let v = psrctl_value(layout(256), layout(4096), frame).expect("valid");
        assert_eq!(v & PSRCTL_BSIZE0_MASK, 2, "BSIZE0 in 128-byte units");
        assert_eq!((v >> PSRCTL_BSIZE1_SHIFT) & 0x3F, 4, "BSIZE1 in KiB");
        assert_eq!(v >> PSRCTL_BSIZE2_SHIFT, 0, "BSIZE2 and BSIZE3 unused");
        assert_eq!(
            psrctl_value(layout(16256), layout(64512), 9018),
            Ok(0x7F | (63 << 8))
        );
        for h in [0, 64, 200, 16384] {
            assert_eq!(
                psrctl_value(layout(h), layout(4096), frame),
                Err(PacketSplitError::HeaderBuffer { bytes: h.into() })
            );
        }
        for p in [0, 512, 1500, 65535] {
            assert_eq!(
                psrctl_value(layout(256), layout(p), frame),
                Err(PacketSplitError::PayloadBuffer { bytes: p.into() })
            );
        }
        // Jumbo frames do not fit a 4 KiB payload buffer.
        assert_eq!(
            psrctl_value(layout(256), layout(4096), max_stored_frame(9000)),
            Err(PacketSplitError::FrameTooLong {
                frame: 9018,
                payload: 4096
            })
        );
        let e = crate::Error::from(PacketSplitError::NotEveryQueue);
        assert!(e.to_string().contains("RCTL.DTYP"), "{e}");
    }

    #[test]
    fn with_packet_split_an_mtu_whose_frames_overrun_the_payload_buffer_is_refused() {
        let (regs, mac) = fake_mac();
        mac.w(RCTL, rctl_packet_split(RxMode::default(), 1500));
        mac.w(
            PSRCTL,
            psrctl_value(layout(256), layout(4096), 1518).expect("valid"),
        );
        assert!(matches!(
            E1000e.set_mtu(&mac, 9000),
            Err(crate::Error::PacketSplit(PacketSplitError::FrameTooLong {
                frame: 9018,
                payload: 4096
            }))
        ));
        assert_eq!(regs.reg(RCTL) & RCTL_LPE, 0, "nothing changed");
        E1000e.set_mtu(&mac, 4000).expect("4018-byte frames fit");
        assert_ne!(regs.reg(RCTL) & RCTL_LPE, 0);
        // Without packet split any MTU in range goes.
        mac.w(RCTL, rctl_value(2048, RxMode::default(), 1500));
        E1000e
            .set_mtu(&mac, 9000)
            .expect("one-buffer descriptors chain");
    }

    #[test]
    fn packet_split_sets_dtyp_and_the_ipv6_extension_bits() {
        let mode = RxMode::default();
        let ps = rctl_packet_split(mode, 1500);
        assert_eq!(ps & RCTL_DTYP_MASK, RCTL_DTYP_PS);
        assert_eq!(ps & RCTL_FLXBUF_MASK, 0, "sizes come from PSRCTL");
        assert_ne!(ps & RCTL_EN, 0);
        assert_eq!(rctl_value(2048, mode, 1500) & RCTL_DTYP_MASK, 0);
        assert_eq!(
            rctl_value(2048, mode, 1500) & !RCTL_FLXBUF_MASK,
            ps & !RCTL_DTYP_MASK,
            "otherwise the same receive control"
        );
        let split = rfctl_value(true);
        assert_eq!(
            split & (RFCTL_EXTEN | RFCTL_IPV6_EX_DIS | RFCTL_NEW_IPV6_EXT_DIS),
            RFCTL_EXTEN | RFCTL_IPV6_EX_DIS | RFCTL_NEW_IPV6_EXT_DIS
        );
        assert_eq!(
            rfctl_value(false) & (RFCTL_IPV6_EX_DIS | RFCTL_NEW_IPV6_EXT_DIS),
            0
        );
        assert_eq!(
            split & !rfctl_value(false),
            RFCTL_IPV6_EX_DIS | RFCTL_NEW_IPV6_EXT_DIS
        );
    }

    #[test]
    fn a_tx_queue_stop_leaves_tarc_enable_alone() {
        let (regs, mac) = fake_mac();
        mac.w(tarc(1), TARC_ENABLE | 3);
        assert!(!E1000e.disable_tx_queue(&mac, 1));
        assert_eq!(regs.reg(tarc(1)), TARC_ENABLE | 3);
    }

    #[test]
    fn bm_phy_revision_2_gets_the_downshift_sequence_and_spd_off() {
        let (regs, mac) = fake_mac();
        regs.phy
            .lock()
            .unwrap()
            .insert(PHY_POWER_MGMT, PHY_POWER_MGMT_SPD | 0x80);
        E1000e
            .setup_copper(&mac, FlowControl::Full)
            .expect("copper setup");
        let phy_writes: Vec<(u32, u16)> = regs
            .writes()
            .iter()
            .filter(|(o, v)| *o == MDIC && v & MDIC_OP_WRITE != 0)
            .map(|(_, v)| ((v >> MDIC_REGADD_SHIFT) & 0x1F, (v & MDIC_DATA_MASK) as u16))
            .collect();
        let pscr: Vec<u16> = phy_writes
            .iter()
            .filter(|(r, _)| *r == PHY_SPEC_CTRL)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(pscr.len(), 2, "{phy_writes:?}");
        assert_eq!(pscr[0] & PHY_SPEC_CTRL_DOWNSHIFT_EN, 0, "first off");
        assert_ne!(pscr[1] & PHY_SPEC_CTRL_DOWNSHIFT_EN, 0, "then on");
        assert!(phy_writes.contains(&(BM_R2_REG_29, 3)) && phy_writes.contains(&(BM_R2_REG_30, 0)));
        assert_eq!(
            regs.phy.lock().unwrap()[&PHY_POWER_MGMT],
            0x80,
            "SPD cleared, rest kept"
        );
        // Another PHY revision: no register 29/30 writes.
        let (regs, mac) = fake_mac();
        regs.phy.lock().unwrap().insert(3, 0x0cb0);
        E1000e
            .setup_copper(&mac, FlowControl::Full)
            .expect("copper setup");
        assert!(!regs.writes().iter().any(|(o, v)| *o == MDIC
            && v & MDIC_OP_WRITE != 0
            && (v >> MDIC_REGADD_SHIFT) & 0x1F == BM_R2_REG_29));
    }

    /// A config space whose Link Control behaves like the one vfio-pci
    /// shows (`passes_writes` false: writes dropped) or a plain one, and a
    /// host ASPM control that works or not.
    struct FakeLink {
        lnkctl: RefCell<u16>,
        passes_writes: bool,
        host_works: bool,
        host_calls: RefCell<Vec<String>>,
    }

    impl PcieLink for FakeLink {
        fn update_link_control(
            &self,
            clear: u16,
        ) -> std::result::Result<Option<(u16, u16)>, String> {
            let before = *self.lnkctl.borrow();
            if self.passes_writes {
                *self.lnkctl.borrow_mut() = before & !clear;
            }
            Ok(Some((before, *self.lnkctl.borrow())))
        }
        fn host_disable(&self, state: &str) -> std::io::Result<()> {
            self.host_calls.borrow_mut().push(state.to_string());
            if !self.host_works {
                return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
            }
            let bit = if state == "l0s_aspm" { 1 } else { 2 };
            *self.lnkctl.borrow_mut() &= !bit;
            Ok(())
        }
    }

    #[test]
    fn aspm_goes_off_through_config_space_or_the_host_and_says_so_when_it_cannot() {
        let addr = hw::PciAddress::new(0, 0, 4, 0).expect("address");
        let link = |lnkctl, passes_writes, host_works| FakeLink {
            lnkctl: RefCell::new(lnkctl),
            passes_writes,
            host_works,
            host_calls: RefCell::new(Vec::new()),
        };
        let l = link(0x0040, false, false);
        assert_eq!(disable_aspm(&l, addr), Aspm::WasOff(0x0040));
        assert!(l.host_calls.borrow().is_empty());
        let l = link(0x0043, true, false);
        assert_eq!(disable_aspm(&l, addr), Aspm::TurnedOff(0x0040));
        assert!(l.host_calls.borrow().is_empty(), "config space sufficed");
        // vfio-pci drops the write: the host's ASPM control is asked.
        let l = link(0x0043, false, true);
        assert_eq!(disable_aspm(&l, addr), Aspm::TurnedOff(0x0040));
        assert_eq!(*l.host_calls.borrow(), ["l0s_aspm", "l1_aspm"]);
        let l = link(0x0042, false, false);
        assert_eq!(disable_aspm(&l, addr), Aspm::StillOn(0x0042));
        assert_eq!(*l.host_calls.borrow(), ["l1_aspm"]);
    }

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

    #[test]
    fn the_82574l_refuses_every_flow_rule_and_writes_nothing() {
        use crate::flow::{FlowError, FlowRule};
        use crate::mac_port::Flows;
        use crate::port::PortConfig;
        let (regs, mac) = fake_mac();
        let cfg = PortConfig {
            rx_queues: 2,
            ..PortConfig::default()
        };
        let mut flows = Flows::new(&cfg);
        for rule in [FlowRule::udp_dst(5000), FlowRule::ethertype(0x88B5)] {
            match flows.add(&mac, &E1000e, &rule, 1) {
                Err(FlowError::Unsupported { driver, why, .. }) => {
                    assert_eq!(driver, "e1000e");
                    assert!(why.contains("no receive queue filters"), "{why}");
                }
                other => panic!("{rule}: {other:?}"),
            }
        }
        assert!(regs.writes().is_empty());
        assert!(flows.entries().is_empty());
    }

    #[test]
    fn msix_ivar_auto_mask_and_link_causes() {
        let (regs, mac) = fake_mac();
        configure_msix(
            &mac,
            &MsixPlan {
                lsc: true,
                rx_queues: 2,
                rx_interval_us: 125,
            },
        );
        // Other: vector 0 valid (19:16); RX0 vector 1 (3:0), RX1 vector 2
        // (7:4); no TX entry.
        assert_eq!(regs.reg(IVAR), (0x8 << 16) | 0x9 | (0xA << 4));
        let ext = regs.reg(CTRL_EXT);
        assert_eq!(
            ext & (CTRL_EXT_PBA_CLR | CTRL_EXT_EIAME),
            CTRL_EXT_PBA_CLR | CTRL_EXT_EIAME
        );
        assert_eq!(ext & CTRL_EXT_IAME, 0);
        assert_eq!(regs.reg(IAM), IMS_RXQ0 | IMS_RXQ1);
        assert_eq!(regs.reg(EIAC), IMS_RXQ0 | IMS_RXQ1);
        assert_eq!(regs.reg(IMC), IMS_RXQ0 | IMS_RXQ1);
        assert_eq!(regs.reg(IMS), IMS_OTHER | ICR_LSC);
        assert_eq!((regs.reg(eitr(1)), regs.reg(eitr(2))), (488, 488));
        assert_ne!(regs.reg(RFCTL) & RFCTL_ACK_DIS, 0);
    }

    #[test]
    fn rx_interrupt_arm_and_disarm_touch_only_the_queue_bit() {
        let (regs, mac) = fake_mac();
        E1000e.set_rx_interrupt(&mac, 1, true);
        E1000e.set_rx_interrupt(&mac, 1, false);
        E1000e.rearm_link_interrupt(&mac);
        assert_eq!(
            regs.writes(),
            vec![
                (ICR, IMS_RXQ1),
                (IMS, IMS_RXQ1),
                (IMC, IMS_RXQ1),
                (IMS, IMS_OTHER | ICR_LSC)
            ]
        );
    }
}
