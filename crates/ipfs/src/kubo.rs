//! [`KuboConnector`]: [`IpfsConnector`] over Kubo's HTTP RPC API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::stream::{self, BoxStream, StreamExt};
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use multiaddr::{Multiaddr, Protocol};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::connector::{
    BlockStat, DagImport, IpfsConnector, IpfsId, IpfsPinType, PinLsFilter, PinMode, RepoStat,
};
use crate::{IpfsError, KuboConfig, multipart};

/// After more than this many consecutive failed requests, the connector
/// sends at most one request per second until one succeeds (Go's rule).
pub const RATE_LIMIT_AFTER_FAILURES: u32 = 10;

/// Largest whole answer read (a block is at most 2 MiB, or 4 MiB with
/// Kubo's `--allow-big-block`; everything else is small JSON).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Longest line of a streamed (NDJSON) answer (pin and ref lines are
/// about a hundred bytes).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most bytes of an error answer read for its message.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// Kubo's HTTP RPC API as an [`IpfsConnector`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct KuboConnector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    /// `http://host:port`.
    base: String,
    config: KuboConfig,
    /// Consecutive requests that got no answer.
    failures: AtomicU32,
    /// When the next request may go while rate limited.
    next_slot: Mutex<Instant>,
}

/// A request's query arguments.
type Query<'a> = &'a [(&'a str, &'a str)];

impl KuboConnector {
    /// A connector for the RPC API at `config.node_multiaddress`.
    ///
    /// # Errors
    /// [`IpfsError::Config`] when the address is not
    /// `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`.
    pub fn new(config: KuboConfig) -> Result<Self, IpfsError> {
        let base = base_url(&config.node_multiaddress)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                failures: AtomicU32::new(0),
                next_slot: Mutex::new(Instant::now()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KuboConfig {
        &self.inner.config
    }

    /// Consecutive requests that got no answer from the daemon.
    pub fn consecutive_failures(&self) -> u32 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Whether requests are rate limited to one per second (more than
    /// [`RATE_LIMIT_AFTER_FAILURES`] consecutive failures).
    pub fn is_rate_limited(&self) -> bool {
        self.consecutive_failures() > RATE_LIMIT_AFTER_FAILURES
    }
}

/// `http://host:port` of an RPC multiaddress.
fn base_url(addr: &Multiaddr) -> Result<String, IpfsError> {
    let bad = || {
        IpfsError::Config(format!(
            "node_multiaddress {addr} is not /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>"
        ))
    };
    let mut it = addr.iter();
    let host = match it.next().ok_or_else(bad)? {
        Protocol::Ip4(ip) => ip.to_string(),
        Protocol::Ip6(ip) => format!("[{ip}]"),
        Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => h.to_string(),
        _ => return Err(bad()),
    };
    let Some(Protocol::Tcp(port)) = it.next() else {
        return Err(bad());
    };
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(format!("http://{host}:{port}"))
}

/// Kubo's error body.
#[derive(Deserialize)]
struct KuboErrorBody {
    #[serde(rename = "Message")]
    message: String,
}

impl Inner {
    /// Waits for a slot when rate limited.
    async fn rate_limit(&self) {
        if self.failures.load(Ordering::Relaxed) <= RATE_LIMIT_AFTER_FAILURES {
            return;
        }
        let mut next = self.next_slot.lock().await;
        sleep_until(*next).await;
        *next = Instant::now() + Duration::from_secs(1);
    }

    /// Sends `POST /api/v0/<endpoint>?<query>` and returns the answer once
    /// its headers are in, within `limit`. A non-200 answer is read and
    /// returned as [`IpfsError::Ipfs`].
    async fn post(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
        limit: Duration,
    ) -> Result<hyper::Response<Incoming>, IpfsError> {
        self.rate_limit().await;
        let mut uri = format!("{}/api/v0/{endpoint}", self.base);
        if !query.is_empty() {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            uri.push('?');
            uri.push_str(&ser.finish());
        }
        let mut req = Request::builder().method(Method::POST).uri(&uri);
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| IpfsError::InvalidArgument(format!("{uri}: {e}")))?;
        let resp = match timeout(limit, self.http.request(req)).await {
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(IpfsError::Timeout {
                    endpoint,
                    timeout: limit,
                });
            }
            Ok(Err(e)) => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n == RATE_LIMIT_AFTER_FAILURES + 1 {
                    tracing::warn!(
                        addr = %self.base,
                        "{n} consecutive failed requests to IPFS: rate limiting to 1 request/s"
                    );
                }
                return Err(IpfsError::Unreachable {
                    addr: self.base.clone(),
                    endpoint,
                    reason: error_chain(&e),
                });
            }
            Ok(Ok(resp)) => resp,
        };
        self.failures.store(0, Ordering::Relaxed);
        let status = resp.status();
        if status == StatusCode::OK {
            return Ok(resp);
        }
        let body = timeout(
            limit,
            http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BYTES).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map_or_else(
            || Bytes::from(format!("(no error message within {MAX_ERROR_BYTES} bytes)")),
            |b| b.to_bytes(),
        );
        let message = serde_json::from_slice::<KuboErrorBody>(&body)
            .map(|b| b.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        Err(IpfsError::Ipfs {
            endpoint,
            status: status.as_u16(),
            message,
        })
    }

    /// A call answering one JSON object, within `ipfs_request_timeout`.
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
    ) -> Result<T, IpfsError> {
        self.call_within(endpoint, query, body, self.config.ipfs_request_timeout)
            .await
    }

