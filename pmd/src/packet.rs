//! The packet type (the mbuf): one or more netmem segments plus the metadata
//! the drivers report on receive and consume on transmit.
//!
//! A segment is a pool buffer ([`pool::Netmem`]) with a data offset and a
//! length. The first segment normally lives in host memory (a page) and holds
//! the headers; later segments may be device-memory net_iovs (payload the CPU
//! must not touch), which is the room for a device-memory payload fragment:
//! byte accessors return `None` for them instead of pretending.

use pool::Netmem;

/// Bytes left free in front of the data of a freshly received or allocated
/// buffer, so an app can prepend headers without copying (DPDK's
/// `RTE_PKTMBUF_HEADROOM`).
pub const HEADROOM: u16 = 128;

/// One piece of a packet: `len` bytes at `off` in `buf`.
#[derive(Debug)]
pub struct Segment {
    buf: Netmem,
    off: u16,
    len: u16,
}

/// A segment window that does not fit its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "segment window of {len} bytes at offset {off} does not fit a {capacity}-byte buffer (the buffer went back to its pool)"
)]
pub struct SegmentError {
    pub off: u16,
    pub len: u16,
    pub capacity: usize,
}

/// True when `len` bytes at `off` lie inside `capacity` bytes.
#[inline]
fn window_fits(off: u16, len: u16, capacity: usize) -> bool {
    // u16 + u16 cannot overflow usize.
    usize::from(off) + usize::from(len) <= capacity
}

impl Segment {
    /// A segment over `len` bytes at `off` in `buf`. The window must lie
    /// inside the buffer's capacity (a page buffer's size or a net_iov's
    /// chunk size): a device is given exactly this window, so one reaching
    /// past the buffer would make it read or write a neighbour's bytes.
    /// An empty window is allowed (an empty header segment); on error `buf`
    /// is dropped (back to its pool).
    pub fn new(buf: Netmem, off: u16, len: u16) -> Result<Self, SegmentError> {
        let capacity = buf.capacity();
        if !window_fits(off, len, capacity) {
            return Err(SegmentError { off, len, capacity });
        }
        Ok(Segment { buf, off, len })
    }
    /// A segment over a window the caller has proven to fit `buf`
    /// (`off + len <= buf.capacity()`): the receive ring's short path,
    /// whose lengths are bounded once per ring against the pool's buffer
    /// size. Checked in debug builds.
    #[inline(always)]
    pub(crate) fn new_within(buf: Netmem, off: u16, len: u16) -> Self {
        debug_assert!(window_fits(off, len, buf.capacity()));
        Segment { buf, off, len }
    }
    /// A segment with no window check (host tests of the post-time check).
    #[cfg(test)]
    pub(crate) fn new_unchecked(buf: Netmem, off: u16, len: u16) -> Self {
        Segment { buf, off, len }
    }
    /// True when the window lies inside the buffer (always, for segments
    /// made by [`Segment::new`] and changed by [`Segment::set_window`]; the
    /// TX ring checks it again before posting).
    #[inline]
    pub fn window_fits(&self) -> bool {
        window_fits(self.off, self.len, self.buf.capacity())
    }
    /// The buffer holding this segment.
    pub fn netmem(&self) -> &Netmem {
        &self.buf
    }
    /// Offset of the data in the buffer.
    pub fn offset(&self) -> u16 {
        self.off
    }
    /// Number of data bytes.
    pub fn len(&self) -> u16 {
        self.len
    }
    /// True when the segment holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The device address of the first data byte.
    pub fn dma_addr(&self) -> u64 {
        self.buf.dma_addr() + u64::from(self.off)
    }
    /// The data bytes, or `None` for a device-memory (net_iov) segment.
    pub fn data(&self) -> Option<&[u8]> {
        let b = self.buf.bytes()?;
        b.get(usize::from(self.off)..usize::from(self.off) + usize::from(self.len))
    }
    /// The data bytes for writing, or `None` for a device-memory segment.
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        let (off, len) = (usize::from(self.off), usize::from(self.len));
        let b = self.buf.bytes_mut()?;
        b.get_mut(off..off + len)
    }
    /// Sets the data window; returns false (and changes nothing) when it
    /// would not fit in the buffer.
    pub fn set_window(&mut self, off: u16, len: u16) -> bool {
        if !window_fits(off, len, self.buf.capacity()) {
            return false;
        }
        self.off = off;
        self.len = len;
        true
    }
    /// Gives the buffer back (dropping it would return it to its pool).
    pub fn into_netmem(self) -> Netmem {
        self.buf
    }
    /// Where this segment's bytes are in their device-memory region, as
    /// devmem TCP reports a payload fragment to user space; `None` for a
    /// page segment.
    pub fn devmem_frag(&self) -> Option<DevmemFrag> {
        let o = self.buf.net_iov_owner()?;
        Some(DevmemFrag {
            region_iova: o.region_iova,
            offset: u64::from(o.index) * o.chunk_size as u64 + u64::from(self.off),
            len: self.len,
        })
    }
}

