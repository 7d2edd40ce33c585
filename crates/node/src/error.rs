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
}
