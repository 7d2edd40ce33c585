//! The peer's libp2p side: one task owns the swarm (`driver`), everything
//! else holds a [`Network`] handle and sends it commands with oneshot replies.
//! Validated gossip comes out as [`NetEvent`]s on a bounded channel. The
//! protocols on its streams live here too: framing, inter-peer RPC with
//! bounded answering slots, gossip messages, byte accounting. Connections
//! are bounded in total, per peer and per address, and trimmed as Go's
//! connection manager does.

mod autorelay;
pub mod bandwidth;
mod behaviour;
mod conn_manager;
mod driver;
mod find_peer;
pub(crate) mod frame;
mod gossip_guard;
mod ip_limits;
pub mod messages;
mod peer_book;
mod rendezvous;
pub mod rpc;
#[cfg(test)]
mod score_sim;
pub(crate) mod slots;

use std::sync::Arc;
use std::time::Duration;

use crdt_dag::TrustPolicy;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::error::PeerError;
use crate::network::bandwidth::{Bandwidth, Streams};
use crate::network::messages::{HeadsMessage, Metric};

pub use conn_manager::ConnManagerConfig;
pub(crate) use driver::spawn;

/// Capacity of the command channel into the swarm task.
const CMD_CHANNEL_CAPACITY: usize = 64;
/// Capacity of the validated-gossip channel out of the swarm task.
pub(crate) const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// What the network needs from the peer's config.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The peer's identity.
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Private network key (`cluster.secret`); `None` for open clusters.
    pub secret: Option<[u8; 32]>,
    /// `consensus.crdt.cluster_name`: names the gossip topics.
    pub cluster_name: String,
    /// Who may announce heads.
    pub trust: TrustPolicy,
    /// mDNS query interval; zero disables mDNS.
    pub mdns_interval: Duration,
    /// Gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
    /// `cluster.connection_manager`: above `high_water` connections, peers
    /// we don't need are closed down to `low_water`; twice `high_water` is
    /// a hard limit (trusted peers may pass it).
    pub connection_manager: ConnManagerConfig,
    /// `cluster.resource_manager.enabled`: refuse an address's inbound
    /// connections past 8 (loopback excepted), as Go's resource manager.
    pub limit_inbound_per_ip: bool,
    /// Serve circuit relay v2 reservations for other peers
    /// (`cluster.enable_relay_hop`).
    pub relay_hop: bool,
    /// External addresses (`cluster.announce_multiaddress`): told to peers
    /// by identify, and what a relay hands out in its reservations.
    pub announce: Vec<Multiaddr>,
    /// The peerstore file: read at start (its peers are dialed), rewritten
    /// as cluster peers are met. `None`: the book lives in memory only.
    pub peerstore: Option<std::path::PathBuf>,
}

/// Gossip topic names of a cluster.
pub(crate) fn heads_topic(cluster: &str) -> String {
    format!("/ipfs-cluster-rs/heads/1/{cluster}")
}

pub(crate) fn metrics_topic(cluster: &str) -> String {
    format!("/ipfs-cluster-rs/metrics/1/{cluster}")
}

/// Which gossip topic to publish on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topic {
    Heads,
    Metrics,
}

/// Validated gossip, handed to consensus and the monitor.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// A trusted writer announced its heads.
    Heads { author: PeerId, msg: HeadsMessage },
    /// A peer published a metric about itself.
    Metric(Metric),
    /// A peer joined the heads topic: it wants to hear our heads now, and,
    /// when it may write (`trusted`), it may hold deltas we lack (it was
    /// down or cut off while it wrote).
    Joined { peer: PeerId, trusted: bool },
}

