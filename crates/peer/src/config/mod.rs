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

pub(crate) mod cluster;
mod components;
mod consensus;
mod datastore;
mod embedded;
mod env;
mod error;
mod files;
mod go_defaults;
mod ports;
mod reader;
mod values;

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

pub use cluster::*;
pub use cluster_types::duration::{format_go_duration, parse_go_duration};
pub use components::*;
pub use consensus::*;
pub use datastore::*;
pub use embedded::EmbeddedSection;
pub use error::{ConfigError, ConfigWarning, WarningKind};

use crate::identity::Identity;
pub(crate) use files::write_private_file;
use go_defaults::*;
use ports::*;
use reader::Obj;
pub(crate) use reader::invalid;
use values::*;

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

#[cfg(test)]
mod tests;
