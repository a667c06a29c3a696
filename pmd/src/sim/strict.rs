//! The strict register model: a MAC and copper PHY register file of an
//! 82576 port (any LAN ID) or an 82574L, implementing [`Regs`], that
//! behaves as the datasheets describe where QEMU's emulation is lenient,
//! and records every rule the driver breaks as a [`Violation`] instead of
//! letting it pass silently. Its clock is the register access: every read
//! or write advances it one tick, so the device finishes something
//! (CTRL.RST self-clearing, the NVM auto-read, an MDIC or EERD
//! transaction, autonegotiation) only after the driver has gone on
//! accessing it for a while; a driver that sleeps instead of polling
//! learns nothing, and the outcome is the same on a loaded host. What it
//! models (82576 datasheet sections 4.3, 4.6, 8.2, 8.4, 8.6 and 8.27;
//! 82574 datasheet sections 10.2.2 and 10.3):
//! - CTRL.RST self-clears [`RST_TICKS`] after it is written, and resets
//!   the MAC registers (RAL0/RAH0 included) but not the PHY. Writing it
//!   before the driver has read STATUS.GIO_MASTER_ENABLE clear after
//!   CTRL.GIO_MASTER_DISABLE (that bit clears [`MASTER_IDLE_TICKS`] after the
//!   disable; a driver that does not poll it cannot know its requests are
//!   done) is [`Violation::ResetWithMasterEnabled`]; on the 82574,
//!   writing it without EXTCNF_CTRL.MDIO_SW_OWNERSHIP is
//!   [`Violation::ResetWithoutMdioOwnership`].
//! - EECD.AUTO_RD sets [`AUTO_RD_TICKS`] after the reset completes; only
//!   then is RAR0 loaded with this port's address ([`ModelConfig::port_address`]:
//!   on 82576 LAN 1 it differs from NVM words 0-2), and EEMNGCTL.CFG_DONE of
//!   this port sets [`CFG_DONE_TICKS`] later (and again that long after a
//!   PHY reset through CTRL.PHY_RST). Touching any register other than CTRL,
//!   STATUS, EECD (and on the 82574 EXTCNF_CTRL, which Intel's reset releases
//!   right after CTRL.RST) after a reset before the driver has read EECD
//!   with AUTO_RD set is [`Violation::AccessBeforeAutoRead`]; an MDIC
//!   transaction on the 82576 after either reset before the driver has read
//!   this port's CFG_DONE set is [`Violation::PhyAccessBeforeCfgDone`]. (The
//!   model always sets both; it asks that the driver saw them, since a
//!   fixed delay proves nothing about a slow NVM.)
//! - The semaphores: on the 82576 SWSM.SMBI is taken by the read that finds
//!   it clear, SWSM.SWESMBI by writing it, and SW_FW_SYNC may be written only
//!   under SWESMBI ([`Violation::SwFwSyncWithoutSwesmbi`]; its bits 31:16
//!   are the firmware's, software writes do not change them); on the
//!   82574 EXTCNF_CTRL.MDIO_SW_OWNERSHIP latches only while the firmware does
//!   not own the MDIO/NVM. A firmware ([`ModelConfig::fw_phy`],
//!   [`ModelConfig::fw_nvm`]) takes the PHY and/or NVM semaphore when each
//!   reset completes, as soon as software does not hold it, and gives it back
//!   after software found it held a number of times ([`FwHold::Attempts`]) or
//!   never ([`FwHold::Forever`]). Every MDIC transaction and EERD read made
//!   without software holding the semaphore is [`Violation::Unguarded`],
//!   marked when the firmware held it at that moment. A previous user's
//!   locks can be left set ([`ModelConfig::stale_locks`]).
//! - MDIC: READY (or ERROR, for a PHY address other than 1 or while
//!   CTRL.PHY_RST holds the PHY in reset) [`MDIC_TICKS`] after the command;
//!   a command before the previous one is READY is [`Violation::MdicBusy`].
//!   EERD: DONE and the word [`EERD_TICKS`] after START.
//! - The PHY starts powered down (BMCR.PDOWN set, as Linux and DPDK leave it
//!   when the interface is down) and stays so until a write of BMCR clears
//!   the bit: neither a PHY hardware reset nor BMCR.RESET clears it here (the
//!   worst case the model assumes, so that only the driver's own power-up
//!   can bring the link up). While it is powered down there is no link and
//!   autonegotiation never runs; while BMCR.ISOLATE is set the MAC sees no
//!   link. BMCR.RESET self-clears [`PHY_RESET_TICKS`] after it is written;
//!   autonegotiation (started by ANRESTART or by power-up with ANENABLE)
//!   completes [`AUTONEG_TICKS`] later with the best mode both sides
//!   advertise, the partner's page in MII_LPA. STATUS.LU is set only while
//!   the PHY has link and CTRL.SLU is set.
//!
//! QEMU's igb/e1000e are lenient in these places (the driver's comments
//! say so at each): they ignore BMCR.PDOWN, igb neither sets EECD.AUTO_RD
//! after CTRL.RST nor implements EEMNGCTL, no firmware ever holds a
//! semaphore, and each emulated device is a port 0 of its own, so RAR0 and
//! NVM words 0-2 agree. The guest tests cannot show that these steps
//! matter; this model does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::mac::Regs;
use crate::mac::regs::*;
use crate::phy::*;

