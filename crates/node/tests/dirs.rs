//! Directory trees between the embedded node ([`ipfs_node::Node`]) and a
//! real Kubo daemon (v0.42.0): Kubo's `ipfs add -r` pinned by our node over
//! Bitswap and read back from our store, and our own directory add
//! ([`unixfs::DirBuilder`]) giving Kubo's root CID, pinned and read by Kubo.
//! The tree holds a directory of 6000 files, which both sides shard as a
//! HAMT.
//!
//! Kubo tests need the binary: `$IPFS_BIN`, or `scripts/install-kubo`.

use std::collections::BTreeMap;
use std::path::Path;

use cid::Cid;
use ipfs::testing::KuboDaemon;
use ipfs::{IpfsConnector, IpfsPinType, PinLsFilter, PinMode};
use ipfs_node::unixfs::{self, AddOptions, DirBuilder};
use ipfs_node::{Block, Node, NodeError};

#[allow(dead_code)]
mod support;
use support::*;

const KIB: usize = 1 << 10;

async fn start_loopback() -> TestNode {
    start(loopback_config()).await
}

/// A block from the node's own store (never the network).
fn local_bytes(node: &Node, c: &Cid) -> Result<bytes::Bytes, NodeError> {
    node.store()
        .get_bytes(c)?
        .ok_or_else(|| NodeError::MissingBlock {
            cid: c.to_string(),
            root: c.to_string(),
        })
}

/// The test tree: files (path to bytes) and empty directories.
struct Tree {
    files: BTreeMap<String, Vec<u8>>,
    empty_dirs: Vec<&'static str>,
}

/// Files in the sharded directory `many/`: their links (about 45 bytes
/// each) pass Kubo's 256 KiB threshold.
const MANY: usize = 6000;

/// 21 files from 0 B to 1.5 MiB of pseudo-random bytes, three levels deep,
/// sizes around the 256 KiB chunk boundary, two empty directories; and
/// `many/`, a HAMT of [`MANY`] small files.
fn tree() -> Tree {
    let specs: [(&str, usize); 21] = [
        ("empty.bin", 0),
        ("one.bin", 1),
        ("small.txt", 100),
        ("4k.bin", 4 * KIB),
        ("chunk-1.bin", 256 * KIB - 1),
        ("chunk.bin", 256 * KIB),
        ("chunk+1.bin", 256 * KIB + 1),
        ("big.bin", 3 * MIB / 2),
        ("a/x.bin", 10),
        ("a/y.bin", 1000),
        ("a/mib.bin", MIB),
        ("a/Upper.bin", 333),
        ("a/b/deep.bin", 123_456),
        ("a/b/zero.bin", 0),
        ("a/b/c/deepest.bin", 700 * KIB),
        ("a/b/c/tiny.bin", 7),
        ("z/last.bin", 65_536),
        ("z/half.bin", 512 * KIB),
        ("z/nested/n1.bin", 2),
        ("z/nested/n2.bin", 9_999),
        ("z/nested/n3.bin", 3 * MIB / 2),
    ];
    let mut files: BTreeMap<String, Vec<u8>> = specs
        .iter()
        .enumerate()
        .map(|(i, (path, len))| ((*path).to_string(), pseudo_random(*len, 0x5eed + i as u64)))
        .collect();
    for i in 0..MANY {
        files.insert(
            format!("many/file-{i:05}.dat"),
            pseudo_random(i % 100, i as u64),
        );
    }
    Tree {
        files,
        empty_dirs: vec!["empty", "a/b/hollow"],
    }
}

