//! The writer with batching on: writes are acknowledged once in the durable
//! batch queue, and committed a batch at a time as one delta each, while the
//! next batch fills.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use crdt_dag::{DagError, Replica, Write};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::PeerError;
use crate::sync::batch_log::BatchLog;
use crate::sync::consensus::{ConsensusSettings, Writer, refuse_rest};
use crate::sync::group_commit::WriteReq;
use crate::sync::queued::Queued;

/// Longest wait between two tries of a batch commit that keeps failing.
const COMMIT_RETRY_MAX: Duration = Duration::from_secs(30);

/// Queued writes with their keys in the batch queue, oldest first.
type Batch = Vec<(u64, Write)>;

/// What a commit gives back: the delta's block, or why it failed; and its
/// batch.
type CommitResult = (Result<Vec<(Cid, Vec<u8>)>, PeerError>, Batch);

/// A commit running on a blocking thread.
type Committing = JoinHandle<CommitResult>;

/// A commit that failed: its batch, still queued, and why.
struct Failed {
    batch: Batch,
    error: PeerError,
}

/// Batching on: writes are acknowledged once they are in the durable batch
/// queue (and in `queued`, which reads see); a batch is committed as one
/// delta when it holds `max_batch_size` writes or `max_batch_age` after its
/// first write, and at shutdown. Writes go on being queued while a batch
/// commits (a commit of 500 takes 5-15 ms here, a quarter of the time at
/// full load); a full batch waits for the commit before it, so at most two
/// batches are held. A commit that fails is retried a batch age later
/// (doubled at each failure), the writes still queued, and new writes are
/// refused with its error until one succeeds.
pub(crate) async fn batch_writer(
    w: Writer,
    settings: ConsensusSettings,
    mut rx: mpsc::Receiver<WriteReq>,
    log: BatchLog,
    queued: Queued,
    cancel: CancellationToken,
) {
    let max = settings.max_batch_size.max(1);
    // A crash may have left acknowledged writes: commit them first.
    let mut batch: Batch = log.load().unwrap_or_else(|e| {
        warn!(error = %e, "reading the batch queue");
        vec![]
    });
    queued.record(batch.iter().map(|(k, w)| (*k, w)));
    let mut deadline = (!batch.is_empty()).then(Instant::now);
    // Wait before retrying a failed commit: a batch age, doubled at each
    // failure up to COMMIT_RETRY_MAX (a full disk fails every try).
    let mut retry_in = settings.max_batch_age;
    // Why the last commit failed, until one succeeds: new writes are
    // refused with it. The queue's file may have room while the store has
    // none (sled keeps failing until it is opened again), and a write
    // acknowledged then could not be read until the peer restarts.
    let mut failing: Option<Arc<PeerError>> = None;
    let mut committing: Option<Committing> = None;
    loop {
        let full = batch.len() >= max;
        let due = deadline.is_some_and(|d| d <= Instant::now());
        // After a failure only the retry time starts a commit.
        if committing.is_none() && !batch.is_empty() && (due || (full && failing.is_none())) {
            let n = batch.len().min(max);
            let chunk: Batch = batch.drain(..n).collect();
            // What a failed commit gave back beyond one batch goes next.
            deadline = (!batch.is_empty()).then(Instant::now);
            committing = Some(spawn_commit(&w, &log, chunk));
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            done = async { committing.as_mut().expect("guarded").await }, if committing.is_some() => {
                committing = None;
                match committed(&w, &queued, done) {
                    Ok(()) => {
                        retry_in = settings.max_batch_age;
                        failing = None;
                    }
                    Err(failed) => {
                        let Failed { batch: mut kept, error } = *failed;
                        kept.append(&mut batch);
                        batch = kept;
                        failing = Some(Arc::new(error));
                        deadline = Some(Instant::now() + retry_in);
                        retry_in = (retry_in * 2).min(COMMIT_RETRY_MAX.max(settings.max_batch_age));
                    }
                }
            }
            _ = sleep_until_opt(deadline), if committing.is_none() => {}
            // A full batch takes no more until it is committing; while
            // commits fail, writes are still taken, to be refused at once
            // (a full batch whose commit failed would otherwise leave them
            // waiting for a disk with room again).
            r = rx.recv(), if !full || failing.is_some() => match r {
                Some(first) => {
                    let mut reqs = vec![first];
                    while batch.len() + reqs.len() < max {
                        match rx.try_recv() {
                            Ok(r) => reqs.push(r),
                            Err(_) => break,
                        }
                    }
                    if let Some(cause) = &failing {
                        for r in reqs {
                            let _ = r.respond_to.send(Err(PeerError::Queue(cause.clone())));
                        }
                        continue;
                    }
                    let accepted = accept(&w.replica, &queued, reqs);
                    if let Some(keys) = append(&log, &queued, accepted).await {
                        batch.extend(keys);
                        deadline.get_or_insert_with(|| Instant::now() + settings.max_batch_age);
                    }
                }
                None => break,
            },
        }
    }
    // Shutdown: the commit running ends, then what is queued is committed.
    if let Some(c) = committing.take()
        && let Err(failed) = committed(&w, &queued, c.await)
    {
        let mut kept = failed.batch;
        kept.append(&mut batch);
        batch = kept;
    }
    while !batch.is_empty() {
        let n = batch.len().min(max);
        let chunk: Batch = batch.drain(..n).collect();
        if commit_queued(&w, &log, chunk, &queued).await.is_err() {
            warn!(
                "the batch queue could not be committed at shutdown; it is committed at the next start"
            );
            break;
        }
    }
    refuse_rest(rx);
}