/// CTRL.RST self-clears this many accesses after it is written.
pub const RST_TICKS: u64 = 2;
/// EECD.AUTO_RD sets this many accesses after CTRL.RST cleared.
pub const AUTO_RD_TICKS: u64 = 3;
/// EEMNGCTL.CFG_DONE sets this many accesses after AUTO_RD (or after a PHY
/// reset).
pub const CFG_DONE_TICKS: u64 = 2;
/// STATUS.GIO_MASTER_ENABLE clears this many accesses after
/// CTRL.GIO_MASTER_DISABLE: more than the reset path makes between the
/// disable and CTRL.RST when it does not poll (so its flush read does not
/// happen to see the bit clear), few enough for the 80 ms poll.
pub const MASTER_IDLE_TICKS: u64 = 16;
/// An MDIC transaction is READY this many accesses after its command.
pub const MDIC_TICKS: u64 = 2;
/// An EERD read is DONE this many accesses after START.
pub const EERD_TICKS: u64 = 2;
/// BMCR.RESET self-clears this many accesses after it is written.
pub const PHY_RESET_TICKS: u64 = 4;
/// Autonegotiation completes this many accesses after it starts.
pub const AUTONEG_TICKS: u64 = 20;

/// NVM words 0-2 of the model: the board's base address (LAN 0's).
pub const NVM_BASE_MAC: [u8; 6] = [0x00, 0x1b, 0x21, 0x5a, 0x7c, 0x30];
/// NVM words 0x00..0x3F sum to this (Intel's NVM_SUM).
pub const NVM_SUM: u16 = 0xBABA;
const NVM_CHECKSUM_WORD: usize = 0x3F;

/// Which chip the model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// One port of an 82576: STATUS.LAN_ID, per-port CFG_DONE and SW_FW_SYNC
    /// PHY bit, SWSM semaphores.
    I82576 { lan_id: u8 },
    /// The single-port 82574L: EXTCNF_CTRL.MDIO_SW_OWNERSHIP for PHY and NVM.
    I82574,
}

/// How long the model's firmware keeps a semaphore it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwHold {
    /// Until software has found it held this many times (82576: SW_FW_SYNC
    /// reads under SWESMBI; 82574: EXTCNF_CTRL ownership writes that did not
    /// latch).
    Attempts(u32),
    /// Never given back.
    Forever,
}

/// What the modelled board looks like.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub flavour: Flavour,
    /// The NVM image (64 words at least, checksummed).
    pub nvm: Vec<u16>,
    /// The PHY as a previous owner left it: powered down.
    pub phy_powered_down: bool,
    /// Firmware takes the PHY semaphore (82574: the MDIO ownership, which
    /// covers the NVM too) at every reset completion.
    pub fw_phy: Option<FwHold>,
    /// 82576: firmware takes the NVM semaphore (SW_FW_SYNC EEP) at every
    /// reset completion.
    pub fw_nvm: Option<FwHold>,
    /// A crashed user's locks: SWSM.SMBI/SWESMBI and this port's software
    /// SW_FW_SYNC bits (82576), SWSM.SMBI (82574).
    pub stale_locks: bool,
    /// The link partner's base page (MII_LPA once linked).
    pub partner: u16,
    /// The link partner advertises 1000BASE-T full duplex.
    pub partner_1000full: bool,
}

impl ModelConfig {
    fn base(flavour: Flavour) -> ModelConfig {
        let mut nvm = vec![0xFFFF; 64];
        for (i, w) in NVM_BASE_MAC.chunks(2).enumerate() {
            nvm[i] = u16::from_le_bytes([w[0], w[1]]);
        }
        let mut c = ModelConfig {
            flavour,
            nvm,
            phy_powered_down: true,
            fw_phy: None,
            fw_nvm: None,
            stale_locks: false,
            // 10/100 half and full, PAUSE and ASM_DIR, acknowledge, 802.3.
            partner: ADVERTISE_10HALF
                | ADVERTISE_10FULL
                | ADVERTISE_100HALF
                | ADVERTISE_100FULL
                | ADVERTISE_PAUSE_CAP
                | ADVERTISE_PAUSE_ASYM
                | (1 << 14)
                | 1,
            partner_1000full: true,
        };
        c.fix_checksum();
        c
    }

