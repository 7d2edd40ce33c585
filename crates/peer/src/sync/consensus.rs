//! Consensus glue between the API and the replica: the write queue (group
//! commit, or batching exactly as configured), head announcements with a
//! jittered rebroadcast (carrying the blocks just committed when they fit),
//! the blocks announcements carry applied as they arrive, and the sync loop
//! that chases announced heads until they apply.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cid::Cid;
use crdt_dag::{Replica, Write, WriterId};
use libp2p::PeerId;
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};

use crate::error::PeerError;
use crate::network::messages::{HeadsMessage, MAX_ANNOUNCED_HEADS, MAX_GOSSIP_SIZE};
use crate::network::{Network, Topic};
use crate::sync::batch_log::BatchLog;
use crate::sync::batch_writer::{batch_writer, commit_left_over};
use crate::sync::checkpoints;
use crate::sync::dagsync::{self, PeerSource};
use crate::sync::group_commit::{InFlight, WriteReq, commit_group, gather};
use crate::sync::ipfs_glue::{BlockPutter, IpfsSource};
use crate::sync::lag::Lag;
use crate::sync::queued::Queued;

/// Heads waited for at once; older announcements beyond this are dropped
/// (a rebroadcast brings them back).
const MAX_WANTED_HEADS: usize = 4096;
/// Capacity of the announcement channel into the sync loop.
pub(crate) const ANNOUNCE_CHANNEL_CAPACITY: usize = 256;
/// Capacity of the channel of peers to pull from (trusted peers that just
/// joined the heads topic); more are dropped, their announcements remain.
pub(crate) const PULL_CHANNEL_CAPACITY: usize = 64;
/// How often unapplied announced heads are chased again.
const SYNC_RETRY_INTERVAL: Duration = Duration::from_secs(3);
/// Longest a single sync from one peer may take before another is tried.
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// Heads are announced once more when no write has been announced for this
/// long: gossip under load may drop an announcement (a send queue that
/// stays full), and the last one of a burst has no successor to cover it.
const SETTLE_ANNOUNCE: Duration = Duration::from_secs(1);
/// While writes are in flight, announcements go out at most this often:
/// each costs a signature, a gossip message to every peer and, on each
/// receiver, a store batch with its flushes, so under load one
/// announcement carries the deltas of several commits. A write committed
/// while no other is in flight waits only [`LONE_ANNOUNCE_PACE`].
pub const ANNOUNCE_PACE: Duration = Duration::from_millis(20);

/// While nothing is in flight, announcements go out at most this often: one
/// client writing back to back (a write every ~0.6 ms, each its own delta)
/// made an announcement per write, and each cost every other peer a gossip
/// check, a store batch and an `fdatasync`. A write after a quieter spell
/// still goes out at once.
pub(crate) const LONE_ANNOUNCE_PACE: Duration = Duration::from_millis(2);

/// Settings of the consensus component (`consensus.crdt` and follower mode).
#[derive(Clone, Debug)]
pub struct ConsensusSettings {
    /// `batching.max_batch_size`.
    pub max_batch_size: usize,
    /// `batching.max_batch_age`.
    pub max_batch_age: Duration,
    /// `batching.max_queue_size`.
    pub max_queue_size: usize,
    /// `rebroadcast_interval`.
    pub rebroadcast_interval: Duration,
    /// `cluster.follower_mode`.
    pub follower: bool,
    /// `checkpoint_interval`: 0 makes none on a schedule.
    pub checkpoint_interval: Duration,
    /// `checkpoint_join`: an empty peer starts from a checkpoint.
    pub checkpoint_join: bool,
    /// Bytes of newly committed delta blocks an announcement may carry
    /// ([`ANNOUNCE_BLOCKS_BYTES`]; 0: none, receivers fetch every delta).
    /// Not a configuration key.
    pub announce_blocks: usize,
}

/// What an announcement carries of the deltas committed since the one
/// before, at most. Small deltas (group commit under load: a few KiB,
/// several of them an announcement when [`ANNOUNCE_PACE`] spaces them)
/// are where a fetch's round trip costs more than the bytes; a batch of
/// 500 pins (~44 KiB) is fetched, since gossip relays every copy it
/// forwards whole.
pub const ANNOUNCE_BLOCKS_BYTES: usize = 40 * 1024;

impl ConsensusSettings {
    pub(crate) fn batching(&self) -> bool {
        self.max_batch_size > 0 && !self.max_batch_age.is_zero()
    }
}

/// What consensus uses of the peer's IPFS daemon, when it has one.
#[derive(Clone, Debug, Default)]
pub(crate) struct IpfsGlue {
    /// Puts the deltas this peer writes into IPFS.
    pub(crate) putter: Option<BlockPutter>,
    /// Reads deltas through IPFS when no peer serves them.
    pub(crate) source: Option<IpfsSource>,
}

/// What the sync loop has done since start, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Bulk sync requests sent.
    pub bulk_requests: u64,
    /// Blocks received in bulk answers.
    pub bulk_blocks: u64,
    /// Bulk sync requests to announcers that failed (gone, cut off, busy).
    pub bulk_failures: u64,
    /// Single blocks fetched by walks (one round trip each).
    pub walk_fetches: u64,
    /// Deltas applied from other peers.
    pub applied: u64,
    /// Delta blocks that came inside announcements and were applied or
    /// stored from there, without a fetch.
    pub gossip_blocks: u64,
}

