//! End-to-end tests of the e1000e (82574L) driver: the guest runs
//! `pmdcheck` on the emulated 82574L (which `pmd::Port::open` picks by PCI
//! ID), the host-side frame peer sends and receives frames on its wire, and
//! the test checks every byte, the metadata the driver reports (RSS hash and
//! queue against a Toeplitz model restricted to the 82574L's hash types,
//! VLAN, checksum flags), what the device transmitted for checksum, TSO and
//! VLAN requests, the port counters, and that every pool buffer is back
//! after close. The last test forwards between the igb and the e1000e port.

use std::collections::HashMap;
use std::time::Duration;

use pmd::rss::{self, DEFAULT_KEY, HashTypes};
use rig::frames::{self, FrameSpec, Ip, L4, hex, strip_vlan};
use rig::pmdcheck::{field, flow, ip4, ip6, line_with, lines_with, list, num};
use rig::{Vm, VmConfig, nic_mac, nic_pci};

const IGB: usize = 0;
const E1000E: usize = 1;
const READY: Duration = Duration::from_secs(90);
const RECV: Duration = Duration::from_secs(10);

fn spec(ip: Ip, l4: L4, len: usize, n: u16) -> FrameSpec {
    flow(nic_mac(E1000E), ip, l4, len, n)
}

const PROTOS: [(fn() -> Ip, L4); 4] = [
    (ip4, L4::Udp),
    (ip4, L4::Tcp),
    (ip6, L4::Udp),
    (ip6, L4::Tcp),
];

struct Expect {
    data: Vec<u8>,
    vlan: Option<u16>,
    hash: Option<u32>,
    ip: &'static str,
    l4: &'static str,
}

