//! Signed checkpoints (spec/crdt.md §10): a replica loaded from one holds
//! the same state as one that replayed the history, keeps syncing above it,
//! refuses tampered snapshots, undoes an interrupted load, and exports and
//! audits from its floor.

mod common;

use common::*;
use crdt_dag::{Checkpoint, DagError, Replica, ReplicaConfig, TrustPolicy, WriterId};

/// Three writers, concurrent pins, updates and unpins.
fn busy_history() -> Vec<Replica> {
    let rs: Vec<Replica> = (1..=3).map(replica).collect();
    for round in 0..6u32 {
        for (i, r) in rs.iter().enumerate() {
            let i = i as u32;
            r.write(vec![pin(round * 10 + i, "p"), pin(1000 + round, "shared")])
                .unwrap();
        }
        if round % 2 == 1 {
            rs[0].write(vec![unpin((round - 1) * 10)]).unwrap();
        }
        for a in &rs {
            for b in &rs {
                sync(a, b);
            }
        }
    }
    rs
}

/// A replica signing with key `me` that trusts key `trusted` only.
fn trusting_only(me: u8, trusted: u8) -> Replica {
    let trust =
        TrustPolicy::Only([WriterId::from_public_key(&key(trusted).verifying_key())].into());
    Replica::temporary(
        key(me),
        ReplicaConfig {
            trust,
            ..ReplicaConfig::new(CLUSTER)
        },
    )
    .unwrap()
}

/// Blocks with their CIDs.
type Blocks = Vec<(crdt_dag::Cid, Vec<u8>)>;

/// `r` signs a checkpoint: its CID, its block and its snapshot's blocks.
fn signed(r: &Replica) -> (crdt_dag::Cid, Vec<u8>, Blocks) {
    let (cid, _) = r.checkpoint().unwrap();
    let block = r.checkpoint_block(&cid).unwrap().unwrap();
    let blocks = r
        .snapshot_blocks(&cid)
        .unwrap()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (cid, block, blocks)
}

/// `to` loads `from`'s newest checkpoint, block by block.
fn load_from(to: &Replica, from: &Replica) -> Checkpoint {
    let (cid, block) = from.newest_checkpoint().unwrap().expect("a checkpoint");
    let mut load = to.load_checkpoint(&cid, &block).unwrap();
    for b in from.snapshot_blocks(&cid).unwrap().unwrap() {
        let (c, bytes) = b.unwrap();
        load.add(&c, &bytes).unwrap();
    }
    assert!(load.is_complete());
    load.finish().unwrap()
}

/// `to` asks `from` for what it lacks, as the bulk sync does.
fn bulk(to: &Replica, from: &Replica) {
    for cid in from
        .missing_for(&to.frontier().unwrap(), usize::MAX)
        .unwrap()
    {
        let block = from
            .block(&cid)
            .unwrap()
            .expect("served deltas have blocks");
        to.ingest(&cid, &block).unwrap();
    }
    to.apply_pending().unwrap();
}

#[test]
fn a_replica_loaded_from_a_checkpoint_is_the_replayed_one_and_keeps_syncing() {
    let rs = busy_history();
    let (cid, made) = rs[1].checkpoint().unwrap();
    assert_eq!(made.deltas, rs[1].delta_count().unwrap());
    assert_eq!(made.state_hash, rs[1].state_hash().unwrap());

    let joined = replica(9);
    let loaded = load_from(&joined, &rs[1]);
    assert_eq!(loaded, made);
    assert_eq!(snapshot(&joined), snapshot(&rs[1]));
    // Loaded records name their deltas by seq, as applied ones do.
    records_name_deltas_by_seq(&joined);
    for (k, _) in stored_records(&joined) {
        let cid = crdt_dag::Cid::try_from(&k[1..]).unwrap();
        assert_eq!(joined.entries(&cid).unwrap(), rs[1].entries(&cid).unwrap());
    }
    assert_eq!(joined.delta_count().unwrap(), rs[1].delta_count().unwrap());
    assert_eq!(joined.floor().unwrap().unwrap().0, cid);
    assert_eq!(
        joined
            .history(crdt_dag::Order::OldestFirst)
            .unwrap()
            .count(),
        0,
        "nothing above the floor yet"
    );

    // Above the checkpoint: an unpin of an entry written below it (a tomb
    // naming a dot whose delta has no block here), an update, and a writer
    // whose new delta links an old head (below the floor, not a head of
    // the checkpoint).
    let offline = replica(4);
    sync(&offline, &rs[0]);
    rs[2].write(vec![unpin(1001), pin(11, "renamed")]).unwrap();
    rs[0].write(vec![pin(5000, "new")]).unwrap();
    offline.write(vec![pin(6000, "late")]).unwrap();
    sync(&rs[2], &offline);
    for a in &rs {
        for b in &rs {
            sync(a, b);
        }
    }
    bulk(&joined, &rs[2]);
    assert_eq!(snapshot(&joined), snapshot(&rs[2]));
    assert!(!joined.contains(&content(1001)).unwrap());
    assert_eq!(
        joined.get(&content(11)).unwrap().unwrap().options.name,
        "renamed"
    );

    // The joined replica writes; the others apply it.
    let w = joined
        .write(vec![unpin(11), pin(7000, "from the joiner")])
        .unwrap();
    for r in &rs {
        bulk(r, &joined);
        assert!(r.is_applied(&w.cid).unwrap());
        assert_eq!(r.state_hash().unwrap(), joined.state_hash().unwrap());
    }
    // Its history (and the bulk answer) starts above the floor.
    let above: Vec<_> = joined
        .history(crdt_dag::Order::OldestFirst)
        .unwrap()
        .map(|e| e.unwrap().cid)
        .collect();
    assert!(above.contains(&w.cid));
    assert!(above.iter().all(|c| joined.block(c).unwrap().is_some()));
    // An asker with nothing gets what has a block here: the deltas above
    // the floor (the rest it must get elsewhere, or load a checkpoint).
    let fresh = replica(10);
    let mut answer = joined
        .missing_for(&fresh.frontier().unwrap(), usize::MAX)
        .unwrap();
    let mut walked = joined.missing_by_walk(&[], usize::MAX).unwrap();
    answer.sort();
    walked.sort();
    let mut above = above;
    above.sort();
    assert_eq!(answer, above);
    assert_eq!(walked, above);
}

