//! QEMU register traces of the emulated igb / e1000e and their comparison
//! with Linux's own drivers (issue 10, deliverable 3: the golden trace test).
//!
//! Lines come from QEMU's log trace backend with `-msg timestamp=on`:
//! `PID@SECS.MICROS:e1000e_core_write Write to register 0xOFF, 4 byte(s), value: 0xV`,
//! `...:e1000e_core_read Read from register ...`,
//! `...:e1000e_core_mdic_write MDIC WRITE: PHY[PAGE][REG] = 0xMDIC` (the
//! whole MDIC value; data in bits 15:0) and
//! `...:igb_core_mdic_write MDIC WRITE: PHY[REG] = 0xDATA` (and the reads).
//! igb's register accesses use the e1000e_core_* events too.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

/// One traced access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Write {
        off: u32,
        val: u32,
    },
    Read {
        off: u32,
        val: u32,
    },
    /// PHY register write through MDIC: (page, register), 16-bit data.
    PhyWrite {
        page: u32,
        reg: u32,
        val: u16,
    },
    PhyRead {
        page: u32,
        reg: u32,
        val: u16,
    },
}

/// An access with its host wall-clock time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub micros: u64,
    pub access: Access,
}

fn hex(s: &str) -> Option<u32> {
    let s = s.trim().trim_end_matches(',');
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// Parses one trace line; `None` for lines of other events or malformed ones.
pub fn parse_line(line: &str) -> Option<Event> {
    let (head, rest) = line.split_once(':')?;
    let (_, ts) = head.split_once('@')?;
    let (secs, us) = ts.split_once('.')?;
    let micros = secs.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?;
    let (name, text) = rest.split_once(' ')?;
    let access = match name {
        "e1000e_core_write" | "e1000e_core_read" => {
            let off = hex(text.split("register ").nth(1)?.split(',').next()?)?;
            let val = hex(text.split("value: ").nth(1)?)?;
            if name.ends_with("write") {
                Access::Write { off, val }
            } else {
                Access::Read { off, val }
            }
        }
        "e1000e_core_mdic_write"
        | "e1000e_core_mdic_read"
        | "igb_core_mdic_write"
        | "igb_core_mdic_read" => {
            let (idx, v) = text.split_once("PHY[")?.1.split_once(" = ")?;
            let nums: Vec<u32> = idx
                .split(['[', ']'])
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().ok())
                .collect::<Option<_>>()?;
            let (page, reg) = match nums.as_slice() {
                [reg] => (0, *reg),
                [page, reg] => (*page, *reg),
                _ => return None,
            };
            let val = (hex(v)? & 0xffff) as u16;
            if name.ends_with("write") {
                Access::PhyWrite { page, reg, val }
            } else {
                Access::PhyRead { page, reg, val }
            }
        }
        _ => return None,
    };
    Some(Event { micros, access })
}

/// Every parsable event of a trace, in order.
pub fn parse(text: &str) -> Vec<Event> {
    text.lines().filter_map(parse_line).collect()
}

/// Microseconds since the epoch of a host time (0 before it).
pub fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The events in `[from, to)`.
pub fn window(events: &[Event], from: SystemTime, to: SystemTime) -> Vec<Event> {
    let (a, b) = (micros(from), micros(to));
    events
        .iter()
        .filter(|e| e.micros >= a && e.micros < b)
        .copied()
        .collect()
}

