//! UnixFS add against a real Kubo (v0.42.0, `scripts/install-kubo` or
//! `$IPFS_BIN`): the same bytes and parameters give the same root CID and
//! cumulative size as `ipfs add --only-hash`, Kubo reads the DAGs we build,
//! and we read the DAGs Kubo builds.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use cid::Cid;
use ipfs::testing::KuboDaemon;
use ipfs_node::unixfs::{self, AddOptions, Added, DirBuilder, FileAdder, Layout};
use ipfs_node::{Block, NodeError};

const MIB: usize = 1024 * 1024;

/// Deterministic bytes (xorshift64), different in every chunk.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A parameter set: Kubo's flags and ours.
struct Case {
    flags: &'static [&'static str],
    opts: AddOptions,
}

fn cases() -> Vec<Case> {
    let v1 = AddOptions {
        cid_version: 1,
        raw_leaves: Some(true),
        ..AddOptions::default()
    };
    let trickle = AddOptions {
        layout: Layout::Trickle,
        ..AddOptions::default()
    };
    vec![
        Case {
            flags: &[],
            opts: AddOptions::default(),
        },
        Case {
            flags: &["--cid-version=1", "--raw-leaves"],
            opts: v1.clone(),
        },
        Case {
            // CIDv1 alone: Kubo turns raw leaves on.
            flags: &["--cid-version=1"],
            opts: AddOptions {
                cid_version: 1,
                ..AddOptions::default()
            },
        },
        Case {
            flags: &["--raw-leaves"],
            opts: AddOptions {
                raw_leaves: Some(true),
                ..AddOptions::default()
            },
        },
        Case {
            flags: &["--trickle"],
            opts: trickle.clone(),
        },
        Case {
            flags: &["--trickle", "--cid-version=1", "--raw-leaves"],
            opts: AddOptions {
                layout: Layout::Trickle,
                ..v1.clone()
            },
        },
        Case {
            flags: &["--chunker=size-1024"],
            opts: AddOptions {
                chunk_size: 1024,
                ..AddOptions::default()
            },
        },
        Case {
            flags: &["--chunker=size-1024", "--cid-version=1", "--raw-leaves"],
            opts: AddOptions {
                chunk_size: 1024,
                ..v1
            },
        },
        Case {
            flags: &["--chunker=size-1024", "--trickle"],
            opts: AddOptions {
                chunk_size: 1024,
                ..trickle
            },
        },
    ]
}