#[test]
fn a_tampered_or_untrusted_checkpoint_is_refused_and_nothing_stays() {
    let rs = busy_history();
    let (cid, block, blocks) = signed(&rs[0]);

    // A byte changed in a chunk.
    let joined = replica(9);
    {
        let mut load = joined.load_checkpoint(&cid, &block).unwrap();
        load.add(&blocks[0].0, &blocks[0].1).unwrap();
        let (c, mut bytes) = blocks[1].clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = load.add(&c, &bytes).unwrap_err();
        assert!(err.to_string().contains("does not hash"), "{err}");
    }
    // Chunks out of order.
    {
        let mut load = joined.load_checkpoint(&cid, &block).unwrap();
        load.add(&blocks[0].0, &blocks[0].1).unwrap();
        if blocks.len() > 2 {
            let err = load.add(&blocks[2].0, &blocks[2].1).unwrap_err();
            assert!(err.to_string().contains("not the next one"), "{err}");
        }
        // Finished early.
        let err = load.finish().unwrap_err();
        assert!(err.to_string().contains("incomplete"), "{err}");
    }
    assert!(joined.heads().unwrap().is_empty() && joined.is_empty().unwrap());
    assert!(joined.floor().unwrap().is_none());

    // A signer this replica does not trust.
    let strict = trusting_only(9, 2);
    let err = strict.load_checkpoint(&cid, &block).unwrap_err();
    assert!(err.to_string().contains("not a trusted peer"), "{err}");

    // A snapshot whose pin count was changed and re-signed by a trusted
    // writer does not pass either: the state hash and counts are checked.
    let mut lying = Checkpoint::decode(&block).unwrap();
    lying.pins += 1;
    lying.sign(&key(1));
    let (lcid, lblock) = lying.to_block();
    let mut load = joined.load_checkpoint(&lcid, &lblock).unwrap();
    for (c, b) in &blocks {
        load.add(c, b).unwrap();
    }
    let err = load.finish().unwrap_err();
    assert!(err.to_string().contains("pins"), "{err}");

    // After all that, the honest one still loads.
    load_from(&joined, &rs[0]);
    assert_eq!(snapshot(&joined), snapshot(&rs[0]));
    // ...and only into an empty replica.
    let err = joined.load_checkpoint(&cid, &block).unwrap_err();
    assert!(err.to_string().contains("empty replica"), "{err}");
}

#[test]
fn a_load_cut_short_by_a_crash_is_undone_at_the_next_open() {
    let rs = busy_history();
    let (cid, block, blocks) = signed(&rs[0]);
    let dir = tempfile::tempdir().unwrap();
    {
        let r = Replica::open(dir.path(), key(9), ReplicaConfig::new(CLUSTER)).unwrap();
        let mut load = r.load_checkpoint(&cid, &block).unwrap();
        for (c, b) in &blocks[..blocks.len() - 1] {
            load.add(c, b).unwrap();
        }
        // Writes are refused meanwhile.
        assert!(matches!(
            r.write(vec![pin(1, "x")]),
            Err(DagError::Checkpoint(_))
        ));
        r.flush().unwrap();
        // The process dies: no drop, no undo.
        std::mem::forget(load);
    }
    let r = reopen(dir.path(), key(9), ReplicaConfig::new(CLUSTER)).unwrap();
    assert!(r.heads().unwrap().is_empty() && r.is_empty().unwrap());
    assert_eq!(r.state_hash().unwrap(), replica(8).state_hash().unwrap());
    assert!(r.writers().unwrap().is_empty());
    load_from(&r, &rs[0]);
    assert_eq!(snapshot(&r), snapshot(&rs[0]));
}

