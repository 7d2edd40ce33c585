//! Gossipsub behind a guard that makes a sender of oversized messages pay.
//!
//! Gossipsub reads at most `max_transmit_size` of a message; past it, the
//! message is not a rejected message (scored, P4) but an error on its
//! inbound stream, which gossipsub drops without a word to its scoring. So
//! such a sender was never graylisted. What it can't avoid is a new stream
//! for its next message: a stock gossipsub writer stalls on the dropped one
//! (the flooder reconnects), a custom one reopens on the same connection
//! (gossipsub disables a connection's gossip at its 5th). An honest peer
//! opens one inbound gossip stream per connection, and its connections last.
//!
//! So the guard counts each peer's inbound gossip streams, the count
//! decaying like P4's ([`CHURN_DECAY`] a second). Past [`CHURN_FREE`]
//! (what 4 connections, libp2p's cap per peer, open at once) the excess
//! squared, times [`CHURN_WEIGHT`], is the peer's application score
//! (gossipsub's P5): a stream a second graylists it ~16 s in, as P4 does a
//! rejected message every 2 s. While its churn alone is past the graylist
//! threshold its new gossip streams are refused at protocol negotiation,
//! before a byte of a message is read; once the count has decayed under it
//! again, one more stream is let through.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};
use std::time::Duration;

use either::Either;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    FromSwarm, NetworkBehaviour, NotifyHandler, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, gossipsub};

/// Inbound gossip streams a peer may open at once, or in quick
/// succession, at no cost.
pub(crate) const CHURN_FREE: f64 = 4.0;
/// Weight of the excess over [`CHURN_FREE`], squared (as P4's weight).
pub(crate) const CHURN_WEIGHT: f64 = -2.0;
/// Kept by a peer's stream count each second (as P4's decay).
pub(crate) const CHURN_DECAY: f64 = 0.94;
/// Peers whose count is kept: past it, the smallest count is forgotten
/// (a count decays under [`FORGET_UNDER`] within a minute or so anyway).
const MAX_TRACKED: usize = 16_384;
/// A count under this is forgotten.
const FORGET_UNDER: f64 = 0.05;
/// How often counts decay.
const TICK: Duration = Duration::from_secs(1);

/// The application score (P5) of a peer with `count` inbound gossip
/// streams: 0 up to [`CHURN_FREE`], then `CHURN_WEIGHT * excess²`.
pub(crate) fn churn_penalty(count: f64) -> f64 {
    let excess = (count - CHURN_FREE).max(0.0);
    CHURN_WEIGHT * excess * excess
}

/// Gossipsub and its guard; derefs to gossipsub for everything else.
pub(crate) struct Behaviour {
    inner: gossipsub::Behaviour,
    /// Gossipsub's graylist threshold: a churn penalty under it refuses
    /// the peer's new gossip streams.
    graylist: f64,
    /// Each peer's inbound gossip streams, decayed.
    churn: HashMap<PeerId, f64>,
    /// Peers whose new gossip streams are refused.
    refused: HashSet<PeerId>,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Refusals to tell connection handlers.
    notices: VecDeque<(PeerId, ConnectionId, bool)>,
    tick: tokio::time::Interval,
}

impl Deref for Behaviour {
    type Target = gossipsub::Behaviour;
    fn deref(&self) -> &gossipsub::Behaviour {
        &self.inner
    }
}

impl DerefMut for Behaviour {
    fn deref_mut(&mut self) -> &mut gossipsub::Behaviour {
        &mut self.inner
    }
}

type Inner = <gossipsub::Behaviour as NetworkBehaviour>::ConnectionHandler;

