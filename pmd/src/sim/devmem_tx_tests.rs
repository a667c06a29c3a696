//! Transmit from device memory against the simulated device, for both
//! descriptor formats: a packet whose first segment is a page holding the
//! headers and whose payload is net_iov chunks. What is posted (one data
//! descriptor per segment at the chunk's device address, the offload
//! fields as for any packet), what the CPU refuses to do over such a
//! packet (typed errors, nothing posted), and when the chunks go back to
//! their pool (at DD, or once the device is proven stopped).

use std::sync::Arc;

use pool::{Pool, PoolConfig};

use super::SimQueue;
use crate::e1000e::desc::{
    CtxTx, TXD_CMD_EOP, TXD_CMD_TSE, TXD_CMD_VLE, TXD_DTYP_D, TXD_POPTS_IXSM, TXD_POPTS_TXSM,
};
use crate::fence::DmaFence;
use crate::igb::desc::{
    ADVTXD_DCMD_EOP, ADVTXD_DCMD_TSE, ADVTXD_DTYP_CTXT, ADVTXD_DTYP_DATA, ADVTXD_PAYLEN_SHIFT,
    ADVTXD_POPTS_IXSM, ADVTXD_POPTS_TXSM, AdvTx,
};
use crate::offload::{self, OffloadError};
use crate::packet::{HEADROOM, Packet, Segment, TxFlags, TxOffload};
use crate::ring::Desc;
use crate::stats::QueueCounters;
use crate::tx::{TxError, TxFormat, TxRing};

const SIZE: u16 = 64;
const CHUNK: usize = 4096;
/// Ethernet + IPv4 + UDP, and Ethernet + IPv4 + TCP (no options).
const UDP_HDR: usize = 14 + 20 + 8;
const TCP_HDR: usize = 14 + 20 + 20;

struct Rig<F: TxFormat> {
    dev: SimQueue,
    ring: TxRing<F, SimQueue>,
    pages: Arc<Pool>,
    iovs: Arc<Pool>,
    counters: Arc<QueueCounters>,
}

fn rig<F: TxFormat>(rs_thresh: u16, fence: Option<Arc<DmaFence>>) -> Rig<F> {
    let pages = Pool::with_host_memory(&PoolConfig::new("devtx-pages", 64).with_buf_size(2048))
        .expect("page pool");
    let iovs = Pool::with_host_net_iovs(&PoolConfig::new("devtx-iovs", 64).with_buf_size(CHUNK))
        .expect("net_iov pool");
    let dev = match fence {
        Some(f) => SimQueue::with_fence(SIZE, f),
        None => SimQueue::new(SIZE),
    };
    let counters = Arc::new(QueueCounters::default());
    let ring =
        TxRing::<F, _>::new(dev.clone(), rs_thresh, rs_thresh, counters.clone()).expect("ring");
    Rig {
        dev,
        ring,
        pages,
        iovs,
        counters,
    }
}

/// Ethernet / IPv4 / UDP or TCP headers for `payload` bytes of L4 payload
/// (checksum fields 0, for the device to fill).
fn headers(tcp: bool, payload: usize) -> Vec<u8> {
    let l4 = if tcp { 20 } else { 8 };
    let mut h = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    h.extend_from_slice(&[0x45, 0]);
    h.extend_from_slice(&((20 + l4 + payload) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, 64, if tcp { 6 } else { 17 }, 0xAB, 0xCD]);
    h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    h.extend_from_slice(&[0x13, 0x88, 0x13, 0x89]);
    if tcp {
        h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]);
    } else {
        h.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0]);
    }
    h
}

impl<F: TxFormat> Rig<F> {
    /// `hdr` in a page, then a net_iov segment per `(offset, len)` window,
    /// each in its own chunk.
    fn devmem_packet(&self, hdr: &[u8], windows: &[(u16, u16)]) -> Packet {
        let mut p = Packet::from_bytes(&self.pages, hdr).expect("header page");
        for &(off, len) in windows {
            let c = self.iovs.alloc().expect("chunk");
            p.push_segment(Segment::new(c, off, len).expect("window in the chunk"));
        }
        p
    }
    fn desc(&self, i: usize) -> Desc {
        self.dev.state().descs[i]
    }
    fn posted(&self) -> usize {
        self.dev.state().descs.iter().filter(|d| d.hi != 0).count()
    }
}

