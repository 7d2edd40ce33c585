//! Which pin keys surely have no record: a Bloom filter over every pin key
//! the store has held, so that writing or applying a pin of a CID the
//! pinset has never had reads no store.
//!
//! Why: ingest is mostly new CIDs, and each of them cost every peer a sled
//! lookup that finds nothing (a quarter of a receiving peer's apply, a
//! few microseconds a pin). The filter answers "absent" for those from
//! memory. Without those lookups sled's freed pages wait longer for
//! collection, which `Overlay::commit` makes up for (`store.rs`).
//!
//! Its one rule: every pin key written to the tree is added before the
//! write commits (the overlay adds the keys it stages; a checkpoint load
//! adds the keys it stores), and the keys the tree held at open are added
//! by a thread that scans them (seconds at a million pins); until that
//! scan ends the filter answers "maybe" for every key. Bits are never
//! cleared: a removed pin, a write that failed, or a pinset grown past the
//! size chosen at open only make "maybe" answers more frequent, which cost
//! the lookup they would have cost anyway.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bits per pin the filter is sized for (3 probes: ~0.5% false "maybe").
const BITS_PER_PIN: u64 = 16;
/// Pins of room beyond those at open.
const HEADROOM_PINS: u64 = 1 << 20;
/// Smallest and largest sizes, in bits (2 MiB and 32 MiB).
const MIN_BITS: u64 = 1 << 24;
const MAX_BITS: u64 = 1 << 28;
/// Probes per key.
const PROBES: usize = 3;

/// A Bloom filter of pin keys; shared by reference, updated with atomics.
pub(crate) struct PinFilter {
    words: Box<[AtomicU64]>,
    /// Bit count minus one (the count is a power of two).
    mask: u64,
    /// Every key the tree held at open has been added.
    filled: AtomicBool,
}

