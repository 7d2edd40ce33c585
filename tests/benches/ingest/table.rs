//! The closing table: each scenario's figures beside Go's, with how many
//! times better ours is.

use serde_json::Value;

use crate::converge::LAG_RESOLUTION;
use crate::yardstick::{CLIENTS, FILL_CLIENTS, SCENARIOS, scaled};

/// How many times better ours is: ours/Go when higher is better, Go/ours
/// when lower is; a range when Go's figure is one.
fn ratio(ours: f64, go: (f64, f64), higher_better: bool) -> String {
    let r = |g: f64| if higher_better { ours / g } else { g / ours };
    let (x, y) = (r(go.0), r(go.1));
    let (lo, hi) = (x.min(y), x.max(y));
    if !lo.is_finite() {
        "-".into()
    } else if (hi - lo) / hi < 0.02 {
        format!("{}×", num(lo))
    } else {
        format!("{}-{}×", num(lo), num(hi))
    }
}

/// Two significant digits for small numbers, fewer decimals for large.
fn num(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 0.1 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn range(go: (f64, f64), unit: &str) -> String {
    if go.0 == go.1 {
        format!("{:.0}{unit}", go.0)
    } else {
        format!("{:.0}-{:.0}{unit}", go.0, go.1)
    }
}

fn phase_text(p: &Value) -> String {
    let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
    format!(
        "{:.0} (p50 {:.1} / p99 {:.1} ms){}",
        f("rate"),
        f("p50"),
        f("p99"),
        if f("errors") > 0.0 {
            format!(" !! {} errors", p["errors"])
        } else {
            String::new()
        }
    )
}

/// The comparison with Go, one block of rows a scenario (`None`: its
/// process failed).
pub(crate) fn table(results: &[Option<Value>], scale: f64) {
    println!(
        "{:<30} | {:<46} | {:<46} | ours vs Go",
        "figure", "ours", "Go v1.1.6 (§8.1)"
    );
    for (sc, r) in SCENARIOS.iter().zip(results) {
        println!("{}", "-".repeat(150));
        let pins = scaled(sc.pins, scale);
        println!("{} ({pins} pins)", sc.name);
        let Some(r) = r else {
            println!("  no result (the scenario process failed; see above)");
            continue;
        };
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let g = &sc.go;
        let row = |name: &str, ours: String, go: String, ratio: String| {
            println!("  {name:<28} | {ours:<46} | {go:<46} | {ratio}");
        };
        let first = &r["first"];
        let pf = |k: &str| first[k].as_f64().unwrap_or(f64::NAN);
        let capped = !r["fill"].is_null();
        row(
            &format!("pins/s acked, {CLIENTS} clients"),
            phase_text(first),
            format!(
                "{} (p50 {} / p99 {} ms)",
                range(g.rate, ""),
                range(g.p50, ""),
                range(g.p99, "")
            ),
            format!(
                "{} rate, {} p50, {} p99",
                ratio(pf("rate"), g.rate, true),
                ratio(pf("p50"), g.p50, false),
                ratio(pf("p99"), g.p99, false)
            ),
        );
        if capped {
            row(
                "",
                format!(
                    "^ stopped after {:.0} s: {} of {pins} pins",
                    pf("secs"),
                    first["acked"]
                ),
                String::new(),
                String::new(),
            );
            row(
                &format!("  rest, {FILL_CLIENTS} clients"),
                phase_text(&r["fill"]),
                "(not measured)".into(),
                format!(
                    "{} rate (different load)",
                    ratio(r["fill"]["rate"].as_f64().unwrap_or(f64::NAN), g.rate, true)
                ),
            );
        }
        let go_lag = g
            .converge
            .map(|c| c - sc.pins as f64 / ((g.rate.0 + g.rate.1) / 2.0));
        let ours_conv = match (r["converge"].as_f64(), r["lag"].as_f64()) {
            (Some(s), Some(l)) if l < LAG_RESOLUTION => {
                format!("{s:.1} s after start, <{LAG_RESOLUTION} s after last ack")
            }
            (Some(s), Some(l)) => format!("{s:.1} s after start, {l:.2} s after last ack"),
            _ => format!("not reached: short {}", r["converge_short"]),
        };
        let go_conv = match go_lag {
            Some(l) => format!("{} (≈{l:.1} s after last ack)", g.converge_text),
            None => g.converge_text.into(),
        };
        let conv_ratio = match (
            r["converge"].as_f64(),
            r["lag"].as_f64(),
            g.converge,
            go_lag,
        ) {
            (Some(o), Some(l), Some(go), Some(gl)) => format!(
                "{} from start, {} after last ack",
                ratio(o, (go, go), false),
                if l < LAG_RESOLUTION {
                    format!(">{}", ratio(LAG_RESOLUTION, (gl, gl), false))
                } else {
                    ratio(l, (gl, gl), false)
                }
            ),
            (Some(_), _, None, _) => "Go never got there".into(),
            _ => "-".into(),
        };
        row("all 3 peers hold every pin", ours_conv, go_conv, conv_ratio);
        row(
            "GET /allocations (all pins)",
            format!(
                "{:.3} s ({:.0}k pins/s)",
                f("list_secs"),
                f("listed") / f("list_secs") / 1000.0
            ),
            format!(
                "{:.2} s ({:.0}k pins/s)",
                g.list_secs,
                sc.pins as f64 / g.list_secs / 1000.0
            ),
            ratio(f("list_secs"), (g.list_secs, g.list_secs), false),
        );
        row(
            "RSS",
            format!(
                "{:.0} MiB process = 3 peers (peak {:.0})",
                f("rss"),
                f("hwm")
            ),
            format!("{} one peer", range(g.rss_mib, " MiB")),
            format!(
                "{} (our 3 peers vs Go's one)",
                ratio(f("rss"), g.rss_mib, false)
            ),
        );
        row(
            "data folder of one peer",
            format!("{:.1} MiB (writer's sled folder)", f("data_a")),
            format!("{:.0} MiB", g.data_mib),
            ratio(f("data_a"), (g.data_mib, g.data_mib), false),
        );
        row(
            "a new peer holds every pin",
            r["new_peer"]
                .as_f64()
                .map_or("not reached".into(), |s| format!("{s:.2} s")),
            format!("{:.1} s", g.new_peer_secs),
            r["new_peer"].as_f64().map_or("-".into(), |s| {
                ratio(s, (g.new_peer_secs, g.new_peer_secs), false)
            }),
        );
        row(
            "RSS growth, new peer synced",
            format!(
                "+{:.0} MiB (process {:.0}, peak {:.0})",
                f("rss4") - f("rss"),
                f("rss4"),
                f("hwm4")
            ),
            "(not measured)".into(),
            String::new(),
        );
    }
    println!(
        "\nratios: how many times better ours is (higher = better for us; below 1× Go is better)."
    );
    println!(
        "RSS: ours is the whole process holding all 3 peers, their REST servers and the clients; \
         Go's is one peer process."
    );
    println!(
        "Go's \"after last ack\" is derived: its time to converge minus pins ÷ its pins/s. With \
         batching, Go answers a pin when it is queued for a batch (in memory); we answer once it \
         is in the durable batch queue (flushed), and commit the batch on size or age."
    );
    if (scale - 1.0).abs() > f64::EPSILON {
        println!(
            "INGEST_BENCH_SCALE={scale}: Go's figures are for the full sizes; these ratios are not comparable."
        );
    }
}
