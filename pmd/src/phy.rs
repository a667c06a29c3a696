//! The copper PHY both families reach through MDIC, written once: register
//! access under the hardware semaphore ([`Mac::acquire`]) with a timeout
//! and typed errors, PHY reset, power up/down (BMCR), the autonegotiation
//! advertisement and restart, link from BMSR, and flow control resolved
//! from our advertisement and the link partner's (IEEE 802.3 annex 28B,
//! as Intel's config_fc_after_link_up). What one PHY needs beyond that
//! (the 82576's IGP settings, the 82574's BM/M88 settings) is in the
//! chip's module, built from these accessors.
//!
//! 82576 datasheet 8.2.4 (MDIC) and 8.27 (PHY registers); 82574 datasheet
//! 10.2.2.7 (MDIC) and 10.3 (PHY registers).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::mac::regs::*;
use crate::mac::{Family, FlowControl, Mac, Resource, Step, poll};

/// The internal PHY's MDIO address (both chips).
pub const PHY_ADDR: u32 = 1;

// IEEE 802.3 clause 22 registers (Linux `mii.h` names).
pub const MII_BMCR: u32 = 0x00;
pub const MII_BMSR: u32 = 0x01;
pub const MII_PHYSID1: u32 = 0x02;
pub const MII_PHYSID2: u32 = 0x03;
pub const MII_ADVERTISE: u32 = 0x04;
pub const MII_LPA: u32 = 0x05;
pub const MII_CTRL1000: u32 = 0x09;

pub const BMCR_ANRESTART: u16 = 1 << 9;
pub const BMCR_ISOLATE: u16 = 1 << 10;
pub const BMCR_PDOWN: u16 = 1 << 11;
pub const BMCR_ANENABLE: u16 = 1 << 12;
pub const BMCR_RESET: u16 = 1 << 15;
pub const BMSR_LSTATUS: u16 = 1 << 2;
pub const BMSR_ANEGCOMPLETE: u16 = 1 << 5;

pub const ADVERTISE_10HALF: u16 = 1 << 5;
pub const ADVERTISE_10FULL: u16 = 1 << 6;
pub const ADVERTISE_100HALF: u16 = 1 << 7;
pub const ADVERTISE_100FULL: u16 = 1 << 8;
pub const ADVERTISE_100BASE4: u16 = 1 << 9;
pub const ADVERTISE_PAUSE_CAP: u16 = 1 << 10;
pub const ADVERTISE_PAUSE_ASYM: u16 = 1 << 11;
/// The speed/duplex bits of MII_ADVERTISE this driver owns.
const ADVERTISE_SPEEDS: u16 = ADVERTISE_10HALF
    | ADVERTISE_10FULL
    | ADVERTISE_100HALF
    | ADVERTISE_100FULL
    | ADVERTISE_100BASE4;
pub const ADVERTISE_1000HALF: u16 = 1 << 8;
pub const ADVERTISE_1000FULL: u16 = 1 << 9;

/// Registers above this one sit behind a page select on both PHYs.
const MAX_UNPAGED_REG: u32 = 0x0F;
/// 82576 (IGP PHY): page select register, written with the register's
/// full offset before a register above 15.
const IGP_PAGE_SELECT: u32 = 0x1F;
/// 82574 (BM PHY): page select register, written with the page (here
/// always 0) before a register above 15.
const BM_PAGE_SELECT: u32 = 0x16;

/// How long one MDIC transaction may take (Intel: 1920 x 50 us).
const MDIC_TIMEOUT: Duration = Duration::from_millis(100);
/// BMCR.RESET self-clear.
const SW_RESET_TIMEOUT: Duration = Duration::from_millis(100);

/// One MDIC transaction; the caller holds the PHY semaphore.
fn mdic(mac: &Mac, cmd: u32, reg: u32) -> Result<u16> {
    mac.w(
        MDIC,
        cmd | (reg << MDIC_REGADD_SHIFT) | (PHY_ADDR << MDIC_PHYADD_SHIFT),
    );
    let mut v = 0;
    if !poll(MDIC_TIMEOUT, || {
        v = mac.r(MDIC);
        v & MDIC_READY != 0
    }) {
        return Err(Error::Mdic {
            addr: mac.addr(),
            reg,
            what: "timed out",
        });
    }
    if v & MDIC_ERROR != 0 {
        return Err(Error::Mdic {
            addr: mac.addr(),
            reg,
            what: "reported an error",
        });
    }
    Ok((v & MDIC_DATA_MASK) as u16)
}

/// The page select a register above 15 needs, as Intel's IGP and BM
/// accessors write it.
fn select_page(mac: &Mac, reg: u32) -> Result<()> {
    if reg <= MAX_UNPAGED_REG {
        return Ok(());
    }
    match mac.family() {
        Some(Family::I82576) => mdic(mac, MDIC_OP_WRITE | reg, IGP_PAGE_SELECT).map(|_| ()),
        Some(Family::I82574) => mdic(mac, MDIC_OP_WRITE, BM_PAGE_SELECT).map(|_| ()),
        None => Ok(()),
    }
}

