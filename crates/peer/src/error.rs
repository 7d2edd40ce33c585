//! The peer's error type: one variant per way an operation fails, with
//! the component's own error as its source where there is one.

use std::sync::Arc;

use crdt_dag::DagError;

use crate::config::ConfigError;

/// Everything a peer operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The pinset refused or failed.
    #[error(transparent)]
    Dag(DagError),
    /// The store can't write: the disk of the data folder is full (or over
    /// quota). Writes are refused until space is freed; what was
    /// acknowledged before is on disk. The REST API answers 507.
    #[error("the data folder's disk is full: the store can't write until space is freed ({0})")]
    DiskFull(String),
    /// This peer is a follower: it never changes the pinset.
    #[error("this peer is configured to be in follower mode. Write operations are disabled")]
    FollowerMode,
    /// The write queue is full (`consensus.crdt.batching.max_queue_size`).
    #[error("the write queue is full ({0} items): try again later")]
    QueueFull(usize),
    /// libp2p setup or operation failed.
    #[error("network: {0}")]
    Network(String),
    /// The network task has stopped.
    #[error("the network task has stopped")]
    NetworkStopped,
    /// The peer is shutting down.
    #[error("the peer is shutting down")]
    ShuttingDown,
    /// A protocol exchange with another peer failed.
    #[error("{peer}: {message}")]
    Remote {
        /// The other peer.
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// This peer may not sign (a checkpoint): it is not a trusted writer
    /// of the cluster. The REST API answers 403.
    #[error("this peer ({0}) is not a trusted writer of the cluster: it can't sign a checkpoint")]
    NotTrusted(String),
    /// The history can't be checkpointed now (the reason is given: empty,
    /// a forked writer, tombs waiting). The REST API answers 409.
    #[error("no checkpoint made: {0}")]
    CheckpointRefused(String),
    /// An RPC was refused by the method's policy.
    #[error("permission denied for {0}")]
    PermissionDenied(String),
    /// A pin's replication factors can't be met together.
    #[error(transparent)]
    Replication(#[from] cluster_types::ReplicationError),
    /// A pin that can't be written as given (a bad import line, a pin that
    /// would be pinned nowhere).
    #[error("{0}")]
    InvalidPin(String),
    /// An audit could not start: the history to check could not be read.
    #[error("audit: {0}")]
    Audit(String),
    /// No allocation could be made for a pin.
    #[error(transparent)]
    Allocation(#[from] crate::placement::allocator::AllocError),
    /// The configuration can't be used (the key is named).
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The peer's identity is not an ed25519 key (deltas are signed with it).
    #[error("the peer identity must be an ed25519 key")]
    NotEd25519,
    /// The Kubo connector could not be set up.
    #[error("ipfs connector: {0}")]
    Ipfs(#[from] ipfs::IpfsError),
    /// The embedded IPFS node could not start.
    #[error("embedded IPFS node: {0}")]
    Node(#[from] ipfs_node::NodeError),
    /// A write could not be put in the durable batch queue (every waiter of
    /// that batch gets the same cause).
    #[error("queueing the write: {0}")]
    Queue(Arc<PeerError>),
    /// Data this peer stored is unreadable.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it can't be.
        reason: String,
    },
    /// Local I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A store error is [`PeerError::DiskFull`] when the disk is full
/// ([`DagError::is_disk_full`]), [`PeerError::Dag`] otherwise.
impl From<DagError> for PeerError {
    fn from(e: DagError) -> Self {
        if e.is_disk_full() {
            Self::DiskFull(e.to_string())
        } else {
            Self::Dag(e)
        }
    }
}

impl PeerError {
    /// Whether this is [`PeerError::DiskFull`], also as the cause of a
    /// refused queue write.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::DiskFull(_) => true,
            Self::Queue(cause) => cause.is_disk_full(),
            _ => false,
        }
    }
}
