//! Helpers for tests that drive the guest's `pmdcheck`: test flows built
//! with [`crate::frames`], parsing of its `key=value` output lines, and the
//! end-to-end checks every driver must pass ([`receive_every_frame`],
//! [`echo_every_size`], [`transmit_offloads`]), parameterised by what
//! differs between the NICs.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::frames::{self, FrameSpec, Ip, L4, hex, insert_vlan, strip_vlan, unhex};
use crate::{FramePeer, RunOutput, Vm, VmConfig, nic_mac, nic_pci};

/// How long the guest may take to boot and print `pmdcheck: ready`.
pub const READY: Duration = Duration::from_secs(90);
/// How long the peer waits for a frame the guest sends back.
pub const RECV: Duration = Duration::from_secs(10);

/// The four IP/L4 combinations every set of test flows covers.
pub const PROTOS: [(fn() -> Ip, L4); 4] = [
    (ip4, L4::Udp),
    (ip4, L4::Tcp),
    (ip6, L4::Udp),
    (ip6, L4::Tcp),
];

/// A NIC of the guest under test: its index in the rig ([`nic_mac`],
/// [`nic_pci`], [`Vm::peer`]) and the driver and device `Port::open` must
/// report for it.
#[derive(Clone, Copy, Debug)]
pub struct TestPort {
    pub index: usize,
    /// The driver's name (`driver=` in pmdcheck's port line).
    pub driver: &'static str,
    /// The device's name in the driver's table (`device=`).
    pub device: &'static str,
}

impl TestPort {
    /// Flow number `n` to this port's MAC (see [`flow`]).
    pub fn flow(&self, ip: Ip, l4: L4, len: usize, n: u16) -> FrameSpec {
        flow(nic_mac(self.index), ip, l4, len, n)
    }

    /// The port's PCI address in the guest.
    pub fn pci(&self) -> String {
        nic_pci(self.index)
    }
}

/// The IPv4 hosts of the test flows.
pub fn ip4() -> Ip {
    Ip::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
}

/// The IPv6 hosts of the test flows.
pub fn ip6() -> Ip {
    Ip::V6(
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    )
}

/// Flow number `n` to `dst`: ports, payload seed and TCP sequence derived
/// from `n`, so every flow's frames differ and hash differently.
pub fn flow(dst: [u8; 6], ip: Ip, l4: L4, len: usize, n: u16) -> FrameSpec {
    FrameSpec {
        ip,
        l4,
        sport: 1000 + n,
        dport: 5000 + n.wrapping_mul(7),
        seed: n as u8,
        seq: 1000 * u32::from(n),
        ..FrameSpec::udp4(dst, len)
    }
}

/// The value of word `key=value` in `line`.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A numeric field (decimal, or hex with `0x`); panics with the line if it
/// is missing or malformed (a test failure).
pub fn num(line: &str, key: &str) -> u64 {
    let v = field(line, key).unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    v.parse()
        .or_else(|_| u64::from_str_radix(v.trim_start_matches("0x"), 16))
        .unwrap_or_else(|_| panic!("bad {key}={v}"))
}

/// Every line of `out` starting with `prefix`.
pub fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The first line of `out` starting with `prefix`; panics with the output
/// if there is none.
pub fn line_with<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

/// A comma-separated list of numbers (`qstats rx=1,2`).
pub fn list(line: &str, key: &str) -> Vec<u64> {
    field(line, key)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .split(',')
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad {key} in {line:?}"))
        })
        .collect()
}

/// Asserts that pmdcheck's port line names the driver and device `port`
/// must have been opened with.
fn assert_opened_as(out: &RunOutput, port: TestPort) {
    let opened = format!("driver={} device=\"{}\"", port.driver, port.device);
    assert!(
        out.output.contains(&opened),
        "Port::open picked the {} driver for the {}:\n{}",
        port.driver,
        port.device,
        out.output
    );
}

/// Boots the guest with `cmd`, waits for `pmdcheck: ready` and hands back
/// the VM.
fn start(cmd: &str) -> Vm {
    let vm = Vm::start(VmConfig::default(), cmd).expect("boot the guest");
    vm.wait_for_line("pmdcheck: ready", READY)
        .expect("pmdcheck ready");
    vm
}

/// Waits for the guest command's end and asserts it succeeded.
fn finish(vm: Vm) -> RunOutput {
    let out = vm.wait().expect("guest run");
    assert_eq!(out.status, 0, "pmdcheck failed:\n{}", out.output);
    out
}

/// What [`receive_every_frame`] checks each frame's RSS hash and queue
/// against.
pub struct RssModel<'a> {
    /// RX queues the port opens; RSS must spread the flows over all of them.
    pub queues: usize,
    /// The hash the device must report for a frame: a Toeplitz model over
    /// the hash types the device has.
    pub hash: &'a dyn Fn(&[u8]) -> Option<u32>,
    /// The queue the default redirection table steers a hash to.
    pub queue_of: &'a dyn Fn(u32) -> usize,
}