    /// Port `lan_id` of an 82576.
    pub fn i82576(lan_id: u8) -> ModelConfig {
        ModelConfig::base(Flavour::I82576 { lan_id })
    }

    /// An 82574L.
    pub fn i82574() -> ModelConfig {
        ModelConfig::base(Flavour::I82574)
    }

    /// The board carries an alternate MAC address table at NVM word `ptr`
    /// (pointed at by word 0x37), one 3-word entry per port.
    pub fn with_alt_mac(mut self, ptr: u16, entries: &[[u8; 6]]) -> ModelConfig {
        let need = usize::from(ptr) + 3 * entries.len();
        if self.nvm.len() < need {
            self.nvm.resize(need, 0xFFFF);
        }
        self.nvm[NVM_ALT_MAC_ADDR_PTR as usize] = ptr;
        for (p, m) in entries.iter().enumerate() {
            for (i, w) in m.chunks(2).enumerate() {
                self.nvm[usize::from(ptr) + 3 * p + i] = u16::from_le_bytes([w[0], w[1]]);
            }
        }
        self.fix_checksum();
        self
    }

    /// Word 0x3F such that words 0x00..=0x3F sum to [`NVM_SUM`].
    fn fix_checksum(&mut self) {
        let sum = self.nvm[..NVM_CHECKSUM_WORD]
            .iter()
            .fold(0u16, |a, w| a.wrapping_add(*w));
        self.nvm[NVM_CHECKSUM_WORD] = NVM_SUM.wrapping_sub(sum);
    }

    fn lan_id(&self) -> u8 {
        match self.flavour {
            Flavour::I82576 { lan_id } => lan_id,
            Flavour::I82574 => 0,
        }
    }

    /// The address the device loads into RAR0 for this port after the NVM
    /// auto-read: NVM words 0-2 with the last byte XOR the LAN ID (port 1's
    /// is port 0's with the lowest bit inverted, as Intel's code for the
    /// earlier dual-port parts derived it in software), so port 1's differs
    /// from the NVM's first words.
    pub fn port_address(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        for i in 0..3 {
            m[2 * i..2 * i + 2].copy_from_slice(&self.nvm[i].to_le_bytes());
        }
        m[5] ^= self.lan_id();
        m
    }
}

/// A register access the model checks for its semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Mdic { reg: u32 },
    Eerd { word: u32 },
}

/// A rule of the datasheets the driver broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// CTRL.RST written while STATUS.GIO_MASTER_ENABLE was set, or before
    /// the driver read it clear after CTRL.GIO_MASTER_DISABLE.
    ResetWithMasterEnabled,
    /// 82574: CTRL.RST written without MDIO ownership.
    ResetWithoutMdioOwnership,
    /// `reg` accessed after a reset before EECD.AUTO_RD was read set.
    AccessBeforeAutoRead { reg: usize },
    /// An MDIC transaction or EERD read without the semaphore; whether the
    /// firmware held it then.
    Unguarded { access: Access, firmware_held: bool },
    /// 82576: SW_FW_SYNC written without SWSM.SWESMBI.
    SwFwSyncWithoutSwesmbi,
    /// MDIC written before the previous transaction was READY.
    MdicBusy,
    /// 82576: an MDIC transaction after a reset before the driver read this
    /// port's EEMNGCTL.CFG_DONE set.
    PhyAccessBeforeCfgDone,
}

/// A firmware hold on one semaphore.
#[derive(Clone, Copy, Debug, Default)]
struct Fw {
    /// Wants the semaphore (set at reset completion).
    wants: Option<FwHold>,
    /// Holds it, with attempts left before it lets go (`None`: forever).
    held: Option<Option<u32>>,
}

#[derive(Debug)]
struct Phy {
    regs: [u16; 32],
    reset_clear_at: Option<u64>,
    an_done_at: Option<u64>,
    /// (speed in Mbit/s, full duplex) while linked.
    link: Option<(u32, bool)>,
}