/// `ipfs <args>`, asserting success; stdout.
fn ipfs(kubo: &KuboDaemon, args: &[&str]) -> String {
    let out = kubo.cli(args);
    assert!(
        out.status.success(),
        "ipfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Kubo's `ipfs add --only-hash -Q` of `path`: the root's CID. (The
/// CLI prints no size; equal CIDs mean equal DAGs, and our `size` is
/// checked to be the sum of the DAG's blocks in the unit tests.)
fn kubo_add(kubo: &KuboDaemon, path: &Path, flags: &[&str]) -> String {
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["add", "--only-hash", "-Q", "--pin=false"];
    args.extend_from_slice(flags);
    args.push(path);
    ipfs(kubo, &args).trim().to_owned()
}

/// Adds `data` with `opts`, streaming it in uneven pieces.
fn our_add(data: &[u8], opts: &AddOptions) -> (Added, Vec<Block>) {
    let mut blocks = Vec::new();
    let mut sink = |b: Block| {
        blocks.push(b);
        Ok(())
    };
    let mut adder = FileAdder::new(opts).expect("valid options");
    for piece in data.chunks(100_003) {
        adder.push(piece, &mut sink).expect("push");
    }
    let added = adder.finish(&mut sink).expect("finish");
    (added, blocks)
}

fn getter(blocks: &[Block]) -> impl FnMut(&Cid) -> Result<Bytes, NodeError> {
    let store: HashMap<Cid, Bytes> = blocks
        .iter()
        .map(|b| (*b.cid(), b.data().clone()))
        .collect();
    move |c| {
        store.get(c).cloned().ok_or_else(|| NodeError::Malformed {
            what: "test store",
            reason: format!("no block {c}"),
        })
    }
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    let mut buf = unsigned_varint::encode::usize_buffer();
    out.extend_from_slice(unsigned_varint::encode::usize(n, &mut buf));
}

/// A CAR v1 of `blocks` with one root, put together by hand.
fn car(root: &Cid, blocks: &[Block]) -> Vec<u8> {
    use ipld_core::ipld::Ipld;
    let header = Ipld::Map(
        [
            ("roots".to_owned(), Ipld::List(vec![Ipld::Link(*root)])),
            ("version".to_owned(), Ipld::Integer(1)),
        ]
        .into(),
    );
    let header = serde_ipld_dagcbor::to_vec(&header).expect("header");
    let mut out = Vec::new();
    put_varint(&mut out, header.len());
    out.extend_from_slice(&header);
    for b in blocks {
        let cid = b.cid().to_bytes();
        put_varint(&mut out, cid.len() + b.data().len());
        out.extend_from_slice(&cid);
        out.extend_from_slice(b.data());
    }
    out
}

/// The blocks of a CAR v1 (the header skipped).
fn read_car(bytes: &[u8]) -> Vec<Block> {
    let (len, rest) = unsigned_varint::decode::usize(bytes).expect("header length");
    let mut rest = &rest[len..];
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let (len, r) = unsigned_varint::decode::usize(rest).expect("section length");
        let (section, r) = r.split_at(len);
        rest = r;
        let mut cursor = std::io::Cursor::new(section);
        let cid = Cid::read_bytes(&mut cursor).expect("section CID");
        let data = &section[usize::try_from(cursor.position()).unwrap()..];
        blocks.push(Block::verified(cid, Bytes::copy_from_slice(data)).expect("verified"));
    }
    blocks
}

/// Every size of the issue, with every parameter set: the same root CID
/// and cumulative size as Kubo.
#[test]
fn files_get_kubos_cids() {
    let kubo = KuboDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (i, len) in [0, 1, 256 * 1024, 256 * 1024 + 1, 10 * MIB]
        .into_iter()
        .enumerate()
    {
        let data = noise(len, i as u64 + 1);
        let path = dir.path().join(format!("file-{len}"));
        std::fs::write(&path, &data).unwrap();
        for case in cases() {
            let kubo_cid = kubo_add(&kubo, &path, case.flags);
            let (ours, _) = our_add(&data, &case.opts);
            assert_eq!(
                ours.cid.to_string(),
                kubo_cid.clone(),
                "{len} bytes, {:?}",
                case.flags
            );
            assert_eq!(ours.bytes, len as u64);
            report.push(format!("{len:>8} {:<55} {kubo_cid}", case.flags.join(" ")));
        }
    }
    println!("{}", report.join("\n"));
}

/// Deep trees: 10 MiB in 256-byte chunks is 40960 leaves, past 174² so
/// the balanced root is three levels up, and trickle nests many levels.
#[test]
fn deep_trees_get_kubos_cids() {
    let kubo = KuboDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let data = noise(10 * MIB, 99);
    let path = dir.path().join("deep");
    std::fs::write(&path, &data).unwrap();
    for (flags, layout) in [
        (&["--chunker=size-256"][..], Layout::Balanced),
        (&["--chunker=size-256", "--trickle"][..], Layout::Trickle),
        (
            &["--chunker=size-256", "--trickle", "--cid-version=1"][..],
            Layout::Trickle,
        ),
    ] {
        let opts = AddOptions {
            chunk_size: 256,
            layout,
            cid_version: u8::from(flags.contains(&"--cid-version=1")),
            ..AddOptions::default()
        };
        let kubo_cid = kubo_add(&kubo, &path, flags);
        let (ours, blocks) = our_add(&data, &opts);
        assert_eq!(ours.cid.to_string(), kubo_cid.clone(), "{flags:?}");
        assert_eq!(unixfs::cat(&ours.cid, &mut getter(&blocks)).unwrap(), data);
        println!("{:<45} {kubo_cid}", flags.join(" "));
    }
}

/// Writes a nested tree on disk and builds the same one with
/// [`DirBuilder`] (file blocks kept in `blocks`).
fn nested_tree(root: &Path, opts: &AddOptions, blocks: &mut Vec<Block>) -> DirBuilder {
    let files: [(&str, usize); 7] = [
        ("a.txt", 1),
        ("B.bin", 300 * 1024),
        ("zero", 0),
        ("sub/c.bin", 10 * 1024),
        ("sub/deeper/d.bin", 256 * 1024),
        ("sub/deeper/émoji-✓", 5),
        ("another dir/e", 1000),
    ];
    let mut dir = DirBuilder::new(opts).unwrap();
    for (i, (path, len)) in files.into_iter().enumerate() {
        let data = noise(len, 1000 + i as u64);
        let on_disk = root.join(path);
        std::fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        std::fs::write(&on_disk, &data).unwrap();
        let (added, file_blocks) = our_add(&data, opts);
        blocks.extend(file_blocks);
        dir.add(path, added).unwrap();
    }
    std::fs::create_dir_all(root.join("sub/empty")).unwrap();
    dir.mkdir("sub/empty").unwrap();
    dir
}

/// The directory cases: Kubo's flags and ours, CIDv0, and CIDv1 with raw
/// leaves.
fn dir_cases() -> [(&'static [&'static str], AddOptions); 2] {
    [
        (&[], AddOptions::default()),
        (
            &["--cid-version=1", "--raw-leaves"],
            AddOptions {
                cid_version: 1,
                raw_leaves: Some(true),
                ..AddOptions::default()
            },
        ),
    ]
}

