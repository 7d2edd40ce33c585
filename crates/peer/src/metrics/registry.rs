//! The process's counters and latency histograms: bumped where the work
//! happens (the IPFS backend, the add fan-out), read by the exposition.
//! Process-wide, as Go's Prometheus registry is: peers embedded together
//! in one process share them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic count.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds (seconds) of the latency buckets: an IPFS call takes from
/// under a millisecond (a local block) to minutes (a pin fetching a DAG).
pub(crate) const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// Durations counted by bucket (cumulative at exposition), their sum and
/// count, and the calls that failed.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    errors: AtomicU64,
}

/// What a histogram held when read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// Per bucket of [`BUCKETS`], not cumulative.
    pub(crate) buckets: [u64; BUCKETS.len()],
    pub(crate) count: u64,
    pub(crate) sum_seconds: f64,
    pub(crate) errors: u64,
}

impl Histogram {
    pub(crate) const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Records one call that took `took`, failed or not.
    pub(crate) fn observe(&self, took: Duration, failed: bool) {
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
            #[allow(clippy::cast_precision_loss)]
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// The IPFS calls timed, by the name they are exposed with (the streamed
/// ones, `pin_ls` and `repo_gc`, are not).
pub(crate) const IPFS_CALLS: [&str; 12] = [
    "id",
    "pin",
    "unpin",
    "pin_ls_cid",
    "pin_update",
    "block_put",
    "block_get",
    "block_stat",
    "dag_import",
    "repo_stat",
    "swarm_connect",
    "resolve",
];

/// Latency of each IPFS call, in [`IPFS_CALLS`]' order.
pub(crate) static IPFS_LATENCY: [Histogram; IPFS_CALLS.len()] =
    [const { Histogram::new() }; IPFS_CALLS.len()];

/// Times one IPFS call named `call` (one of [`IPFS_CALLS`]).
pub(crate) fn observe_ipfs(call: &str, took: Duration, failed: bool) {
    if let Some(i) = IPFS_CALLS.iter().position(|c| *c == call) {
        IPFS_LATENCY[i].observe(took, failed);
    }
}

/// Go's `pins/pin_add`: IPFS pin requests made (pin and pin update).
pub(crate) static PIN_ADD: Counter = Counter::new();
/// Go's `pins/pin_add_errors`.
pub(crate) static PIN_ADD_ERRORS: Counter = Counter::new();
/// Go's `blocks/put`: `block/put` requests made by adds.
pub(crate) static BLOCKS_PUT: Counter = Counter::new();
/// Go's `blocks/added`: blocks put successfully.
pub(crate) static BLOCKS_ADDED: Counter = Counter::new();
/// Go's `blocks/added_size`: their bytes.
pub(crate) static BLOCKS_ADDED_SIZE: Counter = Counter::new();
/// Go's `blocks/put_errors`.
pub(crate) static BLOCKS_PUT_ERRORS: Counter = Counter::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(500), false);
        h.observe(Duration::from_millis(7), true);
        h.observe(Duration::from_secs(600), false);
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[2], 1);
        assert_eq!(
            s.buckets.iter().sum::<u64>(),
            2,
            "past the last bucket: +Inf only"
        );
        assert_eq!((s.count, s.errors), (3, 1));
        assert!((s.sum_seconds - 600.0075).abs() < 1e-6);
    }
}
