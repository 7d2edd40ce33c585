//! [`FakeCluster`]: a small in-memory [`ClusterApi`] for the REST server in
//! ctl's tests. It keeps a pinset, answers statuses for three peers, and
//! records what it was asked ([`Call`]) so tests can check the options and
//! flags that reached the API.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use api::ApiError;
use api::service::{AddFile, AddFileKind, ClusterApi};
use api::types::{
    AddParams, AddedOutput, Alert, Bandwidth, BandwidthStats, ConnectGraph, GlobalPinInfo,
    GlobalRepoGc, Id, IpfsId, IpfsRepoGc, Metric, Pin, PinInfoShort, PinOptions, PinTypeFilter,
    RepoGc, TrackerStatus, TrackerStatusFilter, Version,
};
use cid::Cid;
use futures::stream::{self, BoxStream, StreamExt as _};

/// The three cluster peers of the fake; the first is the one answering.
pub(crate) const PEERS: [&str; 3] = [
    "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    "QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD",
    "QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ",
];

/// The IPFS daemons of the three peers.
pub(crate) const IPFS_PEERS: [&str; 3] = [
    "QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV",
    "QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq",
    "QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL",
];

/// The version the fake reports.
pub(crate) const VERSION: &str = "1.1.6";

/// A CIDv1 (raw, sha2-256 of a made-up digest) numbered `n`.
pub(crate) fn test_cid(n: u8) -> Cid {
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[n; 32]).expect("a 32-byte digest fits");
    Cid::new_v1(0x55, mh)
}

/// What the fake was asked, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// `POST /pins/{path}` with the parsed options.
    PinPath(String, PinOptions),
    /// `DELETE /pins/{path}`.
    UnpinPath(String),
    /// `GET /pins/{cid}`.
    Status(Cid, bool),
    /// `GET /pins` with its filter, `local` and CIDs.
    StatusAll(TrackerStatusFilter, bool, Vec<Cid>),
    /// `GET /allocations`.
    Allocations(PinTypeFilter),
    /// `POST /pins/{cid}/recover`.
    Recover(Cid, bool),
    /// `POST /pins/recover`.
    RecoverAll(bool),
    /// `POST /ipfs/gc`.
    RepoGc(bool),
    /// `DELETE /peers/{peer}`.
    PeerRm(String),
    /// `GET /monitor/metrics/{name}`.
    Metrics(String),
    /// `POST /add` with the parsed parameters.
    Add(Box<AddParams>),
}

/// An entry the fake add received: its path and, for a file, its bytes.
pub(crate) type Uploaded = (String, Option<Vec<u8>>);

#[derive(Debug, Default)]
struct State {
    pins: BTreeMap<Cid, Pin>,
    calls: Vec<Call>,
    /// What allocated peers report for a pinned CID.
    status: Option<TrackerStatus>,
}

/// An in-memory cluster of three peers behind the REST API.
#[derive(Debug, Default)]
pub(crate) struct FakeCluster {
    state: Mutex<State>,
    /// `GET /id` waits this long before answering (timeout tests).
    id_delay: Option<Duration>,
    /// `GET /allocations` fails after this many items (trailer tests).
    allocations_fail_after: Option<usize>,
    /// The entries of the last upload to `POST /add`.
    uploaded: std::sync::Arc<Mutex<Vec<Uploaded>>>,
}

impl FakeCluster {
    /// `GET /id` will wait `delay` before answering.
    pub(crate) fn with_id_delay(mut self, delay: Duration) -> Self {
        self.id_delay = Some(delay);
        self
    }

