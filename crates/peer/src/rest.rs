//! The peer behind the REST API: `api::service::ClusterApi` over a
//! [`PeerHandle`], converting between the pinset's options and Go's JSON
//! types. Status, recover and GC are merged from every peer's answer
//! (`status.rs`). What is not built (`shard=true` adds) answers 501 with a message
//! saying so, never an invented result.

use std::time::{Duration, UNIX_EPOCH};

use api::ApiError;
use api::service::AddFile;
use api::service::ClusterApi;
use api::types::{
    AddParams, AddedOutput, Alert, BandwidthStats, ConnectGraph, GlobalPinInfo, GlobalRepoGc,
    HistoryCheckpoint, HistoryDelta, HistoryHeads, HistoryLogQuery, HistorySync, Id, IpfsId,
    Metric, Pin, PinOptions, PinTypeFilter, TrackerStatusFilter, Version,
};
use cid::Cid;
use cluster_types::Replication;
use futures::StreamExt;
use futures::stream::BoxStream;
use libp2p::PeerId;

use crate::add::fanout::{Batch, Fanout, PutBatch};
use crate::error::PeerError;
use crate::peer::{IdInfo, PeerHandle, RPC_PROTOCOL_VERSION, VERSION};

/// Outputs of an add buffered ahead of the HTTP writer.
const ADD_OUTPUT_BUFFER: usize = 64;
/// Peers asked at once when listing `GET /peers`.
const PEERS_CONCURRENCY: usize = 16;

const NEEDS_IPFS: &str = "this peer has no IPFS connector yet";
/// Go's `state.ErrNotFound`.
const PIN_NOT_FOUND: &str = "pin is not part of the pinset";

