//! The calls the embedded IPFS node answers when the peer has no Kubo:
//! `id`, `version` (here), `block/*`, `dag/export|import`, `refs`
//! (`blocks.rs`), `cat`, `ls`, `get` (`files.rs`), in Kubo's answer shapes.
//! Any other call is a 501 in Kubo's error shape that names what is
//! answered. Blocks missing locally are fetched over Bitswap (bounded by
//! the node's `pin_timeout`), as Kubo does.

mod blocks;
mod files;
mod tar;

use std::io::Write;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use cid::Cid;
use futures::stream::BoxStream;
use http::request::Parts;
use ipfs::{IpfsConnector, IpfsError};
use ipfs_node::{Node, NodeError};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::body;
use crate::error::KuboError;
use crate::query::Query;

/// Chunks waiting to be written to a client (a byte answer's backpressure).
const CHUNK_QUEUE: usize = 8;
/// Bytes a producer gathers before handing a chunk over.
const CHUNK_BYTES: usize = 64 << 10;

/// The calls answered here (for the 501's message).
const ANSWERED: &str = "add, pin/add, pin/rm, pin/ls, pin/update, repo/stat, repo/gc (by the cluster); \
cat, get, ls, refs, block/get, block/put, block/stat, dag/export, dag/import, id, version (by the embedded node)";

/// Answers `parts` (a call under `/api/v0` that the cluster doesn't) from
/// `node`.
pub(crate) async fn answer(node: &Node, parts: &Parts, body: Body) -> Response {
    let q = Query::parse(parts.uri.query());
    let call = parts
        .uri
        .path()
        .strip_prefix("/api/v0")
        .map(|c| c.trim_end_matches('/'));
    if parts.method != http::Method::POST {
        // Kubo's RPC API takes POST only.
        return KuboError::client(format!("{} is not allowed: use POST", parts.method))
            .with_status(http::StatusCode::METHOD_NOT_ALLOWED)
            .into_response();
    }
    let result = match call {
        Some("/id") => id(node, &q).await,
        Some("/version") => Ok(version()),
        Some("/block/get") => blocks::block_get(node, &q).await,
        Some("/block/stat") => blocks::block_stat(node, &q).await,
        Some("/block/put") => blocks::block_put(node, &q, &parts.headers, body).await,
        Some("/dag/export") => blocks::dag_export(node, &q).await,
        Some("/dag/import") => blocks::dag_import(node, &q, &parts.headers, body).await,
        Some("/refs") => blocks::refs(node, &q).await,
        Some("/cat") => files::cat(node, &q).await,
        Some("/ls") => files::ls(node, &q).await,
        Some("/get") => files::get(node, &q).await,
        Some(other) => Err(KuboError::unsupported(format!(
            "{} is not available through the cluster's IPFS proxy: this peer runs the embedded IPFS node, not Kubo. Answered: {ANSWERED}",
            other.trim_start_matches('/')
        ))),
        None => {
            Err(KuboError::client("not an /api/v0 call").with_status(http::StatusCode::NOT_FOUND))
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// An IPFS call's error as Kubo would word it.
pub(crate) fn kubo_err(e: IpfsError) -> KuboError {
    match e {
        IpfsError::InvalidArgument(m) => KuboError::client(m),
        other => KuboError::normal(other.to_string()),
    }
}

fn node_err(e: NodeError) -> KuboError {
    match e {
        NodeError::InvalidArgument { .. } => KuboError::client(e.to_string()),
        other => KuboError::normal(other.to_string()),
    }
}

/// The CID an `arg` names (a path is resolved by the node).
pub(crate) async fn resolve(node: &Node, arg: &str) -> Result<Cid, KuboError> {
    if !arg.contains('/')
        && let Ok(c) = arg.parse::<Cid>()
    {
        return Ok(c);
    }
    node.resolve(crate::query::ipfs_path(arg))
        .await
        .map_err(kubo_err)
}

/// A block getter for the blocking readers of `ipfs_node::unixfs`: local
/// or fetched over Bitswap, waiting on the runtime from a blocking thread.
pub(crate) fn getter(node: Node) -> impl FnMut(&Cid) -> Result<Bytes, NodeError> + Send {
    let rt = tokio::runtime::Handle::current();
    move |cid: &Cid| {
        rt.block_on(node.block_get(*cid))
            .map_err(|e| NodeError::Network(e.to_string()))
    }
}

/// Where a blocking producer writes an answer: gathers bytes into chunks
/// and hands them to the answer's body (waiting while the client is slow).
pub(crate) struct ChunkSink {
    tx: mpsc::Sender<Result<Bytes, KuboError>>,
    buf: Vec<u8>,
}

impl ChunkSink {
    /// Hands `bytes` over as one chunk (after what is gathered).
    pub(crate) fn send(&mut self, bytes: Bytes) -> std::io::Result<()> {
        self.flush()?;
        self.tx
            .blocking_send(Ok(bytes))
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

/// The bytes `produce` writes on a blocking thread, as a stream (its error
/// ends the stream).
pub(crate) fn produce(
    produce: impl FnOnce(&mut ChunkSink) -> Result<(), KuboError> + Send + 'static,
) -> BoxStream<'static, Result<Bytes, KuboError>> {
    let (tx, rx) = mpsc::channel(CHUNK_QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut sink = ChunkSink {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let result = produce(&mut sink).and_then(|()| {
            sink.flush()
                .map_err(|e| KuboError::normal(format!("writing the answer: {e}")))
        });
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IdOutput {
    #[serde(rename = "ID")]
    id: String,
    public_key: String,
    addresses: Vec<String>,
    agent_version: String,
    protocols: Vec<String>,
}

/// The protobuf public key inside an identity-hashed peer ID (ed25519
/// peers), base64 as Kubo prints it; empty for a hashed (RSA) one.
fn public_key_of(peer_id: &str) -> String {
    let Ok(bytes) = bs58::decode(peer_id).into_vec() else {
        return String::new();
    };
    match multihash::Multihash::<64>::from_bytes(&bytes) {
        Ok(mh) if mh.code() == 0 => base64::engine::general_purpose::STANDARD.encode(mh.digest()),
        _ => String::new(),
    }
}

/// `id`: the embedded node's identity (not the cluster peer's); another
/// peer's `arg` is not looked up.
async fn id(node: &Node, q: &Query) -> Result<Response, KuboError> {
    let me = node.peer_id().to_string();
    if let Some(arg) = q.args().first()
        && *arg != me
    {
        return Err(KuboError::unsupported(
            "looking up another peer's identity is not available with the embedded IPFS node",
        ));
    }
    let id = node.id().await.map_err(kubo_err)?;
    Ok(body::value(&IdOutput {
        public_key: public_key_of(&id.id),
        id: id.id,
        addresses: id.addresses.iter().map(ToString::to_string).collect(),
        agent_version: id.agent_version,
        protocols: vec!["/ipfs/bitswap/1.2.0".into()],
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VersionOutput {
    version: String,
    commit: String,
    repo: String,
    system: String,
    golang: String,
}

/// `version`: this program's (there is no Kubo).
fn version() -> Response {
    body::value(&VersionOutput {
        version: env!("CARGO_PKG_VERSION").into(),
        commit: String::new(),
        repo: String::new(),
        system: format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
        golang: String::new(),
    })
}
