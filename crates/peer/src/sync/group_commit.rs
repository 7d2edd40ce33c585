//! Group commit with batching off: the writes that queued while the
//! previous delta was being committed become the next delta (one
//! signature, one store batch, one synced append to the block file), and
//! each is acknowledged once that delta is durable. A write alone is still its own delta, with no
//! added wait; under load the writer yields a few more times before it
//! commits, so that more of the writes about to queue join the delta.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cid::Cid;
use crdt_dag::{DagError, Replica, Write};
use tokio::sync::{mpsc, oneshot};

use crate::error::PeerError;

/// Most queued writes taken into one delta (well under the per-delta op
/// limit; a group over the block size falls back to a delta per write).
const GROUP_COMMIT_MAX: usize = 1024;

/// Under load, when the previous delta had at least this many writes...
const LINGER_FROM: usize = 8;
/// ...the writer yields up to this many more times before it commits, each
/// time only if the one before brought more writes.
const LINGER_YIELDS: usize = 8;

/// A queued write and where its answer goes.
pub(crate) struct WriteReq {
    pub(crate) write: Write,
    pub(crate) respond_to: oneshot::Sender<Result<(), PeerError>>,
    /// Counts this write as in flight until it is dropped, which the
    /// writer does once it answered.
    pub(crate) _counted: Counted,
}

/// How many writes were submitted and not yet answered (with batching on,
/// answered once in the batch queue, before their commit).
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub(crate) fn busy(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn count(&self) -> Counted {
        self.0.fetch_add(1, Ordering::Relaxed);
        Counted(self.0.clone())
    }
}

/// One write of an [`InFlight`] count, until dropped.
#[derive(Debug)]
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for WriteReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteReq")
            .field("write", &self.write)
            .finish()
    }
}

/// The writes of the next delta: `first`, then whatever queued once the
/// request handlers that are ready ran (one yield: a lone client waits for
/// nothing, as a yield returns at once when nobody else runs). When the
/// previous delta had [`LINGER_FROM`] writes or more (`last`), it yields
/// again while each yield brings more, up to [`LINGER_YIELDS`] times.
///
/// Why: with many clients the writes arrive in two cohorts, each queuing
/// while the other's delta commits, so deltas held about half of 64
/// clients' writes; every delta costs its signature, store batch and
/// syncs on each peer. With the extra yields a delta holds about 40 of
/// them instead of 34 (spec/sync.md §5).
pub(crate) async fn gather(
    first: WriteReq,
    rx: &mut mpsc::Receiver<WriteReq>,
    last: usize,
) -> Vec<WriteReq> {
    tokio::task::yield_now().await;
    let mut reqs = vec![first];
    take_queued(rx, &mut reqs);
    if last >= LINGER_FROM {
        for _ in 0..LINGER_YIELDS {
            let before = reqs.len();
            tokio::task::yield_now().await;
            take_queued(rx, &mut reqs);
            if reqs.len() == before || reqs.len() >= GROUP_COMMIT_MAX {
                break;
            }
        }
    }
    reqs
}

fn take_queued(rx: &mut mpsc::Receiver<WriteReq>, reqs: &mut Vec<WriteReq>) {
    while reqs.len() < GROUP_COMMIT_MAX {
        match rx.try_recv() {
            Ok(r) => reqs.push(r),
            Err(_) => break,
        }
    }
}

/// Commits `reqs` as one delta and answers each once it is durable. Every
/// write is judged as if it came alone, in order: an unpin of a CID that
/// is neither pinned nor pinned earlier in the group fails by itself. A
/// group that can't be one delta (over the block size) is committed as one
/// delta per write. `written` gets the blocks as soon as they are written,
/// before the writes are answered (the announcer carries them). Returns the
/// blocks written.
pub(crate) fn commit_group(
    replica: &Replica,
    reqs: Vec<WriteReq>,
    written: impl FnMut(&[(Cid, Vec<u8>)]),
) -> Vec<(Cid, Vec<u8>)> {
    let accepted = screen(replica, reqs);
    if accepted.is_empty() {
        return vec![];
    }
    let net = net_writes(replica, &accepted);
    if net.is_empty() {
        // Pins undone later in the group: nothing changes, as in sequence.
        answer(accepted, |_| Ok(()));
        return vec![];
    }
    match replica.write_unnotified(net) {
        Ok(w) => hand_over_then(
            replica,
            accepted,
            vec![(w.cid, w.block)],
            w.events,
            written,
            |_| Ok(()),
        ),
        // A full disk fails every write alike: no delta per write.
        Err(e) if e.is_disk_full() => {
            let e = PeerError::from(e);
            answer(accepted, |_| Err(copy_error(&e)));
            vec![]
        }
        Err(_) => commit_each(replica, accepted, written),
    }
}