/// `ipfs add -r` of a nested directory (with an empty one inside), and
/// `-r -w`, CIDv0 and CIDv1 with raw leaves.
#[test]
fn directories_get_kubos_cids() {
    let kubo = KuboDaemon::start();
    for (flags, opts) in dir_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        let mut blocks = Vec::new();
        let dir = nested_tree(&root, &opts, &mut blocks);
        let ours = dir
            .finish(&mut |b| {
                blocks.push(b);
                Ok(())
            })
            .unwrap();

        let mut r = vec!["-r"];
        r.extend_from_slice(flags);
        let kubo_cid = kubo_add(&kubo, &root, &r);
        assert_eq!(ours.cid.to_string(), kubo_cid.clone(), "-r {flags:?}");
        println!("-r {:<35} {kubo_cid}", flags.join(" "));

        // -w: the tree inside a directory, under its own name.
        let mut wrap = DirBuilder::new(&opts).unwrap();
        wrap.add("tree", ours).unwrap();
        let wrapped = wrap.finish(&mut |_| Ok(())).unwrap();
        r.push("-w");
        let kubo_cid = kubo_add(&kubo, &root, &r);
        assert_eq!(wrapped.cid.to_string(), kubo_cid.clone(), "-r -w {flags:?}");
        println!("-r -w {:<32} {kubo_cid}", flags.join(" "));

        // Listing our root gives the entries in Kubo's order.
        let names: Vec<String> = unixfs::ls(&ours.cid, &mut getter(&blocks))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["B.bin", "a.txt", "another dir", "sub", "zero"]);
    }
}

/// Writes `names` as files (each holding its own index) under `dir` and
/// adds them to a [`DirBuilder`] under `prefix`; the file blocks go to
/// `blocks`.
fn flat_dir(
    dir: &Path,
    names: &[String],
    prefix: &str,
    builder: &mut DirBuilder,
    opts: &AddOptions,
    blocks: &mut Vec<Block>,
) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, name) in names.iter().enumerate() {
        let data = i.to_string().into_bytes();
        std::fs::write(dir.join(name), &data).unwrap();
        let (added, file_blocks) = our_add(&data, opts);
        blocks.extend(file_blocks);
        builder.add(&format!("{prefix}{name}"), added).unwrap();
    }
}

/// The UnixFS type of the directory `cid` among `blocks`.
fn dir_kind(cid: &Cid, blocks: &[Block]) -> unixfs::data::DataType {
    let block = blocks.iter().find(|b| b.cid() == cid).unwrap();
    let node = ipfs_node::dagpb::PbNode::decode(block.data()).unwrap();
    unixfs::data::Data::decode(node.data.as_deref().unwrap())
        .unwrap()
        .kind
}

