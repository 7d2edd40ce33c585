//! A replica of the pinset over sled: local signed writes, walks that fetch
//! and apply remote history in causal order, queries, and change events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use cid::Cid;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::delta::{Delta, Op, dot_key};
use crate::error::{DagError, Rejection, Result};
use crate::limits::{APPLY_BATCH_DELTAS, Limits, MAX_BLOCK_SIZE, MAX_PARENTS_PER_DELTA};
use crate::pin::{Dot, PinEntry, PinEvent};
use crate::source::BlockSource;
use crate::store::{
    DeltaInfo, META_CLUSTER, META_COUNT, META_VERSION, Overlay, Record, StoredEntry, cid_key, key,
    prefix, u64_value,
};
use crate::wire_pin::WirePin;
use crate::writer::{TrustPolicy, WriterId};
use cluster_types::Pin;

/// sled page cache of a replica opened by path: enough for the hot part of
/// the pinset; the OS page cache holds the rest.
pub const CACHE_BYTES: u64 = 64 << 20;

/// On-disk layout version written under `m`.
const STORE_VERSION: u64 = 1;
/// Name of the sled tree the replica uses inside a shared database.
pub const TREE_NAME: &str = "crdt";

/// What a replica needs to know besides its key.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// `consensus.crdt.cluster_name`: deltas of other clusters are rejected.
    pub cluster: String,
    /// `consensus.crdt.trusted_peers`.
    pub trust: TrustPolicy,
    /// Bounds on unapplied work.
    pub limits: Limits,
}

impl ReplicaConfig {
    /// A config for `cluster` trusting everyone, with default limits.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            trust: TrustPolicy::All,
            limits: Limits::default(),
        }
    }
}

/// One mutation asked of [`Replica::write`].
// Nearly every write is a pin; boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Pin (or update) `pin.cid` as `pin` says. The pin is written as given:
    /// placement (allocations, replication) is the caller's.
    Pin(Pin),
    /// Unpin the CID.
    Unpin(Cid),
}

impl Write {
    /// The CID written.
    pub fn cid(&self) -> &Cid {
        match self {
            Self::Pin(pin) => &pin.cid,
            Self::Unpin(cid) => cid,
        }
    }
}

/// The outcome of a durable local write.
#[derive(Clone, Debug)]
pub struct Written {
    /// The new delta's CID (the new head to announce).
    pub cid: Cid,
    /// Its block (to put into IPFS and serve to peers).
    pub block: Vec<u8>,
    /// The delta itself.
    pub delta: Delta,
    /// Heads after the write.
    pub heads: Vec<Cid>,
    /// Pinset changes it made.
    pub events: Vec<PinEvent>,
}

/// Caps on one walk's work, so a caller can interleave walks with other work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncBudget {
    /// Most blocks fetched from the source in this walk.
    pub max_fetch: usize,
    /// Most deltas applied in this walk.
    pub max_apply: usize,
}

impl Default for SyncBudget {
    fn default() -> Self {
        Self {
            max_fetch: usize::MAX,
            max_apply: usize::MAX,
        }
    }
}

/// What a walk did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Blocks fetched from the source and stored pending.
    pub fetched: usize,
    /// Deltas applied.
    pub applied: usize,
    /// Ops applied (pins and unpins).
    pub ops_applied: usize,
    /// CIDs the source could not provide in this walk.
    pub missing: Vec<Cid>,
    /// Blocks rejected in this walk, with why.
    pub rejected: Vec<(Cid, Rejection)>,
    /// Blocks still pending after the walk.
    pub pending: usize,
    /// The walk stopped at the pending limits.
    pub pending_full: bool,
    /// The walk stopped at its budget.
    pub budget_exhausted: bool,
}

impl SyncReport {
    /// Whether nothing is left to fetch or apply.
    pub fn is_complete(&self) -> bool {
        self.pending == 0 && self.missing.is_empty() && !self.pending_full && !self.budget_exhausted
    }
}

/// Evidence that a writer signed two deltas with one sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The writer.
    pub writer: WriterId,
    /// The sequence number used twice.
    pub seq: u64,
    /// The deltas carrying it (both signed by the writer).
    pub deltas: Vec<Cid>,
}

/// Called with every pinset change once it is durable.
pub type EventHook = Arc<dyn Fn(&PinEvent) + Send + Sync>;

/// Counters of the pending set, kept in memory (recomputed at open) and
/// changed only under the write lock.
#[derive(Debug, Default)]
struct Pending {
    blocks: AtomicUsize,
    bytes: AtomicU64,
}

