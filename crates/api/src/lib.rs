//! The REST API of a cluster peer, compatible with Go IPFS Cluster: the JSON
//! types ([`types`]), the trait a peer implements ([`service::ClusterApi`]),
//! the axum server over it ([`server`]), the Pinning Service API over the
//! same trait ([`pinsvc`]) and the Rust client ([`client`]).
//!
//! Routes, parameters, JSON shapes, streaming, auth and CORS are described in
//! `spec/rest-api.md`, with every difference from Go.
//!
//! It owns the HTTP side of the API (Go's JSON, auth, streaming) and a test
//! fake of a cluster behind the `test-utils` feature; the pin model is
//! `cluster-types`'s, re-exported. It must not depend on the peer, the
//! pinset (`crdt-dag`), IPFS or the tracker: a peer plugs in by implementing
//! [`service::ClusterApi`].
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod client;
mod error;
mod multipart;
pub mod pinsvc;
pub mod server;
pub mod service;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod types;

pub use client::{Client, ClientConfig, ClientError};
pub use error::ApiError;
/// `POST /add`'s multipart reader, for other servers taking uploads (the
/// IPFS proxy's `/api/v0/add`).
pub use multipart::{boundary as multipart_boundary, read_upload};
