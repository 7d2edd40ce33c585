//! Choosing the peers a pin is allocated to: Go IPFS Cluster's `allocate()`
//! (`allocate.go`) and its balanced allocator (`allocator/balanced`), as one
//! pure function over the peers' latest metrics.
//!
//! Candidates are partitioned by the first metric of `allocate_by`, each
//! partition by the next metric, and so on. Partitionable metrics (tags)
//! group the peers sharing a value; any other metric (`freespace`) gives
//! each peer its own partition. Partitions are ordered by weight, heaviest
//! first, and peers are then taken round-robin across partitions, so that
//! replicas spread over groups before any group gets a second one.
//!
//! Where Go leaves an order to map iteration or an unstable sort (peers of
//! one tag partition, partitions of equal weight and value), this orders
//! the tied peers by a hash of the pin's CID and the peer's ID: the same
//! pin always gets the same order, and pins spread evenly over peers whose
//! metrics are equal (ordering them by ID gave every such pin the same
//! peers).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cid::Cid;
use libp2p::PeerId;

use crate::network::messages::Metric;

/// A peer that may be allocated, with its latest metrics by name.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// The peer.
    pub(crate) peer: PeerId,
    /// Its latest valid, unexpired metrics, by metric name. Metrics marked
    /// invalid are ignored.
    pub(crate) metrics: Arc<HashMap<String, Metric>>,
}

/// Why no allocation could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The replication factors are not `-1/-1` nor `0 < min <= max`.
    #[error("bad replication factors: {min}/{max}")]
    BadReplicationFactors {
        /// `replication_factor_min`.
        min: i32,
        /// `replication_factor_max`.
        max: i32,
    },
    /// Fewer eligible peers than the minimum replication factor still
    /// requires (Go's `allocationError`).
    #[error(
        "not enough peers to allocate CID {cid}. Needed at least: {needed}. \
         Wanted at most: {wanted}. Available candidates: {available}"
    )]
    NotEnoughPeers {
        /// The CID being allocated.
        cid: String,
        /// New peers needed to reach the minimum (beyond the valid current
        /// allocations).
        needed: usize,
        /// New peers wanted to reach the maximum.
        wanted: usize,
        /// Eligible peers other than the current allocations.
        available: usize,
    },
}

/// The peers to allocate `cid` to, in order of preference.
///
/// * `min`/`max`: the pin's replication factors. `-1/-1` (everywhere)
///   returns no allocations, as Go does; otherwise `0 < min <= max`.
/// * `current`: the pin's allocations as they stand (empty for a new pin).
///   Those that are eligible candidates are "valid" and kept first.
/// * `priority`: the pin's user allocations; eligible ones are taken before
///   any other candidate (ordered among themselves by the allocator).
/// * `candidates`: every peer that may be allocated, with its latest valid
///   metrics. Only peers with a metric for every name in `allocate_by` are
///   eligible (Go's `filterMetrics`); trusted/untrusted-peer filtering is the
///   caller's.
/// * `blacklist`: peers never allocated (a dead peer being repinned from).
///
/// As Go's `allocate()`: when more valid current allocations than `max`
/// exist, the first `max` are returned; when there are at least `min`,
/// `current` is returned unchanged (repinning does nothing while a pin is
/// above its minimum). Otherwise the valid current allocations are followed
/// by up to `max - valid` new peers.
///
/// # Errors
///
/// [`AllocError::BadReplicationFactors`] for factors Go would not accept;
/// [`AllocError::NotEnoughPeers`] when fewer than `min` peers can hold it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn allocate(
    cid: &Cid,
    min: i32,
    max: i32,
    current: &[PeerId],
    priority: &[PeerId],
    candidates: &[Candidate],
    allocate_by: &[String],
    blacklist: &[PeerId],
) -> Result<Vec<PeerId>, AllocError> {
    let bad = || AllocError::BadReplicationFactors { min, max };
    if i64::from(min) + i64::from(max) == 0 {
        return Err(bad());
    }
    if min < 0 && max < 0 {
        return Ok(Vec::new());
    }
    let (Ok(rmin), Ok(rmax)) = (usize::try_from(min), usize::try_from(max)) else {
        return Err(bad());
    };
    if rmin == 0 || rmin > rmax {
        return Err(bad());
    }

    // Split the eligible peers into current, priority and other candidates
    // (Go's filterMetrics: blacklist first, then current, then priority).
    let mut seen = HashSet::new();
    let mut current_valid = HashSet::new();
    let mut prio = Vec::new();
    let mut other = Vec::new();
    for c in candidates {
        if blacklist.contains(&c.peer) || !seen.insert(c.peer) || !has_all(c, allocate_by) {
            continue;
        }
        if current.contains(&c.peer) {
            current_valid.insert(c.peer);
        } else if priority.contains(&c.peer) {
            prio.push(c);
        } else {
            other.push(c);
        }
    }
    // Valid current allocations, in the pin's order.
    let mut kept = Vec::with_capacity(current_valid.len());
    for p in current {
        if current_valid.remove(p) {
            kept.push(*p);
        }
    }

    if kept.len() > rmax {
        kept.truncate(rmax);
        return Ok(kept);
    }
    if kept.len() >= rmin {
        return Ok(current.to_vec());
    }
    let needed = rmin - kept.len();
    let wanted = rmax - kept.len();
    let available = prio.len() + other.len();
    if available < needed {
        return Err(AllocError::NotEnoughPeers {
            cid: cid.to_string(),
            needed,
            wanted,
            available,
        });
    }

    let seed = spread_seed(cid);
    let mut order = balanced(&prio, allocate_by, seed);
    order.extend(balanced(&other, allocate_by, seed));
    order.truncate(wanted);
    kept.extend(order);
    Ok(kept)
}

