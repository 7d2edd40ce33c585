//! The durable queue of batched writes: with batching on, a write is
//! acknowledged once it is in this log (flushed), not when its batch is
//! committed, so clients are not held for `max_batch_age` and nothing
//! acknowledged is lost. At start, what a crash left here is committed.

use cid::Cid;
use crdt_dag::{WirePin, Write};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::PeerError;

fn corrupt(reason: String) -> PeerError {
    PeerError::Corrupt {
        what: "batch queue",
        reason,
    }
}

/// The sled tree holding the queue.
const TREE: &str = "batch-queue";

#[derive(Serialize, Deserialize)]
struct Entry {
    cid: ByteBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin: Option<WirePin>,
}

/// Writes queued for the next batch, keyed by an increasing sequence number.
#[derive(Debug, Clone)]
pub(crate) struct BatchLog {
    db: sled::Db,
    tree: sled::Tree,
}

impl BatchLog {
    pub(crate) fn open(db: &sled::Db) -> Result<Self, PeerError> {
        let db = db.clone();
        let tree = db.open_tree(TREE).map_err(crdt_dag::DagError::from)?;
        Ok(Self { db, tree })
    }

    /// Appends writes and flushes; returns their keys.
    pub(crate) fn append(&self, writes: &[Write]) -> Result<Vec<u64>, PeerError> {
        let store = |e: sled::Error| PeerError::from(crdt_dag::DagError::from(e));
        let mut keys = Vec::with_capacity(writes.len());
        let mut batch = sled::Batch::default();
        for w in writes {
            let key = self.db.generate_id().map_err(store)?;
            let entry = match w {
                Write::Pin(pin) => Entry {
                    cid: ByteBuf::from(pin.cid.to_bytes()),
                    pin: Some(WirePin::from_pin(pin)),
                },
                Write::Unpin(cid) => Entry {
                    cid: ByteBuf::from(cid.to_bytes()),
                    pin: None,
                },
            };
            let bytes = serde_ipld_dagcbor::to_vec(&entry).map_err(|e| corrupt(e.to_string()))?;
            batch.insert(&key.to_be_bytes(), bytes);
            keys.push(key);
        }
        self.tree.apply_batch(batch).map_err(store)?;
        self.db.flush().map_err(store)?;
        Ok(keys)
    }

    /// Forgets committed writes (made durable by the next flush).
    pub(crate) fn remove(&self, keys: &[u64]) -> Result<(), PeerError> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(&k.to_be_bytes());
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| PeerError::from(crdt_dag::DagError::from(e)))
    }

    /// Everything still queued, oldest first.
    pub(crate) fn load(&self) -> Result<Vec<(u64, Write)>, PeerError> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(|e| PeerError::from(crdt_dag::DagError::from(e)))?;
            let key = u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("a key is not 8 bytes".into()))?,
            );
            let e: Entry =
                serde_ipld_dagcbor::from_slice(&v).map_err(|e| corrupt(e.to_string()))?;
            let cid = Cid::try_from(e.cid.as_slice()).map_err(|e| corrupt(e.to_string()))?;
            out.push((
                key,
                match e.pin {
                    Some(wire) => Write::Pin(wire.into_pin(cid)),
                    None => Write::Unpin(cid),
                },
            ));
        }
        Ok(out)
    }
}
