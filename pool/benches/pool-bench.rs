//! pool-bench: what DPDK's `mempool_perf_autotest` measures, for this pool
//! and two baselines measured in the same run.
//!
//! Each core repeatedly takes `n_keep` buffers in bulks of `n_get_bulk`
//! and returns them in bulks of `n_put_bulk`; `rate_persec` is buffers
//! taken and returned per second, summed over cores (DPDK's figure).
//!
//! Run: `cargo bench -p pool --bench pool-bench -- [--quick] [--full]
//! [--duration-ms N]`. Default: n_get_bulk == n_put_bulk, 200 ms per case
//! (about 30 s in all); `--full` runs every get/put pair as DPDK does.
//!
//! Against rte_mempool: `--vs-dpdk [--pairs N] [--duration-ms N] [--cores N]`
//! (see `dpdk/vs_dpdk.rs` and the README); `--vs-one single|bulkN KEEP
//! CACHE --buffers N` runs one case with a fixed amount of work on both
//! sides, for instruction counts under callgrind; `--cpu-time` times both
//! sides with each thread's CPU clock (robust to other load on the host).
//!
//! Profiling: `--one BULK KEEP CACHE [--track] [--buffers N]` runs only
//! that pool case on one core; with `--buffers` it does a fixed amount of
//! work, so two runs under `valgrind --tool=callgrind` with different N
//! give instructions per buffer (difference of totals / difference of N;
//! N a multiple of 65536).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use pool::{Netmem, Pool, PoolConfig, lcore};

#[path = "dpdk/vs_dpdk.rs"]
mod vs_dpdk;

const BULKS: [usize; 5] = [1, 4, 8, 32, 128];
const KEEPS: [usize; 3] = [32, 128, 512];
const MAX_KEEP: usize = 512;
const CACHE_ON: usize = 512;
/// Buffers between two clock reads.
const CHECK_EVERY: usize = 1 << 16;

struct Opts {
    duration: Duration,
    full: bool,
    /// `--one BULK KEEP CACHE`: only that pool case on one core (profiling).
    one: Option<(usize, usize, usize)>,
    /// `--buffers N`: stop each core after N buffers (with `--one`, for
    /// instruction counts under callgrind: run twice, divide the
    /// difference).
    buffers: u64,
    /// `--track`: with `--one`, turn per-buffer state tracking on.
    track: bool,
    /// `--cores N`: with `--one`, run on N cores (lcores 0..N).
    cores: usize,
    cores_given: bool,
    /// `--vs-dpdk`: against rte_mempool, alternated (see `vs_dpdk`).
    vs_dpdk: bool,
    /// `--pairs N`: with `--vs-dpdk`, DPDK/ours pairs per case.
    pairs: usize,
    /// `--vs-one API KEEP CACHE`: with `--vs-dpdk`, only that case.
    vs_one: Option<(String, usize, usize)>,
    /// `--cpu-time`: with `--vs-dpdk`, rates per thread CPU second.
    cpu_time: bool,
}

fn parse_opts() -> Result<Opts, String> {
    let mut opts = Opts {
        duration: Duration::from_millis(200),
        full: false,
        one: None,
        buffers: u64::MAX,
        track: false,
        cores: 1,
        cores_given: false,
        vs_dpdk: false,
        pairs: 5,
        vs_one: None,
        cpu_time: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.duration = Duration::from_millis(50),
            "--full" => opts.full = true,
            "--duration-ms" => {
                let v = args.next().ok_or("--duration-ms needs a value")?;
                let ms: u64 = v.parse().map_err(|_| format!("bad --duration-ms {v}"))?;
                opts.duration = Duration::from_millis(ms);
            }
            "--one" => {
                let mut num = || -> Result<usize, String> {
                    let v = args.next().ok_or("--one needs BULK KEEP CACHE")?;
                    v.parse().map_err(|_| format!("bad number {v}"))
                };
                opts.one = Some((num()?, num()?, num()?));
            }
            "--buffers" => {
                let v = args.next().ok_or("--buffers needs a value")?;
                opts.buffers = v.parse().map_err(|_| format!("bad --buffers {v}"))?;
            }
            "--track" => opts.track = true,
            "--cores" => {
                let v = args.next().ok_or("--cores needs a value")?;
                opts.cores = v.parse().map_err(|_| format!("bad --cores {v}"))?;
                if opts.cores == 0 {
                    return Err("--cores must be at least 1".into());
                }
                opts.cores_given = true;
            }
            "--vs-dpdk" => opts.vs_dpdk = true,
            "--cpu-time" => opts.cpu_time = true,
            "--vs-one" => {
                let api = args.next().ok_or("--vs-one needs API KEEP CACHE")?;
                let mut num = || -> Result<usize, String> {
                    let v = args.next().ok_or("--vs-one needs API KEEP CACHE")?;
                    v.parse().map_err(|_| format!("bad number {v}"))
                };
                opts.vs_one = Some((api, num()?, num()?));
            }
            "--pairs" => {
                let v = args.next().ok_or("--pairs needs a value")?;
                opts.pairs = v.parse().map_err(|_| format!("bad --pairs {v}"))?;
                if opts.pairs == 0 {
                    return Err("--pairs must be at least 1".into());
                }
            }
            // cargo bench passes --bench; accept and ignore it.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown option {other} (use --quick, --full, --duration-ms N, \
                     --one BULK KEEP CACHE [--track] [--cores N] [--buffers N], \
                     --vs-dpdk [--pairs N] [--duration-ms N] [--cores N] \
                     [--vs-one single|bulkN KEEP CACHE [--buffers N]] [--cpu-time])"
                ));
            }
        }
    }
    Ok(opts)
}

