//! Flow steering: rules that send one flow to one RX queue, as
//! `ethtool -N … action Q` does for devmem TCP and rte_flow's QUEUE action
//! does in DPDK. A [`FlowRule`] names what to match (an EtherType, or IPv4
//! addresses, protocol and ports); [`crate::Port::add_flow_rule`] asks the
//! driver for a hardware filter that matches it and refuses, with a typed
//! [`FlowError`], what the chip cannot match, a queue the port does not
//! have, a full filter table or a rule already installed.
//!
//! While rules steer flows to some queues, RSS spreads everything else over
//! the other queues only: the redirection table the port was opened with
//! has its entries that point at a steered queue handed round-robin to the
//! remaining queues ([`crate::rss::reta_avoiding`]), so only the chosen
//! flows reach a steered queue (frames the device does not hash, such as
//! ARP, still go to queue 0: steer to another queue for a queue of one
//! flow). Removing the last rule of a queue gives RSS the queue back.
//!
//! What each chip can match is its driver's: the 82576 has EtherType
//! filters (ETQF) and 5-tuple filters (FTQF and its companions), the
//! 82574L has no queue filters at all (see the drivers).

use std::fmt;
use std::net::Ipv4Addr;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;

/// An IP protocol a rule can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpProto {
    Tcp,
    Udp,
    Sctp,
}

impl IpProto {
    /// The IPv4 header's protocol number.
    pub fn number(self) -> u8 {
        match self {
            IpProto::Tcp => 6,
            IpProto::Udp => 17,
            IpProto::Sctp => 132,
        }
    }
    /// rte_flow's item name (`flow list`).
    pub fn item_name(self) -> &'static str {
        match self {
            IpProto::Tcp => "TCP",
            IpProto::Udp => "UDP",
            IpProto::Sctp => "SCTP",
        }
    }
}

/// What a rule matches; unset fields match anything. Fields of IPv4
/// (addresses, protocol, ports) imply EtherType IPv4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowRule {
    /// The frame's EtherType (after any VLAN tags).
    pub ethertype: Option<u16>,
    pub src_ip: Option<Ipv4Addr>,
    pub dst_ip: Option<Ipv4Addr>,
    pub proto: Option<IpProto>,
    /// TCP/UDP/SCTP source port (needs `proto`).
    pub src_port: Option<u16>,
    /// TCP/UDP/SCTP destination port (needs `proto`).
    pub dst_port: Option<u16>,
}

