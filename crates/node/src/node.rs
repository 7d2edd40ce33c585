//! The running embedded IPFS node: the [`Store`], the node's own libp2p
//! [`host`](crate::host) and [`Bitswap`] tied together, behind
//! [`ipfs::IpfsConnector`], so the cluster peer uses it exactly where it
//! would use Kubo.
//!
//! # What each connector call does
//! - `pin` (recursive): nothing when already pinned recursively; else the
//!   whole DAG is fetched through Bitswap ([`Bitswap::fetch_dag`], many
//!   blocks in flight; blocks already held are walked, not fetched) under a
//!   [`crate::GcGuard`], then pinned with [`Store::pin_recursive`]. The fetch
//!   is cancelled when no new block arrives for
//!   [`NodeConfig::pin_timeout`] ([`IpfsError::PinTimeout`]), Kubo's
//!   connector's no-progress rule. Direct: the one block, then
//!   [`Store::pin_direct`] (a CID pinned recursively is pinned already, as
//!   Go treats Kubo's "already pinned recursively").
//! - `unpin`: [`Store::unpin`], "not pinned" is success. Blocks stay until
//!   `repo_gc`.
//! - `pin_ls`: streamed from [`Store::pins`] through a bounded channel.
//!   Indirect pins (filters `All` and `Indirect`) cost what they cost Kubo:
//!   a walk of every recursive pin's DAG, each indirect CID listed once.
//!   `pin_ls_cid` needs no walk ([`Store::pin_kinds`]).
//! - `pin_update(from, to)`: `from` must be pinned recursively (Kubo's
//!   rule); `to` is pinned like `pin`, fetching only the blocks not held
//!   (those shared with `from` are); `from` stays pinned.
//! - `block_put`: a CIDv1 sha2-256 block of the codec, stored and offered
//!   to peers that asked for it. Not flushed (sled flushes within 500 ms;
//!   a pin flushes): a block matters once something pins it.
//! - `block_get` / `block_stat`: local, else Bitswap, waiting up to
//!   `pin_timeout` ([`IpfsError::Timeout`]); a fetched block is kept
//!   unpinned, as Kubo keeps it.
//! - `dag_import`: [`crate::import_car`]; `repo_stat`: [`Store::stat`];
//!   `repo_gc`: [`Store::gc_with`], each removed block streamed as its batch
//!   commits.
//! - `id`: this node's peer ID, addresses (`/p2p/<id>`) and agent;
//!   `swarm_connect`: a dial of the node's host.
//! - `resolve`: `/ipfs/<cid>[/a/b]` (or a bare CID) through UnixFS
//!   directories, plain or HAMT-sharded (fetching only the shards on the
//!   path); `/ipns/...` is refused (this node has no IPNS); paths inside
//!   dag-cbor aren't walked.
//!
//! # Identity and ports
//! The node has its own ed25519 identity, created at first start and kept
//! in the `node-meta` tree: not the cluster peer's key, so the two can't
//! be confused and either can be rotated alone. It listens on its own port
//! (Kubo's 4001 by default). libp2p listens with `SO_REUSEPORT`, which on
//! Linux would let it share a port with a Kubo run by the same user and
//! split incoming connections between the two; [`Node::start`] first
//! checks each fixed TCP port with a plain bind and refuses a port in use,
//! naming Kubo as the likely holder.
//!
//! Errors map to [`IpfsError`]: no block in time is
//! [`IpfsError::Timeout`] or [`IpfsError::PinTimeout`]; a stopped node is
//! [`IpfsError::Unreachable`]; bad arguments are
//! [`IpfsError::InvalidArgument`]; everything else is [`IpfsError::Ipfs`]
//! with status 500 and the node's message, under Kubo's endpoint name.

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use futures::stream::BoxStream;
use ipfs::{
    BlockStat, DagImport, IpfsConnector, IpfsError, IpfsId, IpfsPinType, PinLsFilter, PinMode,
    RepoStat,
};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bitswap::{Bitswap, BitswapConfig, DagFetch, DagStats, LocalBlocks, MAX_BLOCK_SIZE};
use crate::host::{Host, HostHandle};
use crate::unixfs::{self, AddOptions, Added, FileAdder};
use crate::{Block, META_TREE, NodeError, Store};