/// Whether the candidate has a valid metric of every name.
fn has_all(c: &Candidate, names: &[String]) -> bool {
    !names.is_empty()
        && names
            .iter()
            .all(|n| c.metrics.get(n).is_some_and(|m| m.valid))
}

/// The balanced allocator's order over `peers` (each having every metric),
/// ties broken by [`tie_key`] under `seed`.
fn balanced(peers: &[&Candidate], by: &[String], seed: u64) -> Vec<PeerId> {
    if peers.is_empty() || by.is_empty() {
        return Vec::new();
    }
    let mut root = Partitioned::new(peers, by, seed);
    std::iter::from_fn(|| root.choose_next()).collect()
}

/// FNV-1a over `bytes` from `state`: stable across builds and platforms
/// (std's hashers promise neither), and cheap for a few peers a pin.
fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        state ^= u64::from(*b);
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    state
}

/// The tie-break seed of one pin.
fn spread_seed(cid: &Cid) -> u64 {
    fnv1a(0xcbf2_9ce4_8422_2325, &cid.to_bytes())
}

/// Where `peer` stands among tied peers for the pin of `seed`: its ID
/// hashed from the seed, mixed (splitmix64's finalizer) so that every bit
/// of the seed moves the order; its ID's bytes break a collision.
fn tie_key(seed: u64, peer: &PeerId) -> (u64, Vec<u8>) {
    let bytes = peer.to_bytes();
    let mut z = fnv1a(seed, &bytes);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31), bytes)
}

/// Peers partitioned by one metric, each partition by the next metrics
/// (Go's `partitionedMetric`).
#[derive(Debug)]
struct Partitioned {
    /// Heaviest first.
    partitions: Vec<Partition>,
    /// The partition to take the next peer from.
    next: usize,
    /// Every partition is exhausted.
    exhausted: bool,
}

/// Peers sharing a value of one metric (or a single peer, for
/// non-partitionable metrics).
#[derive(Debug)]
struct Partition {
    value: String,
    /// Sum of the weights of its peers' metrics.
    weight: i64,
    /// `weight` plus the aggregated weight of the sub-partitions.
    aggregated: i64,
    /// Its peers, smallest [`tie_key`] first, and whether each was taken
    /// (only used at the last level, when `sub` is `None`).
    peers: Vec<(PeerId, bool)>,
    /// Its first peer's [`tie_key`], the last tie-break.
    first: (u64, Vec<u8>),
    /// The same peers, partitioned by the next metric.
    sub: Option<Partitioned>,
}

