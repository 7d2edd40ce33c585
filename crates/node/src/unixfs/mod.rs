//! UnixFS, producing the CIDs Kubo's `ipfs add` produces (boxo v0.40,
//! Kubo v0.42) for the same parameters, and reading files and directories
//! back.
//!
//! - [`data`]: the UnixFS `Data` protobuf.
//! - [`chunker`]: fixed-size chunks (`size-N`).
//! - [`FileAdder`]: a streaming file import, balanced (default) or
//!   trickle layout, CIDv0/v1, raw or UnixFS leaves.
//! - [`DirBuilder`]: directories (and `--wrap-with-directory`).
//! - [`FileReader`], [`cat`], [`ls`]: reading back.
//!
//! Not done: HAMT-sharded directories (refused with
//! [`NodeError::NotImplemented`] where Kubo would shard), content-defined
//! chunkers (rabin, buzhash), symlinks, mode/mtime metadata, inline CIDs,
//! hash functions other than sha2-256.

mod balanced;
pub mod chunker;
pub mod data;
mod dir;
mod file;
mod reader;
mod trickle;

pub use chunker::{Chunker, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};
pub use dir::{DirBuilder, HAMT_SHARDING_THRESHOLD};
pub use file::{AddOptions, Added, DEFAULT_LINKS_PER_BLOCK, FileAdder, Layout};
pub use reader::{DirEntry, FileReader, cat, ls};

use crate::{Block, NodeError};

/// Adds `data` as one file; the root and every block (children before
/// parents). `opts.wrap_with_directory` is not applied: a wrapped file
/// needs a name ([`add_named`]).
///
/// # Errors
/// The option errors of [`FileAdder::new`].
pub fn add_bytes(data: &[u8], opts: &AddOptions) -> Result<(Added, Vec<Block>), NodeError> {
    let mut blocks = Vec::new();
    let mut sink = |b: Block| {
        blocks.push(b);
        Ok(())
    };
    let mut adder = FileAdder::new(opts)?;
    adder.push(data, &mut sink)?;
    let added = adder.finish(&mut sink)?;
    Ok((added, blocks))
}

