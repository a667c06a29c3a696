//! End-to-end test of device-memory receive (devmem TCP's datapath) on the
//! emulated 82576: the guest runs `devmem-rx` with header split, headers
//! into hugepage pages and payload into net_iov chunks of the ivshmem BAR2;
//! the host peer sends UDP and TCP frames over IPv4 and IPv6 (and a jumbo
//! and a non-IP frame); the test finds every payload byte for byte in the
//! /dev/shm file behind the BAR at the offsets devmem-rx reported, checks
//! the headers it read are exactly the frames' L2+L3+L4 headers (no payload
//! byte in a readable page), that payload segments are not CPU-readable,
//! and that every buffer is back in its pool after close. A second test
//! runs devmem-rx as ncdevmem: one UDP flow, steered by a flow rule to the
//! bound queue, of more than ten times the bound region's bytes, which only
//! gets through if returned tokens refill the queue; every payload checked
//! against the generator's pattern through the region's host view, and the
//! summary's counts checked exactly against what was sent. The
//! e1000e's packet split is tested in tests/psplit.rs.

use std::time::Duration;

use rig::devmem::{self, READY, Sent};
use rig::frames::{FrameSpec, L4, hex};
use rig::pmdcheck::{field, flow, ip4, ip6, line_with, lines_with, num};
use rig::{IVSHMEM_PCI, Vm, VmConfig, nic_mac, nic_pci};

const IGB: usize = 0;

