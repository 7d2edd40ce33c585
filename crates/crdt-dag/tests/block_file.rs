//! The block file (spec/crdt.md §8): applied delta blocks live in one
//! append-only file beside the store, which is also its redo log; what a
//! crash, a damaged disk, an older layout and a prune leave is handled at
//! open.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use crdt_dag::{Cid, Replica, ReplicaConfig};

const VERSION_KEY: &[u8] = b"mversion";
const END_KEY: &[u8] = b"mblockend";

fn open(dir: &Path) -> Replica {
    reopen(dir, key(9), ReplicaConfig::new(CLUSTER)).unwrap()
}

fn block_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("delta-blocks.")
        })
        .collect();
    files.sort();
    files
}

fn the_block_file(dir: &Path) -> PathBuf {
    let files = block_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn all_blocks(r: &Replica) -> BTreeMap<Vec<u8>, Vec<u8>> {
    r.blocks()
        .map(|b| {
            let (cid, block) = b.unwrap();
            (cid.to_bytes(), block)
        })
        .collect()
}

fn tree(r: &Replica) -> sled::Tree {
    r.database().open_tree(crdt_dag::TREE_NAME).unwrap()
}

/// The end of the file's committed bytes, as the tree records it.
fn committed_end(r: &Replica) -> u64 {
    let end = tree(r).get(END_KEY).unwrap().unwrap();
    u64::from_be_bytes(end.as_ref().try_into().unwrap())
}

/// A replica at `dir` holding the history of three writers.
fn filled(dir: &Path, rounds: u32) -> (Replica, BTreeMap<Vec<u8>, Vec<u8>>) {
    let source = history(rounds);
    let r = open(dir);
    sync(&r, &source[0]);
    let blocks = all_blocks(&source[0]);
    assert_eq!(all_blocks(&r), blocks);
    (r, blocks)
}

#[test]
fn blocks_are_kept_in_the_file_not_the_tree_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, stored) = {
        let (r, blocks) = filled(dir.path(), 6);
        let mut stored = 0u64;
        for kv in tree(&r).scan_prefix(b"b") {
            let place = kv.unwrap().1;
            assert_eq!(place.len(), 16, "the tree holds a place, not the block");
            stored += u64::from(u32::from_be_bytes(place[8..12].try_into().unwrap()));
        }
        (blocks, stored)
    };
    let total: usize = blocks.values().map(Vec::len).sum();
    assert!(
        stored < total as u64,
        "{stored} bytes for {total} bytes of blocks: stored compressed"
    );
    let r = open(dir.path());
    assert_eq!(all_blocks(&r), blocks);
    for (cid, block) in &blocks {
        let cid = Cid::try_from(&cid[..]).unwrap();
        assert_eq!(r.block(&cid).unwrap().as_ref(), Some(block));
    }
}

/// `block_file.rs`'s `GROW_BYTES`: the file grows by this much of zeros,
/// which later appends write over.
const GROW: u64 = 64 << 10;

/// The file grows ahead in steps of zeros (so most appends leave its
/// size alone and sync only their data), every block reads back, and a
/// reopen cuts the zeros past the committed end.
#[test]
fn the_file_grows_ahead_in_steps_and_a_reopen_cuts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = {
        let r = open(dir.path());
        let file = the_block_file(dir.path());
        let mut lens = Vec::new();
        for n in 0..40u32 {
            r.write(vec![pin(70_000 + n, "grown")]).unwrap();
            let len = std::fs::metadata(&file).unwrap().len();
            let end = committed_end(&r);
            assert_eq!(len % GROW, 0, "{len} bytes");
            assert!((end..end + GROW).contains(&len), "{len} for {end}");
            lens.push(len);
        }
        lens.dedup();
        assert!(lens.len() < 40, "the file grew at every append: {lens:?}");
        all_blocks(&r)
    };
    assert_eq!(blocks.len(), 40);
    let r = open(dir.path());
    let end = committed_end(&r);
    let file = the_block_file(dir.path());
    assert_eq!(std::fs::metadata(&file).unwrap().len(), end);
    assert_eq!(all_blocks(&r), blocks);
    // The next append grows it again, over the cut.
    r.write(vec![pin(70_100, "after the reopen")]).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().len() % GROW, 0);
    assert_eq!(all_blocks(&r).len(), 41);
}

#[test]
fn bytes_appended_for_a_batch_that_never_committed_are_cut_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (committed, blocks) = {
        let (r, blocks) = filled(dir.path(), 3);
        (committed_end(&r), blocks)
    };
    let file = the_block_file(dir.path());
    // What a crash between the append and the sled batch leaves.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(&[0xee; 5000]).unwrap();
    }
    let r = open(dir.path());
    assert_eq!(std::fs::metadata(&file).unwrap().len(), committed);
    assert_eq!(all_blocks(&r), blocks);
    // New blocks go where the cut bytes were, and read back.
    r.write(vec![pin(90_000, "after the cut")]).unwrap();
    let head = r.heads().unwrap()[0];
    assert!(r.block(&head).unwrap().is_some());
    drop(r);
    let r = open(dir.path());
    assert_eq!(all_blocks(&r).len(), blocks.len() + 1);
}

