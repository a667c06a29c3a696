//! End-to-end test of device-memory receive (devmem TCP's datapath) on the
//! emulated 82576: the guest runs `devmem-rx` with header split, headers
//! into hugepage pages and payload into net_iov chunks of the ivshmem BAR2;
//! the host peer sends UDP and TCP frames over IPv4 and IPv6 (and a jumbo
//! and a non-IP frame); the test finds every payload byte for byte in the
//! /dev/shm file behind the BAR at the offsets devmem-rx reported, checks
//! the headers it read are exactly the frames' L2+L3+L4 headers (no payload
//! byte in a readable page), that payload segments are not CPU-readable,
//! and that every buffer is back in its pool after close. The e1000e's
//! packet split is tested in tests/psplit.rs.

use std::collections::HashMap;
use std::time::Duration;

use rig::frames::{L4, hex};
use rig::pmdcheck::{field, flow, ip4, ip6, line_with, lines_with, num};
use rig::{IVSHMEM_PCI, Vm, VmConfig, nic_mac, nic_pci};

const IGB: usize = 0;
const READY: Duration = Duration::from_secs(90);
const DONE: Duration = Duration::from_secs(60);

/// FNV-1a 64, as devmem-rx digests headers.
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A frame the test sends and what devmem-rx must report for it.
struct Sent {
    frame: Vec<u8>,
    /// Bytes the device must put in the header buffer (0: not split).
    hdr_len: usize,
}

/// A non-IP frame (local experimental EtherType 0x88B5) to the igb: the
/// device cannot split it, so all of it must land in device memory.
fn non_ip_frame(len: usize) -> Vec<u8> {
    let mut f = nic_mac(IGB).to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x88, 0xB5]);
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(7).wrapping_add(0x5a)));
    f
}

