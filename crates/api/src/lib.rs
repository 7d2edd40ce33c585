//! The REST API of a cluster peer, compatible with Go IPFS Cluster: the JSON
//! types ([`types`]), the trait a peer implements ([`service::ClusterApi`]),
//! the axum server over it ([`server`]) and the Rust client ([`client`]).
//!
//! Routes, parameters, JSON shapes, streaming, auth and CORS are described in
//! `spec/rest-api.md`, with every difference from Go.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod client;
mod error;
mod multipart;
pub mod server;
pub mod service;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod types;

pub use client::{Client, ClientConfig, ClientError};
pub use error::ApiError;
