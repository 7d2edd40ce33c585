//! The client: sessions that fetch blocks from connected peers.
//!
//! A want starts with want-block (send DONT_HAVE) to a peer that served
//! this session before, and want-have (send DONT_HAVE) to the other
//! connected peers; with no such peer yet, want-have goes to everyone. The
//! first HAVE gets a want-block; DONT_HAVE, or no answer within
//! [`BitswapConfig::peer_timeout`](super::BitswapConfig::peer_timeout),
//! moves the want-block on to the next peer that said HAVE; peers that
//! connect meanwhile are asked too, and a want nobody answered is sent
//! again every
//! [`BitswapConfig::rebroadcast_interval`](super::BitswapConfig::rebroadcast_interval).
//! Every block is verified against its CID before it is stored. When a
//! want ends (block, timeout or drop), the peers still holding it get a
//! cancel.
//!
//! [`Session::fetch_dag`] keeps many wants in flight: each block's links
//! are wanted as soon as it arrives, not level by level.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use cid::Cid;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use std::sync::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::message::{Message, WantEntry, WantType};
use super::{Inner, WANT_EVENT_CAPACITY, WantEvent, lock, sender};
use crate::{Block, NodeError};

/// How often a want checks the store and its peer timeouts.
const TICK: Duration = Duration::from_millis(250);
/// Most peers remembered as good by a session.
const MAX_GOOD_PEERS: usize = 16;
/// Identity multihash: the data is in the CID, nothing to fetch.
const IDENTITY: u64 = 0x00;

/// Called with CIDs before [`Session::fetch_dag`] looks for them in the
/// store or wants them (see [`DagFetch::before_lookup`]).
pub type BeforeLookup = Arc<dyn Fn(&[Cid]) + Send + Sync>;

/// Options of [`Session::fetch_dag`].
#[derive(Clone)]
#[non_exhaustive]
pub struct DagFetch {
    /// How long one block may take. **Default:** 60 s.
    pub block_timeout: Duration,
    /// Blocks in flight; `None` takes
    /// [`BitswapConfig::dag_concurrency`](super::BitswapConfig::dag_concurrency).
    pub concurrency: Option<usize>,
    /// Blocks done so far (fetched or found locally), updated after each
    /// one: what a pin's no-progress timeout watches.
    pub progress: Option<watch::Sender<u64>>,
    /// Told every CID of the DAG (the root first, then each block's new
    /// links) before the fetch looks for it in the store or wants it: how
    /// a pin marks the blocks it will pin against GC
    /// ([`crate::GcMarks::mark`]). It runs on the fetch's task and may
    /// block briefly.
    pub before_lookup: Option<BeforeLookup>,
}

impl std::fmt::Debug for DagFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DagFetch")
            .field("block_timeout", &self.block_timeout)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress)
            .field("before_lookup", &self.before_lookup.is_some())
            .finish()
    }
}

impl Default for DagFetch {
    fn default() -> Self {
        Self {
            block_timeout: Duration::from_secs(60),
            concurrency: None,
            progress: None,
            before_lookup: None,
        }
    }
}

impl DagFetch {
    /// Sets [`DagFetch::block_timeout`].
    pub fn with_block_timeout(mut self, d: Duration) -> Self {
        self.block_timeout = d;
        self
    }

    /// Sets [`DagFetch::concurrency`].
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Sets [`DagFetch::progress`].
    pub fn with_progress(mut self, tx: watch::Sender<u64>) -> Self {
        self.progress = Some(tx);
        self
    }

    /// Sets [`DagFetch::before_lookup`].
    pub fn with_before_lookup(mut self, f: BeforeLookup) -> Self {
        self.before_lookup = Some(f);
        self
    }
}

/// What [`Session::fetch_dag`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DagStats {
    /// Blocks in the DAG (distinct CIDs walked, identity CIDs excluded).
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Of those, blocks fetched from peers (the rest were held already).
    pub fetched: u64,
}

/// Wants that share what they learn: peers that delivered blocks are asked
/// first for the next ones. Cheap to clone.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Peers that delivered or said HAVE, most recent first.
    good: Mutex<VecDeque<PeerId>>,
    /// Descending priorities: earlier wants first.
    priority: AtomicI32,
    /// Round-robin over good peers.
    turn: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("good_peers", &lock(&self.shared.good).len())
            .finish_non_exhaustive()
    }
}

/// Sends an event to every fetch waiting for `cid` (dropped for a full
/// channel: the fetch finds the block in the store on its next tick).
pub(super) fn deliver(inner: &Inner, cid: &Cid, make: impl Fn() -> WantEvent) {
    if let Some(waiters) = lock(&inner.wants).get(cid) {
        for (_, tx) in waiters {
            let _ = tx.try_send(make());
        }
    }
}

/// A registered want: unregistered on drop, and then, if no other fetch
/// wants the CID, cancelled at the peers that were asked.
struct WantGuard {
    inner: Arc<Inner>,
    cid: Cid,
    id: u64,
    asked: HashSet<PeerId>,
    delivered_by: Option<PeerId>,
}

