//! Flow steering end to end in the QEMU guest (issue 13 item 2), through
//! testpmd's rte_flow commands: `flow create` / `flow list` / `flow
//! destroy` / `flow flush` on the igb with 4 RX queues in rxonly mode, the
//! host peer sending UDP frames to the steered destination port 5000, UDP
//! frames of other flows and frames of a steered EtherType (0x88B5), and
//! per-queue counters (`show port xstats`) checked exactly against a
//! Toeplitz model of the device.
//!
//! Which path the emulator proves: QEMU's igb (hw/net/igb_core.c,
//! igb_receive_assign, QEMU 8.2 to 10.0) picks the RX queue by RSS alone.
//! It keeps ETQF but only reports a match in the descriptor's packet type,
//! and it has no 5-tuple filter registers (FTQF, SAQF, DAQF, SPQF, IMIR,
//! IMIREXT writes are dropped; the test checks both from QEMU's register
//! trace). So the guest proves: the commands, their output and DPDK-style
//! refusals; every write that reaches the device's filter registers, value
//! for value (QEMU's trace, against pmd's encoding, which host tests check
//! against the datasheet); that while rules exist RSS puts not one
//! frame on a steered queue (the RETA the driver rewrites) and that after
//! `flow destroy` RSS spreads over every queue again; and that the steered
//! flows themselves arrive (by RSS, on the other queues, as the emulator
//! routes them). That the 82576 puts the flow on the rule's queue rests on
//! the register values, which host unit tests check against the datasheet
//! (pmd `igb::flow`); on a real 82576 the steered frames would count on
//! queues 1 and 2 instead, and [`EMULATOR_STEERS`] is the switch. A
//! third test has `pmdcheck rx-dump` install an EtherType rule and checks
//! the ETQF match QEMU reports in each descriptor (`flow=1` exactly for
//! the rule's EtherType), which proves the device matches the ETQF value
//! the driver writes.

use std::time::{Duration, Instant};

use pmd::flow::FlowRule;
use pmd::igb::flow::{etqf_value, five_tuple_clear, five_tuple_writes};
use pmd::igb::regs::etqf;
use pmd::rss::{self, DEFAULT_KEY, HashTypes};
use rig::frames::FrameSpec;
use rig::testpmd_out::HOST;
use rig::{Vm, VmConfig, nic_mac, nic_pci};

/// Whether the device under test steers by its queue filters (QEMU's igb
/// does not, see the module comment).
const EMULATOR_STEERS: bool = false;
const RXQ: u16 = 4;
const STEERED_PORT: u16 = 5000;
const STEERED_ETHERTYPE: u16 = 0x88B5;
/// Frames of each kind per phase.
const N: usize = 40;
/// How long testpmd forwards in each phase after `start` (the host's
/// frames take well under a second to send).
const PHASE_SECS: u32 = 12;

fn udp(own: [u8; 6], sport: u16, dport: u16, seed: u8) -> Vec<u8> {
    FrameSpec {
        src: HOST,
        sport,
        dport,
        seed,
        ..FrameSpec::udp4(own, 100)
    }
    .build()
}

fn ethertype_frame(own: [u8; 6], i: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&own);
    f.extend_from_slice(&HOST);
    f.extend_from_slice(&STEERED_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(format!("flow steering frame {i}").as_bytes());
    f.resize(60, 0);
    f
}

/// The frames of one phase: steered UDP flows (one source port each),
/// other UDP flows, EtherType frames.
fn phase_frames(own: [u8; 6], phase: u16) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..N as u16 {
        v.push(udp(own, 6000 + 100 * phase + i, STEERED_PORT, i as u8));
        v.push(udp(own, 1000 + i, 7000 + 100 * phase + i, i as u8));
        v.push(ethertype_frame(own, usize::from(i)));
    }
    v
}

/// The queue a frame lands on: a rule's queue when the device steers and a
/// rule matches, else RSS over `reta` (frames RSS does not hash go to
/// queue 0).
fn queue_of(frame: &[u8], rules: &[(FlowRule, u16)], reta: &[u8; rss::RETA_LEN]) -> usize {
    if EMULATOR_STEERS && let Some((_, q)) = rules.iter().find(|(r, _)| r.matches(frame)) {
        return usize::from(*q);
    }
    rss::frame_hash(&DEFAULT_KEY, HashTypes::ALL, frame)
        .map_or(0, |h| usize::from(rss::queue_for_hash(reta, h)))
}

fn expected(frames: &[Vec<u8>], rules: &[(FlowRule, u16)], reta: &[u8; rss::RETA_LEN]) -> Vec<u64> {
    let mut per = vec![0u64; usize::from(RXQ)];
    for f in frames {
        per[queue_of(f, rules, reta)] += 1;
    }
    per
}

