//! Test support: a fake `ClusterApi` with fixed fixtures and scripted
//! streams, a server on 127.0.0.1:0, and a raw HTTP/1.1 client over
//! `TcpStream` that decodes chunked bodies and trailers (it never sends
//! `TE: trailers`, like Go's client and curl).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::ApiError;
use api::server::{self, RestConfig};
use api::service::{AddFile, AddFileKind, ClusterApi};
use api::types::{
    AddParams, AddedOutput, Alert, Bandwidth, BandwidthStats, ConnectGraph, GlobalPinInfo,
    GlobalRepoGc, Id, IpfsId, IpfsRepoGc, Metric, Pin, PinInfoShort, PinOptions, PinTypeFilter,
    RepoGc, TrackerStatus, TrackerStatusFilter, Version,
};
use cid::Cid;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};

pub(crate) const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
pub(crate) const CID2: &str = "QmUaFyXjZUNaUwYF8rBtbJc7fEJ46aJXvgV8z2HHs6jvmJ";
pub(crate) const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
pub(crate) const PEER2: &str = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
pub(crate) const IPFS_PEER: &str = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq";
/// 2026-05-11T10:00:00Z.
pub(crate) const T0: u64 = 1_778_493_600;

pub(crate) fn cid() -> Cid {
    CID.parse().unwrap()
}

pub(crate) fn cid2() -> Cid {
    CID2.parse().unwrap()
}

pub(crate) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0)
}

/// The fixture pin: every field set to a value Go writes.
pub(crate) fn fixture_pin() -> Pin {
    let mut pin = Pin::new(
        cid(),
        PinOptions {
            replication_factor_min: -1,
            replication_factor_max: -1,
            name: "fixture".into(),
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
            ..PinOptions::default()
        },
    );
    pin.allocations = vec![PEER.to_string()];
    pin.timestamp = Some(t0());
    pin
}

pub(crate) const FIXTURE_PIN_JSON: &str = concat!(
    r#"{"replication_factor_min":-1,"replication_factor_max":-1,"name":"fixture","#,
    r#""mode":"recursive","shard_size":0,"user_allocations":null,"#,
    r#""expire_at":"0001-01-01T00:00:00Z","metadata":{"k":"v"},"pin_update":null,"#,
    r#""origins":[],"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","#,
    r#""type":"pin","allocations":["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"],"#,
    r#""max_depth":-1,"reference":null,"timestamp":"2026-05-11T10:00:00Z"}"#
);

pub(crate) fn fixture_id() -> Id {
    Id {
        id: PEER.into(),
        addresses: vec![format!("/ip4/127.0.0.1/tcp/9096/p2p/{PEER}")],
        cluster_peers: vec![PEER.into(), PEER2.into()],
        cluster_peers_addresses: vec![],
        version: "1.1.6".into(),
        commit: "".into(),
        rpc_protocol_version: "/ipfscluster/1.0/rpc".into(),
        error: "".into(),
        ipfs: IpfsId {
            id: IPFS_PEER.into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            error: "".into(),
        },
        peername: "peer-a".into(),
    }
}

pub(crate) const FIXTURE_ID_JSON: &str = concat!(
    r#"{"id":"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","#,
    r#""addresses":["/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"],"#,
    r#""cluster_peers":["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"],"#,
    r#""cluster_peers_addresses":[],"version":"1.1.6","commit":"","#,
    r#""rpc_protocol_version":"/ipfscluster/1.0/rpc","error":"","#,
    r#""ipfs":{"id":"12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq","addresses":["/ip4/127.0.0.1/tcp/4001"],"error":""},"#,
    r#""peername":"peer-a"}"#
);

pub(crate) fn fixture_status(cid: Cid, status: TrackerStatus) -> GlobalPinInfo {
    let mut g = GlobalPinInfo::new(cid);
    g.name = "fixture".into();
    g.allocations = vec![PEER.into()];
    g.created = Some(t0());
    g.peer_map.insert(
        PEER.into(),
        PinInfoShort {
            peername: "peer-a".into(),
            ipfs_peer_id: IPFS_PEER.into(),
            ipfs_peer_addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            status,
            timestamp: Some(t0() + Duration::from_millis(500)),
            error: "".into(),
            attempt_count: 0,
            priority_pin: false,
        },
    );
    g.peer_map.insert(
        PEER2.into(),
        PinInfoShort {
            peername: "peer-b".into(),
            status: TrackerStatus::PinError,
            timestamp: Some(t0()),
            error: "context deadline exceeded".into(),
            attempt_count: 3,
            priority_pin: true,
            ..PinInfoShort::default()
        },
    );
    g
}

