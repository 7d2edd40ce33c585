//! [`Call`]: what a [`FakeCluster`](super::FakeCluster) was asked, with the
//! arguments that reached it, for tests to check.

use std::fmt;

use cid::Cid;

use crate::types::{AddParams, PinOptions, PinTypeFilter, TrackerStatusFilter};

/// An entry of an upload to `POST /add`: its path and, for a file, its
/// bytes (`None`: a directory).
pub type Uploaded = (String, Option<Vec<u8>>);

/// One call the fake received. Calls without arguments worth checking
/// (version, metric names, alerts, health graph, bandwidth) are not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `GET /id`.
    Id,
    /// `GET /peers`.
    Peers,
    /// `DELETE /peers/{peer}`.
    PeerRm(String),
    /// `GET /allocations`.
    Allocations(PinTypeFilter),
    /// `GET /allocations/{cid}`.
    Allocation(Cid),
    /// `POST /pins/{cid}` with the parsed options.
    Pin(Cid, PinOptions),
    /// `POST /pins/{path}` with the parsed options.
    PinPath(String, PinOptions),
    /// `DELETE /pins/{cid}`.
    Unpin(Cid),
    /// `DELETE /pins/{path}`.
    UnpinPath(String),
    /// `GET /pins/{cid}`.
    Status(Cid, bool),
    /// `GET /pins` with its filter, `local` and CIDs.
    StatusAll(TrackerStatusFilter, bool, Vec<Cid>),
    /// `POST /pins/{cid}/recover`.
    Recover(Cid, bool),
    /// `POST /pins/recover`.
    RecoverAll(bool),
    /// `POST /ipfs/gc`.
    RepoGc(bool),
    /// `GET /monitor/metrics/{name}`.
    Metrics(String),
    /// `POST /add`: the parsed parameters and, once it was read whole, the
    /// upload.
    Add(Box<AddParams>, Vec<Uploaded>),
}

/// One line: the method, then its arguments as text (options as JSON, an
/// upload as `query | path=content, dir/, ...`).
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = |o: &PinOptions| serde_json::to_string(o).unwrap_or_default();
        match self {
            Self::Id => write!(f, "id"),
            Self::Peers => write!(f, "peers"),
            Self::PeerRm(p) => write!(f, "peer_rm {p}"),
            Self::Allocations(filter) => write!(f, "allocations {filter}"),
            Self::Allocation(c) => write!(f, "allocation {c}"),
            Self::Pin(c, o) => write!(f, "pin {c} {}", json(o)),
            Self::PinPath(p, o) => write!(f, "pin_path {p} {}", json(o)),
            Self::Unpin(c) => write!(f, "unpin {c}"),
            Self::UnpinPath(p) => write!(f, "unpin_path {p}"),
            Self::Status(c, local) => write!(f, "status {c} {local}"),
            Self::StatusAll(filter, local, cids) => {
                let cids: Vec<String> = cids.iter().map(Cid::to_string).collect();
                write!(f, "status_all [{filter}] {local} [{}]", cids.join(","))
            }
            Self::Recover(c, local) => write!(f, "recover {c} {local}"),
            Self::RecoverAll(local) => write!(f, "recover_all {local}"),
            Self::RepoGc(local) => write!(f, "repo_gc {local}"),
            Self::Metrics(name) => write!(f, "metrics {name}"),
            Self::Add(params, entries) => {
                let query: Vec<String> = params
                    .to_query()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(path, data)| match data {
                        None => format!("{path}/"),
                        Some(d) => format!("{path}={}", String::from_utf8_lossy(d)),
                    })
                    .collect();
                write!(f, "add {} | {}", query.join("&"), entries.join(", "))
            }
        }
    }
}