impl Partitioned {
    fn new(peers: &[&Candidate], by: &[String], seed: u64) -> Self {
        let name = &by[0];
        let mut partitions: Vec<Partition> = Vec::new();
        let mut by_value: HashMap<&str, usize> = HashMap::new();
        for c in peers {
            let Some(m) = c.metrics.get(name) else {
                continue;
            };
            // Non-partitionable metrics (free space) never share a
            // partition: equal values must not add up into a heavier one.
            let slot = if m.partitionable {
                by_value.get(m.value.as_str()).copied()
            } else {
                None
            };
            match slot {
                Some(i) => {
                    let p = &mut partitions[i];
                    p.weight = p.weight.saturating_add(m.weight);
                    p.aggregated = p.aggregated.saturating_add(m.weight);
                    p.peers.push((c.peer, false));
                }
                None => {
                    if m.partitionable {
                        by_value.insert(m.value.as_str(), partitions.len());
                    }
                    partitions.push(Partition {
                        value: m.value.clone(),
                        weight: m.weight,
                        aggregated: m.weight,
                        peers: vec![(c.peer, false)],
                        first: (0, Vec::new()),
                        sub: None,
                    });
                }
            }
        }
        for p in &mut partitions {
            p.peers.sort_by_cached_key(|(id, _)| tie_key(seed, id));
            p.first = p
                .peers
                .first()
                .map(|(id, _)| tie_key(seed, id))
                .unwrap_or_default();
            if by.len() > 1 {
                let members: Vec<&Candidate> = peers
                    .iter()
                    .copied()
                    .filter(|c| p.peers.iter().any(|(id, _)| *id == c.peer))
                    .collect();
                let sub = Self::new(&members, &by[1..], seed);
                for s in &sub.partitions {
                    p.aggregated = p.aggregated.saturating_add(s.aggregated);
                }
                p.sub = Some(sub);
            }
        }
        // Heaviest first; then heaviest sub-partitions; then by value.
        partitions.sort_by(|a, b| {
            b.weight
                .cmp(&a.weight)
                .then(b.aggregated.cmp(&a.aggregated))
                .then_with(|| a.value.cmp(&b.value))
                .then_with(|| a.first.cmp(&b.first))
        });
        Self {
            partitions,
            next: 0,
            exhausted: false,
        }
    }