pub(crate) const FIXTURE_STATUS_JSON: &str = concat!(
    r#"{"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","name":"fixture","#,
    r#""allocations":["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"],"origins":[],"#,
    r#""created":"2026-05-11T10:00:00Z","metadata":null,"peer_map":{"#,
    r#""12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA":{"peername":"peer-a","#,
    r#""ipfs_peer_id":"12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq","#,
    r#""ipfs_peer_addresses":["/ip4/127.0.0.1/tcp/4001"],"status":"pinned","#,
    r#""timestamp":"2026-05-11T10:00:00.5Z","error":"","attempt_count":0,"priority_pin":false},"#,
    r#""QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N":{"peername":"peer-b","status":"pin_error","#,
    r#""timestamp":"2026-05-11T10:00:00Z","error":"context deadline exceeded","attempt_count":3,"#,
    r#""priority_pin":true}}}"#
);

/// How a fake stream behaves.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// The fixture items.
    Fixture,
    /// No items.
    Empty,
    /// An error before any item.
    FailFirst(String),
    /// `n` items then an error.
    FailAfter(usize, String),
    /// `n` generated pins, made one at a time.
    Generated(usize),
    /// One item, then wait for the test's signal, then one more.
    Gated,
}

/// A recorded call: the method and its arguments as text.
pub(crate) type Calls = Arc<Mutex<Vec<String>>>;

#[derive(Debug)]
pub(crate) struct Fake {
    pub(crate) plan: Mutex<Plan>,
    pub(crate) calls: Calls,
    /// Released by the test in `Plan::Gated`.
    pub(crate) gate: Arc<Notify>,
    /// Told when the gated stream has produced its first item.
    pub(crate) first_sent: Mutex<Option<oneshot::Sender<()>>>,
}

impl Default for Fake {
    fn default() -> Self {
        Self {
            plan: Mutex::new(Plan::Fixture),
            calls: Arc::default(),
            gate: Arc::new(Notify::new()),
            first_sent: Mutex::new(None),
        }
    }
}

/// A pin made from a number (its CID is the sha2-256 identity of `i`).
pub(crate) fn generated_pin(i: usize) -> Pin {
    use multihash_codetable::{Code, MultihashDigest};
    let mh = Code::Sha2_256.digest(&i.to_le_bytes());
    let mut pin = Pin::new(Cid::new_v1(0x55, mh), PinOptions::default());
    pin.allocations = vec![PEER.to_string()];
    pin.options.name = format!("pin-{i}");
    pin.timestamp = Some(t0());
    pin
}

impl Fake {
    pub(crate) fn with_plan(plan: Plan) -> Self {
        let f = Self::default();
        *f.plan.lock().unwrap() = plan;
        f
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn plan(&self) -> Plan {
        self.plan.lock().unwrap().clone()
    }

    /// A stream of `fixture` items following the plan.
    fn scripted<T: Clone + Send + 'static>(
        &self,
        fixture: Vec<T>,
        make: fn(usize) -> T,
    ) -> BoxStream<'static, Result<T, ApiError>> {
        match self.plan() {
            Plan::Fixture => stream::iter(fixture.into_iter().map(Ok)).boxed(),
            Plan::Empty => stream::empty().boxed(),
            Plan::FailFirst(msg) => stream::iter([Err(ApiError::internal(msg))]).boxed(),
            Plan::FailAfter(n, msg) => stream::iter((0..n).map(move |i| Ok(make(i))))
                .chain(stream::iter([Err(ApiError::internal(msg))]))
                .boxed(),
            Plan::Generated(n) => stream::iter((0..n).map(move |i| Ok(make(i)))).boxed(),
            Plan::Gated => {
                let gate = self.gate.clone();
                let told = self.first_sent.lock().unwrap().take();
                stream::iter([Ok(make(0))])
                    .chain(stream::once(async move {
                        if let Some(t) = told {
                            let _ = t.send(());
                        }
                        gate.notified().await;
                        Ok(make(1))
                    }))
                    .boxed()
            }
        }
    }
}

fn generated_status(i: usize) -> GlobalPinInfo {
    fixture_status(generated_pin(i).cid, TrackerStatus::Pinned)
}

fn generated_id(i: usize) -> Id {
    Id {
        peername: format!("peer-{i}"),
        ..fixture_id()
    }
}

/// The raw CIDv1 of `data` (what the fake add reports for a file).
pub(crate) fn raw_cid(data: &[u8]) -> Cid {
    use multihash_codetable::{Code, MultihashDigest};
    Cid::new_v1(0x55, Code::Sha2_256.digest(data))
}