    async fn call_within<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
        limit: Duration,
    ) -> Result<T, IpfsError> {
        let deadline = Instant::now() + limit;
        let bytes = self
            .call_bytes(endpoint, query, body, deadline, limit)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| IpfsError::Protocol {
            endpoint,
            reason: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
        })
    }

    /// A call's whole body, within the deadline.
    async fn call_bytes(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Bytes, IpfsError> {
        let timed_out = || IpfsError::Timeout {
            endpoint,
            timeout: limit,
        };
        let resp = timeout_at(deadline, self.post(endpoint, query, body, limit))
            .await
            .map_err(|_| timed_out())??;
        let mut body = resp.into_body();
        let mut out = Vec::new();
        // Read frame by frame so that an error trailer is seen.
        loop {
            match timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(body_error(endpoint, &e)),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if out.len() + data.len() > MAX_ANSWER_BYTES {
                            return Err(IpfsError::Protocol {
                                endpoint,
                                reason: format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
                            });
                        }
                        out.extend_from_slice(&data);
                    }
                    Err(frame) => {
                        if let Some(err) = frame.trailers_ref().and_then(stream_error) {
                            return Err(IpfsError::Ipfs {
                                endpoint,
                                status: 200,
                                message: err,
                            });
                        }
                    }
                },
            }
        }
        Ok(out.into())
    }

    /// A streaming call: its NDJSON lines, parsed, the whole stream within
    /// `limit`.
    fn stream<T, U, F>(
        self: &Arc<Self>,
        endpoint: &'static str,
        query: Vec<(&'static str, String)>,
        limit: Duration,
        mut map: F,
    ) -> BoxStream<'static, Result<U, IpfsError>>
    where
        T: for<'de> Deserialize<'de> + Send + 'static,
        U: Send + 'static,
        F: FnMut(T) -> Result<Option<U>, IpfsError> + Send + 'static,
    {
        let inner = Arc::clone(self);
        let start = async move {
            let deadline = Instant::now() + limit;
            let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let resp = timeout_at(deadline, inner.post(endpoint, &q, None, limit))
                .await
                .map_err(|_| IpfsError::Timeout {
                    endpoint,
                    timeout: limit,
                })??;
            let mut lines = Lines::new(resp.into_body(), endpoint);
            lines.deadline = Some((deadline, limit));
            Ok::<_, IpfsError>(lines)
        };
        stream::once(start)
            .flat_map(move |lines| match lines {
                Err(e) => stream::iter([Err(e)]).boxed(),
                Ok(lines) => stream::unfold(Some(lines), |state| async move {
                    let mut lines = state?;
                    let item = lines.next_line().await?;
                    let end = item.is_err();
                    Some((item, (!end).then_some(lines)))
                })
                .boxed(),
            })
            .filter_map(move |line| {
                let item = line.and_then(|line| {
                    let value: T =
                        serde_json::from_slice(&line).map_err(|e| IpfsError::Protocol {
                            endpoint,
                            reason: format!("{e}: {}", String::from_utf8_lossy(&line)),
                        })?;
                    map(value)
                });
                futures::future::ready(item.transpose())
            })
            .scan(false, |failed, item| {
                // End after the first error.
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            })
            .boxed()
    }
}

