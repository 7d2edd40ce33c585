//! What peers say on gossip: head announcements (DAG-CBOR) and metrics (JSON,
//! Go's `Metric` shape).

use cid::Cid;
use serde::{Deserialize, Serialize};

/// Largest gossip message accepted or sent (gossipsub `max_transmit_size`).
pub const MAX_GOSSIP_SIZE: usize = 64 * 1024;
/// Most heads one announcement carries.
pub const MAX_ANNOUNCED_HEADS: usize = 1024;
/// Longest metric name accepted from gossip (Go's are `ping`, `freespace`,
/// `tag:<name>`...).
pub const MAX_METRIC_NAME: usize = 128;
/// Longest metric value accepted from gossip (Go's are numbers and tags).
pub const MAX_METRIC_VALUE: usize = 1024;
/// Furthest a received metric may expire from its arrival: later expiries
/// are brought back to it (Go's informers use TTLs of seconds to minutes),
/// so a metric can't occupy the monitor forever.
pub const MAX_METRIC_LIFETIME_NANOS: i64 = 24 * 3600 * 1_000_000_000;

/// Most delta blocks one announcement carries.
pub const MAX_ANNOUNCED_BLOCKS: usize = 256;

/// A peer's current heads. Keys it doesn't know are skipped (bounded by
/// the message size and the decoder's depth limit), so a field added later
/// reaches a cluster of mixed versions without the older peers rejecting
/// the announcement and scoring its author down (spec/sync.md §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadsMessage {
    /// The heads, as links.
    pub heads: Vec<Cid>,
    /// Highest priority among them.
    pub height: u64,
    /// The blocks of the deltas the author committed since its previous
    /// announcement, oldest first, as many as fit (spec/sync.md §2): a
    /// receiver applies them without asking for them. Absent in
    /// rebroadcasts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<serde_bytes::ByteBuf>,
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
        if m.blocks.len() > MAX_ANNOUNCED_BLOCKS {
            return Err(format!("{} blocks announced", m.blocks.len()));
        }
        Ok(m)
    }
}

/// A monitoring metric: the model's, as Go IPFS Cluster's `api.Metric`
/// serialises it.
pub use cluster_types::Metric;

/// A metric received from gossip at `now`, bounded: the name and value
/// no longer than [`MAX_METRIC_NAME`] and [`MAX_METRIC_VALUE`] (else
/// refused), the expiry at most [`MAX_METRIC_LIFETIME_NANOS`] away.
pub fn received(mut m: Metric, now: i64) -> Result<Metric, String> {
    if m.name.is_empty() || m.name.len() > MAX_METRIC_NAME {
        return Err(format!("metric name of {} bytes", m.name.len()));
    }
    if m.value.len() > MAX_METRIC_VALUE {
        return Err(format!("metric value of {} bytes", m.value.len()));
    }
    m.expire = m.expire.min(now.saturating_add(MAX_METRIC_LIFETIME_NANOS));
    m.received_at = now;
    Ok(m)
}

/// Unix time in nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Cid {
        use multihash_codetable::{Code, MultihashDigest};
        Cid::new_v1(0x71, Code::Sha2_256.digest(b"a delta"))
    }

    #[test]
    fn announcements_carry_blocks_only_when_they_have_some() {
        let plain = HeadsMessage {
            heads: vec![head()],
            height: 7,
            blocks: vec![],
        };
        let bytes = plain.encode();
        // No `blocks` key at all: what a peer without inline blocks sends.
        assert!(!bytes.windows(6).any(|w| w == b"blocks"));
        assert_eq!(HeadsMessage::decode(&bytes).unwrap(), plain);

        let with = HeadsMessage {
            blocks: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
            ..plain.clone()
        };
        assert_eq!(HeadsMessage::decode(&with.encode()).unwrap(), with);

        let too_many = HeadsMessage {
            blocks: vec![serde_bytes::ByteBuf::from(vec![0]); MAX_ANNOUNCED_BLOCKS + 1],
            ..plain
        };
        assert!(HeadsMessage::decode(&too_many.encode()).is_err());
    }

    /// A key a later version adds is skipped, not a reason to reject the
    /// announcement (and score its author down); the bounds still hold.
    #[test]
    fn announcements_skip_keys_they_do_not_know() {
        #[derive(Serialize)]
        struct Later {
            heads: Vec<Cid>,
            height: u64,
            blocks: Vec<serde_bytes::ByteBuf>,
            epoch: (u64, Vec<String>),
        }
        let later = Later {
            heads: vec![head()],
            height: 3,
            blocks: vec![serde_bytes::ByteBuf::from(vec![9])],
            epoch: (1, vec!["x".into()]),
        };
        let bytes = serde_ipld_dagcbor::to_vec(&later).unwrap();
        let m = HeadsMessage::decode(&bytes).unwrap();
        assert_eq!(
            (&m.heads, m.height, &m.blocks),
            (&later.heads, 3, &later.blocks)
        );
        let no_heads = Later {
            heads: vec![],
            ..later
        };
        assert!(HeadsMessage::decode(&serde_ipld_dagcbor::to_vec(&no_heads).unwrap()).is_err());
    }

    fn metric(name: &str, value: &str, expire: i64) -> Metric {
        Metric::new(name, "p", value, expire)
    }

    #[test]
    fn received_metrics_are_bounded() {
        let now = 1_000;
        let m = received(metric("freespace", "12345", now + 30), now).unwrap();
        assert_eq!((m.expire, m.received_at), (now + 30, now));
        let forever = received(metric("ping", "", i64::MAX), now).unwrap();
        assert_eq!(forever.expire, now + MAX_METRIC_LIFETIME_NANOS);

        let long_name = "n".repeat(MAX_METRIC_NAME + 1);
        assert!(received(metric(&long_name, "", now), now).is_err());
        assert!(received(metric("", "", now), now).is_err());
        let big = "v".repeat(MAX_METRIC_VALUE + 1);
        assert!(received(metric("tag:x", &big, now), now).is_err());
        let edge = "v".repeat(MAX_METRIC_VALUE);
        assert!(received(metric("tag:x", &edge, now), now).is_ok());
    }
}