#[test]
fn igb_header_split_puts_headers_in_pages_and_payload_in_device_memory() {
    rig::retry_on_emulator_fault(
        "igb_header_split_puts_headers_in_pages_and_payload_in_device_memory",
        || {
            let mut sent = Vec::new();
            let mut n = 0u16;
            for len in [100usize, 200, 511, 1000, 1514] {
                for (ip, l4) in [
                    (ip4(), L4::Udp),
                    (ip4(), L4::Tcp),
                    (ip6(), L4::Udp),
                    (ip6(), L4::Tcp),
                ] {
                    let s = flow(nic_mac(IGB), ip, l4, len, n);
                    sent.push(Sent {
                        frame: s.build(),
                        hdr_len: s.header_len(),
                    });
                    n += 1;
                }
            }
            // Jumbo frames: the payload spans several 4 KiB net_iov chunks.
            for s in [
                flow(nic_mac(IGB), ip4(), L4::Udp, 9014, n),
                flow(nic_mac(IGB), ip6(), L4::Tcp, 8000, n + 1),
            ] {
                sent.push(Sent {
                    frame: s.build(),
                    hdr_len: s.header_len(),
                });
            }
            sent.push(Sent {
                frame: non_ip_frame(300),
                hdr_len: 0,
            });
            let total_frames = sent.len();

            let cmd = format!(
                "devmem-rx --pci {} --region {IVSHMEM_PCI} --mtu 9000 --count {total_frames} --idle-ms 8000 --batch 8",
                nic_pci(IGB)
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            let ready = vm
                .wait_for_line("devmem-rx: ready", READY)
                .expect("devmem-rx ready");
            let chunk = num(&ready, "chunk");
            for s in &sent {
                vm.peer(IGB).send(&s.frame).expect("send");
                std::thread::sleep(Duration::from_millis(5));
            }
            // The shared memory file goes away with the VM: read it once devmem-rx
            // printed its last line, before waiting for the guest to end.
            vm.wait_for_line("pool payload ", DONE)
                .expect("devmem-rx finished");
            let out = vm.output_so_far();
            let shm = vm.shm().expect("ivshmem");

            // Frames by their header bytes (ports and seeds differ per frame); the
            // unsplit non-IP frame by its length.
            let mut by_header: HashMap<String, &Sent> = sent
                .iter()
                .filter(|s| s.hdr_len > 0)
                .map(|s| (hex(&s.frame[..s.hdr_len]), s))
                .collect();
            let frags = lines_with(&out, "frag ");
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            let pkts = lines_with(&out, "pkt ");
            assert_eq!(pkts.len(), total_frames, "packets reported:\n{out}");
            for line in pkts {
                let n = num(line, "n");
                let hdr = field(line, "hdr").unwrap_or("");
                let s = if num(line, "split") == 1 {
                    by_header.remove(hdr).unwrap_or_else(|| {
                        panic!("headers of no frame sent (or seen twice): {line}")
                    })
                } else {
                    sent.iter()
                        .find(|s| s.hdr_len == 0 && s.frame.len() as u64 == num(line, "len"))
                        .unwrap_or_else(|| panic!("an unsplit packet that was not sent: {line}"))
                };
                // Only the headers were put in a readable page: exactly the
                // frame's L2+L3+L4 header, no payload byte.
                assert_eq!(num(line, "hdr_len") as usize, s.hdr_len, "{line}");
                assert_eq!(hdr, hex(&s.frame[..s.hdr_len]), "{line}");
                assert_eq!(
                    field(line, "hdr_digest"),
                    Some(format!("{:016x}", fnv64(&s.frame[..s.hdr_len])).as_str()),
                    "{line}"
                );
                assert_eq!(num(line, "len") as usize, s.frame.len(), "{line}");

                // The payload, fragment by fragment, in the ivshmem file.
                let mut payload = Vec::new();
                for f in frags.iter().filter(|f| num(f, "pkt") == n) {
                    assert_eq!(num(f, "region"), 1, "{f}");
                    assert_eq!(field(f, "cpu_readable"), Some("0"), "{f}");
                    let (off, size) = (num(f, "offset"), num(f, "size"));
                    assert!(size > 0 && size <= chunk, "{f}");
                    assert!(
                        off / chunk == (off + size - 1) / chunk,
                        "a fragment stays in one chunk: {f}"
                    );
                    payload.extend(shm.read(off, size as usize).expect("read /dev/shm"));
                    ranges.push((off, off + size));
                }
                assert_eq!(
                    num(line, "frags"),
                    frags.iter().filter(|f| num(f, "pkt") == n).count() as u64,
                    "{line}"
                );
                assert_eq!(
                    hex(&payload),
                    hex(&s.frame[s.hdr_len..]),
                    "payload of a {}-byte frame in device memory at the reported offsets ({line})",
                    s.frame.len()
                );
                if s.frame.len() > 8192 {
                    assert!(num(line, "frags") >= 3, "jumbo payload in chunks: {line}");
                }
            }
            assert!(
                by_header.is_empty(),
                "frames not received: {}",
                by_header.len()
            );
            // Every fragment had its own bytes: no chunk was reused (and so
            // overwritten) before the file was read.
            ranges.sort();
            assert!(
                ranges.windows(2).all(|w| w[0].1 <= w[1].0),
                "fragments overlap: {ranges:?}"
            );

            let stats = line_with(&out, "stats ");
            assert_eq!(num(stats, "ipackets"), total_frames as u64, "{stats}");
            assert_eq!(num(stats, "ierrors") + num(stats, "imissed"), 0, "{stats}");
            // Tokens went back in batches, all of them by the end.
            let returns = lines_with(&out, "tokens ");
            assert!(returns.len() > 1, "tokens returned in batches:\n{out}");
            assert_eq!(
                returns.iter().map(|l| num(l, "returned")).sum::<u64>(),
                frags.len() as u64
            );
            assert_eq!(line_with(&out, "pool header "), "pool header in_use=0");
            let payload_pool = line_with(&out, "pool payload ");
            assert_eq!(num(payload_pool, "in_use"), 0, "{payload_pool}");
            assert_eq!(num(payload_pool, "count"), 16 * 1024 * 1024 / chunk);

            let run = vm.wait().expect("guest run");
            assert_eq!(run.status, 0, "devmem-rx failed:\n{}", run.output);
        },
    )
}
