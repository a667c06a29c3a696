//! Queue construction shared by the drivers: configuration checks, the RX
//! buffer layout, and building a ring over fresh DMA descriptor memory with
//! its counters, mapping each failure to the port's error. A driver then
//! writes the ring's base and length into its own queue registers.

use std::sync::Arc;

use pool::{BufferKind, Pool};

use crate::error::{Error, Result};
use crate::port::{PortConfig, RxQueueConfig};
use crate::ring::{DmaQueue, QueueBar, check_ring_size};
use crate::rx::{RxBufLayout, RxFormat, RxRing, RxSetupError};
use crate::stats::QueueCounters;
use crate::tx::{TxFormat, TxRing};

/// What a device accepts of a [`PortConfig`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub driver: &'static str,
    pub max_queues: u16,
    pub min_ring: u16,
    pub max_ring: u16,
    /// Ring sizes are multiples of this (128-byte ring lengths: 8).
    pub ring_multiple: u16,
    pub min_mtu: u16,
    pub max_mtu: u16,
}

impl Limits {
    /// What the 82576 and the 82574L both take, with `max_queues` queue
    /// pairs: rings of 64..=4096 descriptors in multiples of 8 (ring lengths
    /// are multiples of 128 bytes), MTU 68..=9000 (9018-byte jumbo frames).
    pub const fn intel_1g(driver: &'static str, max_queues: u16) -> Limits {
        Limits {
            driver,
            max_queues,
            min_ring: 64,
            max_ring: 4096,
            ring_multiple: 8,
            min_mtu: 68,
            max_mtu: 9000,
        }
    }

    /// Checks queue counts, ring sizes and MTU.
    pub fn check(&self, cfg: &PortConfig) -> Result<()> {
        let d = self.driver;
        let maxq = self.max_queues;
        if !(1..=maxq).contains(&cfg.rx_queues) || !(1..=maxq).contains(&cfg.tx_queues) {
            return Err(Error::Config(format!(
                "{d} takes 1..={maxq} RX and TX queues, got {} RX and {} TX",
                cfg.rx_queues, cfg.tx_queues
            )));
        }
        for (what, n) in [("RX", cfg.rx_desc), ("TX", cfg.tx_desc)] {
            if !check_ring_size(n, self.min_ring, self.max_ring, self.ring_multiple) {
                return Err(Error::Config(format!(
                    "{d} {what} rings take {}..={} descriptors in multiples of {}, got {n}",
                    self.min_ring, self.max_ring, self.ring_multiple
                )));
            }
        }
        if let Some(reta) = &cfg.rss.reta
            && let Some((i, q)) = reta
                .iter()
                .enumerate()
                .find(|(_, q)| u16::from(**q) >= cfg.rx_queues)
        {
            return Err(Error::Config(format!(
                "RSS redirection table entry {i} names RX queue {q}, but the port has {} RX queues (0..={})",
                cfg.rx_queues,
                cfg.rx_queues - 1
            )));
        }
        self.check_mtu(cfg.mtu)
    }

    /// Checks an MTU against the device's range.
    pub fn check_mtu(&self, mtu: u16) -> Result<()> {
        if (self.min_mtu..=self.max_mtu).contains(&mtu) {
            Ok(())
        } else {
            Err(Error::BadMtu {
                mtu,
                min: self.min_mtu,
                max: self.max_mtu,
            })
        }
    }
}

/// The RX buffer layout for queue `queue`'s pool: device buffers a multiple
/// of `unit` bytes, at most `max`.
pub fn rx_layout(queue: u16, pool: &Pool, unit: usize, max: usize) -> Result<RxBufLayout> {
    RxBufLayout::for_pool(pool.buf_size(), unit, max).ok_or(Error::BufferTooSmall {
        queue,
        buf_size: pool.buf_size(),
        min: unit,
    })
}

/// The smallest header buffer header split accepts: Ethernet (14) + one
/// VLAN tag (4) + IPv6 (40) + TCP with the most options (60) = 118 bytes,
/// rounded up to the 64-byte unit.
pub const MIN_HEADER_BUF: usize = 128;