/// The checksum seed `prepare` puts in the L4 field: the folded
/// pseudo-header sum (with the L4 length unless TSO).
fn seed(h: &[u8], proto: u8, l4_len: Option<usize>) -> u16 {
    let mut s = offload::csum_add(0, &h[26..34]) + u32::from(proto);
    if let Some(n) = l4_len {
        s += n as u32;
    }
    offload::csum_fold(s)
}

fn udp_offload() -> TxOffload {
    TxOffload {
        flags: TxFlags::IPV4 | TxFlags::IP_CKSUM | TxFlags::UDP_CKSUM,
        l2_len: 14,
        l3_len: 20,
        ..TxOffload::default()
    }
}

fn tso_offload(mss: u16) -> TxOffload {
    TxOffload {
        flags: TxFlags::IPV4 | TxFlags::IP_CKSUM | TxFlags::TCP_CKSUM | TxFlags::TCP_SEG,
        l2_len: 14,
        l3_len: 20,
        l4_len: 20,
        mss,
        ..TxOffload::default()
    }
}

#[test]
fn igb_posts_a_page_header_and_net_iov_payload_with_checksum_offload() {
    let mut r = rig::<AdvTx>(8, None);
    let windows = [(1000u16, 3096u16), (0, 904)];
    let hdr = headers(false, 4000);
    let mut p = r.devmem_packet(&hdr, &windows);
    p.tx = udp_offload();
    let addrs: Vec<u64> = p.segments().map(|s| s.dma_addr()).collect();
    let chunk = p.segments().nth(1).expect("chunk").netmem().dma_addr();
    assert_eq!(addrs[1], chunk + 1000, "the window's device address");
    // The CPU's part: the header page only (IP checksum zeroed, UDP seed).
    r.ring.tx_prepare(&mut p).expect("devmem packet accepted");
    let page = p.data().expect("header page").to_vec();
    assert_eq!(&page[24..26], &[0, 0], "IPv4 checksum left to the device");
    assert_eq!(
        u16::from_be_bytes([page[40], page[41]]),
        seed(&hdr, 17, Some(8 + 4000))
    );
    let mut pkts = vec![p];
    assert_eq!(r.ring.tx_burst(&mut pkts), 1);
    assert_eq!(r.counters.snapshot().errors, 0);
    // A context, then one data descriptor per segment.
    let ctx = r.desc(0);
    assert_eq!((ctx.hi as u32) & 0x00F0_0000, ADVTXD_DTYP_CTXT);
    let lens = [UDP_HDR as u64, 3096, 904];
    for k in 0..3 {
        let d = r.desc(1 + k);
        let cmd = d.hi as u32;
        assert_eq!(d.lo, addrs[k], "segment {k} at its buffer's device address");
        assert_eq!(cmd & 0x00F0_0000, ADVTXD_DTYP_DATA);
        assert_eq!(u64::from(cmd & 0xFFFF), lens[k], "segment {k} length");
        assert_eq!(cmd & ADVTXD_DCMD_EOP != 0, k == 2, "EOP on the last only");
        let olinfo = (d.hi >> 32) as u32;
        if k == 0 {
            assert_eq!(olinfo >> ADVTXD_PAYLEN_SHIFT, (UDP_HDR + 4000) as u32);
            assert_eq!(
                olinfo & (ADVTXD_POPTS_IXSM | ADVTXD_POPTS_TXSM),
                ADVTXD_POPTS_IXSM | ADVTXD_POPTS_TXSM
            );
        } else {
            assert_eq!(olinfo, 0, "PAYLEN/POPTS from the first descriptor only");
        }
    }
    assert_eq!(r.dev.state().tails, vec![4]);
}