/// The `X-Stream-Error` trailer, when set.
fn stream_error(trailers: &http::HeaderMap) -> Option<String> {
    trailers
        .get("X-Stream-Error")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|s| !s.is_empty())
}

/// An error and its sources, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A failure reading an answer's body.
fn body_error(endpoint: &'static str, e: &hyper::Error) -> IpfsError {
    IpfsError::Protocol {
        endpoint,
        reason: format!("reading the answer: {}", error_chain(e)),
    }
}

/// A response body read as newline-delimited lines.
struct Lines {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
    endpoint: &'static str,
    /// The deadline of the whole stream and the timeout it comes from.
    deadline: Option<(Instant, Duration)>,
}

impl Lines {
    fn new(body: Incoming, endpoint: &'static str) -> Self {
        Self {
            body,
            buf: Vec::new(),
            done: false,
            endpoint,
            deadline: None,
        }
    }

    /// The next non-empty line, `None` at the end.
    async fn next_line(&mut self) -> Option<Result<Vec<u8>, IpfsError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(Ok(line));
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                return Some(Ok(std::mem::take(&mut self.buf)));
            }
            let frame = match self.deadline {
                Some((deadline, limit)) => match timeout_at(deadline, self.body.frame()).await {
                    Ok(frame) => frame,
                    Err(_) => {
                        self.done = true;
                        self.buf.clear();
                        return Some(Err(IpfsError::Timeout {
                            endpoint: self.endpoint,
                            timeout: limit,
                        }));
                    }
                },
                None => self.body.frame().await,
            };
            match frame {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(body_error(self.endpoint, &e)));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        self.buf.extend_from_slice(&data);
                        if self.buf.len() > MAX_LINE_BYTES && !self.buf.contains(&b'\n') {
                            self.done = true;
                            self.buf.clear();
                            return Some(Err(IpfsError::Protocol {
                                endpoint: self.endpoint,
                                reason: format!("a line longer than {MAX_LINE_BYTES} bytes"),
                            }));
                        }
                    }
                    Err(frame) => {
                        if let Some(message) = frame.trailers_ref().and_then(stream_error) {
                            self.done = true;
                            self.buf.clear();
                            return Some(Err(IpfsError::Ipfs {
                                endpoint: self.endpoint,
                                status: 200,
                                message,
                            }));
                        }
                    }
                },
            }
        }
    }
}

fn parse_cid(endpoint: &'static str, s: &str) -> Result<Cid, IpfsError> {
    s.parse().map_err(|e| IpfsError::Protocol {
        endpoint,
        reason: format!("{s:?} is not a CID: {e}"),
    })
}

/// Kubo's name of a multicodec, for `block/put?cid-codec=`.
fn codec_name(codec: u64) -> Result<&'static str, IpfsError> {
    Ok(match codec {
        0x55 => "raw",
        0x70 => "dag-pb",
        0x71 => "dag-cbor",
        0x0129 => "dag-json",
        0x51 => "cbor",
        0x0200 => "json",
        0x78 => "git-raw",
        0x0202 => "car",
        0x0201 => "libp2p-key",
        _ => {
            return Err(IpfsError::InvalidArgument(format!(
                "block codec 0x{codec:x} is not one Kubo's block/put takes"
            )));
        }
    })
}

/// `true` for Kubo's answers to removing something not pinned.
fn is_not_pinned(message: &str) -> bool {
    message.contains("not pinned")
}

#[derive(Deserialize)]
struct IdOut {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Addresses", default)]
    addresses: Option<Vec<String>>,
    #[serde(rename = "AgentVersion", default)]
    agent_version: String,
}

#[derive(Deserialize)]
struct PinAddOut {
    #[serde(rename = "Progress", default)]
    progress: Option<u64>,
    #[serde(rename = "Pins", default)]
    pins: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct PinLsLine {
    #[serde(rename = "Cid")]
    cid: String,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Deserialize)]
