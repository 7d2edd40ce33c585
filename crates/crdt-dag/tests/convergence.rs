//! The CRDT laws as properties: replicas with random writers, random pin,
//! update and unpin ops, delivered in random order, duplicated, partitioned
//! and then healed, end identical (heads, pinset, state hash).

mod common;

use common::*;
use crdt_dag::{DagError, Replica};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    /// Replica `at` pins (or updates) content `cid` with a name from `name`.
    Pin { at: usize, cid: u32, name: u8 },
    /// Replica `at` unpins `cid` if it has it.
    Unpin { at: usize, cid: u32 },
    /// A batch write of several ops in one delta.
    Batch { at: usize, cids: Vec<(u32, bool)> },
    /// `to` syncs everything `from` has (a walk from `from`'s heads).
    Sync { to: usize, from: usize },
    /// `to` receives a shuffled subset of `from`'s blocks in arbitrary order
    /// (children before parents, duplicates), then applies what it can.
    Scatter {
        to: usize,
        from: usize,
        seed: u64,
        keep: u8,
    },
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    let at = 0..n;
    prop_oneof![
        4 => (at.clone(), 0u32..12, any::<u8>()).prop_map(|(at, cid, name)| Step::Pin { at, cid, name }),
        2 => (at.clone(), 0u32..12).prop_map(|(at, cid)| Step::Unpin { at, cid }),
        1 => (at.clone(), prop::collection::vec((0u32..12, any::<bool>()), 1..6))
            .prop_map(|(at, cids)| Step::Batch { at, cids }),
        3 => (at.clone(), 0..n).prop_map(|(to, from)| Step::Sync { to, from }),
        2 => (at, 0..n, any::<u64>(), 1u8..=100)
            .prop_map(|(to, from, seed, keep)| Step::Scatter { to, from, seed, keep }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Step>, usize, Vec<Step>)> {
    (3usize..=5).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(step(n), 1..40),
            // Replicas below this index form one side of the partition.
            1..n,
            prop::collection::vec(step(n), 0..40),
        )
    })
}

fn allowed(e: DagError) {
    assert!(matches!(e, DagError::NotPinned(_)), "unexpected error {e}");
}

fn run(replicas: &[Replica], steps: &[Step], partition: Option<usize>) {
    let side = |i: usize| partition.map(|p| i < p);
    for s in steps {
        match s {
            Step::Pin { at, cid, name } => {
                replicas[*at]
                    .write(vec![pin(*cid, &format!("n{name}"))])
                    .unwrap();
            }
            Step::Unpin { at, cid } => {
                if let Err(e) = replicas[*at].write(vec![unpin(*cid)]) {
                    allowed(e)
                }
            }
            Step::Batch { at, cids } => {
                let writes = cids
                    .iter()
                    .map(|(c, p)| if *p { pin(*c, "batch") } else { unpin(*c) })
                    .collect();
                if let Err(e) = replicas[*at].write(writes) {
                    allowed(e)
                }
            }
            Step::Sync { to, from } => {
                if side(*to) == side(*from) {
                    sync(&replicas[*to], &replicas[*from]);
                }
            }
            Step::Scatter {
                to,
                from,
                seed,
                keep,
            } => {
                if side(*to) != side(*from) {
                    continue;
                }
                let mut blocks: Vec<_> =
                    replicas[*from].blocks().collect::<Result<_, _>>().unwrap();
                let mut x = *seed | 1;
                // xorshift shuffle, deterministic per case
                for i in (1..blocks.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    blocks.swap(i, (x % (i as u64 + 1)) as usize);
                }
                let take = blocks.len() * *keep as usize / 100;
                for (cid, bytes) in blocks.iter().take(take).chain(blocks.iter().take(take / 3)) {
                    replicas[*to].ingest(cid, bytes).unwrap();
                }
                replicas[*to].apply_pending().unwrap();
            }
        }
    }
}

fn heal(replicas: &[Replica]) {
    // Gossip until nothing changes: every replica syncs from every other.
    for _round in 0..replicas.len() + 1 {
        let before: Vec<_> = replicas.iter().map(|r| r.heads().unwrap()).collect();
        for to in replicas {
            for from in replicas {
                sync(to, from);
            }
        }
        let after: Vec<_> = replicas.iter().map(|r| r.heads().unwrap()).collect();
        if before == after {
            break;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn replicas_converge_under_any_delivery((n, partitioned, p, healed) in scenario()) {
        let replicas: Vec<Replica> = (0..n).map(|i| replica(i as u8 + 1)).collect();
        run(&replicas, &partitioned, Some(p));
        run(&replicas, &healed, None);
        heal(&replicas);
        let first = snapshot(&replicas[0]);
        for r in &replicas[1..] {
            prop_assert_eq!(&snapshot(r), &first);
        }
        for r in &replicas {
            prop_assert_eq!(r.pending_count(), 0);
            prop_assert_eq!(r.len().unwrap() as usize, first.1.len());
        }
    }

    /// Whatever else happens, an update concurrent with an unpin survives on
    /// every replica (add wins).
    #[test]
    fn concurrent_update_beats_unpin(noise in prop::collection::vec(step(3), 0..20), cid in 100u32..110) {
        let replicas: Vec<Replica> = (0..3).map(|i| replica(i as u8 + 1)).collect();
        run(&replicas, &noise, None);
        heal(&replicas);
        replicas[0].write(vec![pin(cid, "original")]).unwrap();
        heal(&replicas);
        // Concurrently: replica 1 updates, replica 2 unpins.
        replicas[1].write(vec![pin(cid, "updated")]).unwrap();
        replicas[2].write(vec![unpin(cid)]).unwrap();
        heal(&replicas);
        for r in &replicas {
            let got = r.get(&content(cid)).unwrap();
            prop_assert_eq!(got.map(|p| p.options.name), Some("updated".to_string()));
        }
        prop_assert_eq!(snapshot(&replicas[0]), snapshot(&replicas[2]));
    }
}
