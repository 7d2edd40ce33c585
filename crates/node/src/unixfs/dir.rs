//! Directories: [`DirBuilder`] holds a tree of entries and writes each
//! directory as one dag-pb node whose links are its entries, sorted by
//! name (bytewise, as go-merkledag sorts them), each carrying the entry's
//! cumulative size; or, past Kubo's sharding threshold, as a HAMT
//! ([`super::hamt`]).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::data::{Data, DataType};
use super::file::{AddOptions, Added};
use crate::dagpb::{PbLink, PbNode};
use crate::{Block, DAG_PB, NodeError};

/// Kubo's `Import.UnixFSHAMTDirectorySizeThreshold`: a directory whose
/// links are estimated (names plus CID bytes, Kubo's default `links`
/// estimation) above this (strictly) is written as a HAMT.
pub const HAMT_SHARDING_THRESHOLD: usize = 256 * 1024;

#[derive(Debug)]
enum Entry {
    Done(Added),
    Dir(BTreeMap<String, Entry>),
}

/// A directory tree being added: files (already added) and
/// subdirectories, by path.
#[derive(Debug)]
pub struct DirBuilder {
    v0: bool,
    root: BTreeMap<String, Entry>,
}

impl DirBuilder {
    /// An empty directory whose nodes get `opts.cid_version`.
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] for an unknown CID version.
    pub fn new(opts: &AddOptions) -> Result<Self, NodeError> {
        Ok(DirBuilder {
            v0: opts.v0()?,
            root: BTreeMap::new(),
        })
    }

    /// Puts a finished file or directory at `path` (`a/b/name`; missing
    /// parents are created, an entry of the same name is replaced).
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] for an empty path component, `.` or
    /// `..`, or a parent that is a file.
    pub fn add(&mut self, path: &str, added: Added) -> Result<(), NodeError> {
        let (parents, name) = split(path)?;
        self.parent_of(&parents)?
            .insert(name.to_owned(), Entry::Done(added));
        Ok(())
    }

    /// Makes the directory `path` (and its parents), empty unless entries
    /// are added under it; an existing directory is kept.
    ///
    /// # Errors
    /// As [`DirBuilder::add`].
    pub fn mkdir(&mut self, path: &str) -> Result<(), NodeError> {
        let (parents, name) = split(path)?;
        let parent = self.parent_of(&parents)?;
        if !matches!(parent.get(name), Some(Entry::Dir(_))) {
            parent.insert(name.to_owned(), Entry::Dir(BTreeMap::new()));
        }
        Ok(())
    }

    fn parent_of(&mut self, parents: &[&str]) -> Result<&mut BTreeMap<String, Entry>, NodeError> {
        let mut dir = &mut self.root;
        for p in parents {
            let entry = dir
                .entry((*p).to_owned())
                .or_insert_with(|| Entry::Dir(BTreeMap::new()));
            dir = match entry {
                Entry::Dir(d) => d,
                Entry::Done(_) => {
                    return Err(NodeError::InvalidArgument {
                        what: "directory path",
                        reason: format!("{p:?} is a file, not a directory"),
                    });
                }
            };
        }
        Ok(dir)
    }

    /// Writes every directory node (children before parents) to `sink`;
    /// the root directory.
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] for a sharded directory with two
    /// names of equal 64-bit hash (Kubo refuses those too); whatever
    /// `sink` returns.
    pub fn finish(
        self,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Added, NodeError> {
        write_dir(self.root, self.v0, sink)
    }
}

fn split(path: &str) -> Result<(Vec<&str>, &str), NodeError> {
    let mut parts: Vec<&str> = path.split('/').collect();
    if let Some(bad) = parts
        .iter()
        .find(|p| p.is_empty() || **p == "." || **p == "..")
    {
        return Err(NodeError::InvalidArgument {
            what: "directory path",
            reason: format!("bad component {bad:?} in {path:?}"),
        });
    }
    let name = parts.pop().expect("split yields at least one part");
    Ok((parts, name))
}

/// One directory from its entries (subdirectories written first): a
/// single node, or a HAMT when its links would pass the threshold.
fn write_dir(
    entries: BTreeMap<String, Entry>,
    v0: bool,
    sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
) -> Result<Added, NodeError> {
    let mut done = Vec::with_capacity(entries.len());
    let mut estimate = 0usize;
    for (name, entry) in entries {
        let added = match entry {
            Entry::Done(a) => a,
            Entry::Dir(d) => write_dir(d, v0, sink)?,
        };
        estimate += name.len() + added.cid.encoded_len();
        done.push((name, added));
    }
    if estimate > HAMT_SHARDING_THRESHOLD {
        return super::hamt::write(done, v0, sink);
    }
    let (mut tsizes, mut bytes) = (0u64, 0u64);
    let links = done
        .into_iter()
        .map(|(name, added)| {
            tsizes += added.size;
            bytes += added.bytes;
            PbLink {
                cid: added.cid,
                name: Some(name),
                tsize: Some(added.size),
            }
        })
        .collect();
    write_node(
        links,
        &Data::new(DataType::Directory),
        (tsizes, bytes),
        v0,
        sink,
    )
}

/// Writes one directory-like node (a directory or a HAMT shard) of `links`
/// and UnixFS `data` to `sink`; `(tsizes, bytes)` sum its links' cumulative
/// sizes and file bytes.
pub(super) fn write_node(
    links: Vec<PbLink>,
    data: &Data,
    (tsizes, bytes): (u64, u64),
    v0: bool,
    sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
) -> Result<Added, NodeError> {
    let node = PbNode {
        links,
        data: Some(Bytes::from(data.encode())),
    };
    let block = Block::new(DAG_PB, Bytes::from(node.encode()), v0);
    let added = Added {
        cid: *block.cid(),
        size: block.data().len() as u64 + tsizes,
        bytes,
    };
    sink(block)?;
    Ok(added)
}
