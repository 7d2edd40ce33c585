//! The store's numbering of writers: a pin record names the writer of each
//! entry by a small number instead of its 38-byte peer ID (spec/crdt.md §8).
//!
//! Numbers are dense from 0, given in the order writers are first stored,
//! never reused or removed (a cluster has few writers). Each is kept under
//! `n` + its number (4 bytes, big-endian) -> the 32-byte public key, and all
//! are held in memory from the open on.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::error::{DagError, Result};
use crate::store::{key, prefix};
use crate::writer::WriterId;

/// Writers and their numbers in one replica's store.
pub(crate) struct WriterTable {
    tree: sled::Tree,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    ids: Vec<WriterId>,
    numbers: HashMap<WriterId, u32>,
}

impl WriterTable {
    /// Reads every numbered writer of `tree`.
    pub(crate) fn load(tree: &sled::Tree) -> Result<Self> {
        let mut inner = Inner::default();
        for kv in tree.scan_prefix([prefix::WRITER]) {
            let (k, v) = kv?;
            let n = k
                .get(1..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes);
            let pk = <[u8; 32]>::try_from(v.as_ref()).ok();
            match (n, pk) {
                (Some(n), Some(pk)) if n as usize == inner.ids.len() => {
                    let w = WriterId::from_public_key_bytes(pk);
                    inner.numbers.insert(w, n);
                    inner.ids.push(w);
                }
                _ => return Err(DagError::Corrupt("writer table".into())),
            }
        }
        Ok(Self {
            tree: tree.clone(),
            inner: RwLock::new(inner),
        })
    }

    /// The number of `w`, given (and made durable) on its first use: a
    /// record that names it can't be recovered without it.
    pub(crate) fn number(&self, w: &WriterId) -> Result<u32> {
        if let Some(n) = self.read().numbers.get(w) {
            return Ok(*n);
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = inner.numbers.get(w) {
            return Ok(*n);
        }
        loop {
            let n = u32::try_from(inner.ids.len())
                .map_err(|_| DagError::Corrupt("more than 2^32 writers".into()))?;
            // Taken only if free: another handle on the same tree may
            // have numbered a writer meanwhile.
            let taken = self.tree.compare_and_swap(
                key(prefix::WRITER, &[&n.to_be_bytes()]),
                None::<&[u8]>,
                Some(&w.public_key_bytes()[..]),
            )?;
            let holder = match taken {
                Ok(()) => {
                    self.tree.flush()?;
                    *w
                }
                Err(e) => e
                    .current
                    .as_deref()
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .map(WriterId::from_public_key_bytes)
                    .ok_or_else(|| DagError::Corrupt("writer table".into()))?,
            };
            inner.numbers.insert(holder, n);
            inner.ids.push(holder);
            if holder == *w {
                return Ok(n);
            }
        }
    }

    /// The writer numbered `n` (read from the tree if another handle on it
    /// numbered it).
    pub(crate) fn writer(&self, n: u64) -> Result<WriterId> {
        let unknown = || DagError::Corrupt(format!("pin record names writer {n}, unknown"));
        let n = usize::try_from(n).map_err(|_| unknown())?;
        if let Some(w) = self.read().ids.get(n) {
            return Ok(*w);
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        while inner.ids.len() <= n {
            let next = u32::try_from(inner.ids.len()).map_err(|_| unknown())?;
            let Some(v) = self.tree.get(key(prefix::WRITER, &[&next.to_be_bytes()]))? else {
                return Err(unknown());
            };
            let pk = <[u8; 32]>::try_from(v.as_ref())
                .map_err(|_| DagError::Corrupt("writer table".into()))?;
            let w = WriterId::from_public_key_bytes(pk);
            inner.numbers.insert(w, next);
            inner.ids.push(w);
        }
        Ok(inner.ids[n])
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_stable_and_survive_a_reopen() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let (a, b) = (
            WriterId::from_public_key_bytes([1; 32]),
            WriterId::from_public_key_bytes([2; 32]),
        );
        let table = WriterTable::load(&tree).unwrap();
        assert_eq!(table.number(&a).unwrap(), 0);
        assert_eq!(table.number(&b).unwrap(), 1);
        assert_eq!(table.number(&a).unwrap(), 0);
        let again = WriterTable::load(&tree).unwrap();
        assert_eq!(again.writer(0).unwrap(), a);
        assert_eq!(again.writer(1).unwrap(), b);
        assert_eq!(again.number(&b).unwrap(), 1);
        assert!(again.writer(2).is_err());
        assert_eq!(
            WriterTable::load(&tree)
                .unwrap()
                .number(&WriterId::from_public_key_bytes([3; 32]))
                .unwrap(),
            2
        );
    }

    #[test]
    fn two_handles_on_one_tree_never_give_one_number_twice() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let (first, second) = (
            WriterTable::load(&tree).unwrap(),
            WriterTable::load(&tree).unwrap(),
        );
        let (a, b) = (
            WriterId::from_public_key_bytes([1; 32]),
            WriterId::from_public_key_bytes([2; 32]),
        );
        assert_eq!(first.number(&a).unwrap(), 0);
        assert_eq!(second.number(&b).unwrap(), 1);
        assert_eq!(second.writer(0).unwrap(), a);
        assert_eq!(second.number(&a).unwrap(), 0);
        assert_eq!(first.writer(1).unwrap(), b, "read from the tree");
        assert_eq!(first.number(&b).unwrap(), 1);
        let again = WriterTable::load(&tree).unwrap();
        assert_eq!((again.writer(0).unwrap(), again.writer(1).unwrap()), (a, b));
    }

    #[test]
    fn a_gap_in_the_numbers_is_corruption() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        tree.insert(key(prefix::WRITER, &[&1u32.to_be_bytes()]), &[7u8; 32][..])
            .unwrap();
        assert!(matches!(
            WriterTable::load(&tree),
            Err(DagError::Corrupt(_))
        ));
    }
}
