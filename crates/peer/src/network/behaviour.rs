//! The libp2p protocols a cluster peer speaks, composed into one behaviour,
//! and the transport under them (TCP + noise + yamux, QUIC for open
//! clusters, a pre-shared-key private network for closed ones, circuit
//! relay v2 over either), with AutoNAT and DCUtR hole punching for peers
//! behind NATs.

use std::sync::Arc;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, Swarm, SwarmBuilder, Transport, autonat, connection_limits, dcutr,
    gossipsub, identify, kad, mdns, noise, ping, quic, relay, tcp, yamux,
};

use super::NetworkConfig;
use crate::error::PeerError;
use crate::network::bandwidth::Bandwidth;
use crate::network::gossip_guard;
use crate::network::ip_limits::{self, MAX_INBOUND_PER_IP, PeerIps};
use crate::network::messages::MAX_GOSSIP_SIZE;

/// Identify's protocol version: peers of other networks tell themselves apart.
pub(crate) const PROTOCOL_VERSION: &str = "/ipfs-cluster-rs/1.0.0";
/// Kademlia protocol of cluster peers (kept apart from the public IPFS DHT).
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs-cluster-rs/kad/1.0.0");

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    /// Inbound connections per address (`ip_limits.rs`).
    pub(crate) ip_limits: ip_limits::Behaviour,
    /// Gossipsub, guarded against senders of oversized messages.
    pub(crate) gossipsub: gossip_guard::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) streams: libp2p_stream::Behaviour,
    /// Reaching and being reached through a relay (`/p2p-circuit`).
    pub(crate) relay_client: relay::client::Behaviour,
    /// Relaying for others (`cluster.enable_relay_hop`).
    pub(crate) relay: Toggle<relay::Behaviour>,
    /// Whether our addresses are reachable, asked of connected peers (and
    /// answered for them).
    pub(crate) autonat: autonat::Behaviour,
    /// Upgrades a relayed connection to a direct one (hole punching).
    pub(crate) dcutr: dcutr::Behaviour,
}

/// Established connections at most, as a multiple of `high_water`: the
/// connection manager trims back to `low_water` above `high_water`, but
/// only peers past their grace period, so a burst needs a ceiling too.
const MAX_ESTABLISHED_PER_HIGH_WATER: u32 = 2;

fn behaviour(
    key: &Keypair,
    cfg: &NetworkConfig,
    relay_client: relay::client::Behaviour,
    peer_ips: PeerIps,
) -> Result<Behaviour, PeerError> {
    let peer_id = key.public().to_peer_id();
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_SIZE)
        .heartbeat_interval(cfg.gossip_heartbeat)
        // Message IDs stay gossipsub's (author, sequence number): every
        // rebroadcast of unchanged heads is a new message, so a peer that
        // joined late still hears it.
        .duplicate_cache_time(Duration::from_secs(30))
        .build()
        .map_err(|e| PeerError::Network(format!("gossipsub config: {e}")))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )
    .map_err(|e| PeerError::Network(format!("gossipsub: {e}")))?;
    let thresholds = gossipsub::PeerScoreThresholds::default();
    let graylist = thresholds.graylist_threshold;
    gossipsub
        .with_peer_score(score_params(cfg), thresholds)
        .map_err(|e| PeerError::Network(format!("gossipsub scoring: {e}")))?;

    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(Duration::from_secs(30));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    kad.set_mode(Some(kad::Mode::Server));

    let mdns = if cfg.mdns_interval.is_zero() {
        None
    } else {
        let mdns_config = mdns::Config {
            query_interval: cfg.mdns_interval,
            ..Default::default()
        };
        Some(
            mdns::tokio::Behaviour::new(mdns_config, peer_id)
                .map_err(|e| PeerError::Network(format!("mdns: {e}")))?,
        )
    };

    let high_water = cfg.connection_manager.high_water;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(
            high_water.saturating_mul(MAX_ESTABLISHED_PER_HIGH_WATER),
        ))
        .with_max_established_per_peer(Some(4))
        .with_max_pending_incoming(Some(high_water / 2 + 1));
    let mut limits = connection_limits::Behaviour::new(limits);
    if let crdt_dag::TrustPolicy::Only(trusted) = &cfg.trust {
        // Room for trusted writers however many others are connected.
        for w in trusted {
            if let Ok(p) = PeerId::from_bytes(&w.to_peer_id_bytes()) {
                limits.bypass_peer_id(&p);
            }
        }
    }

    Ok(Behaviour {
        limits,
        ip_limits: ip_limits::Behaviour::new(
            cfg.limit_inbound_per_ip.then_some(MAX_INBOUND_PER_IP),
            false,
            peer_ips,
        ),
        gossipsub: gossip_guard::Behaviour::new(gossipsub, graylist),
        identify: identify::Behaviour::new(
            identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                .with_agent_version(format!("ipfs-cluster-rs/{}", env!("CARGO_PKG_VERSION"))),
        ),
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
        kad,
        mdns: mdns.into(),
        streams: libp2p_stream::Behaviour::new(),
        relay_client,
        relay: cfg
            .relay_hop
            .then(|| {
                let mut relay = relay::Behaviour::new(peer_id, relay::Config::default());
                // rust-libp2p relays only once an external address is
                // confirmed; Go's enable_relay_hop relays regardless.
                relay.set_status(Some(relay::Status::Enable));
                relay
            })
            .into(),
        autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
        dcutr: dcutr::Behaviour::new(peer_id),
    })
}

