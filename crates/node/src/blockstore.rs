//! The node's blockstore: blocks, reference-counted pins ([`crate::pins`])
//! and garbage collection ([`crate::gc`]) on the peer's sled database.
//!
//! # Why sled
//! The peer already runs one embedded sled database (the pinset replica,
//! the tracker); the node adds three trees to it instead of a second store.
//! sled gives atomic multi-key writes (a put's block and the repository
//! counters; a pin's record and every refcount it changes), and a block is a
//! value, not a file: no inode, directory fan-out or fsync per block, which
//! is what a file-per-block store (Kubo's flatfs) pays on DAGs of many small
//! blocks.
//!
//! # On-disk layout (format version 1)
//! - `node-blocks`: multihash bytes -> block bytes. Keyed by multihash as
//!   Kubo keys its blockstore, so the CIDv0 and CIDv1 (or dag-pb and raw) of
//!   the same bytes are one block.
//! - `node-pins`: `p` + CID bytes -> pin record (see [`crate::pins`]);
//!   `r` + multihash bytes -> refcount (u64 big-endian, absent when 0);
//!   `k` + multihash bytes -> empty, a block kept without a pin
//!   ([`crate::kept`]).
//! - `node-meta`: `version` -> 1, `size` -> bytes of all blocks, `count` ->
//!   number of blocks (u64 big-endian), changed in the same transaction as
//!   the blocks they count.
//!
//! # Durability
//! Pins, unpins and GC are flushed before they return. Puts are not: call
//! [`Store::flush`] (or pin) before telling anyone a block is stored.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use cid::Cid;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::{Block, NodeError};

/// Tree of blocks (multihash -> bytes).
pub const BLOCKS_TREE: &str = "node-blocks";
/// Tree of pin records and refcounts.
pub const PINS_TREE: &str = "node-pins";
/// Tree of format version and repository counters.
pub const META_TREE: &str = "node-meta";

/// On-disk layout version, under `version` in `node-meta`.
const STORE_VERSION: u64 = 1;
const META_VERSION: &[u8] = b"version";
const META_SIZE: &[u8] = b"size";
const META_COUNT: &[u8] = b"count";

/// The multihash code of identity CIDs: their bytes are inside the CID, so
/// they are never stored and always "present".
pub(crate) const IDENTITY: u64 = 0x00;

/// Repository statistics, like Kubo's `repo stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepoStat {
    /// Bytes of all stored blocks (block data only, not sled's overhead).
    pub repo_size: u64,
    /// The configured maximum (informational: the freespace metric is
    /// `storage_max - repo_size`; puts are not refused above it).
    pub storage_max: u64,
    /// Number of stored blocks.
    pub num_objects: u64,
}

/// The blockstore with pins and GC. Cheap to clone (an `Arc`); every method
/// takes `&self` and may block briefly (sled I/O, the GC gate), so async
/// callers use `spawn_blocking` for big operations.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: sled::Db,
    pub(crate) blocks: sled::Tree,
    pub(crate) pins: sled::Tree,
    pub(crate) meta: sled::Tree,
    storage_max: u64,
    /// Serialises pin and unpin: both read-modify-write refcounts.
    pub(crate) pin_lock: Mutex<()>,
    /// Keeps GC and holders apart (see [`crate::gc`]).
    pub(crate) gate: Gate,
    /// Blocks that fetches in flight will pin, by key, with how many
    /// [`crate::GcMarks`] hold each: GC skips them (see [`crate::gc`]).
    pub(crate) marks: Mutex<HashMap<Vec<u8>, usize>>,
}

/// The GC gate: any number of holders, or one collecting GC batch.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub(crate) state: Mutex<GateState>,
    pub(crate) changed: Condvar,
}

#[derive(Debug, Default)]
pub(crate) struct GateState {
    /// Live [`crate::GcGuard`]s and puts, pins and unpins in progress.
    pub(crate) holders: usize,
    /// A GC batch is checking refcounts and deleting blocks.
    pub(crate) collecting: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("storage_max", &self.inner.storage_max)
            .field("blocks", &self.inner.blocks.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("storage_max", &self.storage_max)
            .finish_non_exhaustive()
    }
}

/// The `node-blocks` key of a CID: its multihash.
pub(crate) fn block_key(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

pub(crate) fn u64_of(bytes: Option<&[u8]>, what: &'static str) -> Result<u64, NodeError> {
    match bytes {
        None => Ok(0),
        Some(b) => {
            let arr: [u8; 8] = b.try_into().map_err(|_| NodeError::Malformed {
                what,
                reason: format!("{} bytes, not 8", b.len()),
            })?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}

/// Runs a sled transaction, surfacing its abort error as is.
pub(crate) fn tx_result<T>(r: Result<T, TransactionError<NodeError>>) -> Result<T, NodeError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => NodeError::Db(e),
    })
}

