//! testpmd's `flow` commands for the subset of DPDK's rte_flow syntax the
//! drivers' queue filters can do (pmd's [`pmd::flow`]):
//!
//! ```text
//! flow create PORT [group 0] [priority 0] ingress pattern ITEM / ... / end actions queue index Q / end
//! flow destroy PORT rule ID [rule ID ...]
//! flow list PORT
//! flow flush PORT
//! ```
//!
//! Items: `eth [type is T]`, `ipv4 [src is A] [dst is A]`, `ipv6`,
//! `udp|tcp|sctp [src is P] [dst is P]`, `end`. Output as DPDK testpmd
//! prints it: `Flow rule #N created`, `Flow rule #N destroyed`, the
//! `ID Group Prio Attr Rule` table, and refusals as
//! `port_flow_complain(): Caught PMD error type T (what): message: errno
//! text`.
//!
//! ```
//! use apps::testpmd::flow::{self, FlowCommand};
//! let words: Vec<&str> = "create 0 ingress pattern eth / ipv4 / udp dst is 5000 / end \
//!     actions queue index 1 / end"
//!     .split_whitespace()
//!     .collect();
//! let Ok(FlowCommand::Create { port, rule, queue, .. }) = flow::parse(&words) else {
//!     panic!("a valid rule")
//! };
//! assert_eq!((port, queue), (0, 1));
//! assert_eq!(rule.normalized(), pmd::FlowRule::udp_dst(5000).normalized());
//! ```

use std::net::Ipv4Addr;

use pmd::Port;
use pmd::flow::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, FlowError, FlowId, FlowRule, IpProto};

/// The attributes of `flow create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attr {
    pub group: u32,
    pub priority: u32,
    pub ingress: bool,
    pub egress: bool,
    pub transfer: bool,
}

/// One `flow` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowCommand {
    Create {
        port: usize,
        attr: Attr,
        rule: FlowRule,
        queue: u16,
    },
    Destroy {
        port: usize,
        rules: Vec<u32>,
    },
    List {
        port: usize,
    },
    Flush {
        port: usize,
    },
}

/// Help lines for the prompt's `help`.
pub const HELP: &str = "\
  flow create N ingress pattern eth [type is T] / ipv4 [src is A] [dst is A] / udp|tcp|sctp [src is P] [dst is P] / end actions queue index Q / end
                                     steer the matching frames of port N to RX queue Q
  flow destroy N rule ID [rule ID ...]
  flow list N                        the port's flow rules
  flow flush N                       remove every flow rule of the port";

fn number<T: TryFrom<u64>>(w: Option<&str>, what: &str) -> Result<T, String> {
    let w = w.ok_or_else(|| format!("missing {what}"))?;
    let v = match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => w.parse::<u64>(),
    }
    .map_err(|_| format!("{w:?} is not a number ({what})"))?;
    T::try_from(v).map_err(|_| format!("{w} is out of range for {what}"))
}

fn port_id(w: Option<&str>) -> Result<usize, String> {
    number(w, "port id")
}

/// `FIELD is VALUE` pairs of one item until `/`.
fn fields<'a>(
    words: &mut std::iter::Peekable<std::slice::Iter<'_, &'a str>>,
    item: &str,
) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut v = Vec::new();
    while let Some(&&w) = words.peek() {
        if w == "/" {
            words.next();
            return Ok(v);
        }
        words.next();
        match (words.next().copied(), words.next().copied()) {
            (Some("is"), Some(value)) => v.push((w, value)),
            (Some(other), _) => {
                return Err(format!(
                    "{item} {w} {other}: only \"{w} is VALUE\" is supported"
                ));
            }
            (None, _) => return Err(format!("{item} {w}: missing \"is VALUE\"")),
        }
    }
    Err(format!("{item}: missing / after the item"))
}

fn ipv4(v: &str) -> Result<Ipv4Addr, String> {
    v.parse()
        .map_err(|_| format!("{v:?} is not an IPv4 address"))
}

