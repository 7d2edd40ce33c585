//! Pin status across the cluster: each peer answers for itself over RPC
//! (`Tracker.*`, `IPFSConnector.RepoGC`), and the peer serving the API merges
//! the answers into Go's `GlobalPinInfo`. The whole-pinset status walks the
//! pinset in chunks, asking every peer about one chunk at a time, so neither
//! side holds the pinset or the IPFS pin list in memory; a peer that does not
//! answer shows as `cluster_error` with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::ApiError;
use api::types::{
    GlobalPinInfo, GlobalRepoGc, IpfsRepoGc, PinInfoShort, RepoGc, TrackerStatus,
    TrackerStatusFilter,
};
use cid::Cid;
use futures::StreamExt;
use futures::stream::BoxStream;
use ipfs::IpfsConnector;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::backend::IpfsBackend;
use crate::error::PeerError;
use crate::network::rpc::{self, Handler, Policy};
use crate::peer::PeerHandle;
use crate::pinning::PeerTracker;

/// CIDs per `Tracker.StatusMany` / `Tracker.RecoverMany` call.
pub(crate) const CHUNK: usize = 1000;
/// Longest a peer may take to answer about one CID (Go: 15 s).
const PEER_TIMEOUT: Duration = Duration::from_secs(15);
/// Merged entries buffered ahead of the API's reader.
const STREAM_BUFFER: usize = 256;
/// Removed blocks per `IPFSConnector.RepoGC` answer frame.
const GC_FRAME_KEYS: usize = 10_000;
/// How long the IPFS daemon's ID is reused in status answers.
const IPFS_ID_REUSE: Duration = Duration::from_secs(30);
/// A `Tracker.Reconcile` within this long of the previous one reuses it.
const RECONCILE_REUSE: Duration = Duration::from_secs(1);

const NO_IPFS: &str = "this peer has no IPFS connector: it pins nothing";

/// One CID's status on one peer, on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Item {
    cid: Cid,
    status: String,
    error: String,
    attempts: u32,
    priority: bool,
    /// Unix milliseconds.
    at: u64,
}

/// A peer's answer about some CIDs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Report {
    peername: String,
    ipfs_peer_id: String,
    ipfs_addresses: Vec<String>,
    items: Vec<Item>,
}

/// One frame of a `IPFSConnector.RepoGC` answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct GcPart {
    peername: String,
    keys: Vec<(Option<Cid>, String)>,
    error: String,
}

