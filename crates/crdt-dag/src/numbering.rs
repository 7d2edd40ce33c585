//! The store's numberings: a pin record names the writer of each entry by
//! a small number instead of its 32-byte key, and the peers a pin is
//! allocated to by a small number instead of their peer ID text (52 bytes
//! for an ed25519 peer; spec/crdt.md §8).
//!
//! Numbers are dense from 0, given in the order values are first stored,
//! never reused or removed. Each is kept under its prefix + its number (4
//! bytes, big-endian) -> the value's bytes, and all are held in memory from
//! the open on. Writers are few (they sign); allocated peers are bounded
//! ([`PEER_LIMIT`], [`MAX_PEER_TEXT`]): past that a record keeps the text.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

use crate::error::{DagError, Result};
use crate::store::{key, prefix};
use crate::writer::WriterId;

/// Most allocated peers numbered (memory: ~100 bytes each).
pub(crate) const PEER_LIMIT: u32 = 1 << 16;
/// Longest allocation text numbered (a base58 peer ID is 46-52 bytes).
pub(crate) const MAX_PEER_TEXT: usize = 128;

/// A kind of value a store numbers.
pub(crate) trait Numbered: Clone + Eq + Hash {
    /// Its keys' prefix.
    const PREFIX: u8;
    /// What it is, for errors.
    const WHAT: &'static str;
    /// How many are numbered at most.
    const LIMIT: u32;
    /// Whether this one may be numbered at all.
    fn fits(&self) -> bool {
        true
    }
    fn to_value(&self) -> Vec<u8>;
    fn from_value(v: &[u8]) -> Option<Self>;
}

impl Numbered for WriterId {
    const PREFIX: u8 = prefix::WRITER;
    const WHAT: &'static str = "writer";
    const LIMIT: u32 = u32::MAX;

    fn to_value(&self) -> Vec<u8> {
        self.public_key_bytes().to_vec()
    }

    fn from_value(v: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(v)
            .ok()
            .map(WriterId::from_public_key_bytes)
    }
}

/// An allocation as a pin carries it: a peer ID's text.
impl Numbered for String {
    const PREFIX: u8 = prefix::PEER;
    const WHAT: &'static str = "allocated peer";
    const LIMIT: u32 = PEER_LIMIT;

    fn fits(&self) -> bool {
        self.len() <= MAX_PEER_TEXT
    }

    fn to_value(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn from_value(v: &[u8]) -> Option<Self> {
        String::from_utf8(v.to_vec()).ok()
    }
}

/// Both numberings of one replica's store.
pub(crate) struct Names {
    pub(crate) writers: NumberTable<WriterId>,
    pub(crate) peers: NumberTable<String>,
}

impl Names {
    pub(crate) fn load(tree: &sled::Tree) -> Result<Self> {
        Ok(Self {
            writers: NumberTable::load(tree)?,
            peers: NumberTable::load(tree)?,
        })
    }
}

/// The values of one kind and their numbers in one replica's store.
pub(crate) struct NumberTable<T> {
    tree: sled::Tree,
    inner: RwLock<Inner<T>>,
}

struct Inner<T> {
    values: Vec<T>,
    numbers: HashMap<T, u32>,
}

impl<T: Numbered> NumberTable<T> {
    /// Reads every numbered value of its kind in `tree`.
    pub(crate) fn load(tree: &sled::Tree) -> Result<Self> {
        let mut inner = Inner {
            values: Vec::new(),
            numbers: HashMap::new(),
        };
        for kv in tree.scan_prefix([T::PREFIX]) {
            let (k, v) = kv?;
            let n = k
                .get(1..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes);
            match (n, T::from_value(&v)) {
                (Some(n), Some(value)) if n as usize == inner.values.len() => {
                    inner.numbers.insert(value.clone(), n);
                    inner.values.push(value);
                }
                _ => return Err(corrupt::<T>()),
            }
        }
        Ok(Self {
            tree: tree.clone(),
            inner: RwLock::new(inner),
        })
    }

