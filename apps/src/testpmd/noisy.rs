//! The `noisy` forward mode (DPDK's noisy_vnf): io forwarding that acts
//! like a virtual network function sharing the machine. Each stream can
//! - hold received packets in a FIFO of `--noisy-tx-sw-buffer-size`
//!   packets and send only what overflows it (oldest first),
//! - flush the whole FIFO once `--noisy-tx-sw-buffer-flushtime` ms passed
//!   since the last flush and a poll sent nothing,
//! - touch `--noisy-lkup-memory` MiB of its own memory for every packet:
//!   `--noisy-lkup-num-writes` random writes, `--noisy-lkup-num-reads`
//!   random reads and `--noisy-lkup-num-reads-writes` read-modify-writes,
//!   each on a random cache line.
//!
//! Packets still in the FIFO when forwarding stops are freed and counted
//! as dropped.

use pmd::Packet;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The header work noisy does before buffering (`--noisy-forward-mode`,
/// as in newer DPDK): none, or that of mac, macswap or 5tswap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NoisyFwd {
    #[default]
    Io,
    Mac,
    Macswap,
    FiveTswap,
}

impl std::str::FromStr for NoisyFwd {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "io" => NoisyFwd::Io,
            "mac" => NoisyFwd::Mac,
            "macswap" => NoisyFwd::Macswap,
            "5tswap" => NoisyFwd::FiveTswap,
            _ => return Err(format!("{s:?}: expected io, mac, macswap or 5tswap")),
        })
    }
}

/// The noisy settings (DPDK's option names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoisyConfig {
    pub fwd: NoisyFwd,
    /// FIFO size in packets (0: no buffering).
    pub tx_sw_buffer_size: usize,
    /// Flush the FIFO after this many ms (0: never).
    pub tx_sw_buffer_flushtime_ms: u64,
    /// MiB of simulated lookup memory per stream.
    pub lkup_memory_mb: usize,
    pub lkup_num_writes: u64,
    pub lkup_num_reads: u64,
    pub lkup_num_reads_writes: u64,
}

impl NoisyConfig {
    fn lookups(&self) -> bool {
        self.lkup_num_writes + self.lkup_num_reads + self.lkup_num_reads_writes > 0
    }
}

const LINE: usize = 64;

/// One stream's noisy state.
pub struct Noisy {
    cfg: NoisyConfig,
    fifo: VecDeque<Packet>,
    last_flush: Instant,
    mem: Vec<u8>,
    rng: u64,
    /// Memory operations done (for tests and curiosity).
    pub ops: u64,
}

