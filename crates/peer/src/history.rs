//! The signed history as the history routes answer it: the heads and what
//! they add up to (with the checkpoint served and the floor), a checkpoint
//! made on demand, the delta log newest first, and the CAR export in
//! chunks (spec/rest-api.md, spec/crdt.md §7, §10).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use api::types::{
    HistoryCheckpoint, HistoryDelta, HistoryFork, HistoryHead, HistoryHeads, HistoryLogQuery,
    HistoryOp, HistoryWriter, HistoryWriterSeq,
};
use bytes::Bytes;
use cid::Cid;
use cluster_codec::car::{write_header, write_section};
use crdt_dag::{Checkpoint, DagError, Delta, Op, Order, Replica, TrustPolicy, WriterId};

use crate::error::PeerError;

/// The CAR export is sent in chunks of about this many bytes.
const CAR_CHUNK: usize = 256 * 1024;

/// The trust policy as `trusted_peers` lists it.
pub fn trusted_peers(policy: &TrustPolicy) -> Vec<String> {
    match policy {
        TrustPolicy::All => vec!["*".to_owned()],
        TrustPolicy::Only(set) => set.iter().map(WriterId::to_string).collect(),
    }
}

/// `GET /history/heads`.
pub fn heads(replica: &Replica) -> Result<HistoryHeads, PeerError> {
    let config = replica.config();
    let heads: Vec<HistoryHead> = replica
        .heads_with_priority()?
        .into_iter()
        .map(|(cid, priority)| HistoryHead { cid, priority })
        .collect();
    Ok(HistoryHeads {
        cluster_name: config.cluster.clone(),
        trusted_peers: trusted_peers(&config.trust),
        height: heads.iter().map(|h| h.priority).max().unwrap_or(0),
        heads,
        state_hash: hex::encode(replica.state_hash()?),
        pins: replica.len()?,
        deltas: replica.delta_count()?,
        writers: replica
            .writers()?
            .into_iter()
            .map(|w| HistoryWriter {
                peer: w.writer.to_string(),
                seq: w.seq,
                latest: w.latest.to_string(),
                trusted: config.trust.allows(&w.writer),
            })
            .collect(),
        forks: replica.forks()?.into_iter().map(fork_of).collect(),
        checkpoint: newest_checkpoint(replica)?,
        floor: replica.floor()?.map(|(cid, c)| checkpoint_summary(cid, &c)),
    })
}

/// The newest checkpoint `replica` keeps (the one it serves), if any.
fn newest_checkpoint(replica: &Replica) -> Result<Option<HistoryCheckpoint>, PeerError> {
    let Some((cid, block)) = replica.newest_checkpoint()? else {
        return Ok(None);
    };
    let c = Checkpoint::decode(&block)
        .map_err(|e| DagError::Corrupt(format!("kept checkpoint {cid}: {e}")))?;
    Ok(Some(checkpoint_summary(cid, &c)))
}

/// `POST /history/checkpoint`: signs a checkpoint of the current state and
/// keeps it as the one this replica serves. Reads the whole pinset: call it
/// off the async workers.
///
/// # Errors
/// [`PeerError::NotTrusted`] when this peer may not write (the REST API's
/// 403), [`PeerError::CheckpointRefused`] with the reason when the history
/// can't be checkpointed now (empty, a forked writer, tombs waiting: 409),
/// a store error otherwise.
pub fn checkpoint_now(replica: &Replica) -> Result<HistoryCheckpoint, PeerError> {
    match replica.checkpoint() {
        Ok((cid, c)) => Ok(checkpoint_summary(cid, &c)),
        Err(DagError::NotTrusted(writer)) => Err(PeerError::NotTrusted(writer)),
        Err(DagError::Checkpoint(why)) => Err(PeerError::CheckpointRefused(why)),
        Err(e) => Err(e.into()),
    }
}