    /// The next peer: from the next partition that still has one, never
    /// twice in a row from the same partition while another has peers
    /// (Go's `chooseNext`).
    fn choose_next(&mut self) -> Option<PeerId> {
        let len = self.partitions.len();
        if len == 0 || self.exhausted {
            return None;
        }
        for _ in 0..len {
            let part = &mut self.partitions[self.next];
            let peer = match &mut part.sub {
                Some(sub) => sub.choose_next(),
                None => part
                    .peers
                    .iter_mut()
                    .find(|(_, used)| !*used)
                    .map(|(id, used)| {
                        *used = true;
                        *id
                    }),
            };
            self.next = (self.next + 1) % len;
            if peer.is_some() {
                return peer;
            }
        }
        self.exhausted = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use multihash_codetable::{Code, MultihashDigest};

    use super::*;

    fn cid() -> Cid {
        Cid::new_v1(0x55, Code::Sha2_256.digest(b"allocate me"))
    }

    fn metric(name: &str, peer: &PeerId, value: &str, weight: i64, part: bool) -> Metric {
        Metric {
            weight,
            partitionable: part,
            ..Metric::new(name, peer.to_string(), value, i64::MAX)
        }
    }

    /// A candidate with `freespace` = `free` and, if given, `tag:group`.
    fn cand(peer: PeerId, free: i64, group: Option<&str>) -> Candidate {
        let mut metrics = HashMap::new();
        metrics.insert(
            "freespace".to_owned(),
            metric("freespace", &peer, &free.to_string(), free, false),
        );
        if let Some(g) = group {
            metrics.insert(
                "tag:group".to_owned(),
                metric("tag:group", &peer, g, 0, true),
            );
        }
        Candidate {
            peer,
            metrics: Arc::new(metrics),
        }
    }

    fn by(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    /// By free space alone, the peers with most free space come first.
    #[test]
    fn freespace_orders_by_weight_descending() {
        let p = peers(4);
        let cands = vec![
            cand(p[0], 100, None),
            cand(p[1], 300, None),
            cand(p[2], 200, None),
            cand(p[3], 50, None),
        ];
        let got = allocate(&cid(), 3, 3, &[], &[], &cands, &by(&["freespace"]), &[]).unwrap();
        assert_eq!(got, [p[1], p[2], p[0]]);
    }

    /// Equal free space does not group peers: each is still taken in turn,
    /// in an order the pin's CID decides, the same every time and whatever
    /// order the candidates come in.
    #[test]
    fn equal_freespace_ties_follow_the_pin() {
        let p = peers(3);
        let mut cands: Vec<Candidate> = p.iter().map(|id| cand(*id, 100, None)).collect();
        let got = allocate(&cid(), 3, 3, &[], &[], &cands, &by(&["freespace"]), &[]).unwrap();
        let mut expected = p.clone();
        expected.sort_by_cached_key(|id| tie_key(spread_seed(&cid()), id));
        assert_eq!(got, expected);
        cands.reverse();
        let again = allocate(&cid(), 3, 3, &[], &[], &cands, &by(&["freespace"]), &[]).unwrap();
        assert_eq!(again, got);
    }

    /// Pins with two replicas over three peers of equal free space (a
    /// shared IPFS, or identical disks) spread over all three: each holds
    /// about two thirds of them, not the same two peers every pin.
    #[test]
    fn equal_metrics_spread_pins_evenly() {
        let p = peers(3);
        let cands: Vec<Candidate> = p.iter().map(|id| cand(*id, 100, None)).collect();
        let mut held: HashMap<PeerId, usize> = HashMap::new();
        let pins = 3000;
        for i in 0..pins {
            let c = Cid::new_v1(0x55, Code::Sha2_256.digest(&u32::to_be_bytes(i)));
            let got = allocate(&c, 2, 2, &[], &[], &cands, &by(&["freespace"]), &[]).unwrap();
            assert_eq!(got.len(), 2);
            for peer in got {
                *held.entry(peer).or_default() += 1;
            }
        }
        for peer in &p {
            let n = held.get(peer).copied().unwrap_or(0);
            // 2000 expected; a fair split stays well inside 10%.
            assert!(
                (1800..=2200).contains(&n),
                "{peer} holds {n} of {pins}: {held:?}"
            );
        }
    }

    /// Three groups of two peers, three replicas: one peer per group, the
    /// one with most free space in each, the group with most free space
    /// first.
    #[test]
    fn tag_group_spreads_replicas_over_groups() {
        let p = peers(6);
        let cands = vec![
            cand(p[0], 100, Some("a")),
            cand(p[1], 900, Some("a")),
            cand(p[2], 500, Some("b")),
            cand(p[3], 400, Some("b")),
            cand(p[4], 10, Some("c")),
            cand(p[5], 20, Some("c")),
        ];
        let grouped = |n| {
            let by = by(&["tag:group", "freespace"]);
            allocate(&cid(), n, n, &[], &[], &cands, &by, &[]).unwrap()
        };
        assert_eq!(grouped(3), [p[1], p[2], p[5]]);
        // All six: round robin over the groups, twice.
        let all = grouped(6);
        assert_eq!(all, [p[1], p[2], p[5], p[0], p[3], p[4]]);
    }

    /// Peers missing a metric of `allocate_by` are not eligible (Go's
    /// filterMetrics keeps only peers with every metric).
    #[test]
    fn peers_missing_a_metric_are_left_out() {
        let p = peers(3);
        let cands = vec![
            cand(p[0], 100, Some("a")),
            cand(p[1], 900, None),
            cand(p[2], 500, Some("b")),
        ];
        let by = by(&["tag:group", "freespace"]);
        let got = allocate(&cid(), 1, 3, &[], &[], &cands, &by, &[]).unwrap();
        assert_eq!(got, [p[2], p[0]]);
        let mut invalid = cand(p[1], 900, Some("c"));
        Arc::make_mut(&mut invalid.metrics)
            .get_mut("freespace")
            .unwrap()
            .valid = false;
        let got = allocate(&cid(), 1, 3, &[], &[], &[invalid], &by, &[]);
        assert!(matches!(got, Err(AllocError::NotEnoughPeers { .. })));
    }

    /// Valid current allocations come first and are completed up to max.
    #[test]
    fn current_allocations_are_kept_first() {
        let p = peers(4);
        let cands = vec![
            cand(p[0], 900, None),
            cand(p[1], 800, None),
            cand(p[2], 10, None),
            cand(p[3], 700, None),
        ];
        let by = by(&["freespace"]);
        let got = allocate(&cid(), 3, 3, &[p[2]], &[], &cands, &by, &[]).unwrap();
        assert_eq!(got, [p[2], p[0], p[1]]);
    }

    /// At or above min (and not above max), the current allocations are
    /// returned as they are, even the ones no longer eligible (Go: repinning
    /// does nothing while a pin keeps its minimum).
    #[test]
    fn current_allocations_satisfying_min_are_returned_unchanged() {
        let p = peers(4);
        let gone = PeerId::random();
        let cands = vec![
            cand(p[0], 900, None),
            cand(p[1], 10, None),
            cand(p[2], 20, None),
        ];
        let by = by(&["freespace"]);
        let current = [p[2], gone, p[1]];
        let got = allocate(&cid(), 2, 3, &current, &[], &cands, &by, &[]).unwrap();
        assert_eq!(got, current);
        // Blacklisting one takes it below min: re-allocated.
        let got = allocate(&cid(), 2, 3, &current, &[], &cands, &by, &[p[1]]).unwrap();
        assert_eq!(got, [p[2], p[0]]);
    }

    /// More valid current allocations than max: the first max are kept.
    #[test]
    fn current_above_max_is_truncated() {
        let p = peers(4);
        let cands: Vec<Candidate> = p.iter().map(|id| cand(*id, 100, None)).collect();
        let got = allocate(&cid(), 1, 2, &p, &[], &cands, &by(&["freespace"]), &[]).unwrap();
        assert_eq!(got, [p[0], p[1]]);
    }

    /// User allocations are taken before better candidates.
    #[test]
    fn user_allocations_come_first() {
        let p = peers(4);
        let cands = vec![
            cand(p[0], 900, None),
            cand(p[1], 800, None),
            cand(p[2], 10, None),
            cand(p[3], 20, None),
        ];
        let by = by(&["freespace"]);
        let got = allocate(&cid(), 3, 3, &[], &[p[2], p[3]], &cands, &by, &[]).unwrap();
        assert_eq!(got, [p[3], p[2], p[0]]);
        // A user allocation that is not a candidate is skipped.
        let stranger = PeerId::random();
        let got = allocate(&cid(), 2, 2, &[], &[stranger, p[2]], &cands, &by, &[]).unwrap();
        assert_eq!(got, [p[2], p[0]]);
    }

    /// Blacklisted peers are never allocated, whatever their metrics.
    #[test]
    fn blacklisted_peers_are_excluded() {
        let p = peers(3);
        let cands = vec![
            cand(p[0], 900, None),
            cand(p[1], 800, None),
            cand(p[2], 10, None),
        ];
        let by = by(&["freespace"]);
        let got = allocate(&cid(), 1, 3, &[], &[p[0]], &cands, &by, &[p[0]]).unwrap();
        assert_eq!(got, [p[1], p[2]]);
    }

    /// Fewer eligible peers than min: an error saying how many were needed
    /// and found.
    #[test]
    fn not_enough_peers() {
        let p = peers(2);
        let cands = vec![cand(p[0], 900, None), cand(p[1], 800, None)];
        let err = allocate(&cid(), 3, 4, &[], &[], &cands, &by(&["freespace"]), &[]).unwrap_err();
        assert_eq!(
            err,
            AllocError::NotEnoughPeers {
                cid: cid().to_string(),
                needed: 3,
                wanted: 4,
                available: 2
            }
        );
        let text = err.to_string();
        assert!(text.contains("Needed at least: 3"), "{text}");
        assert!(text.contains("Available candidates: 2"), "{text}");
        // A valid current allocation counts towards min.
        let err = allocate(&cid(), 4, 4, &[p[0]], &[], &cands, &by(&["freespace"]), &[]);
        assert!(matches!(
            err,
            Err(AllocError::NotEnoughPeers {
                needed: 3,
                available: 1,
                ..
            })
        ));
    }

    /// New allocations stop at max even when more candidates exist.
    #[test]
    fn max_truncates_new_allocations() {
        let p = peers(5);
        let cands: Vec<Candidate> = p
            .iter()
            .enumerate()
            .map(|(i, id)| cand(*id, 100 * (i as i64 + 1), None))
            .collect();
        let got = allocate(&cid(), 1, 2, &[], &[], &cands, &by(&["freespace"]), &[]).unwrap();
        assert_eq!(got, [p[4], p[3]]);
    }

    /// `-1/-1` allocates everywhere (no allocations); other bad factors
    /// are refused.
    #[test]
    fn replication_factors() {
        let cands = vec![cand(PeerId::random(), 1, None)];
        let by = by(&["freespace"]);
        assert_eq!(
            allocate(&cid(), -1, -1, &[], &[], &cands, &by, &[]),
            Ok(vec![])
        );
        for (min, max) in [(0, 0), (1, -1), (3, 2), (0, 2), (-2, 2)] {
            assert_eq!(
                allocate(&cid(), min, max, &[], &[], &cands, &by, &[]),
                Err(AllocError::BadReplicationFactors { min, max }),
                "{min}/{max}"
            );
        }
    }
}
