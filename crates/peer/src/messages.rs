//! What peers say on gossip: head announcements (DAG-CBOR) and metrics (JSON,
//! Go's `Metric` shape).

use cid::Cid;
use serde::{Deserialize, Serialize};

/// Largest gossip message accepted or sent (gossipsub `max_transmit_size`).
pub const MAX_GOSSIP_SIZE: usize = 64 * 1024;
/// Most heads one announcement carries.
pub const MAX_ANNOUNCED_HEADS: usize = 1024;

/// A peer's current heads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadsMessage {
    /// The heads, as links.
    pub heads: Vec<Cid>,
    /// Highest priority among them.
    pub height: u64,
}

impl HeadsMessage {
    /// Canonical DAG-CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_ipld_dagcbor::to_vec(self).unwrap_or_default()
    }

    /// Decodes and bounds an announcement.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_GOSSIP_SIZE {
            return Err("announcement too large".into());
        }
        let m: Self = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.heads.is_empty() || m.heads.len() > MAX_ANNOUNCED_HEADS {
            return Err(format!("{} heads announced", m.heads.len()));
        }
        if !m.heads.iter().all(crdt_dag::is_delta_cid) {
            return Err("announced head is not a delta CID".into());
        }
        Ok(m)
    }
}

/// A monitoring metric, as Go IPFS Cluster's `api.Metric` serialises it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name (`ping`, `freespace`, ...).
    pub name: String,
    /// Peer it describes.
    pub peer: String,
    /// Value, as a string.
    pub value: String,
    /// Expiry, Unix nanoseconds.
    pub expire: i64,
    /// Whether the value is valid.
    pub valid: bool,
    /// Allocation weight.
    #[serde(default)]
    pub weight: i64,
    /// Whether the allocator partitions by it.
    #[serde(default)]
    pub partitionable: bool,
    /// When it was received, Unix nanoseconds (set by the receiver).
    #[serde(default)]
    pub received_at: i64,
}

/// Unix time in nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
