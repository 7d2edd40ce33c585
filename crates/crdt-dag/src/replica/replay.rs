//! At open, the deltas sled lost: the frames of the block file past the end
//! the store recorded are batches that were durable (and may have been
//! acknowledged) but that sled had not written when the process or the
//! machine stopped. The first may be in sled in part (a batch is written
//! key by key): its undo data puts back what it changed. Then they are
//! applied again, in the order they were.

use super::Replica;
use crate::block_file::{BlockFile, META_BLOCK_END};
use crate::delta::Delta;
use crate::error::{DagError, Result};
use crate::store::{Overlay, cid_key, prefix};
use crate::undo;

/// Puts back what the first frame past the recorded end changed in
/// `tree`, if anything: sled recovers a prefix of its log, and a batch's
/// keys are written before its end, so only that frame's batch can be
/// there in part and none after it is. Its keys get the values they had
/// before it (a no-op for a batch sled lost whole).
pub(super) fn undo_torn_frame(tree: &sled::Tree, blocks: &BlockFile) -> Result<()> {
    let Some(frame) = blocks.frame_at(blocks.end())? else {
        return Ok(());
    };
    if frame.undo.is_empty() {
        return Ok(());
    }
    let deltas = frame
        .blocks
        .iter()
        .map(|(cid, block, _)| {
            Delta::decode_verified(block)
                .map(|d| (*cid, &block[..], d))
                .map_err(|e| DagError::rejected(*cid, e))
        })
        .collect::<Result<Vec<_>>>()?;
    undo::apply(tree, &frame.undo, &deltas)?;
    Ok(())
}

/// What an open applied again from the block file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Frames read past the recorded end.
    pub frames: usize,
    /// Deltas applied from them.
    pub applied: usize,
    /// Deltas in them that could not apply (an ancestor missing, or
    /// refused by the order checks): a frame whose batch sled refused and
    /// that no later append overwrote. Left out, as they were then.
    pub skipped: usize,
}

impl Replica {
    /// Applies each frame past the recorded end as one batch, its blocks
    /// kept where they are (the batch records their places and the frame's
    /// end), then cuts the file after the last whole frame and flushes.
    /// No event fires: nothing listens yet, and whoever keeps state from
    /// events reads the pinset at start.
    pub(super) fn replay(&self) -> Result<Replayed> {
        let mut replayed = Replayed::default();
        let _guard = self.lock();
        let mut at = self.blocks.end();
        while let Some(frame) = self.blocks.frame_at(at)? {
            replayed.frames += 1;
            let mut ov = Overlay::new(&self.tree, &self.pins);
            let mut events = Vec::new();
            let mut freed = (0usize, 0u64);
            for (cid, block, place) in frame.blocks {
                if ov.contains(&cid_key(prefix::DELTA, &cid))? {
                    continue;
                }
                let delta =
                    Delta::decode_verified(&block).map_err(|e| DagError::rejected(cid, e))?;
                let mut ready = true;
                for dep in delta.dependencies() {
                    ready &= ov.contains(&cid_key(prefix::DELTA, dep))?;
                }
                if !ready {
                    replayed.skipped += 1;
                    continue;
                }
                let was_pending = self.tree.get(cid_key(prefix::PENDING, &cid))?;
                if self
                    .apply_delta(&mut ov, &cid, &block, &delta, &mut events)?
                    .is_err()
                {
                    replayed.skipped += 1;
                    continue;
                }
                // Already in the file: its place, not a second copy.
                ov.blocks.clear();
                ov.insert(cid_key(prefix::BLOCK, &cid), &place[..]);
                if let Some(b) = was_pending {
                    freed.0 += 1;
                    freed.1 += b.len() as u64;
                }
                replayed.applied += 1;
            }
            ov.insert(META_BLOCK_END.to_vec(), &frame.end.to_be_bytes()[..]);
            self.commit_overlay(ov)?;
            self.pending.sub(freed.0, freed.1);
            at = frame.end;
        }
        self.blocks.cut_at(at)?;
        if replayed.frames > 0 {
            self.db.flush()?;
        }
        Ok(replayed)
    }
}
