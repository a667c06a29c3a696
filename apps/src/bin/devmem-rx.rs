//! `devmem-rx`: device-memory receive on one port, as devmem TCP user space
//! sees it. Opens the port with header split: headers into hugepage pages,
//! payload into net_iov chunks of another device's BAR (the ivshmem BAR2 in
//! the rig), receives on queue 0 and prints, per packet, the header bytes
//! (readable) and, per payload fragment, what devmem TCP hands to user
//! space: (region id, offset, size, token). The payload itself is never
//! read: the API has no way to. Tokens are held like a socket's and
//! returned in batches (each return drops the pool reference). At the end
//! it prints the pools' in-use counts after close and the net_iov pool's
//! statistics.
//!
//! ```text
//! devmem-rx --pci NIC --region DEV [--bar 2] [--count N] [--idle-ms T] [--max-ms T]
//!           [--mtu M] [--chunk BYTES] [--header-buf BYTES] [--batch N]
//! ```
//! Output lines (`key=value` words):
//! - `devmem-rx: ready region=1 region_iova=0x.. region_len=.. chunk=..`
//! - `pkt n=N len=L split=0|1 hdr_len=H hdr_digest=FNV64HEX hdr=HEX frags=F`
//!   (the header digest is FNV-1a 64 of the header bytes)
//! - `frag pkt=N region=1 offset=O size=S token=T cpu_readable=0`
//! - `tokens returned=K held=0`
//! - `stats ipackets=.. ibytes=.. ierrors=.. imissed=.. rx_nombuf=..` (rx_nombuf:
//!   frames dropped because no refill buffer, e.g. every net_iov held)
//! - `pool header in_use=N` and `pool payload in_use=N count=.. alloc_fast=..
//!   alloc_slow=.. alloc_empty=.. recycle_cached=.. recycle_ring=..` after
//!   close.
//!
//! Exit status 0 on success, 1 when the port or a pool cannot be set up
//! (the error is printed as `devmem-rx: error: MESSAGE`), 2 on bad usage.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hw::PciAddress;
use hw::devmem::DeviceMemory;
use pmd::{Packet, Port, PortConfig, RxFlags, RxQueueConfig};
use pool::{Netmem, Pool, PoolConfig};

/// The region id this program binds its one device-memory region to.
const REGION_ID: u32 = 1;

#[derive(Parser)]
#[command(about = "Receive payload into device memory with header split (devmem TCP's view)")]
struct Cli {
    /// PCI address of the port (an igb or an e1000e).
    #[arg(long)]
    pci: PciAddress,
    /// PCI address of the device whose BAR is the payload memory.
    #[arg(long)]
    region: PciAddress,
    /// BAR of `--region` to use.
    #[arg(long, default_value_t = 2)]
    bar: u32,
    /// Stop after this many packets.
    #[arg(long, default_value_t = u64::MAX)]
    count: u64,
    /// Stop after this long without a packet (after the first one).
    #[arg(long, default_value_t = 3000)]
    idle_ms: u64,
    /// Give up after this long in total.
    #[arg(long, default_value_t = 60_000)]
    max_ms: u64,
    #[arg(long, default_value_t = 1500)]
    mtu: u16,
    /// Bytes per net_iov chunk (a multiple of 1024).
    #[arg(long, default_value_t = 4096)]
    chunk: usize,
    /// Bytes per header buffer (a multiple of 64).
    #[arg(long, default_value_t = 256)]
    header_buf: usize,
    /// Return held tokens once this many are held.
    #[arg(long, default_value_t = 16)]
    batch: usize,
}

