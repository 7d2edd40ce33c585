//! The tracker's public data types: its configuration, the pins it is given
//! and the statuses it reports, and the [`Pinset`] it reads.

use std::time::{Duration, SystemTime};

use cid::Cid;
use cluster_types::Pin;
use cluster_types::TrackerStatus;

use crate::TrackerError;

/// The tracker's configuration (Go's `pin_tracker.stateless` section, plus
/// automatic retries, which Go leaves to the periodic `RecoverAllLocal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Capacity of each of the three queues (priority pin, pin, unpin).
    /// **Default:** 1,000,000.
    pub max_pin_queue_size: usize,
    /// Pin workers, hence the most IPFS pin calls at once. **Default:** 10.
    pub concurrent_pins: usize,
    /// Pins younger than this go to the priority queue. **Default:** 24h.
    pub priority_pin_max_age: Duration,
    /// Pins that failed more than this many times lose their priority.
    /// **Default:** 5.
    pub priority_pin_max_retries: u32,
    /// Delay before the first automatic retry after a failure, doubled for
    /// each further attempt. **Default:** 30s.
    pub retry_backoff: Duration,
    /// Automatic retries before an operation stays in error until
    /// recovered. **Default:** 3.
    pub max_retries: u32,
    /// Operations held in memory (queued, in progress, or failed and
    /// waiting for a retry) past which a new pin is not queued but left in
    /// the backlog, which is read back from
    /// the pinset as the queues drain: the memory of a peer that has a
    /// million pins to pin stays that of this many. **Default:** 10,000.
    pub max_ops_in_memory: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            max_pin_queue_size: 1_000_000,
            concurrent_pins: 10,
            priority_pin_max_age: Duration::from_secs(24 * 60 * 60),
            priority_pin_max_retries: 5,
            retry_backoff: Duration::from_secs(30),
            max_retries: 3,
            max_ops_in_memory: 10_000,
        }
    }
}

/// The shared pinset, as the tracker sees it (implemented by the peer over
/// its CRDT).
pub trait Pinset: Send + Sync + 'static {
    /// The pin of `cid`, if the pinset has it.
    ///
    /// # Errors
    /// When the pinset can't be read.
    fn get(&self, cid: &Cid) -> Result<Option<Pin>, TrackerError>;

    /// Every pin, in a stable order (the peer's store is ordered by CID
    /// bytes), streamed: never collected.
    fn pins(&self) -> Box<dyn Iterator<Item = Result<Pin, TrackerError>> + Send>;

    /// The pins after `after` in the order of [`Pinset::pins`] (all of them
    /// for `None`), for a walk that resumes. The default filters
    /// [`Pinset::pins`]; a store ordered by CID bytes seeks instead.
    fn pins_after(
        &self,
        after: Option<&Cid>,
    ) -> Box<dyn Iterator<Item = Result<Pin, TrackerError>> + Send> {
        let Some(after) = after.map(Cid::to_bytes) else {
            return self.pins();
        };
        Box::new(
            self.pins()
                .filter(move |p| p.as_ref().map_or(true, |p| p.cid.to_bytes() > after)),
        )
    }
}

/// The status of a CID on this peer (what Go's `PinInfoShort` carries).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalStatus {
    /// The content.
    pub cid: Cid,
    /// Its status.
    pub status: TrackerStatus,
    /// The error of an error status (`""` otherwise).
    pub error: String,
    /// Failed attempts of the current (or last failed) operation.
    pub attempt_count: u32,
    /// Whether the operation went to the priority queue.
    pub priority_pin: bool,
    /// When this status was last set.
    pub timestamp: SystemTime,
    /// The pin's name, from the pinset when known.
    pub name: String,
}