/// Checks the kinds of each RX queue's pools before anything touches the
/// device. `no_split`: why this driver cannot split headers (`None` when it
/// can). Packet buffers without header split must be pages (the CPU reads
/// the headers in them); header buffers must be pages; payload buffers
/// behind header split may be pages or net_iovs.
pub fn check_rx_pools(
    driver: &'static str,
    rxq: &[RxQueueConfig],
    no_split: Option<&'static str>,
) -> Result<()> {
    let kind = |p: &Pool| match p.kind() {
        BufferKind::Page => "page",
        BufferKind::NetIov => "device-memory (net_iov)",
    };
    for (q, c) in rxq.iter().enumerate() {
        let queue = q as u16;
        match (c.header_pool(), no_split) {
            (Some(_), Some(why)) => {
                return Err(Error::HeaderSplitUnsupported { driver, queue, why });
            }
            (Some(h), None) if h.kind() != BufferKind::Page => {
                return Err(Error::WrongPoolKind {
                    queue,
                    role: "header",
                    pool: h.name().to_string(),
                    got: kind(h),
                    want: "pages the CPU can read",
                });
            }
            (None, _) if c.pool().kind() != BufferKind::Page => {
                return Err(Error::WrongPoolKind {
                    queue,
                    role: "packet",
                    pool: c.pool().name().to_string(),
                    got: kind(c.pool()),
                    want: "pages without header split (device memory takes payload only: use RxQueueConfig::header_split)",
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The header buffer layout for queue `queue`'s header pool: buffers a
/// multiple of `unit` bytes (SRRCTL.BSIZEHEADER's), at most `max`, at
/// least [`MIN_HEADER_BUF`].
pub fn rx_header_layout(queue: u16, pool: &Pool, unit: usize, max: usize) -> Result<RxBufLayout> {
    let too_small = Error::HeaderBufferTooSmall {
        queue,
        buf_size: pool.buf_size(),
        min: MIN_HEADER_BUF,
    };
    match RxBufLayout::for_pool(pool.buf_size(), unit, max) {
        Some(l) if usize::from(l.buf_len) >= MIN_HEADER_BUF => Ok(l),
        _ => Err(too_small),
    }
}

/// A ring just built: where its descriptors are, for the queue registers.
pub struct Built<R> {
    pub ring: R,
    /// Device address of descriptor 0 (RDBAL/RDBAH, TDBAL/TDBAH).
    pub base: u64,
    /// Ring length in bytes (RDLEN/TDLEN).
    pub len: u32,
    pub counters: Arc<QueueCounters>,
}

/// Builds RX queue `queue`: descriptor memory with its tail register at
/// `tail`, every descriptor given a buffer from `pool` (and, with
/// `header`, a header buffer from that pool: header split). The tail is
/// not written yet ([`RxRing::start`]).
pub fn rx_ring<F: RxFormat>(
    queue: u16,
    cfg: &PortConfig,
    pool: &Arc<Pool>,
    layout: RxBufLayout,
    header: Option<(&Arc<Pool>, RxBufLayout)>,
    doorbell: &QueueBar,
    tail: usize,
) -> Result<Built<RxRing<F>>> {
    let hwq =
        DmaQueue::with_desc_len(cfg.rx_desc, F::DESC_LEN, doorbell, tail).map_err(|source| {
            Error::RingAlloc {
                dir: "RX",
                queue,
                source,
            }
        })?;
    let (base, len) = (hwq.iova(), hwq.byte_len());
    let counters = Arc::new(QueueCounters::default());
    let ring = RxRing::<F>::new(
        hwq,
        pool.clone(),
        layout,
        header.map(|(p, l)| (p.clone(), l)),
        queue,
        cfg.rx_free_thresh,
        counters.clone(),
    )
    .map_err(|e| match e {
        RxSetupError::PoolTooSmall { needed } => Error::PoolTooSmall { queue, needed },
        RxSetupError::RingTooSmall(e) => Error::Config(format!("RX queue {queue}: {e}")),
        RxSetupError::NoHeaderSplit => Error::HeaderSplitUnsupported {
            driver: "this descriptor format",
            queue,
            why: "it has no header buffer address",
        },
        e @ (RxSetupError::NeedsHeaderSplit | RxSetupError::DescLen { .. }) => {
            Error::Config(format!("RX queue {queue}: {e}"))
        }
    })?;
    Ok(Built {
        ring,
        base,
        len,
        counters,
    })
}

/// Builds TX queue `queue` with its tail register at `tail`.
pub fn tx_ring<F: TxFormat>(
    queue: u16,
    cfg: &PortConfig,
    doorbell: &QueueBar,
    tail: usize,
) -> Result<Built<TxRing<F>>> {
    let hwq = DmaQueue::new(cfg.tx_desc, doorbell, tail).map_err(|source| Error::RingAlloc {
        dir: "TX",
        queue,
        source,
    })?;
    let (base, len) = (hwq.iova(), hwq.byte_len());
    let counters = Arc::new(QueueCounters::default());
    let ring = TxRing::<F>::new(hwq, cfg.tx_rs_thresh, cfg.tx_free_thresh, counters.clone())
        .map_err(|e| Error::Config(format!("TX queue {queue}: {e}")))?;
    Ok(Built {
        ring,
        base,
        len,
        counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits::intel_1g("test", 2);

    #[test]
    fn limits_refuse_what_the_device_cannot_do() {
        assert!(L.check(&PortConfig::default()).is_ok());
        let three = PortConfig {
            rx_queues: 3,
            ..PortConfig::default()
        };
        assert!(matches!(L.check(&three), Err(Error::Config(m)) if m.contains("1..=2")));
        let odd_ring = PortConfig {
            tx_desc: 100,
            ..PortConfig::default()
        };
        assert!(matches!(L.check(&odd_ring), Err(Error::Config(m)) if m.contains("TX")));
        let big = PortConfig {
            mtu: 9001,
            ..PortConfig::default()
        };
        assert!(matches!(
            L.check(&big),
            Err(Error::BadMtu { mtu: 9001, .. })
        ));
        let mut reta = [0u8; crate::rss::RETA_LEN];
        reta[100] = 2;
        let bad_reta = PortConfig {
            rx_queues: 2,
            rss: crate::rss::RssConfig {
                reta: Some(reta),
                ..Default::default()
            },
            ..PortConfig::default()
        };
        assert!(
            matches!(L.check(&bad_reta), Err(Error::Config(m)) if m.contains("entry 100 names RX queue 2"))
        );
        reta[100] = 1;
        let good_reta = PortConfig {
            rss: crate::rss::RssConfig {
                reta: Some(reta),
                ..Default::default()
            },
            ..bad_reta
        };
        assert!(L.check(&good_reta).is_ok());
    }
}
