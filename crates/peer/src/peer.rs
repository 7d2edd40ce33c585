//! A running cluster peer and the builder that starts one. The binary and
//! the tests both start peers through [`PeerBuilder`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use cluster_types::Pin;
use crdt_dag::{PinEvent, Replica, ReplicaConfig, TrustPolicy, Write, WriterId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::IpfsBackend;
use crate::config::ServiceConfig;
use crate::consensus::{self, Consensus, ConsensusSettings};
use crate::error::PeerError;
use crate::ipfs_glue::{BlockPutter, IpfsSource};
use crate::monitor::{self, Monitor};
use crate::network::{self, NetEvent, Network, NetworkConfig};
use crate::{dagsync, pinning, rpc, status};

/// Version reported to other peers and users (Go IPFS Cluster's, whose API we speak).
pub const VERSION: &str = "1.1.6";
/// The RPC protocol version reported by `id`.
pub const RPC_PROTOCOL_VERSION: &str = "/ipfs-cluster-rs/rpc/1.0.0";
/// Capacity of the pinset event channel; slow subscribers see `Lagged`.
const EVENT_CAPACITY: usize = 4096;
/// Longest `start` waits for the listeners to report an address.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// How often `cluster.peer_addresses` are re-dialed (Go: 5 minutes).
const PEER_ADDRESSES_REDIAL: Duration = Duration::from_secs(300);

/// Everything a peer needs to start. [`PeerBuilder`] fills it from a
/// `service.json` or from presets; every field has a working default.
#[derive(Clone, Debug)]
pub struct PeerSettings {
    /// `cluster.peername`.
    pub peername: String,
    /// `cluster.listen_multiaddress`.
    pub listen: Vec<Multiaddr>,
    /// `cluster.secret`; `None` for an open cluster.
    pub secret: Option<[u8; 32]>,
    /// `cluster.peer_addresses`: dialed at start and every 5 minutes.
    pub peer_addresses: Vec<Multiaddr>,
    /// `cluster.mdns_interval`; zero disables mDNS.
    pub mdns_interval: Duration,
    /// `cluster.monitor_ping_interval`.
    pub ping_interval: Duration,
    /// `cluster.connection_manager.high_water`.
    pub max_connections: u32,
    /// `cluster.pubsub.heartbeat_interval`.
    pub gossip_heartbeat: Duration,
    /// `cluster.replication_factor_min`: used when a pin asks for 0.
    pub replication_min: i32,
    /// `cluster.replication_factor_max`: used when a pin asks for 0.
    pub replication_max: i32,
    /// `consensus.crdt.cluster_name`.
    pub cluster_name: String,
    /// `consensus.crdt.trusted_peers`.
    pub trust: TrustPolicy,
    /// Batching, queue, rebroadcast and follower mode.
    pub consensus: ConsensusSettings,
    /// Where the pinset lives; `None` keeps it in a temporary store.
    pub data_dir: Option<PathBuf>,
    /// `ipfs_connector.ipfshttp`: the Kubo daemon that pins the pinset, and
    /// that deltas are put into and read from when no peer serves them;
    /// `None`: no IPFS (the peer keeps the pinset but pins nothing).
    pub ipfs: Option<ipfs::KuboConfig>,
    /// `ipfs_connector.embedded`: the IPFS node inside the peer; `None`:
    /// none (at most one of `ipfs` and `embedded` may be set).
    pub embedded: Option<ipfs_node::NodeConfig>,
    /// `ipfs_connector.embedded.connect_swarms_delay`: when the embedded
    /// node first connects to the other peers' IPFS (with Kubo, the
    /// `ipfs` section's own key is used).
    pub connect_swarms_delay: Duration,
    /// `pin_tracker.stateless` (and our retry knobs).
    pub tracker: tracker::TrackerConfig,
    /// `allocator.balanced.allocate_by`.
    pub allocate_by: Vec<String>,
    /// `informer.disk`, `informer.tags`, `informer.pinqueue`.
    pub informer: crate::config::InformerSection,
    /// `cluster.pin_recover_interval`.
    pub pin_recover_interval: Duration,
    /// `cluster.state_sync_interval`: how often expired pins are unpinned.
    pub state_sync_interval: Duration,
    /// `cluster.disable_repinning`.
    pub disable_repinning: bool,
    /// `cluster.pin_only_on_untrusted_peers`.
    pub pin_only_on_untrusted_peers: bool,
    /// `monitor.pubsubmon.check_interval`: how often expired metrics alert.
    pub monitor_check_interval: Duration,
}

impl Default for PeerSettings {
    fn default() -> Self {
        Self {
            peername: "peer".into(),
            listen: vec![
                "/ip4/0.0.0.0/tcp/9096".parse().expect("valid"),
                "/ip4/0.0.0.0/udp/9096/quic-v1".parse().expect("valid"),
            ],
            secret: None,
            peer_addresses: vec![],
            mdns_interval: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            max_connections: 400,
            gossip_heartbeat: Duration::from_secs(1),
            replication_min: -1,
            replication_max: -1,
            cluster_name: "ipfs-cluster".into(),
            trust: TrustPolicy::All,
            consensus: ConsensusSettings {
                max_batch_size: 0,
                max_batch_age: Duration::ZERO,
                max_queue_size: 50_000,
                rebroadcast_interval: Duration::from_secs(60),
                follower: false,
            },
            data_dir: None,
            ipfs: None,
            embedded: None,
            connect_swarms_delay: ipfs::DEFAULT_CONNECT_SWARMS_DELAY,
            tracker: tracker::TrackerConfig::default(),
            allocate_by: vec!["tag:group".into(), "freespace".into()],
            informer: crate::config::InformerSection::default(),
            pin_recover_interval: Duration::from_secs(12 * 60),
            state_sync_interval: Duration::from_secs(5 * 60),
            disable_repinning: true,
            pin_only_on_untrusted_peers: false,
            monitor_check_interval: Duration::from_secs(15),
        }
    }
}

impl PeerSettings {
    /// Settings from a `service.json`, for a peer whose identity is `me` and
    /// whose config folder is `config_dir`. The peer always trusts itself,
    /// as Go's does.
    ///
    /// # Errors
    /// An invalid `ipfs_connector.ipfshttp` section.
    pub fn from_config(
        cfg: &ServiceConfig,
        config_dir: &Path,
        me: PeerId,
    ) -> Result<Self, PeerError> {
        let c = &cfg.cluster;
        let crdt = &cfg.consensus.crdt;
        let mut trust = cfg.trust_policy();
        if let (TrustPolicy::Only(set), Ok(w)) =
            (&mut trust, WriterId::from_peer_id_bytes(&me.to_bytes()))
        {
            set.insert(w);
        }
        if let Some(serde_json::Value::Object(sections)) = &cfg.ipfs_connector {
            let names: Vec<&str> = sections.keys().map(String::as_str).collect();
            if names.contains(&"ipfshttp") && names.contains(&"embedded") {
                return Err(PeerError::Config(
                    "ipfs_connector has both an ipfshttp and an embedded section: the section present chooses the IPFS backend, keep one".into(),
                ));
            }
            if let Some(other) = names
                .iter()
                .find(|n| !matches!(**n, "ipfshttp" | "embedded"))
            {
                return Err(PeerError::Config(format!(
                    "ipfs_connector.{other}: unknown IPFS connector (ipfshttp: a Kubo daemon; embedded: the node inside the peer)"
                )));
            }
        }
        let ipfs = match cfg.ipfs_connector.as_ref().and_then(|v| v.get("ipfshttp")) {
            Some(section) => Some(
                ipfs::KuboConfig::from_json(section)
                    .map_err(|e| PeerError::Config(format!("ipfs_connector.ipfshttp: {e}")))?,
            ),
            None => None,
        };
        let invalid = |e: crate::config::ConfigError| PeerError::Config(e.to_string());
        let embedded = cfg.embedded_section().map_err(invalid)?;
        let stateless = cfg.tracker_section().map_err(invalid)?;
        let tracker = tracker::TrackerConfig {
            max_pin_queue_size: stateless.max_pin_queue_size,
            concurrent_pins: stateless.concurrent_pins,
            priority_pin_max_age: stateless.priority_pin_max_age,
            priority_pin_max_retries: stateless.priority_pin_max_retries,
            ..tracker::TrackerConfig::default()
        };
        let monitor_check_interval = match cfg
            .monitor
            .as_ref()
            .and_then(|m| m.pointer("/pubsubmon/check_interval"))
            .and_then(|v| v.as_str())
        {
            Some(text) => crate::config::parse_go_duration(text)
                .map_err(|e| PeerError::Config(format!("monitor.pubsubmon.check_interval: {e}")))?,
            None => Duration::from_secs(15),
        };
        Ok(Self {
            peername: c.peername.clone(),
            listen: c.listen_multiaddress.clone(),
            secret: c.secret,
            peer_addresses: c.peer_addresses.clone(),
            mdns_interval: c.mdns_interval,
            ping_interval: c.monitor_ping_interval,
            max_connections: c.connection_manager.high_water,
            gossip_heartbeat: c.pubsub.heartbeat_interval,
            replication_min: c.replication_factor_min,
            replication_max: c.replication_factor_max,
            cluster_name: crdt.cluster_name.clone(),
            trust,
            consensus: ConsensusSettings {
                max_batch_size: crdt.batching.max_batch_size,
                max_batch_age: crdt.batching.max_batch_age,
                max_queue_size: crdt.batching.max_queue_size,
                rebroadcast_interval: crdt.rebroadcast_interval,
                follower: c.follower_mode,
            },
            data_dir: Some(cfg.sled_path(config_dir)),
            ipfs,
            connect_swarms_delay: embedded
                .as_ref()
                .map_or(ipfs::DEFAULT_CONNECT_SWARMS_DELAY, |e| {
                    e.connect_swarms_delay
                }),
            embedded: embedded.map(|e| e.node),
            tracker,
            allocate_by: cfg.allocator_section().map_err(invalid)?.allocate_by,
            informer: cfg.informer_section().map_err(invalid)?,
            pin_recover_interval: c.pin_recover_interval,
            state_sync_interval: c.state_sync_interval,
            disable_repinning: c.disable_repinning,
            pin_only_on_untrusted_peers: c.pin_only_on_untrusted_peers,
            monitor_check_interval,
        })
    }
}

/// Starts a peer from code.
///
/// ```no_run
/// # async fn run() -> Result<(), peer::PeerError> {
/// use peer::PeerBuilder;
/// let keypair = libp2p::identity::Keypair::generate_ed25519();
/// let peer = PeerBuilder::local_test(keypair, "my-cluster").start().await?;
/// let cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse().unwrap();
/// peer.pin(cid, cluster_types::PinOptions::named("hello")).await?;
/// assert!(peer.get(&cid)?.is_some());
/// peer.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PeerBuilder {
    keypair: Keypair,
    settings: PeerSettings,
    bootstrap: Vec<Multiaddr>,
    trust_bootstrap: bool,
}

