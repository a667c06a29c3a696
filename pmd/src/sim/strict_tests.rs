//! The register part of open ([`init_hw`] and the PHY link setup, all that
//! runs without DMA) against the strict register model ([`super::strict`]),
//! for an 82576 port and an 82574L: it passes with the right MAC address
//! and link, and with each of issue 10's items 1, 2, 5 and 6 removed
//! (through [`Mac::skip_step`]) the model shows the failure real silicon
//! would give. Every item test runs the path both ways: whole (passes)
//! and with the step removed (fails as described).

use std::sync::Arc;
use std::time::Duration;

use super::strict::*;
use crate::e1000e::E1000e;
use crate::error::{Error, Result};
use crate::igb::Igb;
use crate::mac::regs::{EEMNGCTL, IMC};
use crate::mac::{Family, FlowControl, Mac, Step};
use crate::mac_port::init_hw;
use crate::phy::{self, BMCR_PDOWN, MII_BMCR};
use crate::port::{LinkStatus, PortConfig};

/// How long a test that expects link waits for it (the model needs some
/// tens of STATUS reads, microseconds; the wall-clock bound is generous
/// because a loaded machine can stall a test thread for longer than a
/// tight one, which made these tests flaky).
const LINK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test that expects no link waits for nothing.
const NO_LINK_TIMEOUT: Duration = Duration::from_millis(500);

/// One bring-up of a model.
struct Run {
    model: Arc<StrictModel>,
    cfg: ModelConfig,
    mac: Mac,
    station: Result<[u8; 6]>,
}

impl Run {
    /// `init_hw` of the model's chip with `skip` removed from it.
    fn open(cfg: ModelConfig, skip: &[Step]) -> Run {
        let model = StrictModel::new(cfg.clone());
        let family = match cfg.flavour {
            Flavour::I82576 { .. } => Family::I82576,
            Flavour::I82574 => Family::I82574,
        };
        let addr = "0000:03:00.1".parse().expect("PCI address");
        let mac = Mac::over(addr, model.clone(), Some(family));
        for s in skip {
            mac.skip_step(*s);
        }
        let port = PortConfig::default();
        let station = match family {
            Family::I82576 => init_hw(&mac, &Igb, &port),
            Family::I82574 => init_hw(&mac, &E1000e, &port),
        };
        Run {
            model,
            cfg,
            mac,
            station,
        }
    }

    /// Waits for link, then resolves flow control as the port's first
    /// link query does.
    fn link(&self) -> Result<LinkStatus> {
        self.link_within(LINK_TIMEOUT)
    }
    /// As [`Run::link`], waiting at most `timeout`.
    fn link_within(&self, timeout: Duration) -> Result<LinkStatus> {
        self.mac.wait_for_link(timeout)?;
        phy::configure_flow_control(&self.mac, FlowControl::Full)?;
        Ok(self.mac.link())
    }

    fn station(&self) -> [u8; 6] {
        match &self.station {
            Ok(m) => *m,
            Err(e) => panic!("init_hw against the strict model failed: {e}"),
        }
    }

    fn violations(&self) -> Vec<Violation> {
        self.model.violations()
    }

    /// The whole open passed: no rule broken, this port's address, link at
    /// 1000 full duplex with flow control both ways, the PHY powered.
    fn assert_good(&self) {
        let station = self.station();
        assert_eq!(self.violations(), [], "rules the open broke");
        assert_eq!(self.model.resets(), 1, "CTRL.RST writes");
        assert_eq!(self.model.software_locks(), 0, "semaphores left held");
        assert_eq!(station, self.cfg.port_address(), "station address");
        assert_eq!(self.model.rar0(), (station, true), "RAR0 after open");
        let l = self.link().expect("link against the strict model");
        assert!(
            l.up && l.speed == 1000 && l.full_duplex && l.flow_control == FlowControl::Full,
            "link {l}"
        );
        assert_eq!(self.model.phy_reg(MII_BMCR) & BMCR_PDOWN, 0, "BMCR.PDOWN");
    }
}

