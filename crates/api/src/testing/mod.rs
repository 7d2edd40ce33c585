//! Test helpers (feature `test-utils`): [`FakeCluster`], an in-memory
//! [`ClusterApi`](crate::service::ClusterApi) for serving the REST API in
//! tests (this crate's and ctl's), and its [`fixtures`].

mod add;
mod calls;
mod fake;
pub mod fixtures;
mod memory;
mod pinsvc_schema;
mod service;
mod streams;

pub use calls::{Call, Uploaded};
pub use fake::FakeCluster;
pub use fixtures::*;
pub use memory::{MemoryProbe, rss_kib};
pub use pinsvc_schema::{assert_schema, check_schema};
pub use streams::Plan;
