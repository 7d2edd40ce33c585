//! `service.json`: the peer's configuration, read and written with Go IPFS
//! Cluster's section and key names, defaults, duration format and
//! `CLUSTER_*` environment overrides (see `spec/config.md`).
//!
//! Typed here: `cluster`, `consensus.crdt` and `datastore.sled`. Every other
//! Go section (`api`, `ipfs_connector`, `pin_tracker`, `monitor`,
//! `allocator`, `informer`, `observations`, `state`, and Go's own datastores)
//! is kept verbatim as JSON and written back unchanged; the components that
//! use one read it through a typed view (`components.rs`, `ipfs::KuboConfig`,
//! `api::server::RestConfig`). Unknown keys inside
//! the typed sections are reported as [`ConfigWarning`]s and kept; invalid
//! values are [`ConfigError::Invalid`] errors naming the key.
//!
//! Also here: [`default_config_dir`], and the file names of the folder.

mod components;
mod embedded;
mod env;
mod error;
mod reader;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crdt_dag::{TrustPolicy, WriterId};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde_json::{Map, Value, json};

pub use cluster_types::duration::{format_go_duration, parse_go_duration};
pub use components::*;
pub use embedded::EmbeddedSection;
pub use error::{ConfigError, ConfigWarning, WarningKind};

use crate::identity::Identity;
use reader::{Obj, invalid};

/// `Result` with [`ConfigError`].
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The configuration file in the config folder.
pub const SERVICE_FILE: &str = "service.json";
/// The identity file in the config folder.
pub const IDENTITY_FILE: &str = "identity.json";
/// `cluster.peerstore_file` when unset.
pub const DEFAULT_PEERSTORE_FILE: &str = "peerstore";
/// `datastore.sled.folder` when unset.
pub const DEFAULT_SLED_FOLDER: &str = "sled";
/// `consensus.crdt.cluster_name` when unset.
pub const DEFAULT_CLUSTER_NAME: &str = "ipfs-cluster";
/// The default swarm port (TCP and UDP).
pub const DEFAULT_SWARM_PORT: u16 = 9096;

const GO_DATASTORES: [&str; 4] = ["pebble", "badger3", "badger", "leveldb"];

/// The config folder: `$IPFS_CLUSTER_PATH` if set and not empty, else
/// `~/.ipfs-cluster` (`./.ipfs-cluster` when `HOME` is unset), as Go does.
pub fn default_config_dir() -> PathBuf {
    config_dir_from(
        std::env::var_os("IPFS_CLUSTER_PATH"),
        std::env::var_os("HOME"),
    )
}

fn config_dir_from(
    cluster_path: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    match cluster_path {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => home
            .filter(|h| !h.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
            .join(".ipfs-cluster"),
    }
}

/// This machine's host name, Go's default `peername`: the kernel's, else
/// `$HOSTNAME`, else `"peer"`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "peer".to_owned())
}

