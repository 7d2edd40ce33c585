//! The blockstore: blocks, reference-counted pins, GC, persistence.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cid::Cid;
use ipfs::IpfsPinType;
use ipfs_node::dagpb::{PbLink, PbNode};
use ipfs_node::{Block, DAG_CBOR, DAG_PB, NodeError, RAW, RepoStat, Store};

fn temp_store() -> Store {
    let db = sled::Config::new().temporary(true).open().unwrap();
    Store::open(&db, 10 << 30).unwrap()
}

fn raw(bytes: &[u8]) -> Block {
    Block::new(RAW, Bytes::copy_from_slice(bytes), false)
}

fn node(children: &[&Block], data: &str) -> Block {
    let pb = PbNode {
        links: children
            .iter()
            .map(|c| PbLink {
                cid: *c.cid(),
                name: None,
                tsize: Some(c.data().len() as u64),
            })
            .collect(),
        data: Some(Bytes::copy_from_slice(data.as_bytes())),
    };
    Block::new(DAG_PB, Bytes::from(pb.encode()), false)
}

/// The CID GC reports for a block: CIDv1 raw of its multihash.
fn gc_name(b: &Block) -> Cid {
    Cid::new_v1(RAW, *b.cid().hash())
}

fn pins(s: &Store) -> Vec<(Cid, IpfsPinType)> {
    let mut v: Vec<_> = s.pins().map(Result::unwrap).collect();
    v.sort_by_key(|(c, k)| (c.to_bytes(), format!("{k:?}")));
    v
}

/// Three levels: root -> 3 inner nodes -> 3 leaves each (9 leaves).
struct Dag {
    root: Block,
    inner: Vec<Block>,
    leaves: Vec<Block>,
}

impl Dag {
    fn new(tag: &str) -> Dag {
        let leaves: Vec<Block> = (0..9)
            .map(|i| raw(format!("{tag}-leaf-{i}").as_bytes()))
            .collect();
        let inner: Vec<Block> = leaves
            .chunks(3)
            .enumerate()
            .map(|(i, c)| node(&c.iter().collect::<Vec<_>>(), &format!("{tag}-inner-{i}")))
            .collect();
        let root = node(&inner.iter().collect::<Vec<_>>(), &format!("{tag}-root"));
        Dag {
            root,
            inner,
            leaves,
        }
    }

    fn blocks(&self) -> Vec<Block> {
        let mut v = vec![self.root.clone()];
        v.extend(self.inner.iter().cloned());
        v.extend(self.leaves.iter().cloned());
        v
    }

    fn bytes(&self) -> u64 {
        self.blocks().iter().map(|b| b.data().len() as u64).sum()
    }
}

/// Blocks go in and come out verified; a block whose bytes don't match
/// its CID can't even be built.
#[test]
fn put_get_verify() {
    let s = temp_store();
    let b = raw(b"some bytes");
    assert_eq!(s.get(b.cid()).unwrap(), None);
    assert!(s.put(&b).unwrap());
    assert_eq!(s.get(b.cid()).unwrap(), Some(b.clone()));
    assert!(s.has(b.cid()).unwrap());
    assert_eq!(s.size_of(b.cid()).unwrap(), Some(10));
    assert_eq!(s.get_bytes(b.cid()).unwrap().as_ref(), Some(b.data()));
    assert!(matches!(
        Block::verified(*b.cid(), Bytes::from_static(b"other bytes")),
        Err(NodeError::BadBlock { .. })
    ));
}

/// `refs_local` lists every stored block by multihash, as Kubo's `refs
/// local` does (CIDv1, raw codec), whatever codec it was put with.
#[test]
fn refs_local_lists_every_block_as_kubo_does() {
    let s = temp_store();
    let (a, b) = (
        raw(b"one"),
        Block::new(DAG_CBOR, Bytes::from_static(&[0xa0]), false),
    );
    assert_eq!(s.refs_local().count(), 0);
    s.put_many([a.clone(), b.clone()]).unwrap();
    let listed: HashSet<Cid> = s.refs_local().map(Result::unwrap).collect();
    let want: HashSet<Cid> = [&a, &b]
        .iter()
        .map(|x| Cid::new_v1(RAW, *x.cid().hash()))
        .collect();
    assert_eq!(listed, want);
}