/// A checkpoint as the API shows it.
pub fn checkpoint_summary(cid: Cid, c: &Checkpoint) -> HistoryCheckpoint {
    HistoryCheckpoint {
        cid,
        signer: c.writer.to_string(),
        time: Some(UNIX_EPOCH + Duration::from_millis(c.ts)),
        height: c.height(),
        heads: c
            .heads
            .iter()
            .map(|&(cid, priority)| HistoryHead { cid, priority })
            .collect(),
        pins: c.pins,
        deltas: c.deltas,
        state_hash: hex::encode(c.state_hash),
        snapshot: c.snapshot,
        writers: c
            .writers
            .iter()
            .map(|(w, seq)| HistoryWriterSeq {
                peer: w.to_string(),
                seq: *seq,
            })
            .collect(),
    }
}

/// Fork evidence as the API and the audit report show it.
pub fn fork_of(f: crdt_dag::Fork) -> HistoryFork {
    HistoryFork {
        peer: f.writer.to_string(),
        seq: f.seq,
        deltas: f.deltas.iter().map(ToString::to_string).collect(),
    }
}

/// One applied delta as the log shows it.
pub fn log_entry(replica: &Replica, cid: &Cid) -> Result<HistoryDelta, PeerError> {
    let block = replica
        .block(cid)?
        .ok_or_else(|| DagError::Corrupt(format!("applied delta {cid} has no block")))?;
    let delta = Delta::decode(&block)
        .map_err(|e| DagError::Corrupt(format!("applied delta {cid}: {e}")))?;
    Ok(HistoryDelta {
        cid: *cid,
        writer: delta.writer.to_string(),
        seq: delta.seq,
        priority: delta.priority,
        time: Some(UNIX_EPOCH + Duration::from_millis(delta.ts)),
        parents: delta.parents.iter().map(ToString::to_string).collect(),
        ops: delta
            .ops
            .into_iter()
            .map(|op| match op {
                Op::Pin { pin, tombs } => HistoryOp {
                    op: "pin".into(),
                    cid: pin.cid,
                    pin: Some(pin),
                    tombs: tombs.len(),
                },
                Op::Unpin { cid, tombs } => HistoryOp {
                    op: "unpin".into(),
                    cid,
                    pin: None,
                    tombs: tombs.len(),
                },
            })
            .collect(),
    })
}

/// `GET /history/log`: newest first, read lazily; `writer` reads only that
/// writer's chain. `since` compares the writers' own clocks, which need not
/// grow with priority, so the whole history is read to apply it.
pub fn log(
    replica: Arc<Replica>,
    query: &HistoryLogQuery,
) -> Result<impl Iterator<Item = Result<HistoryDelta, PeerError>> + Send + use<>, PeerError> {
    let history = match &query.writer {
        Some(w) => {
            let writer: WriterId = w
                .parse()
                .map_err(|e| PeerError::InvalidPin(format!("writer {w:?}: {e}")))?;
            replica.writer_history(&writer, Order::NewestFirst)?
        }
        None => replica.history(Order::NewestFirst)?,
    };
    let since = query.since;
    let limit = if query.limit == 0 {
        usize::MAX
    } else {
        usize::try_from(query.limit).unwrap_or(usize::MAX)
    };
    Ok(history
        .map(move |e| log_entry(&replica, &e?.cid))
        .filter(move |d| match (d, since) {
            (Ok(d), Some(since)) => d.time.is_some_and(|t| t >= since),
            _ => true,
        })
        .take(limit))
}

/// `GET /history/car`: the CAR v1 export in chunks of about [`CAR_CHUNK`]
/// bytes, the header first, blocks oldest first, read lazily. A replica
/// with a floor starts with the floor's checkpoint and its snapshot, then
/// the deltas above it (as `Replica::export_car` writes).
pub fn car_chunks(replica: Arc<Replica>) -> Result<CarChunks, PeerError> {
    let mut buf = Vec::with_capacity(CAR_CHUNK + 4096);
    write_header(&mut buf, &replica.heads()?)?;
    Ok(CarChunks {
        blocks: replica.export_blocks()?,
        buf,
        done: false,
    })
}

