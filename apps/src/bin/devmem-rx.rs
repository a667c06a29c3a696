//! `devmem-rx`: device-memory receive on one port, as devmem TCP's
//! `ncdevmem` does it. The flow:
//!
//! 1. opens the port with header split on the chosen RX queue (headers
//!    into hugepage pages; a page pool stands in for the payload until the
//!    bind, as `ethtool -G tcp-data-split on` comes before a bind);
//! 2. binds device memory (another device's BAR: the ivshmem BAR2 in the
//!    rig) to that queue (`pool::DevmemBinding::bind`, `NETDEV_CMD_BIND_RX`'s
//!    role), optionally only its first `--region-len` bytes, and restarts
//!    the queue with the binding's net_iov pool;
//! 3. installs the flow rule (`--flow udp:PORT` or `tcp:PORT`:
//!    `ethtool -N … action Q`'s role) so that only that flow reaches the
//!    bound queue, and prints it;
//! 4. receives; prints per packet the header bytes (readable) and per
//!    payload fragment what devmem TCP hands to user space: (region id,
//!    offset, size, token). The payload is never read through the datapath;
//!    with `--validate SEED` it is checked through the region's explicit
//!    host view against the test pattern (payload byte `i` of a frame =
//!    `i * 31 + SEED`, mod 256: the rig's frame generator);
//! 5. holds the fragments as tokens and returns them in batches of
//!    `--batch` (`SO_DEVMEM_DONTNEED`'s role): their chunks refill the
//!    queue, so a flow may be many times the region's size;
//! 6. closes the port, unbinds (waiting up to `--unbind-ms` for every
//!    chunk) and prints a summary.
//!
//! ```text
//! devmem-rx --pci NIC --region DEV [--bar 2] [--region-len BYTES] [--queue Q]
//!           [--rx-queues N] [--rx-desc N] [--flow udp:PORT|tcp:PORT]
//!           [--validate SEED] [--quiet] [--count N] [--idle-ms T] [--max-ms T]
//!           [--mtu M] [--chunk BYTES] [--header-buf BYTES] [--batch N]
//!           [--unbind-ms T] [--unbind-with-tokens]
//! ```
//! Output lines (`key=value` words):
//! - `bind binding=B port=PCI queue=Q chunks=N chunk=C region_len=L`
//! - `flow id=I queue=Q filter=KIND pattern=eth / ipv4 / udp dst is 5000`
//!   (on QEMU the filter is written but the emulator routes by RSS only)
//! - `devmem-rx: ready region=B region_iova=0x.. region_len=.. chunk=..`
//! - unless `--quiet`: `pkt n=N len=L split=0|1 hdr_len=H hdr_digest=FNV64HEX
//!   hdr=HEX frags=F` (the header digest is FNV-1a 64 of the header bytes)
//!   and `frag pkt=N region=B offset=O size=S token=T cpu_readable=0`
//! - `tokens returned=K held=0` per batch
//! - `stats ipackets=.. ibytes=.. ierrors=.. imissed=.. rx_nombuf=..`
//! - `pool header in_use=N` and `pool payload in_use=N count=.. held=..
//!   alloc_fast=.. alloc_slow=.. alloc_empty=.. recycle_cached=..
//!   recycle_ring=..` after close
//! - with `--unbind-with-tokens` and tokens held at the end: `unbind
//!   binding=B outstanding=N tokens_held=K result=error: MESSAGE` (the
//!   typed timeout), then those tokens' `tokens returned=K held=0`
//! - `unbind binding=B outstanding=0 result=ok` (or `result=error: ...`)
//! - `summary packets=P bytes=B fragments=F payload_bytes=PB
//!   validated=V validate_errors=E tokens_returned=T tokens_outstanding=0
//!   region_bytes=R` (bytes: whole frames; tokens outstanding: net_iovs
//!   of the binding not back when the last unbind began)
//!
//! Exit status 0 on success, 1 when the port, the binding or a pool cannot
//! be set up, a payload fails validation or the unbind times out (the error
//! is printed as `devmem-rx: error: MESSAGE`), 2 on bad usage.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hw::PciAddress;
use hw::devmem::DeviceMemory;
use pmd::flow::IpProto;
use pmd::{FlowRule, Packet, Port, PortConfig, RxFlags, RxQueueConfig};
use pool::{BindConfig, DevmemBinding, Netmem, Pool, PoolConfig};

