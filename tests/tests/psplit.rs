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

use rig::devmem::{self, Sent};
use rig::frames::hex;
use rig::pmdcheck::{line_with, lines_with, num};
use rig::{IVSHMEM_PCI, Vm, VmConfig, nic_pci};

const E1000E: usize = 1;
/// devmem-rx's default header buffer: PSRCTL.BSIZE0 = 2 (x 128 bytes).
const HEADER_BUF: usize = 256;

/// Bytes the device puts in the header page: the headers of a split
/// frame, or up to a header buffer of an unsplit one.
fn in_header(s: &Sent) -> usize {
    if s.hdr_len > 0 {
        s.hdr_len
    } else {
        s.frame.len().min(HEADER_BUF)
    }
}

#[test]
fn e1000e_packet_split_puts_headers_in_pages_and_payload_in_device_memory() {
    rig::retry_on_emulator_fault(
        "e1000e_packet_split_puts_headers_in_pages_and_payload_in_device_memory",
        || {
            let mut sent = devmem::split_frames(E1000E, &mut 0);
            let split_frames = sent.len();
            // Unsplit: one longer than the header buffer (256 bytes in the
            // page, 44 in device memory), one that fits it whole.
            for len in [300, 100] {
                sent.push(devmem::non_ip_frame(E1000E, len));
            }
            let total_frames = sent.len();

            let cmd = format!(
                "devmem-rx --pci {} --region {IVSHMEM_PCI} --count {total_frames} --idle-ms 8000 --batch 8",
                nic_pci(E1000E)
            );
            let (vm, out, chunk) = devmem::receive(E1000E, &cmd, &sent);
            assert_eq!(chunk, 4096, "{out}");
            let shm = vm.shm().expect("ivshmem");

            let mut by_header = devmem::by_header(&sent);
            let frags = lines_with(&out, "frag ");
            let pkts = lines_with(&out, "pkt ");
            assert_eq!(pkts.len(), total_frames, "packets reported:\n{out}");
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            let (mut split_seen, mut unsplit_seen) = (0, 0);
            for line in pkts {
                let n = num(line, "n");
                let split = num(line, "split") == 1;
                if split {
                    split_seen += 1;
                } else {
                    unsplit_seen += 1;
                }
                let s = devmem::frame_of(line, &mut by_header, &sent);
                let h = in_header(s);
                devmem::assert_header(line, s, h);

                // The rest, fragment by fragment, in the ivshmem file: at
                // most one 4 KiB payload buffer per frame (PSRCTL.BSIZE1).
                let mine = devmem::fragments(&frags, n, chunk);
                let want_frags = usize::from(s.frame.len() > h);
                assert_eq!(mine.len(), want_frags, "{line}");
                assert_eq!(num(line, "frags") as usize, want_frags, "{line}");
                let mut payload = Vec::new();
                for f in mine {
                    let (off, size) = (num(f, "offset"), num(f, "size"));
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
            devmem::assert_disjoint(ranges);
            assert_eq!(
                frags.len(),
                total_frames - 1,
                "all but the 100-byte non-IP frame"
            );
            let stats = line_with(&out, "stats ");
            assert_eq!(num(stats, "rx_nombuf"), 0, "{stats}");
            devmem::assert_clean_end(vm, &out, total_frames, frags.len(), chunk);
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
