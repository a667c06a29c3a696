//! End-to-end test of transmit from device memory on the emulated 82576
//! and 82574L: the guest runs `devmem-tx` on each port in turn, which fills
//! the ivshmem BAR2 with a position-dependent pattern through its host
//! view and sends UDP frames and TSO'd TCP packets (IPv4 and IPv6) whose
//! headers are in pages and whose payload is net_iov windows of the BAR.
//! The host peer of each NIC must receive exactly the frames sent: every
//! payload byte for byte the pattern at the region offsets devmem-tx
//! reported (and the same bytes the /dev/shm file behind the BAR holds),
//! the checksums the device computed right, TSO packets cut into MSS-sized
//! segments with consecutive sequence numbers. The packets the CPU would
//! have had to read device memory for are refused with the driver's typed
//! errors and never reach the wire; every buffer is back in its pool.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use apps::pattern::region_bytes;
use rig::frames::{self, PROTO_TCP, PROTO_UDP};
use rig::pmdcheck::{field, line_with, lines_with, num};
use rig::{FramePeer, IVSHMEM_PCI, ShmFile, Vm, VmConfig, nic_pci};

const IGB: usize = 0;
const E1000E: usize = 1;
const UDP_FRAMES: u64 = 12;
const TSO_PACKETS: u64 = 4;
const TSO_LEN: u64 = 9000;
const MSS: u64 = 1000;
/// The tag every third UDP frame carries (inserted by the 82576, by the
/// driver into the header page on the 82574L).
const VLAN: u16 = 0x0123;
const DONE: Duration = Duration::from_secs(180);

/// One packet devmem-tx reported sending.
struct Sent {
    kind: String,
    len: usize,
    mss: u64,
    vlan: Option<u16>,
    /// (region offset, length) of each payload window, in order.
    frags: Vec<(u64, usize)>,
}

fn parse_frames(out: &str) -> BTreeMap<u16, Sent> {
    lines_with(out, "frame ")
        .into_iter()
        .map(|l| {
            let frags = field(l, "frags")
                .unwrap_or_else(|| panic!("no frags in {l}"))
                .split(',')
                .map(|f| {
                    let (o, n) = f.split_once(':').unwrap_or_else(|| panic!("{l}"));
                    (
                        o.parse().unwrap_or_else(|_| panic!("{l}")),
                        n.parse().unwrap_or_else(|_| panic!("{l}")),
                    )
                })
                .collect();
            let sent = Sent {
                kind: field(l, "kind").unwrap_or("").to_string(),
                len: num(l, "len") as usize,
                mss: num(l, "mss"),
                vlan: field(l, "vlan").and_then(|v| v.parse().ok()),
                frags,
            };
            (num(l, "sport") as u16, sent)
        })
        .collect()
}

/// The payload `s` carries: the pattern at its windows' region offsets
/// (checked against the ivshmem file too, when it still holds this run's
/// pattern).
fn expected_payload(s: &Sent, seed: u64, shm: Option<&ShmFile>) -> Vec<u8> {
    let mut want = Vec::new();
    for &(off, len) in &s.frags {
        let bytes = region_bytes(seed, off, len);
        if let Some(shm) = shm {
            assert_eq!(
                shm.read(off, len).expect("read /dev/shm"),
                bytes,
                "the region holds the pattern at {off} ({len} bytes)"
            );
        }
        want.extend(bytes);
    }
    want
}

fn l4_ports(f: &[u8], p: &frames::Parsed) -> (u16, u16) {
    let l4 = p.l4_start;
    (
        u16::from_be_bytes([f[l4], f[l4 + 1]]),
        u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]),
    )
}

