//! The signed history as the REST API shows it to auditors (no Go
//! equivalent; spec/rest-api.md): the heads and what they add up to
//! ([`HistoryHeads`]), a signed checkpoint ([`HistoryCheckpoint`]), one
//! delta of the log ([`HistoryDelta`]), the log's filters
//! ([`HistoryLogQuery`]) and the sync lag ([`HistorySync`]).

use std::time::SystemTime;

use cid::Cid;
use serde::{Deserialize, Serialize};

use super::wire;
use crate::ApiError;
use cluster_types::Pin;

/// `GET /history/sync`: how far this peer is behind the heights other
/// peers announced, and what its sync loop has done since start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistorySync {
    /// This peer's height (its highest head priority).
    pub height: u64,
    /// The highest height another peer announced (at least `height`).
    /// Announcers claim it: it is checked only once its deltas arrive.
    pub seen_height: u64,
    /// `seen_height - height`: deltas along the longest chain still to
    /// apply.
    pub lag_deltas: u64,
    /// Seconds since the oldest announced height not reached was heard
    /// (0 when level).
    pub lag_seconds: u64,
    /// When that height was heard (Go's zero time when level).
    #[serde(with = "wire::go_time")]
    pub behind_since: Option<SystemTime>,
    /// Whether the sync loop is fetching announced heads now.
    pub syncing: bool,
    /// Announced heads not applied yet.
    pub wanted_heads: u64,
    /// Bulk sync requests sent since start.
    pub bulk_requests: u64,
    /// Blocks received in bulk answers since start.
    pub bulk_blocks: u64,
    /// Single blocks fetched by walks since start.
    pub walk_fetches: u64,
    /// Delta blocks that came inside announcements since start (applied,
    /// or stored until their parents come, without a fetch).
    pub gossip_blocks: u64,
    /// Deltas applied from other peers since start.
    pub applied: u64,
}

/// `GET /history/heads`: where this peer's copy of the history stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryHeads {
    /// `consensus.crdt.cluster_name`: every delta is signed for it.
    pub cluster_name: String,
    /// The trust policy in force: `["*"]` or the trusted peer IDs.
    pub trusted_peers: Vec<String>,
    /// The current heads, by CID bytes.
    pub heads: Vec<HistoryHead>,
    /// The highest head priority (the DAG's height).
    pub height: u64,
    /// The state hash of spec/crdt.md §6, lowercase hex.
    pub state_hash: String,
    /// Pinned CIDs.
    pub pins: u64,
    /// Applied deltas.
    pub deltas: u64,
    /// Every writer of the history, by peer ID.
    pub writers: Vec<HistoryWriter>,
    /// Writers caught signing two deltas with one seq.
    pub forks: Vec<HistoryFork>,
    /// The newest checkpoint this peer keeps and serves (made here or
    /// loaded), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checkpoint: Option<HistoryCheckpoint>,
    /// The checkpoint below which this peer holds no delta blocks (it
    /// joined from it or pruned to it): its log and CAR export start
    /// there. Absent: the whole history is here.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub floor: Option<HistoryCheckpoint>,
}

/// A signed checkpoint (spec/crdt.md §10): a trusted writer's signed
/// statement of the state at a cut of the history, from which a peer can
/// start instead of replaying every delta below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryCheckpoint {
    /// The checkpoint block.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// The peer ID of the writer that signed it.
    pub signer: String,
    /// The signer's clock when it signed (informational).
    #[serde(with = "wire::go_time")]
    pub time: Option<SystemTime>,
    /// The highest priority among its heads.
    pub height: u64,
    /// The heads of the cut, by CID bytes.
    pub heads: Vec<HistoryHead>,
    /// Pinned CIDs at the cut.
    pub pins: u64,
    /// Deltas in the cut.
    pub deltas: u64,
    /// The state hash at the cut (spec/crdt.md §6), lowercase hex.
    pub state_hash: String,
    /// The root block of the snapshot (the pins and the delta index).
    #[serde(with = "wire::cid_string")]
    pub snapshot: Cid,
    /// Every writer of the cut with its highest seq, by key bytes.
    pub writers: Vec<HistoryWriterSeq>,
}