/// Kubo's swarm port, the default of [`NodeConfig::listen`].
pub const KUBO_SWARM_PORT: u16 = 4001;
/// The node's identity (a protobuf-encoded libp2p keypair) in `node-meta`.
const IDENTITY_KEY: &[u8] = b"identity";
/// Items buffered between a store scan (pins, GC) and its stream.
const STREAM_CAPACITY: usize = 256;
/// A pin's blocks are bounded by the no-progress watchdog, not per block:
/// this only keeps a forgotten want from living forever.
const PIN_BLOCK_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Blocks stored per transaction by [`Node::add_file`].
const ADD_BATCH_BLOCKS: usize = 256;
/// Bytes stored per transaction by [`Node::add_file`].
const ADD_BATCH_BYTES: usize = 16 << 20;
/// Bytes read from the input at a time by [`Node::add_file`].
const ADD_READ_BUFFER: usize = 1 << 20;
/// What [`IpfsConnector::id`] calls the node's address when it has stopped.
const NODE_NAME: &str = "embedded IPFS node";

/// The embedded node's settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Addresses the node's host listens on. **Default:**
    /// `/ip4/0.0.0.0/tcp/4001` (Kubo's swarm port: a Kubo on the same
    /// machine conflicts, and start says so).
    pub listen: Vec<Multiaddr>,
    /// The repository maximum reported by `repo_stat` (the freespace
    /// metric); puts are not refused above it. **Default:**
    /// 10_000_000_000 (Kubo's `Datastore.StorageMax` "10GB").
    pub storage_max: u64,
    /// A pin's fetch is cancelled when no new block arrives for this long;
    /// also how long `block_get`, `block_stat` and `resolve` wait for a
    /// block. **Default:** 2 min (Go's `pin_timeout`).
    pub pin_timeout: Duration,
    /// Addresses reported by `id` instead of the listen addresses.
    /// **Default:** none (the listen addresses are reported).
    pub announce: Vec<Multiaddr>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                format!("/ip4/0.0.0.0/tcp/{KUBO_SWARM_PORT}")
                    .parse()
                    .expect("a valid multiaddr"),
            ],
            storage_max: 10_000_000_000,
            pin_timeout: Duration::from_secs(120),
            announce: Vec::new(),
        }
    }
}

/// The running embedded IPFS node. Cheap to clone; runs until the
/// cancellation token given to [`Node::start`] is cancelled.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    cfg: NodeConfig,
    store: Store,
    host: HostHandle,
    bitswap: Bitswap,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.inner.host.peer_id())
            .field("listen", &self.inner.cfg.listen)
            .finish_non_exhaustive()
    }
}

/// Bitswap's view of the blockstore: failures are logged and read as
/// "not held" (Bitswap answers DONT_HAVE, or fetches again).
impl LocalBlocks for Store {
    fn get(&self, cid: &Cid) -> Option<Bytes> {
        self.get_bytes(cid).unwrap_or_else(|e| {
            warn!(%cid, error = %e, "blockstore read failed");
            None
        })
    }

    fn has(&self, cid: &Cid) -> bool {
        Store::has(self, cid).unwrap_or_else(|e| {
            warn!(%cid, error = %e, "blockstore read failed");
            false
        })
    }

    fn put(&self, block: Block) {
        if let Err(e) = Store::put(self, &block) {
            warn!(cid = %block.cid(), error = %e, "blockstore write failed");
        }
    }
}

impl Node {
    /// Opens the store in `db` (trees prefixed `node-`), loads or creates
    /// the node's own ed25519 identity (kept in `node-meta`, not the
    /// cluster peer's key), starts the host and Bitswap. The tasks run until
    /// `cancel`; their handles are returned to be awaited at shutdown.
    ///
    /// # Errors
    /// [`NodeError::Network`] when a listen address can't be used (a port
    /// in use says that Kubo may hold it); [`NodeError::Db`] and
    /// [`NodeError::Malformed`] for the store or a corrupt identity.
    pub async fn start(
        db: &sled::Db,
        cfg: NodeConfig,
        cancel: CancellationToken,
    ) -> Result<(Node, Vec<JoinHandle<()>>), NodeError> {
        let db = db.clone();
        let storage_max = cfg.storage_max;
        let (store, keypair) = tokio::task::spawn_blocking(move || {
            let store = Store::open(&db, storage_max)?;
            let keypair = load_or_create_identity(&db)?;
            Ok::<_, NodeError>((store, keypair))
        })
        .await
        .map_err(|e| NodeError::Network(format!("opening the node's store: {e}")))??;
        check_ports_free(&cfg.listen)?;
        let (host, host_task) =
            Host::start(keypair, cfg.listen.clone(), cancel.clone()).map_err(|e| match e {
                NodeError::Network(m) if m.contains("in use") => {
                    NodeError::Network(format!("{m}{}", kubo_hint(&cfg.listen)))
                }
                e => e,
            })?;
        let blocks: Arc<dyn LocalBlocks> = Arc::new(store.clone());
        let (bitswap, bitswap_task) =
            Bitswap::start(host.clone(), blocks, BitswapConfig::default(), cancel)?;
        info!(peer_id = %host.peer_id(), listen = ?cfg.listen, "embedded IPFS node started");
        let node = Node {
            inner: Arc::new(NodeInner {
                cfg,
                store,
                host,
                bitswap,
            }),
        };
        Ok((node, vec![host_task, bitswap_task]))
    }

