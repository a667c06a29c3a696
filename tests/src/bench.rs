//! The bench's arithmetic and output: per-run samples, medians, the
//! ours/DPDK ratio, the table, the JSON and the SVG chart. The guest side
//! and the run order live in `bin/bench.rs`; this is what its host tests
//! check.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Write as _;
use std::path::Path;

/// Which testpmd forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// The project's testpmd.
    Ours,
    /// DPDK's dpdk-testpmd.
    Dpdk,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::Dpdk => "dpdk",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub imp: Impl,
    /// Frames forwarded back per second, in thousands.
    pub kpps: f64,
    /// Counted frames sent.
    pub sent: u64,
    /// Counted frames never received.
    pub lost: u64,
    /// Why the run failed (the generator timed out, testpmd did not
    /// forward or had to be killed); a failed run's figures are left out
    /// of the medians and counted in the table's `failed` column.
    pub error: Option<String>,
}

/// Median of `v` (the mean of the middle two for an even count); `None` when empty
/// or when a value is not a number.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// One implementation's figures in one case.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Lost over sent, all runs, in percent.
    pub loss_pct: f64,
    /// Runs that count (not failed).
    pub runs: usize,
    /// Runs that failed.
    pub failed: usize,
}

impl Side {
    /// The figures of `imp`'s samples; `None` when it has none.
    pub fn of(samples: &[Sample], imp: Impl) -> Option<Side> {
        let ok = || samples.iter().filter(|s| s.imp == imp && s.error.is_none());
        let v: Vec<f64> = ok().map(|s| s.kpps).collect();
        let median = median(&v)?;
        let failed = samples
            .iter()
            .filter(|s| s.imp == imp && s.error.is_some())
            .count();
        let (sent, lost) = ok().fold((0u64, 0u64), |(a, b), s| (a + s.sent, b + s.lost));
        Some(Side {
            median,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            loss_pct: if sent > 0 {
                100.0 * lost as f64 / sent as f64
            } else {
                0.0
            },
            runs: v.len(),
            failed,
        })
    }
}

/// One case's result: both sides and the ratio of the medians.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// e.g. `igb-e1000e:32`.
    pub case: String,
    pub ours: Side,
    pub dpdk: Side,
}

impl CaseResult {
    /// Summarises a case; `None` unless both sides have samples.
    pub fn of(case: &str, samples: &[Sample]) -> Option<CaseResult> {
        Some(CaseResult {
            case: case.to_string(),
            ours: Side::of(samples, Impl::Ours)?,
            dpdk: Side::of(samples, Impl::Dpdk)?,
        })
    }

    /// Median ours over median DPDK; `None` when DPDK's median is zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.dpdk.median > 0.0).then(|| self.ours.median / self.dpdk.median)
    }
}

/// The table the bench prints (and the README quotes).
pub fn table(results: &[CaseResult]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| case | ours kpps (median) | DPDK kpps (median) | ours/DPDK | ours min-max | DPDK min-max | loss ours / DPDK | pairs | failed ours / DPDK |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let ratio = r.ratio().map_or("-".to_string(), |x| format!("{x:.2}"));
        let _ = writeln!(
            t,
            "| {} | {:.1} | {:.1} | {} | {:.1}-{:.1} | {:.1}-{:.1} | {:.3}% / {:.3}% | {} | {} / {} |",
            r.case,
            r.ours.median,
            r.dpdk.median,
            ratio,
            r.ours.min,
            r.ours.max,
            r.dpdk.min,
            r.dpdk.max,
            r.ours.loss_pct,
            r.dpdk.loss_pct,
            r.ours.runs.min(r.dpdk.runs),
            r.ours.failed,
            r.dpdk.failed
        );
    }
    t
}

fn side_json(s: &Side) -> serde_json::Value {
    serde_json::json!({
        "median_kpps": s.median, "min_kpps": s.min, "max_kpps": s.max,
        "loss_pct": s.loss_pct, "runs": s.runs, "failed": s.failed,
    })
}