/// A recursive pin counts every block of a multi-level DAG once; its
/// non-root blocks are indirect; GC keeps them all.
#[test]
fn recursive_pin_of_a_multi_level_dag() {
    let s = temp_store();
    let dag = Dag::new("a");
    s.put_many(dag.blocks()).unwrap();
    let stray = raw(b"stray");
    s.put(&stray).unwrap();

    let out = s.pin_recursive(dag.root.cid()).unwrap();
    assert!(!out.already_pinned);
    assert_eq!(out.blocks, 13);
    assert_eq!(out.bytes, dag.bytes());
    assert_eq!(
        s.pin_type(dag.root.cid()).unwrap(),
        Some(IpfsPinType::Recursive)
    );
    for b in dag.inner.iter().chain(&dag.leaves) {
        assert_eq!(s.pin_type(b.cid()).unwrap(), Some(IpfsPinType::Indirect));
        assert_eq!(s.refcount_of(b.cid()).unwrap(), 1);
    }
    assert_eq!(s.pin_type(stray.cid()).unwrap(), None);

    let report = s.gc().unwrap();
    assert_eq!(report.removed, [gc_name(&stray)]);
    assert_eq!(report.bytes, 5);
    for b in dag.blocks() {
        assert!(s.has(b.cid()).unwrap());
    }
    assert_eq!(pins(&s), [(*dag.root.cid(), IpfsPinType::Recursive)]);
}

/// A direct pin keeps its block only, not what it links to.
#[test]
fn direct_pin_keeps_only_its_block() {
    let s = temp_store();
    let dag = Dag::new("d");
    s.put_many(dag.blocks()).unwrap();
    s.pin_direct(dag.inner[0].cid()).unwrap();
    assert_eq!(
        s.pin_type(dag.inner[0].cid()).unwrap(),
        Some(IpfsPinType::Direct)
    );
    assert_eq!(s.pin_type(dag.leaves[0].cid()).unwrap(), None);

    let removed: HashSet<Cid> = s.gc().unwrap().removed.into_iter().collect();
    assert_eq!(removed.len(), 12);
    assert!(!removed.contains(&gc_name(&dag.inner[0])));
    assert!(s.has(dag.inner[0].cid()).unwrap());
    assert!(!s.has(dag.leaves[0].cid()).unwrap());
    assert_eq!(s.stat().unwrap().num_objects, 1);
}

/// Two DAGs sharing blocks: unpinning one keeps the shared blocks (and the
/// rest of the other), and GC removes exactly the first DAG's own blocks.
#[test]
fn overlapping_dags_keep_shared_blocks() {
    let s = temp_store();
    let shared = Dag::new("shared");
    let only_a = raw(b"only in a");
    let only_b = raw(b"only in b");
    let a = node(&[&shared.root, &only_a], "a");
    let b = node(&[&shared.root, &only_b, &shared.leaves[0]], "b");
    s.put_many(shared.blocks()).unwrap();
    s.put_many([a.clone(), b.clone(), only_a.clone(), only_b.clone()])
        .unwrap();
    s.pin_recursive(a.cid()).unwrap();
    s.pin_recursive(b.cid()).unwrap();
    assert_eq!(s.refcount_of(shared.leaves[0].cid()).unwrap(), 2);
    assert_eq!(s.refcount_of(only_a.cid()).unwrap(), 1);

    assert!(s.unpin(a.cid()).unwrap());
    assert!(!s.unpin(a.cid()).unwrap(), "a second unpin finds nothing");
    assert_eq!(s.refcount_of(shared.leaves[0].cid()).unwrap(), 1);

    let removed: HashSet<Cid> = s.gc().unwrap().removed.into_iter().collect();
    assert_eq!(removed, HashSet::from([gc_name(&a), gc_name(&only_a)]));
    for blk in shared.blocks().iter().chain([&b, &only_b]) {
        assert!(s.has(blk.cid()).unwrap());
    }
    assert_eq!(
        s.pin_type(shared.root.cid()).unwrap(),
        Some(IpfsPinType::Indirect)
    );

    s.unpin(b.cid()).unwrap();
    assert_eq!(s.gc().unwrap().removed.len(), 15);
    assert_eq!(
        s.stat().unwrap(),
        RepoStat {
            repo_size: 0,
            storage_max: 10 << 30,
            num_objects: 0
        }
    );
}

