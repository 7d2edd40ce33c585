//! The task that owns the swarm: runs commands, validates gossip (heads only
//! from trusted writers, metrics only about their author) and feeds peer
//! discovery (identify, mDNS) into Kademlia.

use std::sync::Arc;
use std::time::Duration;

use crdt_dag::WriterId;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm, identify, mdns};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::behaviour::{Behaviour, BehaviourEvent, PROTOCOL_VERSION, build_swarm};
use super::{
    CMD_CHANNEL_CAPACITY, EVENT_CHANNEL_CAPACITY, GossipStats, NetEvent, Network, NetworkCmd,
    NetworkConfig, Topic, heads_topic, metrics_topic,
};
use crate::error::PeerError;
use crate::network::bandwidth::{Bandwidth, RATE_TICK, Streams};
use crate::network::messages::{HeadsMessage, Metric, now_nanos};
use crate::network::rpc;
use crate::sync::dagsync;

/// How often Kademlia refreshes its routing table.
const KAD_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(60);

struct Driver {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    heads: IdentTopic,
    metrics: IdentTopic,
    events: mpsc::Sender<NetEvent>,
    stats: GossipStats,
    /// Byte counters; their rates move on every [`RATE_TICK`].
    bandwidth: Arc<Bandwidth>,
}

/// Builds the swarm, starts listening and spawns its task. Must run inside a
/// tokio runtime.
pub(crate) fn spawn(
    config: NetworkConfig,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(Network, mpsc::Receiver<NetEvent>), PeerError> {
    let bandwidth = Arc::new(Bandwidth::new(&[rpc::PROTOCOL, dagsync::PROTOCOL]));
    let mut swarm = build_swarm(&config, &bandwidth)?;
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
    let heads = IdentTopic::new(heads_topic(&config.cluster_name));
    let metrics = IdentTopic::new(metrics_topic(&config.cluster_name));
    for t in [&heads, &metrics] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| PeerError::Network(format!("subscribe: {e}")))?;
    }
    if let crdt_dag::TrustPolicy::Only(trusted) = &config.trust {
        // Trusted writers always get our announcements and we theirs.
        for w in trusted {
            if let Ok(p) = PeerId::from_bytes(&w.to_peer_id_bytes())
                && p != *swarm.local_peer_id()
            {
                swarm.behaviour_mut().gossipsub.add_explicit_peer(&p);
            }
        }
    }
    let streams = Streams::new(swarm.behaviour().streams.new_control(), bandwidth.clone());
    let (cmd_tx, cmd_rx) = mpsc::channel(CMD_CHANNEL_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let network = Network {
        peer_id: *swarm.local_peer_id(),
        cmd: cmd_tx,
        streams,
        bandwidth: bandwidth.clone(),
    };
    let driver = Driver {
        swarm,
        config,
        heads,
        metrics,
        events: ev_tx,
        stats: GossipStats::default(),
        bandwidth,
    };
    tasks.spawn(driver.run(cmd_rx, cancel));
    Ok((network, ev_rx))
}

impl Driver {
    async fn run(mut self, mut cmds: mpsc::Receiver<NetworkCmd>, cancel: CancellationToken) {
        let mut kad_tick = tokio::time::interval(KAD_BOOTSTRAP_INTERVAL);
        let mut rate_tick = tokio::time::interval(RATE_TICK);
        rate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(cmd) = cmds.recv() => self.on_cmd(cmd),
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = rate_tick.tick() => self.bandwidth.tick(),
                _ = kad_tick.tick() => {
                    if self.swarm.connected_peers().next().is_some() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                }
            }
        }
        debug!("network task stopped");
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
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| PeerError::Network(format!("dial {addr}: {e}")));
                let _ = respond_to.send(result);
            }
            NetworkCmd::ListenAddrs { respond_to } => {
                let _ = respond_to.send(self.swarm.listeners().cloned().collect());
            }
            NetworkCmd::Stats { respond_to } => {
                let _ = respond_to.send(self.stats.clone());
            }
            NetworkCmd::ConnectedPeers { respond_to } => {
                let _ = respond_to.send(self.swarm.connected_peers().copied().collect());
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
                topic,
                ..
            })) if topic == self.heads.hash() => {
                let _ = self.events.try_send(NetEvent::Joined);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version == PROTOCOL_VERSION => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
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
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => debug!(%peer_id, "connected"),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    /// Gossip validation: heads are accepted only from trusted writers, and
    /// metrics only when they describe their author and are bounded
    /// ([`Metric::received`]). Rejected messages are neither handed on nor
    /// forwarded (no peer scoring: spec/threat-model.md §4).
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