impl Drop for WantGuard {
    fn drop(&mut self) {
        let last = {
            let mut wants = lock(&self.inner.wants);
            match wants.get_mut(&self.cid) {
                Some(list) => {
                    list.retain(|(id, _)| *id != self.id);
                    if list.is_empty() {
                        wants.remove(&self.cid);
                        true
                    } else {
                        false
                    }
                }
                None => true,
            }
        };
        if !last {
            return;
        }
        for peer in self.asked.drain() {
            if Some(peer) == self.delivered_by {
                continue; // it forgot the want when it sent the block
            }
            let msg = Message {
                wants: vec![WantEntry::cancel(self.cid)],
                ..Message::default()
            };
            sender::send_later(&self.inner, peer, msg);
        }
    }
}

impl Session {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                good: Mutex::new(VecDeque::new()),
                priority: AtomicI32::new(i32::MAX),
                turn: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    fn mark_good(&self, peer: PeerId) {
        let mut good = lock(&self.shared.good);
        if good.front() == Some(&peer) {
            return;
        }
        good.retain(|p| *p != peer);
        good.push_front(peer);
        good.truncate(MAX_GOOD_PEERS);
    }

    fn mark_bad(&self, peer: PeerId) {
        lock(&self.shared.good).retain(|p| *p != peer);
    }

    /// A good peer that is connected, taking turns.
    fn pick(&self) -> Option<PeerId> {
        let good: Vec<PeerId> = lock(&self.shared.good)
            .iter()
            .copied()
            .filter(|p| self.inner.host.is_connected(p))
            .collect();
        if good.is_empty() {
            return None;
        }
        let turn = self.shared.turn.fetch_add(1, Ordering::Relaxed);
        Some(good[turn % good.len()])
    }

    fn local(&self, cid: &Cid) -> Result<Option<Block>, NodeError> {
        match self.inner.store.get(cid) {
            Some(data) => Ok(Some(Block::verified(*cid, data)?)),
            None => Ok(None),
        }
    }

