//! The peer's IPFS: a Kubo daemon over its RPC API or the embedded node,
//! chosen by the section present under `ipfs_connector` in `service.json`.
//! Everything else in the peer sees one [`IpfsConnector`]; every call
//! through it is timed for the Prometheus metrics.

use crate::metrics::registry;
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

/// Runs one IPFS call, recording its duration and outcome under `call`.
async fn timed<T>(
    call: &'static str,
    run: impl std::future::Future<Output = Result<T, IpfsError>>,
) -> Result<T, IpfsError> {
    let started = std::time::Instant::now();
    let out = run.await;
    registry::observe_ipfs(call, started.elapsed(), out.is_err());
    out
}

/// Counts an IPFS pin request as Go's `pins/pin_add` (and its errors).
fn count_pin_add<T>(out: &Result<T, IpfsError>) {
    registry::PIN_ADD.add(1);
    if out.is_err() {
        registry::PIN_ADD_ERRORS.add(1);
    }
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
        timed("id", async { delegate!(self, c => c.id().await) }).await
    }

    async fn pin(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        let out = timed("pin", async {
            delegate!(self, c => c.pin(cid, mode).await)
        })
        .await;
        count_pin_add(&out);
        out
    }

    async fn unpin(&self, cid: Cid) -> Result<(), IpfsError> {
        timed("unpin", async { delegate!(self, c => c.unpin(cid).await) }).await
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
        timed("pin_ls_cid", async {
            delegate!(self, c => c.pin_ls_cid(cid, filter).await)
        })
        .await
    }

    async fn pin_update(&self, from: Cid, to: Cid) -> Result<(), IpfsError> {
        let out = timed("pin_update", async {
            delegate!(self, c => c.pin_update(from, to).await)
        })
        .await;
        count_pin_add(&out);
        out
    }

    async fn block_put(&self, data: Bytes, codec: u64) -> Result<Cid, IpfsError> {
        let len = data.len() as u64;
        let out = timed("block_put", async {
            delegate!(self, c => c.block_put(data, codec).await)
        })
        .await;
        registry::BLOCKS_PUT.add(1);
        if out.is_ok() {
            registry::BLOCKS_ADDED.add(1);
            registry::BLOCKS_ADDED_SIZE.add(len);
        } else {
            registry::BLOCKS_PUT_ERRORS.add(1);
        }
        out
    }

    async fn block_get(&self, cid: Cid) -> Result<Bytes, IpfsError> {
        timed("block_get", async {
            delegate!(self, c => c.block_get(cid).await)
        })
        .await
    }

    async fn block_stat(&self, cid: Cid) -> Result<BlockStat, IpfsError> {
        timed("block_stat", async {
            delegate!(self, c => c.block_stat(cid).await)
        })
        .await
    }

    async fn dag_import(&self, car: Bytes, pin_roots: bool) -> Result<DagImport, IpfsError> {
        timed("dag_import", async {
            delegate!(self, c => c.dag_import(car, pin_roots).await)
        })
        .await
    }

    async fn repo_stat(&self) -> Result<RepoStat, IpfsError> {
        timed("repo_stat", async {
            delegate!(self, c => c.repo_stat().await)
        })
        .await
    }

    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>> {
        delegate!(self, c => c.repo_gc())
    }

    async fn swarm_connect(&self, addr: Multiaddr) -> Result<(), IpfsError> {
        timed("swarm_connect", async {
            delegate!(self, c => c.swarm_connect(addr).await)
        })
        .await
    }

    async fn resolve(&self, path: String) -> Result<Cid, IpfsError> {
        timed("resolve", async {
            delegate!(self, c => c.resolve(path).await)
        })
        .await
    }

    async fn blocks_durable(&self) -> Result<(), IpfsError> {
        delegate!(self, c => c.blocks_durable().await)
    }

    fn known_down(&self, endpoint: &'static str) -> Option<IpfsError> {
        delegate!(self, c => c.known_down(endpoint))
    }
}