impl PeerBuilder {
    /// A builder with default settings (Go's defaults, temporary store).
    pub fn new(keypair: Keypair, settings: PeerSettings) -> Self {
        Self {
            keypair,
            settings,
            bootstrap: vec![],
            trust_bootstrap: true,
        }
    }

    /// Presets for peers on one machine: loopback TCP on a random port, no
    /// mDNS, no private network, trust everyone, fast pings and rebroadcasts.
    pub fn local_test(keypair: Keypair, cluster_name: &str) -> Self {
        let settings = PeerSettings {
            peername: format!("test-{}", &keypair.public().to_peer_id().to_string()[46..]),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")],
            mdns_interval: Duration::ZERO,
            ping_interval: Duration::from_millis(500),
            gossip_heartbeat: Duration::from_millis(200),
            cluster_name: cluster_name.into(),
            consensus: ConsensusSettings {
                rebroadcast_interval: Duration::from_secs(2),
                ..PeerSettings::default().consensus
            },
            ..PeerSettings::default()
        };
        Self::new(keypair, settings)
    }

    /// Changes the settings.
    pub fn settings(mut self, f: impl FnOnce(&mut PeerSettings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// Peers to connect to at start (`daemon --bootstrap`). With `trust`
    /// (the default, unlike `--no-trust`) their IDs join the trusted peers.
    pub fn bootstrap(mut self, addrs: Vec<Multiaddr>, trust: bool) -> Self {
        self.bootstrap = addrs;
        self.trust_bootstrap = trust;
        self
    }

    /// Opens the store, starts the network and every component.
    pub async fn start(self) -> Result<Peer, PeerError> {
        let Self {
            keypair,
            mut settings,
            bootstrap,
            trust_bootstrap,
        } = self;
        let peer_id = keypair.public().to_peer_id();
        let signing_key = keypair
            .clone()
            .try_into_ed25519()
            .map(|k| {
                ed25519_dalek::SigningKey::from_bytes(
                    &k.secret().as_ref().try_into().expect("32 bytes"),
                )
            })
            .map_err(|_| PeerError::Config("the peer identity must be an ed25519 key".into()))?;

        if trust_bootstrap && let TrustPolicy::Only(set) = &mut settings.trust {
            set.extend(
                bootstrap
                    .iter()
                    .filter_map(peer_of)
                    .filter_map(|p| WriterId::from_peer_id_bytes(&p.to_bytes()).ok()),
            );
        }

        let replica_config = ReplicaConfig {
            cluster: settings.cluster_name.clone(),
            trust: settings.trust.clone(),
            limits: crdt_dag::Limits::default(),
        };
        let replica = Arc::new(match &settings.data_dir {
            Some(dir) => Replica::open(dir, signing_key, replica_config)?,
            None => Replica::temporary(signing_key, replica_config)?,
        });
        if !settings.consensus.follower && !settings.trust.allows(&replica.writer()) {
            warn!("this peer is not in trusted_peers: its writes will be refused");
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let tx = events.clone();
        let monitor = Monitor::default();
        let alerts = monitor.clone();
        replica.set_event_hook(Some(Arc::new(move |e: &PinEvent| {
            if let PinEvent::Fork(fork) = e {
                surface_fork(&alerts, fork);
            }
            let _ = tx.send(e.clone());
        })));

        let cancel = CancellationToken::new();
        let (network, mut net_events, net_task) = network::spawn(
            NetworkConfig {
                keypair,
                listen: settings.listen.clone(),
                secret: settings.secret,
                cluster_name: settings.cluster_name.clone(),
                trust: settings.trust.clone(),
                mdns_interval: settings.mdns_interval,
                gossip_heartbeat: settings.gossip_heartbeat,
                max_connections: settings.max_connections,
            },
            cancel.child_token(),
        )?;
        let mut tasks = vec![net_task];

        let (ann_tx, ann_rx) = mpsc::channel(consensus::ANNOUNCE_CHANNEL_CAPACITY);
        let connector = match (&settings.ipfs, &settings.embedded) {
            (Some(_), Some(_)) => {
                return Err(PeerError::Config(
                    "both a Kubo daemon (ipfshttp) and the embedded IPFS node are configured: keep one".into(),
                ));
            }
            (Some(c), None) => Some(Arc::new(IpfsBackend::Kubo(
                ipfs::KuboConnector::new(c.clone())
                    .map_err(|e| PeerError::Config(format!("ipfs connector: {e}")))?,
            ))),
            (None, Some(cfg)) => {
                let (node, node_tasks) =
                    ipfs_node::Node::start(replica.database(), cfg.clone(), cancel.child_token())
                        .await
                        .map_err(|e| PeerError::Config(format!("embedded IPFS node: {e}")))?;
                tasks.extend(node_tasks);
                Some(Arc::new(IpfsBackend::Embedded(node)))
            }
            (None, None) => None,
        };
        let mut glue = consensus::IpfsGlue::default();
        if let Some(c) = &connector {
            let (putter, task) = BlockPutter::start(c.clone(), cancel.child_token());
            tasks.push(task);
            glue.putter = Some(putter);
            glue.source = Some(IpfsSource(c.clone()));
        }
        let sync_counters = Arc::new(consensus::SyncCounters::default());
        let (consensus, consensus_tasks) = consensus::start(
            replica.clone(),
            network.clone(),
            settings.consensus.clone(),
            ann_rx,
            sync_counters.clone(),
            glue,
            cancel.child_token(),
        );
        let (m, c, cons) = (monitor.clone(), cancel.child_token(), consensus.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = c.cancelled() => return,
                    ev = net_events.recv() => match ev { Some(ev) => ev, None => return },
                };
                match ev {
                    NetEvent::Heads { author, msg } => {
                        let _ = ann_tx.try_send((author, msg));
                    }
                    NetEvent::Metric(metric) => m.record(metric),
                    NetEvent::Joined => cons.announce_now(),
                }
            }
        }));
        tasks.extend(consensus_tasks);
        tasks.push(monitor::start_pinger(
            monitor.clone(),
            network.clone(),
            settings.ping_interval,
            cancel.child_token(),
        ));

