//! A replica of the pinset over sled: what it holds, how it is opened, and
//! the lock, flush and event hook that every mutation goes through.
//!
//! The rest is by idea: `types` (config, writes, reports), `write`
//! (signing local writes), `apply` (one delta into the OR-map), `batch`
//! (many, in causal order), `replay` (at open, what sled lost), `sync`
//! (the walk that fetches history), `pending` (its bounds) and `query`
//! (reads).

mod apply;
mod batch;
mod checkpoint;
mod pending;
mod query;
mod replay;
mod sync;
#[cfg(test)]
mod torn_tests;
mod types;
mod write;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ed25519_dalek::SigningKey;

use crate::block_file::{BlockFile, META_BLOCK_END};
use crate::error::{DagError, Result};
use crate::numbering::Names;
use crate::pin::PinEvent;
use crate::pin_filter::PinFilter;
use crate::store::{
    META_CLUSTER, META_COUNT, META_LOADING, META_VERSION, Overlay, prefix, u64_value,
};
use crate::writer::WriterId;
use pending::Pending;

pub use checkpoint::{Blocks, CheckpointLoad, Pruned};
pub use replay::Replayed;
pub use types::{EventHook, Fork, ReplicaConfig, SyncBudget, SyncReport, Write, Written};

/// sled page cache of a replica opened by path. sled counts it in
/// serialized bytes and holds 2.6 MiB or more resident per MiB of budget
/// (more for smaller records); 10 MiB keeps every peer under 200 MiB at 1M
/// pins with the same ingest and listing speed as 64 MiB (spec/crdt.md §8):
/// a pin record is read at random, so a bigger cache barely hits more.
pub const CACHE_BYTES: u64 = 10 << 20;

/// On-disk layout version written under `m`. 2: pin records are stored
/// compact (spec/crdt.md §8); a store of version 1 opens and is marked 2
/// (its `R(x)` records are still read), so an older peer refuses it.
/// 3: delta blocks live in the block file (`block_file.rs`); an older
/// store's blocks are moved there when it opens. 4: pin records name their
/// delta by the writer's seq (records of 2 and 3 are still read, and
/// rewritten so when they next change), so an older peer refuses it.
/// 5: a record's short form may name allocated peers by number (`a`
/// table), which a layout-4 reader would call damage. 6: the block file is
/// framed and is the redo log (sled is not flushed per write); a layout-5
/// reader would cut the frames it must replay.
const STORE_VERSION: u64 = 6;
/// The first layout with blocks in the block file.
const BLOCK_FILE_VERSION: u64 = 3;
/// The oldest layout this version opens.
const OLDEST_STORE_VERSION: u64 = 1;
/// Name of the sled tree the replica uses inside a shared database.
pub const TREE_NAME: &str = "crdt";

/// A replica of the signed pinset. Cheap to share (`Arc`); all methods take
/// `&self`. Mutations are serialised by an internal lock that is never held
/// across an await.
pub struct Replica {
    db: sled::Db,
    tree: sled::Tree,
    /// The blocks of applied deltas.
    blocks: Arc<BlockFile>,
    /// Checkpoint blocks (`replica/checkpoint.rs`).
    checkpoints: sled::Tree,
    key: SigningKey,
    writer: WriterId,
    config: ReplicaConfig,
    pending: Pending,
    /// The writers and allocated peers that pin records name by number.
    names: Arc<Names>,
    /// Every pin key the tree has held, and some more
    /// ([`crate::pin_filter`]).
    pins: Arc<PinFilter>,
    /// Tombs stored waiting for their entry (spec §4), or more: counted up
    /// when one is staged, down once its removal is committed. While it is
    /// 0 (almost always), applying a pin skips looking for a waiting tomb,
    /// a store lookup per pinned CID.
    waiting_tombs: AtomicU64,
    /// Serialises every mutation of the store.
    write_lock: Mutex<()>,
    hook: RwLock<Option<EventHook>>,
    /// A checkpoint is being loaded: mutations are refused.
    loading: AtomicBool,
    /// Applies without storing blocks; see [`Replica::checking_only`].
    checking_only: bool,
    /// What the open replayed from the block file.
    replayed: Replayed,
    /// A batch sled refused part way (its error's kind and text): the
    /// store is torn until reopened.
    torn: Mutex<Option<(std::io::ErrorKind, String)>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("writer", &self.writer)
            .field("cluster", &self.config.cluster)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Opens (or creates) a replica in the sled database at `path`, with a
    /// page cache of [`CACHE_BYTES`] (sled's own default is 1 GiB).
    pub fn open(path: impl AsRef<Path>, key: SigningKey, config: ReplicaConfig) -> Result<Self> {
        let db = crate::store::open_database(path.as_ref(), CACHE_BYTES)?;
        Self::with_db(db, Some(path.as_ref()), key, config)
    }