/// A payload fragment in device memory: `len` bytes at `offset` from the
/// start of the region whose device address is `region_iova`. The bytes
/// are only reachable by devices (or by whoever owns the region's memory,
/// e.g. a GPU or, in tests, the host side of an ivshmem file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevmemFrag {
    pub region_iova: u64,
    pub offset: u64,
    pub len: u16,
}

/// Receive flags reported by a driver (DPDK `RTE_MBUF_F_RX_*` meaning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RxFlags(pub u16);

impl RxFlags {
    /// `rss_hash` holds the device's RSS hash.
    pub const RSS_HASH: RxFlags = RxFlags(1 << 0);
    /// A VLAN tag was stripped into `vlan_tci`.
    pub const VLAN_STRIPPED: RxFlags = RxFlags(1 << 1);
    /// The device checked the IPv4 header checksum and found it right.
    pub const IP_CKSUM_GOOD: RxFlags = RxFlags(1 << 2);
    /// The device checked the IPv4 header checksum and found it wrong.
    pub const IP_CKSUM_BAD: RxFlags = RxFlags(1 << 3);
    /// The device checked the TCP/UDP checksum and found it right.
    pub const L4_CKSUM_GOOD: RxFlags = RxFlags(1 << 4);
    /// The device checked the TCP/UDP checksum and found it wrong.
    pub const L4_CKSUM_BAD: RxFlags = RxFlags(1 << 5);
    /// Header split: the device put the frame's headers (and only them)
    /// in the first segment; the payload is in the others. Without it, on
    /// a header-split queue, the first segment is empty and the whole
    /// frame is in the others.
    pub const HEADER_SPLIT: RxFlags = RxFlags(1 << 6);
    /// The device matched the frame with one of the port's EtherType flow
    /// rules ([`crate::flow`]; 82576 packet type ETQF, DPDK's
    /// `RTE_MBUF_F_RX_FDIR` role).
    pub const FLOW_MATCH: RxFlags = RxFlags(1 << 7);

    /// True when every flag of `other` is set.
    pub fn contains(self, other: RxFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: RxFlags) {
        self.0 |= other.0;
    }
}

impl std::ops::BitOr for RxFlags {
    type Output = RxFlags;
    fn bitor(self, rhs: RxFlags) -> RxFlags {
        RxFlags(self.0 | rhs.0)
    }
}

/// Transmit offload requests (DPDK `RTE_MBUF_F_TX_*` meaning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxFlags(pub u16);

impl TxFlags {
    /// The L3 header is IPv4.
    pub const IPV4: TxFlags = TxFlags(1 << 0);
    /// The L3 header is IPv6.
    pub const IPV6: TxFlags = TxFlags(1 << 1);
    /// Compute the IPv4 header checksum.
    pub const IP_CKSUM: TxFlags = TxFlags(1 << 2);
    /// Compute the TCP checksum.
    pub const TCP_CKSUM: TxFlags = TxFlags(1 << 3);
    /// Compute the UDP checksum.
    pub const UDP_CKSUM: TxFlags = TxFlags(1 << 4);
    /// TCP segmentation offload with `mss`.
    pub const TCP_SEG: TxFlags = TxFlags(1 << 5);
    /// Insert `vlan_tci` as an 802.1Q tag.
    pub const VLAN: TxFlags = TxFlags(1 << 6);

