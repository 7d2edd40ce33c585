//! [`IpfsConnector`] for [`Node`]: each call against the store, Bitswap and
//! the host, as the module docs of `node` describe.

use bytes::Bytes;
use cid::Cid;
use futures::stream::BoxStream;
use ipfs::{
    BlockStat, DagImport, IpfsConnector, IpfsError, IpfsId, IpfsPinType, PinLsFilter, PinMode,
    RepoStat,
};
use libp2p::Multiaddr;
use tracing::debug;

use crate::bitswap::MAX_BLOCK_SIZE;
use crate::unixfs::{self};
use crate::{Block, NodeError};

use super::*;

impl IpfsConnector for Node {
    async fn id(&self) -> Result<IpfsId, IpfsError> {
        Ok(IpfsId {
            id: self.peer_id().to_string(),
            addresses: self.addresses().await,
            agent_version: agent_version(),
        })
    }

    async fn pin(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        match mode {
            PinMode::Recursive => self.pin_recursive(cid).await,
            PinMode::Direct => self.pin_direct(cid).await,
        }
    }

    async fn unpin(&self, cid: Cid) -> Result<(), IpfsError> {
        let store = self.inner.store.clone();
        let was = blocking("pin/rm", move || store.unpin(&cid)).await?;
        debug!(%cid, was_pinned = was, "unpinned");
        Ok(())
    }

