//! Bounded concurrency for answering other peers (RPC calls, bulk sync):
//! a total cap and a per-peer cap, so one peer can't hold every slot of a
//! protocol and lock the others out. A request over a cap waits a little
//! for its turn (an asker walking a DAG sends its next request as the last
//! answer ends, before the answerer has let go of that slot); only a few
//! may wait, and past them, or past the wait, it is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests that may wait, as a multiple of the slots.
const WAITING_PER_SLOT: usize = 4;

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Every slot is taken and too many requests wait.
    Total,
    /// The asking peer holds its share and has too many requests waiting.
    Peer,
    /// No slot came free in time.
    Timeout,
}

#[derive(Debug)]
struct PeerEntry {
    slots: Arc<Semaphore>,
    /// Requests holding or waiting for one of `slots`.
    claims: usize,
}

/// Answer slots: at most `total` at once, `per_peer` for any one peer.
#[derive(Debug)]
pub(crate) struct Slots {
    total: Arc<Semaphore>,
    waiting_room: Arc<Semaphore>,
    peers: Arc<Mutex<HashMap<PeerId, PeerEntry>>>,
    per_peer: usize,
}

/// A place in line for a slot: taken at once, without waiting.
#[derive(Debug)]
pub(crate) struct Claim {
    peer: PeerId,
    peer_slots: Arc<Semaphore>,
    total: Arc<Semaphore>,
    peers: Arc<Mutex<HashMap<PeerId, PeerEntry>>>,
    _room: OwnedSemaphorePermit,
}

/// A held slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _total: OwnedSemaphorePermit,
    _peer: OwnedSemaphorePermit,
    _claim: Claim,
}

impl Slots {
    pub(crate) fn new(total: usize, per_peer: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            waiting_room: Arc::new(Semaphore::new(total * WAITING_PER_SLOT)),
            peers: Arc::default(),
            per_peer,
        }
    }

    /// A place in line for `peer`, or a refusal when too many of its (or
    /// everyone's) requests are already held or waiting.
    pub(crate) fn claim(&self, peer: PeerId) -> Result<Claim, Busy> {
        let mut peers = self.peers.lock().expect("poisoned");
        if peers
            .get(&peer)
            .is_some_and(|e| e.claims >= self.per_peer * WAITING_PER_SLOT)
        {
            return Err(Busy::Peer);
        }
        let room = self
            .waiting_room
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Total)?;
        let entry = peers.entry(peer).or_insert_with(|| PeerEntry {
            slots: Arc::new(Semaphore::new(self.per_peer)),
            claims: 0,
        });
        entry.claims += 1;
        Ok(Claim {
            peer,
            peer_slots: entry.slots.clone(),
            total: self.total.clone(),
            peers: self.peers.clone(),
            _room: room,
        })
    }
}

impl Claim {
    /// Waits up to `wait` for the peer's slot and a total one.
    pub(crate) async fn slot(self, wait: Duration) -> Result<Slot, Busy> {
        let deadline = tokio::time::Instant::now() + wait;
        let peer = tokio::time::timeout_at(deadline, self.peer_slots.clone().acquire_owned())
            .await
            .map_err(|_| Busy::Timeout)?
            .expect("slot semaphores are never closed");
        let total = tokio::time::timeout_at(deadline, self.total.clone().acquire_owned())
            .await
            .map_err(|_| Busy::Timeout)?
            .expect("slot semaphores are never closed");
        Ok(Slot {
            _total: total,
            _peer: peer,
            _claim: self,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut peers = self.peers.lock().expect("poisoned");
        if let Some(e) = peers.get_mut(&self.peer) {
            e.claims -= 1;
            if e.claims == 0 {
                peers.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn one_peer_cannot_take_every_slot() {
        let slots = Slots::new(3, 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let a1 = slots.claim(a).unwrap().slot(SHORT).await.unwrap();
        let _a2 = slots.claim(a).unwrap().slot(SHORT).await.unwrap();
        // a's third waits for one of its own and times out...
        let third = slots.claim(a).unwrap();
        assert_eq!(third.slot(SHORT).await.unwrap_err(), Busy::Timeout);
        // ...while b still gets the last free one.
        let _b1 = slots.claim(b).unwrap().slot(SHORT).await.unwrap();
        let waiting = tokio::spawn({
            let claim = slots.claim(c).unwrap();
            async move { claim.slot(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(SHORT).await;
        drop(a1);
        assert!(waiting.await.unwrap().is_ok(), "c got a's slot");
    }

    #[tokio::test]
    async fn the_line_is_bounded_and_forgotten() {
        let slots = Slots::new(1, 1);
        let p = PeerId::random();
        let claims: Vec<Claim> = (0..WAITING_PER_SLOT)
            .map(|_| slots.claim(p).unwrap())
            .collect();
        assert_eq!(slots.claim(p).unwrap_err(), Busy::Peer);
        assert_eq!(slots.claim(PeerId::random()).unwrap_err(), Busy::Total);
        drop(claims);
        assert!(slots.peers.lock().unwrap().is_empty());
        let held = slots.claim(p).unwrap().slot(SHORT).await.unwrap();
        drop(held);
        assert!(slots.peers.lock().unwrap().is_empty());
        assert_eq!(slots.total.available_permits(), 1);
    }
}
