//! Bounded concurrency for answering other peers (RPC calls, bulk sync):
//! a total cap, a per-peer cap and a per-address cap (peer IDs cost nothing
//! to make; addresses are what one host has few of), so one peer or one
//! host can't hold every slot of a protocol and lock the others out. A
//! request over a cap waits a little for its turn (an asker walking a DAG
//! sends its next request as the last answer ends, before the answerer has
//! let go of that slot); only a few may wait, and past them, or past the
//! wait, it is refused.
//!
//! [`Budget`] rations the time one asker may keep the answerer busy with
//! work that is costly whoever asks (walks of the DAG for bulk sync).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The asking peer's address does (its other peer IDs included).
    Ip,
    /// No slot came free in time.
    Timeout,
}

/// Who a share is counted for: a peer ID or an address (`ip_limits.rs`
/// `ip_key`: IPv4, IPv6 /56; none for loopback and relayed peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Asker {
    Peer(PeerId),
    Ip(IpAddr),
}

impl Asker {
    /// The address when there is one (the scarcer of the two), else the peer.
    pub(crate) fn of(peer: PeerId, ip: Option<IpAddr>) -> Self {
        ip.map_or(Self::Peer(peer), Self::Ip)
    }
}

#[derive(Debug)]
struct Share {
    slots: Arc<Semaphore>,
    /// Requests holding or waiting for one of `slots`.
    claims: usize,
}

type Shares = Arc<Mutex<HashMap<Asker, Share>>>;

/// Answer slots: at most `total` at once, `per_peer` for any one peer and
/// `per_ip` for any one address.
#[derive(Debug)]
pub(crate) struct Slots {
    total: Arc<Semaphore>,
    waiting_room: Arc<Semaphore>,
    shares: Shares,
    per_peer: usize,
    per_ip: usize,
}

/// A place in line for a slot: taken at once, without waiting.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The peer's share, then its address's.
    shares: Vec<(Asker, Arc<Semaphore>)>,
    total: Arc<Semaphore>,
    all: Shares,
    _room: OwnedSemaphorePermit,
}

/// A held slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _total: OwnedSemaphorePermit,
    _shares: Vec<OwnedSemaphorePermit>,
    _claim: Claim,
}

impl Slots {
    pub(crate) fn new(total: usize, per_peer: usize, per_ip: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            waiting_room: Arc::new(Semaphore::new(total * WAITING_PER_SLOT)),
            shares: Arc::default(),
            per_peer,
            per_ip,
        }
    }

    /// A place in line for `peer` (at address `ip`, when counted), or a
    /// refusal when too many of its, its address's or everyone's requests
    /// are already held or waiting.
    pub(crate) fn claim(&self, peer: PeerId, ip: Option<IpAddr>) -> Result<Claim, Busy> {
        let mut shares = self.shares.lock().expect("poisoned");
        let mut askers = vec![(Asker::Peer(peer), self.per_peer, Busy::Peer)];
        if let Some(ip) = ip {
            askers.push((Asker::Ip(ip), self.per_ip, Busy::Ip));
        }
        for (asker, cap, busy) in &askers {
            if shares
                .get(asker)
                .is_some_and(|s| s.claims >= cap * WAITING_PER_SLOT)
            {
                return Err(*busy);
            }
        }
        let room = self
            .waiting_room
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Total)?;
        let held = askers
            .into_iter()
            .map(|(asker, cap, _)| {
                let share = shares.entry(asker).or_insert_with(|| Share {
                    slots: Arc::new(Semaphore::new(cap)),
                    claims: 0,
                });
                share.claims += 1;
                (asker, share.slots.clone())
            })
            .collect();
        Ok(Claim {
            shares: held,
            total: self.total.clone(),
            all: self.shares.clone(),
            _room: room,
        })
    }
}

