//! The pending set's size: verified blocks waiting for their ancestors,
//! counted so that a walk stops at the configured limits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::Replica;
use crate::error::{DagError, Result};
use crate::limits::Limits;

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

    /// Errs when one more block of `bytes` would pass the limits.
    pub(super) fn check_pending_room(&self, bytes: usize) -> Result<()> {
        if self.pending.is_full(&self.config.limits, bytes) {
            return Err(DagError::PendingFull {
                blocks: self.pending.blocks.load(Ordering::Relaxed),
                bytes: self.pending.bytes.load(Ordering::Relaxed),
            });
        }
        Ok(())
    }
}
