//! A UnixFS file's bytes, or a range of them, read from the store block by
//! block: children wholly before or after the range are skipped using the
//! `blocksizes` of their parents, so a range near the end of a large file
//! reads only the blocks on its way.

use bytes::Bytes;
use cid::Cid;

use super::GatewayError;
use super::resolve::block;
use crate::dagpb::PbNode;
use crate::unixfs::data::{Data, DataType};
use crate::{Block, DAG_PB, NodeError, RAW, Store};

/// What the block at the end of a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A UnixFS file (or a raw block) of this many bytes.
    File(u64),
    /// A UnixFS directory, plain or HAMT-sharded.
    Directory,
    /// Anything else: a symlink, dag-cbor, ... (multicodec, description).
    Other(u64, &'static str),
}

/// What `block` is.
///
/// # Errors
/// 500 for a dag-pb block that isn't UnixFS.
pub(super) fn kind(block: &Block) -> Result<Kind, GatewayError> {
    match block.cid().codec() {
        RAW => Ok(Kind::File(block.data().len() as u64)),
        DAG_PB => {
            let node = PbNode::decode(block.data())?;
            let data = Data::decode(node.data.as_deref().unwrap_or_default())?;
            Ok(match data.kind {
                DataType::File | DataType::Raw => Kind::File(data.file_size()),
                DataType::Directory | DataType::HamtShard => Kind::Directory,
                DataType::Symlink => Kind::Other(DAG_PB, "UnixFS symlink"),
                DataType::Metadata => Kind::Other(DAG_PB, "UnixFS metadata node"),
            })
        }
        crate::DAG_CBOR => Ok(Kind::Other(crate::DAG_CBOR, "dag-cbor block")),
        crate::DAG_JSON => Ok(Kind::Other(crate::DAG_JSON, "dag-json block")),
        code => Ok(Kind::Other(code, "block of another codec")),
    }
}

/// Reads bytes `start..end` of the file at a root, in order, one block's
/// worth at a time (memory: the pending links of the path being read).
#[derive(Debug)]
pub(super) struct RangeReader {
    store: Store,
    /// Blocks still to read with the file offset each starts at, the next
    /// one last.
    pending: Vec<(Cid, u64)>,
    start: u64,
    end: u64,
}

impl RangeReader {
    /// A reader of bytes `start..end` (end exclusive) of the file `root`.
    pub(super) fn new(store: Store, root: Cid, start: u64, end: u64) -> Self {
        Self {
            store,
            pending: if start < end {
                vec![(root, 0)]
            } else {
                Vec::new()
            },
            start,
            end,
        }
    }

    /// The next bytes of the range (never empty), `None` at its end.
    ///
    /// # Errors
    /// 404 for a block not held; 500 for a DAG that isn't a UnixFS file.
    pub(super) fn next_chunk(&mut self) -> Result<Option<Bytes>, GatewayError> {
        while let Some((cid, offset)) = self.pending.pop() {
            let block = block(&self.store, &cid)?;
            let bytes = match cid.codec() {
                RAW => block.into_parts().1,
                DAG_PB => self.file_node(&block, offset)?,
                code => {
                    return Err(NodeError::Unsupported {
                        what: "codec inside a file",
                        code,
                    }
                    .into());
                }
            };
            // The part of `bytes` (at `offset`) inside the range.
            let from = self.start.saturating_sub(offset);
            let to = (self.end - offset.min(self.end)).min(bytes.len() as u64);
            if from < to {
                // Both fit in usize: they are at most `bytes.len()`.
                return Ok(Some(bytes.slice(from as usize..to as usize)));
            }
        }
        Ok(None)
    }

    /// A dag-pb file node at `offset`: queues its children that overlap
    /// the range; returns its inline data.
    fn file_node(&mut self, block: &Block, offset: u64) -> Result<Bytes, GatewayError> {
        let node = PbNode::decode(block.data())?;
        let data = Data::decode(node.data.as_deref().unwrap_or_default())?;
        if !matches!(data.kind, DataType::File | DataType::Raw) {
            return Err(NodeError::Malformed {
                what: "UnixFS file",
                reason: format!("{}: a {:?} inside a file", block.cid(), data.kind),
            }
            .into());
        }
        if data.blocksizes.len() != node.links.len() {
            return Err(NodeError::Malformed {
                what: "UnixFS file",
                reason: format!(
                    "{}: {} blocksizes for {} links",
                    block.cid(),
                    data.blocksizes.len(),
                    node.links.len()
                ),
            }
            .into());
        }
        let inline = data.data.unwrap_or_default();
        let mut at = offset + inline.len() as u64;
        let mut children = Vec::new();
        for (link, size) in node.links.iter().zip(&data.blocksizes) {
            if at < self.end && at + size > self.start {
                children.push((link.cid, at));
            }
            at += size;
        }
        self.pending.extend(children.into_iter().rev());
        Ok(inline)
    }
}
