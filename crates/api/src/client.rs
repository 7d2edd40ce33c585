//! [`Client`]: the Rust client of the REST API (used by `ipfs-cluster-ctl`
//! and the tests). Plain HTTP over hyper; streaming routes come back as
//! streams parsed line by line as the body arrives, and a non-empty
//! `X-Stream-Error` trailer ends them with [`ClientError::Api`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use multiaddr::{Multiaddr, Protocol};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::multipart;
use crate::server::{DEFAULT_LISTEN_MULTIADDRESS, auth_header};
use crate::service::AddFile;
use crate::types::PinQuery;
use crate::types::{
    AddParams, AddedOutput, Alert, ApiErrorBody, BandwidthStats, ConnectGraph, GlobalPinInfo,
    GlobalRepoGc, Id, Metric, Pin, PinOptions, PinTypeFilter, TokenBody, TrackerStatusFilter,
    Version,
};

/// Characters kept as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The API answered with an error, or a stream ended with a non-empty
    /// `X-Stream-Error` trailer (then `code` is 500, as in Go's client).
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status.
        code: u16,
        /// The API's message.
        message: String,
    },
    /// The host is not an address the client can reach.
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// Why it can't be used.
        reason: String,
    },
    /// An argument can't be sent (e.g. a path that is neither a path nor a
    /// CID).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request could not be sent or the answer not read.
    #[error("{0}")]
    Transport(String),
    /// The answer is not the JSON expected.
    #[error("decoding the response: {0}")]
    Decode(String),
    /// The configured timeout passed.
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// Whether the configured timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// The HTTP status of an API error.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// How to reach the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// A multiaddress (`/ip4/127.0.0.1/tcp/9094`, `/dns4/host/tcp/9094`), an
    /// `http://host:port` URL, or `host:port`.
    pub host: String,
    /// User and password for Basic authentication.
    pub basic_auth: Option<(String, String)>,
    /// Deadline of each call (for a stream: of the whole stream).
    pub timeout: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_LISTEN_MULTIADDRESS.to_string(),
            basic_auth: None,
            timeout: None,
        }
    }
}

/// A REST API client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// A request body: empty, or an upload streamed as it is read.
type ReqBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

fn empty_body() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What a request carries.
struct Payload {
    body: ReqBody,
    content_type: Option<String>,
}

impl Payload {
    fn empty() -> Self {
        Payload {
            body: empty_body(),
            content_type: None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    http: HyperClient<HttpConnector, ReqBody>,
    base: String,
    auth: Option<HeaderValue>,
    timeout: Option<Duration>,
}

/// `http://host:port` of a host setting.
fn base_url(host: &str) -> Result<String, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidHost {
        host: host.to_string(),
        reason: reason.to_string(),
    };
    if let Some(rest) = host.strip_prefix("http://") {
        return Ok(format!("http://{}", rest.trim_end_matches('/')));
    }
    if host.starts_with("https://") {
        return Err(invalid("HTTPS is not supported by this client"));
    }
    if !host.starts_with('/') {
        if host.is_empty() {
            return Err(invalid("empty"));
        }
        return Ok(format!("http://{host}"));
    }
    let ma: Multiaddr = host.parse().map_err(|e| invalid(&format!("{e}")))?;
    let mut parts = ma.iter();
    let hostname = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.to_string(),
        Some(Protocol::Ip6(ip)) => format!("[{ip}]"),
        Some(Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) | Protocol::Dnsaddr(h)) => {
            h.to_string()
        }
        _ => return Err(invalid("expected /ip4, /ip6 or /dns addresses")),
    };
    match (parts.next(), parts.next()) {
        (Some(Protocol::Tcp(port)), None) => Ok(format!("http://{hostname}:{port}")),
        (Some(Protocol::Tcp(_)), Some(Protocol::Https | Protocol::Tls)) => {
            Err(invalid("HTTPS is not supported by this client"))
        }
        (Some(Protocol::Tcp(port)), Some(Protocol::Http)) => {
            Ok(format!("http://{hostname}:{port}"))
        }
        _ => Err(invalid("expected /tcp/<port> after the address")),
    }
}

fn transport(e: &(dyn std::error::Error + 'static)) -> ClientError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ClientError::Transport(text)
}

/// The error of a non-success answer.
fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) if !b.message.is_empty() || b.code != 0 => ClientError::Api {
            code: if b.code == 0 { status.as_u16() } else { b.code },
            message: b.message,
        },
        _ => ClientError::Api {
            code: status.as_u16(),
            message: {
                let text = String::from_utf8_lossy(body).trim().to_string();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    text
                }
            },
        },
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

