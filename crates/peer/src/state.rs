//! Offline state commands: export the pinset as NDJSON of Go's `Pin` JSON,
//! import such a file as new signed deltas.

use std::io::BufRead;

use cluster_types::Pin;
use crdt_dag::{Replica, Write};

use crate::error::PeerError;
use crate::placement::place_offline;

/// Pins per delta on import (well under the per-delta op limit and the
/// block size limit for typical options).
const IMPORT_BATCH: usize = 1000;

/// Writes every pin as one JSON line; returns how many.
pub fn export(replica: &Replica, mut out: impl std::io::Write) -> Result<u64, PeerError> {
    let mut n = 0;
    for pin in replica.pins() {
        serde_json::to_writer(&mut out, &pin?).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Imports NDJSON pins as signed deltas of this replica's writer. `adjust`
/// may override the pin (Go's `--replication-min/-max`, `--allocations`);
/// then the placement rules of every pin apply with the cluster's default
/// factors `defaults` ([`place_offline`]). A bad line stops the import with
/// its number.
pub fn import(
    replica: &Replica,
    input: impl BufRead,
    defaults: (i32, i32),
    adjust: impl Fn(&mut Pin),
) -> Result<u64, PeerError> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |e: String| PeerError::InvalidPin(format!("line {}: {e}", i + 1));
        let mut pin: Pin = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        adjust(&mut pin);
        place_offline(&mut pin, defaults).map_err(|e| bad(e.to_string()))?;
        batch.push(Write::Pin(pin));
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

    use std::time::{Duration, UNIX_EPOCH};

    fn cid() -> cid::Cid {
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap()
    }

    fn replica(n: u8) -> Replica {
        let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        Replica::temporary(key, crdt_dag::ReplicaConfig::new("state")).unwrap()
    }

    #[test]
    fn export_then_import_keeps_every_option() {
        let from = replica(1);
        let mut pin = Pin::new(cid(), cluster_types::PinOptions::named("n"));
        pin.timestamp = Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000));
        pin.options.replication_factor_min = 2;
        pin.options.replication_factor_max = 3;
        pin.options.mode = cluster_types::PinMode::Direct;
        pin.max_depth = 0;
        pin.options.expire_at = Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        pin.options.metadata = [("a".to_string(), "b".to_string())].into();
        pin.options.pin_update = Some(cid());
        pin.allocations = vec!["12D3KooWA".into()];
        pin.options.user_allocations = vec!["12D3KooWB".into()];
        pin.options.origins = vec!["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWA".into()];
        from.write(vec![Write::Pin(pin.clone())]).unwrap();
        let mut ndjson = Vec::new();
        assert_eq!(export(&from, &mut ndjson).unwrap(), 1);
        let line: serde_json::Value = serde_json::from_slice(&ndjson).unwrap();
        assert_eq!(line["mode"], "direct");
        assert_eq!(line["expire_at"], "2027-01-15T08:00:00Z");
        let to = replica(2);
        assert_eq!(import(&to, &ndjson[..], (-1, -1), |_| {}).unwrap(), 1);
        assert_eq!(to.get(&cid()).unwrap().unwrap(), pin);
    }

    #[test]
    fn import_applies_the_placement_rules_and_names_the_bad_line() {
        let c = cid();
        let plain = format!("{{\"cid\":\"{c}\"}}\n");
        // Factors 0 take the defaults; the cluster's -1 is everywhere.
        let to = replica(1);
        assert_eq!(import(&to, plain.as_bytes(), (-1, -1), |_| {}).unwrap(), 1);
        let got = to.get(&c).unwrap().unwrap();
        assert!(got.is_everywhere() && got.allocations.is_empty());
        // Factors that can't be met, and factors with nowhere to go, are
        // refused with the line number; nothing of that line is written.
        let bad = format!(
            "\n{plain}{{\"cid\":\"{c}\",\"replication_factor_min\":3,\"replication_factor_max\":2}}\n"
        );
        let fresh = replica(2);
        let err = import(&fresh, bad.as_bytes(), (-1, -1), |_| {}).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = import(&replica(3), plain.as_bytes(), (2, 3), |_| {}).unwrap_err();
        assert!(err.to_string().contains("allocations"), "{err}");
        // --allocations gives them somewhere to go.
        let to = replica(4);
        let n = import(&to, plain.as_bytes(), (2, 3), |p| {
            p.allocations = vec!["12D3KooWA".into(), "12D3KooWB".into()]
        })
        .unwrap();
        assert_eq!(n, 1);
        let got = to.get(&c).unwrap().unwrap();
        let factors = (
            got.options.replication_factor_min,
            got.options.replication_factor_max,
        );
        assert_eq!(factors, (2, 3));
    }
}
