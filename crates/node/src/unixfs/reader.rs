//! Reading UnixFS back: a file's bytes in order ([`FileReader`], [`cat`])
//! and a directory's entries, plain or HAMT-sharded ([`ls`], [`lookup`]). Blocks come from a caller-supplied
//! getter and are checked against their CIDs.

use bytes::Bytes;
use cid::Cid;

use super::data::{Data, DataType};
use super::hamt;
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

/// The UnixFS data of a directory node (plain or HAMT shard) and its links.
fn dir_node(block: &Block) -> Result<(Data, PbNode), NodeError> {
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
        DataType::Directory | DataType::HamtShard => Ok((data, node)),
        _ => Err(not_a_dir()),
    }
}

/// The entries of the directory at `root`: a plain directory's in link
/// order; a HAMT-sharded one's walking its shards with `get`, depth first
/// (each shard's own entries in link order, then its child shards, in
/// link order). Hash order, not name order, as with Kubo.
///
/// # Errors
/// [`NodeError::InvalidArgument`] when it isn't a UnixFS directory;
/// [`NodeError::Malformed`] for undecodable bytes or a shard that breaks
/// the HAMT layout; what `get` returns.
pub fn ls(
    root: &Cid,
    get: &mut dyn FnMut(&Cid) -> Result<Bytes, NodeError>,
) -> Result<Vec<DirEntry>, NodeError> {
    let mut entries = Vec::new();
    // Shards still to list, the next one last (depth-first, in link order).
    let mut pending = vec![*root];
    while let Some(cid) = pending.pop() {
        let block = Block::verified(cid, get(&cid)?)?;
        let (data, node) = dir_node(&block)?;
        if data.kind == DataType::Directory {
            if cid != *root {
                return Err(NodeError::Malformed {
                    what: "HAMT shard",
                    reason: format!("{cid} is a plain directory inside a shard"),
                });
            }
            entries.extend(node.links.into_iter().map(|l| DirEntry {
                name: l.name.unwrap_or_default(),
                cid: l.cid,
                size: l.tsize.unwrap_or_default(),
            }));
            continue;
        }
        let kinds = hamt::classify(&cid, &data, &node.links)?;
        let mut shards = Vec::new();
        for (link, kind) in node.links.into_iter().zip(kinds) {
            match kind {
                hamt::ShardLink::Entry(name) => entries.push(DirEntry {
                    name,
                    cid: link.cid,
                    size: link.tsize.unwrap_or_default(),
                }),
                hamt::ShardLink::Shard => shards.push(link.cid),
            }
        }
        pending.extend(shards.into_iter().rev());
    }
    Ok(entries)
}

/// One step of looking a name up in a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The entry's root.
    Found(Cid),
    /// A HAMT: look in this shard, with `depth` one more.
    Descend(Cid),
    /// No entry of that name.
    Missing,
}

/// Looks `name` up in the directory node `block`: a plain directory
/// answers at once; a HAMT shard at `depth` (0 for the directory's root)
/// may send the caller to a child shard, so a caller that fetches blocks
/// over the network fetches only the shards on the name's path.
///
/// # Errors
/// As [`ls`].
pub fn lookup(block: &Block, name: &str, depth: u32) -> Result<Lookup, NodeError> {
    let (data, node) = dir_node(block)?;
    if data.kind == DataType::Directory {
        return Ok(node
            .links
            .into_iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map_or(Lookup::Missing, |l| Lookup::Found(l.cid)));
    }
    Ok(
        match hamt::find(block.cid(), &data, &node.links, name, depth)? {
            hamt::Found::Entry(c) => Lookup::Found(c),
            hamt::Found::Shard(c) => Lookup::Descend(c),
            hamt::Found::Missing => Lookup::Missing,
        },
    )
}
