//! `missing_for`: exactly the deltas another replica lacks, oldest first, so
//! a bulk sync is one answer and not one round trip per DAG level.

mod common;

use std::collections::HashSet;

use common::*;
use crdt_dag::Replica;
use proptest::prelude::*;

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
        // The delta index names its writer and seq as the block does.
        assert_eq!(a.delta_seq(cid).unwrap(), Some((delta.writer, delta.seq)));
        assert_eq!(b.delta_seq(cid).unwrap(), None, "not applied there yet");
        seen.insert(*cid);
    }

    // Shipping exactly those blocks brings b up to date in one pass.
    for cid in &answer {
        b.ingest(cid, &a.block(cid).unwrap().unwrap()).unwrap();
    }
    let report = b.apply_pending().unwrap();
    assert_eq!(report.applied, answer.len());
    assert!(a.heads().unwrap().iter().all(|h| b.is_applied(h).unwrap()));
    for cid in &answer {
        assert_eq!(b.delta_seq(cid).unwrap(), a.delta_seq(cid).unwrap());
    }
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The chain index answers what the walk answers, and more only where
    /// the asker already has it: any writers, any delivery, any limit.
    #[test]
    fn the_chain_answer_is_complete_ordered_and_adds_only_what_the_asker_has(
        steps in prop::collection::vec(step(4), 1..60),
        limit in 1usize..40,
    ) {
        let replicas: Vec<Replica> = (1..=4).map(replica).collect();
        play(&replicas, &steps);
        for answerer in &replicas {
            for asker in &replicas {
                let frontier = asker.frontier().unwrap();
                let chain = answerer.missing_by_chain(&frontier, usize::MAX).unwrap();
                let walk = answerer.missing_by_walk(&frontier, usize::MAX).unwrap();
                prop_assert_eq!(&answerer.missing_for(&frontier, usize::MAX).unwrap(), &chain);
                let (ours, has) = (applied_set(answerer), applied_set(asker));
                let lacks: HashSet<_> = ours.difference(&has).copied().collect();
                let chain_set: HashSet<_> = chain.iter().copied().collect();
                prop_assert_eq!(chain_set.len(), chain.len(), "no duplicates");
                prop_assert!(lacks.is_subset(&chain_set), "complete");
                prop_assert!(walk.iter().all(|c| chain_set.contains(c)), "what the walk sends");
                prop_assert!(
                    chain_set.iter().all(|c| lacks.contains(c) || has.contains(c)),
                    "only deltas the answerer has"
                );
                // Oldest first, and a cut answer is the oldest part.
                let priorities: Vec<u64> = chain
                    .iter()
                    .map(|c| crdt_dag::Delta::decode(&answerer.block(c).unwrap().unwrap()).unwrap().priority)
                    .collect();
                prop_assert!(priorities.windows(2).all(|w| w[0] <= w[1]), "{:?}", priorities);
                let cut = answerer.missing_by_chain(&frontier, limit).unwrap();
                prop_assert_eq!(&cut[..], &chain[..limit.min(chain.len())]);
            }
        }
    }
}

#[test]
fn a_forked_writer_is_answered_by_the_walk_with_both_branches() {
    let r = replica(9);
    let a = forge(1, 1, None, vec![], 1, vec![pin_op(1, "a")]);
    let b = forge(1, 1, None, vec![], 1, vec![pin_op(2, "b")]);
    let (ca, cb) = (a.to_block().0, b.to_block().0);
    sync_from(&r, &[ca, cb], &source_of(&[&a, &b]));
    // The chain index holds one delta per seq: it can't see the other branch.
    assert_eq!(r.missing_by_chain(&[], usize::MAX).unwrap().len(), 1);
    let mut answer = r.missing_for(&[], usize::MAX).unwrap();
    answer.sort();
    let mut both = vec![ca, cb];
    both.sort();
    assert_eq!(answer, both);
}
