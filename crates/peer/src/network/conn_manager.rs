//! Go's connection manager (`cluster.connection_manager`, go-libp2p's
//! `BasicConnMgr`): when more than `high_water` connections are open, the
//! peers past their `grace_period` that we don't need are disconnected,
//! oldest first, until `low_water` remain. Checked at most every
//! [`TRIM_INTERVAL`] (Go's silence period), when a connection opens above
//! `high_water` and on the driver's tick.
//!
//! Which peers we need is the driver's call ([`ConnManager::trim`] takes
//! it): trusted writers, and the cluster peers of the peer book, which the
//! book would redial a moment after a trim anyway. What this trims is
//! everything else: peers of other networks, scanners, connections that
//! never identified as a cluster peer.
//!
//! Plain data, owned by the swarm task: no I/O, no clock of its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// Least time between two trims (Go: `silencePeriod`).
pub(crate) const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// `cluster.connection_manager`, as the network uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnManagerConfig {
    /// Trim when more connections than this are open.
    pub high_water: u32,
    /// Trim down to this many.
    pub low_water: u32,
    /// A peer's connections are never trimmed in their first
    /// `grace_period` (from its oldest open connection).
    pub grace_period: Duration,
}

impl Default for ConnManagerConfig {
    /// Go's defaults.
    fn default() -> Self {
        Self {
            high_water: 400,
            low_water: 100,
            grace_period: Duration::from_secs(120),
        }
    }
}

/// The open connections and when each opened. See the module comment.
#[derive(Debug)]
pub(crate) struct ConnManager {
    config: ConnManagerConfig,
    conns: HashMap<ConnectionId, (PeerId, Instant)>,
    last_trim: Option<Instant>,
}

impl ConnManager {
    pub(crate) fn new(config: ConnManagerConfig) -> Self {
        Self {
            config,
            conns: HashMap::new(),
            last_trim: None,
        }
    }

    pub(crate) fn opened(&mut self, id: ConnectionId, peer: PeerId, now: Instant) {
        self.conns.insert(id, (peer, now));
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.conns.remove(&id);
    }

    /// Over `high_water`, and no trim in the last [`TRIM_INTERVAL`].
    pub(crate) fn trim_due(&self, now: Instant) -> bool {
        self.conns.len() > self.config.high_water as usize
            && self
                .last_trim
                .is_none_or(|t| now.duration_since(t) >= TRIM_INTERVAL)
    }

    /// The connections to close to get down to `low_water`: whole peers,
    /// never a `needed` one nor one younger than the grace period, the
    /// peer connected longest first (it had the most time to identify as a
    /// cluster peer and did not). Fewer when not enough can go. The caller
    /// closes them; they are forgotten when reported closed.
    pub(crate) fn trim(
        &mut self,
        now: Instant,
        needed: impl Fn(&PeerId) -> bool,
    ) -> Vec<ConnectionId> {
        self.last_trim = Some(now);
        let low = self.config.low_water as usize;
        let mut excess = self.conns.len().saturating_sub(low);
        if excess == 0 {
            return vec![];
        }
        // Each peer's oldest open connection, and all its connections.
        let mut peers: HashMap<PeerId, (Instant, Vec<ConnectionId>)> = HashMap::new();
        for (id, (peer, opened)) in &self.conns {
            let e = peers.entry(*peer).or_insert((*opened, vec![]));
            e.0 = e.0.min(*opened);
            e.1.push(*id);
        }
        let mut candidates: Vec<(Instant, PeerId, Vec<ConnectionId>)> = peers
            .into_iter()
            .filter(|(peer, (first, _))| {
                now.duration_since(*first) >= self.config.grace_period && !needed(peer)
            })
            .map(|(peer, (first, ids))| (first, peer, ids))
            .collect();
        candidates.sort_by_key(|(first, peer, _)| (*first, *peer));
        let mut out = Vec::new();
        for (_, _, ids) in candidates {
            if excess == 0 {
                break;
            }
            excess = excess.saturating_sub(ids.len());
            out.extend(ids);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(120);

    fn manager(high: u32, low: u32) -> ConnManager {
        ConnManager::new(ConnManagerConfig {
            high_water: high,
            low_water: low,
            grace_period: GRACE,
        })
    }

    #[test]
    fn trims_down_to_low_water_sparing_needed_and_young_peers() {
        let mut cm = manager(6, 3);
        let t0 = Instant::now();
        let peers: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
        // Peers 0..6 opened one second apart, peer 7 just now; peer 1 is
        // needed.
        let mut ids = vec![];
        for (i, p) in peers.iter().enumerate().take(7) {
            let id = ConnectionId::new_unchecked(i);
            cm.opened(id, *p, t0 + Duration::from_secs(i as u64));
            ids.push(id);
        }
        let now = t0 + GRACE + Duration::from_secs(5);
        let young = ConnectionId::new_unchecked(7);
        cm.opened(young, peers[7], now);
        assert!(cm.trim_due(now), "8 open, high water 6");
        let closed = cm.trim(now, |p| *p == peers[1]);
        // 8 - 3 = 5 to close: the oldest unneeded peers past the grace.
        assert_eq!(closed, vec![ids[0], ids[2], ids[3], ids[4], ids[5]]);
        assert!(!closed.contains(&young));
        assert!(!cm.trim_due(now), "no second trim within the interval");
        for id in closed {
            cm.closed(id);
        }
        assert!(!cm.trim_due(now + TRIM_INTERVAL), "3 open");
    }

    #[test]
    fn a_peer_goes_whole_and_nothing_below_low_water() {
        let mut cm = manager(2, 2);
        let t0 = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        for (i, p) in [a, a, b].into_iter().enumerate() {
            cm.opened(ConnectionId::new_unchecked(i), p, t0);
        }
        let now = t0 + GRACE;
        assert!(cm.trim_due(now));
        // One over: a peer goes with all its connections.
        let mut closed = cm.trim(now, |_| false);
        closed.sort();
        assert!(
            closed
                == vec![
                    ConnectionId::new_unchecked(0),
                    ConnectionId::new_unchecked(1)
                ]
                || closed == vec![ConnectionId::new_unchecked(2)],
            "{closed:?}"
        );
        // Everyone needed or young: nothing goes, whatever the count.
        let mut all_needed = manager(1, 1);
        let mut young = manager(1, 1);
        for i in 0..5 {
            all_needed.opened(ConnectionId::new_unchecked(i), PeerId::random(), t0);
            young.opened(ConnectionId::new_unchecked(i), PeerId::random(), now);
        }
        assert!(all_needed.trim(now, |_| true).is_empty());
        assert!(young.trim(now, |_| false).is_empty());
    }
}