#[test]
fn e1000e_posts_a_tso_packet_with_net_iov_payload() {
    let mut r = rig::<CtxTx>(8, None);
    let windows = [(96u16, 4000u16), (0, 4096), (0, 1904)];
    let hdr = headers(true, 10_000);
    let mut p = r.devmem_packet(&hdr, &windows);
    p.tx = tso_offload(1448);
    let addrs: Vec<u64> = p.segments().map(|s| s.dma_addr()).collect();
    r.ring
        .tx_prepare(&mut p)
        .expect("devmem TSO packet accepted");
    // TSO seed: the pseudo-header without the length.
    let page = p.data().expect("header page");
    assert_eq!(
        u16::from_be_bytes([page[50], page[51]]),
        seed(&hdr, 6, None)
    );
    let mut pkts = vec![p];
    assert_eq!(r.ring.tx_burst(&mut pkts), 1);
    assert_eq!(r.counters.snapshot().errors, 0);
    // TCP/IP context: TSE, PAYLEN = everything after the headers, HDRLEN,
    // MSS (datasheet 7.2.10.2).
    let ctx = r.desc(0);
    let cmd_len = ctx.hi as u32;
    assert_eq!(cmd_len & TXD_DTYP_D, 0, "a context descriptor");
    assert_ne!(cmd_len & TXD_CMD_TSE, 0);
    assert_eq!(cmd_len & 0xF_FFFF, 10_000, "PAYLEN");
    assert_eq!((ctx.hi >> 40) as u8, TCP_HDR as u8, "HDRLEN");
    assert_eq!((ctx.hi >> 48) as u16, 1448, "MSS");
    let lens = [TCP_HDR as u32, 4000, 4096, 1904];
    for k in 0..4 {
        let d = r.desc(1 + k);
        let cmd = d.hi as u32;
        assert_eq!(d.lo, addrs[k], "segment {k} address");
        assert_eq!(cmd & 0xF_FFFF, lens[k], "segment {k} DTALEN");
        assert_ne!(cmd & TXD_DTYP_D, 0);
        assert_ne!(cmd & TXD_CMD_TSE, 0, "TSE on every data descriptor");
        assert_eq!(cmd & TXD_CMD_EOP != 0, k == 3);
        let popts = (d.hi >> 32) as u32;
        assert_eq!(
            popts & (TXD_POPTS_IXSM | TXD_POPTS_TXSM),
            TXD_POPTS_IXSM | TXD_POPTS_TXSM
        );
    }
}

#[test]
fn igb_tso_payload_length_counts_the_net_iov_bytes() {
    let mut r = rig::<AdvTx>(8, None);
    let hdr = headers(true, 6000);
    let mut p = r.devmem_packet(&hdr, &[(0, 4096), (0, 1904)]);
    p.tx = tso_offload(1000);
    let mut pkts = vec![p];
    assert_eq!(r.ring.tx_burst(&mut pkts), 1);
    let first = r.desc(1);
    assert_ne!(first.hi as u32 & ADVTXD_DCMD_TSE, 0);
    assert_eq!(
        (first.hi >> 32) as u32 >> ADVTXD_PAYLEN_SHIFT,
        6000,
        "PAYLEN: the payload without the headers"
    );
    let ctx = r.desc(0);
    assert_eq!((ctx.hi >> 48) as u16, 1000, "MSS in the context");
}

#[test]
fn headers_that_reach_into_device_memory_are_refused_not_read() {
    let r = rig::<AdvTx>(8, None);
    // The page holds Ethernet + IPv4; the UDP header is in the chunk.
    let hdr = headers(false, 1000);
    let mut p = r.devmem_packet(&hdr[..34], &[(0, 1008)]);
    p.tx = udp_offload();
    assert_eq!(
        r.ring.tx_prepare(&mut p),
        Err(TxError::Offload(OffloadError::HeadersInDeviceMemory {
            need: UDP_HDR,
            head: 34
        }))
    );
    // TSO with the TCP header in device memory.
    let hdr = headers(true, 3000);
    let mut p = r.devmem_packet(&hdr[..40], &[(0, 3014)]);
    p.tx = tso_offload(1000);
    assert_eq!(
        r.ring.tx_prepare(&mut p),
        Err(TxError::Offload(OffloadError::HeadersInDeviceMemory {
            need: TCP_HDR,
            head: 40
        }))
    );
    // The same short page followed by a page is a length mismatch, not a
    // device-memory refusal.
    let mut q = Packet::from_bytes(&r.pages, &hdr[..40]).expect("page");
    q.push_segment(
        Packet::from_bytes(&r.pages, &[0u8; 100])
            .expect("page")
            .into_parts()
            .0,
    );
    q.tx = tso_offload(1000);
    assert_eq!(
        r.ring.tx_prepare(&mut q),
        Err(TxError::Offload(OffloadError::BadHeaders))
    );
}

