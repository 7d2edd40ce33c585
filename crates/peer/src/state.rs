//! Offline state commands: export the pinset as NDJSON of Go's `Pin` JSON,
//! import such a file as new signed deltas.

use std::collections::BTreeMap;
use std::io::BufRead;

use cid::Cid;
use crdt_dag::{PinOptions, PinType, Replica, Write};
use serde_json::{Value, json};

use crate::error::PeerError;

/// Pins per delta on import (well under the per-delta op limit and the
/// block size limit for typical options).
const IMPORT_BATCH: usize = 1000;

/// Go's zero time, written for "no expiry".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 (UTC, seconds or milliseconds) of a Unix time in milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let frac = ms % 1000;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if frac == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{frac:03}Z")
    }
}

/// Parses RFC 3339 into Unix milliseconds (`None` for Go's zero time).
pub fn parse_rfc3339_ms(s: &str) -> Result<Option<u64>, String> {
    if s.is_empty() || s.starts_with("0001-01-01") {
        return Ok(None);
    }
    let bad = || format!("invalid time {s:?}");
    let num = |a: usize, b: usize| {
        s.get(a..b)
            .and_then(|x| x.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, m, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        ms = format!("{digits:0<3}")[..3].parse().map_err(|_| bad())?;
        rest = &frac[digits.len()..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().map_err(|_| bad())? * 3600
                + o[4..6].parse::<i64>().map_err(|_| bad())? * 60)
        }
        _ => return Err(bad()),
    };
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec - offset;
    u64::try_from(secs * 1000 + ms).map(Some).map_err(|_| bad())
}

/// A pin as Go IPFS Cluster writes it in JSON (`api.Pin`, options flat).
pub fn pin_to_json(cid: &Cid, o: &PinOptions) -> Value {
    let mut v = json!({
        "replication_factor_min": o.replication_min,
        "replication_factor_max": o.replication_max,
        "name": o.name,
        "mode": if o.max_depth == 0 { "direct" } else { "recursive" },
        "shard_size": o.shard_size,
        "user_allocations": if o.user_allocations.is_empty() { Value::Null } else { json!(o.user_allocations) },
        "expire_at": if o.expire_at == 0 { ZERO_TIME.to_string() } else { rfc3339_ms(o.expire_at * 1000) },
        "metadata": o.metadata,
        "origins": o.origins,
        "cid": cid.to_string(),
        "type": o.pin_type.as_str(),
        "allocations": o.allocations,
        "max_depth": o.max_depth,
        "reference": o.reference.map(|c| c.to_string()),
        "timestamp": if o.timestamp == 0 { ZERO_TIME.to_string() } else { rfc3339_ms(o.timestamp) },
    });
    if let (Some(u), Some(map)) = (o.pin_update, v.as_object_mut()) {
        map.insert("pin_update".into(), json!(u.to_string()));
    }
    v
}

/// Reads Go's `api.Pin` JSON.
pub fn pin_from_json(v: &Value) -> Result<(Cid, PinOptions), String> {
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    let cid_of = |k: &str| -> Result<Option<Cid>, String> {
        field(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Cid>().map_err(|e| format!("{k}: {e}")))
            .transpose()
    };
    let strings = |k: &str| -> Vec<String> {
        field(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let int = |k: &str, d: i64| field(k).and_then(Value::as_i64).unwrap_or(d);
    let cid = cid_of("cid")?.ok_or("pin without cid")?;
    let pin_type = match field("type").and_then(Value::as_str).unwrap_or("pin") {
        "pin" => PinType::Data,
        "meta-pin" => PinType::Meta,
        "clusterdag-pin" => PinType::ClusterDag,
        "shard-pin" => PinType::Shard,
        other => return Err(format!("unknown pin type {other:?}")),
    };
    let max_depth = match (
        field("max_depth").and_then(Value::as_i64),
        field("mode").and_then(Value::as_str),
    ) {
        (Some(d), _) => d,
        (None, Some("direct")) => 0,
        _ => -1,
    };
    let time = |k: &str| -> Result<u64, String> {
        Ok(field(k)
            .and_then(Value::as_str)
            .map(parse_rfc3339_ms)
            .transpose()?
            .flatten()
            .unwrap_or(0))
    };
    let metadata: BTreeMap<String, String> = field("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok((
        cid,
        PinOptions {
            timestamp: time("timestamp")?,
            reference: cid_of("reference")?,
            metadata,
            name: field("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            replication_max: int("replication_factor_max", 0) as i32,
            replication_min: int("replication_factor_min", 0) as i32,
            pin_type,
            max_depth,
            shard_size: int("shard_size", 0).max(0) as u64,
            allocations: strings("allocations"),
            expire_at: time("expire_at")? / 1000,
            pin_update: cid_of("pin_update")?,
            user_allocations: strings("user_allocations"),
            origins: strings("origins"),
        },
    ))
}

/// Writes every pin as one JSON line; returns how many.
pub fn export(replica: &Replica, mut out: impl std::io::Write) -> Result<u64, PeerError> {
    let mut n = 0;
    for pin in replica.pins() {
        let pin = pin?;
        serde_json::to_writer(&mut out, &pin_to_json(&pin.cid, &pin.options))
            .map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Imports NDJSON pins as signed deltas of this replica's writer. `adjust`
/// may override options (Go's `--replication-min/-max`, `--allocations`).
pub fn import(
    replica: &Replica,
    input: impl BufRead,
    adjust: impl Fn(&mut PinOptions),
) -> Result<u64, PeerError> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| PeerError::Config(format!("line {}: {e}", i + 1)))?;
        let (cid, mut options) =
            pin_from_json(&v).map_err(|e| PeerError::Config(format!("line {}: {e}", i + 1)))?;
        adjust(&mut options);
        batch.push(Write::Pin { cid, options });
        n += 1;
        if batch.len() == IMPORT_BATCH {
            replica.write(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        replica.write(batch)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        for (ms, s) in [
            (0u64, "1970-01-01T00:00:00Z"),
            (1_700_000_000_000, "2023-11-14T22:13:20Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
        ] {
            assert_eq!(rfc3339_ms(ms), s);
            assert_eq!(parse_rfc3339_ms(s).unwrap(), Some(ms));
        }
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T23:13:20+01:00").unwrap(),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_rfc3339_ms(ZERO_TIME).unwrap(), None);
        assert!(parse_rfc3339_ms("yesterday").is_err());
    }

    #[test]
    fn go_pin_json_round_trips() {
        let cid: Cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap();
        let o = PinOptions {
            timestamp: 1_700_000_000_000,
            name: "n".into(),
            replication_min: -1,
            replication_max: -1,
            max_depth: 0,
            expire_at: 1_800_000_000,
            metadata: [("a".to_string(), "b".to_string())].into(),
            pin_update: Some(cid),
            allocations: vec!["12D3KooWA".into()],
            ..PinOptions::default()
        };
        let v = pin_to_json(&cid, &o);
        assert_eq!(v["mode"], "direct");
        assert_eq!(v["type"], "pin");
        assert_eq!(v["user_allocations"], Value::Null);
        assert_eq!(v["expire_at"], "2027-01-15T08:00:00Z");
        assert_eq!(pin_from_json(&v).unwrap(), (cid, o));
    }
}