#[derive(Parser)]
#[command(
    about = "Receive a flow's payload into device memory bound to an RX queue (devmem TCP's ncdevmem)",
    long_about = "Opens the port with header split on --queue, binds the device memory (BAR --bar \
of --region) to that queue, installs the --flow rule steering the flow there, receives: headers \
into pages, payload into the bound memory, each payload fragment held as a token and returned \
in batches of --batch so its chunk refills the queue; then closes the port, unbinds and prints \
a summary. --validate checks each payload through the region's host view against the pattern."
)]
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
    /// Bind only the BAR's first BYTES (default: all of it).
    #[arg(long)]
    region_len: Option<usize>,
    /// The RX queue to bind.
    #[arg(long, default_value_t = 0)]
    queue: u16,
    /// RX queues of the port (the others receive into pages).
    #[arg(long, default_value_t = 1)]
    rx_queues: u16,
    /// Descriptors per RX ring.
    #[arg(long, default_value_t = 512)]
    rx_desc: u16,
    /// The flow to steer to the bound queue: udp:PORT or tcp:PORT
    /// (destination port, IPv4).
    #[arg(long, value_parser = parse_flow)]
    flow: Option<FlowRule>,
    /// Check every payload byte through the region's host view: byte i of
    /// a frame's payload must be i * 31 + SEED (mod 256).
    #[arg(long)]
    validate: Option<u8>,
    /// No per-packet lines.
    #[arg(long)]
    quiet: bool,
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
    /// How long unbind waits for the chunks to come back.
    #[arg(long, default_value_t = 2000)]
    unbind_ms: u64,
    /// Keep the last tokens (fewer than --batch) held through a first
    /// unbind, which must refuse with its typed timeout error (printed as
    /// an `unbind ... result=error` line); then return them and unbind.
    #[arg(long)]
    unbind_with_tokens: bool,
}

/// `udp:PORT` / `tcp:PORT`.
fn parse_flow(s: &str) -> Result<FlowRule, String> {
    let (proto, port) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: want udp:PORT or tcp:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: {port:?} is not a port number"))?;
    let proto = match proto {
        "udp" => IpProto::Udp,
        "tcp" => IpProto::Tcp,
        _ => return Err(format!("{s:?}: protocol {proto:?} is not udp or tcp")),
    };
    Ok(FlowRule {
        proto: Some(proto),
        dst_port: Some(port),
        ..FlowRule::default()
    })
}

#[derive(Debug, thiserror::Error)]
enum DevmemError {
    #[error("cannot set this thread's lcore: {0}")]
    Lcore(#[from] pool::lcore::LcoreError),
    #[error("cannot allocate hugepage memory for the {0} pool: {1}")]
    PageMemory(&'static str, #[source] hw::Error),
    #[error("cannot build the {0} pool: {1}")]
    PagePool(&'static str, #[source] pool::PoolError),
    #[error(transparent)]
    Region(#[from] apps::devmem::RegionError),
    #[error("cannot bind {addr} BAR{bar} to RX queue {queue}: {source}")]
    Bind {
        addr: PciAddress,
        bar: u32,
        queue: u16,
        #[source]
        source: pool::PoolError,
    },
    #[error("cannot build the net_iov pool of binding {binding}: {source}")]
    PayloadPool {
        binding: u32,
        #[source]
        source: pool::PoolError,
    },
    #[error("cannot install the flow rule {rule} to queue {queue}: {source}")]
    Flow {
        rule: String,
        queue: u16,
        #[source]
        source: pmd::FlowError,
    },
    #[error("returning tokens: {0}")]
    Tokens(#[source] pool::PoolError),
    #[error(transparent)]
    Unbind(pool::PoolError),
    #[error("unbind succeeded with {held} tokens still held (it must wait for them)")]
    UnbindDespiteTokens { held: usize },
    #[error(transparent)]
    Port(#[from] pmd::Error),
    #[error(
        "packet {n}: payload segment {seg} is not in device memory (the payload pool must be net_iovs)"
    )]
    NotDeviceMemory { n: u64, seg: usize },
    #[error("packet {n}: payload fragment in region {iova:#x}, not the bound region {want:#x}")]
    ForeignRegion { n: u64, iova: u64, want: u64 },
    #[error(
        "packet {n}: fragment at {offset:#x} ({len} bytes) outside the {region_len}-byte region"
    )]
    OutsideRegion {
        n: u64,
        offset: u64,
        len: u16,
        region_len: usize,
    },
    #[error("the bound region is not a DeviceMemory: no host view to validate through")]
    NoHostView,
    #[error(
        "{errors} packets failed validation; first: packet {n} payload byte {at} is {got:#04x}, want {want:#04x}"
    )]
    Validation {
        errors: u64,
        n: u64,
        at: usize,
        got: u8,
        want: u8,
    },
}