/// A register (offset range, name) of the MAC block, for messages.
const NAMES: &[(u32, u32, &str)] = &[
    (0x0000, 4, "CTRL"),
    (0x0008, 4, "STATUS"),
    (0x0010, 4, "EECD"),
    (0x0014, 4, "EERD"),
    (0x0018, 4, "CTRL_EXT"),
    (0x0020, 4, "MDIC"),
    (0x0028, 4, "FCAL"),
    (0x002c, 4, "FCAH"),
    (0x0030, 4, "FCT"),
    (0x0038, 4, "VET"),
    (0x00c0, 4, "ICR"),
    (0x00c4, 4, "ITR"),
    (0x00c8, 4, "ICS"),
    (0x00d0, 4, "IMS"),
    (0x00d8, 4, "IMC"),
    (0x00e0, 4, "IAM"),
    (0x00e4, 4, "IVAR"),
    (0x0100, 4, "RCTL"),
    (0x0170, 4, "FCTTV"),
    (0x0178, 4, "TXCW"),
    (0x0400, 4, "TCTL"),
    (0x0404, 4, "TCTL_EXT"),
    (0x0410, 4, "TIPG"),
    (0x0458, 4, "AIT"),
    (0x0e00, 4, "LEDCTL"),
    (0x0f00, 4, "EXTCNF_CTRL"),
    (0x1000, 4, "PBA"),
    (0x1008, 4, "PBS"),
    (0x1010, 4, "EEMNGCTL"),
    (0x1514, 4, "GPIE"),
    (0x1520, 4, "EICS"),
    (0x1524, 4, "EIMS"),
    (0x1528, 4, "EIMC"),
    (0x152c, 4, "EIAC"),
    (0x1530, 4, "EIAM"),
    (0x1580, 4, "EICR"),
    (0x1680, 0x80, "EITR"),
    (0x1700, 0x40, "IVAR"),
    (0x1740, 4, "IVAR_MISC"),
    (0x2160, 4, "FCRTL"),
    (0x2168, 4, "FCRTH"),
    (0x2404, 4, "RXPBS"),
    (0x2800, 4, "RDBAL0"),
    (0x2804, 4, "RDBAH0"),
    (0x2808, 4, "RDLEN0"),
    (0x280c, 4, "SRRCTL0"),
    (0x2810, 4, "RDH0"),
    (0x2818, 4, "RDT0"),
    (0x2820, 4, "RDTR"),
    (0x2828, 4, "RXDCTL0"),
    (0x282c, 4, "RADV"),
    (0x2900, 0x100, "RX queue 1"),
    (0x2a00, 0x200, "RX queues 2-3"),
    (0x3000, 4, "TXPBS"),
    (0x3500, 4, "DTXSWC"),
    (0x3590, 4, "DTXCTL"),
    (0x3800, 4, "TDBAL0"),
    (0x3804, 4, "TDBAH0"),
    (0x3808, 4, "TDLEN0"),
    (0x3810, 4, "TDH0"),
    (0x3818, 4, "TDT0"),
    (0x3820, 4, "TIDV"),
    (0x3828, 4, "TXDCTL0"),
    (0x382c, 4, "TADV"),
    (0x3840, 4, "TARC0"),
    (0x3900, 0x100, "TX queue 1"),
    (0x3a00, 0x200, "TX queues 2-3"),
    (0x5000, 4, "RXCSUM"),
    (0x5008, 4, "RFCTL"),
    (0x5200, 0x200, "MTA"),
    (0x5400, 0x400, "RAL/RAH"),
    (0x5600, 0x200, "VFTA"),
    (0x5800, 4, "WUC"),
    (0x5808, 4, "WUFC"),
    (0x5818, 4, "MRQC"),
    (0x581c, 4, "VT_CTL"),
    (0x5820, 4, "MANC"),
    (0x5ad0, 0x20, "VMOLR"),
    (0x5af0, 4, "RPLOLR"),
    (0x5838, 4, "IPAV"),
    (0x5b00, 4, "GCR"),
    (0x5b50, 4, "SWSM"),
    (0x5b5c, 4, "SW_FW_SYNC"),
    (0x5b64, 4, "GCR2"),
    (0x5c00, 0x80, "RETA"),
    (0x5c80, 0x28, "RSSRK"),
    (0x5cb0, 0x20, "ETQF"),
    (0x5f50, 4, "TSYNCRXCFG"),
    (0xa000, 0x200, "UTA"),
    (0xb600, 0x40, "IEEE 1588 (SYSTIM/TIMINCA/TSYNC*)"),
    // 82576: queue n's registers at 0xC000 / 0xE000 + 0x40 * n (datasheet 8.10, 8.12).
    (0xc000, 4, "RDBAL0"),
    (0xc004, 4, "RDBAH0"),
    (0xc008, 4, "RDLEN0"),
    (0xc00c, 4, "SRRCTL0"),
    (0xc010, 4, "RDH0"),
    (0xc018, 4, "RDT0"),
    (0xc028, 4, "RXDCTL0"),
    (0xc040, 0x3c0, "RX queues 1-15"),
    (0xe000, 4, "TDBAL0"),
    (0xe004, 4, "TDBAH0"),
    (0xe008, 4, "TDLEN0"),
    (0xe010, 4, "TDH0"),
    (0xe018, 4, "TDT0"),
    (0xe028, 4, "TXDCTL0"),
    (0xe040, 0x3c0, "TX queues 1-15"),
];