    /// Fetches one block; also says whether it came from a peer (`true`) or
    /// the store.
    ///
    /// # Errors
    /// [`NodeError::BlockTimeout`] when no peer delivers it in `timeout`;
    /// [`NodeError::Stopped`] when Bitswap stops; [`NodeError::BadBlock`]
    /// when the store holds bytes that don't match `cid`.
    pub async fn get(&self, cid: Cid, timeout: Duration) -> Result<(Block, bool), NodeError> {
        if let Some(b) = self.local(&cid)? {
            return Ok((b, false));
        }
        let started = Instant::now();
        let deadline = started + timeout;
        let _slot = tokio::select! {
            s = self.inner.want_slots.acquire() => s.map_err(|_| NodeError::Stopped)?,
            () = tokio::time::sleep_until(deadline) => return Err(self.timeout(cid, timeout, 0, 0)),
        };
        let (tx, mut rx) = mpsc::channel(WANT_EVENT_CAPACITY);
        let mut guard = WantGuard {
            inner: self.inner.clone(),
            cid,
            id: self.inner.next_id(),
            asked: HashSet::new(),
            delivered_by: None,
        };
        lock(&self.inner.wants)
            .entry(cid)
            .or_default()
            .push((guard.id, tx));
        // It may have arrived between the first look and registering.
        if let Some(b) = self.local(&cid)? {
            return Ok((b, false));
        }
        let mut w = Want {
            session: self,
            cid,
            priority: self.shared.priority.fetch_sub(1, Ordering::Relaxed).max(1),
            target: None,
            haves: VecDeque::new(),
            dont_have: HashSet::new(),
            block_asked: HashSet::new(),
        };
        let mut peers = self.inner.host.peers_watch();
        peers.borrow_and_update();
        let mut last_broadcast = Instant::now();
        match self.pick() {
            Some(p) => {
                w.want_block(&mut guard, p).await;
                let others: Vec<PeerId> = self
                    .inner
                    .host
                    .connected_peers()
                    .into_iter()
                    .filter(|q| *q != p)
                    .collect();
                w.want_have(&mut guard, others).await;
            }
            None => {
                let all = self.inner.host.connected_peers();
                w.want_have(&mut guard, all).await;
            }
        }
        let mut tick = tokio::time::interval(TICK);
        let cancel = self.inner.cancel.clone();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(NodeError::Stopped),
                () = tokio::time::sleep_until(deadline) => {
                    return Err(self.timeout(cid, timeout, guard.asked.len(), w.dont_have.len()));
                }
                ev = rx.recv() => match ev {
                    Some(WantEvent::Block(from, block)) => {
                        self.mark_good(from);
                        guard.delivered_by = Some(from);
                        return Ok((block, true));
                    }
                    Some(WantEvent::Have(p)) => {
                        self.mark_good(p);
                        w.dont_have.remove(&p);
                        if w.target.is_none() {
                            w.want_block(&mut guard, p).await;
                        } else if !w.block_asked.contains(&p) && !w.haves.contains(&p) {
                            w.haves.push_back(p);
                        }
                    }
                    Some(WantEvent::DontHave(p)) => {
                        w.dont_have.insert(p);
                        self.mark_bad(p);
                        if w.target.is_some_and(|(t, _)| t == p) {
                            w.target = None;
                            w.next_have(&mut guard).await;
                        }
                    }
                    None => return Err(NodeError::Stopped),
                },
                changed = peers.changed() => {
                    if changed.is_err() {
                        return Err(NodeError::Stopped);
                    }
                    let new: Vec<PeerId> = peers
                        .borrow_and_update()
                        .iter()
                        .copied()
                        .filter(|p| !guard.asked.contains(p))
                        .collect();
                    w.want_have(&mut guard, new).await;
                }
                _ = tick.tick() => {
                    if let Some(b) = self.local(&cid)? {
                        return Ok((b, true));
                    }
                    if let Some((t, since)) = w.target
                        && since.elapsed() >= self.inner.config.peer_timeout
                    {
                        tracing::debug!(%cid, peer = %t, "no block in time; moving on");
                        w.target = None;
                        w.next_have(&mut guard).await;
                    }
                    if w.target.is_none()
                        && last_broadcast.elapsed() >= self.inner.config.rebroadcast_interval
                    {
                        last_broadcast = Instant::now();
                        let all = self.inner.host.connected_peers();
                        w.want_have(&mut guard, all).await;
                    }
                }
            }
        }
    }

    fn timeout(&self, cid: Cid, after: Duration, asked: usize, dont_have: usize) -> NodeError {
        NodeError::BlockTimeout {
            cid: cid.to_string(),
            after,
            asked,
            dont_have,
        }
    }

    /// Fetches the DAG under `root` into the store; see
    /// [`super::Bitswap::fetch_dag`].
    ///
    /// # Errors
    /// The first block that can't be fetched or decoded.
    pub async fn fetch_dag(&self, root: Cid, opts: DagFetch) -> Result<DagStats, NodeError> {
        let limit = opts
            .concurrency
            .unwrap_or(self.inner.config.dag_concurrency)
            .max(1);
        let mut stats = DagStats::default();
        if let Some(f) = &opts.before_lookup {
            f(&[root]);
        }
        let mut seen: HashSet<Cid> = HashSet::from([root]);
        let mut queue: VecDeque<Cid> = VecDeque::from([root]);
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < limit
                && let Some(cid) = queue.pop_front()
            {
                if cid.hash().code() == IDENTITY {
                    continue;
                }
                let timeout = opts.block_timeout;
                in_flight.push(async move { self.get(cid, timeout).await });
            }
            let Some(done) = in_flight.next().await else {
                break;
            };
            let (block, fetched) = done?;
            stats.blocks += 1;
            stats.bytes += block.data().len() as u64;
            stats.fetched += u64::from(fetched);
            if let Some(p) = &opts.progress {
                p.send_replace(stats.blocks);
            }
            let new: Vec<Cid> = crate::links(&block)?
                .into_iter()
                .filter(|link| seen.insert(*link))
                .collect();
            if let Some(f) = &opts.before_lookup
                && !new.is_empty()
            {
                f(&new);
            }
            queue.extend(new);
        }
        Ok(stats)
    }
}

/// One want's state.
struct Want<'a> {
    session: &'a Session,
    cid: Cid,
    priority: i32,
    /// The peer sent want-block, and since when.
    target: Option<(PeerId, Instant)>,
    /// Peers that said HAVE, not yet sent want-block.
    haves: VecDeque<PeerId>,
    dont_have: HashSet<PeerId>,
    block_asked: HashSet<PeerId>,
}

impl Want<'_> {
    async fn send(&self, guard: &mut WantGuard, peer: PeerId, want_type: WantType) {
        guard.asked.insert(peer);
        let msg = Message {
            wants: vec![WantEntry {
                priority: self.priority,
                ..WantEntry::want(self.cid, want_type, true)
            }],
            ..Message::default()
        };
        sender::send(&self.session.inner, peer, msg).await;
    }

    async fn want_block(&mut self, guard: &mut WantGuard, peer: PeerId) {
        self.target = Some((peer, Instant::now()));
        self.block_asked.insert(peer);
        self.send(guard, peer, WantType::Block).await;
    }

    async fn want_have(&mut self, guard: &mut WantGuard, peers: Vec<PeerId>) {
        for p in peers {
            if Some(p) != self.target.map(|(t, _)| t) {
                self.send(guard, p, WantType::Have).await;
            }
        }
    }

    /// Sends want-block to the next connected peer that said HAVE.
    async fn next_have(&mut self, guard: &mut WantGuard) {
        while let Some(p) = self.haves.pop_front() {
            if self.session.inner.host.is_connected(&p) && !self.dont_have.contains(&p) {
                self.want_block(guard, p).await;
                return;
            }
        }
    }
}