/// Payload buffers user space holds, by token, until it returns them (as a
/// devmem socket's token table).
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

    /// Takes every held token out of the table, to be returned.
    fn take_all(&mut self) -> Vec<Netmem> {
        let mut out = Vec::with_capacity(self.held);
        for (t, s) in self.slots.iter_mut().enumerate() {
            if let Some(nm) = s.take() {
                self.free.push(t as u32);
                out.push(nm);
            }
        }
        self.held -= out.len();
        out
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

/// Payload byte `i` of a test frame (the rig's generator's pattern).
fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed)
}

/// The first byte of `got` (payload bytes from `at`) that differs from the
/// pattern: (index in the payload, got, want).
fn first_mismatch(seed: u8, at: usize, got: &[u8]) -> Option<(usize, u8, u8)> {
    got.iter().enumerate().find_map(|(k, &b)| {
        let want = pattern(seed, at + k);
        (b != want).then_some((at + k, b, want))
    })
}

fn page_pool(role: &'static str, count: usize, buf_size: usize) -> Result<Arc<Pool>, DevmemError> {
    let cfg = PoolConfig::new(format!("devmem-{role}"), count).with_buf_size(buf_size);
    let len = (count * buf_size).next_multiple_of(2 << 20);
    let mem = hw::dma::DmaMemory::allocate(len, hw::HugePageSize::Size2M)
        .map_err(|e| DevmemError::PageMemory(role, e))?;
    Pool::with_pages(mem, &cfg).map_err(|e| DevmemError::PagePool(role, e))
}

/// What the run counted.
#[derive(Default)]
struct Summary {
    packets: u64,
    bytes: u64,
    fragments: u64,
    payload_bytes: u64,
    validated: u64,
    validate_errors: u64,
    first_error: Option<(u64, usize, u8, u8)>,
    tokens_returned: u64,
}

struct Rx<'a> {
    cli: &'a Cli,
    binding: &'a DevmemBinding,
    tokens: Tokens,
    sum: Summary,
    scratch: Vec<u8>,
}

impl Rx<'_> {
    /// Reports one packet, validates its payload if asked, and holds its
    /// payload fragments as tokens.
    fn deliver(&mut self, pkt: Packet) -> Result<(), DevmemError> {
        let n = self.sum.packets;
        let (region_iova, region_len) = (self.binding.iova(), self.binding.len());
        let split = pkt.rx_flags.contains(RxFlags::HEADER_SPLIT);
        let len = pkt.len();
        let frags = pkt.segment_count() - 1;
        let mut segs = pkt.into_segments();
        let head = segs.next();
        let hdr = head.as_ref().and_then(|h| h.data()).unwrap_or(&[]);
        if !self.cli.quiet {
            println!(
                "pkt n={n} len={len} split={} hdr_len={} hdr_digest={:016x} hdr={} frags={frags}",
                u8::from(split),
                hdr.len(),
                fnv64(hdr),
                hex(hdr)
            );
        }
        drop(head);
        self.sum.packets += 1;
        self.sum.bytes += len as u64;
        let mut at = 0usize;
        let mut bad = None;
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
            if frag.offset + u64::from(frag.len) > region_len as u64 {
                return Err(DevmemError::OutsideRegion {
                    n,
                    offset: frag.offset,
                    len: frag.len,
                    region_len,
                });
            }
            if let Some(seed) = self.cli.validate
                && bad.is_none()
            {
                self.scratch.resize(usize::from(frag.len), 0);
                let buf = &mut self.scratch;
                self.binding
                    .with_region(|m: &DeviceMemory| {
                        // SAFETY: the view only reads, to check what the NIC
                        // wrote into a chunk this program holds as a token
                        // (the device does not write it until returned).
                        let view = unsafe { m.host_view() };
                        view.read(frag.offset as usize, buf);
                    })
                    .ok_or(DevmemError::NoHostView)?;
                bad = first_mismatch(seed, at, buf);
            }
            at += usize::from(frag.len);
            let readable = seg.data().is_some();
            let token = self.tokens.hold(seg.into_netmem());
            self.sum.fragments += 1;
            self.sum.payload_bytes += u64::from(frag.len);
            if !self.cli.quiet {
                println!(
                    "frag pkt={n} region={} offset={} size={} token={token} cpu_readable={}",
                    self.binding.id(),
                    frag.offset,
                    frag.len,
                    u8::from(readable)
                );
            }
        }
        if self.cli.validate.is_some() {
            // An unsplit frame has its headers in device memory too: it is
            // not a payload of the pattern.
            match bad {
                None if split => self.sum.validated += 1,
                None => {
                    self.sum.validate_errors += 1;
                    self.sum.first_error.get_or_insert((n, 0, 0, 0));
                }
                Some((at, got, want)) => {
                    self.sum.validate_errors += 1;
                    self.sum.first_error.get_or_insert((n, at, got, want));
                }
            }
        }
        Ok(())
    }

    /// Returns every held token to the binding.
    fn return_tokens(&mut self) -> Result<(), DevmemError> {
        let n = self
            .binding
            .return_tokens(self.tokens.take_all())
            .map_err(DevmemError::Tokens)?;
        self.sum.tokens_returned += n as u64;
        println!("tokens returned={n} held={}", self.tokens.held());
        Ok(())
    }
}

