//! `pool-bench --vs-dpdk`: this pool against DPDK's rte_mempool, alternated
//! in one run.
//!
//! The rte_mempool side is `mempool_bench.c` (next to this file), built at
//! run time with `gcc` against the system's DPDK (`pkg-config libdpdk`,
//! Debian's `dpdk-dev`) and started once with EAL options that need neither
//! hugepages nor devices (`--no-huge --no-pci`). It runs one case per line
//! it reads; this side runs the same case with the same per-lcore loop
//! (mempool_perf_autotest's), and the two take turns: DPDK, ours, DPDK,
//! ours... Medians, ratio ours/DPDK and min-max per case.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use pool::{Netmem, Pool, PoolConfig, lcore};

const CACHE_ON: usize = 512;
const MAX_KEEP: usize = 512;
const CHECK_EVERY: usize = 1 << 16;

/// How a case takes and returns buffers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// One buffer per call: `Pool::alloc` / `Pool::free` against
    /// `rte_mempool_get` / `rte_mempool_put`.
    Single,
    /// Bulks: `LcoreCache::alloc_bulk` / `LcoreCache::free_bulk_from`
    /// against `rte_mempool_generic_get` / `rte_mempool_generic_put`, each
    /// with the lcore's cache looked up once (the autotest's calls).
    Bulk(usize),
}

#[derive(Clone, Copy)]
struct Case {
    cores: usize,
    cache: usize,
    api: Api,
    keep: usize,
}

/// The options of `--vs-dpdk`.
pub struct VsOpts {
    pub pairs: usize,
    pub duration: Duration,
    pub cores: Vec<usize>,
    pub keeps: Vec<usize>,
    /// `--vs-one API KEEP CACHE`: only that case (API `single` or
    /// `bulkN`), e.g. under callgrind with `--buffers`.
    pub only: Option<(String, usize, usize)>,
    /// `--buffers N`: each lcore of both sides stops after N buffers (a
    /// fixed amount of work: instruction counts per buffer from two runs
    /// under `valgrind --tool=callgrind --trace-children=yes`).
    pub buffers: u64,
    /// `--cpu-time`: both sides time each lcore with its thread's CPU
    /// clock (`CLOCK_THREAD_CPUTIME_ID`) instead of the monotonic clock, so
    /// time the thread spent preempted by other processes is not counted.
    pub cpu_time: bool,
}

/// Seconds on the monotonic clock or, with `cpu`, the calling thread's CPU
/// clock.
fn clock(cpu: bool) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let id = if cpu {
        libc::CLOCK_THREAD_CPUTIME_ID
    } else {
        libc::CLOCK_MONOTONIC
    };
    // SAFETY: `ts` is a valid timespec to write; both clocks exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The DPDK side, a child process answering one case per line.
