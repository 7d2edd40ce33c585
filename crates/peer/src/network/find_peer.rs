//! Finding a peer known only by its ID (met through gossip, never dialed):
//! a Kademlia lookup of it, whose answer gives the swarm its addresses, as
//! Go's routed host does before it gives up on "no addresses".

use std::collections::HashMap;

use libp2p::PeerId;
use libp2p::kad::{self, QueryId};
use tokio::sync::oneshot;

/// Lookups running at once; more are answered "not found" at once.
pub(crate) const MAX_LOOKUPS: usize = 64;

/// The lookups running, and who waits for each. Owned by the swarm task.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    running: HashMap<QueryId, (PeerId, Vec<oneshot::Sender<bool>>)>,
}

impl Lookups {
    /// The query already looking for `peer`, if one runs.
    pub(crate) fn running_for(&self, peer: &PeerId) -> Option<QueryId> {
        self.running
            .iter()
            .find_map(|(id, (p, _))| (p == peer).then_some(*id))
    }

    /// Whether another lookup may start.
    pub(crate) fn has_room(&self) -> bool {
        self.running.len() < MAX_LOOKUPS
    }

    /// `respond_to` waits for the lookup `id` of `peer`.
    pub(crate) fn wait(&mut self, id: QueryId, peer: PeerId, respond_to: oneshot::Sender<bool>) {
        self.running
            .entry(id)
            .or_insert_with(|| (peer, Vec::new()))
            .1
            .push(respond_to);
    }

    /// A step of query `id`: once it is over, the peer looked for and the
    /// addresses the answers gave for it (empty when not found); `None`
    /// for a query that is not a lookup or not over. The waiters are
    /// answered with `found` by [`Lookups::answer`].
    pub(crate) fn on_query(
        &mut self,
        id: QueryId,
        result: &kad::QueryResult,
        last_step: bool,
    ) -> Option<(PeerId, Vec<libp2p::Multiaddr>)> {
        let (peer, _) = self.running.get(&id)?;
        let peers = match result {
            kad::QueryResult::GetClosestPeers(Ok(ok)) => &ok.peers,
            kad::QueryResult::GetClosestPeers(Err(kad::GetClosestPeersError::Timeout {
                peers,
                ..
            })) => peers,
            _ => return None,
        };
        let addrs: Vec<libp2p::Multiaddr> = peers
            .iter()
            .filter(|info| info.peer_id == *peer)
            .flat_map(|info| info.addrs.iter().cloned())
            .collect();
        (last_step || !addrs.is_empty()).then_some((*peer, addrs))
    }

    /// Ends lookup `id`, telling its waiters whether the peer was found.
    pub(crate) fn answer(&mut self, id: QueryId, found: bool) {
        if let Some((_, waiters)) = self.running.remove(&id) {
            for w in waiters {
                let _ = w.send(found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::kad::{GetClosestPeersOk, PeerInfo, QueryResult};

    fn result(peers: Vec<PeerInfo>) -> QueryResult {
        QueryResult::GetClosestPeers(Ok(GetClosestPeersOk { key: vec![], peers }))
    }

    #[test]
    fn a_lookup_answers_with_the_addresses_found_for_its_peer() {
        let mut l = Lookups::default();
        let (wanted, other) = (PeerId::random(), PeerId::random());
        // Query ids are only made by a Kademlia behaviour: borrow one.
        let mut kad = kad::Behaviour::new(
            PeerId::random(),
            kad::store::MemoryStore::new(PeerId::random()),
        );
        let id = kad.get_closest_peers(wanted);
        let (tx, rx) = oneshot::channel();
        l.wait(id, wanted, tx);
        assert_eq!(l.running_for(&wanted), Some(id));
        let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let others = vec![PeerInfo {
            peer_id: other,
            addrs: vec![addr.clone()],
        }];
        // Not over, and the peer not among the answers: nothing yet.
        assert_eq!(l.on_query(id, &result(others.clone()), false), None);
        // Over without it: not found.
        assert_eq!(
            l.on_query(id, &result(others), true),
            Some((wanted, vec![]))
        );
        let found = vec![PeerInfo {
            peer_id: wanted,
            addrs: vec![addr.clone()],
        }];
        assert_eq!(
            l.on_query(id, &result(found), false),
            Some((wanted, vec![addr]))
        );
        l.answer(id, true);
        assert_eq!(rx.blocking_recv(), Ok(true));
        assert_eq!(l.running_for(&wanted), None);
    }
}