/// The register name of `off` (`REG+0xN` inside an array), or its offset.
pub fn reg_name(off: u32) -> String {
    for (base, len, name) in NAMES {
        if off >= *base && off < base + len {
            return if *len == 4 {
                (*name).to_string()
            } else {
                format!("{name}[{:#x}]", off - base)
            };
        }
    }
    format!("reg {off:#06x}")
}

/// A difference Linux makes that we do not copy, by register range, with why.
pub struct Deliberate {
    pub from: u32,
    pub to: u32,
    pub why: &'static str,
}

/// Differences that are deliberate. Each line: the registers and the reason.
pub const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        from: 0x00c4,
        to: 0x00e8,
        why: "interrupts (ITR/ICS/IMS/IMC/IAM/IVAR): Linux uses them, a poll-mode driver masks all and never enables any",
    },
    Deliberate {
        from: 0x00e8,
        to: 0x00f8,
        why: "82574 EITR(0-3): per-vector interrupt throttling, no interrupts in poll mode",
    },
    Deliberate {
        from: 0x1514,
        to: 0x1534,
        why: "MSI-X interrupt setup (GPIE/EICS/EIMS/EIMC/EIAC/EIAM): poll mode uses no interrupts",
    },
    Deliberate {
        from: 0x1580,
        to: 0x1584,
        why: "EICR: interrupt causes, poll mode has none",
    },
    Deliberate {
        from: 0x1680,
        to: 0x1744,
        why: "EITR/IVAR/IVAR_MISC: interrupt moderation and vector mapping, no interrupts in poll mode",
    },
    Deliberate {
        from: 0x2820,
        to: 0x2824,
        why: "RDTR: RX interrupt delay, no interrupts in poll mode",
    },
    Deliberate {
        from: 0x282c,
        to: 0x2830,
        why: "RADV: RX absolute interrupt delay, no interrupts in poll mode",
    },
    Deliberate {
        from: 0x3820,
        to: 0x3824,
        why: "TIDV: TX interrupt delay, no interrupts in poll mode",
    },
    Deliberate {
        from: 0x382c,
        to: 0x3830,
        why: "TADV: TX absolute interrupt delay, no interrupts in poll mode",
    },
    Deliberate {
        from: 0x2900,
        to: 0x2c00,
        why: "RX queues 1-3: Linux opens one queue per CPU, the test opens one queue",
    },
    Deliberate {
        from: 0x3900,
        to: 0x3c00,
        why: "TX queues 1-3 (beyond TXDCTL(1) erratum, issue 10 item 4): one TX queue opened",
    },
    Deliberate {
        from: 0xc040,
        to: 0xc400,
        why: "82576 RX queues 1-15: one queue opened",
    },
    Deliberate {
        from: 0xe040,
        to: 0xe400,
        why: "82576 TX queues 1-15: one queue opened",
    },
    Deliberate {
        from: 0xc010,
        to: 0xc014,
        why: "82576 RDH0: position only, as RDH0",
    },
    Deliberate {
        from: 0xe010,
        to: 0xe014,
        why: "82576 TDH0: position only, as RDH0",
    },
    Deliberate {
        from: 0x5c00,
        to: 0x5ca8,
        why: "RETA/RSSRK: RSS set up only with more than one RX queue",
    },
    Deliberate {
        from: 0x5818,
        to: 0x581c,
        why: "MRQC: RSS set up only with more than one RX queue",
    },
    Deliberate {
        from: 0xb600,
        to: 0xb640,
        why: "IEEE 1588 timestamping (TIMINCA/TSYNCTXCTL/TSYNCRXCTL/RXMTRL/RXUDP): no PTP; reset leaves timestamping off, Linux writes the off values",
    },
    Deliberate {
        from: 0x5cb0,
        to: 0x5cd0,
        why: "82576 ETQF: Linux clears its 1588 EtherType filter (ETQF(3)) with PTP; no PTP, reset leaves it clear",
    },
    Deliberate {
        from: 0x5f50,
        to: 0x5f54,
        why: "82576 TSYNCRXCFG: IEEE 1588 receive timestamp config, no PTP",
    },
    Deliberate {
        from: 0x5ad0,
        to: 0x5af0,
        why: "82576 VMOLR: per-pool offloads, used only in VMDq/SR-IOV mode, which this driver never enables (RCTL/RLPML/CTRL.VME apply)",
    },
    Deliberate {
        from: 0x2810,
        to: 0x2814,
        why: "RDH0: position only; we set up the ring after reset, where RDH is 0",
    },
    Deliberate {
        from: 0x3810,
        to: 0x3814,
        why: "TDH0: position only; as RDH0",
    },
];

