//! The add-wins OR-map as a user of one or two replicas sees it: updates,
//! unpins, concurrent writes, events, durability and the per-writer chain.

mod common;

use std::sync::{Arc, Mutex};

use common::*;

use cluster_types::PinMode;
use crdt_dag::{DagError, Dot, Op, PinEvent, ReplicaConfig, Write};

#[test]
fn pin_update_unpin_and_events() {
    let r = replica(1);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    r.set_event_hook(Some(Arc::new(move |e: &PinEvent| {
        sink.lock().unwrap().push(e.clone())
    })));

    let w1 = r.write(vec![pin(1, "first")]).unwrap();
    assert_eq!(w1.heads, vec![w1.cid]);
    assert_eq!(
        (w1.delta.seq, w1.delta.priority, w1.delta.prev),
        (1, 1, None)
    );
    let w2 = r.write(vec![pin(1, "second")]).unwrap();
    assert_eq!(
        (w2.delta.seq, w2.delta.priority, w2.delta.prev),
        (2, 2, Some(w1.cid))
    );
    assert_eq!(w2.delta.parents, vec![w1.cid]);
    // The update tombstoned the first entry: exactly one live entry remains.
    let entries = r.entries(&content(1)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].dot,
        Dot {
            delta: w2.cid,
            index: 0
        }
    );
    assert_eq!(r.len().unwrap(), 1);

    r.write(vec![unpin(1)]).unwrap();
    assert_eq!(r.get(&content(1)).unwrap(), None);
    assert_eq!(r.len().unwrap(), 0);
    assert!(matches!(r.write(vec![unpin(1)]), Err(DagError::NotPinned(c)) if c == content(1)));

    let events = events.lock().unwrap();
    assert!(matches!(&events[0], PinEvent::Added(p) if p.options.name == "first"));
    assert!(matches!(&events[1], PinEvent::Updated(p) if p.options.name == "second"));
    assert_eq!(events[2], PinEvent::Removed(content(1)));
    assert_eq!(events.len(), 3);
}

#[test]
fn writes_to_one_cid_in_a_batch_are_coalesced() {
    let r = replica(1);
    let w = r
        .write(vec![pin(1, "a"), pin(2, "b"), pin(1, "c")])
        .unwrap();
    assert_eq!(w.delta.ops.len(), 2);
    assert_eq!(r.get(&content(1)).unwrap().unwrap().options.name, "c");
    assert_eq!(r.len().unwrap(), 2);
    assert!(matches!(r.write(vec![]), Err(DagError::InvalidWrite(_))));
}

#[test]
fn concurrent_updates_keep_both_entries_and_pick_one_winner_everywhere() {
    let (a, b) = (replica(1), replica(2));
    a.write(vec![pin(1, "base")]).unwrap();
    sync(&b, &a);
    a.write(vec![pin(1, "from-a")]).unwrap();
    b.write(vec![pin(1, "from-b")]).unwrap();
    sync(&a, &b);
    sync(&b, &a);
    assert_eq!(snapshot(&a), snapshot(&b));
    let entries = a.entries(&content(1)).unwrap();
    assert_eq!(entries.len(), 2, "both concurrent writes are remembered");
    // Same priority: the greater writer ID wins, on both replicas.
    let winner = entries.iter().max_by_key(|e| e.writer).unwrap();
    assert_eq!(
        a.get(&content(1)).unwrap().unwrap().options,
        winner.pin.options
    );
    // A later write observes both and collapses them.
    a.write(vec![pin(1, "merged")]).unwrap();
    assert_eq!(a.entries(&content(1)).unwrap().len(), 1);
}

#[test]
fn higher_priority_wins_over_writer_order() {
    let (a, b) = (replica(1), replica(2));
    // `a` writes on a longer branch; `b` writes once, concurrently.
    for i in 0..3 {
        a.write(vec![pin(50 + i, "filler")]).unwrap();
    }
    a.write(vec![pin(1, "long-branch")]).unwrap();
    b.write(vec![pin(1, "short-branch")]).unwrap();
    sync(&a, &b);
    sync(&b, &a);
    for r in [&a, &b] {
        let winner = r.entries(&content(1)).unwrap().pop().unwrap();
        assert_eq!(
            (winner.pin.options.name.as_str(), winner.priority),
            ("long-branch", 4)
        );
        assert_eq!(r.get(&content(1)).unwrap().unwrap(), winner.pin);
    }
}

#[test]
fn tombstone_arriving_before_its_add_still_removes_it() {
    // A (validly signed) writer tombstones a dot of a delta the receiver has
    // not applied yet; the add must not resurrect when it arrives later.
    let target = forge(1, 1, None, vec![], 1, vec![pin_op(7, "doomed")]);
    let target_cid = target.to_block().0;
    let tomb = Op::Unpin {
        cid: content(7),
        tombs: vec![Dot {
            delta: target_cid,
            index: 0,
        }],
    };
    let remover = forge(2, 1, None, vec![], 1, vec![tomb]);
    let remover_cid = remover.to_block().0;

    let early = replica(9);
    sync_from(&early, &[remover_cid], &source_of(&[&remover]));
    sync_from(&early, &[target_cid], &source_of(&[&target]));
    let late = replica(8);
    sync_from(&late, &[target_cid], &source_of(&[&target]));
    assert!(late.get(&content(7)).unwrap().is_some());
    sync_from(&late, &[remover_cid], &source_of(&[&remover]));

    assert_eq!(early.get(&content(7)).unwrap(), None);
    assert_eq!(snapshot(&early), snapshot(&late));
}

