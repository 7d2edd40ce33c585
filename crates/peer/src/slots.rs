//! Bounded concurrency for answering other peers (RPC calls, bulk sync):
//! a total cap and a per-peer cap, so one peer can't hold every slot of a
//! protocol and lock the others out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Every slot is taken.
    Total,
    /// The asking peer holds its share.
    Peer,
}

/// Answer slots: at most `total` at once, `per_peer` for any one peer.
#[derive(Debug)]
pub(crate) struct Slots {
    total: Arc<Semaphore>,
    held: Arc<Mutex<HashMap<PeerId, usize>>>,
    per_peer: usize,
}

/// A held slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    peer: PeerId,
    held: Arc<Mutex<HashMap<PeerId, usize>>>,
}

impl Slots {
    pub(crate) fn new(total: usize, per_peer: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            held: Arc::default(),
            per_peer,
        }
    }

    /// A slot for `peer`, now or never (the caller drops the request).
    pub(crate) fn try_acquire(&self, peer: PeerId) -> Result<Slot, Busy> {
        let mut held = self.held.lock().expect("poisoned");
        if held.get(&peer).is_some_and(|n| *n >= self.per_peer) {
            return Err(Busy::Peer);
        }
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Total)?;
        *held.entry(peer).or_default() += 1;
        Ok(Slot {
            _permit: permit,
            peer,
            held: self.held.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("poisoned");
        if let Some(n) = held.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_cannot_take_every_slot() {
        let slots = Slots::new(3, 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let a1 = slots.try_acquire(a).unwrap();
        let _a2 = slots.try_acquire(a).unwrap();
        assert_eq!(slots.try_acquire(a).unwrap_err(), Busy::Peer);
        let _b1 = slots.try_acquire(b).unwrap();
        assert_eq!(slots.try_acquire(c).unwrap_err(), Busy::Total);
        // A refusal for the total cap leaves no count behind.
        assert!(!slots.held.lock().unwrap().contains_key(&c));
        drop(a1);
        let _c1 = slots.try_acquire(c).unwrap();
        assert_eq!(slots.try_acquire(a).unwrap_err(), Busy::Total);
    }

    #[test]
    fn dropped_slots_are_forgotten() {
        let slots = Slots::new(4, 4);
        let p = PeerId::random();
        let held: Vec<Slot> = (0..4).map(|_| slots.try_acquire(p).unwrap()).collect();
        drop(held);
        assert!(slots.held.lock().unwrap().is_empty());
        assert_eq!(slots.total.available_permits(), 4);
    }
}
