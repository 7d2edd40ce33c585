//! What another replica lacks: the deltas reachable from our heads and not
//! from theirs, for the bulk sync protocol (one answer, not one round trip
//! per DAG level).

use std::collections::{BinaryHeap, HashMap};

use cid::Cid;

use crate::delta::Delta;
use crate::error::{DagError, Result};
use crate::replica::Replica;
use crate::store::{DeltaInfo, cid_key, prefix, stored_cid};

const OURS: u8 = 1;
const THEIRS: u8 = 2;

/// Most CIDs [`Replica::frontier`] returns.
pub const MAX_FRONTIER: usize = 1024;

impl Replica {
    /// What to tell a peer we sync from: our heads, then the latest applied
    /// delta of every writer we know (a version vector in CIDs), then, per
    /// writer, its deltas 1, 2, 3, ... seqs below that latest, the steps
    /// growing by an eighth once past 16; at most
    /// [`MAX_FRONTIER`]. Heads alone are not enough: a head we wrote
    /// ourselves is unknown to the other side, but our copy of its writers'
    /// latest deltas is not, and each of those covers its whole writer chain.
    /// The older ones are for an answerer behind us on a writer, which
    /// doesn't know our latest of it: it still knows one of them close to
    /// its own latest, and leaves out that writer's chain up to there
    /// (without them, peers writing at once sent each other most of what
    /// the asker had: 7,782 blocks for 587 new ones).
    pub fn frontier(&self) -> Result<Vec<Cid>> {
        let mut out = self.heads()?;
        // Every writer's chain prefix and latest seq.
        let mut writers: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut from = vec![prefix::CHAIN];
        loop {
            let Some(first) = self.tree().range(from.clone()..).next() else {
                break;
            };
            let (k, _) = first?;
            if k.first() != Some(&prefix::CHAIN) || k.len() < 41 {
                break;
            }
            let writer = &k[1..33];
            let mut p = vec![prefix::CHAIN];
            p.extend_from_slice(writer);
            if let Some(last) = self.tree().scan_prefix(&p).next_back() {
                let (k, v) = last?;
                let cid = stored_cid(&v)?;
                if out.len() < MAX_FRONTIER && !out.contains(&cid) {
                    out.push(cid);
                }
                let seq = u64::from_be_bytes(
                    k.get(33..41)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| DagError::Corrupt("chain key".into()))?,
                );
                writers.push((p.clone(), seq));
            }
            // Skip to the next writer: the prefix followed by all-ones seq.
            p.extend_from_slice(&[0xff; 9]);
            from = p;
        }
        let deepest = writers.iter().map(|(_, s)| *s).max().unwrap_or(0);
        let mut step = 1u64;
        while step < deepest && out.len() < MAX_FRONTIER {
            for (p, latest) in &writers {
                let Some(seq) = latest.checked_sub(step).filter(|s| *s > 0) else {
                    continue;
                };
                let mut k = p.clone();
                k.extend_from_slice(&seq.to_be_bytes());
                if let Some(v) = self.tree().get(&k)? {
                    let cid = stored_cid(&v)?;
                    if out.len() < MAX_FRONTIER && !out.contains(&cid) {
                        out.push(cid);
                    }
                }
            }
            // Steps grow by an eighth: an answerer behind us by `n` on a
            // writer knows an entry at most ~n/8 below its own latest, so
            // it resends at most that much (at 2x, up to all n: under a
            // write storm, thousands of blocks per answer). ~100 entries a
            // writer for a chain of 100,000.
            step = step.saturating_add((step / 8).max(1));
        }
        Ok(out)
    }

    /// The applied deltas reachable from our heads and not from `their_heads`
    /// (those of them we know; pass the asker's [`Replica::frontier`]), oldest
    /// first (ascending priority): the `limit` oldest of them, so an asker
    /// that applies an answer can ask again for the next part. Heads we do
    /// not know are ignored, so an answer may include deltas the asker
    /// already has; applying them again is a no-op.
    ///
    /// The walk visits deltas in descending priority: an ancestor always has
    /// a lower priority than its descendants, so by the time a delta is
    /// reached every path from their heads to it has been seen.
    pub fn missing_for(&self, their_heads: &[Cid], limit: usize) -> Result<Vec<Cid>> {
        let mut f = Frontier::default();
        for h in self.heads()? {
            f.push(self, h, OURS)?;
        }
        for h in their_heads {
            f.push(self, *h, THEIRS)?;
        }
        // The `limit` oldest: a max-heap that drops the newest when full.
        let mut out: BinaryHeap<(u64, Vec<u8>)> = BinaryHeap::new();
        while f.ours_only > 0 {
            let Some((cid, priority, mark)) = f.pop()? else {
                break;
            };
            if mark == OURS && limit > 0 {
                out.push((priority, cid.to_bytes()));
                if out.len() > limit {
                    out.pop();
                }
            }
            let block = self
                .block(&cid)?
                .ok_or_else(|| DagError::Corrupt(format!("applied delta {cid} has no block")))?;
            let delta = Delta::decode_verified(&block).map_err(|e| DagError::rejected(cid, e))?;
            for dep in delta.dependencies() {
                f.push(self, *dep, mark)?;
            }
        }
        out.into_sorted_vec()
            .into_iter()
            .map(|(_, b)| stored_cid(&b))
            .collect()
    }
}

/// Deltas still to visit, highest priority first, each with whose heads
/// reach it.
#[derive(Default)]
struct Frontier {
    heap: BinaryHeap<(u64, Vec<u8>)>,
    marks: HashMap<Cid, u8>,
    /// Entries reached from our heads only: the walk ends when none is left.
    ours_only: usize,
}

impl Frontier {
    fn push(&mut self, replica: &Replica, cid: Cid, mark: u8) -> Result<()> {
        if let Some(m) = self.marks.get_mut(&cid) {
            if *m == OURS && mark & THEIRS != 0 {
                self.ours_only -= 1;
            }
            *m |= mark;
            return Ok(());
        }
        let Some(info) = replica.tree().get(cid_key(prefix::DELTA, &cid))? else {
            return Ok(()); // not applied here: nothing to say about it
        };
        let info = DeltaInfo::decode(&info)?;
        self.marks.insert(cid, mark);
        if mark == OURS {
            self.ours_only += 1;
        }
        self.heap.push((info.priority, cid.to_bytes()));
        Ok(())
    }

    fn pop(&mut self) -> Result<Option<(Cid, u64, u8)>> {
        let Some((priority, bytes)) = self.heap.pop() else {
            return Ok(None);
        };
        let cid = stored_cid(&bytes)?;
        let mark = self.marks.remove(&cid).unwrap_or(0);
        if mark == OURS {
            self.ours_only -= 1;
        }
        Ok(Some((cid, priority, mark)))
    }
}
