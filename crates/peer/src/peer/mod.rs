//! A running cluster peer ([`Peer`], which owns its tasks) and the
//! [`PeerHandle`] the API and other components hold. The binary and the
//! tests both start peers through [`PeerBuilder`].

mod builder;
mod info;
mod settings;

pub use builder::{PeerBuilder, peer_of};
pub use info::{IdInfo, IpfsInfo, TrackerStats};
use info::{Info, registry};
pub use settings::PeerSettings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use cluster_types::Pin;
use crdt_dag::{PinEvent, Replica, ReplicaConfig, TrustPolicy, Write, WriterId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::IpfsBackend;
use crate::config::ServiceConfig;
use crate::error::PeerError;
use crate::network::rpc;
use crate::network::{self, NetEvent, Network, NetworkConfig};
use crate::pinning::{self, status};
use crate::placement::monitor::{self, Monitor};
use crate::sync::consensus::{self, Consensus, ConsensusSettings};
use crate::sync::dagsync;
use crate::sync::ipfs_glue::{self, BlockPutter, IpfsSource};
use crate::sync::queued;

/// Longest [`Peer::stop`] waits for the tasks to finish their shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Version reported to other peers and users (Go IPFS Cluster's, whose API we speak).
pub const VERSION: &str = "1.1.6";
/// The RPC protocol version reported by `id`.
pub const RPC_PROTOCOL_VERSION: &str = "/ipfs-cluster-rs/rpc/1.0.0";

/// A running cluster peer.
#[derive(Debug)]
pub struct Peer {
    handle: PeerHandle,
    cancel: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    /// Puts the deltas the last commits wrote once every task stopped.
    putter: Option<BlockPutter>,
}

/// What the API and other components hold of a running peer: cheap to
/// clone, usable from any task. [`Peer`] dereferences to it.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    info: Arc<Info>,
    consensus: Consensus,
    pub(crate) monitor: Monitor,
    events: broadcast::Sender<PinEvent>,
    settings: Arc<PeerSettings>,
    sync_counters: Arc<consensus::SyncCounters>,
    pub(crate) ipfs: Option<Arc<IpfsBackend>>,
}

impl std::ops::Deref for Peer {
    type Target = PeerHandle;
    fn deref(&self) -> &PeerHandle {
        &self.handle
    }
}

impl std::fmt::Debug for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Info")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A handle to share with the API and other tasks.
    pub fn handle(&self) -> PeerHandle {
        self.handle.clone()
    }

    /// Stops every task (each finishes its shutdown work, the writer its
    /// last commit; what is still running after [`SHUTDOWN_WAIT`] is
    /// aborted) and flushes the store.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let tasks = &mut self.tasks;
        let drained = tokio::time::timeout(SHUTDOWN_WAIT, async {
            while let Some(done) = tasks.join_next().await {
                if let Err(e) = done
                    && e.is_panic()
                {
                    warn!(error = %e, "a peer task panicked");
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                left = self.tasks.len(),
                "peer tasks still running after {SHUTDOWN_WAIT:?}: aborted"
            );
            self.tasks.shutdown().await;
        }
        // The writer's last commit (batching on) came after the put task
        // stopped: put it now while IPFS may still answer; else at the
        // next start.
        if let Some(p) = &self.putter {
            p.drain(ipfs_glue::DRAIN_WAIT).await;
        }
        if let Err(e) = self.handle.info.replica.flush() {
            warn!(error = %e, "flushing the pinset at shutdown");
        }
    }
}

impl Peer {
    /// Ends every task at once, with no shutdown work (no final batch
    /// commit, no flush): what a crash leaves, for tests of recovery.
    #[doc(hidden)]
    pub async fn crash_for_tests(mut self) {
        self.tasks.shutdown().await;
    }
}

