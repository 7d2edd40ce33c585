//! The end of a run: one Markdown table per scenario with each figure for
//! ours and Go and the ratio ours/Go (and which direction is better), and
//! the figures as JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::figures::{Figures, ScenarioFigures};
use crate::impls::Kind;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy)]
enum Better {
    Higher,
    Lower,
    /// Context, no ratio.
    Neither,
}

/// A value as printed, and as a number when it has one.
struct Cell {
    text: String,
    num: Option<f64>,
}

impl Cell {
    fn num(v: Option<f64>, decimals: usize) -> Cell {
        match v {
            Some(v) => Cell {
                text: group(v, decimals),
                num: Some(v),
            },
            None => Cell::text("–"),
        }
    }

    fn text(t: impl Into<String>) -> Cell {
        Cell {
            text: t.into(),
            num: None,
        }
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
        |f| match (f.converged_s, f.converge_missing.is_empty()) {
            (Some(s), _) => Cell::num(Some(s), 2),
            (None, false) => Cell::text(format!(
                "not in {} s (missing {})",
                f.converge_limit_s,
                list_u64(&f.converge_missing)
            )),
            (None, true) => Cell::text("–"),
        },
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

fn cell(f: Option<&Figures>, figure: Figure) -> Cell {
    match f {
        None => Cell::text("–"),
        Some(f) if f.not_applicable => Cell::text("n/a"),
        Some(f) => figure(f),
    }
}

/// The tables, as Markdown.
pub(crate) fn tables(results: &[ScenarioFigures], against_go: bool) -> String {
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
        if against_go {
            out.push_str("| figure | ours | Go | ours/Go | better |\n|---|---:|---:|---:|---|\n");
        } else {
            out.push_str("| figure | ours |\n|---|---:|\n");
        }
        for (label, better, figure) in ROWS {
            let o = cell(ours, *figure);
            if !against_go {
                let _ = writeln!(out, "| {label} | {} |", o.text);
                continue;
            }
            let g = cell(go, *figure);
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
        for (kind, f) in [(Kind::Ours, ours), (Kind::Go, go)] {
            let Some(f) = f else { continue };
            if let Some(why) = &f.failed {
                let _ = writeln!(out, "\n{kind}: stopped early: {why}");
            }
            for n in &f.notes {
                let _ = writeln!(out, "\n{kind}: {n}");
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
) -> Result<()> {
    let doc = json!({
        "command": command,
        "scale": scale,
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
}