impl From<PeerError> for ApiError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::QueueFull(_) => ApiError::too_many_requests(e.to_string()),
            // 507 Insufficient Storage: the store can't write until space
            // is freed in the data folder.
            e if e.is_disk_full() => ApiError::new(507, e.to_string()),
            PeerError::ShuttingDown | PeerError::NetworkStopped => {
                ApiError::unavailable(e.to_string())
            }
            PeerError::Dag(crdt_dag::DagError::NotPinned(_)) => ApiError::not_found(e.to_string()),
            PeerError::NotTrusted(_) => ApiError::forbidden(e.to_string()),
            PeerError::CheckpointRefused(_) => ApiError::conflict(e.to_string()),
            PeerError::Dag(crdt_dag::DagError::InvalidWrite(_))
            | PeerError::InvalidPin(_)
            | PeerError::Replication(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl PeerHandle {
    fn id_to_api(&self, info: IdInfo) -> Id {
        Id {
            id: info.id,
            addresses: info.addresses,
            cluster_peers: info.cluster_peers,
            cluster_peers_addresses: vec![],
            version: info.version,
            commit: String::new(),
            rpc_protocol_version: info.rpc_protocol_version,
            error: String::new(),
            ipfs: match info.ipfs {
                Some(i) => IpfsId {
                    id: i.id,
                    addresses: i.addresses,
                    error: i.error,
                },
                None => IpfsId {
                    id: String::new(),
                    addresses: vec![],
                    error: NEEDS_IPFS.into(),
                },
            },
            peername: info.peername,
        }
    }

    /// Go's `BlockAllocate` for an add, then `local`: the peers the added
    /// DAG goes to, decided before any block, carried by every output line,
    /// and the root pin's allocations. Replication -1: the live peers (Go's
    /// peers with a valid ping). `local=true` puts this peer in place of
    /// the last one unless it is there or user allocations are given.
    fn add_destinations(&self, params: &AddParams) -> Result<(bool, Vec<String>), ApiError> {
        // No pin has this CID (identity hash of nothing), as Go allocates
        // for `cid.Undef`: no current allocations to keep.
        let none = Cid::new_v1(
            ipfs_node::RAW,
            cid::multihash::Multihash::wrap(0, &[]).expect("an empty identity digest"),
        );
        let mut pin = Pin::new(none, params.pin_options.clone());
        let everywhere = self.place(&mut pin, None)? == Replication::Everywhere;
        let mut dests = if everywhere {
            self.peers().iter().map(ToString::to_string).collect()
        } else {
            pin.allocations
        };
        let me = self.id().to_string();
        if params.local && !dests.contains(&me) && params.pin_options.user_allocations.is_empty() {
            match dests.last_mut() {
                Some(last) => *last = me,
                None => dests.push(me),
            }
        }
        Ok((everywhere, dests))
    }

    /// Where the blocks of an add go (Go's single DAG service): every
    /// destination's IPFS, or only this peer's with `local=true`. This
    /// peer's directly, the others' over the `IPFSConnector.BlockPut` RPC.
    /// A pin everywhere (`everywhere`) goes on without destinations that
    /// fail, and without this peer when it has no IPFS.
    fn add_fanout(
        &self,
        params: &AddParams,
        dests: &[String],
        everywhere: bool,
    ) -> Result<Fanout, ApiError> {
        let me = self.id();
        let targets: Vec<PeerId> = if params.local {
            vec![me]
        } else {
            dests
                .iter()
                .map(|d| {
                    d.parse::<PeerId>().map_err(|e| {
                        ApiError::internal(format!("add: destination {d} is not a peer ID: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut puts = Vec::with_capacity(targets.len());
        for peer in targets {
            if peer != me {
                puts.push((format!("peer {peer}"), self.remote_put(peer)));
                continue;
            }
            match self.ipfs.clone() {
                Some(ipfs) => puts.push((
                    format!("this peer ({peer})"),
                    crate::add::fanout::local_put(ipfs),
                )),
                None if everywhere && !params.local => {}
                None => {
                    return Err(ApiError::not_implemented(format!(
                        "add needs IPFS to import into: {NEEDS_IPFS}"
                    )));
                }
            }
        }
        if puts.is_empty() {
            return Err(ApiError::not_implemented(format!(
                "add: no peer with IPFS to put the blocks into ({NEEDS_IPFS})"
            )));
        }
        Ok(Fanout::new(puts, everywhere))
    }

    /// A destination that is another peer's IPFS.
    fn remote_put(&self, peer: PeerId) -> PutBatch {
        let me = self.clone();
        std::sync::Arc::new(move |batch: Batch| {
            let me = me.clone();
            Box::pin(async move {
                let args = crate::add::fanout::encode_batch(&batch)?;
                me.call(peer, crate::add::fanout::BLOCK_PUT, args)
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        // The label already names the peer.
                        PeerError::Remote { message, .. } => message,
                        e => e.to_string(),
                    })
            })
        })
    }

    /// `POST /add`: builds the DAG once and puts its blocks into every
    /// destination's IPFS as they are made ([`Self::add_fanout`]), then
    /// pins the root cluster-wide with those allocations unless `no-pin`,
    /// once every destination holds every block. Every output line carries
    /// the destinations ([`Self::add_destinations`]) and is sent as soon as
    /// it is known, but the root's, which waits for the pin.
    async fn add_and_pin(
        &self,
        params: AddParams,
        files: BoxStream<'static, Result<AddFile, ApiError>>,
        out: tokio::sync::mpsc::Sender<Result<AddedOutput, ApiError>>,
    ) -> Result<(), ApiError> {
        let (everywhere, dests) = self.add_destinations(&params)?;
        let fanout = self.add_fanout(&params, &dests, everywhere)?;
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<AddedOutput, ApiError>>(ADD_OUTPUT_BUFFER);
        let forward = {
            let out = out.clone();
            let dests = dests.clone();
            tokio::spawn(async move {
                // Holds back the latest output: the last one is the root.
                let mut held: Option<AddedOutput> = None;
                while let Some(item) = rx.recv().await {
                    match item {
                        Ok(mut o) => {
                            o.allocations.clone_from(&dests);
                            if let Some(prev) = held.replace(o)
                                && out.send(Ok(prev)).await.is_err()
                            {
                                return None;
                            }
                        }
                        Err(e) => {
                            let _ = out.send(Err(e)).await;
                            return None;
                        }
                    }
                }
                held
            })
        };
        let root = crate::add::add(fanout, &params, files, tx).await;
        let last = forward.await.unwrap_or(None);
        let root = root?;
        let last = last.unwrap_or_else(|| AddedOutput {
            name: String::new(),
            cid: root,
            bytes: 0,
            size: 0,
            allocations: dests.clone(),
        });
        if !params.no_pin {
            let mut opts = crate::add::pin_options(&params);
            // The pin goes where the outputs said (Go: `rootPin.Allocations
            // = dests`); a pin everywhere has no allocations.
            if !everywhere {
                opts.user_allocations = dests;
            }
            self.pin(root, opts).await?;
        }
        let _ = out.send(Ok(last)).await;
        Ok(())
    }

    /// `/ipfs/<cid>` is the CID itself; deeper paths and `/ipns/` names are
    /// resolved by the IPFS daemon.
    pub(crate) async fn resolve_path(&self, path: &str) -> Result<Cid, ApiError> {
        match (path_cid(path), &self.ipfs) {
            (Ok(cid), _) => Ok(cid),
            (Err(e), None) => Err(e),
            (Err(_), Some(ipfs)) => {
                use ipfs::IpfsConnector;
                ipfs.resolve(path.to_owned())
                    .await
                    .map_err(|e| ApiError::bad_request(format!("resolving {path}: {e}")))
            }
        }
    }

    /// Go's `PinUpdate`: the pin updated from must be in the pinset, else
    /// a 404 with Go's `state.ErrNotFound` message (a pin is not made).
    fn check_pin_update(&self, options: &PinOptions) -> Result<(), ApiError> {
        match options.pin_update {
            Some(from) if self.get(&from)?.is_none() => Err(ApiError::not_found(PIN_NOT_FOUND)),
            _ => Ok(()),
        }
    }

    async fn do_unpin(&self, cid: Cid) -> Result<Pin, ApiError> {
        let pin = self
            .get(&cid)?
            .ok_or_else(|| ApiError::not_found(format!("{cid} is not part of the pinset")))?;
        self.unpin(cid).await?;
        Ok(pin)
    }
}

/// `/ipfs/<cid>` and `/ipld/<cid>` resolve to the CID itself; deeper paths
/// and IPNS need IPFS.
fn path_cid(path: &str) -> Result<Cid, ApiError> {
    let trimmed = path.trim_matches('/');
    let mut parts = trimmed.splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some("ipfs" | "ipld"), Some(rest)) if !rest.contains('/') => {
            cluster_types::parse_cid(rest)
                .map_err(|e| ApiError::bad_request(format!("invalid CID in path {path}: {e}")))
        }
        _ => Err(ApiError::not_implemented(format!(
            "resolving {path} needs IPFS: {NEEDS_IPFS}"
        ))),
    }
}

impl ClusterApi for PeerHandle {
    async fn id(&self) -> Result<Id, ApiError> {
        Ok(self.id_to_api(self.id_info().await))
    }

    async fn version(&self) -> Result<Version, ApiError> {
        Ok(Version {
            version: VERSION.into(),
        })
    }

    fn peers(&self) -> BoxStream<'static, Result<Id, ApiError>> {
        let me = self.clone();
        futures::stream::iter(self.peers())
            .map(move |p| {
                let me = me.clone();
                async move {
                    if p == me.id() {
                        return Ok(me.id_to_api(me.id_info().await));
                    }
                    Ok(match me.remote_id(p).await {
                        Ok(info) => me.id_to_api(info),
                        // As Go: an unreachable peer is listed with its error.
                        Err(e) => Id {
                            id: p.to_string(),
                            error: e.to_string(),
                            rpc_protocol_version: RPC_PROTOCOL_VERSION.into(),
                            ..me.id_to_api(IdInfo::default())
                        },
                    })
                }
            })
            .buffered(PEERS_CONCURRENCY)
            .boxed()
    }

    async fn peer_rm(&self, peer: String) -> Result<(), ApiError> {
        Err(ApiError::internal(format!(
            "cannot remove {peer}: peers of a crdt cluster leave by stopping (their ping metric expires)"
        )))
    }

    fn allocations(&self, filter: PinTypeFilter) -> BoxStream<'static, Result<Pin, ApiError>> {
        // A store that failed to write (a full disk) fails a listing part
        // way through (sled rewrites nodes as it reads them): say so before
        // the first byte rather than in the trailer of a 200. Its flush
        // fails then; otherwise it is a no-op or what sled's flusher does
        // within 500 ms anyway.
        if let Err(e) = self.replica().flush() {
            let e = ApiError::from(PeerError::from(e));
            return futures::stream::once(std::future::ready(Err(e))).boxed();
        }
        futures::stream::iter(self.pins())
            .filter_map(move |p| {
                std::future::ready(match p {
                    Ok(pin) => filter.matches(pin.pin_type).then_some(Ok(pin)),
                    Err(e) => Some(Err(ApiError::internal(e.to_string()))),
                })
            })
            .boxed()
    }

    /// Read from the cursor on, so a page costs its own size, not the
    /// pins before it.
    fn allocations_after(
        &self,
        filter: PinTypeFilter,
        after: Option<Cid>,
    ) -> BoxStream<'static, Result<Pin, ApiError>> {
        futures::stream::iter(self.pins_after(after))
            .filter_map(move |p| {
                std::future::ready(match p {
                    Ok(pin) => filter.matches(pin.pin_type).then_some(Ok(pin)),
                    Err(e) => Some(Err(ApiError::internal(e.to_string()))),
                })
            })
            .boxed()
    }

    async fn allocation(&self, cid: Cid) -> Result<Pin, ApiError> {
        match self.get(&cid)? {
            Some(p) => Ok(p),
            None => Err(ApiError::not_found(format!(
                "{cid} is not part of the pinset"
            ))),
        }
    }

    async fn pin(&self, cid: Cid, options: PinOptions) -> Result<Pin, ApiError> {
        self.check_pin_update(&options)?;
        Ok(PeerHandle::pin(self, cid, options).await?)
    }

    async fn pin_path(&self, path: String, options: PinOptions) -> Result<Pin, ApiError> {
        self.check_pin_update(&options)?;
        let cid = self.resolve_path(&path).await?;
        Ok(PeerHandle::pin(self, cid, options).await?)
    }

    async fn unpin(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.do_unpin(cid).await
    }

    async fn unpin_path(&self, path: String) -> Result<Pin, ApiError> {
        let cid = self.resolve_path(&path).await?;
        self.do_unpin(cid).await
    }

    async fn status(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        Ok(self.global_status(cid, local).await)
    }

    fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        self.global_status_all(filter, local, cids)
    }

    async fn recover(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        Ok(self.global_recover(cid, local).await)
    }

    fn recover_all(&self, local: bool) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        self.global_recover_all(local)
    }

    async fn repo_gc(&self, local: bool) -> Result<GlobalRepoGc, ApiError> {
        Ok(self.global_repo_gc(local).await)
    }

    async fn metric_names(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.monitor.names())
    }

    async fn metrics(&self, name: String) -> Result<Vec<Metric>, ApiError> {
        Ok(self.monitor.latest(&name))
    }

    async fn alerts(&self) -> Result<Vec<Alert>, ApiError> {
        Ok(self
            .monitor
            .alerts()
            .into_iter()
            .map(|a| Alert {
                metric: a.metric,
                triggered_at: Some(UNIX_EPOCH + Duration::from_nanos(a.triggered_at.max(0) as u64)),
            })
            .collect())
    }

    async fn health_graph(&self) -> Result<ConnectGraph, ApiError> {
        let me = self.id();
        let mut graph = ConnectGraph {
            cluster_id: me.to_string(),
            ..ConnectGraph::default()
        };
        for p in self.peers() {
            let key = p.to_string();
            graph
                .cluster_trust_links
                .insert(key.clone(), self.trusts(&p));
            let (name, links) = if p == me {
                let links = self
                    .connected_peers()
                    .await?
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                (self.settings().peername.clone(), links)
            } else {
                let name = self
                    .remote_id(p)
                    .await
                    .map(|i| i.peername)
                    .unwrap_or_default();
                let links = match self.call(p, "Cluster.Connections", vec![]).await {
                    Ok(answers) => answers
                        .first()
                        .and_then(|b| serde_ipld_dagcbor::from_slice::<Vec<String>>(b).ok())
                        .unwrap_or_default(),
                    Err(_) => vec![],
                };
                (name, links)
            };
            graph.id_to_peername.insert(key.clone(), name);
            graph.cluster_links.insert(key, links);
        }
        Ok(graph)
    }

    fn add(
        &self,
        params: AddParams,
        files: BoxStream<'static, Result<AddFile, ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(ADD_OUTPUT_BUFFER);
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.add_and_pin(params, files, tx.clone()).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
            .boxed()
    }

    async fn bandwidth(&self) -> Result<BandwidthStats, ApiError> {
        Ok(PeerHandle::bandwidth(self))
    }

    async fn history_heads(&self) -> Result<HistoryHeads, ApiError> {
        Ok(crate::history::heads(self.replica())?)
    }

    async fn history_sync(&self) -> Result<HistorySync, ApiError> {
        let height = self
            .replica()
            .height()
            .map_err(|e| ApiError::from(PeerError::from(e)))?;
        let lag = self.sync_lag(height);
        let stats = self.sync_stats();
        let lag_seconds = lag.behind_since.map_or(0, |t| {
            std::time::SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs()
        });
        Ok(HistorySync {
            height,
            seen_height: lag.seen_height,
            lag_deltas: lag.seen_height.saturating_sub(height),
            lag_seconds,
            behind_since: lag.behind_since,
            syncing: lag.wanted_heads > 0,
            wanted_heads: lag.wanted_heads,
            bulk_requests: stats.bulk_requests,
            bulk_blocks: stats.bulk_blocks,
            walk_fetches: stats.walk_fetches,
            gossip_blocks: stats.gossip_blocks,
            applied: stats.applied,
        })
    }

    /// A follower never signs (403 as for an untrusted peer); the snapshot
    /// is written off the async workers (it reads the whole pinset).
    async fn history_checkpoint(&self) -> Result<HistoryCheckpoint, ApiError> {
        if self.settings().consensus.follower {
            return Err(ApiError::forbidden(PeerError::FollowerMode.to_string()));
        }
        let replica = self.replica().clone();
        tokio::task::spawn_blocking(move || crate::history::checkpoint_now(&replica))
            .await
            .map_err(|e| ApiError::internal(format!("the checkpoint task failed: {e}")))?
            .map_err(ApiError::from)
    }

    fn history_car(&self) -> BoxStream<'static, Result<bytes::Bytes, ApiError>> {
        match crate::history::car_chunks(self.replica().clone()) {
            Ok(chunks) => futures::stream::iter(chunks.map(|c| c.map_err(ApiError::from))).boxed(),
            Err(e) => futures::stream::once(std::future::ready(Err(e.into()))).boxed(),
        }
    }

    fn history_log(
        &self,
        query: HistoryLogQuery,
    ) -> BoxStream<'static, Result<HistoryDelta, ApiError>> {
        match crate::history::log(self.replica().clone(), &query) {
            Ok(log) => futures::stream::iter(log.map(|d| d.map_err(ApiError::from))).boxed(),
            Err(e) => futures::stream::once(std::future::ready(Err(e.into()))).boxed(),
        }
    }
}