        let r = replica.clone();
        let c = cancel.child_token();
        let control = network.streams();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = dagsync::serve(r, control, c).await {
                warn!(error = %e, "dag sync server stopped");
            }
        }));

        let tracker = match &connector {
            Some(c) => {
                let store = replica
                    .database()
                    .open_tree("tracker")
                    .map_err(|e| PeerError::Io(std::io::Error::other(e)))?;
                let pinset = Arc::new(pinning::ReplicaPinset {
                    replica: replica.clone(),
                });
                let (t, ts) = tracker::Tracker::start(
                    settings.tracker.clone(),
                    peer_id.to_string(),
                    c.clone(),
                    pinset,
                    store,
                    cancel.child_token(),
                );
                tasks.extend(ts);
                Some(t)
            }
            None => None,
        };
        let inner = Arc::new(Info {
            peer_id,
            peername: settings.peername.clone(),
            network: network.clone(),
            replica: replica.clone(),
            monitor: monitor.clone(),
            ipfs: connector.clone(),
            status: status::Local::new(
                settings.peername.clone(),
                tracker.clone(),
                connector.clone(),
            ),
        });
        let registry = Arc::new(registry(inner.clone()));
        let (trust, control, c) = (
            settings.trust.clone(),
            network.streams(),
            cancel.child_token(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = rpc::serve(registry, trust, control, c).await {
                warn!(error = %e, "rpc server stopped");
            }
        }));

        let mut dial_list = bootstrap;
        dial_list.extend(settings.peer_addresses.iter().cloned());
        for addr in &dial_list {
            if let Err(e) = network.dial(addr.clone()).await {
                warn!(%addr, error = %e, "could not dial");
            }
        }
        if !settings.peer_addresses.is_empty() {
            let (n, addrs, c) = (
                network.clone(),
                settings.peer_addresses.clone(),
                cancel.child_token(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = c.cancelled() => return,
                        _ = tokio::time::sleep(PEER_ADDRESSES_REDIAL) => {}
                    }
                    let connected = n.connected_peers().await.unwrap_or_default();
                    for a in &addrs {
                        if peer_of(a).is_none_or(|p| !connected.contains(&p)) {
                            let _ = n.dial(a.clone()).await;
                        }
                    }
                }
            }));
        }
        // Listeners report their addresses asynchronously: wait (briefly)
        // so that a started peer can be dialed at once.
        let started = std::time::Instant::now();
        while !settings.listen.is_empty()
            && network.listen_addrs().await.is_ok_and(|a| a.is_empty())
            && started.elapsed() < LISTEN_WAIT
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        info!(%peer_id, cluster = %settings.cluster_name, follower = settings.consensus.follower, "peer started");
        let (alert_tx, alert_rx) = mpsc::channel(pinning::ALERT_QUEUE);
        tasks.push(monitor::start_checker(
            monitor.clone(),
            settings.monitor_check_interval,
            alert_tx,
            cancel.child_token(),
        ));
        let pin_events = events.subscribe();
        let handle = PeerHandle {
            info: inner,
            consensus,
            monitor,
            events,
            settings: Arc::new(settings),
            sync_counters,
            ipfs: connector.clone(),
        };
        let s = handle.settings();
        let pinning_settings = pinning::PinningSettings {
            pin_recover_interval: s.pin_recover_interval,
            state_sync_interval: s.state_sync_interval,
            disable_repinning: s.disable_repinning,
            connect_swarms_delay: s
                .ipfs
                .as_ref()
                .map_or(s.connect_swarms_delay, |k| k.connect_swarms_delay),
            informer: s.informer.clone(),
        };
        tasks.extend(pinning::start_pinset_tasks(
            handle.clone(),
            alert_rx,
            &pinning_settings,
            cancel.child_token(),
        ));
        if let (Some(t), Some(c)) = (tracker, connector) {
            tasks.extend(pinning::start_ipfs_tasks(
                handle.clone(),
                t,
                c,
                pin_events,
                &pinning_settings,
                cancel.child_token(),
            ));
        }
        Ok(Peer {
            handle,
            cancel,
            tasks,
        })
    }
}