/// Pinning twice changes nothing; a CID pinned both ways keeps both, and
/// unpin removes both.
#[test]
fn pins_are_idempotent_and_modes_add_up() {
    let s = temp_store();
    let dag = Dag::new("i");
    s.put_many(dag.blocks()).unwrap();
    let first = s.pin_recursive(dag.root.cid()).unwrap();
    let again = s.pin_recursive(dag.root.cid()).unwrap();
    assert!(again.already_pinned);
    assert_eq!((again.blocks, again.bytes), (first.blocks, first.bytes));
    assert_eq!(s.refcount_of(dag.leaves[3].cid()).unwrap(), 1);

    s.pin_direct(dag.root.cid()).unwrap();
    s.pin_direct(dag.root.cid()).unwrap();
    assert_eq!(s.refcount_of(dag.root.cid()).unwrap(), 2);
    assert_eq!(
        pins(&s),
        [
            (*dag.root.cid(), IpfsPinType::Direct),
            (*dag.root.cid(), IpfsPinType::Recursive)
        ]
    );
    assert_eq!(
        s.pin_type(dag.root.cid()).unwrap(),
        Some(IpfsPinType::Recursive)
    );

    // A leaf pinned directly inside a recursive pin counts twice.
    s.pin_direct(dag.leaves[0].cid()).unwrap();
    assert_eq!(s.refcount_of(dag.leaves[0].cid()).unwrap(), 2);

    assert!(s.unpin(dag.root.cid()).unwrap());
    assert_eq!(s.refcount_of(dag.root.cid()).unwrap(), 0);
    assert_eq!(s.refcount_of(dag.leaves[3].cid()).unwrap(), 0);
    assert_eq!(pins(&s), [(*dag.leaves[0].cid(), IpfsPinType::Direct)]);
    assert_eq!(s.gc().unwrap().removed.len(), 12);
}

/// A recursive pin of an incomplete DAG fails naming the missing block and
/// pins nothing; so does a direct pin of a block not stored.
#[test]
fn missing_block_is_a_clear_error() {
    let s = temp_store();
    let dag = Dag::new("m");
    let missing = dag.leaves[7].clone();
    s.put_many(
        dag.blocks()
            .into_iter()
            .filter(|b| b.cid() != missing.cid()),
    )
    .unwrap();
    let err = s.pin_recursive(dag.root.cid()).unwrap_err();
    assert!(
        matches!(&err, NodeError::MissingBlock { cid, root }
            if *cid == missing.cid().to_string() && *root == dag.root.cid().to_string()),
        "{err}"
    );
    assert!(
        err.to_string().contains(&missing.cid().to_string()),
        "{err}"
    );
    assert!(pins(&s).is_empty());
    for b in dag.blocks() {
        assert_eq!(s.refcount_of(b.cid()).unwrap(), 0);
    }
    assert!(matches!(
        s.pin_direct(missing.cid()),
        Err(NodeError::MissingBlock { .. })
    ));

    s.put(&missing).unwrap();
    assert_eq!(s.pin_recursive(dag.root.cid()).unwrap().blocks, 13);
}

/// Opens the database again once the closed one has let go of its file
/// lock: sled's flusher thread drops it a moment after the last handle.
fn reopen(path: &std::path::Path) -> sled::Db {
    let mut tries = 0;
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopening {}: {e}", path.display()),
        }
    }
}

/// Pins, refcounts, blocks and counters survive closing and reopening the
/// database.
#[test]
fn pins_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dag = Dag::new("r");
    let loose = raw(b"loose");
    {
        let db = sled::open(dir.path()).unwrap();
        let s = Store::open(&db, 123).unwrap();
        s.put_many(dag.blocks()).unwrap();
        s.put(&loose).unwrap();
        s.pin_recursive(dag.root.cid()).unwrap();
        s.pin_direct(dag.leaves[0].cid()).unwrap();
        s.flush().unwrap();
    }
    let db = reopen(dir.path());
    let s = Store::open(&db, 456).unwrap();
    let mut expected = vec![
        (*dag.root.cid(), IpfsPinType::Recursive),
        (*dag.leaves[0].cid(), IpfsPinType::Direct),
    ];
    expected.sort_by_key(|(c, k)| (c.to_bytes(), format!("{k:?}")));
    assert_eq!(pins(&s), expected);
    assert_eq!(s.refcount_of(dag.leaves[0].cid()).unwrap(), 2);
    let stat = s.stat().unwrap();
    assert_eq!(stat.num_objects, 14);
    assert_eq!(stat.repo_size, dag.bytes() + 5);
    assert_eq!(stat.storage_max, 456);
    assert_eq!(s.gc().unwrap().removed, [gc_name(&loose)]);
    assert!(s.unpin(dag.root.cid()).unwrap());
}

