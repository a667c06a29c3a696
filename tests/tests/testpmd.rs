//! testpmd end to end in the QEMU guest (igb at 0000:00:03.0 = port 0,
//! e1000e at 0000:00:04.0 = port 1): every forward mode, the interactive
//! prompt driven by a script, --json, a capture read back, and bad options.
//!
//! Files come back from the guest as base64 between marker lines on the
//! console (`@@pcap-begin` / `@@pcap-end`).

use apps::testpmd::pcap;
use rig::frames;
use rig::frames::{FrameSpec, L4};
use rig::testpmd_out::{HOST, bad_csums, burst_line, fwd_stats, quick_traffic, udp};
use rig::traffic::{self, TrafficReport};
use rig::{FramePeer, RunOutput, Vm, VmConfig, nic_mac, nic_pci};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Duration;

fn ports() -> String {
    format!("-a {} -a {}", nic_pci(0), nic_pci(1))
}

fn start(cmd: &str) -> Vm {
    let vm = Vm::start(VmConfig::default(), cmd).expect("boot the guest");
    vm.wait_for_line("Forwarding started", Duration::from_secs(90))
        .expect("testpmd starts forwarding");
    vm
}

fn finish(vm: Vm) -> RunOutput {
    let out = vm.wait().expect("guest command ends");
    assert!(out.success(), "testpmd failed:\n{}", out.output);
    assert!(
        out.output.contains("Pool: 0 of"),
        "buffers left in use after close:\n{}",
        out.output
    );
    out
}

/// The JSON lines testpmd printed with --json.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn final_json(out: &str) -> Value {
    json_lines(out)
        .into_iter()
        .rfind(|v| v["event"] == "final")
        .unwrap_or_else(|| panic!("no final JSON line in:\n{out}"))
}

fn send_all(peer: &FramePeer, frames: &[Vec<u8>]) {
    for f in frames {
        peer.send(f).expect("send to the NIC");
    }
}

/// Frames of the generator crossing one port: counted ones and probes.
fn crossed(r: &TrafficReport) -> u64 {
    r.sent + r.probes
}

#[test]
fn io_forwards_both_ways_without_loss_and_reports_it() {
    rig::retry_on_emulator_fault("io_forwards_both_ways_without_loss_and_reports_it", || {
        let vm = start(&format!(
            "testpmd -l 0-1 {} --forward-mode=io --idle-timeout=2 --duration=90",
            ports()
        ));
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 3, 5000))
            });
            let b = s.spawn(|| {
                traffic::run(vm.peer(1), vm.peer(0), &quick_traffic(nic_mac(1), 3, 5000))
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let (a, b) = (a.expect("0 -> 1 traffic"), b.expect("1 -> 0 traffic"));
        assert!(a.lossless(), "port 0 -> 1: {}", a.summary());
        assert!(b.lossless(), "port 1 -> 0: {}", b.summary());
        assert!(
            a.sent > 10_000 && b.sent > 10_000,
            "{} / {}",
            a.summary(),
            b.summary()
        );
        let out = finish(vm);
        assert_eq!(fwd_stats(&out.output, 0), (crossed(&a), 0, crossed(&b), 0));
        assert_eq!(fwd_stats(&out.output, 1), (crossed(&b), 0, crossed(&a), 0));
        assert!(
            out.output
                .contains("Accumulated forward statistics for all ports")
        );
        assert!(out.output.contains("RX-Mpps:") && out.output.contains("TX-Mbit/s:"));
    })
}

fn rewrite_test(mode: &str, extra: &str, check: impl Fn(&[u8], &[u8])) {
    let n = 50;
    let vm = start(&format!(
        "testpmd -l 0-1 {} --forward-mode={mode} {extra} --max-packets={n}",
        ports()
    ));
    let sent: Vec<Vec<u8>> = (0..n)
        .map(|i| udp(nic_mac(0), i as u8, 60 + i * 20))
        .collect();
    send_all(vm.peer(0), &sent);
    let got = vm.peer(1).recv_n(n, Duration::from_secs(10));
    assert_eq!(got.len(), n, "{mode}: frames out of port 1");
    for (s, g) in sent.iter().zip(&got) {
        assert_eq!(s.len(), g.len());
        assert_eq!(s[12..], g[12..], "{mode}: only the MACs may change");
        check(s, g);
    }
    let out = finish(vm);
    assert_eq!(fwd_stats(&out.output, 0).0, n as u64);
    assert_eq!(fwd_stats(&out.output, 1).2, n as u64);
}

#[test]
fn mac_mode_writes_tx_port_and_peer_addresses() {
    rig::retry_on_emulator_fault("mac_mode_writes_tx_port_and_peer_addresses", || {
        let peer = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];
        rewrite_test("mac", "--eth-peer=1,aa:bb:cc:dd:ee:01", |_, g| {
            assert_eq!(g[0..6], peer, "destination is port 1's peer");
            assert_eq!(g[6..12], nic_mac(1), "source is port 1's MAC");
        });
    })
}

#[test]
fn macswap_mode_swaps_addresses() {
    rig::retry_on_emulator_fault("macswap_mode_swaps_addresses", || {
        rewrite_test("macswap", "", |s, g| {
            assert_eq!(g[0..6], s[6..12]);
            assert_eq!(g[6..12], s[0..6]);
        });
    })
}

#[test]
fn rxonly_counts_and_sends_nothing() {
    rig::retry_on_emulator_fault("rxonly_counts_and_sends_nothing", || {
        let n = 100;
        let vm = start(&format!(
            "testpmd -l 0-1 {} --forward-mode=rxonly --json --max-packets={n}",
            ports()
        ));
        let sent: Vec<Vec<u8>> = (0..n).map(|i| udp(nic_mac(0), i as u8, 64)).collect();
        send_all(vm.peer(0), &sent);
        let out = finish(vm);
        assert!(vm_quiet(&out), "nothing may come out");
        let f = final_json(&out.output);
        assert_eq!(f["mode"], "rxonly");
        assert_eq!(f["ports"][0]["rx_packets"], n);
        assert_eq!(f["total"]["tx_packets"], 0);
        assert_eq!(f["total"]["rx_dropped"], 0);
    })
}