/// `rx_qN_packets` of the `nth` (0-based) xstats dump of port 0.
fn queue_counts(out: &str, nth: usize) -> Vec<u64> {
    let dump = out
        .split("NIC extended statistics for port 0")
        .nth(nth + 1)
        .unwrap_or_else(|| panic!("xstats dump {nth} of port 0 missing:\n{out}"));
    (0..RXQ)
        .map(|q| {
            let key = format!("rx_q{q}_packets: ");
            dump.lines()
                .find_map(|l| l.trim().strip_prefix(&key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in:\n{dump}"))
        })
        .collect()
}

/// QEMU's trace of register writes: known registers (`e1000e_core_write`)
/// and ones its igb model lacks (`e1000e_wrn_regs_write_unknown`, where
/// the 5-tuple filter registers land), both `... register 0xOFF, N
/// byte(s), value: 0xV`.
const TRACE: [&str; 2] = ["e1000e_core_write", "e1000e_wrn_regs_write_unknown"];

/// The writes of the trace to the queue filter registers (SAQF ..
/// IMIREXT at 0x5980..0x5AC0, ETQF at 0x5CB0..0x5CD0), in order, each
/// with whether QEMU's model has the register (`e1000e_core_write`).
fn filter_writes(trace: &str) -> Vec<(usize, u32, bool)> {
    let hex = |s: &str| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok();
    trace
        .lines()
        .filter_map(|l| {
            let known = l.contains(&format!(":{} ", TRACE[0]));
            if !known && !l.contains(&format!(":{} ", TRACE[1])) {
                return None;
            }
            let off = hex(l.split("register ").nth(1)?.split(',').next()?)? as usize;
            let val = hex(l.split("value: ").nth(1)?)?;
            Some((off, val, known))
        })
        .filter(|(o, _, _)| (0x5980..0x5AC0).contains(o) || (0x5CB0..0x5CD0).contains(o))
        .collect()
}

/// Whitespace runs as one space (the console may turn testpmd's tabs into
/// spaces).
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Waits until `needle` has been printed `n` times.
fn wait_for_nth(vm: &Vm, needle: &str, n: usize, timeout: Duration) {
    let end = Instant::now() + timeout;
    while vm.output_so_far().matches(needle).count() < n {
        assert!(
            Instant::now() < end,
            "{needle:?} not printed {n} times:\n{}",
            vm.output_so_far()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A shell pipeline that feeds testpmd `script` (the guest command must
/// fit the kernel command line, so `$P` in a line stands for `flow create
/// 0 ingress pattern eth` and `$A` for `end actions queue index`): a line
/// `@wait N` holds the rest until testpmd has printed "Forwarding started"
/// N times, then PHASE_SECS more seconds.
fn feed(script: &[&str], testpmd: &str) -> String {
    let lines: Vec<String> = script
        .iter()
        .map(|c| match c.strip_prefix("@wait ") {
            Some(n) => format!("w {n}"),
            None => format!("echo \"{c}\""),
        })
        .collect();
    format!(
        "set -o pipefail; P='flow create 0 ingress pattern eth'; A='end actions queue index'; \
         w() {{ until [ $(grep -c 'Forwarding start[e]d' /tmp/o) -ge $1 ]; do sleep 1; done; \
         sleep {PHASE_SECS}; }}; : >/tmp/o; ({}) | {testpmd} | tee /tmp/o",
        lines.join("; ")
    )
}

const CREATE_UDP: &str = "$P / ipv4 / udp dst is 5000 / $A 1 / end";
const CREATE_ETYPE: &str = "$P type is 0x88b5 / $A 2 / end";

#[test]
fn igb_flow_rules_keep_rss_off_the_steered_queues_until_destroyed() {
    rig::retry_on_emulator_fault(
        "igb_flow_rules_keep_rss_off_the_steered_queues_until_destroyed",
        || {
            let script = [
                CREATE_UDP,
                CREATE_ETYPE,
                "flow list 0",
                // Refusals: IPv6, a queue the port lacks, the same match again.
                "$P / ipv6 / udp dst is 5000 / $A 1 / end",
                "$P / ipv4 / udp dst is 5001 / $A 9 / end",
                "$P / ipv4 / udp dst is 5000 / $A 3 / end",
                "flow create 0 egress pattern eth / udp / $A 1 / end",
                "start",
                "@wait 1",
                "stop",
                "show port xstats 0",
                "flow destroy 0 rule 0 rule 1",
                "flow list 0",
                "clear port stats 0",
                "start",
                "@wait 2",
                "stop",
                "show port xstats 0",
                CREATE_UDP,
                "flow flush 0",
                "flow list 0",
                "quit",
            ];
            let testpmd = format!(
                "testpmd -i -l 0-1 -a {} --rxq={RXQ} --txq={RXQ} --forward-mode=rxonly",
                nic_pci(0)
            );
            let config = VmConfig {
                trace: TRACE.iter().map(|e| e.to_string()).collect(),
                ..VmConfig::default()
            };
            let vm = Vm::start(config, &feed(&script, &testpmd)).expect("boot");
            let own = nic_mac(0);
            let p1 = phase_frames(own, 1);
            let p2 = phase_frames(own, 2);

            wait_for_nth(&vm, "Forwarding started", 1, Duration::from_secs(120));
            for f in &p1 {
                vm.peer(0).send(f).expect("send phase 1");
            }
            wait_for_nth(&vm, "Forwarding started", 2, Duration::from_secs(120));
            for f in &p2 {
                vm.peer(0).send(f).expect("send phase 2");
            }
            let out = vm.wait().expect("testpmd ends");
            let o = &out.output;
            assert!(out.success(), "testpmd failed:\n{o}");
            assert!(o.contains("Pool: 0 of"), "buffers left in use:\n{o}");
            let flat = squash(o);

            // The commands' output, as DPDK testpmd prints it.
            for line in [
                "Flow rule #0 created",
                "Flow rule #1 created",
                "ID\tGroup\tPrio\tAttr\tRule",
                "0\t0\t0\ti--\tETH IPV4 UDP => QUEUE",
                "1\t0\t0\ti--\tETH => QUEUE",
                "port_flow_complain(): Caught PMD error type 13 (specific pattern item): \
                 igb: cannot match eth / ipv6 / udp dst is 5000: the 82576's 5-tuple filters \
                 match IPv4 only",
                "port_flow_complain(): Caught PMD error type 16 (specific action): queue 9 out \
                 of range: the port has 4 RX queue(s): Invalid argument",
                "port_flow_complain(): Caught PMD error type 2 (flow rule (handle)): the same \
                 match is rule #0 already: File exists",
                "port_flow_complain(): Caught PMD error type 5 (ingress field): Only support \
                 ingress.: Invalid argument",
                "Flow rule #0 destroyed",
                "Flow rule #1 destroyed",
            ] {
                assert!(flat.contains(&squash(line)), "missing {line:?} in:\n{o}");
            }
            // After destroy and after flush, `flow list` prints no table.
            assert_eq!(flat.matches("ID Group Prio Attr Rule").count(), 1, "{o}");
            // The rule created again after phase 2 got id 0 (none left).
            assert_eq!(o.matches("Flow rule #0 created").count(), 2, "{o}");

            // What reached the device's filter registers over MMIO, write for
            // write: create udp (5-tuple filter 0, FTQF last), create
            // EtherType (ETQF 0), nothing for the refusals, destroy both,
            // create udp again, flush.
            let udp = FlowRule::udp_dst(STEERED_PORT).normalized();
            let mut want_regs = five_tuple_writes(0, &udp, 1).to_vec();
            want_regs.push((etqf(0), etqf_value(STEERED_ETHERTYPE, 2)));
            want_regs.extend(five_tuple_clear(0));
            want_regs.push((etqf(0), 0));
            want_regs.extend(five_tuple_writes(0, &udp, 1));
            want_regs.extend(five_tuple_clear(0));
            let hexes = |v: &[(usize, u32)]| {
                v.iter()
                    .map(|(o, v)| format!("{o:#06x}={v:#010x}"))
                    .collect::<Vec<_>>()
            };
            let seen = filter_writes(&out.trace);
            let seen_regs: Vec<(usize, u32)> = seen.iter().map(|&(o, v, _)| (o, v)).collect();
            assert_eq!(
                hexes(&seen_regs),
                hexes(&want_regs),
                "filter register writes QEMU saw"
            );
            // Which of them the emulator models: ETQF only (the module
            // comment); the 5-tuple registers are writes to nothing there.
            for (o, v, known) in seen {
                assert_eq!(
                    known,
                    (0x5CB0..0x5CD0).contains(&o),
                    "{o:#x}={v:#x}: QEMU models ETQF and no 5-tuple register"
                );
            }

            // Phase 1: the rules steer to queues 1 and 2, RSS spreads the
            // rest over 0 and 3 only.
            let rules = [
                (FlowRule::udp_dst(STEERED_PORT), 1),
                (FlowRule::ethertype(STEERED_ETHERTYPE), 2),
            ];
            let reta1 = rss::reta_avoiding(&rss::default_reta(RXQ), RXQ, &[1, 2]);
            let want1 = expected(&p1, &rules, &reta1);
            let got1 = queue_counts(o, 0);
            assert_eq!(got1, want1, "phase 1 per-queue RX packets (q0..q3)");
            assert_eq!(got1.iter().sum::<u64>(), p1.len() as u64);
            if !EMULATOR_STEERS {
                assert_eq!(
                    (got1[1], got1[2]),
                    (0, 0),
                    "RSS must put nothing on the steered queues: {got1:?}"
                );
            }
            // Phase 2: rules destroyed, RSS over all four queues again.
            let reta2 = rss::default_reta(RXQ);
            let want2 = expected(&p2, &[], &reta2);
            assert!(
                want2.iter().all(|&n| n > 0),
                "the phase 2 flows reach every queue: {want2:?}"
            );
            assert_eq!(queue_counts(o, 1), want2, "phase 2 per-queue RX packets");
        },
    )
}

#[test]
fn e1000e_refuses_flow_rules_as_dpdk_reports_a_pmd_error() {
    rig::retry_on_emulator_fault(
        "e1000e_refuses_flow_rules_as_dpdk_reports_a_pmd_error",
        || {
            let script = [
                CREATE_UDP,
                CREATE_ETYPE,
                "flow list 0",
                "flow destroy 0 rule 0",
                "quit",
            ];
            let testpmd = format!(
                "testpmd -i -l 0-1 -a {} --rxq=2 --txq=2 --forward-mode=rxonly",
                nic_pci(1)
            );
            let out = Vm::run(VmConfig::default(), &feed(&script, &testpmd)).expect("boot");
            let o = &squash(&out.output);
            assert!(out.success(), "testpmd failed:\n{o}");
            let refusal = "port_flow_complain(): Caught PMD error type 13 (specific pattern item): \
                       e1000e: cannot match";
            assert_eq!(o.matches(refusal).count(), 2, "{o}");
            assert!(o.contains("the 82574L has no receive queue filters"), "{o}");
            assert!(!o.contains("Flow rule #") && !o.contains("ID Group"), "{o}");
        },
    )
}

/// `pmdcheck rx-dump` with an EtherType rule: QEMU matches ETQF and says
/// so in the descriptor's packet type (the driver reports
/// `RxFlags::FLOW_MATCH`), which proves the ETQF value the driver writes
/// is one the device matches; the queue is still RSS's choice in the
/// emulator (frames it does not hash go to queue 0), and RSS keeps the
/// rule's queue free for it.
#[test]
fn igb_reports_the_etqf_match_and_rss_spares_the_rule_queue() {
    rig::retry_on_emulator_fault(
        "igb_reports_the_etqf_match_and_rss_spares_the_rule_queue",
        || {
            let own = nic_mac(0);
            let mut frames = Vec::new();
            for i in 0..20u16 {
                frames.push(ethertype_frame(own, usize::from(i)));
                let mut other = ethertype_frame(own, usize::from(i));
                other[12..14].copy_from_slice(&(STEERED_ETHERTYPE + 1).to_be_bytes());
                frames.push(other);
                frames.push(udp(own, 3000 + i, 9000 + i, i as u8));
                frames.push(udp(own, 4000 + i, 9100 + i, i as u8));
            }
            let cmd = format!(
                "pmdcheck rx-dump --pci {} --rxq {RXQ} --flow-ethertype 0x88b5:2 --count {} --idle-ms 8000",
                nic_pci(0),
                frames.len()
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot");
            vm.wait_for_line("pmdcheck: ready", Duration::from_secs(90))
                .expect("pmdcheck ready");
            for f in &frames {
                vm.peer(0).send(f).expect("send");
            }
            let out = vm.wait().expect("guest run");
            let o = &out.output;
            assert_eq!(out.status, 0, "pmdcheck failed:\n{o}");
            assert!(
                o.contains("pmdcheck: flow rule #0 ethertype 0x88b5 -> queue 2"),
                "{o}"
            );
            let rules = [(FlowRule::ethertype(STEERED_ETHERTYPE), 2)];
            let reta = rss::reta_avoiding(&rss::default_reta(RXQ), RXQ, &[2]);
            let by_data: std::collections::HashMap<String, &Vec<u8>> =
                frames.iter().map(|f| (rig::frames::hex(f), f)).collect();
            let mut seen = 0;
            for line in o.lines().filter(|l| l.starts_with("rx ")) {
                let data = rig::pmdcheck::field(line, "data").expect("data");
                let f = by_data
                    .get(data)
                    .unwrap_or_else(|| panic!("a frame that was not sent: {line}"));
                let matched = FlowRule::ethertype(STEERED_ETHERTYPE).matches(f);
                assert_eq!(
                    rig::pmdcheck::field(line, "flow"),
                    Some(if matched { "1" } else { "0" }),
                    "the device reports an ETQF match exactly for EtherType 0x88b5: {line}"
                );
                assert_eq!(
                    rig::pmdcheck::num(line, "q") as usize,
                    queue_of(f, &rules, &reta),
                    "{line}"
                );
                assert_ne!(
                    rig::pmdcheck::num(line, "q"),
                    2,
                    "RSS spares the rule's queue: {line}"
                );
                seen += 1;
            }
            assert_eq!(seen, frames.len(), "frames received:\n{o}");
        },
    )
}
