//! The sync walk (spec §5): from announced heads down to what is applied,
//! fetching each missing block, receipt-checking it and storing it pending
//! before following its links, then applying what became ready.

use std::collections::{HashSet, VecDeque};

use cid::Cid;

use super::{Replica, SyncBudget, SyncReport};
use crate::delta::Delta;
use crate::error::{DagError, Rejection, Result};
use crate::source::BlockSource;
use crate::store::{cid_key, prefix};

impl Replica {
    /// Fetches what is missing below `heads` from `source`, verifies it and
    /// applies everything that can be applied (spec §5).
    pub async fn sync<S: BlockSource>(&self, heads: &[Cid], source: &S) -> Result<SyncReport> {
        self.sync_with(heads, source, SyncBudget::default()).await
    }

    /// [`Replica::sync`] with a budget.
    pub async fn sync_with<S: BlockSource>(
        &self,
        heads: &[Cid],
        source: &S,
        budget: SyncBudget,
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut queue: VecDeque<Cid> = VecDeque::new();
        let mut queued: HashSet<Cid> = HashSet::new();
        for h in heads {
            if queued.insert(*h) {
                queue.push_back(*h);
            }
        }
        while let Some(c) = queue.pop_front() {
            if self.is_applied(&c)? || self.is_rejected(&c)? {
                continue;
            }
            let delta = match self.tree.get(cid_key(prefix::PENDING, &c))? {
                Some(bytes) => {
                    Delta::decode_verified(&bytes).map_err(|e| DagError::rejected(c, e))?
                }
                None => {
                    if report.fetched >= budget.max_fetch {
                        report.budget_exhausted = true;
                        break;
                    }
                    if self.pending_is_full() {
                        report.pending_full = true;
                        break;
                    }
                    let Ok(Some(bytes)) = source.get(&c).await else {
                        report.missing.push(c);
                        continue;
                    };
                    match self.ingest(&c, &bytes) {
                        Ok(delta) => {
                            report.fetched += 1;
                            delta
                        }
                        Err(DagError::Rejected { reason, .. }) => {
                            match *reason {
                                Rejection::HashMismatch(_) => report.missing.push(c),
                                reason => report.rejected.push((c, reason)),
                            }
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            for dep in delta.dependencies() {
                if !queued.contains(dep) && !self.is_applied(dep)? {
                    queued.insert(*dep);
                    queue.push_back(*dep);
                }
            }
        }
        report.absorb(self.apply_pending_with(budget.max_apply)?);
        report.pending = self.pending_count();
        Ok(report)
    }

    /// Receipt-checks a block served for `cid` (spec §3 steps 1-7) without
    /// storing it. A block failing a content check is remembered as
    /// rejected; a hash mismatch is not (the server lied, not the block).
    /// Needs no lock: callers may verify many blocks in parallel.
    pub fn verify_block(&self, cid: &Cid, bytes: &[u8]) -> Result<Delta> {
        match Delta::verify(cid, bytes, &self.config.cluster, &self.config.trust) {
            Ok(d) => Ok(d),
            Err(reason) => {
                if !matches!(
                    reason,
                    Rejection::HashMismatch(_)
                        | Rejection::UnsupportedCid(_)
                        | Rejection::BlockTooLarge { .. }
                ) {
                    self.tree.insert(
                        cid_key(prefix::REJECTED, cid),
                        reason.to_string().as_bytes(),
                    )?;
                }
                Err(DagError::rejected(*cid, reason))
            }
        }
    }

    /// [`Replica::verify_block`], then stores the block as pending.
    pub fn ingest(&self, cid: &Cid, bytes: &[u8]) -> Result<Delta> {
        let delta = self.verify_block(cid, bytes)?;
        let _guard = self.lock();
        if self.tree.contains_key(cid_key(prefix::DELTA, cid))? {
            return Ok(delta);
        }
        let k = cid_key(prefix::PENDING, cid);
        if self.tree.contains_key(&k)? {
            return Ok(delta);
        }
        self.check_pending_room(bytes.len())?;
        self.tree.insert(k, bytes)?;
        self.pending.add(bytes.len());
        Ok(delta)
    }
}
