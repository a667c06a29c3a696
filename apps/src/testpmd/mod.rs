//! testpmd: forwards packets between ports of the igb/e1000e poll-mode
//! driver with DPDK testpmd's options, forward modes and reports.
//!
//! - [`options`]: the command line and its validation (exit 2, one line).
//! - [`lcores`]: `-l` lists and the CPUs that exist.
//! - [`frames`]: header work of the forward modes (mac, macswap, txonly,
//!   flowgen, icmpecho).
//! - [`report`]: forward statistics, port stats, xstats, `--json`.
//! - [`pcap`]: the capture file writer and a reader for tests.
//! - [`cli`]: the interactive prompt's commands.

pub mod cli;
pub mod frames;
pub mod lcores;
pub mod options;
pub mod pcap;
pub mod report;
