//! A walk stopped half way (after k blocks fetched or applied) and resumed
//! after reopening the store ends in the same state as an uninterrupted one.

mod common;

use common::*;
use crdt_dag::{Replica, ReplicaConfig, SyncBudget};

fn open(dir: &std::path::Path) -> Replica {
    reopen(dir, key(9), ReplicaConfig::new(CLUSTER)).expect("reopening the store")
}

#[test]
fn interrupted_walks_resume_to_the_same_state() {
    let source = history(40);
    let src = &source[0];
    let heads = src.heads().unwrap();
    let reference = replica(9);
    let report = futures::executor::block_on(reference.sync(&heads, src)).unwrap();
    assert!(report.is_complete(), "{report:?}");
    let want = snapshot(&reference);
    assert_eq!(want, snapshot(src));
    let total = report.applied;
    assert!(total > 100, "history is deep enough: {total}");

    for (fetch, apply) in [
        (usize::MAX, 1),
        (usize::MAX, total / 2),
        (7, usize::MAX),
        (total / 3, 5),
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = open(dir.path());
            let budget = SyncBudget {
                max_fetch: fetch,
                max_apply: apply,
            };
            let report = futures::executor::block_on(r.sync_with(&heads, src, budget)).unwrap();
            assert!(report.budget_exhausted, "stopped early: {report:?}");
            assert!(report.applied < total);
            // Dropped here without finishing: the "crash".
        }
        let r = open(dir.path());
        let report = futures::executor::block_on(r.sync(&heads, src)).unwrap();
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(
            snapshot(&r),
            want,
            "fetch budget {fetch}, apply budget {apply}"
        );
    }
}

#[test]
fn fetched_but_unapplied_blocks_apply_without_the_source() {
    let source = history(10);
    let src = &source[1];
    let heads = src.heads().unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let r = open(dir.path());
        let budget = SyncBudget {
            max_fetch: usize::MAX,
            max_apply: 3,
        };
        let report = futures::executor::block_on(r.sync_with(&heads, src, budget)).unwrap();
        assert_eq!(report.applied, 3);
        assert!(report.pending > 0);
    }
    // After the restart everything needed is on disk already.
    let r = open(dir.path());
    assert!(r.pending_count() > 0);
    let report = r.apply_pending().unwrap();
    assert_eq!(report.pending, 0, "{report:?}");
    assert_eq!(snapshot(&r), snapshot(src));
}
