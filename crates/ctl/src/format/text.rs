//! The text layouts of Go's ctl (`cmd/ipfs-cluster-ctl/formatters.go`),
//! written over the API's JSON shapes (Go IPFS Cluster's field names), so
//! they read the wire format users know rather than one crate's structs.

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::Value;

use super::humanize;
use super::time;

pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn int(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
        .unwrap_or(0)
}

fn float(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

pub(super) fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn entries(v: &Value, key: &str) -> Vec<(String, Value)> {
    let mut e: Vec<(String, Value)> = v
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    e.sort_by(|a, b| a.0.cmp(&b.0));
    e
}

/// A CID as Go prints it: the string, or `b` for an undefined (null) CID as
/// `cid.Undef` prints.
fn cid_str(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(c)) => c.clone(),
        _ => "b".to_string(),
    }
}

/// `ID`: the peer, its addresses and its IPFS daemon's.
pub(crate) fn id(v: &Value) -> String {
    let mut out = String::new();
    let error = s(v, "error");
    if !error.is_empty() {
        let _ = writeln!(out, "{} | ERROR: {error}", s(v, "id"));
        return out;
    }
    let others = strings(v, "cluster_peers").len() as i64 - 1;
    let _ = writeln!(
        out,
        "{} | {} | Sees {others} other peers",
        s(v, "id"),
        s(v, "peername")
    );
    out.push_str("  > Addresses:\n");
    for a in sorted(strings(v, "addresses")) {
        let _ = writeln!(out, "    - {a}");
    }
    let ipfs = v.get("ipfs").cloned().unwrap_or(Value::Null);
    let ipfs_error = s(&ipfs, "error");
    if !ipfs_error.is_empty() {
        let _ = writeln!(out, "  > IPFS ERROR: {ipfs_error}");
        return out;
    }
    let _ = writeln!(out, "  > IPFS: {}", s(&ipfs, "id"));
    for a in sorted(strings(&ipfs, "addresses")) {
        let _ = writeln!(out, "    - {a}");
    }
    out
}

