//! Pin status objects: [`PinInfoShort`] and [`GlobalPinInfo`] (the statuses
//! themselves are the model's, `cluster_types::status`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use cid::Cid;
use serde::{Deserialize, Serialize};

use super::wire;
use cluster_types::{TrackerStatus, TrackerStatusFilter};

/// One peer's status of a CID (Go's `PinInfoShort`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PinInfoShort {
    /// The cluster peer's name.
    pub peername: String,
    /// The peer's IPFS node ID (omitted when empty).
    #[serde(skip_serializing_if = "wire::is_empty_str")]
    pub ipfs_peer_id: String,
    /// The IPFS node's addresses (omitted when empty).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "wire::null_as_default"
    )]
    pub ipfs_peer_addresses: Vec<String>,
    /// The status.
    pub status: TrackerStatus,
    /// When the status was last set (`None`: Go's zero time).
    #[serde(with = "wire::go_time")]
    pub timestamp: Option<SystemTime>,
    /// The error of an error status (`""` otherwise).
    pub error: String,
    /// How many times pinning was tried.
    pub attempt_count: u32,
    /// Whether the pin is in the priority queue.
    pub priority_pin: bool,
}

/// The cluster-wide status of a CID (Go's `GlobalPinInfo`): one entry per
/// cluster peer in `peer_map`. `?local=true` answers have one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalPinInfo {
    /// The CID.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// The pin's name.
    #[serde(default)]
    pub name: String,
    /// The pin's allocations (always an array).
    #[serde(default, deserialize_with = "wire::null_as_default")]
    pub allocations: Vec<String>,
    /// The pin's origins (always an array).
    #[serde(default, deserialize_with = "wire::null_as_default")]
    pub origins: Vec<String>,
    /// When the pin was created (`None`: Go's zero time).
    #[serde(default, with = "wire::go_time")]
    pub created: Option<SystemTime>,
    /// The pin's metadata (`null` when empty).
    #[serde(default, with = "wire::null_if_empty_map")]
    pub metadata: BTreeMap<String, String>,
    /// Status per cluster peer ID.
    #[serde(default, deserialize_with = "wire::null_as_default")]
    pub peer_map: BTreeMap<String, PinInfoShort>,
}

impl GlobalPinInfo {
    /// An entry for `cid` with nothing else set.
    pub fn new(cid: Cid) -> Self {
        Self {
            cid,
            name: String::new(),
            allocations: Vec::new(),
            origins: Vec::new(),
            created: None,
            metadata: BTreeMap::new(),
            peer_map: BTreeMap::new(),
        }
    }

    /// Whether any peer's status passes `filter` (Go's
    /// `GlobalPinInfo.Match`).
    pub fn matches(&self, filter: TrackerStatusFilter) -> bool {
        filter.is_all() || self.peer_map.values().any(|p| filter.matches(p.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_pin_info_matches_if_any_peer_matches() {
        let cid: Cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap();
        let mut g = GlobalPinInfo::new(cid);
        for (peer, status) in [("a", TrackerStatus::Pinned), ("b", TrackerStatus::PinError)] {
            g.peer_map.insert(
                peer.into(),
                PinInfoShort {
                    status,
                    ..PinInfoShort::default()
                },
            );
        }
        assert!(g.matches(TrackerStatusFilter::only(TrackerStatus::PinError)));
        assert!(g.matches(TrackerStatusFilter::ERROR));
        assert!(!g.matches(TrackerStatusFilter::only(TrackerStatus::Pinning)));
        assert!(g.matches(TrackerStatusFilter::ALL));
    }
}