/// Shared [`SyncStats`] counters.
#[derive(Debug, Default)]
pub(crate) struct SyncCounters {
    bulk_requests: AtomicU64,
    bulk_blocks: AtomicU64,
    bulk_failures: AtomicU64,
    walk_fetches: AtomicU64,
    applied: AtomicU64,
    gossip_blocks: AtomicU64,
    /// The heights other peers announced, for the lag.
    pub(crate) lag: Lag,
}

impl SyncCounters {
    pub(crate) fn snapshot(&self) -> SyncStats {
        SyncStats {
            bulk_requests: self.bulk_requests.load(Ordering::Relaxed),
            bulk_blocks: self.bulk_blocks.load(Ordering::Relaxed),
            bulk_failures: self.bulk_failures.load(Ordering::Relaxed),
            walk_fetches: self.walk_fetches.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            gossip_blocks: self.gossip_blocks.load(Ordering::Relaxed),
        }
    }

    /// Counts a bulk fetch.
    fn add_bulk(&self, r: &dagsync::FetchReport) {
        count(&self.bulk_requests, r.requests);
        count(&self.bulk_blocks, r.received);
        count(&self.applied, r.applied);
    }
}

fn count(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// The write side handed to the API.
#[derive(Clone, Debug)]
pub(crate) struct Consensus {
    queue: mpsc::Sender<WriteReq>,
    settings: ConsensusSettings,
    changed: Arc<Notify>,
    queued: Queued,
    in_flight: InFlight,
}

impl Consensus {
    /// Acknowledged writes not yet committed (batching on; empty otherwise).
    pub(crate) fn queued(&self) -> &Queued {
        &self.queued
    }

    /// Announces our heads now (a peer joined), rather than at the next
    /// rebroadcast.
    pub(crate) fn announce_now(&self) {
        self.changed.notify_one();
    }

    /// Queues a write and waits until it is durable (acknowledged).
    pub(crate) async fn submit(&self, write: Write) -> Result<(), PeerError> {
        if self.settings.follower {
            return Err(PeerError::FollowerMode);
        }
        let (tx, rx) = oneshot::channel();
        self.queue
            .try_send(WriteReq {
                write,
                respond_to: tx,
                _counted: self.in_flight.count(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    PeerError::QueueFull(self.settings.max_queue_size)
                }
                mpsc::error::TrySendError::Closed(_) => PeerError::ShuttingDown,
            })?;
        rx.await.map_err(|_| PeerError::ShuttingDown)?
    }
}

/// What consensus runs on.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) replica: Arc<Replica>,
    pub(crate) network: Network,
    pub(crate) settings: ConsensusSettings,
    /// Head announcements heard on gossip.
    pub(crate) announcements: mpsc::Receiver<(PeerId, HeadsMessage)>,
    /// Trusted peers that (re)joined: asked for what we lack.
    pub(crate) pulls: mpsc::Receiver<PeerId>,
    pub(crate) counters: Arc<SyncCounters>,
    pub(crate) ipfs: IpfsGlue,
    /// The durable batch queue (none for a follower). With batching off,
    /// what a run with batching on left in it is committed at start.
    pub(crate) batch_log: Option<BatchLog>,
}

/// Starts the writer, the announcer and the sync loop.
pub(crate) fn start(parts: Parts, cancel: CancellationToken, tasks: &mut JoinSet<()>) -> Consensus {
    let Parts {
        replica,
        network,
        settings,
        announcements,
        pulls,
        counters,
        ipfs,
        batch_log,
    } = parts;
    let (tx, rx) = mpsc::channel(settings.max_queue_size.max(1));
    let changed = Arc::new(Notify::new());
    let fresh = Arc::new(Mutex::new(FreshBlocks::new(settings.announce_blocks)));
    let queued = Queued::default();
    let in_flight = InFlight::default();
    let (heard_tx, heard_rx) = mpsc::channel(ANNOUNCE_CHANNEL_CAPACITY);
    tasks.spawn(apply_announced_blocks(
        replica.clone(),
        announcements,
        heard_tx,
        counters.clone(),
        cancel.clone(),
    ));
    tasks.spawn(sync_loop(
        replica.clone(),
        network.clone(),
        heard_rx,
        pulls,
        counters,
        ipfs.source.clone(),
        settings.follower,
        settings.checkpoint_join,
        cancel.clone(),
    ));
    if !settings.follower && !settings.checkpoint_interval.is_zero() {
        tasks.spawn(checkpoints::checkpointer(
            replica.clone(),
            checkpoints::Schedule::every(settings.checkpoint_interval),
            cancel.clone(),
        ));
    }
    if !settings.follower {
        let writer = Writer {
            replica: replica.clone(),
            changed: changed.clone(),
            fresh: fresh.clone(),
            putter: ipfs.putter,
        };
        match batch_log {
            Some(log) if settings.batching() => tasks.spawn(batch_writer(
                writer,
                settings.clone(),
                rx,
                log,
                queued.clone(),
                cancel.clone(),
            )),
            left => tasks.spawn(group_commit_writer(
                writer,
                rx,
                left,
                queued.clone(),
                cancel.clone(),
            )),
        };
        tasks.spawn(announcer(
            replica,
            network,
            settings.rebroadcast_interval,
            changed.clone(),
            fresh,
            in_flight.clone(),
            cancel,
        ));
    }
    Consensus {
        queue: tx,
        settings,
        changed,
        queued,
        in_flight,
    }
}

