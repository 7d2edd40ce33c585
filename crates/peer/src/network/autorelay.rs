//! Reservations on relays when AutoNAT finds this peer unreachable: while
//! the NAT status is private, the peer listens through up to
//! [`MAX_RESERVATIONS`] connected peers that offer circuit relay v2 (hop),
//! so others reach it at `<relay>/p2p-circuit/p2p/<us>` and DCUtR can then
//! punch a direct connection. Public again: the reservations are dropped.
//! And a peer reached only through a relay is dialled directly at the
//! addresses it identifies with (connection reversal): DCUtR's hole punch
//! assumes both sides are behind NATs and dial at once, so it fails when
//! the other side is public, where a plain dial from the private side
//! works (go-libp2p's holepunch service tries that first too).
//! This module decides; the swarm's task (`driver.rs`) acts.

use std::collections::{HashMap, HashSet};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Relays listened through at once (Go's autorelay keeps 2 by default).
pub(crate) const MAX_RESERVATIONS: usize = 2;

/// Addresses a peer reached through a relay is dialled at, at most: they
/// are what it claims, so a hostile one can't make us dial a long list.
pub(crate) const MAX_DIRECT_DIALS: usize = 8;

/// What the swarm's task should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Listen on this circuit address (a reservation on its relay).
    Reserve(PeerId, Multiaddr),
    /// Close this relay listener.
    Release(ListenerId),
    /// Dial this peer, reached only through a relay, at these addresses.
    Dial(PeerId, Vec<Multiaddr>),
}

/// The relay candidates and the reservations held ([module docs](self)).
#[derive(Debug, Default)]
pub(crate) struct AutoRelay {
    private: bool,
    /// Connected peers offering hop, with an address to reach them by.
    candidates: HashMap<PeerId, Multiaddr>,
    /// Reservations asked for or held, by relay.
    reserved: HashMap<PeerId, ListenerId>,
    /// Where we dialled connected peers.
    dialed: HashMap<PeerId, Multiaddr>,
    /// Peers connected only through relays.
    relayed_only: HashSet<PeerId>,
}

impl AutoRelay {
    /// We dialled `peer` at `addr`: the address to reach it by if it relays.
    pub(crate) fn dialed(&mut self, peer: PeerId, addr: Multiaddr) {
        if is_direct(&addr) {
            self.dialed.insert(peer, addr);
        }
    }

    /// A connection to `peer` opened, `relayed` or not (`only_one`: its
    /// first). Returns true for the first direct one after relayed ones.
    pub(crate) fn connected(&mut self, peer: PeerId, relayed: bool, only_one: bool) -> bool {
        if relayed {
            if only_one {
                self.relayed_only.insert(peer);
            }
            return false;
        }
        self.relayed_only.remove(&peer)
    }

    /// A peer identified; `relays` says whether it offers hop. It is
    /// reached where we dialled it, else at its first direct listen address.
    pub(crate) fn identified(
        &mut self,
        peer: PeerId,
        relays: bool,
        listen: &[Multiaddr],
    ) -> Vec<Action> {
        let direct: Vec<Multiaddr> = listen
            .iter()
            .filter(|a| is_direct(a))
            .take(MAX_DIRECT_DIALS)
            .cloned()
            .collect();
        let addr = self.dialed.get(&peer).or_else(|| direct.first()).cloned();
        let mut actions = vec![];
        if self.relayed_only.contains(&peer) && !direct.is_empty() {
            actions.push(Action::Dial(peer, direct));
        }
        match (relays, addr) {
            (true, Some(addr)) => {
                self.candidates.insert(peer, addr);
            }
            _ => {
                self.candidates.remove(&peer);
            }
        }
        actions.extend(self.fill());
        actions
    }

    /// AutoNAT's new verdict: `private` or not (public or unknown).
    pub(crate) fn nat_status(&mut self, private: bool) -> Vec<Action> {
        self.private = private;
        if private {
            return self.fill();
        }
        self.reserved
            .drain()
            .map(|(_, id)| Action::Release(id))
            .collect()
    }

    /// The swarm gave `relay`'s circuit address this listener.
    pub(crate) fn listening(&mut self, relay: PeerId, id: ListenerId) {
        self.reserved.insert(relay, id);
    }

    /// A listener closed (a refused or lost reservation, or one released):
    /// another relay is tried while private.
    pub(crate) fn listener_closed(&mut self, id: ListenerId) -> Vec<Action> {
        let Some(relay) = self
            .reserved
            .iter()
            .find_map(|(relay, l)| (*l == id).then_some(*relay))
        else {
            return vec![];
        };
        self.reserved.remove(&relay);
        // Not asked again: it refused or went away (it is a candidate
        // again when it next identifies).
        self.candidates.remove(&relay);
        self.fill()
    }

    /// The last connection to `peer` closed.
    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        self.candidates.remove(peer);
        self.dialed.remove(peer);
        self.relayed_only.remove(peer);
    }

    /// Relays listened through (or being asked).
    pub(crate) fn relays(&self) -> usize {
        self.reserved.len()
    }

    /// Reservations to ask for, while private and short of the maximum,
    /// in a stable order (by peer ID).
    fn fill(&mut self) -> Vec<Action> {
        if !self.private {
            return vec![];
        }
        let mut free: Vec<(&PeerId, &Multiaddr)> = self
            .candidates
            .iter()
            .filter(|(p, _)| !self.reserved.contains_key(p))
            .collect();
        free.sort_by_key(|(p, _)| p.to_bytes());
        let room = MAX_RESERVATIONS.saturating_sub(self.reserved.len());
        free.into_iter()
            .take(room)
            .map(|(peer, addr)| Action::Reserve(*peer, circuit(addr, *peer)))
            .collect()
    }
}

