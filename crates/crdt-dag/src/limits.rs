//! The protocol's size limits (spec/crdt.md §2.4) and a replica's walk bounds.

/// Largest delta block accepted or written, in bytes.
pub const MAX_BLOCK_SIZE: usize = 1 << 20;
/// Most ops one delta may carry.
pub const MAX_OPS_PER_DELTA: usize = 8_192;
/// Most parents one delta may link.
pub const MAX_PARENTS_PER_DELTA: usize = 256;
/// Most tombstone dots one op may carry.
pub const MAX_TOMBS_PER_OP: usize = 1_024;
/// Most verified blocks a replica keeps waiting for their ancestors.
pub const MAX_PENDING_BLOCKS: usize = 1 << 20;
/// Most bytes of verified blocks a replica keeps waiting for their ancestors.
pub const MAX_PENDING_BYTES: u64 = 1 << 30;
/// Most deltas applied in one atomic store batch.
pub const APPLY_BATCH_DELTAS: usize = 256;

/// Bounds on the unapplied work a replica holds. The defaults are the
/// constants above; tests and small devices may lower them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_PENDING_BLOCKS`].
    pub max_pending_blocks: usize,
    /// See [`MAX_PENDING_BYTES`].
    pub max_pending_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pending_blocks: MAX_PENDING_BLOCKS,
            max_pending_bytes: MAX_PENDING_BYTES,
        }
    }
}
