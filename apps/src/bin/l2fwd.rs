//! l2fwd: the smallest complete app on this library, as DPDK's l2fwd.
//! Opens two ports by PCI address over one hugepage pool, and on one pinned
//! core moves every frame from each port to the other, rewriting the
//! Ethernet source to the sending port's MAC and the destination to
//! 02:00:00:00:00:<port>.
//!
//! `l2fwd 0000:00:03.0 0000:00:04.0 [--lcore N] [--packets N] [--seconds S]`

use hw::{HugePageSize, PciAddress, dma::DmaMemory};
use pmd::{Packet, Port, PortConfig};
use pool::{Pool, PoolConfig};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const BURST: usize = 32;

struct Args {
    ports: [PciAddress; 2],
    lcore: usize,
    packets: u64,
    seconds: f64,
}

fn parse() -> Result<Args, String> {
    parse_from(std::env::args().skip(1))
}

/// Parses the arguments (without the program name); everything is checked
/// here, before any port is opened.
fn parse_from(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let (mut pci, mut lcore, mut packets, mut seconds) = (Vec::new(), 1, u64::MAX, 3600.0_f64);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--lcore" => lcore = val()?.parse().map_err(|_| "--lcore: not a number")?,
            "--packets" => packets = val()?.parse().map_err(|_| "--packets: not a number")?,
            "--seconds" => seconds = val()?.parse().map_err(|_| "--seconds: not a number")?,
            _ => pci.push(a.parse::<PciAddress>().map_err(|e| e.to_string())?),
        }
    }
    // Duration::from_secs_f64 panics on NaN, negative and huge values.
    if !(seconds.is_finite() && seconds > 0.0 && Duration::try_from_secs_f64(seconds).is_ok()) {
        return Err(format!(
            "--seconds {seconds}: give a positive, finite number of seconds"
        ));
    }
    let ports: [PciAddress; 2] = pci
        .try_into()
        .map_err(|_| "give exactly two PCI addresses")?;
    Ok(Args {
        ports,
        lcore,
        packets,
        seconds,
    })
}

fn run(a: Args) -> Result<(), String> {
    // One pool of 2 KiB (+ headroom) buffers in hugepages, one cache per lcore.
    let cfg = PoolConfig::new("l2fwd", 4096)
        .with_buf_size(2048 + usize::from(pmd::HEADROOM))
        .with_lcores(a.lcore + 1);
    let mem = DmaMemory::allocate(4096 * cfg.buf_size + (2 << 20), HugePageSize::Size2M)
        .map_err(|e| format!("hugepage memory: {e}"))?;
    let pool = Pool::with_pages(mem, &cfg).map_err(|e| format!("pool: {e}"))?;
    // Both ports, promiscuous, up (Port::open waits for the link).
    let pcfg = PortConfig {
        promiscuous: true,
        ..PortConfig::default()
    };
    let mut ports = Vec::new();
    for addr in &a.ports {
        let p = Port::open(addr, &pcfg, std::slice::from_ref(&pool)).map_err(|e| e.to_string())?;
        println!(
            "l2fwd: {addr} is {} {}, link {}",
            p.driver_name(),
            p.device_name(),
            p.link()
        );
        ports.push(p);
    }
    let macs = [ports[0].mac_addr(), ports[1].mac_addr()];
    let mut rx = [ports[0].take_rx_queue(0), ports[1].take_rx_queue(0)].map(Result::ok);
    let mut tx = [ports[0].take_tx_queue(0), ports[1].take_tx_queue(0)].map(Result::ok);
    // The forwarding loop: one thread, pinned, owning all four queues.
    let (lcore, limit, until) = (a.lcore, a.packets, Duration::from_secs_f64(a.seconds));
    println!("l2fwd: forwarding on lcore {lcore}");
    let worker = std::thread::spawn(move || -> Result<[u64; 3], String> {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: lcore }) {
            return Err(format!("cannot pin to CPU {lcore}"));
        }
        pool::lcore::set_current(lcore).map_err(|e| e.to_string())?;
        let (mut fwd, mut dropped, start) = ([0u64; 2], 0u64, Instant::now());
        let mut pkts: Vec<Packet> = Vec::with_capacity(BURST);
        while fwd[0] + fwd[1] < limit && start.elapsed() < until {
            for from in 0..2 {
                let to = 1 - from;
                let (Some(r), Some(t)) = (rx[from].as_mut(), tx[to].as_mut()) else {
                    continue;
                };
                if r.rx_burst(&mut pkts, BURST) == 0 {
                    continue;
                }
                for p in pkts.iter_mut() {
                    if let Some(d) = p.data_mut().filter(|d| d.len() >= 12) {
                        d[0..6].copy_from_slice(&[2, 0, 0, 0, 0, to as u8]);
                        d[6..12].copy_from_slice(&macs[to]);
                    }
                }
                fwd[from] += t.tx_burst(&mut pkts) as u64;
                dropped += pkts.len() as u64;
                pkts.clear(); // frees what the TX queue did not take
            }
        }
        drop((rx, tx)); // queues back to their ports, buffers to the pool
        Ok([fwd[0], fwd[1], dropped])
    });
    let [a_to_b, b_to_a, dropped] = worker.join().map_err(|_| "forwarding thread panicked")??;
    println!(
        "l2fwd: forwarded {a_to_b} (port 0 -> 1) and {b_to_a} (port 1 -> 0), dropped {dropped}"
    );
    for p in ports {
        p.close();
    }
    println!("l2fwd: pool in use after close: {}", pool.in_use());
    Ok(())
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2fwd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn bad_seconds_are_refused_before_any_port_opens() {
        for bad in ["nan", "-1", "0", "inf", "1e300"] {
            let e = parse_from(args(&format!("00:03.0 00:04.0 --seconds {bad}")))
                .err()
                .unwrap_or_else(|| panic!("--seconds {bad} accepted"));
            assert!(e.contains("--seconds"), "{e}");
        }
        let a = parse_from(args("00:03.0 00:04.0 --seconds 2.5")).expect("valid");
        assert_eq!(a.seconds, 2.5);
    }
}
