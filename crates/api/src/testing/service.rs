//! [`ClusterApi`] for [`FakeCluster`]: each call is recorded, checked
//! against the faults, then answered from the pinset, the statuses and the
//! fixtures; streams follow the [`Plan`](super::Plan).

use std::time::SystemTime;

use cid::Cid;
use futures::StreamExt as _;
use futures::stream::{self, BoxStream};

use super::add;
use super::calls::Call;
use super::fake::{FakeCluster, derive_status, resolve};
use super::fixtures::generated_pin;
use super::streams::scripted;
use crate::ApiError;
use crate::service::{AddFile, ClusterApi};
use crate::types::{
    AddParams, AddedOutput, Alert, BandwidthStats, ConnectGraph, GlobalPinInfo, GlobalRepoGc,
    HistoryCheckpoint, HistoryDelta, HistoryHead, HistoryHeads, HistoryLogQuery, HistoryOp,
    HistorySync, HistoryWriter, HistoryWriterSeq, Id, IpfsRepoGc, Metric, Pin, PinOptions,
    PinTypeFilter, RepoGc, TrackerStatus, TrackerStatusFilter, Version,
};

/// A stream of one error.
fn failed<T: Send + 'static>(e: ApiError) -> BoxStream<'static, Result<T, ApiError>> {
    stream::iter([Err(e)]).boxed()
}

impl FakeCluster {
    /// `cid`'s status with the answering peer re-queueing it.
    fn recovered(&self, cid: Cid, local: bool) -> GlobalPinInfo {
        let mut info = self.status_of(cid, local);
        if let Some(me) = info.peer_map.get_mut(&self.fixtures.peers[0].id) {
            me.status = TrackerStatus::PinQueued;
        }
        info
    }

    /// Generates the status of the `i`th generated pin (not in the pinset).
    fn generated_status(&self) -> impl Fn(usize) -> GlobalPinInfo + Send + Sync + 'static {
        let fixtures = self.fixtures.clone();
        move |i| derive_status(&fixtures, generated_pin(i).cid, None, None, false)
    }
}

impl ClusterApi for FakeCluster {
    fn add(
        &self,
        params: AddParams,
        files: BoxStream<'static, Result<AddFile, ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
        let peer = self.fixtures.peers[0].id.clone();
        add::add(
            self.state.clone(),
            peer,
            self.directory_outputs,
            params,
            files,
        )
    }

    async fn id(&self) -> Result<Id, ApiError> {
        self.record(Call::Id)?;
        if let Some(d) = self.id_delay {
            tokio::time::sleep(d).await;
        }
        Ok(self.fixtures.id_of(0))
    }

    async fn version(&self) -> Result<Version, ApiError> {
        Ok(Version {
            version: super::VERSION.into(),
        })
    }