impl PeerHandle {
    /// Serves the REST API of this peer (`api.restapi`) until `shutdown`
    /// completes; returns where it listens (the bound TCP address, port 0
    /// picking one, or the unix socket) and the task.
    pub async fn serve_api(
        &self,
        cfg: api::server::RestConfig,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(api::server::Listening, JoinHandle<()>)> {
        api::server::serve(Arc::new(self.clone()), cfg, shutdown).await
    }

    /// Serves the IPFS Pinning Service API of this peer (`api.pinsvcapi`)
    /// until `shutdown` completes; returns where it listens and the task.
    pub async fn serve_pinsvc(
        &self,
        cfg: api::server::RestConfig,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(api::server::Listening, JoinHandle<()>)> {
        api::pinsvc::serve(Arc::new(self.clone()), cfg, shutdown).await
    }

    /// [`PeerHandle::serve_api`] on 127.0.0.1 with a random port and Go's
    /// other defaults, until the process ends (tests, examples).
    pub async fn serve_api_on_loopback(&self) -> std::io::Result<std::net::SocketAddr> {
        let cfg = api::server::RestConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..api::server::RestConfig::default()
        };
        let (listening, _task) = self.serve_api(cfg, std::future::pending()).await?;
        listening
            .tcp()
            .ok_or_else(|| std::io::Error::other(format!("listening on {listening}, not TCP")))
    }

    /// What this peer answers status requests with.
    pub(crate) fn status_local(&self) -> &status::Local {
        &self.info.status
    }

    /// The network task's handle.
    pub(crate) fn network(&self) -> &Network {
        &self.info.network
    }

    /// This peer's ID.
    pub fn id(&self) -> PeerId {
        self.info.peer_id
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &PeerSettings {
        &self.settings
    }

    /// Addresses others can dial, with `/p2p/<id>`.
    pub async fn addresses(&self) -> Result<Vec<Multiaddr>, PeerError> {
        let id = self.id();
        Ok(self
            .info
            .network
            .listen_addrs()
            .await?
            .into_iter()
            .map(|a| a.with_p2p(id).unwrap_or_else(|a| a))
            .collect())
    }

    /// What `Cluster.ID` says about this peer.
    pub async fn id_info(&self) -> IdInfo {
        self.info.id().await
    }

    /// Connects to another peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), PeerError> {
        self.info.network.dial(addr).await
    }

    /// Writes `cid`'s record as is, allocations included (placement is
    /// [`PeerHandle::pin`]'s); returns once the change is durable here.
    pub(crate) async fn write_pin(&self, pin: Pin) -> Result<(), PeerError> {
        self.consensus.submit(Write::Pin(pin)).await
    }

    /// Unpins `cid`; returns once the change is durable here.
    pub async fn unpin(&self, cid: Cid) -> Result<(), PeerError> {
        self.consensus.submit(Write::Unpin(cid)).await
    }

    /// The pin for `cid`, if pinned; acknowledged writes still in the batch
    /// queue count.
    pub fn get(&self, cid: &Cid) -> Result<Option<Pin>, PeerError> {
        match self.consensus.queued().get(cid) {
            Some(queued) => Ok(queued),
            None => Ok(self.info.replica.get(cid)?),
        }
    }

    /// Every pin, acknowledged writes still in the batch queue included.
    pub fn pins(&self) -> impl Iterator<Item = Result<Pin, PeerError>> + Send + 'static {
        let pins = self.info.replica.pins().map(|p| p.map_err(PeerError::from));
        queued::overlaid(pins, self.consensus.queued().snapshot())
    }