impl std::fmt::Debug for PinFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinFilter")
            .field("bits", &(self.mask + 1))
            .field("filled", &self.filled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PinFilter {
    /// An empty filter with room for `pins` plus the headroom.
    pub(crate) fn with_room(pins: u64) -> Self {
        let want = pins
            .saturating_add(HEADROOM_PINS)
            .saturating_mul(BITS_PER_PIN);
        Self::with_bits(want.clamp(MIN_BITS, MAX_BITS).next_power_of_two())
    }

    fn with_bits(bits: u64) -> Self {
        debug_assert!(bits.is_power_of_two() && bits >= 64);
        let words = (0..bits / 64).map(|_| AtomicU64::new(0)).collect();
        Self {
            words,
            mask: bits - 1,
            filled: AtomicBool::new(false),
        }
    }

    /// The bit positions of `key`: double hashing over one 64-bit hash
    /// (std's SipHash with fixed keys; a crafted key can only collide,
    /// which costs a lookup).
    fn probes(&self, key: &[u8]) -> [u64; PROBES] {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let h = h.finish();
        let (a, b) = (h, h.rotate_left(32) | 1);
        std::array::from_fn(|i| a.wrapping_add((i as u64).wrapping_mul(b)) & self.mask)
    }

    /// Notes that the tree holds (or is about to hold) `key`.
    pub(crate) fn add(&self, key: &[u8]) {
        for bit in self.probes(key) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// False only if `key` was never added, once the keys at open are in.
    pub(crate) fn may_hold(&self, key: &[u8]) -> bool {
        if !self.filled.load(Ordering::Acquire) {
            return true;
        }
        self.probes(key).into_iter().all(|bit| {
            self.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
        })
    }

    /// Adds every key of `tree` under `prefix`, then answers "absent" for
    /// keys never added. Keys written meanwhile are added by their writer,
    /// and a key present when the scan starts is met by it (sled's scan
    /// sees every key not removed before it is reached). Stops early,
    /// leaving the filter unfilled ("maybe" for all), when the scan fails or
    /// when nothing else holds the filter (the replica was dropped: the
    /// scan must not keep its database open). Returns the keys added.
    pub(crate) fn fill(self: &Arc<Self>, tree: &sled::Tree, prefix: u8) -> u64 {
        let mut n = 0;
        for kv in tree.scan_prefix([prefix]) {
            let Ok((k, _)) = kv else {
                return n;
            };
            self.add(&k);
            n += 1;
            if n % 4096 == 0 && Arc::strong_count(self) == 1 {
                return n;
            }
        }
        self.filled.store(true, Ordering::Release);
        n
    }

    /// [`PinFilter::fill`] on a thread of its own, so that opening a large
    /// store does not wait for it.
    pub(crate) fn fill_in_background(self: &Arc<Self>, tree: &sled::Tree, prefix: u8) {
        let (filter, tree) = (Arc::clone(self), tree.clone());
        let spawned = std::thread::Builder::new()
            .name("pin-filter".into())
            .spawn(move || filter.fill(&tree, prefix));
        // Without the thread the filter stays unfilled: every lookup is
        // made, as without a filter.
        drop(spawned);
    }

    #[cfg(test)]
    fn is_filled(&self) -> bool {
        self.filled.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_key_is_always_held_and_most_others_are_not() {
        let f = PinFilter::with_bits(1 << 16);
        f.filled.store(true, Ordering::Release);
        let key = |i: u32| {
            let mut k = vec![b'p'];
            k.extend_from_slice(&i.to_be_bytes());
            k
        };
        for i in 0..2_000 {
            f.add(&key(i));
        }
        assert!((0..2_000).all(|i| f.may_hold(&key(i))));
        let false_maybe = (2_000..102_000).filter(|&i| f.may_hold(&key(i))).count();
        // 32 bits per key, 3 probes: ~0.2% expected.
        assert!(
            false_maybe < 1_000,
            "{false_maybe} of 100000 absent keys said maybe"
        );
    }

    #[test]
    fn sized_for_the_pins_at_open_within_bounds() {
        assert_eq!(PinFilter::with_room(0).mask + 1, MIN_BITS);
        assert_eq!(PinFilter::with_room(1_000_000).mask + 1, 1 << 25);
        assert_eq!(PinFilter::with_room(u64::MAX).mask + 1, MAX_BITS);
    }

    #[test]
    fn absent_is_answered_only_once_filled_and_only_for_other_keys() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = db.open_tree("t").unwrap();
        t.insert(b"pa", &[][..]).unwrap();
        t.insert(b"pb", &[][..]).unwrap();
        t.insert(b"da", &[][..]).unwrap();
        let f = Arc::new(PinFilter::with_bits(1 << 16));
        assert!(
            f.may_hold(b"pz") && f.may_hold(b"da"),
            "maybe while unfilled"
        );
        let keep = Arc::clone(&f);
        assert_eq!(f.fill(&t, b'p'), 2);
        drop(keep);
        assert!(f.is_filled());
        assert!(f.may_hold(b"pa") && f.may_hold(b"pb"));
        assert!(!f.may_hold(b"da") && !f.may_hold(b"pz"));
    }

    #[test]
    fn a_fill_nobody_waits_for_stops_unfilled() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = db.open_tree("t").unwrap();
        for i in 0..10_000u32 {
            let mut k = vec![b'p'];
            k.extend_from_slice(&i.to_be_bytes());
            t.insert(k, &[][..]).unwrap();
        }
        let f = Arc::new(PinFilter::with_bits(1 << 16));
        assert_eq!(f.fill(&t, b'p'), 4096);
        assert!(!f.is_filled());
    }

    #[test]
    fn a_background_fill_ends_filled() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = db.open_tree("t").unwrap();
        t.insert(b"pa", &[][..]).unwrap();
        let f = Arc::new(PinFilter::with_bits(1 << 16));
        f.fill_in_background(&t, b'p');
        let started = std::time::Instant::now();
        while !f.is_filled() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(f.may_hold(b"pa") && !f.may_hold(b"pz"));
    }

    #[test]
    fn a_reopened_replica_finds_its_pins_once_filled() {
        use crate::store::{cid_key, prefix};
        use crate::{Replica, ReplicaConfig, Write};
        use cluster_types::{Pin, PinOptions};
        use multihash_codetable::{Code, MultihashDigest};

        let cid = |n: u32| cid::Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()));
        let dir = tempfile::tempdir().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let cfg = ReplicaConfig::new("pin-filter");
        let open = || {
            let started = std::time::Instant::now();
            loop {
                match Replica::open(dir.path(), key.clone(), cfg.clone()) {
                    Err(e)
                        if e.to_string().contains("could not acquire lock")
                            && started.elapsed() < std::time::Duration::from_secs(30) =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    other => return other.unwrap(),
                }
            }
        };
        {
            let r = open();
            let pins = (0..100).map(|n| Write::Pin(Pin::new(cid(n), PinOptions::named("a"))));
            r.write(pins.collect()).unwrap();
            r.flush().unwrap();
        }
        let r = open();
        let started = std::time::Instant::now();
        while !r.pin_filter().is_filled() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!((0..100).all(|n| r.pin_filter().may_hold(&cid_key(prefix::PIN, &cid(n)))));
        let maybe = (100..200).filter(|n| r.pin_filter().may_hold(&cid_key(prefix::PIN, &cid(*n))));
        assert!(maybe.count() < 5, "absent keys answered maybe");
        // Renamed and unpinned through the filter: each write finds the
        // record (one taken for absent gives a pin op without tombs, and an
        // unpin that fails as not pinned).
        let renamed = (0..50).map(|n| Write::Pin(Pin::new(cid(n), PinOptions::named("b"))));
        let w = r.write(renamed.collect()).unwrap();
        assert!(w.delta.ops.iter().all(|op| op.tombs().len() == 1));
        r.write((50..100).map(|n| Write::Unpin(cid(n))).collect())
            .unwrap();
        assert_eq!(r.len().unwrap(), 50);
        assert!((0..50).all(|n| r.get(&cid(n)).unwrap().unwrap().options.name == "b"));
    }
}
