//! Pins as Go writes them: [`Pin`] with its [`PinOptions`] flat at the top
//! level, [`PinMode`], [`PinType`] and the `?filter=` of `/allocations`
//! ([`PinTypeFilter`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use cid::Cid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;
use crate::wire;

/// How IPFS pins a CID: the whole DAG (`recursive`, the default) or only the
/// root block (`direct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PinMode {
    /// Pin the whole DAG (`max_depth` -1).
    #[default]
    Recursive,
    /// Pin the root block only (`max_depth` 0).
    Direct,
}

impl PinMode {
    /// Go's name: `recursive` or `direct`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recursive => "recursive",
            Self::Direct => "direct",
        }
    }

    /// The pin depth of this mode: -1 (recursive) or 0 (direct).
    pub fn max_depth(self) -> i32 {
        match self {
            Self::Recursive => -1,
            Self::Direct => 0,
        }
    }

    /// The mode of a pin depth (Go's `PinDepth.ToPinMode`: 0 is direct,
    /// anything else recursive). The one place that rule is written.
    pub fn from_max_depth(depth: i32) -> Self {
        if depth == 0 {
            Self::Direct
        } else {
            Self::Recursive
        }
    }

    /// Parses `recursive`, `direct` or `""` (recursive).
    ///
    /// # Errors
    /// A message naming the `mode` parameter for anything else.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match text {
            "" | "recursive" => Ok(Self::Recursive),
            "direct" => Ok(Self::Direct),
            other => Err(ParseError(format!(
                "invalid mode {other:?}: must be recursive or direct"
            ))),
        }
    }
}

impl PinMode {
    /// Whether IPFS pins the whole DAG (Kubo's `recursive` flag).
    pub fn is_recursive(self) -> bool {
        self == Self::Recursive
    }
}

impl fmt::Display for PinMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PinMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PinMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Go reads an unknown mode as recursive.
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        Ok(match text.as_deref() {
            Some("direct") => Self::Direct,
            _ => Self::Recursive,
        })
    }
}

/// What a pin is (Go's `PinType`): a plain pin, or one of the pins sharding
/// creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PinType {
    /// A regular pin of user data (`pin`).
    #[default]
    Pin,
    /// The original CID of a sharded DAG (`meta-pin`), never pinned in IPFS.
    MetaPin,
    /// The cluster DAG of a sharded DAG (`clusterdag-pin`).
    ClusterDagPin,
    /// One shard of a sharded DAG (`shard-pin`).
    ShardPin,
}

impl PinType {
    /// Every type, in Go's bit order.
    pub const ALL: [PinType; 4] = [
        PinType::Pin,
        PinType::MetaPin,
        PinType::ClusterDagPin,
        PinType::ShardPin,
    ];

    /// Go's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pin => "pin",
            Self::MetaPin => "meta-pin",
            Self::ClusterDagPin => "clusterdag-pin",
            Self::ShardPin => "shard-pin",
        }
    }

    /// The type of a Go name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    fn bit(self) -> u8 {
        match self {
            Self::Pin => 1,
            Self::MetaPin => 2,
            Self::ClusterDagPin => 4,
            Self::ShardPin => 8,
        }
    }
}

impl fmt::Display for PinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PinType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PinType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_name(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown pin type {text:?}")))
    }
}

/// The `?filter=` of `GET /allocations`: a set of pin types, written as a
/// comma-separated list (`pin,meta-pin`) or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PinTypeFilter(u8);

impl PinTypeFilter {
    /// Every pin type (Go's default: `all`).
    pub const ALL: PinTypeFilter = PinTypeFilter(0b1111);

    /// A filter matching one type.
    pub fn only(t: PinType) -> Self {
        Self(t.bit())
    }

    /// This filter plus another type.
    pub fn with(self, t: PinType) -> Self {
        Self(self.0 | t.bit())
    }

    /// Whether a pin of type `t` passes the filter.
    pub fn matches(self, t: PinType) -> bool {
        self.0 & t.bit() != 0
    }

    /// Whether every type passes.
    pub fn is_all(self) -> bool {
        self == Self::ALL
    }

    /// Parses the comma-separated list of `?filter=` (`""` and `all` are
    /// every type).
    ///
    /// # Errors
    /// A message naming the `filter` parameter and the unknown value.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut bits = 0u8;
        for name in text.split(',') {
            match name {
                "" | "all" => bits |= Self::ALL.0,
                other => match PinType::from_name(other) {
                    Some(t) => bits |= t.bit(),
                    None => {
                        return Err(ParseError(format!(
                            "invalid filter value {other:?}: must be a comma-separated list of \
                             pin, meta-pin, clusterdag-pin, shard-pin or all"
                        )));
                    }
                },
            }
        }
        Ok(Self(bits))
    }
}

impl Default for PinTypeFilter {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for PinTypeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all");
        }
        let names: Vec<&str> = PinType::ALL
            .into_iter()
            .filter(|t| self.matches(*t))
            .map(PinType::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The user's options of a pin (Go's `api.PinOptions`). In JSON they sit flat
