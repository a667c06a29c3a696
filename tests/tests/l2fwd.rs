//! The l2fwd example app in the QEMU guest: frames cross between the igb
//! and the e1000e both ways, with DPDK l2fwd's address rewrite, and every
//! buffer is back in the pool at the end.

use rig::frames::FrameSpec;
use rig::{Vm, VmConfig, nic_mac, nic_pci};
use std::time::Duration;

#[test]
fn l2fwd_forwards_both_ways_and_rewrites_addresses() {
    rig::retry_on_emulator_fault("l2fwd_forwards_both_ways_and_rewrites_addresses", || {
        let n = 40;
        let cmd = format!("l2fwd {} {} --packets {}", nic_pci(0), nic_pci(1), 2 * n);
        let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
        vm.wait_for_line("l2fwd: forwarding", Duration::from_secs(90))
            .expect("l2fwd starts");
        for (from, to) in [(0usize, 1usize), (1, 0)] {
            let sent: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    FrameSpec {
                        seed: i as u8,
                        ..FrameSpec::udp4(nic_mac(from), 64 + 10 * i)
                    }
                    .build()
                })
                .collect();
            for f in &sent {
                vm.peer(from).send(f).expect("send");
            }
            let got = vm.peer(to).recv_n(n, Duration::from_secs(10));
            assert_eq!(got.len(), n, "port {from} -> {to}");
            for (s, g) in sent.iter().zip(&got) {
                assert_eq!(g[0..6], [2, 0, 0, 0, 0, to as u8], "destination");
                assert_eq!(g[6..12], nic_mac(to), "source is the sending port");
                assert_eq!(g[12..], s[12..], "the rest untouched");
            }
        }
        let out = vm.wait().expect("l2fwd ends");
        assert!(out.success(), "{}", out.output);
        assert!(
            out.output.contains(&format!(
                "forwarded {n} (port 0 -> 1) and {n} (port 1 -> 0), dropped 0"
            )),
            "{}",
            out.output
        );
        assert!(
            out.output.contains("pool in use after close: 0"),
            "{}",
            out.output
        );
    })
}
