//! The JSON objects of the Pinning Service API spec v1.0.0 (`Pin`,
//! `PinStatus`, `PinResults`, `Failure`), shared by the server and tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A pin request's state at the service (the spec's `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting to be worked on.
    Queued,
    /// Being fetched.
    Pinning,
    /// Held by the service.
    Pinned,
    /// The service could not pin it.
    Failed,
}

impl Status {
    /// Every status, in the spec's order.
    pub const ALL: [Status; 4] = [
        Status::Queued,
        Status::Pinning,
        Status::Pinned,
        Status::Failed,
    ];

    /// The spec's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Pinning => "pinning",
            Status::Pinned => "pinned",
            Status::Failed => "failed",
        }
    }

    /// The status of a spec name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The spec's `Pin` object: what to pin and the user's hints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PinObject {
    /// The CID to pin recursively.
    pub cid: String,
    /// The pin's name (omitted when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Multiaddresses (with `/p2p/<id>`) known to provide the data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// The user's metadata (omitted when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// The spec's `PinStatus`: a pin request and how it is going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinStatus {
    /// The request's identifier (`<cid>-<created, ns since the epoch>`).
    pub requestid: String,
    /// Its state across the peers it is allocated to.
    pub status: Status,
    /// When the request was made: RFC 3339 with nanoseconds, unique.
    pub created: String,
    /// What was asked.
    pub pin: PinObject,
    /// IPFS multiaddresses of the peers that pin it (1 to 20).
    pub delegates: Vec<String>,
    /// Details: `status_details` always, `error` for a failed pin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub info: BTreeMap<String, String>,
}

/// The spec's `PinResults`: one page of `GET /pins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinResults {
    /// How many pins pass the filters (all pages).
    pub count: u32,
    /// This page, newest first.
    pub results: Vec<PinStatus>,
}

/// The spec's `Failure` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub error: FailureError,
}

/// The `error` of a [`Failure`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureError {
    /// A code for machines (`BAD_REQUEST`, `UNAUTHORIZED`, `NOT_FOUND`, ..).
    pub reason: String,
    /// For people: what, and which field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}
