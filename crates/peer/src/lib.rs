//! The cluster peer daemon: config and identity, the libp2p swarm, consensus
//! glue over `crdt-dag` (batching, announcements, sync), liveness metrics and
//! inter-peer RPC. Peers start from code with [`PeerBuilder`]; the
//! `ipfs-cluster-service` binary is a thin shell over it.

mod add;
mod add_car;
mod allocator;
mod backend;
pub mod bandwidth;
mod batch_log;
pub mod config;
mod consensus;
pub mod dagsync;
mod error;
mod frame;
pub mod identity;
mod informer;
mod ipfs_glue;
pub mod lock;
pub mod messages;
mod monitor;
pub mod network;
mod peer;
mod pinning;
mod placement;
pub mod rest;
pub mod rpc;
mod slots;
pub mod state;
mod status;

pub use backend::IpfsBackend;
pub use consensus::{ConsensusSettings, SyncStats};
pub use error::PeerError;
pub use ipfs_glue::{IpfsSource, ipfs_source, ipfs_source_of};
pub use peer::{
    FORK_ALERT, IdInfo, IpfsInfo, Peer, PeerBuilder, PeerHandle, PeerSettings,
    RPC_PROTOCOL_VERSION, TrackerStats, VERSION, peer_of,
};