    /// The node's peer ID (its own, not the cluster peer's).
    pub fn peer_id(&self) -> PeerId {
        self.inner.host.peer_id()
    }

    /// The addresses others reach the node on, each ending in `/p2p/<id>`:
    /// [`NodeConfig::announce`] when set, else the listen addresses (an
    /// unspecified listen address is reported per interface). Empty once
    /// the node has stopped.
    pub async fn addresses(&self) -> Vec<Multiaddr> {
        let addrs = if self.inner.cfg.announce.is_empty() {
            self.inner.host.listen_addrs().await.unwrap_or_default()
        } else {
            self.inner.cfg.announce.clone()
        };
        let id = self.peer_id();
        addrs
            .into_iter()
            .map(|a| match a.iter().last() {
                Some(Protocol::P2p(_)) => a,
                _ => a.with(Protocol::P2p(id)),
            })
            .collect()
    }

    /// The blockstore.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The node's Bitswap (to serve or fetch blocks directly).
    pub fn bitswap(&self) -> &Bitswap {
        &self.inner.bitswap
    }

    /// UnixFS-adds the bytes of `reader` into the store, like `ipfs add`:
    /// blocks are put as they are made (under a [`crate::GcGuard`]), the
    /// root is pinned recursively when `pin`. Durable on return. Blocking
    /// (reads and sled writes): async callers use `spawn_blocking`.
    /// `opts.wrap_with_directory` is not applied (a file here has no name).
    ///
    /// # Errors
    /// The option errors of [`FileAdder::new`]; [`NodeError::Io`] from the
    /// reader; [`NodeError::Db`].
    pub fn add_file(
        &self,
        mut reader: impl Read,
        opts: &AddOptions,
        pin: bool,
    ) -> Result<Added, NodeError> {
        let store = &self.inner.store;
        let _guard = store.gc_guard();
        let mut adder = FileAdder::new(opts)?;
        let mut batch: Vec<Block> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut sink = |b: Block| -> Result<(), NodeError> {
            batch_bytes += b.data().len();
            batch.push(b);
            if batch.len() >= ADD_BATCH_BLOCKS || batch_bytes >= ADD_BATCH_BYTES {
                store.put_many(batch.drain(..))?;
                batch_bytes = 0;
            }
            Ok(())
        };
        let mut buf = vec![0u8; ADD_READ_BUFFER];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            adder.push(&buf[..n], &mut sink)?;
        }
        let added = adder.finish(&mut sink)?;
        store.put_many(batch)?;
        if pin {
            store.pin_recursive(&added.cid)?;
        } else {
            store.flush()?;
        }
        debug!(cid = %added.cid, bytes = added.bytes, pin, "added a file");
        self.serve_held_wants();
        Ok(added)
    }

    /// Serves, in the background, peers already waiting for blocks that
    /// were just stored without passing through Bitswap. Outside a Tokio
    /// runtime (a plain thread) they get the blocks when they ask again.
    fn serve_held_wants(&self) {
        if self.inner.bitswap.ledger_len() == 0 {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let bitswap = self.inner.bitswap.clone();
            runtime.spawn(async move {
                let served = bitswap.serve_held_wants().await;
                debug!(served, "served wants with newly stored blocks");
            });
        }
    }

    /// A block: local, else from peers within `pin_timeout`.
    async fn block(&self, cid: Cid, endpoint: &'static str) -> Result<Block, IpfsError> {
        if let Some(b) = self
            .inner
            .store
            .get(&cid)
            .map_err(|e| to_ipfs(endpoint, e))?
        {
            return Ok(b);
        }
        self.inner
            .bitswap
            .get(cid, self.inner.cfg.pin_timeout)
            .await
            .map_err(|e| to_ipfs(endpoint, e))
    }

    /// Fetches the DAG of `root` under the no-progress watchdog.
    async fn fetch_dag(&self, root: Cid) -> Result<DagStats, IpfsError> {
        const EP: &str = "pin/add";
        let no_progress = self.inner.cfg.pin_timeout;
        let (tx, mut rx) = watch::channel(0u64);
        let opts = DagFetch::default()
            .with_block_timeout(PIN_BLOCK_TIMEOUT)
            .with_progress(tx);
        let fetch = self.inner.bitswap.fetch_dag(root, opts);
        tokio::pin!(fetch);
        loop {
            tokio::select! {
                done = &mut fetch => return done.map_err(|e| to_ipfs(EP, e)),
                progress = tokio::time::timeout(no_progress, rx.changed()) => match progress {
                    Ok(Ok(())) => {}
                    // The sender went with the finished fetch.
                    Ok(Err(_)) => return fetch.await.map_err(|e| to_ipfs(EP, e)),
                    Err(_) => {
                        let progress = *rx.borrow();
                        warn!(%root, progress, ?no_progress, "pin made no progress; cancelled");
                        return Err(IpfsError::PinTimeout {
                            cid: root,
                            timeout: no_progress,
                            progress,
                        });
                    }
                },
            }
        }
    }

    /// Fetches and pins `cid` recursively (already pinned: nothing to do).
    async fn pin_recursive(&self, cid: Cid) -> Result<(), IpfsError> {
        const EP: &str = "pin/add";
        let store = self.inner.store.clone();
        if store.pin_type(&cid).map_err(|e| to_ipfs(EP, e))? == Some(IpfsPinType::Recursive) {
            return Ok(());
        }
        let guard = blocking(EP, {
            let store = store.clone();
            move || Ok(store.gc_guard())
        })
        .await?;
        let started = tokio::time::Instant::now();
        let stats = self.fetch_dag(cid).await?;
        let outcome = blocking(EP, move || {
            let outcome = store.pin_recursive(&cid);
            drop(guard);
            outcome
        })
        .await?;
        debug!(%cid, blocks = stats.blocks, fetched = stats.fetched, bytes = outcome.bytes,
            elapsed = ?started.elapsed(), "pinned recursively");
        Ok(())
    }

    /// Fetches and pins the one block `cid`.
    async fn pin_direct(&self, cid: Cid) -> Result<(), IpfsError> {
        const EP: &str = "pin/add";
        let store = self.inner.store.clone();
        let kinds = store.pin_kinds(&cid).map_err(|e| to_ipfs(EP, e))?;
        if kinds.contains(&IpfsPinType::Direct) || kinds.contains(&IpfsPinType::Recursive) {
            return Ok(());
        }
        let guard = blocking(EP, {
            let store = store.clone();
            move || Ok(store.gc_guard())
        })
        .await?;
        let timeout = self.inner.cfg.pin_timeout;
        self.inner
            .bitswap
            .get(cid, timeout)
            .await
            .map_err(|e| match e {
                NodeError::BlockTimeout { .. } => IpfsError::PinTimeout {
                    cid,
                    timeout,
                    progress: 0,
                },
                e => to_ipfs(EP, e),
            })?;
        blocking(EP, move || {
            let r = store.pin_direct(&cid);
            drop(guard);
            r
        })
        .await
    }
}

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