/// Firmware that takes the PHY and NVM semaphores at each reset and keeps
/// them until software has found them held a few times.
fn busy_firmware(mut c: ModelConfig) -> ModelConfig {
    let n = match c.flavour {
        Flavour::I82576 { .. } => 3,
        // MDIO ownership is polled for only 20 ms: fewer retries.
        Flavour::I82574 => 2,
    };
    c.fw_phy = Some(FwHold::Attempts(n));
    c.fw_nvm = Some(FwHold::Attempts(n));
    c
}

fn both_chips() -> [ModelConfig; 2] {
    [
        busy_firmware(ModelConfig::i82576(1)),
        busy_firmware(ModelConfig::i82574()),
    ]
}

#[test]
fn strict_open_passes_with_this_ports_rar0_address_and_link() {
    for cfg in [
        busy_firmware(ModelConfig::i82576(0)),
        busy_firmware(ModelConfig::i82576(1)),
        busy_firmware(ModelConfig::i82574()),
    ] {
        let flavour = cfg.flavour;
        let run = Run::open(cfg, &[]);
        run.assert_good();
        assert!(
            run.model.firmware_waits() > 0,
            "{flavour:?}: the open never waited for the firmware's semaphore"
        );
        assert!(!run.model.firmware_holds_phy(), "{flavour:?}");
    }
}

#[test]
fn strict_82576_port1_address_is_not_the_nvms_first_words_and_the_nvm_is_valid() {
    // The premise of item 2's test: what the model loads differs.
    let cfg = ModelConfig::i82576(1);
    assert_ne!(cfg.port_address(), NVM_BASE_MAC);
    assert_eq!(ModelConfig::i82576(0).port_address(), NVM_BASE_MAC);
    // A valid image, alternate MAC table or not (Intel's drivers check).
    assert_eq!(StrictModel::new(cfg.clone()).nvm_sum(), NVM_SUM);
    let alt = cfg.with_alt_mac(0x40, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]]);
    assert_eq!(StrictModel::new(alt).nvm_sum(), NVM_SUM);
}

#[test]
fn strict_82576_alternate_mac_address_replaces_rar0() {
    let alt = [[0x02, 0, 0, 0, 0, 0x10], [0x02, 0, 0, 0, 0, 0x11]];
    let cfg = busy_firmware(ModelConfig::i82576(1)).with_alt_mac(0x40, &alt);
    let run = Run::open(cfg, &[]);
    assert_eq!(run.violations(), []);
    assert_eq!(run.station(), alt[1], "port 1's alternate entry");
    assert_eq!(run.model.rar0(), (alt[1], true));
    assert!(run.link().is_ok_and(|l| l.up));
}

#[test]
fn strict_locks_a_crashed_user_left_are_cleared_at_open() {
    for mut cfg in both_chips() {
        cfg.stale_locks = true;
        let flavour = cfg.flavour;
        let run = Run::open(cfg, &[]);
        assert!(run.station.is_ok(), "{flavour:?}: {:?}", run.station);
        run.assert_good();
    }
}

#[test]
fn strict_firmware_holding_the_phy_forever_is_a_typed_timeout() {
    for mut cfg in both_chips() {
        cfg.fw_phy = Some(FwHold::Forever);
        cfg.fw_nvm = None;
        let flavour = cfg.flavour;
        let run = Run::open(cfg, &[]);
        match (&run.station, flavour) {
            (Err(Error::SwFwSyncTimeout { resource, .. }), Flavour::I82576 { .. }) => {
                assert_eq!(*resource, "PHY")
            }
            (Err(Error::MdioOwnershipTimeout { .. }), Flavour::I82574) => {}
            (other, _) => panic!("{flavour:?}: {other:?}"),
        }
        assert!(run.model.firmware_holds_phy());
        assert_eq!(
            run.violations(),
            [],
            "{flavour:?}: nothing raced the firmware"
        );
    }
}

/// Item 1: the PHY powered up (BMCR.PDOWN cleared). Without it the PHY the
/// previous owner powered down never links.
#[test]
fn item1_without_phy_power_up_the_link_never_comes_up() {
    for cfg in both_chips() {
        let flavour = cfg.flavour;
        Run::open(cfg.clone(), &[]).assert_good();

        let run = Run::open(cfg, &[Step::PhyPowerUp]);
        run.station();
        assert!(
            matches!(
                run.link_within(NO_LINK_TIMEOUT),
                Err(Error::LinkTimeout { .. })
            ),
            "{flavour:?}: link without PHY power-up: {:?}",
            run.link_within(NO_LINK_TIMEOUT)
        );
        assert_ne!(run.model.phy_reg(MII_BMCR) & BMCR_PDOWN, 0, "{flavour:?}");
        assert!(!run.model.phy_link(), "{flavour:?}");
        assert!(!run.mac.link().up, "{flavour:?}");
    }
}

