//! Offline state commands: export the pinset as NDJSON of Go's `Pin` JSON,
//! import such a file as new signed deltas.

use std::io::BufRead;

use crdt_dag::{PinOptions, Replica, Write};

use crate::error::PeerError;
use crate::record::{from_api_pin, to_api_pin};

/// Pins per delta on import (well under the per-delta op limit and the
/// block size limit for typical options).
const IMPORT_BATCH: usize = 1000;

/// Writes every pin as one JSON line; returns how many.
pub fn export(replica: &Replica, mut out: impl std::io::Write) -> Result<u64, PeerError> {
    let mut n = 0;
    for pin in replica.pins() {
        let pin = pin?;
        serde_json::to_writer(&mut out, &to_api_pin(pin.cid, &pin.options))
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
        let pin: api::types::Pin = serde_json::from_str(&line)
            .map_err(|e| PeerError::Config(format!("line {}: {e}", i + 1)))?;
        let (cid, mut options) = (pin.cid, from_api_pin(&pin));
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
    fn export_then_import_keeps_every_option() {
        let key = |n| ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        let from = Replica::temporary(key(1), crdt_dag::ReplicaConfig::new("state")).unwrap();
        let cid: cid::Cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap();
        let options = PinOptions {
            timestamp: 1_700_000_000_000,
            name: "n".into(),
            replication_min: 2,
            replication_max: 3,
            max_depth: 0,
            expire_at: 1_800_000_000,
            metadata: [("a".to_string(), "b".to_string())].into(),
            pin_update: Some(cid),
            allocations: vec!["12D3KooWA".into()],
            user_allocations: vec!["12D3KooWB".into()],
            origins: vec!["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWA".into()],
            ..PinOptions::default()
        };
        from.write(vec![Write::Pin {
            cid,
            options: options.clone(),
        }])
        .unwrap();
        let mut ndjson = Vec::new();
        assert_eq!(export(&from, &mut ndjson).unwrap(), 1);
        let line: serde_json::Value = serde_json::from_slice(&ndjson).unwrap();
        assert_eq!(line["mode"], "direct");
        assert_eq!(line["expire_at"], "2027-01-15T08:00:00Z");
        let to = Replica::temporary(key(2), crdt_dag::ReplicaConfig::new("state")).unwrap();
        assert_eq!(import(&to, &ndjson[..], |_| {}).unwrap(), 1);
        assert_eq!(to.get(&cid).unwrap().unwrap().options, options);
    }
}