/// What both writers commit with.
pub(crate) struct Writer {
    pub(crate) replica: Arc<Replica>,
    /// Wakes the announcer.
    changed: Arc<Notify>,
    /// The blocks the next announcement carries.
    fresh: Arc<Mutex<FreshBlocks>>,
    putter: Option<BlockPutter>,
}

/// Blocks committed since the last announcement, oldest first, up to a
/// byte budget: once one doesn't fit, none after it is kept either (a
/// receiver applies them in order; the rest it fetches).
#[derive(Debug, Default)]
struct FreshBlocks {
    /// [`ConsensusSettings::announce_blocks`].
    budget: usize,
    blocks: Vec<serde_bytes::ByteBuf>,
    bytes: usize,
    full: bool,
}

impl FreshBlocks {
    fn new(budget: usize) -> Self {
        FreshBlocks {
            budget,
            ..FreshBlocks::default()
        }
    }

    fn push(&mut self, block: &[u8]) {
        if self.full
            || self.bytes + block.len() > self.budget
            || self.blocks.len() >= crate::network::messages::MAX_ANNOUNCED_BLOCKS
        {
            self.full = true;
            return;
        }
        self.bytes += block.len();
        self.blocks.push(serde_bytes::ByteBuf::from(block.to_vec()));
    }

    fn take(&mut self) -> Vec<serde_bytes::ByteBuf> {
        self.bytes = 0;
        self.full = false;
        std::mem::take(&mut self.blocks)
    }
}

impl Writer {
    /// What a commit calls with the blocks it wrote, before its flush:
    /// [`carry`] into the next announcement.
    pub(crate) fn carrier(&self) -> impl FnMut(&[(Cid, Vec<u8>)]) + Send + 'static {
        let fresh = self.fresh.clone();
        move |blocks| carry(&fresh, blocks)
    }

    /// Deltas whose blocks were handed to [`carry`] are durable: wake the
    /// announcer and put the blocks into IPFS.
    pub(crate) fn durable(&self, blocks: Vec<(Cid, Vec<u8>)>) {
        if blocks.is_empty() {
            return;
        }
        self.changed.notify_one();
        if let Some(p) = &self.putter {
            for (cid, block) in blocks {
                p.put(cid, block);
            }
        }
    }
}

/// Has the next announcement carry `blocks` (as many as fit).
fn carry(fresh: &Mutex<FreshBlocks>, blocks: &[(Cid, Vec<u8>)]) {
    let mut fresh = fresh.lock().unwrap_or_else(|e| e.into_inner());
    for (_, block) in blocks {
        fresh.push(block);
    }
}

/// Batching off: the writes queued meanwhile become one delta ([`commit_group`]).
async fn group_commit_writer(
    w: Writer,
    mut rx: mpsc::Receiver<WriteReq>,
    left: Option<BatchLog>,
    queued: Queued,
    cancel: CancellationToken,
) {
    if let Some(log) = left {
        commit_left_over(&w, &log, &queued, &cancel).await;
    }
    let mut last = 0;
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            r = rx.recv() => match r { Some(r) => r, None => break },
        };
        let reqs = gather(first, &mut rx, last).await;
        last = reqs.len();
        let (r, written) = (w.replica.clone(), w.carrier());
        let commit = move || commit_group(&r, reqs, written);
        match tokio::task::spawn_blocking(commit).await {
            Ok(blocks) => w.durable(blocks),
            Err(e) => warn!(error = %e, "write task failed"),
        }
    }
    refuse_rest(rx);
}

/// Whatever is still queued was never acknowledged: tell its callers.
pub(crate) fn refuse_rest(mut rx: mpsc::Receiver<WriteReq>) {
    rx.close();
    while let Ok(r) = rx.try_recv() {
        let _ = r.respond_to.send(Err(PeerError::ShuttingDown));
    }
}

/// `interval` randomised by ±30%, so peers don't rebroadcast in lockstep.
fn jittered(interval: Duration) -> Duration {
    let f = rand::thread_rng().gen_range(0.7..1.3);
    interval.mul_f64(f)
}

async fn announcer(
    replica: Arc<Replica>,
    network: Network,
    rebroadcast: Duration,
    changed: Arc<Notify>,
    fresh: Arc<Mutex<FreshBlocks>>,
    in_flight: InFlight,
    cancel: CancellationToken,
) {
    // Set after an announcement a change woke: the next is the settling one.
    let mut settling = false;
    let mut pace = Pace::default();
    loop {
        let wait = if settling {
            SETTLE_ANNOUNCE
        } else {
            jittered(rebroadcast)
        };
        settling = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = changed.notified() => true,
            _ = tokio::time::sleep(wait) => false,
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = pace.wait(spacing(settling, in_flight.busy())) => {}
        }
        let (r, f) = (replica.clone(), fresh.clone());
        let announced = tokio::task::spawn_blocking(move || announcement(&r, &f));
        let mut msg = match announced.await {
            Ok(Some(msg)) => msg,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %e, "announcement task failed");
                continue;
            }
        };
        let mut bytes = msg.encode();
        if bytes.len() > MAX_GOSSIP_SIZE {
            // Many heads and blocks: the heads alone (receivers fetch).
            msg.blocks.clear();
            bytes = msg.encode();
        }
        if let Err(e) = network.publish(Topic::Heads, bytes).await {
            debug!(error = %e, "announcing heads");
        }
    }
}

