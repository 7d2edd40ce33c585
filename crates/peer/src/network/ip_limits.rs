//! Inbound connections per remote IP address, as go-libp2p's resource
//! manager limits them (what `cluster.resource_manager.enabled` turns on in
//! Go): an address holding [`MAX_INBOUND_PER_IP`] inbound connections,
//! pending or established, has its next one refused before any handshake.
//! Peer IDs cost nothing to make; addresses do, so this is what stops one
//! host from taking every connection slot.
//!
//! An address is counted as [`ip_key`] says: IPv4 as is, IPv6 by its /56
//! (what one subscriber is usually given), loopback not at all (as Go:
//! several peers on one host is how clusters are tested and sometimes run,
//! and a local user has easier ways to hurt the peer), relayed and non-IP
//! connections not at all (the relay limits its own circuits).
//!
//! The behaviour also keeps, for the stream protocols, the address each
//! connected peer is counted under ([`PeerIps`]): RPC and bulk sync cap
//! their answers per address too (`slots.rs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};

/// Inbound connections one address may hold at once (go-libp2p's
/// resource manager default, per IPv4 address and IPv6 /56).
pub(crate) const MAX_INBOUND_PER_IP: usize = 8;

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IpLimitError {
    /// The address already holds its share of inbound connections.
    #[error("{ip} already holds {limit} inbound connections")]
    TooMany { ip: IpAddr, limit: usize },
}

/// The address a connection is counted under (see the module comment);
/// `None`: not counted. `count_loopback` is for tests on one host.
pub(crate) fn ip_key(addr: &Multiaddr, count_loopback: bool) -> Option<IpAddr> {
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    let ip = addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })?;
    let ip = ip.to_canonical();
    if ip.is_loopback() && !count_loopback {
        return None;
    }
    Some(match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 72) - 1)).into()),
    })
}

/// The address each connected peer is counted under: that of its oldest
/// open connection with one. Shared with the stream protocols, which learn
/// only the peer a stream came from. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerIps(Arc<Mutex<HashMap<PeerId, Vec<Counted>>>>);

/// A connection and the address it is counted under.
type Counted = (ConnectionId, IpAddr);

impl PeerIps {
    /// `peer`'s address, or `None` (not connected, or not counted).
    pub(crate) fn get(&self, peer: &PeerId) -> Option<IpAddr> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(peer).and_then(|c| c.first()).map(|(_, ip)| *ip)
    }

    fn add(&self, peer: PeerId, id: ConnectionId, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(peer).or_default().push((id, ip));
    }

    fn remove(&self, peer: &PeerId, id: ConnectionId) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = map.get_mut(peer) {
            conns.retain(|(c, _)| *c != id);
            if conns.is_empty() {
                map.remove(peer);
            }
        }
    }
}

/// See the module comment.
pub(crate) struct Behaviour {
    /// `None`: no limit (`resource_manager.enabled = false`).
    limit: Option<usize>,
    count_loopback: bool,
    /// Inbound connections counted, pending or established, by id...
    inbound: HashMap<ConnectionId, IpAddr>,
    /// ...and by address.
    per_ip: HashMap<IpAddr, usize>,
    peers: PeerIps,
}

impl Behaviour {
    pub(crate) fn new(limit: Option<usize>, count_loopback: bool, peers: PeerIps) -> Self {
        Self {
            limit,
            count_loopback,
            inbound: HashMap::new(),
            per_ip: HashMap::new(),
            peers,
        }
    }

