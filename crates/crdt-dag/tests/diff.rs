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