#[test]
fn refused_devmem_packets_are_dropped_counted_and_never_posted() {
    let mut r = rig::<CtxTx>(8, None);
    let hdr = headers(false, 1000);
    let mut bad = r.devmem_packet(&hdr[..34], &[(0, 1008)]);
    bad.tx = udp_offload();
    // A net_iov first segment: the headers themselves are device memory.
    let mut iov_head = Packet::from_segment(
        Segment::new(r.iovs.alloc().expect("chunk"), 0, 1042).expect("window"),
    );
    iov_head.tx = udp_offload();
    let mut pkts = vec![bad, iov_head];
    assert_eq!(r.ring.tx_burst(&mut pkts), 2, "both taken");
    let c = r.counters.snapshot();
    assert_eq!((c.packets, c.errors), (0, 2));
    assert_eq!(r.posted(), 0, "nothing posted");
    assert_eq!(r.dev.state().tails, Vec::<u16>::new(), "no tail write");
    assert_eq!(r.iovs.in_use(), 0, "the chunks are back in their pool");
    assert_eq!(r.pages.in_use(), 0);

    let mut iov_head = Packet::from_segment(
        Segment::new(r.iovs.alloc().expect("chunk"), 0, 1042).expect("window"),
    );
    iov_head.tx = udp_offload();
    assert_eq!(
        r.ring.tx_prepare(&mut iov_head),
        Err(TxError::Offload(OffloadError::HeadersNotReadable))
    );
    // Without an offload request the device reads the whole frame from
    // device memory; the CPU has nothing to do, and it goes out.
    iov_head.tx = TxOffload::default();
    assert_eq!(r.ring.tx_prepare(&mut iov_head), Ok(()));
    let mut pkts = vec![iov_head];
    assert_eq!(r.ring.tx_burst(&mut pkts), 1);
    assert_eq!(r.counters.snapshot().packets, 1);
}

#[test]
fn software_vlan_insertion_moves_only_header_page_bytes() {
    let mut r = rig::<CtxTx>(8, None);
    r.ring.set_software_vlan(true);
    let hdr = headers(false, 2000);
    let vlan = |mut o: TxOffload| {
        o.flags.insert(TxFlags::VLAN);
        o.vlan_tci = 0x0123;
        o
    };
    // Headers in the page: the tag goes into its headroom, the chunks are
    // posted as they are, and the offsets follow the tag.
    let mut p = r.devmem_packet(&hdr, &[(500, 2000)]);
    p.tx = vlan(udp_offload());
    let chunk = p.segments().nth(1).expect("chunk").dma_addr();
    let head = p.head().dma_addr();
    r.ring.tx_prepare(&mut p).expect("tag inserted in the page");
    assert_eq!(p.head().offset(), HEADROOM - 4);
    assert_eq!(p.tx.l2_len, 18);
    assert!(!p.tx.flags.contains(TxFlags::VLAN), "done by the CPU");
    let d = p.data().expect("page");
    assert_eq!(&d[12..16], &[0x81, 0x00, 0x01, 0x23]);
    assert_eq!(
        &d[..12],
        &hdr[..12],
        "the addresses moved into the headroom"
    );
    // After the tag, the frame as it was up to the (then seeded) checksums.
    assert_eq!(&d[16..16 + 12], &hdr[12..24]);
    assert_eq!(d.len(), UDP_HDR + 4);
    let mut pkts = vec![p];
    assert_eq!(r.ring.tx_burst(&mut pkts), 1);
    assert_eq!(r.desc(1).lo, head - 4, "the page from the tag on");
    assert_eq!(r.desc(1).hi as u32 & 0xF_FFFF, UDP_HDR as u32 + 4);
    assert_eq!(r.desc(1).hi as u32 & TXD_CMD_VLE, 0, "no hardware tag");
    assert_eq!(r.desc(2).lo, chunk, "the payload untouched, in place");
    assert_eq!(r.desc(2).hi as u32 & 0xF_FFFF, 2000);

    // The addresses themselves partly in device memory: refused.
    let mut p = r.devmem_packet(&hdr[..10], &[(0, 2032)]);
    p.tx = vlan(TxOffload::default());
    assert_eq!(
        r.ring.tx_prepare(&mut p),
        Err(TxError::Offload(OffloadError::HeadersInDeviceMemory {
            need: 12,
            head: 10
        }))
    );
    // A device-memory first segment: nothing the CPU could move.
    let mut p = Packet::from_segment(
        Segment::new(r.iovs.alloc().expect("chunk"), 128, 1000).expect("window"),
    );
    p.tx = vlan(TxOffload::default());
    assert_eq!(
        offload::insert_vlan(&mut p),
        Err(OffloadError::HeadersNotReadable)
    );
}

