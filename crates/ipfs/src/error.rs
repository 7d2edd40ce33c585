//! [`IpfsError`]: everything a connector call can fail with.

use std::time::Duration;

use cid::Cid;

/// Why an IPFS call failed.
#[derive(Debug, thiserror::Error)]
pub enum IpfsError {
    /// The configuration is unusable (a bad key, an address that is not
    /// `/ip4|ip6|dns*/.../tcp/<port>`).
    #[error("invalid ipfs_connector.ipfshttp configuration: {0}")]
    Config(String),
    /// The daemon could not be reached (connection refused, reset, ...).
    #[error("IPFS daemon at {addr} unreachable ({endpoint}): {reason}")]
    Unreachable {
        /// The RPC address.
        addr: String,
        /// The RPC endpoint (`pin/add`, ...).
        endpoint: &'static str,
        /// What the HTTP client said.
        reason: String,
    },
    /// The daemon answered with an error (Kubo's `Message`).
    #[error("IPFS error ({endpoint}): {message}")]
    Ipfs {
        /// The RPC endpoint.
        endpoint: &'static str,
        /// The HTTP status (200 for an error at the end of a stream).
        status: u16,
        /// Kubo's message.
        message: String,
    },
    /// The call did not finish within its configured timeout.
    #[error("IPFS request timed out after {timeout:?} ({endpoint})")]
    Timeout {
        /// The RPC endpoint.
        endpoint: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// `pin/add` made no progress (no new node pinned) for `pin_timeout`;
    /// the pin was cancelled.
    #[error(
        "pinning {cid} made no progress for {timeout:?} ({progress} nodes fetched): cancelled (pin_timeout)"
    )]
    PinTimeout {
        /// The content being pinned.
        cid: Cid,
        /// The configured `pin_timeout`.
        timeout: Duration,
        /// Nodes pinned when it was cancelled.
        progress: u64,
    },
    /// The daemon answered something that is not what its API promises.
    #[error("unexpected answer from IPFS ({endpoint}): {reason}")]
    Protocol {
        /// The RPC endpoint.
        endpoint: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An argument the call can't send (e.g. a codec Kubo can't name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