/// Writes `tree` under `dir`.
fn write_tree(tree: &Tree, dir: &Path) {
    for (path, data) in &tree.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
    for d in &tree.empty_dirs {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
}

/// Walks the directory at `dir` from the node's store: files (path to
/// root) and directories (path to entry count).
fn walk_local(
    node: &Node,
    dir: &Cid,
    prefix: &str,
    files: &mut BTreeMap<String, Cid>,
    dirs: &mut BTreeMap<String, usize>,
) {
    let entries = unixfs::ls(dir, &mut |c| local_bytes(node, c)).unwrap();
    dirs.insert(prefix.to_string(), entries.len());
    for e in entries {
        let path = if prefix.is_empty() {
            e.name.clone()
        } else {
            format!("{prefix}/{}", e.name)
        };
        match unixfs::ls(&e.cid, &mut |c| local_bytes(node, c)) {
            Ok(_) => walk_local(node, &e.cid, &path, files, dirs),
            Err(NodeError::InvalidArgument { .. }) => {
                files.insert(path, e.cid);
            }
            Err(err) => panic!("{path}: {err}"),
        }
    }
}

/// `many/` is a HAMT shard, and paths through it resolve: the node walks
/// only the shards on the way.
async fn assert_sharded(node: &Node, root: &Cid) {
    let many = node.resolve(format!("/ipfs/{root}/many")).await.unwrap();
    let block = Block::verified(many, local_bytes(node, &many).unwrap()).unwrap();
    assert!(
        matches!(
            unixfs::lookup(&block, "file-00000.dat", 0),
            Ok(unixfs::Lookup::Descend(_) | unixfs::Lookup::Found(_))
        ),
        "many/ is not a HAMT"
    );
    let node_data = ipfs_node::dagpb::PbNode::decode(block.data()).unwrap();
    let data = unixfs::data::Data::decode(node_data.data.as_deref().unwrap()).unwrap();
    assert_eq!(data.kind, unixfs::data::DataType::HamtShard);
    for i in [0, 1234, MANY - 1] {
        let path = format!("/ipfs/{root}/many/file-{i:05}.dat");
        let file = node.resolve(path.clone()).await.unwrap();
        let got = unixfs::cat(&file, &mut |c| local_bytes(node, c)).unwrap();
        assert_eq!(got, pseudo_random(i % 100, i as u64), "{path}");
    }
    let missing = node
        .resolve(format!("/ipfs/{root}/many/file-99999.dat"))
        .await;
    assert!(missing.is_err());
}

/// Kubo adds a directory tree with `ipfs add -r`; our node connects and
/// pins the root recursively through the trait: every block of
/// `ipfs refs -r` is in our store, and each file read back from our store
/// (walking the directories there) equals the bytes on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pins_a_kubo_directory_tree() {
    within(async {
        let kubo = KuboDaemon::start();
        let tree = tree();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tree");
        write_tree(&tree, &dir);
        let root: Cid = kubo_text(&kubo, &["add", "-r", "-Q", dir.to_str().unwrap()])
            .parse()
            .unwrap();

        let node = start_loopback().await;
        node.swarm_connect(kubo_addr(&kubo)).await.unwrap();
        node.pin(root, PinMode::Recursive).await.unwrap();
        assert_eq!(
            node.pin_ls_cid(root, PinLsFilter::Recursive).await.unwrap(),
            Some(IpfsPinType::Recursive)
        );

        let n = assert_holds_kubo_dag(&kubo, &node, &root);
        assert!(n > 40, "{n} blocks");

        let (mut files, mut dirs) = (BTreeMap::new(), BTreeMap::new());
        walk_local(&node, &root, "", &mut files, &mut dirs);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            tree.files.keys().collect::<Vec<_>>()
        );
        for (path, cid) in &files {
            let got = unixfs::cat(cid, &mut |c| local_bytes(&node, c)).unwrap();
            assert!(got == tree.files[path], "{path}: bytes differ");
        }
        for d in &tree.empty_dirs {
            assert_eq!(dirs.get(*d), Some(&0), "{d} is not an empty directory");
        }
        assert_eq!(dirs.get("many"), Some(&MANY));
        assert_sharded(&node, &root).await;
        println!(
            "pinned {} blocks, {} files, {} directories from Kubo",
            n,
            files.len(),
            dirs.len()
        );
    })
    .await;
}

/// Our node adds the same tree (each file with `Node::add_file`, the
/// directories with `DirBuilder` into its store, the root pinned through
/// the trait): the root equals Kubo's `ipfs add -r --only-hash`; Kubo
/// connects to us, pins the root and cats every file by path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubo_pins_and_cats_our_directory_tree() {
    within(async {
        let kubo = KuboDaemon::start();
        let tree = tree();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tree");
        write_tree(&tree, &dir);
        let expected: Cid = kubo_text(
            &kubo,
            &["add", "-r", "--only-hash", "-Q", dir.to_str().unwrap()],
        )
        .parse()
        .unwrap();

        let node = start_loopback().await;
        let opts = AddOptions::default();
        let mut builder = DirBuilder::new(&opts).unwrap();
        for (path, data) in &tree.files {
            let added = node.add_file(&data[..], &opts, false).unwrap();
            builder.add(path, added).unwrap();
        }
        for d in &tree.empty_dirs {
            builder.mkdir(d).unwrap();
        }
        let root = builder
            .finish(&mut |b| node.store().put(&b).map(drop))
            .unwrap();
        assert_eq!(root.cid, expected, "our root differs from Kubo's");
        assert_eq!(
            root.bytes,
            tree.files.values().map(|d| d.len() as u64).sum::<u64>()
        );
        node.pin(root.cid, PinMode::Recursive).await.unwrap();
        assert_eq!(
            node.pin_ls_cid(root.cid, PinLsFilter::Recursive)
                .await
                .unwrap(),
            Some(IpfsPinType::Recursive)
        );

        assert_sharded(&node, &root.cid).await;

        let ours = loopback_addr(&node).await;
        kubo_cli(&kubo, &["swarm", "connect", &ours.to_string()]);
        kubo_cli(&kubo, &["pin", "add", &root.cid.to_string()]);
        // Every file outside the HAMT, and a sample inside it (one CLI
        // call each); Kubo's listing of the HAMT has every entry.
        let sample = |p: &str| !p.starts_with("many/") || p.ends_with("77.dat");
        for (path, data) in tree.files.iter().filter(|(p, _)| sample(p)) {
            let got = kubo_cli(&kubo, &["cat", &format!("{}/{path}", root.cid)]);
            assert!(&got == data, "{path}: Kubo reads different bytes");
        }
        let listed = kubo_text(&kubo, &["ls", &format!("{}/many", root.cid)]);
        assert_eq!(listed.lines().count(), MANY);
        for d in &tree.empty_dirs {
            let ls = kubo_text(&kubo, &["ls", &format!("{}/{d}", root.cid)]);
            assert!(ls.is_empty(), "{d}: {ls}");
        }
    })
    .await;
}