/// Copies the files of `from` into `to` (created), sled's and the block
/// file's unless `blocks` is false (then sled's only).
fn copy_folder(from: &Path, to: &Path, blocks: bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let path = entry.path();
        if path.is_dir() {
            copy_folder(&path, &to.join(&name), blocks);
        } else if blocks || !name.to_string_lossy().starts_with("delta-blocks.") {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Writes are durable without a sled flush: the block file's frames past
/// the end sled recorded are applied again at open. The crash is made by
/// hand: sled's files as they were before the writes (what a kill or a
/// power cut leaves of batches sled had not flushed), the block file as
/// it is after them, plus a frame cut short.
#[test]
fn what_sled_lost_is_replayed_from_the_block_file_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let source = history(3);
    {
        let r = open(&live);
        for n in 0..5 {
            r.write(vec![pin(80_000 + n, "before")]).unwrap();
        }
    }
    // sled as it was before the writes below (dropped: flushed).
    copy_folder(&live, &crashed, false);
    let (written, expected, end) = {
        let r = open(&live);
        let mut written = 0;
        for n in 0..12 {
            let mut writes = vec![pin(81_000 + n, "after")];
            if n < 5 {
                writes.push(unpin(80_000 + n));
            }
            r.write(writes).unwrap();
            written += 1;
        }
        // A bulk answer: many blocks in one frame.
        let report = sync(&r, &source[0]);
        assert!(report.applied > 1, "{report:?}");
        written += report.applied;
        r.write(vec![pin(82_000, "last")]).unwrap();
        written += 1;
        (written, snapshot(&r), committed_end(&r))
    };
    let file = the_block_file(&live);
    let copied = crashed.join(file.file_name().unwrap());
    std::fs::copy(&file, &copied).unwrap();
    {
        // The start of a frame a crash cut short: not applied, cut.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&copied)
            .unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(end)).unwrap();
        f.write_all(&[0xb7, 0xe8, 0x03, 0, 0, 1, 2, 3, 4, 9, 9])
            .unwrap();
    }

    let r = open(&crashed);
    let replayed = r.replayed();
    assert_eq!(replayed.applied, written, "{replayed:?}");
    assert_eq!(replayed.skipped, 0, "{replayed:?}");
    assert!(replayed.frames >= 14, "{replayed:?}");
    assert_eq!(snapshot(&r), expected);
    assert_eq!(all_blocks(&r), all_blocks(&open(&live)));
    assert_eq!(committed_end(&r), end);
    assert_eq!(
        std::fs::metadata(&copied).unwrap().len(),
        end,
        "the torn frame is cut"
    );
    // Applied and flushed: the next open has nothing to replay, and
    // writes go on from there.
    drop(r);
    let r = open(&crashed);
    assert_eq!(r.replayed().frames, 0);
    assert_eq!(snapshot(&r), expected);
    r.write(vec![pin(83_000, "after the replay")]).unwrap();
    assert!(r.contains(&content(83_000)).unwrap());
}

/// Every key and value of the replica's tree.
fn tree_contents(r: &Replica) -> BTreeMap<Vec<u8>, Vec<u8>> {
    tree(r)
        .iter()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// A batch is written to sled key by key, so a crash can leave part of
/// it: its frame's undo data puts back what those keys held, then the
/// frame is applied again. Made by hand: sled's files as before the
/// batch, then some of the batch's keys set as it set them (none, half,
/// all but the end), and the block file as after it.
#[test]
fn a_batch_that_sled_kept_in_part_is_undone_and_replayed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let before_dir = dir.path().join("before");
    {
        let r = open(&live);
        r.write((0..6).map(|n| pin(84_000 + n, "before")).collect())
            .unwrap();
        r.write(vec![pin(84_100, "other head")]).unwrap();
    }
    copy_folder(&live, &before_dir, false);
    let (before, after, expected) = {
        let r = open(&live);
        let before = tree_contents(&r);
        // New pins, a renamed one and unpins: records that held values,
        // the count and the heads all change.
        let mut writes: Vec<_> = (0..4).map(|n| pin(85_000 + n, "new")).collect();
        writes.push(pin(84_000, "renamed"));
        writes.extend((1..3).map(|n| unpin(84_000 + n)));
        r.write(writes).unwrap();
        (before, tree_contents(&r), snapshot(&r))
    };
    let changed: Vec<&Vec<u8>> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k) && k.as_slice() != END_KEY)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(changed.len() >= 10, "{} keys changed", changed.len());
    let file = the_block_file(&live);
    for kept in [0, changed.len() / 2, changed.len()] {
        let crashed = dir.path().join(format!("crashed-{kept}"));
        copy_folder(&before_dir, &crashed, false);
        {
            let db = sled::open(&crashed).unwrap();
            let t = db.open_tree(crdt_dag::TREE_NAME).unwrap();
            for k in changed
                .iter()
                .step_by(2)
                .chain(changed.iter().skip(1).step_by(2))
                .take(kept)
            {
                match after.get(*k) {
                    Some(v) => t.insert(k.as_slice(), v.as_slice()).unwrap(),
                    None => t.remove(k.as_slice()).unwrap(),
                };
            }
            db.flush().unwrap();
        }
        std::fs::copy(&file, crashed.join(file.file_name().unwrap())).unwrap();
        let r = open(&crashed);
        assert_eq!(r.replayed().applied, 1, "{kept} keys kept");
        assert_eq!(snapshot(&r), expected, "{kept} keys kept");
        assert_eq!(tree_contents(&r), after, "{kept} keys kept");
    }
}