#[test]
fn shape_refusals_are_typed() {
    let r = rig::<AdvTx>(8, None);
    let max = r.ring.max_packet_descs();
    let hdr = headers(false, 100);
    let windows = vec![(0u16, 2u16); max];
    let mut p = r.devmem_packet(&hdr, &windows);
    assert_eq!(
        r.ring.tx_prepare(&mut p),
        Err(TxError::TooManySegments { need: max + 1, max })
    );
    let mut p = Packet::from_segment(
        Segment::new(r.iovs.alloc().expect("chunk"), 0, 0).expect("empty window"),
    );
    assert_eq!(r.ring.tx_prepare(&mut p), Err(TxError::Empty));
    let mut p = r.devmem_packet(&hdr, &[]);
    p.push_segment(Segment::new_unchecked(
        r.iovs.alloc().expect("chunk"),
        4000,
        200,
    ));
    assert_eq!(
        r.ring.tx_prepare(&mut p),
        Err(TxError::BadWindow { index: 1 })
    );
}

#[test]
fn net_iovs_go_back_at_dd_not_before() {
    let mut r = rig::<AdvTx>(4, None);
    let hdr = headers(false, 3000);
    // 4 descriptors each (context once, then 3 data): RS on packet
    // boundaries every 4 descriptors or more.
    let mut pkts: Vec<Packet> = (0..4)
        .map(|_| {
            let mut p = r.devmem_packet(&hdr, &[(0, 1500), (0, 1500)]);
            p.tx = udp_offload();
            p
        })
        .collect();
    assert_eq!(r.ring.tx_burst(&mut pkts), 4);
    assert_eq!(r.iovs.in_use(), 8, "posted chunks stay with the ring");
    assert_eq!(r.ring.cleanup(), 0, "no DD yet");
    assert_eq!(r.iovs.in_use(), 8);
    r.dev.transmit_all();
    r.ring.cleanup();
    // Every RS'd batch is done; only descriptors after the last RS wait.
    let left = r.iovs.in_use();
    assert!(left < 8, "completed chunks returned ({left} left)");
    assert_eq!(r.pages.in_use() * 2, left, "whole packets wait together");
}

#[test]
fn posted_net_iovs_wait_for_the_fence_when_the_ring_goes() {
    let fence = DmaFence::new("devtx-sim");
    let r = rig::<CtxTx>(8, Some(fence.clone()));
    let (iovs, pages) = (r.iovs.clone(), r.pages.clone());
    let mut ring = r.ring;
    let hdr = headers(false, 3000);
    let mut p = Packet::from_bytes(&pages, &hdr).expect("page");
    for _ in 0..2 {
        p.push_segment(Segment::new(iovs.alloc().expect("chunk"), 0, 1500).expect("window"));
    }
    p.tx = udp_offload();
    let mut pkts = vec![p];
    assert_eq!(ring.tx_burst(&mut pkts), 1);
    // No proof the queue is off: the device may still read the chunks.
    assert_eq!(ring.release(None), 3);
    assert_eq!(fence.held(), 3);
    assert_eq!(iovs.in_use(), 2, "not back while the device may read them");
    drop(ring);
    fence.mark_stopped();
    assert_eq!(fence.held(), 0);
    assert_eq!(iovs.in_use(), 0, "back once the device is proven stopped");
    assert_eq!(pages.in_use(), 0);
}
