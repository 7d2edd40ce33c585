//! Applying many deltas in causal order: verified bulk answers, and the
//! pending set (also what resumes after a crash), in atomic batches that are
//! durable before their events fire; a rejected delta takes its descendants.

use std::collections::{HashMap, VecDeque};

use cid::Cid;

use super::{Replica, SyncReport};
use crate::delta::Delta;
use crate::error::{DagError, Rejection, Result};
use crate::limits::APPLY_BATCH_DELTAS;
use crate::pin::PinEvent;
use crate::store::{Overlay, cid_key, prefix, stored_cid};

impl Replica {
    /// Applies blocks already passed through [`Replica::verify_block`] that
    /// arrive mostly oldest first (a bulk sync answer): each one whose
    /// dependencies are applied, or earlier in `blocks`, is applied at once
    /// in one atomic batch, without being staged as pending; the others are
    /// stored pending. Then reports the events, and applies any pending
    /// delta that became ready.
    pub fn apply_verified(&self, blocks: Vec<(Cid, Vec<u8>, Delta)>) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        {
            let _guard = self.lock();
            self.check_not_loading()?;
            let mut ov = Overlay::new(&self.tree, &self.pins);
            let mut events = Vec::new();
            let mut freed = (0usize, 0u64);
            let no_children = HashMap::new();
            for (cid, block, delta) in blocks {
                if ov.contains(&cid_key(prefix::DELTA, &cid))? {
                    continue;
                }
                let mut ready = true;
                for dep in delta.dependencies() {
                    if !ov.contains(&cid_key(prefix::DELTA, dep))? {
                        ready = false;
                        break;
                    }
                }
                let pending_key = cid_key(prefix::PENDING, &cid);
                let was_pending = self.tree.get(&pending_key)?.map(|b| b.len() as u64);
                if !ready {
                    if was_pending.is_none() && !ov.contains(&pending_key)? {
                        if self.check_pending_room(block.len()).is_err() {
                            report.pending_full = true;
                            break;
                        }
                        self.pending.add(block.len());
                        ov.insert(pending_key, block);
                    }
                    continue;
                }
                match self.apply_delta(&mut ov, &cid, &block, &delta, &mut events)? {
                    Ok(()) => {
                        report.applied += 1;
                        report.ops_applied += delta.ops.len();
                        if let Some(len) = was_pending {
                            freed.0 += 1;
                            freed.1 += len;
                        }
                    }
                    Err(reason) => {
                        self.commit_batch(&mut ov, &mut freed, &mut events)?;
                        self.reject_branch(cid, reason, &no_children, &mut report)?;
                    }
                }
            }
            self.commit_batch(&mut ov, &mut freed, &mut events)?;
        }
        report.absorb(self.apply_pending()?);
        report.pending = self.pending_count();
        Ok(report)
    }

    /// Applies every pending delta whose dependencies are applied, in causal
    /// order, in atomic batches. This is also what resumes the work a crash
    /// interrupted.
    pub fn apply_pending(&self) -> Result<SyncReport> {
        self.apply_pending_with(usize::MAX)
    }

    pub(super) fn apply_pending_with(&self, max_apply: usize) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let _guard = self.lock();
        if self.pending_count() == 0 || self.loading.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(report);
        }
        // The dependency graph of the pending set (CIDs only; blocks stay on disk).
        let mut waiting: HashMap<Cid, usize> = HashMap::new();
        let mut children: HashMap<Cid, Vec<Cid>> = HashMap::new();
        let mut ready: VecDeque<Cid> = VecDeque::new();
        let mut doomed: Vec<(Cid, Cid)> = Vec::new();
        for kv in self.tree.scan_prefix([prefix::PENDING]) {
            let (k, v) = kv?;
            let cid = stored_cid(&k[1..])?;
            let delta = Delta::decode_verified(&v).map_err(|e| DagError::rejected(cid, e))?;
            let mut n = 0;
            for dep in delta.dependencies() {
                if self.tree.contains_key(cid_key(prefix::DELTA, dep))? {
                    continue;
                }
                if self.tree.contains_key(cid_key(prefix::REJECTED, dep))? {
                    doomed.push((cid, *dep));
                }
                n += 1;
                children.entry(*dep).or_default().push(cid);
            }
            if n == 0 {
                ready.push_back(cid);
            } else {
                waiting.insert(cid, n);
            }
        }
        for (cid, bad) in doomed {
            self.reject_branch(
                cid,
                Rejection::RejectedAncestor(bad),
                &children,
                &mut report,
            )?;
        }

        let mut events = Vec::new();
        let mut ov = Overlay::new(&self.tree, &self.pins);
        let mut in_batch = 0;
        let mut freed = (0usize, 0u64);
        while let Some(cid) = ready.pop_front() {
            if report.applied >= max_apply {
                report.budget_exhausted = true;
                break;
            }
            let Some(block) = self.tree.get(cid_key(prefix::PENDING, &cid))? else {
                continue; // rejected as part of a doomed branch
            };
            let delta = Delta::decode_verified(&block).map_err(|e| DagError::rejected(cid, e))?;
            match self.apply_delta(&mut ov, &cid, &block, &delta, &mut events)? {
                Ok(()) => {
                    report.applied += 1;
                    report.ops_applied += delta.ops.len();
                    freed.0 += 1;
                    freed.1 += block.len() as u64;
                    in_batch += 1;
                    for child in children.remove(&cid).unwrap_or_default() {
                        let left = waiting.get_mut(&child).expect("child is waiting");
                        *left -= 1;
                        if *left == 0 {
                            waiting.remove(&child);
                            ready.push_back(child);
                        }
                    }
                }
                Err(reason) => {
                    // Commit what came before so the rejection sees a clean store.
                    self.commit_batch(&mut ov, &mut freed, &mut events)?;
                    in_batch = 0;
                    self.reject_branch(cid, reason, &children, &mut report)?;
                }
            }
            if in_batch >= APPLY_BATCH_DELTAS {
                self.commit_batch(&mut ov, &mut freed, &mut events)?;
                in_batch = 0;
            }
        }
        self.commit_batch(&mut ov, &mut freed, &mut events)?;
        report.pending = self.pending_count();
        Ok(report)
    }

    /// Commits one batch of applied deltas (durable: their blocks' frame
    /// is synced), then fires its events; `ov` starts the next batch empty.
    fn commit_batch<'t>(
        &'t self,
        ov: &mut Overlay<'t>,
        freed: &mut (usize, u64),
        events: &mut Vec<PinEvent>,
    ) -> Result<()> {
        if ov.is_empty() {
            return Ok(());
        }
        self.commit_overlay(std::mem::replace(ov, Overlay::new(&self.tree, &self.pins)))?;
        self.pending.sub(freed.0, freed.1);
        *freed = (0, 0);
        self.fire(events);
        events.clear();
        Ok(())
    }

    /// Rejects `cid` and every pending delta that depends on it.
    fn reject_branch(
        &self,
        cid: Cid,
        reason: Rejection,
        children: &HashMap<Cid, Vec<Cid>>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut stack = vec![(cid, reason)];
        while let Some((c, why)) = stack.pop() {
            if let Some(b) = self.tree.remove(cid_key(prefix::PENDING, &c))? {
                self.pending.sub(1, b.len() as u64);
            } else if self.tree.contains_key(cid_key(prefix::REJECTED, &c))? {
                continue;
            }
            self.tree
                .insert(cid_key(prefix::REJECTED, &c), why.to_string().as_bytes())?;
            report.rejected.push((c, why));
            for child in children.get(&c).into_iter().flatten() {
                stack.push((*child, Rejection::RejectedAncestor(c)));
            }
        }
        Ok(())
    }
}
