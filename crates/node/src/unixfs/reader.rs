//! Reading UnixFS back: a file's bytes in order ([`FileReader`], [`cat`])
//! and a directory's entries ([`ls`]). Blocks come from a caller-supplied
//! getter and are checked against their CIDs.

use bytes::Bytes;
use cid::Cid;

use super::data::{Data, DataType};
use crate::dagpb::PbNode;
use crate::{Block, DAG_PB, NodeError, RAW};

/// Streams a UnixFS file's bytes, one block's worth at a time, walking the
/// DAG depth-first with an explicit stack (memory: the pending links).
pub struct FileReader<G> {
    get: G,
    /// Blocks still to read, the next one last.
    pending: Vec<Cid>,
    root: Cid,
    started: bool,
}

impl<G> std::fmt::Debug for FileReader<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("root", &self.root)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<G: FnMut(&Cid) -> Result<Bytes, NodeError>> FileReader<G> {
    /// A reader of the file at `root`, fetching blocks with `get`.
    pub fn new(root: Cid, get: G) -> Self {
        FileReader {
            get,
            pending: vec![root],
            root,
            started: false,
        }
    }

    /// The next bytes of the file (never empty), or `None` at its end.
    ///
    /// # Errors
    /// What the getter returns; [`NodeError::BadBlock`] for a block that
    /// doesn't match its CID; [`NodeError::InvalidArgument`] when the root
    /// is not a file; [`NodeError::Malformed`] or
    /// [`NodeError::Unsupported`] for a DAG that isn't a UnixFS file.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, NodeError> {
        while let Some(cid) = self.pending.pop() {
            let is_root = !self.started;
            self.started = true;
            let block = Block::verified(cid, (self.get)(&cid)?)?;
            let bytes = match cid.codec() {
                RAW => block.into_parts().1,
                DAG_PB => {
                    let node = PbNode::decode(block.data())?;
                    let data = Data::decode(node.data.as_deref().unwrap_or_default())?;
                    match data.kind {
                        DataType::File | DataType::Raw => {}
                        other if is_root => {
                            return Err(NodeError::InvalidArgument {
                                what: "UnixFS file",
                                reason: format!("{cid} is a {other:?}, not a file"),
                            });
                        }
                        other => {
                            return Err(NodeError::Malformed {
                                what: "UnixFS file",
                                reason: format!("{cid}: a {other:?} inside a file"),
                            });
                        }
                    }
                    if !data.blocksizes.is_empty() && data.blocksizes.len() != node.links.len() {
                        return Err(NodeError::Malformed {
                            what: "UnixFS file",
                            reason: format!(
                                "{cid}: {} blocksizes for {} links",
                                data.blocksizes.len(),
                                node.links.len()
                            ),
                        });
                    }
                    self.pending.extend(node.links.iter().rev().map(|l| l.cid));
                    data.data.unwrap_or_default()
                }
                code => {
                    return Err(NodeError::Unsupported {
                        what: "codec",
                        code,
                    });
                }
            };
            if !bytes.is_empty() {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }
}

impl<G: FnMut(&Cid) -> Result<Bytes, NodeError>> Iterator for FileReader<G> {
    type Item = Result<Bytes, NodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

/// The whole file at `root`.
///
/// # Errors
/// As [`FileReader::next_chunk`].
pub fn cat(
    root: &Cid,
    get: &mut dyn FnMut(&Cid) -> Result<Bytes, NodeError>,
) -> Result<Vec<u8>, NodeError> {
    let mut out = Vec::new();
    let mut reader = FileReader::new(*root, get);
    while let Some(chunk) = reader.next_chunk()? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name.
    pub name: String,
    /// Its root.
    pub cid: Cid,
    /// Its cumulative DAG size (the link's `Tsize`).
    pub size: u64,
}

/// The entries of the directory `block`, in link order.
///
/// # Errors
/// [`NodeError::InvalidArgument`] when it isn't a UnixFS directory;
/// [`NodeError::NotImplemented`] for a HAMT shard;
/// [`NodeError::Malformed`] for undecodable bytes.
pub fn ls(block: &Block) -> Result<Vec<DirEntry>, NodeError> {
    let not_a_dir = || NodeError::InvalidArgument {
        what: "UnixFS directory",
        reason: format!("{} is not a directory", block.cid()),
    };
    if block.cid().codec() != DAG_PB {
        return Err(not_a_dir());
    }
    let node = PbNode::decode(block.data())?;
    let data = Data::decode(node.data.as_deref().unwrap_or_default())?;
    match data.kind {
        DataType::Directory => {}
        DataType::HamtShard => {
            return Err(NodeError::NotImplemented {
                what: "listing HAMT-sharded directories",
            });
        }
        _ => return Err(not_a_dir()),
    }
    Ok(node
        .links
        .into_iter()
        .map(|l| DirEntry {
            name: l.name.unwrap_or_default(),
            cid: l.cid,
            size: l.tsize.unwrap_or_default(),
        })
        .collect())
}
