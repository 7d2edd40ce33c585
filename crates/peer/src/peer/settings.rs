//! What a peer needs to start ([`PeerSettings`]), filled from `service.json`.

use super::*;
use crate::config::invalid;

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
    /// `cluster.connection_manager`.
    pub connection_manager: crate::network::ConnManagerConfig,
    /// `cluster.resource_manager.enabled`: at most 8 inbound connections
    /// per address (loopback excepted).
    pub limit_inbound_per_ip: bool,
    /// `cluster.enable_relay_hop`: relay circuits for other peers.
    pub relay_hop: bool,
    /// `cluster.announce_multiaddress`: this peer's external addresses.
    pub announce: Vec<Multiaddr>,
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
    /// The peerstore file (`cluster.peerstore_file`): its peers are dialed
    /// at start, and the cluster peers met are written back to it; `None`
    /// (a peer started from code, by default) remembers them in memory.
    pub peerstore: Option<PathBuf>,
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
    /// Go's defaults, read from the default `service.json` (the one place
    /// they are written), for a peer started from code: named `peer`, no
    /// private network secret, no IPFS, a temporary store.
    fn default() -> Self {
        let mut cfg = ServiceConfig::default();
        cfg.cluster.peername = "peer".into();
        cfg.cluster.secret = None;
        cfg.ipfs_connector = None;
        let mut s = Self::from_config(&cfg, Path::new("."), PeerId::random())
            .expect("the default service.json is valid");
        s.data_dir = None;
        s.peerstore = None;
        s
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
                return Err(invalid(
                    "ipfs_connector",
                    "has both an ipfshttp and an embedded section: the section present chooses the IPFS backend, keep one",
                )
                .into());
            }
            if let Some(other) = names
                .iter()
                .find(|n| !matches!(**n, "ipfshttp" | "embedded"))
            {
                return Err(invalid(
                    format!("ipfs_connector.{other}"),
                    "unknown IPFS connector (ipfshttp: a Kubo daemon; embedded: the node inside the peer)",
                )
                .into());
            }
        }
        let ipfs = match cfg.ipfs_connector.as_ref().and_then(|v| v.get("ipfshttp")) {
            Some(section) => Some(
                ipfs::KuboConfig::from_json(section)
                    .map_err(|e| invalid("ipfs_connector.ipfshttp", e.to_string()))?,
            ),
            None => None,
        };
        let embedded = cfg.embedded_section()?;
        let stateless = cfg.tracker_section()?;
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
                .map_err(|e| invalid("monitor.pubsubmon.check_interval", e.to_string()))?,
            None => Duration::from_secs(15),
        };
        Ok(Self {
            peername: c.peername.clone(),
            listen: c.listen_multiaddress.clone(),
            secret: c.secret,
            peer_addresses: c.peer_addresses.clone(),
            mdns_interval: c.mdns_interval,
            ping_interval: c.monitor_ping_interval,
            connection_manager: crate::network::ConnManagerConfig {
                high_water: c.connection_manager.high_water,
                low_water: c.connection_manager.low_water,
                grace_period: c.connection_manager.grace_period,
            },
            limit_inbound_per_ip: c.resource_manager.enabled,
            relay_hop: c.enable_relay_hop,
            announce: c.announce_multiaddress.clone(),
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
                checkpoint_interval: crdt.checkpoint_interval,
                checkpoint_join: crdt.checkpoint_join,
                announce_blocks: consensus::ANNOUNCE_BLOCKS_BYTES,
            },
            data_dir: Some(cfg.sled_path(config_dir)),
            peerstore: Some(cfg.peerstore_path(config_dir)),
            ipfs,
            connect_swarms_delay: embedded
                .as_ref()
                .map_or(ipfs::DEFAULT_CONNECT_SWARMS_DELAY, |e| {
                    e.connect_swarms_delay
                }),
            embedded: embedded.map(|e| e.node),
            tracker,
            allocate_by: cfg.allocator_section()?.allocate_by,
            informer: cfg.informer_section()?,
            pin_recover_interval: c.pin_recover_interval,
            state_sync_interval: c.state_sync_interval,
            disable_repinning: c.disable_repinning,
            pin_only_on_untrusted_peers: c.pin_only_on_untrusted_peers,
            monitor_check_interval,
        })
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
    fn code_defaults_are_the_service_json_defaults() {
        let d = PeerSettings::default();
        let cfg = ServiceConfig::default();
        assert_eq!(d.listen, cfg.cluster.listen_multiaddress);
        assert_eq!(d.ping_interval, cfg.cluster.monitor_ping_interval);
        assert_eq!((d.replication_min, d.replication_max), (-1, -1));
        assert_eq!(d.cluster_name, "ipfs-cluster");
        assert_eq!(d.consensus.max_queue_size, 50_000);
        assert!(matches!(d.trust, TrustPolicy::All));
        assert!(d.secret.is_none() && d.ipfs.is_none() && d.embedded.is_none());
        assert!(d.data_dir.is_none() && d.peerstore.is_none());
        assert_eq!(d.peername, "peer");
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