impl Phy {
    fn defaults(flavour: Flavour, powered_down: bool) -> [u16; 32] {
        let mut r = [0u16; 32];
        // Autonegotiation on, full duplex, 1000 Mbit/s selected.
        r[MII_BMCR as usize] = BMCR_ANENABLE | (1 << 8) | (1 << 6);
        if powered_down {
            r[MII_BMCR as usize] |= BMCR_PDOWN;
        }
        // 10/100 half/full, extended status, autonegotiation able,
        // extended capabilities.
        r[MII_BMSR as usize] = 0x7949;
        let (id1, id2) = match flavour {
            // Linux's IGP03E1000_E_PHY_ID and BME1000_E_PHY_ID_R2.
            Flavour::I82576 { .. } => (0x02A8, 0x0390),
            Flavour::I82574 => (0x0141, 0x0CB1),
        };
        r[MII_PHYSID1 as usize] = id1;
        r[MII_PHYSID2 as usize] = id2;
        r[MII_ADVERTISE as usize] =
            ADVERTISE_10HALF | ADVERTISE_10FULL | ADVERTISE_100HALF | ADVERTISE_100FULL | 1;
        r[MII_CTRL1000 as usize] = ADVERTISE_1000HALF | ADVERTISE_1000FULL;
        r
    }

    fn powered(&self) -> bool {
        self.regs[MII_BMCR as usize] & BMCR_PDOWN == 0
    }

    fn start_autoneg(&mut self, now: u64) {
        self.link = None;
        let bmcr = self.regs[MII_BMCR as usize];
        self.an_done_at =
            (self.powered() && bmcr & BMCR_ANENABLE != 0).then_some(now + AUTONEG_TICKS);
    }
}

struct State {
    cfg: ModelConfig,
    now: u64,
    regs: HashMap<usize, u32>,
    ctrl: u32,
    rst_clear_at: Option<u64>,
    master_idle_at: Option<u64>,
    /// STATUS was read with GIO_MASTER_ENABLE clear since the disable.
    master_idle_seen: bool,
    /// A reset happened and EECD.AUTO_RD has not been read set since.
    awaiting_auto_rd: bool,
    auto_rd_at: Option<u64>,
    auto_rd: bool,
    cfg_done_at: Option<u64>,
    cfg_done: bool,
    /// EEMNGCTL was read with this port's CFG_DONE set since the last
    /// reset (CTRL.RST or CTRL.PHY_RST).
    cfg_done_seen: bool,
    swsm: u32,
    sw_fw_sync: u32,
    extcnf: u32,
    fw_phy: Fw,
    fw_nvm: Fw,
    fw_waits: u32,
    mdic: u32,
    mdic_ready_at: u64,
    eerd: u32,
    eerd_done_at: u64,
    phy: Phy,
    resets: u32,
    violations: Vec<Violation>,
}

/// The model; share it as `Arc<StrictModel>` with [`crate::mac::Mac::over`].
pub struct StrictModel {
    st: Mutex<State>,
}