/// Reads PHY register `reg` under the PHY semaphore.
pub fn read(mac: &Mac, reg: u32) -> Result<u16> {
    let _l = mac.acquire(Resource::Phy)?;
    select_page(mac, reg)?;
    mdic(mac, MDIC_OP_READ, reg)
}

/// Writes PHY register `reg` under the PHY semaphore.
pub fn write(mac: &Mac, reg: u32, v: u16) -> Result<()> {
    let _l = mac.acquire(Resource::Phy)?;
    select_page(mac, reg)?;
    mdic(mac, MDIC_OP_WRITE | u32::from(v), reg).map(|_| ())
}

/// Read-modify-write of PHY register `reg`.
pub fn update(mac: &Mac, reg: u32, f: impl FnOnce(u16) -> u16) -> Result<()> {
    let v = read(mac, reg)?;
    write(mac, reg, f(v))
}

/// Powers the PHY up (issue 10 item 1; PHY Control register, 82576
/// datasheet section 8 PHY registers, 82574 datasheet section 10 PHY
/// registers): BMCR.PDOWN and BMCR.ISOLATE cleared. A PHY Linux or
/// DPDK left behind is powered down (they power it down whenever the
/// interface is down), and a powered-down PHY never links. QEMU ignores
/// PDOWN; the strict register model does not.
pub fn power_up(mac: &Mac) -> Result<()> {
    if mac.skips(Step::PhyPowerUp) {
        return Ok(());
    }
    update(mac, MII_BMCR, |v| v & !(BMCR_PDOWN | BMCR_ISOLATE))
}

/// Powers the PHY down (BMCR.PDOWN) at close, unless manageability
/// firmware still uses the link (MANC.RCV_TCO_EN) or PHY resets are
/// blocked (MANC.BLK_PHY_RST_ON_IDE), as Linux's power_down_phy does.
pub fn power_down(mac: &Mac) -> Result<()> {
    let manc = mac.r(MANC);
    if manc & (MANC_RCV_TCO_EN | MANC_BLK_PHY_RST_ON_IDE) != 0 {
        log::info!(
            "{}: manageability uses the link (MANC {manc:#010x}); PHY left powered",
            mac.addr()
        );
        return Ok(());
    }
    update(mac, MII_BMCR, |v| v | BMCR_PDOWN)?;
    std::thread::sleep(Duration::from_millis(1));
    Ok(())
}

/// PHY hardware reset through CTRL.PHY_RST under the PHY semaphore, then
/// the wait for the PHY configuration the device loads from the NVM
/// (82576: this port's EEMNGCTL.CFG_DONE; 82574: 10 ms), as Intel's
/// phy_hw_reset does; skipped while MANC.BLK_PHY_RST_ON_IDE blocks it.
/// (QEMU only sets STATUS.PHYRA for CTRL.PHY_RST.)
pub fn hw_reset(mac: &Mac) -> Result<()> {
    if mac.r(MANC) & MANC_BLK_PHY_RST_ON_IDE != 0 {
        log::info!(
            "{}: PHY reset blocked by manageability (MANC.BLK_PHY_RST_ON_IDE)",
            mac.addr()
        );
        return Ok(());
    }
    {
        let _l = mac.acquire(Resource::Phy)?;
        let ctrl = mac.r(CTRL);
        mac.w(CTRL, ctrl | CTRL_PHY_RST);
        mac.flush();
        std::thread::sleep(Duration::from_micros(100));
        mac.w(CTRL, ctrl & !CTRL_PHY_RST);
        mac.flush();
        std::thread::sleep(Duration::from_micros(150));
    }
    match mac.family() {
        Some(Family::I82576) => mac.wait_cfg_done(),
        _ => std::thread::sleep(Duration::from_millis(10)),
    }
    Ok(())
}