#[test]
fn igb_header_split_puts_headers_in_pages_and_payload_in_device_memory() {
    rig::retry_on_emulator_fault(
        "igb_header_split_puts_headers_in_pages_and_payload_in_device_memory",
        || {
            let mut n = 0u16;
            let mut sent = devmem::split_frames(IGB, &mut n);
            // Jumbo frames: the payload spans several 4 KiB net_iov chunks.
            for s in [
                flow(nic_mac(IGB), ip4(), L4::Udp, 9014, n),
                flow(nic_mac(IGB), ip6(), L4::Tcp, 8000, n + 1),
            ] {
                sent.push(Sent {
                    frame: s.build(),
                    hdr_len: s.header_len(),
                    seed: s.seed,
                });
            }
            // The device cannot split it: all of it lands in device memory.
            sent.push(devmem::non_ip_frame(IGB, 300));
            let total_frames = sent.len();

            let cmd = format!(
                "devmem-rx --pci {} --region {IVSHMEM_PCI} --mtu 9000 --count {total_frames} --idle-ms 8000 --batch 8",
                nic_pci(IGB)
            );
            let (vm, out, chunk) = devmem::receive(IGB, &cmd, &sent);
            let shm = vm.shm().expect("ivshmem");

            let mut by_header = devmem::by_header(&sent);
            let frags = lines_with(&out, "frag ");
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            let pkts = lines_with(&out, "pkt ");
            assert_eq!(pkts.len(), total_frames, "packets reported:\n{out}");
            for line in pkts {
                let n = num(line, "n");
                let s = devmem::frame_of(line, &mut by_header, &sent);
                // Only the headers were put in a readable page: exactly the
                // frame's L2+L3+L4 header, no payload byte.
                devmem::assert_header(line, s, s.hdr_len);

                // The payload, fragment by fragment, in the ivshmem file.
                let mine = devmem::fragments(&frags, n, chunk);
                let mut payload = Vec::new();
                for f in &mine {
                    let (off, size) = (num(f, "offset"), num(f, "size"));
                    assert!(
                        off / chunk == (off + size - 1) / chunk,
                        "a fragment stays in one chunk: {f}"
                    );
                    payload.extend(shm.read(off, size as usize).expect("read /dev/shm"));
                    ranges.push((off, off + size));
                }
                assert_eq!(num(line, "frags"), mine.len() as u64, "{line}");
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
            devmem::assert_disjoint(ranges);
            // Tokens went back in batches, all of them by the end.
            assert!(
                lines_with(&out, "tokens ").len() > 1,
                "tokens returned in batches:\n{out}"
            );
            devmem::assert_clean_end(vm, &out, total_frames, frags.len(), chunk);
        },
    )
}

/// Frames of the long flow, and how many bytes of it devmem-rx binds.
const LONG_FRAMES: usize = 2400;
const LONG_REGION: u64 = 256 * 1024;
const LONG_CHUNK: u64 = 2048;
const LONG_PORT: u16 = 5000;
const LONG_SEED: u8 = 0x3c;
/// Tokens per return; LONG_FRAMES % LONG_BATCH are held at the end, through
/// a first unbind that must refuse.
const LONG_BATCH: usize = 7;
/// Frames sent ahead of the tokens devmem-rx returned.
const LONG_IN_FLIGHT: usize = 32;

#[test]
fn igb_devmem_flow_of_ten_regions_runs_on_returned_tokens_and_validates() {
    rig::retry_on_emulator_fault(
        "igb_devmem_flow_of_ten_regions_runs_on_returned_tokens_and_validates",
        || {
            // One UDP flow to port LONG_PORT, frames of varying length, all
            // with the pattern of seed LONG_SEED.
            let frames: Vec<FrameSpec> = (0..LONG_FRAMES)
                .map(|i| FrameSpec {
                    sport: 4000,
                    dport: LONG_PORT,
                    seed: LONG_SEED,
                    ..FrameSpec::udp4(nic_mac(IGB), 1000 + (i * 37) % 515)
                })
                .collect();
            let bytes: u64 = frames.iter().map(|f| f.len as u64).sum();
            let payload: u64 = frames.iter().map(|f| (f.len - f.header_len()) as u64).sum();
            assert!(
                payload > 10 * LONG_REGION,
                "the flow is more than ten times the region"
            );
            let cmd = format!(
                "devmem-rx --pci {} --region {IVSHMEM_PCI} --region-len {LONG_REGION} --chunk {LONG_CHUNK} \
                 --rx-desc 64 --flow udp:{LONG_PORT} --validate {LONG_SEED} --quiet --batch {LONG_BATCH} --unbind-with-tokens \
                 --count {LONG_FRAMES} --idle-ms 20000 --max-ms 240000",
                nic_pci(IGB)
            );
            let config = VmConfig {
                ivshmem_mib: Some(1),
                ..VmConfig::default()
            };
            let vm = Vm::start(config, &cmd).expect("boot the guest");
            vm.wait_for_line("devmem-rx: ready", READY)
                .expect("devmem-rx ready");
            let built: Vec<Vec<u8>> = frames.iter().map(FrameSpec::build).collect();
            // QEMU's igb drops frames that find its RX ring full: keep at
            // most half the 64-descriptor ring ahead of what devmem-rx
            // reports back (the tokens it returned, which trail what it
            // received).
            let deadline = std::time::Instant::now() + Duration::from_secs(240);
            let mut sent = 0usize;
            while sent < built.len() {
                let back: u64 = lines_with(&vm.output_so_far(), "tokens ")
                    .iter()
                    .map(|l| num(l, "returned"))
                    .sum();
                let room = (back as usize + LONG_IN_FLIGHT).saturating_sub(sent);
                if room == 0 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "devmem-rx stopped taking frames: {sent} sent, {back} tokens back"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                let end = (sent + room.min(8)).min(built.len());
                vm.peer(IGB).send_batch(&built[sent..end]).expect("send");
                sent = end;
            }
            let run = vm.wait().expect("guest run");
            let out = &run.output;
            assert_eq!(run.status, 0, "devmem-rx failed:\n{out}");

            let bind = line_with(out, "bind ");
            assert_eq!(num(bind, "chunks"), LONG_REGION / LONG_CHUNK, "{bind}");
            assert_eq!(num(bind, "region_len"), LONG_REGION, "{bind}");
            // The rule is installed on the bound queue (QEMU's igb routes by
            // RSS only, and with one queue the flow is on it either way).
            let flow = line_with(out, "flow ");
            assert_eq!(num(flow, "queue"), 0, "{flow}");
            assert_eq!(field(flow, "filter"), Some("5-tuple"), "{flow}");
            assert!(
                flow.ends_with(&format!("pattern=eth / ipv4 / udp dst is {LONG_PORT}")),
                "{flow}"
            );

            let sum = line_with(out, "summary ");
            assert_eq!(num(sum, "packets"), LONG_FRAMES as u64, "{sum}");
            assert_eq!(num(sum, "bytes"), bytes, "{sum}");
            assert_eq!(num(sum, "payload_bytes"), payload, "{sum}");
            // Every payload (at most 1472 bytes) in one 2 KiB chunk.
            assert_eq!(num(sum, "fragments"), LONG_FRAMES as u64, "{sum}");
            assert_eq!(num(sum, "validated"), LONG_FRAMES as u64, "{sum}");
            assert_eq!(num(sum, "validate_errors"), 0, "{sum}");
            assert_eq!(num(sum, "tokens_returned"), LONG_FRAMES as u64, "{sum}");
            assert_eq!(num(sum, "tokens_outstanding"), 0, "{sum}");
            assert_eq!(num(sum, "region_bytes"), LONG_REGION, "{sum}");
            // Returned in batches, each refilling the queue.
            let returns = lines_with(out, "tokens ");
            assert_eq!(
                returns.len(),
                LONG_FRAMES.div_ceil(LONG_BATCH),
                "token returns"
            );
            assert!(
                returns[..returns.len() - 1]
                    .iter()
                    .all(|l| num(l, "returned") == LONG_BATCH as u64)
            );
            // The first unbind, with the last tokens held, is refused with the
            // typed timeout (the destroyed queue pool keeps its chunks until
            // its last token is back); after they return, unbind succeeds.
            let unbinds = lines_with(out, "unbind ");
            assert_eq!(unbinds.len(), 2, "{unbinds:?}");
            let binding = num(bind, "binding");
            assert_eq!(
                num(unbinds[0], "tokens_held"),
                (LONG_FRAMES % LONG_BATCH) as u64
            );
            assert_eq!(num(unbinds[0], "outstanding"), LONG_REGION / LONG_CHUNK);
            assert!(
                unbinds[0].contains(&format!(
                    "result=error: unbind of device-memory binding {binding}: {} net_iovs still out after",
                    LONG_REGION / LONG_CHUNK
                )) && unbinds[0].ends_with("still bound"),
                "{}",
                unbinds[0]
            );
            assert_eq!(
                unbinds[1],
                format!("unbind binding={binding} outstanding=0 result=ok")
            );
            let stats = line_with(out, "stats ");
            assert_eq!(num(stats, "ipackets"), LONG_FRAMES as u64, "{stats}");
            assert_eq!(num(stats, "ierrors") + num(stats, "imissed"), 0, "{stats}");
            assert_eq!(line_with(out, "pool header "), "pool header in_use=0");
            // After close only the tokens held for the first unbind are out.
            let pool = line_with(out, "pool payload ");
            assert_eq!(
                num(pool, "in_use"),
                (LONG_FRAMES % LONG_BATCH) as u64,
                "{pool}"
            );
            assert_eq!(num(pool, "count"), LONG_REGION / LONG_CHUNK, "{pool}");
        },
    )
}
