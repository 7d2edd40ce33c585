//! The REST API of a cluster peer: Go-compatible JSON types, the HTTP routers
//! and the Rust client.
//!
//! Not built yet: this crate is the placeholder of the workspace layout
//! (see the open issues).
