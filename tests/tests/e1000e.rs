//! End-to-end tests of the e1000e (82574L) driver: the guest runs
//! `pmdcheck` on the emulated 82574L (which `pmd::Port::open` picks by PCI
//! ID), the host-side frame peer sends and receives frames on its wire, and
//! the test checks every byte, the metadata the driver reports (RSS hash and
//! queue against a Toeplitz model restricted to the 82574L's hash types,
//! VLAN, checksum flags), what the device transmitted for checksum, TSO and
//! VLAN requests, the port counters, and that every pool buffer is back
//! after close. The last test forwards between the igb and the e1000e port.

use pmd::rss::{self, DEFAULT_KEY, HashTypes};
use rig::frames::hex;
use rig::pmdcheck::{
    self, PROTOS, READY, RECV, RssModel, TestPort, VlanInsert, flow, line_with, lines_with, num,
};
use rig::{Vm, VmConfig, nic_mac, nic_pci};

const IGB: usize = 0;
const E1000E: usize = 1;
const PORT: TestPort = TestPort {
    index: E1000E,
    driver: "e1000e",
    device: "82574L",
};

#[test]
fn e1000e_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags() {
    rig::retry_on_emulator_fault(
        "e1000e_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags",
        || {
            // The 82574L hashes IPv4, TCP/IPv4, IPv6 and TCP/IPv6; UDP packets
            // get the address-only hash.
            let types = HashTypes::ALL.intersection(HashTypes::NO_UDP);
            let reta = rss::default_reta(2);
            let out = pmdcheck::receive_every_frame(
                PORT,
                &RssModel {
                    queues: 2,
                    hash: &|f| rss::frame_hash(&DEFAULT_KEY, types, f),
                    queue_of: &|h| usize::from(rss::queue_for_hash(&reta, h)),
                },
            );
            let all_types = |f: &[u8]| rss::frame_hash(&DEFAULT_KEY, HashTypes::ALL, f);
            assert!(
                pmdcheck::hashed_otherwise(&out.output, all_types) > 0,
                "UDP frames were hashed on addresses only"
            );
        },
    )
}

#[test]
fn e1000e_with_one_queue_reports_the_rss_hash_only_when_asked_and_checksum_flags_by_default() {
    rig::retry_on_emulator_fault(
        "e1000e_with_one_queue_reports_the_rss_hash_only_when_asked_and_checksum_flags_by_default",
        || {
            let types = HashTypes::ALL.intersection(HashTypes::NO_UDP);
            pmdcheck::rx_offloads_only_when_asked(
                PORT,
                "--rss-hash",
                Some(&move |f| rss::frame_hash(&DEFAULT_KEY, types, f)),
                true,
            )
        },
    )
}

#[test]
fn e1000e_echoes_frames_of_every_size_byte_for_byte_and_counts_them() {
    rig::retry_on_emulator_fault(
        "e1000e_echoes_frames_of_every_size_byte_for_byte_and_counts_them",
        || pmdcheck::echo_every_size(PORT),
    )
}

#[test]
fn e1000e_transmit_offloads_are_what_the_peer_receives() {
    rig::retry_on_emulator_fault(
        "e1000e_transmit_offloads_are_what_the_peer_receives",
        || {
            // Without VLAN stripping (CTRL.VME off) the ring inserts the tag in
            // software; with it, the data descriptor's VLE does.
            pmdcheck::transmit_offloads(
                PORT,
                &[
                    VlanInsert {
                        tag: "vlan",
                        tci: 100,
                        vlan_strip: false,
                        first_flow: 200,
                    },
                    VlanInsert {
                        tag: "hwvlan",
                        tci: 101,
                        vlan_strip: true,
                        first_flow: 250,
                    },
                ],
            )
        },
    )
}

#[test]
fn igb_and_e1000e_forward_to_each_other() {
    rig::retry_on_emulator_fault("igb_and_e1000e_forward_to_each_other", || {
        // Frames for each direction, addressed to the receiving port's MAC.
        let mut to_e1000e = Vec::new();
        let mut to_igb = Vec::new();
        let mut n = 0u16;
        for len in [60usize, 128, 512, 1000, 1514] {
            for (ip, l4) in PROTOS {
                to_e1000e.push(flow(nic_mac(IGB), ip(), l4, len, n).build());
                to_igb.push(flow(nic_mac(E1000E), ip(), l4, len, n + 1000).build());
                n += 1;
            }
        }
        let rounds = 8;
        let total = rounds * (to_e1000e.len() + to_igb.len());
        let cmd = format!(
            "pmdcheck fwd --pci {} --to {} --count {total} --idle-ms 10000",
            nic_pci(IGB),
            nic_pci(E1000E)
        );
        let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
        vm.wait_for_line("pmdcheck: ready", READY)
            .expect("pmdcheck ready");
        let (igb, e1000e) = (vm.peer(IGB), vm.peer(E1000E));
        let (mut bytes_ab, mut bytes_ba) = (0u64, 0u64);
        for _ in 0..rounds {
            // Both directions at once; each window is well under a ring.
            for (a, b) in to_e1000e.iter().zip(&to_igb) {
                igb.send(a).expect("send to igb");
                e1000e.send(b).expect("send to e1000e");
            }
            let got_e = e1000e.recv_n(to_e1000e.len(), RECV);
            let got_i = igb.recv_n(to_igb.len(), RECV);
            let hexes = |v: &[Vec<u8>]| {
                let mut h: Vec<String> = v.iter().map(|f| hex(f)).collect();
                h.sort();
                h
            };
            assert_eq!(
                hexes(&got_e),
                hexes(&to_e1000e),
                "igb -> e1000e, byte for byte"
            );
            assert_eq!(
                hexes(&got_i),
                hexes(&to_igb),
                "e1000e -> igb, byte for byte"
            );
            bytes_ab += to_e1000e.iter().map(|f| f.len() as u64).sum::<u64>();
            bytes_ba += to_igb.iter().map(|f| f.len() as u64).sum::<u64>();
        }
        let out = vm.wait().expect("guest run");
        assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);
        let per_dir = (rounds * to_e1000e.len()) as u64;
        let fwd = line_with(&out.output, "fwd ");
        assert_eq!(num(fwd, "a_to_b"), per_dir, "{fwd}");
        assert_eq!(num(fwd, "b_to_a"), per_dir, "{fwd}");
        let stats = lines_with(&out.output, "stats ");
        assert_eq!(stats.len(), 2, "{}", out.output);
        let (si, se) = (stats[0], stats[1]);
        assert_eq!(num(si, "ipackets"), per_dir, "igb: {si}");
        assert_eq!(num(si, "opackets"), per_dir, "igb: {si}");
        assert_eq!(num(si, "ibytes"), bytes_ab, "igb: {si}");
        assert_eq!(num(si, "obytes"), bytes_ba, "igb: {si}");
        assert_eq!(num(se, "ipackets"), per_dir, "e1000e: {se}");
        assert_eq!(num(se, "opackets"), per_dir, "e1000e: {se}");
        assert_eq!(num(se, "ibytes"), bytes_ba, "e1000e: {se}");
        assert_eq!(num(se, "obytes"), bytes_ab, "e1000e: {se}");
        assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
    })
}
