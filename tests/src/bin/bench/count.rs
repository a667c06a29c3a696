//! `bench --mmio` / `--insns`: per case and testpmd, one boot with QEMU's
//! register trace and/or the `insn` TCG plugin; each run forwards a fixed
//! number of frames (`--frames`, 100 000) and reports register writes and
//! reads per forwarded packet (by register) and guest instructions per
//! forwarded packet on the forwarding vCPU (see `rig::bench::insns::figure`
//! and `METHOD` for the method). Both instruments slow TCG, so no kpps are taken here.

use super::{Args, Case, wait_count};
use rig::bench::{Impl, insns, mmio};
use rig::traffic::{self, TrafficConfig};
use rig::{Echo, Vm, VmConfig, nic_mac};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The vCPU testpmd's forwarding lcore runs on (`-l 0-1`: lcore 1).
const FWD_VCPU: u32 = 1;
/// How long the idle window lasts.
const IDLE: Duration = Duration::from_secs(2);

/// Builds tests/plugin/insn.c with gcc into target/insn-plugin.
fn build_plugin() -> Result<PathBuf, String> {
    let root = rig::workspace_root();
    let src = root.join("tests/plugin/insn.c");
    let dir = root.join("target/insn-plugin");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lib = dir.join("libinsn.so");
    let st = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-lpthread")
        .status()
        .map_err(|e| format!("gcc (scripts/setup installs it): {e}"))?;
    if !st.success() {
        return Err(format!("gcc {} failed: {st}", src.display()));
    }
    Ok(lib)
}

/// One request to the insn plugin, its whole answer.
fn ask(sock: &Path, line: &str) -> Result<String, String> {
    let e = |e: std::io::Error| format!("insn plugin {}: {e}", sock.display());
    let mut s = UnixStream::connect(sock).map_err(e)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(e)?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(e)?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(e)?;
    Ok(text)
}

fn dump(sock: &Path) -> Result<insns::Dump, String> {
    insns::parse_dump(&ask(sock, &format!("dump {FWD_VCPU}"))?)
}

/// The TBs at `tbs`' addresses, read back to back.
fn snap(sock: &Path, tbs: &[(u64, u64)]) -> Result<insns::Dump, String> {
    let mut line = format!("snap {FWD_VCPU}");
    for (a, _) in tbs.iter().take(256) {
        line.push_str(&format!(" {a:x}"));
    }
    insns::parse_dump(&ask(sock, &line)?)
}

fn iters(sock: &Path) -> Result<insns::Iters, String> {
    insns::parse_iters(&ask(sock, &format!("iters {FWD_VCPU}"))?)
}

/// One counting run's figures.
struct Row {
    case: String,
    imp: Impl,
    mmio: Option<mmio::Counts>,
    insns: Option<insns::Figure>,
    error: Option<String>,
}