    fn forget(&mut self, id: ConnectionId) {
        if let Some(ip) = self.inbound.remove(&id)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_key(remote, self.count_loopback) else {
            return Ok(());
        };
        let n = self.per_ip.entry(ip).or_default();
        if let Some(limit) = self.limit
            && *n >= limit
        {
            return Err(ConnectionDenied::new(IpLimitError::TooMany { ip, limit }));
        }
        *n += 1;
        self.inbound.insert(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                if let Some(ip) = ip_key(endpoint.get_remote_address(), self.count_loopback) {
                    self.peers.add(peer_id, connection_id, ip);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                self.forget(connection_id);
                self.peers.remove(&peer_id, connection_id);
            }
            // Refused by another behaviour, or the handshake failed.
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.forget(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use libp2p::swarm::{ListenError, SwarmEvent};
    use libp2p::{Swarm, SwarmBuilder, noise, ping, tcp, yamux};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_counted_by_host() {
        let v4 = ip_key(&addr("/ip4/203.0.113.7/tcp/4001"), false);
        assert_eq!(v4, Some("203.0.113.7".parse().unwrap()));
        // One /56 is one host.
        let a = ip_key(&addr("/ip6/2001:db8:1:2300::1/tcp/1"), false);
        let b = ip_key(&addr("/ip6/2001:db8:1:23ff:ffff::9/udp/1/quic-v1"), false);
        assert_eq!(a, b);
        assert_ne!(a, ip_key(&addr("/ip6/2001:db8:1:2400::1/tcp/1"), false));
        // An IPv4 client on a dual-stack socket is its IPv4 address.
        assert_eq!(ip_key(&addr("/ip6/::ffff:203.0.113.7/tcp/1"), false), v4);
        // Not counted: loopback (unless asked), relayed, no IP.
        assert_eq!(ip_key(&addr("/ip4/127.0.0.1/tcp/1"), false), None);
        assert_eq!(ip_key(&addr("/ip6/::1/tcp/1"), false), None);
        assert!(ip_key(&addr("/ip4/127.0.0.1/tcp/1"), true).is_some());
        let relayed = "/ip4/203.0.113.7/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";
        assert_eq!(ip_key(&addr(relayed), false), None);
        assert_eq!(ip_key(&addr("/dns4/example.com/tcp/1"), false), None);
    }

    #[test]
    fn the_count_follows_pending_established_and_failed_connections() {
        let mut b = Behaviour::new(Some(2), false, PeerIps::default());
        let (local, remote) = (
            addr("/ip4/0.0.0.0/tcp/9096"),
            addr("/ip4/198.51.100.1/tcp/5"),
        );
        let (c1, c2, c3) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        b.handle_pending_inbound_connection(c1, &local, &remote)
            .unwrap();
        b.handle_pending_inbound_connection(c2, &local, &remote)
            .unwrap();
        let denied = b
            .handle_pending_inbound_connection(c3, &local, &remote)
            .unwrap_err();
        assert!(denied.downcast_ref::<IpLimitError>().is_some());
        // Another address is not affected; loopback is never counted.
        let other = addr("/ip4/198.51.100.2/tcp/5");
        b.handle_pending_inbound_connection(c3, &local, &other)
            .unwrap();
        for i in 10..30 {
            let lo = addr("/ip4/127.0.0.1/tcp/5");
            b.handle_pending_inbound_connection(ConnectionId::new_unchecked(i), &local, &lo)
                .unwrap();
        }
        // A failed handshake gives its place back.
        let err = ListenError::Aborted;
        b.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
            local_addr: &local,
            send_back_addr: &remote,
            error: &err,
            connection_id: c1,
            peer_id: None,
        }));
        b.handle_pending_inbound_connection(c1, &local, &remote)
            .unwrap();
        assert_eq!(b.per_ip.len(), 2);
        // Without a limit, nothing is refused.
        let mut open = Behaviour::new(None, false, PeerIps::default());
        for i in 0..100 {
            open.handle_pending_inbound_connection(ConnectionId::new_unchecked(i), &local, &remote)
                .unwrap();
        }
    }

    #[derive(libp2p::swarm::NetworkBehaviour)]
    struct Node {
        limits: Behaviour,
        ping: ping::Behaviour,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Seen {
        Connected,
        Closed,
        Refused,
        DialFailed,
        Pinged,
    }