/// Percent-encodes one path segment.
fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A query string from pairs (`a=1&b=2`).
fn query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k.as_ref(), v.as_ref());
    }
    ser.finish()
}

fn local_q(local: bool) -> String {
    query(&[("local", if local { "true" } else { "false" })])
}

/// `/ipfs/<cid>/...` style path of a user's argument: a path as is, a bare
/// CID as `/ipfs/<cid>`; each segment percent-encoded.
fn pin_path_of(path: &str) -> Result<String, ClientError> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else if path.parse::<Cid>().is_ok() {
        format!("/ipfs/{path}")
    } else {
        return Err(ClientError::InvalidRequest(format!(
            "{path:?} is neither a path (/ipfs/..., /ipns/..., /ipld/...) nor a CID"
        )));
    };
    let encoded: Vec<String> = path.split('/').map(seg).collect();
    Ok(encoded.join("/"))
}

/// Where a streaming answer is.
enum StreamState {
    /// The request is still to be sent.
    Start {
        client: Client,
        method: Method,
        path_and_query: String,
        payload: Payload,
    },
    Body {
        body: Incoming,
        buf: Vec<u8>,
        pos: usize,
        deadline: Option<Instant>,
    },
    /// Items are over; this error comes last.
    Fail(ClientError),
    Done,
}

