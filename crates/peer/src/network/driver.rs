//! The task that owns the swarm: runs commands, validates gossip (heads only
//! from trusted writers, metrics only about their author), feeds peer
//! discovery (identify, mDNS) into Kademlia, finds the cluster by its name
//! on the DHT (`rendezvous.rs`), redials the cluster peers it lost (the
//! peer book, saved to the peerstore file) and trims the connections we
//! don't need (`conn_manager.rs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crdt_dag::WriterId;
use futures::StreamExt;
use libp2p::Multiaddr;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{PeerId, Swarm, autonat, dcutr, identify, kad, mdns, relay};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::behaviour::{Behaviour, BehaviourEvent, PROTOCOL_VERSION, build_swarm};
use super::{
    CMD_CHANNEL_CAPACITY, EVENT_CHANNEL_CAPACITY, GossipStats, NetEvent, Network, NetworkCmd,
    NetworkConfig, Topic, heads_topic, metrics_topic,
};
use crate::error::PeerError;
use crate::network::autorelay::{Action, AutoRelay};
use crate::network::bandwidth::{Bandwidth, RATE_TICK, Streams};
use crate::network::conn_manager::{ConnManager, TRIM_INTERVAL};
use crate::network::find_peer::Lookups;
use crate::network::ip_limits::PeerIps;
use crate::network::messages::{HeadsMessage, Metric, now_nanos};
use crate::network::peer_book::{self, PeerBook};
use crate::network::rendezvous::Rendezvous;
use crate::network::rpc;
use crate::sync::dagsync;

/// How often Kademlia refreshes its routing table.
const KAD_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(60);
/// How often the rendezvous key is provided when due, and looked up while
/// no cluster peer is connected.
const RENDEZVOUS_TICK: Duration = Duration::from_secs(3);
/// How often the peer book is asked for peers due a redial.
const REDIAL_TICK: Duration = Duration::from_millis(250);
/// Changes of the peer book within this wait are written to the peerstore
/// file together.
const PEERSTORE_WRITE_DELAY: Duration = Duration::from_millis(500);

struct Driver {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    heads: IdentTopic,
    metrics: IdentTopic,
    events: mpsc::Sender<NetEvent>,
    stats: GossipStats,
    /// Byte counters; their rates move on every [`RATE_TICK`].
    bandwidth: Arc<Bandwidth>,
    /// Cluster peers met, redialed when lost.
    book: PeerBook,
    /// The book's lines, for the peerstore file's writer.
    peerstore: Option<watch::Sender<String>>,
    /// The cluster's name on the DHT.
    rendezvous: Rendezvous,
    /// Open connections, trimmed above `high_water`.
    conns: ConnManager,
    /// Trusted writers (an explicit list): never trimmed.
    trusted: HashSet<PeerId>,
    /// Relay reservations while AutoNAT says we are private.
    autorelay: AutoRelay,
    /// DHT lookups of peers known only by ID.
    lookups: Lookups,
}