/// The heads, and the blocks written since the last announcement. Every
/// delta the heads name is durable: a commit syncs its block file frame
/// before the store shows it, and takes the frame back if the store
/// refuses the batch (spec/crdt.md §8), so no other peer takes a delta
/// that a restart would lose (its writer would sign another delta with the
/// same seq). `None`: no heads yet, or the store can't be read.
fn announcement(replica: &Replica, fresh: &Mutex<FreshBlocks>) -> Option<HeadsMessage> {
    // Taken before the heads are read, so the heads reach every block
    // carried.
    let blocks = fresh.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (replica.heads(), replica.height()) {
        (Ok(mut heads), Ok(height)) if !heads.is_empty() => {
            heads.truncate(MAX_ANNOUNCED_HEADS);
            Some(HeadsMessage {
                heads,
                height,
                blocks,
            })
        }
        (Ok(_), Ok(_)) => None,
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "reading heads");
            None
        }
    }
}

/// How long after the previous announcement the next may go out: one a
/// write woke waits [`ANNOUNCE_PACE`] while other writes are in flight,
/// else [`LONE_ANNOUNCE_PACE`]; a rebroadcast waits for nothing.
fn spacing(after_write: bool, busy: bool) -> Duration {
    match (after_write, busy) {
        (true, true) => ANNOUNCE_PACE,
        (true, false) => LONE_ANNOUNCE_PACE,
        (false, _) => Duration::ZERO,
    }
}

/// Spaces announcements apart.
#[derive(Debug, Default)]
struct Pace {
    last: Option<tokio::time::Instant>,
}

impl Pace {
    /// Returns when the next announcement may go out: `every` after the
    /// previous one (at once if that is past, or for the first).
    async fn wait(&mut self, every: Duration) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + every).await;
        }
        self.last = Some(tokio::time::Instant::now());
    }
}

/// Applies the blocks announcements carry, in the order they came, then
/// hands each announcement on to the sync loop, which finds its heads
/// applied and asks for nothing. The announcements that queued while the
/// previous ones were applied are taken together: one check pass, one
/// store batch and one flush for all their blocks. Blocks already applied
/// are skipped before any check; the others are receipt-checked like any
/// fetched block, and one whose parents are missing is stored pending (the
/// sync loop fetches those). Announcements wait here meanwhile: more than
/// the channel holds are dropped, and a later one (or the writer's
/// settling announcement) brings their heads back.
async fn apply_announced_blocks(
    replica: Arc<Replica>,
    mut heard: mpsc::Receiver<(PeerId, HeadsMessage)>,
    to_sync: mpsc::Sender<(PeerId, HeadsMessage)>,
    counters: Arc<SyncCounters>,
    cancel: CancellationToken,
) {
    let mut taken = Vec::new();
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return,
            m = heard.recv() => match m { Some(m) => m, None => return },
        };
        taken.push(first);
        while taken.len() < ANNOUNCE_CHANNEL_CAPACITY {
            match heard.try_recv() {
                Ok(m) => taken.push(m),
                Err(_) => break,
            }
        }
        let blocks: Vec<_> = taken
            .iter_mut()
            .flat_map(|(_, m)| std::mem::take(&mut m.blocks))
            .collect();
        if !blocks.is_empty() {
            let r = replica.clone();
            let work = tokio::task::spawn_blocking(move || apply_blocks(&r, blocks));
            match work.await {
                Ok(Ok(report)) => {
                    count(&counters.gossip_blocks, report.received);
                    count(&counters.applied, report.applied);
                }
                Ok(Err(e)) => debug!(error = %e, "announced blocks not applied"),
                Err(e) => warn!(error = %e, "announced blocks task failed"),
            }
        }
        for (author, msg) in taken.drain(..) {
            if to_sync.try_send((author, msg)).is_err() {
                debug!(%author, "sync loop busy: an announcement dropped");
            }
        }
    }
}

/// What came of an announcement's blocks.
#[derive(Debug, Default)]
struct AnnouncedReport {
    /// Blocks new to this peer, checked and applied or stored pending.
    received: usize,
    /// Deltas applied (pending ones they made ready included).
    applied: usize,
}

/// Receipt-checks and applies the blocks of announcements, in order.
fn apply_blocks(
    replica: &Replica,
    blocks: Vec<serde_bytes::ByteBuf>,
) -> Result<AnnouncedReport, PeerError> {
    let mut new = Vec::with_capacity(blocks.len());
    for block in blocks {
        let block = block.into_vec();
        let cid = crdt_dag::block_cid(&block);
        if !replica.is_applied(&cid)? {
            new.push((cid, block));
        }
    }
    if new.is_empty() {
        return Ok(AnnouncedReport::default());
    }
    let (ok, _rejected) = dagsync::verify(replica, new)?;
    let received = ok.len();
    let applied = replica.apply_verified(ok)?.applied;
    Ok(AnnouncedReport { received, applied })
}

