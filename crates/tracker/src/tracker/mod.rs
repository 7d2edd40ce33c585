//! [`Tracker`]: the handle, its queues and workers, and the status and
//! recover streams.
//!
//! By idea: the public handle (`handle`), status derivation (`derive`),
//! the queues and workers that run operations (`workers`), the lazy
//! status and recover streams (`streams`), and the pins left out of memory
//! while the table is full (`backlog`).

mod backlog;
mod derive;
mod handle;
mod streams;
mod workers;

use derive::{cluster_error, needs_index, record_applies, record_status};
use streams::iter_stream;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cid::Cid;
use ipfs::IpfsConnector;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ops::OpTable;
use crate::store::Store;
use crate::{Pinset, TrackerConfig};

/// At most this many origins are dialled before a pin (as Go).
pub(super) const MAX_ORIGINS: usize = 10;
/// Each origin dial may take this long: an unreachable origin must not hold
/// a pin worker (errors are ignored anyway; the pin fetches from anyone).
pub(super) const ORIGIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Streams yield to the runtime after this many skipped (filtered out)
/// items, so that a long run of synchronous store reads can't hog a thread.
pub(super) const YIELD_EVERY: u32 = 256;
/// The error of an operation that found its queue full (Go's `ErrFullQueue`).
pub(super) const QUEUE_FULL: &str = "pin queue is full";
/// What a restart leaves of an unpin that had not happened yet.
pub(super) const UNPIN_INTERRUPTED: &str = "the unpin was interrupted by a restart";
/// The error of an unpin or remote operation that found its queue full.
pub(super) const UNPIN_QUEUE_FULL: &str = "unpin queue is full";

/// A queue entry: the CID and the generation of the operation it was
/// queued for (stale entries are skipped).
pub(super) type QueueEntry = (Cid, u64);

/// The pin tracker (see the crate docs). Cheap to clone: every clone
/// drives the same queues and workers.
pub struct Tracker<C: IpfsConnector> {
    inner: Arc<Inner<C>>,
}

impl<C: IpfsConnector> Clone for Tracker<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: IpfsConnector> fmt::Debug for Tracker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("config", &self.inner.config)
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

/// The receivers the pin workers share: a worker holds the lock only while
/// waiting for an entry, so exactly one worker waits at a time and the
/// `biased` select gives the priority queue precedence.
struct PinReceivers {
    priority: mpsc::Receiver<QueueEntry>,
    normal: mpsc::Receiver<QueueEntry>,
}

struct Inner<C> {
    config: TrackerConfig,
    /// This peer's ID: what a pin's allocations are matched against.
    me: String,
    ipfs: Arc<C>,
    pinset: Arc<dyn Pinset>,
    store: Store,
    /// A std mutex: it is never held across an await.
    ops: Mutex<OpTable>,
    /// Source of operation generations.
    next_op: AtomicU64,
    /// The index generation that pins done by the tracker are written with.
    index_generation: AtomicU64,
    /// One reconcile at a time: two would only repeat the same listing.
    reconciling: tokio::sync::Mutex<()>,
    priority_tx: mpsc::Sender<QueueEntry>,
    pin_tx: mpsc::Sender<QueueEntry>,
    unpin_tx: mpsc::Sender<QueueEntry>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// New pins not held in memory while the table is full.
    backlog: backlog::Backlog,
    cancel: CancellationToken,
}

/// Counts an IPFS pin call in flight while alive (also when the call is
/// dropped).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use cluster_types::{TrackerStatus, TrackerStatusFilter};

    use super::*;

    /// Compiles only if the handle and its futures can cross threads (the
    /// peer spawns them).
    #[allow(dead_code)]
    fn handle_and_futures_are_send_and_sync(t: &Tracker<ipfs::KuboConnector>, cid: Cid) {
        fn send<T: Send>(_: T) {}
        fn sync<T: Sync + Send>(_: &T) {}
        sync(t);
        send(t.status(cid));
        send(t.recover(cid));
        send(t.reconcile());
        send(t.status_many(vec![cid]));
        send(t.status_all(TrackerStatusFilter::ALL));
        send(t.recover_all());
    }

    #[test]
    fn the_index_is_needed_only_for_index_statuses() {
        assert!(needs_index(TrackerStatusFilter::ALL));
        assert!(needs_index(TrackerStatusFilter::only(
            TrackerStatus::Pinned
        )));
        assert!(needs_index(TrackerStatusFilter::only(
            TrackerStatus::Remote
        )));
        assert!(!needs_index(TrackerStatusFilter::ERROR));
        assert!(!needs_index(
            TrackerStatusFilter::QUEUED.with(TrackerStatus::Pinning)
        ));
    }
}