#[test]
fn a_pruned_history_exports_from_its_floor_and_imports_to_the_same_state() {
    let rs = busy_history();
    let src = &rs[0];
    let before = src.delta_count().unwrap();
    let (cid, _) = src.checkpoint().unwrap();
    src.write(vec![pin(8000, "above"), unpin(1000)]).unwrap();
    let pruned = src.prune().unwrap();
    assert_eq!(pruned.floor, cid);
    assert_eq!(pruned.blocks_removed, before);
    assert_eq!(src.blocks().count(), 1, "only the delta above the floor");
    assert_eq!(src.floor().unwrap().unwrap().0, cid);

    let mut car = Vec::new();
    src.export_car(&mut car).unwrap();
    let dst = replica(9).checking_only();
    let import = dst.import_car(&car[..]).unwrap();
    let (ccid, _, n) = import
        .checkpoint
        .clone()
        .expect("started from the checkpoint");
    assert_eq!(ccid, cid);
    assert_eq!(n, src.snapshot_blocks(&cid).unwrap().unwrap().count());
    assert!(import.unapplied_roots.is_empty(), "{import:?}");
    assert_eq!(import.report.applied, 1);
    assert_eq!(dst.state_hash().unwrap(), src.state_hash().unwrap());

    // The others keep syncing from the pruned replica above its floor.
    bulk(&rs[1], src);
    assert_eq!(rs[1].state_hash().unwrap(), src.state_hash().unwrap());
}

#[test]
fn a_forked_history_or_an_untrusted_replica_makes_no_checkpoint() {
    let r = replica(1);
    assert!(matches!(r.checkpoint(), Err(DagError::Checkpoint(m)) if m.contains("empty")));
    let follower = trusting_only(5, 1);
    assert!(matches!(
        follower.checkpoint(),
        Err(DagError::NotTrusted(_))
    ));

    // Writer 2 signs two deltas with seq 1.
    let a = forge(2, 1, None, vec![], 1, vec![pin_op(1, "a")]);
    let b = forge(2, 1, None, vec![], 1, vec![pin_op(2, "b")]);
    for d in [a, b] {
        let (cid, block) = d.to_block();
        r.ingest(&cid, &block).unwrap();
    }
    r.apply_pending().unwrap();
    assert_eq!(r.forks().unwrap().len(), 1);
    assert!(matches!(r.checkpoint(), Err(DagError::Checkpoint(m)) if m.contains("forked")));
}

/// Pin records a replica holds after a reopen, or after a checkpoint load,
/// are found by later writes: an unpin of them succeeds, and another
/// writer's entry for one merges into its record, as in a replica that was
/// never reopened (what any shortcut around the record lookup must keep).
#[test]
fn pins_stored_before_a_reopen_or_by_a_checkpoint_load_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ReplicaConfig::new(CLUSTER);
    let other = replica(2);
    {
        let r = Replica::open(dir.path(), key(1), cfg.clone()).unwrap();
        r.write((0..50).map(|n| pin(n, "before")).collect())
            .unwrap();
        r.flush().unwrap();
    }
    let r = reopen(dir.path(), key(1), cfg).unwrap();
    other.write(vec![pin(7, "other")]).unwrap();
    sync(&r, &other);
    sync(&other, &r);
    assert_eq!(r.state_hash().unwrap(), other.state_hash().unwrap());
    r.write((0..50).map(unpin).collect()).unwrap();
    sync(&other, &r);
    assert_eq!(r.state_hash().unwrap(), other.state_hash().unwrap());

    let rs = busy_history();
    rs[0].checkpoint().unwrap();
    let loaded = replica(9);
    load_from(&loaded, &rs[0]);
    let held: Vec<u32> = (0..60)
        .filter(|n| rs[0].contains(&content(*n)).unwrap())
        .collect();
    assert!(!held.is_empty());
    loaded
        .write(held.iter().map(|n| unpin(*n)).collect())
        .unwrap();
    rs[0]
        .write(held.iter().map(|n| unpin(*n)).collect())
        .unwrap();
    assert_eq!(loaded.len().unwrap(), rs[0].len().unwrap());
}