/// The same failure for each waiter of a group (store errors are not
/// `Clone`): a full disk stays [`PeerError::DiskFull`], the rest keeps its
/// message.
fn copy_error(e: &PeerError) -> PeerError {
    match e {
        PeerError::DiskFull(m) => PeerError::DiskFull(m.clone()),
        e => PeerError::Dag(DagError::Io(std::io::Error::other(e.to_string()))),
    }
}

/// Refuses, at once, unpins that would fail alone; returns the rest.
fn screen(replica: &Replica, reqs: Vec<WriteReq>) -> Vec<WriteReq> {
    let mut pinned: HashMap<Cid, bool> = HashMap::new();
    let mut accepted = Vec::with_capacity(reqs.len());
    for req in reqs {
        let cid = *req.write.cid();
        if let Write::Pin(_) = req.write {
            // A pin needs no lookup; an unpin after it in the group applies.
            pinned.insert(cid, true);
            accepted.push(req);
            continue;
        }
        let is_pinned = match pinned.entry(cid) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => match replica.contains(&cid) {
                Ok(p) => unknown.insert(p),
                Err(e) => {
                    // Not known to be unpinned: the store's error, not a 404.
                    let _ = req.respond_to.send(Err(PeerError::from(e)));
                    continue;
                }
            },
        };
        match &req.write {
            Write::Pin(_) => *is_pinned = true,
            Write::Unpin(_) if !*is_pinned => {
                let _ = req
                    .respond_to
                    .send(Err(PeerError::Dag(DagError::NotPinned(cid))));
                continue;
            }
            Write::Unpin(_) => *is_pinned = false,
        }
        accepted.push(req);
    }
    accepted
}

/// The group's effect: the last write to each CID, in the order of those
/// last writes, leaving out unpins of CIDs the replica doesn't hold (a pin
/// and its unpin in one group cancel out).
fn net_writes(replica: &Replica, reqs: &[WriteReq]) -> Vec<Write> {
    let mut last: HashMap<Cid, usize> = HashMap::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        last.insert(*r.write.cid(), i);
    }
    reqs.iter()
        .enumerate()
        .filter(|(i, r)| last[r.write.cid()] == *i)
        .map(|(_, r)| r.write.clone())
        .filter(|w| match w {
            // Kept when the store can't say: the write then fails (or
            // applies) rather than being acknowledged unwritten.
            Write::Unpin(cid) => replica.contains(cid).unwrap_or(true),
            Write::Pin(_) => true,
        })
        .collect()
}

/// One delta per write (a group that can't be one delta).
fn commit_each(
    replica: &Replica,
    reqs: Vec<WriteReq>,
    written: impl FnMut(&[(Cid, Vec<u8>)]),
) -> Vec<(Cid, Vec<u8>)> {
    let mut results = Vec::with_capacity(reqs.len());
    let mut events = Vec::new();
    let mut blocks = Vec::new();
    for req in &reqs {
        match replica.write_unnotified(vec![req.write.clone()]) {
            Ok(w) => {
                events.extend(w.events);
                blocks.push((w.cid, w.block));
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(PeerError::from(e))),
        }
    }
    if blocks.is_empty() {
        let mut results = results.into_iter();
        answer(reqs, |_| results.next().unwrap_or(Ok(())));
        return blocks;
    }
    let mut results = results.into_iter();
    hand_over_then(replica, reqs, blocks, events, written, |_| {
        results.next().unwrap_or(Ok(()))
    })
}

