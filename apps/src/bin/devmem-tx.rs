//! `devmem-tx`: transmit from device memory on one port (igb or e1000e),
//! devmem TCP's send side. Fills a device-memory region (another device's
//! BAR, the ivshmem BAR2 in the rig) with a pattern through its explicit
//! host view ([`apps::pattern::region_byte`]: a hash of the region offset),
//! builds it into a net_iov pool, and sends UDP frames and TSO'd TCP
//! packets whose headers are in a hugepage page (written by the CPU, the
//! checksums left to the device) and whose payload is net_iov chunk
//! windows of the region the CPU never reads: the device fetches the
//! payload, computes the checksums and (TSO) cuts the segments.
//!
//! ```text
//! devmem-tx --pci NIC --region DEV [--bar 2] [--chunk BYTES] [--seed S]
//!           [--udp N] [--udp-len BYTES] [--tso N] [--tso-len BYTES] [--mss M]
//!           [--vlan TCI] [--check-refusals]
//! ```
//! Frames alternate IPv4 and IPv6; frame `n` has L4 source port
//! `20000 + n`, destination port 5000, and its payload starts at a varying
//! offset in its first chunk, so most payloads span two chunks (and TSO
//! payloads several). With `--vlan`, every third UDP frame (`n % 3 == 2`)
//! asks for an 802.1Q tag: the 82576 inserts it, the 82574L driver inserts
//! it in software into the header page (CTRL.VME off), never touching the
//! payload.
//!
//! Output lines (`key=value` words):
//! - `devmem-tx: ready region_iova=0x.. region_len=.. chunk=.. seed=..`
//! - `frame n=N kind=udp4|udp6|tso4|tso6 sport=S len=L payload=P mss=M vlan=TCI|none frags=O:L,O:L..`
//!   (`len`: bytes on the wire, tag included; `frags`: region offset and
//!   length of each payload window, in order; `mss` 0 for UDP)
//! - with `--check-refusals`, for each packet the CPU would have to read
//!   device memory for: `refusal case=NAME error=MESSAGE` (the queue's
//!   typed [`pmd::TxError`], from `tx_prepare`); the same packets are then
//!   given to `tx_burst`, which drops them (counted in `oerrors`)
//! - `devmem-tx: sent frames=N packets=P payload_bytes=B refused=R`
//! - `stats opackets=.. obytes=.. oerrors=..`
//! - `pool pages in_use=N` and `pool payload in_use=N count=..` after close.
//!
//! Exit status 0 on success, 1 when the port, a pool or a send fails
//! (`devmem-tx: error: MESSAGE`), 2 on bad usage.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apps::pattern::region_byte;
use clap::Parser;
use hw::PciAddress;
use pmd::{Packet, Port, PortConfig, Segment, TxFlags, TxOffload, TxQueue};
use pool::{Pool, PoolConfig};

/// L4 destination port of every frame; sources are `SPORT_BASE + n`.
const DPORT: u16 = 5000;
const SPORT_BASE: u16 = 20000;

#[derive(Parser)]
#[command(about = "Send frames whose payload is in device memory (devmem TCP's transmit side)")]
struct Cli {
    /// PCI address of the port (igb or e1000e).
    #[arg(long)]
    pci: PciAddress,
    /// PCI address of the device whose BAR is the payload memory.
    #[arg(long)]
    region: PciAddress,
    /// BAR of `--region` to use.
    #[arg(long, default_value_t = 2)]
    bar: u32,
    /// Bytes per net_iov chunk (a multiple of 1024, at most 32768).
    #[arg(long, default_value_t = 4096)]
    chunk: usize,
    /// Pattern seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// UDP frames to send.
    #[arg(long, default_value_t = 16)]
    udp: u16,
    /// UDP payload bytes per frame (IPv6 frames: 20 fewer, to stay in
    /// the MTU).
    #[arg(long, default_value_t = 1400)]
    udp_len: u16,
    /// TSO packets to send (0: none).
    #[arg(long, default_value_t = 4)]
    tso: u16,
    /// TCP payload bytes per TSO packet.
    #[arg(long, default_value_t = 9000)]
    tso_len: u32,
    /// TSO maximum segment size.
    #[arg(long, default_value_t = 1000)]
    mss: u16,
    /// Tag every third UDP frame with this 802.1Q TCI.
    #[arg(long)]
    vlan: Option<u16>,
    /// Also show that packets the CPU would have to read device memory
    /// for are refused with a typed error, and never sent.
    #[arg(long)]
    check_refusals: bool,
}