struct BlockOut {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size")]
    size: u64,
}

#[derive(Deserialize)]
struct Link {
    #[serde(rename = "/")]
    cid: String,
}

#[derive(Deserialize)]
struct ImportLine {
    #[serde(rename = "Root", default)]
    root: Option<ImportRoot>,
    #[serde(rename = "Stats", default)]
    stats: Option<ImportStats>,
}

#[derive(Deserialize)]
struct ImportStats {
    #[serde(rename = "BlockCount")]
    blocks: u64,
    #[serde(rename = "BlockBytesCount")]
    bytes: u64,
}

#[derive(Deserialize)]
struct ImportRoot {
    #[serde(rename = "Cid")]
    cid: Link,
    #[serde(rename = "PinErrorMsg", default)]
    pin_error: String,
}

#[derive(Deserialize)]
struct RepoStatOut {
    #[serde(rename = "RepoSize")]
    repo_size: u64,
    #[serde(rename = "StorageMax")]
    storage_max: u64,
}

#[derive(Deserialize)]
struct GcLine {
    #[serde(rename = "Key", default)]
    key: Option<Link>,
    #[serde(rename = "Error", default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ResolveOut {
    #[serde(rename = "Path")]
    path: String,
}

/// The CID an `/ipfs/<cid>[/...]` path (or a bare CID) starts with.
fn path_cid(endpoint: &'static str, path: &str) -> Result<Cid, IpfsError> {
    let rest = path
        .strip_prefix("/ipfs/")
        .or_else(|| path.strip_prefix("/ipld/"))
        .unwrap_or(path);
    parse_cid(endpoint, rest.split('/').next().unwrap_or_default())
}

impl KuboConnector {
    /// `pin/add?progress=true`, cancelled when the count stops growing for
    /// `pin_timeout`.
    async fn pin_add(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        const EP: &str = "pin/add";
        let no_progress = self.inner.config.pin_timeout;
        let arg = cid.to_string();
        let recursive = mode.is_recursive().to_string();
        let query = [
            ("arg", arg.as_str()),
            ("recursive", recursive.as_str()),
            ("progress", "true"),
        ];
        let timed_out = |progress| IpfsError::PinTimeout {
            cid,
            timeout: no_progress,
            progress,
        };
        let resp = timeout(no_progress, self.inner.post(EP, &query, None, no_progress))
            .await
            .map_err(|_| timed_out(0))?
            .map_err(|e| match e {
                IpfsError::Timeout { .. } => timed_out(0),
                e => e,
            })?;
        let mut lines = Lines::new(resp.into_body(), EP);
        let mut progress = 0;
        lines.deadline = Some((Instant::now() + no_progress, no_progress));
        loop {
            let line = match lines.next_line().await {
                None => {
                    return Err(IpfsError::Protocol {
                        endpoint: EP,
                        reason: format!("the answer ended before {cid} was pinned"),
                    });
                }
                Some(Err(IpfsError::Timeout { .. })) => return Err(timed_out(progress)),
                Some(line) => line?,
            };
            let out: PinAddOut =
                serde_json::from_slice(&line).map_err(|e| IpfsError::Protocol {
                    endpoint: EP,
                    reason: format!("{e}: {}", String::from_utf8_lossy(&line)),
                })?;
            if out.pins.is_some() {
                tracing::debug!(%cid, progress, "pinned");
                return Ok(());
            }
            if let Some(n) = out.progress
                && n > progress
            {
                progress = n;
                lines.deadline = Some((Instant::now() + no_progress, no_progress));
            }
        }
    }
}

impl IpfsConnector for KuboConnector {
    async fn id(&self) -> Result<IpfsId, IpfsError> {
        let out: IdOut = self.inner.call("id", &[], None).await?;
        Ok(IpfsId {
            id: out.id,
            addresses: out
                .addresses
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            agent_version: out.agent_version,
        })
    }