impl Pending {
    fn add(&self, bytes: usize) {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn sub(&self, blocks: usize, bytes: u64) {
        self.blocks.fetch_sub(blocks, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn is_full(&self, limits: &Limits, extra: usize) -> bool {
        self.blocks.load(Ordering::Relaxed) >= limits.max_pending_blocks
            || self.bytes.load(Ordering::Relaxed) + extra as u64 > limits.max_pending_bytes
    }
}

/// A replica of the signed pinset. Cheap to share (`Arc`); all methods take
/// `&self`. Mutations are serialised by an internal lock that is never held
/// across an await.
pub struct Replica {
    db: sled::Db,
    tree: sled::Tree,
    key: SigningKey,
    writer: WriterId,
    config: ReplicaConfig,
    pending: Pending,
    /// Serialises every mutation of the store.
    write_lock: Mutex<()>,
    hook: RwLock<Option<EventHook>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("writer", &self.writer)
            .field("cluster", &self.config.cluster)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Replica {
    /// Opens (or creates) a replica in the sled database at `path`, with a
    /// page cache of [`CACHE_BYTES`] (sled's own default is 1 GiB).
    pub fn open(path: impl AsRef<Path>, key: SigningKey, config: ReplicaConfig) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Self::with_db(db, key, config)
    }

    /// A replica in a temporary database, deleted on drop (tests, benches).
    pub fn temporary(key: SigningKey, config: ReplicaConfig) -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Self::with_db(db, key, config)
    }

    /// Opens the replica inside an existing sled database (tree [`TREE_NAME`]).
    /// Resumes whatever a crash left pending: pending blocks are kept and
    /// applied by the next walk or [`Replica::apply_pending`].
    pub fn with_db(db: sled::Db, key: SigningKey, config: ReplicaConfig) -> Result<Self> {
        let tree = db.open_tree(TREE_NAME)?;
        match tree.get(META_VERSION)? {
            Some(v) => {
                let found = u64_value(Some(v));
                if found != STORE_VERSION {
                    return Err(DagError::StoreVersion {
                        found,
                        expected: STORE_VERSION,
                    });
                }
                let cluster = tree.get(META_CLUSTER)?.unwrap_or_default();
                if cluster.as_ref() != config.cluster.as_bytes() {
                    return Err(DagError::Corrupt(format!(
                        "store belongs to cluster {:?}, not {:?}",
                        String::from_utf8_lossy(&cluster),
                        config.cluster
                    )));
                }
            }
            None => {
                tree.insert(META_VERSION, &STORE_VERSION.to_be_bytes())?;
                tree.insert(META_CLUSTER, config.cluster.as_bytes())?;
                tree.flush()?;
            }
        }
        let pending = Pending::default();
        for kv in tree.scan_prefix([prefix::PENDING]) {
            pending.add(kv?.1.len());
        }
        let writer = WriterId::from_public_key(&key.verifying_key());
        Ok(Self {
            db,
            tree,
            key,
            writer,
            config,
            pending,
            write_lock: Mutex::new(()),
            hook: RwLock::new(None),
        })
    }

    /// The sled database the replica lives in, for components that keep
    /// their own durable state beside it (one flush covers both).
    pub fn database(&self) -> &sled::Db {
        &self.db
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// This replica's writer identity.
    pub fn writer(&self) -> WriterId {
        self.writer
    }

    /// The config it was opened with.
    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    /// Sets the function called with every pinset change after it is durable.
    pub fn set_event_hook(&self, hook: Option<EventHook>) {
        *self.hook.write().expect("poisoned") = hook;
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().expect("replica lock poisoned")
    }

    /// Hands events of [`Replica::write_unflushed`] calls to the hook, once
    /// the caller's [`Replica::flush`] made them durable.
    pub fn notify(&self, events: &[PinEvent]) {
        self.fire(events);
    }

    fn fire(&self, events: &[PinEvent]) {
        if events.is_empty() {
            return;
        }
        if let Some(hook) = self.hook.read().expect("poisoned").clone() {
            for e in events {
                hook(e);
            }
        }
    }

    /// Makes everything written so far durable. Concurrent callers share the
    /// same flush (group commit).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    // ----- local writes -------------------------------------------------

    /// Signs `writes` as one delta on top of the current heads, applies it and
    /// flushes it to disk before returning. Several writes to one CID are
    /// coalesced (the last wins).
    pub fn write(&self, writes: Vec<Write>) -> Result<Written> {
        let written = self.write_unflushed(writes)?;
        self.flush()?;
        self.fire(&written.events);
        Ok(written)
    }

    /// [`Replica::write`] without the flush and without firing the hook: the
    /// caller must call [`Replica::flush`] before acknowledging, then passes
    /// the events to [`Replica::notify`]. Lets a server make many writes durable with one flush.
    pub fn write_unflushed(&self, writes: Vec<Write>) -> Result<Written> {
        if !self.config.trust.allows(&self.writer) {
            return Err(DagError::NotTrusted(self.writer.to_string()));
        }
        // Coalesce: keep the last write per CID, in the order of those last writes.
        let mut last: HashMap<Cid, usize> = HashMap::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            last.insert(*w.cid(), i);
        }
        let writes: Vec<Write> = writes
            .into_iter()
            .enumerate()
            .filter(|(i, w)| last[w.cid()] == *i)
            .map(|(_, w)| w)
            .collect();
        if writes.is_empty() {
            return Err(DagError::InvalidWrite("nothing to write".into()));
        }
        if writes.len() > crate::limits::MAX_OPS_PER_DELTA {
            return Err(DagError::InvalidWrite(format!(
                "{} ops exceed the {} per delta limit",
                writes.len(),
                crate::limits::MAX_OPS_PER_DELTA
            )));
        }

        let _guard = self.lock();
        let mut ops = Vec::with_capacity(writes.len());
        for w in writes {
            let cid = *w.cid();
            let mut tombs: Vec<Dot> = self.record(&cid)?.entries.iter().map(|e| e.dot).collect();
            if tombs.len() > crate::limits::MAX_TOMBS_PER_OP {
                // Keep the highest entries; the rest stay live until a later write.
                tombs.drain(..tombs.len() - crate::limits::MAX_TOMBS_PER_OP);
            }
            tombs.sort_by_key(dot_key);
            ops.push(match w {
                Write::Pin(pin) => Op::Pin { pin, tombs },
                Write::Unpin(_) if tombs.is_empty() => return Err(DagError::NotPinned(cid)),
                Write::Unpin(_) => Op::Unpin { cid, tombs },
            });
        }

        let mut heads = self.heads_with_priority()?;
        heads.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.to_bytes().cmp(&b.0.to_bytes()))
        });
        heads.truncate(MAX_PARENTS_PER_DELTA);
        let priority = 1 + heads.iter().map(|h| h.1).max().unwrap_or(0);
        let mut parents: Vec<Cid> = heads.into_iter().map(|h| h.0).collect();
        parents.sort_by_key(|c| c.to_bytes());