/// rxonly sends nothing: the report's TX totals are zero.
fn vm_quiet(out: &RunOutput) -> bool {
    fwd_stats(&out.output, 0).2 == 0 && fwd_stats(&out.output, 1).2 == 0
}

/// Runs a generating mode to its end and returns what port 1's wire saw
/// and the final JSON report.
fn generated(args: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Value) {
    let cmd = format!("testpmd -l 0-1 {} --json {args}", ports());
    let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
    vm.wait_for_line("Bye...", Duration::from_secs(120))
        .expect("testpmd ends");
    // The ports are closed: what they sent is on its way to the peers.
    std::thread::sleep(Duration::from_millis(500));
    let (p0, p1) = (vm.peer(0).drain(), vm.peer(1).drain());
    let out = finish(vm);
    (p0, p1, final_json(&out.output))
}

#[test]
fn txonly_sends_multi_segment_udp_frames() {
    rig::retry_on_emulator_fault("txonly_sends_multi_segment_udp_frames", || {
        let (p0, p1, f) = generated(
            "--forward-mode=txonly --txpkts=64,36 --tx-ip=10.1.0.1,10.1.0.2 --tx-udp=1000,2000 --eth-peer=1,aa:bb:cc:dd:ee:01 --max-packets=2000",
        );
        assert_eq!(f["mode"], "txonly");
        assert!(f["total"]["tx_packets"].as_u64().unwrap() >= 2000, "{f}");
        assert_eq!(
            f["ports"][1]["tx_packets"].as_u64().unwrap(),
            p1.len() as u64
        );
        assert_eq!(
            f["ports"][0]["tx_packets"].as_u64().unwrap(),
            p0.len() as u64
        );
        assert!(!p1.is_empty() && !p0.is_empty());
        for (port, frames, dst) in [
            (1, &p1, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01]),
            (0, &p0, [2, 0, 0, 0, 0, 0]),
        ] {
            for g in frames.iter() {
                assert_eq!(g.len(), 100, "port {port}: 64 + 36 bytes");
                assert_eq!(g[0..6], dst, "port {port}: peer address");
                assert_eq!(g[6..12], nic_mac(port), "port {port}: own address");
                let p = frames::parse(g).expect("UDP/IPv4");
                assert_eq!(
                    p.ip,
                    frames::Ip::V4(Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2))
                );
                assert!(p.ip_csum_ok);
                assert_eq!(
                    g[34..38],
                    [0x03, 0xe8, 0x07, 0xd0],
                    "UDP ports 1000 -> 2000"
                );
                // The second segment's bytes arrive after the first's.
                for (i, b) in g.iter().enumerate().skip(42) {
                    assert_eq!(*b, i as u8, "payload byte {i}");
                }
            }
        }
    })
}

#[test]
fn flowgen_cycles_destination_addresses() {
    rig::retry_on_emulator_fault("flowgen_cycles_destination_addresses", || {
        let (_, p1, f) = generated("--forward-mode=flowgen --flows=8 --max-packets=800");
        assert_eq!(f["mode"], "flowgen");
        assert_eq!(
            f["ports"][1]["tx_packets"].as_u64().unwrap(),
            p1.len() as u64
        );
        assert!(p1.len() >= 16);
        let dsts: Vec<Ipv4Addr> = p1
            .iter()
            .map(|g| match frames::parse(g).expect("UDP/IPv4") {
                p if !p.ip_csum_ok => panic!("bad IPv4 checksum"),
                frames::Parsed {
                    ip: frames::Ip::V4(_, d),
                    ..
                } => d,
                p => panic!("{p:?}"),
            })
            .collect();
        for (i, d) in dsts.iter().enumerate() {
            let want = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 2)) + (i % 8) as u32);
            assert_eq!(*d, want, "frame {i}");
        }
    })
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&HOST);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&HOST);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

fn echo_request(dst: [u8; 6], id: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&HOST);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = frames::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&[0, 1]);
    icmp.extend_from_slice(payload);
    let c = frames::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn icmpecho_answers_arp_and_ping_on_both_ports() {
    rig::retry_on_emulator_fault("icmpecho_answers_arp_and_ping_on_both_ports", || {
        let vm = start(&format!(
            "testpmd -l 0-1 {} --forward-mode=icmpecho --idle-timeout=2 --duration=60",
            ports()
        ));
        for port in 0..2 {
            let peer = vm.peer(port);
            let mac = nic_mac(port);
            peer.send(&arp_request([10, 0, 0, 2])).unwrap();
            let r = peer.recv(Duration::from_secs(5)).expect("ARP reply");
            assert_eq!(r[0..6], HOST, "port {port}: reply to the asker");
            assert_eq!(r[6..12], mac);
            assert_eq!(r[12..14], [0x08, 0x06]);
            assert_eq!(r[20..22], [0, 2], "ARP reply opcode");
            assert_eq!(r[22..28], mac, "sender hardware address");
            assert_eq!(r[28..32], [10, 0, 0, 2], "sender protocol address");
            assert_eq!(r[32..38], HOST);
            assert_eq!(r[38..42], [10, 0, 0, 1]);

            let payload: Vec<u8> = (0..56u8).collect();
            peer.send(&echo_request(mac, 0x4242 + port as u16, &payload))
                .unwrap();
            let r = peer.recv(Duration::from_secs(5)).expect("echo reply");
            assert_eq!(r[0..6], HOST);
            assert_eq!(r[6..12], mac);
            assert_eq!(r[26..30], [10, 0, 0, 2], "from the pinged address");
            assert_eq!(r[30..34], [10, 0, 0, 1]);
            assert_eq!(frames::checksum(&r[14..34]), 0, "IPv4 checksum");
            assert_eq!(r[34], 0, "echo reply");
            assert_eq!(frames::checksum(&r[34..]), 0, "ICMP checksum");
            assert_eq!(r[38..40], (0x4242 + port as u16).to_be_bytes());
            assert_eq!(r[42..], payload[..]);

            // Anything else is not answered.
            peer.send(&udp(mac, 1, 64)).unwrap();
            assert_eq!(peer.recv(Duration::from_millis(500)), None);
        }
        let out = finish(vm);
        assert_eq!(fwd_stats(&out.output, 0), (3, 0, 2, 0));
        assert_eq!(fwd_stats(&out.output, 1), (3, 0, 2, 0));
    })
}