/// Item 2: the MAC address from RAR0 as the device loaded it for this
/// port. Read from NVM words 0-2 instead, port 1 of an 82576 takes port
/// 0's address.
#[test]
fn item2_mac_from_eeprom_words_instead_of_rar0_is_port_0s_address() {
    let cfg = busy_firmware(ModelConfig::i82576(1));
    Run::open(cfg.clone(), &[]).assert_good();

    let run = Run::open(cfg.clone(), &[Step::MacFromRar]);
    let station = run.station();
    assert_ne!(station, cfg.port_address(), "port 1's own address");
    assert_eq!(station, ModelConfig::i82576(0).port_address(), "port 0's");
    // And RAR0 now filters for port 0's address: port 1 would receive
    // port 0's frames.
    assert_eq!(run.model.rar0(), (NVM_BASE_MAC, true));
}

/// Item 5: CTRL.GIO_MASTER_DISABLE and STATUS.GIO_MASTER_ENABLE clear
/// before CTRL.RST.
#[test]
fn item5_without_master_disable_the_reset_hits_a_live_bus_master() {
    for cfg in both_chips() {
        let flavour = cfg.flavour;
        Run::open(cfg.clone(), &[]).assert_good();

        let run = Run::open(cfg, &[Step::MasterDisable]);
        let v = run.violations();
        assert!(
            v.contains(&Violation::ResetWithMasterEnabled),
            "{flavour:?}: {v:?}"
        );
    }
}

/// Item 5: EECD.AUTO_RD waited for after CTRL.RST. Without the wait the
/// driver touches registers the NVM load has not finished (82576: this
/// port's EEMNGCTL; 82574: IMC, after a fixed 25 ms the device need not
/// honour).
#[test]
fn item5_without_the_auto_read_wait_registers_are_touched_before_the_nvm_load() {
    for cfg in both_chips() {
        let flavour = cfg.flavour;
        Run::open(cfg.clone(), &[]).assert_good();

        let run = Run::open(cfg, &[Step::AutoReadWait]);
        let first = run
            .violations()
            .into_iter()
            .find(|v| matches!(v, Violation::AccessBeforeAutoRead { .. }));
        let want = match flavour {
            Flavour::I82576 { .. } => EEMNGCTL,
            Flavour::I82574 => IMC,
        };
        assert_eq!(
            first,
            Some(Violation::AccessBeforeAutoRead { reg: want }),
            "{flavour:?}: {:?}",
            run.violations()
        );
    }
}

/// Item 6: PHY (MDIC) and NVM (EERD) access under the firmware semaphore.
/// Without it the driver's transactions run while the firmware holds the
/// resource.
#[test]
fn item6_without_the_semaphore_phy_and_nvm_access_race_the_firmware() {
    for cfg in both_chips() {
        let flavour = cfg.flavour;
        Run::open(cfg.clone(), &[]).assert_good();

        let run = Run::open(cfg, &[Step::Semaphore]);
        let v = run.violations();
        let raced = |f: fn(&Access) -> bool| {
            v.iter().any(
                |x| matches!(x, Violation::Unguarded { access, firmware_held: true } if f(access)),
            )
        };
        assert!(
            raced(|a| matches!(a, Access::Mdic { .. })),
            "{flavour:?}: no MDIC access while the firmware held the PHY: {v:?}"
        );
        match flavour {
            Flavour::I82576 { .. } => assert!(
                raced(|a| matches!(a, Access::Eerd { .. })),
                "82576: no EERD read while the firmware held the NVM: {v:?}"
            ),
            Flavour::I82574 => assert!(
                v.contains(&Violation::ResetWithoutMdioOwnership),
                "82574: CTRL.RST without MDIO ownership: {v:?}"
            ),
        }
    }
}

// The model's own rules, driven register by register.