/// A writer and its highest seq in a checkpoint's cut.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryWriterSeq {
    /// Its peer ID.
    pub peer: String,
    /// Its highest seq in the cut.
    pub seq: u64,
}

/// One head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryHead {
    /// The delta.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// Its priority.
    pub priority: u64,
}

/// One writer's chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryWriter {
    /// Its peer ID.
    pub peer: String,
    /// Its highest applied seq.
    pub seq: u64,
    /// The delta of that seq.
    pub latest: String,
    /// Whether the trust policy in force lets it write.
    pub trusted: bool,
}

/// Fork evidence: both deltas are signed by the writer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryFork {
    /// The writer's peer ID.
    pub peer: String,
    /// The seq used more than once.
    pub seq: u64,
    /// The deltas carrying it.
    pub deltas: Vec<String>,
}

/// One delta of `GET /history/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDelta {
    /// The delta.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// Its writer's peer ID.
    pub writer: String,
    /// Its seq in the writer's chain.
    pub seq: u64,
    /// Its priority.
    pub priority: u64,
    /// The writer's clock when it signed (informational).
    #[serde(with = "wire::go_time")]
    pub time: Option<SystemTime>,
    /// The heads it was written on.
    pub parents: Vec<String>,
    /// Its mutations, in order.
    pub ops: Vec<HistoryOp>,
}

/// One mutation of a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryOp {
    /// `pin` or `unpin`.
    pub op: String,
    /// The CID pinned or unpinned.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// The pin as written (Go's `Pin` JSON), for `pin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
    /// How many earlier entries it removes.
    pub tombs: usize,
}

/// The filters of `GET /history/log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryLogQuery {
    /// Only this writer's deltas (a peer ID).
    pub writer: Option<String>,
    /// Only deltas signed at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many deltas (0: no limit).
    pub limit: u64,
}

impl HistoryLogQuery {
    /// Reads `writer`, `since` (RFC 3339) and `limit` from a query string's
    /// pairs; a bad value is a 400 naming it.
    pub fn from_query(q: &[(String, String)]) -> Result<Self, ApiError> {
        let mut out = Self::default();
        for (k, v) in q {
            match k.as_str() {
                "writer" if !v.is_empty() => {
                    out.writer = Some(super::parse_peer_id(v).map_err(|e| {
                        ApiError::bad_request(format!("writer {v:?}: {}", e.message))
                    })?);
                }
                "since" if !v.is_empty() => {
                    out.since = Some(
                        cluster_types::time::parse_rfc3339(v)
                            .map_err(|e| ApiError::bad_request(format!("since: {e}")))?,
                    );
                }
                "limit" if !v.is_empty() => {
                    out.limit = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("limit {v:?} is not a number"))
                    })?;
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The query string of these filters (for clients).
    pub fn to_query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(w) = &self.writer {
            s.append_pair("writer", w);
        }
        if let Some(t) = self.since {
            s.append_pair("since", &cluster_types::time::format_rfc3339(t));
        }
        if self.limit > 0 {
            s.append_pair("limit", &self.limit.to_string());
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn log_query_round_trips_and_names_bad_fields() {
        let q = HistoryLogQuery {
            writer: Some("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".into()),
            since: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            limit: 5,
        };
        assert_eq!(
            HistoryLogQuery::from_query(&pairs(&q.to_query())).unwrap(),
            q
        );
        let e = HistoryLogQuery::from_query(&pairs("limit=x")).unwrap_err();
        assert!(e.message.contains("limit"), "{}", e.message);
        let e = HistoryLogQuery::from_query(&pairs("since=yesterday")).unwrap_err();
        assert!(e.message.contains("since"), "{}", e.message);
        let e = HistoryLogQuery::from_query(&pairs("writer=nobody")).unwrap_err();
        assert!(e.message.contains("writer"), "{}", e.message);
    }
}
