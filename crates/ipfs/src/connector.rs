//! [`IpfsConnector`]: the IPFS operations a cluster peer uses, and their
//! types.

use std::future::Future;

use bytes::Bytes;
use cid::Cid;
use futures::stream::BoxStream;
use multiaddr::Multiaddr;

use crate::IpfsError;
pub use cluster_types::{IpfsPinType, PinMode};

/// Which pins [`IpfsConnector::pin_ls`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinLsFilter {
    /// Every pin, indirect ones included.
    All,
    /// Direct pins.
    Direct,
    /// Recursive pins.
    Recursive,
    /// Indirect pins.
    Indirect,
}

impl PinLsFilter {
    /// Kubo's `type` argument.
    pub fn as_str(self) -> &'static str {
        match self {
            PinLsFilter::All => "all",
            PinLsFilter::Direct => "direct",
            PinLsFilter::Recursive => "recursive",
            PinLsFilter::Indirect => "indirect",
        }
    }
}

/// The IPFS daemon's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpfsId {
    /// Its peer ID.
    pub id: String,
    /// The addresses it announces (ending in `/p2p/<id>`).
    pub addresses: Vec<Multiaddr>,
    /// Its agent version (`kubo/0.42.0/...`).
    pub agent_version: String,
}

/// A block's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStat {
    /// The block.
    pub cid: Cid,
    /// Its size in bytes.
    pub size: u64,
}

/// What [`IpfsConnector::dag_import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DagImport {
    /// The roots pinned (empty when not asked to pin).
    pub pinned_roots: Vec<Cid>,
    /// Blocks read from the file.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Repository usage (`repo/stat?size-only=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoStat {
    /// Bytes used.
    pub repo_size: u64,
    /// The configured maximum (`Datastore.StorageMax`).
    pub storage_max: u64,
}

/// What a cluster peer asks of its IPFS daemon.
///
/// Calls are bounded by the implementation's configured timeouts; streams
/// yield items as the daemon produces them (nothing is collected), and end
/// after their first error.
pub trait IpfsConnector: Send + Sync + 'static {
    /// The daemon's identity and addresses.
    fn id(&self) -> impl Future<Output = Result<IpfsId, IpfsError>> + Send;

    /// Pins `cid` and returns when it is pinned (fetching it first if
    /// needed). Pinning something already pinned that way is a no-op.
    fn pin(&self, cid: Cid, mode: PinMode) -> impl Future<Output = Result<(), IpfsError>> + Send;

    /// Unpins `cid` (either type); "not pinned" is success.
    fn unpin(&self, cid: Cid) -> impl Future<Output = Result<(), IpfsError>> + Send;

    /// Every pin passing `filter`, with its type.
    fn pin_ls(
        &self,
        filter: PinLsFilter,
    ) -> BoxStream<'static, Result<(Cid, IpfsPinType), IpfsError>>;

    /// How `cid` is pinned among the pins of `filter`, `None` when it is
    /// not. ([`PinLsFilter::All`] and [`PinLsFilter::Indirect`] make Kubo
    /// walk every recursive pin: prefer the type being checked.)
    fn pin_ls_cid(
        &self,
        cid: Cid,
        filter: PinLsFilter,
    ) -> impl Future<Output = Result<Option<IpfsPinType>, IpfsError>> + Send;

    /// Pins `to` recursively by updating the recursive pin of `from`,
    /// fetching only what differs; `from` stays pinned (as Go does).
    fn pin_update(&self, from: Cid, to: Cid) -> impl Future<Output = Result<(), IpfsError>> + Send;

    /// Stores a block of codec `codec` (a multicodec code: raw, dag-pb,
    /// dag-cbor, dag-json, ...) hashed with sha2-256; returns its CID.
    /// Durable once [`Self::blocks_durable`] answers after it.
    fn block_put(
        &self,
        data: Bytes,
        codec: u64,
    ) -> impl Future<Output = Result<Cid, IpfsError>> + Send;

    /// Makes every block put so far durable: a crash after this keeps
    /// them. Kubo answers a put once its block is on disk, so for it
    /// there is nothing to do; a store that defers its writes (the
    /// embedded node's) syncs them here, once for many puts.
    fn blocks_durable(&self) -> impl Future<Output = Result<(), IpfsError>> + Send {
        std::future::ready(Ok(()))
    }

    /// A block's bytes (fetched from the network if not local).
    fn block_get(&self, cid: Cid) -> impl Future<Output = Result<Bytes, IpfsError>> + Send;

    /// A block's size.
    fn block_stat(&self, cid: Cid) -> impl Future<Output = Result<BlockStat, IpfsError>> + Send;

    /// Imports a CAR v1 file; pins its roots recursively when `pin_roots`
    /// (a root that can't be pinned is an error).
    fn dag_import(
        &self,
        car: Bytes,
        pin_roots: bool,
    ) -> impl Future<Output = Result<DagImport, IpfsError>> + Send;

    /// Repository usage.
    fn repo_stat(&self) -> impl Future<Output = Result<RepoStat, IpfsError>> + Send;

    /// Runs a garbage collection; yields each removed block.
    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>>;

    /// Connects the daemon to a peer (`/.../p2p/<id>`).
    fn swarm_connect(&self, addr: Multiaddr) -> impl Future<Output = Result<(), IpfsError>> + Send;

    /// Resolves an IPFS path (`/ipfs/<cid>/a/b`, `/ipns/<name>`, or a bare
    /// CID) to the CID it names.
    fn resolve(&self, path: String) -> impl Future<Output = Result<Cid, IpfsError>> + Send;

    /// Why asking the daemon for `endpoint` now is not worth it, without
    /// asking: `Some` while it is known down and calls wait their turn for
    /// a rate-limited slot. Answers to people (a CID's status, `GET /id`)
    /// fail at once with it instead of queueing behind the tracker's
    /// retries.
    fn known_down(&self, _endpoint: &'static str) -> Option<IpfsError> {
        None
    }
}