#[test]
fn e1000e_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags() {
    rig::retry_on_emulator_fault(
        "e1000e_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags",
        || {
            let mut specs = Vec::new();
            let mut n = 0u16;
            for len in [60usize, 64, 128, 511, 1000, 1514] {
                for (ip, l4) in PROTOS {
                    specs.push(spec(ip(), l4, len, n));
                    n += 1;
                }
            }
            // More TCP/IPv4 flows so both queues surely see traffic.
            for _ in 0..16 {
                specs.push(spec(ip4(), L4::Tcp, 64, n));
                n += 1;
            }
            // Tagged frames (stripped), jumbo frames (several buffers), broken
            // checksums.
            specs.push(FrameSpec {
                vlan: Some(0x2005),
                ..spec(ip4(), L4::Tcp, 1518, n)
            });
            specs.push(FrameSpec {
                vlan: Some(7),
                ..spec(ip6(), L4::Udp, 200, n + 1)
            });
            specs.push(spec(ip4(), L4::Udp, 9014, n + 2));
            specs.push(spec(ip6(), L4::Tcp, 8000, n + 3));
            specs.push(FrameSpec {
                bad_ip_csum: true,
                ..spec(ip4(), L4::Udp, 100, n + 4)
            });
            specs.push(FrameSpec {
                bad_l4_csum: true,
                ..spec(ip4(), L4::Tcp, 300, n + 5)
            });
            specs.push(FrameSpec {
                bad_l4_csum: true,
                ..spec(ip6(), L4::Udp, 300, n + 6)
            });

            // The 82574L hashes IPv4, TCP/IPv4, IPv6 and TCP/IPv6; UDP packets get
            // the address-only hash.
            let types = HashTypes::ALL.intersection(HashTypes::NO_UDP);
            let mut expect: HashMap<String, Expect> = HashMap::new();
            let mut frames_out = Vec::new();
            for s in &specs {
                let f = s.build();
                let v4 = matches!(s.ip, Ip::V4(..));
                let e = Expect {
                    data: strip_vlan(&f),
                    vlan: s.vlan,
                    hash: rss::frame_hash(&DEFAULT_KEY, types, &f),
                    ip: match (v4, s.bad_ip_csum) {
                        (false, _) => "-",
                        (true, false) => "good",
                        (true, true) => "bad",
                    },
                    l4: if s.bad_l4_csum { "bad" } else { "good" },
                };
                assert!(
                    expect.insert(hex(&e.data), e).is_none(),
                    "frames must differ"
                );
                frames_out.push(f);
            }

            let cmd = format!(
                "pmdcheck rx-dump --pci {} --rxq 2 --mtu 9000 --vlan-strip --count {} --idle-ms 8000",
                nic_pci(E1000E),
                frames_out.len()
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            vm.wait_for_line("pmdcheck: ready", READY)
                .expect("pmdcheck ready");
            for f in &frames_out {
                vm.peer(E1000E).send(f).expect("send");
                std::thread::sleep(Duration::from_millis(5));
            }
            let out = vm.wait().expect("guest run");
            assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);
            assert!(
                out.output.contains("driver=e1000e device=\"82574L\""),
                "Port::open picked the e1000e driver:\n{}",
                out.output
            );

            let reta = rss::default_reta(2);
            let mut per_queue = [0u64; 2];
            let mut udp_address_hashes = 0;
            let mut seen = 0;
            for line in lines_with(&out.output, "rx ") {
                let data = field(line, "data").expect("data");
                let e = expect.get(data).unwrap_or_else(|| {
                    panic!("received a frame that was not sent (or changed): {line}")
                });
                let q = num(line, "q") as usize;
                per_queue[q] += 1;
                assert_eq!(num(line, "len") as usize, e.data.len(), "{line}");
                let h = e.hash.expect("every test frame is IP: hashed");
                assert_eq!(field(line, "rss_ok"), Some("1"), "{line}");
                assert_eq!(
                    num(line, "rss") as u32,
                    h,
                    "RSS hash vs the Toeplitz model without UDP types: {line}"
                );
                assert_eq!(
                    q,
                    usize::from(rss::queue_for_hash(&reta, h)),
                    "queue vs RETA: {line}"
                );
                if rss::frame_hash(&DEFAULT_KEY, HashTypes::ALL, &e.data) != Some(h) {
                    udp_address_hashes += 1;
                }
                let vlan = e.vlan.map_or("-".to_string(), |v| v.to_string());
                assert_eq!(field(line, "vlan"), Some(vlan.as_str()), "{line}");
                assert_eq!(field(line, "ip"), Some(e.ip), "IP checksum flag: {line}");
                if e.ip != "bad" {
                    assert_eq!(field(line, "l4"), Some(e.l4), "L4 checksum flag: {line}");
                }
                if e.data.len() > 2048 {
                    assert!(
                        num(line, "segs") > 1,
                        "jumbo frames span several buffers: {line}"
                    );
                }
                seen += 1;
            }
            assert_eq!(seen, frames_out.len(), "frames received:\n{}", out.output);
            assert!(
                udp_address_hashes > 0,
                "UDP frames were hashed on addresses only"
            );
            assert!(
                per_queue.iter().all(|&c| c > 0),
                "RSS spread over 2 queues: {per_queue:?}"
            );

            let stats = line_with(&out.output, "stats ");
            assert_eq!(num(stats, "ipackets"), frames_out.len() as u64, "{stats}");
            assert_eq!(num(stats, "ierrors"), 0, "{stats}");
            assert_eq!(num(stats, "imissed"), 0, "{stats}");
            let q = line_with(&out.output, "qstats ");
            assert_eq!(list(q, "rx"), per_queue.to_vec(), "per-queue counters: {q}");
            assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
        },
    )
}

