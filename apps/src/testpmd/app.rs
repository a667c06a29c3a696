//! testpmd's main program: set-up (pool, ports, links), the batch run
//! (start, periodic stats, stop on a duration, packet count, idle time or
//! signal) and the interactive prompt, and the reports.
//!
//! Output: human text on stdout, or with `--json` on stderr while stdout
//! carries only JSON lines (`{"event":"stats"...}` each `--stats-period`,
//! `{"event":"final"...}` at each stop).

mod lifecycle;

use super::capture::Capture;
use super::cli::{self, Command, PortSel, ShowWhat};
use super::csum::CsumOffloads;
use super::engine::{self, LcoreWork, ModeParams, Running, Stream, StreamSpec, TxRetry};
use super::intr;
use super::lcores;
use super::options::{self, CaptureSpec, Config, FwdMode, Mac, Parsed, USAGE_EXIT};
use super::portcmd;
use super::report::{
    self, BurstSpread, CoreCycles, ForwardReport, FwdCounters, PortCounters, PortForward, PortInfo,
    PortSample, Rates,
};
use pmd::rss::RssConfig;
use pmd::{IntrConf, Port, PortConfig, RxOffloads, RxQueue, TxQueue};
use pool::{Pool, PoolConfig};
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Exit status when set-up or forwarding fails.
pub const FAIL_EXIT: i32 = 1;

/// Runs testpmd with `args` (program name first); returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    let cpus = lcores::available_cpus();
    let cfg = match options::parse(&args, &cpus) {
        Ok(Parsed::Run(c)) => *c,
        Ok(Parsed::Info(text)) => {
            print!("{text}");
            return 0;
        }
        Err(e) => {
            eprintln!("testpmd: {e}");
            return USAGE_EXIT;
        }
    };
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if let Some(level) = cfg.log_level {
        logger.filter_level(level);
    }
    let _ = logger.try_init();
    match App::new(cfg).and_then(App::run) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("testpmd: {e}");
            FAIL_EXIT
        }
    }
}

/// A port and what testpmd tracks about it.
struct PortState {
    /// Shared with the telemetry server's threads, which only read it.
    port: Arc<Port>,
    mac: [u8; 6],
    promisc: bool,
    allmulti: bool,
    /// Counters and time of the previous `show port stats` (for rates).
    last_show: (Instant, PortCounters),
    /// Counters when forwarding started.
    run_base: PortCounters,
    /// `port close` done (the device is released at exit).
    closed: bool,
    /// `port config` changed what the next `port start` builds.
    reconfigured: bool,
}

fn counters(p: &Port) -> PortCounters {
    let s = p.stats();
    PortCounters {
        rx_packets: s.ipackets,
        rx_bytes: s.ibytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        rx_nombuf: s.rx_nombuf,
        tx_packets: s.opackets,
        tx_bytes: s.obytes,
        tx_errors: s.oerrors,
    }
}

struct RunState {
    running: Running,
    started: Instant,
    /// The cycle counter when forwarding started (its rate for the report).
    started_cycles: u64,
    capture: Option<Capture>,
    /// Every stream's counters, to read while the lcores run.
    live: Vec<(StreamSpec, Arc<engine::StreamCounters>)>,
}

struct App {
    cfg: Config,
    pool: Arc<Pool>,
    ports: Vec<PortState>,
    /// The streams while forwarding is stopped, grouped by lcore.
    idle: Vec<LcoreWork>,
    running: Option<RunState>,
    mode: FwdMode,
    capture: Option<CaptureSpec>,
    /// `set fwd MODE retry`.
    retry_on: bool,
    /// `set burst tx delay D retry N`.
    tx_retry: TxRetry,
    /// `csum set`, per port.
    csum: Vec<CsumOffloads>,
    record_core_cycles: bool,
    record_burst_stats: bool,
    /// The prompt's next stats time (`--stats-period` with `-i`).
    next_stats: Option<Instant>,
    /// The telemetry socket's server (none with `--no-telemetry`).
    telemetry: Option<pmd::telemetry::Server>,
    /// Prints link state change events (not `--no-lsc-interrupt`).
    lsc: Option<intr::LscWatcher>,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only stores to an atomic, which is
        // async-signal-safe; the sigaction struct is zeroed then filled
        // with a valid handler and an empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn mac_text(m: [u8; 6]) -> String {
    Mac(m).to_string()
}

