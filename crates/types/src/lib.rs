//! The model every crate of the cluster shares: one pin ([`Pin`],
//! [`PinOptions`], [`PinMode`], [`PinType`]) from REST to IPFS, the
//! tracker's statuses, [`Metric`], how IPFS holds a CID
//! ([`IpfsPinType`]), Go durations and RFC 3339 times, and the placement
//! rules as plain functions ([`placement`]).
//!
//! Its JSON is Go IPFS Cluster's (field names, `null` versus `[]`, times).
//! It depends on serde and cid only: no async runtime, no HTTP, no
//! storage. `crdt-dag` keeps its own frozen wire struct and converts.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cid_text;
pub mod clock;
pub mod duration;
mod ipfs_pin;
pub mod iter;
mod metric;
pub mod pin;
pub mod placement;
mod status;
pub mod time;
pub mod wire;

use std::fmt;

pub use cid_text::{CidTextError, parse_cid};
pub use duration::{DurationError, format_go_duration, parse_go_duration, parse_go_duration_nanos};
pub use ipfs_pin::IpfsPinType;
pub use metric::Metric;
pub use pin::{Pin, PinMode, PinOptions, PinType, PinTypeFilter};
pub use placement::{Placement, Replication, ReplicationError, resolve_replication};
pub use status::{TrackerStatus, TrackerStatusFilter};

/// A text the model can't read (a mode, a filter): the message names the
/// parameter and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}
