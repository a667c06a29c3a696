//! `bench`: our testpmd against DPDK's, io forwarding, in ONE boot of the
//! DPDK guest image. The guest runs `bench-guest`, a command loop on a third
//! serial port (a unix socket here); per case and pair the host starts one
//! testpmd, streams 64-byte frames (60 without FCS) from the host generator
//! after the first frame is back, stops it, then the other (the order
//! alternates per pair). Both get the same rings, mbufs and one queue.
//! Prints the table and writes bench-results/bench.{json,svg,md}.
//!
//! `cargo run --release -p rig --bin bench -- [--pairs 5] [--seconds 10]
//!  [--cases igb-e1000e:32,igb:1,...]`

use rig::bench::{self, CaseResult, Impl, Sample};
use rig::traffic::{self, TrafficConfig};
use rig::{Echo, Vm, VmConfig, nic_mac, nic_pci};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The settings both testpmds get.
pub(crate) const COMMON: &str =
    "--forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --rxd=512 --txd=512 --total-num-mbufs=8192";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topo {
    /// Frames in on the igb, out of the e1000e.
    IgbE1000e,
    /// One igb port forwarding to itself.
    Igb,
    /// One e1000e port forwarding to itself.
    E1000e,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Case {
    topo: Topo,
    burst: u32,
}

impl Case {
    pub(crate) fn name(&self) -> String {
        let t = match self.topo {
            Topo::IgbE1000e => "igb-e1000e",
            Topo::Igb => "igb",
            Topo::E1000e => "e1000e",
        };
        format!("{t}:{}", self.burst)
    }

    fn parse(s: &str) -> Result<Case, String> {
        let (t, b) = s
            .split_once(':')
            .ok_or_else(|| format!("case {s:?}: want TOPO:BURST"))?;
        let topo = match t {
            "igb-e1000e" => Topo::IgbE1000e,
            "igb" => Topo::Igb,
            "e1000e" => Topo::E1000e,
            _ => return Err(format!("case {s:?}: topology is igb-e1000e, igb or e1000e")),
        };
        let burst = b
            .parse()
            .ok()
            .filter(|b| (1..=512).contains(b))
            .ok_or_else(|| format!("case {s:?}: burst is 1..=512"))?;
        Ok(Case { topo, burst })
    }

    /// The `-a` list and the (tx, rx) NIC indexes of the generator.
    pub(crate) fn ports(&self) -> (String, usize, usize) {
        match self.topo {
            Topo::IgbE1000e => (format!("-a {} -a {}", nic_pci(0), nic_pci(1)), 0, 1),
            Topo::Igb => (format!("-a {}", nic_pci(0)), 0, 0),
            Topo::E1000e => (format!("-a {}", nic_pci(1)), 1, 1),
        }
    }

    /// The guest loop's command line for `imp`.
    pub(crate) fn command(&self, imp: Impl) -> String {
        let (allow, _, _) = self.ports();
        match imp {
            Impl::Dpdk => format!(
                "dpdk -l 0-1 -n 1 --no-telemetry --in-memory {allow} -- {COMMON} --burst={}",
                self.burst
            ),
            Impl::Ours => format!("ours -l 0-1 {allow} -- {COMMON} --burst={}", self.burst),
        }
    }
}

pub(crate) struct Args {
    /// Count register accesses per packet (QEMU trace) instead of kpps.
    mmio: bool,
    /// Count guest instructions per packet (TCG plugin) instead of kpps.
    insns: bool,
    /// Frames in a counting run's loaded window.
    frames: u64,
    pairs: usize,
    seconds: u64,
    cases: Vec<Case>,
    out: std::path::PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        mmio: false,
        insns: false,
        frames: 100_000,
        pairs: 5,
        seconds: 10,
        cases: Vec::new(),
        out: rig::workspace_root().join("bench-results"),
    };
    for t in ["igb-e1000e", "igb", "e1000e"] {
        for b in [1, 8, 32] {
            a.cases.push(Case::parse(&format!("{t}:{b}"))?);
        }
    }
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--mmio" => {
                a.mmio = true;
                continue;
            }
            "--insns" => {
                a.insns = true;
                continue;
            }
            _ => {}
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| (1..=3600).contains(n))
                .ok_or_else(|| format!("{k}: {v:?} is not a number in 1..=3600"))
        };
        match k.as_str() {
            "--pairs" => a.pairs = num(&v)? as usize,
            "--seconds" => a.seconds = num(&v)?,
            "--cases" => {
                a.cases = v.split(',').map(Case::parse).collect::<Result<_, _>>()?;
            }
            "--out" => a.out = v.into(),
            "--frames" => {
                a.frames = v
                    .parse()
                    .ok()
                    .filter(|n| (1000..=10_000_000).contains(n))
                    .ok_or_else(|| format!("--frames: {v:?} is not in 1000..=10000000"))?
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            eprintln!(
                "usage: bench [--pairs N] [--seconds N] [--cases igb-e1000e:32,igb:8,e1000e:1,...] [--out DIR]\n       bench --mmio and/or --insns [--frames N] [--pairs N] [--cases ...] [--out DIR]"
            );
            return ExitCode::from(2);
        }
    };
    let r = if args.mmio || args.insns {
        count::run(&args)
    } else {
        run(&args)
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(1)
        }
    }
}

