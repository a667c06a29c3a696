//! End-to-end tests of the igb (82576) driver: the guest runs `pmdcheck` on
//! the emulated 82576, the host-side frame peer sends and receives frames on
//! its wire, and the test checks every byte, the metadata the driver reports
//! (RSS hash and queue against a Toeplitz model, VLAN, checksum flags), what
//! the device transmitted for checksum/TSO/VLAN offload requests, the port
//! counters, and that every pool buffer is back after close.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pmd::rss::{self, DEFAULT_KEY, HashTypes};
use rig::frames::{self, FrameSpec, Ip, L4, hex, strip_vlan};
use rig::{Vm, VmConfig, nic_mac, nic_pci};

const IGB: usize = 0;
const READY: Duration = Duration::from_secs(90);
const RECV: Duration = Duration::from_secs(10);

fn ip4() -> Ip {
    Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
}
fn ip6() -> Ip {
    Ip::V6(
        "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        "2001:db8::2".parse::<Ipv6Addr>().unwrap(),
    )
}

fn spec(ip: Ip, l4: L4, len: usize, n: u16) -> FrameSpec {
    FrameSpec {
        ip,
        l4,
        sport: 1000 + n,
        dport: 5000 + n.wrapping_mul(7),
        seed: n as u8,
        seq: 1000 * u32::from(n),
        ..FrameSpec::udp4(nic_mac(IGB), len)
    }
}

/// `key=value` of a word in a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn num(line: &str, key: &str) -> u64 {
    let v = field(line, key).unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    v.parse()
        .or_else(|_| u64::from_str_radix(v.trim_start_matches("0x"), 16))
        .unwrap_or_else(|_| panic!("bad {key}={v}"))
}

fn line_with<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

struct Expect {
    data: Vec<u8>,
    vlan: Option<u16>,
    hash: Option<u32>,
    ip: &'static str,
    l4: &'static str,
}