pub(crate) fn run(a: &Args) -> Result<(), String> {
    let image = rig::image::dpdk_image().map_err(|e| e.to_string())?;
    let pid = std::process::id();
    let sock = std::env::temp_dir().join(format!("rig-bench-{pid}.sock"));
    let psock = std::env::temp_dir().join(format!("rig-insn-{pid}.sock"));
    let _ = std::fs::remove_file(&sock);
    let mut extra = vec![
        "-chardev".into(),
        format!("socket,id=bench,path={},server=on,wait=off", sock.display()),
        "-serial".into(),
        "chardev:bench".into(),
    ];
    if a.insns {
        let lib = build_plugin()?;
        extra.push("-plugin".into());
        extra.push(format!("{},sock={}", lib.display(), psock.display()));
    }
    let runs = 2 * a.pairs as u64 * a.cases.len() as u64;
    let config = VmConfig {
        echo: Echo::Nothing,
        image: Some(image),
        timeout: Duration::from_secs(runs * 600 + 300),
        stall_timeout: Duration::from_secs(120),
        boot_timeout: Duration::from_secs(180),
        trace: if a.mmio {
            vec!["e1000e_core_write".into(), "e1000e_core_read".into()]
        } else {
            Vec::new()
        },
        extra_args: extra,
        ..VmConfig::default()
    };
    println!(
        "bench: counting ({}{}) in one boot; {} case(s) x {} pair(s) x {} frames",
        if a.mmio { "mmio " } else { "" },
        if a.insns { "insns" } else { "" },
        a.cases.len(),
        a.pairs,
        a.frames
    );
    let vm = Vm::start(config, "bench-guest").map_err(|e| e.to_string())?;
    let mut ctl = UnixStream::connect(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    wait_count(&vm, "@@bench-ready", 1, Duration::from_secs(300))?;
    let mut send = |line: &str| -> Result<(), String> {
        ctl.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("bench control port: {e}"))
    };
    let trace_path = vm.work_dir().join("trace.log");
    let mut rows = Vec::new();
    let mut started = 0;
    for case in &a.cases {
        for pair in 0..a.pairs {
            let order = if pair % 2 == 0 {
                [Impl::Dpdk, Impl::Ours]
            } else {
                [Impl::Ours, Impl::Dpdk]
            };
            for imp in order {
                started += 1;
                send(&case.command(imp))?;
                wait_count(&vm, "@@bench-started", started, Duration::from_secs(60))?;
                let r = measure(&vm, a, case, &trace_path, &psock);
                send("stop")?;
                let stopped = wait_count(&vm, "@@bench-stopped", started, Duration::from_secs(60))?;
                let mut row = Row {
                    case: case.name(),
                    imp,
                    mmio: None,
                    insns: None,
                    error: None,
                };
                match r {
                    Ok((m, i)) => (row.mmio, row.insns) = (m, i),
                    Err(e) => row.error = Some(e),
                }
                println!(
                    "bench: {} {}: {} ({})",
                    row.case,
                    imp.name(),
                    describe(&row),
                    stopped.trim()
                );
                rows.push(row);
            }
        }
    }
    send("quit")?;
    let _ = vm.wait();
    let mut table = table(&rows);
    let figures: Vec<_> = rows
        .iter()
        .filter_map(|r| {
            r.insns
                .as_ref()
                .map(|f| (r.case.clone(), r.imp, f.per_packet))
        })
        .collect();
    let summary = insns::summary(&figures);
    if a.insns {
        table.push_str(&format!(
            "\nInstructions per forwarded packet, median (min-max, ±half range, runs):\n\n{}\nMethod: {}.\n",
            insns::summary_table(&summary),
            insns::METHOD
        ));
    }
    println!("\n{table}");
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "case": r.case, "impl": r.imp.name(), "error": r.error,
                "mmio": r.mmio.as_ref().map(|m| serde_json::json!({
                    "frames": m.frames, "writes": m.writes, "reads": m.reads,
                    "writes_per_packet": m.writes_per_packet(),
                    "reads_per_packet": m.reads_per_packet(),
                    "by_register": m.by_reg,
                })),
                "insns": r.insns.as_ref().map(|f| serde_json::json!({
                    "per_packet": f.per_packet, "empty_iteration": f.empty,
                    "iterations": f.iterations, "busy_iterations": f.busy,
                    "tainted_iterations": f.tainted, "idle_excess": f.idle_excess,
                    "user_insns": f.insns, "frames": f.frames,
                    "loop_start": format!("{:x}", f.marker),
                })),
            })
        })
        .collect();
    let meta = serde_json::json!({
        "frames": a.frames, "pairs": a.pairs, "settings": super::COMMON,
        "vcpu": FWD_VCPU, "idle_window_s": IDLE.as_secs(),
        "method": format!("insns: {}; mmio: e1000e_core_write/read trace events in the loaded window / frames out of the guest", insns::METHOD),
    });
    let per_case: Vec<_> = summary
        .iter()
        .map(|(c, o, d)| {
            let side = |s: &Option<insns::Spread>| {
                s.as_ref().map(|s| {
                    serde_json::json!({
                        "median": s.median, "min": s.min, "max": s.max, "runs": s.runs,
                        "pm_pct": s.pm_pct(),
                    })
                })
            };
            serde_json::json!({"case": c, "ours": side(o), "dpdk": side(d)})
        })
        .collect();
    let body = serde_json::to_string_pretty(
        &serde_json::json!({"meta": meta, "insns_per_packet": per_case, "runs": json}),
    )
    .map_err(|e| e.to_string())?;
    for (name, text) in [("count.json", body + "\n"), ("count.md", table)] {
        let p = a.out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    println!("bench: wrote {}/count.{{json,md}}", a.out.display());
    let _ = std::fs::remove_file(&sock);
    Ok(())
}

type Measured = (Option<mmio::Counts>, Option<insns::Figure>);

