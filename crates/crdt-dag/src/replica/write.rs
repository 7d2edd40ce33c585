//! The local write path: coalesce the writes, tomb what they replace, sign
//! them as one delta on top of the heads, and apply it like any other.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use cid::Cid;

use super::{Replica, Write, Written};
use crate::delta::{Delta, Op, dot_key};
use crate::error::{DagError, Result};
use crate::limits::{MAX_BLOCK_SIZE, MAX_OPS_PER_DELTA, MAX_PARENTS_PER_DELTA, MAX_TOMBS_PER_OP};
use crate::pin::Dot;
use crate::store::{Overlay, Record, cid_key, prefix};

impl Replica {
    /// Signs `writes` as one delta on top of the current heads, applies it,
    /// durable on disk before returning, and fires the hook. Several writes
    /// to one CID are coalesced (the last wins).
    pub fn write(&self, writes: Vec<Write>) -> Result<Written> {
        let written = self.write_unnotified(writes)?;
        self.fire(&written.events);
        Ok(written)
    }

    /// [`Replica::write`] without firing the hook: the caller passes the
    /// events to [`Replica::notify`] once it has handed the delta on. The
    /// delta is durable when this returns (its frame in the block file is
    /// synced, spec/crdt.md §8), so the writes may be acknowledged.
    pub fn write_unnotified(&self, writes: Vec<Write>) -> Result<Written> {
        if !self.config.trust.allows(&self.writer) {
            return Err(DagError::NotTrusted(self.writer.to_string()));
        }
        // Coalesce: keep the last write per CID, in the order of those last writes.
        let mut last: HashMap<Cid, usize> = HashMap::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            last.insert(*w.cid(), i);
        }
        let writes: Vec<Write> = writes
            .into_iter()
            .enumerate()
            .filter(|(i, w)| last[w.cid()] == *i)
            .map(|(_, w)| w)
            .collect();
        if writes.is_empty() {
            return Err(DagError::InvalidWrite("nothing to write".into()));
        }
        if writes.len() > MAX_OPS_PER_DELTA {
            return Err(DagError::InvalidWrite(format!(
                "{} ops exceed the {} per delta limit",
                writes.len(),
                MAX_OPS_PER_DELTA
            )));
        }

        let _guard = self.lock();
        self.check_not_loading()?;
        // Each pin record is read once: here for the tombs, and by the apply
        // below from the overlay.
        let mut ov = Overlay::new(&self.tree, &self.pins);
        let mut ops = Vec::with_capacity(writes.len());
        for w in writes {
            let cid = *w.cid();
            let record = match ov.read(cid_key(prefix::PIN, &cid))? {
                Some(b) => Record::from_stored(&b, &self.names, &mut ov)?,
                None => Record::default(),
            };
            let mut tombs: Vec<Dot> = record.entries.iter().map(|e| e.dot).collect();
            if tombs.len() > MAX_TOMBS_PER_OP {
                // Keep the highest entries; the rest stay live until a later write.
                tombs.drain(..tombs.len() - MAX_TOMBS_PER_OP);
            }
            tombs.sort_by_key(dot_key);
            ops.push(match w {
                Write::Pin(pin) => Op::Pin { pin, tombs },
                Write::Unpin(_) if tombs.is_empty() => return Err(DagError::NotPinned(cid)),
                Write::Unpin(_) => Op::Unpin { cid, tombs },
            });
        }

        // Past the parent limit, link the highest heads (ties by CID): the
        // others stay heads, for a later delta to merge.
        let mut heads = self.heads_with_priority()?;
        heads.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.to_bytes().cmp(&b.0.to_bytes()))
        });
        heads.truncate(MAX_PARENTS_PER_DELTA);
        let priority = 1 + heads.iter().map(|h| h.1).max().unwrap_or(0);
        let mut parents: Vec<Cid> = heads.into_iter().map(|h| h.0).collect();
        parents.sort_by_key(|c| c.to_bytes());

        let (seq, prev) = match self.last_seq(&self.writer)? {
            Some((seq, cid)) => (seq + 1, Some(cid)),
            None => (1, None),
        };
        let mut delta = Delta {
            ts: now_ms(),
            ops,
            seq,
            prev,
            writer: self.writer,
            cluster: self.config.cluster.clone(),
            parents,
            priority,
            sig: [0; 64],
        };
        let (cid, block) = delta.sign_to_block(&self.key);
        if block.len() > MAX_BLOCK_SIZE {
            return Err(DagError::InvalidWrite(format!(
                "the delta would be {} bytes, over the {MAX_BLOCK_SIZE} byte block limit",
                block.len()
            )));
        }
        let mut events = Vec::new();
        self.apply_delta(&mut ov, &cid, &block, &delta, &mut events)?
            .map_err(|reason| DagError::rejected(cid, reason))?;
        self.commit_overlay(ov)?;
        let heads = self.heads()?;
        Ok(Written {
            cid,
            block,
            delta,
            heads,
            events,
        })
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