impl Client {
    /// A client for `cfg.host`.
    ///
    /// # Errors
    /// [`ClientError::InvalidHost`] when the host is not usable (HTTPS, a
    /// `/p2p` or unix address, garbage).
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        let base = base_url(&cfg.host)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        let auth = match &cfg.basic_auth {
            Some((user, pass)) => Some(HeaderValue::from_str(&auth_header(user, pass)).map_err(
                |_| ClientError::InvalidRequest("credentials can't go in a header".into()),
            )?),
            None => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                timeout: cfg.timeout,
            }),
        })
    }

    /// The base URL requests go to (`http://127.0.0.1:9094`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    fn deadline(&self) -> Option<Instant> {
        self.inner.timeout.map(|t| Instant::now() + t)
    }

    async fn with_deadline<T>(
        deadline: Option<Instant>,
        fut: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        match deadline {
            Some(d) => tokio::time::timeout_at(d, fut)
                .await
                .unwrap_or(Err(ClientError::Timeout)),
            None => fut.await,
        }
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        self.send_payload(method, path_and_query, Payload::empty())
            .await
    }

    async fn send_payload(
        &self,
        method: Method,
        path_and_query: &str,
        payload: Payload,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let uri = format!("{}{path_and_query}", self.inner.base);
        let mut builder = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::TE, "trailers");
        if let Some(ct) = &payload.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let mut req = builder
            .body(payload.body)
            .map_err(|e| ClientError::InvalidRequest(format!("{uri}: {e}")))?;
        if let Some(auth) = &self.inner.auth {
            req.headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
        }
        self.inner
            .http
            .request(req)
            .await
            .map_err(|e| transport(&e))
    }

    /// One request, its whole answer, the status checked.
    async fn call_bytes(&self, method: Method, pq: &str) -> Result<Bytes, ClientError> {
        Self::with_deadline(self.deadline(), async {
            let resp = self.send(method, pq).await?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(&e))?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(api_error(status, &body))
            }
        })
        .await
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, pq: &str) -> Result<T, ClientError> {
        decode(&self.call_bytes(method, pq).await?)
    }

    async fn call_list<T: DeserializeOwned>(&self, pq: &str) -> Result<Vec<T>, ClientError> {
        let list: Option<Vec<T>> = self.call(Method::GET, pq).await?;
        Ok(list.unwrap_or_default())
    }

    async fn call_empty(&self, method: Method, pq: &str) -> Result<(), ClientError> {
        self.call_bytes(method, pq).await.map(|_| ())
    }

    /// A streaming route as a stream of items, parsed as the body arrives.
    fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        pq: String,
    ) -> BoxStream<'static, Result<T, ClientError>> {
        self.stream_payload(method, pq, Payload::empty())
    }

    /// A streaming route whose request carries `payload`.
    fn stream_payload<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        pq: String,
        payload: Payload,
    ) -> BoxStream<'static, Result<T, ClientError>> {
        let start = StreamState::Start {
            client: self.clone(),
            method,
            path_and_query: pq,
            payload,
        };
        stream::unfold(start, |state| {
            async move {
                let mut state = state;
                loop {
                    match state {
                        StreamState::Done => return None,
                        StreamState::Fail(e) => return Some((Err(e), StreamState::Done)),
                        StreamState::Start {
                            client,
                            method,
                            path_and_query,
                            payload,
                        } => {
                            let deadline = client.deadline();
                            let sent = Self::with_deadline(
                                deadline,
                                client.send_payload(method, &path_and_query, payload),
                            )
                            .await;
                            let resp = match sent {
                                Ok(r) => r,
                                Err(e) => return Some((Err(e), StreamState::Done)),
                            };
                            let status = resp.status();
                            if status == StatusCode::NO_CONTENT {
                                return None;
                            }
                            if status != StatusCode::OK {
                                let body = Self::with_deadline(deadline, async {
                                    resp.into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .map_err(|e| transport(&e))
                                })
                                .await;
                                let err = match body {
                                    Ok(b) => api_error(status, &b),
                                    Err(e) => e,
                                };
                                return Some((Err(err), StreamState::Done));
                            }
                            state = StreamState::Body {
                                body: resp.into_body(),
                                buf: Vec::new(),
                                pos: 0,
                                deadline,
                            };
                        }
                        StreamState::Body {
                            mut body,
                            mut buf,
                            mut pos,
                            deadline,
                        } => {
                            // A complete line waiting?
                            if let Some(nl) = buf[pos..].iter().position(|b| *b == b'\n') {
                                let line = &buf[pos..pos + nl];
                                pos += nl + 1;
                                if line.iter().all(u8::is_ascii_whitespace) {
                                    state = StreamState::Body {
                                        body,
                                        buf,
                                        pos,
                                        deadline,
                                    };
                                    continue;
                                }
                                let item = decode::<T>(line);
                                let next = if item.is_ok() {
                                    StreamState::Body {
                                        body,
                                        buf,
                                        pos,
                                        deadline,
                                    }
                                } else {
                                    StreamState::Done
                                };
                                return Some((item, next));
                            }
                            buf.drain(..pos);
                            pos = 0;
                            let frame = Self::with_deadline(deadline, async {
                                body.frame().await.transpose().map_err(|e| transport(&e))
                            })
                            .await;
                            match frame {
                                Err(e) => return Some((Err(e), StreamState::Done)),
                                Ok(Some(frame)) => match frame.into_data() {
                                    Ok(data) => {
                                        buf.extend_from_slice(&data);
                                        state = StreamState::Body {
                                            body,
                                            buf,
                                            pos,
                                            deadline,
                                        };
                                    }
                                    Err(frame) => {
                                        let errors: Vec<String> = frame
                                            .trailers_ref()
                                            .map(|t| {
                                                t.get_all("x-stream-error")
                                                    .iter()
                                                    .map(|v| {
                                                        String::from_utf8_lossy(v.as_bytes())
                                                            .into_owned()
                                                    })
                                                    .collect()
                                            })
                                            .unwrap_or_default();
                                        let failure = errors
                                            .first()
                                            .is_some_and(|e| !e.is_empty())
                                            .then(|| ClientError::Api {
                                                code: 500,
                                                message: errors.join(", "),
                                            });
                                        if !buf.iter().all(u8::is_ascii_whitespace) {
                                            // A last item without its newline.
                                            let item = decode::<T>(&buf);
                                            let next = failure
                                                .map_or(StreamState::Done, StreamState::Fail);
                                            return Some((item, next));
                                        }
                                        return failure.map(|e| (Err(e), StreamState::Done));
                                    }
                                },
                                Ok(None) => {
                                    if buf.iter().all(u8::is_ascii_whitespace) {
                                        return None;
                                    }
                                    let item = decode::<T>(&buf);
                                    return Some((item, StreamState::Done));
                                }
                            }
                        }
                    }
                }
            }
        })
        .boxed()
    }

    /// `POST /add`: uploads `files` as Go's client does (one
    /// multipart/form-data part per entry, streamed as the entries and
    /// their bytes are read) and streams the [`AddedOutput`]s as the peer
    /// produces them. As Go's client, always asks for
    /// `stream-channels=true`.
    ///
    /// Entries are sent in the order given: a directory's entry before
    /// its contents (as Go's client), paths `/`-separated and relative,
    /// the first component naming the top-level entry.
    ///
    /// # Errors
    /// Each item: the API's error (a 400 for bad parameters, a 501 for
    /// unsupported ones), a non-empty `X-Stream-Error` trailer (the add
    /// failed half-way; code 500), or a transport error (also when reading
    /// a file fails: the upload is cut).
    pub fn add(
        &self,
        params: &AddParams,
        files: BoxStream<'static, Result<AddFile, crate::ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ClientError>> {
        let mut params = params.clone();
        params.stream_channels = true;
        let boundary = multipart::new_boundary();
        let body = StreamBody::new(
            multipart::write_upload(files, boundary.clone()).map(|chunk| {
                chunk
                    .map(http_body::Frame::data)
                    .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
            }),
        );
        let payload = Payload {
            body: BodyExt::boxed_unsync(body),
            content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        };
        let pq = format!("/add?{}", query(&params.to_query()));
        self.stream_payload(Method::POST, pq, payload)
    }

    /// `GET /id`: the peer's identity.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn id(&self) -> Result<Id, ClientError> {
        self.call(Method::GET, "/id").await
    }

    /// `GET /version`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn version(&self) -> Result<Version, ClientError> {
        self.call(Method::GET, "/version").await
    }

    /// `GET /peers`: every cluster peer.
    pub fn peers(&self) -> BoxStream<'static, Result<Id, ClientError>> {
        self.stream(Method::GET, "/peers".into())
    }

    /// `DELETE /peers/{peer}`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn peer_rm(&self, peer: &str) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &format!("/peers/{}", seg(peer)))
            .await
    }

    /// `GET /allocations?filter=...`: the pinset.
    pub fn allocations(
        &self,
        filter: PinTypeFilter,
    ) -> BoxStream<'static, Result<Pin, ClientError>> {
        self.stream(
            Method::GET,
            format!("/allocations?{}", query(&[("filter", filter.to_string())])),
        )
    }

    /// `GET /allocations/{cid}`: one pin (a 404 [`ClientError::Api`] when
    /// it is not in the pinset).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn allocation(&self, cid: Cid) -> Result<Pin, ClientError> {
        self.call(Method::GET, &format!("/allocations/{cid}")).await
    }

    /// `POST /pins/{cid}?<options>`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn pin(&self, cid: Cid, options: &PinOptions) -> Result<Pin, ClientError> {
        self.call(
            Method::POST,
            &format!("/pins/{cid}?{}", query(&options.to_query())),
        )
        .await
    }

    /// `POST /pins/{ipfs|ipns|ipld}/{path}?<options>`; a bare CID is pinned
    /// as `/ipfs/<cid>` (as Go's client does).
    ///
    /// # Errors
    /// Any [`ClientError`]; [`ClientError::InvalidRequest`] for a `path`
    /// that is neither a path nor a CID.
    pub async fn pin_path(&self, path: &str, options: &PinOptions) -> Result<Pin, ClientError> {
        let path = pin_path_of(path)?;
        self.call(
            Method::POST,
            &format!("/pins{path}?{}", query(&options.to_query())),
        )
        .await
    }

    /// `DELETE /pins/{cid}`: answers the removed pin.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn unpin(&self, cid: Cid) -> Result<Pin, ClientError> {
        self.call(Method::DELETE, &format!("/pins/{cid}")).await
    }

    /// `DELETE /pins/{ipfs|ipns|ipld}/{path}` (a bare CID as `/ipfs/<cid>`).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn unpin_path(&self, path: &str) -> Result<Pin, ClientError> {
        let path = pin_path_of(path)?;
        self.call(Method::DELETE, &format!("/pins{path}")).await
    }

    /// `GET /pins/{cid}?local=...`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn status(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ClientError> {
        self.call(Method::GET, &format!("/pins/{cid}?{}", local_q(local)))
            .await
    }

    /// `GET /pins?filter=...&local=...` or, with `cids`, `GET
    /// /pins?cids=...&local=...` (the filter is then unused, as in Go).
    pub fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: &[Cid],
    ) -> BoxStream<'static, Result<GlobalPinInfo, ClientError>> {
        let local = if local { "true" } else { "false" };
        let pq = if cids.is_empty() {
            format!(
                "/pins?{}",
                query(&[("filter", filter.to_string().as_str()), ("local", local)])
            )
        } else {
            let list: Vec<String> = cids.iter().map(Cid::to_string).collect();
            format!(
                "/pins?{}",
                query(&[("cids", list.join(",").as_str()), ("local", local)])
            )
        };
        self.stream(Method::GET, pq)
    }

    /// `POST /pins/{cid}/recover?local=...`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn recover(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/pins/{cid}/recover?{}", local_q(local)),
        )
        .await
    }

    /// `POST /pins/recover?local=...`: the items re-queued.
    pub fn recover_all(
        &self,
        local: bool,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ClientError>> {
        self.stream(Method::POST, format!("/pins/recover?{}", local_q(local)))
    }

    /// `POST /ipfs/gc?local=...`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn repo_gc(&self, local: bool) -> Result<GlobalRepoGc, ClientError> {
        self.call(Method::POST, &format!("/ipfs/gc?{}", local_q(local)))
            .await
    }

    /// `GET /monitor/metrics`: metric names.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn metric_names(&self) -> Result<Vec<String>, ClientError> {
        self.call_list("/monitor/metrics").await
    }

    /// `GET /monitor/metrics/{name}`: the latest metric of each peer.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn metrics(&self, name: &str) -> Result<Vec<Metric>, ClientError> {
        self.call_list(&format!("/monitor/metrics/{}", seg(name)))
            .await
    }

    /// `GET /health/alerts`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn alerts(&self) -> Result<Vec<Alert>, ClientError> {
        self.call_list("/health/alerts").await
    }

    /// `GET /health/graph`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn health_graph(&self) -> Result<ConnectGraph, ClientError> {
        self.call(Method::GET, "/health/graph").await
    }

    /// `GET /health/bandwidth`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn bandwidth(&self) -> Result<BandwidthStats, ClientError> {
        let stats: Option<BandwidthStats> = self.call(Method::GET, "/health/bandwidth").await?;
        Ok(stats.unwrap_or_default())
    }

    /// `POST /token`: a JWT for the configured Basic credentials.
    ///
    /// # Errors
    /// Any [`ClientError`] (401 without credentials).
    pub async fn token(&self) -> Result<String, ClientError> {
        let body: TokenBody = self.call(Method::POST, "/token").await?;
        Ok(body.token)
    }

    /// `GET /health`: `Ok` when the API answers.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn health(&self) -> Result<(), ClientError> {
        self.call_empty(Method::GET, "/health").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_base_urls() {
        for (host, url) in [
            ("/ip4/127.0.0.1/tcp/9094", "http://127.0.0.1:9094"),
            ("/ip6/::1/tcp/9094", "http://[::1]:9094"),
            (
                "/dns4/cluster.example/tcp/9094",
                "http://cluster.example:9094",
            ),
            ("/ip4/10.0.0.1/tcp/80/http", "http://10.0.0.1:80"),
            ("http://localhost:9094/", "http://localhost:9094"),
            ("localhost:9094", "http://localhost:9094"),
        ] {
            assert_eq!(base_url(host).unwrap(), url, "{host}");
        }
        for bad in [
            "https://x:1",
            "/ip4/1.2.3.4/udp/9094",
            "/ip4/1.2.3.4/tcp/443/https",
            "/unix/tmp/sock",
            "",
            "/nonsense",
        ] {
            assert!(
                matches!(base_url(bad), Err(ClientError::InvalidHost { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn pin_paths_are_normalised_and_encoded() {
        let cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
        assert_eq!(pin_path_of(cid).unwrap(), format!("/ipfs/{cid}"));
        assert_eq!(
            pin_path_of(&format!("/ipfs/{cid}/a b/c?d")).unwrap(),
            format!("/ipfs/{cid}/a%20b/c%3Fd")
        );
        assert_eq!(
            pin_path_of("/ipns/example.com").unwrap(),
            "/ipns/example.com"
        );
        assert!(pin_path_of("not a cid").is_err());
    }

    #[test]
    fn error_bodies_become_api_errors() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            br#"{"code":404,"message":"not found"}"#,
        );
        assert_eq!(e.api_code(), Some(404));
        assert_eq!(e.to_string(), "not found (404)");
        let e = api_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert!(
            matches!(e, ClientError::Api { code: 502, ref message } if message == "upstream down")
        );
        let e = api_error(StatusCode::METHOD_NOT_ALLOWED, b"");
        assert_eq!(e.to_string(), "Method Not Allowed (405)");
    }
}