impl StrictModel {
    pub fn new(cfg: ModelConfig) -> Arc<StrictModel> {
        let phy = Phy {
            regs: Phy::defaults(cfg.flavour, cfg.phy_powered_down),
            reset_clear_at: None,
            an_done_at: None,
            link: None,
        };
        let (swsm, sw_fw_sync) = match (cfg.stale_locks, cfg.flavour) {
            (false, _) => (0, 0),
            (true, Flavour::I82576 { lan_id }) => {
                (SWSM_SMBI | SWSM_SWESMBI, SWFW_EEP_SM | phy_mask(lan_id))
            }
            (true, Flavour::I82574) => (SWSM_SMBI, 0),
        };
        let mut st = State {
            cfg,
            now: 0,
            regs: HashMap::new(),
            ctrl: CTRL_FD | CTRL_SLU,
            rst_clear_at: None,
            master_idle_at: None,
            master_idle_seen: false,
            awaiting_auto_rd: false,
            auto_rd_at: None,
            auto_rd: true,
            cfg_done_at: None,
            cfg_done: true,
            cfg_done_seen: true,
            swsm,
            sw_fw_sync,
            extcnf: 0,
            fw_phy: Fw::default(),
            fw_nvm: Fw::default(),
            fw_waits: 0,
            mdic: 0,
            mdic_ready_at: 0,
            eerd: 0,
            eerd_done_at: 0,
            phy,
            resets: 0,
            violations: Vec::new(),
        };
        // As the device is found: the NVM loaded at power-up.
        st.load_rar0();
        Arc::new(StrictModel { st: Mutex::new(st) })
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every rule broken so far, oldest first.
    pub fn violations(&self) -> Vec<Violation> {
        self.st().violations.clone()
    }
    /// PHY register `reg` as the PHY holds it (no MDIC, no clock tick).
    pub fn phy_reg(&self, reg: u32) -> u16 {
        self.st().phy.regs[reg as usize & 0x1F]
    }
    /// RAL0/RAH0 as an address and RAH0.AV.
    pub fn rar0(&self) -> ([u8; 6], bool) {
        let st = self.st();
        let lo = st.reg(ral(0)).to_le_bytes();
        let hi = st.reg(rah(0));
        let h = hi.to_le_bytes();
        ([lo[0], lo[1], lo[2], lo[3], h[0], h[1]], hi & RAH_AV != 0)
    }
    /// How often software found a semaphore held by the firmware.
    pub fn firmware_waits(&self) -> u32 {
        self.st().fw_waits
    }
    /// Whether the firmware holds the PHY (82574: MDIO) semaphore now.
    pub fn firmware_holds_phy(&self) -> bool {
        self.st().fw_phy.held.is_some()
    }
    /// The semaphore bits software holds now: SWSM.SMBI/SWESMBI and the
    /// software half of SW_FW_SYNC (82576), or SWSM.SMBI and
    /// EXTCNF_CTRL.MDIO_SW_OWNERSHIP (82574); 0 when it let go of all.
    pub fn software_locks(&self) -> u32 {
        let st = self.st();
        match st.cfg.flavour {
            Flavour::I82576 { .. } => {
                (st.swsm & (SWSM_SMBI | SWSM_SWESMBI)) | ((st.sw_fw_sync & 0xFFFF) << 8)
            }
            Flavour::I82574 => (st.swsm & SWSM_SMBI) | (st.extcnf & EXTCNF_CTRL_MDIO_SW_OWNERSHIP),
        }
    }
    /// The NVM image's words 0x00..=0x3F summed (wrapping).
    pub fn nvm_sum(&self) -> u16 {
        let st = self.st();
        st.cfg.nvm[..=NVM_CHECKSUM_WORD]
            .iter()
            .fold(0u16, |a, w| a.wrapping_add(*w))
    }
    /// CTRL.RST writes seen.
    pub fn resets(&self) -> u32 {
        self.st().resets
    }
    /// Whether the PHY has link (regardless of CTRL.SLU).
    pub fn phy_link(&self) -> bool {
        self.st().phy.link.is_some()
    }
}

fn phy_mask(lan_id: u8) -> u32 {
    match lan_id {
        0 => SWFW_PHY0_SM,
        1 => SWFW_PHY1_SM,
        2 => SWFW_PHY2_SM,
        _ => SWFW_PHY3_SM,
    }
}

impl State {
    fn reg(&self, r: usize) -> u32 {
        self.regs.get(&r).copied().unwrap_or(0)
    }

    fn is_82576(&self) -> bool {
        matches!(self.cfg.flavour, Flavour::I82576 { .. })
    }

    fn load_rar0(&mut self) {
        let m = self.cfg.port_address();
        self.regs
            .insert(ral(0), u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        self.regs
            .insert(rah(0), u32::from(u16::from_le_bytes([m[4], m[5]])) | RAH_AV);
    }

    fn push(&mut self, v: Violation) {
        self.violations.push(v);
    }

    /// One tick: whatever the device finishes now.
    fn advance(&mut self) {
        self.now += 1;
        let now = self.now;
        if self.rst_clear_at.is_some_and(|t| now >= t) {
            self.rst_clear_at = None;
            self.ctrl &= !CTRL_RST;
            self.auto_rd_at = Some(now + AUTO_RD_TICKS);
            self.fw_phy.wants = self.cfg.fw_phy;
            self.fw_nvm.wants = if self.is_82576() {
                self.cfg.fw_nvm
            } else {
                None
            };
        }
        if self.auto_rd_at.is_some_and(|t| now >= t) {
            self.auto_rd_at = None;
            self.auto_rd = true;
            self.load_rar0();
            self.cfg_done_at = Some(now + CFG_DONE_TICKS);
        }
        if self.cfg_done_at.is_some_and(|t| now >= t) {
            self.cfg_done_at = None;
            self.cfg_done = true;
        }
        if self.phy.reset_clear_at.is_some_and(|t| now >= t) {
            self.phy.reset_clear_at = None;
            self.phy.start_autoneg(now);
        }
        if self.phy.an_done_at.is_some_and(|t| now >= t) {
            self.phy.an_done_at = None;
            self.phy.link = self.resolve_autoneg();
        }
        self.firmware_takes();
    }

    /// The best mode both sides advertise.
    fn resolve_autoneg(&self) -> Option<(u32, bool)> {
        let adv = self.phy.regs[MII_ADVERTISE as usize];
        let c1000 = self.phy.regs[MII_CTRL1000 as usize];
        let lp = self.cfg.partner;
        if c1000 & ADVERTISE_1000FULL != 0 && self.cfg.partner_1000full {
            return Some((1000, true));
        }
        [
            (ADVERTISE_100FULL, 100, true),
            (ADVERTISE_100HALF, 100, false),
            (ADVERTISE_10FULL, 10, true),
            (ADVERTISE_10HALF, 10, false),
        ]
        .into_iter()
        .find(|(bit, _, _)| adv & lp & bit != 0)
        .map(|(_, s, fd)| (s, fd))
    }

    fn firmware_takes(&mut self) {
        match self.cfg.flavour {
            Flavour::I82576 { lan_id } => {
                let free = self.swsm & SWSM_SWESMBI == 0;
                for (mask, fw) in [
                    (phy_mask(lan_id), &mut self.fw_phy),
                    (SWFW_EEP_SM, &mut self.fw_nvm),
                ] {
                    if let Some(hold) = fw.wants
                        && free
                        && self.sw_fw_sync & mask == 0
                    {
                        fw.wants = None;
                        fw.held = Some(match hold {
                            FwHold::Attempts(n) => Some(n),
                            FwHold::Forever => None,
                        });
                        self.sw_fw_sync |= mask << 16;
                    }
                }
            }
            Flavour::I82574 => {
                if let Some(hold) = self.fw_phy.wants
                    && self.extcnf & EXTCNF_CTRL_MDIO_SW_OWNERSHIP == 0
                {
                    self.fw_phy.wants = None;
                    self.fw_phy.held = Some(match hold {
                        FwHold::Attempts(n) => Some(n),
                        FwHold::Forever => None,
                    });
                }
            }
        }
    }

    /// Software found the firmware holding: count down every hold.
    fn firmware_waited(&mut self) {
        self.fw_waits += 1;
        let lan_id = self.cfg.lan_id();
        for (mask, fw) in [
            (phy_mask(lan_id), &mut self.fw_phy),
            (SWFW_EEP_SM, &mut self.fw_nvm),
        ] {
            if let Some(Some(left)) = fw.held.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    fw.held = None;
                    self.sw_fw_sync &= !(mask << 16);
                }
            }
        }
    }