#[test]
fn interactive_prompt_runs_a_script_of_commands() {
    rig::retry_on_emulator_fault("interactive_prompt_runs_a_script_of_commands", || {
        let script = [
            "show port info all",
            "set promisc 0 off",
            "show port info 0",
            "set capture 1 /tmp/i.pcap",
            "start",
            "@sleep 12",
            "show port stats all",
            "show port xstats 0",
            "stop",
            "set fwd macswap",
            "show config fwd",
            "clear port stats all",
            "show port stats 0",
            "bogus command",
            "quit",
        ];
        let feed: Vec<String> = script
            .iter()
            .map(|c| match c.strip_prefix('@') {
                Some(shell) => shell.to_string(),
                None => format!("echo '{c}'"),
            })
            .collect();
        let cmd = format!("({}) | testpmd -i -l 0-1 {}", feed.join("; "), ports());
        let vm = start(&cmd);
        let r = traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 2, 2000))
            .expect("traffic");
        assert!(r.lossless(), "{}", r.summary());
        let out = finish(vm);
        let o = &out.output;
        let info = |port: usize| format!("Infos for port {port}");
        assert!(o.contains(&info(0)) && o.contains(&info(1)), "{o}");
        assert!(
            o.contains("Driver name: igb") && o.contains("Driver name: e1000e"),
            "{o}"
        );
        assert!(o.contains(&format!(
            "MAC address: {}",
            rig::mac_str(&nic_mac(1)).to_uppercase()
        )));
        assert!(o.contains("Promiscuous mode: enabled"));
        // A port shown with its link up shows speed, duplex and the flow
        // control autonegotiation resolved (issue 10 item 8).
        for shown in o.split("Infos for port").skip(1) {
            if shown.contains("Link status: up") {
                assert!(
                    shown.contains("Link speed: 1000 Mbps")
                        && shown.contains("Link duplex: full-duplex")
                        && ["none", "rx", "tx", "full"]
                            .iter()
                            .any(|m| shown.contains(&format!("Flow control: {m}\n"))),
                    "{shown}"
                );
            }
        }
        assert!(
            o.contains("Promiscuous mode: disabled"),
            "set promisc 0 off"
        );
        // show port stats during the run counts every generator frame.
        let n = crossed(&r);
        let stats0 = o
            .split("NIC statistics for port 0")
            .nth(1)
            .expect("port 0 stats");
        assert!(
            stats0.contains(&format!("RX-packets: {n} ")),
            "port 0 RX-packets {n} in:
    {stats0}"
        );
        let stats1 = o
            .split("NIC statistics for port 1")
            .nth(1)
            .expect("port 1 stats");
        assert!(stats1.contains(&format!("TX-packets: {n} ")), "{stats1}");
        assert!(o.contains("NIC extended statistics for port 0"));
        assert!(o.contains("rx_good_packets:"));
        assert_eq!(fwd_stats(o, 0).0, n);
        assert!(
            o.contains(&format!(
                "Capture of port 1: {n} frames written to /tmp/i.pcap, 0 not captured"
            )),
            "{o}"
        );
        assert!(o.contains("Set macswap packet forwarding mode"));
        assert!(o.contains("macswap packet forwarding - ports=2"));
        assert!(o.contains("NIC statistics for port 0 cleared"));
        let after = o.split("cleared").last().unwrap_or("");
        assert!(after.contains("RX-packets: 0 "), "{after}");
        assert!(o.contains("Bad arguments: unknown command \"bogus\""));
    })
}

#[test]
fn json_reports_periodic_and_final_stats() {
    rig::retry_on_emulator_fault("json_reports_periodic_and_final_stats", || {
        let vm = start(&format!(
            "testpmd -l 0-1 {} --json --stats-period=1 --idle-timeout=2 --duration=60",
            ports()
        ));
        let r = traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 3, 5000))
            .expect("traffic");
        assert!(r.lossless(), "{}", r.summary());
        let out = finish(vm);
        let lines = json_lines(&out.output);
        let stats: Vec<&Value> = lines.iter().filter(|v| v["event"] == "stats").collect();
        assert!(stats.len() >= 3, "one stats line a second: {}", stats.len());
        let rx: Vec<u64> = stats
            .iter()
            .map(|v| v["ports"][0]["rx_packets"].as_u64().expect("rx_packets"))
            .collect();
        assert!(rx.windows(2).all(|w| w[0] <= w[1]), "{rx:?}");
        assert!(
            stats
                .iter()
                .any(|v| v["ports"][0]["rx_pps"].as_f64() > Some(1000.0))
        );
        let f = final_json(&out.output);
        let n = crossed(&r);
        assert_eq!(f["ports"][0]["rx_packets"], n);
        assert_eq!(f["ports"][1]["tx_packets"], n);
        assert_eq!(f["ports"][0]["rx_bytes"], n * 60);
        assert_eq!(f["total"]["rx_dropped"], 0);
        assert_eq!(f["total"]["tx_dropped"], 0);
        assert!(f["total"]["rx_mpps"].as_f64().unwrap() > 0.0);
        assert!(f["elapsed_s"].as_f64().unwrap() > 3.0);
    })
}