#[derive(Debug, thiserror::Error)]
enum DevmemError {
    #[error("cannot set this thread's lcore: {0}")]
    Lcore(#[from] pool::lcore::LcoreError),
    #[error("cannot allocate hugepage memory for the header pool: {0}")]
    HeaderMemory(#[source] hw::Error),
    #[error("cannot build the header pool: {0}")]
    HeaderPool(#[source] pool::PoolError),
    #[error("cannot open the device-memory provider {addr}: {source}")]
    RegionOpen {
        addr: PciAddress,
        #[source]
        source: hw::Error,
    },
    #[error("cannot map BAR{bar} of {addr} as device memory: {source}")]
    RegionMap {
        addr: PciAddress,
        bar: u32,
        #[source]
        source: hw::Error,
    },
    #[error("cannot build the net_iov pool over {addr} BAR{bar}: {source}")]
    PayloadPool {
        addr: PciAddress,
        bar: u32,
        #[source]
        source: pool::PoolError,
    },
    #[error(transparent)]
    Port(#[from] pmd::Error),
    #[error(
        "packet {n}: payload segment {seg} is not in device memory (the payload pool must be net_iovs)"
    )]
    NotDeviceMemory { n: u64, seg: usize },
    #[error("packet {n}: payload fragment in region {iova:#x}, not the bound region {want:#x}")]
    ForeignRegion { n: u64, iova: u64, want: u64 },
}

/// Payload buffers user space holds, by token, until it returns them (as a
/// devmem socket's token table: returning a token drops the pool
/// reference).
#[derive(Default)]
struct Tokens {
    slots: Vec<Option<Netmem>>,
    free: Vec<u32>,
    held: usize,
}

impl Tokens {
    /// Keeps `nm` and names it with a token.
    fn hold(&mut self, nm: Netmem) -> u32 {
        self.held += 1;
        match self.free.pop() {
            Some(t) => {
                self.slots[t as usize] = Some(nm);
                t
            }
            None => {
                self.slots.push(Some(nm));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Returns every held token; how many were returned.
    fn return_all(&mut self) -> usize {
        let mut n = 0;
        for (t, s) in self.slots.iter_mut().enumerate() {
            if s.take().is_some() {
                self.free.push(t as u32);
                n += 1;
            }
        }
        self.held -= n;
        n
    }

    fn held(&self) -> usize {
        self.held
    }
}

/// FNV-1a, 64 bits.
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn header_pool(cli: &Cli, count: usize) -> Result<Arc<Pool>, DevmemError> {
    let cfg = PoolConfig::new("devmem-headers", count).with_buf_size(cli.header_buf);
    let len = (count * cli.header_buf).next_multiple_of(2 << 20);
    let mem = hw::dma::DmaMemory::allocate(len, hw::HugePageSize::Size2M)
        .map_err(DevmemError::HeaderMemory)?;
    Pool::with_pages(mem, &cfg).map_err(DevmemError::HeaderPool)
}

fn payload_pool(cli: &Cli) -> Result<(Arc<Pool>, u64, usize), DevmemError> {
    let addr = cli.region;
    let dev =
        hw::vfio::Device::open(&addr).map_err(|source| DevmemError::RegionOpen { addr, source })?;
    let mem = DeviceMemory::from_bar(&dev, cli.bar).map_err(|source| DevmemError::RegionMap {
        addr,
        bar: cli.bar,
        source,
    })?;
    let (iova, len) = (mem.iova(), mem.len());
    let cfg = PoolConfig::new("devmem-payload", len / cli.chunk.max(1)).with_buf_size(cli.chunk);
    let pool = Pool::with_net_iovs(mem, &cfg).map_err(|source| DevmemError::PayloadPool {
        addr,
        bar: cli.bar,
        source,
    })?;
    Ok((pool, iova, len))
}

/// Prints one packet and holds its payload fragments as tokens.
fn deliver(n: u64, pkt: Packet, region_iova: u64, tokens: &mut Tokens) -> Result<(), DevmemError> {
    let split = pkt.rx_flags.contains(RxFlags::HEADER_SPLIT);
    let len = pkt.len();
    let frags = pkt.segment_count() - 1;
    let mut segs = pkt.into_segments();
    let head = segs.next();
    let hdr = head.as_ref().and_then(|h| h.data()).unwrap_or(&[]);
    println!(
        "pkt n={n} len={len} split={} hdr_len={} hdr_digest={:016x} hdr={} frags={frags}",
        u8::from(split),
        hdr.len(),
        fnv64(hdr),
        hex(hdr)
    );
    drop(head);
    for (i, seg) in segs.enumerate() {
        let frag = seg
            .devmem_frag()
            .ok_or(DevmemError::NotDeviceMemory { n, seg: i + 1 })?;
        if frag.region_iova != region_iova {
            return Err(DevmemError::ForeignRegion {
                n,
                iova: frag.region_iova,
                want: region_iova,
            });
        }
        let readable = seg.data().is_some();
        let token = tokens.hold(seg.into_netmem());
        println!(
            "frag pkt={n} region={REGION_ID} offset={} size={} token={token} cpu_readable={}",
            frag.offset,
            frag.len,
            u8::from(readable)
        );
    }
    Ok(())
}

fn run(cli: &Cli) -> Result<(), DevmemError> {
    pool::lcore::set_current(0)?;
    let cfg = PortConfig {
        mtu: cli.mtu,
        ..PortConfig::default()
    };
    // Every descriptor holds a header buffer; a burst's worth more are in
    // flight, plus the ring's refill spare.
    let headers = header_pool(cli, usize::from(cfg.rx_desc) * 2)?;
    let (payload, region_iova, region_len) = payload_pool(cli)?;
    let port = Port::open_with_queues(
        &cli.pci,
        &cfg,
        &[RxQueueConfig::header_split(
            headers.clone(),
            payload.clone(),
        )],
    )?;
    let mut rxq = port.take_rx_queue(0)?;
    println!(
        "devmem-rx: ready region={REGION_ID} region_iova={region_iova:#x} region_len={region_len} chunk={}",
        cli.chunk
    );
    let mut tokens = Tokens::default();
    let mut pkts = Vec::with_capacity(32);
    let (start, mut last) = (Instant::now(), None::<Instant>);
    let mut total = 0u64;
    let mut result = Ok(());
    'rx: while total < cli.count {
        let n = rxq.rx_burst(&mut pkts, 32);
        let now = Instant::now();
        if n == 0 {
            if last.is_some_and(|l| now - l > Duration::from_millis(cli.idle_ms))
                || now - start > Duration::from_millis(cli.max_ms)
            {
                break;
            }
            std::hint::spin_loop();
            continue;
        }
        last = Some(now);
        for pkt in pkts.drain(..) {
            if let Err(e) = deliver(total, pkt, region_iova, &mut tokens) {
                result = Err(e);
                break 'rx;
            }
            total += 1;
            if tokens.held() >= cli.batch {
                println!("tokens returned={} held=0", tokens.return_all());
            }
        }
    }
    pkts.clear();
    println!("tokens returned={} held=0", tokens.return_all());
    let s = port.stats();
    println!(
        "stats ipackets={} ibytes={} ierrors={} imissed={} rx_nombuf={}",
        s.ipackets, s.ibytes, s.ierrors, s.imissed, s.rx_nombuf
    );
    drop(rxq);
    port.close();
    println!("pool header in_use={}", headers.in_use());
    let p = payload.stats();
    println!(
        "pool payload in_use={} count={} alloc_fast={} alloc_slow={} alloc_empty={} recycle_cached={} recycle_ring={}",
        payload.in_use(),
        p.count,
        p.alloc_fast,
        p.alloc_slow,
        p.alloc_empty,
        p.recycle_cached,
        p.recycle_ring
    );
    result
}

fn main() -> ExitCode {
    env_logger::init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devmem-rx: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hold_buffers_until_returned() {
        let pool = Pool::with_host_net_iovs(&PoolConfig::new("tokens", 8)).unwrap();
        let mut t = Tokens::default();
        let a = t.hold(pool.alloc().unwrap());
        let b = t.hold(pool.alloc().unwrap());
        assert_ne!(a, b);
        assert_eq!(pool.in_use(), 2);
        assert_eq!(t.return_all(), 2);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(t.held(), 0);
        // Returned tokens are reused.
        let c = t.hold(pool.alloc().unwrap());
        assert!(c == a || c == b);
        assert_eq!(t.return_all(), 1);
    }

    #[test]
    fn digest_is_fnv1a_64() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