/// `<addr>/p2p/<relay>/p2p-circuit`: listening there asks `relay` for a
/// reservation.
fn circuit(addr: &Multiaddr, relay: PeerId) -> Multiaddr {
    let addr = match addr.iter().last() {
        Some(Protocol::P2p(_)) => addr.clone(),
        _ => addr.clone().with(Protocol::P2p(relay)),
    };
    addr.with(Protocol::P2pCircuit)
}

/// Not itself a relayed address: a relay must be reached directly.
fn is_direct(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/11.0.0.1/tcp/{port}").parse().unwrap()
    }

    fn reserved(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Reserve(p, addr) => {
                    assert!(addr.to_string().ends_with(&format!("/p2p/{p}/p2p-circuit")));
                    Some(*p)
                }
                Action::Release(_) | Action::Dial(..) => None,
            })
            .collect()
    }

    #[test]
    fn reserves_only_while_private_and_up_to_the_maximum() {
        let mut r = AutoRelay::default();
        let relays: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        // Public or unknown: candidates are remembered, nothing reserved.
        for (i, p) in relays.iter().enumerate() {
            assert!(r.identified(*p, true, &[addr(4000 + i as u16)]).is_empty());
        }
        // A peer without hop, or only reachable through a circuit, is not one.
        let plain = PeerId::random();
        r.identified(plain, false, &[addr(5000)]);
        let relayed = PeerId::random();
        let via: Multiaddr = format!("{}/p2p/{}/p2p-circuit", addr(6000), relays[0])
            .parse()
            .unwrap();
        r.identified(relayed, true, &[via]);

        let asked = reserved(&r.nat_status(true));
        assert_eq!(asked.len(), MAX_RESERVATIONS);
        assert!(asked.iter().all(|p| relays.contains(p)));
        for (n, p) in asked.iter().enumerate() {
            r.listening(*p, ListenerId::next());
            assert_eq!(r.relays(), n + 1);
        }
        // Full: a new relay waits.
        assert!(
            r.identified(PeerId::random(), true, &[addr(7000)])
                .is_empty()
        );

        // Public again: every reservation is released.
        let released = r.nat_status(false);
        assert_eq!(released.len(), MAX_RESERVATIONS);
        assert!(released.iter().all(|a| matches!(a, Action::Release(_))));
        assert_eq!(r.relays(), 0);
    }

    #[test]
    fn a_peer_reached_only_through_a_relay_is_dialled_directly() {
        let mut r = AutoRelay::default();
        let peer = PeerId::random();
        let relay = PeerId::random();
        let via: Multiaddr = format!("{}/p2p/{relay}/p2p-circuit", addr(4000))
            .parse()
            .unwrap();
        assert!(!r.connected(peer, true, true));
        let actions = r.identified(peer, false, &[via.clone(), addr(4001)]);
        assert_eq!(actions, [Action::Dial(peer, vec![addr(4001)])]);
        // The direct connection is noticed once; then nothing more to dial.
        assert!(r.connected(peer, false, false));
        assert!(!r.connected(peer, false, false));
        assert!(r.identified(peer, false, &[addr(4001)]).is_empty());
        // What it claims is dialled up to a bound.
        let other = PeerId::random();
        r.connected(other, true, true);
        let many: Vec<Multiaddr> = (0..20).map(|i| addr(5000 + i)).collect();
        match &r.identified(other, false, &many)[..] {
            [Action::Dial(p, at)] => assert_eq!((*p, at.len()), (other, MAX_DIRECT_DIALS)),
            actions => panic!("{actions:?}"),
        }
        // A relayed connection beside a direct one changes nothing.
        assert!(!r.connected(peer, true, false));
        assert!(r.identified(peer, false, &[addr(4001)]).is_empty());
    }

    #[test]
    fn a_closed_reservation_moves_to_another_relay() {
        let mut r = AutoRelay::default();
        r.nat_status(true);
        let a = PeerId::random();
        // Dialled at one address, listening at others: the dialled one.
        r.dialed(a, addr(4001));
        let actions = r.identified(a, true, &[addr(9999)]);
        assert!(
            matches!(&actions[..], [Action::Reserve(_, at)] if at.to_string().contains("/tcp/4001/"))
        );
        let asked = reserved(&actions);
        assert_eq!(asked, [a]);
        let id = ListenerId::next();
        r.listening(a, id);
        let b = PeerId::random();
        let c = PeerId::random();
        r.identified(b, true, &[addr(4002)]);
        r.listening(b, ListenerId::next());
        r.identified(c, true, &[addr(4003)]);
        // `a` refused or went away: `c` is asked, `a` is not asked again.
        assert_eq!(reserved(&r.listener_closed(id)), [c]);
        r.disconnected(&c);
        assert!(r.listener_closed(ListenerId::next()).is_empty());
    }
}
