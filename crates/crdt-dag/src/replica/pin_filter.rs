//! Which pin records may be in the store: a Bloom filter over their keys,
//! so that applying or writing a pin of a CID the replica doesn't hold
//! (most of them, under ingest) costs no store lookup to learn that. A
//! lookup of an absent key walks sled's tree like any other: it was
//! 15-17% of a receiving peer's CPU.
//!
//! The one rule: a key is in the filter before it is in the store. Every
//! pin record reaches the store through [`crate::store::Overlay::commit`]
//! or a checkpoint load's batch, and both add the key first; the filter is
//! filled from the store when the replica opens. Records removed later
//! stay in it (a needless lookup, never a wrong answer).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

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
        }
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

    /// False only if `key` was never inserted.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
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