    /// `GET /allocations` will end with an error after `n` pins.
    pub(crate) fn with_allocations_failing_after(mut self, n: usize) -> Self {
        self.allocations_fail_after = Some(n);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call received so far.
    /// The entries of the uploads to `POST /add`, in order.
    pub(crate) fn uploaded(&self) -> Vec<Uploaded> {
        self.uploaded.lock().expect("uploads").clone()
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The pinset now.
    pub(crate) fn pins(&self) -> Vec<Pin> {
        self.state().pins.values().cloned().collect()
    }

    /// Puts a pin in the pinset directly.
    pub(crate) fn insert(&self, pin: Pin) {
        self.state().pins.insert(pin.cid, pin);
    }

    /// A stored pin of `cid` named `name` on the first two peers.
    pub(crate) fn add_pin(&self, cid: Cid, name: &str) -> Pin {
        let pin = stored(
            cid,
            PinOptions {
                name: name.into(),
                ..PinOptions::default()
            },
        );
        self.insert(pin.clone());
        pin
    }

    /// What the allocated peers report for pinned CIDs (default `pinned`).
    pub(crate) fn set_status(&self, status: TrackerStatus) {
        self.state().status = Some(status);
    }

    fn record(&self, call: Call) {
        self.state().calls.push(call);
    }

    /// The status of `cid` on every peer (or the first only, `local`).
    pub(crate) fn status_of(&self, cid: Cid, local: bool) -> GlobalPinInfo {
        let st = self.state();
        let mut info = GlobalPinInfo::new(cid);
        let pin = st.pins.get(&cid);
        if let Some(pin) = pin {
            info.name = pin.options.name.clone();
            info.allocations = pin.allocations.clone();
            info.metadata = pin.options.metadata.clone();
            info.created = pin.timestamp;
        }
        let peers = if local { &PEERS[..1] } else { &PEERS[..] };
        for (i, peer) in peers.iter().enumerate() {
            let status = match pin {
                None => TrackerStatus::Unpinned,
                Some(p) if p.allocations.is_empty() || p.allocations.iter().any(|a| a == peer) => {
                    st.status.unwrap_or(TrackerStatus::Pinned)
                }
                Some(_) => TrackerStatus::Remote,
            };
            let short = PinInfoShort {
                peername: format!("peer{i}"),
                ipfs_peer_id: IPFS_PEERS[i].into(),
                status,
                timestamp: Some(fixed_time()),
                ..PinInfoShort::default()
            };
            info.peer_map.insert((*peer).to_string(), short);
        }
        info
    }

    /// The `ID` of peer `i`.
    pub(crate) fn id_of(i: usize) -> Id {
        Id {
            id: PEERS[i].into(),
            addresses: vec![format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", 9096 + i, PEERS[i])],
            cluster_peers: PEERS.iter().map(|p| (*p).to_string()).collect(),
            cluster_peers_addresses: Vec::new(),
            version: VERSION.into(),
            commit: String::new(),
            rpc_protocol_version: "/ipfscluster/1.0/rpc".into(),
            error: String::new(),
            ipfs: IpfsId {
                id: IPFS_PEERS[i].into(),
                addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4001 + i)],
                error: String::new(),
            },
            peername: format!("peer{i}"),
        }
    }
}

/// 2026-05-11T10:00:00Z, the fake's clock for timestamps.
pub(crate) fn fixed_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_778_493_600)
}

/// A pin as the fake stores it: allocated to the first two peers unless
/// pinned everywhere (-1).
fn stored(cid: Cid, options: PinOptions) -> Pin {
    let everywhere = options.replication_factor_min == -1;
    let mut pin = Pin::new(cid, options);
    if !everywhere {
        pin.allocations = PEERS[..2].iter().map(|p| (*p).to_string()).collect();
    }
    pin.timestamp = Some(fixed_time());
    pin
}

/// The CID of an `/ipfs/<cid>[/…]` path.
fn cid_of_path(path: &str) -> Result<Cid, ApiError> {
    path.strip_prefix("/ipfs/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "the fake resolves only /ipfs/<cid> paths, not {path:?}"
            ))
        })
}

/// The CID the fake add gives content: a raw CIDv1 over a digest made
/// from the bytes (not a real hash; stable for the tests).
pub(crate) fn content_cid(data: &[u8]) -> Cid {
    let mut digest = [0u8; 32];
    for (i, b) in data.iter().enumerate() {
        digest[i % 32] = digest[i % 32].wrapping_mul(31).wrapping_add(*b);
    }
    digest[31] ^= data.len() as u8;
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("a 32-byte digest fits");
    Cid::new_v1(0x55, mh)
}