/// Weight of each rejected message (gossipsub's P4): the penalty is
/// `weight * count²`, where `count` is the peer's rejected messages, each
/// adding 1 and the sum multiplied by [`INVALID_MESSAGE_DECAY`] every second
/// (the score's `decay_interval`). Graylisting (everything the peer sends
/// dropped unread) starts at -80, so at `count ≥ √(80/2) ≈ 6.3`.
///
/// Why these two numbers. A rejection every `T` seconds peaks at
/// `count = 1 / (1 - 0.94^T)`:
/// - a slow flooder, one every 2 s: `count` tends to 8.6 (-148); it passes
///   6.3 at its 11th message, so it is graylisted ~20 s in, and stays
///   graylisted but for one message let through each time the count
///   decays back under 6.3 (~1 in 3 s).
/// - one every 3 s peaks at 5.9 (-70) and one every 10 s at 2.2 (-9):
///   never graylisted. That is the room left to an honest relay of a writer
///   we don't trust (3.2 of spec/threat-model.md): its rebroadcasts (1 a
///   minute by default) and the announcements of its bursts of writes.
///   Six rejections at once from a clean slate (-72) don't graylist either.
/// - one stray rejection is -2: the peer leaves our mesh (negative score)
///   until it decays or its first deliveries make up for it; it takes three
///   in quick succession to stop gossip (IHAVE/IWANT) with it (under -10).
///
/// The old -10 at 30%/s (`√8 ≈ 2.8` at once) graylisted bursts of 3 and
/// never a flooder slower than ~2 a second. Rate is all P4 sees: a peer
/// relaying a busy writer we distrust at one announcement a second or more
/// is graylisted like a flooder (spec/threat-model.md §4).
pub(crate) const INVALID_MESSAGE_WEIGHT: f64 = -2.0;
/// Kept by a peer's rejected-message count each second (see
/// [`INVALID_MESSAGE_WEIGHT`]): a count halves in ~11 s.
pub(crate) const INVALID_MESSAGE_DECAY: f64 = 0.94;

/// Peer scoring: a peer is judged by the messages it sends that we reject
/// (heads of untrusted authors, junk, metrics about others). What could
/// earn a flooder credit first is kept small: time in the mesh and first
/// deliveries add at most a few points, and the whole topic score is capped.
/// No penalty for quiet mesh peers (heads are rare by design) nor for peers
/// sharing an IP (a cluster on one host is normal).
fn score_params(cfg: &NetworkConfig) -> gossipsub::PeerScoreParams {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.1,
        first_message_deliveries_decay: 0.5,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
        invalid_message_deliveries_decay: INVALID_MESSAGE_DECAY,
        ..Default::default()
    };
    let mut params = gossipsub::PeerScoreParams {
        topic_score_cap: 10.0,
        // The guard's penalty for reopening gossip streams (what an
        // oversized message costs its sender) is the application score as is.
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for name in [
        super::heads_topic(&cfg.cluster_name),
        super::metrics_topic(&cfg.cluster_name),
    ] {
        params
            .topics
            .insert(gossipsub::IdentTopic::new(name).hash(), topic.clone());
    }
    params
}