pub(crate) enum NetworkCmd {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        respond_to: oneshot::Sender<Result<(), PeerError>>,
    },
    Dial {
        addr: Multiaddr,
        respond_to: oneshot::Sender<Result<(), PeerError>>,
    },
    ListenAddrs {
        respond_to: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        respond_to: oneshot::Sender<Vec<PeerId>>,
    },
    HeadsSubscribers {
        respond_to: oneshot::Sender<Vec<PeerId>>,
    },
    Stats {
        respond_to: oneshot::Sender<GossipStats>,
    },
    Score {
        peer: PeerId,
        respond_to: oneshot::Sender<Option<f64>>,
    },
    /// Looks up a peer's addresses on the DHT (`find_peer`); answers
    /// whether it was found (or is connected).
    FindPeer {
        peer: PeerId,
        respond_to: oneshot::Sender<bool>,
    },
}

/// Authors remembered in [`GossipStats::heads_seen`] (peer IDs cost
/// nothing to make, so the map is bounded).
pub const MAX_HEADS_AUTHORS_SEEN: usize = 4096;

/// Counters of validated gossip, for operators and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Head announcements accepted (and forwarded).
    pub heads_accepted: u64,
    /// Messages rejected (not handed on, not forwarded).
    pub rejected: u64,
    /// For every author of a heads message seen (accepted or not), the
    /// peers that relayed it to us: at most [`MAX_HEADS_AUTHORS_SEEN`]
    /// authors (later ones are not recorded).
    pub heads_seen: std::collections::BTreeMap<PeerId, std::collections::BTreeSet<PeerId>>,
}

/// A handle to the swarm task. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    peer_id: PeerId,
    cmd: mpsc::Sender<NetworkCmd>,
    streams: Streams,
    bandwidth: Arc<Bandwidth>,
}

impl std::fmt::Debug for NetworkCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Publish { .. } => "Publish",
            Self::Dial { .. } => "Dial",
            Self::ListenAddrs { .. } => "ListenAddrs",
            Self::ConnectedPeers { .. } => "ConnectedPeers",
            Self::HeadsSubscribers { .. } => "HeadsSubscribers",
            Self::Stats { .. } => "Stats",
            Self::Score { .. } => "Score",
            Self::FindPeer { .. } => "FindPeer",
        })
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl Network {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> NetworkCmd,
    ) -> Result<T, PeerError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| PeerError::NetworkStopped)?;
        rx.await.map_err(|_| PeerError::NetworkStopped)
    }

    /// This peer's ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub(crate) async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), PeerError> {
        self.ask(|respond_to| NetworkCmd::Publish {
            topic,
            data,
            respond_to,
        })
        .await?
    }

    /// Dials an address (`/ip4/.../tcp/.../p2p/<id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), PeerError> {
        self.ask(|respond_to| NetworkCmd::Dial { addr, respond_to })
            .await?
    }

    /// The addresses the swarm listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, PeerError> {
        self.ask(|respond_to| NetworkCmd::ListenAddrs { respond_to })
            .await
    }

    /// Peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, PeerError> {
        self.ask(|respond_to| NetworkCmd::ConnectedPeers { respond_to })
            .await
    }

    /// Connected peers subscribed to this cluster's heads topic: peers of
    /// this cluster, where [`Network::connected_peers`] also lists relays,
    /// DHT neighbours and peers of other clusters (the cluster DHT is
    /// shared), which hold none of our history.
    pub async fn heads_subscribers(&self) -> Result<Vec<PeerId>, PeerError> {
        self.ask(|respond_to| NetworkCmd::HeadsSubscribers { respond_to })
            .await
    }

    /// Gossip counters.
    pub async fn stats(&self) -> Result<GossipStats, PeerError> {
        self.ask(|respond_to| NetworkCmd::Stats { respond_to })
            .await
    }

    /// Gossipsub's score of a connected peer (below -80 it is graylisted:
    /// its messages are ignored).
    pub async fn score(&self, peer: PeerId) -> Result<Option<f64>, PeerError> {
        self.ask(|respond_to| NetworkCmd::Score { peer, respond_to })
            .await
    }

    /// A control to open and accept protocol streams (counted).
    pub(crate) fn streams(&self) -> Streams {
        self.streams.clone()
    }

    /// Bytes in and out and their rates, per key (see [`crate::network::bandwidth`]).
    pub fn bandwidth(&self) -> api::types::BandwidthStats {
        self.bandwidth.stats()
    }
}