    fn gio_master_enabled(&self) -> bool {
        self.master_idle_at.is_none_or(|t| self.now < t)
    }

    fn status(&self) -> u32 {
        let mut s = u32::from(self.cfg.lan_id()) << STATUS_FUNC_SHIFT;
        if self.gio_master_enabled() {
            s |= STATUS_GIO_MASTER_ENABLE;
        }
        let bmcr = self.phy.regs[MII_BMCR as usize];
        if let Some((speed, fd)) = self.phy.link
            && self.ctrl & (CTRL_SLU | CTRL_PHY_RST) == CTRL_SLU
            && bmcr & (BMCR_PDOWN | BMCR_ISOLATE) == 0
        {
            s |= STATUS_LU;
            if fd {
                s |= STATUS_FD;
            }
            s |= match speed {
                10 => 0,
                100 => 1,
                _ => 2,
            } << STATUS_SPEED_SHIFT;
        }
        s
    }

    /// Whether an access to `reg` may precede EECD.AUTO_RD.
    fn allowed_before_auto_rd(&self, reg: usize) -> bool {
        matches!(reg, CTRL | STATUS | EECD) || (!self.is_82576() && reg == EXTCNF_CTRL)
    }

    fn check_order(&mut self, reg: usize) {
        if self.awaiting_auto_rd && !self.allowed_before_auto_rd(reg) {
            self.push(Violation::AccessBeforeAutoRead { reg });
        }
    }

    /// Software holds the semaphore guarding `phy` (else the NVM)? Records
    /// a violation if not, or if the firmware holds it.
    fn check_guard(&mut self, access: Access, phy: bool) {
        let (sw, fw) = match self.cfg.flavour {
            Flavour::I82576 { lan_id } => {
                let mask = if phy { phy_mask(lan_id) } else { SWFW_EEP_SM };
                (
                    self.sw_fw_sync & mask != 0,
                    self.sw_fw_sync & (mask << 16) != 0,
                )
            }
            Flavour::I82574 => (
                self.extcnf & EXTCNF_CTRL_MDIO_SW_OWNERSHIP != 0,
                self.fw_phy.held.is_some(),
            ),
        };
        if !sw || fw {
            self.push(Violation::Unguarded {
                access,
                firmware_held: fw,
            });
        }
    }

