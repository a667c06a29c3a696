//! Helpers for the tests of device-memory receive through the guest's
//! `devmem-rx` (tests/devmem.rs on the 82576's header split,
//! tests/psplit.rs on the 82574L's packet split): the frames they send,
//! the run (boot, ready, send, the last line, with the ivshmem file still
//! there), the lookup of the frame a `pkt` line reports, the fragment
//! checks and the checks of a clean end.

use std::collections::HashMap;
use std::time::Duration;

use crate::frames::hex;
use crate::pmdcheck::{PROTOS, field, flow, line_with, lines_with, num};
use crate::{Vm, VmConfig, nic_mac};

/// How long the guest may take to boot and print `devmem-rx: ready`.
pub const READY: Duration = Duration::from_secs(90);
/// How long devmem-rx may take, after the last frame, to print its last
/// line.
pub const DONE: Duration = Duration::from_secs(60);
/// The chunks of the rig's 16 MiB ivshmem BAR2 of `chunk` bytes each.
pub const REGION_LEN: u64 = 16 * 1024 * 1024;

/// FNV-1a 64, as devmem-rx digests headers.
pub fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A frame a test sends and what devmem-rx must report for it.
pub struct Sent {
    pub frame: Vec<u8>,
    /// The frame's L2+L3+L4 header length, the bytes a split puts in the
    /// header buffer (0: not IP, never split).
    pub hdr_len: usize,
    /// The generator's payload seed (payload byte i = i * 31 + seed).
    pub seed: u8,
}

/// UDP and TCP over IPv4 and IPv6, 100 to 1514 bytes, to NIC `nic`: flows
/// `*n` onwards (each frame's ports and seed differ), `*n` advanced past
/// them.
pub fn split_frames(nic: usize, n: &mut u16) -> Vec<Sent> {
    let mut sent = Vec::new();
    for len in [100usize, 200, 511, 1000, 1514] {
        for (ip, l4) in PROTOS {
            let s = flow(nic_mac(nic), ip(), l4, len, *n);
            sent.push(Sent {
                frame: s.build(),
                hdr_len: s.header_len(),
                seed: s.seed,
            });
            *n += 1;
        }
    }
    sent
}

/// A non-IP frame (local experimental EtherType 0x88B5) of `len` bytes to
/// NIC `nic`: no device can split it.
pub fn non_ip_frame(nic: usize, len: usize) -> Sent {
    let mut f = nic_mac(nic).to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x88, 0xB5]);
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(7).wrapping_add(0x5a)));
    Sent {
        frame: f,
        hdr_len: 0,
        seed: 0,
    }
}

/// Boots the guest running `cmd` (a devmem-rx command line), waits for
/// its ready line, sends every frame of `sent` through NIC `nic`'s peer
/// (5 ms apart) and waits for devmem-rx's last line: the shared memory
/// file goes away with the VM, so it must be read before the guest ends.
/// Returns the VM, its output so far and the chunk size of the ready line.
pub fn receive(nic: usize, cmd: &str, sent: &[Sent]) -> (Vm, String, u64) {
    let vm = Vm::start(VmConfig::default(), cmd).expect("boot the guest");
    let ready = vm
        .wait_for_line("devmem-rx: ready", READY)
        .expect("devmem-rx ready");
    let chunk = num(&ready, "chunk");
    for s in sent {
        vm.peer(nic).send(&s.frame).expect("send");
        std::thread::sleep(Duration::from_millis(5));
    }
    vm.wait_for_line("pool payload ", DONE)
        .expect("devmem-rx finished");
    let out = vm.output_so_far();
    (vm, out, chunk)
}

/// The split frames of `sent` by their header bytes (ports and seeds
/// differ per frame), for [`frame_of`].
pub fn by_header(sent: &[Sent]) -> HashMap<String, &Sent> {
    sent.iter()
        .filter(|s| s.hdr_len > 0)
        .map(|s| (hex(&s.frame[..s.hdr_len]), s))
        .collect()
}

/// The frame of `sent` a `pkt` line reports: a split one by its header
/// bytes, taken out of `by_header` (a frame seen twice fails), an unsplit
/// one by its length.
pub fn frame_of<'a>(
    line: &str,
    by_header: &mut HashMap<String, &'a Sent>,
    sent: &'a [Sent],
) -> &'a Sent {
    if num(line, "split") == 1 {
        let hdr = field(line, "hdr").unwrap_or("");
        by_header
            .remove(hdr)
            .unwrap_or_else(|| panic!("headers of no frame sent (or seen twice): {line}"))
    } else {
        sent.iter()
            .find(|s| s.hdr_len == 0 && s.frame.len() as u64 == num(line, "len"))
            .unwrap_or_else(|| panic!("an unsplit packet that was not sent: {line}"))
    }
}