/// HAMT sharding as Kubo does it: a directory whose links are estimated
/// at exactly 256 KiB (4096 names of 30 bytes, CIDv0) stays one node, one
/// byte more makes it a HAMT, and a tree holding a 6000-entry HAMT gets
/// Kubo's root CID with CIDv0, with CIDv1 and raw leaves, and with `-w`.
#[test]
fn sharded_directories_get_kubos_cids() {
    let kubo = KuboDaemon::start();
    let opts = AddOptions::default();
    for (last_len, kind) in [
        (30, unixfs::data::DataType::Directory),
        (31, unixfs::data::DataType::HamtShard),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut names: Vec<String> = (0..4095).map(|i| format!("{i:030}")).collect();
        names.push(format!("{:0w$}", 4095, w = last_len));
        let mut blocks = Vec::new();
        let mut builder = DirBuilder::new(&opts).unwrap();
        flat_dir(tmp.path(), &names, "", &mut builder, &opts, &mut blocks);
        let ours = builder
            .finish(&mut |b| {
                blocks.push(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(dir_kind(&ours.cid, &blocks), kind);
        let kubo_cid = kubo_add(&kubo, tmp.path(), &["-r"]);
        assert_eq!(ours.cid.to_string(), kubo_cid, "last name {last_len} bytes");
        println!("4096 entries, last name {last_len} bytes: {kind:?} {kubo_cid}");
    }

    for (flags, opts) in dir_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        let names: Vec<String> = (0..6000).map(|i| format!("entry {i} ✓.txt")).collect();
        let mut blocks = Vec::new();
        let mut builder = DirBuilder::new(&opts).unwrap();
        flat_dir(
            &root.join("big"),
            &names,
            "big/",
            &mut builder,
            &opts,
            &mut blocks,
        );
        let small = vec!["a".to_string(), "zz".to_string()];
        flat_dir(&root, &small, "", &mut builder, &opts, &mut blocks);
        let ours = builder
            .finish(&mut |b| {
                blocks.push(b);
                Ok(())
            })
            .unwrap();

        let mut r = vec!["-r"];
        r.extend_from_slice(flags);
        let kubo_cid = kubo_add(&kubo, &root, &r);
        assert_eq!(ours.cid.to_string(), kubo_cid, "-r {flags:?}");
        let entries = unixfs::ls(&ours.cid, &mut getter(&blocks)).unwrap();
        let big = entries.iter().find(|e| e.name == "big").unwrap().cid;
        assert_eq!(dir_kind(&big, &blocks), unixfs::data::DataType::HamtShard);
        let listed = unixfs::ls(&big, &mut getter(&blocks)).unwrap();
        assert_eq!(listed.len(), 6000);
        println!("-r {:<35} {kubo_cid}", flags.join(" "));

        let mut wrap = DirBuilder::new(&opts).unwrap();
        wrap.add("tree", ours).unwrap();
        let wrapped = wrap.finish(&mut |_| Ok(())).unwrap();
        r.push("-w");
        let kubo_cid = kubo_add(&kubo, &root, &r);
        assert_eq!(wrapped.cid.to_string(), kubo_cid, "-r -w {flags:?}");
        println!("-r -w {:<32} {kubo_cid}", flags.join(" "));
    }
}

/// `ipfs add -w file`: a single file wrapped in a directory.
#[test]
fn a_wrapped_file_gets_kubos_cid() {
    let kubo = KuboDaemon::start();
    let tmp = tempfile::tempdir().unwrap();
    for (i, len) in [1, 256 * 1024 + 1].into_iter().enumerate() {
        let data = noise(len, 500 + i as u64);
        let path = tmp.path().join(format!("wrapped-{len}.bin"));
        std::fs::write(&path, &data).unwrap();
        for case in cases() {
            let opts = AddOptions {
                wrap_with_directory: true,
                ..case.opts
            };
            let name = path.file_name().unwrap().to_str().unwrap();
            let (ours, _) = unixfs::add_named(name, &data, &opts).unwrap();
            let mut flags = vec!["-w"];
            flags.extend_from_slice(case.flags);
            let kubo_cid = kubo_add(&kubo, &path, &flags);
            assert_eq!(
                ours.cid.to_string(),
                kubo_cid.clone(),
                "{len} bytes, {flags:?}"
            );
            println!("{len:>8} {:<58} {kubo_cid}", flags.join(" "));
        }
    }
}

/// Kubo imports our blocks (a CAR we assemble) and `ipfs cat` gives the
/// input back; our reader does too.
#[test]
fn kubo_reads_the_dags_we_build() {
    let kubo = KuboDaemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(10 * MIB, 7);
    for case in cases() {
        let (added, blocks) = our_add(&data, &case.opts);
        assert_eq!(unixfs::cat(&added.cid, &mut getter(&blocks)).unwrap(), data);
        let car_path = tmp.path().join("ours.car");
        std::fs::write(&car_path, car(&added.cid, &blocks)).unwrap();
        ipfs(
            &kubo,
            &[
                "dag",
                "import",
                "--pin-roots=false",
                car_path.to_str().unwrap(),
            ],
        );
        let out = kubo.cli(&["cat", &added.cid.to_string()]);
        assert!(out.status.success(), "ipfs cat {:?}", case.flags);
        assert!(out.stdout == data, "ipfs cat of {:?} differs", case.flags);
    }
}

/// Kubo adds (for real) and exports; our reader reads its DAGs back,
/// every layout and leaf kind.
#[test]
fn we_read_the_dags_kubo_builds() {
    let kubo = KuboDaemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(3 * MIB + 12_345, 3);
    let path = tmp.path().join("kubo.bin");
    std::fs::write(&path, &data).unwrap();
    for case in cases() {
        let mut args = vec!["add", "-Q", "--pin=false"];
        args.extend_from_slice(case.flags);
        args.push(path.to_str().unwrap());
        let root = ipfs(&kubo, &args).trim().to_owned();
        let exported = kubo.cli(&["dag", "export", &root]);
        assert!(exported.status.success());
        let blocks = read_car(&exported.stdout);
        let root: Cid = root.parse().unwrap();
        let read = unixfs::cat(&root, &mut getter(&blocks)).unwrap();
        assert!(read == data, "reading Kubo's {:?} DAG", case.flags);
    }
}
