//! UnixFS, producing the CIDs Kubo's `ipfs add` produces (boxo v0.40,
//! Kubo v0.42) for the same parameters, and reading files and directories
//! back.
//!
//! - [`data`]: the UnixFS `Data` protobuf.
//! - [`chunker`]: fixed-size chunks (`size-N`).
//! - [`FileAdder`]: a streaming file import, balanced (default) or
//!   trickle layout, CIDv0/v1, raw or UnixFS leaves.
//! - [`DirBuilder`]: directories (and `--wrap-with-directory`), sharded
//!   as a HAMT past Kubo's threshold ([`hamt`]).
//! - [`FileReader`], [`cat`], [`ls`], [`lookup`]: reading back.
//!
//! Not done: content-defined chunkers (rabin, buzhash), symlinks, mode/mtime metadata, inline CIDs,
//! hash functions other than sha2-256.

mod balanced;
pub mod chunker;
pub mod data;
mod dir;
mod file;
pub mod hamt;
mod reader;
mod trickle;

pub use chunker::{Chunker, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};
pub use dir::{DirBuilder, HAMT_SHARDING_THRESHOLD};
pub use file::{AddOptions, Added, DEFAULT_LINKS_PER_BLOCK, FileAdder, Layout};
pub use reader::{DirEntry, FileReader, Lookup, cat, lookup, ls};

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

    use ipfs::testing::noise;

    fn store(blocks: &[Block]) -> HashMap<Cid, Bytes> {
        blocks
            .iter()
            .map(|b| (*b.cid(), b.data().clone()))
            .collect()
    }

    fn getter(blocks: &[Block]) -> impl FnMut(&Cid) -> Result<Bytes, NodeError> {
        let store = store(blocks);
        move |c| {
            store.get(c).cloned().ok_or(NodeError::Malformed {
                what: "test",
                reason: format!("missing {c}"),
            })
        }
    }

    fn read(root: &Cid, blocks: &[Block]) -> Vec<u8> {
        cat(root, &mut getter(blocks)).unwrap()
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
        let names: Vec<String> = ls(&root.cid, &mut getter(&blocks))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["B", "a", "empty", "sub"]);
        assert_eq!(
            blocks[0].cid().to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
            "the empty directory"
        );
        let file = blocks.iter().find(|b| b.cid() == &a.cid);
        assert!(file.is_none(), "files' blocks are the caller's");
        let (x, x_blocks) = add_bytes(b"x", &opts).unwrap();
        assert!(ls(&x.cid, &mut getter(&x_blocks)).is_err());
    }

    #[test]
    fn wrapping_names_the_file() {
        let opts = AddOptions {
            wrap_with_directory: true,
            ..AddOptions::default()
        };
        let (root, blocks) = add_named("hi.txt", b"hi", &opts).unwrap();
        let entries = ls(&root.cid, &mut getter(&blocks)).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "hi.txt");
        assert_eq!(read(&entries[0].cid, &blocks), b"hi");
        assert_eq!(root.bytes, 2);
        assert!(cat(&root.cid, &mut |c| Ok(store(&blocks)[c].clone())).is_err());
    }

    /// A directory of `n` entries named by `name`, every one the same
    /// one-byte file: the root and the directory's blocks.
    fn wide_dir(n: usize, name: impl Fn(usize) -> String) -> (Added, Vec<Block>) {
        let opts = AddOptions::default();
        let (file, file_blocks) = add_bytes(b"x", &opts).unwrap();
        let mut dir = DirBuilder::new(&opts).unwrap();
        for i in 0..n {
            dir.add(&name(i), file).unwrap();
        }
        let mut blocks = file_blocks;
        let root = dir
            .finish(&mut |b| {
                blocks.push(b);
                Ok(())
            })
            .unwrap();
        (root, blocks)
    }

    fn kind(root: &Cid, blocks: &[Block]) -> data::DataType {
        let block = blocks.iter().find(|b| b.cid() == root).unwrap();
        let node = crate::dagpb::PbNode::decode(block.data()).unwrap();
        data::Data::decode(node.data.as_deref().unwrap())
            .unwrap()
            .kind
    }

    /// Links estimated at exactly the threshold (4096 x (30 + 34) bytes)
    /// stay one node; one byte more shards, as boxo's `>` does.
    #[test]
    fn directories_shard_just_past_the_threshold() {
        assert_eq!(4096 * (30 + 34), HAMT_SHARDING_THRESHOLD);
        let (at, blocks) = wide_dir(4096, |i| format!("{i:030}"));
        assert_eq!(kind(&at.cid, &blocks), data::DataType::Directory);
        // The last name one byte longer.
        let (past, blocks) = wide_dir(4096, |i| {
            if i == 4095 {
                format!("{i:031}")
            } else {
                format!("{i:030}")
            }
        });
        assert_eq!(kind(&past.cid, &blocks), data::DataType::HamtShard);
    }

    /// A sharded directory lists every entry once, finds each by name
    /// through its shards, and counts sizes like a plain one.
    #[test]
    fn sharded_directories_list_and_look_up() {
        let (root, blocks) = wide_dir(6000, |i| format!("entry-{i:08}"));
        assert_eq!(kind(&root.cid, &blocks), data::DataType::HamtShard);
        let entries = ls(&root.cid, &mut getter(&blocks)).unwrap();
        let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), 6000);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 6000, "no entry twice");
        assert!(
            entries.iter().all(|e| e.size == 9),
            "a one-byte file's tsize"
        );
        assert_eq!(root.bytes, 6000);
        let dag_bytes: u64 = blocks[1..].iter().map(|b| b.data().len() as u64).sum();
        assert_eq!(root.size, dag_bytes + 6000 * 9);

        let by_cid = store(&blocks);
        let find = |name: &str| {
            let (mut at, mut depth) = (root.cid, 0);
            loop {
                let block = Block::verified(at, by_cid[&at].clone()).unwrap();
                match lookup(&block, name, depth).unwrap() {
                    Lookup::Descend(next) => (at, depth) = (next, depth + 1),
                    other => return (other, depth),
                }
            }
        };
        let file = entries[0].cid;
        let mut deepest = 0;
        for i in (0..6000).step_by(7) {
            let (found, depth) = find(&format!("entry-{i:08}"));
            assert_eq!(found, Lookup::Found(file));
            deepest = deepest.max(depth);
        }
        assert!(
            deepest >= 1,
            "6000 names over 256 slots need a second level"
        );
        assert_eq!(find("entry-99999999").0, Lookup::Missing);
        assert_eq!(find("nope").0, Lookup::Missing);
    }
}
