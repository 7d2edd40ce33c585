//! Where missing blocks come from: the small async trait the walk asks, and
//! an in-memory implementation (tests, CAR import, prefetched bulk sync).

use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;

use cid::Cid;

/// Why a source could not serve a block right now. The walk treats any error
/// as "missing for this walk" and keeps the branch pending for a later one.
#[derive(Debug, thiserror::Error)]
#[error("block source: {0}")]
pub struct SourceError(pub String);

/// Fetches delta blocks by CID. Implementations bound their own time (a
/// peer's source times out, then falls back to IPFS); the walk asks each
/// missing CID at most once per walk.
pub trait BlockSource {
    /// The block's bytes, `Ok(None)` if the source does not have it.
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send;
}

/// A block source over a map in memory.
#[derive(Debug, Default)]
pub struct MemoryBlockSource {
    blocks: RwLock<HashMap<Cid, Vec<u8>>>,
}

impl MemoryBlockSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block (not checked: the walk checks what it fetches).
    pub fn insert(&self, cid: Cid, bytes: Vec<u8>) {
        self.blocks.write().expect("poisoned").insert(cid, bytes);
    }

    /// Removes a block, so the walk finds it missing.
    pub fn remove(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.blocks.write().expect("poisoned").remove(cid)
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.blocks.read().expect("poisoned").len()
    }

    /// Whether it holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BlockSource for MemoryBlockSource {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send {
        let found = self.blocks.read().expect("poisoned").get(cid).cloned();
        std::future::ready(Ok(found))
    }
}

impl<S: BlockSource + Sync> BlockSource for &S {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send {
        (**self).get(cid)
    }
}