        let (seq, prev) = match self.last_seq(&self.writer)? {
            Some((seq, cid)) => (seq + 1, Some(cid)),
            None => (1, None),
        };
        let mut delta = Delta {
            ts: now_ms(),
            ops,
            seq,
            prev,
            writer: self.writer,
            cluster: self.config.cluster.clone(),
            parents,
            priority,
            sig: [0; 64],
        };
        delta.sign(&self.key);
        let (cid, block) = delta.to_block();
        if block.len() > MAX_BLOCK_SIZE {
            return Err(DagError::InvalidWrite(format!(
                "the delta would be {} bytes, over the {MAX_BLOCK_SIZE} byte block limit",
                block.len()
            )));
        }
        let mut ov = Overlay::new(&self.tree);
        let mut events = Vec::new();
        self.apply_delta(&mut ov, &cid, &block, &delta, &mut events)?
            .map_err(|reason| DagError::rejected(cid, reason))?;
        ov.commit()?;
        let heads = self.heads()?;
        Ok(Written {
            cid,
            block,
            delta,
            heads,
            events,
        })
    }

    // ----- applying -----------------------------------------------------

    /// Applies a delta whose dependencies are all applied: checks 8-9 of
    /// spec §3, then the OR-map rules of §4, heads, indexes. All effects go
    /// into `ov`; nothing is written if it is rejected.
    fn apply_delta(
        &self,
        ov: &mut Overlay<'_>,
        cid: &Cid,
        block: &[u8],
        delta: &Delta,
        events: &mut Vec<PinEvent>,
    ) -> Result<std::result::Result<(), Rejection>> {
        let mut expected = 1;
        for p in &delta.parents {
            let info = self.delta_info(ov, p)?.ok_or_else(|| {
                DagError::Corrupt(format!("parent {p} of {cid} applied out of order"))
            })?;
            expected = expected.max(info.priority + 1);
        }
        if delta.priority != expected {
            return Ok(Err(Rejection::PriorityMismatch {
                claimed: delta.priority,
                expected,
            }));
        }
        if let Some(prev) = &delta.prev {
            let ok = self
                .delta_info(ov, prev)?
                .is_some_and(|i| i.writer == delta.writer && i.seq + 1 == delta.seq);
            if !ok {
                return Ok(Err(Rejection::PrevMismatch {
                    expected_seq: delta.seq - 1,
                }));
            }
        }

        let pk = delta.writer.public_key_bytes();
        let seq = delta.seq.to_be_bytes();
        let chain_key = key(prefix::CHAIN, &[pk, &seq]);
        let cid_bytes = cid.to_bytes();
        match ov.get(&chain_key)? {
            Some(other) if other.as_ref() != cid_bytes.as_slice() => {
                ov.insert(key(prefix::FORK, &[pk, &seq, &other]), &[][..]);
                ov.insert(key(prefix::FORK, &[pk, &seq, &cid_bytes]), &[][..]);
                let first = Cid::try_from(other.as_ref())
                    .map_err(|e| DagError::Corrupt(format!("chain entry: {e}")))?;
                events.push(PinEvent::Fork(Fork {
                    writer: delta.writer,
                    seq: delta.seq,
                    deltas: vec![first, *cid],
                }));
            }
            Some(_) => {}
            None => ov.insert(chain_key, cid_bytes.clone()),
        }

        let mut count = u64_value(ov.get(META_COUNT)?);
        for (i, op) in delta.ops.iter().enumerate() {
            let index = i as u32;
            let pin_cid = op.cid();
            let pin_key = cid_key(prefix::PIN, pin_cid);
            let mut rec = match ov.get(&pin_key)? {
                Some(b) => Record::decode(&b)?.1,
                None => Record::default(),
            };
            let before = rec.winner().map(|e| e.dot);
            let pin_bytes = pin_cid.to_bytes();
            for tomb in op.tombs() {
                if ov.contains(&cid_key(prefix::DELTA, &tomb.delta))? {
                    rec.remove(tomb);
                } else {
                    let t = tomb_key(&pin_bytes, &tomb.delta, tomb.index);
                    ov.insert(t, &[][..]);
                }
            }
            if let Op::Pin { pin, .. } = op {
                let t = key(
                    prefix::TOMB,
                    &[&pin_bytes, &cid_bytes, &index.to_be_bytes()],
                );
                if ov.contains(&t)? {
                    ov.remove(t);
                } else {
                    rec.insert(StoredEntry {
                        priority: delta.priority,
                        writer: delta.writer,
                        dot: Dot { delta: *cid, index },
                        wire: WirePin::from_pin(pin),
                    });
                }
            }
            match (before, rec.winner()) {
                (None, None) => {}
                (Some(_), None) => {
                    ov.remove(pin_key);
                    count -= 1;
                    events.push(PinEvent::Removed(*pin_cid));
                }
                (b, Some(w)) => {
                    let pin = w.wire.clone().into_pin(*pin_cid);
                    ov.insert(pin_key, rec.encode(pin_cid));
                    if b.is_none() {
                        count += 1;
                        events.push(PinEvent::Added(pin));
                    } else if b != Some(w.dot) {
                        events.push(PinEvent::Updated(pin));
                    }
                }
            }
        }
        ov.insert(META_COUNT.to_vec(), &count.to_be_bytes()[..]);

        for p in &delta.parents {
            ov.remove(cid_key(prefix::HEAD, p));
        }
        ov.insert(
            cid_key(prefix::HEAD, cid),
            &delta.priority.to_be_bytes()[..],
        );
        let info = DeltaInfo {
            priority: delta.priority,
            seq: delta.seq,
            writer: delta.writer,
        };
        ov.insert(cid_key(prefix::DELTA, cid), &info.encode()[..]);
        ov.insert(cid_key(prefix::BLOCK, cid), block);
        ov.remove(cid_key(prefix::PENDING, cid));
        Ok(Ok(()))
    }

    fn delta_info(&self, ov: &Overlay<'_>, cid: &Cid) -> Result<Option<DeltaInfo>> {
        ov.get(&cid_key(prefix::DELTA, cid))?
            .map(|b| DeltaInfo::decode(&b))
            .transpose()
    }

    // ----- walks --------------------------------------------------------

    /// Fetches what is missing below `heads` from `source`, verifies it and
    /// applies everything that can be applied (spec §5).
    pub async fn sync<S: BlockSource>(&self, heads: &[Cid], source: &S) -> Result<SyncReport> {
        self.sync_with(heads, source, SyncBudget::default()).await
    }

    /// [`Replica::sync`] with a budget.
    pub async fn sync_with<S: BlockSource>(
        &self,
        heads: &[Cid],
        source: &S,
        budget: SyncBudget,
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut queue: VecDeque<Cid> = VecDeque::new();
        let mut queued: HashSet<Cid> = HashSet::new();
        for h in heads {
            if queued.insert(*h) {
                queue.push_back(*h);
            }
        }
        while let Some(c) = queue.pop_front() {
            if self.is_applied(&c)? || self.is_rejected(&c)? {
                continue;
            }
            let delta = match self.tree.get(cid_key(prefix::PENDING, &c))? {
                Some(bytes) => {
                    Delta::decode_verified(&bytes).map_err(|e| DagError::rejected(c, e))?
                }
                None => {
                    if report.fetched >= budget.max_fetch {
                        report.budget_exhausted = true;
                        break;
                    }
                    if self.pending_is_full() {
                        report.pending_full = true;
                        break;
                    }
                    let Ok(Some(bytes)) = source.get(&c).await else {
                        report.missing.push(c);
                        continue;
                    };
                    match self.ingest(&c, &bytes) {
                        Ok(delta) => {
                            report.fetched += 1;
                            delta
                        }
                        Err(DagError::Rejected { reason, .. }) => {
                            match *reason {
                                Rejection::HashMismatch(_) => report.missing.push(c),
                                reason => report.rejected.push((c, reason)),
                            }
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            for dep in delta.dependencies() {
                if !queued.contains(dep) && !self.is_applied(dep)? {
                    queued.insert(*dep);
                    queue.push_back(*dep);
                }
            }
        }
        let applied = self.apply_pending_with(budget.max_apply)?;
        report.applied = applied.applied;
        report.ops_applied = applied.ops_applied;
        report.rejected.extend(applied.rejected);
        report.budget_exhausted |= applied.budget_exhausted;
        report.pending = self.pending_count();
        Ok(report)
    }

    fn pending_is_full(&self) -> bool {
        self.pending.is_full(&self.config.limits, 0)
    }

    /// Receipt-checks a block served for `cid` (spec §3 steps 1-7) without
    /// storing it. A block failing a content check is remembered as
    /// rejected; a hash mismatch is not (the server lied, not the block).
    /// Needs no lock: callers may verify many blocks in parallel.
    pub fn verify_block(&self, cid: &Cid, bytes: &[u8]) -> Result<Delta> {
        match Delta::verify(cid, bytes, &self.config.cluster, &self.config.trust) {
            Ok(d) => Ok(d),
            Err(reason) => {
                if !matches!(
                    reason,
                    Rejection::HashMismatch(_)
                        | Rejection::UnsupportedCid(_)
                        | Rejection::BlockTooLarge { .. }
                ) {
                    self.tree.insert(
                        cid_key(prefix::REJECTED, cid),
                        reason.to_string().as_bytes(),
                    )?;
                }
                Err(DagError::rejected(*cid, reason))
            }
        }
    }

    /// [`Replica::verify_block`], then stores the block as pending.
    pub fn ingest(&self, cid: &Cid, bytes: &[u8]) -> Result<Delta> {
        let delta = self.verify_block(cid, bytes)?;
        let _guard = self.lock();
        if self.tree.contains_key(cid_key(prefix::DELTA, cid))? {
            return Ok(delta);
        }
        let k = cid_key(prefix::PENDING, cid);
        if self.tree.contains_key(&k)? {
            return Ok(delta);
        }
        self.check_pending_room(bytes.len())?;
        self.tree.insert(k, bytes)?;
        self.pending.add(bytes.len());
        Ok(delta)
    }

    fn check_pending_room(&self, bytes: usize) -> Result<()> {
        if self.pending.is_full(&self.config.limits, bytes) {
            return Err(DagError::PendingFull {
                blocks: self.pending.blocks.load(Ordering::Relaxed),
                bytes: self.pending.bytes.load(Ordering::Relaxed),
            });
        }
        Ok(())
    }

    /// Applies blocks already passed through [`Replica::verify_block`] that
    /// arrive mostly oldest first (a bulk sync answer): each one whose
    /// dependencies are applied, or earlier in `blocks`, is applied at once
    /// in one atomic batch, without being staged as pending; the others are
    /// stored pending. Then flushes, reports the events, and applies any
    /// pending delta that became ready.
    pub fn apply_verified(&self, blocks: Vec<(Cid, Vec<u8>, Delta)>) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        {
            let _guard = self.lock();
            let mut ov = Overlay::new(&self.tree);
            let mut events = Vec::new();
            let mut freed = (0usize, 0u64);
            let no_children = HashMap::new();
            for (cid, block, delta) in blocks {
                if ov.contains(&cid_key(prefix::DELTA, &cid))? {
                    continue;
                }
                let mut ready = true;
                for dep in delta.dependencies() {
                    if !ov.contains(&cid_key(prefix::DELTA, dep))? {
                        ready = false;
                        break;
                    }
                }
                let pending_key = cid_key(prefix::PENDING, &cid);
                let was_pending = self.tree.get(&pending_key)?.map(|b| b.len() as u64);
                if !ready {
                    if was_pending.is_none() && !ov.contains(&pending_key)? {
                        if self.check_pending_room(block.len()).is_err() {
                            report.pending_full = true;
                            break;
                        }
                        self.pending.add(block.len());
                        ov.insert(pending_key, block);
                    }
                    continue;
                }
                match self.apply_delta(&mut ov, &cid, &block, &delta, &mut events)? {
                    Ok(()) => {
                        report.applied += 1;
                        report.ops_applied += delta.ops.len();
                        if let Some(len) = was_pending {
                            freed.0 += 1;
                            freed.1 += len;
                        }
                    }
                    Err(reason) => {
                        let ov = std::mem::replace(&mut ov, Overlay::new(&self.tree));
                        self.commit_batch(ov, &mut freed, &mut events)?;
                        self.reject_branch(cid, reason, &no_children, &mut report)?;
                    }
                }
            }
            self.commit_batch(ov, &mut freed, &mut events)?;
        }
        let more = self.apply_pending()?;
        report.applied += more.applied;
        report.ops_applied += more.ops_applied;
        report.rejected.extend(more.rejected);
        report.pending = self.pending_count();
        Ok(report)
    }

    /// Applies every pending delta whose dependencies are applied, in causal
    /// order, in atomic batches, flushing each. This is also what resumes the
    /// work a crash interrupted.
    pub fn apply_pending(&self) -> Result<SyncReport> {
        self.apply_pending_with(usize::MAX)
    }

    fn apply_pending_with(&self, max_apply: usize) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let _guard = self.lock();
        if self.pending_count() == 0 {
            return Ok(report);
        }
        // The dependency graph of the pending set (CIDs only; blocks stay on disk).
        let mut waiting: HashMap<Cid, usize> = HashMap::new();
        let mut children: HashMap<Cid, Vec<Cid>> = HashMap::new();
        let mut ready: VecDeque<Cid> = VecDeque::new();
        let mut doomed: Vec<(Cid, Cid)> = Vec::new();
        for kv in self.tree.scan_prefix([prefix::PENDING]) {
            let (k, v) = kv?;
            let cid = Cid::try_from(&k[1..]).map_err(|e| DagError::Corrupt(e.to_string()))?;
            let delta = Delta::decode_verified(&v).map_err(|e| DagError::rejected(cid, e))?;
            let mut n = 0;
            for dep in delta.dependencies() {
                if self.tree.contains_key(cid_key(prefix::DELTA, dep))? {
                    continue;
                }
                if self.tree.contains_key(cid_key(prefix::REJECTED, dep))? {
                    doomed.push((cid, *dep));
                }
                n += 1;
                children.entry(*dep).or_default().push(cid);
            }
            if n == 0 {
                ready.push_back(cid);
            } else {
                waiting.insert(cid, n);
            }
        }
        for (cid, bad) in doomed {
            self.reject_branch(
                cid,
                Rejection::RejectedAncestor(bad),
                &children,
                &mut report,
            )?;
        }

        let mut events = Vec::new();
        let mut ov = Overlay::new(&self.tree);
        let mut in_batch = 0;
        let mut freed = (0usize, 0u64);
        while let Some(cid) = ready.pop_front() {
            if report.applied >= max_apply {
                report.budget_exhausted = true;
                break;
            }
            let Some(block) = self.tree.get(cid_key(prefix::PENDING, &cid))? else {
                continue; // rejected as part of a doomed branch
            };
            let delta = Delta::decode_verified(&block).map_err(|e| DagError::rejected(cid, e))?;
            match self.apply_delta(&mut ov, &cid, &block, &delta, &mut events)? {
                Ok(()) => {
                    report.applied += 1;
                    report.ops_applied += delta.ops.len();
                    freed.0 += 1;
                    freed.1 += block.len() as u64;
                    in_batch += 1;
                    for child in children.remove(&cid).unwrap_or_default() {
                        let left = waiting.get_mut(&child).expect("child is waiting");
                        *left -= 1;
                        if *left == 0 {
                            waiting.remove(&child);
                            ready.push_back(child);
                        }
                    }
                }
                Err(reason) => {
                    // Commit what came before so the rejection sees a clean store.
                    self.commit_batch(
                        std::mem::replace(&mut ov, Overlay::new(&self.tree)),
                        &mut freed,
                        &mut events,
                    )?;
                    in_batch = 0;
                    self.reject_branch(cid, reason, &children, &mut report)?;
                }
            }
            if in_batch >= APPLY_BATCH_DELTAS {
                self.commit_batch(
                    std::mem::replace(&mut ov, Overlay::new(&self.tree)),
                    &mut freed,
                    &mut events,
                )?;
                in_batch = 0;
            }
        }
        self.commit_batch(ov, &mut freed, &mut events)?;
        report.pending = self.pending_count();
        Ok(report)
    }

    /// Commits one batch of applied deltas, flushes it, then fires its events.
    fn commit_batch(
        &self,
        ov: Overlay<'_>,
        freed: &mut (usize, u64),
        events: &mut Vec<PinEvent>,
    ) -> Result<()> {
        if ov.is_empty() {
            return Ok(());
        }
        ov.commit()?;
        self.flush()?;
        self.pending.sub(freed.0, freed.1);
        *freed = (0, 0);
        self.fire(events);
        events.clear();
        Ok(())
    }

    /// Rejects `cid` and every pending delta that depends on it.
    fn reject_branch(
        &self,
        cid: Cid,
        reason: Rejection,
        children: &HashMap<Cid, Vec<Cid>>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut stack = vec![(cid, reason)];
        while let Some((c, why)) = stack.pop() {
            if let Some(b) = self.tree.remove(cid_key(prefix::PENDING, &c))? {
                self.pending.sub(1, b.len() as u64);
            } else if self.tree.contains_key(cid_key(prefix::REJECTED, &c))? {
                continue;
            }
            self.tree
                .insert(cid_key(prefix::REJECTED, &c), why.to_string().as_bytes())?;
            report.rejected.push((c, why));
            for child in children.get(&c).into_iter().flatten() {
                stack.push((*child, Rejection::RejectedAncestor(c)));
            }
        }
        Ok(())
    }

    // ----- queries ------------------------------------------------------

    fn record(&self, cid: &Cid) -> Result<Record> {
        match self.tree.get(cid_key(prefix::PIN, cid))? {
            Some(b) => Ok(Record::decode(&b)?.1),
            None => Ok(Record::default()),
        }
    }

    /// The pin of `cid` as its winning entry wrote it, if pinned.
    pub fn get(&self, cid: &Cid) -> Result<Option<Pin>> {
        // The winner is the last entry.
        Ok(self
            .record(cid)?
            .entries
            .pop()
            .map(|w| w.wire.into_pin(*cid)))
    }

    /// Every live entry of `cid` (more than one after concurrent writes),
    /// the winner last.
    pub fn entries(&self, cid: &Cid) -> Result<Vec<PinEntry>> {
        Ok(self
            .record(cid)?
            .entries
            .iter()
            .map(|e| e.to_entry(*cid))
            .collect())
    }

    /// All pins in CID byte order, read lazily from disk.
    pub fn pins(&self) -> impl Iterator<Item = Result<Pin>> + use<> {
        self.tree.scan_prefix([prefix::PIN]).map(|kv| {
            let (_, v) = kv?;
            let (cid, mut rec) = Record::decode(&v)?;
            let w = rec
                .entries
                .pop()
                .ok_or_else(|| DagError::Corrupt("empty pin record".into()))?;
            Ok(w.wire.into_pin(cid))
        })
    }

    /// Number of pinned CIDs.
    pub fn len(&self) -> Result<u64> {
        Ok(u64_value(self.tree.get(META_COUNT)?))
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The state hash of spec §6.
    pub fn state_hash(&self) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        for kv in self.tree.scan_prefix([prefix::PIN]) {
            h.update(kv?.1);
        }
        Ok(h.finalize().into())
    }

    /// Current heads, sorted by CID bytes.
    pub fn heads(&self) -> Result<Vec<Cid>> {
        Ok(self
            .heads_with_priority()?
            .into_iter()
            .map(|h| h.0)
            .collect())
    }

    fn heads_with_priority(&self) -> Result<Vec<(Cid, u64)>> {
        self.tree
            .scan_prefix([prefix::HEAD])
            .map(|kv| {
                let (k, v) = kv?;
                let cid = Cid::try_from(&k[1..]).map_err(|e| DagError::Corrupt(e.to_string()))?;
                Ok((cid, u64_value(Some(v))))
            })
            .collect()
    }

    /// Highest priority among the heads (the DAG's height), 0 when empty.
    pub fn height(&self) -> Result<u64> {
        Ok(self
            .heads_with_priority()?
            .into_iter()
            .map(|h| h.1)
            .max()
            .unwrap_or(0))
    }

    /// Whether `cid` is an applied delta.
    pub fn is_applied(&self, cid: &Cid) -> Result<bool> {
        Ok(self.tree.contains_key(cid_key(prefix::DELTA, cid))?)
    }

    /// Why `cid` was rejected, if it was.
    pub fn rejection(&self, cid: &Cid) -> Result<Option<String>> {
        Ok(self
            .tree
            .get(cid_key(prefix::REJECTED, cid))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn is_rejected(&self, cid: &Cid) -> Result<bool> {
        Ok(self.tree.contains_key(cid_key(prefix::REJECTED, cid))?)
    }

    /// The block of an applied delta (to serve peers and IPFS).
    pub fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(cid_key(prefix::BLOCK, cid))?
            .map(|v| v.to_vec()))
    }

    /// All applied delta blocks in CID byte order, read lazily.
    pub fn blocks(&self) -> impl Iterator<Item = Result<(Cid, Vec<u8>)>> + use<> {
        self.tree.scan_prefix([prefix::BLOCK]).map(|kv| {
            let (k, v) = kv?;
            let cid = Cid::try_from(&k[1..]).map_err(|e| DagError::Corrupt(e.to_string()))?;
            Ok((cid, v.to_vec()))
        })
    }

    /// Number of verified blocks waiting for their ancestors.
    pub fn pending_count(&self) -> usize {
        self.pending.blocks.load(Ordering::Relaxed)
    }

    /// The highest applied `seq` of `writer` and its delta.
    pub fn last_seq(&self, writer: &WriterId) -> Result<Option<(u64, Cid)>> {
        let p = key(prefix::CHAIN, &[writer.public_key_bytes()]);
        match self.tree.scan_prefix(&p).next_back() {
            None => Ok(None),
            Some(kv) => {
                let (k, v) = kv?;
                let seq = u64::from_be_bytes(
                    k[33..41]
                        .try_into()
                        .map_err(|_| DagError::Corrupt("chain key".into()))?,
                );
                let cid =
                    Cid::try_from(v.as_ref()).map_err(|e| DagError::Corrupt(e.to_string()))?;
                Ok(Some((seq, cid)))
            }
        }
    }

    /// Writers caught signing two deltas with one sequence number.
    pub fn forks(&self) -> Result<Vec<Fork>> {
        let mut out: Vec<Fork> = Vec::new();
        for kv in self.tree.scan_prefix([prefix::FORK]) {
            let (k, _) = kv?;
            let writer = WriterId::from_public_key_bytes(k[1..33].try_into().expect("32 bytes"));
            let seq = u64::from_be_bytes(k[33..41].try_into().expect("8 bytes"));
            let cid = Cid::try_from(&k[41..]).map_err(|e| DagError::Corrupt(e.to_string()))?;
            match out.last_mut() {
                Some(f) if f.writer == writer && f.seq == seq => f.deltas.push(cid),
                _ => out.push(Fork {
                    writer,
                    seq,
                    deltas: vec![cid],
                }),
            }
        }
        Ok(out)
    }
}

impl BlockSource for Replica {
    /// Serves applied delta blocks, so one replica can sync from another.
    fn get(
        &self,
        cid: &Cid,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, crate::source::SourceError>> + Send
    {
        std::future::ready(
            self.block(cid)
                .map_err(|e| crate::source::SourceError(e.to_string())),
        )
    }
}

fn tomb_key(pin: &[u8], delta: &Cid, index: u32) -> Vec<u8> {
    key(
        prefix::TOMB,
        &[pin, &delta.to_bytes(), &index.to_be_bytes()],
    )
}