/// `GlobalPinInfo`: the CID and name, then one line per peer.
pub(crate) fn global_pin_info(v: &Value) -> String {
    let mut out = cid_str(v, "cid");
    let name = s(v, "name");
    if !name.is_empty() {
        let _ = write!(out, " | {name}");
    }
    out.push_str(":\n");
    for (peer, info) in entries(v, "peer_map") {
        let peername = s(&info, "peername");
        let who = if peername.is_empty() {
            peer.as_str()
        } else {
            peername
        };
        let _ = write!(
            out,
            "    > {who:<20} : {}",
            s(&info, "status").to_uppercase()
        );
        let error = s(&info, "error");
        if !error.is_empty() {
            let _ = write!(out, ": {error}");
        }
        let _ = write!(out, " | {}", s(&info, "timestamp"));
        let _ = write!(out, " | Attempts: {}", int(&info, "attempt_count"));
        let priority = info
            .get("priority_pin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let _ = writeln!(out, " | Priority: {priority}");
    }
    out
}

/// `Pin`: one line with type, replication, allocations, depth, metadata,
/// expiry and when it was added.
pub(crate) fn pin(v: &Value) -> String {
    let mut t = s(v, "type").to_uppercase();
    if s(v, "mode") == "direct" {
        t.push_str("-DIRECT");
    }
    let mut out = format!("{} | {} | {t} | ", cid_str(v, "cid"), s(v, "name"));
    let (min, max) = (
        int(v, "replication_factor_min"),
        int(v, "replication_factor_max"),
    );
    if min == -1 && max == -1 {
        out.push_str("Repl. Factor: -1 | Allocations: [everywhere]");
    } else {
        let allocs = sorted(strings(v, "allocations")).join(" ");
        let _ = write!(out, "Repl. Factor: {min}--{max} | Allocations: [{allocs}]");
    }
    let depth = match int(v, "max_depth") {
        0 => "Direct".to_string(),
        -1 => "Recursive".to_string(),
        n => format!("Recursive-{n}"),
    };
    let _ = write!(out, " | {depth}");
    let has_metadata = v
        .get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    let _ = write!(
        out,
        " | Metadata: {}",
        if has_metadata { "yes" } else { "no" }
    );
    let expire_at = s(v, "expire_at");
    let exp = if time::is_zero(expire_at) {
        "∞".to_string()
    } else {
        time::go_datetime(expire_at)
    };
    let _ = write!(out, " | Exp: {exp}");
    let ts = s(v, "timestamp");
    let added = if time::is_zero(ts) {
        "unknown".to_string()
    } else {
        time::go_datetime(ts)
    };
    let _ = writeln!(out, " | Added: {added}");
    out
}

/// [`pin`] from the typed pin (what `pin ls` streams): the same line
/// without the JSON value in between (building it was 42% of the ctl's
/// CPU listing 300k pins). Times go through the same RFC 3339 text the
/// JSON holds. Tests check both agree.
pub(crate) fn pin_of(p: &cluster_types::Pin) -> String {
    let mut t = p.pin_type.as_str().to_uppercase();
    if p.options.mode == cluster_types::PinMode::Direct {
        t.push_str("-DIRECT");
    }
    let mut out = format!("{} | {} | {t} | ", p.cid, p.options.name);
    let (min, max) = (
        p.options.replication_factor_min,
        p.options.replication_factor_max,
    );
    if min == -1 && max == -1 {
        out.push_str("Repl. Factor: -1 | Allocations: [everywhere]");
    } else {
        let mut allocs: Vec<&str> = p.allocations.iter().map(String::as_str).collect();
        allocs.sort_unstable();
        let _ = write!(
            out,
            "Repl. Factor: {min}--{max} | Allocations: [{}]",
            allocs.join(" ")
        );
    }
    let _ = match p.max_depth {
        0 => write!(out, " | Direct"),
        -1 => write!(out, " | Recursive"),
        n => write!(out, " | Recursive-{n}"),
    };
    let has_metadata = !p.options.metadata.is_empty();
    let _ = write!(
        out,
        " | Metadata: {}",
        if has_metadata { "yes" } else { "no" }
    );
    let shown = |t: Option<SystemTime>, zero: &str| {
        let text = cluster_types::time::format_opt_rfc3339(t);
        if time::is_zero(&text) {
            zero.to_string()
        } else {
            time::go_datetime(&text)
        }
    };
    let _ = write!(out, " | Exp: {}", shown(p.options.expire_at, "∞"));
    let _ = writeln!(out, " | Added: {}", shown(p.timestamp, "unknown"));
    out
}

/// `Version`: the version string alone.
pub(crate) fn version(v: &Value) -> String {
    format!("{}\n", s(v, "version"))
}

/// `Metric`: peer, name and value (freespace in bytes), and when it
/// expires.
pub(crate) fn metric(v: &Value, now: SystemTime) -> String {
    let name = s(v, "name");
    let weight = int(v, "weight");
    let value = if name == "freespace" && weight > 0 {
        humanize::bytes(weight.unsigned_abs())
    } else {
        s(v, "value").to_string()
    };
    let expire = humanize::time(time::from_unix_nanos(int(v, "expire")), now);
    format!(
        "{} | {name}: {value} | Expires in: {expire}\n",
        s(v, "peer")
    )
}

/// `Alert`: which peer's metric expired, and when.
pub(crate) fn alert(v: &Value, now: SystemTime) -> String {
    let expired = humanize::time(time::from_unix_nanos(int(v, "expire")), now);
    let triggered_at = time::parse_rfc3339(s(v, "triggered_at")).unwrap_or(SystemTime::UNIX_EPOCH);
    format!(
        "{}: {}. Expired at: {expired}. Triggered at: {}\n",
        s(v, "peer"),
        s(v, "name"),
        humanize::time(triggered_at, now)
    )
}

/// `BandwidthByProtocol`: one line per protocol, sorted.
pub(crate) fn bandwidth(v: &Value) -> String {
    let mut out = String::new();
    let mut protocols: Vec<(&String, &Value)> = v
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    protocols.sort_by(|a, b| a.0.cmp(b.0));
    for (protocol, stat) in protocols {
        let total = |key: &str| humanize::bytes(float(stat, key).max(0.0) as u64);
        let _ = writeln!(
            out,
            "{protocol:>25}: In: {:>7}. Out: {:>7}. RateIn: {:.2}B/s. RateOut: {:.2}B/s",
            total("total_in"),
            total("total_out"),
            float(stat, "rate_in"),
            float(stat, "rate_out"),
        );
    }
    out
}

/// `GlobalRepoGC`: per peer, the CIDs collected (or errors).
pub(crate) fn global_repo_gc(v: &Value) -> String {
    let mut out = String::new();
    for (peer, item) in entries(v, "peer_map") {
        let peername = s(&item, "peername");
        let who = if peername.is_empty() {
            peer.as_str()
        } else {
            peername
        };
        let error = s(&item, "error");
        if error.is_empty() {
            let _ = writeln!(out, "{who:<15}");
        } else {
            let _ = writeln!(out, "{who:<15} | ERROR: {error}");
        }
        out.push_str("  > CIDs:\n");
        for key in item
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key_error = s(key, "error");
            if key_error.is_empty() {
                let _ = writeln!(out, "    - {}", cid_str(key, "key"));
            } else {
                let _ = writeln!(out, "    - ERROR: {key_error}");
            }
        }
    }
    out
}