/// What `id` and identify announce.
fn agent_version() -> String {
    format!("ipfs-cluster-rs/{}", env!("CARGO_PKG_VERSION"))
}

/// The node's keypair from `node-meta`, or a new ed25519 one stored there
/// (two racing first starts agree on the first written).
fn load_or_create_identity(db: &sled::Db) -> Result<Keypair, NodeError> {
    let decode = |bytes: &[u8]| {
        Keypair::from_protobuf_encoding(bytes).map_err(|e| NodeError::Malformed {
            what: "node identity",
            reason: e.to_string(),
        })
    };
    let meta = db.open_tree(META_TREE)?;
    if let Some(bytes) = meta.get(IDENTITY_KEY)? {
        return decode(&bytes);
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Malformed {
            what: "node identity",
            reason: e.to_string(),
        })?;
    match meta.compare_and_swap(IDENTITY_KEY, None::<&[u8]>, Some(bytes))? {
        Ok(()) => {
            db.flush()?;
            info!(peer_id = %key.public().to_peer_id(), "created the embedded IPFS node's identity");
            Ok(key)
        }
        Err(raced) => decode(&raced.current.unwrap_or_default()),
    }
}

/// The hint added to a listen error on a port in use.
fn kubo_hint(listen: &[Multiaddr]) -> String {
    let on_kubo_port = listen.iter().any(|a| {
        a.iter()
            .any(|p| matches!(p, Protocol::Tcp(port) if port == KUBO_SWARM_PORT))
    });
    if on_kubo_port {
        format!(
            " ({KUBO_SWARM_PORT} is Kubo's swarm port: is a Kubo daemon running on this \
             machine? Stop it, give the embedded node other listen addresses, or use that Kubo \
             through ipfs_connector.ipfshttp)"
        )
    } else {
        " (is another IPFS daemon, such as Kubo, listening there? Give the embedded node \
         other listen addresses)"
            .to_string()
    }
}