/// `stat` counts block bytes and objects through puts, duplicates and GC.
#[test]
fn stat_tracks_sizes() {
    let s = temp_store();
    assert_eq!(s.stat().unwrap().repo_size, 0);
    let a = raw(&[1u8; 1000]);
    let b = raw(&[2u8; 24]);
    s.put(&a).unwrap();
    s.put(&a).unwrap();
    s.put(&b).unwrap();
    let stat = s.stat().unwrap();
    assert_eq!((stat.repo_size, stat.num_objects), (1024, 2));
    s.pin_direct(b.cid()).unwrap();
    assert_eq!(s.gc().unwrap().bytes, 1000);
    let stat = s.stat().unwrap();
    assert_eq!((stat.repo_size, stat.num_objects), (24, 1));
}

/// dag-cbor links are followed like dag-pb ones.
#[test]
fn recursive_pin_follows_dag_cbor_links() {
    use ipld_core::ipld::Ipld;
    let s = temp_store();
    let leaf = raw(b"cbor leaf");
    let doc = serde_ipld_dagcbor::to_vec(&Ipld::List(vec![Ipld::Link(*leaf.cid())])).unwrap();
    let doc = Block::new(DAG_CBOR, Bytes::from(doc), false);
    s.put_many([leaf.clone(), doc.clone()]).unwrap();
    assert_eq!(s.pin_recursive(doc.cid()).unwrap().blocks, 2);
    assert!(s.gc().unwrap().removed.is_empty());
    assert_eq!(s.pin_type(leaf.cid()).unwrap(), Some(IpfsPinType::Indirect));
}

/// A DAG where every node links twice to the next (2^60 paths) is walked
/// once per block.
#[test]
fn diamonds_are_walked_once() {
    let s = temp_store();
    let mut top = raw(b"bottom");
    s.put(&top).unwrap();
    for i in 0..60 {
        top = node(&[&top, &top], &i.to_string());
        s.put(&top).unwrap();
    }
    assert_eq!(s.pin_recursive(top.cid()).unwrap().blocks, 61);
    assert!(s.unpin(top.cid()).unwrap());
    assert_eq!(s.gc().unwrap().removed.len(), 61);
}

/// GC running in a loop never takes a block that a writer put and then
/// pinned under a GcGuard; unguarded unpinned blocks are fair game.
#[test]
fn gc_concurrent_with_guarded_put_then_pin() {
    let s = temp_store();
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                s.gc().unwrap();
                runs += 1;
            }
            runs
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let dag = Dag::new(&format!("w{w}-{i}"));
                    let guard = s.gc_guard();
                    for b in dag.blocks() {
                        s.put(&b).unwrap();
                    }
                    s.pin_recursive(dag.root.cid()).unwrap();
                    drop(guard);
                    s.put(&raw(format!("garbage {w} {i}").as_bytes())).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(gc.join().unwrap() > 0);
    s.gc().unwrap();
    assert_eq!(pins(&s).len(), 200);
    assert_eq!(s.stat().unwrap().num_objects, 200 * 13);
}

/// Marks (what a fetch in flight holds) keep blocks from GC without
/// holding GC up: GC runs with marks alive, takes the unmarked garbage and
/// leaves the marked blocks, stored before or after the mark; a block two
/// fetches marked stays until both are dropped.
#[test]
fn gc_runs_beside_marks_and_skips_marked_blocks() {
    let s = temp_store();
    let dag = Dag::new("m");
    let garbage = raw(b"garbage");
    s.put(&garbage).unwrap();
    s.put(&dag.root).unwrap(); // already held when the fetch starts
    let marks = s.gc_marks();
    let cids: Vec<Cid> = dag.blocks().iter().map(|b| *b.cid()).collect();
    marks.mark(&cids);
    marks.mark(&cids); // marking again counts once
    assert_eq!((marks.len(), s.gc_marked()), (13, 13));
    s.put_many(dag.blocks().into_iter().skip(1).take(6))
        .unwrap(); // fetched so far

    let (tx, rx) = std::sync::mpsc::channel();
    let gc = {
        let s = s.clone();
        std::thread::spawn(move || tx.send(s.gc().unwrap()).unwrap())
    };
    let report = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("GC ran while the marks were alive");
    gc.join().unwrap();
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert_eq!(report.removed[0].hash(), garbage.cid().hash());
    for b in dag.blocks().iter().take(7) {
        assert!(s.has(b.cid()).unwrap(), "marked block {} kept", b.cid());
    }

    // The rest arrive, and a second fetch marks the same DAG.
    s.put_many(dag.blocks()).unwrap();
    let other = s.gc_marks();
    other.mark(&cids);
    assert_eq!(s.gc_marked(), 13);
    drop(marks);
    assert!(s.gc().unwrap().removed.is_empty(), "the other marks hold");
    s.pin_recursive(dag.root.cid()).unwrap();
    drop(other);
    assert_eq!(s.gc_marked(), 0);
    assert!(s.gc().unwrap().removed.is_empty(), "pinned now");
    assert!(s.unpin(dag.root.cid()).unwrap());
    assert_eq!(s.gc().unwrap().removed.len(), 13);
}