#[test]
fn e1000e_echoes_frames_of_every_size_byte_for_byte_and_counts_them() {
    rig::retry_on_emulator_fault(
        "e1000e_echoes_frames_of_every_size_byte_for_byte_and_counts_them",
        || {
            let mut frames_out = Vec::new();
            let mut n = 0u16;
            for len in [
                60usize, 61, 100, 127, 128, 255, 256, 511, 512, 1023, 1024, 1500, 1514,
            ] {
                for (ip, l4) in PROTOS {
                    frames_out.push(spec(ip(), l4, len, n).build());
                    n += 1;
                }
            }
            frames_out.push(
                FrameSpec {
                    vlan: Some(42),
                    ..spec(ip4(), L4::Udp, 1518, n)
                }
                .build(),
            );
            frames_out.push(spec(ip4(), L4::Tcp, 9014, n + 1).build());
            frames_out.push(spec(ip6(), L4::Udp, 4000, n + 2).build());
            // Steady state: 64-byte frames in windows of 64.
            let (windows, window) = (32, 64);
            let total = frames_out.len() + windows * window;
            let cmd = format!(
                "pmdcheck echo --pci {} --mtu 9000 --count {total} --idle-ms 10000",
                nic_pci(E1000E)
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            vm.wait_for_line("pmdcheck: ready", READY)
                .expect("pmdcheck ready");
            let peer = vm.peer(E1000E);
            let mut bytes = 0u64;
            for f in &frames_out {
                peer.send(f).expect("send");
                let back = peer
                    .recv(RECV)
                    .unwrap_or_else(|| panic!("no echo of a {}-byte frame", f.len()));
                assert_eq!(
                    hex(&back),
                    hex(f),
                    "echo of a {}-byte frame differs",
                    f.len()
                );
                bytes += f.len() as u64;
            }
            let small = spec(ip4(), L4::Udp, 64, 9999).build();
            for _ in 0..windows {
                for _ in 0..window {
                    peer.send(&small).expect("send");
                }
                let back = peer.recv_n(window, RECV);
                assert_eq!(back.len(), window, "steady-state echoes");
                assert!(back.iter().all(|b| b == &small));
                bytes += (window * small.len()) as u64;
            }
            let peer_received = peer.received();
            let out = vm.wait().expect("guest run");
            assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);
            // Hardware counters (GPRC/GPTC, GORC/GOTC less CRC) ...
            let stats = line_with(&out.output, "stats ");
            assert_eq!(num(stats, "ipackets"), total as u64, "{stats}");
            assert_eq!(num(stats, "opackets"), total as u64, "{stats}");
            assert_eq!(num(stats, "ibytes"), bytes, "{stats}");
            assert_eq!(num(stats, "obytes"), bytes, "{stats}");
            assert_eq!(
                num(stats, "ierrors") + num(stats, "oerrors") + num(stats, "imissed"),
                0,
                "{stats}"
            );
            // ... the driver's per-queue counters ...
            let q = line_with(&out.output, "qstats ");
            assert_eq!(list(q, "rx"), vec![total as u64], "{q}");
            assert_eq!(list(q, "tx"), vec![total as u64], "{q}");
            // ... and what the peer saw.
            assert_eq!(peer_received, total as u64);
            if let Some(m) = out.output.lines().find(|l| l.starts_with("mmio ")) {
                println!("e1000e echo MMIO: {m}");
            }
            assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
        },
    )
}