fn run(cli: &Cli) -> Result<(), DevmemError> {
    pool::lcore::set_current(0)?;
    let cfg = PortConfig {
        mtu: cli.mtu,
        rx_queues: cli.rx_queues,
        rx_desc: cli.rx_desc,
        ..PortConfig::default()
    };
    let ring = usize::from(cfg.rx_desc);
    // Every descriptor holds a header buffer; a burst's worth more are in
    // flight, plus the ring's refill spare.
    let headers = page_pool("headers", ring * 2, cli.header_buf)?;
    // Header split on with page payload until the bind (the bind requires
    // it), in buffers of the chunk size so the open already refuses an MTU
    // the bound queue could not take; other queues take whole frames into
    // pages.
    let staging = page_pool("staging", ring * 2, cli.chunk)?;
    let others = page_pool("pages", ring * 2 * usize::from(cli.rx_queues).max(1), 2048)?;
    let queues = |bound: RxQueueConfig| -> Vec<RxQueueConfig> {
        (0..cli.rx_queues)
            .map(|q| {
                if q == cli.queue {
                    bound.clone()
                } else {
                    RxQueueConfig::new(others.clone())
                }
            })
            .collect()
    };
    let port = Port::open_with_queues(
        &cli.pci,
        &cfg,
        &queues(RxQueueConfig::header_split(
            headers.clone(),
            staging.clone(),
        )),
    )?;

    let addr = cli.region;
    let mem = apps::devmem::open_region(addr, cli.bar)?;
    let mut bind_cfg = BindConfig::new(cli.chunk);
    bind_cfg.len = cli.region_len;
    let binding = DevmemBinding::bind(mem, &port, &[cli.queue], &bind_cfg).map_err(|source| {
        DevmemError::Bind {
            addr,
            bar: cli.bar,
            queue: cli.queue,
            source,
        }
    })?;
    println!(
        "bind binding={} port={} queue={} chunks={} chunk={} region_len={}",
        binding.id(),
        cli.pci,
        cli.queue,
        binding.chunk_count(),
        binding.chunk_size(),
        binding.len()
    );
    let payload = binding
        .pool(
            cli.queue,
            &PoolConfig::new("devmem-payload", binding.chunk_count()),
        )
        .map_err(|source| DevmemError::PayloadPool {
            binding: binding.id().0,
            source,
        })?;
    // Restart the queue with the binding's memory provider.
    port.stop();
    port.reconfigure_with_queues(
        &cfg,
        &queues(RxQueueConfig::header_split(
            headers.clone(),
            payload.clone(),
        )),
    )?;
    port.start()?;
    drop(staging);
    if let Some(rule) = cli.flow {
        let id = port
            .add_flow_rule(rule, cli.queue)
            .map_err(|source| DevmemError::Flow {
                rule: rule.to_string(),
                queue: cli.queue,
                source,
            })?;
        let kind = port
            .flow_rules()
            .iter()
            .find(|e| e.id == id)
            .map_or("?", |e| e.kind.name());
        println!(
            "flow id={id} queue={} filter={kind} pattern={rule}",
            cli.queue
        );
    }
    let mut rxq = port.take_rx_queue(cli.queue)?;
    println!(
        "devmem-rx: ready region={} region_iova={:#x} region_len={} chunk={}",
        binding.id(),
        binding.iova(),
        binding.len(),
        cli.chunk
    );
    let mut rx = Rx {
        cli,
        binding: &binding,
        tokens: Tokens::default(),
        sum: Summary::default(),
        scratch: Vec::new(),
    };
    let mut pkts = Vec::with_capacity(32);
    let (start, mut last) = (Instant::now(), None::<Instant>);
    let mut result = Ok(());
    'rx: while rx.sum.packets < cli.count {
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
            let step = rx.deliver(pkt).and_then(|()| {
                if rx.tokens.held() >= cli.batch {
                    rx.return_tokens()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = step {
                result = Err(e);
                break 'rx;
            }
        }
    }
    pkts.clear();
    // With --unbind-with-tokens the last tokens stay held through a first
    // unbind, which must refuse; otherwise they go back now.
    let early = cli.unbind_with_tokens && rx.tokens.held() > 0;
    let (returned, kept) = if early {
        (Ok(()), rx.tokens.take_all())
    } else {
        (rx.return_tokens(), Vec::new())
    };
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
        "pool payload in_use={} count={} held={} alloc_fast={} alloc_slow={} alloc_empty={} recycle_cached={} recycle_ring={}",
        payload.in_use(),
        p.count,
        p.held,
        p.alloc_fast,
        p.alloc_slow,
        p.alloc_empty,
        p.recycle_cached,
        p.recycle_ring
    );
    // The queue's pool goes (its chunks back to the binding once its last
    // buffer is back), then unbind.
    drop(payload);
    let mut sum = std::mem::take(&mut rx.sum);
    // Tokens still held (only after a failed return) go back with it.
    drop(rx);
    let id = binding.id();
    let region_bytes = binding.len();
    let binding = if early {
        match binding.unbind(Duration::from_millis(200)) {
            Ok(()) => return Err(DevmemError::UnbindDespiteTokens { held: kept.len() }),
            Err((b, e)) => {
                println!(
                    "unbind binding={id} outstanding={} tokens_held={} result=error: {e}",
                    b.outstanding(),
                    kept.len()
                );
                b
            }
        }
    } else {
        binding
    };
    let returned = returned.and_then(|()| {
        if kept.is_empty() {
            return Ok(());
        }
        let n = binding.return_tokens(kept).map_err(DevmemError::Tokens)?;
        sum.tokens_returned += n as u64;
        println!("tokens returned={n} held=0");
        Ok(())
    });
    // What is still out of the binding as the unbind starts: tokens held
    // or chunks in a pool not yet gone (0 when everything came back).
    let tokens_outstanding = binding.outstanding();
    let unbound = match binding.unbind(Duration::from_millis(cli.unbind_ms)) {
        Ok(()) => {
            println!("unbind binding={id} outstanding=0 result=ok");
            Ok(())
        }
        Err((b, e)) => {
            println!(
                "unbind binding={id} outstanding={} result=error: {e}",
                b.outstanding()
            );
            Err(DevmemError::Unbind(e))
        }
    };
    println!(
        "summary packets={} bytes={} fragments={} payload_bytes={} validated={} validate_errors={} \
         tokens_returned={} tokens_outstanding={tokens_outstanding} region_bytes={region_bytes}",
        sum.packets,
        sum.bytes,
        sum.fragments,
        sum.payload_bytes,
        sum.validated,
        sum.validate_errors,
        sum.tokens_returned
    );
    result?;
    returned?;
    unbound?;
    if let Some((n, at, got, want)) = sum.first_error {
        return Err(DevmemError::Validation {
            errors: sum.validate_errors,
            n,
            at,
            got,
            want,
        });
    }
    Ok(())
}