    /// A replica in a temporary database, deleted on drop (tests, benches).
    pub fn temporary(key: SigningKey, config: ReplicaConfig) -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Self::with_db(db, None, key, config)
    }

    /// Opens the replica inside an existing sled database (tree [`TREE_NAME`]),
    /// with its block file in `dir` (the database's folder; `None`: a
    /// temporary file, for a temporary database).
    /// Resumes whatever a crash left pending: pending blocks are kept and
    /// applied by the next walk or [`Replica::apply_pending`].
    pub fn with_db(
        db: sled::Db,
        dir: Option<&Path>,
        key: SigningKey,
        config: ReplicaConfig,
    ) -> Result<Self> {
        let tree = db.open_tree(TREE_NAME)?;
        let mut moving_blocks = false;
        let mut upgrading = false;
        match tree.get(META_VERSION)? {
            Some(v) => {
                let found = u64_value(Some(v));
                if !(OLDEST_STORE_VERSION..=STORE_VERSION).contains(&found) {
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
                // Layouts 1 and 2 kept blocks in the tree (moved below).
                moving_blocks = found < BLOCK_FILE_VERSION;
                upgrading = found < STORE_VERSION;
            }
            None => {
                tree.insert(META_VERSION, &STORE_VERSION.to_be_bytes())?;
                tree.insert(META_CLUSTER, config.cluster.as_bytes())?;
                tree.flush()?;
            }
        }
        let blocks = Arc::new(BlockFile::open(dir, &tree)?);
        if moving_blocks {
            move_blocks_to_file(&tree, &blocks)?;
        }
        // Before anything counts what the tree holds.
        replay::undo_torn_frame(&tree, &blocks)?;
        if upgrading {
            tree.insert(META_VERSION, &STORE_VERSION.to_be_bytes())?;
            tree.flush()?;
        }
        let checkpoints = db.open_tree(checkpoint::CHECKPOINT_TREE)?;
        let pending = Pending::default();
        for kv in tree.scan_prefix([prefix::PENDING]) {
            pending.add(kv?.1.len());
        }
        let waiting_tombs = AtomicU64::new(tree.scan_prefix([prefix::TOMB]).count() as u64);
        let writer = WriterId::from_public_key(&key.verifying_key());
        let names = Arc::new(Names::load(&tree)?);
        let pins = Arc::new(PinFilter::with_room(u64_value(tree.get(META_COUNT)?)));
        pins.fill_in_background(&tree, prefix::PIN);
        let mut replica = Self {
            db,
            names,
            pins,
            tree,
            blocks,
            checkpoints,
            key,
            writer,
            config,
            pending,
            waiting_tombs,
            write_lock: Mutex::new(()),
            hook: RwLock::new(None),
            loading: AtomicBool::new(false),
            checking_only: false,
            replayed: Replayed::default(),
            torn: Mutex::new(None),
        };
        if replica.tree.contains_key(META_LOADING)? {
            // A checkpoint load was cut short: start from empty again.
            replica.undo_load(None)?;
        }
        replica.replayed = replica.replay()?;
        Ok(replica)
    }

    /// This replica as a checker: it verifies and replays a history (an
    /// audit) but keeps no copy of the blocks, so it can't serve or export
    /// them ([`Replica::block`] answers `None`; history exports fail), and
    /// what it applies is durable only once [`Replica::flush`]ed (no frame
    /// in the block file replays it). The blocks are most of a history's
    /// bytes, sled's memory grows with what it stores, and a scratch store
    /// needs no durability.
    pub fn checking_only(mut self) -> Self {
        self.checking_only = true;
        self
    }

    /// The sled database the replica lives in, for components that keep
    /// their own durable state beside it (one flush covers both).
    pub fn database(&self) -> &sled::Db {
        &self.db
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    #[cfg(test)]
    pub(crate) fn pin_filter(&self) -> &PinFilter {
        &self.pins
    }

    pub(crate) fn block_file(&self) -> Arc<BlockFile> {
        Arc::clone(&self.blocks)
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

    /// Commits `ov` into the store, then counts the waiting tombs it
    /// removed. With blocks, they are appended to the block file first as
    /// one frame, with the batch's undo data, durable before this returns:
    /// that makes the batch durable (an open replays the frames past the
    /// end sled recovered, `replay.rs`), so sled is neither flushed nor
    /// given the batch atomically: it is written key by key, the file's
    /// end last (spec/crdt.md §8). A batch sled refuses before its first
    /// key takes its frame back ([`BlockFile::forget_since`]); one it
    /// refuses part way leaves the store torn in memory, and every later
    /// commit is refused until it is opened again (which undoes and
    /// replays that frame).
    fn commit_overlay(&self, mut ov: Overlay<'_>) -> Result<()> {
        self.check_not_torn()?;
        let taken = ov.tombs_taken;
        if ov.blocks.is_empty() {
            ov.commit()?;
        } else {
            let undo = ov.undo()?;
            let appended = self.blocks.append(&std::mem::take(&mut ov.blocks), &undo)?;
            for (k, place) in appended.places {
                ov.insert(k, &place[..]);
            }
            ov.insert(META_BLOCK_END.to_vec(), &appended.end.to_be_bytes()[..]);
            if let Err((e, wrote)) = ov.commit_by_key(META_BLOCK_END) {
                if wrote {
                    self.tear(&e);
                } else {
                    self.blocks.forget_since(appended.start);
                }
                return Err(e);
            }
        }
        self.waiting_tombs.fetch_sub(taken, Ordering::Relaxed);
        Ok(())
    }

    /// Remembers that a batch failed part way (`e`, its kind kept so that a
    /// full disk is still reported as one).
    fn tear(&self, e: &DagError) {
        let kind = match e {
            DagError::Store(sled::Error::Io(io)) | DagError::Io(io) => io.kind(),
            _ => std::io::ErrorKind::Other,
        };
        *self.torn.lock().expect("poisoned") = Some((kind, e.to_string()));
    }

    fn check_not_torn(&self) -> Result<()> {
        match &*self.torn.lock().expect("poisoned") {
            Some((kind, why)) => Err(DagError::Io(std::io::Error::new(
                *kind,
                format!(
                    "the store failed in the middle of a batch ({why}): it writes again once reopened"
                ),
            ))),
            None => Ok(()),
        }
    }

    /// What the open applied again from the block file.
    pub fn replayed(&self) -> Replayed {
        self.replayed
    }

    /// Runs `read` with no mutation in progress: what it reads is one
    /// state of the store (several reads that must agree, e.g. every
    /// writer's chain top).
    pub(crate) fn read_consistent<T>(&self, read: impl FnOnce() -> T) -> T {
        let _guard = self.lock();
        read()
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().expect("replica lock poisoned")
    }

    /// Hands events of [`Replica::write_unnotified`] calls to the hook
    /// (once the caller has handed their deltas on).
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

    /// Makes everything written so far durable in sled itself (a write is
    /// durable without it: its frame in the block file is): before a
    /// prune or a compaction, at shutdown, and as a check that the store
    /// can still write. Concurrent callers share the same flush.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// Moves the blocks a store of layout 1 or 2 kept in the tree into the block
/// file, a few MiB per batch. A block's value is its DAG-CBOR bytes there and
/// a 16-byte place once moved (no delta block is that short), so a move cut
/// short resumes where it stopped.
fn move_blocks_to_file(tree: &sled::Tree, blocks: &BlockFile) -> Result<()> {
    const CHUNK_BYTES: usize = 8 << 20;
    let mut chunk: Vec<(cid::Cid, Vec<u8>)> = Vec::new();
    let mut bytes = 0;
    let flush_chunk = |chunk: &mut Vec<(cid::Cid, Vec<u8>)>| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let appended = blocks.append(chunk, &[])?;
        let mut batch = sled::Batch::default();
        for (k, place) in appended.places {
            batch.insert(k, &place[..]);
        }
        batch.insert(META_BLOCK_END, &appended.end.to_be_bytes());
        tree.apply_batch(batch)?;
        chunk.clear();
        Ok(())
    };
    for kv in tree.scan_prefix([prefix::BLOCK]) {
        let (k, v) = kv?;
        if v.len() == 16 {
            continue;
        }
        bytes += v.len();
        chunk.push((crate::store::stored_cid(&k[1..])?, v.to_vec()));
        if bytes >= CHUNK_BYTES {
            flush_chunk(&mut chunk)?;
            bytes = 0;
        }
    }
    flush_chunk(&mut chunk)?;
    Ok(())
}