fn deliberate(off: u32) -> Option<&'static Deliberate> {
    DELIBERATE.iter().find(|d| off >= d.from && off < d.to)
}

/// A step Linux takes that ours does not, or a constraint ours breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable key (`write CTRL_EXT`, `phy write 0/16`, `order ...`, `value RCTL`).
    pub key: String,
    pub detail: String,
}

const CTRL: u32 = 0x0000;
const CTRL_GIO_MASTER_DISABLE: u32 = 1 << 2;
const CTRL_RST: u32 = 1 << 26;
const RCTL: u32 = 0x0100;
const RCTL_EN: u32 = 1 << 1;
const RDLEN0: u32 = 0x2808;
const RXDCTL0: u32 = 0x2828;
const IGB_RDLEN0: u32 = 0xc008;
const IGB_RXDCTL0: u32 = 0xc028;
const RXDCTL_ENABLE: u32 = 1 << 25;
const BMCR: u32 = 0;
const BMCR_PDOWN: u16 = 1 << 11;
const BMCR_ANRESTART: u16 = 1 << 9;

/// Final value compared under a mask: (register, mask, bits' meaning).
const VALUE_MASKS: &[(u32, u32, &str)] = &[
    (
        CTRL,
        (1 << 6) | (1 << 11) | (1 << 12),
        "CTRL SLU/FRCSPD/FRCDPX",
    ),
    (RCTL, RCTL_EN | (1 << 15) | (1 << 26), "RCTL EN/BAM/SECRC"),
    (0x0400, (1 << 1) | (1 << 3), "TCTL EN/PSP"),
];

/// An ordering Linux keeps: the first event matching `first` comes before
/// (a) the first event matching `then` when `then_first`, else (b) the last.
struct Order {
    name: &'static str,
    first: fn(&Access) -> bool,
    then: fn(&Access) -> bool,
    then_first: bool,
    last_first: bool,
}

const ORDERS: &[Order] = &[
    Order {
        name: "order: GIO master disable before reset",
        first: |a| matches!(a, Access::Write { off: CTRL, val } if val & CTRL_GIO_MASTER_DISABLE != 0),
        then: |a| matches!(a, Access::Write { off: CTRL, val } if val & CTRL_RST != 0),
        then_first: true,
        last_first: false,
    },
    Order {
        name: "order: RX enable after ring set-up",
        first: |a| {
            matches!(
                a,
                Access::Write {
                    off: RDLEN0 | IGB_RDLEN0,
                    ..
                }
            )
        },
        then: |a| {
            matches!(a, Access::Write { off: RCTL, val } if val & RCTL_EN != 0)
                || matches!(a, Access::Write { off: RXDCTL0 | IGB_RXDCTL0, val } if val & RXDCTL_ENABLE != 0)
        },
        then_first: false,
        last_first: true,
    },
    Order {
        name: "order: PHY power-up before autoneg restart",
        first: |a| matches!(a, Access::PhyWrite { reg: BMCR, val, .. } if val & BMCR_PDOWN == 0 && val & BMCR_ANRESTART == 0),
        then: |a| matches!(a, Access::PhyWrite { reg: BMCR, val, .. } if val & BMCR_ANRESTART != 0),
        then_first: true,
        last_first: false,
    },
];

