//! `POST /add?format=car`: the upload's first file is a CAR whose blocks go
//! to every destination's IPFS as they are read, as Go's `carAdder`
//! does: exactly one root, no wrapping, later files ignored, one
//! `AddedOutput` named after the file with the CAR's bytes and, when the
//! root is a UnixFS node in the CAR, its file size.
//!
//! The CAR is parsed by [`ipfs_node::read_car`] (v1, or v2 through its
//! payload; every block checked against its CID) on a blocking thread fed
//! from the upload, with a bounded channel between it and the destinations:
//! memory is a few blocks and the destinations' batches, never the file.

use api::ApiError;
use api::service::{AddFile, AddFileKind};
use api::types::{AddParams, AddedOutput};
use cid::Cid;
use futures::StreamExt;
use futures::stream::BoxStream;
use ipfs_node::dagpb::PbNode;
use ipfs_node::unixfs::data::Data;
use ipfs_node::{Block, DAG_PB, NodeError};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::add::fanout::Fanout;
use crate::add::node_error;

/// Blocks parsed ahead of the puts into IPFS.
const CAR_BLOCKS_AHEAD: usize = 16;

/// What the parsing thread hands over: the header's roots, then blocks.
enum CarItem {
    Roots(Vec<Cid>),
    Block(Block),
}

/// The UnixFS file size of `block` when it is a dag-pb UnixFS node (Go's
/// `unixfs.ExtractFSNode(nd).FileSize()`), else 0.
fn unixfs_size(block: &Block) -> u64 {
    if block.cid().codec() != DAG_PB {
        return 0;
    }
    PbNode::decode(block.data())
        .ok()
        .and_then(|n| Data::decode(n.data.as_deref()?).ok())
        .map_or(0, |d| d.file_size())
}