#[test]
fn e1000e_transmit_offloads_are_what_the_peer_receives() {
    rig::retry_on_emulator_fault(
        "e1000e_transmit_offloads_are_what_the_peer_receives",
        || {
            let pci = nic_pci(E1000E);
            let cmd = format!(
                "pmdcheck echo --pci {pci} --count 4 --csum --tag csum && \
             pmdcheck echo --pci {pci} --mtu 9000 --count 2 --tso 1000 --tag tso && \
             pmdcheck echo --pci {pci} --count 2 --vlan 100 --tag vlan && \
             pmdcheck echo --pci {pci} --count 2 --vlan 101 --vlan-strip --tag hwvlan && \
             pmdcheck echo --pci {pci} --count 2 --segments 3 --csum --tag segs"
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            let peer = vm.peer(E1000E);

            // Checksum offload through the context descriptor: templates with every
            // checksum zeroed come back with the checksums a software build has.
            vm.wait_for_line("pmdcheck: ready csum", READY)
                .expect("ready");
            for (i, (ip, l4)) in PROTOS.into_iter().enumerate() {
                let s = spec(ip(), l4, 300 + i * 100, i as u16);
                peer.send(
                    &FrameSpec {
                        no_csum: true,
                        ..s.clone()
                    }
                    .build(),
                )
                .expect("send");
                let got = peer.recv(RECV).expect("checksummed frame");
                assert_eq!(
                    hex(&got),
                    hex(&s.build()),
                    "checksum offload {:?} {l4:?}",
                    s.ip
                );
            }

            // TSO: a jumbo TCP frame comes back as MSS-sized segments.
            vm.wait_for_line("pmdcheck: ready tso", READY)
                .expect("ready");
            for (k, (ip, len)) in [(ip4(), 8000usize), (ip6(), 5000)].into_iter().enumerate() {
                let s = FrameSpec {
                    no_csum: true,
                    ..spec(ip, L4::Tcp, len, 100 + k as u16)
                };
                let template = s.build();
                let tp = frames::parse(&template).expect("template parses");
                let payload = tp.payload(&template).to_vec();
                peer.send(&template).expect("send");
                let nseg = payload.len().div_ceil(1000);
                let segs = peer.recv_n(nseg, RECV);
                assert_eq!(segs.len(), nseg, "TSO segment count for {len} bytes");
                let mut joined = Vec::new();
                for (i, seg) in segs.iter().enumerate() {
                    let p = frames::parse(seg).expect("segment parses");
                    assert!(p.ip_csum_ok && p.l4_csum_ok, "segment {i} checksums");
                    assert_eq!(
                        p.tcp_seq,
                        Some(s.seq + (i * 1000) as u32),
                        "segment {i} sequence"
                    );
                    assert_eq!(
                        &seg[..tp.l3_start],
                        &template[..tp.l3_start],
                        "segment {i} L2 header"
                    );
                    assert_eq!(
                        &seg[p.l4_start..p.l4_start + 4],
                        &template[tp.l4_start..tp.l4_start + 4],
                        "segment {i} ports"
                    );
                    let pl = p.payload(seg);
                    assert!(pl.len() <= 1000, "segment {i} payload {} > MSS", pl.len());
                    joined.extend_from_slice(pl);
                }
                assert_eq!(joined, payload, "TSO payload reassembles");
            }

            // VLAN insertion: without VLAN stripping (CTRL.VME off) the ring
            // inserts the tag in software; with it, the data descriptor's VLE does.
            for (tag, tci, base) in [("vlan", 100u16, 200u16), ("hwvlan", 101, 250)] {
                vm.wait_for_line(&format!("pmdcheck: ready {tag}"), READY)
                    .expect("ready");
                for i in 0..2u16 {
                    let sent = spec(ip4(), L4::Udp, 200, base + i).build();
                    peer.send(&sent).expect("send");
                    let got = peer.recv(RECV).expect("tagged frame");
                    // The same frame with 81 00 <tci> after the addresses.
                    let mut tagged = sent[..12].to_vec();
                    tagged.extend_from_slice(&[0x81, 0x00]);
                    tagged.extend_from_slice(&tci.to_be_bytes());
                    tagged.extend_from_slice(&sent[12..]);
                    assert_eq!(hex(&got), hex(&tagged), "VLAN insert ({tag})");
                    assert_eq!(
                        strip_vlan(&got),
                        sent,
                        "VLAN insert ({tag}) keeps the frame"
                    );
                }
            }

            // Multi-segment transmit with checksum offload.
            vm.wait_for_line("pmdcheck: ready segs", READY)
                .expect("ready");
            for i in 0..2u16 {
                let s = spec(ip4(), L4::Tcp, 1000, 300 + i);
                peer.send(
                    &FrameSpec {
                        no_csum: true,
                        ..s.clone()
                    }
                    .build(),
                )
                .expect("send");
                let got = peer.recv(RECV).expect("multi-segment frame");
                assert_eq!(hex(&got), hex(&s.build()), "three-segment transmit");
            }

            let out = vm.wait().expect("guest run");
            assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);
            assert!(
                out.output.contains("tx_tso_packets=2"),
                "TSO counter (TSCTC):\n{}",
                out.output
            );
            assert_eq!(lines_with(&out.output, "pool "), vec!["pool in_use=0"; 5]);
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