    fn read(&mut self, reg: usize) -> u32 {
        self.advance();
        self.check_order(reg);
        match reg {
            CTRL => self.ctrl,
            STATUS => {
                let s = self.status();
                if s & STATUS_GIO_MASTER_ENABLE == 0 {
                    self.master_idle_seen = true;
                }
                s
            }
            EECD => {
                if self.auto_rd {
                    self.awaiting_auto_rd = false;
                    EECD_PRES | EECD_AUTO_RD
                } else {
                    EECD_PRES
                }
            }
            EEMNGCTL => {
                if self.cfg_done {
                    self.cfg_done_seen = true;
                    EEMNGCTL_CFG_DONE_PORT_0 << self.cfg.lan_id()
                } else {
                    0
                }
            }
            EERD => {
                if self.now >= self.eerd_done_at {
                    self.eerd
                } else {
                    self.eerd & !(EERD_DONE | (0xFFFF << EERD_DATA_SHIFT))
                }
            }
            MDIC => {
                if self.now >= self.mdic_ready_at {
                    self.mdic
                } else {
                    self.mdic & !(MDIC_READY | MDIC_ERROR | MDIC_DATA_MASK)
                }
            }
            SWSM if self.is_82576() => {
                let v = self.swsm;
                self.swsm |= SWSM_SMBI;
                v
            }
            SWSM => self.swsm,
            SW_FW_SYNC if self.is_82576() => {
                let v = self.sw_fw_sync;
                if self.swsm & SWSM_SWESMBI != 0 && v & 0xFFFF_0000 != 0 {
                    self.firmware_waited();
                }
                v
            }
            EXTCNF_CTRL => self.extcnf,
            // Clear on read (ICR and the statistics) or plain.
            ICR => 0,
            _ => self.reg(reg),
        }
    }

    fn write(&mut self, reg: usize, v: u32) {
        self.advance();
        self.check_order(reg);
        match reg {
            CTRL => self.write_ctrl(v),
            STATUS | EECD | EEMNGCTL => {}
            EERD => {
                if v & EERD_START != 0 {
                    let word = (v >> EERD_ADDR_SHIFT) & 0x3FFF;
                    self.check_guard(Access::Eerd { word }, false);
                    let data = self.cfg.nvm.get(word as usize).copied().unwrap_or(0xFFFF);
                    self.eerd = (word << EERD_ADDR_SHIFT)
                        | EERD_DONE
                        | (u32::from(data) << EERD_DATA_SHIFT);
                    self.eerd_done_at = self.now + EERD_TICKS;
                }
            }
            MDIC => self.write_mdic(v),
            SWSM if self.is_82576() => {
                // Firmware never sits in SWESMBI in this model: its own
                // SW_FW_SYNC changes are instantaneous.
                self.swsm = v & (SWSM_SMBI | SWSM_SWESMBI);
            }
            SWSM => self.swsm = v,
            SW_FW_SYNC if self.is_82576() => {
                if self.swsm & SWSM_SWESMBI == 0 {
                    self.push(Violation::SwFwSyncWithoutSwesmbi);
                }
                self.sw_fw_sync = (self.sw_fw_sync & 0xFFFF_0000) | (v & 0xFFFF);
            }
            EXTCNF_CTRL => {
                let want = v & EXTCNF_CTRL_MDIO_SW_OWNERSHIP != 0;
                let mut nv = v & !EXTCNF_CTRL_MDIO_SW_OWNERSHIP;
                if want && !self.is_82576() {
                    if self.fw_phy.held.is_some() {
                        self.fw_waits += 1;
                        if let Some(Some(left)) = self.fw_phy.held.as_mut() {
                            *left = left.saturating_sub(1);
                            if *left == 0 {
                                self.fw_phy.held = None;
                            }
                        }
                    } else {
                        nv |= EXTCNF_CTRL_MDIO_SW_OWNERSHIP;
                    }
                } else if want {
                    nv |= EXTCNF_CTRL_MDIO_SW_OWNERSHIP;
                }
                self.extcnf = nv;
            }
            _ => {
                self.regs.insert(reg, v);
            }
        }
    }

