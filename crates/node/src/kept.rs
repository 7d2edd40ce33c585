//! Blocks kept from GC without a pin: the cluster peer's history.
//!
//! A cluster peer puts every delta of its pinset's history into its IPFS so
//! that the node serves it over Bitswap; a GC must not remove them, yet
//! they are not the user's pins (no `pin ls` lists them, as Kubo lists
//! nothing for what its MFS keeps). A kept block counts 1 in its refcount,
//! once however often it is kept, so GC leaves it; it is never released
//! (the history only grows).
//!
//! Record: `k` + multihash bytes -> empty, in `node-pins`, written in the
//! same batch as the refcount it adds.

use std::collections::HashMap;

use crate::blockstore::{IDENTITY, block_key};
use crate::pins::ref_key;
use crate::{Block, NodeError, Store};

fn kept_key(block_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + block_key.len());
    k.push(b'k');
    k.extend_from_slice(block_key);
    k
}

impl Store {
    /// Stores `blocks` and keeps them from GC, atomically with respect to
    /// GC (no collection between the put and the keep). Idempotent.
    /// Durable on return. Returns how many blocks were new to the store.
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn put_kept(&self, blocks: Vec<Block>) -> Result<u64, NodeError> {
        let keys: Vec<Vec<u8>> = blocks
            .iter()
            .filter(|b| b.cid().hash().code() != IDENTITY)
            .map(|b| block_key(b.cid()))
            .collect();
        let (_gate, _lock) = self.pin_guards();
        let new = self.put_many(blocks)?;
        let mut batch = sled::Batch::default();
        let mut added: HashMap<&[u8], ()> = HashMap::new();
        for key in &keys {
            let kept = kept_key(key);
            if added.contains_key(key.as_slice()) || self.inner.pins.contains_key(&kept)? {
                continue;
            }
            let now = self.refcount(key)? + 1;
            batch.insert(ref_key(key), &now.to_be_bytes());
            batch.insert(kept, &[][..]);
            added.insert(key, ());
        }
        if !added.is_empty() {
            self.inner.pins.apply_batch(batch)?;
        }
        self.flush()?;
        Ok(new)
    }

    /// Whether `block_key`'s block is kept (1 of its refcount is the keep).
    pub(crate) fn kept_count(&self, block_key: &[u8]) -> Result<u64, NodeError> {
        Ok(u64::from(
            self.inner.pins.contains_key(kept_key(block_key))?,
        ))
    }

    /// Whether the block of `cid` is kept from GC by [`Store::put_kept`].
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn is_kept(&self, cid: &cid::Cid) -> Result<bool, NodeError> {
        Ok(self.kept_count(&block_key(cid))? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DAG_CBOR;
    use bytes::Bytes;

    fn store() -> Store {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Store::open(&db, 1 << 30).unwrap()
    }

    fn block(i: u8) -> Block {
        Block::new(DAG_CBOR, Bytes::from(vec![0xa1, 0x61, 0x61, i]), false)
    }

    #[test]
    fn kept_blocks_survive_gc_and_are_no_pins() {
        let s = store();
        let (kept, loose) = (block(1), block(2));
        assert_eq!(s.put_kept(vec![kept.clone(), kept.clone()]).unwrap(), 1);
        // Kept twice: still counted once.
        assert_eq!(s.put_kept(vec![kept.clone()]).unwrap(), 0);
        assert_eq!(s.refcount_of(kept.cid()).unwrap(), 1);
        s.put(&loose).unwrap();
        let removed = s.gc().unwrap().removed;
        assert_eq!(removed.len(), 1, "only the loose block goes");
        assert!(s.has(kept.cid()).unwrap());
        assert!(!s.has(loose.cid()).unwrap());
        assert!(s.is_kept(kept.cid()).unwrap());
        // Not a pin of any kind.
        assert_eq!(s.pins().count(), 0);
        assert_eq!(s.pin_type(kept.cid()).unwrap(), None);
        assert!(s.pin_kinds(kept.cid()).unwrap().is_empty());
    }

    #[test]
    fn a_kept_block_pinned_and_unpinned_stays_kept() {
        let s = store();
        let b = block(3);
        s.put_kept(vec![b.clone()]).unwrap();
        s.pin_direct(b.cid()).unwrap();
        assert_eq!(s.refcount_of(b.cid()).unwrap(), 2);
        assert_eq!(
            s.pin_kinds(b.cid()).unwrap(),
            vec![ipfs::IpfsPinType::Direct]
        );
        s.unpin(b.cid()).unwrap();
        s.gc().unwrap();
        assert!(s.has(b.cid()).unwrap());
        assert_eq!(s.pin_type(b.cid()).unwrap(), None);
    }
}