/// The store under test, as seen by one core.
trait Store: Send + Sync + 'static {
    type Obj: Send;
    fn get(&self, table: &mut Vec<Self::Obj>, n: usize) -> bool;
    fn put(&self, table: &mut Vec<Self::Obj>, n: usize);
}

impl Store for Arc<Pool> {
    type Obj = Netmem;
    #[inline(always)]
    fn get(&self, table: &mut Vec<Netmem>, n: usize) -> bool {
        self.alloc_bulk(table, n) == n
    }
    #[inline(always)]
    fn put(&self, table: &mut Vec<Netmem>, n: usize) {
        self.free_bulk_from(table, n);
    }
}

struct QueueStore(ArrayQueue<usize>);

impl Store for QueueStore {
    type Obj = usize;
    #[inline(always)]
    fn get(&self, table: &mut Vec<usize>, n: usize) -> bool {
        for i in 0..n {
            match self.0.pop() {
                Some(o) => table.push(o),
                None => {
                    let l = table.len();
                    for o in table.drain(l - i..) {
                        let _ = self.0.push(o);
                    }
                    return false;
                }
            }
        }
        true
    }
    #[inline(always)]
    fn put(&self, table: &mut Vec<usize>, n: usize) {
        let l = table.len();
        for o in table.drain(l - n..) {
            let _ = self.0.push(o);
        }
    }
}

struct MutexStore(Mutex<Vec<usize>>);

impl Store for MutexStore {
    type Obj = usize;
    #[inline(always)]
    fn get(&self, table: &mut Vec<usize>, n: usize) -> bool {
        let Ok(mut v) = self.0.lock() else {
            return false;
        };
        if v.len() < n {
            return false;
        }
        let l = v.len();
        table.extend(v.drain(l - n..));
        true
    }
    #[inline(always)]
    fn put(&self, table: &mut Vec<usize>, n: usize) {
        let l = table.len();
        if let Ok(mut v) = self.0.lock() {
            v.extend(table.drain(l - n..));
        }
    }
}

/// How long each core runs: until `dur` has passed or `buffers` were moved.
#[derive(Clone, Copy)]
struct Limit {
    dur: Duration,
    buffers: u64,
}

/// DPDK's per-core loop; returns buffers taken and returned.
fn per_core<S: Store>(s: &S, get: usize, put: usize, keep: usize, lim: Limit) -> u64 {
    let mut table: Vec<S::Obj> = Vec::with_capacity(MAX_KEEP + 128);
    let rounds = (CHECK_EVERY / keep).max(1);
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < lim.dur && count < lim.buffers {
        for _ in 0..rounds {
            let mut idx = 0;
            while idx < keep {
                if !s.get(&mut table, get) {
                    eprintln!("store ran empty (pool too small?)");
                    return count;
                }
                idx += get;
            }
            let mut idx = 0;
            while idx < keep {
                s.put(&mut table, put);
                idx += put;
            }
        }
        count += (rounds * keep) as u64;
        black_box(&table);
    }
    count
}

/// Runs the loop on `cores` pinned threads (lcores 0..cores); buffers/s.
fn run<S: Store + Clone>(
    s: &S,
    cores: usize,
    get: usize,
    put: usize,
    keep: usize,
    lim: Limit,
) -> f64 {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let barrier = Arc::new(Barrier::new(cores));
    let handles: Vec<_> = (0..cores)
        .map(|c| {
            let s = s.clone();
            let barrier = Arc::clone(&barrier);
            let core = ids.get(c % ids.len().max(1)).copied();
            std::thread::spawn(move || {
                if let Some(id) = core {
                    core_affinity::set_for_current(id);
                }
                if let Err(e) = lcore::set_current(c) {
                    eprintln!("lcore {c}: {e}");
                }
                barrier.wait();
                let t = Instant::now();
                let n = per_core(&s, get, put, keep, lim);
                (n, t.elapsed())
            })
        })
        .collect();
    handles
        .into_iter()
        .filter_map(|h| h.join().ok())
        .map(|(n, t)| n as f64 / t.as_secs_f64())
        .sum()
}