/// PHY software reset (BMCR.RESET), which commits PHY-specific settings
/// on the 82574's PHY; waits for the bit to self-clear.
pub fn sw_reset(mac: &Mac) -> Result<()> {
    update(mac, MII_BMCR, |v| v | BMCR_RESET)?;
    let mut err = None;
    let done = poll(SW_RESET_TIMEOUT, || match read(mac, MII_BMCR) {
        Ok(v) => v & BMCR_RESET == 0,
        Err(e) => {
            err = Some(e);
            true
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    if done {
        Ok(())
    } else {
        Err(Error::PhyResetTimeout {
            addr: mac.addr(),
            ms: SW_RESET_TIMEOUT.as_millis() as u64,
        })
    }
}

/// MII_ADVERTISE pause bits for a requested flow control mode (802.3
/// annex 28B: Rx needs both PAUSE and ASM_DIR, Tx ASM_DIR alone).
pub fn pause_advertisement(fc: FlowControl) -> u16 {
    match fc {
        FlowControl::None => 0,
        FlowControl::Tx => ADVERTISE_PAUSE_ASYM,
        FlowControl::Rx | FlowControl::Full => ADVERTISE_PAUSE_CAP | ADVERTISE_PAUSE_ASYM,
    }
}

/// The advertisement: 10/100 half and full, 1000 full (the MACs do not
/// do 1000 half duplex, so Intel's drivers never advertise it), and the
/// pause bits for `fc`. Written as Intel's phy_setup_autoneg does: both
/// registers read first, only the bits owned here changed.
pub fn setup_autoneg(mac: &Mac, fc: FlowControl) -> Result<()> {
    let adv = read(mac, MII_ADVERTISE)?;
    let ctrl1000 = read(mac, MII_CTRL1000)?;
    let adv = (adv & !(ADVERTISE_SPEEDS | ADVERTISE_PAUSE_CAP | ADVERTISE_PAUSE_ASYM))
        | ADVERTISE_10HALF
        | ADVERTISE_10FULL
        | ADVERTISE_100HALF
        | ADVERTISE_100FULL
        | pause_advertisement(fc);
    let ctrl1000 = (ctrl1000 & !(ADVERTISE_1000HALF | ADVERTISE_1000FULL)) | ADVERTISE_1000FULL;
    write(mac, MII_ADVERTISE, adv)?;
    write(mac, MII_CTRL1000, ctrl1000)
}

/// Autonegotiation enabled and restarted (BMCR.ANENABLE | ANRESTART, the
/// other bits kept). QEMU brings its link up only on this restart.
pub fn restart_autoneg(mac: &Mac) -> Result<()> {
    update(mac, MII_BMCR, |v| v | BMCR_ANENABLE | BMCR_ANRESTART)
}

/// BMSR.LSTATUS (read twice: the bit latches low).
pub fn link_up(mac: &Mac) -> Result<bool> {
    let _ = read(mac, MII_BMSR)?;
    Ok(read(mac, MII_BMSR)? & BMSR_LSTATUS != 0)
}

/// Flow control from our advertisement and the link partner's ability
/// (802.3 annex 28B.3, Intel's config_fc_after_link_up): both symmetric:
/// full (or rx if that is all we asked for); we asymmetric only and the
/// partner both: tx; we both and the partner asymmetric only: rx;
/// otherwise none; half duplex: none.
pub fn resolve(requested: FlowControl, local: u16, partner: u16, full_duplex: bool) -> FlowControl {
    let (lp, la) = (
        local & ADVERTISE_PAUSE_CAP != 0,
        local & ADVERTISE_PAUSE_ASYM != 0,
    );
    let (rp, ra) = (
        partner & ADVERTISE_PAUSE_CAP != 0,
        partner & ADVERTISE_PAUSE_ASYM != 0,
    );
    let mode = if lp && rp {
        if requested == FlowControl::Full {
            FlowControl::Full
        } else {
            FlowControl::Rx
        }
    } else if !lp && la && rp && ra {
        FlowControl::Tx
    } else if lp && la && !rp && ra {
        FlowControl::Rx
    } else {
        FlowControl::None
    };
    if full_duplex { mode } else { FlowControl::None }
}

/// After link up: resolves flow control from the PHY and STATUS.FD and
/// sets CTRL.RFCE/TFCE to match. QEMU sets RFCE/TFCE itself when its
/// autonegotiation completes; this overwrites them with the resolution
/// real silicon needs the driver to make.
pub fn configure_flow_control(mac: &Mac, requested: FlowControl) -> Result<FlowControl> {
    let bmsr = {
        let _ = read(mac, MII_BMSR)?;
        read(mac, MII_BMSR)?
    };
    let mode = if bmsr & BMSR_ANEGCOMPLETE == 0 {
        FlowControl::None
    } else {
        let local = read(mac, MII_ADVERTISE)?;
        let partner = read(mac, MII_LPA)?;
        resolve(requested, local, partner, mac.r(STATUS) & STATUS_FD != 0)
    };
    mac.force_flow_control(mode);
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: u16 = ADVERTISE_PAUSE_CAP | ADVERTISE_PAUSE_ASYM;

    #[test]
    fn flow_control_resolves_as_annex_28b() {
        use FlowControl::*;
        let adv = pause_advertisement;
        assert_eq!(resolve(Full, adv(Full), BOTH, true), Full);
        assert_eq!(resolve(Full, adv(Full), ADVERTISE_PAUSE_CAP, true), Full);
        assert_eq!(resolve(Rx, adv(Rx), BOTH, true), Rx);
        assert_eq!(resolve(Tx, adv(Tx), BOTH, true), Tx);
        assert_eq!(resolve(Tx, adv(Tx), ADVERTISE_PAUSE_ASYM, true), None);
        assert_eq!(resolve(Full, adv(Full), ADVERTISE_PAUSE_ASYM, true), Rx);
        assert_eq!(resolve(Full, adv(Full), 0, true), None);
        assert_eq!(resolve(None, adv(None), BOTH, true), None);
        assert_eq!(resolve(Full, adv(Full), BOTH, false), None, "half duplex");
    }
}
