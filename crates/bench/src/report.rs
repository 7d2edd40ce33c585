//! The end of a run: one Markdown table per scenario with each figure for
//! ours and Go and the ratio ours/Go (and which direction is better), and
//! the figures as JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::figures::{Figures, ScenarioFigures};
use crate::impls::Kind;
use crate::stats::median;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy)]
enum Better {
    Higher,
    Lower,
    /// Context, no ratio.
    Neither,
}

/// A value as printed, and as a number (with its decimals) when it has one.
#[derive(Debug, Clone, PartialEq)]
struct Cell {
    text: String,
    num: Option<f64>,
    decimals: usize,
}

impl Cell {
    fn num(v: Option<f64>, decimals: usize) -> Cell {
        match v {
            Some(v) => Cell {
                text: group(v, decimals),
                num: Some(v),
                decimals,
            },
            None => Cell::text("–"),
        }
    }

    fn text(t: impl Into<String>) -> Cell {
        Cell {
            text: t.into(),
            num: None,
            decimals: 0,
        }
    }
}

/// One implementation's cells of a figure over its runs, as one cell: the
/// median of the numbers, with their range when they differ, and what the
/// runs without a number said; the distinct texts when no run has one.
fn combine(cells: Vec<Cell>) -> Cell {
    let runs = cells.len();
    if runs == 1 {
        return cells.into_iter().next().expect("one cell");
    }
    let mut nums: Vec<f64> = cells.iter().filter_map(|c| c.num).collect();
    let decimals = cells
        .iter()
        .find(|c| c.num.is_some())
        .map_or(0, |c| c.decimals);
    let mut others: Vec<&str> = Vec::new();
    for c in cells.iter().filter(|c| c.num.is_none()) {
        if !others.contains(&c.text.as_str()) {
            others.push(&c.text);
        }
    }
    let Some(median) = median(&mut nums) else {
        return Cell::text(others.join("; "));
    };
    let (lo, hi) = (nums[0], nums[nums.len() - 1]);
    let mut text = group(median, decimals);
    if group(lo, decimals) != group(hi, decimals) {
        text = format!("{text} ({}–{})", group(lo, decimals), group(hi, decimals));
    }
    if nums.len() < runs {
        text = format!(
            "{text}; {} of {runs} runs: {}",
            runs - nums.len(),
            others.join("; ")
        );
    }
    Cell {
        text,
        num: Some(median),
        decimals,
    }
}