/// Chases announced heads: a bulk fetch from the announcer, then a walk that
/// asks single blocks of any peer that announced them. Heads that don't apply
/// stay wanted and are retried; nothing is given up. A trusted peer that
/// (re)joins is asked for what we lack at once: an announcement lost while
/// it was down or cut off (or dropped here under load) does not wait for
/// the next rebroadcast. A `follower` asks other followers first, both
/// times ([`from_followers`]).
#[allow(clippy::too_many_arguments)] // what it runs on, each used apart
async fn sync_loop(
    replica: Arc<Replica>,
    network: Network,
    mut announcements: mpsc::Receiver<(PeerId, HeadsMessage)>,
    mut pulls: mpsc::Receiver<PeerId>,
    counters: Arc<SyncCounters>,
    ipfs: Option<IpfsSource>,
    follower: bool,
    checkpoint_join: bool,
    cancel: CancellationToken,
) {
    let mut wanted: Wanted = HashMap::new();
    let mut retry = tokio::time::interval(SYNC_RETRY_INTERVAL);
    // The walk through IPFS for heads no peer could serve, if one runs: it
    // runs beside the loop, not in it (a head only a dead peer had can take
    // IPFS 30 s a block to give up on, and the live peers' heads must not
    // wait for that), and one at a time; aborted when the loop ends.
    let mut ipfs_walk: Option<AbortOnDropHandle<()>> = None;
    // Set when heads arrived during a chase: chase again at once.
    let mut fresh = false;
    loop {
        if !fresh {
            tokio::select! {
                _ = cancel.cancelled() => return,
                Some(peer) = pulls.recv() => {
                    let mut peers = BTreeSet::from([peer]);
                    while let Ok(p) = pulls.try_recv() {
                        peers.insert(p);
                    }
                    let pulling = async {
                        if checkpoint_join {
                            let from: Vec<PeerId> = peers.iter().copied().collect();
                            checkpoints::join_from_checkpoint(&replica, &network, &from).await;
                        }
                        if follower {
                            from_followers(&replica, &network, &[], None, &counters).await;
                        }
                        for peer in peers {
                            pull(&replica, &network, peer, &counters).await;
                        }
                    };
                    let lag = &counters.lag;
                    if !taking(pulling, &replica, &mut announcements, &mut wanted, lag, &cancel).await {
                        return;
                    }
                    fresh = !wanted.is_empty();
                    continue;
                }
                a = announcements.recv() => match a {
                    Some((author, msg)) => want(&replica, &mut wanted, author, msg, &counters.lag),
                    None => return,
                },
                _ = retry.tick() => {}
            }
        }
        fresh = false;
        // Take whatever else queued up before syncing once for all.
        while let Ok((author, msg)) = announcements.try_recv() {
            want(&replica, &mut wanted, author, msg, &counters.lag);
        }
        counters.lag.set_wanted(wanted.len());
        if wanted.is_empty() {
            continue;
        }
        // Announcements keep being taken while the chase runs: one slow or
        // dead announcer must not make the channel overflow and lose the
        // live writers' heads.
        let mut incoming: Wanted = HashMap::new();
        let mut left = vec![];
        let chasing = async {
            if checkpoint_join {
                let from: BTreeSet<PeerId> = wanted.values().flatten().copied().collect();
                let from: Vec<PeerId> = from.into_iter().collect();
                checkpoints::join_from_checkpoint(&replica, &network, &from).await;
            }
            left = chase(
                &replica,
                &network,
                &mut wanted,
                &counters,
                ipfs.as_ref(),
                follower,
            )
            .await;
        };
        if !taking(
            chasing,
            &replica,
            &mut announcements,
            &mut incoming,
            &counters.lag,
            &cancel,
        )
        .await
        {
            return;
        }
        // What no cluster peer could serve, IPFS may have: every delta is
        // put into its writer's IPFS. The heads stay wanted meanwhile.
        if let (Some(source), false) = (&ipfs, left.is_empty())
            && ipfs_walk.as_ref().is_none_or(|w| w.is_finished())
        {
            let (replica, source, counters) = (replica.clone(), source.clone(), counters.clone());
            ipfs_walk = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                walk(&replica, &left, &source, &counters, "ipfs").await;
            })));
        }
        for (head, announcers) in incoming {
            fresh = true;
            want_from(&replica, &mut wanted, head, announcers);
        }
        counters.lag.set_wanted(wanted.len());
    }
}

/// Runs `work` while adding the announcements that arrive to `wanted`;
/// false if cancelled first.
async fn taking(
    work: impl std::future::Future<Output = ()>,
    replica: &Replica,
    announcements: &mut mpsc::Receiver<(PeerId, HeadsMessage)>,
    wanted: &mut Wanted,
    lag: &Lag,
    cancel: &CancellationToken,
) -> bool {
    tokio::pin!(work);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            () = &mut work => return true,
            Some((author, msg)) = announcements.recv() => want(replica, wanted, author, msg, lag),
        }
    }
}

/// Announced heads not applied yet, each with the peers that announced it.
type Wanted = HashMap<Cid, HashSet<PeerId>>;

/// Adds the `heads` `author` announced that are not applied to `wanted`.
fn want(replica: &Replica, wanted: &mut Wanted, author: PeerId, msg: HeadsMessage, lag: &Lag) {
    lag.heard(msg.height, || replica.height().unwrap_or(0));
    for h in msg.heads {
        want_from(replica, wanted, h, HashSet::from([author]));
    }
}

