//! [`Tracker`]: the handle, its queues and workers, and the status and
//! recover streams.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use cid::Cid;
use cluster_types::{Pin, Placement, TrackerStatus, TrackerStatusFilter};
use futures::stream::{BoxStream, StreamExt};
use ipfs::{IpfsConnector, IpfsError, IpfsPinType, Multiaddr, PinLsFilter, PinMode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::ops::{Op, OpKind, OpTable, Phase};
use crate::store::{ErrorRecord, Store};
use crate::{LocalStatus, Pinset, TrackerConfig, TrackerError};

/// At most this many origins are dialled before a pin (as Go).
const MAX_ORIGINS: usize = 10;
/// Each origin dial may take this long: an unreachable origin must not hold
/// a pin worker (errors are ignored anyway; the pin fetches from anyone).
const ORIGIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Streams yield to the runtime after this many skipped (filtered out)
/// items, so that a long run of synchronous store reads can't hog a thread.
const YIELD_EVERY: u32 = 256;
/// The error of an operation that found its queue full (Go's `ErrFullQueue`).
const QUEUE_FULL: &str = "pin queue is full";
/// What a restart leaves of an unpin that had not happened yet.
const UNPIN_INTERRUPTED: &str = "the unpin was interrupted by a restart";
/// The error of an unpin or remote operation that found its queue full.
const UNPIN_QUEUE_FULL: &str = "unpin queue is full";

/// A queue entry: the CID and the generation of the operation it was
/// queued for (stale entries are skipped).
type QueueEntry = (Cid, u64);

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

/// What deriving a status without IPFS gave.
enum Derived {
    /// The status is known.
    Known(LocalStatus),
    /// The pin is allocated here and nothing overrides it: pinned or
    /// unexpectedly unpinned, depending on IPFS.
    Here(Box<Pin>),
}

/// Whether IPFS having `cid` pinned as `pin_type` satisfies a pin of `mode`
/// (a recursive pin covers the block itself).
fn satisfies(mode: PinMode, pin_type: IpfsPinType) -> bool {
    match pin_type {
        IpfsPinType::Recursive => true,
        IpfsPinType::Direct => mode == PinMode::Direct,
        IpfsPinType::Indirect => false,
    }
}

fn simple_status(cid: Cid, status: TrackerStatus, name: String) -> LocalStatus {
    LocalStatus {
        cid,
        status,
        error: String::new(),
        attempt_count: 0,
        priority_pin: false,
        timestamp: SystemTime::now(),
        name,
    }
}

fn cluster_error(cid: Cid, error: &dyn fmt::Display, name: String) -> LocalStatus {
    LocalStatus {
        error: error.to_string(),
        ..simple_status(cid, TrackerStatus::ClusterError, name)
    }
}

/// Whether `record` still describes `pin` (records of operations that a
/// pinset change made moot are ignored, and dropped by the next success).
fn record_applies(record: &ErrorRecord, pin: Option<&Pin>, me: &str) -> bool {
    match record.kind {
        OpKind::Pin => pin.is_some_and(|p| p.placement_on(me) == Placement::Here),
        OpKind::Unpin => pin.is_none(),
        OpKind::Remote => pin.is_some_and(|p| p.placement_on(me) == Placement::Remote),
    }
}

fn record_status(cid: Cid, record: ErrorRecord, name: String) -> LocalStatus {
    let status = match record.kind {
        OpKind::Pin => TrackerStatus::PinError,
        OpKind::Unpin => TrackerStatus::UnpinError,
        OpKind::Remote => TrackerStatus::Remote,
    };
    LocalStatus {
        cid,
        status,
        error: record.error,
        attempt_count: record.attempts,
        priority_pin: false,
        timestamp: record.timestamp,
        name,
    }
}

/// Whether answering `filter` needs the IPFS index (Go skips listing IPFS
/// pins otherwise).
fn needs_index(filter: TrackerStatusFilter) -> bool {
    [
        TrackerStatus::Pinned,
        TrackerStatus::UnexpectedlyUnpinned,
        TrackerStatus::Sharded,
        TrackerStatus::Remote,
    ]
    .into_iter()
    .any(|s| filter.is_all() || filter.bits() & s.bits() != 0)
}

/// A stream over a lazily built, synchronous iterator: `setup` runs first
/// (an error ends the stream after yielding it); `None` items are skipped;
/// the stream ends after the first error.
fn iter_stream<I, F>(setup: F) -> BoxStream<'static, Result<LocalStatus, TrackerError>>
where
    F: Future<Output = Result<I, TrackerError>> + Send + 'static,
    I: Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static,
{
    enum State<F, I> {
        Setup(std::pin::Pin<Box<F>>),
        Iter(I),
        Done,
    }
    futures::stream::unfold(State::Setup(Box::pin(setup)), |state| async move {
        let mut iter = match state {
            State::Setup(f) => match f.await {
                Ok(iter) => iter,
                Err(e) => return Some((Err(e), State::Done)),
            },
            State::Iter(iter) => iter,
            State::Done => return None,
        };
        let mut skipped = 0u32;
        loop {
            match iter.next()? {
                Ok(Some(status)) => return Some((Ok(status), State::Iter(iter))),
                Ok(None) => {
                    skipped += 1;
                    if skipped.is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => return Some((Err(e), State::Done)),
            }
        }
    })
    .boxed()
}

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
        if !needs_index(filter) {
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

    /// Operations queued or in progress.
    pub fn queued(&self) -> usize {
        self.inner.lock().active()
    }

    /// The most IPFS pin calls seen in flight at once since start.
    pub fn max_pins_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }
}

impl<C: IpfsConnector> Inner<C> {
    fn lock(&self) -> MutexGuard<'_, OpTable> {
        // A panic while holding the lock leaves a consistent table (every
        // update is a single insert/remove), so poisoning is ignored.
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_priority(&self, kind: OpKind, pin: Option<&Pin>, attempts: u32) -> bool {
        kind == OpKind::Pin
            && attempts <= self.config.priority_pin_max_retries
            && pin.is_some_and(|p| {
                p.timestamp
                    .unwrap_or(SystemTime::UNIX_EPOCH)
                    .checked_add(self.config.priority_pin_max_age)
                    .is_some_and(|deadline| SystemTime::now() < deadline)
            })
    }

    /// Puts a new operation of `kind` on `cid` (Go's `TrackNewOperation` +
    /// `enqueue`): an operation of the same kind that is queued or in
    /// progress is kept (with the newer pin); anything else is cancelled
    /// and replaced, carrying the attempts over when of the same kind
    /// (`carried` when there is no such operation in memory).
    fn submit(&self, kind: OpKind, cid: Cid, pin: Option<Pin>, carried: Option<u32>) {
        let mut ops = self.lock();
        let mut attempts = carried.unwrap_or(0);
        if let Some(old) = ops.get_mut(&cid)
            && old.kind == kind
        {
            if old.phase != Phase::Error {
                if pin.is_some() {
                    old.pin = pin;
                }
                return;
            }
            attempts = old.attempts.max(attempts);
        }
        let generation = self.next_op.fetch_add(1, Ordering::Relaxed);
        let priority = self.is_priority(kind, pin.as_ref(), attempts);
        ops.insert(
            cid,
            Op {
                kind,
                phase: Phase::Queued,
                generation,
                attempts,
                error: String::new(),
                priority,
                timestamp: SystemTime::now(),
                pin,
                cancel: self.cancel.child_token(),
            },
        );
        self.enqueue(&mut ops, cid, generation);
    }

    /// Sends the queued operation `generation` of `cid` to its queue; a
    /// full (or closed) queue puts it in error.
    fn enqueue(&self, ops: &mut OpTable, cid: Cid, generation: u64) {
        let Some(op) = ops.get(&cid).filter(|op| op.generation == generation) else {
            return;
        };
        let (tx, full) = match (op.kind, op.priority) {
            (OpKind::Pin, true) => (&self.priority_tx, QUEUE_FULL),
            (OpKind::Pin, false) => (&self.pin_tx, QUEUE_FULL),
            (OpKind::Unpin | OpKind::Remote, _) => (&self.unpin_tx, UNPIN_QUEUE_FULL),
        };
        let error = match tx.try_send((cid, generation)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => full.to_string(),
            Err(mpsc::error::TrySendError::Closed(_)) => TrackerError::Shutdown.to_string(),
        };
        warn!(%cid, %error, "operation not queued");
        if let Some(op) = ops.set_phase(&cid, generation, Phase::Error) {
            op.error = error;
            let record = ErrorRecord {
                kind: op.kind,
                error: op.error.clone(),
                attempts: op.attempts,
                timestamp: op.timestamp,
            };
            self.persist(&cid, &record);
        }
    }

    fn persist(&self, cid: &Cid, record: &ErrorRecord) {
        if let Err(e) = self.store.put_error(cid, record) {
            warn!(%cid, error = %e, "persisting an operation error");
        }
    }

    async fn pin_worker(self: Arc<Self>, receivers: Arc<tokio::sync::Mutex<PinReceivers>>) {
        loop {
            let entry = {
                let mut rx = tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => return,
                    rx = receivers.lock() => rx,
                };
                let rx = &mut *rx;
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => return,
                    Some(entry) = rx.priority.recv() => entry,
                    Some(entry) = rx.normal.recv() => entry,
                    else => return,
                }
            };
            self.process(entry).await;
        }
    }

    async fn unpin_worker(self: Arc<Self>, mut rx: mpsc::Receiver<QueueEntry>) {
        loop {
            let entry = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                entry = rx.recv() => match entry {
                    Some(entry) => entry,
                    None => return,
                },
            };
            self.process(entry).await;
        }
    }

    /// Runs the operation an entry was queued for, unless it was replaced
    /// since.
    async fn process(self: &Arc<Self>, (cid, generation): QueueEntry) {
        let (kind, pin, cancel) = {
            let mut ops = self.lock();
            if ops
                .get(&cid)
                .is_none_or(|op| op.generation != generation || op.phase != Phase::Queued)
            {
                return;
            }
            let Some(op) = ops.set_phase(&cid, generation, Phase::InProgress) else {
                return;
            };
            (op.kind, op.pin.clone(), op.cancel.clone())
        };
        let result = tokio::select! {
            biased;
            // Replaced (or shut down): dropping the call cancels the request.
            () = cancel.cancelled() => return,
            result = self.execute(kind, cid, pin.as_ref()) => result,
        };
        self.finish(cid, generation, result);
    }

    /// Does an operation in IPFS; returns how IPFS now has the CID pinned.
    async fn execute(
        &self,
        kind: OpKind,
        cid: Cid,
        pin: Option<&Pin>,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
        match (kind, pin) {
            (OpKind::Pin, Some(pin)) => self.pin(pin).await.map(Some),
            // Never queued so (track and recover always give the pin);
            // an error rather than a silent "unpinned".
            (OpKind::Pin, None) => Err(IpfsError::InvalidArgument(format!(
                "pin operation on {cid} without its pin"
            ))),
            (OpKind::Unpin, _) => self.ipfs.unpin(cid).await.map(|()| None),
            (OpKind::Remote, _) => {
                // Only pins of its own are removed: unpinning an indirect
                // pin is an error in IPFS, and it is not ours to undo.
                if self.pinned_as(cid, PinMode::Direct).await?.is_some() {
                    self.ipfs.unpin(cid).await?;
                }
                Ok(None)
            }
        }
    }

    /// How IPFS has `cid` pinned in a way that satisfies `mode` (the
    /// specific `pin ls` types: `all` would walk every recursive pin).
    async fn pinned_as(&self, cid: Cid, mode: PinMode) -> Result<Option<IpfsPinType>, IpfsError> {
        if let Some(t) = self.ipfs.pin_ls_cid(cid, PinLsFilter::Recursive).await? {
            return Ok(Some(t));
        }
        if mode == PinMode::Direct {
            return self.ipfs.pin_ls_cid(cid, PinLsFilter::Direct).await;
        }
        Ok(None)
    }

    /// Go's IPFS connector `Pin`: nothing if already pinned, else connect
    /// to the origins, then pin (by updating `pin_update` when possible).
    async fn pin(&self, pin: &Pin) -> Result<IpfsPinType, IpfsError> {
        if let Some(t) = self.pinned_as(pin.cid, pin.ipfs_mode()).await? {
            return Ok(t);
        }
        let origins = pin
            .options
            .origins
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok());
        let dials = origins.take(MAX_ORIGINS).map(|addr| async move {
            match tokio::time::timeout(
                ORIGIN_CONNECT_TIMEOUT,
                self.ipfs.swarm_connect(addr.clone()),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%addr, error = %e, "connecting to an origin"),
                Err(_) => debug!(%addr, "connecting to an origin timed out"),
            }
        });
        futures::future::join_all(dials).await;
        let from = match (pin.options.pin_update, pin.ipfs_mode()) {
            (Some(from), PinMode::Recursive) => self
                .ipfs
                .pin_ls_cid(from, PinLsFilter::Recursive)
                .await?
                .map(|_| from),
            _ => None,
        };
        let _guard = self.enter_pin_call();
        match from {
            Some(from) => self.ipfs.pin_update(from, pin.cid).await?,
            None => self.ipfs.pin(pin.cid, pin.ipfs_mode()).await?,
        }
        Ok(match pin.ipfs_mode() {
            PinMode::Recursive => IpfsPinType::Recursive,
            PinMode::Direct => IpfsPinType::Direct,
        })
    }

    fn enter_pin_call(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    /// Records an operation's outcome: success removes it (and its error
    /// record); failure puts it in error, persists that and schedules an
    /// automatic retry while attempts remain.
    fn finish(
        self: &Arc<Self>,
        cid: Cid,
        generation: u64,
        result: Result<Option<IpfsPinType>, IpfsError>,
    ) {
        let mut ops = self.lock();
        match result {
            Ok(pinned) => {
                // The index follows IPFS whatever happened to the operation.
                let indexed = match pinned {
                    Some(t) => {
                        let g = self.index_generation.load(Ordering::SeqCst);
                        self.store.index(&cid, t, g)
                    }
                    None => self.store.unindex(&cid),
                };
                if let Err(e) = indexed {
                    warn!(%cid, error = %e, "updating the pin index");
                }
                if let Err(e) = self.store.set_ours(&cid, pinned.is_some()) {
                    warn!(%cid, error = %e, "updating the set of our pins");
                }
                if ops.remove(&cid, generation).is_some()
                    && let Err(e) = self.store.remove_error(&cid)
                {
                    warn!(%cid, error = %e, "removing an error record");
                }
            }
            Err(error) => {
                let Some(op) = ops.set_phase(&cid, generation, Phase::Error) else {
                    return;
                };
                op.attempts = op.attempts.saturating_add(1);
                op.error = error.to_string();
                warn!(%cid, kind = ?op.kind, attempts = op.attempts, %error, "operation failed");
                let record = ErrorRecord {
                    kind: op.kind,
                    error: op.error.clone(),
                    attempts: op.attempts,
                    timestamp: op.timestamp,
                };
                let (attempts, cancel) = (op.attempts, op.cancel.clone());
                self.persist(&cid, &record);
                if attempts <= self.config.max_retries {
                    self.schedule_retry(cid, generation, attempts, cancel);
                }
            }
        }
    }

    fn schedule_retry(
        self: &Arc<Self>,
        cid: Cid,
        generation: u64,
        attempts: u32,
        cancel: CancellationToken,
    ) {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        let delay = self.config.retry_backoff.saturating_mul(factor);
        let inner = Arc::clone(self);
        // One sleeping task per failed operation, ended early when the
        // operation is replaced or the tracker stops.
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(delay) => inner.retry(cid, generation),
            }
        });
    }

    fn retry(&self, cid: Cid, generation: u64) {
        let mut ops = self.lock();
        let Some(op) = ops.get(&cid) else { return };
        if op.generation != generation || op.phase != Phase::Error {
            return;
        }
        let priority = self.is_priority(op.kind, op.pin.as_ref(), op.attempts);
        if let Some(op) = ops.set_phase(&cid, generation, Phase::Queued) {
            op.priority = priority;
        }
        self.enqueue(&mut ops, cid, generation);
    }

    /// The status of `cid` from memory, the persisted errors and the
    /// pin's placement; [`Derived::Here`] when only IPFS can tell.
    fn derive(&self, cid: Cid, pin: Option<Pin>) -> Result<Derived, TrackerError> {
        let name = |op_pin: Option<&Pin>| {
            pin.as_ref()
                .or(op_pin)
                .map(|p| p.options.name.clone())
                .unwrap_or_default()
        };
        if let Some(op) = self.lock().get(&cid) {
            return Ok(Derived::Known(LocalStatus {
                cid,
                status: op.status(),
                error: op.error.clone(),
                attempt_count: op.attempts,
                priority_pin: op.priority,
                timestamp: op.timestamp,
                name: name(op.pin.as_ref()),
            }));
        }
        if let Some(record) = self.store.error(&cid)?
            && record_applies(&record, pin.as_ref(), &self.me)
        {
            return Ok(Derived::Known(record_status(cid, record, name(None))));
        }
        let Some(pin) = pin else {
            return Ok(Derived::Known(simple_status(
                cid,
                TrackerStatus::Unpinned,
                String::new(),
            )));
        };
        let status = match pin.placement_on(&self.me) {
            Placement::Here => return Ok(Derived::Here(Box::new(pin))),
            Placement::Remote => TrackerStatus::Remote,
            Placement::Meta => TrackerStatus::Sharded,
        };
        Ok(Derived::Known(simple_status(cid, status, pin.options.name)))
    }

    /// [`Self::derive`], completed from the index.
    fn derive_indexed(&self, cid: Cid, pin: Option<Pin>) -> Result<LocalStatus, TrackerError> {
        Ok(match self.derive(cid, pin)? {
            Derived::Known(status) => status,
            Derived::Here(pin) => {
                let status = match self.store.indexed(&cid)? {
                    Some(t) if satisfies(pin.ipfs_mode(), t) => TrackerStatus::Pinned,
                    _ => TrackerStatus::UnexpectedlyUnpinned,
                };
                simple_status(cid, status, pin.options.name)
            }
        })
    }

    /// The status of a pinset pin from the index (errors become
    /// `cluster_error`).
    fn status_of_pin(&self, pin: Pin) -> LocalStatus {
        let (cid, name) = (pin.cid, pin.options.name.clone());
        self.derive_indexed(cid, Some(pin))
            .unwrap_or_else(|e| cluster_error(cid, &e, name))
    }

    /// The status of `cid` from the index (errors become `cluster_error`).
    fn indexed_status(&self, cid: Cid) -> LocalStatus {
        self.pinset
            .get(&cid)
            .and_then(|pin| self.derive_indexed(cid, pin))
            .unwrap_or_else(|e| cluster_error(cid, &e, String::new()))
    }

    async fn status(&self, cid: Cid) -> LocalStatus {
        let derived = self.pinset.get(&cid).and_then(|pin| self.derive(cid, pin));
        let pin = match derived {
            Ok(Derived::Known(status)) => return status,
            Ok(Derived::Here(pin)) => *pin,
            Err(e) => return cluster_error(cid, &e, String::new()),
        };
        match self.pinned_as(cid, pin.ipfs_mode()).await {
            Ok(Some(t)) => {
                let g = self.index_generation.load(Ordering::SeqCst);
                if let Err(e) = self.store.index(&cid, t, g) {
                    warn!(%cid, error = %e, "updating the pin index");
                }
                simple_status(cid, TrackerStatus::Pinned, pin.options.name)
            }
            Ok(None) => {
                if let Err(e) = self.store.unindex(&cid) {
                    warn!(%cid, error = %e, "updating the pin index");
                }
                simple_status(cid, TrackerStatus::UnexpectedlyUnpinned, pin.options.name)
            }
            Err(e) => cluster_error(cid, &e, pin.options.name),
        }
    }

    async fn reconcile(&self) -> Result<u64, TrackerError> {
        let _one_at_a_time = self.reconciling.lock().await;
        let generation = self.index_generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.store.set_generation(generation)?;
        let mut seen = 0u64;
        for filter in [PinLsFilter::Recursive, PinLsFilter::Direct] {
            let mut pins = self.ipfs.pin_ls(filter);
            while let Some(item) = pins.next().await {
                let (cid, pin_type) = item?;
                self.store.index(&cid, pin_type, generation)?;
                seen += 1;
            }
        }
        let swept = self.store.sweep(generation)?;
        debug!(seen, swept, generation, "reconciled the pin index");
        Ok(seen)
    }

    /// The statuses of the pinset's pins passing `filter` (lazily).
    fn pinset_iter(
        self: Arc<Self>,
        filter: TrackerStatusFilter,
    ) -> impl Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static {
        self.pinset.pins().map(move |pin| {
            let status = self.status_of_pin(pin?);
            Ok(filter.matches(status.status).then_some(status))
        })
    }

    /// After the pinset: CIDs with an operation but no longer in the pinset
    /// (a snapshot of the table's keys, built when reached), then persisted
    /// unpin errors of CIDs with no operation.
    fn leftovers_iter(
        self: Arc<Self>,
        filter: TrackerStatusFilter,
    ) -> impl Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static {
        let ops = {
            let inner = Arc::clone(&self);
            std::iter::once(()).flat_map(move |()| {
                let cids = inner.lock().cids();
                let inner = Arc::clone(&inner);
                cids.into_iter().map(move |cid| {
                    if inner.pinset.get(&cid)?.is_some() {
                        return Ok(None);
                    }
                    let status = inner.derive_indexed(cid, None)?;
                    Ok(filter.matches(status.status).then_some(status))
                })
            })
        };
        let records = self.store.errors().map(move |item| {
            let (cid, record) = item?;
            if record.kind != OpKind::Unpin || self.lock().get(&cid).is_some() {
                return Ok(None);
            }
            if self.pinset.get(&cid)?.is_some() {
                return Ok(None);
            }
            let status = record_status(cid, record, String::new());
            Ok(filter.matches(status.status).then_some(status))
        });
        ops.chain(records)
    }

    /// Statuses from the operation table and the persisted errors only
    /// (for filters that need no IPFS knowledge).
    fn operations_iter(
        self: Arc<Self>,
        filter: TrackerStatusFilter,
    ) -> impl Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static {
        let cids = self.lock().cids();
        let ops = {
            let inner = Arc::clone(&self);
            cids.into_iter().map(move |cid| {
                let pin = inner.pinset.get(&cid)?;
                let status = inner.derive_indexed(cid, pin)?;
                Ok(filter.matches(status.status).then_some(status))
            })
        };
        let records = self.store.errors().map(move |item| {
            let (cid, record) = item?;
            if self.lock().get(&cid).is_some() {
                return Ok(None);
            }
            let pin = self.pinset.get(&cid)?;
            if !record_applies(&record, pin.as_ref(), &self.me) {
                return Ok(None);
            }
            let name = pin.map(|p| p.options.name).unwrap_or_default();
            let status = record_status(cid, record, name);
            Ok(filter.matches(status.status).then_some(status))
        });
        ops.chain(records)
    }

    /// Re-queues what `status` says needs it; returns whether it did.
    fn recover_one(&self, status: &LocalStatus, pin: Option<Pin>) -> bool {
        let cid = status.cid;
        let attempts = Some(status.attempt_count);
        match (status.status, pin) {
            (TrackerStatus::PinError | TrackerStatus::UnexpectedlyUnpinned, Some(pin))
                if pin.placement_on(&self.me) == Placement::Here =>
            {
                self.submit(OpKind::Pin, cid, Some(pin), attempts);
                true
            }
            (TrackerStatus::UnpinError, _) => {
                self.submit(OpKind::Unpin, cid, None, attempts);
                true
            }
            // A remote pin whose unpin failed: retried quietly (its status
            // stays `remote`, so it is not reported as recovered).
            (TrackerStatus::Remote, Some(pin)) => {
                let failed = match self.lock().get(&cid) {
                    Some(op) => op.kind == OpKind::Remote && op.phase == Phase::Error,
                    None => {
                        matches!(self.store.error(&cid), Ok(Some(r)) if r.kind == OpKind::Remote)
                    }
                };
                if failed {
                    self.submit(OpKind::Remote, cid, Some(pin), attempts);
                }
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
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
