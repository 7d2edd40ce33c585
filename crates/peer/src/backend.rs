//! The peer's IPFS: a Kubo daemon over its RPC API or the embedded node,
//! chosen by the section present under `ipfs_connector` in `service.json`.
//! Everything else in the peer sees one [`IpfsConnector`].

use bytes::Bytes;
use cid::Cid;
use futures::stream::BoxStream;
use ipfs::Multiaddr;
use ipfs::{
    BlockStat, DagImport, IpfsConnector, IpfsError, IpfsId, IpfsPinType, KuboConnector,
    PinLsFilter, PinMode, RepoStat,
};

/// The IPFS a peer pins into.
#[derive(Clone, Debug)]
pub enum IpfsBackend {
    /// A Kubo daemon (`ipfs_connector.ipfshttp`).
    Kubo(KuboConnector),
    /// The IPFS node inside the peer (`ipfs_connector.embedded`).
    Embedded(ipfs_node::Node),
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            IpfsBackend::Kubo($c) => $call,
            IpfsBackend::Embedded($c) => $call,
        }
    };
}

impl IpfsConnector for IpfsBackend {
    async fn id(&self) -> Result<IpfsId, IpfsError> {
        delegate!(self, c => c.id().await)
    }

    async fn pin(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        delegate!(self, c => c.pin(cid, mode).await)
    }

    async fn unpin(&self, cid: Cid) -> Result<(), IpfsError> {
        delegate!(self, c => c.unpin(cid).await)
    }

    fn pin_ls(
        &self,
        filter: PinLsFilter,
    ) -> BoxStream<'static, Result<(Cid, IpfsPinType), IpfsError>> {
        delegate!(self, c => c.pin_ls(filter))
    }

    async fn pin_ls_cid(
        &self,
        cid: Cid,
        filter: PinLsFilter,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
        delegate!(self, c => c.pin_ls_cid(cid, filter).await)
    }

    async fn pin_update(&self, from: Cid, to: Cid) -> Result<(), IpfsError> {
        delegate!(self, c => c.pin_update(from, to).await)
    }

    async fn block_put(&self, data: Bytes, codec: u64) -> Result<Cid, IpfsError> {
        delegate!(self, c => c.block_put(data, codec).await)
    }

    async fn block_get(&self, cid: Cid) -> Result<Bytes, IpfsError> {
        delegate!(self, c => c.block_get(cid).await)
    }

    async fn block_stat(&self, cid: Cid) -> Result<BlockStat, IpfsError> {
        delegate!(self, c => c.block_stat(cid).await)
    }

    async fn dag_import(&self, car: Bytes, pin_roots: bool) -> Result<DagImport, IpfsError> {
        delegate!(self, c => c.dag_import(car, pin_roots).await)
    }

    async fn repo_stat(&self) -> Result<RepoStat, IpfsError> {
        delegate!(self, c => c.repo_stat().await)
    }

    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>> {
        delegate!(self, c => c.repo_gc())
    }

    async fn swarm_connect(&self, addr: Multiaddr) -> Result<(), IpfsError> {
        delegate!(self, c => c.swarm_connect(addr).await)
    }

    async fn resolve(&self, path: String) -> Result<Cid, IpfsError> {
        delegate!(self, c => c.resolve(path).await)
    }
}