impl Claim {
    /// Waits up to `wait` for the peer's slot, its address's and a total
    /// one (always in that order, so no two claims wait on each other).
    pub(crate) async fn slot(self, wait: Duration) -> Result<Slot, Busy> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut held = Vec::with_capacity(self.shares.len());
        for (_, slots) in &self.shares {
            let permit = tokio::time::timeout_at(deadline, slots.clone().acquire_owned())
                .await
                .map_err(|_| Busy::Timeout)?
                .expect("slot semaphores are never closed");
            held.push(permit);
        }
        let total = tokio::time::timeout_at(deadline, self.total.clone().acquire_owned())
            .await
            .map_err(|_| Busy::Timeout)?
            .expect("slot semaphores are never closed");
        Ok(Slot {
            _total: total,
            _shares: held,
            _claim: self,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut all = self.all.lock().expect("poisoned");
        for (asker, _) in &self.shares {
            if let Some(s) = all.get_mut(asker) {
                s.claims -= 1;
                if s.claims == 0 {
                    all.remove(asker);
                }
            }
        }
    }
}

/// Askers a [`Budget`] remembers apart; past them, new ones share one
/// allowance (an open cluster's peer IDs cost nothing to make).
pub(crate) const MAX_BUDGETED_ASKERS: usize = 4096;

/// A time allowance per asker (a token bucket counted in seconds of work):
/// each starts with `burst`, gets `rate` seconds back every second up to
/// `burst`, and pays for each piece of work after it ends, whatever it
/// cost. An asker whose allowance is spent is refused until it is back above
/// zero, so, past its first `burst`, no asker keeps the work busy more than
/// `rate` of the time, however often it asks.
#[derive(Debug)]
pub(crate) struct Budget {
    burst: f64,
    rate: f64,
    askers: Mutex<HashMap<Option<Asker>, (f64, Instant)>>,
}

impl Budget {
    pub(crate) fn new(burst: Duration, rate: f64) -> Self {
        Self {
            burst: burst.as_secs_f64(),
            rate,
            askers: Mutex::default(),
        }
    }

    /// `asker`'s allowance at `now`, refilled; `None` is the shared one.
    fn refilled(
        &self,
        askers: &HashMap<Option<Asker>, (f64, Instant)>,
        asker: Option<Asker>,
        now: Instant,
    ) -> f64 {
        let (left, at) = askers.get(&asker).copied().unwrap_or((self.burst, now));
        let secs = now.saturating_duration_since(at).as_secs_f64();
        (left + secs * self.rate).min(self.burst)
    }

    /// The key `asker` is counted under: its own, or the shared one when
    /// too many others are remembered (those with a full allowance are
    /// forgotten first: they are as good as new).
    fn key(
        &self,
        askers: &mut HashMap<Option<Asker>, (f64, Instant)>,
        asker: Asker,
        now: Instant,
    ) -> Option<Asker> {
        if askers.contains_key(&Some(asker)) || askers.len() < MAX_BUDGETED_ASKERS {
            return Some(asker);
        }
        let full: Vec<Option<Asker>> = askers
            .keys()
            .copied()
            .filter(|k| k.is_some() && self.refilled(askers, *k, now) >= self.burst)
            .collect();
        for k in full {
            askers.remove(&k);
        }
        (askers.len() < MAX_BUDGETED_ASKERS).then_some(asker)
    }

    /// Whether `asker` may start a piece of work now.
    pub(crate) fn allows(&self, asker: Asker, now: Instant) -> bool {
        let mut askers = self.askers.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.key(&mut askers, asker, now);
        self.refilled(&askers, key, now) > 0.0
    }

