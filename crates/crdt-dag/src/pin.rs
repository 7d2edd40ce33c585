//! Pin options as carried in the CRDT (every field of a Go IPFS Cluster pin)
//! and the pins a replica answers with.

use std::collections::BTreeMap;

use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::writer::WriterId;

/// What kind of pin this is (Go's `PinType`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub enum PinType {
    /// A normal pin (`"pin"`).
    #[default]
    Data,
    /// The root of a sharded DAG (`"meta-pin"`).
    Meta,
    /// The cluster DAG of a sharded pin (`"clusterdag-pin"`).
    ClusterDag,
    /// One shard (`"shard-pin"`).
    Shard,
}

impl PinType {
    /// Go's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "pin",
            Self::Meta => "meta-pin",
            Self::ClusterDag => "clusterdag-pin",
            Self::Shard => "shard-pin",
        }
    }
}

impl From<PinType> for u8 {
    fn from(t: PinType) -> u8 {
        match t {
            PinType::Data => 1,
            PinType::Meta => 2,
            PinType::ClusterDag => 3,
            PinType::Shard => 4,
        }
    }
}

impl TryFrom<u8> for PinType {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            1 => Self::Data,
            2 => Self::Meta,
            3 => Self::ClusterDag,
            4 => Self::Shard,
            other => return Err(format!("unknown pin type {other}")),
        })
    }
}

/// How deep IPFS pins (derived from `max_depth`, as Go does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinMode {
    /// The whole DAG (`max_depth = -1`).
    Recursive,
    /// Only the root block (`max_depth = 0`).
    Direct,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_recursive(d: &i64) -> bool {
    *d == -1
}

fn recursive() -> i64 {
    -1
}

/// Everything a pin carries besides its CID. Field names on the wire are
/// short (spec/crdt.md §2.2); defaults are omitted so the encoding is canonical.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinOptions {
    /// When the pin was created, ms since the Unix epoch.
    #[serde(rename = "ts", default, skip_serializing_if = "is_default")]
    pub timestamp: u64,
    /// Go's `reference` (the cluster DAG of a meta pin).
    #[serde(
        rename = "ref",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::codec::opt_cid_bytes"
    )]
    pub reference: Option<Cid>,
    /// User metadata.
    #[serde(rename = "meta", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Human name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `replication_factor_max` (-1 everywhere, 0 cluster default).
    #[serde(rename = "rmax", default, skip_serializing_if = "is_default")]
    pub replication_max: i32,
    /// `replication_factor_min` (-1 everywhere, 0 cluster default).
    #[serde(rename = "rmin", default, skip_serializing_if = "is_default")]
    pub replication_min: i32,
    /// Pin type.
    #[serde(rename = "type", default, skip_serializing_if = "is_default")]
    pub pin_type: PinType,
    /// `max_depth`: -1 recursive, 0 direct, n limited.
    #[serde(
        rename = "depth",
        default = "recursive",
        skip_serializing_if = "is_recursive"
    )]
    pub max_depth: i64,
    /// `shard_size` for sharded adds.
    #[serde(rename = "shard", default, skip_serializing_if = "is_default")]
    pub shard_size: u64,
    /// Peers that should pin it, in allocator order.
    #[serde(rename = "allocs", default, skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<String>,
    /// Seconds since the epoch after which the pin expires; 0 never.
    #[serde(rename = "expire", default, skip_serializing_if = "is_default")]
    pub expire_at: u64,
    /// `pin_update`: the CID this pin updates from.
    #[serde(
        rename = "update",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::codec::opt_cid_bytes"
    )]
    pub pin_update: Option<Cid>,
    /// Allocations the user asked for.
    #[serde(rename = "ualloc", default, skip_serializing_if = "Vec::is_empty")]
    pub user_allocations: Vec<String>,
    /// Multiaddrs of peers that have the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
}

impl Default for PinOptions {
    fn default() -> Self {
        Self {
            timestamp: 0,
            reference: None,
            metadata: BTreeMap::new(),
            name: String::new(),
            replication_max: 0,
            replication_min: 0,
            pin_type: PinType::Data,
            max_depth: -1,
            shard_size: 0,
            allocations: Vec::new(),
            expire_at: 0,
            pin_update: None,
            user_allocations: Vec::new(),
            origins: Vec::new(),
        }
    }
}

impl PinOptions {
    /// Options with just a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The pin mode Go derives from `max_depth`.
    pub fn mode(&self) -> PinMode {
        if self.max_depth == 0 {
            PinMode::Direct
        } else {
            PinMode::Recursive
        }
    }
}

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
    /// The options written.
    pub options: PinOptions,
}

/// A pinned CID with the options of its winning entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The pinned content.
    pub cid: Cid,
    /// The winning entry's options.
    pub options: PinOptions,
    /// The winning entry's writer.
    pub writer: WriterId,
    /// The winning entry's dot.
    pub dot: Dot,
    /// The winning entry's priority.
    pub priority: u64,
}

/// A change of the pinset, or evidence found while applying deltas,
/// reported after it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinEvent {
    /// A CID became pinned.
    Added(Pin),
    /// A pinned CID's winning options changed.
    Updated(Pin),
    /// A CID is no longer pinned.
    Removed(Cid),
    /// A writer was caught signing a second delta with a sequence number
    /// it had used (both deltas apply; this is reported once per new delta
    /// of that number, and kept for [`crate::Replica::forks`]).
    Fork(crate::Fork),
}
