//! The metrics this peer publishes for allocation, built as Go IPFS
//! Cluster's informers build them (`informer/disk`, `informer/tags`,
//! `informer/pinqueue`): pure functions from what was measured to a
//! [`Metric`] expiring `ttl` from now. Measuring (Kubo's `repo/stat`, the
//! pin queue length) and publishing are the caller's.

use std::collections::BTreeMap;
use std::time::Duration;

use libp2p::PeerId;

use crate::config::DiskMetric;
use crate::network::messages::{Metric, now_nanos};

/// Name of the pin queue metric (Go's `pinqueue.MetricName`).
pub(crate) const PINQUEUE: &str = "pinqueue";
/// Prefix of the tag metrics' names (`tag:group`).
pub(crate) const TAG_PREFIX: &str = "tag:";
/// The metric published when no tag is configured (invalid, so the peer is
/// left out of allocations partitioned by tags).
pub(crate) const NO_TAGS: &str = "tag:none";

/// A metric called `name` for `peer`, expiring `ttl` from now.
fn metric(name: String, peer: &PeerId, ttl: Duration) -> Metric {
    let now = now_nanos();
    let ttl = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
    Metric {
        received_at: now,
        ..Metric::new(name, peer.to_string(), "", now.saturating_add(ttl))
    }
}

/// The disk metric of `kind` from Kubo's repository usage.
///
/// `freespace`: value and weight are `StorageMax - RepoSize`; when the
/// repository is full (or `StorageMax` is 0) the metric is invalid with
/// value `0`, so the peer gets no new allocations. `reposize`: value is
/// `RepoSize` and weight its negation (smaller repositories first).
pub(crate) fn disk(stat: ipfs::RepoStat, kind: DiskMetric, ttl: Duration, peer: &PeerId) -> Metric {
    let mut m = metric(kind.name().to_owned(), peer, ttl);
    match kind {
        DiskMetric::Reposize => {
            // Go negates the uint64 and converts to int64: the same bits.
            m.weight = 0i64.wrapping_sub(stat.repo_size as i64);
            m.value = stat.repo_size.to_string();
        }
        DiskMetric::Freespace => {
            let free = if stat.repo_size < stat.storage_max {
                stat.storage_max - stat.repo_size
            } else {
                m.valid = false;
                0
            };
            m.weight = free as i64;
            m.value = free.to_string();
        }
    }
    m
}

/// The disk metric when Kubo's `repo/stat` failed: invalid, empty value,
/// weight 0 (as Go's disk informer publishes it then).
pub(crate) fn disk_unavailable(kind: DiskMetric, ttl: Duration, peer: &PeerId) -> Metric {
    let mut m = metric(kind.name().to_owned(), peer, ttl);
    m.valid = false;
    m
}

/// One partitionable metric `tag:<key>` per tag, valued by the tag, in key
/// order. With no tags: a single invalid `tag:none` metric.
pub(crate) fn tags(tags: &BTreeMap<String, String>, ttl: Duration, peer: &PeerId) -> Vec<Metric> {
    if tags.is_empty() {
        let mut m = metric(NO_TAGS.to_owned(), peer, ttl);
        m.valid = false;
        m.partitionable = true;
        return vec![m];
    }
    tags.iter()
        .map(|(k, v)| {
            let mut m = metric(format!("{TAG_PREFIX}{k}"), peer, ttl);
            m.value = v.clone();
            m.partitionable = true;
            m
        })
        .collect()
}

