//! The public handle: starting the workers, tracking and untracking pins,
//! statuses, reconcile and recover, and the queue gauges.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use cid::Cid;
use cluster_types::{Pin, Placement, TrackerStatus, TrackerStatusFilter};
use futures::stream::BoxStream;
use ipfs::IpfsConnector;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::ops::{OpKind, OpTable};
use crate::store::{ErrorRecord, Store};
use crate::{LocalStatus, Pinset, TrackerConfig, TrackerError};

use super::*;

impl<C: IpfsConnector> Tracker<C> {
    /// Starts the workers (`concurrent_pins` pin workers and one unpin
    /// worker), which stop when `cancel` is cancelled. `me`: this peer's
    /// ID, which pins' allocations are read against (`Pin::placement_on`). `store`: a sled tree
    /// the tracker owns (persisted operation errors and the index of what
    /// IPFS has pinned). Must be called within a tokio runtime.
    pub fn start(
        config: TrackerConfig,
        me: String,
        ipfs: Arc<C>,
        pinset: Arc<dyn Pinset>,
        store: sled::Tree,
        cancel: CancellationToken,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let store = Store::new(store);
        let generation = store.generation().unwrap_or_else(|e| {
            warn!(error = %e, "reading the tracker's index generation; starting over");
            0
        });
        // A zero capacity would make every enqueue fail.
        let capacity = config.max_pin_queue_size.max(1);
        let (priority_tx, priority_rx) = mpsc::channel(capacity);
        let (pin_tx, pin_rx) = mpsc::channel(capacity);
        let (unpin_tx, unpin_rx) = mpsc::channel(capacity);
        let workers = config.concurrent_pins.max(1);
        let inner = Arc::new(Inner {
            config,
            me,
            ipfs,
            pinset,
            store,
            ops: Mutex::new(OpTable::default()),
            next_op: AtomicU64::new(1),
            index_generation: AtomicU64::new(generation),
            reconciling: tokio::sync::Mutex::new(()),
            priority_tx,
            pin_tx,
            unpin_tx,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            backlog: Default::default(),
            cancel,
        });
        let receivers = Arc::new(tokio::sync::Mutex::new(PinReceivers {
            priority: priority_rx,
            normal: pin_rx,
        }));
        let mut handles: Vec<JoinHandle<()>> = (0..workers)
            .map(|_| tokio::spawn(Arc::clone(&inner).pin_worker(Arc::clone(&receivers))))
            .collect();
        handles.push(tokio::spawn(Arc::clone(&inner).unpin_worker(unpin_rx)));
        handles.push(tokio::spawn(Arc::clone(&inner).backlog_task()));
        (Self { inner }, handles)
    }

    /// Pins `pin` here (placement here), makes sure it is not pinned here
    /// (remote), or nothing (meta). Never blocks: a full queue puts the
    /// operation in error (`pin queue is full`).
    pub fn track(&self, pin: Pin) {
        match pin.placement_on(&self.inner.me) {
            // Meta pins are never pinned: their status is derived.
            Placement::Meta => {}
            Placement::Remote => self.inner.submit(OpKind::Remote, pin.cid, Some(pin), None),
            Placement::Here => self.inner.submit(OpKind::Pin, pin.cid, Some(pin), None),
        }
    }

    /// Unpins `cid` from IPFS. Never blocks.
    pub fn untrack(&self, cid: Cid) {
        // Operations live in memory: without a record, a restart before
        // IPFS unpins would leave the content pinned with nothing to say so.
        // The record reads as `unpin_error` after a restart, and the
        // recover at start queues it again; a success removes it.
        if let Ok(None) = self.inner.store.error(&cid) {
            self.inner.persist(
                &cid,
                &ErrorRecord {
                    kind: OpKind::Unpin,
                    error: UNPIN_INTERRUPTED.into(),
                    attempts: 0,
                    timestamp: SystemTime::now(),
                },
            );
        }
        self.inner.submit(OpKind::Unpin, cid, None, None);
    }

    /// The status of `cid`, asking IPFS directly whether a pin allocated
    /// here is pinned (`cluster_error` when IPFS can't answer).
    pub async fn status(&self, cid: Cid) -> LocalStatus {
        self.inner.status(cid).await
    }

    /// The statuses of `cids`, from the index of IPFS pins (no IPFS call
    /// per CID; see [`Tracker::reconcile`]).
    pub fn status_many(&self, cids: Vec<Cid>) -> impl Future<Output = Vec<LocalStatus>> + Send {
        let inner = Arc::clone(&self.inner);
        async move {
            let mut out = Vec::with_capacity(cids.len());
            for (i, cid) in cids.into_iter().enumerate() {
                out.push(inner.indexed_status(cid));
                if (i + 1).is_multiple_of(YIELD_EVERY as usize) {
                    tokio::task::yield_now().await;
                }
            }
            out
        }
    }

