//! `demo`: the main job on the embedded default. Boots the QEMU guest with
//! one igb and one e1000e, runs testpmd io-forwarding between them, streams
//! traffic from the host into the igb's wire for `--seconds` with a live
//! progress line, counts what comes back on the e1000e's wire, then prints
//! testpmd's final report and a one-line verdict.
//!
//! `cargo run --release -p rig --bin demo -- [--seconds 20] [--rate 50000]
//!  [--frame-len 60] [--burst 32] [--in-flight 128]`

use rig::traffic::{self, TrafficConfig};
use rig::{Echo, Vm, VmConfig, nic_mac, nic_pci};
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    seconds: u64,
    rate: u64,
    frame_len: usize,
    burst: u32,
    in_flight: u64,
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("demo: {msg}");
    eprintln!(
        "usage: demo [--seconds N] [--rate PPS] [--frame-len 60..1514] [--burst 1..512] [--in-flight N]"
    );
    ExitCode::from(2)
}

fn parse() -> Result<Args, String> {
    let d = TrafficConfig::default();
    let mut a = Args {
        seconds: 20,
        rate: 50_000,
        frame_len: d.frame_len,
        burst: 32,
        in_flight: d.max_in_flight,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{k}: {v:?} is not a positive number"))
        };
        match k.as_str() {
            "--seconds" => a.seconds = num(&v)?,
            "--rate" => a.rate = num(&v)?,
            "--frame-len" => a.frame_len = num(&v)? as usize,
            "--burst" => a.burst = num(&v)? as u32,
            "--in-flight" => a.in_flight = num(&v)?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    match demo(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}

fn demo(a: &Args) -> Result<bool, String> {
    let config = VmConfig {
        echo: Echo::Nothing,
        timeout: Duration::from_secs(a.seconds + 180),
        ..VmConfig::default()
    };
    // testpmd stops 3 s after the last frame (or, as a safety net, a minute
    // after the generator's time would be up).
    let cmd = format!(
        "testpmd -l 0-1 -a {} -a {} -- --forward-mode=io --burst={} --idle-timeout=3 --duration={}",
        nic_pci(0),
        nic_pci(1),
        a.burst,
        a.seconds + 60
    );
    println!(
        "demo: booting the QEMU guest (igb at {}, e1000e at {})",
        nic_pci(0),
        nic_pci(1)
    );
    println!("demo: guest runs: {cmd}");
    let vm = Vm::start(config, &cmd).map_err(|e| e.to_string())?;
    vm.wait_for_line("Forwarding started", Duration::from_secs(90))
        .map_err(|e| e.to_string())?;
    for line in vm.output_so_far().lines() {
        println!("testpmd| {line}");
    }
    let cfg = TrafficConfig {
        rate_pps: a.rate,
        duration: Duration::from_secs(a.seconds),
        frame_len: a.frame_len,
        max_in_flight: a.in_flight,
        dst_mac: nic_mac(0),
        progress: Some(Duration::from_secs(1)),
        ..TrafficConfig::default()
    };
    println!(
        "demo: streaming {}-byte frames at {} frames/s for {} s into port 0 (igb), counting them on port 1 (e1000e)",
        cfg.frame_len, cfg.rate_pps, a.seconds
    );
    let report = traffic::run(vm.peer(0), vm.peer(1), &cfg).map_err(|e| e.to_string())?;
    println!("demo: generator: {}", report.summary());
    println!("demo: waiting for testpmd's report");
    let out = vm.wait().map_err(|e| e.to_string())?;
    let mut printing = false;
    for line in out.output.lines() {
        printing |= line.starts_with("Stopping forwarding");
        if printing {
            println!("testpmd| {line}");
        }
    }
    let ok = out.success() && report.lossless();
    println!(
        "demo: {}: sent {}, received {}, lost {} ({:.0} frames/s through testpmd io forwarding igb -> e1000e; testpmd exit {})",
        if ok { "PASS" } else { "FAIL" },
        report.sent,
        report.received,
        report.lost,
        report.rate(),
        out.status
    );
    Ok(ok)
}
