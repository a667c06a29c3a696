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
//! - [`engine`]: streams, lcores and the forward modes.
//! - [`capture`]: frames of one port to a pcap file, off the hot path.
//! - [`app`]: the program: set-up, batch run, prompt, shutdown.

pub mod app;
pub mod capture;
pub mod cli;
pub mod engine;
pub mod frames;
pub mod lcores;
pub mod options;
pub mod pcap;
pub mod report;
