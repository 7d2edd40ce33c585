//! [`TrackerError`]: what the tracker's fallible calls fail with.

/// Why a tracker call failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The IPFS daemon could not answer (e.g. `pin ls` during a reconcile).
    #[error("ipfs: {0}")]
    Ipfs(#[from] ipfs::IpfsError),
    /// The tracker's sled tree failed.
    #[error("tracker store: {0}")]
    Store(#[from] sled::Error),
    /// A stored record could not be read back.
    #[error("corrupt tracker record for {key}: {reason}")]
    Corrupt {
        /// The key, printed.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The pinset (implemented by the peer) failed.
    #[error("pinset: {0}")]
    Pinset(String),
    /// The tracker was shut down.
    #[error("the pin tracker is shut down")]
    Shutdown,
}
