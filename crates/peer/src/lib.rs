//! The cluster peer daemon: config and identity, the libp2p swarm, consensus
//! glue over `crdt-dag` (batching, announcements, sync), placement
//! (liveness, metrics, allocation), the link to IPFS (tracker, status),
//! adding content, and the REST adapter. Peers start from code with
//! [`PeerBuilder`]; the `ipfs-cluster-service` binary is a thin shell over it.
//!
//! Folders follow the architecture: `peer/` (the running peer: builder,
//! handle, settings, what it tells others about itself), `sync/` (writes,
//! announcements, history from peers and IPFS), `placement/` (who is alive,
//! their metrics, where pins go), `pinning/` (the tracker fed from the
//! pinset, repinning, expiry, status), `add/` (content in), `network/`
//! (the swarm task and the protocols on its streams), `config/`.
//! It depends on the other crates of the workspace; none depends on it.

mod add;
pub mod audit;
mod backend;
pub mod config;
mod error;
pub mod follow;
pub mod history;
pub mod identity;
mod ipfs_proxy;
pub mod lock;
mod metrics;
pub mod network;
mod peer;
mod pinning;
mod placement;
pub mod rest;
pub mod state;
mod store;
mod sync;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use backend::IpfsBackend;
pub use error::PeerError;
pub use network::{bandwidth, messages, rpc};
pub use peer::{
    FORK_ALERT, IdInfo, IpfsInfo, Peer, PeerBuilder, PeerHandle, PeerSettings,
    RPC_PROTOCOL_VERSION, TrackerStats, VERSION, peer_of,
};
pub use placement::allocator::AllocError;
pub use sync::consensus::{ANNOUNCE_BLOCKS_BYTES, ANNOUNCE_PACE, ConsensusSettings, SyncStats};
pub use sync::dagsync;
pub use sync::ipfs_glue::{IpfsSource, ipfs_source, ipfs_source_of};
pub use sync::lag::SyncLag;