/// The fake `add`: reads the upload entry by entry and records it as
/// `add <query> | <path>=<content>, <path>/ ...`; answers one output per
/// file (`raw_cid` of its bytes, size = length), then `""` for the upload
/// when wrapping. A pin name `fail` makes it fail after the first output.
fn fake_add(
    calls: Calls,
    params: AddParams,
    files: BoxStream<'static, Result<AddFile, ApiError>>,
) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
    let query: Vec<String> = params
        .to_query()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let state = (files, Vec::<String>::new(), Vec::<u8>::new(), false);
    let fail = params.pin_options.name == "fail";
    let wrap = params.wrap_with_directory;
    stream::unfold(Some(state), move |state| {
        let calls = calls.clone();
        let query = query.clone();
        async move {
            let (mut files, mut seen, mut all, sent) = state?;
            if fail && sent {
                return Some((Err(ApiError::internal("boom: add failed")), None));
            }
            loop {
                match files.next().await {
                    None => {
                        calls.lock().unwrap().push(format!(
                            "add {} | {}",
                            query.join("&"),
                            seen.join(", ")
                        ));
                        if wrap && !seen.is_empty() {
                            let root = AddedOutput {
                                name: String::new(),
                                cid: raw_cid(&all),
                                bytes: 0,
                                size: all.len() as u64,
                                allocations: vec![],
                            };
                            seen.clear();
                            return Some((Ok(root), None));
                        }
                        return None;
                    }
                    Some(Err(e)) => return Some((Err(e), None)),
                    Some(Ok(AddFile { path, kind })) => match kind {
                        AddFileKind::Directory => seen.push(format!("{path}/")),
                        AddFileKind::File(mut data) => {
                            let mut content = Vec::new();
                            while let Some(chunk) = data.next().await {
                                match chunk {
                                    Ok(c) => content.extend_from_slice(&c),
                                    Err(e) => return Some((Err(e), None)),
                                }
                            }
                            seen.push(format!("{path}={}", String::from_utf8_lossy(&content)));
                            all.extend_from_slice(&content);
                            let out = AddedOutput {
                                name: path,
                                cid: raw_cid(&content),
                                bytes: 0,
                                size: content.len() as u64,
                                allocations: vec![PEER.to_string()],
                            };
                            return Some((Ok(out), Some((files, seen, all, true))));
                        }
                    },
                }
            }
        }
    })
    .boxed()
}

impl ClusterApi for Fake {
    fn add(
        &self,
        params: AddParams,
        files: BoxStream<'static, Result<AddFile, ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
        fake_add(self.calls.clone(), params, files)
    }

    async fn id(&self) -> Result<Id, ApiError> {
        self.record("id".into());
        Ok(fixture_id())
    }

    async fn version(&self) -> Result<Version, ApiError> {
        Ok(Version {
            version: "1.1.6".into(),
        })
    }