fn main() -> ExitCode {
    apps::devmem::main("devmem-rx", run)
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
        assert_eq!(t.take_all().len(), 2);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(t.held(), 0);
        // Returned tokens are reused.
        let c = t.hold(pool.alloc().unwrap());
        assert!(c == a || c == b);
        assert_eq!(t.take_all().len(), 1);
    }

    #[test]
    fn flows_parse_and_bad_ones_are_refused() {
        let r = parse_flow("udp:5000").unwrap();
        assert_eq!(r, FlowRule::udp_dst(5000));
        assert_eq!(parse_flow("tcp:80").unwrap().proto, Some(IpProto::Tcp));
        assert!(parse_flow("sctp:1").is_err());
        assert!(parse_flow("udp:x").is_err());
        assert!(parse_flow("5000").is_err());
    }

    #[test]
    fn validation_finds_the_first_wrong_byte() {
        let good: Vec<u8> = (0..300).map(|i| pattern(7, 100 + i)).collect();
        assert_eq!(first_mismatch(7, 100, &good), None);
        let mut bad = good.clone();
        bad[42] ^= 1;
        assert_eq!(
            first_mismatch(7, 100, &bad),
            Some((142, good[42] ^ 1, good[42]))
        );
        // Another seed is another payload.
        assert!(first_mismatch(8, 100, &good).is_some());
    }

    #[test]
    fn digest_is_fnv1a_64() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