pub(crate) fn abort(e: NodeError) -> ConflictableTransactionError<NodeError> {
    ConflictableTransactionError::Abort(e)
}

impl Store {
    /// Opens (or creates) the node's trees in `db`, the peer's database.
    /// `storage_max` is reported by [`Store::stat`].
    ///
    /// # Errors
    /// [`NodeError::Db`]; [`NodeError::Unsupported`] for a store written by a
    /// newer layout version.
    pub fn open(db: &sled::Db, storage_max: u64) -> Result<Store, NodeError> {
        let meta = db.open_tree(META_TREE)?;
        match meta.get(META_VERSION)? {
            None => {
                meta.insert(META_VERSION, &STORE_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let v = u64_of(Some(&v), "blockstore version")?;
                if v != STORE_VERSION {
                    return Err(NodeError::Unsupported {
                        what: "blockstore version",
                        code: v,
                    });
                }
            }
        }
        Ok(Store {
            inner: Arc::new(Inner {
                db: db.clone(),
                blocks: db.open_tree(BLOCKS_TREE)?,
                pins: db.open_tree(PINS_TREE)?,
                meta,
                storage_max,
                pin_lock: Mutex::new(()),
                gate: Gate::default(),
                marks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Stores a block. Returns whether it was new. Blocks are verified by
    /// construction ([`Block::verified`] / [`Block::new`]). Identity CIDs are
    /// not stored.
    ///
    /// A block put without a [`crate::GcGuard`] held or a
    /// [`crate::GcMarks`] covering it, and not pinned, may be removed by a
    /// GC running at any time after the put.
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn put(&self, block: &Block) -> Result<bool, NodeError> {
        Ok(self.put_many([block.clone()])? == 1)
    }

    /// Stores blocks in one atomic transaction. Returns how many were new.
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn put_many(&self, blocks: impl IntoIterator<Item = Block>) -> Result<u64, NodeError> {
        let blocks: Vec<(Vec<u8>, Bytes)> = blocks
            .into_iter()
            .filter(|b| b.cid().hash().code() != IDENTITY)
            .map(|b| (block_key(b.cid()), b.into_parts().1))
            .collect();
        if blocks.is_empty() {
            return Ok(0);
        }
        let _hold = self.gc_guard();
        let inner = &self.inner;
        tx_result((&inner.blocks, &inner.meta).transaction(|(b, m)| {
            let (mut new, mut bytes) = (0u64, 0u64);
            for (key, data) in &blocks {
                if b.get(key)?.is_none() {
                    b.insert(key.as_slice(), data.as_ref())?;
                    new += 1;
                    bytes += data.len() as u64;
                }
            }
            if new > 0 {
                let size = u64_of(m.get(META_SIZE)?.as_deref(), "repo size").map_err(abort)?;
                let count = u64_of(m.get(META_COUNT)?.as_deref(), "block count").map_err(abort)?;
                m.insert(META_SIZE, &(size + bytes).to_be_bytes())?;
                m.insert(META_COUNT, &(count + new).to_be_bytes())?;
            }
            Ok(new)
        }))
    }

    /// The block named `cid`, checked against it (a corrupt stored block is
    /// [`NodeError::BadBlock`]).
    ///
    /// # Errors
    /// [`NodeError::Db`], [`NodeError::BadBlock`].
    pub fn get(&self, cid: &Cid) -> Result<Option<Block>, NodeError> {
        if cid.hash().code() == IDENTITY {
            return Ok(None);
        }
        match self.inner.blocks.get(block_key(cid))? {
            None => Ok(None),
            Some(data) => Ok(Some(Block::verified(*cid, Bytes::from(data.to_vec()))?)),
        }
    }

    /// The stored bytes named `cid` without re-hashing them (they were
    /// verified when put): what the Bitswap server sends.
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn get_bytes(&self, cid: &Cid) -> Result<Option<Bytes>, NodeError> {
        Ok(self.get_raw(cid)?.map(|v| Bytes::from(v.to_vec())))
    }

    /// The stored bytes named `cid`, unverified (for walks that only need
    /// sizes or links).
    pub(crate) fn get_raw(&self, cid: &Cid) -> Result<Option<sled::IVec>, NodeError> {
        Ok(self.inner.blocks.get(block_key(cid))?)
    }

    /// Whether the block is stored (identity CIDs always are).
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn has(&self, cid: &Cid) -> Result<bool, NodeError> {
        if cid.hash().code() == IDENTITY {
            return Ok(true);
        }
        Ok(self.inner.blocks.contains_key(block_key(cid))?)
    }

    /// Every stored block, as Kubo's `refs local` lists them: blocks are
    /// kept by multihash (as Kubo's blockstore), so each is named by a
    /// CIDv1 with the raw codec whatever codec it was put with. Read
    /// lazily, in key order.
    pub fn refs_local(&self) -> impl Iterator<Item = Result<Cid, NodeError>> + use<> {
        self.inner.blocks.iter().keys().map(|k| {
            let k = k?;
            let mh = cid::multihash::Multihash::<64>::from_bytes(&k).map_err(|e| {
                NodeError::Malformed {
                    what: "stored block key",
                    reason: e.to_string(),
                }
            })?;
            Ok(Cid::new_v1(crate::RAW, mh))
        })
    }

    /// The size in bytes of a stored block.
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn size_of(&self, cid: &Cid) -> Result<Option<u64>, NodeError> {
        Ok(self.get_raw(cid)?.map(|v| v.len() as u64))
    }

    /// Makes every write so far durable (one flush of the whole database,
    /// so it also covers the peer's other trees).
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn flush(&self) -> Result<(), NodeError> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Size, count and maximum of the repository (two reads, no scan).
    ///
    /// # Errors
    /// [`NodeError::Db`], [`NodeError::Malformed`] for a corrupt counter.
    pub fn stat(&self) -> Result<RepoStat, NodeError> {
        let meta = &self.inner.meta;
        Ok(RepoStat {
            repo_size: u64_of(meta.get(META_SIZE)?.as_deref(), "repo size")?,
            storage_max: self.inner.storage_max,
            num_objects: u64_of(meta.get(META_COUNT)?.as_deref(), "block count")?,
        })
    }

    /// Removes blocks (already checked unreferenced by GC) and updates the
    /// counters, atomically. Returns the size of each removed key (`None`:
    /// it was not there).
    pub(crate) fn remove_blocks(&self, keys: &[sled::IVec]) -> Result<Vec<Option<u64>>, NodeError> {
        let inner = &self.inner;
        tx_result((&inner.blocks, &inner.meta).transaction(|(b, m)| {
            let mut freed = Vec::with_capacity(keys.len());
            for key in keys {
                freed.push(b.remove(key.as_ref())?.map(|v| v.len() as u64));
            }
            let removed = freed.iter().flatten().count() as u64;
            let bytes: u64 = freed.iter().flatten().sum();
            if removed > 0 {
                let size = u64_of(m.get(META_SIZE)?.as_deref(), "repo size").map_err(abort)?;
                let count = u64_of(m.get(META_COUNT)?.as_deref(), "block count").map_err(abort)?;
                m.insert(META_SIZE, &size.saturating_sub(bytes).to_be_bytes())?;
                m.insert(META_COUNT, &count.saturating_sub(removed).to_be_bytes())?;
            }
            Ok(freed)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RAW;

    fn store() -> Store {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Store::open(&db, 1 << 30).unwrap()
    }

    #[test]
    fn put_get_has_size_and_stat() {
        let s = store();
        let b = Block::new(RAW, Bytes::from_static(b"hello"), false);
        assert!(!s.has(b.cid()).unwrap());
        assert!(s.put(&b).unwrap());
        assert!(!s.put(&b).unwrap(), "second put is not new");
        assert_eq!(s.get(b.cid()).unwrap().as_ref(), Some(&b));
        assert_eq!(s.size_of(b.cid()).unwrap(), Some(5));
        let stat = s.stat().unwrap();
        assert_eq!((stat.repo_size, stat.num_objects), (5, 1));
        assert_eq!(stat.storage_max, 1 << 30);
    }

    #[test]
    fn v0_and_v1_of_one_multihash_are_one_block() {
        let s = store();
        let v0 = Block::new(crate::DAG_PB, Bytes::from_static(b"\x0a\x02\x08\x01"), true);
        let v1 = Block::new(
            crate::DAG_PB,
            Bytes::from_static(b"\x0a\x02\x08\x01"),
            false,
        );
        assert!(s.put(&v0).unwrap());
        assert!(!s.put(&v1).unwrap());
        assert_eq!(s.get(v1.cid()).unwrap().unwrap().cid(), v1.cid());
        assert_eq!(s.stat().unwrap().num_objects, 1);
    }

    #[test]
    fn put_many_counts_duplicates_once() {
        let s = store();
        let a = Block::new(RAW, Bytes::from_static(b"a"), false);
        let b = Block::new(RAW, Bytes::from_static(b"bb"), false);
        assert_eq!(s.put_many([a.clone(), b, a]).unwrap(), 2);
        assert_eq!(s.stat().unwrap().repo_size, 3);
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree(META_TREE)
            .unwrap()
            .insert(META_VERSION, &2u64.to_be_bytes())
            .unwrap();
        assert!(matches!(
            Store::open(&db, 0),
            Err(NodeError::Unsupported { code: 2, .. })
        ));
    }
}
