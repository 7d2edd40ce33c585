//! The peer behind the IPFS proxy (`proxy::ProxyCluster` over a
//! [`PeerHandle`]): the cluster-wide repository stat, with the
//! `IPFSConnector.RepoStat` RPC each peer answers for its own IPFS, and
//! [`PeerHandle::serve_proxy`], which picks who answers the calls the
//! cluster doesn't (the configured Kubo, or the embedded node).

use std::sync::Arc;

use api::ApiError;
use cid::Cid;
use futures::future::join_all;
use ipfs::IpfsConnector;
use libp2p::PeerId;
use proxy::{Backend, ClusterRepoStat, ProxyCluster, ProxyConfig, ProxyError};
use tokio::task::JoinHandle;

use crate::backend::IpfsBackend;
use crate::network::rpc::{self, Policy};
use crate::peer::PeerHandle;

/// The RPC method (Go's name): this peer's IPFS `(repo_size, storage_max)`.
const REPO_STAT: &str = "IPFSConnector.RepoStat";

async fn local_repo_stat(ipfs: Option<&Arc<IpfsBackend>>) -> Result<(u64, u64), String> {
    let ipfs = ipfs.ok_or("this peer has no IPFS")?;
    let s = ipfs.repo_stat().await.map_err(|e| e.to_string())?;
    Ok((s.repo_size, s.storage_max))
}

/// Registers [`REPO_STAT`]: trusted peers only, as Go (it makes IPFS work).
pub(crate) fn register(reg: &mut rpc::Registry, ipfs: Option<Arc<IpfsBackend>>) {
    reg.register(
        REPO_STAT,
        Policy::Trusted,
        Arc::new(move |_, _| {
            let ipfs = ipfs.clone();
            Box::pin(async move {
                let stat = local_repo_stat(ipfs.as_ref()).await?;
                Ok(vec![
                    serde_ipld_dagcbor::to_vec(&stat).map_err(|e| e.to_string())?,
                ])
            })
        }),
    );
}

impl PeerHandle {
    /// One peer's IPFS repository stat (self in process).
    async fn repo_stat_of(&self, peer: PeerId) -> Result<(u64, u64), String> {
        if peer == self.id() {
            return local_repo_stat(self.ipfs()).await;
        }
        let args = serde_ipld_dagcbor::to_vec(&()).unwrap_or_default();
        let frames = self
            .call(peer, REPO_STAT, args)
            .await
            .map_err(|e| e.to_string())?;
        let first = frames.first().ok_or("an empty answer")?;
        serde_ipld_dagcbor::from_slice(first).map_err(|e| format!("malformed answer: {e}"))
    }

    /// Serves the IPFS proxy of this peer (`api.ipfsproxy`) until
    /// `shutdown` completes: calls the cluster doesn't answer go to the
    /// Kubo at `cfg.node_addr`, or, when this peer runs the embedded IPFS
    /// node, are answered by it. Returns the bound address and the task.
    ///
    /// # Errors
    /// When the listen address can't be bound.
    pub async fn serve_proxy(
        &self,
        cfg: ProxyConfig,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(std::net::SocketAddr, JoinHandle<()>), ProxyError> {
        let backend = match self.ipfs().map(AsRef::as_ref) {
            Some(IpfsBackend::Embedded(node)) => Backend::Embedded(node.clone()),
            _ => Backend::Kubo(cfg.node_addr.clone()),
        };
        proxy::serve(Arc::new(self.clone()), backend, cfg, shutdown).await
    }
}

impl ProxyCluster for PeerHandle {
    /// Go's: every peer's `IPFSConnector.RepoStat` summed; a peer that
    /// fails is logged and left out. Blocks are not counted (0).
    async fn repo_stat(&self) -> Result<ClusterRepoStat, ApiError> {
        let me = self.id();
        let mut peers = self.peers();
        peers.retain(|p| *p != me);
        peers.insert(0, me);
        let stats = join_all(peers.iter().map(|p| self.repo_stat_of(*p))).await;
        let mut sum = ClusterRepoStat::default();
        for (peer, stat) in peers.iter().zip(stats) {
            match stat {
                Ok((size, max)) => {
                    sum.repo_size += size;
                    sum.storage_max += max;
                }
                Err(e) => tracing::warn!(%peer, "repo/stat: {e}"),
            }
        }
        Ok(sum)
    }

    async fn resolve(&self, path: String) -> Result<Cid, ApiError> {
        self.resolve_path(&path).await
    }
}