/// Imports the upload's CAR; its root.
///
/// # Errors
/// 400s: wrapping asked, the first entry a directory, no file, a CAR that
/// is malformed, has a block not matching its CID, or has other than one
/// root. An IPFS error or CID mismatch on a put; `sink` closed.
pub(crate) async fn add_car(
    dests: &mut Fanout,
    params: &AddParams,
    mut files: BoxStream<'static, Result<AddFile, ApiError>>,
    sink: mpsc::Sender<Result<AddedOutput, ApiError>>,
) -> Result<Cid, ApiError> {
    if params.wrap_with_directory {
        return Err(ApiError::bad_request("add: cannot wrap a CAR file upload"));
    }
    let AddFile { path, kind } = files
        .next()
        .await
        .ok_or_else(|| ApiError::bad_request("add: the upload holds no files"))??;
    let AddFileKind::File(data) = kind else {
        return Err(ApiError::bad_request(format!(
            "add: expected a CAR file, {path:?} is a directory"
        )));
    };
    // Go reads only the first file of a CAR upload.
    drop(files);

    let bytes = data.map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
    let reader = SyncIoBridge::new(StreamReader::new(bytes));
    let (tx, mut rx) = mpsc::channel::<Result<CarItem, NodeError>>(CAR_BLOCKS_AHEAD);
    let parser = tokio::task::spawn_blocking(move || {
        let mut car = match ipfs_node::read_car(reader) {
            Ok(car) => car,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if tx
            .blocking_send(Ok(CarItem::Roots(car.roots().to_vec())))
            .is_err()
        {
            return;
        }
        for item in &mut car {
            let failed = item.is_err();
            if tx.blocking_send(item.map(CarItem::Block)).is_err() || failed {
                return;
            }
        }
    });

    let car_error = |e: NodeError| match e {
        NodeError::Malformed { .. } | NodeError::BadBlock { .. } | NodeError::TooLarge { .. } => {
            ApiError::bad_request(format!("add: {e}"))
        }
        e => node_error(e),
    };
    let root = match rx.recv().await {
        Some(Ok(CarItem::Roots(roots))) if roots.len() == 1 => roots[0],
        Some(Ok(CarItem::Roots(roots))) => {
            return Err(ApiError::bad_request(format!(
                "add: only CAR files with a single root are supported (this one has {})",
                roots.len()
            )));
        }
        Some(Err(e)) => return Err(car_error(e)),
        Some(Ok(CarItem::Block(_))) | None => {
            return Err(ApiError::internal("add: the CAR reader stopped early"));
        }
    };
    let (mut total, mut size) = (0u64, 0u64);
    while let Some(item) = rx.recv().await {
        let block = match item {
            Ok(CarItem::Block(b)) => b,
            Ok(CarItem::Roots(_)) => unreachable!("roots come once, first"),
            Err(e) => return Err(car_error(e)),
        };
        total += block.data().len() as u64;
        if block.cid() == &root {
            size = unixfs_size(&block);
        }
        dests.put(block).await?;
    }
    parser
        .await
        .map_err(|e| ApiError::internal(format!("add: the CAR reader failed: {e}")))?;
    let out = AddedOutput {
        name: path,
        cid: root,
        bytes: total,
        size,
        allocations: vec![],
    };
    sink.send(Ok(out))
        .await
        .map_err(|_| ApiError::internal("add: the output went away"))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use ipfs::KuboConnector;
    use ipfs::testing::KuboDaemon;
    use ipfs_node::unixfs::{self, AddOptions};

    use super::*;
    use crate::add::tests::{dir, file, query, run};

    fn car(roots: &[Cid], blocks: Vec<Block>) -> Vec<u8> {
        let mut out = Vec::new();
        ipfs_node::write_car(roots, blocks, &mut out).unwrap();
        out
    }

    fn params(wrap: bool) -> AddParams {
        let wrap = if wrap { "true" } else { "false" };
        query(&[("format", "car"), ("wrap-with-directory", wrap)])
    }

    /// A 1 MiB file's CAR goes into a real Kubo block by block: Kubo cats
    /// the file back; one output with Go's fields; the files after the
    /// CAR are not read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_car_is_imported_into_kubo() {
        let kubo = KuboDaemon::start();
        let ipfs = KuboConnector::new(kubo.config()).unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        let (root, blocks) = unixfs::add_bytes(&data, &AddOptions::default()).unwrap();
        let total: u64 = blocks.iter().map(|b| b.data().len() as u64).sum();
        let bytes = car(&[root.cid], blocks);

        let (got, outs) = run(
            &ipfs,
            &params(false),
            vec![
                file("file.car", &bytes, 1000),
                file("ignored.car", b"junk", 1000),
            ],
        )
        .await;
        assert_eq!(got.unwrap(), root.cid);
        assert_eq!(outs.len(), 1);
        assert_eq!(
            (
                outs[0].name.as_str(),
                outs[0].cid,
                outs[0].bytes,
                outs[0].size
            ),
            ("file.car", root.cid, total, 1 << 20)
        );
        let out = kubo.cli(&["cat", &root.cid.to_string()]);
        assert!(out.status.success());
        assert!(out.stdout == data, "Kubo reads the file back");
    }

    /// What Go refuses is a 400 with Go's words; a forged block is caught
    /// by its CID.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_uploads_are_400s() {
        let kubo = KuboDaemon::start();
        let ipfs = KuboConnector::new(kubo.config()).unwrap();
        let (a, a_blocks) = unixfs::add_bytes(b"a", &AddOptions::default()).unwrap();
        let (b, b_blocks) = unixfs::add_bytes(b"b", &AddOptions::default()).unwrap();
        let mut all = a_blocks.clone();
        all.extend(b_blocks);
        let forged = {
            let (cid, _) = a_blocks[0].clone().into_parts();
            let mut out = car(&[cid], vec![]);
            // A section whose bytes don't hash to its CID.
            let mut section = cid.to_bytes();
            section.extend_from_slice(b"not the block");
            let mut len = unsigned_varint::encode::usize_buffer();
            out.extend_from_slice(unsigned_varint::encode::usize(section.len(), &mut len));
            out.extend_from_slice(&section);
            out
        };
        for (params, entries, needle) in [
            (
                params(false),
                vec![file("two.car", &car(&[a.cid, b.cid], all.clone()), 1000)],
                "only CAR files with a single root are supported",
            ),
            (
                params(false),
                vec![file("none.car", &car(&[], all.clone()), 1000)],
                "single root",
            ),
            (
                params(true),
                vec![file("a.car", &car(&[a.cid], a_blocks.clone()), 1000)],
                "cannot wrap a CAR file upload",
            ),
            (params(false), vec![dir("dir")], "is a directory"),
            (params(false), vec![], "no files"),
            (
                params(false),
                vec![file("junk.car", b"not a car at all", 1000)],
                "CAR",
            ),
            (
                params(false),
                vec![file("forged.car", &forged, 1000)],
                &a.cid.to_string(),
            ),
        ] {
            let (got, outs) = run(&ipfs, &params, entries).await;
            let e = got.unwrap_err();
            assert_eq!(e.status, 400, "{needle}: {e:?}");
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
            assert!(outs.is_empty());
        }
    }
}
