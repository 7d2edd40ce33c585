//! The replica's public vocabulary: its config, what a write asks and
//! returns, a walk's budget and report, fork evidence, and the event hook.

use std::sync::Arc;

use cid::Cid;
use cluster_types::Pin;

use crate::delta::Delta;
use crate::error::Rejection;
use crate::limits::Limits;
use crate::pin::PinEvent;
use crate::writer::{TrustPolicy, WriterId};

/// What a replica needs to know besides its key.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// `consensus.crdt.cluster_name`: deltas of other clusters are rejected.
    pub cluster: String,
    /// `consensus.crdt.trusted_peers`.
    pub trust: TrustPolicy,
    /// Bounds on unapplied work.
    pub limits: Limits,
}

impl ReplicaConfig {
    /// A config for `cluster` trusting everyone, with default limits.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            trust: TrustPolicy::All,
            limits: Limits::default(),
        }
    }
}

/// One mutation asked of [`Replica::write`](super::Replica::write).
// Nearly every write is a pin; boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Pin (or update) `pin.cid` as `pin` says. The pin is written as given:
    /// placement (allocations, replication) is the caller's.
    Pin(Pin),
    /// Unpin the CID.
    Unpin(Cid),
}

impl Write {
    /// The CID written.
    pub fn cid(&self) -> &Cid {
        match self {
            Self::Pin(pin) => &pin.cid,
            Self::Unpin(cid) => cid,
        }
    }
}

/// The outcome of a durable local write.
#[derive(Clone, Debug)]
pub struct Written {
    /// The new delta's CID (the new head to announce).
    pub cid: Cid,
    /// Its block (to put into IPFS and serve to peers).
    pub block: Vec<u8>,
    /// The delta itself.
    pub delta: Delta,
    /// Heads after the write.
    pub heads: Vec<Cid>,
    /// Pinset changes it made.
    pub events: Vec<PinEvent>,
}

/// Caps on one walk's work, so a caller can interleave walks with other work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncBudget {
    /// Most blocks fetched from the source in this walk.
    pub max_fetch: usize,
    /// Most deltas applied in this walk.
    pub max_apply: usize,
}

impl Default for SyncBudget {
    fn default() -> Self {
        Self {
            max_fetch: usize::MAX,
            max_apply: usize::MAX,
        }
    }
}

/// What a walk did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Blocks fetched from the source and stored pending.
    pub fetched: usize,
    /// Deltas applied.
    pub applied: usize,
    /// Ops applied (pins and unpins).
    pub ops_applied: usize,
    /// CIDs the source could not provide in this walk.
    pub missing: Vec<Cid>,
    /// Blocks rejected in this walk, with why.
    pub rejected: Vec<(Cid, Rejection)>,
    /// Blocks still pending after the walk.
    pub pending: usize,
    /// The walk stopped at the pending limits.
    pub pending_full: bool,
    /// The walk stopped at its budget.
    pub budget_exhausted: bool,
}

impl SyncReport {
    /// Whether nothing is left to fetch or apply.
    pub fn is_complete(&self) -> bool {
        self.pending == 0 && self.missing.is_empty() && !self.pending_full && !self.budget_exhausted
    }

    /// Folds in the report of the apply pass that closes a walk; `pending`
    /// is left to the caller, who counts it once everything is done.
    pub(crate) fn absorb(&mut self, applied: SyncReport) {
        self.applied += applied.applied;
        self.ops_applied += applied.ops_applied;
        self.rejected.extend(applied.rejected);
        self.budget_exhausted |= applied.budget_exhausted;
    }
}

/// Evidence that a writer signed two deltas with one sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The writer.
    pub writer: WriterId,
    /// The sequence number used twice.
    pub seq: u64,
    /// The deltas carrying it (both signed by the writer).
    pub deltas: Vec<Cid>,
}

/// Called with every pinset change once it is durable.
pub type EventHook = Arc<dyn Fn(&PinEvent) + Send + Sync>;
