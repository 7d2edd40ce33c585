//! `Replica::history`: every applied delta once, oldest or newest first,
//! forked branches included; the order CAR exports are written in.

mod common;

use std::collections::HashSet;

use common::*;
use crdt_dag::{Cid, HistoryEntry, Order, Replica};
use proptest::prelude::*;

fn entries(r: &Replica, order: Order) -> Vec<HistoryEntry> {
    r.history(order).unwrap().map(|e| e.unwrap()).collect()
}

/// Checks the laws of a replica's history and returns it oldest first.
fn check_history(r: &Replica) -> Result<Vec<HistoryEntry>, TestCaseError> {
    let oldest = entries(r, Order::OldestFirst);
    let mut newest = entries(r, Order::NewestFirst);
    let applied: HashSet<Cid> = r.blocks().map(|b| b.unwrap().0).collect();
    let listed: HashSet<Cid> = oldest.iter().map(|e| e.cid).collect();
    prop_assert_eq!(listed.len(), oldest.len(), "no delta twice");
    prop_assert_eq!(&listed, &applied, "every applied delta");
    // Each delta after everything it depends on.
    let mut seen = HashSet::new();
    for e in &oldest {
        let block = r.block(&e.cid).unwrap().unwrap();
        let delta = crdt_dag::Delta::decode(&block).unwrap();
        prop_assert_eq!(
            (delta.priority, delta.seq, delta.writer),
            (e.priority, e.seq, e.writer)
        );
        prop_assert!(
            delta.dependencies().all(|d| seen.contains(d)),
            "{} early",
            e.cid
        );
        seen.insert(e.cid);
    }
    prop_assert!(oldest.windows(2).all(|w| w[0].priority <= w[1].priority));
    newest.reverse();
    prop_assert_eq!(&newest, &oldest, "newest first is the reverse");
    prop_assert_eq!(r.delta_count().unwrap(), oldest.len() as u64);
    // One writer's history is the whole history filtered.
    for w in r.writers().unwrap() {
        let mine: Vec<HistoryEntry> = r
            .writer_history(&w.writer, Order::NewestFirst)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        let mut want: Vec<HistoryEntry> = oldest
            .iter()
            .filter(|e| e.writer == w.writer)
            .cloned()
            .collect();
        want.reverse();
        prop_assert_eq!(mine[0].cid, w.latest);
        prop_assert_eq!(mine, want);
    }
    Ok(oldest)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn history_lists_every_delta_once_in_causal_order(steps in prop::collection::vec(step(3), 1..50)) {
        let replicas: Vec<Replica> = (1..=3).map(replica).collect();
        play(&replicas, &steps);
        for r in &replicas {
            check_history(r)?;
        }
    }
}

#[test]
fn history_includes_both_branches_of_a_fork() {
    let r = replica(9);
    let a1 = forge(1, 1, None, vec![], 1, vec![pin_op(1, "a")]);
    let b1 = forge(1, 1, None, vec![], 1, vec![pin_op(2, "b")]);
    let (ca, cb) = (a1.to_block().0, b1.to_block().0);
    // The second branch goes on past the first: seq 2 is only on it.
    let b2 = forge(1, 2, Some(cb), vec![cb], 2, vec![pin_op(3, "b2")]);
    let cb2 = b2.to_block().0;
    sync_from(&r, &[ca, cb2], &source_of(&[&a1, &b1, &b2]));
    assert_eq!(r.forks().unwrap().len(), 1);
    let oldest = check_history(&r).unwrap();
    let cids: Vec<Cid> = oldest.iter().map(|e| e.cid).collect();
    assert_eq!(cids.len(), 3);
    assert_eq!(cids[2], cb2);
}

#[test]
fn an_export_is_oldest_first_and_imports_in_one_pass() {
    let writers = history(20);
    let src = &writers[1];
    let mut car = Vec::new();
    src.export_car(&mut car).unwrap();
    let dst = replica(9);
    let import = dst.import_car(&car[..]).unwrap();
    assert!(import.report.is_complete(), "{import:?}");
    assert_eq!(dst.state_hash().unwrap(), src.state_hash().unwrap());
    // The file's blocks are the history, oldest first.
    let mut dec = cluster_codec::car::CarDecoder::new(&car[..]);
    dec.read_header(1 << 20).unwrap();
    let mut sections = Vec::new();
    while let Some((cid, _, _)) = dec.read_section(2 << 20).unwrap() {
        sections.push(cid);
    }
    let oldest: Vec<Cid> = entries(src, Order::OldestFirst)
        .into_iter()
        .map(|e| e.cid)
        .collect();
    assert_eq!(sections, oldest);
}

#[test]
fn a_walk_lists_the_history_as_it_was_when_it_began() {
    // Long enough a chain that sled's iterator reads it over many nodes
    // (it snapshots one node at a time, so a short chain would hide the
    // deltas written after the walk began anyway).
    let r = replica(1);
    for i in 0..2_000 {
        r.write_unnotified(vec![pin(i, "before")]).unwrap();
    }
    r.flush().unwrap();
    for (round, order) in [Order::OldestFirst, Order::NewestFirst]
        .into_iter()
        .enumerate()
    {
        let before: Vec<Cid> = entries(&r, Order::OldestFirst)
            .into_iter()
            .map(|e| e.cid)
            .collect();
        let walk = r.history(order).unwrap();
        for i in 0..10 {
            r.write(vec![pin(5_000 + 10 * round as u32 + i, "later")])
                .unwrap();
        }
        let mut listed: Vec<Cid> = walk.map(|e| e.unwrap().cid).collect();
        if order == Order::NewestFirst {
            listed.reverse();
        }
        assert_eq!(listed.len(), before.len(), "{order:?}");
        assert_eq!(listed, before, "{order:?}");
    }
}