fn unbase64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | u32::from(if c == b'=' { 0 } else { val(c) });
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    out
}

#[test]
fn capture_writes_a_pcap_tcpdump_reads() {
    rig::retry_on_emulator_fault("capture_writes_a_pcap_tcpdump_reads", || {
        let n = 20;
        let vm = start(&format!(
            "testpmd -l 0-1 {} --capture-out=/tmp/c.pcap --capture-port=1 --max-packets={n} && echo @@pcap-begin && base64 /tmp/c.pcap && echo @@pcap-end",
            ports()
        ));
        let sent: Vec<Vec<u8>> = (0..n)
            .map(|i| udp(nic_mac(0), i as u8, 60 + 50 * i))
            .collect();
        send_all(vm.peer(0), &sent);
        assert_eq!(vm.peer(1).recv_n(n, Duration::from_secs(10)).len(), n);
        let out = finish(vm);
        assert!(out.output.contains(&format!(
            "Capture of port 1: {n} frames written to /tmp/c.pcap, 0 not captured"
        )));
        let b64: String = out
            .output
            .lines()
            .skip_while(|l| *l != "@@pcap-begin")
            .skip(1)
            .take_while(|l| *l != "@@pcap-end")
            .collect();
        let bytes = unbase64(&b64);
        let recs = pcap::read(&bytes).expect("a pcap file");
        assert_eq!(recs.len(), n, "port 1 sent what port 0 received");
        for (r, s) in recs.iter().zip(&sent) {
            assert_eq!(&r.data, s);
            assert_eq!(r.orig_len as usize, s.len());
        }
        let path =
            std::env::temp_dir().join(format!("testpmd-capture-{}.pcap", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let td = std::process::Command::new("tcpdump")
            .args(["-n", "-t", "-q", "-r"])
            .arg(&path)
            .output()
            .expect("tcpdump (scripts/setup installs it)");
        let _ = std::fs::remove_file(&path);
        assert!(
            td.status.success(),
            "{}",
            String::from_utf8_lossy(&td.stderr)
        );
        let text = String::from_utf8_lossy(&td.stdout);
        assert_eq!(text.lines().count(), n, "{text}");
        assert!(
            text.lines()
                .all(|l| l.contains("10.0.0.1.1024 > 10.0.0.2.2048: UDP")),
            "{text}"
        );
    })
}

#[test]
fn invalid_options_give_one_line_and_status_2_before_any_device() {
    rig::retry_on_emulator_fault(
        "invalid_options_give_one_line_and_status_2_before_any_device",
        || {
            let cases = [
                "--rxq=0",
                "--burst=600",
                "--forward-mode=csumx",
                "-l 0,9",
                "--txd=30",
                "--eth-peer=5,02:00:00:00:00:05",
                "--total-num-mbufs=5",
                "--nosuchoption",
            ];
            let script: Vec<String> = cases
                .iter()
                .map(|c| format!("testpmd -a {} {c}; echo \"@@rc=$?\"", nic_pci(0)))
                .collect();
            let out = Vm::run(VmConfig::default(), &script.join("; ")).expect("guest runs");
            assert!(out.success(), "{}", out.output);
            let lines: Vec<&str> = out.output.lines().collect();
            let rcs: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].starts_with("@@rc="))
                .collect();
            assert_eq!(rcs.len(), cases.len(), "{}", out.output);
            let mut prev = 0;
            for (case, &i) in cases.iter().zip(&rcs) {
                assert_eq!(lines[i], "@@rc=2", "{case}: exit status");
                let said: Vec<&str> = lines[prev..i]
                    .iter()
                    .copied()
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                assert_eq!(said.len(), 1, "{case}: one line, got {said:?}");
                assert!(said[0].starts_with("testpmd: "), "{case}: {said:?}");
                prev = i + 1;
            }
            assert!(
                !out.output.contains("Configuring Port"),
                "no device may be touched:\n{}",
                out.output
            );
        },
    )
}

/// A UDP or TCP frame from [`HOST`] to `dst`, optionally with broken IPv4
/// and L4 checksums.
fn l4_frame(dst: [u8; 6], l4: L4, i: usize, bad: bool) -> Vec<u8> {
    FrameSpec {
        src: HOST,
        l4,
        sport: 1000 + i as u16,
        dport: 5000 + i as u16,
        seed: i as u8,
        bad_ip_csum: bad,
        bad_l4_csum: bad,
        ..FrameSpec::udp4(dst, 80 + 10 * i)
    }
    .build()
}

/// The report printed by the `n`th stop (1-based) of a session.
fn nth_report(out: &str, n: usize) -> &str {
    let part = out
        .split("Waiting for lcores to finish...")
        .nth(n)
        .unwrap_or_else(|| panic!("no report {n} in:\n{out}"));
    part.split("Done.").next().unwrap_or(part)
}

/// The numbers of the `CPU cycles/packet=` line: (cycles, packets, MHz).
fn cycles_line(report: &str, mode: &str) -> (u64, u64, u64) {
    let l = report
        .lines()
        .find(|l| l.contains("CPU cycles/packet="))
        .unwrap_or_else(|| panic!("no cycles line in:\n{report}"));
    let num = |after: &str, end: char| -> u64 {
        let rest = l
            .split(after)
            .nth(1)
            .unwrap_or_else(|| panic!("{after} in {l}"));
        rest.split(end)
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{after} in {l}"))
    };
    assert!(l.contains(&format!("total {mode} packets=")), "{l}");
    (
        num("total cycles=", '/'),
        num("packets=", ')'),
        num(") at ", ' '),
    )
}

