//! Status derivation: an operation in memory wins, then a persisted error
//! record, then the pin's placement, then the index of what IPFS has
//! pinned (kept up to date by reconcile).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use cid::Cid;
use cluster_types::{Pin, Placement, TrackerStatus, TrackerStatusFilter};
use futures::stream::StreamExt;
use ipfs::{IpfsConnector, IpfsPinType, PinLsFilter, PinMode};
use tracing::{debug, warn};

use crate::ops::OpKind;
use crate::store::ErrorRecord;
use crate::{LocalStatus, TrackerError};

use super::*;

/// What deriving a status without IPFS gave.
pub(super) enum Derived {
    /// The status is known.
    Known(LocalStatus),
    /// The pin is allocated here and nothing overrides it: pinned or
    /// unexpectedly unpinned, depending on IPFS.
    Here(Box<Pin>),
}

/// Whether IPFS having `cid` pinned as `pin_type` satisfies a pin of `mode`
/// (a recursive pin covers the block itself).
pub(super) fn satisfies(mode: PinMode, pin_type: IpfsPinType) -> bool {
    match pin_type {
        IpfsPinType::Recursive => true,
        IpfsPinType::Direct => mode == PinMode::Direct,
        IpfsPinType::Indirect => false,
    }
}

pub(super) fn simple_status(cid: Cid, status: TrackerStatus, name: String) -> LocalStatus {
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

pub(super) fn cluster_error(cid: Cid, error: &dyn fmt::Display, name: String) -> LocalStatus {
    LocalStatus {
        error: error.to_string(),
        ..simple_status(cid, TrackerStatus::ClusterError, name)
    }
}

/// Whether `record` still describes `pin` (records of operations that a
/// pinset change made moot are ignored, and dropped by the next success).
pub(super) fn record_applies(record: &ErrorRecord, pin: Option<&Pin>, me: &str) -> bool {
    match record.kind {
        OpKind::Pin => pin.is_some_and(|p| p.placement_on(me) == Placement::Here),
        OpKind::Unpin => pin.is_none(),
        OpKind::Remote => pin.is_some_and(|p| p.placement_on(me) == Placement::Remote),
    }
}

pub(super) fn record_status(cid: Cid, record: ErrorRecord, name: String) -> LocalStatus {
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
pub(super) fn needs_index(filter: TrackerStatusFilter) -> bool {
    [
        TrackerStatus::Pinned,
        TrackerStatus::UnexpectedlyUnpinned,
        TrackerStatus::Sharded,
        TrackerStatus::Remote,
    ]
    .into_iter()
    .any(|s| filter.is_all() || filter.bits() & s.bits() != 0)
}

impl<C: IpfsConnector> Inner<C> {
    /// The status of `cid` from memory, the persisted errors and the
    /// pin's placement; [`Derived::Here`] when only IPFS can tell.
    pub(super) fn derive(&self, cid: Cid, pin: Option<Pin>) -> Result<Derived, TrackerError> {
        let name = || {
            pin.as_ref()
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
                name: name(),
            }));
        }
        if let Some(record) = self.store.error(&cid)?
            && record_applies(&record, pin.as_ref(), &self.me)
        {
            return Ok(Derived::Known(record_status(cid, record, name())));
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

    /// The status of a pin placed here, with no operation or error, that
    /// IPFS does not have: queued while the backlog holds pins (it is one
    /// of them, or about to be looked at again), else lost.
    fn not_pinned(&self) -> TrackerStatus {
        if self.backlog.pending() {
            TrackerStatus::PinQueued
        } else {
            TrackerStatus::UnexpectedlyUnpinned
        }
    }

    /// [`Self::derive`], completed from the index.
    pub(super) fn derive_indexed(
        &self,
        cid: Cid,
        pin: Option<Pin>,
    ) -> Result<LocalStatus, TrackerError> {
        Ok(match self.derive(cid, pin)? {
            Derived::Known(status) => status,
            Derived::Here(pin) => {
                let status = match self.store.indexed(&cid)? {
                    Some(t) if satisfies(pin.ipfs_mode(), t) => TrackerStatus::Pinned,
                    _ => self.not_pinned(),
                };
                simple_status(cid, status, pin.options.name)
            }
        })
    }

    /// The status of a pinset pin from the index (errors become
    /// `cluster_error`).
    pub(super) fn status_of_pin(&self, pin: Pin) -> LocalStatus {
        let (cid, name) = (pin.cid, pin.options.name.clone());
        self.derive_indexed(cid, Some(pin))
            .unwrap_or_else(|e| cluster_error(cid, &e, name))
    }

    /// The status of `cid` from the index (errors become `cluster_error`).
    pub(super) fn indexed_status(&self, cid: Cid) -> LocalStatus {
        self.pinset
            .get(&cid)
            .and_then(|pin| self.derive_indexed(cid, pin))
            .unwrap_or_else(|e| cluster_error(cid, &e, String::new()))
    }

    pub(super) async fn status(&self, cid: Cid) -> LocalStatus {
        let derived = self.pinset.get(&cid).and_then(|pin| self.derive(cid, pin));
        let pin = match derived {
            Ok(Derived::Known(status)) => return status,
            Ok(Derived::Here(pin)) => *pin,
            Err(e) => return cluster_error(cid, &e, String::new()),
        };
        // A person is waiting: with IPFS known down this would queue for a
        // rate-limited slot (one a second, shared with the workers), so a
        // status poll of a few hundred pinned CIDs took minutes.
        if let Some(e) = self.ipfs.known_down("pin/ls") {
            return cluster_error(cid, &e, pin.options.name);
        }
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
                simple_status(cid, self.not_pinned(), pin.options.name)
            }
            Err(e) => cluster_error(cid, &e, pin.options.name),
        }
    }

    pub(super) async fn reconcile(&self) -> Result<u64, TrackerError> {
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
}