#[derive(Clone)]
struct ArcQ(Arc<QueueStore>);
#[derive(Clone)]
struct ArcM(Arc<MutexStore>);

impl Store for ArcQ {
    type Obj = usize;
    fn get(&self, t: &mut Vec<usize>, n: usize) -> bool {
        self.0.get(t, n)
    }
    fn put(&self, t: &mut Vec<usize>, n: usize) {
        self.0.put(t, n)
    }
}
impl Store for ArcM {
    type Obj = usize;
    fn get(&self, t: &mut Vec<usize>, n: usize) -> bool {
        self.0.get(t, n)
    }
    fn put(&self, t: &mut Vec<usize>, n: usize) {
        self.0.put(t, n)
    }
}

/// DPDK's pool size for `cores` cores.
fn pool_size(cores: usize) -> usize {
    cores * (MAX_KEEP + CACHE_ON * 3) - 1
}

/// Cross-core: lcore 0 allocates bulks of 32 and hands them to lcore 1,
/// which frees them (through its cache, back to the ring, refilling lcore
/// 0). Returns buffers/s moved through the pool.
fn cross_core_pool(dur: Duration) -> f64 {
    let cfg = PoolConfig::new("xcore", pool_size(2))
        .with_cache_size(CACHE_ON)
        .with_lcores(2);
    let Ok(p) = Pool::with_host_memory(&cfg) else {
        return 0.0;
    };
    cross_core(
        move |v: &mut Vec<Netmem>| p.alloc_bulk(v, 32) == 32,
        |v: &mut Vec<Netmem>| pool::free_bulk(v.drain(..)),
        dur,
    )
}

fn cross_core_mutex(dur: Duration) -> f64 {
    let m = Arc::new(Mutex::new((0..pool_size(2)).collect::<Vec<usize>>()));
    let m2 = Arc::clone(&m);
    cross_core(
        move |v: &mut Vec<usize>| {
            let Ok(mut s) = m.lock() else { return false };
            if s.len() < 32 {
                return false;
            }
            let l = s.len();
            v.extend(s.drain(l - 32..));
            true
        },
        move |v: &mut Vec<usize>| {
            if let Ok(mut s) = m2.lock() {
                s.append(v);
            }
        },
        dur,
    )
}