#[derive(Debug, thiserror::Error)]
enum DevmemError {
    #[error("cannot set this thread's lcore: {0}")]
    Lcore(#[from] pool::lcore::LcoreError),
    #[error("bad --chunk {0}: a multiple of 1024 between 1024 and 32768")]
    Chunk(usize),
    #[error("cannot allocate hugepage memory for the header pool: {0}")]
    PageMemory(#[source] hw::Error),
    #[error("cannot build the page pool: {0}")]
    PagePool(#[source] pool::PoolError),
    #[error(transparent)]
    Region(#[from] apps::devmem::RegionError),
    #[error("cannot build the net_iov pool: {0}")]
    PayloadPool(#[source] pool::PoolError),
    #[error(transparent)]
    Port(#[from] pmd::Error),
    #[error("the {0} pool ran out of buffers")]
    Empty(&'static str),
    #[error("frame {n}: {source}")]
    Refused {
        n: u16,
        #[source]
        source: pmd::TxError,
    },
    #[error("frame {n}: a payload window does not fit its chunk: {source}")]
    Window {
        n: u16,
        #[source]
        source: pmd::SegmentError,
    },
    #[error("the queue took {taken} of {want} packets before the deadline")]
    Stalled { taken: usize, want: usize },
    #[error("refusal case {0}: the queue accepted a packet it must refuse")]
    NotRefused(&'static str),
}

/// What one packet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kind {
    ipv6: bool,
    /// TSO with this MSS; `None`: one UDP frame.
    tso: Option<u16>,
}

impl Kind {
    fn name(self) -> &'static str {
        match (self.tso.is_some(), self.ipv6) {
            (false, false) => "udp4",
            (false, true) => "udp6",
            (true, false) => "tso4",
            (true, true) => "tso6",
        }
    }
    fn l3_len(self) -> usize {
        if self.ipv6 { 40 } else { 20 }
    }
    fn l4_len(self) -> usize {
        if self.tso.is_some() { 20 } else { 8 }
    }
    fn header_len(self) -> usize {
        14 + self.l3_len() + self.l4_len()
    }
}

/// Ethernet / IPv4 or IPv6 / UDP or TCP headers of packet `n` with
/// `payload` bytes after them; the checksum fields are 0 (the device
/// fills them; the driver seeds the L4 one).
fn headers(kind: Kind, n: u16, src: [u8; 6], payload: usize) -> Vec<u8> {
    let l4_total = kind.l4_len() + payload;
    let mut h = Vec::with_capacity(kind.header_len());
    h.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    h.extend_from_slice(&src);
    let proto = if kind.tso.is_some() { 6 } else { 17 };
    if kind.ipv6 {
        h.extend_from_slice(&0x86DDu16.to_be_bytes());
        h.extend_from_slice(&[0x60, 0, 0, 0]);
        h.extend_from_slice(&(l4_total as u16).to_be_bytes());
        h.extend_from_slice(&[proto, 64]);
        h.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        h.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    } else {
        h.extend_from_slice(&0x0800u16.to_be_bytes());
        h.extend_from_slice(&[0x45, 0]);
        // For TSO the device rewrites the length of each segment.
        h.extend_from_slice(&((20 + l4_total) as u16).to_be_bytes());
        h.extend_from_slice(&n.to_be_bytes());
        h.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
        h.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
    }
    h.extend_from_slice(&(SPORT_BASE + n).to_be_bytes());
    h.extend_from_slice(&DPORT.to_be_bytes());
    if kind.tso.is_some() {
        h.extend_from_slice(&(u32::from(n) << 20).to_be_bytes()); // sequence
        h.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]);
    } else {
        h.extend_from_slice(&(l4_total as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0]);
    }
    h
}

fn offload(kind: Kind) -> TxOffload {
    let mut flags = if kind.ipv6 {
        TxFlags::IPV6
    } else {
        TxFlags::IPV4 | TxFlags::IP_CKSUM
    };
    flags.insert(match kind.tso {
        Some(_) => TxFlags::TCP_CKSUM | TxFlags::TCP_SEG,
        None => TxFlags::UDP_CKSUM,
    });
    TxOffload {
        flags,
        l2_len: 14,
        l3_len: kind.l3_len() as u16,
        l4_len: kind.l4_len() as u8,
        mss: kind.tso.unwrap_or(0),
        vlan_tci: 0,
    }
}

/// A packet of `hdr` in a page followed by `payload` bytes of device
/// memory: chunk windows from `start` in the first chunk, then whole
/// chunks. Returns it with the windows' region offsets and lengths.
fn devmem_packet(
    n: u16,
    pages: &Pool,
    payload_pool: &Pool,
    hdr: &[u8],
    start: usize,
    payload: usize,
) -> Result<(Packet, Vec<(u64, u16)>), DevmemError> {
    let mut pkt = Packet::from_bytes(pages, hdr).ok_or(DevmemError::Empty("page"))?;
    let chunk = payload_pool.buf_size();
    let (mut left, mut off) = (payload, start % chunk);
    let mut frags = Vec::new();
    while left > 0 {
        let nm = payload_pool.alloc().ok_or(DevmemError::Empty("payload"))?;
        let len = left.min(chunk - off);
        // Both fit u16: chunk <= 32768 was checked.
        let seg = Segment::new(nm, off as u16, len as u16)
            .map_err(|source| DevmemError::Window { n, source })?;
        if let Some(f) = seg.devmem_frag() {
            frags.push((f.offset, f.len));
        }
        pkt.push_segment(seg);
        left -= len;
        off = 0;
    }
    Ok((pkt, frags))
}

fn page_pool(count: usize) -> Result<Arc<Pool>, DevmemError> {
    let cfg = PoolConfig::new("devmem-tx-pages", count).with_buf_size(2048 + 128);
    let len = (count * cfg.buf_size).next_multiple_of(2 << 20);
    let mem = hw::dma::DmaMemory::allocate(len, hw::HugePageSize::Size2M)
        .map_err(DevmemError::PageMemory)?;
    Pool::with_pages(mem, &cfg).map_err(DevmemError::PagePool)
}

/// Maps the region, fills it with the pattern through its host view and
/// builds the net_iov pool over it.
fn payload_pool(cli: &Cli) -> Result<(Arc<Pool>, u64, usize), DevmemError> {
    let mem = apps::devmem::open_region(cli.region, cli.bar)?;
    let (iova, len) = (mem.iova(), mem.len());
    {
        // SAFETY: no device has been given any of the region yet (the pool
        // is built below); the view only seeds the test pattern, and the
        // datapath never reads through it.
        let view = unsafe { mem.host_view() };
        let mut block = vec![0u8; 64 * 1024];
        for at in (0..len).step_by(block.len()) {
            let n = block.len().min(len - at);
            for (i, b) in block[..n].iter_mut().enumerate() {
                *b = region_byte(cli.seed, (at + i) as u64);
            }
            view.write(at, &block[..n]);
        }
    }
    let cfg = PoolConfig::new("devmem-tx-payload", len / cli.chunk).with_buf_size(cli.chunk);
    let pool = Pool::with_net_iovs(mem, &cfg).map_err(DevmemError::PayloadPool)?;
    Ok((pool, iova, len))
}

/// Sends every packet of `pkts`, retrying while the ring is full.
fn send_all(txq: &mut TxQueue, mut pkts: Vec<Packet>) -> Result<(), DevmemError> {
    let want = pkts.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut taken = 0;
    while !pkts.is_empty() {
        taken += txq.tx_burst(&mut pkts);
        if !pkts.is_empty() {
            if Instant::now() > deadline {
                return Err(DevmemError::Stalled { taken, want });
            }
            txq.cleanup();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// The packets the CPU would have to read device memory for; each must
/// be refused by `tx_prepare` (printed) and dropped by `tx_burst`.
fn check_refusals(
    txq: &mut TxQueue,
    src: [u8; 6],
    pages: &Pool,
    payload_pool: &Pool,
) -> Result<u64, DevmemError> {
    let kind = Kind {
        ipv6: false,
        tso: None,
    };
    let hdr = headers(kind, u16::MAX - 1, src, 512);
    // Ethernet + IPv4 in the page, the UDP header in device memory.
    let (mut short, _) = devmem_packet(0, pages, payload_pool, &hdr[..34], 0, 0)?;
    let (rest, _) = devmem_packet(0, pages, payload_pool, &[], 0, 8 + 512)?;
    rest.into_segments()
        .skip(1)
        .for_each(|s| short.push_segment(s));
    short.tx = offload(kind);
    // The whole frame, headers too, in device memory.
    let nm = payload_pool.alloc().ok_or(DevmemError::Empty("payload"))?;
    let seg = Segment::new(nm, 0, (hdr.len() + 512) as u16)
        .map_err(|source| DevmemError::Window { n: 0, source })?;
    let mut iov_head = Packet::from_segment(seg);
    iov_head.tx = offload(kind);
    // TSO over a TCP header in device memory.
    let tso = Kind {
        ipv6: false,
        tso: Some(1000),
    };
    let hdr = headers(tso, u16::MAX - 2, src, 3000);
    let (mut tso_short, _) = devmem_packet(0, pages, payload_pool, &hdr[..40], 0, 0)?;
    let (rest, _) = devmem_packet(0, pages, payload_pool, &[], 0, 14 + 3000)?;
    rest.into_segments()
        .skip(1)
        .for_each(|s| tso_short.push_segment(s));
    tso_short.tx = offload(tso);
    let cases = [
        ("udp-header-in-device-memory", short),
        ("headers-all-in-device-memory", iov_head),
        ("tcp-header-in-device-memory", tso_short),
    ];
    let mut refused = Vec::new();
    for (name, mut p) in cases {
        match txq.tx_prepare(&mut p) {
            Ok(()) => return Err(DevmemError::NotRefused(name)),
            Err(e) => println!("refusal case={name} error={e}"),
        }
        refused.push(p);
    }
    let n = refused.len() as u64;
    send_all(txq, refused)?;
    Ok(n)
}

fn run(cli: &Cli) -> Result<(), DevmemError> {
    if !(1024..=32768).contains(&cli.chunk) || !cli.chunk.is_multiple_of(1024) {
        return Err(DevmemError::Chunk(cli.chunk));
    }
    pool::lcore::set_current(0)?;
    let cfg = PortConfig {
        rx_desc: 128,
        tx_desc: 256,
        ..PortConfig::default()
    };
    let pages = page_pool(1024)?;
    let (payload, region_iova, region_len) = payload_pool(cli)?;
    let port = Port::open(&cli.pci, &cfg, std::slice::from_ref(&pages))?;
    let mut txq = port.take_tx_queue(0)?;
    let src = port.mac_addr();
    println!(
        "devmem-tx: ready region_iova={region_iova:#x} region_len={region_len} chunk={} seed={}",
        cli.chunk, cli.seed
    );
    let mut kinds: Vec<Kind> = (0..cli.udp)
        .map(|i| Kind {
            ipv6: i % 2 == 1,
            tso: None,
        })
        .collect();
    kinds.extend((0..cli.tso).map(|i| Kind {
        ipv6: i % 2 == 1,
        tso: Some(cli.mss),
    }));
    let (mut payload_bytes, mut wire_packets) = (0u64, 0u64);
    let mut burst = Vec::with_capacity(8);
    for (n, kind) in kinds.iter().enumerate() {
        let n = n as u16;
        let len = match kind.tso {
            Some(mss) => {
                wire_packets += u64::from(cli.tso_len.div_ceil(u32::from(mss.max(1))));
                cli.tso_len as usize
            }
            None => {
                wire_packets += 1;
                usize::from(cli.udp_len) - if kind.ipv6 { 20 } else { 0 }
            }
        };
        let hdr = headers(*kind, n, src, len);
        // A different start in the first chunk for each frame.
        let start = (usize::from(n) * 523 + 64) % cli.chunk;
        let (mut pkt, frags) = devmem_packet(n, &pages, &payload, &hdr, start, len)?;
        pkt.tx = offload(*kind);
        let vlan = cli.vlan.filter(|_| kind.tso.is_none() && n % 3 == 2);
        if let Some(tci) = vlan {
            pkt.tx.flags.insert(TxFlags::VLAN);
            pkt.tx.vlan_tci = tci;
        }
        txq.tx_prepare(&mut pkt)
            .map_err(|source| DevmemError::Refused { n, source })?;
        // A tag still requested is the device's to insert (done in
        // software, it is in the page now and the request cleared).
        let wire = pkt.len()
            + if pkt.tx.flags.contains(TxFlags::VLAN) {
                4
            } else {
                0
            };
        let list: Vec<String> = frags.iter().map(|(o, l)| format!("{o}:{l}")).collect();
        println!(
            "frame n={n} kind={} sport={} len={wire} payload={len} mss={} vlan={} frags={}",
            kind.name(),
            SPORT_BASE + n,
            kind.tso.unwrap_or(0),
            vlan.map_or("none".to_string(), |t| t.to_string()),
            list.join(",")
        );
        payload_bytes += len as u64;
        burst.push(pkt);
        if burst.len() == burst.capacity() {
            send_all(&mut txq, std::mem::take(&mut burst))?;
            burst.reserve(8);
        }
    }
    send_all(&mut txq, burst)?;
    let refused = if cli.check_refusals {
        check_refusals(&mut txq, src, &pages, &payload)?
    } else {
        0
    };
    println!(
        "devmem-tx: sent frames={} packets={wire_packets} payload_bytes={payload_bytes} refused={refused}",
        kinds.len()
    );
    // Let the device finish fetching before the queue goes; what it has not
    // reported done goes back only once the queue or device is proven
    // stopped (the ring and the port's fence see to it).
    std::thread::sleep(Duration::from_millis(200));
    txq.cleanup();
    let s = port.stats();
    println!(
        "stats opackets={} obytes={} oerrors={}",
        s.opackets, s.obytes, s.oerrors
    );
    drop(txq);
    port.close();
    println!("pool pages in_use={}", pages.in_use());
    println!(
        "pool payload in_use={} count={}",
        payload.in_use(),
        payload.count()
    );
    Ok(())
}

fn main() -> ExitCode {
    apps::devmem::main("devmem-tx", run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_have_the_lengths_the_offload_names() {
        for ipv6 in [false, true] {
            for tso in [None, Some(1000)] {
                let k = Kind { ipv6, tso };
                let h = headers(k, 3, [2, 0, 0, 0, 0, 9], 1234);
                assert_eq!(h.len(), k.header_len(), "{}", k.name());
                let mut o = TxOffload::default();
                let proto = pmd::offload::parse_headers(&h, &mut o).expect("parses");
                assert_eq!(proto, if tso.is_some() { 6 } else { 17 });
                let want = offload(k);
                assert_eq!(
                    (o.l2_len, o.l3_len, o.l4_len),
                    (14, want.l3_len, want.l4_len)
                );
                let l4 = 14 + k.l3_len();
                assert_eq!(u16::from_be_bytes([h[l4], h[l4 + 1]]), SPORT_BASE + 3);
            }
        }
    }

    #[test]
    fn payload_windows_follow_the_start_and_the_chunks() {
        let pages = Pool::with_host_memory(&PoolConfig::new("p", 4)).expect("pages");
        let iovs =
            Pool::with_host_net_iovs(&PoolConfig::new("i", 8).with_buf_size(4096)).expect("iovs");
        let (p, frags) = devmem_packet(0, &pages, &iovs, &[0u8; 42], 3000, 6000).expect("packet");
        assert_eq!(p.len(), 6042);
        let lens: Vec<u16> = frags.iter().map(|f| f.1).collect();
        assert_eq!(lens, vec![1096, 4096, 808]);
        assert_eq!(frags[0].0 % 4096, 3000);
        assert!(frags[1..].iter().all(|f| f.0 % 4096 == 0));
        assert!(p.segments().skip(1).all(|s| s.data().is_none()));
    }
}
