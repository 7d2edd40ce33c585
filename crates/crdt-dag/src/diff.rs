//! What another replica lacks: the deltas reachable from our heads and not
//! from theirs, for the bulk sync protocol (one answer, not one round trip
//! per DAG level).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use cid::Cid;

use crate::delta::Delta;
use crate::error::{DagError, Result};
use crate::replica::Replica;
use crate::store::{DeltaInfo, chain_key, cid_key, key, prefix, stored_cid};

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
        let writers = self.writer_chains()?;
        for w in &writers {
            if out.len() < MAX_FRONTIER && !out.contains(&w.latest) {
                out.push(w.latest);
            }
        }
        let deepest = writers.iter().map(|w| w.seq).max().unwrap_or(0);
        let mut step = 1u64;
        while step < deepest && out.len() < MAX_FRONTIER {
            for w in &writers {
                let Some(seq) = w.seq.checked_sub(step).filter(|s| *s > 0) else {
                    continue;
                };
                if let Some(v) = self.tree().get(chain_key(&w.key, seq))? {
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

    /// The applied deltas reachable from our heads and not from
    /// `their_frontier` (the asker's [`Replica::frontier`]; CIDs we don't
    /// know are ignored), oldest first (ascending priority): the `limit`
    /// oldest of them, so an asker that applies an answer can ask again for
    /// the next part. An answer may include deltas the asker already has
    /// (where we are behind it on a writer); applying them again is a no-op.
    ///
    /// Answered from the writer chains ([`Replica::missing_by_chain`]), in
    /// time linear in the answer, unless the frontier may be cut short
    /// ([`MAX_FRONTIER`] CIDs) or a writer forked here: then by walking the
    /// DAG ([`Replica::missing_by_walk`]).
    pub fn missing_for(&self, their_frontier: &[Cid], limit: usize) -> Result<Vec<Cid>> {
        if their_frontier.len() < MAX_FRONTIER && !self.has_forks()? {
            self.missing_by_chain(their_frontier, limit)
        } else {
            self.missing_by_walk(their_frontier, limit)
        }
    }

    /// [`Replica::missing_for`] from the writer chains. A replica's applied
    /// set is closed under dependencies and `prev` is one, so, with no fork,
    /// it holds each writer's chain up to some seq and nothing above: the
    /// asker's frontier names that seq for every writer it knows. Where we
    /// know the asker's entry, what it lacks of that writer is exactly the
    /// chain above it; where we are behind the asker (its latest is unknown
    /// here), we send the chain above the highest of its older entries we
    /// know. The writers' chains are merged by priority, which grows along
    /// each chain, so the answer is oldest first; each step reads one chain
    /// entry and one index record, whatever the depth below.
    ///
    /// It assumes the frontier lists every writer the asker knows (a
    /// writer missing from it is sent whole) and that no writer forked
    /// here (a forked writer's second branch is not in its chain index).
    pub fn missing_by_chain(&self, their_frontier: &[Cid], limit: usize) -> Result<Vec<Cid>> {
        // The asker's seq on each writer's chain, as far as we can place it.
        let mut theirs: HashMap<[u8; 32], u64> = HashMap::new();
        for cid in their_frontier {
            if let Some(info) = self.tree().get(cid_key(prefix::DELTA, cid))? {
                let info = DeltaInfo::decode(&info)?;
                let seq = theirs.entry(*info.writer.public_key_bytes()).or_default();
                *seq = (*seq).max(info.seq);
            }
        }
        let mut cursors = Vec::new();
        let mut next: BinaryHeap<Reverse<(u64, Vec<u8>, usize)>> = BinaryHeap::new();
        for w in self.writer_chains()? {
            // Below our floor we have no block to send: the asker must get
            // those from a peer that has them (or load our checkpoint).
            let have = theirs
                .get(&w.key)
                .copied()
                .unwrap_or(0)
                .max(self.floor_seq(&w.key)?);
            if have >= w.seq {
                continue;
            }
            let mut cursor = self
                .tree()
                .range(chain_key(&w.key, have + 1)..=chain_key(&w.key, u64::MAX));
            if let Some(entry) = self.chain_entry(&mut cursor)? {
                next.push(Reverse((entry.0, entry.1, cursors.len())));
            }
            cursors.push(cursor);
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(Reverse((_, cid, i))) = next.pop() else {
                break;
            };
            out.push(stored_cid(&cid)?);
            if let Some(entry) = self.chain_entry(&mut cursors[i])? {
                next.push(Reverse((entry.0, entry.1, i)));
            }
        }
        Ok(out)
    }

    /// The next delta of a chain cursor: its priority and CID bytes.
    fn chain_entry(&self, cursor: &mut sled::Iter) -> Result<Option<(u64, Vec<u8>)>> {
        let Some(entry) = cursor.next() else {
            return Ok(None);
        };
        let (_, cid) = entry?;
        let info = self
            .tree()
            .get(key(prefix::DELTA, &[&cid]))?
            .ok_or_else(|| DagError::Corrupt("chain entry of an unapplied delta".into()))?;
        Ok(Some((DeltaInfo::decode(&info)?.priority, cid.to_vec())))
    }

    /// [`Replica::missing_for`] by walking the DAG down from our heads, for
    /// any frontier and any history: exact for everything we know, but it
    /// reads every delta between our heads and the asker's frontier, the
    /// answer's `limit` or not.
    ///
    /// The walk visits deltas in descending priority: an ancestor always has
    /// a lower priority than its descendants, so by the time a delta is
    /// reached every path from their frontier to it has been seen.
    pub fn missing_by_walk(&self, their_heads: &[Cid], limit: usize) -> Result<Vec<Cid>> {
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
            let Some(block) = self.block(&cid)? else {
                // Below the floor: indexed, no block to send or to walk
                // through; the walk stops here.
                if self.has_floor()? {
                    continue;
                }
                return Err(DagError::Corrupt(format!(
                    "applied delta {cid} has no block"
                )));
            };
            if mark == OURS && limit > 0 {
                out.push((priority, cid.to_bytes()));
                if out.len() > limit {
                    out.pop();
                }
            }
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

/// A writer's chain in the index: its public key, latest seq and the
/// delta at that seq.
pub(crate) struct WriterChain {
    pub(crate) key: [u8; 32],
    pub(crate) seq: u64,
    pub(crate) latest: Cid,
}

impl Replica {
    /// Every writer with a chain here, in key order.
    pub(crate) fn writer_chains(&self) -> Result<Vec<WriterChain>> {
        let mut out = Vec::new();
        let mut from = vec![prefix::CHAIN];
        loop {
            let Some(first) = self.tree().range(from.clone()..).next() else {
                break;
            };
            let (k, _) = first?;
            if k.first() != Some(&prefix::CHAIN) || k.len() != CHAIN_KEY_LEN {
                break;
            }
            let writer: [u8; 32] = k[1..33].try_into().expect("32 bytes");
            let p = key(prefix::CHAIN, &[&writer]);
            if let Some(last) = self.tree().scan_prefix(&p).next_back() {
                let (k, v) = last?;
                let seq = u64::from_be_bytes(
                    k.get(33..CHAIN_KEY_LEN)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| DagError::Corrupt("chain key".into()))?,
                );
                out.push(WriterChain {
                    key: writer,
                    seq,
                    latest: stored_cid(&v)?,
                });
            }
            // Skip to the next writer: past the highest seq of this one.
            from = chain_key(&writer, u64::MAX);
            from.push(0);
        }
        Ok(out)
    }

    /// Whether a fork of any writer is recorded here.
    fn has_forks(&self) -> Result<bool> {
        Ok(self
            .tree()
            .scan_prefix([prefix::FORK])
            .next()
            .transpose()?
            .is_some())
    }
}

/// Prefix, writer key, big-endian seq.
const CHAIN_KEY_LEN: usize = 1 + 32 + 8;

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