    /// The number of `value`, given (and made durable) on its first use: a
    /// record that names it can't be read without it. `None` when it may
    /// not be numbered (it doesn't fit, or the table is full).
    pub(crate) fn number(&self, value: &T) -> Result<Option<u32>> {
        if let Some(n) = self.read().numbers.get(value) {
            return Ok(Some(*n));
        }
        if !value.fits() {
            return Ok(None);
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = inner.numbers.get(value) {
            return Ok(Some(*n));
        }
        loop {
            let Some(n) = u32::try_from(inner.values.len())
                .ok()
                .filter(|n| *n < T::LIMIT)
            else {
                return Ok(None);
            };
            // Taken only if free: another handle on the same tree may
            // have numbered a value meanwhile.
            let taken = self.tree.compare_and_swap(
                key(T::PREFIX, &[&n.to_be_bytes()]),
                None::<&[u8]>,
                Some(value.to_value()),
            )?;
            let holder = match taken {
                Ok(()) => {
                    self.tree.flush()?;
                    value.clone()
                }
                Err(e) => e
                    .current
                    .as_deref()
                    .and_then(T::from_value)
                    .ok_or_else(corrupt::<T>)?,
            };
            inner.numbers.insert(holder.clone(), n);
            let mine = holder == *value;
            inner.values.push(holder);
            if mine {
                return Ok(Some(n));
            }
        }
    }

    /// The value numbered `n` (read from the tree if another handle on it
    /// numbered it).
    pub(crate) fn get(&self, n: u64) -> Result<T> {
        let unknown = || DagError::Corrupt(format!("pin record names {} {n}, unknown", T::WHAT));
        let n = usize::try_from(n).map_err(|_| unknown())?;
        if let Some(v) = self.read().values.get(n) {
            return Ok(v.clone());
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        while inner.values.len() <= n {
            let next = u32::try_from(inner.values.len()).map_err(|_| unknown())?;
            let Some(v) = self.tree.get(key(T::PREFIX, &[&next.to_be_bytes()]))? else {
                return Err(unknown());
            };
            let value = T::from_value(&v).ok_or_else(corrupt::<T>)?;
            inner.numbers.insert(value.clone(), next);
            inner.values.push(value);
        }
        Ok(inner.values[n].clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<T>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl NumberTable<WriterId> {
    /// The number of writer `w` (writers are never too many to number).
    pub(crate) fn writer_number(&self, w: &WriterId) -> Result<u32> {
        self.number(w)?
            .ok_or_else(|| DagError::Corrupt("more than 2^32 writers".into()))
    }
}

fn corrupt<T: Numbered>() -> DagError {
    DagError::Corrupt(format!("{} table", T::WHAT))
}

#[cfg(test)]
mod tests {
    use super::*;

    type WriterTable = NumberTable<WriterId>;

    #[test]
    fn numbers_are_dense_stable_and_survive_a_reopen() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let (a, b) = (
            WriterId::from_public_key_bytes([1; 32]),
            WriterId::from_public_key_bytes([2; 32]),
        );
        let table = WriterTable::load(&tree).unwrap();
        assert_eq!(table.writer_number(&a).unwrap(), 0);
        assert_eq!(table.writer_number(&b).unwrap(), 1);
        assert_eq!(table.writer_number(&a).unwrap(), 0);
        let again = WriterTable::load(&tree).unwrap();
        assert_eq!(again.get(0).unwrap(), a);
        assert_eq!(again.get(1).unwrap(), b);
        assert_eq!(again.writer_number(&b).unwrap(), 1);
        assert!(again.get(2).is_err());
        assert_eq!(
            WriterTable::load(&tree)
                .unwrap()
                .writer_number(&WriterId::from_public_key_bytes([3; 32]))
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
        assert_eq!(first.writer_number(&a).unwrap(), 0);
        assert_eq!(second.writer_number(&b).unwrap(), 1);
        assert_eq!(second.get(0).unwrap(), a);
        assert_eq!(second.writer_number(&a).unwrap(), 0);
        assert_eq!(first.get(1).unwrap(), b, "read from the tree");
        assert_eq!(first.writer_number(&b).unwrap(), 1);
        let again = WriterTable::load(&tree).unwrap();
        assert_eq!((again.get(0).unwrap(), again.get(1).unwrap()), (a, b));
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

    /// A kind with a small limit, to fill.
    #[derive(Clone, PartialEq, Eq, Hash, Debug)]
    struct Small(u8);

    impl Numbered for Small {
        const PREFIX: u8 = b'z';
        const WHAT: &'static str = "small";
        const LIMIT: u32 = 3;

        fn fits(&self) -> bool {
            self.0 != 0
        }

        fn to_value(&self) -> Vec<u8> {
            vec![self.0]
        }

        fn from_value(v: &[u8]) -> Option<Self> {
            match v {
                [b] => Some(Small(*b)),
                _ => None,
            }
        }
    }

    #[test]
    fn a_full_table_or_a_value_that_does_not_fit_gets_no_number() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let table = NumberTable::<Small>::load(&tree).unwrap();
        assert_eq!(table.number(&Small(0)).unwrap(), None, "doesn't fit");
        for i in 1..=3 {
            assert_eq!(table.number(&Small(i)).unwrap(), Some(u32::from(i) - 1));
        }
        assert_eq!(table.number(&Small(4)).unwrap(), None, "full");
        assert_eq!(table.number(&Small(2)).unwrap(), Some(1), "still numbered");
        let again = NumberTable::<Small>::load(&tree).unwrap();
        assert_eq!(again.number(&Small(4)).unwrap(), None);
        assert_eq!(again.get(2).unwrap(), Small(3));
        assert!(again.get(3).is_err());
    }

    #[test]
    fn peers_and_writers_are_numbered_apart() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let names = Names::load(&tree).unwrap();
        let w = WriterId::from_public_key_bytes([9; 32]);
        let peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo".to_string();
        assert_eq!(names.writers.writer_number(&w).unwrap(), 0);
        assert_eq!(names.peers.number(&peer).unwrap(), Some(0));
        assert_eq!(
            names.peers.number(&"p".repeat(MAX_PEER_TEXT + 1)).unwrap(),
            None
        );
        let again = Names::load(&tree).unwrap();
        assert_eq!(again.writers.get(0).unwrap(), w);
        assert_eq!(again.peers.get(0).unwrap(), peer);
        assert!(again.peers.get(1).is_err());
    }
}