fn pattern(
    words: &mut std::iter::Peekable<std::slice::Iter<'_, &str>>,
) -> Result<FlowRule, String> {
    let mut rule = FlowRule::default();
    loop {
        let item = *words.next().ok_or("pattern: missing end")?;
        if item == "end" {
            return Ok(rule);
        }
        let f = fields(words, item)?;
        let unknown = |field: &str| format!("{item}: field {field:?} is not supported");
        match item {
            "eth" => {
                for (k, v) in f {
                    match k {
                        "type" => rule.ethertype = Some(number(Some(v), "eth type")?),
                        _ => return Err(unknown(k)),
                    }
                }
            }
            "ipv4" => {
                rule.ethertype.get_or_insert(ETHERTYPE_IPV4);
                for (k, v) in f {
                    match k {
                        "src" => rule.src_ip = Some(ipv4(v)?),
                        "dst" => rule.dst_ip = Some(ipv4(v)?),
                        _ => return Err(unknown(k)),
                    }
                }
            }
            "ipv6" => {
                rule.ethertype.get_or_insert(ETHERTYPE_IPV6);
                if let Some((k, _)) = f.first() {
                    return Err(unknown(k));
                }
            }
            "udp" | "tcp" | "sctp" => {
                rule.proto = Some(match item {
                    "udp" => IpProto::Udp,
                    "tcp" => IpProto::Tcp,
                    _ => IpProto::Sctp,
                });
                for (k, v) in f {
                    match k {
                        "src" => rule.src_port = Some(number(Some(v), "port")?),
                        "dst" => rule.dst_port = Some(number(Some(v), "port")?),
                        _ => return Err(unknown(k)),
                    }
                }
            }
            other => return Err(format!("pattern item {other:?} is not supported")),
        }
    }
}

fn actions(words: &mut std::iter::Peekable<std::slice::Iter<'_, &str>>) -> Result<u16, String> {
    let mut queue = None;
    loop {
        match words.next().copied() {
            Some("end") => break,
            Some("queue") => {
                let f = fields(words, "queue")?;
                for (k, v) in f {
                    match k {
                        "index" => queue = Some(number(Some(v), "queue index")?),
                        _ => return Err(format!("queue: field {k:?} is not supported")),
                    }
                }
            }
            Some(a) => return Err(format!("action {a:?} is not supported (only queue)")),
            None => return Err("actions: missing end".into()),
        }
    }
    queue.ok_or_else(|| "actions: a queue action is needed".into())
}

/// Parses the words after `flow`; the error is one line.
pub fn parse(words: &[&str]) -> Result<FlowCommand, String> {
    // DPDK's `queue index 1` has no `is`: make it the `index is 1` field
    // form the item parser reads.
    let mut norm: Vec<&str> = Vec::with_capacity(words.len() + 1);
    for (i, w) in words.iter().enumerate() {
        norm.push(w);
        if *w == "index" && words.get(i + 1) != Some(&"is") && i > 0 && words[i - 1] == "queue" {
            norm.push("is");
        }
    }
    let mut w = norm.iter().peekable();
    let cmd = match w.next().copied() {
        Some("create") => {
            let port = port_id(w.next().copied())?;
            let mut attr = Attr::default();
            loop {
                match w.next().copied() {
                    Some("group") => attr.group = number(w.next().copied(), "group")?,
                    Some("priority") => attr.priority = number(w.next().copied(), "priority")?,
                    Some("ingress") => attr.ingress = true,
                    Some("egress") => attr.egress = true,
                    Some("transfer") => attr.transfer = true,
                    Some("pattern") => break,
                    Some(x) => return Err(format!("flow create: unexpected {x:?}")),
                    None => return Err("flow create: missing pattern".into()),
                }
            }
            let rule = pattern(&mut w)?;
            if w.next().copied() != Some("actions") {
                return Err("flow create: missing actions after the pattern".into());
            }
            let queue = actions(&mut w)?;
            FlowCommand::Create {
                port,
                attr,
                rule,
                queue,
            }
        }
        Some("destroy") => {
            let port = port_id(w.next().copied())?;
            let mut rules = Vec::new();
            while let Some(x) = w.next().copied() {
                if x != "rule" {
                    return Err(format!("flow destroy: expected rule ID, not {x:?}"));
                }
                rules.push(number(w.next().copied(), "rule id")?);
            }
            if rules.is_empty() {
                return Err("flow destroy: missing rule ID".into());
            }
            FlowCommand::Destroy { port, rules }
        }
        Some("list") => FlowCommand::List {
            port: port_id(w.next().copied())?,
        },
        Some("flush") => FlowCommand::Flush {
            port: port_id(w.next().copied())?,
        },
        Some(x) => {
            return Err(format!("flow {x}: expected create, destroy, list or flush"));
        }
        None => return Err("flow: expected create, destroy, list or flush".into()),
    };
    match w.next() {
        None => Ok(cmd),
        Some(x) => Err(format!("unexpected {x:?} at the end of the command")),
    }
}