/// One interactive session (one boot) driven by a script that waits for
/// testpmd's own output: a --cmdline-file picks 5tswap, then csum with
/// `csum set` per port, then `start tx_first 3` in io mode, all with
/// --record-burst-stats and --record-core-cycles.
#[test]
fn fivetswap_csum_tx_first_and_report_extras_in_one_session() {
    rig::retry_on_emulator_fault(
        "fivetswap_csum_tx_first_and_report_extras_in_one_session",
        || {
            // w N PATTERN: wait until testpmd printed PATTERN N times.
            let feed = [
                "w 1 'Read CLI'",
                "echo start",
                "w 1 'Forwarding started'",
                "echo 'set capture 1 /tmp/k.pcap'",
                "w 1 'from now on'",
                "sleep 8",
                "echo stop",
                "echo 'set capture off'",
                "echo 'set fwd csum'",
                "echo 'csum set ip hw 1'",
                "echo 'csum set udp hw 1'",
                "echo 'csum set tcp sw 1'",
                "echo 'csum set sctp hw 1'",
                "echo 'csum show 0'",
                "echo start",
                "w 2 'Forwarding started'",
                "sleep 8",
                "echo stop",
                "echo 'set burst tx delay 20 retry 5'",
                "echo 'set fwd io retry'",
                "echo 'start tx_first 3'",
                "w 3 'Forwarding started'",
                "sleep 3",
                "echo stop",
                "echo quit",
            ];
            let cmd = format!(
                "w() {{ until [ \"$(grep -c \"$2\" /tmp/o 2>/dev/null)\" -ge $1 ]; do sleep 0.2; done; }}; \
             printf 'set fwd 5tswap\\nshow config fwd\\n' > /tmp/c.txt; : > /tmp/o; \
             ({}) | testpmd -i -l 0-1 {} --burst=16 --enable-rx-cksum --stats-period=3 --record-burst-stats --record-core-cycles --cmdline-file=/tmp/c.txt | tee /tmp/o",
                feed.join("; "),
                ports()
            );
            let vm = start(&cmd);
            // `set capture` while forwarding takes effect at once.
            vm.wait_for_line("to /tmp/k.pcap from now on", Duration::from_secs(60))
                .expect("capture attached while forwarding");
            // Phase 1, 5tswap: UDP and TCP frames in on port 0, out of port 1.
            let sent: Vec<Vec<u8>> = (0..20)
                .flat_map(|i| {
                    [
                        l4_frame(nic_mac(0), L4::Udp, i, false),
                        l4_frame(nic_mac(0), L4::Tcp, i, false),
                    ]
                })
                .collect();
            send_all(vm.peer(0), &sent);
            let got = vm.peer(1).recv_n(sent.len(), Duration::from_secs(10));
            assert_eq!(got.len(), sent.len(), "5tswap: frames out of port 1");
            for (s, g) in sent.iter().zip(&got) {
                assert_eq!(g.len(), s.len());
                assert_eq!(g[0..6], s[6..12], "MACs swapped");
                assert_eq!(g[6..12], s[0..6]);
                assert_eq!(g[26..30], s[30..34], "IPv4 addresses swapped");
                assert_eq!(g[30..34], s[26..30]);
                assert_eq!(g[34..36], s[36..38], "L4 ports swapped");
                assert_eq!(g[36..38], s[34..36]);
                assert_eq!(g[38..], s[38..], "nothing else changes");
                let p = frames::parse(g).expect("UDP/TCP over IPv4");
                assert!(p.ip_csum_ok && p.l4_csum_ok, "checksums still right");
            }

            // Phase 2, csum: broken checksums in, right ones out. Port 1
            // computes IP and UDP in hardware, TCP in software; port 0 all in
            // software.
            vm.wait_for_line("csum packet forwarding - ports", Duration::from_secs(60))
                .expect("csum forwarding starts");
            let to1: Vec<Vec<u8>> = (0..12)
                .map(|i| {
                    l4_frame(
                        nic_mac(0),
                        if i % 2 == 0 { L4::Udp } else { L4::Tcp },
                        i,
                        i % 3 != 0,
                    )
                })
                .collect();
            let to0: Vec<Vec<u8>> = (0..6)
                .map(|i| l4_frame(nic_mac(1), L4::Udp, i, true))
                .collect();
            send_all(vm.peer(0), &to1);
            send_all(vm.peer(1), &to0);
            let got1 = vm.peer(1).recv_n(to1.len(), Duration::from_secs(10));
            let got0 = vm.peer(0).recv_n(to0.len(), Duration::from_secs(10));
            assert_eq!(
                (got1.len(), got0.len()),
                (to1.len(), to0.len()),
                "csum: frames out"
            );
            for (port, sent, got) in [(1usize, &to1, &got1), (0, &to0, &got0)] {
                for (s, g) in sent.iter().zip(got.iter()) {
                    assert_eq!(g.len(), s.len());
                    assert_eq!(
                        g[0..6],
                        [2, 0, 0, 0, 0, port as u8],
                        "port {port}: peer address"
                    );
                    assert_eq!(g[6..12], nic_mac(port), "port {port}: own address");
                    let p = frames::parse(g).expect("UDP/TCP over IPv4");
                    assert!(p.ip_csum_ok, "port {port}: IPv4 checksum on the wire");
                    assert!(p.l4_csum_ok, "port {port}: L4 checksum on the wire");
                    assert_eq!(p.payload(g), frames::parse(s).unwrap().payload(s));
                }
            }

            // Phase 3: tx_first 3 in io mode sends exactly 3 bursts of 16 on
            // each port (the peers send nothing back).
            vm.wait_for_line("Bye...", Duration::from_secs(90))
                .expect("testpmd ends");
            std::thread::sleep(Duration::from_millis(500));
            let (t0, t1) = (vm.peer(0).drain(), vm.peer(1).drain());
            let out = finish(vm);
            let o = &out.output;
            assert_eq!(
                (t0.len(), t1.len()),
                (48, 48),
                "tx_first frames on the wires"
            );
            for (port, f) in [(0usize, &t0), (1, &t1)] {
                for g in f.iter() {
                    assert_eq!(g[6..12], nic_mac(port));
                    assert_eq!(g[0..6], [2, 0, 0, 0, 0, port as u8]);
                    assert!(frames::parse(g).is_some_and(|p| p.ip_csum_ok));
                }
            }

            // The cmdline file ran before the prompt.
            assert!(o.contains("testpmd> set fwd 5tswap"), "{o}");
            assert!(o.contains("Set 5tswap packet forwarding mode"));
            assert!(o.contains("Read CLI commands from /tmp/c.txt"));
            // csum set / show, in DPDK's words.
            assert!(
                o.contains("SCTP checksum offload is not supported by port 1"),
                "{o}"
            );
            assert!(o.contains("IP checksum offload is hw\nUDP checksum offload is hw\nTCP checksum offload is sw"), "{o}");

            let r1 = nth_report(o, 1);
            assert!(
                o.contains("Capture of port 1: 40 frames written to /tmp/k.pcap, 0 not captured"),
                "{o}"
            );
            assert!(o.contains("Capture off from the next start"));
            assert_eq!(fwd_stats(r1, 0), (40, 0, 0, 0));
            assert_eq!(fwd_stats(r1, 1), (0, 0, 40, 0));
            let (cyc, pk, mhz) = cycles_line(r1, "5tswap");
            assert_eq!(pk, 40);
            assert!(cyc > 0 && mhz > 0, "{r1}");
            let rx0 = burst_line(r1, 0, "RX").expect("RX-bursts of port 0");
            let tx1 = burst_line(r1, 1, "TX").expect("TX-bursts of port 1");
            assert!(
                rx0.starts_with("RX-bursts : ") && rx0.contains("% of 0 pkts"),
                "{rx0}"
            );
            assert!(
                tx1.starts_with("TX-bursts : ") && tx1.ends_with(']'),
                "{tx1}"
            );

            let r2 = nth_report(o, 2);
            assert_eq!(fwd_stats(r2, 0), (12, 0, 6, 0));
            assert_eq!(fwd_stats(r2, 1), (6, 0, 12, 0));
            let bad_in_0 = (0..12).filter(|i| i % 3 != 0).count() as u64;
            assert_eq!(bad_csums(r2, 0), Some((bad_in_0, bad_in_0)), "{r2}");
            assert_eq!(bad_csums(r2, 1), Some((6, 6)), "{r2}");
            assert_eq!(cycles_line(r2, "csum").1, 18);

            assert!(
                o.contains("Set io packet forwarding mode with retry"),
                "{o}"
            );
            assert!(
                o.contains("io packet forwarding with retry - ports=2"),
                "{o}"
            );
            assert!(
                o.contains("TX retry num: 5, delay between TX retries: 20us"),
                "{o}"
            );
            // --stats-period with -i: samples while forwarding.
            assert!(o.matches("NIC statistics for port 0").count() >= 3, "{o}");
            let r3 = nth_report(o, 3);
            assert_eq!(fwd_stats(r3, 0), (0, 0, 48, 0));
            assert_eq!(fwd_stats(r3, 1), (0, 0, 48, 0));
            for port in 0..2 {
                assert_eq!(
                    burst_line(r3, port, "TX").as_deref(),
                    Some("TX-bursts : 3 [0% of 0 pkts + 100% of 16 pkts]"),
                    "{r3}"
                );
                let rx = burst_line(r3, port, "RX").expect("RX-bursts");
                assert!(rx.ends_with("[100% of 0 pkts]"), "only empty polls: {rx}");
            }
            assert!(
                !r3.contains("CPU cycles/packet"),
                "no packet received, no cycles line"
            );
        },
    )
}