fn order_holds(ev: &[Event], o: &Order) -> Option<bool> {
    let pos = |f: fn(&Access) -> bool, last: bool| {
        let mut it = ev.iter().enumerate().filter(|(_, e)| f(&e.access));
        if last { it.next_back() } else { it.next() }.map(|(i, _)| i)
    };
    let a = pos(o.first, o.last_first);
    let b = pos(o.then, !o.then_first)?;
    Some(a.is_some_and(|a| a < b))
}

fn writes(ev: &[Event]) -> BTreeSet<u32> {
    ev.iter()
        .filter_map(|e| match e.access {
            Access::Write { off, .. } => Some(off),
            _ => None,
        })
        .collect()
}

fn phy_writes(ev: &[Event]) -> BTreeSet<(u32, u32)> {
    ev.iter()
        .filter_map(|e| match e.access {
            Access::PhyWrite { page, reg, .. } => Some((page, reg)),
            _ => None,
        })
        .collect()
}

fn last_write(ev: &[Event], reg: u32) -> Option<u32> {
    ev.iter().rev().find_map(|e| match e.access {
        Access::Write { off, val } if off == reg => Some(val),
        _ => None,
    })
}

fn last_phy(ev: &[Event], key: (u32, u32)) -> Option<u16> {
    ev.iter().rev().find_map(|e| match e.access {
        Access::PhyWrite { page, reg, val } if (page, reg) == key => Some(val),
        _ => None,
    })
}

/// One driver's trace: `up` from its start to link up (bring-up), `all`
/// to its end (teardown included).
pub struct Phases<'a> {
    pub up: &'a [Event],
    pub all: &'a [Event],
}

/// Compares our trace with Linux's: every register and PHY register Linux
/// writes (bring-up or teardown), we write (apart from [`DELIBERATE`]); the
/// values of [`VALUE_MASKS`] at link up agree under their masks; the
/// orderings Linux keeps in bring-up, we keep.
pub fn compare(l: &Phases, o: &Phases) -> Vec<Finding> {
    let (linux, ours) = (l.all, o.all);
    let mut out = Vec::new();
    let ours_w = writes(ours);
    for off in writes(linux) {
        if deliberate(off).is_some() || ours_w.contains(&off) {
            continue;
        }
        let name = reg_name(off);
        let val = last_write(linux, off).unwrap_or(0);
        out.push(Finding {
            key: format!("write {name}"),
            detail: format!(
                "Linux writes {name} ({off:#06x}), last value {val:#010x}; we never write it"
            ),
        });
    }
    let ours_p = phy_writes(ours);
    for key in phy_writes(linux) {
        if ours_p.contains(&key) {
            continue;
        }
        let val = last_phy(linux, key).unwrap_or(0);
        out.push(Finding {
            key: format!("phy write {}/{}", key.0, key.1),
            detail: format!(
                "Linux writes PHY page {} register {} (last value {val:#06x}); we never write it",
                key.0, key.1
            ),
        });
    }
    for (reg, mask, what) in VALUE_MASKS {
        if let (Some(l), Some(o)) = (last_write(l.up, *reg), last_write(o.up, *reg))
            && l & mask != o & mask
        {
            out.push(Finding {
                key: format!("value {}", reg_name(*reg)),
                detail: format!(
                    "{what} (mask {mask:#010x}): Linux's last write {l:#010x}, ours {o:#010x}"
                ),
            });
        }
    }
    for r in ORDERS {
        if order_holds(l.up, r) == Some(true) && order_holds(o.up, r) != Some(true) {
            out.push(Finding {
                key: r.name.to_string(),
                detail: format!("{}: Linux keeps it, our trace does not", r.name),
            });
        }
    }
    out
}