/// Checks what `peer` received against the run's output `out`.
fn check_run(nic: &str, out: &str, peer: &FramePeer, seed: u64, shm: Option<&ShmFile>) {
    let sent = parse_frames(out);
    assert_eq!(
        sent.len() as u64,
        UDP_FRAMES + TSO_PACKETS,
        "{nic}: packets reported:\n{out}"
    );
    let wire = UDP_FRAMES + TSO_PACKETS * TSO_LEN.div_ceil(MSS);
    let summary = line_with(out, "devmem-tx: sent ");
    assert_eq!(num(summary, "packets"), wire, "{nic}: {summary}");
    assert_eq!(num(summary, "refused"), 3, "{nic}: {summary}");

    let mut got = peer.recv_n(wire as usize, Duration::from_secs(20));
    // Nothing more arrives: the refused packets never reach the wire.
    std::thread::sleep(Duration::from_millis(500));
    got.extend(peer.drain());
    assert_eq!(got.len() as u64, wire, "{nic}: frames on the wire");

    let mut by_sport: BTreeMap<u16, Vec<(frames::Parsed, Vec<u8>)>> = BTreeMap::new();
    for f in got {
        let p =
            frames::parse(&f).unwrap_or_else(|| panic!("{nic}: unparsable {}", frames::hex(&f)));
        let (sport, dport) = l4_ports(&f, &p);
        assert_eq!(dport, 5000, "{nic}: a frame devmem-tx did not send");
        assert!(p.ip_csum_ok, "{nic}: IP checksum of sport {sport}");
        assert!(p.l4_csum_ok, "{nic}: L4 checksum of sport {sport}");
        by_sport.entry(sport).or_default().push((p, f));
    }
    assert_eq!(
        by_sport.keys().collect::<Vec<_>>(),
        sent.keys().collect::<Vec<_>>(),
        "{nic}: every packet sent arrived, nothing else"
    );
    let tagged = sent.values().filter(|s| s.vlan == Some(VLAN)).count() as u64;
    assert_eq!(tagged, UDP_FRAMES / 3, "{nic}: tagged frames reported");
    for (sport, s) in &sent {
        let want = expected_payload(s, seed, shm);
        let segs = &by_sport[sport];
        let ipv6 = s.kind.ends_with('6');
        if s.mss == 0 {
            assert_eq!(segs.len(), 1, "{nic}: one UDP frame for sport {sport}");
            let (p, f) = &segs[0];
            assert_eq!(p.proto, PROTO_UDP);
            assert_eq!(matches!(p.ip, frames::Ip::V6(..)), ipv6, "{nic} {sport}");
            assert_eq!(f.len(), s.len, "{nic}: frame length of sport {sport}");
            assert_eq!(p.vlan, s.vlan, "{nic}: 802.1Q tag of sport {sport}");
            assert!(
                p.payload(f) == want.as_slice(),
                "{nic}: UDP payload of sport {sport} is not the region's bytes"
            );
        } else {
            let n = want.len().div_ceil(s.mss as usize);
            assert_eq!(segs.len(), n, "{nic}: TSO segments of sport {sport}");
            let base = segs[0].0.tcp_seq.expect("TCP");
            let mut joined = Vec::new();
            for (i, (p, f)) in segs.iter().enumerate() {
                assert_eq!(p.proto, PROTO_TCP);
                assert_eq!(p.vlan, None);
                assert_eq!(matches!(p.ip, frames::Ip::V6(..)), ipv6, "{nic} {sport}");
                assert_eq!(
                    p.tcp_seq,
                    Some(base + (i as u64 * s.mss) as u32),
                    "{nic}: sequence of segment {i} of sport {sport}"
                );
                let pl = p.payload(f);
                assert!(
                    pl.len() as u64 <= s.mss,
                    "{nic}: segment {i} of sport {sport} carries {} > MSS",
                    pl.len()
                );
                joined.extend_from_slice(pl);
            }
            assert_eq!(
                u64::from(base) >> 20,
                u64::from(sport - 20000),
                "{nic}: the first segment starts at the packet's sequence"
            );
            assert!(
                joined == want,
                "{nic}: TSO payload of sport {sport} is not the region's bytes"
            );
        }
    }

    // The typed refusals, each named, and what they cost: dropped packets.
    let refusals = lines_with(out, "refusal ");
    let cases: Vec<&str> = refusals.iter().filter_map(|l| field(l, "case")).collect();
    assert_eq!(
        cases,
        vec![
            "udp-header-in-device-memory",
            "headers-all-in-device-memory",
            "tcp-header-in-device-memory"
        ],
        "{nic}:\n{out}"
    );
    assert!(
        refusals[0].ends_with(
            "error=the CPU would need 42 header bytes but the first segment (a page) holds 34; \
             the rest is device memory, which the CPU never reads"
        ),
        "{nic}: {}",
        refusals[0]
    );
    assert!(
        refusals[1]
            .ends_with("error=offload headers are not in the packet's first, CPU-readable segment"),
        "{nic}: {}",
        refusals[1]
    );
    assert!(
        refusals[2].contains("need 54 header bytes but the first segment (a page) holds 40"),
        "{nic}: {}",
        refusals[2]
    );
    let stats = line_with(out, "stats ");
    assert_eq!(num(stats, "oerrors"), 3, "{nic}: {stats}");
    assert_eq!(
        line_with(out, "pool pages "),
        "pool pages in_use=0",
        "{nic}"
    );
    let pool = line_with(out, "pool payload ");
    assert_eq!(num(pool, "in_use"), 0, "{nic}: {pool}");
}

#[test]
fn devmem_tx_sends_net_iov_payload_byte_exact_on_igb_and_e1000e() {
    rig::retry_on_emulator_fault(
        "devmem_tx_sends_net_iov_payload_byte_exact_on_igb_and_e1000e",
        || {
            let run = |nic: usize, seed: u64| {
                format!(
                    "devmem-tx --pci {} --region {IVSHMEM_PCI} --seed {seed} --udp {UDP_FRAMES} \
                     --tso {TSO_PACKETS} --tso-len {TSO_LEN} --mss {MSS} --vlan {VLAN} --check-refusals",
                    nic_pci(nic)
                )
            };
            let (seed_igb, seed_e1000e) = (11, 22);
            let cmd = format!("{} && {}", run(IGB, seed_igb), run(E1000E, seed_e1000e));
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            // Both runs done (the ivshmem file lives as long as `vm`).
            let deadline = Instant::now() + DONE;
            let out = loop {
                let out = vm.output_so_far();
                if lines_with(&out, "pool payload ").len() == 2 {
                    break out;
                }
                if out.contains("devmem-tx: error") || out.contains("@@rig-exit") {
                    panic!("devmem-tx failed:\n{out}");
                }
                assert!(
                    Instant::now() < deadline,
                    "devmem-tx did not finish:\n{out}"
                );
                std::thread::sleep(Duration::from_millis(200));
            };
            let at = out
                .match_indices("devmem-tx: ready")
                .nth(1)
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("two runs:\n{out}"));
            let (first, second) = out.split_at(at);
            assert!(first.contains(&format!("seed={seed_igb}")), "{first}");
            assert!(
                first.contains("devmem-tx: ready"),
                "the igb run started:\n{first}"
            );
            // The region now holds the second run's pattern: the igb run is
            // checked against the pattern function, the e1000e run against
            // the file too.
            check_run("igb", first, vm.peer(IGB), seed_igb, None);
            check_run("e1000e", second, vm.peer(E1000E), seed_e1000e, vm.shm());
            let done = vm.wait().expect("guest run");
            assert_eq!(done.status, 0, "devmem-tx failed:\n{}", done.output);
        },
    )
}