/// `api.Error`: the code and message of an error answer.
pub(crate) fn error(code: u16, message: &str) -> String {
    format!("An error occurred:\n  Code: {code}\n  Message: {message}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const P1: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    const P2: &str = "QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD";
    const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

    #[test]
    fn id_layout() {
        let v = json!({
            "id": P1, "peername": "alpha",
            "addresses": ["/ip4/127.0.0.1/tcp/9096/p2p/x", "/ip4/10.0.0.1/tcp/9096/p2p/x"],
            "cluster_peers": [P1, P2], "cluster_peers_addresses": [],
            "version": "1.1.6", "commit": "", "rpc_protocol_version": "/ipfscluster/1.0/rpc", "error": "",
            "ipfs": {"id": "QmIPFS", "addresses": ["/ip4/127.0.0.1/tcp/4001"], "error": ""}
        });
        assert_eq!(
            id(&v),
            format!(
                "{P1} | alpha | Sees 1 other peers\n  > Addresses:\n    - /ip4/10.0.0.1/tcp/9096/p2p/x\n    - /ip4/127.0.0.1/tcp/9096/p2p/x\n  > IPFS: QmIPFS\n    - /ip4/127.0.0.1/tcp/4001\n"
            )
        );
        let mut v2 = v.clone();
        v2["ipfs"]["error"] = json!("dial tcp: refused");
        assert!(id(&v2).ends_with("  > Addresses:\n    - /ip4/10.0.0.1/tcp/9096/p2p/x\n    - /ip4/127.0.0.1/tcp/9096/p2p/x\n  > IPFS ERROR: dial tcp: refused\n"));
        let mut v3 = v;
        v3["error"] = json!("context deadline exceeded");
        assert_eq!(
            id(&v3),
            format!("{P1} | ERROR: context deadline exceeded\n")
        );
    }

    #[test]
    fn global_pin_info_layout() {
        let v = json!({
            "cid": CID, "name": "backup", "allocations": [], "origins": [], "created": "2026-05-11T10:00:00Z", "metadata": {},
            "peer_map": {
                P2: {"peername": "", "ipfs_peer_id": "", "ipfs_peer_addresses": [], "status": "pin_error",
                     "timestamp": "2026-05-11T10:00:01Z", "error": "timeout", "attempt_count": 3, "priority_pin": true},
                P1: {"peername": "alpha", "ipfs_peer_id": "", "ipfs_peer_addresses": [], "status": "pinned",
                     "timestamp": "2026-05-11T10:00:02.5Z", "error": "", "attempt_count": 0, "priority_pin": false}
            }
        });
        let want = format!(
            "{CID} | backup:\n    > alpha                : PINNED | 2026-05-11T10:00:02.5Z | Attempts: 0 | Priority: false\n    > {P2} : PIN_ERROR: timeout | 2026-05-11T10:00:01Z | Attempts: 3 | Priority: true\n"
        );
        assert_eq!(global_pin_info(&v), want);
        let unnamed = json!({"cid": CID, "name": "", "peer_map": {}});
        assert_eq!(global_pin_info(&unnamed), format!("{CID}:\n"));
    }

    #[test]
    fn pin_layout() {
        let v = json!({
            "replication_factor_min": 2, "replication_factor_max": 3, "name": "n", "mode": "recursive",
            "shard_size": 0, "user_allocations": null, "expire_at": "0001-01-01T00:00:00Z", "metadata": {},
            "origins": [], "cid": CID, "type": "pin", "allocations": [P2, P1], "max_depth": -1,
            "reference": null, "timestamp": "2026-05-11T10:00:00.123+02:00"
        });
        assert_eq!(
            pin(&v),
            format!(
                "{CID} | n | PIN | Repl. Factor: 2--3 | Allocations: [{P1} {P2}] | Recursive | Metadata: no | Exp: ∞ | Added: 2026-05-11 10:00:00\n"
            )
        );
        let everywhere = json!({
            "replication_factor_min": -1, "replication_factor_max": -1, "name": "", "mode": "direct",
            "expire_at": "2027-01-02T03:04:05Z", "metadata": {"k": "v"}, "cid": CID, "type": "pin",
            "allocations": [], "max_depth": 0, "timestamp": "0001-01-01T00:00:00Z"
        });
        assert_eq!(
            pin(&everywhere),
            format!(
                "{CID} |  | PIN-DIRECT | Repl. Factor: -1 | Allocations: [everywhere] | Direct | Metadata: yes | Exp: 2027-01-02 03:04:05 | Added: unknown\n"
            )
        );
        let shard = json!({"cid": CID, "type": "shard-pin", "max_depth": 2, "replication_factor_min": 0,
                           "replication_factor_max": 0, "allocations": []});
        assert!(
            pin(&shard)
                .contains(" | SHARD-PIN | Repl. Factor: 0--0 | Allocations: [] | Recursive-2 |")
        );
    }

    #[test]
    fn the_typed_pin_line_is_the_json_one() {
        use cluster_types::{Pin, PinMode, PinOptions, PinType};
        let cid: cid::Cid = CID.parse().unwrap();
        let mut pins = vec![Pin::new(cid, PinOptions::named("plain"))];
        let mut p = Pin::new(cid, PinOptions::named("名前 | with bars"));
        p.options.replication_factor_min = 2;
        p.options.replication_factor_max = 3;
        p.allocations = vec![P2.into(), P1.into()];
        p.timestamp =
            Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(1_778_493_600_123_456_789));
        p.options.expire_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000));
        p.options.metadata.insert("k".into(), "v".into());
        pins.push(p);
        let mut p = Pin::new(cid, PinOptions::default());
        p.options.mode = PinMode::Direct;
        p.max_depth = 0;
        p.options.replication_factor_min = -1;
        p.options.replication_factor_max = -1;
        pins.push(p);
        let mut p = Pin::new(cid, PinOptions::named("deep"));
        p.max_depth = 3;
        p.pin_type = PinType::ShardPin;
        p.options.replication_factor_min = 1;
        p.options.replication_factor_max = 1;
        pins.push(p);
        let mut p = Pin::new(cid, PinOptions::named("meta"));
        p.pin_type = PinType::MetaPin;
        p.timestamp = Some(SystemTime::UNIX_EPOCH);
        pins.push(p);
        for p in pins {
            let json = pin(&serde_json::to_value(&p).unwrap());
            assert_eq!(pin_of(&p), json, "{p:?}");
        }
    }

    #[test]
    fn small_layouts() {
        assert_eq!(version(&json!({"version": "1.1.6"})), "1.1.6\n");
        assert_eq!(
            error(401, "unauthorized"),
            "An error occurred:\n  Code: 401\n  Message: unauthorized\n"
        );
    }

    #[test]
    fn metric_and_alert_layouts() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let in_30s = 1_800_000_030i64 * 1_000_000_000;
        let m = json!({"name": "freespace", "peer": P1, "value": "5000000000", "expire": in_30s,
                       "valid": true, "weight": 5_000_000_000i64, "partitionable": false, "received_at": 0});
        assert_eq!(
            metric(&m, now),
            format!("{P1} | freespace: 5.0 GB | Expires in: 30 seconds from now\n")
        );
        let ping = json!({"name": "ping", "peer": P1, "value": "", "expire": in_30s, "weight": 0});
        assert_eq!(
            metric(&ping, now),
            format!("{P1} | ping:  | Expires in: 30 seconds from now\n")
        );
        let a = json!({"name": "ping", "peer": P1, "value": "", "expire": 1_799_999_880i64 * 1_000_000_000,
                       "triggered_at": "2027-01-15T08:00:00Z"});
        // 1_800_000_000 is 2027-01-15T08:00:00Z.
        assert_eq!(
            alert(&a, now),
            format!("{P1}: ping. Expired at: 2 minutes ago. Triggered at: now\n")
        );
    }

    #[test]
    fn bandwidth_layout() {
        let v = json!({
            "/ipfs/ping/1.0.0": {"total_in": 1500, "total_out": 9, "rate_in": 1.5, "rate_out": 0.0},
            "/floodsub/1.0.0": {"total_in": 82854982, "total_out": 0, "rate_in": 0.125, "rate_out": 10.0}
        });
        assert_eq!(
            bandwidth(&v),
            "          /floodsub/1.0.0: In:   83 MB. Out:     0 B. RateIn: 0.12B/s. RateOut: 10.00B/s\n         /ipfs/ping/1.0.0: In:  1.5 kB. Out:     9 B. RateIn: 1.50B/s. RateOut: 0.00B/s\n"
        );
    }

    #[test]
    fn repo_gc_layout() {
        let v = json!({"peer_map": {
            P2: {"peer": P2, "peername": "", "keys": [{"key": CID, "error": ""}, {"key": null, "error": "busy"}], "error": ""},
            P1: {"peer": P1, "peername": "alpha", "keys": [], "error": "ipfs down"}
        }});
        assert_eq!(
            global_repo_gc(&v),
            format!(
                "alpha           | ERROR: ipfs down\n  > CIDs:\n{P2}\n  > CIDs:\n    - {CID}\n    - ERROR: busy\n"
            )
        );
    }
}
