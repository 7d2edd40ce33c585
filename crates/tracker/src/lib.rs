//! The pin tracker: keeps this peer's IPFS pins in line with the cluster
//! pinset, as Go IPFS Cluster's stateless tracker does
//! (`pintracker/stateless`).
//!
//! It owns the operations, queues, workers and persisted errors of one
//! peer's pins; the pinset comes in through the [`Pinset`] trait and IPFS
//! through `ipfs::IpfsConnector`. It must not depend on `api` (no HTTP
//! server), `crdt-dag` or the peer.
//!
//! # What it does
//!
//! [`Tracker::track`] and [`Tracker::untrack`] turn pinset changes into
//! *operations* (pin, unpin, or "remote": unpin something allocated
//! elsewhere), kept in memory only while they are queued, in progress or
//! failed. Three bounded queues feed the workers: a priority pin queue
//! (fresh pins that have not failed often, Go's PR #1490), the normal pin
//! queue and the unpin queue. `concurrent_pins` pin workers always drain the
//! priority queue first; one worker unpins. A failed operation is retried
//! automatically after `retry_backoff`, doubled per attempt, up to
//! `max_retries` times; it then stays in error until [`Tracker::recover`].
//!
//! Statuses are derived, never stored for healthy pins: an operation in
//! memory wins, then a persisted error record, then the pin's placement
//! (`remote`, `sharded`), then the *index* of what IPFS has pinned
//! (`pinned`, else `unexpectedly_unpinned`).
//!
//! # On disk
//!
//! The tracker owns one sled tree, with five key spaces:
//!
//! | key | value |
//! |---|---|
//! | `e` ++ CID bytes | error record: `2`, flags, kind (0 = pin, 1 = unpin, 2 = remote), then varints attempts and unix ms, then the error text's number (a varint; flag 1) or the text itself (UTF-8 to the end); flag 2: each U+0001 in the text stands for the CID's text, cut out of it. Records of layout 1 (a DAG-CBOR map `{"v": 1, "k", "e", "a", "t"}`) are still read |
//! | `x` ++ u32 big-endian | an error text by number (at most 4,096 texts of at most 512 bytes; set once, flushed before a record names it), so the failures of many CIDs with one cause take about 11 bytes each |
//! | `i` ++ CID bytes | index entry: 9 bytes, pin type (1 = recursive, 2 = direct) then the generation (u64 big-endian) that last saw it |
//! | `o` ++ CID bytes | empty: this tracker pinned the CID in IPFS (set when a pin succeeds, cleared when an unpin or remote op does) |
//! | `m/gen` | the index's current generation (u64 big-endian) |
//!
//! The `o` set lets [`Tracker::recover_all`] unpin what it pinned and the
//! pinset no longer has, even when the removal never reached
//! [`Tracker::untrack`] (an event lost to a lagging channel or a crash);
//! pins made in IPFS by someone else are never in it.
//!
//! Error records are written when an operation fails and removed when an
//! operation on that CID succeeds, so `pin_error`/`unpin_error`, the error
//! text and the attempt count survive a restart (Go keeps them in memory
//! only). [`Tracker::reconcile`] starts a new index generation, streams
//! IPFS's recursive and direct pins into the index and then sweeps entries
//! of older generations: nothing is collected, so memory stays constant
//! whatever the number of pins. Pins and unpins done by the tracker update
//! the index directly.
//!
//! # Restart
//!
//! Operations in memory are lost on restart, as in Go; the peer calls
//! [`Tracker::recover_all`] at start (Go's `RecoverAllLocal`), which
//! re-queues what is `pin_error`, `unexpectedly_unpinned` or `unpin_error`.
//!
//! # Dependencies
//!
//! The statuses are the shared model's (`cluster-types`); IPFS is reached
//! through the `ipfs` connector trait. Never `api` (no HTTP server here)
//! nor the peer: the pinset comes in through [`Pinset`].

#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod error;
mod offline;
mod ops;
mod store;
mod texts;
mod tracker;
mod types;

pub use error::TrackerError;
pub use offline::{RecordedStatus, recorded_status};
pub use tracker::Tracker;
pub use types::{LocalStatus, Pinset, TrackerConfig};