    async fn pin(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        // As Go: nothing to do when already pinned that way.
        let filter = match mode {
            PinMode::Recursive => PinLsFilter::Recursive,
            PinMode::Direct => PinLsFilter::Direct,
        };
        if self.pin_ls_cid(cid, filter).await?.is_some() {
            return Ok(());
        }
        match self.pin_add(cid, mode).await {
            // A direct pin of something pinned recursively: pinned already.
            Err(IpfsError::Ipfs { message, .. })
                if mode == PinMode::Direct && message.contains("already pinned recursively") =>
            {
                Ok(())
            }
            r => r,
        }
    }

    async fn unpin(&self, cid: Cid) -> Result<(), IpfsError> {
        if self.inner.config.unpin_disable {
            return Err(IpfsError::InvalidArgument(
                "unpinning is disabled (ipfshttp.unpin_disable)".into(),
            ));
        }
        let arg = cid.to_string();
        let limit = self.inner.config.unpin_timeout;
        match self
            .inner
            .call_within::<Value>(
                "pin/rm",
                &[("arg", &arg), ("recursive", "true")],
                None,
                limit,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(IpfsError::Ipfs { message, .. }) if is_not_pinned(&message) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn pin_ls(
        &self,
        filter: PinLsFilter,
    ) -> BoxStream<'static, Result<(Cid, IpfsPinType), IpfsError>> {
        const EP: &str = "pin/ls";
        self.inner.stream(
            EP,
            vec![
                ("type", filter.as_str().to_string()),
                ("stream", "true".to_string()),
            ],
            self.inner.config.ipfs_request_timeout,
            |line: PinLsLine| {
                let cid = parse_cid(EP, &line.cid)?;
                let kind =
                    IpfsPinType::from_kubo(&line.kind).ok_or_else(|| IpfsError::Protocol {
                        endpoint: EP,
                        reason: format!("unknown pin type {:?}", line.kind),
                    })?;
                Ok(Some((cid, kind)))
            },
        )
    }

    async fn pin_ls_cid(
        &self,
        cid: Cid,
        filter: PinLsFilter,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
        const EP: &str = "pin/ls";
        #[derive(Deserialize)]
        struct Out {
            #[serde(rename = "Keys")]
            keys: std::collections::HashMap<String, KeyType>,
        }
        #[derive(Deserialize)]
        struct KeyType {
            #[serde(rename = "Type")]
            kind: String,
        }
        let arg = cid.to_string();
        match self
            .inner
            .call::<Out>(EP, &[("arg", &arg), ("type", filter.as_str())], None)
            .await
        {
            Ok(out) => {
                let Some(k) = out.keys.values().next() else {
                    return Ok(None);
                };
                // "indirect through <cid>" for indirect pins.
                let word = k.kind.split_whitespace().next().unwrap_or_default();
                IpfsPinType::from_kubo(word)
                    .map(Some)
                    .ok_or_else(|| IpfsError::Protocol {
                        endpoint: EP,
                        reason: format!("unknown pin type {:?}", k.kind),
                    })
            }
            Err(IpfsError::Ipfs { message, .. }) if is_not_pinned(&message) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pin_update(&self, from: Cid, to: Cid) -> Result<(), IpfsError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.inner
            .call_within::<Value>(
                "pin/update",
                &[("arg", &from), ("arg", &to), ("unpin", "false")],
                None,
                self.inner
                    .config
                    .pin_timeout
                    .max(self.inner.config.ipfs_request_timeout),
            )
            .await
            .map(drop)
    }

    async fn block_put(&self, data: Bytes, codec: u64) -> Result<Cid, IpfsError> {
        const EP: &str = "block/put";
        let codec = codec_name(codec)?;
        let body = multipart::one_file(&data);
        let out: BlockOut = self
            .inner
            .call(
                EP,
                &[
                    ("cid-codec", codec),
                    ("mhtype", "sha2-256"),
                    ("pin", "false"),
                ],
                Some(body),
            )
            .await?;
        parse_cid(EP, &out.key)
    }

    async fn block_get(&self, cid: Cid) -> Result<Bytes, IpfsError> {
        let arg = cid.to_string();
        let limit = self.inner.config.ipfs_request_timeout;
        self.inner
            .call_bytes(
                "block/get",
                &[("arg", &arg)],
                None,
                Instant::now() + limit,
                limit,
            )
            .await
    }

    async fn block_stat(&self, cid: Cid) -> Result<BlockStat, IpfsError> {
        const EP: &str = "block/stat";
        let arg = cid.to_string();
        let out: BlockOut = self.inner.call(EP, &[("arg", &arg)], None).await?;
        Ok(BlockStat {
            cid: parse_cid(EP, &out.key)?,
            size: out.size,
        })
    }

    async fn dag_import(&self, car: Bytes, pin_roots: bool) -> Result<DagImport, IpfsError> {
        const EP: &str = "dag/import";
        let limit = self.inner.config.ipfs_request_timeout;
        let body = multipart::one_file(&car);
        let bytes = self
            .inner
            .call_bytes(
                EP,
                &[
                    ("pin-roots", if pin_roots { "true" } else { "false" }),
                    ("stats", "true"),
                ],
                Some(body),
                Instant::now() + limit,
                limit,
            )
            .await?;
        let mut import = DagImport::default();
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let out: ImportLine =
                serde_json::from_slice(line).map_err(|e| IpfsError::Protocol {
                    endpoint: EP,
                    reason: format!("{e}: {}", String::from_utf8_lossy(line)),
                })?;
            if let Some(root) = out.root {
                if !root.pin_error.is_empty() {
                    return Err(IpfsError::Ipfs {
                        endpoint: EP,
                        status: 200,
                        message: format!("pinning root {}: {}", root.cid.cid, root.pin_error),
                    });
                }
                import.pinned_roots.push(parse_cid(EP, &root.cid.cid)?);
            }
            if let Some(stats) = out.stats {
                import.blocks = stats.blocks;
                import.bytes = stats.bytes;
            }
        }
        Ok(import)
    }

    async fn repo_stat(&self) -> Result<RepoStat, IpfsError> {
        let out: RepoStatOut = self
            .inner
            .call("repo/stat", &[("size-only", "true")], None)
            .await?;
        Ok(RepoStat {
            repo_size: out.repo_size,
            storage_max: out.storage_max,
        })
    }

    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>> {
        const EP: &str = "repo/gc";
        self.inner.stream(
            EP,
            vec![("stream-errors", "true".to_string())],
            self.inner.config.repogc_timeout,
            |line: GcLine| {
                if let Some(message) = line.error.filter(|e| !e.is_empty()) {
                    return Err(IpfsError::Ipfs {
                        endpoint: EP,
                        status: 200,
                        message,
                    });
                }
                line.key.map(|k| parse_cid(EP, &k.cid)).transpose()
            },
        )
    }

    async fn swarm_connect(&self, addr: Multiaddr) -> Result<(), IpfsError> {
        let arg = addr.to_string();
        self.inner
            .call::<Value>("swarm/connect", &[("arg", &arg)], None)
            .await
            .map(drop)
    }

    async fn resolve(&self, path: String) -> Result<Cid, IpfsError> {
        const EP: &str = "resolve";
        // A bare CID or `/ipfs/<cid>` resolves to itself, without a call.
        if let Ok(cid) = path_cid(EP, &path)
            && path.trim_start_matches("/ipfs/").trim_end_matches('/') == cid.to_string()
        {
            return Ok(cid);
        }
        let out: ResolveOut = self
            .inner
            .call(EP, &[("arg", &path), ("recursive", "true")], None)
            .await?;
        path_cid(EP, &out.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_addresses() {
        let url = |s: &str| base_url(&s.parse().unwrap());
        assert_eq!(
            url("/ip4/127.0.0.1/tcp/5001").unwrap(),
            "http://127.0.0.1:5001"
        );
        assert_eq!(url("/ip6/::1/tcp/5001").unwrap(), "http://[::1]:5001");
        assert_eq!(url("/dns4/ipfs/tcp/5001").unwrap(), "http://ipfs:5001");
        for bad in [
            "/ip4/127.0.0.1/udp/5001",
            "/ip4/127.0.0.1",
            "/ip4/1.2.3.4/tcp/1/http",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        let c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        assert_eq!(
            path_cid("t", &format!("/ipfs/{c}/a/b"))
                .unwrap()
                .to_string(),
            c
        );
        assert_eq!(path_cid("t", c).unwrap().to_string(), c);
        assert!(path_cid("t", "/ipns/example.com").is_err());
    }
}
