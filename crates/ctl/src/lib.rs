//! `ipfs-cluster-ctl`, the command-line client of the REST API.
//!
//! Not built yet: this crate is the placeholder of the workspace layout
//! (see the open issues).
