//! End-to-end test of the e1000e's packet-split receive (82574L RCTL.DTYP
//! 01b, PSRCTL, packet-split descriptors) as header split into device
//! memory: the guest runs `devmem-rx` on the emulated 82574L with headers
//! into hugepage pages and payload into 4 KiB net_iov chunks of the
//! ivshmem BAR2; the host peer sends UDP and TCP frames over IPv4 and IPv6
//! and two non-IP frames. Every split frame must arrive with exactly its
//! L2+L3+L4 headers in a page and its payload, byte for byte the
//! generator's pattern, in the /dev/shm file behind the BAR at the offset
//! devmem-rx reported (read through the region's host view, never through
//! the guest). The non-IP frames show what the 82574 does with a frame it
//! cannot split: its first bytes, up to the 256-byte header buffer
//! (PSRCTL.BSIZE0), in the header page, the rest in device memory.

use std::collections::HashMap;
use std::time::Duration;

use rig::frames::{L4, hex};
use rig::pmdcheck::{field, flow, ip4, ip6, line_with, lines_with, num};
use rig::{IVSHMEM_PCI, Vm, VmConfig, nic_mac, nic_pci};

const E1000E: usize = 1;
const READY: Duration = Duration::from_secs(90);
const DONE: Duration = Duration::from_secs(60);
/// devmem-rx's default header buffer: PSRCTL.BSIZE0 = 2 (x 128 bytes).
const HEADER_BUF: usize = 256;

/// FNV-1a 64, as devmem-rx digests headers.
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A frame the test sends and what devmem-rx must report for it.
struct Sent {
    frame: Vec<u8>,
    /// The frame's L2+L3+L4 header length (0: not IP, never split).
    hdr_len: usize,
    /// The generator's payload seed (payload byte i = i * 31 + seed).
    seed: u8,
}

impl Sent {
    /// Bytes the device puts in the header page: the headers of a split
    /// frame, or up to a header buffer of an unsplit one.
    fn in_header(&self) -> usize {
        if self.hdr_len > 0 {
            self.hdr_len
        } else {
            self.frame.len().min(HEADER_BUF)
        }
    }
}

/// A non-IP frame (local experimental EtherType 0x88B5): the 82574
/// cannot split it.
fn non_ip_frame(len: usize) -> Vec<u8> {
    let mut f = nic_mac(E1000E).to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x88, 0xB5]);
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(7).wrapping_add(0x5a)));
    f
}