/// Peers with a live ping, and `me`, sorted.
fn alive(monitor: &Monitor, me: PeerId) -> Vec<PeerId> {
    let mut out = monitor.alive();
    if !out.contains(&me) {
        out.push(me);
    }
    out.sort();
    out
}

/// The `/p2p/<id>` of an address.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

struct Info {
    peer_id: PeerId,
    peername: String,
    network: Network,
    replica: Arc<Replica>,
    monitor: Monitor,
    ipfs: Option<Arc<IpfsBackend>>,
    status: status::Local,
}

/// Longest `Cluster.ID` waits for the IPFS daemon's own ID.
const IPFS_ID_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer's IPFS daemon, as `Cluster.ID` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpfsInfo {
    /// The daemon's peer ID ("" when unknown).
    pub id: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Why it could not be asked ("" when fine).
    pub error: String,
}

/// What the pin tracker is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Operations queued or in progress.
    pub queued: usize,
    /// The most IPFS pin calls seen in flight at once since start.
    pub max_pins_in_flight: usize,
}

/// What `Cluster.ID` answers about a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdInfo {
    /// Peer ID.
    pub id: String,
    /// `cluster.peername`.
    pub peername: String,
    /// Software version.
    pub version: String,
    /// RPC protocol version.
    pub rpc_protocol_version: String,
    /// Listen addresses with `/p2p/<id>`.
    pub addresses: Vec<String>,
    /// Cluster peers it sees alive (ping metrics), itself included.
    #[serde(default)]
    pub cluster_peers: Vec<String>,
    /// Its IPFS daemon; `None` when it has none.
    #[serde(default)]
    pub ipfs: Option<IpfsInfo>,
}