/// at the top level of a [`Pin`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PinOptions {
    /// Minimum number of peers that must pin it: 0 = the cluster default,
    /// -1 = every peer.
    pub replication_factor_min: i32,
    /// Number of peers that should pin it: 0 = the cluster default, -1 =
    /// every peer.
    pub replication_factor_max: i32,
    /// A name for people.
    pub name: String,
    /// Recursive or direct.
    pub mode: PinMode,
    /// Shard size for sharded adds (bytes; 0 = unset).
    pub shard_size: u64,
    /// Peers to allocate first (`user-allocations`; JSON `null` when empty).
    #[serde(with = "wire::null_if_empty")]
    pub user_allocations: Vec<String>,
    /// When the pin expires (`None`: never; JSON zero time).
    #[serde(with = "wire::go_time")]
    pub expire_at: Option<SystemTime>,
    /// User metadata (JSON `null` when empty, as Go writes a stored pin).
    #[serde(with = "wire::null_if_empty_map")]
    pub metadata: BTreeMap<String, String>,
    /// An existing pin whose DAG this one updates (IPFS `pin/update`); JSON
    /// `null` when unset.
    #[serde(with = "wire::opt_cid")]
    pub pin_update: Option<Cid>,
    /// Multiaddresses (each with `/p2p/<id>`) of peers known to have the
    /// content (always a JSON array).
    #[serde(deserialize_with = "wire::null_as_default")]
    pub origins: Vec<String>,
}

/// A pin of the cluster pinset (Go's `api.Pin`): the options flat at the top
/// level, then `cid`, `type`, `allocations`, `max_depth`, `reference`,
/// `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PinWire")]
pub struct Pin {
    /// The user's options.
    #[serde(flatten)]
    pub options: PinOptions,
    /// What is pinned.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// What sort of pin this is.
    #[serde(rename = "type")]
    pub pin_type: PinType,
    /// Peer IDs the pin is allocated to (empty when pinned everywhere).
    pub allocations: Vec<String>,
    /// -1: recursive, 0: direct, n: down to depth n.
    pub max_depth: i32,
    /// The related CID of a sharding pin (`null` otherwise).
    #[serde(with = "wire::opt_cid")]
    pub reference: Option<Cid>,
    /// When the pin was submitted (`None`: Go's zero time).
    #[serde(with = "wire::go_time")]
    pub timestamp: Option<SystemTime>,
}

impl PinOptions {
    /// Default options with a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl Pin {
    /// How IPFS pins it: from `max_depth` (Go's `ToPinMode`), which the
    /// pinset keeps; `options.mode` is what the request said.
    pub fn ipfs_mode(&self) -> PinMode {
        PinMode::from_max_depth(self.max_depth)
    }

    /// A plain pin of `cid` with `options` (Go's `PinWithOpts`): type `pin`,
    /// no allocations, `max_depth` from the mode, no timestamp.
    pub fn new(cid: Cid, options: PinOptions) -> Self {
        let max_depth = options.mode.max_depth();
        Self {
            options,
            cid,
            pin_type: PinType::Pin,
            allocations: Vec::new(),
            max_depth,
            reference: None,
            timestamp: None,
        }
    }
}

/// The flat JSON of a [`Pin`], read without serde's `flatten` buffering (a
/// million-pin listing parses each line once). Every field but `cid` may be
/// missing.
#[derive(Deserialize)]
struct PinWire {
    #[serde(default)]
    replication_factor_min: i32,
    #[serde(default)]
    replication_factor_max: i32,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: PinMode,
    #[serde(default)]
    shard_size: u64,
    #[serde(default, with = "wire::null_if_empty")]
    user_allocations: Vec<String>,
    #[serde(default, with = "wire::go_time")]
    expire_at: Option<SystemTime>,
    #[serde(default, with = "wire::null_if_empty_map")]
    metadata: BTreeMap<String, String>,
    #[serde(default, with = "wire::opt_cid")]
    pin_update: Option<Cid>,
    #[serde(default, deserialize_with = "wire::null_as_default")]
    origins: Vec<String>,
    #[serde(with = "wire::cid_string")]
    cid: Cid,
    #[serde(default, rename = "type")]
    pin_type: PinType,
    #[serde(default, deserialize_with = "wire::null_as_default")]
    allocations: Vec<String>,
    #[serde(default = "recursive_depth")]
    max_depth: i32,
    #[serde(default, with = "wire::opt_cid")]
    reference: Option<Cid>,
    #[serde(default, with = "wire::go_time")]
    timestamp: Option<SystemTime>,
}

fn recursive_depth() -> i32 {
    -1
}

impl From<PinWire> for Pin {
    fn from(w: PinWire) -> Self {
        Self {
            options: PinOptions {
                replication_factor_min: w.replication_factor_min,
                replication_factor_max: w.replication_factor_max,
                name: w.name,
                mode: w.mode,
                shard_size: w.shard_size,
                user_allocations: w.user_allocations,
                expire_at: w.expire_at,
                metadata: w.metadata,
                pin_update: w.pin_update,
                origins: w.origins,
            },
            cid: w.cid,
            pin_type: w.pin_type,
            allocations: w.allocations,
            max_depth: w.max_depth,
            reference: w.reference,
            timestamp: w.timestamp,
        }
    }
}