/// Non-interactive runs in one boot: Enter stops a run without a stop
/// condition ("Press enter to exit"); with stdin at end of file a
/// --duration run goes on to its end; --tx-first sends one burst per
/// stream; --txonly-multi-flow varies the source address as DPDK does;
/// noisy's FIFO sends only its overflow, and all of it at flush time.
#[test]
fn batch_enter_eof_tx_first_multi_flow_and_noisy() {
    rig::retry_on_emulator_fault("batch_enter_eof_tx_first_multi_flow_and_noisy", || {
        let p = ports();
        let cmd = format!(
            "(sleep 3; echo) | testpmd -l 0-1 {p}; echo @@rc1=$?; \
             testpmd -l 0-1 {p} --no-telemetry --tx-first --burst=8 --duration=4 --record-burst-stats </dev/null; echo @@rc2=$?; \
             testpmd -l 0-1 {p} --forward-mode=txonly --txonly-multi-flow --tx-ip=10.9.0.1,10.9.0.2 --max-packets=600 <&-; echo @@rc3=$?; \
             testpmd -l 0-1 {p} --forward-mode=noisy --noisy-tx-sw-buffer-size=32 --noisy-lkup-memory=1 --noisy-lkup-num-reads-writes=2 --max-packets=40; echo @@rc4=$?; \
             testpmd -l 0-1 {p} --forward-mode=noisy --noisy-tx-sw-buffer-size=64 --noisy-tx-sw-buffer-flushtime=300 --noisy-forward-mode=macswap --idle-timeout=3 --duration=60; echo @@rc5=$?"
        );
        let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
        vm.wait_for_line("@@rc2=", Duration::from_secs(150))
            .expect("second run ends");
        std::thread::sleep(Duration::from_millis(300));
        let (a0, a1) = (vm.peer(0).drain(), vm.peer(1).drain());
        vm.wait_for_line("@@rc3=", Duration::from_secs(120))
            .expect("third run ends");
        std::thread::sleep(Duration::from_millis(300));
        let m1 = vm.peer(1).drain();
        // Run 4: a FIFO of 32 lets out only the 8 oldest of 40.
        vm.wait_for_line("noisy packet forwarding - ports", Duration::from_secs(60))
            .expect("noisy run starts");
        let sent: Vec<Vec<u8>> = (0..40).map(|i| udp(nic_mac(0), i as u8, 64 + i)).collect();
        send_all(vm.peer(0), &sent);
        let over = vm.peer(1).recv_n(8, Duration::from_secs(10));
        vm.wait_for_line("@@rc4=", Duration::from_secs(60))
            .expect("fourth run ends");
        std::thread::sleep(Duration::from_millis(300));
        let more = vm.peer(1).drain();
        assert_eq!(over, sent[..8], "the overflow, oldest first");
        assert!(more.is_empty(), "{} more frames left the FIFO", more.len());
        // Run 5: the flush time empties the FIFO.
        vm.wait_for_line("after 3.0 s without traffic", Duration::from_secs(60))
            .expect("fifth run starts");
        let sent5: Vec<Vec<u8>> = (0..10).map(|i| udp(nic_mac(0), i as u8, 100 + i)).collect();
        send_all(vm.peer(0), &sent5);
        let flushed = vm.peer(1).recv_n(10, Duration::from_secs(10));
        assert_eq!(flushed.len(), sent5.len(), "all of the FIFO at flush time");
        for (s, g) in sent5.iter().zip(&flushed) {
            // In order, with --noisy-forward-mode=macswap's swap.
            assert_eq!((&g[0..6], &g[6..12]), (&s[6..12], &s[0..6]));
            assert_eq!(g[12..], s[12..]);
        }
        let out = vm.wait().expect("guest command ends");
        let o = &out.output;
        assert!(out.success(), "{o}");
        for rc in ["@@rc1=0", "@@rc2=0", "@@rc3=0", "@@rc4=0", "@@rc5=0"] {
            assert!(o.contains(rc), "{rc} in:\n{o}");
        }
        let runs: Vec<&str> = o.split("@@rc").collect();
        // Run 1: no stop condition; Enter stops it.
        assert!(runs[0].contains("Press enter to exit"), "{}", runs[0]);
        assert!(
            runs[0].contains("Stopping forwarding (enter pressed)"),
            "{}",
            runs[0]
        );
        // Run 2: stdin at its end from the start, yet it runs its 4 s.
        let r2 = runs[1];
        assert!(
            r2.contains("Stopping forwarding (duration reached)"),
            "{r2}"
        );
        let secs: f64 = r2
            .split("Forwarding time: ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .expect("forwarding time");
        assert!(secs >= 4.0, "{secs}");
        assert_eq!(
            (a0.len(), a1.len()),
            (8, 8),
            "--tx-first: one burst of 8 per port"
        );
        assert_eq!(fwd_stats(r2, 0).2, 8);
        assert_eq!(fwd_stats(r2, 1).2, 8);
        assert_eq!(
            burst_line(r2, 1, "TX").as_deref(),
            Some("TX-bursts : 1 [0% of 0 pkts + 100% of 8 pkts]")
        );
        // Run 3 ran with stdin closed: an end of input like any other.
        assert!(!runs[2].contains("reading stdin"), "{}", runs[2]);
        // Run 3: the source is (dst | n << 8) + lcore for the nth frame.
        assert!(
            fwd_stats(runs[2], 1).2 as usize == m1.len() && m1.len() >= 256,
            "{}",
            m1.len()
        );
        for (i, g) in m1.iter().enumerate() {
            let p = frames::parse(g).expect("UDP/IPv4");
            assert!(p.ip_csum_ok, "frame {i}: IPv4 checksum");
            assert_eq!(
                p.ip,
                frames::Ip::V4(
                    Ipv4Addr::new(10, 9, (i % 256) as u8, 3),
                    Ipv4Addr::new(10, 9, 0, 2)
                ),
                "frame {i}"
            );
        }
        // The FIFO's 32 are freed at stop and counted as dropped.
        assert_eq!(fwd_stats(runs[3], 0).0, 40);
        assert_eq!(fwd_stats(runs[3], 1), (0, 0, 8, 32));
        assert_eq!(fwd_stats(runs[4], 0).0, 10);
        assert_eq!(fwd_stats(runs[4], 1), (0, 0, 10, 0));
        assert_eq!(o.matches("Pool: 0 of").count(), 5, "no buffer left in use");
    })
}

/// Issue 14 item 1, in one boot: a prompt session forwards, stops both
/// ports, reconfigures them (2 queue pairs of 256 descriptors, a new MTU)
/// and starts them again on the same devices, then forwards again with
/// exact counts; then restarts port 0 while the generator sends. DPDK's
/// refusals: a forwarding port is not stopped, forwarding needs every port
/// started, a started port is not reconfigured, a closed port does not
/// start. The pool's buffers in use are exactly the rings' after each step
/// (none leaked, none freed early: `dump_mempool`).
#[test]
fn ports_stop_reconfigure_and_start_again_at_the_prompt() {
    rig::retry_on_emulator_fault(
        "ports_stop_reconfigure_and_start_again_at_the_prompt",
        lifecycle_session,
    )
}

fn wait_for_starts(vm: &Vm, n: usize, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while vm.output_so_far().matches("Forwarding started").count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no forwarding start number {n}:\n{}",
            vm.output_so_far()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lifecycle_session() {
    let script = [
        "dump_mempool",
        "start",
        "@sleep 9",
        "port stop 0",
        "stop",
        "port stop 0",
        "start",
        "port config all rxd 256",
        "port start 0",
        "@sleep 4",
        "port stop all",
        "dump_mempool",
        "port config all rxd 256",
        "port config all rxq 2",
        "port config all txq 2",
        "port config mtu 0 2000",
        "port start all",
        "@sleep 6",
        "dump_mempool",
        "show port info 0",
        "start",
        "@sleep 10",
        "stop",
        // Under traffic: forwarding stopped, port 0 restarted and
        // forwarding started again while the generator sends.
        "start",
        "@sleep 3",
        "stop",
        "port stop 0",
        "port start 0",
        "@sleep 1",
        "start",
        "@sleep 9",
        "stop",
        "port stop all",
        "dump_mempool",
        "port close 0",
        "port close 0",
        "port start 0",
        "quit",
    ];
    let feed: Vec<String> = script
        .iter()
        .map(|c| match c.strip_prefix('@') {
            Some(shell) => shell.to_string(),
            None => format!("echo '{c}'"),
        })
        .collect();
    let cmd = format!("({}) | testpmd -i -l 0-1 {}", feed.join("; "), ports());
    let vm = start(&cmd);
    let r1 = traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 3, 2000))
        .expect("traffic before the restart");
    assert!(r1.lossless(), "{}", r1.summary());
    wait_for_starts(&vm, 2, Duration::from_secs(60));
    let r2 = traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 3, 2000))
        .expect("traffic after the restart");
    assert!(r2.lossless(), "{}", r2.summary());
    wait_for_starts(&vm, 3, Duration::from_secs(30));
    let r3 = traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 10, 1000))
        .expect("traffic across a restart");
    let out = finish(vm);
    let o = &out.output;
    let (n1, n2) = (crossed(&r1), crossed(&r2));
    assert!(n1 > 1000 && n2 > 1000, "{n1} / {n2}");
    let mempool: Vec<&str> = o.lines().filter(|l| l.starts_with("mempool <")).collect();
    assert_eq!(mempool.len(), 4, "{o}");
    // Before the first start: both RX rings' 512 buffers posted.
    assert!(mempool[0].contains(": 1024 of"), "{}", mempool[0]);
    // Every port stopped: every buffer back, none leaked.
    assert!(mempool[1].contains(": 0 of"), "{}", mempool[1]);
    // Restarted with 2 RX queues of 256 on each port: exactly those.
    assert!(mempool[2].contains(": 1024 of"), "{}", mempool[2]);
    assert!(mempool[3].contains(": 0 of"), "{}", mempool[3]);
    assert!(
        o.contains("Please remove port 0 from forwarding configuration."),
        "{o}"
    );
    assert!(o.contains("Not all ports were started"), "{o}");
    assert!(o.contains("Please stop all ports first"), "{o}");
    assert!(o.contains("Stopping ports...") && o.contains("Configuring Port 0 (socket 0)"));
    assert!(o.contains(&format!(
        "Port 1: {}",
        rig::mac_str(&nic_mac(1)).to_uppercase()
    )));
    assert!(o.contains("Port 0 is closed") && o.contains("Port 0 is already closed"));
    // As DPDK: a closed port is not a stopped one.
    let closed = o.split("Port 0 is already closed").nth(1).unwrap_or("");
    assert!(closed.contains("Port 0 is now not stopped"), "{closed}");
    // The stop powers the PHY down (DPDK's igb/em stop): the link is down
    // while the port is stopped. (Seen on the igb; QEMU's e1000e ignores
    // BMCR.PDOWN and keeps its link up.)
    assert!(o.contains("Port 0: link down"), "{o}");
    // The forward report of each stop, in order.
    let reports: Vec<&str> = o.split("Telling cores to stop...").skip(1).collect();
    assert_eq!(reports.len(), 4, "{o}");
    assert_eq!(
        fwd_stats(reports[0], 0),
        (n1, 0, 0, 0),
        "before the restart"
    );
    assert_eq!(fwd_stats(reports[0], 1), (0, 0, n1, 0));
    assert_eq!(fwd_stats(reports[1], 0), (n2, 0, 0, 0), "after the restart");
    assert_eq!(fwd_stats(reports[1], 1), (0, 0, n2, 0));
    // Across a restart under traffic: frames that reached the stopped port
    // are lost, but every frame forwarded is counted once and nothing is
    // invented: what port 0 took, port 1 sent, and the peer received
    // exactly that (counted frames, the warm-up probes, which all cross
    // before the stop, and any late probe).
    let (a, b) = (fwd_stats(reports[2], 0).0, fwd_stats(reports[3], 0).0);
    assert!(
        a > 0 && b > 0,
        "forwarded before ({a}) and after ({b}) the restart"
    );
    assert_eq!(fwd_stats(reports[2], 1), (0, 0, a, 0));
    assert_eq!(fwd_stats(reports[3], 1), (0, 0, b, 0));
    assert_eq!((r3.duplicates, r3.corrupted), (0, 0), "{}", r3.summary());
    assert_eq!(
        a + b,
        r3.received + r3.probes + r3.foreign,
        "{}",
        r3.summary()
    );
    let info = o
        .split("Infos for port 0")
        .nth(1)
        .expect("show port info 0");
    for line in [
        "Port status: started",
        "MTU: 2000",
        "Current number of RX queues: 2",
        "Current number of TX queues: 2",
        "RX descriptors per queue: 256",
        "Link status: up",
    ] {
        assert!(info.contains(line), "{line:?} in:\n{info}");
    }
}