    fn peers(&self) -> BoxStream<'static, Result<Id, ApiError>> {
        if let Err(e) = self.record(Call::Peers) {
            return failed(e);
        }
        let ids = (0..self.fixtures.peers.len())
            .map(|i| self.fixtures.id_of(i))
            .collect();
        let first = self.fixtures.id_of(0);
        let generated = move |i| Id {
            peername: format!("peer-{i}"),
            ..first.clone()
        };
        scripted(self.plan(), ids, generated, self.gate())
    }

    async fn peer_rm(&self, peer: String) -> Result<(), ApiError> {
        self.record(Call::PeerRm(peer))
    }

    fn allocations(&self, filter: PinTypeFilter) -> BoxStream<'static, Result<Pin, ApiError>> {
        if let Err(e) = self.record(Call::Allocations(filter)) {
            return failed(e);
        }
        // Unfiltered: the server filters.
        scripted(self.plan(), self.pins(), generated_pin, self.gate())
    }

    async fn allocation(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.record(Call::Allocation(cid))?;
        self.lock()
            .pins
            .iter()
            .find(|p| p.cid == cid)
            .cloned()
            .ok_or_else(|| ApiError::not_found("pin is not part of the pinset"))
    }

    async fn pin(&self, cid: Cid, options: PinOptions) -> Result<Pin, ApiError> {
        self.record(Call::Pin(cid, options.clone()))?;
        let pin = self.stored(cid, options);
        self.insert(pin.clone());
        Ok(pin)
    }

    async fn pin_path(&self, path: String, options: PinOptions) -> Result<Pin, ApiError> {
        self.record(Call::PinPath(path.clone(), options.clone()))?;
        let pin = self.stored(resolve(&path)?, options);
        self.insert(pin.clone());
        Ok(pin)
    }

    async fn unpin(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.record(Call::Unpin(cid))?;
        self.remove(cid)
    }

    async fn unpin_path(&self, path: String) -> Result<Pin, ApiError> {
        self.record(Call::UnpinPath(path.clone()))?;
        self.remove(resolve(&path)?)
    }

    async fn status(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        self.record(Call::Status(cid, local))?;
        Ok(self.status_of(cid, local))
    }

    fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        if let Err(e) = self.record(Call::StatusAll(filter, local, cids.clone())) {
            return failed(e);
        }
        if !cids.is_empty() {
            let infos: Vec<_> = cids.into_iter().map(|c| self.status_of(c, local)).collect();
            return stream::iter(infos.into_iter().map(Ok)).boxed();
        }
        // Unfiltered: the server filters.
        let infos = self
            .pins()
            .into_iter()
            .map(|p| self.status_of(p.cid, local))
            .collect();
        scripted(self.plan(), infos, self.generated_status(), self.gate())
    }

    async fn recover(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        self.record(Call::Recover(cid, local))?;
        Ok(self.recovered(cid, local))
    }

    /// As Go's: only the pins with an error are recovered and answered.
    fn recover_all(&self, local: bool) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        if let Err(e) = self.record(Call::RecoverAll(local)) {
            return failed(e);
        }
        let infos = self
            .pins()
            .into_iter()
            .filter(|p| {
                let info = self.status_of(p.cid, local);
                info.peer_map.values().any(|s| s.status.is_error())
            })
            .map(|p| self.recovered(p.cid, local))
            .collect();
        scripted(self.plan(), infos, self.generated_status(), self.gate())
    }

    /// Every answering peer collected [`super::CID`] and kept a pinned block.
    async fn repo_gc(&self, local: bool) -> Result<GlobalRepoGc, ApiError> {
        self.record(Call::RepoGc(local))?;
        let peer_map = self
            .fixtures
            .answering(local)
            .iter()
            .map(|p| {
                let gc = RepoGc {
                    peer: p.id.clone(),
                    peername: p.name.clone(),
                    keys: vec![
                        IpfsRepoGc {
                            key: Some(super::cid()),
                            error: String::new(),
                        },
                        IpfsRepoGc {
                            key: None,
                            error: "block is pinned".into(),
                        },
                    ],
                    error: String::new(),
                };
                (p.id.clone(), gc)
            })
            .collect();
        Ok(GlobalRepoGc { peer_map })
    }

    async fn metric_names(&self) -> Result<Vec<String>, ApiError> {
        Ok(vec!["freespace".into(), "ping".into()])
    }

    /// One per reachable peer.
    async fn metrics(&self, name: String) -> Result<Vec<Metric>, ApiError> {
        self.record(Call::Metrics(name.clone()))?;
        let now = SystemTime::now();
        Ok((0..self.fixtures.peers.len())
            .filter(|&i| self.fixtures.peers[i].error.is_empty())
            .map(|i| self.fixtures.metric(i, &name, now))
            .collect())
    }

    /// The ping metric of every alerting peer.
    async fn alerts(&self) -> Result<Vec<Alert>, ApiError> {
        let now = SystemTime::now();
        Ok((0..self.fixtures.peers.len())
            .filter(|&i| self.fixtures.peers[i].alerting)
            .map(|i| Alert {
                metric: self.fixtures.metric(i, "ping", now),
                triggered_at: Some(self.fixtures.clock.unwrap_or(now)),
            })
            .collect())
    }

    async fn health_graph(&self) -> Result<ConnectGraph, ApiError> {
        Ok(self.fixtures.health_graph())
    }

    async fn bandwidth(&self) -> Result<BandwidthStats, ApiError> {
        Ok(self.fixtures.bandwidth.clone())
    }

    async fn history_heads(&self) -> Result<HistoryHeads, ApiError> {
        let log = self.fake_history();
        let peer = self.fixtures.peers[0].id.clone();
        Ok(HistoryHeads {
            cluster_name: "fake".into(),
            trusted_peers: vec!["*".into()],
            heads: log
                .first()
                .map(|d| HistoryHead {
                    cid: d.cid,
                    priority: d.priority,
                })
                .into_iter()
                .collect(),
            height: log.len() as u64,
            state_hash: "00".repeat(32),
            pins: log.len() as u64,
            deltas: log.len() as u64,
            writers: log
                .first()
                .map(|d| HistoryWriter {
                    peer,
                    seq: d.seq,
                    latest: d.cid.to_string(),
                    trusted: true,
                })
                .into_iter()
                .collect(),
            forks: vec![],
            checkpoint: None,
            floor: None,
        })
    }

    /// Level with its (fake) peers: nothing heard above its height.
    async fn history_sync(&self) -> Result<HistorySync, ApiError> {
        let height = ClusterApi::history_heads(self).await?.height;
        Ok(HistorySync {
            height,
            seen_height: height,
            ..HistorySync::default()
        })
    }

    /// A checkpoint at the fake history's head, signed by the first peer
    /// (its CID and snapshot are the head's: a fake); 409 when there is
    /// no history.
    async fn history_checkpoint(&self) -> Result<HistoryCheckpoint, ApiError> {
        let heads = ClusterApi::history_heads(self).await?;
        let Some(head) = heads.heads.first().cloned() else {
            return Err(ApiError::conflict(
                "no checkpoint made: the history is empty",
            ));
        };
        Ok(HistoryCheckpoint {
            cid: head.cid,
            signer: self.fixtures.peers[0].id.clone(),
            time: Some(self.fixtures.clock.unwrap_or_else(SystemTime::now)),
            height: heads.height,
            heads: heads.heads,
            pins: heads.pins,
            deltas: heads.deltas,
            state_hash: heads.state_hash,
            snapshot: head.cid,
            writers: heads
                .writers
                .into_iter()
                .map(|w| HistoryWriterSeq {
                    peer: w.peer,
                    seq: w.seq,
                })
                .collect(),
        })
    }

    fn history_car(&self) -> BoxStream<'static, Result<bytes::Bytes, ApiError>> {
        // A CAR v1 with no roots and no blocks: the header
        // {"roots": [], "version": 1} after its length.
        const EMPTY_CAR: &[u8] = b"\x11\xa2\x65roots\x80\x67version\x01";
        stream::iter([Ok(bytes::Bytes::from_static(EMPTY_CAR))]).boxed()
    }

    fn history_log(
        &self,
        query: HistoryLogQuery,
    ) -> BoxStream<'static, Result<HistoryDelta, ApiError>> {
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit as usize
        };
        let log: Vec<HistoryDelta> = self
            .fake_history()
            .into_iter()
            .filter(|d| query.writer.as_ref().is_none_or(|w| *w == d.writer))
            .take(limit)
            .collect();
        stream::iter(log.into_iter().map(Ok)).boxed()
    }
}

impl FakeCluster {
    /// The pinset as if each pin had been one delta of the first peer,
    /// newest first (the delta's CID is the pin's: a fake).
    fn fake_history(&self) -> Vec<HistoryDelta> {
        let writer = self.fixtures.peers[0].id.clone();
        let pins = self.lock().pins.clone();
        let mut log: Vec<HistoryDelta> = pins
            .into_iter()
            .enumerate()
            .map(|(i, pin)| HistoryDelta {
                cid: pin.cid,
                writer: writer.clone(),
                seq: i as u64 + 1,
                priority: i as u64 + 1,
                time: pin.timestamp,
                parents: vec![],
                ops: vec![HistoryOp {
                    op: "pin".into(),
                    cid: pin.cid,
                    pin: Some(pin),
                    tombs: 0,
                }],
            })
            .collect();
        log.reverse();
        log
    }
}

impl FakeCluster {
    /// Takes the pin of `cid` out of the pinset.
    fn remove(&self, cid: Cid) -> Result<Pin, ApiError> {
        let mut st = self.lock();
        let at = st
            .pins
            .iter()
            .position(|p| p.cid == cid)
            .ok_or_else(|| ApiError::not_found("pin is not part of the pinset"))?;
        Ok(st.pins.remove(at))
    }
}
