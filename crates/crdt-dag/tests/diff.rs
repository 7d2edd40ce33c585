//! `missing_for`: exactly the deltas another replica lacks, oldest first, so
//! a bulk sync is one answer and not one round trip per DAG level.

mod common;

use std::collections::HashSet;

use common::*;
use crdt_dag::Replica;

fn applied_set(r: &Replica) -> HashSet<crdt_dag::Cid> {
    r.blocks().map(|b| b.unwrap().0).collect()
}

#[test]
fn answer_is_exactly_what_the_other_side_lacks() {
    let writers = history(12);
    let (a, b) = (&writers[0], replica(9));
    // b catches up half way, then both move on concurrently.
    sync(&b, a);
    for i in 0..30 {
        a.write(vec![pin(1000 + i, "a-later")]).unwrap();
        writers[1].write(vec![pin(2000 + i, "w1-later")]).unwrap();
        if i % 10 == 0 {
            sync(a, &writers[1]);
        }
    }
    b.write(vec![pin(3000, "b-only")]).unwrap();

    let answer = a.missing_for(&b.frontier().unwrap(), usize::MAX).unwrap();
    let want: HashSet<_> = applied_set(a)
        .difference(&applied_set(&b))
        .copied()
        .collect();
    assert_eq!(answer.iter().copied().collect::<HashSet<_>>(), want);
    assert_eq!(answer.len(), want.len(), "no duplicates");

    // Oldest first: each block's dependencies come before it (or b has them).
    let mut seen = applied_set(&b);
    for cid in &answer {
        let delta = crdt_dag::Delta::decode(&a.block(cid).unwrap().unwrap()).unwrap();
        assert!(
            delta.dependencies().all(|d| seen.contains(d)),
            "{cid} before its parents"
        );
        seen.insert(*cid);
    }

    // Shipping exactly those blocks brings b up to date in one pass.
    for cid in &answer {
        b.ingest(cid, &a.block(cid).unwrap().unwrap()).unwrap();
    }
    let report = b.apply_pending().unwrap();
    assert_eq!(report.applied, answer.len());
    assert!(a.heads().unwrap().iter().all(|h| b.is_applied(h).unwrap()));
}

#[test]
fn empty_or_unknown_heads_get_everything_and_limit_is_respected() {
    let writers = history(5);
    let a = &writers[2];
    let all = applied_set(a);
    let unknown = crdt_dag::block_cid(b"not a delta anyone has");
    assert_eq!(a.missing_for(&[], usize::MAX).unwrap().len(), all.len());
    assert_eq!(
        a.missing_for(&[unknown], usize::MAX).unwrap().len(),
        all.len()
    );
    assert!(
        a.missing_for(&a.heads().unwrap(), usize::MAX)
            .unwrap()
            .is_empty()
    );
    // A limited answer is the oldest part: applying it lets the asker ask on.
    let all_sorted = a.missing_for(&[], usize::MAX).unwrap();
    let some = a.missing_for(&[], 4).unwrap();
    assert_eq!(some.len(), 4);
    let b = replica(9);
    for cid in &some {
        b.ingest(cid, &a.block(cid).unwrap().unwrap()).unwrap();
    }
    assert_eq!(
        b.apply_pending().unwrap().applied,
        4,
        "the 4 oldest apply on their own"
    );
    let rest = a.missing_for(&b.frontier().unwrap(), usize::MAX).unwrap();
    assert_eq!(rest.len(), all_sorted.len() - 4);
}

/// An answerer behind the asker on a writer doesn't know the asker's latest
/// delta of it, but knows one of the older ones the frontier also lists,
/// so it leaves out that writer's chain up to there instead of sending the
/// asker its whole history back.
#[test]
fn an_answerer_behind_the_asker_sends_little_it_already_has() {
    let (a, b, c) = (replica(1), replica(2), replica(3));
    for i in 0..150 {
        a.write(vec![pin(i, "a")]).unwrap();
    }
    sync(&c, &a);
    for i in 150..200 {
        a.write(vec![pin(i, "a")]).unwrap();
    }
    sync(&b, &a);
    for i in 0..10 {
        c.write(vec![pin(1000 + i, "c")]).unwrap();
    }
    for i in 0..3 {
        b.write(vec![pin(2000 + i, "b")]).unwrap();
    }
    // c is 50 of a's deltas behind b, and b lacks c's 10.
    let answer = c.missing_for(&b.frontier().unwrap(), usize::MAX).unwrap();
    let has = applied_set(&b);
    let redundant = answer.iter().filter(|cid| has.contains(cid)).count();
    let new = answer.len() - redundant;
    assert_eq!(new, 10, "c's own deltas");
    // Without the older entries, all 150 of a's deltas c has would come.
    assert!(
        redundant <= 32,
        "{redundant} of {} already at b",
        answer.len()
    );
    // And what comes is enough.
    for cid in &answer {
        b.ingest(cid, &c.block(cid).unwrap().unwrap()).unwrap();
    }
    b.apply_pending().unwrap();
    assert!(c.heads().unwrap().iter().all(|h| b.is_applied(h).unwrap()));
}