    /// True when every flag of `other` is set.
    pub fn contains(self, other: TxFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any flag of `other` is set.
    pub fn intersects(self, other: TxFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TxFlags) {
        self.0 |= other.0;
    }
    /// True when no offload is requested.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for TxFlags {
    type Output = TxFlags;
    fn bitor(self, rhs: TxFlags) -> TxFlags {
        TxFlags(self.0 | rhs.0)
    }
}

/// What a transmitted packet asks of the device, with the header lengths the
/// device needs (as DPDK's `l2_len`, `l3_len`, `l4_len`, `tso_segsz`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxOffload {
    pub flags: TxFlags,
    /// Ethernet header length, including any VLAN tag already in the frame.
    pub l2_len: u8,
    /// IP header length, options/extension headers included.
    pub l3_len: u16,
    /// TCP header length (TSO only).
    pub l4_len: u8,
    /// Maximum segment size of the TCP payload (TSO only).
    pub mss: u16,
    /// VLAN tag control information to insert (with [`TxFlags::VLAN`]).
    pub vlan_tci: u16,
}

/// A packet: segments plus metadata.
#[derive(Debug)]
pub struct Packet {
    head: Segment,
    more: Vec<Segment>,
    /// RSS hash reported by the device (valid with [`RxFlags::RSS_HASH`]).
    pub rss_hash: u32,
    /// Stripped VLAN TCI on receive (valid with [`RxFlags::VLAN_STRIPPED`]).
    pub vlan_tci: u16,
    /// Receive-side flags.
    pub rx_flags: RxFlags,
    /// Transmit offload requests.
    pub tx: TxOffload,
    /// Queue the packet was received on.
    pub queue: u16,
}

impl Packet {
    /// A one-segment packet of `len` bytes at `off` in `buf`; `None` when the
    /// window does not fit in the buffer.
    pub fn new(buf: Netmem, off: u16, len: u16) -> Option<Packet> {
        Segment::new(buf, off, len).ok().map(Packet::from_segment)
    }

    /// A one-segment packet over an existing segment.
    pub fn from_segment(head: Segment) -> Packet {
        Packet {
            head,
            more: Vec::new(),
            rss_hash: 0,
            vlan_tci: 0,
            rx_flags: RxFlags::default(),
            tx: TxOffload::default(),
            queue: 0,
        }
    }

    /// A one-segment packet as the receive ring delivers it.
    #[inline(always)]
    pub(crate) fn received(
        head: Segment,
        rss_hash: u32,
        vlan_tci: u16,
        rx_flags: RxFlags,
        queue: u16,
    ) -> Packet {
        Packet {
            head,
            more: Vec::new(),
            rss_hash,
            vlan_tci,
            rx_flags,
            tx: TxOffload::default(),
            queue,
        }
    }

    /// Allocates one buffer from `pool` and copies `bytes` into it (after
    /// [`HEADROOM`]); if they don't fit one buffer, into as many as needed.
    /// `None` when the pool is empty or its buffers are not CPU-readable.
    pub fn from_bytes(pool: &pool::Pool, bytes: &[u8]) -> Option<Packet> {
        let mut pkt: Option<Packet> = None;
        let mut rest = bytes;
        loop {
            let mut buf = pool.alloc()?;
            let cap = buf.capacity();
            let off = if pkt.is_none() {
                usize::from(HEADROOM).min(cap)
            } else {
                0
            };
            let room = (cap - off).min(usize::from(u16::MAX));
            let n = rest.len().min(room);
            buf.bytes_mut()?
                .get_mut(off..off + n)?
                .copy_from_slice(&rest[..n]);
            let seg = Segment::new(buf, off as u16, n as u16).ok()?;
            rest = &rest[n..];
            match pkt.as_mut() {
                None => pkt = Some(Packet::from_segment(seg)),
                Some(p) => p.push_segment(seg),
            }
            if rest.is_empty() {
                return pkt;
            }
            if n == 0 {
                return None;
            }
        }
    }

    /// Appends a segment at the end of the packet.
    pub fn push_segment(&mut self, seg: Segment) {
        self.more.push(seg);
    }

    /// Total data length over all segments.
    #[inline]
    pub fn len(&self) -> usize {
        let head = usize::from(self.head.len);
        if self.more.is_empty() {
            // One segment (the common case): no walk.
            return head;
        }
        head + self.more.iter().map(|s| usize::from(s.len)).sum::<usize>()
    }

