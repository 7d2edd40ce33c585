//! Acknowledged writes still waiting in the batch queue, as reads see them:
//! with batching on, a pin is acknowledged before its batch is committed,
//! so `GET /allocation/{cid}`, `GET /allocations`, unpins and `pin_update`
//! read through this overlay and see their own acknowledged writes.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use cid::Cid;
use cluster_types::Pin;
use crdt_dag::Write;

/// The last queued write of each CID (`Some(pin)` pinned, `None` unpinned)
/// with its batch-queue key. Cheap to clone; the batch writer fills it and
/// empties it of each batch it commits.
#[derive(Clone, Debug, Default)]
pub(crate) struct Queued(Arc<RwLock<HashMap<Cid, Entry>>>);

/// A queued write's key and what it leaves of its CID.
type Entry = (u64, Option<Pin>);

impl Queued {
    /// What the queue says of `cid`: `None` when it holds no write of it,
    /// `Some(None)` when its last queued write is an unpin.
    pub(crate) fn get(&self, cid: &Cid) -> Option<Option<Pin>> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        map.get(cid).map(|(_, p)| p.clone())
    }

    /// Records acknowledged writes with their queue keys, in order.
    pub(crate) fn record<'a>(&self, writes: impl IntoIterator<Item = (u64, &'a Write)>) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for (key, w) in writes {
            match w {
                Write::Pin(pin) => map.insert(pin.cid, (key, Some(pin.clone()))),
                Write::Unpin(cid) => map.insert(*cid, (key, None)),
            };
        }
    }

    /// Forgets the writes queued up to `key` (the queue's keys grow, and
    /// batches are committed oldest first): they are in the replica now.
    /// A CID written again later stays, with its later write.
    pub(crate) fn forget_through(&self, key: u64) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (k, _)| *k > key);
    }

    /// A copy of the overlay, for a listing that must not hold the lock.
    pub(crate) fn snapshot(&self) -> HashMap<Cid, Option<Pin>> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(cid, (_, p))| (*cid, p.clone())).collect()
    }
}

/// `pins` (the replica's, in its order) with `overlay` laid over them:
/// queued unpins hide their pins, queued pins replace theirs, and queued
/// pins the replica did not list come last. Each CID is listed once, also
/// when the batch is committed while the listing runs.
pub(crate) fn overlaid<I, E>(pins: I, overlay: HashMap<Cid, Option<Pin>>) -> Overlaid<I>
where
    I: Iterator<Item = Result<Pin, E>>,
{
    Overlaid {
        pins,
        overlay,
        rest: None,
    }
}

/// The iterator of [`overlaid`].
pub(crate) struct Overlaid<I> {
    pins: I,
    overlay: HashMap<Cid, Option<Pin>>,
    /// The overlay's pins not met in the replica, once it is listed.
    rest: Option<std::vec::IntoIter<Pin>>,
}

impl<I, E> Iterator for Overlaid<I>
where
    I: Iterator<Item = Result<Pin, E>>,
{
    type Item = Result<Pin, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_none() {
            for p in self.pins.by_ref() {
                let pin = match p {
                    Ok(pin) => pin,
                    Err(e) => return Some(Err(e)),
                };
                match self.overlay.remove(&pin.cid) {
                    None => return Some(Ok(pin)),
                    Some(Some(queued)) => return Some(Ok(queued)),
                    Some(None) => {}
                }
            }
            let rest: Vec<Pin> = std::mem::take(&mut self.overlay)
                .into_values()
                .flatten()
                .collect();
            self.rest = Some(rest.into_iter());
        }
        self.rest.as_mut()?.next().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multihash_codetable::{Code, MultihashDigest};

    fn cid(n: u8) -> Cid {
        Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]))
    }

    fn named(n: u8, name: &str) -> Pin {
        let mut p = Pin::new(cid(n), Default::default());
        p.options.name = name.into();
        p
    }

    #[test]
    fn the_overlay_replaces_hides_and_adds() {
        let q = Queued::default();
        let writes = [
            Write::Pin(named(2, "queued")),
            Write::Unpin(cid(3)),
            Write::Pin(named(4, "new")),
            Write::Pin(named(5, "pinned then unpinned")),
            Write::Unpin(cid(5)),
        ];
        q.record((1..).zip(&writes));
        assert_eq!(q.get(&cid(1)), None);
        assert_eq!(q.get(&cid(2)), Some(Some(named(2, "queued"))));
        assert_eq!(q.get(&cid(5)), Some(None));
        let replica = [1, 2, 3].map(|n| Ok::<_, ()>(named(n, "stored")));
        let listed: Vec<Pin> = overlaid(replica.into_iter(), q.snapshot())
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            listed,
            vec![named(1, "stored"), named(2, "queued"), named(4, "new")]
        );
        q.forget_through(5);
        assert_eq!(q.get(&cid(2)), None);
        assert!(q.snapshot().is_empty());
    }

    #[test]
    fn a_commit_forgets_its_writes_but_not_later_ones() {
        let q = Queued::default();
        // Keys 1-3 are being committed while 4 and 5 are queued.
        let writes = [
            Write::Pin(named(1, "first")),
            Write::Pin(named(2, "committed")),
            Write::Pin(named(3, "committed")),
            Write::Pin(named(1, "queued again")),
            Write::Unpin(cid(3)),
        ];
        q.record((1..).zip(&writes));
        q.forget_through(3);
        assert_eq!(q.get(&cid(1)), Some(Some(named(1, "queued again"))));
        assert_eq!(q.get(&cid(2)), None);
        assert_eq!(q.get(&cid(3)), Some(None));
        q.forget_through(5);
        assert!(q.snapshot().is_empty());
    }
}