#[test]
fn igb_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags() {
    rig::retry_on_emulator_fault(
        "igb_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags",
        || {
            let mut specs = Vec::new();
            let mut n = 0u16;
            for len in [60usize, 64, 128, 511, 1000, 1514] {
                for (ip, l4) in [
                    (ip4(), L4::Udp),
                    (ip4(), L4::Tcp),
                    (ip6(), L4::Udp),
                    (ip6(), L4::Tcp),
                ] {
                    specs.push(spec(ip, l4, len, n));
                    n += 1;
                }
            }
            // 32 more TCP/IPv4 flows so all four queues see traffic.
            for _ in 0..32 {
                specs.push(spec(ip4(), L4::Tcp, 64, n));
                n += 1;
            }
            // Tagged frames (stripped), jumbo frames, broken checksums.
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

            let mut expect: HashMap<String, Expect> = HashMap::new();
            let mut frames_out = Vec::new();
            for s in &specs {
                let f = s.build();
                let v4 = matches!(s.ip, Ip::V4(..));
                let e = Expect {
                    data: strip_vlan(&f),
                    vlan: s.vlan,
                    hash: rss::frame_hash(&DEFAULT_KEY, HashTypes::ALL, &f),
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
                "pmdcheck rx-dump --pci {} --rxq 4 --mtu 9000 --vlan-strip --count {} --idle-ms 8000",
                nic_pci(IGB),
                frames_out.len()
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            vm.wait_for_line("pmdcheck: ready", READY)
                .expect("pmdcheck ready");
            for f in &frames_out {
                vm.peer(IGB).send(f).expect("send");
                std::thread::sleep(Duration::from_millis(5));
            }
            let out = vm.wait().expect("guest run");
            assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);

            let reta = rss::default_reta(4);
            let mut per_queue = [0u64; 4];
            let mut seen = 0;
            for line in out.output.lines().filter(|l| l.starts_with("rx ")) {
                let data = field(line, "data").expect("data");
                let e = expect.get(data).unwrap_or_else(|| {
                    panic!("received a frame that was not sent (or changed): {line}")
                });
                let q = num(line, "q") as usize;
                per_queue[q] += 1;
                assert_eq!(num(line, "len") as usize, e.data.len(), "{line}");
                match e.hash {
                    Some(h) => {
                        assert_eq!(field(line, "rss_ok"), Some("1"), "{line}");
                        assert_eq!(
                            num(line, "rss") as u32,
                            h,
                            "RSS hash vs the Toeplitz model: {line}"
                        );
                        assert_eq!(
                            q,
                            usize::from(rss::queue_for_hash(&reta, h)),
                            "queue vs RETA: {line}"
                        );
                    }
                    None => assert_eq!(field(line, "rss_ok"), Some("0"), "{line}"),
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
                per_queue.iter().all(|&c| c > 0),
                "RSS spread over 4 queues: {per_queue:?}"
            );

            let stats = line_with(&out.output, "stats ");
            assert_eq!(num(stats, "ipackets"), frames_out.len() as u64, "{stats}");
            assert_eq!(num(stats, "ierrors"), 0, "{stats}");
            assert_eq!(num(stats, "imissed"), 0, "{stats}");
            let q = line_with(&out.output, "qstats ");
            let rx: Vec<u64> = field(q, "rx")
                .unwrap()
                .split(',')
                .map(|v| v.parse().unwrap())
                .collect();
            assert_eq!(rx, per_queue.to_vec(), "per-queue counters: {q}");
            assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
        },
    )
}

#[test]
fn igb_echoes_frames_of_every_size_byte_for_byte_and_counts_them() {
    rig::retry_on_emulator_fault(
        "igb_echoes_frames_of_every_size_byte_for_byte_and_counts_them",
        || {
            let mut frames_out = Vec::new();
            let mut n = 0u16;
            for len in [
                60usize, 61, 100, 127, 128, 255, 256, 511, 512, 1023, 1024, 1500, 1514,
            ] {
                for (ip, l4) in [
                    (ip4(), L4::Udp),
                    (ip4(), L4::Tcp),
                    (ip6(), L4::Udp),
                    (ip6(), L4::Tcp),
                ] {
                    frames_out.push(spec(ip, l4, len, n).build());
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
            let windows = 32;
            let window = 64;
            let total = frames_out.len() + windows * window;
            let cmd = format!(
                "pmdcheck echo --pci {} --mtu 9000 --count {total} --idle-ms 10000",
                nic_pci(IGB)
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            vm.wait_for_line("pmdcheck: ready", READY)
                .expect("pmdcheck ready");
            let peer = vm.peer(IGB);
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
            assert_eq!(peer_received, total as u64);
            if let Some(m) = out.output.lines().find(|l| l.starts_with("mmio ")) {
                println!("igb echo MMIO: {m}");
            }
            assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
        },
    )
}

#[test]
fn igb_transmit_offloads_are_what_the_peer_receives() {
    rig::retry_on_emulator_fault("igb_transmit_offloads_are_what_the_peer_receives", || {
        let pci = nic_pci(IGB);
        let cmd = format!(
            "pmdcheck echo --pci {pci} --count 4 --csum --tag csum && \
             pmdcheck echo --pci {pci} --mtu 9000 --count 2 --tso 1000 --tag tso && \
             pmdcheck echo --pci {pci} --count 2 --vlan 100 --tag vlan && \
             pmdcheck echo --pci {pci} --count 2 --segments 3 --csum --tag segs"
        );
        let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
        let peer = vm.peer(IGB);

        // Checksum offload: templates with every checksum zeroed come back with
        // the checksums a full software build computes.
        vm.wait_for_line("pmdcheck: ready csum", READY)
            .expect("ready");
        for (i, (ip, l4)) in [
            (ip4(), L4::Udp),
            (ip4(), L4::Tcp),
            (ip6(), L4::Udp),
            (ip6(), L4::Tcp),
        ]
        .into_iter()
        .enumerate()
        {
            let s = spec(ip, l4, 300 + i * 100, i as u16);
            peer.send(
                &FrameSpec {
                    no_csum: true,
                    ..s.clone()
                }
                .build(),
            )
            .unwrap();
            let got = peer.recv(RECV).expect("checksummed frame");
            assert_eq!(hex(&got), hex(&s.build()), "checksum offload {ip:?} {l4:?}");
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
            let tp = frames::parse(&template).unwrap();
            let payload = tp.payload(&template).to_vec();
            peer.send(&template).unwrap();
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

        // VLAN insertion.
        vm.wait_for_line("pmdcheck: ready vlan", READY)
            .expect("ready");
        for i in 0..2u16 {
            let f = spec(ip4(), L4::Udp, 200, 200 + i).build();
            peer.send(&f).unwrap();
            let got = peer.recv(RECV).expect("tagged frame");
            assert_eq!(hex(&got), hex(&frames::insert_vlan(&f, 100)), "VLAN insert");
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
            .unwrap();
            let got = peer.recv(RECV).expect("multi-segment frame");
            assert_eq!(hex(&got), hex(&s.build()), "three-segment transmit");
        }

        let out = vm.wait().expect("guest run");
        assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);
        assert!(
            out.output.contains("tx_tso_packets=2"),
            "TSO counter:\n{}",
            out.output
        );
        let pools: Vec<&str> = out
            .output
            .lines()
            .filter(|l| l.starts_with("pool "))
            .collect();
        assert_eq!(pools, vec!["pool in_use=0"; 4]);
    })
}
