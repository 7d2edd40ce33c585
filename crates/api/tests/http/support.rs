//! Test support: the golden fake cluster (`api::testing`) served on
//! 127.0.0.1:0, the JSON Go writes for its fixtures, and a raw HTTP/1.1
//! client over `TcpStream` that decodes chunked bodies and trailers (it
//! never sends `TE: trailers`, like Go's client and curl).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::server::{self, RestConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub(crate) use api::testing::content_cid as raw_cid;
pub(crate) use api::testing::{
    CID, CID2, FakeCluster, IPFS_PEER, PEER, PEER2, Plan, cid, cid2, fixture_id, fixture_metric,
    fixture_pin, fixture_status, t0,
};

pub(crate) const FIXTURE_PIN_JSON: &str = concat!(
    r#"{"replication_factor_min":-1,"replication_factor_max":-1,"name":"fixture","#,
    r#""mode":"recursive","shard_size":0,"user_allocations":null,"#,
    r#""expire_at":"0001-01-01T00:00:00Z","metadata":{"k":"v"},"pin_update":null,"#,
    r#""origins":[],"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","#,
    r#""type":"pin","allocations":["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"],"#,
    r#""max_depth":-1,"reference":null,"timestamp":"2026-05-11T10:00:00Z"}"#
);

pub(crate) const FIXTURE_ID_JSON: &str = concat!(
    r#"{"id":"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","#,
    r#""addresses":["/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"],"#,
    r#""cluster_peers":["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"],"#,
    r#""cluster_peers_addresses":[],"version":"1.1.6","commit":"","#,
    r#""rpc_protocol_version":"/ipfscluster/1.0/rpc","error":"","#,
    r#""ipfs":{"id":"12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq","addresses":["/ip4/127.0.0.1/tcp/4001"],"error":""},"#,
    r#""peername":"peer-a"}"#
);

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

/// A server with `fake` behind it.
#[derive(Debug)]
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) fake: Arc<FakeCluster>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub(crate) async fn start(fake: FakeCluster) -> Self {
        Self::start_with(fake, RestConfig::default()).await
    }

    pub(crate) async fn start_with(fake: FakeCluster, cfg: RestConfig) -> Self {
        Self::start_serving(fake, cfg, false).await
    }

    /// The Pinning Service API (`api::pinsvc`) over `fake`.
    pub(crate) async fn start_pinsvc(fake: FakeCluster, cfg: RestConfig) -> Self {
        Self::start_serving(fake, cfg, true).await
    }

    async fn start_serving(fake: FakeCluster, cfg: RestConfig, pinsvc: bool) -> Self {
        let cfg = RestConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..cfg
        };
        let fake = Arc::new(fake);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let (listening, task) = if pinsvc {
            api::pinsvc::serve(fake.clone(), cfg, shutdown).await
        } else {
            server::serve(fake.clone(), cfg, shutdown).await
        }
        .unwrap();
        Self {
            addr: listening.tcp().expect("a TCP address"),
            fake,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The calls the fake received, one line each.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.fake.calls().iter().map(ToString::to_string).collect()
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

    /// The body as text (lossy: `GET /history/car` is binary).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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
        // `Host: 127.0.0.1` unless the test gives its own.
        let own_host = head_lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("host:"));
        let host = if own_host { "" } else { "Host: 127.0.0.1\r\n" };
        let mut req = format!("{method} {target} HTTP/1.1\r\n{host}");
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