fn item(s: &tracker::LocalStatus) -> Item {
    Item {
        cid: s.cid,
        status: s.status.as_str().into(),
        error: s.error.clone(),
        attempts: s.attempt_count,
        priority: s.priority_pin,
        at: s
            .timestamp
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

fn short(report: &Report, it: &Item) -> PinInfoShort {
    PinInfoShort {
        peername: report.peername.clone(),
        ipfs_peer_id: report.ipfs_peer_id.clone(),
        ipfs_peer_addresses: report.ipfs_addresses.clone(),
        status: TrackerStatus::from_name(&it.status).unwrap_or(TrackerStatus::Undefined),
        timestamp: (it.at > 0).then(|| UNIX_EPOCH + Duration::from_millis(it.at)),
        error: it.error.clone(),
        attempt_count: it.attempts,
        priority_pin: it.priority,
    }
}

fn unreachable(peer: &PeerId, error: &str) -> PinInfoShort {
    PinInfoShort {
        peername: peer.to_string(),
        status: TrackerStatus::ClusterError,
        timestamp: Some(SystemTime::now()),
        error: error.into(),
        ..PinInfoShort::default()
    }
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_ipld_dagcbor::to_vec(v).map_err(|e| e.to_string())
}

fn decode<T: for<'de> Deserialize<'de>>(peer: PeerId, b: &[u8]) -> Result<T, PeerError> {
    serde_ipld_dagcbor::from_slice(b).map_err(|e| PeerError::Remote {
        peer: peer.to_string(),
        message: format!("malformed answer: {e}"),
    })
}

/// An IPFS daemon's ID and addresses.
type IpfsIdent = (String, Vec<String>);

/// What this peer answers with: its tracker and IPFS daemon.
#[derive(Clone, Debug)]
pub(crate) struct Local {
    pub(crate) peername: String,
    pub(crate) tracker: Option<PeerTracker>,
    pub(crate) ipfs: Option<Arc<IpfsBackend>>,
    last_reconcile: Arc<tokio::sync::Mutex<Option<Instant>>>,
    ipfs_id: Arc<tokio::sync::Mutex<Option<(Instant, IpfsIdent)>>>,
}

impl Local {
    pub(crate) fn new(
        peername: String,
        tracker: Option<PeerTracker>,
        ipfs: Option<Arc<IpfsBackend>>,
    ) -> Self {
        Self {
            peername,
            tracker,
            ipfs,
            last_reconcile: Arc::default(),
            ipfs_id: Arc::default(),
        }
    }

    fn tracker(&self) -> Result<&PeerTracker, String> {
        self.tracker.as_ref().ok_or_else(|| NO_IPFS.to_string())
    }

    /// The IPFS daemon's ID and addresses, asked at most every
    /// [`IPFS_ID_REUSE`] (every status answer carries them).
    async fn ipfs_id(&self) -> IpfsIdent {
        let Some(c) = &self.ipfs else {
            return (String::new(), vec![]);
        };
        let mut cached = self.ipfs_id.lock().await;
        if let Some((at, id)) = &*cached
            && at.elapsed() < IPFS_ID_REUSE
        {
            return id.clone();
        }
        match tokio::time::timeout(PEER_TIMEOUT, c.id()).await {
            Ok(Ok(id)) => {
                let id = (
                    id.id,
                    id.addresses.iter().map(ToString::to_string).collect(),
                );
                *cached = Some((Instant::now(), id.clone()));
                id
            }
            _ => (String::new(), vec![]),
        }
    }

    async fn report(&self, items: Vec<Item>) -> Report {
        let (ipfs_peer_id, ipfs_addresses) = self.ipfs_id().await;
        Report {
            peername: self.peername.clone(),
            ipfs_peer_id,
            ipfs_addresses,
            items,
        }
    }

    async fn status(&self, cid: Cid) -> Result<Report, String> {
        let s = self.tracker()?.status(cid).await;
        Ok(self.report(vec![item(&s)]).await)
    }

    async fn status_many(&self, cids: Vec<Cid>) -> Result<Report, String> {
        let items = self.tracker()?.status_many(cids).await;
        Ok(self.report(items.iter().map(item).collect()).await)
    }

    /// Refreshes the tracker's view of IPFS; concurrent and back-to-back
    /// requests share one refresh.
    async fn reconcile(&self) -> Result<(), String> {
        let tracker = self.tracker()?;
        let mut last = self.last_reconcile.lock().await;
        if last.is_some_and(|t| t.elapsed() < RECONCILE_REUSE) {
            return Ok(());
        }
        tracker.reconcile().await.map_err(|e| e.to_string())?;
        *last = Some(Instant::now());
        Ok(())
    }

    async fn recover(&self, cid: Cid) -> Result<Report, String> {
        let s = self.tracker()?.recover(cid).await;
        Ok(self.report(vec![item(&s)]).await)
    }

    /// Recovers those of `cids` in an error state; reports only them.
    async fn recover_many(&self, cids: Vec<Cid>) -> Result<Report, String> {
        let tracker = self.tracker()?;
        let mut items = Vec::new();
        for s in tracker.status_many(cids).await {
            if needs_recover(s.status) {
                items.push(item(&tracker.recover(s.cid).await));
            }
        }
        Ok(self.report(items).await)
    }

    async fn repo_gc(&self) -> Vec<GcPart> {
        let Some(ipfs) = &self.ipfs else {
            return vec![GcPart {
                peername: self.peername.clone(),
                keys: vec![],
                error: NO_IPFS.into(),
            }];
        };
        let mut parts = vec![GcPart {
            peername: self.peername.clone(),
            ..GcPart::default()
        }];
        let mut removed = ipfs.repo_gc();
        while let Some(r) = removed.next().await {
            let last = parts.last_mut().expect("one part");
            match r {
                Ok(cid) => last.keys.push((Some(cid), String::new())),
                Err(e) => {
                    last.error = e.to_string();
                    break;
                }
            }
            if last.keys.len() >= GC_FRAME_KEYS {
                parts.push(GcPart::default());
            }
        }
        parts
    }
}

fn needs_recover(s: TrackerStatus) -> bool {
    matches!(
        s,
        TrackerStatus::PinError | TrackerStatus::UnpinError | TrackerStatus::UnexpectedlyUnpinned
    )
}

/// Registers the `Tracker.*` and `IPFSConnector.RepoGC` methods. Reading
/// status is open (bounded work, nothing changes); recover and GC make the
/// IPFS daemon work, so only trusted peers may ask.
pub(crate) fn register(reg: &mut rpc::Registry, local: Local) {
    for (name, policy) in METHODS {
        let local = local.clone();
        let handler: Handler = Arc::new(move |_, args: Vec<u8>| {
            let local = local.clone();
            Box::pin(async move { local.answer(name, &args).await })
        });
        reg.register(name, policy, handler);
    }
}

/// The methods, with their policies.
const METHODS: [(&str, Policy); 6] = [
    ("Tracker.Status", Policy::Open),
    ("Tracker.StatusMany", Policy::Open),
    ("Tracker.Reconcile", Policy::Open),
    ("Tracker.Recover", Policy::Trusted),
    ("Tracker.RecoverMany", Policy::Trusted),
    ("IPFSConnector.RepoGC", Policy::Trusted),
];

impl Local {
    /// Answers one of [`METHODS`]: what a remote caller gets, and what this
    /// peer asks itself (one code path for both).
    async fn answer(&self, method: &str, args: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        fn arg<A: for<'de> Deserialize<'de>>(args: &[u8]) -> Result<A, String> {
            serde_ipld_dagcbor::from_slice(args).map_err(|e| format!("bad arguments: {e}"))
        }
        fn bounded(cids: Vec<Cid>) -> Result<Vec<Cid>, String> {
            if cids.len() > CHUNK {
                return Err(format!("at most {CHUNK} CIDs per call"));
            }
            Ok(cids)
        }
        match method {
            "Tracker.Status" => Ok(vec![cbor(&self.status(arg(args)?).await?)?]),
            "Tracker.StatusMany" => Ok(vec![cbor(&self.status_many(bounded(arg(args)?)?).await?)?]),
            "Tracker.Reconcile" => {
                arg::<()>(args)?;
                self.reconcile().await?;
                Ok(vec![])
            }
            "Tracker.Recover" => Ok(vec![cbor(&self.recover(arg(args)?).await?)?]),
            "Tracker.RecoverMany" => {
                Ok(vec![cbor(&self.recover_many(bounded(arg(args)?)?).await?)?])
            }
            "IPFSConnector.RepoGC" => {
                arg::<()>(args)?;
                self.repo_gc().await.iter().map(cbor).collect()
            }
            other => Err(format!("unknown method {other}")),
        }
    }
}

/// Sends entries to the API's stream; `false` once the reader has gone.
async fn emit(tx: &mpsc::Sender<Result<GlobalPinInfo, ApiError>>, gpi: GlobalPinInfo) -> bool {
    tx.send(Ok(gpi)).await.is_ok()
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed()
}

impl PeerHandle {
    /// Peers asked by a global request: live peers, self first.
    fn status_peers(&self, local: bool) -> Vec<PeerId> {
        let me = self.id();
        if local {
            return vec![me];
        }
        let mut peers = self.peers();
        peers.retain(|p| *p != me);
        peers.insert(0, me);
        peers
    }

    /// One RPC to `peer` returning a [`Report`] (self answers in process).
    async fn ask(
        &self,
        peer: PeerId,
        method: &'static str,
        args: Vec<u8>,
    ) -> Result<Report, String> {
        let answers = if peer == self.id() {
            self.status_local().answer(method, &args).await?
        } else {
            self.call(peer, method, args)
                .await
                .map_err(|e| e.to_string())?
        };
        let first = answers.first().ok_or("empty answer")?;
        decode(peer, first).map_err(|e| e.to_string())
    }

    /// Asks every peer in `peers` the same question at once and merges the
    /// answers per CID into `out`; a peer that fails is `cluster_error` for
    /// every CID of `cids`.
    async fn gather(
        &self,
        peers: &[PeerId],
        method: &'static str,
        args: Vec<u8>,
        cids: &[Cid],
        timeout: Duration,
        out: &mut BTreeMap<Cid, GlobalPinInfo>,
    ) {
        let answers = futures::future::join_all(peers.iter().map(|p| {
            let args = args.clone();
            async move {
                let r = tokio::time::timeout(timeout, self.ask(*p, method, args))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
                (*p, r)
            }
        }))
        .await;
        for (peer, answer) in answers {
            match answer {
                Ok(report) => {
                    for it in &report.items {
                        out.entry(it.cid)
                            .or_insert_with(|| GlobalPinInfo::new(it.cid))
                            .peer_map
                            .insert(peer.to_string(), short(&report, it));
                    }
                }
                Err(e) => {
                    for cid in cids {
                        out.entry(*cid)
                            .or_insert_with(|| GlobalPinInfo::new(*cid))
                            .peer_map
                            .insert(peer.to_string(), unreachable(&peer, &e));
                    }
                }
            }
        }
    }

    /// Fills name, allocations, origins, created and metadata from the pinset.
    fn describe(&self, gpi: &mut GlobalPinInfo) {
        if let Ok(Some(p)) = self.get(&gpi.cid) {
            gpi.name = p.options.name;
            gpi.allocations = p.allocations;
            gpi.origins = p.options.origins;
            gpi.created = p.timestamp;
            gpi.metadata = p.options.metadata;
        }
    }

    async fn one(&self, cid: Cid, local: bool, method: &'static str) -> GlobalPinInfo {
        let peers = self.status_peers(local);
        let mut out = BTreeMap::new();
        let args = serde_ipld_dagcbor::to_vec(&cid).unwrap_or_default();
        self.gather(&peers, method, args, &[cid], PEER_TIMEOUT, &mut out)
            .await;
        let mut gpi = out.remove(&cid).unwrap_or_else(|| GlobalPinInfo::new(cid));
        self.describe(&mut gpi);
        gpi
    }

    /// `GET /pins/{cid}`.
    pub(crate) async fn global_status(&self, cid: Cid, local: bool) -> GlobalPinInfo {
        self.one(cid, local, "Tracker.Status").await
    }

    /// `POST /pins/{cid}/recover`.
    pub(crate) async fn global_recover(&self, cid: Cid, local: bool) -> GlobalPinInfo {
        self.one(cid, local, "Tracker.Recover").await
    }

    /// `GET /pins`: the pinset in chunks (or `cids`), each chunk asked of
    /// every peer at once.
    pub(crate) fn global_status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        if local && cids.is_empty() {
            return self.local_status_all(filter);
        }
        self.chunked("Tracker.StatusMany", filter, local, cids, true)
    }

    /// `POST /pins/recover`: only entries some peer re-queued.
    pub(crate) fn global_recover_all(
        &self,
        local: bool,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        self.chunked(
            "Tracker.RecoverMany",
            TrackerStatusFilter::ALL,
            local,
            vec![],
            false,
        )
    }

    /// This peer's own status of the whole pinset, streamed by its tracker.
    fn local_status_all(
        &self,
        filter: TrackerStatusFilter,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        let Some(tracker) = self.status_local().tracker.clone() else {
            return futures::stream::once(async { Err(ApiError::internal(NO_IPFS)) }).boxed();
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let me = self.clone();
        tokio::spawn(async move {
            let report = me.status_local().report(vec![]).await;
            let mut statuses = tracker.status_all(filter);
            while let Some(s) = statuses.next().await {
                let s = match s {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(ApiError::internal(e.to_string()))).await;
                        return;
                    }
                };
                let mut gpi = GlobalPinInfo::new(s.cid);
                gpi.peer_map
                    .insert(me.id().to_string(), short(&report, &item(&s)));
                me.describe(&mut gpi);
                if gpi.name.is_empty() {
                    gpi.name = s.name.clone();
                }
                if !emit(&tx, gpi).await {
                    return;
                }
            }
        });
        receiver_stream(rx)
    }

    fn chunked(
        &self,
        method: &'static str,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
        every_cid: bool,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let me = self.clone();
        tokio::spawn(async move {
            let peers = me.status_peers(local);
            // Each peer refreshes its view of IPFS once, all at once; one
            // that can't is reported per CID by the chunk calls below.
            if method == "Tracker.StatusMany" && cids.is_empty() {
                futures::future::join_all(peers.iter().map(|p| async {
                    if *p == me.id() {
                        let _ = me.status_local().reconcile().await;
                    } else {
                        let _ = me
                            .call(*p, "Tracker.Reconcile", cbor(&()).unwrap_or_default())
                            .await;
                    }
                }))
                .await;
            }
            let mut source: Box<dyn Iterator<Item = Result<Cid, String>> + Send> =
                if cids.is_empty() {
                    Box::new(
                        me.replica()
                            .pins()
                            .map(|p| p.map(|p| p.cid).map_err(|e| e.to_string())),
                    )
                } else {
                    Box::new(cids.into_iter().map(Ok))
                };
            loop {
                let mut chunk = Vec::with_capacity(CHUNK);
                for next in source.by_ref() {
                    match next {
                        Ok(c) => chunk.push(c),
                        Err(e) => {
                            let _ = tx.send(Err(ApiError::internal(e))).await;
                            return;
                        }
                    }
                    if chunk.len() == CHUNK {
                        break;
                    }
                }
                if chunk.is_empty() {
                    return;
                }
                let mut out = BTreeMap::new();
                let args = serde_ipld_dagcbor::to_vec(&chunk).unwrap_or_default();
                me.gather(&peers, method, args, &chunk, rpc::CALL_TIMEOUT, &mut out)
                    .await;
                for cid in &chunk {
                    let Some(mut gpi) = out.remove(cid) else {
                        if every_cid {
                            let mut gpi = GlobalPinInfo::new(*cid);
                            me.describe(&mut gpi);
                            if filter.is_all() && !emit(&tx, gpi).await {
                                return;
                            }
                        }
                        continue;
                    };
                    if !gpi.matches(filter) {
                        continue;
                    }
                    me.describe(&mut gpi);
                    if !emit(&tx, gpi).await {
                        return;
                    }
                }
            }
        });
        receiver_stream(rx)
    }

    /// `POST /ipfs/gc`.
    pub(crate) async fn global_repo_gc(&self, local: bool) -> GlobalRepoGc {
        let peers = self.status_peers(local);
        let runs = futures::future::join_all(peers.iter().map(|p| async move {
            let parts: Result<Vec<GcPart>, String> = if *p == self.id() {
                Ok(self.status_local().repo_gc().await)
            } else {
                match self
                    .call(*p, "IPFSConnector.RepoGC", cbor(&()).unwrap_or_default())
                    .await
                {
                    Ok(frames) => frames
                        .iter()
                        .map(|f| decode::<GcPart>(*p, f).map_err(|e| e.to_string()))
                        .collect(),
                    Err(e) => Err(e.to_string()),
                }
            };
            (*p, parts)
        }))
        .await;
        let mut out = GlobalRepoGc::default();
        for (peer, parts) in runs {
            let mut gc = RepoGc {
                peer: peer.to_string(),
                peername: String::new(),
                keys: vec![],
                error: String::new(),
            };
            match parts {
                Ok(parts) => {
                    for part in parts {
                        if gc.peername.is_empty() {
                            gc.peername = part.peername;
                        }
                        gc.keys.extend(
                            part.keys
                                .into_iter()
                                .map(|(key, error)| IpfsRepoGc { key, error }),
                        );
                        if !part.error.is_empty() {
                            gc.error = part.error;
                        }
                    }
                }
                Err(e) => gc.error = e,
            }
            out.peer_map.insert(peer.to_string(), gc);
        }
        out
    }
}