    fn peers(&self) -> BoxStream<'static, Result<Id, ApiError>> {
        self.record("peers".into());
        let mut other = fixture_id();
        other.id = PEER2.into();
        other.peername = "peer-b".into();
        other.error = "dial backoff".into();
        self.scripted(vec![fixture_id(), other], generated_id)
    }

    async fn peer_rm(&self, peer: String) -> Result<(), ApiError> {
        self.record(format!("peer_rm {peer}"));
        if peer == PEER2 {
            return Err(ApiError::internal("cannot remove peers in crdt mode"));
        }
        Ok(())
    }

    fn allocations(&self, filter: PinTypeFilter) -> BoxStream<'static, Result<Pin, ApiError>> {
        self.record(format!("allocations {filter}"));
        let mut meta = fixture_pin();
        meta.cid = cid2();
        meta.pin_type = api::types::PinType::MetaPin;
        meta.reference = Some(cid());
        // Deliberately unfiltered: the server must filter.
        self.scripted(vec![fixture_pin(), meta], generated_pin)
    }

    async fn allocation(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.record(format!("allocation {cid}"));
        if cid.to_string() == CID {
            Ok(fixture_pin())
        } else {
            Err(ApiError::not_found("pin is not part of the pinset"))
        }
    }

    async fn pin(&self, cid: Cid, options: PinOptions) -> Result<Pin, ApiError> {
        self.record(format!(
            "pin {cid} {}",
            serde_json::to_string(&options).unwrap()
        ));
        if options.name == "full" {
            return Err(ApiError::too_many_requests(
                "the write queue is full: try again later",
            ));
        }
        let mut pin = Pin::new(cid, options);
        pin.allocations = vec![PEER.into()];
        pin.timestamp = Some(t0());
        Ok(pin)
    }

    async fn pin_path(&self, path: String, options: PinOptions) -> Result<Pin, ApiError> {
        self.record(format!(
            "pin_path {path} {}",
            serde_json::to_string(&options).unwrap()
        ));
        let mut pin = Pin::new(cid(), options);
        pin.timestamp = Some(t0());
        Ok(pin)
    }

    async fn unpin(&self, cid: Cid) -> Result<Pin, ApiError> {
        self.record(format!("unpin {cid}"));
        if cid.to_string() == CID {
            Ok(fixture_pin())
        } else {
            Err(ApiError::not_found("pin is not part of the pinset"))
        }
    }

    async fn unpin_path(&self, path: String) -> Result<Pin, ApiError> {
        self.record(format!("unpin_path {path}"));
        Ok(fixture_pin())
    }

    async fn status(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        self.record(format!("status {cid} {local}"));
        Ok(fixture_status(cid, TrackerStatus::Pinned))
    }

    fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        let list: Vec<String> = cids.iter().map(Cid::to_string).collect();
        self.record(format!(
            "status_all [{filter}] {local} [{}]",
            list.join(",")
        ));
        if !cids.is_empty() {
            return stream::iter(
                cids.into_iter()
                    .map(|c| Ok(fixture_status(c, TrackerStatus::Pinned))),
            )
            .boxed();
        }
        let mut pinning = fixture_status(cid2(), TrackerStatus::Pinning);
        pinning.peer_map.remove(PEER2);
        // Deliberately unfiltered: the server must filter.
        self.scripted(
            vec![fixture_status(cid(), TrackerStatus::Pinned), pinning],
            generated_status,
        )
    }

    async fn recover(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ApiError> {
        self.record(format!("recover {cid} {local}"));
        Ok(fixture_status(cid, TrackerStatus::PinQueued))
    }

    fn recover_all(&self, local: bool) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>> {
        self.record(format!("recover_all {local}"));
        self.scripted(
            vec![fixture_status(cid(), TrackerStatus::PinQueued)],
            generated_status,
        )
    }

    async fn repo_gc(&self, local: bool) -> Result<GlobalRepoGc, ApiError> {
        self.record(format!("repo_gc {local}"));
        Ok(GlobalRepoGc {
            peer_map: BTreeMap::from([(
                PEER.to_string(),
                RepoGc {
                    peer: PEER.into(),
                    peername: "peer-a".into(),
                    keys: vec![
                        IpfsRepoGc {
                            key: Some(cid()),
                            error: "".into(),
                        },
                        IpfsRepoGc {
                            key: None,
                            error: "block is pinned".into(),
                        },
                    ],
                    error: "".into(),
                },
            )]),
        })
    }

    async fn metric_names(&self) -> Result<Vec<String>, ApiError> {
        Ok(vec!["freespace".into(), "ping".into()])
    }

    async fn metrics(&self, name: String) -> Result<Vec<Metric>, ApiError> {
        self.record(format!("metrics {name}"));
        Ok(vec![fixture_metric(&name)])
    }

    async fn alerts(&self) -> Result<Vec<Alert>, ApiError> {
        Ok(vec![Alert {
            metric: fixture_metric("ping"),
            triggered_at: Some(t0()),
        }])
    }

    async fn health_graph(&self) -> Result<ConnectGraph, ApiError> {
        Ok(ConnectGraph {
            cluster_id: PEER.into(),
            id_to_peername: BTreeMap::from([(PEER.into(), "peer-a".into())]),
            ipfs_links: BTreeMap::from([(IPFS_PEER.into(), vec![])]),
            cluster_links: BTreeMap::from([(PEER.into(), vec![PEER2.into()])]),
            cluster_trust_links: BTreeMap::from([(PEER.into(), true)]),
            cluster_to_ipfs: BTreeMap::from([(PEER.into(), IPFS_PEER.into())]),
        })
    }

    async fn bandwidth(&self) -> Result<BandwidthStats, ApiError> {
        Ok(BTreeMap::from([
            (
                "/ipfscluster/1.0/rpc".to_string(),
                Bandwidth {
                    total_in: 1024,
                    total_out: 2048,
                    rate_in: 0.0,
                    rate_out: 12.5,
                },
            ),
            (
                "/meshsub/1.1.0".to_string(),
                Bandwidth {
                    total_in: 1,
                    total_out: 0,
                    rate_in: 3.0,
                    rate_out: 0.25,
                },
            ),
        ]))
    }
}