/// What a received frame must look like.
struct Expect {
    data: Vec<u8>,
    vlan: Option<u16>,
    hash: u32,
    ip: &'static str,
    l4: &'static str,
}

/// The frames [`receive_every_frame`] sends: every protocol at sizes from
/// the minimum to 1514 bytes, `8 * queues` more TCP/IPv4 flows so every
/// queue surely sees traffic, tagged frames (stripped), jumbo frames
/// (several buffers) and broken checksums.
fn rx_specs(port: TestPort, queues: usize) -> Vec<FrameSpec> {
    let spec = |ip, l4, len, n| port.flow(ip, l4, len, n);
    let mut specs = Vec::new();
    let mut n = 0u16;
    for len in [60usize, 64, 128, 511, 1000, 1514] {
        for (ip, l4) in PROTOS {
            specs.push(spec(ip(), l4, len, n));
            n += 1;
        }
    }
    for _ in 0..8 * queues {
        specs.push(spec(ip4(), L4::Tcp, 64, n));
        n += 1;
    }
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
    specs
}

/// `pmdcheck rx-dump` on `port` with `rss.queues` queues, VLAN stripping
/// and a 9000-byte MTU: every frame sent must arrive once, byte for byte
/// (tag stripped, reported as `vlan=`), with the RSS hash of the model, on
/// the queue the RETA names, with the IP/L4 checksum flags its checksums
/// earn, jumbo frames over several buffers; RSS must use every queue; the
/// port and per-queue counters must match what arrived and every pool
/// buffer must be back. Returns the guest's output for checks of the
/// device's own.
pub fn receive_every_frame(port: TestPort, rss: &RssModel) -> RunOutput {
    let mut expect: HashMap<String, Expect> = HashMap::new();
    let mut frames_out = Vec::new();
    for s in rx_specs(port, rss.queues) {
        let f = s.build();
        let v4 = matches!(s.ip, Ip::V4(..));
        let e = Expect {
            data: strip_vlan(&f),
            vlan: s.vlan,
            hash: (rss.hash)(&f).expect("every test frame is IP: hashed"),
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

    let vm = start(&format!(
        "pmdcheck rx-dump --pci {} --rxq {} --mtu 9000 --vlan-strip --count {} --idle-ms 8000",
        port.pci(),
        rss.queues,
        frames_out.len()
    ));
    for f in &frames_out {
        vm.peer(port.index).send(f).expect("send");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = finish(vm);
    assert_opened_as(&out, port);

    let mut per_queue = vec![0u64; rss.queues];
    let mut seen = 0;
    for line in lines_with(&out.output, "rx ") {
        let data = field(line, "data").expect("data");
        let e = expect
            .get(data)
            .unwrap_or_else(|| panic!("received a frame that was not sent (or changed): {line}"));
        let q = num(line, "q") as usize;
        *per_queue
            .get_mut(q)
            .unwrap_or_else(|| panic!("queue {q} of {}: {line}", rss.queues)) += 1;
        assert_eq!(num(line, "len") as usize, e.data.len(), "{line}");
        assert_eq!(field(line, "rss_ok"), Some("1"), "{line}");
        assert_eq!(
            num(line, "rss") as u32,
            e.hash,
            "RSS hash vs the Toeplitz model over the device's hash types: {line}"
        );
        assert_eq!(q, (rss.queue_of)(e.hash), "queue vs RETA: {line}");
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
        "RSS spread over {} queues: {per_queue:?}",
        rss.queues
    );

    let stats = line_with(&out.output, "stats ");
    assert_eq!(num(stats, "ipackets"), frames_out.len() as u64, "{stats}");
    assert_eq!(num(stats, "ierrors"), 0, "{stats}");
    assert_eq!(num(stats, "imissed"), 0, "{stats}");
    let q = line_with(&out.output, "qstats ");
    assert_eq!(list(q, "rx"), per_queue, "per-queue counters: {q}");
    assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
    out
}

/// The RSS hash a device must report for a frame.
pub type HashModel = dyn Fn(&[u8]) -> Option<u32>;

/// Offloads only when asked (issue 12 item 3): `pmdcheck rx-dump` on
/// `port` with one RX queue and `args` (pmdcheck's `--no-rx-cksum`,
/// `--rss-hash`). Every frame must arrive once, byte for byte, on queue 0;
/// with `hash` (the hash asked for) each carries the model's RSS hash,
/// without it none has a hash; with `checksum` each has the checksum flags
/// its checksums earn, without it none has any.
pub fn rx_offloads_only_when_asked(
    port: TestPort,
    args: &str,
    hash: Option<&HashModel>,
    checksum: bool,
) {
    let mut expect: HashMap<String, Expect> = HashMap::new();
    let mut frames_out = Vec::new();
    for s in rx_specs(port, 1) {
        let f = s.build();
        let v4 = matches!(s.ip, Ip::V4(..));
        let e = Expect {
            data: f.clone(),
            vlan: None,
            hash: hash.and_then(|h| h(&f)).unwrap_or(0),
            ip: match (checksum, v4, s.bad_ip_csum) {
                (false, _, _) | (true, false, _) => "-",
                (true, true, false) => "good",
                (true, true, true) => "bad",
            },
            l4: match (checksum, s.bad_l4_csum) {
                (false, _) => "-",
                (true, false) => "good",
                (true, true) => "bad",
            },
        };
        assert!(
            expect.insert(hex(&e.data), e).is_none(),
            "frames must differ"
        );
        frames_out.push(f);
    }
    let vm = start(&format!(
        "pmdcheck rx-dump --pci {} --rxq 1 --mtu 9000 {args} --count {} --idle-ms 8000",
        port.pci(),
        frames_out.len()
    ));
    for f in &frames_out {
        vm.peer(port.index).send(f).expect("send");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = finish(vm);
    assert_opened_as(&out, port);
    let mut seen = 0;
    for line in lines_with(&out.output, "rx ") {
        let data = field(line, "data").expect("data");
        let e = expect
            .get(data)
            .unwrap_or_else(|| panic!("received a frame that was not sent (or changed): {line}"));
        assert_eq!(num(line, "q"), 0, "{line}");
        match hash {
            Some(_) => {
                assert_eq!(field(line, "rss_ok"), Some("1"), "hash asked for: {line}");
                assert_eq!(
                    num(line, "rss") as u32,
                    e.hash,
                    "RSS hash vs the model: {line}"
                );
            }
            None => assert_eq!(
                field(line, "rss_ok"),
                Some("0"),
                "one queue, no hash asked for: the device must not hash: {line}"
            ),
        }
        assert_eq!(
            field(line, "ip"),
            Some(e.ip),
            "IP checksum flag ({args}): {line}"
        );
        if e.ip != "bad" {
            assert_eq!(
                field(line, "l4"),
                Some(e.l4),
                "L4 checksum flag ({args}): {line}"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, frames_out.len(), "frames received:\n{}", out.output);
    assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
}

/// The frames of every `rx` line of `out` whose reported hash differs from
/// `full_hash` (the hash over every type): the frames a device with fewer
/// hash types hashed on less.
pub fn hashed_otherwise(out: &str, full_hash: impl Fn(&[u8]) -> Option<u32>) -> usize {
    lines_with(out, "rx ")
        .into_iter()
        .filter(|line| {
            let data = unhex(field(line, "data").expect("data")).expect("hex data");
            full_hash(&data) != Some(num(line, "rss") as u32)
        })
        .count()
}

/// `pmdcheck echo` on `port` (one queue, 9000-byte MTU): frames of every
/// size and protocol, a tagged one and jumbo ones, then 32 windows of 64
/// small frames, must each come back byte for byte; the port counters
/// (hardware packets and bytes less CRC), the driver's per-queue counters
/// and the peer must all count every frame, with no errors, and every pool
/// buffer must be back.
pub fn echo_every_size(port: TestPort) {
    let spec = |ip, l4, len, n| port.flow(ip, l4, len, n);
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
    let vm = start(&format!(
        "pmdcheck echo --pci {} --mtu 9000 --count {total} --idle-ms 10000",
        port.pci()
    ));
    let peer = vm.peer(port.index);
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
    let out = finish(vm);
    assert_opened_as(&out, port);
    // Hardware counters (packets, bytes less CRC) ...
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
        println!("{} echo MMIO: {m}", port.driver);
    }
    assert_eq!(line_with(&out.output, "pool "), "pool in_use=0");
}

/// One way a device inserts a VLAN tag on transmit, as
/// [`transmit_offloads`] runs it: `pmdcheck echo --vlan TCI`, with VLAN
/// stripping on where `vlan_strip` (on the 82574L that moves insertion from
/// the ring into the data descriptor).
#[derive(Clone, Copy, Debug)]
pub struct VlanInsert {
    /// The `--tag` of the run.
    pub tag: &'static str,
    pub tci: u16,
    pub vlan_strip: bool,
    /// The flow number of the first of the two frames sent.
    pub first_flow: u16,
}

/// Sends `s` with every checksum zeroed and asserts that what comes back
/// is `s` with the checksums a full software build computes.
fn assert_checksums_filled(peer: &FramePeer, s: &FrameSpec, what: &str) {
    let template = FrameSpec {
        no_csum: true,
        ..s.clone()
    };
    peer.send(&template.build()).expect("send");
    let got = peer
        .recv(RECV)
        .unwrap_or_else(|| panic!("no frame back: {what}"));
    assert_eq!(hex(&got), hex(&s.build()), "{what}");
}

/// Sends a TCP template of `s` with zeroed checksums to an echo with TSO
/// at an MSS of 1000 and asserts that it comes back as MSS-sized segments
/// with good checksums, consecutive sequence numbers, the template's L2
/// header and ports, whose payloads join to the template's.
fn assert_segmented(peer: &FramePeer, s: &FrameSpec) {
    let len = s.len;
    let template = FrameSpec {
        no_csum: true,
        ..s.clone()
    }
    .build();
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

/// Runs `pmdcheck echo` on `port` once per transmit offload and checks
/// what the peer receives: checksum offload (templates with zeroed
/// checksums come back with a software build's checksums), TSO (jumbo TCP
/// frames come back as MSS-sized segments, counted by the TSO counter),
/// VLAN insertion in each of `vlan` (the frame with `81 00 <tci>` after the
/// addresses), multi-segment transmit with checksum offload; each run
/// gives every pool buffer back.
pub fn transmit_offloads(port: TestPort, vlan: &[VlanInsert]) {
    let pci = port.pci();
    let mut runs = vec![
        format!("pmdcheck echo --pci {pci} --count 4 --csum --tag csum"),
        format!("pmdcheck echo --pci {pci} --mtu 9000 --count 2 --tso 1000 --tag tso"),
    ];
    for v in vlan {
        let strip = if v.vlan_strip { " --vlan-strip" } else { "" };
        runs.push(format!(
            "pmdcheck echo --pci {pci} --count 2 --vlan {}{strip} --tag {}",
            v.tci, v.tag
        ));
    }
    runs.push(format!(
        "pmdcheck echo --pci {pci} --count 2 --segments 3 --csum --tag segs"
    ));
    let vm = Vm::start(VmConfig::default(), &runs.join(" && ")).expect("boot the guest");
    let peer = vm.peer(port.index);
    let ready = |tag: &str| {
        vm.wait_for_line(&format!("pmdcheck: ready {tag}"), READY)
            .expect("ready")
    };

    ready("csum");
    for (i, (ip, l4)) in PROTOS.into_iter().enumerate() {
        let s = port.flow(ip(), l4, 300 + i * 100, i as u16);
        assert_checksums_filled(peer, &s, &format!("checksum offload {:?} {l4:?}", s.ip));
    }

    ready("tso");
    for (k, (ip, len)) in [(ip4(), 8000usize), (ip6(), 5000)].into_iter().enumerate() {
        assert_segmented(peer, &port.flow(ip, L4::Tcp, len, 100 + k as u16));
    }

    for v in vlan {
        ready(v.tag);
        for i in 0..2u16 {
            let sent = port.flow(ip4(), L4::Udp, 200, v.first_flow + i).build();
            peer.send(&sent).expect("send");
            let got = peer.recv(RECV).expect("tagged frame");
            assert_eq!(
                hex(&got),
                hex(&insert_vlan(&sent, v.tci)),
                "VLAN insert ({})",
                v.tag
            );
            assert_eq!(
                strip_vlan(&got),
                sent,
                "VLAN insert ({}) keeps the frame",
                v.tag
            );
        }
    }

    ready("segs");
    for i in 0..2u16 {
        let s = port.flow(ip4(), L4::Tcp, 1000, 300 + i);
        assert_checksums_filled(peer, &s, "three-segment transmit");
    }

    let out = finish(vm);
    assert_opened_as(&out, port);
    assert!(
        out.output.contains("tx_tso_packets=2"),
        "TSO counter (TSCTC):\n{}",
        out.output
    );
    assert_eq!(
        lines_with(&out.output, "pool "),
        vec!["pool in_use=0"; runs.len()]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pmdcheck_lines() {
        let out = "x\nstats ipackets=5 ibytes=300\nqstats rx=2,3 tx=0,0\nrx q=1 rss=0x1f";
        let s = line_with(out, "stats ");
        assert_eq!(num(s, "ipackets"), 5);
        assert_eq!(field(s, "ibytes"), Some("300"));
        assert_eq!(field(s, "obytes"), None);
        assert_eq!(list(line_with(out, "qstats "), "rx"), vec![2, 3]);
        assert_eq!(num(line_with(out, "rx "), "rss"), 0x1f);
        assert_eq!(lines_with(out, "rx ").len(), 1);
    }

    #[test]
    fn flows_differ() {
        let a = flow([2; 6], ip4(), L4::Tcp, 100, 1).build();
        let b = flow([2; 6], ip4(), L4::Tcp, 100, 2).build();
        assert_ne!(a, b);
        assert_eq!(a.len(), 100);
    }
}