impl App {
    fn new(cfg: Config) -> Result<App, String> {
        // The first lcore runs this thread, unless it is the only one (then
        // it forwards and this thread stays unpinned).
        if cfg.lcores.len() > 1 {
            let main = cfg.lcores[0];
            if !core_affinity::set_for_current(core_affinity::CoreId { id: main }) {
                return Err(format!("could not pin the main lcore to CPU {main}"));
            }
            pool::lcore::set_current(main).map_err(|e| format!("main lcore {main}: {e}"))?;
        }
        let max_lcore = cfg.lcores.iter().max().copied().unwrap_or(0);
        let pcfg = PoolConfig::new("testpmd", cfg.total_num_mbufs)
            .with_buf_size(cfg.mbuf_size)
            .with_cache_size(options::MBUF_CACHE)
            .with_lcores(max_lcore + 1);
        let bytes = cfg.total_num_mbufs * cfg.mbuf_size + (2 << 20);
        let dma = hw::dma::DmaMemory::allocate(bytes, hw::HugePageSize::Size2M).map_err(|e| {
            format!(
                "{} MiB of hugepage memory for {} mbufs: {e}",
                bytes >> 20,
                cfg.total_num_mbufs
            )
        })?;
        let pool = Pool::with_pages(dma, &pcfg).map_err(|e| format!("mbuf pool: {e}"))?;
        let human = Human(cfg.json);
        human.say(&format!(
            "testpmd: create a new mbuf pool <testpmd>: n={}, size={}, socket=0",
            cfg.total_num_mbufs, cfg.mbuf_size
        ));

        let pcfg = PortConfig {
            rx_queues: cfg.rxq,
            tx_queues: cfg.txq,
            rx_desc: cfg.rxd,
            tx_desc: cfg.txd,
            promiscuous: cfg.promisc,
            wait_for_link: false,
            // DPDK's testpmd asks for no receive offload unless told to.
            rx_offloads: RxOffloads {
                checksum: cfg.rx_cksum,
                rss_hash: false,
            },
            vlan_strip: cfg.vlan_strip,
            rss: RssConfig {
                hash_types: cfg.rss_types,
                ..RssConfig::default()
            },
            intr_conf: IntrConf {
                lsc: cfg.lsc_interrupt,
                rxq: cfg.rx_intr.is_some(),
                ..IntrConf::default()
            },
            ..PortConfig::default()
        };
        let pcfg = PortConfig {
            rx_free_thresh: cfg.rx_free_thresh.unwrap_or(pcfg.rx_free_thresh),
            tx_rs_thresh: cfg.tx_rs_thresh.unwrap_or(pcfg.tx_rs_thresh),
            tx_free_thresh: cfg.tx_free_thresh.unwrap_or(pcfg.tx_free_thresh),
            ..pcfg
        };
        let mut ports = Vec::new();
        for (i, addr) in cfg.ports.iter().enumerate() {
            human.say(&format!("Configuring Port {i} (socket 0)"));
            let port = match Port::open(addr, &pcfg, std::slice::from_ref(&pool)) {
                // Link events are a nicety: without MSI-X, poll the link.
                Err(e @ pmd::Error::Msix { .. }) if cfg.rx_intr.is_none() => {
                    log::warn!("{e}; link state change events off");
                    let mut p = pcfg.clone();
                    p.intr_conf.lsc = false;
                    Port::open(addr, &p, std::slice::from_ref(&pool))
                }
                r => r,
            }
            .map_err(|e| format!("port {i} ({addr}): {e}"))?;
            let mac = port.mac_addr();
            human.say(&format!(
                "Port {i}: {} ({} {}, {} RX / {} TX queues)",
                mac_text(mac),
                port.driver_name(),
                port.device_name(),
                port.rx_queue_count(),
                port.tx_queue_count()
            ));
            let c = counters(&port);
            ports.push(PortState {
                port: Arc::new(port),
                mac,
                promisc: cfg.promisc,
                allmulti: false,
                last_show: (Instant::now(), c),
                run_base: c,
                closed: false,
                reconfigured: false,
            });
        }
        human.say("Checking link statuses...");
        let deadline = Instant::now() + cfg.link_timeout;
        for (i, p) in ports.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.port.wait_for_link(left) {
                Ok(l) => human.say(&format!("Port {i}: link {l}")),
                Err(_) => human.say(&format!(
                    "Port {i}: link still down after {:.0} s; forwarding anyway",
                    cfg.link_timeout.as_secs_f64()
                )),
            }
        }
        human.say("Done");
        let telemetry = if cfg.telemetry {
            start_telemetry(&cfg.file_prefix, &ports, &pool)
        } else {
            None
        };
        let lsc = cfg.lsc_interrupt.then(|| {
            let events = ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.port.link_events().ok().map(|e| (i, e)))
                .collect();
            intr::LscWatcher::start(events, cfg.json)
        });

        let mut app = App {
            telemetry,
            mode: cfg.mode,
            capture: cfg.capture.clone(),
            retry_on: false,
            tx_retry: TxRetry::default(),
            csum: vec![CsumOffloads::default(); ports.len()],
            record_core_cycles: cfg.record_core_cycles,
            record_burst_stats: cfg.record_burst_stats,
            next_stats: None,
            lsc,
            pool,
            ports,
            idle: Vec::new(),
            running: None,
            cfg,
        };
        let mut rxq = HashMap::new();
        let mut txq = HashMap::new();
        for (i, p) in app.ports.iter().enumerate() {
            for q in 0..app.cfg.rxq {
                let r = p
                    .port
                    .take_rx_queue(q)
                    .map_err(|e| format!("port {i}: {e}"))?;
                rxq.insert((i, q), r);
            }
            for q in 0..app.cfg.txq {
                let t = p
                    .port
                    .take_tx_queue(q)
                    .map_err(|e| format!("port {i}: {e}"))?;
                txq.insert((i, q), t);
            }
        }
        app.idle = app.arrange(rxq, txq);
        Ok(app)
    }

    fn human(&self) -> Human {
        Human(self.cfg.json)
    }

    fn params(&self, spec: &StreamSpec) -> ModeParams {
        ModeParams {
            mode: self.mode,
            burst: usize::from(self.cfg.burst),
            rx_mac: self.ports[spec.rx_port].mac,
            tx_mac: self.ports[spec.tx_port].mac,
            tx_peer: self.cfg.peers[spec.tx_port].0,
            txpkts: self.cfg.txpkts.clone(),
            tx_ip: self.cfg.tx_ip,
            tx_udp: self.cfg.tx_udp,
            flows: self.cfg.flows,
            retry: self.retry_on.then_some(self.tx_retry),
            csum: self.csum[spec.tx_port],
            noisy: self.cfg.noisy,
            multi_flow: self.cfg.txonly_multi_flow,
            lcore: 0,
            record_cycles: self.record_core_cycles,
            record_bursts: self.record_burst_stats,
        }
    }

    /// Deals the queues into the current mode's streams and the streams
    /// over the forwarding lcores.
    fn arrange(
        &self,
        mut rxq: HashMap<(usize, u16), RxQueue>,
        mut txq: HashMap<(usize, u16), TxQueue>,
    ) -> Vec<LcoreWork> {
        let specs = engine::stream_specs(self.ports.len(), self.cfg.rxq, self.cfg.txq, self.mode);
        let mut work: Vec<LcoreWork> = self
            .cfg
            .fwd_lcores
            .iter()
            .map(|&lcore| LcoreWork {
                lcore,
                streams: Vec::new(),
                rx_intr: self.cfg.rx_intr,
                sleep: None,
            })
            .collect();
        let n = work.len();
        for (i, spec) in specs.into_iter().enumerate() {
            let rx = rxq.remove(&(spec.rx_port, spec.rx_queue));
            let tx = txq.remove(&(spec.tx_port, spec.tx_queue));
            let w = &mut work[engine::lcore_of_stream(i, n)];
            let params = ModeParams {
                lcore: w.lcore,
                ..self.params(&spec)
            };
            w.streams.push(Stream::new(spec, rx, tx, params));
        }
        work.retain(|w| !w.streams.is_empty());
        work
    }

    /// Re-deals the idle streams' queues for the current mode.
    fn rearrange(&mut self) {
        self.rearrange_with(HashMap::new(), HashMap::new());
    }

    /// As [`App::rearrange`], with queues just taken from a port added.
    fn rearrange_with(
        &mut self,
        mut rxq: HashMap<(usize, u16), RxQueue>,
        mut txq: HashMap<(usize, u16), TxQueue>,
    ) {
        for w in std::mem::take(&mut self.idle) {
            for s in w.streams {
                if let Some(r) = s.rx {
                    rxq.insert((s.spec.rx_port, s.spec.rx_queue), r);
                }
                if let Some(t) = s.tx {
                    txq.insert((s.spec.tx_port, s.spec.tx_queue), t);
                }
            }
        }
        self.idle = self.arrange(rxq, txq);
    }

    fn run(mut self) -> Result<(), String> {
        let result = if self.cfg.interactive {
            self.interactive()
        } else {
            self.batch()
        };
        self.shutdown();
        result
    }

    fn config_text(&self) -> String {
        let retry = if self.retry_on { " with retry" } else { "" };
        let mut s = format!(
            "{} packet forwarding{retry} - ports={} - cores={} - streams={} - packets/burst={}",
            self.mode,
            self.ports.len(),
            self.idle.len().max(1),
            self.idle.iter().map(|w| w.streams.len()).sum::<usize>(),
            self.cfg.burst
        );
        if self.retry_on {
            s.push_str(&format!(
                "\nTX retry num: {}, delay between TX retries: {}us",
                self.tx_retry.num, self.tx_retry.delay_us
            ));
        }
        if self.mode.generates() {
            s.push_str(&format!(
                "\n  frame length={} (segments {:?})",
                self.cfg.tx_frame_len(),
                self.cfg.txpkts
            ));
        }
        for w in &self.idle {
            s.push_str(&format!(
                "\nLogical Core {} forwards packets on {} streams:",
                w.lcore,
                w.streams.len()
            ));
            for st in &w.streams {
                let sp = st.spec;
                s.push_str(&format!(
                    "\n  RX P={}/Q={} -> TX P={}/Q={} peer={}",
                    sp.rx_port, sp.rx_queue, sp.tx_port, sp.tx_queue, self.cfg.peers[sp.tx_port]
                ));
            }
        }
        s
    }

    fn start(&mut self, tx_first: u32) -> Result<(), String> {
        if self.running.is_some() {
            self.human().say("Packet forwarding already started");
            return Ok(());
        }
        self.rearrange();
        let capture = match &self.capture {
            Some(c) => Some(Capture::start(c.port, &c.path).map_err(|e| e.to_string())?),
            None => None,
        };
        let mut live = Vec::new();
        for w in self.idle.iter_mut() {
            for s in w.streams.iter_mut() {
                s.counters = Arc::new(engine::StreamCounters::default());
                live.push((s.spec, s.counters.clone()));
                if let Some(c) = &capture {
                    s.capture_rx = (s.spec.rx_port == c.port).then(|| c.sink());
                    s.capture_tx = (s.spec.tx_port == c.port).then(|| c.sink());
                }
            }
        }
        for p in self.ports.iter_mut() {
            p.run_base = counters(&p.port);
        }
        self.human().say(&self.config_text());
        let work = std::mem::take(&mut self.idle);
        let started_cycles = engine::cycles_now();
        let running =
            engine::launch(work, self.pool.clone(), tx_first).map_err(|e| e.to_string())?;
        self.next_stats = self.cfg.stats_period.map(|p| Instant::now() + p);
        self.running = Some(RunState {
            running,
            started_cycles,
            started: Instant::now(),
            capture,
            live,
        });
        self.human().say("Forwarding started");
        Ok(())
    }

    /// Stops forwarding and prints the forward report. Errors of lcores
    /// that could not run are returned after the report.
    fn stop(&mut self) -> Result<(), String> {
        let Some(run) = self.running.take() else {
            self.human().say("Packet forwarding not started");
            return Ok(());
        };
        let h = self.human();
        h.say("Telling cores to stop...");
        let elapsed = run.started.elapsed();
        let (mut work, errors) = run.running.stop();
        let cycles_elapsed = engine::cycles_now().wrapping_sub(run.started_cycles);
        self.next_stats = None;
        h.say("Waiting for lcores to finish...");
        for w in work.iter_mut() {
            if let Some(r) = w.sleep.take() {
                h.say(&r.line(w.lcore));
            }
        }
        let np = self.ports.len();
        let mut fwd = vec![FwdCounters::default(); np];
        let mut bursts: Vec<(BurstSpread, BurstSpread)> = vec![Default::default(); np];
        let mut bad = vec![(0u64, 0u64); np];
        let mut busy_cycles = 0u64;
        let mut streams = Vec::new();
        for w in work.iter_mut() {
            for s in w.streams.iter_mut() {
                s.finish_run();
                let x = &s.extras;
                if let Some((rb, tb)) = &x.bursts {
                    bursts[s.spec.rx_port].0.add(rb);
                    bursts[s.spec.tx_port].1.add(tb);
                }
                bad[s.spec.rx_port].0 += x.bad_ip_csum;
                bad[s.spec.rx_port].1 += x.bad_l4_csum;
                busy_cycles = busy_cycles.wrapping_add(x.cycles);
                let r = s.report();
                let c = &r.counters;
                let rx = &mut fwd[r.rx_port];
                rx.rx_packets += c.rx_packets;
                rx.rx_bytes += c.rx_bytes;
                rx.rx_consumed += c.rx_consumed;
                let tx = &mut fwd[r.tx_port];
                tx.tx_packets += c.tx_packets;
                tx.tx_bytes += c.tx_bytes;
                tx.tx_dropped += c.tx_dropped;
                streams.push(r);
                s.capture_rx = None;
                s.capture_tx = None;
            }
        }
        self.idle = work;
        let ports: Vec<PortForward> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let dev = counters(&p.port).since(&p.run_base);
                let mut pf = PortForward::new(i, &fwd[i], &dev, elapsed);
                if self.mode == FwdMode::Csum {
                    pf.bad_ip_csum = Some(bad[i].0);
                    pf.bad_l4_csum = Some(bad[i].1);
                }
                if self.record_burst_stats {
                    let (rb, tb) = std::mem::take(&mut bursts[i]);
                    pf.rx_bursts = Some(rb);
                    pf.tx_bursts = Some(tb);
                }
                pf
            })
            .collect();
        let mut rep = ForwardReport::new(self.mode.name(), elapsed, ports, streams);
        if self.record_core_cycles {
            let packets = if self.mode.generates() {
                rep.total.tx_packets
            } else {
                rep.total.rx_packets
            };
            let us = elapsed.as_micros().max(1) as u64;
            rep.core_cycles = Some(CoreCycles {
                total_cycles: busy_cycles,
                packets,
                mhz: cycles_elapsed / us,
            });
        }
        if self.cfg.json {
            println!("{}", rep.json());
        }
        h.say(&rep.text());
        if let Some(c) = run.capture {
            finish_capture(h, c);
        }
        h.say("Done.");
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// `set capture` while forwarding: the lcores pause (their rings hold
    /// what arrives meanwhile), the old capture file is closed, the new
    /// one is attached to the streams, and the lcores go on with their
    /// counters.
    fn recapture(&mut self) -> Result<(), String> {
        let Some(run) = self.running.take() else {
            return Ok(());
        };
        let h = self.human();
        let RunState {
            running,
            started,
            started_cycles,
            capture: old,
            live,
        } = run;
        let (mut work, errors) = running.stop();
        if let Some(c) = old {
            finish_capture(h, c);
        }
        if !errors.is_empty() {
            self.idle = work;
            return Err(errors.join("; "));
        }
        let capture = match self.capture.take() {
            Some(c) => match Capture::start(c.port, &c.path) {
                Ok(cap) => {
                    self.capture = Some(c);
                    Some(cap)
                }
                Err(e) => {
                    h.say(&format!("Capture of port {}: {e}", c.port));
                    None
                }
            },
            None => None,
        };
        for w in work.iter_mut() {
            for s in w.streams.iter_mut() {
                s.capture_rx = capture
                    .as_ref()
                    .filter(|c| c.port == s.spec.rx_port)
                    .map(Capture::sink);
                s.capture_tx = capture
                    .as_ref()
                    .filter(|c| c.port == s.spec.tx_port)
                    .map(Capture::sink);
            }
        }
        let running = engine::launch(work, self.pool.clone(), 0).map_err(|e| e.to_string())?;
        self.running = Some(RunState {
            running,
            started,
            started_cycles,
            capture,
            live,
        });
        Ok(())
    }

    /// Packets the streams have handled this run (received; sent when
    /// generating).
    fn handled(&self) -> u64 {
        let generating = self.mode.generates();
        self.running.as_ref().map_or(0, |r| {
            r.live
                .iter()
                .map(|(_, c)| {
                    let s = c.snapshot();
                    if generating {
                        s.tx_packets
                    } else {
                        s.rx_packets
                    }
                })
                .sum()
        })
    }

    fn batch(&mut self) -> Result<(), String> {
        install_signal_handlers();
        self.run_cmdline_files();
        self.start(self.cfg.tx_first)?;
        let h = self.human();
        let mut why = "signal";
        // As DPDK's testpmd: Enter stops a run without --stats-period. An
        // end of input does not (scripts run it with stdin closed or
        // /dev/null and stop it with a signal or a stop condition).
        let enter = if self.cfg.stats_period.is_none() {
            h.say("Press enter to exit");
            Some(stdin_lines())
        } else {
            None
        };
        match (
            self.cfg.duration,
            self.cfg.max_packets,
            self.cfg.idle_timeout,
        ) {
            (None, None, None) => h.say("Press Ctrl-C to stop forwarding"),
            (d, n, i) => {
                let mut parts = Vec::new();
                if let Some(d) = d {
                    parts.push(format!("after {:.1} s", d.as_secs_f64()));
                }
                if let Some(n) = n {
                    parts.push(format!("after {n} packets"));
                }
                if let Some(i) = i {
                    parts.push(format!("after {:.1} s without traffic", i.as_secs_f64()));
                }
                h.say(&format!("Forwarding stops {}", parts.join(" or ")));
            }
        }
        let started = Instant::now();
        let mut next_stats = self.cfg.stats_period.map(|p| started + p);
        let mut last_count = 0u64;
        let mut last_change = started;
        let mut seen_traffic = false;
        loop {
            std::thread::sleep(Duration::from_millis(5));
            if SIGNALLED.load(Ordering::Relaxed) {
                break;
            }
            if enter
                .as_ref()
                .is_some_and(|rx| matches!(rx.try_recv(), Ok(Some(_))))
            {
                why = "enter pressed";
                break;
            }
            if self
                .running
                .as_ref()
                .is_some_and(|r| r.running.any_finished())
            {
                why = "an lcore stopped";
                break;
            }
            let now = Instant::now();
            let count = self.handled();
            if count != last_count {
                last_count = count;
                last_change = now;
                seen_traffic = true;
            }
            if self.cfg.duration.is_some_and(|d| now - started >= d) {
                why = "duration reached";
                break;
            }
            if self.cfg.max_packets.is_some_and(|n| count >= n) {
                why = "packet count reached";
                break;
            }
            if seen_traffic
                && self
                    .cfg
                    .idle_timeout
                    .is_some_and(|i| now - last_change >= i)
            {
                why = "no traffic";
                break;
            }
            if let (Some(at), Some(p)) = (next_stats, self.cfg.stats_period)
                && now >= at
            {
                self.periodic(now - started);
                next_stats = Some(at + p);
            }
        }
        h.say(&format!("Stopping forwarding ({why})"));
        self.stop()
    }

    /// One `--stats-period` sample: every port's counters and rates.
    fn periodic(&mut self, elapsed: Duration) {
        let samples: Vec<PortSample> = (0..self.ports.len()).map(|i| self.sample(i)).collect();
        if self.cfg.json {
            println!("{}", report::stats_json(elapsed, &samples));
        } else {
            for s in &samples {
                self.human()
                    .say(&report::port_stats_text(s.port, &s.counters, &s.rates));
            }
        }
    }

    /// Port `i`'s counters and the rates since the previous sample.
    fn sample(&mut self, i: usize) -> PortSample {
        let p = &mut self.ports[i];
        let now = Instant::now();
        let c = counters(&p.port);
        let d = c.since(&p.last_show.1);
        let rates = Rates::of(
            d.rx_packets,
            d.rx_bytes,
            d.tx_packets,
            d.tx_bytes,
            now - p.last_show.0,
        );
        p.last_show = (now, c);
        PortSample {
            port: i,
            counters: c,
            rates,
        }
    }

    /// Runs `--cmdline-file` commands, echoed after the prompt as DPDK
    /// does. A `quit` ends that file; a file that cannot be read is
    /// reported and skipped, as DPDK does.
    fn run_cmdline_files(&mut self) {
        let h = self.human();
        for f in self.cfg.cmdline_files.clone() {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("Failed to process cmdline file: {} ({e})", f.display());
                    continue;
                }
            };
            for line in text.lines() {
                h.say(&format!("testpmd> {}", line.trim_end()));
                if !self.line(line) {
                    break;
                }
            }
            h.say(&format!("Read CLI commands from {}", f.display()));
        }
    }

    /// One prompt line; false for quit.
    fn line(&mut self, line: &str) -> bool {
        let h = self.human();
        match cli::parse(line) {
            Ok(Command::Quit) => return false,
            Ok(c) => {
                if let Err(e) = self.command(c) {
                    h.say(&format!("Error: {e}"));
                }
            }
            Err(e) => h.say(&format!("Bad arguments: {e}")),
        }
        true
    }

    fn interactive(&mut self) -> Result<(), String> {
        let h = self.human();
        self.run_cmdline_files();
        if self.cfg.auto_start {
            self.start(0)?;
        }
        let echo = !std::io::stdin().is_terminal();
        let lines = stdin_lines();
        h.prompt();
        loop {
            // Wait for a line, printing --stats-period samples meanwhile.
            let got = match self.next_stats {
                Some(at) => lines.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let line = match got {
                Ok(Some(l)) => l,
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    h.say("");
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let (Some(at), Some(p), Some(run)) =
                        (self.next_stats, self.cfg.stats_period, &self.running)
                    {
                        let elapsed = run.started.elapsed();
                        self.periodic(elapsed);
                        self.next_stats = Some(at + p);
                    }
                    continue;
                }
            };
            if echo {
                h.say(line.trim_end());
            }
            if !self.line(&line) {
                break;
            }
            h.prompt();
        }
        if self.running.is_some() {
            self.stop()?;
        }
        Ok(())
    }

    fn command(&mut self, c: Command) -> Result<(), String> {
        let h = self.human();
        let n = self.ports.len();
        match c {
            Command::Nothing | Command::Quit => {}
            Command::Help => {
                h.say(&format!("{}\n{}", cli::HELP, portcmd::HELP));
                h.say(super::flow::HELP);
            }
            Command::Flow(f) => {
                let ports: Vec<&Port> = self.ports.iter().map(|p| &*p.port).collect();
                for line in super::flow::execute(&f, &ports) {
                    h.say(&line);
                }
            }
            Command::Start | Command::StartTxFirst(_) if !self.all_ports_started() => {
                h.say("Not all ports were started")
            }
            Command::Start => self.start(0)?,
            Command::StartTxFirst(n) => self.start(n)?,
            Command::Port(c) => self.port_command(c)?,
            Command::Stop => self.stop()?,
            Command::ShowConfigFwd => h.say(&self.config_text()),
            Command::ShowPort(what, sel) => {
                for i in sel.ports(n)? {
                    match what {
                        ShowWhat::Info => h.say(&report::port_info_text(&self.info(i))),
                        ShowWhat::Stats => {
                            let s = self.sample(i);
                            h.say(&report::port_stats_text(i, &s.counters, &s.rates));
                        }
                        ShowWhat::Xstats => {
                            let x: Vec<(String, u64)> = self.ports[i]
                                .port
                                .xstats()
                                .into_iter()
                                .map(|x| (x.name, x.value))
                                .collect();
                            h.say(&report::xstats_text(i, &x));
                        }
                    }
                }
            }
            Command::ClearPortStats(sel) => {
                for i in sel.ports(n)? {
                    let p = &mut self.ports[i];
                    p.port.reset_stats();
                    p.last_show = (Instant::now(), PortCounters::default());
                    p.run_base = PortCounters::default();
                    h.say(&format!("\n  NIC statistics for port {i} cleared"));
                }
            }
            Command::SetFwd(m, retry) => {
                if self.running.is_some() {
                    return Err("stop forwarding before changing the mode".into());
                }
                self.mode = m;
                self.retry_on = retry;
                self.rearrange();
                let with = if retry { " with retry" } else { "" };
                h.say(&format!("Set {m} packet forwarding mode{with}"));
            }
            Command::SetBurstTx { delay_us, retry } => {
                if self.running.is_some() {
                    return Err("stop forwarding before changing the TX retry".into());
                }
                self.tx_retry = TxRetry {
                    delay_us,
                    num: retry,
                };
            }
            Command::CsumSet { layer, hw, port } => {
                PortSel::One(port).ports(n)?;
                if self.running.is_some() {
                    return Err(format!(
                        "Please stop forwarding before changing port {port}'s checksum offloads"
                    ));
                }
                if let Err(e) = self.csum[port].set(layer, hw)
                    && hw
                {
                    h.say(&format!("{e} by port {port}"));
                }
                h.say(&self.csum[port].show());
            }
            Command::CsumShow(port) => {
                PortSel::One(port).ports(n)?;
                h.say(&self.csum[port].show());
            }
            Command::SetRecordCoreCycles(on) => {
                if self.running.is_some() {
                    return Err("stop forwarding first".into());
                }
                self.record_core_cycles = on;
            }
            Command::SetRecordBurstStats(on) => {
                if self.running.is_some() {
                    return Err("stop forwarding first".into());
                }
                self.record_burst_stats = on;
            }
            Command::SetPromisc(sel, on) => {
                for i in sel.ports(n)? {
                    self.ports[i].port.set_promiscuous(on);
                    self.ports[i].promisc = on;
                }
            }
            Command::SetAllmulti(sel, on) => {
                for i in sel.ports(n)? {
                    self.ports[i].port.set_allmulti(on);
                    self.ports[i].allmulti = on;
                }
            }
            Command::SetCapture { port, path } => {
                PortSel::One(port).ports(n)?;
                let shown = path.display().to_string();
                self.capture = Some(CaptureSpec { port, path });
                if self.running.is_some() {
                    self.recapture()?;
                    h.say(&format!("Capture of port {port} to {shown} from now on"));
                } else {
                    h.say(&format!(
                        "Capture of port {port} to {shown} from the next start"
                    ));
                }
            }
            Command::CaptureOff => {
                self.capture = None;
                if self.running.is_some() {
                    self.recapture()?;
                    h.say("Capture off");
                } else {
                    h.say("Capture off from the next start");
                }
            }
        }
        Ok(())
    }

    fn info(&self, i: usize) -> PortInfo {
        let p = &self.ports[i];
        let l = p.port.link();
        let pc = p.port.config();
        PortInfo {
            port: i,
            pci: p.port.pci_address().to_string(),
            driver: p.port.driver_name().to_string(),
            mac: mac_text(p.mac),
            link_up: l.up,
            speed_mbps: l.speed,
            full_duplex: l.full_duplex,
            flow_control: l.flow_control.to_string(),
            promisc: p.promisc,
            allmulti: p.allmulti,
            mtu: u32::from(pc.mtu),
            rxq: pc.rx_queues,
            txq: pc.tx_queues,
            rxd: pc.rx_desc,
            txd: pc.tx_desc,
            started: !p.closed && p.port.is_started(),
            rx_offloads: p.port.rx_offloads().join(" "),
        }
    }

    /// Stops forwarding if it runs, gives every queue back, closes the ports.
    fn shutdown(&mut self) {
        if self.running.is_some()
            && let Err(e) = self.stop()
        {
            eprintln!("testpmd: {e}");
        }
        let h = self.human();
        self.lsc = None;
        // Dropping the queues disables them and returns their buffers.
        self.idle.clear();
        // The telemetry threads end first: they hold the ports too.
        self.telemetry = None;
        for (i, p) in self.ports.drain(..).enumerate() {
            h.say(&format!("Stopping port {i}..."));
            match Arc::try_unwrap(p.port) {
                Ok(port) => port.close(),
                Err(port) => port.close_in_place(),
            }
        }
        h.say(&format!(
            "Closing ports... Done\nPool: {} of {} mbufs in use after close",
            self.pool.in_use(),
            self.cfg.total_num_mbufs
        ));
        h.say("Bye...");
    }
}

