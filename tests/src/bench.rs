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