/// Hands `blocks` to `written`, fires their events, then answers each
/// request with `result`. The deltas are durable already:
/// `write_unnotified` returns once their frame in the block file is synced.
fn hand_over_then(
    replica: &Replica,
    reqs: Vec<WriteReq>,
    blocks: Vec<(Cid, Vec<u8>)>,
    events: Vec<crdt_dag::PinEvent>,
    mut written: impl FnMut(&[(Cid, Vec<u8>)]),
    result: impl FnMut(&WriteReq) -> Result<(), PeerError>,
) -> Vec<(Cid, Vec<u8>)> {
    // Before the answers: the heads name these deltas already, and an
    // announcement made meanwhile should carry their blocks rather than
    // send the other peers to fetch them.
    written(&blocks);
    replica.notify(&events);
    answer(reqs, result);
    blocks
}

fn answer(reqs: Vec<WriteReq>, mut result: impl FnMut(&WriteReq) -> Result<(), PeerError>) {
    for req in reqs {
        let r = result(&req);
        let _ = req.respond_to.send(r);
    }
}

#[cfg(test)]
mod tests {
    use cluster_types::{Pin, PinOptions};
    use multihash_codetable::{Code, MultihashDigest};

    use super::*;

    fn cid(n: u8) -> Cid {
        Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]))
    }

    fn replica() -> Replica {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        Replica::temporary(key, crdt_dag::ReplicaConfig::new("group")).unwrap()
    }

    fn req(write: Write) -> (WriteReq, oneshot::Receiver<Result<(), PeerError>>) {
        let (tx, rx) = oneshot::channel();
        let r = WriteReq {
            write,
            respond_to: tx,
            _counted: InFlight::default().count(),
        };
        (r, rx)
    }

    fn pin(n: u8, name: &str) -> Write {
        Write::Pin(Pin::new(cid(n), PinOptions::named(name)))
    }

    fn run(r: &Replica, writes: Vec<Write>) -> (usize, Vec<Result<(), PeerError>>) {
        let (reqs, rxs): (Vec<_>, Vec<_>) = writes.into_iter().map(req).unzip();
        let blocks = commit_group(r, reqs, |_| {});
        let answers = rxs
            .into_iter()
            .map(|mut rx| rx.try_recv().expect("every write is answered"))
            .collect();
        (blocks.len(), answers)
    }

    /// What [`gather`] takes when a feeder task queues one write each time
    /// it runs: `sent` writes, with `last` the previous delta's size.
    async fn gathered(last: usize, sent: u8) -> usize {
        let (tx, mut rx) = mpsc::channel(64);
        let feeder = tokio::spawn(async move {
            for n in 0..sent {
                let _ = tx.send(req(pin(n, "queued")).0).await;
                tokio::task::yield_now().await;
            }
        });
        let reqs = gather(req(pin(200, "first")).0, &mut rx, last).await;
        feeder.await.unwrap();
        reqs.len()
    }

    /// Not under load, the writer takes what queued during one yield; under
    /// load it yields again while writes keep coming, a bounded number of
    /// times.
    #[tokio::test]
    async fn under_load_the_writes_queued_over_a_few_yields_join_the_delta() {
        assert_eq!(gathered(LINGER_FROM - 1, 5).await, 2, "one yield");
        assert_eq!(gathered(LINGER_FROM, 5).await, 6, "all five");
        assert_eq!(
            gathered(LINGER_FROM, 50).await,
            2 + LINGER_YIELDS,
            "at most {LINGER_YIELDS} more yields"
        );
        assert_eq!(gathered(LINGER_FROM, 0).await, 1, "a lone write");
    }

    /// The announcer paces itself while writes are in flight; a write must
    /// stop counting once answered, or a lone client's write would wait
    /// for the pace before being announced.
    #[test]
    fn a_write_counts_as_in_flight_until_answered() {
        let r = replica();
        let in_flight = InFlight::default();
        let mut reqs = Vec::new();
        let mut rxs = Vec::new();
        for n in 0..3 {
            let (tx, rx) = oneshot::channel();
            reqs.push(WriteReq {
                write: pin(n, "p"),
                respond_to: tx,
                _counted: in_flight.count(),
            });
            rxs.push(rx);
        }
        assert!(in_flight.busy());
        let blocks = commit_group(&r, reqs, |_| {});
        assert_eq!(blocks.len(), 1);
        assert!(!in_flight.busy(), "answered writes still counted");
        assert!(
            rxs.iter_mut()
                .all(|rx| rx.try_recv().is_ok_and(|a| a.is_ok()))
        );
        // A refused write stops counting too.
        let (tx, _rx) = oneshot::channel();
        let refused = WriteReq {
            write: Write::Unpin(cid(9)),
            respond_to: tx,
            _counted: in_flight.count(),
        };
        assert!(commit_group(&r, vec![refused], |_| {}).is_empty());
        assert!(!in_flight.busy());
    }

    /// A group's blocks go to the announcer as soon as they are written,
    /// before the writes are answered: the heads name those deltas
    /// from then on, and an announcement made meanwhile should carry
    /// their blocks rather than send the other peers to fetch them.
    #[test]
    fn blocks_are_handed_over_before_the_writes_are_answered() {
        let r = replica();
        let (reqs, mut rxs): (Vec<_>, Vec<_>) = (0..3).map(|n| req(pin(n, "p"))).unzip();
        let mut handed = Vec::new();
        let blocks = commit_group(&r, reqs, |written| {
            assert!(
                rxs.iter_mut().all(|rx| rx.try_recv().is_err()),
                "answered before the blocks were handed over"
            );
            handed.extend(written.iter().map(|(cid, _)| *cid));
        });
        assert_eq!(
            handed,
            blocks.iter().map(|(cid, _)| *cid).collect::<Vec<_>>()
        );
        assert_eq!(handed.len(), 1);
        assert!(
            rxs.iter_mut()
                .all(|rx| rx.try_recv().is_ok_and(|a| a.is_ok()))
        );
    }

    #[test]
    fn queued_writes_become_one_delta() {
        let r = replica();
        let (deltas, answers) = run(&r, (0..10).map(|n| pin(n, "p")).collect());
        assert_eq!(deltas, 1);
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(r.len().unwrap(), 10);
        assert_eq!(r.height().unwrap(), 1);
        // One write alone is one delta too.
        let (deltas, answers) = run(&r, vec![Write::Unpin(cid(0))]);
        assert_eq!((deltas, answers.len()), (1, 1));
        assert_eq!(r.len().unwrap(), 9);
    }

    #[test]
    fn each_write_is_judged_as_if_alone() {
        let r = replica();
        run(&r, vec![pin(1, "one")]);
        let (deltas, answers) = run(
            &r,
            vec![
                Write::Unpin(cid(9)), // never pinned: fails alone
                pin(2, "two"),
                Write::Unpin(cid(1)),
                Write::Unpin(cid(1)), // already unpinned earlier in the group
                pin(3, "three"),
                Write::Unpin(cid(3)), // pinned then unpinned: no trace
                pin(2, "two again"),  // last write wins
            ],
        );
        assert_eq!(deltas, 1);
        let failed: Vec<usize> = (0..answers.len())
            .filter(|i| answers[*i].is_err())
            .collect();
        assert_eq!(failed, [0, 3]);
        assert!(matches!(
            answers[0],
            Err(PeerError::Dag(DagError::NotPinned(_)))
        ));
        assert!(r.get(&cid(1)).unwrap().is_none());
        assert!(r.get(&cid(3)).unwrap().is_none());
        assert_eq!(r.get(&cid(2)).unwrap().unwrap().options.name, "two again");
        // A group whose writes cancel out writes nothing and acknowledges all.
        let (deltas, answers) = run(&r, vec![pin(4, "four"), Write::Unpin(cid(4))]);
        assert_eq!(deltas, 0);
        assert!(answers.iter().all(Result::is_ok));
    }

    #[test]
    fn a_group_over_the_block_size_is_a_delta_per_write() {
        let r = replica();
        let big = "x".repeat(600 * 1024);
        let (deltas, answers) = run(&r, vec![pin(1, &big), pin(2, &big)]);
        assert_eq!(deltas, 2);
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(r.len().unwrap(), 2);
    }
}