    fn write_ctrl(&mut self, v: u32) {
        let old = self.ctrl;
        if v & CTRL_RST != 0 {
            self.resets += 1;
            if self.gio_master_enabled() || !self.master_idle_seen {
                self.push(Violation::ResetWithMasterEnabled);
            }
            if !self.is_82576() && self.extcnf & EXTCNF_CTRL_MDIO_SW_OWNERSHIP == 0 {
                self.push(Violation::ResetWithoutMdioOwnership);
            }
            // MAC registers to their defaults; the PHY keeps its state.
            self.regs.clear();
            self.ctrl = CTRL_FD | CTRL_RST;
            self.rst_clear_at = Some(self.now + RST_TICKS);
            self.master_idle_at = None;
            self.master_idle_seen = false;
            self.awaiting_auto_rd = true;
            self.auto_rd = false;
            self.auto_rd_at = None;
            self.cfg_done = false;
            self.cfg_done_seen = false;
            self.cfg_done_at = None;
            self.mdic = 0;
            self.eerd = 0;
            return;
        }
        if self.rst_clear_at.is_some() {
            // Written mid-reset: lost.
            return;
        }
        self.ctrl = v;
        if v & CTRL_GIO_MASTER_DISABLE != 0 {
            if old & CTRL_GIO_MASTER_DISABLE == 0 {
                self.master_idle_at = Some(self.now + MASTER_IDLE_TICKS);
                self.master_idle_seen = false;
            }
        } else {
            self.master_idle_at = None;
            self.master_idle_seen = false;
        }
        if old & CTRL_PHY_RST != 0 && v & CTRL_PHY_RST == 0 {
            // PHY hardware reset done: defaults, the power-down kept, the
            // PHY configuration reloaded (CFG_DONE again).
            let pd = !self.phy.powered();
            self.phy.regs = Phy::defaults(self.cfg.flavour, pd);
            self.phy.reset_clear_at = None;
            self.phy.start_autoneg(self.now);
            self.cfg_done = false;
            self.cfg_done_seen = false;
            self.cfg_done_at = Some(self.now + CFG_DONE_TICKS);
        } else if v & CTRL_PHY_RST != 0 {
            self.phy.link = None;
            self.phy.an_done_at = None;
        }
    }

    fn write_mdic(&mut self, v: u32) {
        if self.now < self.mdic_ready_at {
            self.push(Violation::MdicBusy);
        }
        let reg = (v >> MDIC_REGADD_SHIFT) & 0x1F;
        let phy_addr = (v >> MDIC_PHYADD_SHIFT) & 0x1F;
        let op = v & (3 << 26);
        self.check_guard(Access::Mdic { reg }, true);
        if self.is_82576() && !self.cfg_done_seen {
            self.push(Violation::PhyAccessBeforeCfgDone);
        }
        self.mdic_ready_at = self.now + MDIC_TICKS;
        let cmd = v & !(MDIC_READY | MDIC_ERROR);
        if phy_addr != PHY_ADDR || self.ctrl & CTRL_PHY_RST != 0 {
            self.mdic = cmd | MDIC_READY | MDIC_ERROR;
            return;
        }
        let data = if op == MDIC_OP_READ {
            self.phy_read(reg)
        } else if op == MDIC_OP_WRITE {
            self.phy_write(reg, (v & MDIC_DATA_MASK) as u16);
            (v & MDIC_DATA_MASK) as u16
        } else {
            self.mdic = cmd | MDIC_READY | MDIC_ERROR;
            return;
        };
        self.mdic = (cmd & !MDIC_DATA_MASK) | MDIC_READY | u32::from(data);
    }

    fn phy_read(&self, reg: u32) -> u16 {
        let p = &self.phy;
        let r = p.regs[reg as usize];
        match reg {
            MII_BMCR if p.reset_clear_at.is_some() => r | BMCR_RESET,
            MII_BMSR => {
                if p.link.is_some() {
                    r | BMSR_LSTATUS | BMSR_ANEGCOMPLETE
                } else {
                    r
                }
            }
            MII_LPA if p.link.is_some() => self.cfg.partner,
            MII_LPA => 0,
            // MII_STAT1000: the partner's 1000BASE-T full duplex.
            0x0A if p.link.is_some() && self.cfg.partner_1000full => 1 << 11,
            0x0A => 0,
            _ => r,
        }
    }

    fn phy_write(&mut self, reg: u32, v: u16) {
        let now = self.now;
        match reg {
            MII_BMCR => {
                let was_down = !self.phy.powered();
                let bmcr = v & !(BMCR_RESET | BMCR_ANRESTART);
                self.phy.regs[MII_BMCR as usize] = bmcr;
                if bmcr & BMCR_PDOWN != 0 {
                    self.phy.link = None;
                    self.phy.an_done_at = None;
                } else if v & BMCR_RESET != 0 {
                    self.phy.link = None;
                    self.phy.an_done_at = None;
                    self.phy.reset_clear_at = Some(now + PHY_RESET_TICKS);
                } else if self.phy.reset_clear_at.is_none() && (v & BMCR_ANRESTART != 0 || was_down)
                {
                    self.phy.start_autoneg(now);
                }
            }
            // Read-only: status, identifiers, partner ability, 1000 status.
            MII_BMSR | MII_PHYSID1 | MII_PHYSID2 | MII_LPA | 0x0A => {}
            // Everything else (the advertisement, the 82576's IGP port
            // registers, the 82574's PHY specific control, the page
            // selects) is plain storage.
            r => self.phy.regs[r as usize & 0x1F] = v,
        }
    }
}

impl Regs for StrictModel {
    fn read32(&self, offset: usize) -> u32 {
        self.st().read(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.st().write(offset, value)
    }
}