    /// True when the packet holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of segments.
    #[inline]
    pub fn segment_count(&self) -> usize {
        1 + self.more.len()
    }

    /// The segments, first to last.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        std::iter::once(&self.head).chain(self.more.iter())
    }

    /// The first segment.
    pub fn head(&self) -> &Segment {
        &self.head
    }

    /// The first segment, for changing its window.
    pub fn head_mut(&mut self) -> &mut Segment {
        &mut self.head
    }

    /// The first segment's bytes (`None` if it is device memory).
    pub fn data(&self) -> Option<&[u8]> {
        self.head.data()
    }

    /// The first segment's bytes for writing (`None` if it is device memory).
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        self.head.data_mut()
    }

    /// All bytes copied into one vector; `None` when a segment is device
    /// memory.
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        let mut v = Vec::with_capacity(self.len());
        for s in self.segments() {
            v.extend_from_slice(s.data()?);
        }
        Some(v)
    }

    /// Splits the packet into its segments (their buffers go back to the
    /// pool when dropped).
    pub fn into_segments(self) -> impl Iterator<Item = Segment> {
        std::iter::once(self.head).chain(self.more)
    }

    /// Moves the first segment out of the packet at `p` in place (its
    /// other segments, if any, go back to their pools); every other field
    /// is plain data, so nothing else needs dropping. For the transmit
    /// ring, which takes packets out of the caller's vector one by one.
    ///
    /// # Safety
    /// `p` points to an initialised packet that is neither used nor
    /// dropped afterwards (its memory is then as if moved out).
    #[inline(always)]
    pub(crate) unsafe fn take_head(p: *mut Packet) -> Segment {
        // SAFETY: by the contract, both fields are initialised and read
        // out once; nothing reads or drops the packet again.
        unsafe {
            drop(std::ptr::read(&raw const (*p).more));
            std::ptr::read(&raw const (*p).head)
        }
    }

    /// The first segment and the rest (empty for a one-segment packet),
    /// for hot paths that skip walking an empty vector.
    pub fn into_parts(self) -> (Segment, Vec<Segment>) {
        (self.head, self.more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool::{Pool, PoolConfig};

    fn pages() -> std::sync::Arc<Pool> {
        Pool::with_host_memory(&PoolConfig::new("seg-pages", 16).with_buf_size(2048))
            .expect("host pool")
    }

    fn refused(pool: &Pool, off: u16, len: u16) {
        let b = pool.alloc().expect("buffer");
        let cap = b.capacity();
        assert_eq!(
            Segment::new(b, off, len).err(),
            Some(SegmentError {
                off,
                len,
                capacity: cap
            }),
            "window ({off}, {len}) in {cap} bytes"
        );
        assert_eq!(pool.in_use(), 0, "the refused buffer is back in its pool");
    }

    #[test]
    fn a_window_beyond_the_buffer_is_refused() {
        let p = pages();
        refused(&p, 2000, 4000); // offset + length beyond
        refused(&p, 2049, 0); // offset beyond, empty
        refused(&p, 3000, 10); // offset beyond
        refused(&p, 2048, 1); // one byte past the end
        refused(&p, u16::MAX, u16::MAX); // the sum past u16
        refused(&p, 0, 2049);
    }

    #[test]
    fn windows_inside_the_buffer_are_accepted() {
        let p = pages();
        for (off, len) in [(0, 2048), (128, 1920), (2048, 0), (0, 0), (2047, 1)] {
            let s = Segment::new(p.alloc().expect("buffer"), off, len).expect("fits");
            assert_eq!((s.offset(), s.len()), (off, len));
            assert!(s.window_fits());
        }
        assert!(Packet::new(p.alloc().expect("buffer"), 2000, 100).is_none());
    }

    #[test]
    fn a_net_iov_window_is_checked_against_its_chunk() {
        let p = Pool::with_host_net_iovs(&PoolConfig::new("seg-iov", 8).with_buf_size(4096))
            .expect("net_iov pool");
        refused(&p, 4000, 100);
        refused(&p, 0, 4097);
        let s = Segment::new(p.alloc().expect("chunk"), 96, 4000).expect("fits the chunk");
        assert_eq!(s.devmem_frag().map(|f| f.len), Some(4000));
    }
}