/// DPDK's rte_flow error types (rte_flow.h) used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrType {
    Handle = 2,
    AttrGroup = 3,
    AttrPriority = 4,
    AttrIngress = 5,
    AttrEgress = 6,
    AttrTransfer = 7,
    Item = 13,
    Action = 16,
}

impl ErrType {
    /// testpmd's names for them (port_flow_complain's table).
    fn name(self) -> &'static str {
        match self {
            ErrType::Handle => "flow rule (handle)",
            ErrType::AttrGroup => "group field",
            ErrType::AttrPriority => "priority field",
            ErrType::AttrIngress => "ingress field",
            ErrType::AttrEgress => "egress field",
            ErrType::AttrTransfer => "transfer field",
            ErrType::Item => "specific pattern item",
            ErrType::Action => "specific action",
        }
    }
}

/// A refusal as testpmd's port_flow_complain prints it (the cause pointer
/// left out: there is none to show).
fn complain(t: ErrType, message: &str, errno_text: &str) -> String {
    format!(
        "port_flow_complain(): Caught PMD error type {} ({}): {message}: {errno_text}",
        t as u32,
        t.name()
    )
}

const EINVAL: &str = "Invalid argument";
const ENOSYS: &str = "Function not implemented";
const EEXIST: &str = "File exists";

/// A driver refusal in DPDK's words: the error type and errno its igb PMD
/// uses for the same case.
pub fn complain_flow_error(e: &FlowError) -> String {
    let (t, errno) = match e {
        FlowError::Unsupported { .. } => (ErrType::Item, EINVAL),
        FlowError::QueueOutOfRange { .. } => (ErrType::Action, EINVAL),
        FlowError::TableFull { .. } => (ErrType::Handle, ENOSYS),
        FlowError::Duplicate { .. } => (ErrType::Handle, EEXIST),
        FlowError::NoSuchRule { .. } => (ErrType::Handle, EINVAL),
    };
    complain(t, &e.to_string(), errno)
}

/// The refusal for attributes the filters cannot honour, if any.
fn attr_refusal(a: &Attr) -> Option<String> {
    let (t, m) = if !a.ingress {
        (ErrType::AttrIngress, "Only support ingress.")
    } else if a.egress {
        (ErrType::AttrEgress, "Not support egress.")
    } else if a.transfer {
        (ErrType::AttrTransfer, "No support for transfer.")
    } else if a.group != 0 {
        (ErrType::AttrGroup, "Not support group.")
    } else if a.priority != 0 {
        (ErrType::AttrPriority, "Not support priority.")
    } else {
        return None;
    };
    Some(complain(t, m, EINVAL))
}

/// The `flow list` table of a port's rules (nothing when it has none, as
/// testpmd).
pub fn list_text(port: &Port) -> Vec<String> {
    let mut rules = port.flow_rules();
    if rules.is_empty() {
        return Vec::new();
    }
    rules.sort_by_key(|e| e.id);
    let mut out = vec!["ID\tGroup\tPrio\tAttr\tRule".to_string()];
    for e in rules {
        let items: String = e
            .rule
            .item_names()
            .iter()
            .map(|n| format!("{n} "))
            .collect();
        out.push(format!("{}\t0\t0\ti--\t{items}=> QUEUE", e.id));
    }
    out
}

