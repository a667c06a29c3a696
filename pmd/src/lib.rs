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
//!   written at most once per burst and never read.
//! - [`tx`]: [`tx::TxRing`], generic over a [`tx::TxFormat`]: context
//!   caching, batched RS, DD-based cleanup, one tail write per burst,
//!   backpressure.
//! - [`offload`]: pseudo-header checksum seeding for TX checksum/TSO, and a
//!   header parser filling [`TxOffload`] lengths.
//! - [`rss`]: Toeplitz hash, RETA/key register packing, a frame-level hash
//!   model for tests.
//! - [`stats`]: hardware counter tables ([`stats::HwCounter`], read low half
//!   first), per-queue software counters, [`PortStats`], [`XStat`].
//! - [`port`]: the public API ([`Port`], [`RxQueue`], [`TxQueue`],
//!   [`PortConfig`]) and driver selection by PCI ID ([`port::DRIVERS`]).
//!
//! Per driver, in its own module (`igb/`, `e1000e/`):
//! - `regs.rs`: register offsets and bits, datasheet names.
//! - `desc.rs`: the descriptor formats, as `impl RxFormat` / `impl TxFormat`
//!   (pure bit packing; unit-tested on the host).
//! - `stats.rs`: a `&'static [HwCounter]` table.
//! - `mod.rs`: `DEVICE_IDS`, `DRIVER` (add it to [`port::DRIVERS`]), the open
//!   function (reset, MAC, link, queue registers, then
//!   `RxRing::<YourRx>::new(DmaQueue::new(..))` / `TxRing::<YourTx>::new(..)`
//!   boxed as [`port::RxBurst`]/[`port::TxBurst`]) and an `impl PortOps`.
//!
//! A driver never writes ring bookkeeping, packet handling or counter
//! accumulation of its own.

pub mod e1000e;
pub mod error;
pub mod igb;
pub mod mac;
pub mod offload;
pub mod packet;
pub mod port;
pub mod queue;
pub mod ring;
pub mod rss;
pub mod rx;
pub mod stats;
pub mod tx;

pub use error::{Error, Result};
pub use packet::{HEADROOM, Packet, RxFlags, Segment, TxFlags, TxOffload};
pub use port::{LinkStatus, Port, PortConfig, RxQueue, TxQueue};
pub use rss::{HashTypes, RssConfig};
pub use stats::{PortStats, XStat};