    fn pin_ls(
        &self,
        filter: PinLsFilter,
    ) -> BoxStream<'static, Result<(Cid, IpfsPinType), IpfsError>> {
        let store = self.inner.store.clone();
        blocking_stream(move |tx| {
            if let Err(e) = list_pins(&store, filter, &tx)
                && !matches!(e, NodeError::Stopped)
            {
                let _ = tx.blocking_send(Err(to_ipfs("pin/ls", e)));
            }
        })
    }

    async fn pin_ls_cid(
        &self,
        cid: Cid,
        filter: PinLsFilter,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
        let kinds = self
            .inner
            .store
            .pin_kinds(&cid)
            .map_err(|e| to_ipfs("pin/ls", e))?;
        Ok(kinds.into_iter().find(|k| passes(filter, *k)))
    }

    async fn pin_update(&self, from: Cid, to: Cid) -> Result<(), IpfsError> {
        const EP: &str = "pin/update";
        if self
            .inner
            .store
            .pin_type(&from)
            .map_err(|e| to_ipfs(EP, e))?
            != Some(IpfsPinType::Recursive)
        {
            return Err(IpfsError::Ipfs {
                endpoint: EP,
                status: 500,
                message: format!("'from' cid {from} was not recursively pinned already"),
            });
        }
        self.pin_recursive(to).await
    }

    async fn block_put(&self, data: Bytes, codec: u64) -> Result<Cid, IpfsError> {
        const EP: &str = "block/put";
        if data.len() > MAX_BLOCK_SIZE {
            return Err(IpfsError::InvalidArgument(format!(
                "a block of {} bytes is over the {MAX_BLOCK_SIZE} byte limit of Bitswap",
                data.len()
            )));
        }
        let block = Block::new(codec, data, false);
        let stored = block.clone();
        let store = self.inner.store.clone();
        blocking(EP, move || store.put(&stored)).await?;
        self.inner.bitswap.notify_new_block(&block).await;
        Ok(*block.cid())
    }

    /// Blocks live in the peer's sled database, which a put leaves to
    /// sled's next flush (within `flush_every_ms`): one flush here covers
    /// every put before it.
    async fn blocks_durable(&self) -> Result<(), IpfsError> {
        let store = self.inner.store.clone();
        blocking("block/put", move || store.flush()).await
    }

    async fn block_get(&self, cid: Cid) -> Result<Bytes, IpfsError> {
        Ok(self.block(cid, "block/get").await?.into_parts().1)
    }

    async fn block_stat(&self, cid: Cid) -> Result<BlockStat, IpfsError> {
        const EP: &str = "block/stat";
        let size = match self.inner.store.size_of(&cid).map_err(|e| to_ipfs(EP, e))? {
            Some(n) => n,
            None => self.block(cid, EP).await?.data().len() as u64,
        };
        Ok(BlockStat { cid, size })
    }

    async fn dag_import(&self, car: Bytes, pin_roots: bool) -> Result<DagImport, IpfsError> {
        let store = self.inner.store.clone();
        let out = blocking("dag/import", move || {
            crate::import_car(&store, std::io::Cursor::new(car), pin_roots)
        })
        .await?;
        self.serve_held_wants();
        Ok(DagImport {
            pinned_roots: if out.pinned { out.roots } else { Vec::new() },
            blocks: out.blocks,
            bytes: out.bytes,
        })
    }

    async fn repo_stat(&self) -> Result<RepoStat, IpfsError> {
        let stat = self
            .inner
            .store
            .stat()
            .map_err(|e| to_ipfs("repo/stat", e))?;
        Ok(RepoStat {
            repo_size: stat.repo_size,
            storage_max: stat.storage_max,
        })
    }

    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>> {
        let store = self.inner.store.clone();
        blocking_stream(move |tx| {
            // A listener that goes away doesn't stop the collection.
            let done = store.gc_with(|cid, _| {
                let _ = tx.blocking_send(Ok(cid));
            });
            match done {
                Ok((blocks, bytes)) => debug!(blocks, bytes, "repo gc"),
                Err(e) => {
                    let _ = tx.blocking_send(Err(to_ipfs("repo/gc", e)));
                }
            }
        })
    }

    async fn swarm_connect(&self, addr: Multiaddr) -> Result<(), IpfsError> {
        let peer = self
            .inner
            .host
            .dial(addr)
            .await
            .map_err(|e| to_ipfs("swarm/connect", e))?;
        debug!(%peer, "connected");
        Ok(())
    }

    async fn resolve(&self, path: String) -> Result<Cid, IpfsError> {
        const EP: &str = "resolve";
        let trimmed = path.trim();
        if trimmed.starts_with("/ipns/") {
            return Err(IpfsError::InvalidArgument(format!(
                "cannot resolve {trimmed}: the {NODE_NAME} has no IPNS (only /ipfs/ paths)"
            )));
        }
        let rest = trimmed
            .strip_prefix("/ipfs/")
            .or_else(|| trimmed.strip_prefix("/ipld/"))
            .unwrap_or(trimmed);
        let mut parts = rest.split('/').filter(|s| !s.is_empty());
        let first = parts
            .next()
            .ok_or_else(|| IpfsError::InvalidArgument(format!("empty IPFS path {path:?}")))?;
        let mut cid: Cid = first.parse().map_err(|e| {
            IpfsError::InvalidArgument(format!("invalid IPFS path {path:?}: {first}: {e}"))
        })?;
        for name in parts {
            // A HAMT is walked shard by shard: only those on the name's path.
            let (mut at, mut depth) = (cid, 0);
            cid = loop {
                let block = self.block(at, EP).await?;
                match unixfs::lookup(&block, name, depth).map_err(|e| to_ipfs(EP, e))? {
                    unixfs::Lookup::Found(next) => break next,
                    unixfs::Lookup::Descend(shard) => (at, depth) = (shard, depth + 1),
                    unixfs::Lookup::Missing => {
                        return Err(IpfsError::Ipfs {
                            endpoint: EP,
                            status: 500,
                            message: format!("no link named {name:?} under {cid}"),
                        });
                    }
                }
            };
        }
        Ok(cid)
    }
}

impl Node {
    /// Stores CIDv1 sha2-256 blocks of their codecs and keeps them from GC
    /// without pinning them ([`Store::put_kept`]): the cluster peer's
    /// history. Durable on return; offered to peers that asked for them.
    ///
    /// # Errors
    /// [`IpfsError::InvalidArgument`] for a block over Bitswap's limit
    /// (nothing is stored then); the store's errors.
    pub async fn put_kept(&self, blocks: Vec<(Bytes, u64)>) -> Result<Vec<Cid>, IpfsError> {
        const EP: &str = "block/put";
        if let Some((data, _)) = blocks.iter().find(|(d, _)| d.len() > MAX_BLOCK_SIZE) {
            return Err(IpfsError::InvalidArgument(format!(
                "a block of {} bytes is over the {MAX_BLOCK_SIZE} byte limit of Bitswap",
                data.len()
            )));
        }
        let blocks: Vec<Block> = blocks
            .into_iter()
            .map(|(data, codec)| Block::new(codec, data, false))
            .collect();
        let stored = blocks.clone();
        let store = self.inner.store.clone();
        blocking(EP, move || store.put_kept(stored)).await?;
        for block in &blocks {
            self.inner.bitswap.notify_new_block(block).await;
        }
        Ok(blocks.iter().map(|b| *b.cid()).collect())
    }
}
