//! The node's error type.

/// Everything a node operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A block's bytes don't hash to its CID.
    #[error("block {cid} does not match its bytes")]
    BadBlock {
        /// The CID the block was given or asked for as.
        cid: String,
    },
    /// A hash function or codec this node doesn't handle.
    #[error("unsupported {what}: {code:#x}")]
    Unsupported {
        /// `codec` or `hash`.
        what: &'static str,
        /// The multicodec code.
        code: u64,
    },
    /// Malformed input (a block, a CAR file, a protobuf message).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Why it can't be read.
        reason: String,
    },
    /// A libp2p failure of the node's host (listen, dial, streams).
    #[error("network: {0}")]
    Network(String),
    /// The host or Bitswap task has stopped (node shutting down).
    #[error("the IPFS node's network has stopped")]
    Stopped,
    /// No connected peer delivered a block in time.
    #[error(
        "block {cid} not found within {after:?} (asked {asked} peers, {dont_have} answered DONT_HAVE)"
    )]
    BlockTimeout {
        /// The block's CID.
        cid: String,
        /// How long we waited.
        after: std::time::Duration,
        /// Peers the want was sent to.
        asked: usize,
        /// Of those, peers that said they don't have it.
        dont_have: usize,
    },
    /// Something exceeds a size bound (a Bitswap message, a block).
    #[error("{what} of {size} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A block a pin or an export needs is not in the blockstore (fetch the
    /// DAG first: fetching belongs to Bitswap).
    #[error("missing block {cid} (in the DAG of {root}): not in the blockstore")]
    MissingBlock {
        /// The missing block.
        cid: String,
        /// The root whose DAG was being walked.
        root: String,
    },
    /// The blockstore's database failed.
    #[error("blockstore: {0}")]
    Db(#[from] sled::Error),
    /// Reading or writing a stream (a CAR file) failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A parameter or input that can't be used (a chunker string, a CID
    /// version, a path, a node of the wrong UnixFS type).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// What was given.
        what: &'static str,
        /// Why it can't be used.
        reason: String,
    },
    /// Something this node doesn't do (yet), where Kubo would.
    #[error("not implemented: {what}")]
    NotImplemented {
        /// What is missing.
        what: &'static str,
    },
}