/// The JSON file: the settings given in `meta`, every case's summary and
/// every run's sample (`samples` per case, in run order).
pub fn json(
    meta: serde_json::Value,
    results: &[CaseResult],
    samples: &[(String, Vec<Sample>)],
) -> serde_json::Value {
    let cases: Vec<_> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "case": r.case, "ratio": r.ratio(),
                "ours": side_json(&r.ours), "dpdk": side_json(&r.dpdk),
            })
        })
        .collect();
    let runs: Vec<_> = samples
        .iter()
        .flat_map(|(case, v)| {
            v.iter().map(move |s| {
                serde_json::json!({
                    "case": case, "impl": s.imp.name(), "kpps": s.kpps,
                    "sent": s.sent, "lost": s.lost, "error": s.error,
                })
            })
        })
        .collect();
    serde_json::json!({ "meta": meta, "cases": cases, "runs": runs })
}

/// Draws the grouped bar chart (median kpps per case, ours and DPDK side by
/// side, min-max whiskers) into an SVG file.
pub fn chart(results: &[CaseResult], title: &str, path: &Path) -> Result<(), String> {
    let n = results.len().max(1);
    let ymax = results
        .iter()
        .map(|r| r.ours.max.max(r.dpdk.max))
        .fold(1.0f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (160 * n as u32 + 200, 420)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("kpps (median)")
        .draw()
        .map_err(|x| e(&x))?;
    let ours = RGBColor(0x1f, 0x77, 0xb4);
    let dpdk = RGBColor(0xff, 0x7f, 0x0e);
    for (i, r) in results.iter().enumerate() {
        let x = i as f64;
        for (side, off, col) in [(&r.ours, 0.15, ours), (&r.dpdk, 0.5, dpdk)] {
            c.draw_series(std::iter::once(Rectangle::new(
                [(x + off, 0.0), (x + off + 0.35, side.median)],
                col.filled(),
            )))
            .map_err(|x| e(&x))?;
            let mid = x + off + 0.175;
            c.draw_series(std::iter::once(PathElement::new(
                vec![(mid, side.min), (mid, side.max)],
                BLACK.stroke_width(2),
            )))
            .map_err(|x| e(&x))?;
        }
        if let Some(q) = r.ratio() {
            c.draw_series(std::iter::once(Text::new(
                format!("{q:.2}x"),
                (x + 0.4, r.ours.max.max(r.dpdk.max) * 1.02 + ymax * 0.04),
                ("sans-serif", 13),
            )))
            .map_err(|x| e(&x))?;
        }
    }
    // Case names under the axis, centred under each pair of bars.
    for (i, r) in results.iter().enumerate() {
        let (px, py) = c.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            r.case.clone(),
            (px, py + 10),
            ("sans-serif", 13)
                .into_text_style(&root)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(|x| e(&x))?;
    }
    for (label, col) in [("ours", ours), ("DPDK testpmd", dpdk)] {
        c.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (0.0, 0.0)],
            col.filled(),
        )))
        .map_err(|x| e(&x))?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], col.filled()));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(imp: Impl, kpps: f64, sent: u64, lost: u64) -> Sample {
        Sample {
            imp,
            kpps,
            sent,
            lost,
            error: None,
        }
    }

    #[test]
    fn failed_runs_stay_out_of_the_medians_and_are_counted() {
        let mut bad = s(Impl::Dpdk, 0.0, 10, 10);
        bad.error = Some("generator: send timed out".into());
        let v = [
            s(Impl::Dpdk, 100.0, 1000, 0),
            bad.clone(),
            s(Impl::Ours, 90.0, 1000, 0),
        ];
        let r = CaseResult::of("igb:8", &v).unwrap();
        assert_eq!(r.dpdk.median, 100.0);
        assert_eq!((r.dpdk.runs, r.dpdk.failed), (1, 1));
        assert_eq!(r.dpdk.loss_pct, 0.0, "a failed run's loss is not the NIC's");
        assert!(
            table(std::slice::from_ref(&r))
                .lines()
                .nth(2)
                .unwrap()
                .ends_with("| 1 | 0 / 1 |")
        );
        let j = json(serde_json::json!({}), &[r], &[("igb:8".into(), v.to_vec())]);
        assert_eq!(j["runs"][1]["error"], "generator: send timed out");
        assert_eq!(j["cases"][0]["dpdk"]["failed"], 1);
        // Only failed runs on one side: no result for the case.
        assert!(CaseResult::of("x", &[bad, s(Impl::Ours, 1.0, 1, 0)]).is_none());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn a_case_keeps_the_sides_apart_and_divides_the_medians() {
        let v = [
            s(Impl::Dpdk, 100.0, 1000, 0),
            s(Impl::Ours, 50.0, 1000, 10),
            s(Impl::Dpdk, 120.0, 1000, 0),
            s(Impl::Ours, 70.0, 1000, 0),
            s(Impl::Dpdk, 80.0, 1000, 0),
            s(Impl::Ours, 60.0, 1000, 0),
        ];
        let r = CaseResult::of("igb:32", &v).unwrap();
        assert_eq!(r.ours.median, 60.0);
        assert_eq!(r.dpdk.median, 100.0);
        assert_eq!((r.ours.min, r.ours.max), (50.0, 70.0));
        assert_eq!((r.dpdk.min, r.dpdk.max), (80.0, 120.0));
        assert!((r.ratio().unwrap() - 0.6).abs() < 1e-12);
        assert!((r.ours.loss_pct - 10.0 / 30.0).abs() < 1e-12);
        assert_eq!(r.dpdk.loss_pct, 0.0);
        assert_eq!(r.ours.runs, 3);
    }

    #[test]
    fn a_case_without_one_side_or_with_zero_dpdk_has_no_ratio() {
        assert!(CaseResult::of("x", &[s(Impl::Ours, 1.0, 1, 0)]).is_none());
        let r = CaseResult::of("x", &[s(Impl::Ours, 1.0, 1, 0), s(Impl::Dpdk, 0.0, 0, 0)]);
        assert_eq!(r.unwrap().ratio(), None);
    }

    #[test]
    fn the_table_has_a_row_per_case_with_the_ratio() {
        let v = [s(Impl::Ours, 45.0, 100, 1), s(Impl::Dpdk, 90.0, 100, 0)];
        let r = CaseResult::of("e1000e:8", &v).unwrap();
        let t = table(&[r]);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 3, "{t}");
        assert_eq!(
            rows[2],
            "| e1000e:8 | 45.0 | 90.0 | 0.50 | 45.0-45.0 | 90.0-90.0 | 1.000% / 0.000% | 1 | 0 / 0 |"
        );
    }

    #[test]
    fn the_json_and_the_chart_carry_every_case() {
        let v = vec![s(Impl::Ours, 45.0, 100, 1), s(Impl::Dpdk, 90.0, 100, 0)];
        let r = CaseResult::of("igb:1", &v).unwrap();
        let j = json(
            serde_json::json!({"seconds": 5}),
            std::slice::from_ref(&r),
            &[("igb:1".into(), v)],
        );
        assert_eq!(j["cases"][0]["ratio"], 0.5);
        assert_eq!(j["runs"].as_array().unwrap().len(), 2);
        assert_eq!(j["runs"][1]["impl"], "dpdk");
        let path = std::env::temp_dir().join(format!("bench-test-{}.svg", std::process::id()));
        chart(&[r], "t", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("igb:1") && svg.contains("0.50x"), "{svg}");
    }
}