impl Info {
    async fn id(&self) -> IdInfo {
        let addrs = self.network.listen_addrs().await.unwrap_or_default();
        let ipfs = match &self.ipfs {
            Some(c) => {
                use ipfs::IpfsConnector;
                Some(match tokio::time::timeout(IPFS_ID_TIMEOUT, c.id()).await {
                    Ok(Ok(i)) => IpfsInfo {
                        id: i.id,
                        addresses: i.addresses.iter().map(ToString::to_string).collect(),
                        error: String::new(),
                    },
                    Ok(Err(e)) => IpfsInfo {
                        error: e.to_string(),
                        ..IpfsInfo::default()
                    },
                    Err(_) => IpfsInfo {
                        error: "the IPFS daemon did not answer in time".into(),
                        ..IpfsInfo::default()
                    },
                })
            }
            None => None,
        };
        IdInfo {
            ipfs,
            id: self.peer_id.to_string(),
            peername: self.peername.clone(),
            version: VERSION.into(),
            rpc_protocol_version: RPC_PROTOCOL_VERSION.into(),
            cluster_peers: alive(&self.monitor, self.peer_id)
                .iter()
                .map(ToString::to_string)
                .collect(),
            addresses: addrs
                .into_iter()
                .map(|a| a.with_p2p(self.peer_id).unwrap_or_else(|a| a).to_string())
                .collect(),
        }
    }
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<Vec<u8>>, String> {
    serde_ipld_dagcbor::to_vec(v)
        .map(|b| vec![b])
        .map_err(|e| e.to_string())
}

fn registry(info: Arc<Info>) -> rpc::Registry {
    let mut reg = rpc::Registry::default();
    let i = info.clone();
    reg.register(
        "Cluster.ID",
        rpc::Policy::Open,
        Arc::new(move |_, _| {
            let i = i.clone();
            Box::pin(async move { cbor(&i.id().await) })
        }),
    );
    reg.register(
        "Cluster.Version",
        rpc::Policy::Open,
        Arc::new(|_, _| Box::pin(async { cbor(&VERSION) })),
    );
    let i = info.clone();
    reg.register(
        "Cluster.Connections",
        rpc::Policy::Open,
        Arc::new(move |_, _| {
            let i = i.clone();
            Box::pin(async move {
                let peers = i
                    .network
                    .connected_peers()
                    .await
                    .map_err(|e| e.to_string())?;
                cbor(&peers.iter().map(ToString::to_string).collect::<Vec<_>>())
            })
        }),
    );
    status::register(&mut reg, info.status.clone());
    let i = info;
    reg.register(
        "Consensus.Heads",
        rpc::Policy::Trusted,
        Arc::new(move |_, _| {
            let heads = i.replica.heads().map_err(|e| e.to_string());
            Box::pin(async move { cbor(&heads?) })
        }),
    );
    reg
}

/// A running cluster peer.
#[derive(Debug)]
pub struct Peer {
    handle: PeerHandle,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// What the API and other components hold of a running peer: cheap to
/// clone, usable from any task. [`Peer`] dereferences to it.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    info: Arc<Info>,
    consensus: Consensus,
    pub(crate) monitor: Monitor,
    events: broadcast::Sender<PinEvent>,
    settings: Arc<PeerSettings>,
    sync_counters: Arc<consensus::SyncCounters>,
    pub(crate) ipfs: Option<Arc<IpfsBackend>>,
}

impl std::ops::Deref for Peer {
    type Target = PeerHandle;
    fn deref(&self) -> &PeerHandle {
        &self.handle
    }
}

impl std::fmt::Debug for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Info")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A handle to share with the API and other tasks.
    pub fn handle(&self) -> PeerHandle {
        self.handle.clone()
    }