/// Adds `data` as the file `name`: with `opts.wrap_with_directory`, the
/// root is a directory holding it under that name (Kubo's `-w`);
/// otherwise as [`add_bytes`].
///
/// # Errors
/// As [`add_bytes`]; [`NodeError::InvalidArgument`] for a name that isn't
/// one path component.
pub fn add_named(
    name: &str,
    data: &[u8],
    opts: &AddOptions,
) -> Result<(Added, Vec<Block>), NodeError> {
    let (file, mut blocks) = add_bytes(data, opts)?;
    if !opts.wrap_with_directory {
        return Ok((file, blocks));
    }
    if name.contains('/') {
        return Err(NodeError::InvalidArgument {
            what: "file name",
            reason: format!("{name:?} contains '/'"),
        });
    }
    let mut dir = DirBuilder::new(opts)?;
    dir.add(name, file)?;
    let root = dir.finish(&mut |b| {
        blocks.push(b);
        Ok(())
    })?;
    Ok((root, blocks))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use cid::Cid;

    use super::*;

    /// Deterministic bytes that differ chunk to chunk.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn store(blocks: &[Block]) -> HashMap<Cid, Bytes> {
        blocks
            .iter()
            .map(|b| (*b.cid(), b.data().clone()))
            .collect()
    }

    fn read(root: &Cid, blocks: &[Block]) -> Vec<u8> {
        let store = store(blocks);
        cat(root, &mut |c| {
            store.get(c).cloned().ok_or(NodeError::Malformed {
                what: "test",
                reason: format!("missing {c}"),
            })
        })
        .unwrap()
    }

    #[test]
    fn known_kubo_cids() {
        let v0 = AddOptions::default();
        let (empty, blocks) = add_bytes(b"", &v0).unwrap();
        assert_eq!(
            empty.cid.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!((empty.size, empty.bytes, blocks.len()), (6, 0, 1));
        let v1 = AddOptions {
            cid_version: 1,
            ..AddOptions::default()
        };
        let (hello, _) = add_bytes(b"hello", &v1).unwrap();
        assert_eq!(
            hello.cid.to_string(),
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
        assert_eq!(hello.size, 5);
    }

    #[test]
    fn every_layout_reads_back_and_sizes_add_up() {
        for layout in [Layout::Balanced, Layout::Trickle] {
            for raw_leaves in [false, true] {
                for len in [0, 1, 100, 1000, 1001, 5000, 60_000] {
                    let opts = AddOptions {
                        chunk_size: 10,
                        max_links: 4,
                        layout,
                        raw_leaves: Some(raw_leaves),
                        ..AddOptions::default()
                    };
                    let data = noise(len, len as u64);
                    let (added, blocks) = add_bytes(&data, &opts).unwrap();
                    assert_eq!(read(&added.cid, &blocks), data, "{layout:?} {len}");
                    assert_eq!(added.bytes, len as u64);
                    let total: u64 = blocks.iter().map(|b| b.data().len() as u64).sum();
                    assert_eq!(added.size, total, "{layout:?} {len}");
                    assert_eq!(blocks.last().unwrap().cid(), &added.cid);
                }
            }
        }
    }

    #[test]
    fn pushes_of_any_size_give_the_same_dag() {
        let data = noise(50_000, 7);
        let opts = AddOptions {
            chunk_size: 100,
            max_links: 5,
            ..AddOptions::default()
        };
        let (whole, blocks) = add_bytes(&data, &opts).unwrap();
        let mut streamed = Vec::new();
        let mut adder = FileAdder::new(&opts).unwrap();
        let mut sink = |b: Block| {
            streamed.push(b);
            Ok(())
        };
        for piece in data.chunks(37) {
            adder.push(piece, &mut sink).unwrap();
        }
        assert_eq!(adder.finish(&mut sink).unwrap(), whole);
        assert_eq!(streamed, blocks);
    }

    #[test]
    fn balanced_depth_grows_only_past_a_full_level() {
        let opts = AddOptions {
            chunk_size: 1,
            max_links: 3,
            raw_leaves: Some(true),
            ..AddOptions::default()
        };
        // One leaf: the leaf is the root. 2..=3: one node. 4..=9: two
        // levels. 10: three.
        let nodes = |n: usize| add_bytes(&noise(n, 1), &opts).unwrap().1.len() - n;
        assert_eq!(nodes(1), 0);
        assert_eq!(nodes(3), 1);
        assert_eq!(nodes(4), 3);
        assert_eq!(nodes(9), 4);
        assert_eq!(nodes(10), 7);
    }

    #[test]
    fn directories_sort_entries_and_list_back() {
        let opts = AddOptions::default();
        let mut blocks = Vec::new();
        let mut sink = |b: Block| {
            blocks.push(b);
            Ok(())
        };
        let (a, _) = add_bytes(b"a", &opts).unwrap();
        let (b, _) = add_bytes(b"bb", &opts).unwrap();
        let mut dir = DirBuilder::new(&opts).unwrap();
        dir.add("sub/z", b).unwrap();
        dir.add("B", a).unwrap();
        dir.add("a", a).unwrap();
        dir.mkdir("empty").unwrap();
        assert!(dir.add("a/x", a).is_err(), "a is a file");
        assert!(dir.add("x//y", a).is_err());
        let root = dir.finish(&mut sink).unwrap();
        assert_eq!(root.bytes, 4);
        let top = blocks.iter().find(|b| b.cid() == &root.cid).unwrap();
        let names: Vec<String> = ls(top).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["B", "a", "empty", "sub"]);
        assert_eq!(
            blocks[0].cid().to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
            "the empty directory"
        );
        let file = blocks.iter().find(|b| b.cid() == &a.cid);
        assert!(file.is_none(), "files' blocks are the caller's");
        assert!(ls(&add_bytes(b"x", &opts).unwrap().1[0]).is_err());
    }

    #[test]
    fn wrapping_names_the_file() {
        let opts = AddOptions {
            wrap_with_directory: true,
            ..AddOptions::default()
        };
        let (root, blocks) = add_named("hi.txt", b"hi", &opts).unwrap();
        let entries = ls(blocks.last().unwrap()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "hi.txt");
        assert_eq!(read(&entries[0].cid, &blocks), b"hi");
        assert_eq!(root.bytes, 2);
        assert!(cat(&root.cid, &mut |c| Ok(store(&blocks)[c].clone())).is_err());
    }
}