/// Checks that `line` reports `s` with its first `in_header` bytes in the
/// header buffer: length, header bytes and digest.
pub fn assert_header(line: &str, s: &Sent, in_header: usize) {
    assert_eq!(num(line, "len") as usize, s.frame.len(), "{line}");
    assert_eq!(num(line, "hdr_len") as usize, in_header, "{line}");
    assert_eq!(
        field(line, "hdr").unwrap_or(""),
        hex(&s.frame[..in_header]),
        "{line}"
    );
    assert_eq!(
        field(line, "hdr_digest"),
        Some(format!("{:016x}", fnv64(&s.frame[..in_header])).as_str()),
        "{line}"
    );
}

/// The `frag` lines of packet `n`, each checked to be in the bound region
/// (1), not CPU-readable and of 1 to `chunk` bytes.
pub fn fragments<'a>(frags: &[&'a str], n: u64, chunk: u64) -> Vec<&'a str> {
    let mine: Vec<&str> = frags
        .iter()
        .copied()
        .filter(|f| num(f, "pkt") == n)
        .collect();
    for f in &mine {
        assert_eq!(num(f, "region"), 1, "{f}");
        assert_eq!(field(f, "cpu_readable"), Some("0"), "{f}");
        let size = num(f, "size");
        assert!(size > 0 && size <= chunk, "{f}");
    }
    mine
}

/// Every fragment had its own bytes: no chunk was reused (and so
/// overwritten) before the file was read.
pub fn assert_disjoint(mut ranges: Vec<(u64, u64)>) {
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[0].1 <= w[1].0),
        "fragments overlap: {ranges:?}"
    );
}

/// The end of a run that received `frames` frames in `frags` fragments:
/// nothing counted as an error or missed, every token returned, every
/// buffer back in its pool (the payload pool of the whole BAR's chunks),
/// and devmem-rx exited 0.
pub fn assert_clean_end(vm: Vm, out: &str, frames: usize, frags: usize, chunk: u64) {
    let stats = line_with(out, "stats ");
    assert_eq!(num(stats, "ipackets"), frames as u64, "{stats}");
    assert_eq!(num(stats, "ierrors") + num(stats, "imissed"), 0, "{stats}");
    let returns = lines_with(out, "tokens ");
    assert_eq!(
        returns.iter().map(|l| num(l, "returned")).sum::<u64>(),
        frags as u64
    );
    assert_eq!(line_with(out, "pool header "), "pool header in_use=0");
    let payload_pool = line_with(out, "pool payload ");
    assert_eq!(num(payload_pool, "in_use"), 0, "{payload_pool}");
    assert_eq!(num(payload_pool, "count"), REGION_LEN / chunk);

    let run = vm.wait().expect("guest run");
    assert_eq!(run.status, 0, "devmem-rx failed:\n{}", run.output);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_by_header_or_length_once() {
        let mut n = 0;
        let mut sent = split_frames(0, &mut n);
        assert_eq!((sent.len(), n), (20, 20));
        sent.push(non_ip_frame(0, 300));
        let mut map = by_header(&sent);
        assert_eq!(map.len(), 20);
        let s = &sent[3];
        let hdr = hex(&s.frame[..s.hdr_len]);
        let line = format!("pkt n=3 len={} split=1 hdr={hdr} frags=1", s.frame.len());
        assert!(std::ptr::eq(frame_of(&line, &mut map, &sent), s));
        assert_header(
            &format!(
                "pkt n=3 len={} split=1 hdr_len={} hdr_digest={:016x} hdr={hdr}",
                s.frame.len(),
                s.hdr_len,
                fnv64(&s.frame[..s.hdr_len])
            ),
            s,
            s.hdr_len,
        );
        let unsplit = frame_of("pkt n=20 len=300 split=0 hdr= frags=1", &mut map, &sent);
        assert_eq!(unsplit.hdr_len, 0);
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            frame_of(&line, &mut map, &sent);
        }));
        assert!(again.is_err(), "a frame seen twice is refused");
    }

    #[test]
    fn fragments_are_those_of_the_packet_and_overlaps_are_caught() {
        let frags = [
            "frag pkt=0 region=1 offset=0 size=100 token=0 cpu_readable=0",
            "frag pkt=1 region=1 offset=4096 size=4096 token=1 cpu_readable=0",
            "frag pkt=1 region=1 offset=8192 size=10 token=2 cpu_readable=0",
        ];
        assert_eq!(fragments(&frags, 1, 4096).len(), 2);
        assert_disjoint(vec![(4096, 8192), (0, 100)]);
        let overlap = std::panic::catch_unwind(|| assert_disjoint(vec![(0, 100), (50, 60)]));
        assert!(overlap.is_err());
        let readable = ["frag pkt=0 region=1 offset=0 size=1 token=0 cpu_readable=1"];
        assert!(std::panic::catch_unwind(|| fragments(&readable, 0, 4096)).is_err());
    }
}