    /// Refreshes the index from IPFS's recursive and direct pins; returns
    /// how many pins IPFS listed.
    ///
    /// # Errors
    /// When IPFS can't list its pins (the index keeps its older entries) or
    /// the store fails.
    pub async fn reconcile(&self) -> Result<u64, TrackerError> {
        self.inner.reconcile().await
    }

    /// The status of every pin of the pinset (in its order) passing
    /// `filter`, then of the CIDs with an operation that are no longer in
    /// the pinset (e.g. being unpinned). Reconciles the index first, unless
    /// the filter needs no IPFS knowledge; then only CIDs with an operation
    /// or a persisted error are listed (as Go answers from its operation
    /// tracker).
    pub fn status_all(
        &self,
        filter: TrackerStatusFilter,
    ) -> BoxStream<'static, Result<LocalStatus, TrackerError>> {
        let inner = Arc::clone(&self.inner);
        // Pins waiting in the backlog are `pin_queued` with no operation:
        // only the walk over the pinset finds them.
        let backlog = self.inner.backlog.pending()
            && (filter.is_all() || filter.bits() & TrackerStatus::PinQueued.bits() != 0);
        if !needs_index(filter) && !backlog {
            return iter_stream(async move { Ok(inner.operations_iter(filter)) });
        }
        iter_stream(async move {
            inner.reconcile().await?;
            let pins = Arc::clone(&inner).pinset_iter(filter);
            let rest = Arc::clone(&inner).leftovers_iter(filter);
            Ok(pins.chain(rest))
        })
    }

    /// Re-queues `cid` if it is `pin_error` or `unexpectedly_unpinned` (a
    /// pin, with its attempt count) or `unpin_error` (an unpin); returns
    /// the status after that (unchanged for anything else).
    pub async fn recover(&self, cid: Cid) -> LocalStatus {
        let status = self.inner.status(cid).await;
        let pin = match self.inner.pinset.get(&cid) {
            Ok(pin) => pin,
            Err(e) => return cluster_error(cid, &e, status.name),
        };
        if self.inner.recover_one(&status, pin) {
            self.inner.indexed_status(cid)
        } else {
            status
        }
    }

    /// Re-queues every `pin_error`, `unexpectedly_unpinned` and
    /// `unpin_error` CID (streaming the pinset, then the persisted unpin
    /// errors), and unpins what this tracker pinned that the pinset no
    /// longer has; yields only what was re-queued, with its new status (as
    /// Go). Reconciles the index first.
    pub fn recover_all(&self) -> BoxStream<'static, Result<LocalStatus, TrackerError>> {
        let inner = Arc::clone(&self.inner);
        iter_stream(async move {
            inner.reconcile().await?;
            let pins = {
                let inner = Arc::clone(&inner);
                inner.pinset.pins().map(move |pin| {
                    let pin = pin?;
                    let cid = pin.cid;
                    let status = inner.status_of_pin(pin.clone());
                    Ok(inner
                        .recover_one(&status, Some(pin))
                        .then(|| inner.indexed_status(cid)))
                })
            };
            let unpins = {
                let inner = Arc::clone(&inner);
                inner.store.errors().map(move |item| {
                    let (cid, record) = item?;
                    if record.kind != OpKind::Unpin || inner.pinset.get(&cid)?.is_some() {
                        return Ok(None);
                    }
                    // An operation in memory wins over the record (a failed
                    // unpin in memory is persisted too, so it is found here).
                    let status = inner.derive_indexed(cid, None)?;
                    Ok(inner
                        .recover_one(&status, None)
                        .then(|| inner.indexed_status(cid)))
                })
            };
            // Pinned by us, gone from the pinset, and neither in memory
            // nor on record: a removal that never reached `untrack`.
            let leftovers = {
                let inner = Arc::clone(&inner);
                inner.store.ours().map(move |item| {
                    let cid = item?;
                    if inner.pinset.get(&cid)?.is_some()
                        || inner.lock().get(&cid).is_some()
                        || inner.store.error(&cid)?.is_some()
                    {
                        return Ok(None);
                    }
                    debug!(%cid, "unpinning what the pinset no longer has");
                    Tracker {
                        inner: Arc::clone(&inner),
                    }
                    .untrack(cid);
                    Ok(Some(inner.indexed_status(cid)))
                })
            };
            Ok(pins.chain(unpins).chain(leftovers))
        })
    }

    /// Operations queued or in progress, and pins waiting in the backlog.
    pub fn queued(&self) -> usize {
        self.inner.lock().active() + self.inner.backlog.outstanding()
    }

    /// Operations held in memory (queued, in progress or failed): at most
    /// `max_ops_in_memory` active ones, whatever the backlog holds.
    pub fn operations_in_memory(&self) -> usize {
        self.inner.lock().len()
    }

    /// The most IPFS pin calls seen in flight at once since start.
    pub fn max_pins_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }
}