#[test]
fn a_damaged_block_is_reported_and_a_short_file_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, offset, committed) = {
        let (r, _) = filled(dir.path(), 2);
        let cid = r.heads().unwrap()[0];
        let place = tree(&r)
            .get([&b"b"[..], &cid.to_bytes()].concat())
            .unwrap()
            .unwrap();
        (
            cid,
            u64::from_be_bytes(place[..8].try_into().unwrap()),
            committed_end(&r),
        )
    };
    let file = the_block_file(dir.path());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[offset as usize + 7] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    {
        let r = open(dir.path());
        match r.block(&cid) {
            Err(crdt_dag::DagError::Corrupt(msg)) => assert!(msg.contains("checksum"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    std::fs::write(&file, &bytes[..committed as usize - 1]).unwrap();
    match reopen(dir.path(), key(9), ReplicaConfig::new(CLUSTER)) {
        Err(crdt_dag::DagError::Corrupt(msg)) => assert!(msg.contains("block file"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_store_that_kept_blocks_in_the_tree_has_them_moved_even_after_a_cut_short_move() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, before) = {
        let (r, blocks) = filled(dir.path(), 6);
        // Back to layout 2 for every other block: its bytes in the tree, as
        // an older peer stored them (the others as a move cut short left
        // them: already in the file).
        let t = tree(&r);
        for (i, (cid, block)) in blocks.iter().enumerate() {
            if i % 2 == 0 {
                t.insert([&b"b"[..], cid].concat(), block.clone()).unwrap();
            }
        }
        t.insert(VERSION_KEY, &2u64.to_be_bytes()).unwrap();
        t.flush().unwrap();
        (blocks, committed_end(&r))
    };
    let r = open(dir.path());
    let t = tree(&r);
    assert_eq!(
        t.get(VERSION_KEY).unwrap().unwrap().as_ref(),
        LAYOUT.to_be_bytes()
    );
    for kv in t.scan_prefix(b"b") {
        assert_eq!(kv.unwrap().1.len(), 16);
    }
    assert_eq!(all_blocks(&r), blocks);
    let end = committed_end(&r);
    assert!(end > before, "the moved blocks were appended");
    let len = std::fs::metadata(the_block_file(dir.path())).unwrap().len();
    assert!(
        (end..end + GROW).contains(&len),
        "{len} bytes in the file for {end} committed"
    );
}

#[test]
fn a_prune_compacts_the_block_file_into_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path());
    // Blocks of about 60 KB each, with names LZ4 can't shorten: over the
    // 1 MiB of dead bytes that a compaction waits for.
    let name = |n: u32| -> String {
        (0..25u32)
            .map(|k| format!("{:08x}", (n * 31 + k).wrapping_mul(2_654_435_761)))
            .collect()
    };
    for round in 0..60u32 {
        let writes = (0..200)
            .map(|i| pin(round * 1000 + i, &name(round * 1000 + i)))
            .collect();
        r.write(writes).unwrap();
    }
    r.checkpoint().unwrap();
    r.write(vec![pin(500_000, "above the floor")]).unwrap();
    let above = r.heads().unwrap()[0];
    let before = std::fs::metadata(the_block_file(dir.path())).unwrap().len();
    assert!(before > 2 << 20, "{before} bytes");
    let pruned = r.prune().unwrap();
    assert_eq!(pruned.blocks_removed, 60);
    let file = the_block_file(dir.path());
    assert!(file.to_string_lossy().ends_with(".1"), "{file:?}");
    let kept = r.block(&above).unwrap().expect("the block above the floor");
    let end = committed_end(&r);
    assert!(end <= kept.len() as u64 + 1, "{end} bytes left");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), end);
    assert_eq!(r.blocks().count(), 1);
    // Appends go on in the new file, and all of it reopens.
    r.write(vec![pin(500_001, "after the prune")]).unwrap();
    let newest = r.heads().unwrap()[0];
    drop(r);
    // A file of another generation (a compaction cut short) is deleted.
    std::fs::write(dir.path().join("delta-blocks.2"), b"partial").unwrap();
    let r = open(dir.path());
    assert_eq!(block_files(dir.path()), vec![file]);
    assert_eq!(r.block(&above).unwrap(), Some(kept));
    assert!(r.block(&newest).unwrap().is_some());
    assert_eq!(r.blocks().count(), 2);
}