/// `v` with `decimals` decimals and thousands separators (`20,512.3`).
fn group(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

fn list_u64(v: &[u64]) -> String {
    v.iter()
        .map(|n| group(*n as f64, 0))
        .collect::<Vec<_>>()
        .join(" / ")
}

type Figure = fn(&Figures) -> Cell;

/// The rows of a scenario's table.
const ROWS: &[(&str, Better, Figure)] = &[
    ("ingest: pins/s acknowledged", Better::Higher, |f| {
        Cell::num(f.pins_per_s, 0)
    }),
    ("ingest: ack latency p50 (ms)", Better::Lower, |f| {
        Cell::num(f.ack_p50_ms, 1)
    }),
    ("ingest: ack latency p99 (ms)", Better::Lower, |f| {
        Cell::num(f.ack_p99_ms, 1)
    }),
    ("ingest: CPU a pin, peer 1 (µs)", Better::Lower, |f| {
        Cell::num(f.cpu_us_per_pin.first().copied(), 1)
    }),
    (
        "ingest: CPU a pin, peers 2 and 3, max (µs)",
        Better::Lower,
        |f| Cell::num(max(f.cpu_us_per_pin.get(1..).unwrap_or_default()), 1),
    ),
    (
        "ingest: CPU a pin, every process with clients and Kubo (µs)",
        Better::Lower,
        |f| Cell::num(f.total_cpu_us_per_pin(), 1),
    ),
    ("ingest: acked / sent", Better::Neither, |f| {
        Cell::text(format!(
            "{} / {}",
            group(f.acked as f64, 0),
            group(f.sent as f64, 0)
        ))
    }),
    ("ingest: errors", Better::Neither, |f| {
        if f.errors.is_empty() {
            Cell::text("none")
        } else {
            Cell::text(
                f.errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", group(*v as f64, 0)))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        }
    }),
    (
        "convergence: every peer lists every pin (s after last ack)",
        Better::Lower,
        |f| within_limit(f.converged_s, &f.converge_missing, f.converge_limit_s),
    ),
    (
        "pinned: every peer's IPFS has every pin (s after last ack)",
        Better::Lower,
        |f| within_limit(f.pinned_s, &f.pinned_missing, f.pinned_limit_s),
    ),
    ("list: GET /allocations on peer 1 (s)", Better::Lower, |f| {
        Cell::num(f.allocations_s, 2)
    }),
    ("list: ipfs-cluster-ctl pin ls (s)", Better::Lower, |f| {
        Cell::num(f.ctl_pin_ls_s, 2)
    }),
    ("footprint: RSS, max of 3 peers (MiB)", Better::Lower, |f| {
        Cell::num(max(&f.rss_mib), 0)
    }),
    (
        "footprint: peak RSS (VmHWM), max of 3 (MiB)",
        Better::Lower,
        |f| Cell::num(max(&f.hwm_mib), 0),
    ),
    (
        "footprint: disk, folder of a peer, max of 3 (MiB)",
        Better::Lower,
        |f| Cell::num(max(&f.disk_mib), 0),
    ),
    (
        "footprint: disk per pin, max of 3 (bytes)",
        Better::Lower,
        |f| Cell::num(max(&f.disk_bytes_per_pin), 0),
    ),
    (
        "latency: ack -> listed on peers 2, 3, p50 (ms)",
        Better::Lower,
        |f| Cell::num(f.listed_p50_ms, 1),
    ),
    (
        "latency: ack -> listed on peers 2, 3, p99 (ms)",
        Better::Lower,
        |f| Cell::num(f.listed_p99_ms, 1),
    ),
    ("latency: samples listed / taken", Better::Neither, |f| {
        Cell::text(format!(
            "{} / {}",
            f.latency_samples,
            f.latency_samples + f.latency_missed
        ))
    }),
    (
        "join: 4th peer lists every pin (s)",
        Better::Lower,
        |f| match (f.join_s, f.join_missing) {
            (Some(s), _) => Cell::num(Some(s), 1),
            (None, Some(m)) => Cell::text(format!(
                "not in {} s (missing {})",
                f.join_limit_s,
                group(m as f64, 0)
            )),
            (None, None) => Cell::text("–"),
        },
    ),
    ("join: its RSS at the end (MiB)", Better::Lower, |f| {
        Cell::num(f.join_rss_mib, 0)
    }),
    (
        "join: checkpoint signed first (s)",
        Better::Lower,
        |f| match f.checkpoint_s {
            Some(s) => Cell::num(Some(s), 1),
            None => Cell::text("–"),
        },
    ),
];

/// Seconds until every peer got there, or what each lacked at the limit.
fn within_limit(s: Option<f64>, missing: &[u64], limit_s: u64) -> Cell {
    match (s, missing.is_empty()) {
        (Some(s), _) => Cell::num(Some(s), 2),
        (None, false) => Cell::text(format!(
            "not in {limit_s} s (missing {})",
            list_u64(missing)
        )),
        (None, true) => Cell::text("–"),
    }
}

fn cell(f: Option<&Figures>, figure: Figure) -> Cell {
    match f {
        None => Cell::text("–"),
        Some(f) if f.not_applicable => Cell::text("n/a"),
        Some(f) => figure(f),
    }
}

/// A figure over every run of one implementation ([`combine`]).
fn cells(runs: &[&Figures], figure: Figure) -> Cell {
    if runs.is_empty() {
        return cell(None, figure);
    }
    combine(runs.iter().map(|f| cell(Some(f), figure)).collect())
}

/// The tables, as Markdown; with several runs each cell is the median of
/// the runs, its range in brackets.
pub(crate) fn tables(results: &[ScenarioFigures], against_go: bool, runs: u32) -> String {
    let mut out = String::new();
    for sf in results {
        let ours = sf.of(Kind::Ours);
        let go = sf.of(Kind::Go);
        let _ = writeln!(
            out,
            "\n### {}: {}\n",
            sf.scenario.name,
            sf.scenario.describe()
        );
        if runs > 1 {
            let _ = writeln!(
                out,
                "Each figure: the median of {runs} runs (lowest–highest); ours/Go: the \
                 ratio of the medians.\n"
            );
        }
        if against_go {
            out.push_str("| figure | ours | Go | ours/Go | better |\n|---|---:|---:|---:|---|\n");
        } else {
            out.push_str("| figure | ours |\n|---|---:|\n");
        }
        for (label, better, figure) in ROWS {
            let o = cells(&ours, *figure);
            if !against_go {
                let _ = writeln!(out, "| {label} | {} |", o.text);
                continue;
            }
            let g = cells(&go, *figure);
            let (ratio, dir) = match better {
                Better::Neither => (String::new(), ""),
                Better::Higher | Better::Lower => {
                    let dir = if matches!(better, Better::Higher) {
                        "higher"
                    } else {
                        "lower"
                    };
                    match (o.num, g.num) {
                        (Some(a), Some(b)) if b > 0.0 => (format!("{:.2}x", a / b), dir),
                        _ => ("–".to_string(), dir),
                    }
                }
            };
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {ratio} | {dir} |",
                o.text, g.text
            );
        }
        for run in &sf.runs {
            let (kind, f) = (run.implementation, &run.figures);
            let who = if runs > 1 {
                format!("{kind}, run {}", run.round + 1)
            } else {
                kind.to_string()
            };
            if let Some(why) = &f.failed {
                let _ = writeln!(out, "\n{who}: stopped early: {why}");
            }
            for n in &f.notes {
                let _ = writeln!(out, "\n{who}: {n}");
            }
        }
    }
    out
}

/// Writes every figure to `path` as JSON.
pub(crate) fn write_json(
    path: &Path,
    results: &[ScenarioFigures],
    command: &str,
    scale: f64,
    runs: u32,
) -> Result<()> {
    let doc = json!({
        "command": command,
        "scale": scale,
        "runs": runs,
        "scenarios": results,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(group(20512.34, 1), "20,512.3");
        assert_eq!(group(999.0, 0), "999");
        assert_eq!(group(1000.0, 0), "1,000");
        assert_eq!(group(-1234567.0, 0), "-1,234,567");
        assert_eq!(group(0.456, 2), "0.46");
    }

    fn nums(v: &[f64], decimals: usize) -> Vec<Cell> {
        v.iter().map(|v| Cell::num(Some(*v), decimals)).collect()
    }

    /// Several runs print the median with the range; one run prints as it
    /// always did; equal runs need no range.
    #[test]
    fn runs_combine_into_their_median_and_range() {
        let c = combine(nums(&[15202.0, 12808.0, 16232.4], 0));
        assert_eq!(c.text, "15,202 (12,808–16,232)");
        assert_eq!(c.num, Some(15202.0));
        let c = combine(nums(&[0.15, 0.25], 2));
        assert_eq!((c.text.as_str(), c.num), ("0.20 (0.15–0.25)", Some(0.2)));
        assert_eq!(combine(nums(&[4.0, 4.0], 1)).text, "4.0");
        assert_eq!(combine(nums(&[7.25], 1)), Cell::num(Some(7.25), 1));
    }

    /// A run without a number (convergence not reached, a phase that
    /// stopped) is not hidden behind the others' median; with no number at
    /// all, the distinct texts are printed.
    #[test]
    fn runs_without_a_number_are_reported_beside_the_median() {
        let mut cells = nums(&[0.4, 0.6], 2);
        cells.push(Cell::text("not in 60 s (missing 12 / 0 / 3)"));
        let c = combine(cells);
        assert_eq!(
            c.text,
            "0.50 (0.40–0.60); 1 of 3 runs: not in 60 s (missing 12 / 0 / 3)"
        );
        assert_eq!(c.num, Some(0.5));
        let c = combine(vec![Cell::text("none"), Cell::text("none")]);
        assert_eq!((c.text.as_str(), c.num), ("none", None));
        let c = combine(vec![Cell::text("100 / 100"), Cell::text("99 / 100")]);
        assert_eq!(c.text, "100 / 100; 99 / 100");
    }
}
