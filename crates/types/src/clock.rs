//! Creation times that never repeat within a process: a pin's timestamp is
//! the key the Pinning Service API pages by, and its spec wants every
//! `created` to be unique.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last instant handed out, in nanoseconds since the epoch.
static LAST: AtomicU64 = AtomicU64::new(0);

/// The wall clock, moved 1 ns past the previous call's answer when the
/// clock has not advanced (two pins in the same tick, or a clock stepped
/// back): strictly increasing within the process.
pub fn unique_now() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return UNIX_EPOCH + Duration::from_nanos(next),
            Err(seen) => prev = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_strictly_increase_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..10_000).map(|_| unique_now()).collect::<Vec<_>>()))
            .collect();
        let mut all = Vec::new();
        for t in threads {
            let mine = t.join().unwrap();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
            all.extend(mine);
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an instant was handed out twice");
    }

    #[test]
    fn stays_close_to_the_wall_clock() {
        let t = unique_now();
        let drift = t
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        assert!(drift < Duration::from_millis(100), "{drift:?} ahead");
    }
}
