//! The 82576's queue filters for [`crate::flow`] (82576 datasheet 7.1.2,
//! receive queue assignment; the registers in [`super::regs`]):
//!
//! - 8 EtherType filters (ETQF): frames of one EtherType (not IPv4 or
//!   IPv6: the datasheet reserves those to the L3/L4 filters) to a queue.
//! - 8 5-tuple filters (FTQF with SAQF, DAQF, SPQF, IMIR, IMIREXT): IPv4
//!   source and destination address, IP protocol, source and destination
//!   port, each compared or masked, to a queue; the filter at 0x59E0 that
//!   the 82580/I350 use as a 2-tuple filter (TTQF) is the 82576's FTQF, so a
//!   protocol + destination port rule is a 5-tuple filter with the
//!   addresses and source port masked. The 82576's 5-tuple filters see
//!   IPv4 only.
//!
//! A matching filter takes precedence over RSS. Among 5-tuple filters that
//! match, the higher IMIR priority wins: a rule gets one priority per field
//! it compares, so the more specific rule wins.
//!
//! What QEMU emulates (hw/net/igb_core.c, igb_receive_assign, QEMU 8.2 to
//! 10.0): ETQF is matched but only to report the filter in the
//! descriptor's packet type (the driver's `RxFlags::FLOW_MATCH`; also for
//! PTP timestamps), its queue fields are ignored; FTQF/SAQF/DAQF/SPQF/IMIR/IMIREXT are not registers of the model
//! at all (writes are dropped); the queue is RSS's. The values here follow
//! the datasheet (and agree with Linux's igb PTP filter and DPDK's 82576
//! ntuple code); the guest test says which part the emulator proves.

use std::net::Ipv4Addr;

use super::regs::*;
use crate::flow::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, FilterKind, FlowError, FlowRule};
use crate::mac::Mac;

fn refuse(rule: &FlowRule, why: &str) -> FlowError {
    FlowError::Unsupported {
        driver: "igb",
        rule: rule.to_string(),
        why: why.into(),
    }
}

/// Which 82576 filter matches a normalized rule, or why none can.
pub fn filter_for(rule: &FlowRule) -> Result<FilterKind, FlowError> {
    let ip = rule.has_ip_fields();
    match rule.ethertype {
        None => Err(refuse(rule, "an empty pattern matches every frame")),
        Some(ETHERTYPE_IPV6) => Err(refuse(
            rule,
            "the 82576's 5-tuple filters match IPv4 only and its EtherType filters may not match IP",
        )),
        Some(ETHERTYPE_IPV4) if !ip => Err(refuse(
            rule,
            "every IPv4 frame: the EtherType filters may not match IP and a 5-tuple filter needs a field",
        )),
        Some(ETHERTYPE_IPV4) => {
            if (rule.src_port.is_some() || rule.dst_port.is_some()) && rule.proto.is_none() {
                return Err(refuse(rule, "a port match needs the TCP, UDP or SCTP item"));
            }
            Ok(FilterKind::FiveTuple)
        }
        Some(_) if ip => Err(refuse(rule, "IPv4 fields with a non-IPv4 EtherType")),
        Some(_) => Ok(FilterKind::EtherType),
    }
}

/// ETQF for frames of `ethertype` to `queue`.
pub fn etqf_value(ethertype: u16, queue: u16) -> u32 {
    u32::from(ethertype)
        | ((u32::from(queue) << ETQF_QUEUE_SHIFT) & ETQF_QUEUE_MASK)
        | ETQF_FILTER_ENABLE
        | ETQF_QUEUE_ENABLE
}

/// An IPv4 address as the address filters hold it: network byte order,
/// first octet in the low byte (Linux and DPDK write the big-endian
/// value as is).
fn addr_reg(a: Option<Ipv4Addr>) -> u32 {
    a.map_or(0, |a| u32::from_le_bytes(a.octets()))
}

/// A port as SPQF and IMIR hold it: network byte order (Linux's igb
/// writes `htons(port)`).
fn port_reg(p: Option<u16>) -> u32 {
    p.map_or(0, |p| u32::from(u16::from_le_bytes(p.to_be_bytes())))
}

/// The writes that program 5-tuple filter `slot` for a normalized rule to
/// `queue`, in order: the compared values first, FTQF (which enables the
/// filter) last.
pub fn five_tuple_writes(slot: usize, rule: &FlowRule, queue: u16) -> [(usize, u32); 6] {
    let mut ftqf_v = FTQF_VF_BP
        | FTQF_QUEUE_ENABLE
        | ((u32::from(queue) << FTQF_QUEUE_SHIFT) & FTQF_QUEUE_MASK)
        | rule.proto.map_or(0, |p| u32::from(p.number()));
    for (unset, bp) in [
        (rule.proto.is_none(), FTQF_MASK_PROTO_BP),
        (rule.src_ip.is_none(), FTQF_MASK_SOURCE_ADDR_BP),
        (rule.dst_ip.is_none(), FTQF_MASK_DEST_ADDR_BP),
        (rule.src_port.is_none(), FTQF_MASK_SOURCE_PORT_BP),
    ] {
        if unset {
            ftqf_v |= bp;
        }
    }
    let priority = rule.fields().min(IMIR_PRIORITY_MAX);
    let imir_v = port_reg(rule.dst_port)
        | if rule.dst_port.is_none() {
            IMIR_PORT_BP
        } else {
            0
        }
        | (priority << IMIR_PRIORITY_SHIFT);
    [
        (daqf(slot), addr_reg(rule.dst_ip)),
        (saqf(slot), addr_reg(rule.src_ip)),
        (spqf(slot), port_reg(rule.src_port)),
        (imir(slot), imir_v),
        (imirext(slot), IMIREXT_SIZE_BP | IMIREXT_CTRL_BP),
        (ftqf(slot), ftqf_v),
    ]
}