/// Serves DPDK's telemetry v2 socket for `prefix` over the ports and the
/// pool, from threads of its own (they read what `show port stats` reads;
/// the forwarding lcores are not involved). A socket that cannot be
/// served is a warning, not a failure of the run.
fn start_telemetry(
    prefix: &str,
    ports: &[PortState],
    pool: &Arc<Pool>,
) -> Option<pmd::telemetry::Server> {
    let served = pmd::telemetry::serve(
        prefix,
        &format!("e1k-pmd {}", env!("CARGO_PKG_VERSION")),
        ports.iter().map(|p| p.port.clone()).collect(),
        vec![pool.clone()],
    );
    match served {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "testpmd: no telemetry socket in {}: {e} (continuing without)",
                pmd::telemetry::runtime_dir(prefix).display()
            );
            None
        }
    }
}

/// Closes a capture and says what it wrote.
fn finish_capture(h: Human, c: Capture) {
    let (port, path) = (c.port, c.path().display().to_string());
    match c.finish() {
        Ok(s) => h.say(&format!(
            "Capture of port {port}: {} frames written to {path}, {} not captured",
            s.written, s.missed
        )),
        Err(e) => h.say(&format!("Capture of port {port}: {e}")),
    }
}

/// Lines of stdin, read by a thread; `None` once at the end of input.
fn stdin_lines() -> Receiver<Option<String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) => {
                        if tx.send(Some(l)).is_err() {
                            return;
                        }
                    }
                    // A closed stdin (`<&-`) is an end of input, not a fault.
                    Err(e) => {
                        log::debug!("reading stdin: {e}");
                        break;
                    }
                }
            }
            let _ = tx.send(None);
        });
    if let Err(e) = spawned {
        log::warn!("no stdin reader thread: {e}");
    }
    rx
}

/// Where human text goes: stdout, or stderr when stdout carries JSON.
#[derive(Clone, Copy)]
struct Human(bool);

impl Human {
    fn say(&self, s: &str) {
        if self.0 {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }

    fn prompt(&self) {
        if self.0 {
            eprint!("testpmd> ");
            let _ = std::io::stderr().flush();
        } else {
            print!("testpmd> ");
            let _ = std::io::stdout().flush();
        }
    }
}
