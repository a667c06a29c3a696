//! testpmd: forwards packets between ports of the igb/e1000e poll-mode
//! driver with DPDK testpmd's options, forward modes and reports.
//!
//! - [`options`]: the command line and its validation (exit 2, one line).
//! - [`lcores`]: `-l` lists and the CPUs that exist.
//! - [`frames`]: header work of the forward modes (mac, macswap, txonly,
//!   flowgen, icmpecho).
//! - [`fivetswap`], [`csum`], [`noisy`]: the 5tswap, csum and noisy modes.
//! - [`report`]: forward statistics, port stats, xstats, `--json`.
//! - [`pcap`]: the capture file writer and a reader for tests.
//! - [`cli`]: the interactive prompt's commands.
//! - [`flow`]: the prompt's `flow` commands (rte_flow syntax).
//! - [`portcmd`]: the prompt's port lifecycle commands (stop, config,
//!   start, close).
//! - [`engine`]: streams, lcores and the forward modes.
//! - [`intr`]: `--rx-intr` sleeping lcores and the link state change
//!   events.
//! - [`capture`]: frames of one port to a pcap file, off the hot path.
//! - [`app`]: the program: set-up, batch run, prompt, shutdown.
//!
//! The command line is checked without touching a device:
//!
//! ```
//! use apps::testpmd::options::{self, FwdMode, Parsed};
//! let args: Vec<String> =
//!     "testpmd -l 0-1 -a 0000:00:03.0 -a 0000:00:04.0 -- --forward-mode=macswap --burst=8"
//!         .split_whitespace()
//!         .map(String::from)
//!         .collect();
//! let Ok(Parsed::Run(cfg)) = options::parse(&args, &[0, 1]) else {
//!     panic!("valid options")
//! };
//! assert_eq!(cfg.mode, FwdMode::Macswap);
//! assert_eq!((cfg.burst, cfg.fwd_lcores.clone()), (8, vec![1]));
//! // A bad value is one line, for exit status 2.
//! let bad: Vec<String> = ["testpmd", "-a", "00:03.0", "--burst=0"].map(String::from).to_vec();
//! let err = options::parse(&bad, &[0, 1]).unwrap_err();
//! assert_eq!(err.to_string(), "--burst=0 is out of range (1..=512)");
//! ```

pub mod app;
pub mod capture;
pub mod cli;
pub mod csum;
pub mod engine;
pub mod fivetswap;
pub mod flow;
pub mod frames;
pub mod intr;
pub mod lcores;
pub mod noisy;
pub mod options;
pub mod pcap;
pub mod portcmd;
pub mod report;