/// The writes that turn 5-tuple filter `slot` off: FTQF first (queue
/// enable clear, every compare masked, as after reset), then the values.
pub fn five_tuple_clear(slot: usize) -> [(usize, u32); 6] {
    [
        (ftqf(slot), FTQF_VF_BP | FTQF_MASK),
        (daqf(slot), 0),
        (saqf(slot), 0),
        (spqf(slot), 0),
        (imir(slot), 0),
        (imirext(slot), 0),
    ]
}

/// Programs or clears one filter.
pub fn write(mac: &Mac, kind: FilterKind, slot: usize, rule: Option<(&FlowRule, u16)>) {
    match (kind, rule) {
        (FilterKind::EtherType, Some((r, q))) => {
            mac.w(etqf(slot), etqf_value(r.ethertype.unwrap_or(0), q))
        }
        (FilterKind::EtherType, None) => mac.w(etqf(slot), 0),
        (FilterKind::FiveTuple, Some((r, q))) => {
            for (reg, v) in five_tuple_writes(slot, r, q) {
                mac.w(reg, v);
            }
        }
        (FilterKind::FiveTuple, None) => {
            for (reg, v) in five_tuple_clear(slot) {
                mac.w(reg, v);
            }
        }
    }
}

/// How many filters of each kind the 82576 has.
pub fn slots(kind: FilterKind) -> usize {
    match kind {
        FilterKind::EtherType => ETQF_FILTERS,
        FilterKind::FiveTuple => FTQF_FILTERS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::IpProto;

    #[test]
    fn udp_dst_5000_to_queue_1_is_a_2_tuple_use_of_ftqf_0() {
        let r = FlowRule::udp_dst(5000).normalized();
        assert_eq!(filter_for(&r), Ok(FilterKind::FiveTuple));
        let w = five_tuple_writes(0, &r, 1);
        assert_eq!(
            w,
            [
                (0x59A0, 0),
                (0x5980, 0),
                (0x59C0, 0),
                // 5000 = 0x1388 in network byte order; priority 3 (EtherType,
                // protocol, port), port compared.
                (0x5A80, 0x8813 | (3 << 29)),
                (0x5AA0, (1 << 12) | (1 << 19)),
                // UDP (17), queue enable, VF not compared, queue 1, the
                // addresses and the source port masked, the protocol compared.
                (
                    0x59E0,
                    17 | (1 << 8) | (1 << 15) | (1 << 16) | (1 << 29) | (1 << 30) | (1 << 31)
                ),
            ]
        );
    }

    #[test]
    fn a_full_5_tuple_compares_everything() {
        let r = FlowRule {
            src_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dst_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
            proto: Some(IpProto::Tcp),
            src_port: Some(0x1234),
            dst_port: Some(80),
            ..FlowRule::default()
        }
        .normalized();
        let w = five_tuple_writes(7, &r, 3);
        assert_eq!(
            w[0],
            (0x59BC, 0x0200_000A),
            "DAQF7 = 10.0.0.2, network order"
        );
        assert_eq!(w[1], (0x599C, 0x0100_000A));
        assert_eq!(w[2], (0x59DC, 0x3412));
        assert_eq!(w[3], (0x5A9C, 0x5000 | (6 << 29)));
        assert_eq!(w[5], (0x59FC, 6 | (1 << 8) | (1 << 15) | (3 << 16)));
        assert_eq!(five_tuple_clear(7)[0], (0x59FC, (1 << 15) | (0xF << 28)));
    }

    #[test]
    fn an_ethertype_rule_is_an_etqf_with_its_queue() {
        let r = FlowRule::ethertype(0x88B5);
        assert_eq!(filter_for(&r), Ok(FilterKind::EtherType));
        assert_eq!(
            etqf_value(0x88B5, 2),
            0x88B5 | (2 << 16) | (1 << 26) | (1 << 31)
        );
        assert_eq!(etqf(7), 0x5CCC);
    }

    #[test]
    fn what_the_82576_cannot_match_is_refused_with_the_reason() {
        let why = |r: FlowRule| match filter_for(&r.normalized()) {
            Err(FlowError::Unsupported { driver, why, .. }) => {
                assert_eq!(driver, "igb");
                why
            }
            other => panic!("{r}: {other:?}"),
        };
        assert!(why(FlowRule::default()).contains("empty"));
        assert!(why(FlowRule::ethertype(ETHERTYPE_IPV6)).contains("IPv4 only"));
        assert!(why(FlowRule::ethertype(ETHERTYPE_IPV4)).contains("may not match IP"));
        let port_only = FlowRule {
            dst_port: Some(1),
            ..FlowRule::default()
        };
        assert!(why(port_only).contains("needs the TCP, UDP or SCTP"));
        let arp_with_ip = FlowRule {
            ethertype: Some(0x0806),
            proto: Some(IpProto::Udp),
            ..FlowRule::default()
        };
        assert!(why(arp_with_ip).contains("non-IPv4"));
    }
}