/// The `pinqueue` metric: value is the number of queued pins; weight is its
/// negation divided by `weight_bucket_size` (when > 0, rounding towards
/// zero), so peers with shorter queues come first and queues within the same
/// bucket weigh the same.
pub(crate) fn pinqueue(
    queued: usize,
    weight_bucket_size: u64,
    ttl: Duration,
    peer: &PeerId,
) -> Metric {
    let mut m = metric(PINQUEUE.to_owned(), peer, ttl);
    let queued = i64::try_from(queued).unwrap_or(i64::MAX);
    let mut weight = -queued;
    if weight_bucket_size > 0 {
        weight /= i64::try_from(weight_bucket_size).unwrap_or(i64::MAX);
    }
    m.value = queued.to_string();
    m.weight = weight;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn stat(repo_size: u64, storage_max: u64) -> ipfs::RepoStat {
        ipfs::RepoStat {
            repo_size,
            storage_max,
        }
    }

    /// The metric is for `peer` and expires `ttl` from now.
    #[test]
    fn metrics_carry_peer_and_expiry() {
        let peer = PeerId::random();
        let before = now_nanos();
        let m = disk(stat(10, 100), DiskMetric::Freespace, TTL, &peer);
        let after = now_nanos();
        assert_eq!(m.peer, peer.to_string());
        let ttl = TTL.as_nanos() as i64;
        assert!(m.expire >= before + ttl && m.expire <= after + ttl);
        assert!(!m.partitionable);
    }

    /// Free space is `StorageMax - RepoSize`, as value and weight.
    #[test]
    fn freespace_is_storage_max_minus_repo_size() {
        let m = disk(
            stat(250, 1000),
            DiskMetric::Freespace,
            TTL,
            &PeerId::random(),
        );
        assert_eq!(m.name, "freespace");
        assert_eq!(m.value, "750");
        assert_eq!(m.weight, 750);
        assert!(m.valid);
    }

    /// A full repository, or one with no `StorageMax`, gives an invalid
    /// metric valued 0.
    #[test]
    fn full_or_unbounded_repository_is_invalid() {
        for s in [stat(1000, 1000), stat(1200, 1000), stat(0, 0)] {
            let m = disk(s, DiskMetric::Freespace, TTL, &PeerId::random());
            assert!(!m.valid, "{s:?}");
            assert_eq!(m.value, "0");
            assert_eq!(m.weight, 0);
        }
    }

    /// `reposize` is valued by the size and weighs its negation.
    #[test]
    fn reposize_weighs_smaller_repositories_more() {
        let m = disk(stat(4096, 0), DiskMetric::Reposize, TTL, &PeerId::random());
        assert_eq!(m.name, "reposize");
        assert_eq!(m.value, "4096");
        assert_eq!(m.weight, -4096);
        assert!(m.valid);
    }

    /// When `repo/stat` fails, the disk metric is invalid.
    #[test]
    fn unavailable_disk_metric_is_invalid() {
        let m = disk_unavailable(DiskMetric::Freespace, TTL, &PeerId::random());
        assert_eq!(m.name, "freespace");
        assert!(!m.valid);
        assert_eq!(m.value, "");
    }

    /// Each tag is a partitionable `tag:<key>` metric valued by the tag.
    #[test]
    fn tags_are_partitionable_metrics() {
        let t = BTreeMap::from([
            ("region".to_owned(), "eu".to_owned()),
            ("group".to_owned(), "default".to_owned()),
        ]);
        let ms = tags(&t, TTL, &PeerId::random());
        let got: Vec<(&str, &str)> = ms
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(got, [("tag:group", "default"), ("tag:region", "eu")]);
        assert!(
            ms.iter()
                .all(|m| m.valid && m.partitionable && m.weight == 0)
        );
    }

    /// No tags: one invalid `tag:none`.
    #[test]
    fn no_tags_gives_invalid_tag_none() {
        let ms = tags(&BTreeMap::new(), TTL, &PeerId::random());
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].name, "tag:none");
        assert!(!ms[0].valid && ms[0].partitionable);
    }

    /// The queue length is the value; its negation, divided by the bucket
    /// size towards zero, the weight.
    #[test]
    fn pinqueue_weight_is_bucketed_negative_length() {
        let p = PeerId::random();
        let m = pinqueue(250_000, 100_000, TTL, &p);
        assert_eq!(m.name, "pinqueue");
        assert_eq!(m.value, "250000");
        assert_eq!(m.weight, -2);
        assert!(m.valid && !m.partitionable);
        assert_eq!(pinqueue(99_999, 100_000, TTL, &p).weight, 0);
        assert_eq!(pinqueue(42, 0, TTL, &p).weight, -42);
        assert_eq!(pinqueue(0, 100_000, TTL, &p).value, "0");
    }
}