struct Dpdk {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Dpdk {
    fn start(bin: &Path, lcores: usize) -> Result<Dpdk, String> {
        let mut child = Command::new(bin)
            .args([
                "-l",
                &format!("0-{}", lcores - 1),
                "--no-huge",
                "--no-shconf",
                "--no-pci",
                "--no-telemetry",
                "-m",
                "256",
                "--log-level=error",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdin = Some(child.stdin.take().ok_or("no stdin")?);
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut d = Dpdk {
            child,
            stdin,
            stdout,
        };
        let line = d.line()?;
        if !line.starts_with("ready") {
            return Err(format!("mempool_bench did not start: {line}"));
        }
        Ok(d)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut s = String::new();
        let n = self
            .stdout
            .read_line(&mut s)
            .map_err(|e| format!("reading mempool_bench: {e}"))?;
        if n == 0 {
            return Err("mempool_bench exited (see its stderr above)".into());
        }
        Ok(s.trim().to_string())
    }

    fn run(&mut self, c: &Case, dur: Duration, max: u64, cpu: bool) -> Result<f64, String> {
        let (get, single) = match c.api {
            Api::Single => (1, 1),
            Api::Bulk(n) => (n, 0),
        };
        let stdin = self.stdin.as_mut().ok_or("mempool_bench stdin closed")?;
        writeln!(
            stdin,
            "{} {} {} {} {} {} {} {} {}",
            c.cores,
            c.cache,
            get,
            get,
            c.keep,
            dur.as_millis(),
            single,
            if max == u64::MAX { 0 } else { max },
            u8::from(cpu)
        )
        .and_then(|_| stdin.flush())
        .map_err(|e| format!("writing to mempool_bench: {e}"))?;
        let line = self.line()?;
        line.strip_prefix("rate ")
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| format!("mempool_bench: {line}"))
    }
}

impl Drop for Dpdk {
    fn drop(&mut self) {
        // Closing stdin ends its loop; it then cleans EAL up and exits.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Builds `mempool_bench.c` against libdpdk; returns the binary.
fn build() -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/dpdk/mempool_bench.c");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mempool_bench_dpdk");
    let pc = |arg: &str| -> Result<Vec<String>, String> {
        let o = Command::new("pkg-config")
            .args([arg, "libdpdk"])
            .output()
            .map_err(|e| format!("pkg-config: {e} (install pkg-config and DPDK's dev package)"))?;
        if !o.status.success() {
            return Err(format!(
                "pkg-config {arg} libdpdk failed: {} (install DPDK's dev package, dpdk-dev on Debian)",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect())
    };
    let version = pc("--modversion")?.join(" ");
    let status = Command::new("gcc")
        .arg("-O3")
        .args(pc("--cflags")?)
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .args(pc("--libs")?)
        .status()
        .map_err(|e| format!("gcc: {e}"))?;
    if !status.success() {
        return Err(format!("gcc could not build {}", src.display()));
    }
    println!(
        "rte_mempool: DPDK {version}, {} built with gcc -O3",
        src.display()
    );
    Ok(out)
}

/// The autotest's pool size for `cores` lcores.
fn pool_size(cores: usize) -> usize {
    cores * (MAX_KEEP + CACHE_ON * 3) - 1
}

/// Our side of one case: the autotest's loop on `cores` pinned threads
/// (lcores 0..cores); buffers taken and returned per second, summed.
fn ours(c: &Case, dur: Duration, max: u64, cpu: bool) -> Result<f64, String> {
    let cfg = PoolConfig::new("vs-dpdk", pool_size(c.cores))
        .with_cache_size(c.cache)
        .with_lcores(c.cores)
        .with_track_state(false);
    let p = Pool::with_host_memory(&cfg).map_err(|e| e.to_string())?;
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let barrier = Arc::new(Barrier::new(c.cores));
    let case = *c;
    let handles: Vec<_> = (0..c.cores)
        .map(|i| {
            let p = Arc::clone(&p);
            let barrier = Arc::clone(&barrier);
            let core = ids.get(i % ids.len().max(1)).copied();
            std::thread::spawn(move || -> Result<f64, String> {
                if let Some(id) = core {
                    core_affinity::set_for_current(id);
                }
                lcore::set_current(i).map_err(|e| e.to_string())?;
                barrier.wait();
                match case.api {
                    Api::Single => single_loop(&p, case.keep, dur, max, cpu),
                    Api::Bulk(n) => bulk_loop(&p, n, case.keep, dur, max, cpu),
                }
            })
        })
        .collect();
    let mut total = 0.0;
    for h in handles {
        total += h.join().map_err(|_| "bench thread panicked")??;
    }
    if p.in_use() != 0 {
        return Err(format!("{} buffers not returned", p.in_use()));
    }
    Ok(total)
}

fn single_loop(p: &Pool, keep: usize, dur: Duration, max: u64, cpu: bool) -> Result<f64, String> {
    let mut table: Vec<Netmem> = Vec::with_capacity(MAX_KEEP);
    let rounds = (CHECK_EVERY / keep).max(1);
    let start = clock(cpu);
    let mut count = 0u64;
    loop {
        for _ in 0..rounds {
            for _ in 0..keep {
                match p.alloc() {
                    Some(nm) => table.push(nm),
                    None => return Err("pool ran empty".into()),
                }
            }
            for nm in table.drain(..) {
                p.free(nm);
            }
        }
        count += (rounds * keep) as u64;
        let t = clock(cpu) - start;
        if t >= dur.as_secs_f64() || count >= max {
            return Ok(count as f64 / t);
        }
    }
}

fn bulk_loop(
    p: &Pool,
    n: usize,
    keep: usize,
    dur: Duration,
    max: u64,
    cpu: bool,
) -> Result<f64, String> {
    // The lcore's cache looked up once, as the autotest does.
    let mut c = p.lcore_cache().ok_or("no lcore cache")?;
    let mut table: Vec<Netmem> = Vec::with_capacity(MAX_KEEP + 128);
    let rounds = (CHECK_EVERY / keep).max(1);
    let start = clock(cpu);
    let mut count = 0u64;
    loop {
        for _ in 0..rounds {
            let mut idx = 0;
            while idx < keep {
                if c.alloc_bulk(&mut table, n) != n {
                    return Err("pool ran empty".into());
                }
                idx += n;
            }
            let mut idx = 0;
            while idx < keep {
                c.free_bulk_from(&mut table, n);
                idx += n;
            }
        }
        count += (rounds * keep) as u64;
        let t = clock(cpu) - start;
        if t >= dur.as_secs_f64() || count >= max {
            return Ok(count as f64 / t);
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Runs every case, alternating DPDK and ours `pairs` times; prints the
/// table. Returns the worst ratio.
pub fn run(opts: &VsOpts) -> Result<f64, String> {
    let bin = build()?;
    let max_cores = opts.cores.iter().copied().max().unwrap_or(1);
    let cpus = core_affinity::get_core_ids().map_or(1, |v| v.len());
    if max_cores > cpus {
        return Err(format!("{max_cores} cores asked, {cpus} available"));
    }
    let mut dpdk = Dpdk::start(&bin, max_cores)?;
    let mut cases = Vec::new();
    if let Some((api, keep, cache)) = &opts.only {
        let api = match api.strip_prefix("bulk") {
            _ if api == "single" => Api::Single,
            Some(n) => Api::Bulk(n.parse().map_err(|_| format!("bad API {api}"))?),
            None => return Err(format!("bad API {api} (single or bulkN)")),
        };
        if *keep == 0 || *keep > MAX_KEEP || matches!(api, Api::Bulk(n) if n == 0 || n > *keep) {
            return Err(format!(
                "bad case: n_keep {keep} (1..={MAX_KEEP}), bulk 1..=n_keep"
            ));
        }
        for &cores in &opts.cores {
            cases.push(Case {
                cores,
                cache: *cache,
                api,
                keep: *keep,
            });
        }
    }
    for &cores in &opts.cores {
        if opts.only.is_some() {
            break;
        }
        for cache in [CACHE_ON, 0] {
            for &keep in &opts.keeps {
                for api in [Api::Single, Api::Bulk(1), Api::Bulk(4), Api::Bulk(32)] {
                    if api.eq(&Api::Bulk(32)) && keep < 32 {
                        continue;
                    }
                    cases.push(Case {
                        cores,
                        cache,
                        api,
                        keep,
                    });
                }
            }
        }
    }
    println!(
        "{} cases, {} pairs each (DPDK then ours), {} ms {} per run; load average at start {}",
        cases.len(),
        opts.pairs,
        opts.duration.as_millis(),
        if opts.cpu_time {
            "of thread CPU time"
        } else {
            "wall-clock"
        },
        load_average()
    );
    println!(
        "{:>5} {:>5} {:>6} {:>6} {:>12} {:>12} {:>7} {:>23} {:>23}",
        "cores",
        "cache",
        "api",
        "n_keep",
        "dpdk_rate",
        "pool_rate",
        "ratio",
        "dpdk_min-max",
        "pool_min-max"
    );
    let mut worst = f64::INFINITY;
    for c in &cases {
        let mut d = Vec::with_capacity(opts.pairs);
        let mut o = Vec::with_capacity(opts.pairs);
        for _ in 0..opts.pairs {
            d.push(dpdk.run(c, opts.duration, opts.buffers, opts.cpu_time)?);
            o.push(ours(c, opts.duration, opts.buffers, opts.cpu_time)?);
        }
        let (dmin, dmax) = (
            d.iter().copied().fold(f64::INFINITY, f64::min),
            d.iter().copied().fold(0.0, f64::max),
        );
        let (omin, omax) = (
            o.iter().copied().fold(f64::INFINITY, f64::min),
            o.iter().copied().fold(0.0, f64::max),
        );
        let (dm, om) = (median(&mut d), median(&mut o));
        let ratio = om / dm;
        worst = worst.min(ratio);
        let api = match c.api {
            Api::Single => "single".to_string(),
            Api::Bulk(n) => format!("bulk{n}"),
        };
        println!(
            "{:>5} {:>5} {:>6} {:>6} {:>12.4e} {:>12.4e} {:>6.2}x {:>11.3e}-{:<11.3e} {:>11.3e}-{:<11.3e}",
            c.cores,
            if c.cache == 0 {
                "off".to_string()
            } else {
                c.cache.to_string()
            },
            api,
            c.keep,
            dm,
            om,
            ratio,
            dmin,
            dmax,
            omin,
            omax
        );
    }
    println!(
        "worst ratio {worst:.2}x; load average at end {}",
        load_average()
    );
    Ok(worst)
}