impl Noisy {
    pub fn new(cfg: NoisyConfig, seed: u64) -> Noisy {
        let mem = if cfg.lookups() {
            vec![0u8; cfg.lkup_memory_mb << 20]
        } else {
            Vec::new()
        };
        Noisy {
            cfg,
            fifo: VecDeque::with_capacity(cfg.tx_sw_buffer_size),
            last_flush: Instant::now(),
            mem,
            rng: seed | 1,
            ops: 0,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64: cheap, and good enough to scatter cache lines.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn line(&mut self) -> usize {
        let lines = self.mem.len() / LINE;
        (self.next() % lines as u64) as usize * LINE
    }

    /// The simulated lookups of `n` packets.
    fn lookups(&mut self, n: usize) {
        if self.mem.len() < LINE {
            return;
        }
        for _ in 0..n {
            for _ in 0..self.cfg.lkup_num_writes {
                let (i, v) = (self.line(), self.next() as u8);
                self.mem[i] = v;
            }
            for _ in 0..self.cfg.lkup_num_reads {
                let i = self.line();
                std::hint::black_box(self.mem[i]);
            }
            for _ in 0..self.cfg.lkup_num_reads_writes {
                let i = self.line();
                self.mem[i] = std::hint::black_box(self.mem[i]).wrapping_add(1);
            }
        }
        let per =
            self.cfg.lkup_num_writes + self.cfg.lkup_num_reads + self.cfg.lkup_num_reads_writes;
        self.ops += per * n as u64;
    }

    /// A received burst: `burst` becomes what is to be sent now.
    pub fn received(&mut self, burst: &mut Vec<Packet>) {
        self.lookups(burst.len());
        let size = self.cfg.tx_sw_buffer_size;
        if size == 0 {
            return;
        }
        self.fifo.extend(burst.drain(..));
        while self.fifo.len() > size {
            if let Some(p) = self.fifo.pop_front() {
                burst.push(p);
            }
        }
    }

    /// After a poll that sent nothing: the whole FIFO when the flush time
    /// has come.
    pub fn flush_due(&mut self, out: &mut Vec<Packet>, now: Instant) {
        let t = self.cfg.tx_sw_buffer_flushtime_ms;
        if t == 0 || self.fifo.is_empty() || now - self.last_flush < Duration::from_millis(t) {
            return;
        }
        out.extend(self.fifo.drain(..));
        self.last_flush = now;
    }

    /// Frees what the FIFO still holds; returns how many packets.
    pub fn discard(&mut self) -> usize {
        let n = self.fifo.len();
        self.fifo.clear();
        n
    }

    pub fn held(&self) -> usize {
        self.fifo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool::{Pool, PoolConfig};

    fn pool() -> std::sync::Arc<Pool> {
        Pool::with_host_memory(&PoolConfig::new("noisy-test", 256)).expect("a host pool")
    }

    fn burst(pool: &Pool, first: u8, n: u8) -> Vec<Packet> {
        (first..first + n)
            .map(|i| Packet::from_bytes(pool, &[i; 60]).expect("a buffer"))
            .collect()
    }

    fn ids(b: &[Packet]) -> Vec<u8> {
        b.iter().map(|p| p.data().expect("cpu bytes")[0]).collect()
    }

    #[test]
    fn fifo_sends_only_its_overflow_oldest_first() {
        let pool = pool();
        let mut n = Noisy::new(
            NoisyConfig {
                tx_sw_buffer_size: 8,
                ..Default::default()
            },
            1,
        );
        let mut b = burst(&pool, 0, 5);
        n.received(&mut b);
        assert!(b.is_empty(), "5 fit the FIFO of 8");
        let mut b = burst(&pool, 5, 6);
        n.received(&mut b);
        assert_eq!(ids(&b), vec![0, 1, 2], "the 3 oldest overflow");
        assert_eq!(n.held(), 8);
        drop(b);
        assert_eq!(n.discard(), 8);
        assert_eq!(pool.in_use(), 0, "every buffer back");
    }

    #[test]
    fn flush_sends_everything_once_the_time_has_come() {
        let pool = pool();
        let mut n = Noisy::new(
            NoisyConfig {
                tx_sw_buffer_size: 16,
                tx_sw_buffer_flushtime_ms: 100,
                ..Default::default()
            },
            1,
        );
        let mut b = burst(&pool, 0, 4);
        n.received(&mut b);
        let t0 = n.last_flush;
        n.flush_due(&mut b, t0 + Duration::from_millis(50));
        assert!(b.is_empty(), "too early");
        n.flush_due(&mut b, t0 + Duration::from_millis(100));
        assert_eq!(ids(&b), vec![0, 1, 2, 3]);
        assert_eq!(n.held(), 0);
    }

    #[test]
    fn lookups_do_the_asked_number_of_operations() {
        let pool = pool();
        let mut n = Noisy::new(
            NoisyConfig {
                lkup_memory_mb: 1,
                lkup_num_writes: 2,
                lkup_num_reads: 3,
                lkup_num_reads_writes: 1,
                ..Default::default()
            },
            7,
        );
        let mut b = burst(&pool, 0, 10);
        n.received(&mut b);
        assert_eq!(b.len(), 10, "no FIFO: everything goes on");
        assert_eq!(n.ops, 60);
        assert!(n.mem.iter().any(|&v| v != 0), "writes landed");
    }
}
