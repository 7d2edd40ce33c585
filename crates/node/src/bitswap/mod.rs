//! Bitswap 1.2.0 (and 1.1.0 / 1.0.0) on the node's own host: a server that
//! answers other peers' wants from [`LocalBlocks`], and a client that fetches
//! blocks and whole DAGs from connected peers.
//!
//! Messages are one-way: every peer writes to the other on a stream it
//! opened itself (one per peer, kept open and reused), and reads whatever
//! arrives on streams the other side opened. So a want goes out on our
//! stream and its answer (a block, HAVE or DONT_HAVE) comes back on theirs.
//!
//! - [`message`]: the protobuf codec, with strict bounds.
//! - [`wantlist`]: the server's ledger of what peers want.
//! - `server`: inbound streams, answering wants, serving late blocks.
//! - `client`: [`Session`]s, [`Bitswap::get`] and [`Bitswap::fetch_dag`].
//! - `sender`: one task per peer writing our messages, batching them.

mod client;
pub mod message;
mod sender;
mod server;
pub mod wantlist;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::host::HostHandle;
use crate::{Block, NodeError};

pub use client::{BeforeLookup, DagFetch, DagStats, Session};
pub use message::{MAX_BLOCK_SIZE, MAX_MESSAGE_SIZE, Version};

/// The protocol IDs we speak, newest first, with their versions.
pub const PROTOCOLS: [(StreamProtocol, Version); 4] = [
    (StreamProtocol::new("/ipfs/bitswap/1.2.0"), Version::V1_2),
    (StreamProtocol::new("/ipfs/bitswap/1.1.0"), Version::V1_1),
    (StreamProtocol::new("/ipfs/bitswap/1.0.0"), Version::V1_0),
    (StreamProtocol::new("/ipfs/bitswap"), Version::V1_0),
];

/// The blocks this node has, as Bitswap sees them: the blockstore plugs in
/// here. Calls are quick and synchronous (a lookup or an insert).
pub trait LocalBlocks: Send + Sync + 'static {
    /// A block's bytes, if held.
    fn get(&self, cid: &Cid) -> Option<Bytes>;
    /// Whether the block is held.
    fn has(&self, cid: &Cid) -> bool;
    /// Keeps a block (already verified against its CID).
    fn put(&self, block: Block);
}

/// [`LocalBlocks`] in memory, for tests and small uses.
#[derive(Debug, Default)]
pub struct MemoryBlocks {
    blocks: Mutex<HashMap<Cid, Bytes>>,
}

impl MemoryBlocks {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many blocks it holds.
    pub fn len(&self) -> usize {
        lock(&self.blocks).len()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LocalBlocks for MemoryBlocks {
    fn get(&self, cid: &Cid) -> Option<Bytes> {
        lock(&self.blocks).get(cid).cloned()
    }

    fn has(&self, cid: &Cid) -> bool {
        lock(&self.blocks).contains_key(cid)
    }

    fn put(&self, block: Block) {
        let (cid, data) = block.into_parts();
        lock(&self.blocks).insert(cid, data);
    }
}

/// Locks a mutex, ignoring poisoning (the data stays consistent: every
/// critical section here is a few map operations).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bitswap's bounds and timings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BitswapConfig {
    /// Wants remembered per peer (the server's ledger). **Default:** 1024
    /// (boxo's `MaxQueuedWantlistEntriesPerPeer`).
    pub max_wants_per_peer: usize,
    /// Wants remembered over all peers. **Default:** 65536.
    pub max_wants_total: usize,
    /// Blocks wanted at once by this node's client. **Default:** 4096.
    pub max_active_wants: usize,
    /// Blocks in flight per [`Bitswap::fetch_dag`]. **Default:** 64.
    pub dag_concurrency: usize,
    /// A peer sent want-block that hasn't answered in this long is passed
    /// over for another that has the block. **Default:** 5 s.
    pub peer_timeout: Duration,
    /// A want nobody answered is sent again to every connected peer this
    /// often. **Default:** 10 s.
    pub rebroadcast_interval: Duration,
    /// Inbound Bitswap streams at once, all peers. **Default:** 512.
    pub max_inbound_streams: usize,
    /// Inbound Bitswap streams read at once from one peer; more wait for
    /// a turn (up to 30 s, within [`BitswapConfig::max_inbound_streams`]),
    /// as Kubo opens a stream per answer and bursts of them must not lose
    /// blocks. **Default:** 8.
    pub max_inbound_streams_per_peer: usize,
    /// Want-have for a block up to this size is answered with the block
    /// (Kubo's `maxBlockSizeReplaceHasWithBlock`). **Default:** 1024.
    pub have_as_block_below: usize,
}

impl Default for BitswapConfig {
    fn default() -> Self {
        Self {
            max_wants_per_peer: 1024,
            max_wants_total: 65536,
            max_active_wants: 4096,
            dag_concurrency: 64,
            peer_timeout: Duration::from_secs(5),
            rebroadcast_interval: Duration::from_secs(10),
            max_inbound_streams: 512,
            max_inbound_streams_per_peer: 8,
            have_as_block_below: 1024,
        }
    }
}

impl BitswapConfig {
    /// Sets [`BitswapConfig::peer_timeout`].
    pub fn with_peer_timeout(mut self, d: Duration) -> Self {
        self.peer_timeout = d;
        self
    }