/// A failed fetch's marks go with it: its blocks are then garbage.
#[test]
fn dropped_marks_leave_garbage() {
    let s = temp_store();
    let dag = Dag::new("f");
    let marks = s.gc_marks();
    let cids: Vec<Cid> = dag.blocks().iter().map(|b| *b.cid()).collect();
    marks.mark(&cids);
    s.put_many(dag.blocks()).unwrap();
    assert!(s.gc().unwrap().removed.is_empty());
    drop(marks);
    assert_eq!(s.gc().unwrap().removed.len(), 13);
}

/// GC running in a loop never takes a block a writer marked before its
/// put and then pinned (a fetch's marks, no guard); unmarked unpinned
/// blocks are fair game.
#[test]
fn gc_concurrent_with_marked_put_then_pin() {
    let s = temp_store();
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                s.gc().unwrap();
                runs += 1;
            }
            runs
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let dag = Dag::new(&format!("w{w}-{i}"));
                    // Half the DAGs share their leaves with an earlier,
                    // unpinned put: found "local", then marked.
                    if i % 2 == 0 {
                        s.put_many(dag.leaves.iter().cloned()).unwrap();
                    }
                    let marks = s.gc_marks();
                    for b in dag.blocks() {
                        marks.mark([b.cid()]);
                        if !s.has(b.cid()).unwrap() {
                            s.put(&b).unwrap();
                        }
                    }
                    s.pin_recursive(dag.root.cid()).unwrap();
                    drop(marks);
                    s.put(&raw(format!("garbage {w} {i}").as_bytes())).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(gc.join().unwrap() > 0);
    s.gc().unwrap();
    assert_eq!(s.gc_marked(), 0);
    assert_eq!(pins(&s).len(), 200);
    assert_eq!(s.stat().unwrap().num_objects, 200 * 13);
}

/// CIDv0 and CIDv1 of one dag-pb node are one stored block.
#[test]
fn cid_versions_share_a_block() {
    let s = temp_store();
    let pb = PbNode {
        links: vec![],
        data: Some(Bytes::from_static(b"\x08\x01")),
    }
    .encode();
    let v0 = Block::new(DAG_PB, Bytes::from(pb.clone()), true);
    let v1 = Block::new(DAG_PB, Bytes::from(pb), false);
    s.put(&v0).unwrap();
    assert!(s.has(v1.cid()).unwrap());
    s.pin_recursive(v0.cid()).unwrap();
    assert_eq!(s.pin_type(v1.cid()).unwrap(), Some(IpfsPinType::Indirect));
    assert!(s.gc().unwrap().removed.is_empty());
}

/// An empty block is stored, counted and collected like any other, and
/// `gc_with` streams removals to a callback that may use the store.
#[test]
fn empty_blocks_and_streamed_gc() {
    let s = temp_store();
    let empty = raw(b"");
    assert!(s.put(&empty).unwrap());
    assert_eq!(s.size_of(empty.cid()).unwrap(), Some(0));
    assert_eq!(s.stat().unwrap().num_objects, 1);
    let mut seen = Vec::new();
    let (blocks, bytes) = s
        .gc_with(|cid, n| {
            assert!(!s.has(&cid).unwrap());
            seen.push((cid, n));
        })
        .unwrap();
    assert_eq!((blocks, bytes), (1, 0));
    assert_eq!(seen, [(gc_name(&empty), 0)]);
    assert_eq!(s.stat().unwrap().num_objects, 0);
}
