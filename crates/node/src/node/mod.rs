//! The running embedded IPFS node: the [`Store`], the node's own libp2p
//! [`host`](crate::host) and [`Bitswap`] tied together, behind
//! [`ipfs::IpfsConnector`], so the cluster peer uses it exactly where it
//! would use Kubo.
//!
//! # What each connector call does
//! - `pin` (recursive): nothing when already pinned recursively; else the
//!   whole DAG is fetched through Bitswap ([`Bitswap::fetch_dag`], many
//!   blocks in flight; blocks already held are walked, not fetched), each
//!   block marked against GC before it is looked up or wanted
//!   ([`crate::GcMarks`]: GC goes on meanwhile and skips them; no
//!   [`crate::GcGuard`], which GC would wait for), then pinned with
//!   [`Store::pin_recursive`] and the marks released. The fetch
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
//!   [`Node::put_kept`] (not a connector call: the cluster peer's history)
//!   stores blocks kept from GC without a pin, flushed.
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
//!
//! # Gateway
//! With [`NodeConfig::gateway`] set, [`Node::start`] also serves the HTTP
//! gateway ([`crate::gateway`]) over the store until `cancel`.
//!
//! By idea: starting the node and its accessors (here), identity and ports
//! (`identity`), adding files (`add`), fetching and pinning DAGs (`fetch`),
//! the connector's calls (`connector`) and store work off the async
//! threads (`offload`).

mod add;
mod connector;
mod fetch;
mod identity;
mod offload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bitswap::{Bitswap, BitswapConfig, LocalBlocks};
use crate::gateway;
use crate::host::{Host, HostHandle};
use crate::{Block, NodeError, Store};

use identity::{agent_version, check_ports_free, kubo_hint, load_or_create_identity};
use offload::{blocking, blocking_stream, list_pins, passes, to_ipfs};

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
    /// Where the HTTP gateway ([`crate::gateway`]) listens, a
    /// `/ip4|ip6/<address>/tcp/<port>`. **Default:** none, no gateway
    /// (Kubo's is `/ip4/127.0.0.1/tcp/8080`: loopback, so only this machine
    /// reads through it).
    pub gateway: Option<Multiaddr>,
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
            gateway: None,
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
    /// Where the gateway listens, when it runs.
    gateway: Option<std::net::SocketAddr>,
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
        // Bound first: a gateway port in use fails the start before
        // anything runs.
        let gateway = match &cfg.gateway {
            Some(addr) => Some(
                gateway::bind(addr)
                    .await
                    .map_err(|e| NodeError::Network(format!("starting the HTTP gateway: {e}")))?,
            ),
            None => None,
        };
        let (host, host_task) =
            Host::start(keypair, cfg.listen.clone(), cancel.clone()).map_err(|e| match e {
                NodeError::Network(m) if m.contains("in use") => {
                    NodeError::Network(format!("{m}{}", kubo_hint(&cfg.listen)))
                }
                e => e,
            })?;
        let blocks: Arc<dyn LocalBlocks> = Arc::new(store.clone());
        let (bitswap, bitswap_task) = Bitswap::start(
            host.clone(),
            blocks,
            BitswapConfig::default(),
            cancel.clone(),
        )?;
        info!(peer_id = %host.peer_id(), listen = ?cfg.listen, "embedded IPFS node started");
        let mut tasks = vec![host_task, bitswap_task];
        let mut gateway_addr = None;
        if let Some(listener) = gateway {
            let addr = listener.local_addr()?;
            info!("IPFS gateway listening on http://{addr}");
            gateway_addr = Some(addr);
            tasks.push(gateway::spawn(listener, store.clone(), cancel));
        }
        let node = Node {
            inner: Arc::new(NodeInner {
                cfg,
                store,
                host,
                bitswap,
                gateway: gateway_addr,
            }),
        };
        Ok((node, tasks))
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

    /// Where the HTTP gateway listens (`None`: not configured).
    pub fn gateway_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.gateway
    }

    /// The node's Bitswap (to serve or fetch blocks directly).
    pub fn bitswap(&self) -> &Bitswap {
        &self.inner.bitswap
    }
}