impl Behaviour {
    /// Guards `inner`, whose scoring graylists under `graylist`.
    pub(crate) fn new(inner: gossipsub::Behaviour, graylist: f64) -> Self {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            inner,
            graylist,
            churn: HashMap::new(),
            refused: HashSet::new(),
            connections: HashMap::new(),
            notices: VecDeque::new(),
            tick,
        }
    }

    fn handler(&self, peer: PeerId, inner: Inner) -> Handler {
        Handler {
            inner,
            refuse: self.refused.contains(&peer),
            opened: 0,
        }
    }

    fn stream_opened(&mut self, peer: PeerId) {
        if !self.churn.contains_key(&peer) && self.churn.len() >= MAX_TRACKED {
            let smallest = self
                .churn
                .iter()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(p, _)| *p);
            if let Some(p) = smallest {
                self.churn.remove(&p);
                // Its score and refusal go with its count.
                self.judge(p);
            }
        }
        *self.churn.entry(peer).or_default() += 1.0;
        self.judge(peer);
    }

    /// Sets `peer`'s application score from its count, and refuses or
    /// allows its new gossip streams.
    fn judge(&mut self, peer: PeerId) {
        let penalty = churn_penalty(self.churn.get(&peer).copied().unwrap_or(0.0));
        self.inner.set_application_score(&peer, penalty);
        let refuse = penalty < self.graylist;
        let changed = if refuse {
            self.refused.insert(peer)
        } else {
            self.refused.remove(&peer)
        };
        if changed {
            if refuse {
                tracing::info!(%peer, "gossip streams refused: {penalty:.0} for reopening them");
            }
            for c in self.connections.get(&peer).into_iter().flatten() {
                self.notices.push_back((peer, *c, refuse));
            }
        }
    }

    fn decay(&mut self) {
        let mut judged = Vec::with_capacity(self.churn.len());
        self.churn.retain(|peer, count| {
            *count *= CHURN_DECAY;
            judged.push(*peer);
            *count >= FORGET_UNDER
        });
        for peer in judged {
            self.judge(peer);
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = gossipsub::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self
            .inner
            .handle_established_inbound_connection(id, peer, local, remote)?;
        Ok(self.handler(peer, inner))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(id, peer, addresses, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self
            .inner
            .handle_established_outbound_connection(id, peer, addr, role, port_use)?;
        Ok(self.handler(peer, inner))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => self
                .connections
                .entry(peer_id)
                .or_default()
                .push(connection_id),
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if let Some(c) = self.connections.get_mut(&peer_id) {
                    c.retain(|id| *id != connection_id);
                    if c.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(e) => self.inner.on_connection_handler_event(peer, connection, e),
            Either::Right(StreamOpened) => self.stream_opened(peer),
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if self.tick.poll_tick(cx).is_ready() {
            self.decay();
        }
        if let Some((peer_id, c, refuse)) = self.notices.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(c),
                event: Either::Right(refuse),
            });
        }
        self.inner.poll(cx).map(|e| e.map_in(Either::Left))
    }
}

/// Told to the behaviour: the connection accepted an inbound gossip stream.
#[derive(Debug)]
pub(crate) struct StreamOpened;

/// Gossipsub's connection handler, which reports each inbound stream it
/// accepts and refuses new ones while told to.
pub(crate) struct Handler {
    inner: Inner,
    refuse: bool,
    /// Streams accepted and not yet reported.
    opened: u32,
}

impl ConnectionHandler for Handler {
    /// Gossipsub's, or whether to refuse new inbound streams.
    type FromBehaviour = Either<<Inner as ConnectionHandler>::FromBehaviour, bool>;
    type ToBehaviour = Either<<Inner as ConnectionHandler>::ToBehaviour, StreamOpened>;
    type InboundProtocol = <Inner as ConnectionHandler>::InboundProtocol;
    type OutboundProtocol = <Inner as ConnectionHandler>::OutboundProtocol;
    type InboundOpenInfo = <Inner as ConnectionHandler>::InboundOpenInfo;
    type OutboundOpenInfo = <Inner as ConnectionHandler>::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        if self.refuse {
            SubstreamProtocol::new(Either::Right(DeniedUpgrade), ())
        } else {
            self.inner.listen_protocol()
        }
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        if self.opened > 0 {
            self.opened -= 1;
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(Either::Right(
                StreamOpened,
            )));
        }
        self.inner.poll(cx).map(|e| e.map_custom(Either::Left))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx).map(|e| e.map(Either::Left))
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {
            Either::Left(e) => self.inner.on_behaviour_event(e),
            Either::Right(refuse) => self.refuse = refuse,
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            '_,
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        if matches!(event, ConnectionEvent::FullyNegotiatedInbound(_)) {
            self.opened += 1;
        }
        self.inner.on_connection_event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::score_sim;

    /// A peer opening a gossip stream every `every` seconds, over `secs`:
    /// the second it is refused, and its lowest churn penalty.
    fn opening_every(every: f64, secs: u32) -> (Option<f64>, f64) {
        score_sim::every(every, secs, CHURN_DECAY, churn_penalty)
    }

    #[test]
    fn a_stream_a_second_is_refused_and_reconnects_every_few_seconds_cost_nothing() {
        let (refused, _) = opening_every(1.0, 120);
        let at = refused.expect("a stream a second is refused");
        assert!((10.0..20.0).contains(&at), "refused at {at} s");
        // A peer restarted every 5 s, or 4 connections at once.
        assert_eq!(opening_every(5.0, 600), (None, 0.0));
        assert_eq!(churn_penalty(CHURN_FREE), 0.0);
        // Every 3 s: out of the mesh for a while, never graylisted.
        let (refused, lowest) = opening_every(3.0, 600);
        assert_eq!(refused, None);
        assert!(lowest > -10.0, "lowest {lowest}");
    }
}