#[test]
fn e1000e_packet_split_puts_headers_in_pages_and_payload_in_device_memory() {
    rig::retry_on_emulator_fault(
        "e1000e_packet_split_puts_headers_in_pages_and_payload_in_device_memory",
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
                    let s = flow(nic_mac(E1000E), ip, l4, len, n);
                    sent.push(Sent {
                        frame: s.build(),
                        hdr_len: s.header_len(),
                        seed: s.seed,
                    });
                    n += 1;
                }
            }
            let split_frames = sent.len();
            // Unsplit: one longer than the header buffer (256 bytes in the
            // page, 44 in device memory), one that fits it whole.
            for len in [300, 100] {
                sent.push(Sent {
                    frame: non_ip_frame(len),
                    hdr_len: 0,
                    seed: 0,
                });
            }
            let total_frames = sent.len();

            let cmd = format!(
                "devmem-rx --pci {} --region {IVSHMEM_PCI} --count {total_frames} --idle-ms 8000 --batch 8",
                nic_pci(E1000E)
            );
            let vm = Vm::start(VmConfig::default(), &cmd).expect("boot the guest");
            let ready = vm
                .wait_for_line("devmem-rx: ready", READY)
                .expect("devmem-rx ready");
            let chunk = num(&ready, "chunk");
            assert_eq!(chunk, 4096, "{ready}");
            for s in &sent {
                vm.peer(E1000E).send(&s.frame).expect("send");
                std::thread::sleep(Duration::from_millis(5));
            }
            // The shared memory file goes away with the VM: read it once
            // devmem-rx printed its last line.
            vm.wait_for_line("pool payload ", DONE)
                .expect("devmem-rx finished");
            let out = vm.output_so_far();
            let shm = vm.shm().expect("ivshmem");

            let mut by_header: HashMap<String, &Sent> = sent
                .iter()
                .filter(|s| s.hdr_len > 0)
                .map(|s| (hex(&s.frame[..s.hdr_len]), s))
                .collect();
            let frags = lines_with(&out, "frag ");
            let pkts = lines_with(&out, "pkt ");
            assert_eq!(pkts.len(), total_frames, "packets reported:\n{out}");
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            let (mut split_seen, mut unsplit_seen) = (0, 0);
            for line in pkts {
                let n = num(line, "n");
                let hdr = field(line, "hdr").unwrap_or("");
                let split = num(line, "split") == 1;
                let s = if split {
                    split_seen += 1;
                    by_header.remove(hdr).unwrap_or_else(|| {
                        panic!("headers of no frame sent (or seen twice): {line}")
                    })
                } else {
                    unsplit_seen += 1;
                    sent.iter()
                        .find(|s| s.hdr_len == 0 && s.frame.len() as u64 == num(line, "len"))
                        .unwrap_or_else(|| panic!("an unsplit packet that was not sent: {line}"))
                };
                let h = s.in_header();
                assert_eq!(num(line, "len") as usize, s.frame.len(), "{line}");
                assert_eq!(num(line, "hdr_len") as usize, h, "{line}");
                assert_eq!(hdr, hex(&s.frame[..h]), "{line}");
                assert_eq!(
                    field(line, "hdr_digest"),
                    Some(format!("{:016x}", fnv64(&s.frame[..h])).as_str()),
                    "{line}"
                );

                // The rest, fragment by fragment, in the ivshmem file: at
                // most one 4 KiB payload buffer per frame (PSRCTL.BSIZE1).
                let mine: Vec<&&str> = frags.iter().filter(|f| num(f, "pkt") == n).collect();
                let want_frags = usize::from(s.frame.len() > h);
                assert_eq!(mine.len(), want_frags, "{line}");
                assert_eq!(num(line, "frags") as usize, want_frags, "{line}");
                let mut payload = Vec::new();
                for f in mine {
                    assert_eq!(num(f, "region"), 1, "{f}");
                    assert_eq!(field(f, "cpu_readable"), Some("0"), "{f}");
                    let (off, size) = (num(f, "offset"), num(f, "size"));
                    assert!(size > 0 && size <= chunk, "{f}");
                    assert_eq!(off % chunk, 0, "a payload buffer is a whole chunk: {f}");
                    payload.extend(shm.read(off, size as usize).expect("read /dev/shm"));
                    ranges.push((off, off + size));
                }
                assert_eq!(
                    hex(&payload),
                    hex(&s.frame[h..]),
                    "the rest of a {}-byte frame in device memory at the reported offset ({line})",
                    s.frame.len()
                );
                if split {
                    // Byte for byte the generator's pattern, checked on its
                    // own terms too.
                    assert!(
                        payload
                            .iter()
                            .enumerate()
                            .all(|(i, &b)| b == (i as u8).wrapping_mul(31).wrapping_add(s.seed)),
                        "payload pattern ({line})"
                    );
                }
            }
            assert!(
                by_header.is_empty(),
                "frames not received: {}",
                by_header.len()
            );
            assert_eq!((split_seen, unsplit_seen), (split_frames, 2));
            // Every fragment had its own bytes: no chunk was reused (and so
            // overwritten) before the file was read.
            ranges.sort();
            assert!(
                ranges.windows(2).all(|w| w[0].1 <= w[1].0),
                "fragments overlap: {ranges:?}"
            );
            assert_eq!(
                frags.len(),
                total_frames - 1,
                "all but the 100-byte non-IP frame"
            );

            let stats = line_with(&out, "stats ");
            assert_eq!(num(stats, "ipackets"), total_frames as u64, "{stats}");
            assert_eq!(
                num(stats, "ierrors") + num(stats, "imissed") + num(stats, "rx_nombuf"),
                0,
                "{stats}"
            );
            let returns = lines_with(&out, "tokens ");
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

/// A jumbo MTU does not fit one 4 KiB payload buffer: the port is refused
/// with the driver's typed error (QEMU's e1000e would stop on an assertion
/// if a split frame's payload ran past buffer 1).
#[test]
fn e1000e_packet_split_refuses_frames_longer_than_a_payload_buffer() {
    rig::retry_on_emulator_fault(
        "e1000e_packet_split_refuses_frames_longer_than_a_payload_buffer",
        || {
            let cmd = format!(
                "devmem-rx --pci {} --region {IVSHMEM_PCI} --mtu 9000 --max-ms 1000",
                nic_pci(E1000E)
            );
            let out = Vm::run(VmConfig::default(), &cmd).expect("guest run");
            assert_eq!(out.status, 1, "{}", out.output);
            assert_eq!(
                line_with(&out.output, "devmem-rx: error: "),
                "devmem-rx: error: e1000e packet split (header split): frames of up to 9018 bytes \
                 (the MTU) do not fit one 4096-byte payload buffer; give the payload pool buffers \
                 of at least 9018 bytes or lower the MTU",
                "{}",
                out.output
            );
            assert!(!out.output.contains("devmem-rx: ready"), "{}", out.output);
        },
    )
}
