//! Text layouts of the history routes (no Go equivalent), in the style of
//! Go's `formatters.go`: a header line, then `  > ` items.

use std::fmt::Write as _;

use serde_json::Value;

use super::text::{int, s, strings};
use super::time::go_datetime;

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `history heads`.
pub(crate) fn heads(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Cluster: {}", s(v, "cluster_name"));
    let _ = writeln!(
        out,
        "Trusted peers: {}",
        strings(v, "trusted_peers").join(", ")
    );
    state_lines(&mut out, v);
    for (label, key) in [("Checkpoint", "checkpoint"), ("Floor", "floor")] {
        if let Some(c) = v.get(key).filter(|c| c.is_object()) {
            let _ = writeln!(out, "{label}: {}", checkpoint_line(c));
        }
    }
    heads_lines(&mut out, v);
    let writers = array(v, "writers");
    let _ = writeln!(out, "Writers: {}", writers.len());
    for w in writers {
        let trust = if w.get("trusted").and_then(Value::as_bool) == Some(true) {
            "trusted"
        } else {
            "NOT TRUSTED"
        };
        let _ = writeln!(
            out,
            "  > {} | seq: {} | latest: {} | {trust}",
            s(w, "peer"),
            int(w, "seq"),
            s(w, "latest")
        );
    }
    let forks = array(v, "forks");
    let _ = writeln!(out, "Forks: {}", forks.len());
    for f in forks {
        let _ = writeln!(
            out,
            "  > {} | seq: {} | deltas: {}",
            s(f, "peer"),
            int(f, "seq"),
            strings(f, "deltas").join(", ")
        );
    }
    out
}

/// A checkpoint on one line (in `history heads`).
fn checkpoint_line(c: &Value) -> String {
    format!(
        "{} | height: {} | deltas: {} | pins: {} | signed by {} | {}",
        s(c, "cid"),
        int(c, "height"),
        int(c, "deltas"),
        int(c, "pins"),
        s(c, "signer"),
        go_datetime(s(c, "time"))
    )
}

/// `history checkpoint`.
pub(crate) fn checkpoint(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Checkpoint: {}", s(v, "cid"));
    let _ = writeln!(
        out,
        "Signed by: {} | {}",
        s(v, "signer"),
        go_datetime(s(v, "time"))
    );
    state_lines(&mut out, v);
    let _ = writeln!(out, "Snapshot: {}", s(v, "snapshot"));
    heads_lines(&mut out, v);
    let writers = array(v, "writers");
    let _ = writeln!(out, "Writers: {}", writers.len());
    for w in writers {
        let _ = writeln!(out, "  > {} | seq: {}", s(w, "peer"), int(w, "seq"));
    }
    out
}

/// The state hash, then the pin, delta and height counts.
fn state_lines(out: &mut String, v: &Value) {
    let _ = writeln!(out, "State hash: {}", s(v, "state_hash"));
    let _ = writeln!(
        out,
        "Pins: {} | Deltas: {} | Height: {}",
        int(v, "pins"),
        int(v, "deltas"),
        int(v, "height")
    );
}

/// The `Heads: N` line, then one line per head with its priority.
fn heads_lines(out: &mut String, v: &Value) {
    let heads = array(v, "heads");
    let _ = writeln!(out, "Heads: {}", heads.len());
    for h in heads {
        let _ = writeln!(
            out,
            "  > {} | priority: {}",
            s(h, "cid"),
            int(h, "priority")
        );
    }
}

/// One delta of `history log`: its line, then one line per op.
pub(crate) fn delta(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} | {} | seq: {} | priority: {} | {}",
        s(v, "cid"),
        s(v, "writer"),
        int(v, "seq"),
        int(v, "priority"),
        go_datetime(s(v, "time"))
    );
    for op in array(v, "ops") {
        let name = op.get("pin").map_or("", |p| s(p, "name"));
        let tombs = int(op, "tombs");
        let mut line = format!("  > {} {}", s(op, "op"), s(op, "cid"));
        if !name.is_empty() {
            let _ = write!(line, " | {name}");
        }
        if tombs > 0 {
            let _ = write!(line, " | replaces {tombs}");
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn heads_and_deltas_read_as_text() {
        let v = json!({
            "cluster_name": "c", "trusted_peers": ["*"], "state_hash": "ab",
            "pins": 2, "deltas": 3, "height": 3,
            "heads": [{"cid": "bafyhead", "priority": 3}],
            "writers": [{"peer": "12D3KooWA", "seq": 3, "latest": "bafyhead", "trusted": false}],
            "forks": []
        });
        assert_eq!(
            heads(&v),
            "Cluster: c\nTrusted peers: *\nState hash: ab\nPins: 2 | Deltas: 3 | Height: 3\n\
             Heads: 1\n  > bafyhead | priority: 3\n\
             Writers: 1\n  > 12D3KooWA | seq: 3 | latest: bafyhead | NOT TRUSTED\nForks: 0\n"
        );
        let c = json!({
            "cid": "bafyc", "signer": "12D3KooWA", "time": "2026-12-05T01:02:03.5Z",
            "height": 3, "heads": [{"cid": "bafyhead", "priority": 3}], "pins": 2,
            "deltas": 3, "state_hash": "ab", "snapshot": "bafys",
            "writers": [{"peer": "12D3KooWA", "seq": 3}]
        });
        assert_eq!(
            checkpoint(&c),
            "Checkpoint: bafyc\nSigned by: 12D3KooWA | 2026-12-05 01:02:03\nState hash: ab\n\
             Pins: 2 | Deltas: 3 | Height: 3\nSnapshot: bafys\n\
             Heads: 1\n  > bafyhead | priority: 3\nWriters: 1\n  > 12D3KooWA | seq: 3\n"
        );
        let mut with = v.clone();
        with["checkpoint"] = c.clone();
        with["floor"] = c;
        let line =
            "bafyc | height: 3 | deltas: 3 | pins: 2 | signed by 12D3KooWA | 2026-12-05 01:02:03";
        assert!(
            heads(&with).contains(&format!(
                "Height: 3\nCheckpoint: {line}\nFloor: {line}\nHeads: 1\n"
            )),
            "{}",
            heads(&with)
        );
        let d = json!({
            "cid": "bafyd", "writer": "12D3KooWA", "seq": 1, "priority": 1,
            "time": "2026-12-05T01:02:03.5Z", "parents": [],
            "ops": [{"op": "pin", "cid": "bafyp", "pin": {"name": "n"}, "tombs": 0},
                    {"op": "unpin", "cid": "bafyq", "tombs": 2}]
        });
        assert_eq!(
            delta(&d),
            "bafyd | 12D3KooWA | seq: 1 | priority: 1 | 2026-12-05 01:02:03\n\
             \x20 > pin bafyp | n\n  > unpin bafyq | replaces 2\n"
        );
    }
}