/// A tomb stored waiting for its entry is still found after a restart (the
/// replica counts waiting tombs when it opens, and looks for them only
/// while there are some).
#[test]
fn a_waiting_tomb_survives_a_restart() {
    let target = forge(1, 1, None, vec![], 1, vec![pin_op(7, "doomed")]);
    let target_cid = target.to_block().0;
    let tomb = Op::Unpin {
        cid: content(7),
        tombs: vec![Dot {
            delta: target_cid,
            index: 0,
        }],
    };
    let remover = forge(2, 1, None, vec![], 1, vec![tomb]);
    let remover_cid = remover.to_block().0;
    let dir = tempfile::tempdir().unwrap();
    let open = || crdt_dag::Replica::open(dir.path(), key(9), ReplicaConfig::new(CLUSTER)).unwrap();
    let early = open();
    sync_from(&early, &[remover_cid], &source_of(&[&remover]));
    early.flush().unwrap();
    drop(early);
    let reopened = open();
    sync_from(&reopened, &[target_cid], &source_of(&[&target]));
    assert_eq!(reopened.get(&content(7)).unwrap(), None);
    // Taken: later pins of other CIDs are applied as usual.
    let other = forge(
        1,
        2,
        Some(target_cid),
        vec![target_cid],
        2,
        vec![pin_op(8, "kept")],
    );
    sync_from(&reopened, &[other.to_block().0], &source_of(&[&other]));
    assert!(reopened.get(&content(8)).unwrap().is_some());
}

#[test]
fn tombstone_scoped_to_another_cid_removes_nothing() {
    let target = forge(1, 1, None, vec![], 1, vec![pin_op(7, "keep")]);
    let target_cid = target.to_block().0;
    let wrong = Op::Unpin {
        cid: content(8),
        tombs: vec![Dot {
            delta: target_cid,
            index: 0,
        }],
    };
    let remover = forge(2, 1, None, vec![], 1, vec![wrong]);
    let both = source_of(&[&target, &remover]);
    let (x, y) = (replica(9), replica(8));
    sync_from(&x, &[target_cid], &both);
    sync_from(&x, &[remover.to_block().0], &both);
    sync_from(&y, &[remover.to_block().0], &both);
    sync_from(&y, &[target_cid], &both);
    assert!(x.get(&content(7)).unwrap().is_some());
    assert_eq!(snapshot(&x), snapshot(&y));
}

#[test]
fn acknowledged_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ReplicaConfig::new(CLUSTER);
    let (hash, heads) = {
        let r = reopen(dir.path(), key(1), cfg.clone()).unwrap();
        for i in 0..20 {
            r.write(vec![pin(i, "durable")]).unwrap();
        }
        r.write(vec![unpin(3)]).unwrap();
        (r.state_hash().unwrap(), r.heads().unwrap())
    };
    let r = reopen(dir.path(), key(1), cfg).unwrap();
    assert_eq!(r.state_hash().unwrap(), hash);
    assert_eq!(r.heads().unwrap(), heads);
    assert_eq!(r.len().unwrap(), 19);
    // The writer's chain continues where it stopped.
    let w = r.write(vec![pin(100, "next")]).unwrap();
    assert_eq!(w.delta.seq, 22);
    assert_eq!(Some(w.delta.prev.unwrap()), heads.first().copied());
}

#[test]
fn store_of_another_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(reopen(dir.path(), key(1), ReplicaConfig::new("one")).unwrap());
    let err = reopen(dir.path(), key(1), ReplicaConfig::new("two")).unwrap_err();
    assert!(err.to_string().contains("cluster"), "{err}");
}

#[test]
fn pins_stream_in_cid_order_with_all_options() {
    let r = replica(1);
    let full = pin_with_every_field();
    let mut writes: Vec<Write> = (0..50).map(|i| pin(i, "plain")).collect();
    writes.push(Write::Pin(full.clone()));
    r.write(writes).unwrap();
    let pins: Vec<_> = r.pins().collect::<Result<_, _>>().unwrap();
    assert_eq!(pins.len(), 51);
    assert!(
        pins.windows(2)
            .all(|w| w[0].cid.to_bytes() < w[1].cid.to_bytes())
    );
    let got = r.get(&content(77)).unwrap().unwrap();
    assert_eq!(got, full);
    assert_eq!(got.ipfs_mode(), PinMode::Direct);
    // And it crosses the wire intact.
    let other = replica(2);
    sync(&other, &r);
    assert_eq!(other.get(&content(77)).unwrap().unwrap(), full);
}

#[test]
fn contains_follows_pin_and_unpin() {
    let r = replica(1);
    assert!(!r.contains(&content(1)).unwrap());
    r.write(vec![pin(1, "x")]).unwrap();
    assert!(r.contains(&content(1)).unwrap());
    r.write(vec![unpin(1)]).unwrap();
    assert!(!r.contains(&content(1)).unwrap());
}

/// A walk over the pinset resumes after the last CID it saw.
#[test]
fn pins_after_resumes_a_walk_in_cid_order() {
    let r = replica(1);
    r.write((0..5).map(|n| pin(n, "p")).collect()).unwrap();
    let all: Vec<_> = r.pins().map(|p| p.unwrap().cid).collect();
    assert_eq!(all.len(), 5);
    let from_none: Vec<_> = r.pins_after(None).map(|p| p.unwrap().cid).collect();
    assert_eq!(from_none, all);
    let rest: Vec<_> = r
        .pins_after(Some(&all[2]))
        .map(|p| p.unwrap().cid)
        .collect();
    assert_eq!(rest, all[3..].to_vec());
    assert_eq!(r.pins_after(Some(&all[4])).count(), 0);
    // A CID the pinset doesn't hold resumes at the next one after it.
    let missing = content(99);
    let after_missing = r.pins_after(Some(&missing)).count();
    let greater = all
        .iter()
        .filter(|c| c.to_bytes() > missing.to_bytes())
        .count();
    assert_eq!(after_missing, greater);
}
