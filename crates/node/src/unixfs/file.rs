//! Adding a file: [`FileAdder`] chunks a byte stream, makes a leaf of each
//! chunk and arranges them in the chosen layout, handing each block to a
//! sink as soon as it is final.

use bytes::Bytes;
use cid::Cid;

use super::balanced::Balanced;
use super::chunker::{Chunker, DEFAULT_CHUNK_SIZE};
use super::data::{Data, DataType};
use super::trickle::Trickle;
use crate::dagpb::{PbLink, PbNode};
use crate::{Block, DAG_PB, NodeError, RAW};

/// Links per file node: boxo's `DefaultLinksPerBlock` (8 KiB / 47 bytes
/// per link), Kubo's `Import.UnixFSFileMaxLinks` default.
pub const DEFAULT_LINKS_PER_BLOCK: usize = 174;

/// How a file's leaves are arranged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Kubo's default: a balanced tree.
    #[default]
    Balanced,
    /// `ipfs add --trickle`: suited to streaming reads.
    Trickle,
}

/// The parameters of `ipfs add` this importer honours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddOptions {
    /// Fixed chunk size (`--chunker=size-N`). **Default:** 262144.
    pub chunk_size: usize,
    /// CID version of dag-pb nodes (`--cid-version`). **Default:** 0.
    pub cid_version: u8,
    /// Leaves as raw blocks (`--raw-leaves`). **Default:** `None`, Kubo's
    /// rule: raw leaves with CIDv1, UnixFS leaves with CIDv0.
    pub raw_leaves: Option<bool>,
    /// DAG layout (`--trickle`). **Default:** balanced.
    pub layout: Layout,
    /// Wrap the result in a directory (`--wrap-with-directory`), done by
    /// [`add_named`](super::add_named) and the caller of
    /// [`DirBuilder`](super::DirBuilder); [`FileAdder`] ignores it.
    /// **Default:** false.
    pub wrap_with_directory: bool,
    /// Links per file node (`--max-file-links`). **Default:** 174.
    pub max_links: usize,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            cid_version: 0,
            raw_leaves: None,
            layout: Layout::Balanced,
            wrap_with_directory: false,
            max_links: DEFAULT_LINKS_PER_BLOCK,
        }
    }
}

impl AddOptions {
    /// Whether leaves are raw blocks, after Kubo's defaulting.
    pub fn effective_raw_leaves(&self) -> bool {
        self.raw_leaves.unwrap_or(self.cid_version > 0)
    }

    /// Whether dag-pb nodes get CIDv0.
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] for a version other than 0 or 1.
    pub(crate) fn v0(&self) -> Result<bool, NodeError> {
        match self.cid_version {
            0 => Ok(true),
            1 => Ok(false),
            v => Err(NodeError::InvalidArgument {
                what: "cid version",
                reason: format!("unknown CID version {v} (0 or 1)"),
            }),
        }
    }
}

/// What an add produced, as Kubo's `AddedOutput` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Added {
    /// The root.
    pub cid: Cid,
    /// The cumulative size of the DAG: every block's bytes (Kubo's `size`,
    /// the `Tsize` a link to it carries).
    pub size: u64,
    /// The file bytes below it (a directory: of all its files).
    pub bytes: u64,
}

/// A finished node, as its parent links to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Child {
    pub(crate) cid: Cid,
    /// Cumulative DAG size.
    pub(crate) tsize: u64,
    /// File bytes under it.
    pub(crate) filesize: u64,
}

impl From<Child> for Added {
    fn from(c: Child) -> Self {
        Added {
            cid: c.cid,
            size: c.tsize,
            bytes: c.filesize,
        }
    }
}

/// How nodes are made.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) v0: bool,
    pub(crate) raw_leaves: bool,
    pub(crate) max_links: usize,
}