/// The requests that can be queued; an unpin of something not pinned (and
/// not pinned earlier in the queue) is refused now, as Go's is.
fn accept(replica: &Replica, queued: &Queued, reqs: Vec<WriteReq>) -> Vec<WriteReq> {
    let mut accepted: Vec<WriteReq> = Vec::with_capacity(reqs.len());
    for req in reqs {
        if let Write::Unpin(cid) = &req.write {
            let earlier = accepted
                .iter()
                .rev()
                .find(|r| r.write.cid() == cid)
                .map(|r| matches!(r.write, Write::Pin(_)));
            let pinned = match earlier.or_else(|| queued.get(cid).map(|q| q.is_some())) {
                Some(p) => p,
                None => match replica.contains(cid) {
                    Ok(p) => p,
                    Err(e) => {
                        // Not known to be unpinned: the store's error.
                        let _ = req.respond_to.send(Err(PeerError::from(e)));
                        continue;
                    }
                },
            };
            if !pinned {
                let _ = req
                    .respond_to
                    .send(Err(PeerError::Dag(DagError::NotPinned(*cid))));
                continue;
            }
        }
        accepted.push(req);
    }
    accepted
}

/// Appends the accepted writes to the durable queue and acknowledges them
/// (or answers each with the queue's error); returns them with their keys.
async fn append(log: &BatchLog, queued: &Queued, accepted: Vec<WriteReq>) -> Option<Batch> {
    if accepted.is_empty() {
        return None;
    }
    let writes: Vec<Write> = accepted.iter().map(|r| r.write.clone()).collect();
    let l = log.clone();
    match tokio::task::spawn_blocking(move || l.append(&writes).map(|keys| (keys, writes))).await {
        Ok(Ok((keys, writes))) => {
            // Readable before acknowledged: a client that saw its 200
            // reads its write.
            queued.record(keys.iter().copied().zip(&writes));
            for r in accepted {
                let _ = r.respond_to.send(Ok(()));
            }
            Some(keys.into_iter().zip(writes).collect())
        }
        Ok(Err(e)) => {
            let cause = Arc::new(e);
            for r in accepted {
                let _ = r.respond_to.send(Err(PeerError::Queue(cause.clone())));
            }
            None
        }
        Err(e) => {
            warn!(error = %e, "batch queue task failed");
            None
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Starts committing `batch` as one delta on a blocking thread.
fn spawn_commit(w: &Writer, log: &BatchLog, batch: Batch) -> Committing {
    let (r, l, written) = (w.replica.clone(), log.clone(), w.carrier());
    tokio::task::spawn_blocking(move || {
        let outcome = commit_batch(&r, &l, &batch, written);
        (outcome, batch)
    })
}

/// A commit's outcome: on success its writes leave `queued` and the delta
/// is announced; on failure the batch is given back, still queued.
fn committed(
    w: &Writer,
    queued: &Queued,
    done: Result<CommitResult, tokio::task::JoinError>,
) -> Result<(), Box<Failed>> {
    match done {
        Ok((Ok(blocks), batch)) => {
            if let Some((last, _)) = batch.last() {
                queued.forget_through(*last);
            }
            w.durable(blocks);
            Ok(())
        }
        Ok((Err(e), batch)) => {
            warn!(error = %e, "committing a batch; it stays queued and is retried");
            Err(Box::new(Failed { batch, error: e }))
        }
        Err(e) => {
            // The task panicked with the batch: it is still in the log.
            warn!(error = %e, "batch commit task failed; the queue is committed at the next start");
            Ok(())
        }
    }
}

/// Commits queued writes as one delta, then drops them from the queue and
/// from `queued`. They were acknowledged already, so an unpin that no
/// longer applies (a concurrent remote unpin won) is dropped with a log
/// line, not an error. On failure the batch is given back, still queued.
async fn commit_queued(
    w: &Writer,
    log: &BatchLog,
    batch: Batch,
    queued: &Queued,
) -> Result<(), Box<Failed>> {
    committed(w, queued, spawn_commit(w, log, batch).await)
}

/// Batching was on in an earlier run and is off now: the writes it
/// acknowledged from the durable queue are committed before any new one
/// (retried every second while the store refuses them: they stay readable
/// through `queued` meanwhile).
pub(crate) async fn commit_left_over(
    w: &Writer,
    log: &BatchLog,
    queued: &Queued,
    cancel: &CancellationToken,
) {
    let mut batch = match log.load() {
        Ok(b) if b.is_empty() => return,
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "reading the batch queue; it is read again at the next start");
            return;
        }
    };
    info!(
        writes = batch.len(),
        "committing the batch queue an earlier run left"
    );
    queued.record(batch.iter().map(|(k, w)| (*k, w)));
    loop {
        match commit_queued(w, log, batch, queued).await {
            Ok(()) => return,
            Err(failed) => batch = failed.batch,
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
/// One delta of the batch's net writes; the batch leaves the log.
fn commit_batch(
    r: &Replica,
    l: &BatchLog,
    batch: &[(u64, Write)],
    mut written: impl FnMut(&[(Cid, Vec<u8>)]),
) -> Result<Vec<(Cid, Vec<u8>)>, PeerError> {
    // The last write to a CID wins; an unpin of a CID only pinned earlier
    // in this batch leaves nothing to write.
    let mut last: HashMap<Cid, usize> = HashMap::new();
    for (i, (_, w)) in batch.iter().enumerate() {
        last.insert(*w.cid(), i);
    }
    let mut writes: Vec<Write> = batch
        .iter()
        .enumerate()
        .filter(|(i, (_, w))| last[w.cid()] == *i)
        .map(|(_, (_, w))| w.clone())
        .filter(|w| match w {
            // Kept when the store can't say: the write below then fails
            // (the batch stays queued) or drops it as no longer applying.
            Write::Unpin(cid) => r.contains(cid).unwrap_or(true),
            Write::Pin(_) => true,
        })
        .collect();
    let mut blocks = vec![];
    while !writes.is_empty() {
        match r.write_unnotified(writes.clone()) {
            Ok(w) => {
                blocks.push((w.cid, w.block));
                // Durable already (its frame in the block file is synced).
                // Handed over while the batch is still queued, as with
                // batching off: the heads name the delta already, and an
                // announcement made meanwhile should carry it.
                written(&blocks);
                r.notify(&w.events);
                break;
            }
            Err(DagError::NotPinned(cid)) => {
                debug!(%cid, "queued unpin no longer applies");
                writes.retain(|w| !matches!(w, Write::Unpin(c) if *c == cid));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let keys: Vec<u64> = batch.iter().map(|(k, _)| *k).collect();
    l.remove(&keys)?;
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use cluster_types::{Pin, PinOptions};
    use multihash_codetable::{Code, MultihashDigest};

    use super::*;

    fn pin(n: u8) -> Write {
        let cid = Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]));
        Write::Pin(Pin::new(cid, PinOptions::default()))
    }

    /// A batch's delta is handed to the announcer as soon as it is
    /// written, while the batch is still queued: the
    /// heads name it from then on, and an announcement made meanwhile
    /// should carry it rather than send the other peers to fetch it.
    #[test]
    fn a_batch_is_handed_over_while_still_queued() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let r = Replica::temporary(key, crdt_dag::ReplicaConfig::new("batch")).unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = BatchLog::open(&db, None).unwrap();
        log.append(&[pin(1), pin(2)]).unwrap();
        let batch = log.load().unwrap();
        let mut handed = Vec::new();
        let blocks = commit_batch(&r, &log, &batch, |written| {
            assert_eq!(log.load().unwrap().len(), 2, "left the queue first");
            handed.extend(written.iter().map(|(cid, _)| *cid));
        })
        .unwrap();
        assert_eq!(handed, blocks.iter().map(|(c, _)| *c).collect::<Vec<_>>());
        assert_eq!(handed.len(), 1);
        assert!(log.load().unwrap().is_empty());
        assert_eq!(r.heads().unwrap(), handed);
    }
}