/// The `Transport::map` step that counts a connection's substreams.
fn counted<M>(
    bandwidth: &Arc<Bandwidth>,
) -> impl FnOnce((PeerId, M), ConnectedPoint) -> (PeerId, StreamMuxerBox) + Clone + Send + 'static
where
    M: StreamMuxer + Send + 'static,
    M::Substream: Send + 'static,
    M::Error: Send + Sync + 'static,
{
    let bandwidth = bandwidth.clone();
    move |(peer, muxer), _| (peer, bandwidth.count_muxer(muxer))
}

/// Builds the swarm. With a secret the transport is TCP behind the private
/// network handshake (QUIC can't carry a pre-shared key, so it is off);
/// without one, TCP and QUIC. Every connection's substreams are counted by
/// `bandwidth` (under [`crate::network::bandwidth::TRANSPORT_KEY`]).
pub(crate) fn build_swarm(
    cfg: &NetworkConfig,
    bandwidth: &Arc<Bandwidth>,
    peer_ips: &PeerIps,
) -> Result<Swarm<Behaviour>, PeerError> {
    let net_err = |e: &dyn std::fmt::Display| PeerError::Network(e.to_string());
    let builder = SwarmBuilder::with_existing_identity(cfg.keypair.clone()).with_tokio();
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(300));
    let tcp = || tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let swarm = match cfg.secret {
        None => builder
            .with_other_transport(|key| {
                let tcp = tcp()
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .map(counted(bandwidth));
                let quic =
                    quic::tokio::Transport::new(quic::Config::new(key)).map(counted(bandwidth));
                Ok::<_, BoxError>(tcp.or_transport(quic).map(|either, _| either.into_inner()))
            })
            .map_err(|e| net_err(&e))?
            .with_dns()
            .map_err(|e| net_err(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| net_err(&e))?
            .with_behaviour(|key, relay| {
                behaviour(key, cfg, relay, peer_ips.clone()).map_err(BoxError::from)
            })
            .map_err(|e| net_err(&e))?
            .with_swarm_config(idle)
            .build(),
        Some(secret) => {
            let psk = PreSharedKey::new(secret);
            builder
                .with_other_transport(|key| {
                    let noise = noise::Config::new(key)?;
                    Ok::<_, BoxError>(
                        tcp()
                            .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                            .upgrade(Version::V1Lazy)
                            .authenticate(noise)
                            .multiplex(yamux::Config::default())
                            .map(counted(bandwidth)),
                    )
                })
                .map_err(|e| net_err(&e))?
                .with_dns()
                .map_err(|e| net_err(&e))?
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|e| net_err(&e))?
                .with_behaviour(|key, relay| {
                    behaviour(key, cfg, relay, peer_ips.clone()).map_err(BoxError::from)
                })
                .map_err(|e| net_err(&e))?
                .with_swarm_config(idle)
                .build()
        }
    };
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::score_sim;

    /// The P4 penalty of a peer rejected once every `every` seconds, as
    /// gossipsub counts it, over `secs`: the second it is graylisted, and
    /// its lowest score.
    fn rejected_every(every: f64, secs: u32) -> (Option<f64>, f64) {
        score_sim::every(every, secs, INVALID_MESSAGE_DECAY, |n| {
            INVALID_MESSAGE_WEIGHT * n * n
        })
    }

    #[test]
    fn a_slow_flooder_is_graylisted_and_occasional_rejections_are_not() {
        let graylist = score_sim::graylist();
        let (when, _) = rejected_every(2.0, 120);
        assert!(
            when.is_some_and(|t| t < 30.0),
            "one every 2 s graylisted at {when:?}"
        );
        for every in [3.0, 10.0, 60.0] {
            let (when, lowest) = rejected_every(every, 600);
            assert_eq!(when, None, "one every {every} s: lowest score {lowest}");
        }
        // A burst from a clean slate: six pass, a seventh graylists.
        let at_once = |n: f64| INVALID_MESSAGE_WEIGHT * n * n;
        assert!(at_once(6.0) > graylist && at_once(7.0) < graylist);
        // One stray rejection takes a peer out of the mesh (score under 0)
        // and stops no gossip (the gossip threshold is -10).
        assert!(at_once(1.0) < 0.0 && at_once(1.0) > -10.0);
    }
}