/// The chunks of [`car_chunks`].
pub struct CarChunks {
    blocks: crdt_dag::Blocks,
    buf: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for CarChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarChunks")
            .field("buffered", &self.buf.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CarChunks {
    fn fill(&mut self) -> Result<(), PeerError> {
        while self.buf.len() < CAR_CHUNK {
            let Some(block) = self.blocks.next() else {
                self.done = true;
                break;
            };
            let (cid, block) = block?;
            write_section(&mut self.buf, &cid, &block)?;
        }
        Ok(())
    }
}

impl Iterator for CarChunks {
    type Item = Result<Bytes, PeerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done && self.buf.is_empty() {
            return None;
        }
        if let Err(e) = self.fill() {
            self.done = true;
            self.buf.clear();
            return Some(Err(e));
        }
        if self.buf.is_empty() {
            return None;
        }
        Some(Ok(Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CAR_CHUNK + 4096),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use cluster_types::{Pin, PinOptions};
    use crdt_dag::{ReplicaConfig, Write};
    use multihash_codetable::{Code, MultihashDigest};

    fn content(n: u8) -> Cid {
        Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]))
    }

    fn replica(n: u8, trust: TrustPolicy) -> Replica {
        let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        let config = ReplicaConfig {
            trust,
            ..ReplicaConfig::new("history")
        };
        Replica::temporary(key, config).unwrap()
    }

    fn pin(r: &Replica, n: u8) {
        let pin = Pin::new(content(n), PinOptions::named(format!("p{n}")));
        r.write(vec![Write::Pin(pin)]).unwrap();
    }

    /// A checkpoint made on demand is what heads then serve; once pruned
    /// to, it is the floor, and the CAR export starts with it (a fresh
    /// replica loads it and the deltas above to the same state).
    #[test]
    fn checkpoints_show_in_heads_and_the_car_starts_at_the_floor() {
        let r = Arc::new(replica(1, TrustPolicy::All));
        let refused = checkpoint_now(&r).unwrap_err();
        assert!(
            matches!(&refused, PeerError::CheckpointRefused(m) if m.contains("empty")),
            "{refused}"
        );
        assert_eq!(api::ApiError::from(refused).status, 409);
        for n in 0..3 {
            pin(&r, n);
        }
        let cp = checkpoint_now(&r).unwrap();
        assert_eq!((cp.pins, cp.deltas, cp.height), (3, 3, 3));
        assert_eq!(cp.signer, r.writer().to_string());
        assert_eq!(cp.state_hash, hex::encode(r.state_hash().unwrap()));
        assert_eq!(cp.writers.len(), 1);
        assert_eq!(cp.writers[0].seq, 3);
        let h = heads(&r).unwrap();
        assert_eq!((h.checkpoint.as_ref(), h.floor.as_ref()), (Some(&cp), None));

        r.prune().unwrap();
        pin(&r, 3);
        let h = heads(&r).unwrap();
        assert_eq!(h.floor.as_ref(), Some(&cp));
        assert_eq!(h.deltas, 4);

        let car: Vec<u8> = car_chunks(r.clone())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .concat();
        let to = replica(2, TrustPolicy::All);
        let import = to.import_car(&car[..]).unwrap();
        assert_eq!(import.checkpoint.map(|c| c.0), Some(cp.cid));
        assert!(import.report.rejected.is_empty());
        assert_eq!(to.state_hash().unwrap(), r.state_hash().unwrap());
    }

    /// A replica its own policy does not trust can't sign: the API's 403.
    #[test]
    fn an_untrusted_replica_may_not_sign_a_checkpoint() {
        let other = WriterId::from_public_key(
            &ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key(),
        );
        let r = replica(1, TrustPolicy::Only([other].into()));
        let e = checkpoint_now(&r).unwrap_err();
        assert!(matches!(e, PeerError::NotTrusted(_)), "{e}");
        assert_eq!(api::ApiError::from(e).status, 403);
    }
}
