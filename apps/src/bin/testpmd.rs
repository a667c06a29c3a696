//! testpmd: forward packets between igb/e1000e ports as DPDK's testpmd does.
//!
//! `testpmd -l 0-1 -a 0000:00:03.0 -a 0000:00:04.0 -- --forward-mode=io`
//! (or the same options without `--`); `testpmd --help` lists them all.

fn main() {
    std::process::exit(apps::testpmd::app::main(std::env::args().collect()));
}
