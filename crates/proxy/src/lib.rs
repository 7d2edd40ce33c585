//! The IPFS proxy API of a cluster peer (Go IPFS Cluster's `ipfsproxy`,
//! port 9095): Kubo's RPC API on `/api/v0`, where the calls that change or
//! read pins (`pin/add`, `pin/rm`, `pin/ls`, `pin/update`, `add`) and the
//! repository calls (`repo/stat`, `repo/gc`) are answered by the cluster,
//! and every other call goes to the IPFS daemon: forwarded to Kubo as a
//! streaming reverse proxy, or answered by the peer's embedded IPFS node
//! when it has no Kubo. `spec/ipfs-proxy.md` lists every route.
//!
//! Its own crate rather than a module of `api`: it needs the embedded
//! node (`ipfs-node`) and an HTTP client to Kubo, which `api` must not
//! depend on; it sits beside `api`, over the same [`ClusterApi`] trait
//! (plus [`ProxyCluster`] for what only the proxy asks), and the peer
//! plugs in as it does for the REST API.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod add;
mod body;
mod config;
mod cors;
mod deadline;
mod embedded;
mod error;
mod forward;
mod hijack;
mod put;
mod query;
mod routes;
mod server;

use std::future::Future;

use api::ApiError;
use api::service::ClusterApi;
use cid::Cid;

pub use config::{DEFAULT_LISTEN_MULTIADDRESS, DEFAULT_NODE_MULTIADDRESS, ProxyConfig};
pub use error::ProxyError;
pub use server::serve;

/// The IPFS repository use summed over the cluster's peers (what the
/// proxy's `repo/stat` answers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterRepoStat {
    /// Bytes used, over every peer that answered.
    pub repo_size: u64,
    /// Their configured maximums, summed.
    pub storage_max: u64,
    /// Blocks held, over every peer that answered and said.
    pub num_objects: u64,
}

/// What the proxy asks of a cluster beyond the REST API's calls.
pub trait ProxyCluster: ClusterApi {
    /// The IPFS repository use of every cluster peer, summed (Go: the
    /// `IPFSRepoStat` of each peer; a peer that fails is left out).
    fn repo_stat(&self) -> impl Future<Output = Result<ClusterRepoStat, ApiError>> + Send;

    /// Resolves an IPFS path (`/ipfs/<cid>/a`, `/ipns/<name>`, a CID) to
    /// the CID it names.
    fn resolve(&self, path: String) -> impl Future<Output = Result<Cid, ApiError>> + Send;
}

/// Who answers the calls the cluster doesn't.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A Kubo daemon's RPC API at `host:port`
    /// ([`ProxyConfig::node_addr`]): calls are forwarded to it.
    Kubo(String),
    /// The peer's embedded IPFS node: it answers what it can (`cat`,
    /// `get`, `block/*`, `dag/export|import`, `refs`, `ls`, `id`,
    /// `version`); anything else is a 501 in Kubo's error shape.
    Embedded(ipfs_node::Node),
}