impl ClusterApi for FakeCluster {
    /// Reads the upload (recorded), then answers a line per file, one per
    /// directory (deepest last-first, the top one last) and `""` when
    /// wrapping; a pin named `fail` fails after the first line.
    fn add(
        &self,
        params: AddParams,
        mut files: BoxStream<'static, Result<AddFile, ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
        self.record(Call::Add(Box::new(params.clone())));
        let uploaded = self.uploaded.clone();
        uploaded.lock().expect("uploads").clear();
        let collect = async move {
            let mut outs = Vec::new();
            let mut dirs = Vec::new();
            let mut all = Vec::new();
            while let Some(entry) = files.next().await {
                let AddFile { path, kind } = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        outs.push(Err(e));
                        return outs;
                    }
                };
                match kind {
                    AddFileKind::Directory => {
                        uploaded.lock().expect("uploads").push((path.clone(), None));
                        dirs.push(path);
                    }
                    AddFileKind::File(mut data) => {
                        let mut content = Vec::new();
                        while let Some(chunk) = data.next().await {
                            match chunk {
                                Ok(c) => content.extend_from_slice(&c),
                                Err(e) => {
                                    outs.push(Err(e));
                                    return outs;
                                }
                            }
                        }
                        all.extend_from_slice(&content);
                        outs.push(Ok(AddedOutput {
                            name: path.clone(),
                            cid: content_cid(&content),
                            bytes: 0,
                            size: content.len() as u64,
                            allocations: vec![PEERS[0].to_string()],
                        }));
                        uploaded
                            .lock()
                            .expect("uploads")
                            .push((path, Some(content)));
                    }
                }
            }
            for d in dirs.into_iter().rev() {
                all.extend_from_slice(d.as_bytes());
                outs.push(Ok(AddedOutput {
                    name: d,
                    cid: content_cid(&all),
                    bytes: 0,
                    size: all.len() as u64,
                    allocations: vec![],
                }));
            }
            if params.wrap_with_directory {
                all.push(b'/');
                outs.push(Ok(AddedOutput {
                    name: String::new(),
                    cid: content_cid(&all),
                    bytes: 0,
                    size: all.len() as u64,
                    allocations: vec![],
                }));
            }
            if params.pin_options.name == "fail" {
                outs.truncate(1);
                outs.push(Err(ApiError::internal("boom: add failed")));
            }
            outs
        };
        stream::once(collect).flat_map(stream::iter).boxed()
    }

    async fn id(&self) -> Result<Id, ApiError> {
        if let Some(d) = self.id_delay {
            tokio::time::sleep(d).await;
        }
        Ok(Self::id_of(0))
    }

    async fn version(&self) -> Result<Version, ApiError> {
        Ok(Version {
            version: VERSION.into(),
        })
    }

    fn peers(&self) -> BoxStream<'static, Result<Id, ApiError>> {
        stream::iter((0..PEERS.len()).map(|i| Ok(Self::id_of(i)))).boxed()
    }

    async fn peer_rm(&self, peer: String) -> Result<(), ApiError> {
        self.record(Call::PeerRm(peer));
        Ok(())
    }

    fn allocations(&self, filter: PinTypeFilter) -> BoxStream<'static, Result<Pin, ApiError>> {
        self.record(Call::Allocations(filter));
        let mut items: Vec<Result<Pin, ApiError>> = self.pins().into_iter().map(Ok).collect();
        if let Some(n) = self.allocations_fail_after {
            items.truncate(n);
            items.push(Err(ApiError::internal("the fake's pinset broke")));
        }
        stream::iter(items).boxed()
    }

    async fn allocation(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.state()
            .pins
            .get(&cid)
            .cloned()
            .ok_or_else(|| ApiError::not_found("pin is not part of the pinset"))
    }

    async fn pin(&self, cid: Cid, options: PinOptions) -> Result<Pin, ApiError> {
        self.pin_path(format!("/ipfs/{cid}"), options).await
    }

    async fn pin_path(&self, path: String, options: PinOptions) -> Result<Pin, ApiError> {
        self.record(Call::PinPath(path.clone(), options.clone()));
        let cid = cid_of_path(&path)?;
        let pin = stored(cid, options);
        self.insert(pin.clone());
        Ok(pin)
    }

    async fn unpin(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.unpin_path(format!("/ipfs/{cid}")).await
    }

    async fn unpin_path(&self, path: String) -> Result<Pin, ApiError> {
        self.record(Call::UnpinPath(path.clone()));
        let cid = cid_of_path(&path)?;
        self.state()
            .pins
            .remove(&cid)
            .ok_or_else(|| ApiError::not_found("pin is not part of the pinset"))
    }

    async fn status(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        self.record(Call::Status(cid, local));
        Ok(self.status_of(cid, local))
    }

    fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        self.record(Call::StatusAll(filter, local, cids.clone()));
        let cids = if cids.is_empty() {
            self.pins().into_iter().map(|p| p.cid).collect()
        } else {
            cids
        };
        let items: Vec<_> = cids
            .into_iter()
            .map(|c| self.status_of(c, local))
            .filter(|g| g.matches(filter))
            .map(Ok)
            .collect();
        stream::iter(items).boxed()
    }

    async fn recover(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        self.record(Call::Recover(cid, local));
        Ok(self.status_of(cid, local))
    }

    fn recover_all(&self, local: bool) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        self.record(Call::RecoverAll(local));
        let items: Vec<_> = self
            .pins()
            .into_iter()
            .map(|p| Ok(self.status_of(p.cid, local)))
            .collect();
        stream::iter(items).boxed()
    }

    async fn repo_gc(&self, local: bool) -> Result<GlobalRepoGc, ApiError> {
        self.record(Call::RepoGc(local));
        let peers = if local { &PEERS[..1] } else { &PEERS[..] };
        let peer_map = peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let gc = RepoGc {
                    peer: (*p).to_string(),
                    peername: format!("peer{i}"),
                    keys: vec![IpfsRepoGc {
                        key: Some(test_cid(200)),
                        error: String::new(),
                    }],
                    error: String::new(),
                };
                ((*p).to_string(), gc)
            })
            .collect();
        Ok(GlobalRepoGc { peer_map })
    }

    async fn metric_names(&self) -> Result<Vec<String>, ApiError> {
        Ok(vec!["freespace".into(), "ping".into()])
    }

    async fn metrics(&self, name: String) -> Result<Vec<Metric>, ApiError> {
        self.record(Call::Metrics(name.clone()));
        let expire = SystemTime::now() + Duration::from_secs(30);
        let expire = expire
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Ok(PEERS
            .iter()
            .map(|p| Metric {
                name: name.clone(),
                peer: (*p).to_string(),
                value: "5000000000".into(),
                expire,
                valid: true,
                weight: 5_000_000_000,
                ..Metric::default()
            })
            .collect())
    }

    async fn alerts(&self) -> Result<Vec<Alert>, ApiError> {
        let metric = Metric {
            name: "ping".into(),
            peer: PEERS[2].into(),
            expire: 1,
            ..Metric::default()
        };
        Ok(vec![Alert {
            metric,
            triggered_at: Some(SystemTime::now()),
        }])
    }

    async fn health_graph(&self) -> Result<ConnectGraph, ApiError> {
        let all = |except: usize, ids: &[&str]| -> Vec<String> {
            ids.iter()
                .enumerate()
                .filter(|(i, _)| *i != except)
                .map(|(_, p)| (*p).to_string())
                .collect()
        };
        Ok(ConnectGraph {
            cluster_id: PEERS[0].into(),
            id_to_peername: PEERS
                .iter()
                .enumerate()
                .map(|(i, p)| ((*p).to_string(), format!("peer{i}")))
                .collect(),
            ipfs_links: (0..3)
                .map(|i| (IPFS_PEERS[i].to_string(), all(i, &IPFS_PEERS)))
                .collect(),
            cluster_links: (0..3)
                .map(|i| (PEERS[i].to_string(), all(i, &PEERS)))
                .collect(),
            cluster_trust_links: PEERS.iter().map(|p| ((*p).to_string(), false)).collect(),
            cluster_to_ipfs: (0..3)
                .map(|i| (PEERS[i].to_string(), IPFS_PEERS[i].to_string()))
                .collect(),
        })
    }

    async fn bandwidth(&self) -> Result<BandwidthStats, ApiError> {
        let stats = Bandwidth {
            total_in: 1500,
            total_out: 82_854_982,
            rate_in: 1.5,
            rate_out: 0.25,
        };
        Ok(BTreeMap::from([("/ipfs/ping/1.0.0".to_string(), stats)]))
    }
}
