//! The JSON shapes of Go IPFS Cluster's REST API, byte for byte where Go is
//! consistent: field names and order, `null` versus `[]`, `omitempty`, CIDs
//! and peer IDs as strings, RFC 3339 times with Go's zero time for "unset".
//! Also the pin query parameters ([`PinQuery`]) and the status
//! and type filters, and the parameters of `POST /add` ([`AddParams`]).

mod add;
mod history;
mod info;
mod page;
mod peer_id;
mod query;
mod status;

pub(crate) use cluster_types::wire;

pub use add::{
    AddFormat, AddLayout, AddParams, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKER, DEFAULT_HASH,
    MAX_CHUNK_SIZE, parse_chunker,
};
pub use history::{
    HistoryCheckpoint, HistoryDelta, HistoryFork, HistoryHead, HistoryHeads, HistoryLogQuery,
    HistoryOp, HistorySync, HistoryWriter, HistoryWriterSeq,
};
pub use info::{
    AddedOutput, Alert, ApiErrorBody, Bandwidth, BandwidthStats, ConnectGraph, GlobalRepoGc, Id,
    IpfsId, IpfsRepoGc, RepoGc, TokenBody, Version,
};
pub use page::AllocationsPage;
pub use peer_id::parse_peer_id;
// The pin model is the shared crate's; the API speaks it as is.
pub use cluster_types::{
    Metric, Pin, PinMode, PinOptions, PinType, PinTypeFilter, TrackerStatus, TrackerStatusFilter,
};
pub use query::PinQuery;
pub use status::{GlobalPinInfo, PinInfoShort};
