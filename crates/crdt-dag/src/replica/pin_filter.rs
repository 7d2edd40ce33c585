//! Which pin records may be in the store: a Bloom filter over their keys,
//! so that applying or writing a pin of a CID the replica doesn't hold
//! (most of them, under ingest) costs no store lookup to learn that. A
//! lookup of an absent key walks sled's tree like any other: it was
//! 15-17% of a receiving peer's CPU.
//!
//! The one rule: a key is in the filter before it is in the store. Every
//! pin record reaches the store through [`crate::store::Overlay::commit`]
//! or a checkpoint load's batch, and both add the key first; the keys
//! stored when the replica opens are added by a thread that scans them
//! (4-5 s at 1M pins: too long to make an open wait), and until it is done
//! the filter answers "maybe" for every key. Records removed later stay in
//! it (a needless lookup, never a wrong answer).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crate::store::prefix;

/// Bits per key the filter is sized for; with [`PROBES`] probes, about one
/// absent key in 2,000 is taken for present at that load, one in 50 at
/// twice it, one in 7 at four times.
const BITS_PER_KEY: u64 = 16;
const PROBES: u64 = 7;
/// Keys a filter is sized for at least: 2 MiB of bits.
const MIN_KEYS: u64 = 1 << 20;

/// A Bloom filter of pin keys, shared by every thread of the replica.
pub(crate) struct PinFilter {
    words: Box<[AtomicU64]>,
    /// Bits minus one (a power of two).
    mask: u64,
    hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
    /// Every key stored at open is in: "absent" answers may be believed.
    filled: AtomicBool,
    /// Tells the filling thread to give up (the replica is dropped).
    stop: AtomicBool,
}

impl PinFilter {
    /// A filter for twice `keys` (and at least [`MIN_KEYS`]): room for the
    /// pinset to double before it is sized again at the next open.
    pub(crate) fn for_keys(keys: u64) -> Self {
        let bits = (keys.saturating_mul(2).max(MIN_KEYS) * BITS_PER_KEY).next_power_of_two();
        let words = (0..bits / 64).map(|_| AtomicU64::new(0)).collect();
        Self {
            words,
            mask: bits - 1,
            hasher: Default::default(),
            filled: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// A filter for `tree`'s pin keys (its pin count read from `count`),
    /// and the thread filling it from the store; [`PinFilter::stop`] and
    /// join that thread before dropping the tree.
    pub(crate) fn fill_from(tree: &sled::Tree, count: u64) -> (Arc<Self>, JoinHandle<()>) {
        let filter = Arc::new(Self::for_keys(count));
        let (f, tree) = (filter.clone(), tree.clone());
        let filling = std::thread::spawn(move || {
            for k in tree.scan_prefix([prefix::PIN]).keys() {
                if f.stop.load(Ordering::Relaxed) {
                    return;
                }
                match k {
                    Ok(k) => f.insert(&k),
                    // The filter stays unfilled: every lookup is made.
                    Err(_) => return,
                }
            }
            f.filled.store(true, Ordering::Release);
        });
        (filter, filling)
    }

    /// Whether every key stored at open is in.
    pub(crate) fn is_filled(&self) -> bool {
        self.filled.load(Ordering::Acquire)
    }

    /// Asks the filling thread to stop.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The filter's bit positions of `key` (double hashing).
    fn positions(&self, key: &[u8]) -> [u64; PROBES as usize] {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        let h1 = h.finish();
        let h2 = h1.rotate_left(32) | 1;
        std::array::from_fn(|i| h1.wrapping_add((i as u64).wrapping_mul(h2)) & self.mask)
    }

    pub(crate) fn insert(&self, key: &[u8]) {
        for bit in self.positions(key) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// False only if `key` is not in the store: never inserted, and the
    /// store's keys at open all are.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        if !self.is_filled() {
            return true;
        }
        self.positions(key).into_iter().all(|bit| {
            self.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_inserted_is_always_found_and_little_else_is() {
        let f = PinFilter::for_keys(0);
        f.filled.store(true, Ordering::Release);
        let key = |n: u32| [b"p".as_slice(), &n.to_be_bytes()].concat();
        for n in 0..200_000 {
            f.insert(&key(n));
        }
        assert!((0..200_000).all(|n| f.may_contain(&key(n))));
        let false_hits = (200_000..400_000)
            .filter(|n| f.may_contain(&key(*n)))
            .count();
        assert!(
            false_hits < 200,
            "{false_hits} of 200,000 absent keys found"
        );
    }
}
