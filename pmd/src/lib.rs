//! pmd: poll-mode drivers for Intel 1 GbE NICs (igb 82576, e1000e 82574L),
//! the packet type, and the ring machinery they share.
//!
//! # How the crate is split (read this before adding a driver)
//!
//! Shared, written once:
//! - [`packet`]: [`Packet`], the mbuf: netmem segments, RSS hash, VLAN, RX
//!   checksum flags ([`RxFlags`]), TX offload requests ([`TxOffload`]).
//! - [`ring`]: descriptor memory + tail doorbell ([`ring::DmaQueue`], behind
//!   the [`ring::QueueHw`] trait so rings can be tested on the host) and
//!   index arithmetic. A descriptor is 16 bytes: [`ring::Desc`] `{lo, hi}`.
//! - [`rx`]: [`rx::RxRing`], generic over a [`rx::RxFormat`]: refill from the
//!   pool, DD polling, multi-descriptor frames, drops counted, the tail
//!   written at most once per burst and never read; header split (a header
//!   page plus a packet buffer, e.g. a device-memory net_iov, per
//!   descriptor) for formats with [`rx::RxFormat::HEADER_SPLIT`].
//! - [`tx`]: [`tx::TxRing`], generic over a [`tx::TxFormat`]: context
//!   caching, batched RS, DD-based cleanup, one tail write per burst,
//!   backpressure.
//! - [`offload`]: pseudo-header checksum seeding for TX checksum/TSO, and a
//!   header parser filling [`TxOffload`] lengths.
//! - [`rss`]: Toeplitz hash, RETA/key register packing, a frame-level hash
//!   model for tests.
//! - [`stats`]: hardware counter tables ([`stats::HwCounter`], read low half
//!   first), per-queue software counters, [`PortStats`], [`XStat`].
//! - [`mac`]: the MAC block both families share ([`mac::Mac`]): register
//!   offsets and bits that are the same on both chips ([`mac::regs`], which
//!   each driver's `regs` re-exports), reset, EEPROM MAC, address and
//!   multicast filters, RCTL receive mode, RSS key/RETA/MRQC writes, ring
//!   placement, TX drain, link, counter reading.
//! - [`mac_port`]: [`mac_port::MacPort`], the port made of a `Mac`: shared
//!   bring-up and end of open, and every [`port::PortOps`] operation that
//!   is the same on both chips; a driver supplies a [`mac_port::Chip`] for
//!   the rest (limits, MTU, queue disable/stop, extra interrupt masks).
//! - [`queue`]: [`queue::Limits`] (config checks) and ring construction
//!   over fresh descriptor memory (`rx_ring`/`tx_ring`).
//! - [`port`]: the public API ([`Port`], [`RxQueue`], [`TxQueue`],
//!   [`PortConfig`], [`RxQueueConfig`]: one page pool per RX queue, or
//!   header split into a page pool and a net_iov pool) and driver
//!   selection by PCI ID ([`port::DRIVERS`]).
//!
//! Per driver, in its own module (`igb/`, `e1000e/`):
//! - `regs.rs`: `pub use crate::mac::regs::*` plus the registers and bits
//!   only this chip has, datasheet names.
//! - `desc.rs`: the descriptor formats, as `impl RxFormat` / `impl TxFormat`
//!   (pure bit packing; unit-tested on the host).
//! - `stats.rs`: a `&'static [HwCounter]` table (e1000e reuses igb's: the
//!   statistics block is the same).
//! - `mod.rs`: `DEVICE_IDS`, `DRIVER` (add it to [`port::DRIVERS`]), an
//!   `impl Chip` and the open function: `MacPort::bring_up`, link, queue
//!   registers over `queue::rx_ring`/`queue::tx_ring`, then
//!   `MacPort::finish`.
//!
//! A driver never writes ring bookkeeping, packet handling or counter
//! accumulation of its own.

pub mod e1000e;
pub mod error;
pub mod fence;
pub mod flow;
pub mod igb;
pub mod intr;
pub mod mac;
pub mod mac_port;
pub mod offload;
pub mod packet;
pub mod phy;
pub mod port;
pub mod queue;
pub mod ring;
pub mod rss;
pub mod rx;
pub mod stats;
pub mod telemetry;
pub mod tx;

#[cfg(test)]
mod sim;

pub use error::{Error, Result};
pub use flow::{FlowError, FlowId, FlowRule};
pub use intr::{IntrConf, LinkEvent, LinkEvents};
pub use packet::{
    DevmemFrag, HEADROOM, Packet, RxFlags, Segment, SegmentError, TxFlags, TxOffload,
};
pub use port::{
    FlowControl, LinkStatus, Port, PortConfig, RxOffloads, RxQueue, RxQueueConfig, TxQueue,
};
pub use rss::{HashTypes, RssConfig};
pub use stats::{PortStats, XStat};
pub use tx::TxError;
