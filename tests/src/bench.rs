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
    use std::collections::{BTreeMap, HashMap};

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

    /// The TB that starts each poll-loop iteration, for the plugin's
    /// `loop` request. `group` are the TBs that ran once per idle poll
    /// (from [`polls`]); `loaded` their executions over a window with
    /// traffic, read in one `snap`. With traffic they split: the code every
    /// iteration runs (the loop itself, the receive call and its empty
    /// check) keeps one count, the iterations N; code only an empty
    /// iteration runs (the early return) has N less the busy iterations;
    /// a per-descriptor loop's head has N plus the packets. Counts within
    /// `SNAP_JITTER` of each other are one cluster; the cluster with the
    /// most instructions is the loop's, and its lowest address the start.
    pub fn loop_start(group: &[(u64, u64)], loaded: &HashMap<(u64, u64), u64>) -> Option<u64> {
        let mut v: Vec<((u64, u64), u64)> = group
            .iter()
            .filter_map(|k| loaded.get(k).map(|c| (*k, *c)))
            .filter(|(_, c)| *c > 0)
            .collect();
        v.sort_by_key(|((a, _), c)| (*c, *a));
        let mut best: Option<(u64, u64)> = None; // (weight, start)
        let mut i = 0;
        while i < v.len() {
            let mut j = i + 1;
            while j < v.len() && v[j].1 - v[j - 1].1 <= SNAP_JITTER {
                j += 1;
            }
            let weight: u64 = v[i..j].iter().map(|((_, n), _)| n).sum();
            let start = v[i..j].iter().map(|((a, _), _)| *a).min()?;
            if best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, start));
            }
            i = j;
        }
        best.map(|(_, a)| a)
    }

    /// Largest difference between two counts of one iteration that a
    /// `snap` (counters read back to back while the vCPU runs) can show.
    pub const SNAP_JITTER: u64 = 8;

    /// One `iters V` answer (or the difference of two): the plugin's
    /// iteration histogram since its `loop` request.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Iters {
        /// The vCPU's instructions since boot (all, kernel too).
        pub total: u64,
        /// The loop start address the counts are for.
        pub marker: u64,
        /// Untainted iterations: user instructions in one → how many.
        pub hist: BTreeMap<u64, u64>,
        /// Iterations that ran kernel code: (count, user instructions).
        pub tainted: (u64, u64),
        /// Untainted iterations the histogram had no slot for: (count,
        /// instructions).
        pub overflow: (u64, u64),
    }

    impl Iters {
        /// Untainted iterations.
        pub fn clean(&self) -> u64 {
            self.hist.values().sum::<u64>() + self.overflow.0
        }

        /// What happened between `self` (earlier) and `later`; an error if
        /// the marker changed in between.
        pub fn until(&self, later: &Iters) -> Result<Iters, String> {
            if self.marker != later.marker {
                return Err(format!(
                    "plugin: the loop start moved from {:x} to {:x} inside a window",
                    self.marker, later.marker
                ));
            }
            let sub = |a: u64, b: u64| a.saturating_sub(b);
            Ok(Iters {
                total: sub(later.total, self.total),
                marker: later.marker,
                hist: later
                    .hist
                    .iter()
                    .filter_map(|(l, c)| {
                        let d = sub(*c, self.hist.get(l).copied().unwrap_or(0));
                        (d > 0).then_some((*l, d))
                    })
                    .collect(),
                tainted: (
                    sub(later.tainted.0, self.tainted.0),
                    sub(later.tainted.1, self.tainted.1),
                ),
                overflow: (
                    sub(later.overflow.0, self.overflow.0),
                    sub(later.overflow.1, self.overflow.1),
                ),
            })
        }

        /// The most frequent iteration length (the smaller on a tie).
        pub fn mode(&self) -> Option<u64> {
            self.hist
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(l, _)| *l)
        }

        /// Instructions the untainted iterations ran beyond `e` each.
        pub fn excess(&self, e: u64) -> f64 {
            self.hist
                .iter()
                .map(|(l, c)| (*l as f64 - e as f64) * *c as f64)
                .sum::<f64>()
                + self.overflow.1 as f64
                - e as f64 * self.overflow.0 as f64
        }
    }

    /// Parses an `iters` answer (`vcpu V insns N`, `loop ADDR`, `iter LEN
    /// COUNT` lines, `tainted COUNT INSNS`, `overflow COUNT INSNS`, `end`).
    pub fn parse_iters(text: &str) -> Result<Iters, String> {
        let mut it = Iters::default();
        let mut ended = false;
        for line in text.lines() {
            let bad = || format!("plugin: bad line {line:?}");
            let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["vcpu", _, "insns", n] => it.total = num(n)?,
                ["loop", a] => it.marker = u64::from_str_radix(a, 16).map_err(|_| bad())?,
                ["iter", l, c] => {
                    *it.hist.entry(num(l)?).or_default() += num(c)?;
                }
                ["tainted", c, n] => it.tainted = (num(c)?, num(n)?),
                ["overflow", c, n] => it.overflow = (num(c)?, num(n)?),
                ["end"] => ended = true,
                [] => {}
                _ => return Err(format!("plugin: {line}")),
            }
        }
        if !ended {
            return Err("plugin: the answer has no end line".into());
        }
        if it.marker == 0 {
            return Err("plugin: no loop start is set".into());
        }
        Ok(it)
    }

    /// The figure and how it was made.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Figure {
        /// User instructions per forwarded packet beyond one empty
        /// iteration per busy iteration.
        pub per_packet: f64,
        /// User instructions of an empty iteration (exact).
        pub empty: u64,
        /// Loop iterations in the loaded window, tainted ones included.
        pub iterations: u64,
        /// Untainted iterations longer or shorter than `empty`.
        pub busy: u64,
        /// Iterations that ran kernel code (left out, scaled for).
        pub tainted: u64,
        /// Instructions beyond `empty` per idle iteration (the idle loop's
        /// own variation, charged to every loaded iteration).
        pub idle_excess: f64,
        /// User instructions of the loaded window's untainted iterations.
        pub insns: u64,
        pub frames: u64,
        /// The loop start the plugin cut iterations at.
        pub marker: u64,
    }

    impl Figure {
        /// Frames per busy iteration: how many packets a receive that
        /// found some got, on average.
        pub fn per_busy(&self) -> f64 {
            self.frames as f64 / self.busy.max(1) as f64
        }
    }

    /// From an idle window's and a loaded window's iteration histograms
    /// (same loop start) and the frames forwarded in the loaded window:
    /// E, the empty iteration's length, is the idle window's most common
    /// length (the loaded window's must agree); each untainted loaded
    /// iteration is charged its length less E, less the idle window's mean
    /// excess X over E (zero for a loop whose empty iteration never
    /// varies); the tainted iterations (a kernel entry: tick, interrupt,
    /// another process) are left out and the sum scaled by all / untainted
    /// iterations; per packet = that / frames. So an empty poll costs 0 and
    /// a busy one what it ran beyond an empty poll.
    pub fn figure(idle: &Iters, loaded: &Iters, frames: u64) -> Result<Figure, String> {
        let e = idle
            .mode()
            .ok_or("plugin: no loop iteration ran in the idle window")?;
        let el = loaded
            .mode()
            .ok_or("plugin: no loop iteration ran in the loaded window")?;
        if el != e {
            return Err(format!(
                "the empty iteration is {e} instructions idle but {el} loaded (loop start {:x})",
                idle.marker
            ));
        }
        if frames == 0 {
            return Err("no frame was forwarded in the loaded window".into());
        }
        let n_idle = idle.clean();
        let x = idle.excess(e) / n_idle as f64;
        let clean = loaded.clean();
        let all = clean + loaded.tainted.0;
        let busy = clean - loaded.hist.get(&e).copied().unwrap_or(0);
        // A start inside a per-packet loop cuts busy iterations into
        // pieces shorter than an empty one.
        let short: u64 = loaded.hist.range(..e).map(|(_, c)| c).sum();
        if short * 10 > busy.max(1) {
            return Err(format!(
                "{short} of {busy} busy iterations are shorter than an empty one ({e}): the loop start {:x} is not once per iteration",
                loaded.marker
            ));
        }
        let w = loaded.excess(e) - x * clean as f64;
        let insns = loaded.hist.iter().map(|(l, c)| l * c).sum::<u64>() + loaded.overflow.1;
        Ok(Figure {
            per_packet: w * all as f64 / clean.max(1) as f64 / frames as f64,
            empty: e,
            iterations: all,
            busy,
            tainted: loaded.tainted.0,
            idle_excess: x,
            insns,
            frames,
            marker: loaded.marker,
        })
    }

    /// One testpmd's per-packet figures in one case.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Spread {
        pub median: f64,
        pub min: f64,
        pub max: f64,
        pub runs: usize,
    }

    impl Spread {
        pub fn of(v: &[f64]) -> Option<Spread> {
            Some(Spread {
                median: super::median(v)?,
                min: v.iter().copied().fold(f64::INFINITY, f64::min),
                max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                runs: v.len(),
            })
        }

        /// Half the range over the median, in percent (the ± of the runs).
        pub fn pm_pct(&self) -> f64 {
            if self.median == 0.0 {
                return f64::INFINITY;
            }
            50.0 * (self.max - self.min) / self.median.abs()
        }

        fn cell(s: Option<&Spread>) -> String {
            s.map_or("-".into(), |s| {
                format!(
                    "{:.1} ({:.1}-{:.1}, ±{:.1}%, {})",
                    s.median,
                    s.min,
                    s.max,
                    s.pm_pct(),
                    s.runs
                )
            })
        }
    }

    /// Per case (in first-seen order): ours and DPDK's figures over the
    /// runs that have one.
    pub fn summary(
        runs: &[(String, super::Impl, f64)],
    ) -> Vec<(String, Option<Spread>, Option<Spread>)> {
        let mut cases: Vec<String> = Vec::new();
        for (c, _, _) in runs {
            if !cases.contains(c) {
                cases.push(c.clone());
            }
        }
        cases
            .into_iter()
            .map(|c| {
                let of = |imp| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter(|(k, i, _)| *k == c && *i == imp)
                        .map(|(_, _, x)| *x)
                        .collect();
                    Spread::of(&v)
                };
                let (o, d) = (of(super::Impl::Ours), of(super::Impl::Dpdk));
                (c, o, d)
            })
            .collect()
    }

    /// The summary as a markdown table: median (min-max, ±half range, runs)
    /// per side and the ratio of the medians.
    pub fn summary_table(rows: &[(String, Option<Spread>, Option<Spread>)]) -> String {
        let mut t = String::from(
            "| case | ours instr/pkt | DPDK instr/pkt | ours/DPDK |\n|---|---:|---:|---:|\n",
        );
        for (c, o, d) in rows {
            let ratio = match (o, d) {
                (Some(o), Some(d)) if d.median != 0.0 => format!("{:.2}", o.median / d.median),
                _ => "-".into(),
            };
            t.push_str(&format!(
                "| {c} | {} | {} | {ratio} |\n",
                Spread::cell(o.as_ref()),
                Spread::cell(d.as_ref())
            ));
        }
        t
    }

    /// The per-case summary back from a `count.json` written by `bench
    /// --insns` (its `insns_per_packet`), for the cases in `cases` (in that
    /// order; a case it has no figure for is left out).
    pub fn summary_from_json(
        j: &serde_json::Value,
        cases: &[String],
    ) -> Vec<(String, Option<Spread>, Option<Spread>)> {
        let side = |v: &serde_json::Value| {
            Some(Spread {
                median: v["median"].as_f64()?,
                min: v["min"].as_f64()?,
                max: v["max"].as_f64()?,
                runs: v["runs"].as_u64()? as usize,
            })
        };
        let all = j["insns_per_packet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        cases
            .iter()
            .filter_map(|c| {
                let e = all
                    .iter()
                    .find(|e| e["case"].as_str() == Some(c.as_str()))?;
                let (o, d) = (side(&e["ours"]), side(&e["dpdk"]));
                (o.is_some() || d.is_some()).then(|| (c.clone(), o, d))
            })
            .collect()
    }

    /// How the figure is made, for the JSON and markdown outputs.
    pub const METHOD: &str = "guest user-space instructions per forwarded packet on the forwarding vCPU, from the insn TCG plugin: the idle poll loop's TBs (the execution count most user code shares over 2 s without traffic) and a 2000-frame calibration window give the TB every loop iteration runs (the loop start); the plugin then cuts the vCPU's user instructions into iterations at that TB and counts their lengths, leaving out (and scaling for) iterations that entered the kernel; E, the empty iteration's length, is the most common length in a 2 s idle window (exact); per packet = sum over the loaded window's iterations of (length - E - X) / frames, X the idle window's mean excess over E (0 for a loop whose empty iteration never varies). An empty poll costs 0, a busy one what it ran beyond an empty poll";

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

        /// A synthetic poll loop's TB counts: A (10 insns) and B (6) run
        /// once per poll, C (4) only when the poll is empty, D (3) heads
        /// the per-descriptor loop (once per poll, once more per packet);
        /// `polls` polls of which `busy` forwarded `per` each.
        fn window(polls: u64, busy: u64, per: u64) -> HashMap<(u64, u64), u64> {
            let mut m = HashMap::new();
            m.insert((0x2000, 6), polls);
            m.insert((0x1000, 10), polls);
            m.insert((0x3000, 4), polls - busy);
            m.insert((0x4000, 3), polls + busy * per);
            m
        }

        #[test]
        fn the_loop_start_is_the_code_every_iteration_runs() {
            let idle = window(1_000_000, 0, 0);
            let (p, group) = polls(&idle).unwrap();
            assert_eq!((p, group.len()), (1_000_000, 4));
            let mut loaded = window(300_000, 2_000, 1);
            // Read a few counts later than the others: still one cluster.
            *loaded.get_mut(&(0x2000, 6)).unwrap() += 3;
            // Not C (empty polls only) nor D (more than once per busy poll).
            assert_eq!(loop_start(&group, &loaded), Some(0x1000));
            // The busy iterations are what split the clusters.
            assert_eq!(loop_start(&group, &HashMap::new()), None);
        }

        #[test]
        fn kernel_tbs_and_jitter_do_not_move_the_poll_count() {
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
        }

        fn iters(hist: &[(u64, u64)], tainted: (u64, u64)) -> Iters {
            Iters {
                total: 0,
                marker: 0x1000,
                hist: hist.iter().copied().collect(),
                tainted,
                overflow: (0, 0),
            }
        }

        #[test]
        fn an_iters_answer_parses_and_a_bad_one_does_not() {
            let t = "vcpu 1 insns 99\nloop 55555555a000\niter 150 1000\niter 400 7\ntainted 3 900\noverflow 1 5000\nend\n";
            let it = parse_iters(t).unwrap();
            assert_eq!(it.total, 99);
            assert_eq!(it.marker, 0x5555_5555_a000);
            assert_eq!(it.hist, [(150, 1000), (400, 7)].into_iter().collect());
            assert_eq!((it.tainted, it.overflow), ((3, 900), (1, 5000)));
            assert_eq!(it.clean(), 1008);
            assert_eq!(it.mode(), Some(150));
            assert!(
                parse_iters("vcpu 1 insns 9\nloop 1000\n").is_err(),
                "no end"
            );
            assert!(
                parse_iters("vcpu 1 insns 9\nloop 0\nend\n").is_err(),
                "no loop"
            );
            assert!(parse_iters("loop 1000\niter x 1\nend\n").is_err());
            assert!(parse_iters("error: expected 'loop V ADDR'\nend\n").is_err());
        }

        #[test]
        fn a_window_is_the_difference_of_two_answers() {
            let a = iters(&[(150, 1000), (400, 7)], (3, 900));
            let b = iters(&[(150, 3000), (400, 7), (520, 2)], (5, 1500));
            let d = a.until(&b).unwrap();
            assert_eq!(d.hist, [(150, 2000), (520, 2)].into_iter().collect());
            assert_eq!(d.tainted, (2, 600));
            let mut moved = b.clone();
            moved.marker = 0x2000;
            assert!(a.until(&moved).is_err());
        }

        #[test]
        fn each_busy_iteration_is_charged_beyond_one_empty_iteration() {
            let idle = iters(&[(150, 1_000_000)], (40, 6000));
            // 10 000 busy iterations of 1 packet (250 beyond empty), 5 000
            // of 2 (400 beyond), 20 000 frames; 2 900 000 empty ones.
            let loaded = iters(&[(150, 2_900_000), (400, 10_000), (550, 5_000)], (0, 0));
            let f = figure(&idle, &loaded, 20_000).unwrap();
            assert_eq!(f.empty, 150);
            assert_eq!((f.busy, f.iterations, f.tainted), (15_000, 2_915_000, 0));
            assert_eq!(
                f.per_packet,
                (10_000.0 * 250.0 + 5_000.0 * 400.0) / 20_000.0
            );
            assert!((f.per_busy() - 20_000.0 / 15_000.0).abs() < 1e-12);
            assert_eq!(f.insns, 150 * 2_900_000 + 400 * 10_000 + 550 * 5_000);
            // Tainted iterations are left out and scaled for: 1 % of them
            // raise the figure by all / untainted.
            let t = iters(
                &[(150, 2_900_000), (400, 10_000), (550, 5_000)],
                (29_150, 9e9 as u64),
            );
            let g = figure(&idle, &t, 20_000).unwrap();
            assert!((g.per_packet - f.per_packet * 1.01).abs() < 1e-9, "{g:?}");
        }

        #[test]
        fn the_idle_loops_own_variation_is_charged_to_every_iteration() {
            // One idle iteration in 1000 runs 1000 more (a periodic check).
            let idle = iters(&[(150, 999_000), (1150, 1_000)], (0, 0));
            let loaded = iters(&[(150, 1_990_000), (400, 10_000), (1150, 2_000)], (0, 0));
            let f = figure(&idle, &loaded, 10_000).unwrap();
            assert!((f.idle_excess - 1.0).abs() < 1e-12);
            // 10 000 x 250 + 2 000 x 1000 - 1.0 x 2 002 000, per frame.
            assert!(
                (f.per_packet - (2_500_000.0 + 2_000_000.0 - 2_002_000.0) / 10_000.0).abs() < 1e-9
            );
        }

        #[test]
        fn the_summary_takes_medians_per_side_and_case() {
            use crate::bench::Impl::{Dpdk, Ours};
            let r = |c: &str, i, x| (c.to_string(), i, x);
            let runs = [
                r("igb:32", Dpdk, 240.0),
                r("igb:32", Ours, 260.0),
                r("igb:32", Ours, 250.0),
                r("igb:32", Dpdk, 250.0),
                r("igb:32", Ours, 270.0),
                r("igb:32", Dpdk, 260.0),
                r("e1000e:32", Ours, 300.0),
            ];
            let s = summary(&runs);
            assert_eq!(s.len(), 2);
            let (c, o, d) = &s[0];
            assert_eq!(c, "igb:32");
            let (o, d) = (o.as_ref().unwrap(), d.as_ref().unwrap());
            assert_eq!((o.median, o.min, o.max, o.runs), (260.0, 250.0, 270.0, 3));
            assert_eq!(d.median, 250.0);
            assert!((o.pm_pct() - 50.0 * 20.0 / 260.0).abs() < 1e-12);
            assert!(s[1].2.is_none());
            let t = summary_table(&s);
            let rows: Vec<&str> = t.lines().collect();
            assert_eq!(
                rows[2],
                "| igb:32 | 260.0 (250.0-270.0, ±3.8%, 3) | 250.0 (240.0-260.0, ±4.0%, 3) | 1.04 |"
            );
            assert_eq!(
                rows[3],
                "| e1000e:32 | 300.0 (300.0-300.0, ±0.0%, 1) | - | - |"
            );
        }

        #[test]
        fn a_wrong_loop_start_or_no_traffic_is_an_error() {
            let idle = iters(&[(150, 1_000_000)], (0, 0));
            // A start inside the per-packet loop: pieces shorter than empty.
            let cut = iters(&[(150, 1_000_000), (40, 20_000), (300, 1_000)], (0, 0));
            assert!(figure(&idle, &cut, 20_000).is_err());
            // The loaded window's empty iteration is another length.
            let other = iters(&[(151, 1_000_000), (400, 100)], (0, 0));
            assert!(figure(&idle, &other, 100).is_err());
            let loaded = iters(&[(150, 1_000_000), (400, 100)], (0, 0));
            assert!(figure(&idle, &loaded, 0).is_err());
            assert!(figure(&Iters::default(), &loaded, 100).is_err());
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
