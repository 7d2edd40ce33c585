//! UnixFS calls on the embedded node: `cat` (with `offset`/`length`),
//! `ls` and `get` (a tar stream, as Kubo's), read block by block as the
//! client takes the bytes.

use axum::response::Response;
use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use ipfs::IpfsConnector;
use ipfs_node::dagpb::PbNode;
use ipfs_node::unixfs::data::{Data, DataType};
use ipfs_node::unixfs::{self, FileReader};
use ipfs_node::{Block, DAG_PB, Node, NodeError, RAW};
use serde::Serialize;

use super::tar::{self, Kind};
use super::{ChunkSink, getter, kubo_err, node_err, produce, resolve};
use crate::body;
use crate::error::KuboError;
use crate::query::Query;

/// What a UnixFS root is, and its size (a file's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
    Symlink(String),
}

/// Reads what `cid` is from its block.
fn kind_of(cid: &Cid, block: Bytes) -> Result<Entry, NodeError> {
    match cid.codec() {
        RAW => Ok(Entry::File(block.len() as u64)),
        DAG_PB => {
            let pb = PbNode::decode(&block)?;
            let data = Data::decode(pb.data.as_deref().unwrap_or_default())?;
            Ok(match data.kind {
                DataType::Directory | DataType::HamtShard => Entry::Dir,
                DataType::Symlink => Entry::Symlink(
                    String::from_utf8_lossy(data.data.as_deref().unwrap_or_default()).into_owned(),
                ),
                _ => Entry::File(data.file_size()),
            })
        }
        code => Err(NodeError::Unsupported {
            what: "codec",
            code,
        }),
    }
}

async fn kind(node: &Node, cid: Cid) -> Result<Entry, KuboError> {
    let block = node.block_get(cid).await.map_err(kubo_err)?;
    Block::verified(cid, block.clone()).map_err(node_err)?;
    kind_of(&cid, block).map_err(node_err)
}

/// `cat <path>...`: the files' bytes, from `offset`, at most `length`.
pub(super) async fn cat(node: &Node, q: &Query) -> Result<Response, KuboError> {
    q.arg("ipfs-path")?;
    let offset = q.number(&["offset", "o"])?.unwrap_or(0);
    let length = q.number(&["length", "l"])?;
    let mut roots = Vec::new();
    let mut total = 0u64;
    for arg in q.args() {
        let cid = resolve(node, arg).await?;
        match kind(node, cid).await? {
            Entry::File(size) => total += size,
            _ => return Err(KuboError::normal("this dag node is a directory")),
        }
        roots.push(cid);
    }
    let shown = total.saturating_sub(offset);
    let shown = length.map_or(shown, |l| l.min(shown));
    let mut get = getter(node.clone());
    let chunks = produce(move |sink: &mut ChunkSink| {
        let (mut skip, mut left) = (offset, shown);
        for root in roots {
            let mut reader = FileReader::new(root, &mut get);
            while left > 0 {
                let Some(mut chunk) = reader.next_chunk().map_err(node_err)? else {
                    break;
                };
                // Earlier bytes are read and dropped: a reader seeks by
                // walking, as Kubo's does below its block index.
                if skip >= chunk.len() as u64 {
                    skip -= chunk.len() as u64;
                    continue;
                }
                chunk = chunk.slice(skip as usize..);
                skip = 0;
                if chunk.len() as u64 > left {
                    chunk.truncate(left as usize);
                }
                left -= chunk.len() as u64;
                sink.send(chunk)
                    .map_err(|e| KuboError::normal(e.to_string()))?;
            }
        }
        Ok(())
    });
    Ok(body::bytes(chunks, Some(shown)).await)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LsLink {
    name: String,
    hash: String,
    size: u64,
    #[serde(rename = "Type")]
    kind: u8,
    target: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LsObject {
    hash: String,
    links: Vec<LsLink>,
}

/// `ls <path>...`: each directory's entries with their types and sizes
/// (Kubo's `resolve-type` and `size`), one `{"Objects":[..]}` line per
/// path; a file has no entries.
pub(super) async fn ls(node: &Node, q: &Query) -> Result<Response, KuboError> {
    q.arg("ipfs-path")?;
    let resolve_type = q.flag(&["resolve-type"], true)?;
    let mut lines = Vec::new();
    for arg in q.args() {
        let cid = resolve(node, arg).await?;
        let mut links = Vec::new();
        if kind(node, cid).await? == Entry::Dir {
            let mut get = getter(node.clone());
            let entries = tokio::task::spawn_blocking(move || unixfs::ls(&cid, &mut get))
                .await
                .map_err(|e| KuboError::normal(e.to_string()))?
                .map_err(node_err)?;
            for e in entries {
                let (kind_code, size, target) = if resolve_type {
                    match kind(node, e.cid).await? {
                        Entry::Dir => (1, 0, String::new()),
                        Entry::File(size) => (2, size, String::new()),
                        Entry::Symlink(t) => (4, 0, t),
                    }
                } else {
                    (0, e.size, String::new())
                };
                links.push(LsLink {
                    name: e.name,
                    hash: e.cid.to_string(),
                    size,
                    kind: kind_code,
                    target,
                });
            }
        }
        lines.push(Ok(serde_json::json!({ "Objects": [LsObject {
            hash: arg.to_owned(),
            links,
        }] })));
    }
    Ok(body::ndjson(futures::stream::iter(lines).boxed()).await)
}

/// `get <path>`: the file or directory as a tar stream (the root named
/// after the path's last part, as Kubo); `compress` is refused.
pub(super) async fn get(node: &Node, q: &Query) -> Result<Response, KuboError> {
    let arg = q.arg("ipfs-path")?.to_owned();
    if q.flag(&["compress", "C"], false)? {
        return Err(KuboError::unsupported(
            "get --compress is not available with the embedded IPFS node",
        ));
    }
    let root = resolve(node, &arg).await?;
    let name = arg
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("root")
        .to_owned();
    let rt = tokio::runtime::Handle::current();
    let node = node.clone();
    let mut get = getter(node.clone());
    let chunks = produce(move |sink: &mut ChunkSink| {
        let io = |e: std::io::Error| KuboError::normal(e.to_string());
        let mut out = tar::Writer::new(sink);
        let mut stack = vec![(name, root)];
        while let Some((path, cid)) = stack.pop() {
            let what = rt.block_on(kind(&node, cid))?;
            match what {
                Entry::Dir => {
                    out.entry(&path, Kind::Dir, 0, "").map_err(io)?;
                    let entries = unixfs::ls(&cid, &mut get).map_err(node_err)?;
                    stack.extend(
                        entries
                            .into_iter()
                            .rev()
                            .map(|e| (format!("{path}/{}", e.name), e.cid)),
                    );
                }
                Entry::Symlink(target) => {
                    out.entry(&path, Kind::Symlink, 0, &target).map_err(io)?;
                }
                Entry::File(size) => {
                    out.entry(&path, Kind::File, size, "").map_err(io)?;
                    let mut reader = FileReader::new(cid, &mut get);
                    let mut written = 0u64;
                    while let Some(chunk) = reader.next_chunk().map_err(node_err)? {
                        written += chunk.len() as u64;
                        out.data(&chunk).map_err(io)?;
                    }
                    if written != size {
                        return Err(KuboError::normal(format!(
                            "{path}: the file has {written} bytes, its root says {size}"
                        )));
                    }
                    out.pad().map_err(io)?;
                }
            }
        }
        out.finish().map_err(io)?;
        Ok(())
    });
    Ok(body::bytes(chunks, None).await)
}