impl FlowRule {
    /// UDP over IPv4 to destination port `port`.
    pub fn udp_dst(port: u16) -> FlowRule {
        FlowRule {
            proto: Some(IpProto::Udp),
            dst_port: Some(port),
            ..FlowRule::default()
        }
    }
    /// TCP over IPv4 to destination port `port`.
    pub fn tcp_dst(port: u16) -> FlowRule {
        FlowRule {
            proto: Some(IpProto::Tcp),
            dst_port: Some(port),
            ..FlowRule::default()
        }
    }
    /// Frames of one EtherType.
    pub fn ethertype(ethertype: u16) -> FlowRule {
        FlowRule {
            ethertype: Some(ethertype),
            ..FlowRule::default()
        }
    }
    /// True when an IPv4 field is set.
    pub fn has_ip_fields(&self) -> bool {
        self.src_ip.is_some()
            || self.dst_ip.is_some()
            || self.proto.is_some()
            || self.src_port.is_some()
            || self.dst_port.is_some()
    }
    /// The rule with what its fields imply made explicit (EtherType IPv4
    /// for IPv4 fields), so two spellings of one match compare equal.
    pub fn normalized(&self) -> FlowRule {
        let mut r = *self;
        if r.has_ip_fields() && r.ethertype.is_none() {
            r.ethertype = Some(ETHERTYPE_IPV4);
        }
        r
    }
    /// How many fields are compared (the more, the more specific).
    pub fn fields(&self) -> u32 {
        let n = self.normalized();
        [
            n.ethertype.is_some(),
            n.src_ip.is_some(),
            n.dst_ip.is_some(),
            n.proto.is_some(),
            n.src_port.is_some(),
            n.dst_port.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count() as u32
    }
    /// rte_flow item names of the pattern (`flow list`: `ETH IPV4 UDP`).
    pub fn item_names(&self) -> Vec<&'static str> {
        let n = self.normalized();
        let mut v = vec!["ETH"];
        match n.ethertype {
            Some(ETHERTYPE_IPV4) => v.push("IPV4"),
            Some(ETHERTYPE_IPV6) => v.push("IPV6"),
            _ => {}
        }
        if let Some(p) = n.proto {
            v.push(p.item_name());
        }
        v
    }
    /// Whether an Ethernet frame (no FCS, VLAN tags allowed) matches: the
    /// meaning the hardware filters implement, for tests and models.
    pub fn matches(&self, frame: &[u8]) -> bool {
        let n = self.normalized();
        let mut off = 12;
        let mut ethertype = be16(frame, off);
        while matches!(ethertype, Some(0x8100 | 0x88A8)) {
            off += 4;
            ethertype = be16(frame, off);
        }
        let Some(ethertype) = ethertype else {
            return false;
        };
        if n.ethertype.is_some_and(|t| t != ethertype) {
            return false;
        }
        if !n.has_ip_fields() {
            return true;
        }
        let ip = off + 2;
        let (Some(&vihl), Some(&proto)) = (frame.get(ip), frame.get(ip + 9)) else {
            return false;
        };
        if vihl >> 4 != 4 {
            return false;
        }
        let addr = |at: usize| {
            frame
                .get(at..at + 4)
                .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        let ok = |want: Option<Ipv4Addr>, at: usize| want.is_none() || want == addr(at);
        if !ok(n.src_ip, ip + 12) || !ok(n.dst_ip, ip + 16) {
            return false;
        }
        if n.proto.is_some_and(|p| p.number() != proto) {
            return false;
        }
        let l4 = ip + usize::from(vihl & 0xF) * 4;
        let port_ok = |want: Option<u16>, at: usize| want.is_none() || want == be16(frame, at);
        port_ok(n.src_port, l4) && port_ok(n.dst_port, l4 + 2)
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl fmt::Display for FlowRule {
    /// In rte_flow's pattern syntax: `eth / ipv4 / udp dst is 5000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.normalized();
        let mut parts = Vec::new();
        match n.ethertype {
            Some(ETHERTYPE_IPV6) => parts.extend(["eth".to_string(), "ipv6".to_string()]),
            Some(ETHERTYPE_IPV4) if n.has_ip_fields() => parts.push("eth".to_string()),
            Some(t) => parts.push(format!("eth type is {t:#06x}")),
            None => parts.push("eth".to_string()),
        }
        if n.has_ip_fields() && n.ethertype != Some(ETHERTYPE_IPV6) {
            let mut ip = "ipv4".to_string();
            if let Some(a) = n.src_ip {
                ip += &format!(" src is {a}");
            }
            if let Some(a) = n.dst_ip {
                ip += &format!(" dst is {a}");
            }
            parts.push(ip);
        }
        if let Some(p) = n.proto {
            let mut l4 = p.item_name().to_lowercase();
            if let Some(s) = n.src_port {
                l4 += &format!(" src is {s}");
            }
            if let Some(d) = n.dst_port {
                l4 += &format!(" dst is {d}");
            }
            parts.push(l4);
        }
        write!(f, "{}", parts.join(" / "))
    }
}

/// A rule's handle. Numbered as DPDK testpmd numbers its rules: one more
/// than the newest rule still installed, 0 when there is none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u32);

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kinds of hardware filter a rule can occupy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// An EtherType filter (82576 ETQF).
    EtherType,
    /// A 5-tuple filter (82576 FTQF with SAQF/DAQF/SPQF/IMIR/IMIREXT).
    FiveTuple,
}

impl FilterKind {
    pub fn name(self) -> &'static str {
        match self {
            FilterKind::EtherType => "EtherType",
            FilterKind::FiveTuple => "5-tuple",
        }
    }
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The chip has no filter that matches this.
    #[error("{driver}: cannot match {rule}: {why}")]
    Unsupported {
        driver: &'static str,
        rule: String,
        why: String,
    },
    #[error("queue {queue} out of range: the port has {rx_queues} RX queue(s)")]
    QueueOutOfRange { queue: u16, rx_queues: u16 },
    #[error("every {} filter is in use ({slots})", kind.name())]
    TableFull { kind: FilterKind, slots: usize },
    #[error("the same match is rule #{id} already")]
    Duplicate { id: FlowId },
    #[error("no flow rule #{id}")]
    NoSuchRule { id: FlowId },
}

/// One installed rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEntry {
    pub id: FlowId,
    /// As given (not normalized).
    pub rule: FlowRule,
    pub queue: u16,
    /// The filter it occupies, and which one of that kind.
    pub kind: FilterKind,
    pub slot: usize,
}

/// The rules of one port, oldest first, and the filter slots they hold.
#[derive(Debug, Default)]
pub struct FlowTable {
    entries: Vec<FlowEntry>,
}

impl FlowTable {
    /// Checks a rule the chip can match with a `kind` filter (of which it
    /// has `slots`) against the table, in DPDK's order (queue, duplicate,
    /// room), and returns the entry it would become without adding it.
    pub fn plan(
        &self,
        rule: &FlowRule,
        queue: u16,
        rx_queues: u16,
        kind: FilterKind,
        slots: usize,
    ) -> Result<FlowEntry, FlowError> {
        if queue >= rx_queues {
            return Err(FlowError::QueueOutOfRange { queue, rx_queues });
        }
        let norm = rule.normalized();
        if let Some(e) = self.entries.iter().find(|e| e.rule.normalized() == norm) {
            return Err(FlowError::Duplicate { id: e.id });
        }
        let slot = (0..slots)
            .find(|s| !self.entries.iter().any(|e| e.kind == kind && e.slot == *s))
            .ok_or(FlowError::TableFull { kind, slots })?;
        let id = self.entries.last().map_or(0, |e| e.id.0.saturating_add(1));
        Ok(FlowEntry {
            id: FlowId(id),
            rule: *rule,
            queue,
            kind,
            slot,
        })
    }