impl Params {
    /// A leaf holding `chunk`: a raw block, or a dag-pb node with UnixFS
    /// data of `kind` (File for balanced, Raw for trickle, as boxo).
    pub(crate) fn leaf(
        &self,
        chunk: Bytes,
        kind: DataType,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Child, NodeError> {
        let filesize = chunk.len() as u64;
        let block = if self.raw_leaves {
            // Raw blocks are CIDv1 whatever the version of the rest.
            Block::new(RAW, chunk, false)
        } else {
            let mut data = Data::new(kind);
            data.filesize = Some(filesize);
            data.data = (!chunk.is_empty()).then_some(chunk);
            let node = PbNode {
                links: Vec::new(),
                data: Some(Bytes::from(data.encode())),
            };
            Block::new(DAG_PB, Bytes::from(node.encode()), self.v0)
        };
        let child = Child {
            cid: *block.cid(),
            tsize: block.data().len() as u64,
            filesize,
        };
        sink(block)?;
        Ok(child)
    }

    /// An internal file node over `children`.
    pub(crate) fn file_node(
        &self,
        children: &[Child],
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Child, NodeError> {
        let mut data = Data::new(DataType::File);
        data.blocksizes = children.iter().map(|c| c.filesize).collect();
        let filesize = data.blocksizes.iter().sum();
        data.filesize = Some(filesize);
        let node = PbNode {
            links: children
                .iter()
                .map(|c| PbLink {
                    cid: c.cid,
                    name: Some(String::new()),
                    tsize: Some(c.tsize),
                })
                .collect(),
            data: Some(Bytes::from(data.encode())),
        };
        let block = Block::new(DAG_PB, Bytes::from(node.encode()), self.v0);
        let child = Child {
            cid: *block.cid(),
            tsize: block.data().len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
            filesize,
        };
        sink(block)?;
        Ok(child)
    }
}

#[derive(Debug)]
enum Tree {
    Balanced(Balanced),
    Trickle(Trickle),
}

/// A streaming file importer: holds one chunk and the open nodes of the
/// tree (a few hundred links per level), never the file.
#[derive(Debug)]
pub struct FileAdder {
    chunker: Chunker,
    params: Params,
    tree: Tree,
    bytes: u64,
}

impl FileAdder {
    /// An importer for one file.
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] or [`NodeError::TooLarge`] for a
    /// chunk size, CID version or link count Kubo would refuse.
    pub fn new(opts: &AddOptions) -> Result<Self, NodeError> {
        if opts.max_links < 2 {
            return Err(NodeError::InvalidArgument {
                what: "max file links",
                reason: format!("{} (at least 2)", opts.max_links),
            });
        }
        Ok(FileAdder {
            chunker: Chunker::new(opts.chunk_size)?,
            params: Params {
                v0: opts.v0()?,
                raw_leaves: opts.effective_raw_leaves(),
                max_links: opts.max_links,
            },
            tree: match opts.layout {
                Layout::Balanced => Tree::Balanced(Balanced::new()),
                Layout::Trickle => Tree::Trickle(Trickle::new()),
            },
            bytes: 0,
        })
    }

    /// Feeds the next bytes of the file; blocks that are final go to
    /// `sink`.
    ///
    /// # Errors
    /// Whatever `sink` returns.
    pub fn push(
        &mut self,
        bytes: &[u8],
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        self.bytes += bytes.len() as u64;
        let (params, tree) = (&self.params, &mut self.tree);
        self.chunker
            .push(bytes, &mut |chunk| add_leaf(params, tree, chunk, sink))
    }

    /// Ends the file: the last blocks go to `sink`, the root is returned.
    ///
    /// # Errors
    /// Whatever `sink` returns.
    pub fn finish(
        mut self,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Added, NodeError> {
        if let Some(last) = self.chunker.finish() {
            add_leaf(&self.params, &mut self.tree, last, sink)?;
        }
        let root = match self.tree {
            Tree::Balanced(tree) => match tree.finish(&self.params, sink)? {
                Some(root) => root,
                // The empty file: one empty leaf (boxo's `NewLeafNode(nil)`).
                None => self.params.leaf(Bytes::new(), DataType::File, sink)?,
            },
            Tree::Trickle(tree) => tree.finish(&self.params, sink)?,
        };
        debug_assert_eq!(root.filesize, self.bytes);
        Ok(root.into())
    }
}

fn add_leaf(
    params: &Params,
    tree: &mut Tree,
    chunk: Bytes,
    sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    match tree {
        Tree::Balanced(t) => {
            let leaf = params.leaf(chunk, DataType::File, sink)?;
            t.push_leaf(leaf, params, sink)
        }
        Tree::Trickle(t) => {
            let leaf = params.leaf(chunk, DataType::Raw, sink)?;
            t.push_leaf(leaf, params, sink)
        }
    }
}
