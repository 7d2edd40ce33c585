//! How far this peer is behind the others (`GET /history/sync`): the
//! heights other peers announced with their heads, each new highest one
//! with when it was first heard, against this peer's height. Heights are
//! head priorities, so a difference of heights is a count of deltas along
//! the longest chain.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// New highest heights remembered; when full, the ones this peer has
/// reached are dropped first, then the second oldest (the oldest one not
/// reached dates the lag).
const HEARD_HEIGHTS: usize = 64;

/// The lag tracker shared by the sync loop and the API.
#[derive(Debug, Default)]
pub(crate) struct Lag {
    /// Each new highest height heard and when, ascending.
    heard: Mutex<VecDeque<(u64, SystemTime)>>,
    /// Announced heads not applied yet, as the sync loop last counted.
    wanted: AtomicU64,
}

/// This peer against what it heard, at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncLag {
    /// This peer's height (its highest head priority).
    pub height: u64,
    /// The highest height another peer announced (at least `height`).
    pub seen_height: u64,
    /// When the oldest announced height this peer has not reached was
    /// first heard; `None` when it is level.
    pub behind_since: Option<SystemTime>,
    /// Announced heads not applied yet: a sync is running while above 0.
    pub wanted_heads: u64,
}

impl Lag {
    /// Notes a height another peer announced; `ours` is asked only when
    /// the memory is full.
    pub(crate) fn heard(&self, height: u64, ours: impl FnOnce() -> u64) {
        let mut heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        if heard.back().is_some_and(|(h, _)| height <= *h) {
            return;
        }
        if heard.len() >= HEARD_HEIGHTS {
            let ours = ours();
            while heard.front().is_some_and(|(h, _)| *h <= ours) {
                heard.pop_front();
            }
            if heard.len() >= HEARD_HEIGHTS {
                heard.remove(1);
            }
        }
        heard.push_back((height, SystemTime::now()));
    }

    /// Counts the heads the sync loop waits for.
    pub(crate) fn set_wanted(&self, n: usize) {
        self.wanted.store(n as u64, Ordering::Relaxed);
    }

    /// The lag of a peer at `height`.
    pub(crate) fn at(&self, height: u64) -> SyncLag {
        let mut heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        while heard.front().is_some_and(|(h, _)| *h <= height) {
            heard.pop_front();
        }
        SyncLag {
            height,
            seen_height: heard.back().map_or(height, |(h, _)| *h),
            behind_since: heard.front().map(|(_, t)| *t),
            wanted_heads: self.wanted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_when_every_heard_height_is_reached() {
        let lag = Lag::default();
        lag.heard(3, || 0);
        lag.heard(5, || 0);
        assert_eq!(lag.at(5).behind_since, None);
        assert_eq!(lag.at(5).seen_height, 5);
    }

    #[test]
    fn behind_since_the_oldest_height_not_reached() {
        let lag = Lag::default();
        lag.heard(3, || 0);
        let first = lag.heard.lock().unwrap()[0].1;
        lag.heard(2, || 0);
        lag.heard(9, || 0);
        let at = lag.at(1);
        assert_eq!((at.seen_height, at.behind_since), (9, Some(first)));
        let at = lag.at(4);
        assert_eq!(at.seen_height, 9);
        assert_ne!(at.behind_since, None);
    }

    #[test]
    fn a_full_memory_keeps_the_oldest_height_not_reached() {
        let lag = Lag::default();
        for h in 1..=(HEARD_HEIGHTS as u64 * 2) {
            lag.heard(h, || 0);
        }
        let heard = lag.heard.lock().unwrap();
        assert_eq!(heard.len(), HEARD_HEIGHTS);
        assert_eq!(heard.front().unwrap().0, 1);
        assert_eq!(heard.back().unwrap().0, HEARD_HEIGHTS as u64 * 2);
    }
}