    /// Stops every task and flushes the store.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Err(e) = self.handle.info.replica.flush() {
            warn!(error = %e, "flushing the pinset at shutdown");
        }
    }
}

impl Peer {
    /// Ends every task at once, with no shutdown work (no final batch
    /// commit, no flush): what a crash leaves, for tests of recovery.
    #[doc(hidden)]
    pub async fn crash_for_tests(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl PeerHandle {
    /// Serves the REST API of this peer (`api.restapi`) until `shutdown`
    /// completes; returns the bound address (port 0 picks one) and the task.
    pub async fn serve_api(
        &self,
        cfg: api::server::RestConfig,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(std::net::SocketAddr, JoinHandle<()>)> {
        api::server::serve(Arc::new(self.clone()), cfg, shutdown).await
    }

    /// [`PeerHandle::serve_api`] on 127.0.0.1 with a random port and Go's
    /// other defaults, until the process ends (tests, examples).
    pub async fn serve_api_on_loopback(&self) -> std::io::Result<std::net::SocketAddr> {
        let cfg = api::server::RestConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..api::server::RestConfig::default()
        };
        Ok(self.serve_api(cfg, std::future::pending()).await?.0)
    }

    /// What this peer answers status requests with.
    pub(crate) fn status_local(&self) -> &status::Local {
        &self.info.status
    }

    /// The network task's handle.
    pub(crate) fn network(&self) -> &Network {
        &self.info.network
    }

    /// This peer's ID.
    pub fn id(&self) -> PeerId {
        self.info.peer_id
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &PeerSettings {
        &self.settings
    }

    /// Addresses others can dial, with `/p2p/<id>`.
    pub async fn addresses(&self) -> Result<Vec<Multiaddr>, PeerError> {
        let id = self.id();
        Ok(self
            .info
            .network
            .listen_addrs()
            .await?
            .into_iter()
            .map(|a| a.with_p2p(id).unwrap_or_else(|a| a))
            .collect())
    }

    /// What `Cluster.ID` says about this peer.
    pub async fn id_info(&self) -> IdInfo {
        self.info.id().await
    }

    /// Connects to another peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), PeerError> {
        self.info.network.dial(addr).await
    }

    /// Writes `cid`'s record as is, allocations included (placement is
    /// [`PeerHandle::pin`]'s); returns once the change is durable here.
    pub(crate) async fn write_pin(&self, pin: Pin) -> Result<(), PeerError> {
        self.consensus.submit(Write::Pin(pin)).await
    }

    /// Unpins `cid`; returns once the change is durable here.
    pub async fn unpin(&self, cid: Cid) -> Result<(), PeerError> {
        self.consensus.submit(Write::Unpin(cid)).await
    }

    /// The pin for `cid`, if pinned.
    pub fn get(&self, cid: &Cid) -> Result<Option<Pin>, PeerError> {
        Ok(self.info.replica.get(cid)?)
    }

    /// The replicated pinset.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.info.replica
    }

    /// Pinset changes, local and remote, once durable.
    pub fn subscribe(&self) -> broadcast::Receiver<PinEvent> {
        self.events.subscribe()
    }

    /// Cluster peers alive according to their `ping` metrics, self included.
    pub fn peers(&self) -> Vec<PeerId> {
        alive(&self.monitor, self.id())
    }

    /// Asks another peer for its ID over RPC.
    pub async fn remote_id(&self, peer: PeerId) -> Result<IdInfo, PeerError> {
        let mut control = self.info.network.streams();
        let answers = rpc::call(&mut control, peer, "Cluster.ID", vec![]).await?;
        let first = answers.first().ok_or_else(|| PeerError::Remote {
            peer: peer.to_string(),
            message: "empty answer".into(),
        })?;
        serde_ipld_dagcbor::from_slice(first).map_err(|e| PeerError::Remote {
            peer: peer.to_string(),
            message: e.to_string(),
        })
    }

    /// Peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, PeerError> {
        self.info.network.connected_peers().await
    }