/// A fresh random 32-byte cluster secret.
pub fn random_secret() -> [u8; 32] {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The whole `service.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// `cluster`: the peer itself.
    pub cluster: ClusterConfig,
    /// `consensus`: only `crdt` (a `raft` section is refused).
    pub consensus: ConsensusConfig,
    /// `api` (`restapi`, `pinsvcapi`, `ipfsproxy`): kept verbatim; `restapi` is read by the REST server.
    pub api: Option<Value>,
    /// `ipfs_connector` (`ipfshttp`): kept verbatim; read as `ipfs::KuboConfig`.
    pub ipfs_connector: Option<Value>,
    /// `state`: kept verbatim (Go writes nothing there today).
    pub state: Option<Value>,
    /// `pin_tracker` (`stateless`): kept verbatim; see [`ServiceConfig::tracker_section`].
    pub pin_tracker: Option<Value>,
    /// `monitor` (`pubsubmon`): kept verbatim; `check_interval` is read.
    pub monitor: Option<Value>,
    /// `allocator` (`balanced`): kept verbatim; see [`ServiceConfig::allocator_section`].
    pub allocator: Option<Value>,
    /// `informer` (`disk`, `tags`, `pinqueue`): kept verbatim; see [`ServiceConfig::informer_section`].
    pub informer: Option<Value>,
    /// `observations` (`metrics`, `tracing`): kept verbatim, not used yet.
    pub observations: Option<Value>,
    /// `datastore`: ours is `sled`; Go's are kept, unused.
    pub datastore: DatastoreConfig,
    /// Unknown top-level keys, written back as they were.
    pub extra: Map<String, Value>,
}

/// The `cluster` section (Go's `cluster_config.go`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// `peername`: a human name. **Default:** the host name.
    pub peername: String,
    /// `secret`: the libp2p private-network key, 64 hex characters in the
    /// file. `None` (`""` in the file) runs an open network.
    /// **Default:** 32 random bytes.
    pub secret: Option<[u8; 32]>,
    /// `leave_on_shutdown`. **Default:** false.
    pub leave_on_shutdown: bool,
    /// `listen_multiaddress`: swarm listen addresses. **Default:**
    /// `/ip4/0.0.0.0/tcp/9096` and `/ip4/0.0.0.0/udp/9096/quic-v1`
    /// (Go's `/quic` is read as `/quic-v1`).
    pub listen_multiaddress: Vec<Multiaddr>,
    /// `announce_multiaddress`: addresses to announce instead of the
    /// observed ones. **Default:** empty.
    pub announce_multiaddress: Vec<Multiaddr>,
    /// `no_announce_multiaddress`: addresses never announced. **Default:** empty.
    pub no_announce_multiaddress: Vec<Multiaddr>,
    /// `enable_relay_hop`. **Default:** true.
    pub enable_relay_hop: bool,
    /// `connection_manager`.
    pub connection_manager: ConnMgrConfig,
    /// `resource_manager`.
    pub resource_manager: ResourceMgrConfig,
    /// `pubsub`: gossipsub tuning.
    pub pubsub: PubSubConfig,
    /// `dial_peer_timeout`. **Default:** 3s.
    pub dial_peer_timeout: Duration,
    /// `state_sync_interval`. **Default:** 5m.
    pub state_sync_interval: Duration,
    /// `pin_recover_interval`. **Default:** 12m.
    pub pin_recover_interval: Duration,
    /// `replication_factor_min`: -1 is "every peer". **Default:** -1.
    pub replication_factor_min: i32,
    /// `replication_factor_max`: -1 is "every peer". **Default:** -1.
    pub replication_factor_max: i32,
    /// `monitor_ping_interval` (the ping metric lives twice as long).
    /// **Default:** 15s.
    pub monitor_ping_interval: Duration,
    /// `peer_watch_interval`. **Default:** 5s.
    pub peer_watch_interval: Duration,
    /// `mdns_interval`: zero disables mDNS. **Default:** 10s.
    pub mdns_interval: Duration,
    /// `disable_repinning`. **Default:** true.
    pub disable_repinning: bool,
    /// `follower_mode`: never write to the pinset. **Default:** false.
    pub follower_mode: bool,
    /// `peerstore_file`, relative to the config folder. **Default:** `peerstore`.
    pub peerstore_file: String,
    /// `peer_addresses`: bootstrap addresses (with `/p2p/<id>`). **Default:** empty.
    pub peer_addresses: Vec<Multiaddr>,
    /// `pin_only_on_trusted_peers`. **Default:** false.
    pub pin_only_on_trusted_peers: bool,
    /// `pin_only_on_untrusted_peers`. **Default:** false.
    pub pin_only_on_untrusted_peers: bool,
    /// Keys of `cluster` this peer does not know, written back as they were.
    pub extra: Map<String, Value>,
}

/// `cluster.connection_manager`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnMgrConfig {
    /// `high_water`: trim connections above this. **Default:** 400.
    pub high_water: u32,
    /// `low_water`: trim down to this. **Default:** 100.
    pub low_water: u32,
    /// `grace_period`: new connections are kept at least this long.
    /// **Default:** 2m.
    pub grace_period: Duration,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// `cluster.resource_manager`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceMgrConfig {
    /// `enabled`. **Default:** true.
    pub enabled: bool,
    /// `memory_limit_bytes`: 0 is 25% of RAM, at least 1 GiB. **Default:** 0.
    pub memory_limit_bytes: u64,
    /// `file_descriptors_limit`: 0 is half the process limit. **Default:** 0.
    pub file_descriptors_limit: u64,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// `cluster.pubsub`: gossipsub tuning.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubConfig {
    /// `seen_messages_ttl`. **Default:** 30m.
    pub seen_messages_ttl: Duration,
    /// `heartbeat_interval`. **Default:** 10s.
    pub heartbeat_interval: Duration,
    /// `d_factor`: multiplies the mesh degree defaults. **Default:** 4.
    pub d_factor: u32,
    /// `history_gossip`. **Default:** 2.
    pub history_gossip: u32,
    /// `history_length`. **Default:** 6.
    pub history_length: u32,
    /// `flood_publish`. **Default:** false.
    pub flood_publish: bool,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// The `consensus` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConsensusConfig {
    /// `consensus.crdt`.
    pub crdt: CrdtConfig,
    /// Unknown `consensus.*` keys, kept.
    pub extra: Map<String, Value>,
}

/// `consensus.crdt` (Go's `consensus/crdt/config.go`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrdtConfig {
    /// `cluster_name`: deltas and gossip of another cluster are refused.
    /// **Default:** `ipfs-cluster`.
    pub cluster_name: String,
    /// `trusted_peers`: `["*"]` (anyone) or peer IDs. Missing from the file
    /// means nobody (as in Go). **Default:** `["*"]`.
    pub trusted_peers: Vec<String>,
    /// `batching`.
    pub batching: BatchingConfig,
    /// `repair_interval`: zero disables. **Default:** 1h.
    pub repair_interval: Duration,
    /// `rebroadcast_interval` (written only when not the default).
    /// **Default:** 1m.
    pub rebroadcast_interval: Duration,
    /// `peerset_metric` (Go hidden key, written only when not the default).
    /// **Default:** `ping`.
    pub peerset_metric: String,
    /// `datastore_namespace` (Go hidden key, written only when not the
    /// default; unused by sled). **Default:** `/c`.
    pub datastore_namespace: String,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// `consensus.crdt.batching`: batching is on when both size and age are > 0.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchingConfig {
    /// `max_batch_size`. **Default:** 0.
    pub max_batch_size: usize,
    /// `max_batch_age`. **Default:** 0s.
    pub max_batch_age: Duration,
    /// `max_queue_size` (written only when not the default). **Default:** 50000.
    pub max_queue_size: usize,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// The `datastore` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DatastoreConfig {
    /// `datastore.sled`: where this peer keeps its state.
    pub sled: SledConfig,
    /// Go's datastores (`pebble`, `badger3`, `badger`, `leveldb`, unused)
    /// and unknown keys, kept as they were.
    pub extra: Map<String, Value>,
}

/// `datastore.sled`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SledConfig {
    /// `folder`, relative to the config folder. **Default:** `sled`.
    pub folder: String,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------- defaults

const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/9096", "/ip4/0.0.0.0/udp/9096/quic-v1"];

impl Default for ServiceConfig {
    /// Go's defaults, with a fresh random secret and this host's name.
    fn default() -> Self {
        let sections = go_default_sections();
        let section = |name: &str| sections.get(name).cloned();
        Self {
            cluster: ClusterConfig::default(),
            consensus: ConsensusConfig::default(),
            api: section("api"),
            ipfs_connector: section("ipfs_connector"),
            state: None,
            pin_tracker: section("pin_tracker"),
            monitor: section("monitor"),
            allocator: section("allocator"),
            informer: section("informer"),
            observations: section("observations"),
            datastore: DatastoreConfig::default(),
            extra: Map::new(),
        }
    }
}

impl Default for ClusterConfig {
    /// Go's defaults, with a fresh random secret and this host's name.
    fn default() -> Self {
        Self {
            peername: hostname(),
            secret: Some(random_secret()),
            leave_on_shutdown: false,
            listen_multiaddress: DEFAULT_LISTEN
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            announce_multiaddress: Vec::new(),
            no_announce_multiaddress: Vec::new(),
            enable_relay_hop: true,
            connection_manager: ConnMgrConfig::default(),
            resource_manager: ResourceMgrConfig::default(),
            pubsub: PubSubConfig::default(),
            dial_peer_timeout: Duration::from_secs(3),
            state_sync_interval: Duration::from_secs(5 * 60),
            pin_recover_interval: Duration::from_secs(12 * 60),
            replication_factor_min: -1,
            replication_factor_max: -1,
            monitor_ping_interval: Duration::from_secs(15),
            peer_watch_interval: Duration::from_secs(5),
            mdns_interval: Duration::from_secs(10),
            disable_repinning: true,
            follower_mode: false,
            peerstore_file: DEFAULT_PEERSTORE_FILE.to_owned(),
            peer_addresses: Vec::new(),
            pin_only_on_trusted_peers: false,
            pin_only_on_untrusted_peers: false,
            extra: Map::new(),
        }
    }
}

impl fmt::Debug for ClusterConfig {
    /// Like a derived `Debug`, with the secret redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("peername", &self.peername)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .field("leave_on_shutdown", &self.leave_on_shutdown)
            .field("listen_multiaddress", &self.listen_multiaddress)
            .field("announce_multiaddress", &self.announce_multiaddress)
            .field("no_announce_multiaddress", &self.no_announce_multiaddress)
            .field("enable_relay_hop", &self.enable_relay_hop)
            .field("connection_manager", &self.connection_manager)
            .field("resource_manager", &self.resource_manager)
            .field("pubsub", &self.pubsub)
            .field("dial_peer_timeout", &self.dial_peer_timeout)
            .field("state_sync_interval", &self.state_sync_interval)
            .field("pin_recover_interval", &self.pin_recover_interval)
            .field("replication_factor_min", &self.replication_factor_min)
            .field("replication_factor_max", &self.replication_factor_max)
            .field("monitor_ping_interval", &self.monitor_ping_interval)
            .field("peer_watch_interval", &self.peer_watch_interval)
            .field("mdns_interval", &self.mdns_interval)
            .field("disable_repinning", &self.disable_repinning)
            .field("follower_mode", &self.follower_mode)
            .field("peerstore_file", &self.peerstore_file)
            .field("peer_addresses", &self.peer_addresses)
            .field("pin_only_on_trusted_peers", &self.pin_only_on_trusted_peers)
            .field(
                "pin_only_on_untrusted_peers",
                &self.pin_only_on_untrusted_peers,
            )
            .field("extra", &self.extra)
            .finish()
    }
}

impl Default for ConnMgrConfig {
    fn default() -> Self {
        Self {
            high_water: 400,
            low_water: 100,
            grace_period: Duration::from_secs(120),
            extra: Map::new(),
        }
    }
}

impl Default for ResourceMgrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            memory_limit_bytes: 0,
            file_descriptors_limit: 0,
            extra: Map::new(),
        }
    }
}

impl Default for PubSubConfig {
    fn default() -> Self {
        Self {
            seen_messages_ttl: Duration::from_secs(30 * 60),
            heartbeat_interval: Duration::from_secs(10),
            d_factor: 4,
            history_gossip: 2,
            history_length: 6,
            flood_publish: false,
            extra: Map::new(),
        }
    }
}

const DEFAULT_REBROADCAST: Duration = Duration::from_secs(60);
const DEFAULT_PEERSET_METRIC: &str = "ping";
const DEFAULT_DATASTORE_NAMESPACE: &str = "/c";
const DEFAULT_MAX_QUEUE_SIZE: usize = 50_000;

impl Default for CrdtConfig {
    fn default() -> Self {
        Self {
            cluster_name: DEFAULT_CLUSTER_NAME.to_owned(),
            trusted_peers: vec!["*".to_owned()],
            batching: BatchingConfig::default(),
            repair_interval: Duration::from_secs(3600),
            rebroadcast_interval: DEFAULT_REBROADCAST,
            peerset_metric: DEFAULT_PEERSET_METRIC.to_owned(),
            datastore_namespace: DEFAULT_DATASTORE_NAMESPACE.to_owned(),
            extra: Map::new(),
        }
    }
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 0,
            max_batch_age: Duration::ZERO,
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            extra: Map::new(),
        }
    }
}

impl Default for SledConfig {
    fn default() -> Self {
        Self {
            folder: DEFAULT_SLED_FOLDER.to_owned(),
            extra: Map::new(),
        }
    }
}

/// Go's default JSON for the sections kept verbatim (Go v1.1.6 `init`).
fn go_default_sections() -> Map<String, Value> {
    let cors = json!({
        "cors_allowed_origins": ["*"],
        "cors_allowed_methods": ["GET"],
        "cors_allowed_headers": [],
        "cors_exposed_headers": [
            "Content-Type",
            "X-Stream-Output",
            "X-Chunked-Output",
            "X-Content-Length"
        ],
        "cors_allow_credentials": true,
        "cors_max_age": "0s"
    });
    let http_api = |listen: &str| {
        let mut api = json!({
            "http_listen_multiaddress": listen,
            "read_timeout": "0s",
            "read_header_timeout": "5s",
            "write_timeout": "0s",
            "idle_timeout": "2m0s",
            "max_header_bytes": 4096,
            "basic_auth_credentials": null,
            "http_log_file": "",
            "headers": {}
        });
        if let (Value::Object(api), Value::Object(cors)) = (&mut api, cors.clone()) {
            api.extend(cors);
        }
        api
    };
    let all = json!({
        "api": {
            "ipfsproxy": {
                "listen_multiaddress": "/ip4/127.0.0.1/tcp/9095",
                "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
                "log_file": "",
                "read_timeout": "0s",
                "read_header_timeout": "5s",
                "write_timeout": "0s",
                "idle_timeout": "1m0s",
                "max_header_bytes": 4096
            },
            "pinsvcapi": http_api("/ip4/127.0.0.1/tcp/9097"),
            "restapi": http_api("/ip4/127.0.0.1/tcp/9094")
        },
        "ipfs_connector": {
            "ipfshttp": {
                "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
                "connect_swarms_delay": "30s",
                "ipfs_request_timeout": "5m0s",
                "pin_timeout": "2m0s",
                "unpin_timeout": "3h0m0s",
                "repogc_timeout": "24h0m0s",
                "informer_trigger_interval": 0
            }
        },
        "pin_tracker": {
            "stateless": {
                "concurrent_pins": 10,
                "priority_pin_max_age": "24h0m0s",
                "priority_pin_max_retries": 5
            }
        },
        "monitor": {
            "pubsubmon": { "check_interval": "15s" }
        },
        "allocator": {
            "balanced": { "allocate_by": ["tag:group", "freespace"] }
        },
        "informer": {
            "disk": { "metric_ttl": "30s", "metric_type": "freespace" },
            "pinqueue": { "metric_ttl": "30s", "weight_bucket_size": 100000 },
            "tags": { "metric_ttl": "30s", "tags": { "group": "default" } }
        },
        "observations": {
            "metrics": {
                "enable_stats": false,
                "prometheus_endpoint": "/ip4/127.0.0.1/tcp/8888",
                "reporting_interval": "30s"
            },
            "tracing": {
                "enable_tracing": false,
                "jaeger_agent_endpoint": "/ip4/0.0.0.0/udp/6831",
                "sampling_prob": 0.3,
                "service_name": "cluster-daemon"
            }
        }
    });
    match all {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

// ---------------------------------------------------------------- reading

/// The verbatim top-level sections, in Go's order.
const VERBATIM_SECTIONS: [&str; 8] = [
    "api",
    "ipfs_connector",
    "state",
    "pin_tracker",
    "monitor",
    "allocator",
    "informer",
    "observations",
];

impl ServiceConfig {
    /// Reads `service.json` at `path`: the config and what the user should
    /// be told about it (unknown keys, Go settings not used, rewritten
    /// values). Environment overrides are not applied: see [`Self::apply_env`].
    ///
    /// # Errors
    ///
    /// The file can't be read or is not JSON; a value is invalid (the error
    /// names the key); the config uses raft or a remote `source`.
    pub fn load(path: impl AsRef<Path>) -> Result<(Self, Vec<ConfigWarning>)> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|source| ConfigError::Json {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_value(value)
    }

    /// Parses the text of a `service.json`.
    ///
    /// # Errors
    ///
    /// As [`Self::load`].
    pub fn from_json_str(text: &str) -> Result<(Self, Vec<ConfigWarning>)> {
        let value: Value = serde_json::from_str(text).map_err(|source| ConfigError::Json {
            path: PathBuf::from(SERVICE_FILE),
            source,
        })?;
        Self::from_json_value(value)
    }

    /// Reads a parsed `service.json`.
    ///
    /// # Errors
    ///
    /// As [`Self::load`].
    pub fn from_json_value(value: Value) -> Result<(Self, Vec<ConfigWarning>)> {
        let mut warnings = Vec::new();
        let mut top = Obj::new("", value)?;
        if let Some(url) = top.string("source")?.filter(|s| !s.is_empty()) {
            return Err(ConfigError::RemoteSource { url });
        }
        let Some(cluster) = top.object("cluster")? else {
            return Err(invalid(
                "cluster",
                "section missing (an `init` writes a complete service.json)",
            ));
        };
        let cluster = parse_cluster(cluster, &mut warnings)?;
        let consensus = match top.object("consensus")? {
            Some(obj) => parse_consensus(obj, &mut warnings)?,
            None => ConsensusConfig::default(),
        };
        let mut verbatim: [Option<Value>; 8] = Default::default();
        for (slot, name) in verbatim.iter_mut().zip(VERBATIM_SECTIONS) {
            if let Some(v) = top.take(name) {
                if !v.is_object() {
                    return Err(invalid(name, "expected a JSON object"));
                }
                *slot = Some(v);
            }
        }
        let datastore = match top.object("datastore")? {
            Some(obj) => parse_datastore(obj, &mut warnings)?,
            None => DatastoreConfig::default(),
        };
        let extra = top.finish(&mut warnings);
        let [
            api,
            ipfs_connector,
            state,
            pin_tracker,
            monitor,
            allocator,
            informer,
            observations,
        ] = verbatim;
        let cfg = Self {
            cluster,
            consensus,
            api,
            ipfs_connector,
            state,
            pin_tracker,
            monitor,
            allocator,
            informer,
            observations,
            datastore,
            extra,
        };
        cfg.validate()?;
        Ok((cfg, warnings))
    }

    /// Checks every rule Go checks (and that durations and counts are in
    /// range). Load and save call it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first offending key.
    pub fn validate(&self) -> Result<()> {
        validate_cluster(&self.cluster)?;
        validate_crdt(&self.consensus.crdt)?;
        if self.datastore.sled.folder.is_empty() {
            return Err(invalid("datastore.sled.folder", "must not be empty"));
        }
        Ok(())
    }

    // ------------------------------------------------------------ writing

    /// The config as `service.json` JSON: Go's key order, Go's omitted
    /// defaults, unknown keys after the known ones.
    pub fn to_json_value(&self) -> Value {
        let mut top = Map::new();
        top.insert("cluster".into(), cluster_to_json(&self.cluster));
        let mut consensus = Map::new();
        consensus.insert("crdt".into(), crdt_to_json(&self.consensus.crdt));
        consensus.extend(self.consensus.extra.clone());
        top.insert("consensus".into(), Value::Object(consensus));
        let verbatim = [
            &self.api,
            &self.ipfs_connector,
            &self.state,
            &self.pin_tracker,
            &self.monitor,
            &self.allocator,
            &self.informer,
            &self.observations,
        ];
        for (name, section) in VERBATIM_SECTIONS.iter().zip(verbatim) {
            if let Some(v) = section {
                top.insert((*name).into(), v.clone());
            }
        }
        let mut datastore = Map::new();
        let mut sled = Map::new();
        sled.insert("folder".into(), self.datastore.sled.folder.clone().into());
        sled.extend(self.datastore.sled.extra.clone());
        datastore.insert("sled".into(), Value::Object(sled));
        datastore.extend(self.datastore.extra.clone());
        top.insert("datastore".into(), Value::Object(datastore));
        top.extend(self.extra.clone());
        Value::Object(top)
    }

    /// The config as pretty JSON, indented as Go writes it (two spaces).
    pub fn to_json_string(&self) -> String {
        // Serializing a `Value` can't fail.
        serde_json::to_string_pretty(&self.to_json_value()).unwrap_or_default()
    }

    /// Validates and writes the config to `path` (mode 0600, replaced
    /// atomically; the folder is created, mode 0700, if missing).
    ///
    /// # Errors
    ///
    /// The config is invalid, or the file can't be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.validate()?;
        write_private_file(path.as_ref(), self.to_json_string().as_bytes())
    }

    // ------------------------------------------------------------ helpers

    /// Applies `CLUSTER_*` environment overrides (Go's `envconfig` names,
    /// listed in `spec/config.md`), e.g. `apply_env(std::env::vars())`.
    /// Variables that name nothing this peer applies are logged as warnings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Env`] naming the variable whose value can't be used;
    /// the config is unchanged then.
    pub fn apply_env(&mut self, vars: impl Iterator<Item = (String, String)>) -> Result<()> {
        for w in self.apply_env_with_warnings(vars)? {
            tracing::warn!("{w}");
        }
        Ok(())
    }

    /// As [`Self::apply_env`], returning the warnings instead of logging them.
    ///
    /// # Errors
    ///
    /// As [`Self::apply_env`].
    pub fn apply_env_with_warnings(
        &mut self,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<Vec<ConfigWarning>> {
        env::apply(self, vars)
    }

    /// Replaces every TCP and UDP port of the listen addresses with a free
    /// one (`init --randomports`): `cluster.listen_multiaddress`, and, as Go
    /// does, `api.restapi.http_listen_multiaddress`,
    /// `api.pinsvcapi.http_listen_multiaddress` and
    /// `api.ipfsproxy.listen_multiaddress` when present, and ours:
    /// `ipfs_connector.embedded.listen_multiaddress`.
    ///
    /// # Errors
    ///
    /// No free port could be bound, or an API address is not a multiaddr.
    pub fn with_random_ports(&mut self) -> Result<()> {
        let mut held = HeldPorts::default();
        if let Some(Value::Object(conn)) = &mut self.ipfs_connector
            && let Some(Value::Object(section)) = conn.get_mut("embedded")
            && let Some(v) = section.get_mut("listen_multiaddress")
        {
            randomize_json_addrs(v, "ipfs_connector.embedded.listen_multiaddress", &mut held)?;
        }
        self.with_random_ports_held(held)
    }

    fn with_random_ports_held(&mut self, mut held: HeldPorts) -> Result<()> {
        let listen = std::mem::take(&mut self.cluster.listen_multiaddress);
        self.cluster.listen_multiaddress = listen
            .iter()
            .map(|a| held.randomize(a, "cluster.listen_multiaddress"))
            .collect::<Result<_>>()?;
        if let Some(Value::Object(api)) = &mut self.api {
            for (component, key) in [
                ("restapi", "http_listen_multiaddress"),
                ("pinsvcapi", "http_listen_multiaddress"),
                ("ipfsproxy", "listen_multiaddress"),
            ] {
                let path = format!("api.{component}.{key}");
                if let Some(Value::Object(section)) = api.get_mut(component)
                    && let Some(v) = section.get_mut(key)
                {
                    randomize_json_addrs(v, &path, &mut held)?;
                }
            }
        }
        Ok(())
    }

    /// Chooses the embedded IPFS node (`ipfs_connector.embedded`, with its
    /// defaults) instead of Go's Kubo connector: what `init` writes.
    pub fn use_embedded_ipfs(&mut self) {
        self.ipfs_connector = Some(serde_json::json!({
            "embedded": EmbeddedSection::default().to_json()
        }));
    }

    /// Trusts exactly these peers (`init --peers`): `trusted_peers` becomes
    /// their IDs, no longer `"*"`.
    pub fn set_trusted_peers(&mut self, ids: impl IntoIterator<Item = PeerId>) {
        let mut seen = BTreeSet::new();
        self.consensus.crdt.trusted_peers = ids
            .into_iter()
            .map(|id| id.to_base58())
            .filter(|id| seen.insert(id.clone()))
            .collect();
    }

    /// Adds peers to `trusted_peers` (`daemon --bootstrap` without
    /// `--no-trust`); nothing changes when everyone is trusted already.
    pub fn add_trusted_peers(&mut self, ids: impl IntoIterator<Item = PeerId>) {
        let peers = &mut self.consensus.crdt.trusted_peers;
        if peers.iter().any(|p| p == "*") {
            return;
        }
        for id in ids {
            let id = id.to_base58();
            if !peers.contains(&id) {
                peers.push(id);
            }
        }
    }

    /// Who may write to the pinset: `["*"]` is everyone; otherwise the
    /// ed25519 peer IDs of `trusted_peers` (others can't sign deltas and are
    /// left out). The local peer is not added: Go trusts itself implicitly,
    /// so callers add their own ID when they check their own writes.
    pub fn trust_policy(&self) -> TrustPolicy {
        let peers = &self.consensus.crdt.trusted_peers;
        if peers.iter().any(|p| p.trim() == "*") {
            return TrustPolicy::All;
        }
        TrustPolicy::Only(
            peers
                .iter()
                .filter_map(|p| p.trim().parse::<WriterId>().ok())
                .collect(),
        )
    }

    /// The peerstore file, resolved against the config folder.
    pub fn peerstore_path(&self, config_dir: &Path) -> PathBuf {
        let file = if self.cluster.peerstore_file.is_empty() {
            DEFAULT_PEERSTORE_FILE
        } else {
            &self.cluster.peerstore_file
        };
        config_dir.join(file)
    }

    /// The sled folder, resolved against the config folder.
    pub fn sled_path(&self, config_dir: &Path) -> PathBuf {
        config_dir.join(&self.datastore.sled.folder)
    }

    /// The identity some very old Go configs (before 0.11) kept in the
    /// `cluster` section (`id`, `private_key`), if there is one. Go moved it
    /// to `identity.json` on first start; callers may do the same.
    pub fn legacy_identity(&self) -> Option<Result<Identity>> {
        let id = self.cluster.extra.get("id")?.as_str()?;
        let key = self.cluster.extra.get("private_key")?.as_str()?;
        Some(Identity::from_fields(
            id,
            key,
            "service.json cluster.id/private_key",
        ))
    }
}

