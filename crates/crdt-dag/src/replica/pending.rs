//! The pending set: verified blocks waiting for their ancestors, counted so
//! that a walk stops at the configured limits, and what they wait for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use std::collections::BTreeSet;

use cid::Cid;

use super::Replica;
use crate::delta::Delta;
use crate::error::{DagError, Result};
use crate::limits::Limits;
use crate::store::{cid_key, prefix, stored_cid};

/// Counters of the pending set, kept in memory (recomputed at open) and
/// changed only under the write lock.
#[derive(Debug, Default)]
pub(super) struct Pending {
    blocks: AtomicUsize,
    bytes: AtomicU64,
}

impl Pending {
    pub(super) fn add(&self, bytes: usize) {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn sub(&self, blocks: usize, bytes: u64) {
        self.blocks.fetch_sub(blocks, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn is_full(&self, limits: &Limits, extra: usize) -> bool {
        self.blocks.load(Ordering::Relaxed) >= limits.max_pending_blocks
            || self.bytes.load(Ordering::Relaxed) + extra as u64 > limits.max_pending_bytes
    }
}

impl Replica {
    /// Number of verified blocks waiting for their ancestors.
    pub fn pending_count(&self) -> usize {
        self.pending.blocks.load(Ordering::Relaxed)
    }

    pub(super) fn pending_is_full(&self) -> bool {
        self.pending.is_full(&self.config.limits, 0)
    }

    /// The error of a pending set at its limits.
    pub(crate) fn pending_full_error(&self) -> DagError {
        DagError::PendingFull {
            blocks: self.pending.blocks.load(Ordering::Relaxed),
            bytes: self.pending.bytes.load(Ordering::Relaxed),
        }
    }

    /// Errs when one more block of `bytes` would pass the limits.
    pub(super) fn check_pending_room(&self, bytes: usize) -> Result<()> {
        if self.pending.is_full(&self.config.limits, bytes) {
            return Err(self.pending_full_error());
        }
        Ok(())
    }

    /// Up to `limit` ancestors the pending blocks wait for that are neither
    /// applied nor pending themselves: what is missing from the history
    /// held (sorted by CID bytes). Reads the whole pending set.
    pub fn missing_ancestors(&self, limit: usize) -> Result<Vec<Cid>> {
        let mut out = BTreeSet::new();
        for kv in self.tree.scan_prefix([prefix::PENDING]) {
            let (k, v) = kv?;
            let cid = stored_cid(&k[1..])?;
            let delta = Delta::decode_verified(&v).map_err(|e| DagError::rejected(cid, e))?;
            for dep in delta.dependencies() {
                if !self.tree.contains_key(cid_key(prefix::DELTA, dep))?
                    && !self.tree.contains_key(cid_key(prefix::PENDING, dep))?
                {
                    out.insert(dep.to_bytes());
                }
            }
        }
        out.into_iter()
            .take(limit)
            .map(|b| stored_cid(&b))
            .collect()
    }
}
