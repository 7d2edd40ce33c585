//! A metric a peer reports about itself, as Go's `api.Metric`: the same
//! struct in gossip, in the monitor and in the REST API.

use serde::{Deserialize, Serialize};

/// A metric a peer reports about itself (Go's `api.Metric`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Metric {
    /// What is measured (`ping`, `freespace`, `tag:group` ...).
    pub name: String,
    /// The peer it is about.
    pub peer: String,
    /// The value, as text.
    pub value: String,
    /// When it expires, in Unix nanoseconds.
    pub expire: i64,
    /// Whether the value is valid.
    pub valid: bool,
    /// Weight for the allocator.
    pub weight: i64,
    /// Whether the allocator partitions peers by this metric's value.
    pub partitionable: bool,
    /// When it was received, in Unix nanoseconds.
    pub received_at: i64,
}

impl Metric {
    /// A valid metric `name` of `peer` with `value`, expiring at `expire`
    /// (Unix nanoseconds), no weight, not partitionable, never received.
    pub fn new(
        name: impl Into<String>,
        peer: impl Into<String>,
        value: impl Into<String>,
        expire: i64,
    ) -> Self {
        Self {
            name: name.into(),
            peer: peer.into(),
            value: value.into(),
            expire,
            valid: true,
            ..Self::default()
        }
    }
}