    /// What the sync loop has done since start.
    pub fn sync_stats(&self) -> consensus::SyncStats {
        self.sync_counters.snapshot()
    }

    /// This peer's IPFS (Kubo or the embedded node); `None` without one.
    pub fn ipfs(&self) -> Option<&Arc<IpfsBackend>> {
        self.ipfs.as_ref()
    }

    /// The pin tracker's counters; `None` for a peer without IPFS.
    pub fn tracker_stats(&self) -> Option<TrackerStats> {
        self.info.status.tracker.as_ref().map(|t| TrackerStats {
            queued: t.queued(),
            max_pins_in_flight: t.max_pins_in_flight(),
        })
    }

    /// Gossip counters of this peer's network.
    pub async fn gossip_stats(&self) -> Result<network::GossipStats, PeerError> {
        self.info.network.stats().await
    }

    /// Bytes in and out of this peer's libp2p host and their rates, per
    /// protocol ID, plus the all-substreams total under
    /// [`crate::bandwidth::TRANSPORT_KEY`] (`GET /health/bandwidth`).
    pub fn bandwidth(&self) -> api::types::BandwidthStats {
        self.info.network.bandwidth()
    }

    /// Calls any RPC method on another peer (CBOR args, CBOR answers).
    pub async fn call(
        &self,
        peer: PeerId,
        method: &str,
        args: Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, PeerError> {
        let mut control = self.info.network.streams();
        rpc::call(&mut control, peer, method, args).await
    }

    /// Syncs now from `peer` (what a late joiner does on its own after the
    /// next announcement); returns what was applied.
    pub async fn sync_from(&self, peer: PeerId) -> Result<dagsync::FetchReport, PeerError> {
        let mut control = self.info.network.streams();
        dagsync::fetch_all(&self.info.replica, &mut control, peer).await
    }

    /// A block source that asks `peer` for one block per request (what a
    /// walk falls back to when the bulk answer missed something).
    pub fn block_source(&self, peer: PeerId) -> impl crdt_dag::BlockSource + Send + Sync + 'static {
        dagsync::PeerSource {
            control: self.info.network.streams(),
            peer,
        }
    }
}