    /// Adds an entry [`FlowTable::plan`] returned (its filter programmed).
    pub fn insert(&mut self, e: FlowEntry) {
        self.entries.push(e);
    }

    /// Takes rule `id` out.
    pub fn remove(&mut self, id: FlowId) -> Result<FlowEntry, FlowError> {
        let i = self
            .entries
            .iter()
            .position(|e| e.id == id)
            .ok_or(FlowError::NoSuchRule { id })?;
        Ok(self.entries.remove(i))
    }

    /// Every rule, oldest first.
    pub fn entries(&self) -> &[FlowEntry] {
        &self.entries
    }

    /// The queues some rule steers to, ascending, each once.
    pub fn steered_queues(&self) -> Vec<u16> {
        let mut q: Vec<u16> = self.entries.iter().map(|e| e.queue).collect();
        q.sort_unstable();
        q.dedup();
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame(dst_port: u16, vlan: bool) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&4000u16.to_be_bytes());
        f.extend_from_slice(&dst_port.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn a_rule_matches_its_flow_and_not_others() {
        let r = FlowRule::udp_dst(5000);
        assert!(r.matches(&udp_frame(5000, false)));
        assert!(r.matches(&udp_frame(5000, true)), "after a VLAN tag");
        assert!(!r.matches(&udp_frame(5001, false)));
        assert!(!FlowRule::tcp_dst(5000).matches(&udp_frame(5000, false)));
        let src = FlowRule {
            src_ip: Some(Ipv4Addr::new(10, 0, 0, 9)),
            ..r
        };
        assert!(!src.matches(&udp_frame(5000, false)));
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert!(FlowRule::ethertype(0x0806).matches(&arp));
        assert!(!r.matches(&arp));
        assert!(!r.matches(&[0u8; 5]), "a runt matches nothing");
    }

    #[test]
    fn rules_print_in_rte_flow_syntax() {
        assert_eq!(
            FlowRule::udp_dst(5000).to_string(),
            "eth / ipv4 / udp dst is 5000"
        );
        assert_eq!(
            FlowRule::ethertype(0x88b5).to_string(),
            "eth type is 0x88b5"
        );
        let v6 = FlowRule {
            ethertype: Some(ETHERTYPE_IPV6),
            ..FlowRule::udp_dst(5000)
        };
        assert_eq!(v6.to_string(), "eth / ipv6 / udp dst is 5000");
        assert_eq!(v6.item_names(), ["ETH", "IPV6", "UDP"]);
        assert_eq!(FlowRule::udp_dst(1).item_names(), ["ETH", "IPV4", "UDP"]);
        assert_eq!(FlowRule::ethertype(0x88b5).item_names(), ["ETH"]);
    }

    #[test]
    fn the_table_refuses_bad_queues_duplicates_and_a_full_kind() {
        let mut t = FlowTable::default();
        let k = FilterKind::FiveTuple;
        assert_eq!(
            t.plan(&FlowRule::udp_dst(1), 4, 4, k, 2),
            Err(FlowError::QueueOutOfRange {
                queue: 4,
                rx_queues: 4
            })
        );
        let a = t.plan(&FlowRule::udp_dst(1), 1, 4, k, 2).expect("first");
        assert_eq!((a.id, a.slot), (FlowId(0), 0));
        t.insert(a);
        // The same match spelled with the implied EtherType is a duplicate.
        let same = FlowRule {
            ethertype: Some(ETHERTYPE_IPV4),
            ..FlowRule::udp_dst(1)
        };
        assert_eq!(
            t.plan(&same, 2, 4, k, 2),
            Err(FlowError::Duplicate { id: FlowId(0) })
        );
        let b = t.plan(&FlowRule::udp_dst(2), 1, 4, k, 2).expect("second");
        assert_eq!((b.id, b.slot), (FlowId(1), 1));
        t.insert(b);
        assert_eq!(
            t.plan(&FlowRule::udp_dst(3), 1, 4, k, 2),
            Err(FlowError::TableFull { kind: k, slots: 2 })
        );
        // Another kind has its own slots.
        let e = t
            .plan(&FlowRule::ethertype(0x88b5), 3, 4, FilterKind::EtherType, 8)
            .expect("ethertype");
        assert_eq!((e.id, e.slot), (FlowId(2), 0));
        t.insert(e);
        assert_eq!(t.steered_queues(), [1, 3]);
        // A freed slot is reused; ids follow the newest rule, as testpmd's.
        t.remove(FlowId(0)).expect("remove");
        assert_eq!(
            t.remove(FlowId(0)),
            Err(FlowError::NoSuchRule { id: FlowId(0) })
        );
        let c = t.plan(&FlowRule::udp_dst(3), 2, 4, k, 2).expect("reuse");
        assert_eq!((c.id, c.slot), (FlowId(3), 0));
    }
}