    /// Sets [`BitswapConfig::rebroadcast_interval`].
    pub fn with_rebroadcast_interval(mut self, d: Duration) -> Self {
        self.rebroadcast_interval = d;
        self
    }

    /// Sets [`BitswapConfig::dag_concurrency`].
    pub fn with_dag_concurrency(mut self, n: usize) -> Self {
        self.dag_concurrency = n.max(1);
        self
    }

    /// Sets the server's ledger bounds.
    pub fn with_ledger_bounds(mut self, per_peer: usize, total: usize) -> Self {
        self.max_wants_per_peer = per_peer;
        self.max_wants_total = total;
        self
    }
}

/// Counters, for operators and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BitswapStats {
    /// Wanted blocks received (verified and stored).
    pub blocks_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Blocks received that nobody wanted (dropped).
    pub unwanted_blocks: u64,
    /// Blocks sent to peers.
    pub blocks_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// HAVE presences sent.
    pub haves_sent: u64,
    /// DONT_HAVE presences sent.
    pub dont_haves_sent: u64,
    /// DONT_HAVE presences received.
    pub dont_haves_received: u64,
    /// Inbound messages refused (malformed or too large: the stream is
    /// dropped).
    pub messages_refused: u64,
    /// Wants not remembered because the ledger was full.
    pub wants_dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    blocks_received: AtomicU64,
    bytes_received: AtomicU64,
    unwanted_blocks: AtomicU64,
    blocks_sent: AtomicU64,
    bytes_sent: AtomicU64,
    haves_sent: AtomicU64,
    dont_haves_sent: AtomicU64,
    dont_haves_received: AtomicU64,
    messages_refused: AtomicU64,
    wants_dropped: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// What a want in flight hears about its CID.
#[derive(Debug)]
enum WantEvent {
    /// The block, verified and stored, and who sent it.
    Block(PeerId, Block),
    /// A peer has it.
    Have(PeerId),
    /// A peer doesn't.
    DontHave(PeerId),
}

/// Capacity of a want's event channel (events beyond it are dropped: a
/// block is in the store by then and the want finds it on its next tick).
const WANT_EVENT_CAPACITY: usize = 32;

/// A fetch waiting for a CID: its id and its events.
type Waiter = (u64, mpsc::Sender<WantEvent>);

struct Inner {
    host: HostHandle,
    store: Arc<dyn LocalBlocks>,
    config: BitswapConfig,
    /// One writer task per peer: `(id, queue)`; the id tells a retiring
    /// task whether the entry is still its own.
    senders: Mutex<HashMap<PeerId, (u64, mpsc::Sender<message::Message>)>>,
    /// What peers want from us.
    ledger: Mutex<wantlist::Ledger>,
    /// Our wants in flight: per CID, every waiting fetch's `(id, events)`.
    wants: Mutex<HashMap<Cid, Vec<Waiter>>>,
    /// Bounds our wants in flight ([`BitswapConfig::max_active_wants`]).
    want_slots: Semaphore,
    /// Per peer, the turns to read its inbound streams
    /// ([`BitswapConfig::max_inbound_streams_per_peer`]).
    inbound: Mutex<HashMap<PeerId, Arc<Semaphore>>>,
    next_id: AtomicU64,
    counters: Counters,
    cancel: CancellationToken,
}

impl Inner {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Bitswap client and server. Cheap to clone.
#[derive(Clone)]
pub struct Bitswap {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bitswap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitswap")
            .field("peer_id", &self.inner.host.peer_id())
            .finish_non_exhaustive()
    }
}

impl Bitswap {
    /// Starts serving Bitswap on `host` from `store`, until `cancel`. The
    /// returned task accepts inbound streams and forgets disconnected peers'
    /// wants. Call before dialling peers, so identify announces the
    /// protocols from the first connection.
    ///
    /// # Errors
    /// [`NodeError::Network`] when the Bitswap protocols are already
    /// registered on this host.
    pub fn start(
        host: HostHandle,
        store: Arc<dyn LocalBlocks>,
        config: BitswapConfig,
        cancel: CancellationToken,
    ) -> Result<(Bitswap, JoinHandle<()>), NodeError> {
        let inner = Arc::new(Inner {
            host,
            store,
            ledger: Mutex::new(wantlist::Ledger::new(
                config.max_wants_per_peer,
                config.max_wants_total,
            )),
            want_slots: Semaphore::new(config.max_active_wants.max(1)),
            config,
            senders: Mutex::new(HashMap::new()),
            wants: Mutex::new(HashMap::new()),
            inbound: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counters: Counters::default(),
            cancel,
        });
        let join = server::spawn(inner.clone())?;
        Ok((Bitswap { inner }, join))
    }