/// Runs one command on `ports`; returns the lines to print.
pub fn execute(cmd: &FlowCommand, ports: &[&Port]) -> Vec<String> {
    let port_of = |p: usize| ports.get(p).copied().ok_or(format!("Invalid port {p}"));
    match cmd {
        FlowCommand::Create {
            port,
            attr,
            rule,
            queue,
        } => {
            let p = match port_of(*port) {
                Ok(p) => p,
                Err(e) => return vec![e],
            };
            if let Some(r) = attr_refusal(attr) {
                return vec![r];
            }
            match p.add_flow_rule(*rule, *queue) {
                Ok(id) => vec![format!("Flow rule #{id} created")],
                Err(e) => vec![complain_flow_error(&e)],
            }
        }
        FlowCommand::Destroy { port, rules } => {
            let p = match port_of(*port) {
                Ok(p) => p,
                Err(e) => return vec![e],
            };
            // As testpmd: rules that do not exist are passed over silently.
            let mut out = Vec::new();
            for r in rules {
                let id = FlowId(*r);
                if p.flow_rules().iter().any(|e| e.id == id) {
                    match p.remove_flow_rule(id) {
                        Ok(_) => out.push(format!("Flow rule #{id} destroyed")),
                        Err(e) => out.push(complain_flow_error(&e)),
                    }
                }
            }
            out
        }
        FlowCommand::List { port } => match port_of(*port) {
            Ok(p) => list_text(p),
            Err(e) => vec![e],
        },
        FlowCommand::Flush { port } => match port_of(*port) {
            Ok(p) => {
                p.flush_flow_rules();
                Vec::new()
            }
            Err(e) => vec![e],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<FlowCommand, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse(&words)
    }

    #[test]
    fn dpdk_rule_spellings_parse() {
        assert_eq!(
            p(
                "create 0 ingress pattern eth / ipv4 / udp dst is 5000 / end actions queue index 1 / end"
            ),
            Ok(FlowCommand::Create {
                port: 0,
                attr: Attr {
                    ingress: true,
                    ..Attr::default()
                },
                rule: FlowRule {
                    ethertype: Some(ETHERTYPE_IPV4),
                    ..FlowRule::udp_dst(5000)
                },
                queue: 1,
            })
        );
        let Ok(FlowCommand::Create { rule, queue, .. }) = p(
            "create 1 ingress pattern eth / ipv4 src is 10.0.0.1 dst is 10.0.0.2 / tcp src is 0x10 dst is 80 / end actions queue index 3 / end",
        ) else {
            panic!("5-tuple")
        };
        assert_eq!(queue, 3);
        assert_eq!(rule.src_ip, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(rule.dst_ip, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(
            (rule.proto, rule.src_port, rule.dst_port),
            (Some(IpProto::Tcp), Some(16), Some(80))
        );
        let Ok(FlowCommand::Create { rule, attr, .. }) = p(
            "create 0 group 0 priority 0 ingress pattern eth type is 0x88b5 / end actions queue index 1 / end",
        ) else {
            panic!("ethertype")
        };
        assert_eq!(rule, FlowRule::ethertype(0x88b5));
        assert!(attr.ingress);
        let Ok(FlowCommand::Create { rule, .. }) =
            p("create 0 ingress pattern eth / ipv6 / udp / end actions queue index 1 / end")
        else {
            panic!("ipv6")
        };
        assert_eq!(rule.ethertype, Some(ETHERTYPE_IPV6));
        assert_eq!(
            p("destroy 0 rule 3 rule 1"),
            Ok(FlowCommand::Destroy {
                port: 0,
                rules: vec![3, 1]
            })
        );
        assert_eq!(p("list 1"), Ok(FlowCommand::List { port: 1 }));
        assert_eq!(p("flush 0"), Ok(FlowCommand::Flush { port: 0 }));
    }

    #[test]
    fn the_prompt_hands_flow_lines_to_this_parser() {
        use crate::testpmd::cli::{self, Command};
        assert_eq!(
            cli::parse("flow list 0"),
            Ok(Command::Flow(FlowCommand::List { port: 0 }))
        );
        assert!(cli::parse("flow list").is_err());
    }

    #[test]
    fn malformed_rules_say_what_is_wrong_in_one_line() {
        for (line, needle) in [
            ("", "expected create"),
            ("bogus 0", "expected create"),
            (
                "create x ingress pattern eth / end actions queue index 1 / end",
                "not a number",
            ),
            ("create 0 ingress eth / end", "unexpected \"eth\""),
            (
                "create 0 ingress pattern eth / udp dst 5000 / end actions queue index 1 / end",
                "only \"dst is VALUE\"",
            ),
            (
                "create 0 ingress pattern eth / udp dst is 70000 / end actions queue index 1 / end",
                "out of range",
            ),
            (
                "create 0 ingress pattern eth / vlan / end actions queue index 1 / end",
                "\"vlan\" is not supported",
            ),
            (
                "create 0 ingress pattern eth dst is 1 / end actions queue index 1 / end",
                "field \"dst\"",
            ),
            (
                "create 0 ingress pattern eth / ipv4 dst is 10.0.0 / end actions queue index 1 / end",
                "not an IPv4",
            ),
            (
                "create 0 ingress pattern eth / end actions drop / end",
                "\"drop\" is not supported",
            ),
            (
                "create 0 ingress pattern eth / end actions end",
                "a queue action is needed",
            ),
            ("create 0 ingress pattern eth / end", "missing actions"),
            ("create 0 ingress pattern eth /", "missing end"),
            ("destroy 0", "missing rule"),
            ("destroy 0 3", "expected rule"),
            ("list", "missing port"),
            ("list 0 extra", "unexpected \"extra\""),
        ] {
            let e = p(line).expect_err(line);
            assert!(e.contains(needle), "{line:?}: {e:?}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn refusals_are_printed_as_dpdk_testpmd_prints_them() {
        assert_eq!(
            complain_flow_error(&FlowError::QueueOutOfRange {
                queue: 4,
                rx_queues: 2
            }),
            "port_flow_complain(): Caught PMD error type 16 (specific action): \
             queue 4 out of range: the port has 2 RX queue(s): Invalid argument"
        );
        let full = complain_flow_error(&FlowError::TableFull {
            kind: pmd::flow::FilterKind::FiveTuple,
            slots: 8,
        });
        assert!(
            full.starts_with(
                "port_flow_complain(): Caught PMD error type 2 (flow rule (handle)): "
            )
        );
        assert!(full.ends_with(": Function not implemented"), "{full}");
        assert!(
            complain_flow_error(&FlowError::Duplicate { id: FlowId(0) })
                .ends_with("the same match is rule #0 already: File exists")
        );
        let e = complain_flow_error(&FlowError::Unsupported {
            driver: "e1000e",
            rule: FlowRule::udp_dst(1).to_string(),
            why: "no filters".into(),
        });
        assert_eq!(
            e,
            "port_flow_complain(): Caught PMD error type 13 (specific pattern item): \
             e1000e: cannot match eth / ipv4 / udp dst is 1: no filters: Invalid argument"
        );
        let egress = Attr {
            ingress: true,
            egress: true,
            ..Attr::default()
        };
        assert_eq!(
            attr_refusal(&egress).as_deref(),
            Some(
                "port_flow_complain(): Caught PMD error type 6 (egress field): Not support egress.: Invalid argument"
            )
        );
        assert!(
            attr_refusal(&Attr::default()).is_some_and(|s| s.contains("type 5 (ingress field)"))
        );
        assert_eq!(
            attr_refusal(&Attr {
                ingress: true,
                ..Attr::default()
            }),
            None
        );
    }
}
