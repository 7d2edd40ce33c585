//! The IPFS connector: what a cluster peer asks of its IPFS daemon.
//!
//! [`IpfsConnector`] is the set of operations the pin tracker, the informers
//! and the REST API need (pin, unpin, pin ls, pin update, blocks, DAG import,
//! repo stat, GC, id, swarm connect, resolve). [`KuboConnector`] implements
//! it over Kubo's HTTP RPC API (`POST /api/v0/...`), configured like Go IPFS
//! Cluster's `ipfs_connector.ipfshttp` section ([`KuboConfig`]), with Go's
//! behaviour: `pin/add?progress=true` cancelled when the pinned-node count
//! stops growing for `pin_timeout`, "not pinned" on unpin is success, and
//! after more than 10 consecutive failed requests at most one request per
//! second until one succeeds.
//!
//! With the `test-utils` feature, `testing::KuboDaemon` runs a real,
//! throwaway Kubo daemon for tests (`scripts/install-kubo` builds Kubo).
//!
//! Depends on the shared model (`cluster-types`: `PinMode`, `IpfsPinType`,
//! Go durations) and an HTTP client; never on `api` (no axum server) nor on
//! the peer.

mod config;
mod connector;
mod error;
mod kubo;
mod multipart;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use config::{
    DEFAULT_CONNECT_SWARMS_DELAY, DEFAULT_IPFS_REQUEST_TIMEOUT, DEFAULT_NODE_MULTIADDRESS,
    DEFAULT_PIN_TIMEOUT, DEFAULT_REPOGC_TIMEOUT, DEFAULT_UNPIN_TIMEOUT, KuboConfig,
};
pub use connector::{
    BlockStat, DagImport, IpfsConnector, IpfsId, IpfsPinType, PinLsFilter, PinMode, RepoStat,
};
pub use error::IpfsError;
pub use kubo::{KuboConnector, MAX_ANSWER_BYTES, MAX_LINE_BYTES, RATE_LIMIT_AFTER_FAILURES};

pub use cid::Cid;
pub use multiaddr::Multiaddr;