    /// `asker` did `spent` of work ending at `now`.
    pub(crate) fn charge(&self, asker: Asker, spent: Duration, now: Instant) {
        let mut askers = self.askers.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.key(&mut askers, asker, now);
        let left = self.refilled(&askers, key, now) - spent.as_secs_f64();
        askers.insert(key, (left, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn one_peer_cannot_take_every_slot() {
        let slots = Slots::new(3, 2, 3);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let a1 = slots.claim(a, None).unwrap().slot(SHORT).await.unwrap();
        let _a2 = slots.claim(a, None).unwrap().slot(SHORT).await.unwrap();
        // a's third waits for one of its own and times out...
        let third = slots.claim(a, None).unwrap();
        assert_eq!(third.slot(SHORT).await.unwrap_err(), Busy::Timeout);
        // ...while b still gets the last free one.
        let _b1 = slots.claim(b, None).unwrap().slot(SHORT).await.unwrap();
        let waiting = tokio::spawn({
            let claim = slots.claim(c, None).unwrap();
            async move { claim.slot(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(SHORT).await;
        drop(a1);
        assert!(waiting.await.unwrap().is_ok(), "c got a's slot");
    }

    #[tokio::test]
    async fn the_line_is_bounded_and_forgotten() {
        let slots = Slots::new(1, 1, 1);
        let p = PeerId::random();
        let claims: Vec<Claim> = (0..WAITING_PER_SLOT)
            .map(|_| slots.claim(p, None).unwrap())
            .collect();
        assert_eq!(slots.claim(p, None).unwrap_err(), Busy::Peer);
        assert_eq!(
            slots.claim(PeerId::random(), None).unwrap_err(),
            Busy::Total
        );
        drop(claims);
        assert!(slots.shares.lock().unwrap().is_empty());
        let held = slots.claim(p, None).unwrap().slot(SHORT).await.unwrap();
        drop(held);
        assert!(slots.shares.lock().unwrap().is_empty());
        assert_eq!(slots.total.available_permits(), 1);
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_slot_whatever_its_peer_ids() {
        let slots = Slots::new(4, 2, 2);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        // Two peer IDs of one host take the address's two slots...
        let _x = slots
            .claim(PeerId::random(), Some(ip))
            .unwrap()
            .slot(SHORT)
            .await;
        let _y = slots
            .claim(PeerId::random(), Some(ip))
            .unwrap()
            .slot(SHORT)
            .await;
        // ...a third waits for one of them and times out...
        let third = slots.claim(PeerId::random(), Some(ip)).unwrap();
        assert_eq!(third.slot(SHORT).await.unwrap_err(), Busy::Timeout);
        // ...while another address, or a peer without one, still gets in.
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        assert!(
            slots
                .claim(PeerId::random(), Some(other))
                .unwrap()
                .slot(SHORT)
                .await
                .is_ok()
        );
        assert!(
            slots
                .claim(PeerId::random(), None)
                .unwrap()
                .slot(SHORT)
                .await
                .is_ok()
        );
        // The address's waiting line is bounded like a peer's.
        let waiting: Vec<Claim> = (0..2 * WAITING_PER_SLOT - 2)
            .map(|_| slots.claim(PeerId::random(), Some(ip)).unwrap())
            .collect();
        assert_eq!(
            slots.claim(PeerId::random(), Some(ip)).unwrap_err(),
            Busy::Ip
        );
        drop(waiting);
    }

    #[test]
    fn a_budget_rations_work_per_asker() {
        // 10 s at once, then a tenth of the time.
        let budget = Budget::new(Duration::from_secs(10), 0.1);
        let t0 = Instant::now();
        let a = Asker::Ip("198.51.100.7".parse().unwrap());
        let b = Asker::Peer(PeerId::random());
        assert!(budget.allows(a, t0));
        // One long walk overdraws...
        budget.charge(a, Duration::from_secs(12), t0);
        assert!(!budget.allows(a, t0));
        // ...and is paid back at a tenth: 2 s over needs 20 s.
        assert!(!budget.allows(a, t0 + Duration::from_secs(19)));
        assert!(budget.allows(a, t0 + Duration::from_secs(21)));
        // Others are not affected.
        assert!(budget.allows(b, t0));
        // Short pieces of work cost little: a thousand 5 ms walks in 50 s.
        let mut t = t0;
        for _ in 0..1000 {
            assert!(budget.allows(b, t));
            budget.charge(b, Duration::from_millis(5), t);
            t += Duration::from_millis(50);
        }
        // Refills stop at the burst: a long rest does not buy more.
        let later = t0 + Duration::from_secs(3600);
        budget.charge(a, Duration::from_secs(10), later);
        assert!(!budget.allows(a, later));
    }

    #[test]
    fn a_budget_remembers_a_bounded_number_of_askers() {
        let budget = Budget::new(Duration::from_secs(1), 0.01);
        let t0 = Instant::now();
        let spent = Duration::from_secs(2);
        for i in 0..MAX_BUDGETED_ASKERS {
            budget.charge(Asker::Peer(PeerId::random()), spent, t0);
            assert!(budget.askers.lock().unwrap().len() <= i + 1);
        }
        // Every remembered asker is in debt: newcomers share one allowance,
        // which the first of them spends for all.
        let (x, y) = (Asker::Peer(PeerId::random()), Asker::Peer(PeerId::random()));
        assert!(budget.allows(x, t0));
        budget.charge(x, spent, t0);
        assert!(!budget.allows(y, t0));
        assert_eq!(budget.askers.lock().unwrap().len(), MAX_BUDGETED_ASKERS + 1);
        // Once the others are paid back they are forgotten, and a newcomer
        // gets its own allowance again.
        let later = t0 + Duration::from_secs(1000);
        assert!(budget.allows(y, later));
        budget.charge(y, Duration::from_secs(5), later);
        assert!(budget.askers.lock().unwrap().len() < 10);
        assert!(budget.allows(Asker::Peer(PeerId::random()), later));
    }
}