fn cross_core<T: Send + 'static>(
    mut get: impl FnMut(&mut Vec<T>) -> bool + Send + 'static,
    mut put: impl FnMut(&mut Vec<T>) + Send + 'static,
    dur: Duration,
) -> f64 {
    let full: Arc<ArrayQueue<Vec<T>>> = Arc::new(ArrayQueue::new(16));
    let empty: Arc<ArrayQueue<Vec<T>>> = Arc::new(ArrayQueue::new(16));
    for _ in 0..16 {
        let _ = empty.push(Vec::with_capacity(32));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let (f1, e1, s1) = (Arc::clone(&full), Arc::clone(&empty), Arc::clone(&stop));
    let id0 = ids.first().copied();
    let producer = std::thread::spawn(move || {
        if let Some(id) = id0 {
            core_affinity::set_for_current(id);
        }
        let _ = lcore::set_current(0);
        while !s1.load(Ordering::Relaxed) {
            let Some(mut v) = e1.pop() else {
                std::hint::spin_loop();
                continue;
            };
            if !get(&mut v) {
                let _ = e1.push(v);
                continue;
            }
            let _ = f1.push(v);
        }
    });
    let (f2, e2, s2) = (Arc::clone(&full), Arc::clone(&empty), Arc::clone(&stop));
    let id1 = ids.get(1).copied();
    let consumer = std::thread::spawn(move || {
        if let Some(id) = id1 {
            core_affinity::set_for_current(id);
        }
        let _ = lcore::set_current(1);
        let t = Instant::now();
        let mut moved = 0u64;
        while t.elapsed() < dur {
            for _ in 0..256 {
                if let Some(mut v) = f2.pop() {
                    moved += v.len() as u64;
                    put(&mut v);
                    let _ = e2.push(v);
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        s2.store(true, Ordering::Relaxed);
        // Drain what is in flight so every buffer goes home.
        while let Some(mut v) = f2.pop() {
            put(&mut v);
        }
        moved as f64 / t.elapsed().as_secs_f64()
    });
    let _ = producer.join();
    let rate = consumer.join().unwrap_or(0.0);
    while let Some(mut v) = full.pop() {
        v.clear();
    }
    rate
}

struct Row {
    store: &'static str,
    cache: String,
    cores: usize,
    get: usize,
    put: usize,
    keep: usize,
    rate: f64,
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pool-bench: {e}");
            std::process::exit(2);
        }
    };
    let dur = opts.duration;
    let cores_given = opts.cores_given;
    let lim = Limit {
        dur,
        buffers: opts.buffers,
    };
    if opts.vs_dpdk {
        let cpus = core_affinity::get_core_ids().map_or(1, |v| v.len());
        let vs = vs_dpdk::VsOpts {
            pairs: opts.pairs,
            duration: dur,
            cores: if cores_given {
                vec![opts.cores]
            } else {
                (1..=cpus.min(2)).collect()
            },
            keeps: vec![32, 128],
            only: opts.vs_one.clone(),
            buffers: opts.buffers,
            cpu_time: opts.cpu_time,
        };
        match vs_dpdk::run(&vs) {
            Ok(_) => return,
            Err(e) => {
                eprintln!("pool-bench --vs-dpdk: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some((bulk, keep, cache)) = opts.one {
        let cores = opts.cores;
        let cfg = PoolConfig::new("one", pool_size(cores))
            .with_cache_size(cache)
            .with_lcores(cores)
            .with_track_state(opts.track);
        let Ok(p) = Pool::with_host_memory(&cfg) else {
            return;
        };
        let rate = run(&p, cores, bulk, bulk, keep, lim);
        println!("pool cache {cache} bulk {bulk} keep {keep} cores {cores}: {rate:.4e} buffers/s");
        return;
    }
    let mut rows = Vec::new();
    let started = Instant::now();
    for cores in [1usize, 2] {
        for keep in KEEPS {
            for get in BULKS {
                for put in BULKS {
                    if get > keep || put > keep || (!opts.full && get != put) {
                        continue;
                    }
                    let size = pool_size(cores);
                    let m = ArcM(Arc::new(MutexStore(Mutex::new((0..size).collect()))));
                    let mrate = run(&m, cores, get, put, keep, lim);
                    rows.push(Row {
                        store: "mutex_vec",
                        cache: "-".into(),
                        cores,
                        get,
                        put,
                        keep,
                        rate: mrate,
                    });
                    let q = ArrayQueue::new(size);
                    for i in 0..size {
                        let _ = q.push(i);
                    }
                    let q = ArcQ(Arc::new(QueueStore(q)));
                    let qrate = run(&q, cores, get, put, keep, lim);
                    rows.push(Row {
                        store: "arrayqueue",
                        cache: "-".into(),
                        cores,
                        get,
                        put,
                        keep,
                        rate: qrate,
                    });
                    for (cache, track) in [(0, false), (CACHE_ON, false), (CACHE_ON, true)] {
                        let cfg = PoolConfig::new("bench", size)
                            .with_cache_size(cache)
                            .with_lcores(cores)
                            .with_track_state(track);
                        let p = match Pool::with_host_memory(&cfg) {
                            Ok(p) => p,
                            Err(e) => {
                                eprintln!("pool-bench: {e}");
                                std::process::exit(1);
                            }
                        };
                        let rate = run(&p, cores, get, put, keep, lim);
                        if p.in_use() != 0 {
                            eprintln!("pool-bench: {} buffers not returned", p.in_use());
                        }
                        let cache = if cache == 0 {
                            "off".to_string()
                        } else {
                            cache.to_string()
                        };
                        rows.push(Row {
                            store: if track { "pool+track" } else { "pool" },
                            cache,
                            cores,
                            get,
                            put,
                            keep,
                            rate,
                        });
                    }
                }
            }
        }
    }
    println!(
        "{:<11} {:>5} {:>5} {:>10} {:>10} {:>6} {:>14} {:>9}",
        "store", "cache", "cores", "n_get_bulk", "n_put_bulk", "n_keep", "rate_persec", "vs_mutex"
    );
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| {
                b.store == "mutex_vec"
                    && b.cores == r.cores
                    && b.get == r.get
                    && b.put == r.put
                    && b.keep == r.keep
            })
            .map_or(f64::NAN, |b| b.rate);
        println!(
            "{:<11} {:>5} {:>5} {:>10} {:>10} {:>6} {:>14.4e} {:>8.1}x",
            r.store,
            r.cache,
            r.cores,
            r.get,
            r.put,
            r.keep,
            r.rate,
            r.rate / base
        );
    }
    let xm = cross_core_mutex(dur * 2);
    let xp = cross_core_pool(dur * 2);
    println!();
    println!("cross-core (alloc on lcore 0, free on lcore 1, bulks of 32, cache {CACHE_ON}):");
    println!("{:<11} {:>14} {:>9}", "store", "rate_persec", "vs_mutex");
    println!("{:<11} {:>14.4e} {:>8.1}x", "mutex_vec", xm, 1.0);
    println!("{:<11} {:>14.4e} {:>8.1}x", "pool", xp, xp / xm);
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
}