/// Builds the swarm, starts listening and spawns its task. Must run inside a
/// tokio runtime.
pub(crate) fn spawn(
    config: NetworkConfig,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(Network, mpsc::Receiver<NetEvent>), PeerError> {
    let bandwidth = Arc::new(Bandwidth::new(&[rpc::PROTOCOL, dagsync::PROTOCOL]));
    let peer_ips = PeerIps::default();
    let mut swarm = build_swarm(&config, &bandwidth, &peer_ips)?;
    for addr in &config.listen {
        let is_quic = addr
            .iter()
            .any(|p| matches!(p, libp2p::multiaddr::Protocol::QuicV1));
        if is_quic && config.secret.is_some() {
            warn!(%addr, "not listening on QUIC: a private network (cluster.secret) needs TCP");
            continue;
        }
        swarm
            .listen_on(addr.clone())
            .map_err(|e| PeerError::Network(format!("listen on {addr}: {e}")))?;
    }
    for addr in &config.announce {
        swarm.add_external_address(addr.clone());
    }
    let heads = IdentTopic::new(heads_topic(&config.cluster_name));
    let metrics = IdentTopic::new(metrics_topic(&config.cluster_name));
    for t in [&heads, &metrics] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| PeerError::Network(format!("subscribe: {e}")))?;
    }
    let mut trusted = HashSet::new();
    if let crdt_dag::TrustPolicy::Only(writers) = &config.trust {
        // Trusted writers always get our announcements and we theirs.
        for w in writers {
            if let Ok(p) = PeerId::from_bytes(&w.to_peer_id_bytes())
                && p != *swarm.local_peer_id()
            {
                swarm.behaviour_mut().gossipsub.add_explicit_peer(&p);
                trusted.insert(p);
            }
        }
    }
    let mut book = PeerBook::new(*swarm.local_peer_id());
    let peerstore = match &config.peerstore {
        Some(path) => {
            match peer_book::read_peerstore(path) {
                Ok(text) => {
                    for line in book.load(&text, std::time::Instant::now()) {
                        warn!(path = %path.display(), line = %line, "ignoring a peerstore line: not <multiaddr>/p2p/<peer id>");
                    }
                }
                Err(e) => warn!(path = %path.display(), error = %e, "could not read the peerstore"),
            }
            let (tx, rx) = watch::channel(String::new());
            tasks.spawn(write_peerstore(path.clone(), rx, cancel.child_token()));
            Some(tx)
        }
        None => None,
    };
    let (cmd_tx, cmd_rx) = mpsc::channel(CMD_CHANNEL_CAPACITY);
    let streams = Streams::new(
        swarm.behaviour().streams.new_control(),
        bandwidth.clone(),
        peer_ips,
        cmd_tx.clone(),
    );
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let network = Network {
        peer_id: *swarm.local_peer_id(),
        cmd: cmd_tx,
        streams,
        bandwidth: bandwidth.clone(),
    };
    let rendezvous = Rendezvous::new(&config.cluster_name, std::time::Instant::now());
    let conns = ConnManager::new(config.connection_manager);
    let driver = Driver {
        swarm,
        conns,
        trusted,
        config,
        heads,
        metrics,
        events: ev_tx,
        stats: GossipStats::default(),
        bandwidth,
        book,
        peerstore,
        rendezvous,
        autorelay: AutoRelay::default(),
        lookups: Lookups::default(),
    };
    tasks.spawn(driver.run(cmd_rx, cancel));
    Ok((network, ev_rx))
}