fn parse_multiaddrs(
    key: &str,
    texts: Vec<String>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<Multiaddr>> {
    let mut out = Vec::with_capacity(texts.len());
    for (i, text) in texts.into_iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let addr: Multiaddr = text
            .trim()
            .parse()
            .map_err(|e| invalid(&item_key, format!("{text:?} is not a multiaddr: {e}")))?;
        let (addr, rewritten) = quic_to_v1(addr);
        if rewritten {
            warnings.push(ConfigWarning::new(
                item_key,
                WarningKind::Rewritten,
                format!(
                    "{text} uses /quic (QUIC draft-29), which this peer does not speak: \
                     read as {addr}, and saved so"
                ),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

/// Replaces `/quic` (draft-29) with `/quic-v1`; tells whether it did.
fn quic_to_v1(addr: Multiaddr) -> (Multiaddr, bool) {
    if !addr.iter().any(|p| matches!(p, Protocol::Quic)) {
        return (addr, false);
    }
    let v1 = addr
        .iter()
        .map(|p| match p {
            Protocol::Quic => Protocol::QuicV1,
            other => other,
        })
        .collect();
    (v1, true)
}

/// Decodes `cluster.secret` as Go does: 64 hex characters, or empty.
fn decode_secret(text: &str) -> Result<Option<[u8; 32]>> {
    let key = "cluster.secret";
    if text.is_empty() {
        return Ok(None);
    }
    let bytes = hex::decode(text).map_err(|e| {
        invalid(
            key,
            format!("not hexadecimal ({e}); expected 64 hex characters"),
        )
    })?;
    let len = bytes.len();
    let secret: [u8; 32] = bytes.try_into().map_err(|_| {
        invalid(
            key,
            format!("is {len} bytes, a cluster secret must be 32 bytes (64 hex characters)"),
        )
    })?;
    Ok(Some(secret))
}

fn parse_cluster(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<ClusterConfig> {
    let d = ClusterConfig {
        secret: None,
        ..ClusterConfig::default()
    };
    // Keys Go's configJSON has for the identity of Go < 0.11.
    let mut legacy = Map::new();
    for k in ["id", "private_key"] {
        if let Some(v) = obj.take(k) {
            w.push(ConfigWarning::new(
                obj.key(k),
                WarningKind::NotUsed,
                "identity of Go < 0.11 kept in service.json: ignored (the identity is \
                 identity.json), and kept when the file is saved",
            ));
            legacy.insert(k.to_owned(), v);
        }
    }
    let peername = obj.string("peername")?.filter(|s| !s.is_empty());
    let secret = decode_secret(&obj.string("secret")?.unwrap_or_default())?;
    if secret.is_none() {
        w.push(ConfigWarning::new(
            obj.key("secret"),
            WarningKind::Insecure,
            "empty: the cluster runs on an open network, any peer that knows an address \
             can join the swarm",
        ));
    }
    let leave_on_shutdown = obj.bool("leave_on_shutdown")?.unwrap_or(false);
    let listen_key = obj.key("listen_multiaddress");
    let Some(listen) = obj.strings("listen_multiaddress", true)? else {
        return Err(invalid(
            listen_key,
            "missing: at least one listen address is needed",
        ));
    };
    let listen_multiaddress = parse_multiaddrs(&listen_key, listen, w)?;
    let announce_key = obj.key("announce_multiaddress");
    let announce = obj
        .strings("announce_multiaddress", true)?
        .unwrap_or_default();
    let announce_multiaddress = parse_multiaddrs(&announce_key, announce, w)?;
    let no_announce_key = obj.key("no_announce_multiaddress");
    let no_announce = obj
        .strings("no_announce_multiaddress", true)?
        .unwrap_or_default();
    let no_announce_multiaddress = parse_multiaddrs(&no_announce_key, no_announce, w)?;
    // Go: a missing boolean is false, not its default.
    let enable_relay_hop = obj.bool("enable_relay_hop")?.unwrap_or(false);
    let connection_manager = match obj.object("connection_manager")? {
        None => d.connection_manager.clone(),
        Some(mut o) => ConnMgrConfig {
            // Go: a present section starts from zero values.
            high_water: o.int("high_water")?.unwrap_or(0),
            low_water: o.int("low_water")?.unwrap_or(0),
            grace_period: o.duration("grace_period")?.unwrap_or(Duration::ZERO),
            extra: o.finish(w),
        },
    };
    let resource_manager = match obj.object("resource_manager")? {
        None => d.resource_manager.clone(),
        Some(mut o) => ResourceMgrConfig {
            enabled: o.bool("enabled")?.unwrap_or(false),
            memory_limit_bytes: o.int("memory_limit_bytes")?.unwrap_or(0),
            file_descriptors_limit: o.int("file_descriptors_limit")?.unwrap_or(0),
            extra: o.finish(w),
        },
    };
    let pubsub = match obj.object("pubsub")? {
        None => d.pubsub.clone(),
        Some(mut o) => PubSubConfig {
            seen_messages_ttl: o
                .duration("seen_messages_ttl")?
                .unwrap_or(d.pubsub.seen_messages_ttl),
            heartbeat_interval: o
                .duration("heartbeat_interval")?
                .unwrap_or(d.pubsub.heartbeat_interval),
            d_factor: o.int("d_factor")?.unwrap_or(0),
            history_gossip: o.int("history_gossip")?.unwrap_or(0),
            history_length: o.int("history_length")?.unwrap_or(0),
            flood_publish: o.bool("flood_publish")?.unwrap_or(false),
            extra: o.finish(w),
        },
    };
    let dial_peer_timeout = obj
        .duration("dial_peer_timeout")?
        .unwrap_or(d.dial_peer_timeout);
    let state_sync_interval = obj
        .duration("state_sync_interval")?
        .unwrap_or(d.state_sync_interval);
    let pin_recover_interval = obj
        .duration("pin_recover_interval")?
        .unwrap_or(d.pin_recover_interval);
    // Go: 0 (or missing) keeps the default.
    let replication_factor_min = obj
        .int("replication_factor_min")?
        .filter(|v: &i32| *v != 0)
        .unwrap_or(d.replication_factor_min);
    let replication_factor_max = obj
        .int("replication_factor_max")?
        .filter(|v: &i32| *v != 0)
        .unwrap_or(d.replication_factor_max);
    let monitor_ping_interval = obj
        .duration("monitor_ping_interval")?
        .unwrap_or(d.monitor_ping_interval);
    let peer_watch_interval = obj
        .duration("peer_watch_interval")?
        .unwrap_or(d.peer_watch_interval);
    let mdns_interval = obj.duration("mdns_interval")?.unwrap_or(d.mdns_interval);
    let pin_only_on_trusted_peers = obj.bool("pin_only_on_trusted_peers")?.unwrap_or(false);
    let pin_only_on_untrusted_peers = obj.bool("pin_only_on_untrusted_peers")?.unwrap_or(false);
    let disable_repinning = obj.bool("disable_repinning")?.unwrap_or(false);
    let follower_mode = obj.bool("follower_mode")?.unwrap_or(false);
    let peerstore_file = obj
        .string("peerstore_file")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.peerstore_file);
    let peers_key = obj.key("peer_addresses");
    let peers = obj.strings("peer_addresses", false)?.unwrap_or_default();
    let peer_addresses = parse_multiaddrs(&peers_key, peers, w)?;
    legacy.extend(obj.finish(w));
    Ok(ClusterConfig {
        peername: peername.unwrap_or(d.peername),
        secret,
        leave_on_shutdown,
        listen_multiaddress,
        announce_multiaddress,
        no_announce_multiaddress,
        enable_relay_hop,
        connection_manager,
        resource_manager,
        pubsub,
        dial_peer_timeout,
        state_sync_interval,
        pin_recover_interval,
        replication_factor_min,
        replication_factor_max,
        monitor_ping_interval,
        peer_watch_interval,
        mdns_interval,
        disable_repinning,
        follower_mode,
        peerstore_file,
        peer_addresses,
        pin_only_on_trusted_peers,
        pin_only_on_untrusted_peers,
        extra: legacy,
    })
}

fn parse_consensus(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<ConsensusConfig> {
    if obj.take("raft").is_some() {
        return Err(ConfigError::RaftUnsupported);
    }
    let crdt = match obj.object("crdt")? {
        Some(o) => parse_crdt(o, w)?,
        None => CrdtConfig::default(),
    };
    Ok(ConsensusConfig {
        crdt,
        extra: obj.finish(w),
    })
}

fn parse_crdt(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<CrdtConfig> {
    let d = CrdtConfig::default();
    let cluster_name = obj
        .string("cluster_name")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.cluster_name);
    let trusted_key = obj.key("trusted_peers");
    // Go: missing means nobody is trusted.
    let trusted_peers = obj.strings("trusted_peers", false)?.unwrap_or_default();
    for (i, p) in trusted_peers.iter().enumerate() {
        if p == "*" {
            // Go stops reading the list at "*".
            break;
        }
        let item_key = format!("{trusted_key}[{i}]");
        let id: PeerId = p
            .parse()
            .map_err(|e| invalid(&item_key, format!("{p:?} is not a peer ID: {e}")))?;
        if p.parse::<WriterId>().is_err() {
            w.push(ConfigWarning::new(
                item_key,
                WarningKind::NotUsed,
                format!(
                    "{id} is not an ed25519 peer ID: it counts as trusted for allocations, \
                     but it can never sign pinset changes"
                ),
            ));
        }
    }
    // Go: `batching` is not a pointer; missing means zero values.
    let batching = match obj.object("batching")? {
        None => d.batching.clone(),
        Some(mut o) => BatchingConfig {
            max_batch_size: o.int("max_batch_size")?.unwrap_or(0),
            max_batch_age: o.duration("max_batch_age")?.unwrap_or(Duration::ZERO),
            max_queue_size: o
                .int("max_queue_size")?
                .filter(|v: &usize| *v != 0)
                .unwrap_or(d.batching.max_queue_size),
            extra: o.finish(w),
        },
    };
    let repair_interval = obj
        .duration("repair_interval")?
        .unwrap_or(d.repair_interval);
    let rebroadcast_interval = obj
        .duration("rebroadcast_interval")?
        .unwrap_or(d.rebroadcast_interval);
    let peerset_metric = obj
        .string("peerset_metric")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.peerset_metric);
    let datastore_namespace = obj
        .string("datastore_namespace")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.datastore_namespace);
    Ok(CrdtConfig {
        cluster_name,
        trusted_peers,
        batching,
        repair_interval,
        rebroadcast_interval,
        peerset_metric,
        datastore_namespace,
        extra: obj.finish(w),
    })
}

fn parse_datastore(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<DatastoreConfig> {
    let sled = match obj.object("sled")? {
        None => SledConfig::default(),
        Some(mut o) => SledConfig {
            folder: o
                .string("folder")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SLED_FOLDER.to_owned()),
            extra: o.finish(w),
        },
    };
    for k in obj.remaining_keys() {
        if GO_DATASTORES.contains(&k.as_str()) {
            w.push(ConfigWarning::new(
                obj.key(&k),
                WarningKind::NotUsed,
                format!(
                    "Go's {k} datastore is not used: this peer keeps its state in sled \
                     (datastore.sled.folder = {:?}); the section is kept",
                    sled.folder
                ),
            ));
        } else {
            w.push(ConfigWarning::new(
                obj.key(&k),
                WarningKind::UnknownKey,
                "unknown key: ignored, and kept when the file is saved",
            ));
        }
    }
    Ok(DatastoreConfig {
        sled,
        extra: obj.into_rest(),
    })
}

// ---------------------------------------------------------------- checking

fn positive(key: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(invalid(key, "must be greater than 0s"));
    }
    Ok(())
}

fn validate_cluster(c: &ClusterConfig) -> Result<()> {
    if c.listen_multiaddress.is_empty() {
        return Err(invalid(
            "cluster.listen_multiaddress",
            "is empty: at least one listen address is needed",
        ));
    }
    let cm = &c.connection_manager;
    if cm.high_water == 0 {
        return Err(invalid(
            "cluster.connection_manager.high_water",
            "must be greater than 0",
        ));
    }
    if cm.low_water == 0 {
        return Err(invalid(
            "cluster.connection_manager.low_water",
            "must be greater than 0",
        ));
    }
    if cm.low_water > cm.high_water {
        return Err(invalid(
            "cluster.connection_manager.low_water",
            format!(
                "({}) is greater than high_water ({})",
                cm.low_water, cm.high_water
            ),
        ));
    }
    positive("cluster.connection_manager.grace_period", cm.grace_period)?;
    let ps = &c.pubsub;
    positive("cluster.pubsub.seen_messages_ttl", ps.seen_messages_ttl)?;
    positive("cluster.pubsub.heartbeat_interval", ps.heartbeat_interval)?;
    for (key, v) in [
        ("cluster.pubsub.d_factor", ps.d_factor),
        ("cluster.pubsub.history_gossip", ps.history_gossip),
        ("cluster.pubsub.history_length", ps.history_length),
    ] {
        if v == 0 {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    positive("cluster.dial_peer_timeout", c.dial_peer_timeout)?;
    positive("cluster.state_sync_interval", c.state_sync_interval)?;
    positive("cluster.pin_recover_interval", c.pin_recover_interval)?;
    positive("cluster.monitor_ping_interval", c.monitor_ping_interval)?;
    positive("cluster.peer_watch_interval", c.peer_watch_interval)?;
    if c.pin_only_on_trusted_peers && c.pin_only_on_untrusted_peers {
        return Err(invalid(
            "cluster.pin_only_on_untrusted_peers",
            "can't be true together with pin_only_on_trusted_peers",
        ));
    }
    let (min, max) = (c.replication_factor_min, c.replication_factor_max);
    for (key, v) in [
        ("cluster.replication_factor_min", min),
        ("cluster.replication_factor_max", max),
    ] {
        if v == 0 || v < -1 {
            return Err(invalid(
                key,
                format!("({v}) must be -1 (every peer) or at least 1"),
            ));
        }
    }
    if (min == -1) != (max == -1) {
        let key = if min == -1 {
            "cluster.replication_factor_max"
        } else {
            "cluster.replication_factor_min"
        };
        return Err(invalid(
            key,
            "replication_factor_min and replication_factor_max must both be -1 when one is",
        ));
    }
    if min > max {
        return Err(invalid(
            "cluster.replication_factor_min",
            format!("({min}) is larger than replication_factor_max ({max})"),
        ));
    }
    Ok(())
}

fn validate_crdt(c: &CrdtConfig) -> Result<()> {
    if c.cluster_name.is_empty() {
        return Err(invalid("consensus.crdt.cluster_name", "must not be empty"));
    }
    for (i, p) in c.trusted_peers.iter().enumerate() {
        if p == "*" {
            break;
        }
        if p.parse::<PeerId>().is_err() {
            return Err(invalid(
                format!("consensus.crdt.trusted_peers[{i}]"),
                format!("{p:?} is not a peer ID"),
            ));
        }
    }
    if c.batching.max_queue_size == 0 {
        return Err(invalid(
            "consensus.crdt.batching.max_queue_size",
            "must be greater than 0",
        ));
    }
    positive(
        "consensus.crdt.rebroadcast_interval",
        c.rebroadcast_interval,
    )?;
    if c.peerset_metric.is_empty() {
        return Err(invalid(
            "consensus.crdt.peerset_metric",
            "must not be empty",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- to JSON

/// Go's `config.Strings`: one item is written as a string, else an array.
fn strings_json(addrs: &[Multiaddr]) -> Value {
    match addrs {
        [one] => Value::String(one.to_string()),
        many => Value::Array(many.iter().map(|a| Value::String(a.to_string())).collect()),
    }
}

fn dur(d: Duration) -> Value {
    Value::String(format_go_duration(d))
}

fn with_extra(mut map: Map<String, Value>, extra: &Map<String, Value>) -> Value {
    map.extend(extra.clone());
    Value::Object(map)
}

/// The `cluster` section, in Go's key order.
fn cluster_to_json(c: &ClusterConfig) -> Value {
    let mut m = Map::new();
    // Legacy identity keys come first, where Go's configJSON has them.
    for k in ["id", "private_key"] {
        if let Some(v) = c.extra.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("peername".into(), c.peername.clone().into());
    m.insert(
        "secret".into(),
        c.secret.map(hex::encode).unwrap_or_default().into(),
    );
    m.insert("leave_on_shutdown".into(), c.leave_on_shutdown.into());
    m.insert(
        "listen_multiaddress".into(),
        strings_json(&c.listen_multiaddress),
    );
    m.insert(
        "announce_multiaddress".into(),
        strings_json(&c.announce_multiaddress),
    );
    m.insert(
        "no_announce_multiaddress".into(),
        strings_json(&c.no_announce_multiaddress),
    );
    m.insert("enable_relay_hop".into(), c.enable_relay_hop.into());
    let cm = &c.connection_manager;
    let mut cmm = Map::new();
    cmm.insert("high_water".into(), cm.high_water.into());
    cmm.insert("low_water".into(), cm.low_water.into());
    cmm.insert("grace_period".into(), dur(cm.grace_period));
    m.insert("connection_manager".into(), with_extra(cmm, &cm.extra));
    let rm = &c.resource_manager;
    let mut rmm = Map::new();
    rmm.insert("enabled".into(), rm.enabled.into());
    rmm.insert("memory_limit_bytes".into(), rm.memory_limit_bytes.into());
    rmm.insert(
        "file_descriptors_limit".into(),
        rm.file_descriptors_limit.into(),
    );
    m.insert("resource_manager".into(), with_extra(rmm, &rm.extra));
    let ps = &c.pubsub;
    let mut psm = Map::new();
    psm.insert("seen_messages_ttl".into(), dur(ps.seen_messages_ttl));
    psm.insert("heartbeat_interval".into(), dur(ps.heartbeat_interval));
    psm.insert("d_factor".into(), ps.d_factor.into());
    psm.insert("history_gossip".into(), ps.history_gossip.into());
    psm.insert("history_length".into(), ps.history_length.into());
    psm.insert("flood_publish".into(), ps.flood_publish.into());
    m.insert("pubsub".into(), with_extra(psm, &ps.extra));
    m.insert("dial_peer_timeout".into(), dur(c.dial_peer_timeout));
    m.insert("state_sync_interval".into(), dur(c.state_sync_interval));
    m.insert("pin_recover_interval".into(), dur(c.pin_recover_interval));
    m.insert(
        "replication_factor_min".into(),
        c.replication_factor_min.into(),
    );
    m.insert(
        "replication_factor_max".into(),
        c.replication_factor_max.into(),
    );
    m.insert("monitor_ping_interval".into(), dur(c.monitor_ping_interval));
    m.insert("peer_watch_interval".into(), dur(c.peer_watch_interval));
    m.insert("mdns_interval".into(), dur(c.mdns_interval));
    m.insert(
        "pin_only_on_trusted_peers".into(),
        c.pin_only_on_trusted_peers.into(),
    );
    m.insert(
        "pin_only_on_untrusted_peers".into(),
        c.pin_only_on_untrusted_peers.into(),
    );
    m.insert("disable_repinning".into(), c.disable_repinning.into());
    // Go: `omitempty`.
    if c.follower_mode {
        m.insert("follower_mode".into(), true.into());
    }
    if !c.peerstore_file.is_empty() && c.peerstore_file != DEFAULT_PEERSTORE_FILE {
        m.insert("peerstore_file".into(), c.peerstore_file.clone().into());
    }
    m.insert(
        "peer_addresses".into(),
        Value::Array(
            c.peer_addresses
                .iter()
                .map(|a| Value::String(a.to_string()))
                .collect(),
        ),
    );
    for (k, v) in &c.extra {
        if k != "id" && k != "private_key" {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

/// `consensus.crdt`, in Go's key order, defaults hidden where Go hides them.
fn crdt_to_json(c: &CrdtConfig) -> Value {
    let mut m = Map::new();
    m.insert("cluster_name".into(), c.cluster_name.clone().into());
    m.insert(
        "trusted_peers".into(),
        Value::Array(c.trusted_peers.iter().cloned().map(Value::String).collect()),
    );
    let b = &c.batching;
    let mut bm = Map::new();
    bm.insert("max_batch_size".into(), b.max_batch_size.into());
    bm.insert("max_batch_age".into(), dur(b.max_batch_age));
    if b.max_queue_size != DEFAULT_MAX_QUEUE_SIZE {
        bm.insert("max_queue_size".into(), b.max_queue_size.into());
    }
    m.insert("batching".into(), with_extra(bm, &b.extra));
    m.insert("repair_interval".into(), dur(c.repair_interval));
    if c.rebroadcast_interval != DEFAULT_REBROADCAST {
        m.insert("rebroadcast_interval".into(), dur(c.rebroadcast_interval));
    }
    if c.peerset_metric != DEFAULT_PEERSET_METRIC {
        m.insert("peerset_metric".into(), c.peerset_metric.clone().into());
    }
    if c.datastore_namespace != DEFAULT_DATASTORE_NAMESPACE {
        m.insert(
            "datastore_namespace".into(),
            c.datastore_namespace.clone().into(),
        );
    }
    with_extra(m, &c.extra)
}

// ---------------------------------------------------------------- files

/// Writes `bytes` to `path` readable by the owner only (0600), through a
/// temporary file renamed over it, so a crash never leaves half a file.
/// Creates the folder (0700) when missing.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |p: &Path| {
        let p = p.to_owned();
        move |source| ConfigError::Io { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io_err(dir))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

// ---------------------------------------------------------------- ports

/// Sockets bound while picking random ports, so no port is picked twice;
/// released when dropped.
#[derive(Debug, Default)]
struct HeldPorts {
    tcp: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
}

impl HeldPorts {
    fn randomize(&mut self, addr: &Multiaddr, key: &str) -> Result<Multiaddr> {
        let mut ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut out = Multiaddr::empty();
        let io_err = |source| ConfigError::Io {
            path: PathBuf::from(format!("{key} ({addr})")),
            source,
        };
        for p in addr.iter() {
            match p {
                Protocol::Ip4(a) => {
                    ip = IpAddr::V4(a);
                    out.push(p);
                }
                Protocol::Ip6(a) => {
                    ip = IpAddr::V6(a);
                    out.push(p);
                }
                Protocol::Tcp(_) => {
                    let l = TcpListener::bind((ip, 0)).map_err(io_err)?;
                    out.push(Protocol::Tcp(l.local_addr().map_err(io_err)?.port()));
                    self.tcp.push(l);
                }
                Protocol::Udp(_) => {
                    let s = UdpSocket::bind((ip, 0)).map_err(io_err)?;
                    out.push(Protocol::Udp(s.local_addr().map_err(io_err)?.port()));
                    self.udp.push(s);
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// Randomizes the ports of a JSON string or array of strings in place.
fn randomize_json_addrs(v: &mut Value, key: &str, held: &mut HeldPorts) -> Result<()> {
    let mut one = |s: &mut String, key: &str| -> Result<()> {
        let addr: Multiaddr = s
            .parse()
            .map_err(|e| invalid(key, format!("{s:?} is not a multiaddr: {e}")))?;
        *s = held.randomize(&addr, key)?.to_string();
        Ok(())
    };
    match v {
        Value::String(s) if !s.is_empty() => one(s, key),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::String(s) = item {
                    one(s, &format!("{key}[{i}]"))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