/// The `health alerts` name of a writer caught forking its chain.
pub const FORK_ALERT: &str = "fork";

/// A writer signed two deltas with one sequence number: both apply (the
/// CRDT converges either way), but auditors and operators must hear of it.
fn surface_fork(monitor: &Monitor, fork: &crdt_dag::Fork) {
    let deltas: Vec<String> = fork.deltas.iter().map(ToString::to_string).collect();
    warn!(
        writer = %fork.writer,
        seq = fork.seq,
        deltas = ?deltas,
        "a writer signed two deltas with one sequence number"
    );
    monitor.raise(
        FORK_ALERT,
        &fork.writer.to_string(),
        format!("seq {}: {}", fork.seq, deltas.join(" ")),
    );
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_of(edit: impl FnOnce(&mut serde_json::Value)) -> Result<PeerSettings, PeerError> {
        let mut v = ServiceConfig::default().to_json_value();
        edit(&mut v);
        let (cfg, _) = ServiceConfig::from_json_value(v).expect("valid service.json");
        PeerSettings::from_config(&cfg, Path::new("/tmp"), PeerId::random())
    }

    #[test]
    fn the_ipfs_connector_section_present_chooses_the_backend() {
        let s = settings_of(|v| {
            v["ipfs_connector"] = serde_json::json!({
                "ipfshttp": {"node_multiaddress": "/ip4/127.0.0.1/tcp/5001"}
            });
        })
        .unwrap();
        assert!(s.ipfs.is_some());
        let s = settings_of(|v| {
            v.as_object_mut().unwrap().remove("ipfs_connector");
        })
        .unwrap();
        assert!(s.ipfs.is_none());
        let both = settings_of(|v| {
            v["ipfs_connector"] = serde_json::json!({"ipfshttp": {}, "embedded": {}});
        })
        .unwrap_err();
        assert!(both.to_string().contains("both"), "{both}");
        let unknown = settings_of(|v| {
            v["ipfs_connector"] = serde_json::json!({"other": {}});
        })
        .unwrap_err();
        assert!(
            unknown.to_string().contains("ipfs_connector.other"),
            "{unknown}"
        );
    }

    #[test]
    fn tracker_allocator_informer_and_monitor_sections_reach_the_settings() {
        let s = settings_of(|v| {
            v["pin_tracker"] = serde_json::json!({"stateless": {"concurrent_pins": 3}});
            v["allocator"] = serde_json::json!({"balanced": {"allocate_by": ["freespace"]}});
            v["monitor"] = serde_json::json!({"pubsubmon": {"check_interval": "3s"}});
            v["cluster"]["disable_repinning"] = serde_json::json!(false);
        })
        .unwrap();
        assert_eq!(s.tracker.concurrent_pins, 3);
        assert_eq!(s.allocate_by, ["freespace"]);
        assert_eq!(s.monitor_check_interval, Duration::from_secs(3));
        assert!(!s.disable_repinning);
        let bad = settings_of(|v| {
            v["monitor"] = serde_json::json!({"pubsubmon": {"check_interval": "soon"}});
        })
        .unwrap_err();
        assert!(
            bad.to_string().contains("monitor.pubsubmon.check_interval"),
            "{bad}"
        );
    }
}