impl Driver {
    async fn run(mut self, mut cmds: mpsc::Receiver<NetworkCmd>, cancel: CancellationToken) {
        let mut kad_tick = tokio::time::interval(KAD_BOOTSTRAP_INTERVAL);
        let mut rate_tick = tokio::time::interval(RATE_TICK);
        rate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut redial_tick = tokio::time::interval(REDIAL_TICK);
        redial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rendezvous_tick = tokio::time::interval(RENDEZVOUS_TICK);
        rendezvous_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trim_tick = tokio::time::interval(TRIM_INTERVAL);
        trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(cmd) = cmds.recv() => self.on_cmd(cmd),
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = rate_tick.tick() => self.bandwidth.tick(),
                _ = redial_tick.tick() => self.redial(),
                _ = rendezvous_tick.tick() => self.rendezvous(),
                _ = trim_tick.tick() => self.trim_connections(),
                _ = kad_tick.tick() => {
                    if self.swarm.connected_peers().next().is_some() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                }
            }
        }
        debug!("network task stopped");
    }

    /// Starts (or joins) a DHT lookup of `peer`'s addresses.
    fn find_peer(&mut self, peer: PeerId, respond_to: oneshot::Sender<bool>) {
        if self.swarm.is_connected(&peer) {
            let _ = respond_to.send(true);
            return;
        }
        let id = match self.lookups.running_for(&peer) {
            Some(id) => id,
            None if self.lookups.has_room() => {
                debug!(%peer, "looking up a peer's addresses on the DHT");
                self.swarm.behaviour_mut().kad.get_closest_peers(peer)
            }
            None => {
                let _ = respond_to.send(false);
                return;
            }
        };
        self.lookups.wait(id, peer, respond_to);
    }

    /// A lookup is over: its peer's addresses go to Kademlia (which gives
    /// them to later dials) and are dialed now.
    fn found_peer(&mut self, id: kad::QueryId, peer: PeerId, addrs: Vec<Multiaddr>, last: bool) {
        let found = !addrs.is_empty() || self.swarm.is_connected(&peer);
        if !addrs.is_empty() {
            let kad = &mut self.swarm.behaviour_mut().kad;
            for a in &addrs {
                kad.add_address(&peer, a.clone());
            }
            if !last && let Some(mut q) = kad.query_mut(&id) {
                q.finish();
            }
            if let Err(e) = self.dial_unless_connected(peer, addrs) {
                debug!(%peer, error = %e, "dial of a looked-up peer not started");
            }
        }
        debug!(%peer, found, "peer lookup over");
        self.lookups.answer(id, found);
    }

    /// Dials `peer` at `addrs` unless it is connected or being dialed.
    fn dial_unless_connected(
        &mut self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<(), libp2p::swarm::DialError> {
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        self.swarm.dial(opts)
    }

    /// Dials the lost cluster peers whose wait is over.
    fn redial(&mut self) {
        let now = std::time::Instant::now();
        for (peer, addrs) in self.book.due(now) {
            debug!(%peer, "redialing a cluster peer");
            if let Err(e) = self.dial_unless_connected(peer, addrs) {
                debug!(%peer, error = %e, "redial not started");
                self.book.dial_failed(&peer, now);
            }
        }
    }

    /// Closes the connections the connection manager picks when a trim is
    /// due, sparing trusted writers and the book's cluster peers (the book
    /// would redial those at once).
    fn trim_connections(&mut self) {
        let now = std::time::Instant::now();
        if !self.conns.trim_due(now) {
            return;
        }
        let (trusted, book) = (&self.trusted, &self.book);
        let closing = self
            .conns
            .trim(now, |p| trusted.contains(p) || book.contains(p));
        info!(
            closing = closing.len(),
            high_water = self.config.connection_manager.high_water,
            "too many connections: closing those of peers we don't need"
        );
        for id in closing {
            self.swarm.close_connection(id);
        }
    }

    /// Provides the cluster's rendezvous key when due and, while no peer
    /// of the cluster (a subscriber of its heads topic) is connected, looks
    /// its providers up.
    fn rendezvous(&mut self) {
        let dht_connected = self.swarm.connected_peers().next().is_some();
        let heads = self.heads.hash();
        let cluster_connected = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&heads));
        let kad = &mut self.swarm.behaviour_mut().kad;
        self.rendezvous.tick(
            kad,
            dht_connected,
            cluster_connected,
            std::time::Instant::now(),
        );
    }

    /// Hands the book's lines to the peerstore writer if they changed.
    fn save_book(&mut self) {
        if let (Some(tx), Some(lines)) = (&self.peerstore, self.book.take_changes()) {
            let _ = tx.send(lines);
        }
    }

    fn on_cmd(&mut self, cmd: NetworkCmd) {
        match cmd {
            NetworkCmd::Publish {
                topic,
                data,
                respond_to,
            } => {
                let t = match topic {
                    Topic::Heads => self.heads.clone(),
                    Topic::Metrics => self.metrics.clone(),
                };
                let result = match self.swarm.behaviour_mut().gossipsub.publish(t, data) {
                    Ok(_)
                    | Err(PublishError::Duplicate | PublishError::NoPeersSubscribedToTopic) => {
                        Ok(())
                    }
                    Err(PublishError::AllQueuesFull(_)) => {
                        Err(PeerError::Network("gossip queues are full".into()))
                    }
                    Err(e) => Err(PeerError::Network(format!("publish: {e}"))),
                };
                let _ = respond_to.send(result);
            }
            NetworkCmd::Dial { addr, respond_to } => {
                if let Some(peer) = crate::peer::peer_of(&addr) {
                    self.book.dialing(peer, vec![addr.clone()]);
                }
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| PeerError::Network(format!("dial {addr}: {e}")));
                let _ = respond_to.send(result);
            }
            NetworkCmd::FindPeer { peer, respond_to } => self.find_peer(peer, respond_to),
            NetworkCmd::ListenAddrs { respond_to } => {
                let _ = respond_to.send(self.swarm.listeners().cloned().collect());
            }
            NetworkCmd::Stats { respond_to } => {
                let _ = respond_to.send(self.stats.clone());
            }
            NetworkCmd::Score { peer, respond_to } => {
                let _ = respond_to.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            NetworkCmd::ConnectedPeers { respond_to } => {
                let _ = respond_to.send(self.swarm.connected_peers().copied().collect());
            }
            NetworkCmd::HeadsSubscribers { respond_to } => {
                let heads = self.heads.hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(p, topics)| topics.contains(&&heads) && self.swarm.is_connected(p))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = respond_to.send(peers);
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let acceptance = self.validate(message, propagation_source);
                if acceptance == MessageAcceptance::Reject {
                    self.stats.rejected += 1;
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) if topic == self.heads.hash() => {
                let trusted = WriterId::from_peer_id_bytes(&peer_id.to_bytes())
                    .is_ok_and(|w| self.config.trust.allows(&w));
                let _ = self.events.try_send(NetEvent::Joined {
                    peer: peer_id,
                    trusted,
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version == PROTOCOL_VERSION => {
                self.relay_candidate(peer_id, &info);
                self.book.met(peer_id, info.listen_addrs.clone());
                self.save_book();
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Another network's peer (a DHT node) may relay for us too.
                self.relay_candidate(peer_id, &info);
                self.book.not_ours(&peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a));
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                ..
            })) => {
                if let Some((peer, addrs)) = self.lookups.on_query(id, &result, step.last) {
                    self.found_peer(id, peer, addrs, step.last);
                }
                let me = *self.swarm.local_peer_id();
                let found = self.rendezvous.on_query(
                    id,
                    &result,
                    step.last,
                    &me,
                    std::time::Instant::now(),
                );
                if !found.is_empty() {
                    debug!(
                        providers = found.len(),
                        "peers of the cluster found on the DHT"
                    );
                }
                for peer in found {
                    if !self.swarm.is_connected(&peer) {
                        debug!(%peer, "dialing a peer of the cluster found on the DHT");
                        // Kademlia knows its addresses while the query runs.
                        let opts = DialOpts::peer_id(peer)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        if let Err(e) = self.swarm.dial(opts) {
                            debug!(%peer, error = %e, "dial not started");
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(
                relay::client::Event::ReservationReqAccepted {
                    relay_peer_id,
                    renewal: false,
                    ..
                },
            )) => info!(relay = %relay_peer_id, "reachable through a relay (reservation accepted)"),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::StatusChanged {
                new,
                ..
            })) => {
                info!(status = ?new, "NAT status");
                let private = matches!(new, autonat::NatStatus::Private);
                let actions = self.autorelay.nat_status(private);
                self.relay_actions(actions);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            })) => match result {
                Ok(_) => info!(peer = %remote_peer_id, "direct connection by hole punching"),
                Err(e) => debug!(peer = %remote_peer_id, error = %e, "hole punch failed"),
            },
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Err(e) = reason {
                    debug!(error = %e, "listener closed");
                }
                let actions = self.autorelay.listener_closed(listener_id);
                self.relay_actions(actions);
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                debug!(%peer_id, "connected");
                let first = num_established.get() == 1;
                if self
                    .autorelay
                    .connected(peer_id, endpoint.is_relayed(), first)
                {
                    info!(peer = %peer_id, "direct connection to a peer first reached through a relay");
                }
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = endpoint {
                    self.autorelay.dialed(peer_id, address);
                }
                self.conns
                    .opened(connection_id, peer_id, std::time::Instant::now());
                self.trim_connections();
                self.book.connected(&peer_id);
                // The first peer of the DHT: provide and look the cluster
                // up at once rather than at the next tick.
                self.rendezvous();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.conns.closed(connection_id);
                if num_established == 0 {
                    debug!(%peer_id, "disconnected");
                    self.autorelay.disconnected(&peer_id);
                    self.book.disconnected(&peer_id, std::time::Instant::now());
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, %error, "dial failed");
                if let Some(p) = peer_id
                    && !self.swarm.is_connected(&p)
                {
                    self.book.dial_failed(&p, std::time::Instant::now());
                }
            }
            _ => {}
        }
    }

    /// Notes whether an identified peer can relay for us (circuit relay v2
    /// hop), and asks for a reservation on it if we are private and short.
    fn relay_candidate(&mut self, peer: PeerId, info: &identify::Info) {
        let relays = info.protocols.contains(&relay::HOP_PROTOCOL_NAME);
        let actions = self.autorelay.identified(peer, relays, &info.listen_addrs);
        self.relay_actions(actions);
    }

    fn relay_actions(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Reserve(relay, addr) => match self.swarm.listen_on(addr.clone()) {
                    Ok(id) => {
                        self.autorelay.listening(relay, id);
                        info!(%relay, reservations = self.autorelay.relays(), "not reachable directly: asking a relay for a reservation");
                    }
                    Err(e) => debug!(%addr, error = %e, "relay listen refused"),
                },
                Action::Release(id) => {
                    info!("reachable directly: relay reservation released");
                    self.swarm.remove_listener(id);
                }
                Action::Dial(peer, addrs) => {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(addrs)
                        .condition(PeerCondition::Always)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        debug!(%peer, error = %e, "direct dial not started");
                    }
                }
            }
        }
    }

    /// Gossip validation: heads are accepted only from trusted writers, and
    /// metrics only when they describe their author and are bounded
    /// ([`Metric::received`]). Rejected messages are neither handed on nor
    /// forwarded, and count against their relay's score (`behaviour.rs`
    /// `score_params`).
    fn validate(&mut self, message: gossipsub::Message, relay: PeerId) -> MessageAcceptance {
        let Some(author) = message.source else {
            return MessageAcceptance::Reject;
        };
        if message.topic == self.heads.hash() {
            let seen = &mut self.stats.heads_seen;
            if seen.len() < super::MAX_HEADS_AUTHORS_SEEN || seen.contains_key(&author) {
                seen.entry(author).or_default().insert(relay);
            }
            let trusted = WriterId::from_peer_id_bytes(&author.to_bytes())
                .is_ok_and(|w| self.config.trust.allows(&w));
            if !trusted {
                debug!(%author, "rejecting heads from an untrusted peer");
                return MessageAcceptance::Reject;
            }
            let Ok(msg) = HeadsMessage::decode(&message.data) else {
                return MessageAcceptance::Reject;
            };
            self.stats.heads_accepted += 1;
            if self
                .events
                .try_send(NetEvent::Heads { author, msg })
                .is_err()
            {
                warn!(
                    "consensus is not keeping up with announcements; a rebroadcast will repeat this one"
                );
            }
            MessageAcceptance::Accept
        } else if message.topic == self.metrics.hash() {
            let Ok(metric) = serde_json::from_slice::<Metric>(&message.data) else {
                return MessageAcceptance::Reject;
            };
            if metric.peer != author.to_string() {
                return MessageAcceptance::Reject;
            }
            let metric = match crate::network::messages::received(metric, now_nanos()) {
                Ok(m) => m,
                Err(why) => {
                    debug!(%author, why, "rejecting a metric");
                    return MessageAcceptance::Reject;
                }
            };
            let _ = self.events.try_send(NetEvent::Metric(metric));
            MessageAcceptance::Accept
        } else {
            MessageAcceptance::Ignore
        }
    }
}

/// Writes the peer book's lines to the peerstore file as they change
/// (grouped over [`PEERSTORE_WRITE_DELAY`]), and once more at shutdown.
async fn write_peerstore(
    path: std::path::PathBuf,
    mut lines: watch::Receiver<String>,
    cancel: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            _ = cancel.cancelled() => true,
            r = lines.changed() => r.is_err(),
        };
        if !stopping {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(PEERSTORE_WRITE_DELAY) => {}
            }
        }
        if stopping && !lines.has_changed().unwrap_or(false) {
            return;
        }
        let text = lines.borrow_and_update().clone();
        let p = path.clone();
        match tokio::task::spawn_blocking(move || peer_book::write_peerstore(&p, &text)).await {
            Ok(Ok(())) => debug!(path = %path.display(), "peerstore saved"),
            Ok(Err(e)) => warn!(path = %path.display(), error = %e, "could not save the peerstore"),
            Err(e) => warn!(error = %e, "peerstore writer failed"),
        }
        if stopping || cancel.is_cancelled() {
            return;
        }
    }
}