#[path = "bench/count.rs"]
mod count;

/// Waits until the guest output holds `n` lines containing `needle`; returns
/// the last of them.
pub(crate) fn wait_count(
    vm: &Vm,
    needle: &str,
    n: usize,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = vm.output_so_far();
        let hits: Vec<&str> = out.lines().filter(|l| l.contains(needle)).collect();
        if hits.len() >= n {
            return Ok(hits[n - 1].to_string());
        }
        if out.contains("@@bench-quit") {
            return Err(format!("the guest loop quit while waiting for {needle:?}"));
        }
        if Instant::now() > deadline {
            let tail: Vec<&str> = out.lines().rev().take(30).collect();
            return Err(format!(
                "waiting for {needle:?} #{n} timed out after {} s; output tail:\n{}",
                timeout.as_secs(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(a: &Args) -> Result<(), String> {
    let image = rig::image::dpdk_image().map_err(|e| e.to_string())?;
    let sock = std::env::temp_dir().join(format!("rig-bench-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let per_run = a.seconds + 60;
    let total = per_run * 2 * a.pairs as u64 * a.cases.len() as u64 + 300;
    let config = VmConfig {
        echo: Echo::Nothing,
        image: Some(image),
        timeout: Duration::from_secs(total),
        // Both vCPUs poll during a run; the heartbeat may be late on a busy host.
        stall_timeout: Duration::from_secs(60),
        extra_args: vec![
            "-chardev".into(),
            format!("socket,id=bench,path={},server=on,wait=off", sock.display()),
            "-serial".into(),
            "chardev:bench".into(),
        ],
        ..VmConfig::default()
    };
    println!(
        "bench: booting the DPDK guest image once; {} case(s) x {} pair(s) x {} s",
        a.cases.len(),
        a.pairs,
        a.seconds
    );
    let vm = Vm::start(config, "bench-guest").map_err(|e| e.to_string())?;
    let mut ctl = UnixStream::connect(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    wait_count(&vm, "@@bench-ready", 1, Duration::from_secs(120))?;
    let mut started = 0usize;
    let mut send = |line: &str| -> Result<(), String> {
        ctl.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("bench control port: {e}"))
    };
    let mut all: Vec<(String, Vec<Sample>)> = Vec::new();
    let mut fatal = None;
    'cases: for case in &a.cases {
        all.push((case.name(), Vec::new()));
        let samples = &mut all.last_mut().expect("just pushed").1;
        for pair in 0..a.pairs {
            // Alternate who goes first, so drift in the host's load hits both.
            let order = if pair % 2 == 0 {
                [Impl::Dpdk, Impl::Ours]
            } else {
                [Impl::Ours, Impl::Dpdk]
            };
            for imp in order {
                started += 1;
                match one_run(&vm, &mut send, case, imp, started, a.seconds) {
                    Ok(sample) => {
                        if let Some(e) = &sample.error {
                            println!(
                                "bench: {} pair {} {}: FAILED: {e}",
                                case.name(),
                                pair + 1,
                                imp.name()
                            );
                        }
                        samples.push(sample);
                    }
                    Err(e) => {
                        // The guest loop itself did not answer: nothing more
                        // can run in this boot; keep what was measured.
                        println!(
                            "bench: {} {}: the guest loop is gone: {e}",
                            case.name(),
                            imp.name()
                        );
                        fatal = Some(e);
                        break 'cases;
                    }
                }
            }
        }
    }
    if fatal.is_none() {
        send("quit")?;
        let out = vm.wait().map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("the guest loop exited with {}", out.status));
        }
    }
    let results: Vec<CaseResult> = all
        .iter()
        .filter_map(|(c, v)| CaseResult::of(c, v))
        .collect();
    let mut table = bench::table(&results);
    // The deterministic figure next to kpps: the last `bench --insns` run's
    // instructions per packet for these cases, when its count.json is here.
    let count = a.out.join("count.json");
    if let Ok(text) = std::fs::read_to_string(&count) {
        let names: Vec<String> = results.iter().map(|r| r.case.clone()).collect();
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(j) => {
                let s = bench::insns::summary_from_json(&j, &names);
                if !s.is_empty() {
                    table.push_str(&format!(
                        "\nGuest instructions per forwarded packet (median, min-max, ± half range, runs; from `bench --insns`, {}):\n\n{}",
                        count.display(),
                        bench::insns::summary_table(&s)
                    ));
                }
            }
            Err(e) => println!("bench: {}: {e} (no instr/pkt shown)", count.display()),
        }
    }
    println!("\n{table}");
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let meta = serde_json::json!({
        "pairs": a.pairs, "seconds": a.seconds, "frame_len_with_fcs": 64,
        "settings": COMMON, "generator": "rig::traffic, at most 128 frames in flight",
    });
    let json = bench::json(meta, &results, &all);
    let write = |name: &str, body: String| {
        let p = a.out.join(name);
        std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(
        "bench.json",
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n",
    )?;
    write("bench.md", table)?;
    bench::chart(
        &results,
        &format!(
            "io forwarding, 64 B frames: median kpps, {} pairs x {} s (whiskers: min-max)",
            a.pairs, a.seconds
        ),
        &a.out.join("bench.svg"),
    )?;
    println!("bench: wrote {}/bench.{{json,md,svg}}", a.out.display());
    let _ = std::fs::remove_file(&sock);
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One measured run of `imp` in `case` (the `started`th testpmd of the
/// boot). A run that fails (no forwarding, the generator's send timed
/// out, testpmd killed at stop) comes back as a sample with its error,
/// after testpmd has been stopped, so the next run starts clean; `Err` only
/// when the guest loop itself stops answering.
fn one_run(
    vm: &Vm,
    send: &mut impl FnMut(&str) -> Result<(), String>,
    case: &Case,
    imp: Impl,
    started: usize,
    seconds: u64,
) -> Result<Sample, String> {
    send(&case.command(imp))?;
    wait_count(vm, "@@bench-started", started, Duration::from_secs(30))?;
    let out_before = vm.output_so_far().lines().count();
    let (_, tx, rx) = case.ports();
    let cfg = TrafficConfig {
        rate_pps: 10_000_000,
        duration: Duration::from_secs(seconds),
        frame_len: 60,
        dst_mac: nic_mac(tx),
        warmup_timeout: Duration::from_secs(90),
        ..TrafficConfig::default()
    };
    let r = traffic::run(vm.peer(tx), vm.peer(rx), &cfg);
    send("stop")?;
    // The guest loop kills a testpmd that has not stopped after 20 s.
    let stopped = wait_count(vm, "@@bench-stopped", started, Duration::from_secs(60))?;
    let killed = vm
        .output_so_far()
        .lines()
        .skip(out_before)
        .any(|l| l.contains("@@bench-killed"));
    let mut error = match &r {
        Err(e) => Some(format!("generator: {e}")),
        Ok(_) if killed => Some("testpmd did not stop within 20 s and was killed".into()),
        Ok(_) => None,
    };
    let rc = stopped.trim().rsplit(' ').next().unwrap_or("");
    if error.is_none() && rc != "0" {
        error = Some(format!("testpmd exited with status {rc}"));
    }
    if error.is_some() {
        // What testpmd said (its port statistics at exit), to see why.
        let out = vm.output_so_far();
        let lines: Vec<&str> = out.lines().skip(out_before).collect();
        let from = lines.len().saturating_sub(40);
        println!(
            "bench: {} {}: guest output of the failed run:\n{}",
            case.name(),
            imp.name(),
            lines[from..].join("\n")
        );
    }
    let r = r.unwrap_or_default();
    let secs = r.elapsed.as_secs_f64();
    let kpps = if secs > 0.0 {
        r.received as f64 / secs / 1000.0
    } else {
        0.0
    };
    println!(
        "bench: {} {}: {kpps:.1} kpps ({}; {})",
        case.name(),
        imp.name(),
        r.summary(),
        stopped.trim()
    );
    Ok(Sample {
        imp,
        kpps,
        sent: r.sent,
        lost: r.lost,
        error,
    })
}