#[test]
fn model_flags_a_reset_whose_master_disable_was_not_polled_clear() {
    use crate::mac::Regs;
    use crate::mac::regs::{CTRL, CTRL_GIO_MASTER_DISABLE, CTRL_RST, STATUS};
    let m = StrictModel::new(ModelConfig::i82574());
    // Disabled, plenty of time passed, but never read clear.
    m.write32(CTRL, CTRL_GIO_MASTER_DISABLE);
    for _ in 0..2 * MASTER_IDLE_TICKS {
        let _ = m.read32(0x4000);
    }
    m.write32(CTRL, CTRL_GIO_MASTER_DISABLE | CTRL_RST);
    assert!(m.violations().contains(&Violation::ResetWithMasterEnabled));

    let m = StrictModel::new(ModelConfig::i82576(0));
    m.write32(CTRL, CTRL_GIO_MASTER_DISABLE);
    let idle = (0..2 * MASTER_IDLE_TICKS)
        .any(|_| m.read32(STATUS) & crate::mac::regs::STATUS_GIO_MASTER_ENABLE == 0);
    assert!(idle, "GIO_MASTER_ENABLE never cleared");
    m.write32(CTRL, CTRL_GIO_MASTER_DISABLE | CTRL_RST);
    assert_eq!(m.violations(), []);
}

#[test]
fn model_mdic_is_ready_only_after_some_reads_and_flags_a_command_too_early() {
    use crate::mac::Regs;
    use crate::mac::regs::*;
    let m = StrictModel::new(ModelConfig::i82574());
    m.write32(EXTCNF_CTRL, EXTCNF_CTRL_MDIO_SW_OWNERSHIP);
    let cmd = MDIC_OP_READ | (MII_BMCR << MDIC_REGADD_SHIFT) | (1 << MDIC_PHYADD_SHIFT);
    m.write32(MDIC, cmd);
    assert_eq!(m.read32(MDIC) & MDIC_READY, 0, "ready at once");
    let v = m.read32(MDIC);
    assert_ne!(v & MDIC_READY, 0);
    assert_ne!(v as u16 & BMCR_PDOWN, 0, "the PHY as Linux left it");
    assert_eq!(m.violations(), []);
    m.write32(MDIC, cmd);
    m.write32(MDIC, cmd);
    assert!(m.violations().contains(&Violation::MdicBusy));
    // Another PHY address: ERROR.
    let m = StrictModel::new(ModelConfig::i82574());
    m.write32(EXTCNF_CTRL, EXTCNF_CTRL_MDIO_SW_OWNERSHIP);
    m.write32(MDIC, MDIC_OP_READ | (2 << MDIC_PHYADD_SHIFT));
    let _ = m.read32(MDIC);
    assert_ne!(m.read32(MDIC) & MDIC_ERROR, 0);
}

#[test]
fn model_phy_stays_powered_down_across_phy_resets_until_bmcr_pdown_is_cleared() {
    // The whole open with power-up removed already shows no link (item 1);
    // here: a PHY hardware reset and BMCR.RESET alone do not power it up.
    let run = Run::open(ModelConfig::i82574(), &[Step::PhyPowerUp]);
    run.station();
    assert_ne!(run.model.phy_reg(MII_BMCR) & BMCR_PDOWN, 0);
    phy::hw_reset(&run.mac).expect("PHY reset");
    phy::sw_reset(&run.mac).expect("BMCR.RESET");
    assert_ne!(run.model.phy_reg(MII_BMCR) & BMCR_PDOWN, 0);
    assert!(matches!(
        run.mac.wait_for_link(Duration::from_millis(50)),
        Err(Error::LinkTimeout { .. })
    ));
}

#[test]
fn strict_phy_power_down_at_close_takes_the_link_down() {
    for cfg in both_chips() {
        let flavour = cfg.flavour;
        let run = Run::open(cfg, &[]);
        run.assert_good();
        phy::power_down(&run.mac).expect("PHY power-down");
        assert_ne!(run.model.phy_reg(MII_BMCR) & BMCR_PDOWN, 0, "{flavour:?}");
        assert!(!run.mac.link().up, "{flavour:?}: link after power-down");
        assert_eq!(run.violations(), [], "{flavour:?}");
    }
}
