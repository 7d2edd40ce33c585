//! Block-level calls on the embedded node: `block/get|put|stat`,
//! `dag/export|import` (CAR v1, streamed both ways) and `refs`.

use std::collections::HashSet;

use api::service::{AddFile, AddFileKind};
use api::{ApiError, multipart_boundary, read_upload};
use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use cid::Cid;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use http::HeaderMap;
use ipfs::IpfsConnector;
use ipfs_node::{Block, CarWriter, DAG_CBOR, DAG_JSON, DAG_PB, Node, RAW};
use serde::Serialize;
use serde_json::json;

use super::{ChunkSink, getter, kubo_err, node_err, produce, resolve};
use crate::body;
use crate::error::KuboError;
use crate::query::Query;

/// Kubo's largest block (`block/put` refuses more).
const MAX_BLOCK: usize = 1 << 20;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BlockStat {
    key: String,
    size: u64,
}

/// `block/get <cid>`: the block's bytes.
pub(super) async fn block_get(node: &Node, q: &Query) -> Result<Response, KuboError> {
    let cid = resolve(node, q.arg("cid")?).await?;
    let data = node.block_get(cid).await.map_err(kubo_err)?;
    let len = data.len() as u64;
    Ok(body::bytes(futures::stream::iter([Ok(data)]).boxed(), Some(len)).await)
}

/// `block/stat <cid>`: `{"Key","Size"}`.
pub(super) async fn block_stat(node: &Node, q: &Query) -> Result<Response, KuboError> {
    let cid = resolve(node, q.arg("cid")?).await?;
    let stat = node.block_stat(cid).await.map_err(kubo_err)?;
    Ok(body::value(&BlockStat {
        key: stat.cid.to_string(),
        size: stat.size,
    }))
}

/// The codec of `block/put`'s options: `cid-codec` (Kubo's default raw),
/// or the legacy `format` (`v0` and `protobuf` are dag-pb, `v0` as a
/// CIDv0).
fn put_codec(q: &Query) -> Result<(u64, bool), KuboError> {
    if let Some(mh) = q.get(&["mhtype"])
        && mh != "sha2-256"
    {
        return Err(KuboError::client(format!(
            "mhtype {mh} is not supported by the embedded IPFS node: sha2-256 only"
        )));
    }
    let name = q.get(&["cid-codec"]).or_else(|| q.get(&["format", "f"]));
    Ok(match name.unwrap_or("raw") {
        "raw" | "" => (RAW, false),
        "dag-pb" | "protobuf" => (DAG_PB, false),
        "v0" => (DAG_PB, true),
        "dag-cbor" | "cbor" => (DAG_CBOR, false),
        "dag-json" => (DAG_JSON, false),
        other => {
            return Err(KuboError::client(format!(
                "unsupported codec {other:?}: raw, dag-pb, dag-cbor or dag-json"
            )));
        }
    })
}

/// The entries of a multipart upload, read as they arrive.
fn upload(
    headers: &HeaderMap,
    body: Body,
) -> Result<BoxStream<'static, Result<AddFile, ApiError>>, KuboError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let boundary = multipart_boundary(ct)
        .map_err(|e| KuboError::client(format!("error reading request: {}", e.message)))?;
    Ok(read_upload(body.into_data_stream(), boundary))
}