    /// This node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.inner.host.peer_id()
    }

    /// The host Bitswap runs on.
    pub fn host(&self) -> &HostHandle {
        &self.inner.host
    }

    /// The local blocks.
    pub fn store(&self) -> &Arc<dyn LocalBlocks> {
        &self.inner.store
    }

    /// Stores a block and sends it to the peers waiting for it.
    pub async fn put(&self, block: Block) {
        self.inner.store.put(block.clone());
        self.notify_new_block(&block).await;
    }

    /// Tells the server a block is now held (put into the store by someone
    /// else): peers that asked for it get it, or a HAVE.
    pub async fn notify_new_block(&self, block: &Block) {
        server::notify_new_block(&self.inner, block).await;
    }

    /// Answers the wants that blocks stored behind Bitswap's back (a CAR
    /// import, a file add) now satisfy: each wanted block now held goes,
    /// or its HAVE, to the peers waiting for it, who would otherwise wait
    /// for their own rebroadcast (30 s in Kubo). Costs a store lookup per
    /// pending want (at most [`BitswapConfig::max_wants_total`]). How many
    /// blocks were served.
    pub async fn serve_held_wants(&self) -> usize {
        let wanted = lock(&self.inner.ledger).wanted_cids();
        let mut served = 0;
        for cid in wanted {
            let Some(data) = self.inner.store.get(&cid) else {
                continue;
            };
            if let Ok(block) = Block::verified(cid, data) {
                server::notify_new_block(&self.inner, &block).await;
                served += 1;
            }
        }
        served
    }

    /// A new session: wants that share the peers that answered before.
    pub fn session(&self) -> Session {
        Session::new(self.inner.clone())
    }

    /// Fetches one block: from the store, or from connected peers.
    ///
    /// # Errors
    /// [`NodeError::BlockTimeout`] when no peer delivers it in `timeout`;
    /// [`NodeError::Stopped`] when Bitswap stops meanwhile.
    pub async fn get(&self, cid: Cid, timeout: Duration) -> Result<Block, NodeError> {
        Ok(self.session().get(cid, timeout).await?.0)
    }

    /// Fetches the DAG under `root` (links by codec, [`crate::links`]) into
    /// the store, many blocks in flight: each block's links are wanted as
    /// soon as it arrives. Blocks already held are walked, not fetched.
    ///
    /// # Errors
    /// The first block that can't be fetched ([`NodeError::BlockTimeout`])
    /// or decoded ([`NodeError::Malformed`], [`NodeError::Unsupported`]).
    pub async fn fetch_dag(&self, root: Cid, opts: DagFetch) -> Result<DagStats, NodeError> {
        self.session().fetch_dag(root, opts).await
    }

    /// Wants in flight (distinct CIDs) of this node's client.
    pub fn active_wants(&self) -> usize {
        lock(&self.inner.wants).len()
    }

    /// Wants of other peers remembered by the server.
    pub fn ledger_len(&self) -> usize {
        lock(&self.inner.ledger).len()
    }

    /// The counters.
    pub fn stats(&self) -> BitswapStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BitswapStats {
            blocks_received: get(&c.blocks_received),
            bytes_received: get(&c.bytes_received),
            unwanted_blocks: get(&c.unwanted_blocks),
            blocks_sent: get(&c.blocks_sent),
            bytes_sent: get(&c.bytes_sent),
            haves_sent: get(&c.haves_sent),
            dont_haves_sent: get(&c.dont_haves_sent),
            dont_haves_received: get(&c.dont_haves_received),
            messages_refused: get(&c.messages_refused),
            wants_dropped: get(&c.wants_dropped),
        }
    }
}
