//! The 82576 statistics registers as xstats (names as DPDK's igb reports
//! them) and their part in the basic port statistics.
//!
//! Besides the port-wide counters the 82576 has one per RX queue: RQDPC
//! (Receive Queue Drop Packet Count, clear on read), the frames the queue
//! dropped for want of a descriptor while SRRCTL.DROP_EN is set (without
//! DROP_EN such a frame waits in the packet buffer, and MPC counts it if
//! that overflows). They are frames the device dropped for lack of room,
//! so they are part of `imissed` ([`Role::RxMissed`]) beside MPC, as
//! Linux's igb_update_stats counts them (into `rx_fifo_errors` and the
//! ring's drops); DPDK's igb reads only MPC. The 82574L has no such
//! register (and no DROP_EN): its table has MPC alone.

use super::regs::*;
use crate::stats::{HwCounter, Role};

pub static COUNTERS: &[HwCounter] = &[
    HwCounter::r32("rx_packets", GPRC, Role::RxPackets),
    HwCounter::r64("rx_bytes", GORCL, GORCH, Role::RxBytes),
    HwCounter::r32("tx_packets", GPTC, Role::TxPackets),
    HwCounter::r64("tx_bytes", GOTCL, GOTCH, Role::TxBytes),
    HwCounter::r32("rx_missed_packets", MPC, Role::RxMissed),
    HwCounter::r32("rx_crc_errors", CRCERRS, Role::RxErrors),
    HwCounter::r32("rx_align_errors", ALGNERRC, Role::RxErrors),
    HwCounter::r32("rx_errors_phy", RXERRC, Role::RxErrors),
    HwCounter::r32("rx_carrier_ext_errors", CEXTERR, Role::RxErrors),
    HwCounter::r32("rx_symbol_errors", SYMERRS, Role::Extra),
    HwCounter::r32("rx_sequence_errors", SEC, Role::Extra),
    HwCounter::r32("rx_length_errors", RLEC, Role::Extra),
    HwCounter::r32("rx_no_buffer_count", RNBC, Role::Extra),
    HwCounter::r32("rx_undersize_errors", RUC, Role::Extra),
    HwCounter::r32("rx_fragment_errors", RFC, Role::Extra),
    HwCounter::r32("rx_oversize_errors", ROC, Role::Extra),
    HwCounter::r32("rx_jabber_errors", RJC, Role::Extra),
    HwCounter::r32("tx_single_collision_packets", SCC, Role::Extra),
    HwCounter::r32("tx_multiple_collision_packets", MCC, Role::Extra),
    HwCounter::r32("tx_excessive_collision_packets", ECOL, Role::TxErrors),
    HwCounter::r32("tx_late_collisions", LATECOL, Role::TxErrors),
    HwCounter::r32("tx_total_collisions", COLC, Role::Extra),
    HwCounter::r32("tx_deferred_packets", DC, Role::Extra),
    HwCounter::r32("tx_no_carrier_sense_packets", TNCRS, Role::Extra),
    HwCounter::r32("rx_xon_packets", XONRXC, Role::Extra),
    HwCounter::r32("tx_xon_packets", XONTXC, Role::Extra),
    HwCounter::r32("rx_xoff_packets", XOFFRXC, Role::Extra),
    HwCounter::r32("tx_xoff_packets", XOFFTXC, Role::Extra),
    HwCounter::r32("rx_flow_control_unsupported_packets", FCRUC, Role::Extra),
    HwCounter::r32("rx_size_64_packets", PRC64, Role::Extra),
    HwCounter::r32("rx_size_65_to_127_packets", PRC127, Role::Extra),
    HwCounter::r32("rx_size_128_to_255_packets", PRC255, Role::Extra),
    HwCounter::r32("rx_size_256_to_511_packets", PRC511, Role::Extra),
    HwCounter::r32("rx_size_512_to_1023_packets", PRC1023, Role::Extra),
    HwCounter::r32("rx_size_1024_to_max_packets", PRC1522, Role::Extra),
    HwCounter::r32("rx_broadcast_packets", BPRC, Role::Extra),
    HwCounter::r32("rx_multicast_packets", MPRC, Role::Extra),
    HwCounter::r32("rx_management_packets", MGTPRC, Role::Extra),
    HwCounter::r32("rx_management_dropped", MGTPDC, Role::Extra),
    HwCounter::r32("tx_management_packets", MGTPTC, Role::Extra),
    HwCounter::r32("rx_total_packets", TPR, Role::Extra),
    HwCounter::r32("tx_total_packets", TPT, Role::Extra),
    HwCounter::r64("rx_total_bytes", TORL, TORH, Role::Extra),
    HwCounter::r64("tx_total_bytes", TOTL, TOTH, Role::Extra),
    HwCounter::r32("tx_size_64_packets", PTC64, Role::Extra),
    HwCounter::r32("tx_size_65_to_127_packets", PTC127, Role::Extra),
    HwCounter::r32("tx_size_128_to_255_packets", PTC255, Role::Extra),
    HwCounter::r32("tx_size_256_to_511_packets", PTC511, Role::Extra),
    HwCounter::r32("tx_size_512_to_1023_packets", PTC1023, Role::Extra),
    HwCounter::r32("tx_size_1023_to_max_packets", PTC1522, Role::Extra),
    HwCounter::r32("tx_multicast_packets", MPTC, Role::Extra),
    HwCounter::r32("tx_broadcast_packets", BPTC, Role::Extra),
    HwCounter::r32("tx_tso_packets", TSCTC, Role::Extra),
    HwCounter::r32("tx_tso_errors", TSCTFC, Role::Extra),
    HwCounter::r32("interrupt_assert_count", IAC, Role::Extra),
    // RQDPC of each queue the driver may open (`Igb`'s limit: eight; the
    // register map has sixteen).
    HwCounter::r32("rx_q0_drop_packets", rqdpc(0), Role::RxMissed),
    HwCounter::r32("rx_q1_drop_packets", rqdpc(1), Role::RxMissed),
    HwCounter::r32("rx_q2_drop_packets", rqdpc(2), Role::RxMissed),
    HwCounter::r32("rx_q3_drop_packets", rqdpc(3), Role::RxMissed),
    HwCounter::r32("rx_q4_drop_packets", rqdpc(4), Role::RxMissed),
    HwCounter::r32("rx_q5_drop_packets", rqdpc(5), Role::RxMissed),
    HwCounter::r32("rx_q6_drop_packets", rqdpc(6), Role::RxMissed),
    HwCounter::r32("rx_q7_drop_packets", rqdpc(7), Role::RxMissed),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac_port::Chip;
    use crate::stats::{HwStats, PortStats};

    /// A frame a queue dropped for want of a descriptor (SRRCTL.DROP_EN)
    /// is in `imissed`, beside MPC's, and in its queue's xstat.
    #[test]
    fn queue_drops_are_missed_packets_with_an_xstat_per_queue() {
        let mut hw = HwStats::new(COUNTERS);
        let read = |reg| match reg {
            r if r == MPC => 3,
            r if r == rqdpc(1) => 7,
            r if r == rqdpc(7) => 2,
            _ => 0,
        };
        assert!(hw.accumulate(read, || false));
        let mut s = PortStats::default();
        hw.fill(&mut s);
        assert_eq!(s.imissed, 3 + 7 + 2, "MPC and every queue's RQDPC");
        let x: Vec<(&str, u64)> = hw.iter().collect();
        assert!(x.contains(&("rx_missed_packets", 3)), "{x:?}");
        assert!(x.contains(&("rx_q1_drop_packets", 7)), "{x:?}");
        assert!(x.contains(&("rx_q7_drop_packets", 2)), "{x:?}");
        // Clear on read: the next read adds nothing.
        assert!(hw.accumulate(|_| 0, || false));
        hw.fill(&mut s);
        assert_eq!(s.imissed, 12);
    }

    #[test]
    fn every_queue_the_driver_opens_has_its_rqdpc_and_no_other() {
        let drops: Vec<&HwCounter> = COUNTERS
            .iter()
            .filter(|c| c.name.ends_with("_drop_packets"))
            .collect();
        assert_eq!(
            drops.len(),
            usize::from(super::super::Igb::LIMITS.max_queues)
        );
        for (n, c) in drops.iter().enumerate() {
            assert_eq!(c.name, format!("rx_q{n}_drop_packets"));
            assert_eq!((c.lo, c.hi, c.role), (rqdpc(n), None, Role::RxMissed));
        }
    }
}