    /// The pins after `after` in CID byte order (a page's cursor), read
    /// lazily from disk; acknowledged writes still in the batch queue
    /// count (a queued new pin past the cursor comes last, out of order,
    /// until its batch is committed).
    pub fn pins_after(
        &self,
        after: Option<Cid>,
    ) -> impl Iterator<Item = Result<Pin, PeerError>> + Send + 'static {
        let pins = self
            .info
            .replica
            .pins_after(after.as_ref())
            .map(|p| p.map_err(PeerError::from));
        let mut overlay = self.consensus.queued().snapshot();
        if let Some(after) = after {
            let after = after.to_bytes();
            overlay.retain(|cid, _| cid.to_bytes() > after);
        }
        queued::overlaid(pins, overlay)
    }

    /// The replicated pinset.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.info.replica
    }

    /// Pinset changes, local and remote, once durable.
    pub fn subscribe(&self) -> broadcast::Receiver<PinEvent> {
        self.events.subscribe()
    }

    /// Cluster peers alive according to their `ping` metrics, self included.
    pub fn peers(&self) -> Vec<PeerId> {
        alive(&self.monitor, self.id())
    }

    /// Asks another peer for its ID over RPC.
    pub async fn remote_id(&self, peer: PeerId) -> Result<IdInfo, PeerError> {
        let mut control = self.info.network.streams();
        let answers = rpc::call(&mut control, peer, "Cluster.ID", vec![]).await?;
        let first = answers.first().ok_or_else(|| PeerError::Remote {
            peer: peer.to_string(),
            message: "empty answer".into(),
        })?;
        serde_ipld_dagcbor::from_slice(first).map_err(|e| PeerError::Remote {
            peer: peer.to_string(),
            message: e.to_string(),
        })
    }

    /// Peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, PeerError> {
        self.info.network.connected_peers().await
    }

    /// Connected peers of this cluster: those subscribed to its heads
    /// topic (not relays, DHT neighbours or other clusters' peers).
    pub async fn heads_subscribers(&self) -> Result<Vec<PeerId>, PeerError> {
        self.info.network.heads_subscribers().await
    }

    /// What the sync loop has done since start.
    pub fn sync_stats(&self) -> consensus::SyncStats {
        self.sync_counters.snapshot()
    }

    /// How far this peer, at `height`, is behind the heights others
    /// announced.
    pub fn sync_lag(&self, height: u64) -> crate::SyncLag {
        self.sync_counters.lag.at(height)
    }

    /// This peer's IPFS (Kubo or the embedded node); `None` without one.
    pub fn ipfs(&self) -> Option<&Arc<IpfsBackend>> {
        self.ipfs.as_ref()
    }

    /// The pin tracker's counters; `None` for a peer without IPFS.
    pub fn tracker_stats(&self) -> Option<TrackerStats> {
        self.info.status.tracker.as_ref().map(|t| TrackerStats {
            queued: t.queued(),
            max_pins_in_flight: t.max_pins_in_flight(),
        })
    }

    /// Gossip counters of this peer's network.
    pub async fn gossip_stats(&self) -> Result<network::GossipStats, PeerError> {
        self.info.network.stats().await
    }

    /// Publishes `data` as it is on the heads topic, as a hostile peer
    /// would: for tests of what honest peers do with junk.
    #[cfg(feature = "test-utils")]
    pub async fn publish_raw_heads(&self, data: Vec<u8>) -> Result<(), PeerError> {
        self.info.network.publish(network::Topic::Heads, data).await
    }

    /// Gossipsub's score of a connected peer (`None`: not connected).
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>, PeerError> {
        self.info.network.score(peer).await
    }

    /// Bytes in and out of this peer's libp2p host and their rates, per
    /// protocol ID, plus the all-substreams total under
    /// [`crate::network::bandwidth::TRANSPORT_KEY`] (`GET /health/bandwidth`).
    pub fn bandwidth(&self) -> api::types::BandwidthStats {
        self.info.network.bandwidth()
    }

    /// Calls any RPC method on another peer (CBOR args, CBOR answers).
    pub async fn call(
        &self,
        peer: PeerId,
        method: &str,
        args: Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, PeerError> {
        let mut control = self.info.network.streams();
        rpc::call(&mut control, peer, method, args).await
    }

    /// Syncs now from `peer` (what a late joiner does on its own after the
    /// next announcement); returns what was applied.
    pub async fn sync_from(&self, peer: PeerId) -> Result<dagsync::FetchReport, PeerError> {
        let mut control = self.info.network.streams();
        dagsync::fetch_all(&self.info.replica, &mut control, peer).await
    }

    /// A block source that asks `peer` for one block per request (what a
    /// walk falls back to when the bulk answer missed something).
    pub fn block_source(&self, peer: PeerId) -> impl crdt_dag::BlockSource + Send + Sync + 'static {
        dagsync::PeerSource {
            control: self.info.network.streams(),
            peer,
        }
    }
}

/// The `health alerts` name of a writer caught forking its chain.
pub const FORK_ALERT: &str = "fork";

/// A writer signed two deltas with one sequence number: both apply (the
/// CRDT converges either way), but auditors and operators must hear of it.
pub(super) fn surface_fork(monitor: &Monitor, fork: &crdt_dag::Fork) {
    let deltas: Vec<String> = fork.deltas.iter().map(ToString::to_string).collect();
    warn!(
        writer = %fork.writer,
        seq = fork.seq,
        deltas = ?deltas,
        "a writer signed two deltas with one sequence number"
    );
    monitor.raise(
        FORK_ALERT,
        &fork.writer.to_string(),
        format!("seq {}: {}", fork.seq, deltas.join(" ")),
    );
}

impl Drop for Peer {
    /// A peer dropped without [`Peer::stop`] still shuts down: its tasks see
    /// the cancellation and finish on their own.
    fn drop(&mut self) {
        self.cancel.cancel();
        self.tasks.detach_all();
    }
}

/// Peers with a live ping, and `me`, sorted.
fn alive(monitor: &Monitor, me: PeerId) -> Vec<PeerId> {
    let mut out = monitor.alive();
    if !out.contains(&me) {
        out.push(me);
    }
    out.sort();
    out
}