    fn node(limit: usize) -> Swarm<Node> {
        SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| Node {
                // Everything here is on 127.0.0.1, so loopback is counted.
                limits: Behaviour::new(Some(limit), true, PeerIps::default()),
                ping: ping::Behaviour::new(
                    ping::Config::new().with_interval(Duration::from_millis(100)),
                ),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    }

    /// Runs `swarm` until `stop`, reporting what happens as `(who, what)`.
    fn run(
        who: usize,
        mut swarm: Swarm<Node>,
        events: mpsc::Sender<(usize, Seen)>,
        stop: CancellationToken,
    ) {
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    e = swarm.select_next_some() => e,
                };
                let seen = match event {
                    SwarmEvent::ConnectionEstablished { .. } => Seen::Connected,
                    SwarmEvent::ConnectionClosed { .. } => Seen::Closed,
                    SwarmEvent::IncomingConnectionError {
                        error: ListenError::Denied { cause },
                        ..
                    } if cause.downcast_ref::<IpLimitError>().is_some() => Seen::Refused,
                    SwarmEvent::OutgoingConnectionError { .. } => Seen::DialFailed,
                    SwarmEvent::Behaviour(NodeEvent::Ping(ping::Event {
                        result: Ok(_), ..
                    })) => Seen::Pinged,
                    _ => continue,
                };
                if events.send((who, seen)).await.is_err() {
                    return;
                }
            }
        });
    }

    const LISTENER: usize = usize::MAX;

    /// What the swarms reported, and what was reported but not yet
    /// expected (two swarms report in either order: the refused dialer
    /// may see its dial fail before the listener reports the refusal).
    struct Events {
        rx: mpsc::Receiver<(usize, Seen)>,
        early: Vec<(usize, Seen)>,
    }

    /// Waits for `who` to report `what` (or takes it from what came
    /// early); a dialer's connection closing on its own is a failure.
    async fn expect(events: &mut Events, who: usize, what: Seen) {
        if let Some(i) = events.early.iter().position(|e| *e == (who, what)) {
            events.early.remove(i);
            return;
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some((w, seen)) = events.rx.recv().await {
                assert!(
                    w == LISTENER || seen != Seen::Closed,
                    "{w}'s connection closed while waiting for {who}: {what:?}"
                );
                if w == who && seen == what {
                    return;
                }
                events.early.push((w, seen));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{who} never reported {what:?}"));
    }

    /// Over real TCP on 127.0.0.1: with a limit of 3, three peers (three
    /// IDs, one address) connect, the fourth is refused before the
    /// handshake, the three keep pinging, and once one leaves a new one
    /// gets its place.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_connection_past_the_limit_is_refused_and_the_others_keep_working() {
        const LIMIT: usize = 3;
        let (tx, rx) = mpsc::channel(256);
        let mut events = Events { rx, early: vec![] };
        let mut listener = node(LIMIT);
        listener.listen_on(addr("/ip4/127.0.0.1/tcp/0")).unwrap();
        let at = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = listener.select_next_some().await {
                break address;
            }
        };
        let stop_all = CancellationToken::new();
        run(LISTENER, listener, tx.clone(), stop_all.child_token());
        let dial = |who: usize| {
            let mut dialer = node(LIMIT);
            dialer.dial(at.clone()).unwrap();
            let stop = stop_all.child_token();
            run(who, dialer, tx.clone(), stop.clone());
            stop
        };
        let mut admitted = vec![];
        for who in 0..LIMIT {
            admitted.push(dial(who));
            expect(&mut events, who, Seen::Connected).await;
            expect(&mut events, LISTENER, Seen::Connected).await;
        }
        // One more from the same address: refused before the handshake.
        let _refused = dial(LIMIT);
        expect(&mut events, LISTENER, Seen::Refused).await;
        expect(&mut events, LIMIT, Seen::DialFailed).await;
        // The three admitted keep working after the refusal: pings from
        // before it don't count.
        events.early.retain(|e| e.1 != Seen::Pinged);
        for who in 0..LIMIT {
            expect(&mut events, who, Seen::Pinged).await;
        }
        // One leaves; its place is free for the next.
        admitted[0].cancel();
        expect(&mut events, LISTENER, Seen::Closed).await;
        let _next = dial(LIMIT + 1);
        expect(&mut events, LIMIT + 1, Seen::Connected).await;
        stop_all.cancel();
    }
}
