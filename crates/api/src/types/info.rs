//! The other shapes of the API: peer identity ([`Id`]), [`Version`],
//! monitoring ([`Metric`], [`Alert`], [`ConnectGraph`], [`Bandwidth`]),
//! IPFS GC results, add output, the error body and the token body.

use std::collections::BTreeMap;
use std::time::SystemTime;

use cid::Cid;
use serde::{Deserialize, Serialize};

use super::wire;
use cluster_types::Metric;

/// A cluster peer's identity and state (Go's `api.ID`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Id {
    /// The cluster peer ID.
    pub id: String,
    /// The peer's libp2p addresses (multiaddresses with `/p2p/`).
    #[serde(deserialize_with = "wire::null_as_default")]
    pub addresses: Vec<String>,
    /// Peer IDs of the cluster peers this peer knows.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub cluster_peers: Vec<String>,
    /// Their addresses.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub cluster_peers_addresses: Vec<String>,
    /// The software version (`1.1.6` in Go).
    pub version: String,
    /// The source commit.
    pub commit: String,
    /// The inter-peer RPC protocol (`/ipfscluster/1.0/rpc`).
    pub rpc_protocol_version: String,
    /// Set when the peer could not be reached (in `GET /peers`).
    pub error: String,
    /// The peer's IPFS node.
    pub ipfs: IpfsId,
    /// The peer's name.
    pub peername: String,
}

/// A peer's IPFS node (Go's `api.IPFSID`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IpfsId {
    /// The IPFS peer ID (omitted when unknown).
    #[serde(skip_serializing_if = "wire::is_empty_str")]
    pub id: String,
    /// Its swarm addresses.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub addresses: Vec<String>,
    /// Set when IPFS could not be reached.
    pub error: String,
}

/// `GET /version` (Go's `api.Version`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Version {
    /// The software version.
    pub version: String,
}

/// A metric that expired: a peer may be down (Go's `api.Alert`: the metric's
/// fields plus `triggered_at`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Alert {
    /// The expired metric (flat in JSON).
    #[serde(flatten)]
    pub metric: Metric,
    /// When the alert fired.
    #[serde(default, with = "wire::go_time")]
    pub triggered_at: Option<SystemTime>,
}

/// One line of `POST /add` output (Go's `api.AddedOutput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedOutput {
    /// File or directory name.
    #[serde(default)]
    pub name: String,
    /// Its CID.
    #[serde(with = "wire::cid_string")]
    pub cid: Cid,
    /// Bytes processed so far (progress lines; omitted when 0).
    #[serde(default, skip_serializing_if = "wire::is_zero_u64")]
    pub bytes: u64,
    /// Cumulative DAG size (omitted when 0).
    #[serde(default, skip_serializing_if = "wire::is_zero_u64")]
    pub size: u64,
    /// Peers it was allocated to (omitted when empty).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "wire::null_as_default"
    )]
    pub allocations: Vec<String>,
}

/// One key removed (or failed) by IPFS GC (Go's `api.IPFSRepoGC`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpfsRepoGc {
    /// The removed CID (`null` when the line is an error).
    #[serde(default, with = "wire::opt_cid")]
    pub key: Option<Cid>,
    /// The error (omitted when empty).
    #[serde(default, skip_serializing_if = "wire::is_empty_str")]
    pub error: String,
}

/// One peer's IPFS GC result (Go's `api.RepoGC`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RepoGc {
    /// The cluster peer ID.
    #[serde(default)]
    pub peer: String,
    /// The cluster peer's name.
    #[serde(default)]
    pub peername: String,
    /// The removed keys (always an array).
    #[serde(default, deserialize_with = "wire::null_as_default")]
    pub keys: Vec<IpfsRepoGc>,
    /// Set when GC failed on that peer (omitted when empty).
    #[serde(default, skip_serializing_if = "wire::is_empty_str")]
    pub error: String,
}

/// `POST /ipfs/gc` (Go's `api.GlobalRepoGC`): one [`RepoGc`] per peer ID.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GlobalRepoGc {
    /// Results per cluster peer ID.
    #[serde(default, deserialize_with = "wire::null_as_default")]
    pub peer_map: BTreeMap<String, RepoGc>,
}

/// The connectivity of the cluster as this peer sees it (Go's
/// `api.ConnectGraph`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectGraph {
    /// The peer that answered.
    pub cluster_id: String,
    /// Peer names by cluster peer ID.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub id_to_peername: BTreeMap<String, String>,
    /// IPFS peer ID to the IPFS peers it is connected to.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub ipfs_links: BTreeMap<String, Vec<String>>,
    /// Cluster peer ID to the cluster peers it is connected to.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub cluster_links: BTreeMap<String, Vec<String>>,
    /// Cluster peer ID to whether this peer trusts it.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub cluster_trust_links: BTreeMap<String, bool>,
    /// Cluster peer ID to its IPFS peer ID.
    #[serde(deserialize_with = "wire::null_as_default")]
    pub cluster_to_ipfs: BTreeMap<String, String>,
}

/// Traffic of one libp2p protocol (Go's `api.Bandwidth`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Bandwidth {
    /// Bytes received.
    pub total_in: i64,
    /// Bytes sent.
    pub total_out: i64,
    /// Bytes per second received.
    #[serde(with = "wire::go_float")]
    pub rate_in: f64,
    /// Bytes per second sent.
    #[serde(with = "wire::go_float")]
    pub rate_out: f64,
}

/// `GET /health/bandwidth`: [`Bandwidth`] per libp2p protocol ID.
pub type BandwidthStats = BTreeMap<String, Bandwidth>;

/// The body of every error answer (Go's `api.Error`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The HTTP status.
    #[serde(default)]
    pub code: u16,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
}

/// The body of `POST /token`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenBody {
    /// An HS256 JWT to send as `Authorization: Bearer <token>`.
    pub token: String,
}