/// Adds `head` as announced by `announcers` unless it is applied or
/// `wanted` is full ([`MAX_WANTED_HEADS`]; a rebroadcast brings it back).
fn want_from(replica: &Replica, wanted: &mut Wanted, head: Cid, announcers: HashSet<PeerId>) {
    if wanted.len() >= MAX_WANTED_HEADS && !wanted.contains_key(&head) {
        return;
    }
    if !replica.is_applied(&head).unwrap_or(false) {
        wanted.entry(head).or_default().extend(announcers);
    }
}

/// One bulk fetch of what `peer` has and we lack.
async fn pull(replica: &Arc<Replica>, network: &Network, peer: PeerId, counters: &SyncCounters) {
    let mut control = network.streams();
    let started = std::time::Instant::now();
    match tokio::time::timeout(
        SYNC_TIMEOUT,
        dagsync::fetch_all(replica, &mut control, peer),
    )
    .await
    {
        Ok(Ok(r)) => {
            counters.add_bulk(&r);
            if r.applied > 0 {
                info!(
                    %peer, received = r.received, applied = r.applied,
                    ms = started.elapsed().as_millis() as u64, on = "join", "synced"
                );
            }
        }
        Ok(Err(e)) => debug!(%peer, error = %e, "pull from a peer that joined failed"),
        Err(_) => debug!(%peer, "pull from a peer that joined timed out"),
    }
}

/// Chases `wanted`: a `follower` first asks other followers and its IPFS
/// (`ipfs`, [`from_followers`]); then the announcers of heads still missing are each
/// asked for a bulk answer and walked ([`from_announcer`]), most heads
/// first, the next one also asked whenever those asked so far have not
/// brought every head within [`HEDGE_AFTER`]. Returns the heads still
/// wanted, for the caller to look for in IPFS.
async fn chase(
    replica: &Arc<Replica>,
    network: &Network,
    wanted: &mut Wanted,
    counters: &SyncCounters,
    ipfs: Option<&IpfsSource>,
    follower: bool,
) -> Vec<Cid> {
    if follower {
        let heads: Vec<Cid> = wanted.keys().copied().collect();
        from_followers(replica, network, &heads, ipfs, counters).await;
    }
    wanted.retain(|h, _| !replica.is_applied(h).unwrap_or(false));
    let announced: &Wanted = wanted;
    let missing_from = |peer: &PeerId| {
        announced
            .iter()
            .any(|(h, ps)| ps.contains(peer) && !replica.is_applied(h).unwrap_or(false))
    };
    let mut peers: HashMap<PeerId, usize> = HashMap::new();
    for p in announced.values().flatten() {
        *peers.entry(*p).or_default() += 1;
    }
    let mut peers: Vec<(PeerId, usize)> = peers.into_iter().collect();
    peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut next = peers.into_iter().map(|(p, _)| p);
    let mut asking = futures::stream::FuturesUnordered::new();
    let mut hedge = tokio::time::Instant::now();
    let mut exhausted = false;
    loop {
        if announced
            .keys()
            .all(|h| replica.is_applied(h).unwrap_or(false))
        {
            // What is still being answered is not wanted any more.
            break;
        }
        if !exhausted
            && asking.len() < MAX_ASKED_AT_ONCE
            && (asking.is_empty() || tokio::time::Instant::now() >= hedge)
        {
            match next.by_ref().find(&missing_from) {
                Some(peer) => {
                    if !asking.is_empty() {
                        debug!(%peer, asked = asking.len(), "announcers slow to answer; asking another too");
                    }
                    asking.push(from_announcer(replica, network, announced, peer, counters));
                    hedge = tokio::time::Instant::now() + HEDGE_AFTER;
                    continue;
                }
                None => exhausted = true,
            }
        }
        if asking.is_empty() {
            break;
        }
        let may_hedge = !exhausted && asking.len() < MAX_ASKED_AT_ONCE;
        tokio::select! {
            _ = futures::StreamExt::next(&mut asking) => {}
            _ = tokio::time::sleep_until(hedge), if may_hedge => {}
        }
    }
    drop(asking);
    // Heads rejected for good are not wanted any more.
    wanted.retain(|h, _| {
        !replica.is_applied(h).unwrap_or(false) && replica.rejection(h).ok().flatten().is_none()
    });
    wanted.keys().copied().collect()
}

/// A chase asks another announcer too when those asked have not brought
/// every wanted head within this long: a peer cut off (or dead) mid-answer
/// holds its request until the connection or a frame timeout gives up, and
/// must not hold back the heads the others can serve at once...
const HEDGE_AFTER: Duration = Duration::from_secs(2);
/// ...up to this many announcers at once.
const MAX_ASKED_AT_ONCE: usize = 3;

