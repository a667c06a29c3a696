//! Scratch reproduction loop (not committed).
use rig::traffic::{self, TrafficConfig};
use rig::{Echo, Vm, VmConfig, nic_mac, nic_pci};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str, d: &str| -> String {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{k}=")).map(str::to_string))
            .unwrap_or_else(|| d.to_string())
    };
    let minutes: f64 = get("minutes", "10").parse().unwrap();
    let extra = get(
        "extra",
        "--json --stats-period=1 --idle-timeout=2 --duration=60",
    );
    let rate: u64 = get("rate", "5000").parse().unwrap();
    let secs: u64 = get("secs", "3").parse().unwrap();
    let inflight: u64 = get("inflight", "64").parse().unwrap();
    let wait_fwd = get("waitfwd", "1") == "1";
    let tag = get("tag", "a");
    let cmd = format!("testpmd -l 0-1 -a {} -a {} {extra}", nic_pci(0), nic_pci(1));
    eprintln!("cmd: {cmd}");
    let t0 = Instant::now();
    let mut i = 0;
    let mut bad = 0;
    while t0.elapsed().as_secs_f64() < minutes * 60.0 {
        i += 1;
        let qemu = get("qemu", "");
        let trace = format!("/tmp/qtrace/run_{i}.log");
        // SAFETY: single-threaded at this point of the scratch program.
        unsafe { std::env::set_var("QTRACE", &trace) };
        let cfg = VmConfig {
            echo: Echo::Nothing,
            qemu: (!qemu.is_empty()).then(|| qemu.clone().into()),
            ..VmConfig::default()
        };
        let vm = match Vm::start(cfg, &cmd) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("#{i} boot: {e}");
                continue;
            }
        };
        if wait_fwd {
            if let Err(e) = vm.wait_for_line("Forwarding started", Duration::from_secs(90)) {
                eprintln!("#{i} start: {e}");
                continue;
            }
        }
        let tc = TrafficConfig {
            rate_pps: rate,
            duration: Duration::from_secs(secs),
            max_in_flight: inflight,
            dst_mac: nic_mac(0),
            ..TrafficConfig::default()
        };
        let r = traffic::run(vm.peer(0), vm.peer(1), &tc);
        let out = match vm.wait() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("#{i} wait: {e}");
                continue;
            }
        };
        let qemu: Vec<&str> = out
            .console
            .lines()
            .filter(|l| l.starts_with("qemu: "))
            .collect();
        let ok = r.as_ref().is_ok_and(|r| r.lossless()) && qemu.is_empty() && out.success();
        let summ = match &r {
            Ok(r) => r.summary(),
            Err(e) => format!("traffic error: {e}"),
        };
        if !ok {
            bad += 1;
            eprintln!("#{i} FAIL {summ}");
            for l in &qemu {
                eprintln!("   {l}");
            }
            let fin: Vec<&str> = out
                .output
                .lines()
                .filter(|l| l.contains("\"final\"") || l.contains("rror"))
                .collect();
            for l in fin {
                eprintln!("   {l}");
            }
            let _ = std::fs::write(format!("/tmp/iova_fail_{tag}{i}.txt"), format!("{}\n----\n{}", out.console, out.output));
        } else {
            let _ = std::fs::remove_file(&trace);
            if out.console.contains("RXDBG dump") || out.output.contains("RXDBG dump") {
                eprintln!("#{i} RXDBG anomaly in an ok run");
                let _ = std::fs::write(format!("/tmp/iova_anom_{tag}{i}.txt"), format!("{}\n----\n{}", out.console, out.output));
            }
            eprintln!(
                "#{i} ok {summ} ({:.0} s total, {bad} bad)",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!("done: {i} runs, {bad} bad");
}
