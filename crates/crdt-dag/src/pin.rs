//! What a replica answers with: the live entries of a pinned CID and the
//! changes of the pinset, in the model's [`Pin`].

use cid::Cid;
use cluster_types::Pin;

use crate::writer::WriterId;

/// A dot: the op at `index` of delta `delta`, naming one add of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    /// The delta that made the add.
    pub delta: Cid,
    /// The op's position in that delta.
    pub index: u32,
}

/// One live entry of a pinned CID (spec/crdt.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinEntry {
    /// Priority of the delta that added it.
    pub priority: u64,
    /// Who added it.
    pub writer: WriterId,
    /// Where it was added.
    pub dot: Dot,
    /// The pin written.
    pub pin: Pin,
}

/// A change of the pinset, or evidence found while applying deltas,
/// reported after it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinEvent {
    /// A CID became pinned (the winning entry's pin).
    Added(Pin),
    /// A pinned CID's winning options changed.
    Updated(Pin),
    /// A CID is no longer pinned.
    Removed(Cid),
    /// The whole pinset was replaced at once (a checkpoint was loaded,
    /// spec/crdt.md §10.3): no per-pin events are reported for it; read
    /// the pinset again.
    Reloaded,
    /// A writer was caught signing a second delta with a sequence number
    /// it had used (both deltas apply; this is reported once per new delta
    /// of that number, and kept for [`crate::Replica::forks`]).
    Fork(crate::Fork),
}
