//! The crate's error types: [`Rejection`] says what is wrong with a delta,
//! [`DagError`] is everything a replica call can fail with.

use cid::Cid;

/// Why a delta block was refused (spec/crdt.md §3). Cloneable so that it can
/// be stored, reported per block and compared in tests.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The block is larger than the limit.
    #[error("block of {size} bytes exceeds the {max} byte limit")]
    BlockTooLarge {
        /// Size of the block.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The CID is not CIDv1 dag-cbor sha2-256.
    #[error("unsupported CID {0}: deltas are CIDv1, dag-cbor, sha2-256")]
    UnsupportedCid(Cid),
    /// The bytes do not hash to the CID they were served for.
    #[error("block bytes do not hash to {0}")]
    HashMismatch(Cid),
    /// The bytes are not a delta node.
    #[error("malformed delta: {0}")]
    Malformed(String),
    /// The bytes decode but are not the canonical encoding of what they hold.
    #[error("delta is not in canonical DAG-CBOR form")]
    NonCanonical,
    /// A format version this implementation does not know.
    #[error("unsupported delta format version {0}")]
    UnsupportedVersion(u64),
    /// The delta belongs to another cluster.
    #[error("delta is for cluster {got:?}, this replica is in {expected:?}")]
    WrongCluster {
        /// Our cluster name.
        expected: String,
        /// The delta's cluster name.
        got: String,
    },
    /// Too many of something.
    #[error("too many {what}: {count} > {max}")]
    TooMany {
        /// What was counted (ops, parents, tombs).
        what: &'static str,
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The writer field is not an ed25519 peer ID.
    #[error("writer is not an ed25519 peer ID: {0}")]
    InvalidWriter(String),
    /// The writer is not allowed by the trust policy.
    #[error("writer {0} is not a trusted peer")]
    UntrustedWriter(String),
    /// The signature does not verify (strictly) against the writer's key.
    #[error("signature does not verify for writer {0}")]
    BadSignature(String),
    /// The priority is not 1 + max(parents' priority).
    #[error("priority {claimed} is wrong: parents give {expected}")]
    PriorityMismatch {
        /// What the delta says.
        claimed: u64,
        /// What its parents imply.
        expected: u64,
    },
    /// `prev` does not name this writer's delta with `seq - 1`.
    #[error("prev link does not name this writer's delta {expected_seq}")]
    PrevMismatch {
        /// The seq `prev` must have.
        expected_seq: u64,
    },
    /// An ancestor of this delta was rejected.
    #[error("ancestor {0} was rejected")]
    RejectedAncestor(Cid),
}

impl Rejection {
    /// The reason's name as spec/crdt.md §3 and spec/vectors/ spell it
    /// (the variant's name), stable across versions for tools to match on.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BlockTooLarge { .. } => "BlockTooLarge",
            Self::UnsupportedCid(_) => "UnsupportedCid",
            Self::HashMismatch(_) => "HashMismatch",
            Self::Malformed(_) => "Malformed",
            Self::NonCanonical => "NonCanonical",
            Self::UnsupportedVersion(_) => "UnsupportedVersion",
            Self::WrongCluster { .. } => "WrongCluster",
            Self::TooMany { .. } => "TooMany",
            Self::InvalidWriter(_) => "InvalidWriter",
            Self::UntrustedWriter(_) => "UntrustedWriter",
            Self::BadSignature(_) => "BadSignature",
            Self::PriorityMismatch { .. } => "PriorityMismatch",
            Self::PrevMismatch { .. } => "PrevMismatch",
            Self::RejectedAncestor(_) => "RejectedAncestor",
        }
    }
}

/// Everything a replica operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DagError {
    /// A delta was refused.
    #[error("delta {cid}: {reason}")]
    Rejected {
        /// The delta (its CID, or the CID it would have had).
        cid: Cid,
        /// What was wrong (boxed: it is the rare, large case).
        reason: Box<Rejection>,
    },
    /// A local write was refused before signing.
    #[error("invalid write: {0}")]
    InvalidWrite(String),
    /// Unpin of a CID that is not in the pinset.
    #[error("{0} is not pinned")]
    NotPinned(Cid),
    /// This replica's identity may not write (follower, or not in trusted_peers).
    #[error("this peer ({0}) is not trusted to write to the pinset")]
    NotTrusted(String),
    /// The pending set is full; the walk must wait for ancestors to apply.
    #[error("pending limit reached: {blocks} blocks, {bytes} bytes")]
    PendingFull {
        /// Pending blocks.
        blocks: usize,
        /// Pending bytes.
        bytes: u64,
    },
    /// A stored record could not be decoded (corrupt or foreign store).
    #[error("corrupt store record: {0}")]
    Corrupt(String),
    /// The store was written by an unknown format version.
    #[error("store format {found} is not supported (expected {expected})")]
    StoreVersion {
        /// Version found on disk.
        found: u64,
        /// Version this build writes.
        expected: u64,
    },
    /// A checkpoint was refused, or can't be made or loaded now.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A CAR file is malformed.
    #[error("CAR: {0}")]
    Car(String),
    /// The embedded database failed.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// Reading or writing a file or stream failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl DagError {
    /// Whether the store failed because its disk is full or over quota
    /// (`ENOSPC`, `EDQUOT`): writes can't succeed until space is freed.
    /// After such an error sled 0.34 refuses every later write of the same
    /// open database with it (its error is sticky until the database is
    /// opened again).
    pub fn is_disk_full(&self) -> bool {
        let (Self::Store(sled::Error::Io(io)) | Self::Io(io)) = self else {
            return false;
        };
        matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
    }

    pub(crate) fn rejected(cid: Cid, reason: Rejection) -> Self {
        Self::Rejected {
            cid,
            reason: Box::new(reason),
        }
    }
}

/// Result with [`DagError`].
pub type Result<T, E = DagError> = std::result::Result<T, E>;