/// The orderings Linux's trace keeps (the test asserts the list is what it
/// expects, so a QEMU or Linux change that voids a rule is noticed).
pub fn linux_orders(linux: &[Event]) -> Vec<&'static str> {
    ORDERS
        .iter()
        .filter(|o| order_holds(linux, o) == Some(true))
        .map(|o| o.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "\
1@100.000001:e1000e_core_write Write to register 0x0, 4 byte(s), value: 0x140245
1@100.000002:e1000e_core_read Read from register 0x8, 4 byte(s), value: 0x283
1@100.000003:e1000e_core_write Write to register 0x0, 4 byte(s), value: 0x4140245
1@100.000004:e1000e_core_write Write to register 0x18, 4 byte(s), value: 0x10000000
1@100.000005:e1000e_core_write Write to register 0xd8, 4 byte(s), value: 0xffffffff
1@100.000006:e1000e_core_mdic_write MDIC WRITE: PHY[0][0] = 0x4201140
1@100.000007:e1000e_core_mdic_write MDIC WRITE: PHY[0][0] = 0x4201340
1@100.000008:e1000e_core_write Write to register 0x2808, 4 byte(s), value: 0x1000
1@100.000009:e1000e_core_write Write to register 0x100, 4 byte(s), value: 0x400800a
1@100.000010:igb_core_mdic_write MDIC WRITE: PHY[16] = 0x68
";

    fn cmp(l: &[Event], o: &[Event]) -> Vec<Finding> {
        compare(&Phases { up: l, all: l }, &Phases { up: o, all: o })
    }

    fn drop_line(text: &str, needle: &str) -> String {
        text.lines()
            .filter(|l| !l.contains(needle))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn parses_every_event_kind() {
        let ev = parse(LINUX);
        assert_eq!(ev.len(), 10);
        assert_eq!(ev[0].micros, 100_000_001);
        assert_eq!(
            ev[0].access,
            Access::Write {
                off: 0,
                val: 0x140245
            }
        );
        assert_eq!(ev[1].access, Access::Read { off: 8, val: 0x283 });
        assert_eq!(
            ev[5].access,
            Access::PhyWrite {
                page: 0,
                reg: 0,
                val: 0x1140
            }
        );
        assert_eq!(
            ev[9].access,
            Access::PhyWrite {
                page: 0,
                reg: 16,
                val: 0x68
            }
        );
        assert!(parse_line("garbage").is_none());
        assert!(parse_line("1@1.2:e1000e_core_write Write to register zz").is_none());
    }

    #[test]
    fn identical_traces_agree_and_interrupts_are_deliberate() {
        let l = parse(LINUX);
        assert_eq!(cmp(&l, &l), vec![]);
        // IMC (0xd8) is interrupt setup: leaving it out is no finding.
        let ours = parse(&drop_line(LINUX, "0xd8,"));
        assert_eq!(cmp(&l, &ours), vec![]);
        assert_eq!(linux_orders(&l).len(), 3);
    }

    #[test]
    fn dropping_the_gio_master_disable_fails_by_name() {
        let l = parse(LINUX);
        let ours = parse(&drop_line(LINUX, "value: 0x140245"));
        let f = cmp(&l, &ours);
        assert!(
            f.iter()
                .any(|f| f.key == "order: GIO master disable before reset"),
            "{f:?}"
        );
    }

    #[test]
    fn dropping_a_register_phy_write_or_power_up_fails_by_name() {
        let l = parse(LINUX);
        let f = cmp(&l, &parse(&drop_line(LINUX, "0x18,")));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key, "write CTRL_EXT");
        assert!(f[0].detail.contains("0x10000000"), "{}", f[0].detail);
        let f = cmp(&l, &parse(&drop_line(LINUX, "PHY[16]")));
        assert_eq!(f[0].key, "phy write 0/16", "{f:?}");
        let f = cmp(&l, &parse(&drop_line(LINUX, "0x4201140")));
        assert!(
            f.iter()
                .any(|f| f.key == "order: PHY power-up before autoneg restart"),
            "{f:?}"
        );
    }

    #[test]
    fn rx_enable_before_ring_and_wrong_value_fail() {
        let l = parse(LINUX);
        let swapped = LINUX
            .replace("100.000008:", "100.000099:")
            .lines()
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        let mut ours = parse(&swapped);
        ours.sort_by_key(|e| e.micros);
        let f = cmp(&l, &ours);
        assert!(
            f.iter()
                .any(|f| f.key == "order: RX enable after ring set-up"),
            "{f:?}"
        );
        let ours = parse(&LINUX.replace("0x400800a", "0x4000002"));
        let f = cmp(&l, &ours);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key, "value RCTL");
    }

    #[test]
    fn window_cuts_by_time() {
        let ev = parse(LINUX);
        let t = |us: u64| UNIX_EPOCH + std::time::Duration::from_micros(us);
        assert_eq!(window(&ev, t(100_000_002), t(100_000_004)).len(), 2);
    }
}