/// One announcer's bulk answer, then a walk for the heads it announced that
/// the answer missed.
async fn from_announcer(
    replica: &Arc<Replica>,
    network: &Network,
    announced: &Wanted,
    peer: PeerId,
    counters: &SyncCounters,
) {
    let mut control = network.streams();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        SYNC_TIMEOUT,
        dagsync::fetch_all(replica, &mut control, peer),
    )
    .await;
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Ok(r)) => {
            counters.add_bulk(&r);
            if r.applied > 0 {
                info!(
                    %peer, received = r.received, applied = r.applied, rejected = r.rejected,
                    ms, "synced"
                );
            }
        }
        // A peer that can't answer (gone, cut off, too busy) would fail
        // every block of a walk too, one retry each: its heads stay
        // wanted, from whoever else announces them or from it later.
        Ok(Err(e)) => {
            count(&counters.bulk_failures, 1);
            debug!(%peer, error = %e, ms, "bulk sync failed");
            return;
        }
        Err(_) => {
            count(&counters.bulk_failures, 1);
            debug!(%peer, "bulk sync timed out");
            return;
        }
    }
    // Whatever the bulk answer missed, walk for it block by block.
    let heads: Vec<Cid> = announced
        .iter()
        .filter(|(h, ps)| ps.contains(&peer) && !replica.is_applied(h).unwrap_or(false))
        .map(|(h, _)| *h)
        .collect();
    if !heads.is_empty() {
        let source = PeerSource {
            control: network.streams(),
            peer,
        };
        walk(replica, &heads, &source, counters, &peer.to_string()).await;
    }
}

/// Followers asked at a time...
const FOLLOWERS_ASKED: usize = 2;
/// ...after a random wait up to this long (followers that heard the same
/// announcement don't ask in lockstep)...
const FOLLOWER_ROUND: Duration = Duration::from_millis(500);
/// ...until a random patience has passed, up to this long per follower
/// connected (and one more for the follower's IPFS; at most
/// [`FOLLOWER_PATIENCE_MAX`]): the first followers out of patience fetch
/// from the writers and the others find it at them, and about as many run
/// out first however many followers there are.
const FOLLOWER_PATIENCE_EACH: Duration = Duration::from_millis(500);
/// The longest patience, however many followers are connected.
const FOLLOWER_PATIENCE_MAX: Duration = Duration::from_secs(10);

/// A follower first asks other followers (connected peers that may not
/// write), [`FOLLOWERS_ASKED`] picked at random each round so the load
/// spreads, for a bulk answer of what they hold, and meanwhile walks for
/// `heads` through its IPFS (`ipfs`: Bitswap from any IPFS node holding
/// them, followers' included), until `heads` apply (one follower at least
/// is asked) or its patience runs out; the trusted peers then serve only
/// what is still missing. All of it within [`SYNC_TIMEOUT`]; a follower
/// that fails is not asked again here (every block is verified whoever
/// serves it, and the trusted peers remain the fallback).
async fn from_followers(
    replica: &Arc<Replica>,
    network: &Network,
    heads: &[Cid],
    ipfs: Option<&IpfsSource>,
    counters: &SyncCounters,
) {
    let trust = &replica.config().trust;
    let missing = || {
        heads
            .iter()
            .any(|h| !replica.is_applied(h).unwrap_or(false))
    };
    let mut failed = HashSet::new();
    // Subscribers of the heads topic only: a connected peer of another
    // cluster, a relay or a DHT neighbour has nothing to give.
    let followers = |failed: &HashSet<PeerId>| {
        let peers = network.heads_subscribers();
        let failed = failed.clone();
        async move {
            let mut followers: Vec<PeerId> = peers
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|p| {
                    !failed.contains(p)
                        && WriterId::from_peer_id_bytes(&p.to_bytes())
                            .map_or(true, |w| !trust.allows(&w))
                })
                .collect();
            followers.shuffle(&mut rand::thread_rng());
            followers
        }
    };
    // A walk needs heads to look for (a join's pull has none).
    let ipfs = ipfs.filter(|_| !heads.is_empty());
    let sources = followers(&failed).await.len() + usize::from(ipfs.is_some());
    if sources == 0 {
        return;
    }
    let most = FOLLOWER_PATIENCE_EACH.saturating_mul(u32::try_from(sources).unwrap_or(u32::MAX));
    let patience = rand::thread_rng().gen_range(Duration::ZERO..most.min(FOLLOWER_PATIENCE_MAX));
    let started = tokio::time::Instant::now();
    let mut control = network.streams();
    let asking = async {
        loop {
            let followers = followers(&failed).await;
            if followers.is_empty() {
                // Only the IPFS walk, if any, for the rest of the patience.
                tokio::time::sleep_until(started + patience).await;
                return;
            }
            let wait = rand::thread_rng().gen_range(Duration::ZERO..FOLLOWER_ROUND);
            tokio::time::sleep(wait).await;
            for peer in followers.into_iter().take(FOLLOWERS_ASKED) {
                match dagsync::fetch_newer(replica, &mut control, peer).await {
                    Ok(r) => {
                        counters.add_bulk(&r);
                        if r.applied > 0 {
                            info!(
                                %peer, received = r.received, applied = r.applied,
                                from = "follower", "synced"
                            );
                        }
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "bulk sync from a follower failed");
                        failed.insert(peer);
                    }
                }
                if !missing() {
                    return;
                }
            }
            if started.elapsed() >= patience {
                return;
            }
        }
    };
    let walking = async {
        if let Some(source) = ipfs {
            walk(replica, heads, source, counters, "ipfs").await;
            if !missing() {
                return;
            }
        }
        // Nothing (more) from IPFS: the followers' asking decides.
        std::future::pending::<()>().await;
    };
    let either = async {
        tokio::select! {
            () = asking => {}
            () = walking => {}
        }
    };
    if tokio::time::timeout(SYNC_TIMEOUT, either).await.is_err() {
        debug!("bulk sync from followers timed out");
    }
}