pub(crate) fn fixture_metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        peer: PEER.into(),
        value: "1024".into(),
        expire: 1_778_493_630_000_000_000,
        valid: true,
        weight: 0,
        partitionable: false,
        received_at: 1_778_493_600_000_000_000,
    }
}

/// A server with `fake` behind it.
#[derive(Debug)]
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) fake: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub(crate) async fn start(fake: Fake) -> Self {
        Self::start_with(fake, RestConfig::default()).await
    }

    pub(crate) async fn start_with(fake: Fake, cfg: RestConfig) -> Self {
        let cfg = RestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..cfg
        };
        let fake = Arc::new(fake);
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr, task) = server::serve(fake.clone(), cfg, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        Self {
            addr,
            fake,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.fake.calls.lock().unwrap().clone()
    }

    pub(crate) fn client(&self) -> api::Client {
        api::Client::new(api::ClientConfig {
            host: format!("/ip4/127.0.0.1/tcp/{}", self.addr.port()),
            ..api::ClientConfig::default()
        })
        .unwrap()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("server stops")
                .unwrap();
        }
    }
}

/// An HTTP/1.1 answer read byte by byte.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub(crate) status: u16,
    /// Header names lowercased, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) chunked: bool,
    /// Chunk sizes as they arrived.
    pub(crate) chunks: Vec<usize>,
    pub(crate) trailers: Vec<(String, String)>,
}

impl Raw {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A raw HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct RawConn {
    reader: BufReader<TcpStream>,
}

impl RawConn {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self {
            reader: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    /// Sends a request: `head_lines` are extra header lines.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        target: &str,
        head_lines: &[&str],
        body: &[u8],
    ) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for l in head_lines {
            req.push_str(l);
            req.push_str("\r\n");
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(req.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
    }

    /// Writes bytes as they are (a request in pieces).
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        let stream = self.reader.get_mut();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).await.unwrap();
        assert!(line.ends_with("\r\n"), "line not CRLF-terminated: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Reads the status line and headers.
    pub(crate) async fn head(&mut self) -> Raw {
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut raw = Raw {
            status,
            ..Raw::default()
        };
        loop {
            let l = self.line().await;
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            raw.headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        raw.chunked = raw
            .header("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"));
        raw
    }

    /// Reads one chunk of a chunked body: `None` after the last chunk (its
    /// trailers go into `raw`).
    pub(crate) async fn chunk(&mut self, raw: &mut Raw) -> Option<Vec<u8>> {
        let size_line = self.line().await;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            loop {
                let l = self.line().await;
                if l.is_empty() {
                    return None;
                }
                let (k, v) = l.split_once(':').unwrap();
                raw.trailers
                    .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut data = vec![0u8; size + 2];
        self.reader.read_exact(&mut data).await.unwrap();
        assert_eq!(&data[size..], b"\r\n");
        data.truncate(size);
        raw.chunks.push(size);
        raw.body.extend_from_slice(&data);
        Some(data)
    }

    /// Reads a whole answer (to a request that was not HEAD).
    pub(crate) async fn response(&mut self) -> Raw {
        let mut raw = self.head().await;
        if raw.chunked {
            while self.chunk(&mut raw).await.is_some() {}
        } else if let Some(len) = raw.header("content-length") {
            let mut body = vec![0u8; len.parse().unwrap()];
            self.reader.read_exact(&mut body).await.unwrap();
            raw.body = body;
        }
        raw
    }
}

/// One request on a fresh connection.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    head_lines: &[&str],
) -> Raw {
    request_body(addr, method, target, head_lines, b"").await
}

pub(crate) async fn request_body(
    addr: SocketAddr,
    method: &str,
    target: &str,
    head_lines: &[&str],
    body: &[u8],
) -> Raw {
    let mut conn = RawConn::connect(addr).await;
    conn.send(method, target, head_lines, body).await;
    tokio::time::timeout(Duration::from_secs(30), conn.response())
        .await
        .expect("answer within 30s")
}

/// `Authorization: Basic` for the test user.
pub(crate) fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Asserts an answer is Go's error body for `code` with `message`.
#[track_caller]
pub(crate) fn assert_error(raw: &Raw, code: u16, message_part: &str) {
    assert_eq!(
        raw.status,
        code,
        "status; body {}",
        String::from_utf8_lossy(&raw.body)
    );
    assert_eq!(raw.header("content-type"), Some("application/json"));
    let v = raw.json();
    assert_eq!(v["code"], code, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains(message_part),
        "{message:?} lacks {message_part:?}"
    );
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert!(
        raw.body.ends_with(b"}\n"),
        "Go's encoder ends bodies with a newline"
    );
}