fn measure(
    vm: &Vm,
    a: &Args,
    case: &Case,
    trace_path: &Path,
    psock: &Path,
) -> Result<Measured, String> {
    let (_, tx, rx) = case.ports();
    let mut cfg = TrafficConfig {
        rate_pps: 10_000_000,
        duration: Duration::from_secs(600),
        frame_len: 60,
        dst_mac: nic_mac(tx),
        warmup_timeout: Duration::from_secs(180),
        send_timeout: Duration::from_secs(30),
        max_frames: Some(2000),
        ..TrafficConfig::default()
    };
    // Warm-up: links up, code translated, rings cycled once.
    traffic::run(vm.peer(tx), vm.peer(rx), &cfg).map_err(|e| format!("warm-up: {e}"))?;
    let idle = if a.insns {
        // The TBs of the idle poll loop, then (a short loaded window) the
        // one that starts each iteration; the plugin cuts iterations there.
        std::thread::sleep(Duration::from_millis(500));
        let d0 = dump(psock)?;
        std::thread::sleep(IDLE);
        let d1 = dump(psock)?;
        let (_, group) = insns::polls(&insns::delta(&d0, &d1))
            .ok_or("no user code ran on the forwarding vCPU in the idle window")?;
        let s0 = snap(psock, &group)?;
        traffic::run(vm.peer(tx), vm.peer(rx), &cfg).map_err(|e| format!("calibration: {e}"))?;
        let s1 = snap(psock, &group)?;
        let start = insns::loop_start(&group, &insns::delta(&s0, &s1))
            .ok_or("no poll-loop TB ran in the calibration window")?;
        let r = ask(psock, &format!("loop {FWD_VCPU} {start:x}"))?;
        if !r.contains(&format!("loop {start:x}")) {
            return Err(format!("insn plugin refused the loop start: {}", r.trim()));
        }
        std::thread::sleep(Duration::from_millis(200));
        let i0 = iters(psock)?;
        std::thread::sleep(IDLE);
        Some(i0.until(&iters(psock)?)?)
    } else {
        None
    };
    cfg.max_frames = Some(a.frames);
    let rx0 = vm.peer(rx).received();
    let l0 = if a.insns { Some(iters(psock)?) } else { None };
    let t0 = SystemTime::now();
    let r = traffic::run(vm.peer(tx), vm.peer(rx), &cfg).map_err(|e| e.to_string())?;
    let t1 = SystemTime::now();
    let l1 = if a.insns { Some(iters(psock)?) } else { None };
    let frames = vm.peer(rx).received() - rx0;
    if r.lost > 0 {
        println!("bench:   (lost {} of {} frames)", r.lost, r.sent);
    }
    let m = if a.mmio {
        let raw =
            std::fs::read(trace_path).map_err(|e| format!("{}: {e}", trace_path.display()))?;
        let ev = rig::trace::parse(&String::from_utf8_lossy(&raw));
        Some(mmio::Counts::of(&rig::trace::window(&ev, t0, t1), frames))
    } else {
        None
    };
    let i = match (idle, l0, l1) {
        (Some(idle), Some(l0), Some(l1)) => Some(insns::figure(&idle, &l0.until(&l1)?, frames)?),
        _ => None,
    };
    Ok((m, i))
}

fn describe(r: &Row) -> String {
    if let Some(e) = &r.error {
        return format!("FAILED: {e}");
    }
    let mut s = Vec::new();
    if let Some(m) = &r.mmio {
        s.push(format!(
            "{} frames, {:.4} writes/pkt, {:.4} reads/pkt [{}]",
            m.frames,
            m.writes_per_packet(),
            m.reads_per_packet(),
            m.breakdown()
        ));
    }
    if let Some(f) = &r.insns {
        s.push(format!(
            "{:.1} instr/pkt (empty iteration {}, {:.1} iterations/pkt, {:.2} pkts/busy iteration, {} tainted, idle excess {:.4}, loop start {:x})",
            f.per_packet,
            f.empty,
            f.iterations as f64 / f.frames.max(1) as f64,
            f.per_busy(),
            f.tainted,
            f.idle_excess,
            f.marker
        ));
    }
    s.join("; ")
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| case | testpmd | writes/pkt | reads/pkt | by register (per pkt) | instr/pkt | empty iteration | iterations/pkt | pkts/busy iteration |\n|---|---|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (w, rd, b) = r
            .mmio
            .as_ref()
            .map_or(("-".into(), "-".into(), "-".into()), |m| {
                (
                    format!("{:.4}", m.writes_per_packet()),
                    format!("{:.4}", m.reads_per_packet()),
                    m.breakdown(),
                )
            });
        let (ip, ie, pp, pb) =
            r.insns
                .as_ref()
                .map_or(("-".into(), "-".into(), "-".into(), "-".into()), |f| {
                    (
                        format!("{:.1}", f.per_packet),
                        format!("{}", f.empty),
                        format!("{:.1}", f.iterations as f64 / f.frames.max(1) as f64),
                        format!("{:.2}", f.per_busy()),
                    )
                });
        let b = match &r.error {
            Some(e) => format!("FAILED: {e}"),
            None => b,
        };
        t.push_str(&format!(
            "| {} | {} | {w} | {rd} | {b} | {ip} | {ie} | {pp} | {pb} |\n",
            r.case,
            r.imp.name()
        ));
    }
    t
}
