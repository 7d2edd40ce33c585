//! The queues and workers: submitting operations, the priority, normal and
//! unpin queues, running an operation against IPFS, and retries with
//! backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use cid::Cid;
use cluster_types::Pin;
use ipfs::{IpfsConnector, IpfsError, IpfsPinType, Multiaddr, PinLsFilter, PinMode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::TrackerError;
use crate::ops::{Op, OpKind, OpTable, Phase};
use crate::store::ErrorRecord;

use super::*;

impl<C: IpfsConnector> Inner<C> {
    pub(super) fn lock(&self) -> MutexGuard<'_, OpTable> {
        // A panic while holding the lock leaves a consistent table (every
        // update is a single insert/remove), so poisoning is ignored.
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_priority(
        &self,
        kind: OpKind,
        pin_time: Option<SystemTime>,
        attempts: u32,
    ) -> bool {
        kind == OpKind::Pin
            && attempts <= self.config.priority_pin_max_retries
            && pin_time.is_some_and(|t| {
                t.checked_add(self.config.priority_pin_max_age)
                    .is_some_and(|deadline| SystemTime::now() < deadline)
            })
    }

    /// Puts a new operation of `kind` on `cid` (Go's `TrackNewOperation` +
    /// `enqueue`): an operation of the same kind that is queued or in
    /// progress is kept (with the newer pin); anything else is cancelled
    /// and replaced, carrying the attempts over when of the same kind
    /// (`carried` when there is no such operation in memory).
    pub(super) fn submit(&self, kind: OpKind, cid: Cid, pin: Option<Pin>, carried: Option<u32>) {
        // Only the pin's time is kept (see `Op::pin_time`).
        let pin_time = pin.map(|p| p.timestamp.unwrap_or(SystemTime::UNIX_EPOCH));
        let mut ops = self.lock();
        if kind == OpKind::Pin
            && carried.is_none()
            && self.should_leave_out(ops.len(), ops.get(&cid).is_some())
        {
            self.backlog.leave_out();
            return;
        }
        let mut attempts = carried.unwrap_or(0);
        if let Some(old) = ops.get_mut(&cid)
            && old.kind == kind
        {
            if old.phase != Phase::Error {
                if pin_time.is_some() {
                    old.pin_time = pin_time;
                }
                return;
            }
            attempts = old.attempts.max(attempts);
        }
        let generation = self.next_op.fetch_add(1, Ordering::Relaxed);
        let priority = self.is_priority(kind, pin_time, attempts);
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
                pin_time,
                cancel: self.cancel.child_token(),
            },
        );
        self.enqueue(&mut ops, cid, generation);
    }

    /// Sends the queued operation `generation` of `cid` to its queue; a
    /// full (or closed) queue puts it in error.
    pub(super) fn enqueue(&self, ops: &mut OpTable, cid: Cid, generation: u64) {
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

    pub(super) fn persist(&self, cid: &Cid, record: &ErrorRecord) {
        if let Err(e) = self.store.put_error(cid, record) {
            warn!(%cid, error = %e, "persisting an operation error");
        }
    }

    pub(super) async fn pin_worker(
        self: Arc<Self>,
        receivers: Arc<tokio::sync::Mutex<PinReceivers>>,
    ) {
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

    pub(super) async fn unpin_worker(self: Arc<Self>, mut rx: mpsc::Receiver<QueueEntry>) {
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
    pub(super) async fn process(self: &Arc<Self>, (cid, generation): QueueEntry) {
        let (kind, cancel) = {
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
            (op.kind, op.cancel.clone())
        };
        // A pin operation pins the pin as the pinset has it now; one whose
        // CID left the pinset is over (its unpin replaces it).
        let pin = match kind {
            OpKind::Pin => match self.pinset.get(&cid) {
                Ok(Some(pin)) => Some(pin),
                Ok(None) => {
                    self.lock().remove(&cid, generation);
                    return;
                }
                Err(e) => {
                    self.finish(cid, generation, Err(e));
                    return;
                }
            },
            OpKind::Unpin | OpKind::Remote => None,
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
    pub(super) async fn execute(
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
    pub(super) async fn pinned_as(
        &self,
        cid: Cid,
        mode: PinMode,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
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
    pub(super) async fn pin(&self, pin: &Pin) -> Result<IpfsPinType, IpfsError> {
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

    pub(super) fn enter_pin_call(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    /// Records an operation's outcome: success removes it (and its error
    /// record); failure puts it in error, persists that and schedules an
    /// automatic retry while attempts remain.
    pub(super) fn finish<E: std::fmt::Display>(
        self: &Arc<Self>,
        cid: Cid,
        generation: u64,
        result: Result<Option<IpfsPinType>, E>,
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
                } else {
                    // Out of retries: the persisted record says the rest
                    // (status, attempts, what a recover requeues), so the
                    // table doesn't keep every failed pin in memory.
                    ops.remove(&cid, generation);
                }
            }
        }
    }

    pub(super) fn schedule_retry(
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

    pub(super) fn retry(&self, cid: Cid, generation: u64) {
        let mut ops = self.lock();
        let Some(op) = ops.get(&cid) else { return };
        if op.generation != generation || op.phase != Phase::Error {
            return;
        }
        let priority = self.is_priority(op.kind, op.pin_time, op.attempts);
        if let Some(op) = ops.set_phase(&cid, generation, Phase::Queued) {
            op.priority = priority;
        }
        self.enqueue(&mut ops, cid, generation);
    }
}