/// The uploaded files of a multipart body, each read whole up to `max`
/// bytes.
async fn uploaded(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<Bytes>, KuboError> {
    let mut files = upload(headers, body)?;
    let mut out = Vec::new();
    while let Some(f) = files.next().await {
        let f = f.map_err(KuboError::from)?;
        let AddFileKind::File(mut data) = f.kind else {
            continue;
        };
        let mut buf = BytesMut::new();
        while let Some(chunk) = data.next().await {
            buf.extend_from_slice(&chunk.map_err(KuboError::from)?);
            if buf.len() > max {
                return Err(KuboError::client(format!(
                    "produced block is over {max} bytes: too large"
                )));
            }
        }
        out.push(buf.freeze());
    }
    if out.is_empty() {
        return Err(KuboError::client("argument \"data\" is required"));
    }
    Ok(out)
}

/// `block/put`: stores each uploaded block; `{"Key","Size"}` lines.
pub(super) async fn block_put(
    node: &Node,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, KuboError> {
    let (codec, v0) = put_codec(q)?;
    let mut lines = Vec::new();
    for data in uploaded(headers, body, MAX_BLOCK).await? {
        let size = data.len() as u64;
        let cid = node.block_put(data, codec).await.map_err(kubo_err)?;
        let cid = if v0 {
            Cid::new_v0(*cid.hash()).map_err(|e| KuboError::client(e.to_string()))?
        } else {
            cid
        };
        lines.push(Ok(BlockStat {
            key: cid.to_string(),
            size,
        }));
    }
    // Answered once on disk, as Kubo answers (and before a `pin=true`
    // pins them in the cluster).
    node.blocks_durable().await.map_err(kubo_err)?;
    Ok(body::ndjson(futures::stream::iter(lines).boxed()).await)
}

/// `dag/export <cid>`: the DAG as a CAR v1 stream, blocks depth-first
/// (fetched over Bitswap when missing), each once.
pub(super) async fn dag_export(node: &Node, q: &Query) -> Result<Response, KuboError> {
    let root = resolve(node, q.arg("root")?).await?;
    let mut get = getter(node.clone());
    let chunks = produce(move |sink: &mut ChunkSink| {
        let mut car = CarWriter::new(sink, &[root]).map_err(node_err)?;
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let block = Block::verified(cid, get(&cid).map_err(node_err)?).map_err(node_err)?;
            let links = ipfs_node::links(&block).map_err(node_err)?;
            car.write(&block).map_err(node_err)?;
            stack.extend(links.into_iter().rev());
        }
        car.finish().map_err(node_err)?;
        Ok(())
    });
    Ok(body::bytes(chunks, None).await)
}

/// `dag/import`: each uploaded CAR read into the node's blockstore as it
/// arrives (never held whole), its roots pinned in the node unless
/// `pin-roots=false`; `{"Root":..}` lines, and `{"Stats":..}` with
/// `stats=true`.
pub(super) async fn dag_import(
    node: &Node,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, KuboError> {
    let pin_roots = q.flag(&["pin-roots"], true)?;
    let stats = q.flag(&["stats"], false)?;
    let mut files = upload(headers, body)?;
    let (mut blocks, mut bytes, mut roots) = (0u64, 0u64, Vec::new());
    while let Some(f) = files.next().await {
        let f = f.map_err(KuboError::from)?;
        let AddFileKind::File(data) = f.kind else {
            continue;
        };
        let reader =
            tokio_util::io::StreamReader::new(data.map_err(|e| std::io::Error::other(e.message)));
        let reader = tokio_util::io::SyncIoBridge::new(reader);
        let store = node.store().clone();
        let imported =
            tokio::task::spawn_blocking(move || ipfs_node::import_car(&store, reader, pin_roots))
                .await
                .map_err(|e| KuboError::normal(format!("importing: {e}")))?
                .map_err(node_err)?;
        blocks += imported.blocks;
        bytes += imported.bytes;
        roots.extend(imported.roots);
    }
    let mut lines = Vec::new();
    if pin_roots {
        for r in roots {
            lines.push(Ok(
                json!({ "Root": { "Cid": { "/": r.to_string() }, "PinErrorMsg": "" } }),
            ));
        }
    }
    if stats {
        lines.push(Ok(
            json!({ "Stats": { "BlockCount": blocks, "BlockBytesCount": bytes } }),
        ));
    }
    Ok(body::ndjson(futures::stream::iter(lines).boxed()).await)
}

/// `refs <cid>...`: the links of each root (`recursive`: of the whole
/// DAG, depth-first, down to `max-depth`; `unique`: each once; `edges`:
/// as `<from> -> <to>`); `{"Ref","Err"}` lines as they are found.
pub(super) async fn refs(node: &Node, q: &Query) -> Result<Response, KuboError> {
    q.arg("ipfs-path")?;
    let recursive = q.flag(&["recursive", "r"], false)?;
    let unique = q.flag(&["unique", "u"], false)?;
    let edges = q.flag(&["edges", "e"], false)?;
    let max_depth: i64 = match q.get(&["max-depth"]) {
        Some(d) => d
            .parse()
            .map_err(|_| KuboError::client(format!("invalid max-depth {d:?}")))?,
        None if recursive => -1,
        None => 1,
    };
    let mut roots = Vec::new();
    for arg in q.args() {
        roots.push(resolve(node, arg).await?);
    }
    let mut get = getter(node.clone());
    let chunks = produce(move |sink: &mut ChunkSink| {
        let mut seen = HashSet::new();
        for root in roots {
            // (block, its depth), the next one last.
            let mut stack = vec![(root, 0i64)];
            while let Some((cid, depth)) = stack.pop() {
                if max_depth >= 0 && depth >= max_depth {
                    continue;
                }
                let block = Block::verified(cid, get(&cid).map_err(node_err)?).map_err(node_err)?;
                let links = ipfs_node::links(&block).map_err(node_err)?;
                let mut below = Vec::new();
                for link in links {
                    if unique && !seen.insert(link) {
                        continue;
                    }
                    let text = if edges {
                        format!("{cid} -> {link}")
                    } else {
                        link.to_string()
                    };
                    let mut line = serde_json::to_vec(&json!({ "Ref": text, "Err": "" }))
                        .map_err(|e| KuboError::normal(e.to_string()))?;
                    line.push(b'\n');
                    sink.send(Bytes::from(line))
                        .map_err(|e| KuboError::normal(e.to_string()))?;
                    below.push((link, depth + 1));
                }
                stack.extend(below.into_iter().rev());
            }
        }
        Ok(())
    });
    Ok(body::ndjson_bytes(chunks).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_put_codecs() {
        let c = |s: &str| put_codec(&Query::parse(Some(s)));
        assert_eq!(c("").unwrap(), (RAW, false));
        assert_eq!(c("cid-codec=dag-cbor").unwrap(), (DAG_CBOR, false));
        assert_eq!(c("format=v0").unwrap(), (DAG_PB, true));
        assert!(c("mhtype=sha3-256").is_err());
        assert!(c("cid-codec=git-raw").is_err());
    }
}
