//! The backlog: new pin operations left out of memory while the operation
//! table holds `max_ops_in_memory` ones, and read back from the
//! pinset (which has every pin anyway) as the queues drain. A peer told to
//! pin a million CIDs at once (a join, a restart with IPFS down) keeps a
//! bounded table instead of a million operations.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cid::Cid;
use cluster_types::Placement;
use ipfs::IpfsConnector;
use tracing::warn;

use crate::TrackerError;
use crate::ops::OpKind;

use super::derive::satisfies;
use super::{Arc, Inner};

/// How often the backlog task looks for room.
const TICK: Duration = Duration::from_millis(200);

/// What was left out, and where the walk that reads it back is.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    /// Bumped for every pin left out: a walk over the whole pinset that saw
    /// no bump since it began has read everything back.
    left_out: AtomicU64,
    /// Pins left out since the last complete walk (for the queued gauge;
    /// one read back and left out again counts twice until the walk ends).
    outstanding: AtomicUsize,
    walk: Mutex<Walk>,
}

#[derive(Debug, Default)]
struct Walk {
    /// The last CID visited; `None`: at the start of the pinset.
    after: Option<Cid>,
    /// `left_out` when this pass over the pinset began.
    began_at: u64,
}

impl Backlog {
    /// Whether pins wait in the backlog (their status is `pin_queued`).
    pub(super) fn pending(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) > 0
    }

    /// How many pins wait in it, about.
    pub(super) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// Leaves a pin out. Called with the operation table locked.
    pub(super) fn leave_out(&self) {
        self.left_out.fetch_add(1, Ordering::SeqCst);
        self.outstanding.fetch_add(1, Ordering::SeqCst);
    }
}

impl<C: IpfsConnector> Inner<C> {
    /// Whether a new pin operation should wait in the backlog: the table
    /// is full (operations queued, in progress, or failed and waiting for a
    /// retry), and nothing is known of this CID (an operation in memory is
    /// replaced as usual).
    pub(super) fn should_leave_out(&self, held: usize, known: bool) -> bool {
        !known && held >= self.config.max_ops_in_memory
    }

    /// Reads pins back from the backlog while the table drains; runs until
    /// the tracker stops.
    pub(super) async fn backlog_task(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.backlog.pending() || self.lock().len() > self.config.max_ops_in_memory / 2 {
                continue;
            }
            let inner = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || inner.read_back()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "reading the pin backlog from the pinset"),
                Err(e) => warn!(error = %e, "the pin backlog task failed"),
            }
        }
    }

    /// Walks the pinset from where the last walk stopped and queues the
    /// pins placed here that have no operation, no error record and are
    /// not pinned, until the table is full again or the pinset ends. At the
    /// end the backlog is empty if nothing was left out since the pass
    /// began; otherwise the next call starts another pass.
    fn read_back(&self) -> Result<(), TrackerError> {
        let target = self.config.max_ops_in_memory;
        let mut walk = self.backlog.walk.lock().unwrap_or_else(|e| e.into_inner());
        if walk.after.is_none() {
            walk.began_at = self.backlog.left_out.load(Ordering::SeqCst);
        }
        for p in self.pinset.pins_after(walk.after.as_ref()) {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            let pin = p?;
            walk.after = Some(pin.cid);
            if pin.placement_on(&self.me) != Placement::Here
                || self.lock().get(&pin.cid).is_some()
                || self.store.error(&pin.cid)?.is_some()
                || self
                    .store
                    .indexed(&pin.cid)?
                    .is_some_and(|t| satisfies(pin.ipfs_mode(), t))
            {
                continue;
            }
            self.submit(OpKind::Pin, pin.cid, Some(pin), None);
            if self.lock().len() >= target {
                return Ok(());
            }
        }
        walk.after = None;
        // Under the table lock: `leave_out` runs under it too.
        let _ops = self.lock();
        if self.backlog.left_out.load(Ordering::SeqCst) == walk.began_at {
            self.backlog.outstanding.store(0, Ordering::SeqCst);
        }
        Ok(())
    }
}
