//! The signed history as the history routes answer it: the heads and what
//! they add up to, the delta log newest first, and the CAR export in
//! chunks (spec/rest-api.md, spec/crdt.md §7).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use api::types::{
    HistoryDelta, HistoryFork, HistoryHead, HistoryHeads, HistoryLogQuery, HistoryOp, HistoryWriter,
};
use bytes::Bytes;
use cluster_codec::car::{write_header, write_section};
use crdt_dag::{DagError, Delta, Op, Order, Replica, TrustPolicy, WriterId};

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
    })
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
pub fn log_entry(replica: &Replica, cid: &cid::Cid) -> Result<HistoryDelta, PeerError> {
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
/// bytes, the header first, blocks oldest first, read lazily.
pub fn car_chunks(replica: Arc<Replica>) -> Result<CarChunks, PeerError> {
    let mut buf = Vec::with_capacity(CAR_CHUNK + 4096);
    write_header(&mut buf, &replica.heads()?)?;
    Ok(CarChunks {
        blocks: Box::new(replica.history_blocks(Order::OldestFirst)?),
        buf,
        done: false,
    })
}

type Blocks = Box<dyn Iterator<Item = crdt_dag::Result<(cid::Cid, Vec<u8>)>> + Send>;

/// The chunks of [`car_chunks`].
pub struct CarChunks {
    blocks: Blocks,
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
