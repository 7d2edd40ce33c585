//! The operation table: what the tracker is doing (or failed to do) per
//! CID, in memory only (Go's `optracker`).

use std::collections::HashMap;
use std::time::SystemTime;

use cid::Cid;
use cluster_types::TrackerStatus;
use tokio_util::sync::CancellationToken;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// Pin in IPFS.
    Pin,
    /// Unpin from IPFS (the CID left the pinset).
    Unpin,
    /// Unpin from IPFS because the pin is allocated elsewhere.
    Remote,
}

impl OpKind {
    /// The kind's code in persisted records.
    pub(crate) fn code(self) -> u8 {
        match self {
            OpKind::Pin => 0,
            OpKind::Unpin => 1,
            OpKind::Remote => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(OpKind::Pin),
            1 => Some(OpKind::Unpin),
            2 => Some(OpKind::Remote),
            _ => None,
        }
    }
}

/// Where an operation is (done operations are removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued,
    InProgress,
    Error,
}

/// One operation on one CID.
#[derive(Debug)]
pub(crate) struct Op {
    pub(crate) kind: OpKind,
    pub(crate) phase: Phase,
    /// Unique per operation (and per retry): queue entries carry it so that
    /// workers skip entries of replaced operations.
    pub(crate) generation: u64,
    /// Failed attempts so far.
    pub(crate) attempts: u32,
    /// The last failure's text (`""` unless in error).
    pub(crate) error: String,
    pub(crate) priority: bool,
    /// When the phase last changed.
    pub(crate) timestamp: SystemTime,
    /// The pin's timestamp (what makes a pin operation a priority one).
    /// The pin itself is read from the pinset when the operation runs, so
    /// that a table of many queued operations stays small.
    pub(crate) pin_time: Option<SystemTime>,
    /// Cancelled when the operation is replaced: drops its IPFS call and
    /// its pending retry.
    pub(crate) cancel: CancellationToken,
}

impl Op {
    /// Go's `Operation.ToTrackerStatus`.
    pub(crate) fn status(&self) -> TrackerStatus {
        match (self.kind, self.phase) {
            (OpKind::Pin, Phase::Queued) => TrackerStatus::PinQueued,
            (OpKind::Pin, Phase::InProgress) => TrackerStatus::Pinning,
            (OpKind::Pin, Phase::Error) => TrackerStatus::PinError,
            (OpKind::Unpin, Phase::Queued) => TrackerStatus::UnpinQueued,
            (OpKind::Unpin, Phase::InProgress) => TrackerStatus::Unpinning,
            (OpKind::Unpin, Phase::Error) => TrackerStatus::UnpinError,
            (OpKind::Remote, _) => TrackerStatus::Remote,
        }
    }

    fn is_active(&self) -> bool {
        self.phase != Phase::Error
    }
}

/// The operations, with a running count of the active (queued or in
/// progress) ones so that [`OpTable::active`] is O(1).
#[derive(Debug, Default)]
pub(crate) struct OpTable {
    ops: HashMap<Cid, Op>,
    active: usize,
}

impl OpTable {
    pub(crate) fn get(&self, cid: &Cid) -> Option<&Op> {
        self.ops.get(cid)
    }

    /// The operation of `cid`, to change anything but its phase.
    pub(crate) fn get_mut(&mut self, cid: &Cid) -> Option<&mut Op> {
        self.ops.get_mut(cid)
    }

    /// Inserts `op`, replacing (and cancelling) any previous one.
    pub(crate) fn insert(&mut self, cid: Cid, op: Op) {
        if op.is_active() {
            self.active += 1;
        }
        if let Some(old) = self.ops.insert(cid, op) {
            old.cancel.cancel();
            if old.is_active() {
                self.active -= 1;
            }
        }
    }

    /// Changes the phase of the operation of `cid` if it is generation
    /// `generation`; returns it then.
    pub(crate) fn set_phase(
        &mut self,
        cid: &Cid,
        generation: u64,
        phase: Phase,
    ) -> Option<&mut Op> {
        let op = self
            .ops
            .get_mut(cid)
            .filter(|op| op.generation == generation)?;
        match (op.is_active(), phase != Phase::Error) {
            (true, false) => self.active -= 1,
            (false, true) => self.active += 1,
            _ => {}
        }
        op.phase = phase;
        op.timestamp = SystemTime::now();
        Some(op)
    }

    /// Removes the operation of `cid` if it is generation `generation`.
    pub(crate) fn remove(&mut self, cid: &Cid, generation: u64) -> Option<Op> {
        if self.ops.get(cid)?.generation != generation {
            return None;
        }
        let op = self.ops.remove(cid)?;
        if op.is_active() {
            self.active -= 1;
        }
        Some(op)
    }

    pub(crate) fn active(&self) -> usize {
        self.active
    }

    /// Operations held, failed ones included.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// The CIDs with an operation (a snapshot: bounded by the table, which
    /// holds at most the queues' contents plus the failed operations).
    pub(crate) fn cids(&self) -> Vec<Cid> {
        self.ops.keys().copied().collect()
    }
}