/// A block-by-block walk for `heads` from `source` (named `from` in logs),
/// bounded in time, counted in `counters`.
async fn walk<S: crdt_dag::BlockSource>(
    replica: &Replica,
    heads: &[Cid],
    source: &S,
    counters: &SyncCounters,
    from: &str,
) {
    match tokio::time::timeout(SYNC_TIMEOUT, replica.sync(heads, source)).await {
        Ok(Ok(r)) => {
            count(&counters.walk_fetches, r.fetched);
            count(&counters.applied, r.applied);
            if !r.rejected.is_empty() {
                warn!(from, rejected = r.rejected.len(), "refused deltas");
            }
        }
        Ok(Err(e)) => warn!(from, error = %e, "walk failed"),
        Err(_) => debug!(from, "walk timed out"),
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    fn replica(name: &str) -> Arc<Replica> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        Arc::new(Replica::temporary(key, crdt_dag::ReplicaConfig::new(name)).unwrap())
    }

    fn pin(n: u8) -> Write {
        use multihash_codetable::{Code, MultihashDigest};
        let cid = Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]));
        Write::Pin(cluster_types::Pin::new(
            cid,
            cluster_types::PinOptions::default(),
        ))
    }

    /// An announcement carries the heads and the blocks written since the
    /// last one (each block once); none goes out before the first delta.
    #[test]
    fn an_announcement_carries_the_heads_and_the_blocks_since_the_last() {
        let r = replica("announce");
        let fresh = Mutex::new(FreshBlocks::new(32 << 10));
        assert!(announcement(&r, &fresh).is_none(), "no heads yet");
        let first = r.write(vec![pin(1)]).unwrap();
        fresh.lock().unwrap().push(&first.block);
        let msg = announcement(&r, &fresh).expect("announced");
        assert_eq!(msg.heads, [first.cid]);
        assert_eq!(msg.blocks, [first.block]);
        let again = announcement(&r, &fresh).expect("announced");
        assert_eq!(again.heads, [first.cid]);
        assert!(again.blocks.is_empty(), "a block carried twice");
    }

    /// A write made while nothing else is in flight is answered before the
    /// announcer is woken for it, so it waits the lone pace at most, not
    /// [`ANNOUNCE_PACE`].
    #[tokio::test]
    async fn a_lone_write_is_answered_before_the_announcer_wakes() {
        let r = replica("lone");
        let changed = Arc::new(Notify::new());
        let w = Writer {
            replica: r.clone(),
            changed: changed.clone(),
            fresh: Arc::new(Mutex::new(FreshBlocks::new(32 << 10))),
            putter: None,
        };
        let (tx, rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let writer = tokio::spawn(group_commit_writer(
            w,
            rx,
            None,
            Queued::default(),
            cancel.clone(),
        ));
        let in_flight = InFlight::default();
        for n in 0..3 {
            let (respond_to, mut answer) = oneshot::channel();
            tx.send(WriteReq {
                write: pin(n),
                respond_to,
                _counted: in_flight.count(),
            })
            .await
            .unwrap();
            changed.notified().await;
            assert!(!in_flight.busy(), "woken while the write is in flight");
            assert!(answer.try_recv().is_ok_and(|a| a.is_ok()));
        }
        assert_eq!(r.height().unwrap(), 3);
        cancel.cancel();
        writer.await.unwrap();
    }

    /// Under load one announcement every [`ANNOUNCE_PACE`]; a write made
    /// while nothing else is in flight goes out at once, unless the last
    /// announcement is under [`LONE_ANNOUNCE_PACE`] old; a rebroadcast
    /// goes out at once.
    #[tokio::test(start_paused = true)]
    async fn announcements_are_paced_by_what_is_in_flight() {
        let (busy, lone, rebroadcast) = (
            spacing(true, true),
            spacing(true, false),
            spacing(false, true),
        );
        assert_eq!(
            (busy, lone, rebroadcast),
            (ANNOUNCE_PACE, LONE_ANNOUNCE_PACE, Duration::ZERO)
        );
        assert!(LONE_ANNOUNCE_PACE < ANNOUNCE_PACE);
        let mut pace = Pace::default();
        let start = Instant::now();
        pace.wait(busy).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first waits for nothing"
        );
        pace.wait(busy).await;
        assert_eq!(
            start.elapsed(),
            ANNOUNCE_PACE,
            "busy: one pace after the last"
        );
        tokio::time::advance(Duration::from_millis(3)).await;
        pace.wait(lone).await;
        assert_eq!(
            start.elapsed(),
            ANNOUNCE_PACE + Duration::from_millis(3),
            "alone, the last {LONE_ANNOUNCE_PACE:?} or more ago: at once"
        );
        pace.wait(lone).await;
        assert_eq!(
            start.elapsed(),
            ANNOUNCE_PACE + Duration::from_millis(3) + LONE_ANNOUNCE_PACE,
            "alone, right after the last: one lone pace after it"
        );
        let before = Instant::now();
        pace.wait(rebroadcast).await;
        assert_eq!(before.elapsed(), Duration::ZERO, "a rebroadcast: at once");
        pace.wait(busy).await;
        assert_eq!(before.elapsed(), ANNOUNCE_PACE);
        tokio::time::advance(ANNOUNCE_PACE * 5).await;
        let before = Instant::now();
        pace.wait(busy).await;
        assert_eq!(
            before.elapsed(),
            Duration::ZERO,
            "long after the last: at once"
        );
    }
}