/// Guest instructions per forwarded packet, from the `insn` TCG plugin
/// (tests/plugin/insn.c) on the forwarding vCPU.
pub mod insns {
    use std::collections::HashMap;

    /// The first kernel address on x86-64: TBs at or above it are the guest
    /// kernel's (timer ticks, interrupts) and are left out.
    pub const KERNEL_START: u64 = 0xffff_8000_0000_0000;

    /// One `dump V` answer: the vCPU's instruction total and the execution
    /// count of each TB, keyed by (guest address, instructions in the TB).
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Dump {
        pub total: u64,
        pub tbs: HashMap<(u64, u64), u64>,
    }

    /// Parses a `dump`/`snap` answer (`vcpu V insns N`, `tb ADDR N COUNT`
    /// lines, `end`); an answer without its `end` or with an `error` line is
    /// an error.
    pub fn parse_dump(text: &str) -> Result<Dump, String> {
        let mut d = Dump::default();
        let mut ended = false;
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["vcpu", _, "insns", n] => {
                    d.total = n
                        .parse()
                        .map_err(|_| format!("plugin: bad line {line:?}"))?
                }
                ["tb", a, n, c] => {
                    let bad = || format!("plugin: bad line {line:?}");
                    let a = u64::from_str_radix(a, 16).map_err(|_| bad())?;
                    let n = n.parse().map_err(|_| bad())?;
                    let c = c.parse().map_err(|_| bad())?;
                    d.tbs.insert((a, n), c);
                }
                ["end"] => ended = true,
                [] => {}
                _ => return Err(format!("plugin: {line}")),
            }
        }
        if !ended {
            return Err("plugin: the answer has no end line".into());
        }
        Ok(d)
    }

    /// Per-TB executions between two dumps (user-space TBs only).
    pub fn delta(before: &Dump, after: &Dump) -> HashMap<(u64, u64), u64> {
        after
            .tbs
            .iter()
            .filter(|((a, _), _)| *a < KERNEL_START)
            .filter_map(|(k, &c)| {
                let d = c.saturating_sub(before.tbs.get(k).copied().unwrap_or(0));
                (d > 0).then_some((*k, d))
            })
            .collect()
    }

    /// User-space instructions executed in a delta.
    pub fn user_insns(d: &HashMap<(u64, u64), u64>) -> u64 {
        d.iter().map(|((_, n), c)| n * c).sum()
    }

    /// The execution count most of the code shares, weighting each TB by
    /// its instructions, with TBs within 1 % of each other taken as one
    /// (dumps are read while the vCPU runs). In a poll loop that is the
    /// number of polls: every TB of the loop runs once per poll. Returns
    /// the count and the TBs that have it.
    pub fn polls(d: &HashMap<(u64, u64), u64>) -> Option<(u64, Vec<(u64, u64)>)> {
        let mut v: Vec<((u64, u64), u64)> = d.iter().map(|(k, c)| (*k, *c)).collect();
        v.sort_by_key(|(_, c)| *c);
        let (mut best, mut best_w, mut lo, mut w) = (None, 0u64, 0usize, 0u64);
        // Two pointers: the window of counts within 1 % below v[hi].
        for hi in 0..v.len() {
            w += v[hi].0.1;
            while (v[lo].1 as f64) < v[hi].1 as f64 * 0.99 {
                w -= v[lo].0.1;
                lo += 1;
            }
            if w > best_w {
                best_w = w;
                best = Some((lo, hi));
            }
        }
        let (lo, hi) = best?;
        let group = &v[lo..=hi];
        // The instruction-weighted median count of the group.
        let half = group.iter().map(|((_, n), _)| n).sum::<u64>() / 2;
        let mut acc = 0;
        let count = group
            .iter()
            .find(|((_, n), _)| {
                acc += n;
                acc > half
            })
            .map_or(group[0].1, |(_, c)| *c);
        Some((count, group.iter().map(|(k, _)| *k).collect()))
    }

    /// The figure and how it was made.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Figure {
        /// Instructions per forwarded packet beyond the idle poll loop.
        pub per_packet: f64,
        /// User instructions per idle poll (the loop with nothing received).
        pub per_idle_poll: f64,
        /// Polls in the loaded window.
        pub polls: u64,
        /// User instructions in the loaded window.
        pub insns: u64,
        pub frames: u64,
    }

    /// From an idle window (no traffic) and a loaded window (`frames`
    /// forwarded): the idle window gives the polls P_i and the user
    /// instructions U_i, so one poll costs E = U_i / P_i; the TBs that ran
    /// once per idle poll, counted again over the loaded window, give its
    /// polls P_l; then per packet = (U_l - E * P_l) / frames. Every poll,
    /// empty or not, is charged its loop cost E, so what is left is the
    /// work the packets added (RX descriptors, TX, refill, doorbells).
    pub fn figure(
        idle: &HashMap<(u64, u64), u64>,
        loaded: &HashMap<(u64, u64), u64>,
        frames: u64,
    ) -> Result<Figure, String> {
        let (p_idle, loop_tbs) = polls(idle).ok_or("no user code ran in the idle window")?;
        let e = user_insns(idle) as f64 / p_idle as f64;
        let marks: HashMap<(u64, u64), u64> = loop_tbs
            .iter()
            .filter_map(|k| loaded.get(k).map(|c| (*k, *c)))
            .collect();
        let (p_loaded, _) =
            polls(&marks).ok_or("the poll loop did not run in the loaded window")?;
        if frames == 0 {
            return Err("no frame was forwarded in the loaded window".into());
        }
        let u = user_insns(loaded);
        Ok(Figure {
            per_packet: (u as f64 - e * p_loaded as f64) / frames as f64,
            per_idle_poll: e,
            polls: p_loaded,
            insns: u,
            frames,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_dump_parses_and_a_bad_one_does_not() {
            let d = parse_dump("vcpu 1 insns 1234\ntb 401000 5 10\ntb ffffffff81000000 3 7\nend\n")
                .unwrap();
            assert_eq!(d.total, 1234);
            assert_eq!(d.tbs[&(0x401000, 5)], 10);
            assert_eq!(d.tbs.len(), 2);
            assert!(parse_dump("vcpu 1 insns 5\n").is_err(), "no end");
            assert!(parse_dump("error: expected 'dump V'\nend\n").is_err());
            assert!(parse_dump("tb zz 1 1\nend\n").is_err());
        }

        /// A synthetic poll loop: TBs A (10 insns) and B (6) run once per
        /// poll, C (4) only when the poll is empty, D (100) once per packet,
        /// K a kernel TB; `polls` polls of which `busy` forwarded `per` each.
        fn window(polls: u64, busy: u64, per: u64) -> HashMap<(u64, u64), u64> {
            let mut m = HashMap::new();
            m.insert((0x1000, 10), polls);
            m.insert((0x2000, 6), polls);
            m.insert((0x3000, 4), polls - busy);
            if busy > 0 {
                m.insert((0x4000, 100), busy * per);
            }
            m
        }

        #[test]
        fn the_figure_charges_each_poll_its_loop_cost() {
            let idle = window(1_000_000, 0, 0);
            let (p, tbs) = polls(&idle).unwrap();
            assert_eq!(p, 1_000_000);
            assert_eq!(tbs.len(), 3);
            // 300 000 polls, 10 000 of them forwarding 32 packets each.
            let loaded = window(300_000, 10_000, 32);
            let f = figure(&idle, &loaded, 320_000).unwrap();
            assert_eq!(f.per_idle_poll, 20.0);
            assert_eq!(f.polls, 300_000);
            // 100 per packet, less the 4-instruction empty branch the busy
            // polls skipped (4 / 32 per packet).
            assert!((f.per_packet - (100.0 - 4.0 / 32.0)).abs() < 1e-9, "{f:?}");
        }

        #[test]
        fn kernel_tbs_and_jitter_do_not_move_it() {
            let before = Dump::default();
            let mut after = Dump::default();
            after.tbs.insert((0x1000, 10), 1_000_000);
            after.tbs.insert((0x2000, 6), 1_000_300); // read a moment later
            after.tbs.insert((KERNEL_START + 5, 50), 1000);
            let d = delta(&before, &after);
            assert_eq!(d.len(), 2);
            assert_eq!(user_insns(&d), 10_000_000 + 6_001_800);
            let (p, _) = polls(&d).unwrap();
            assert_eq!(p, 1_000_000);
            assert!(figure(&d, &HashMap::new(), 1).is_err());
        }
    }
}

/// Register reads and writes per forwarded packet, from QEMU's trace of
/// the e1000e_core_read / e1000e_core_write events (igb's too).
pub mod mmio {
    use crate::trace::{Access, Event, reg_name};
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Counts {
        pub writes: u64,
        pub reads: u64,
        /// Writes and reads by register name.
        pub by_reg: BTreeMap<String, (u64, u64)>,
        pub frames: u64,
    }

    impl Counts {
        pub fn of(events: &[Event], frames: u64) -> Counts {
            let mut c = Counts {
                frames,
                ..Counts::default()
            };
            for e in events {
                let (off, w) = match e.access {
                    Access::Write { off, .. } => (off, true),
                    Access::Read { off, .. } => (off, false),
                    _ => continue,
                };
                let r = c.by_reg.entry(reg_name(off)).or_default();
                if w {
                    c.writes += 1;
                    r.0 += 1;
                } else {
                    c.reads += 1;
                    r.1 += 1;
                }
            }
            c
        }

        fn per(&self, n: u64) -> f64 {
            if self.frames == 0 {
                0.0
            } else {
                n as f64 / self.frames as f64
            }
        }

        pub fn writes_per_packet(&self) -> f64 {
            self.per(self.writes)
        }

        pub fn reads_per_packet(&self) -> f64 {
            self.per(self.reads)
        }

        /// `RDT 0.031, TDT 0.031` (writes per packet by register; reads
        /// marked `r`).
        pub fn breakdown(&self) -> String {
            let mut v: Vec<String> = Vec::new();
            for (name, (w, r)) in &self.by_reg {
                if *w > 0 {
                    v.push(format!("{name} {:.4}", self.per(*w)));
                }
                if *r > 0 {
                    v.push(format!("{name} r {:.4}", self.per(*r)));
                }
            }
            if v.is_empty() {
                "-".into()
            } else {
                v.join(", ")
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn accesses_are_counted_per_register_and_packet() {
            let t = "1@100.000001:e1000e_core_write Write to register 0x3818, 4 byte(s), value: 0x10\n\
                     1@100.000002:e1000e_core_write Write to register 0x2818, 4 byte(s), value: 0x1f\n\
                     1@100.000003:e1000e_core_write Write to register 0x3818, 4 byte(s), value: 0x20\n\
                     1@100.000004:e1000e_core_read Read from register 0x8, 4 byte(s), value: 0x283\n\
                     1@100.000005:e1000e_core_mdic_write MDIC WRITE: PHY[0][0] = 0x4201140\n";
            let c = Counts::of(&crate::trace::parse(t), 100);
            assert_eq!((c.writes, c.reads), (3, 1));
            assert!((c.writes_per_packet() - 0.03).abs() < 1e-12);
            assert!((c.reads_per_packet() - 0.01).abs() < 1e-12);
            let b = c.breakdown();
            assert!(b.contains(&format!("{} 0.0200", reg_name(0x3818))), "{b}");
            assert!(b.contains(&format!("{} r 0.0100", reg_name(0x8))), "{b}");
            assert_eq!(Counts::of(&[], 0).writes_per_packet(), 0.0);
        }
    }
}