/// Refuses fixed TCP ports someone listens on. libp2p's own bind sets
/// `SO_REUSEPORT` and would succeed next to a Kubo (which sets it too),
/// sharing the port; a plain bind fails instead.
fn check_ports_free(listen: &[Multiaddr]) -> Result<(), NodeError> {
    for addr in listen {
        let mut ip = None;
        let mut port = None;
        for p in addr.iter() {
            match p {
                Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
                Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        let (Some(ip), Some(port)) = (ip, port) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind((ip, port))
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(NodeError::Network(format!(
                "the {NODE_NAME} can't listen on {addr}: port {port} is in use{}",
                kubo_hint(std::slice::from_ref(addr))
            )));
        }
    }
    Ok(())
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    endpoint: &'static str,
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, IpfsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IpfsError::Ipfs {
            endpoint,
            status: 500,
            message: format!("{NODE_NAME} task failed: {e}"),
        })?
        .map_err(|e| to_ipfs(endpoint, e))
}

/// A node error as the connector reports it, under Kubo's endpoint name.
fn to_ipfs(endpoint: &'static str, e: NodeError) -> IpfsError {
    match e {
        NodeError::BlockTimeout { after, .. } => {
            debug!(endpoint, error = %e, "no block in time");
            IpfsError::Timeout {
                endpoint,
                timeout: after,
            }
        }
        NodeError::Stopped => IpfsError::Unreachable {
            addr: NODE_NAME.into(),
            endpoint,
            reason: e.to_string(),
        },
        NodeError::InvalidArgument { .. }
        | NodeError::Unsupported { .. }
        | NodeError::TooLarge { .. } => IpfsError::InvalidArgument(format!("{endpoint}: {e}")),
        e => IpfsError::Ipfs {
            endpoint,
            status: 500,
            message: e.to_string(),
        },
    }
}

fn passes(filter: PinLsFilter, k: IpfsPinType) -> bool {
    match filter {
        PinLsFilter::All => true,
        PinLsFilter::Direct => k == IpfsPinType::Direct,
        PinLsFilter::Recursive => k == IpfsPinType::Recursive,
        PinLsFilter::Indirect => k == IpfsPinType::Indirect,
    }
}

type PinSender = mpsc::Sender<Result<(Cid, IpfsPinType), IpfsError>>;

/// Sends the pins passing `filter`, as Kubo lists them: recursive and
/// direct from the records, then (All, Indirect) every CID below a
/// recursive root that isn't itself listed, once. [`NodeError::Stopped`]
/// when the listener went away.
fn list_pins(store: &Store, filter: PinLsFilter, tx: &PinSender) -> Result<(), NodeError> {
    let send = |cid: Cid, k: IpfsPinType| {
        tx.blocking_send(Ok((cid, k)))
            .map_err(|_| NodeError::Stopped)
    };
    let indirect = matches!(filter, PinLsFilter::All | PinLsFilter::Indirect);
    let mut roots = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for item in store.pins() {
        let (cid, kind) = item?;
        if indirect {
            listed.insert(cid);
            if kind == IpfsPinType::Recursive {
                roots.push(cid);
            }
        }
        if filter != PinLsFilter::Indirect && passes(filter, kind) {
            send(cid, kind)?;
        }
    }
    for root in roots {
        store.walk(&root, |cid, _| {
            if listed.insert(*cid) {
                send(*cid, IpfsPinType::Indirect)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A stream of what `produce` sends from a blocking thread through a
/// bounded channel. Starts on the first poll (so it can be made outside a
/// runtime, and a stream never polled does nothing); `produce` sees a
/// closed channel when the stream is dropped.
fn blocking_stream<T: Send + 'static>(
    produce: impl FnOnce(mpsc::Sender<T>) + Send + 'static,
) -> BoxStream<'static, T> {
    let start = async move {
        let (tx, mut rx) = mpsc::channel(STREAM_CAPACITY);
        tokio::task::spawn_blocking(move || produce(tx));
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    };
    futures::stream::once(start).flatten().boxed()
}
