//! Helpers shared by the crdt-dag integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, UNIX_EPOCH};

use cluster_types::{Pin, PinMode, PinOptions, PinType};
use crdt_dag::{Cid, Replica, ReplicaConfig, SyncReport, Write};
use ed25519_dalek::SigningKey;
use multihash_codetable::{Code, MultihashDigest};

pub const CLUSTER: &str = "test-cluster";

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A distinct CIDv1 (raw, sha2-256) per number: the content being pinned.
pub fn content(n: u32) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

pub fn replica(n: u8) -> Replica {
    Replica::temporary(key(n), ReplicaConfig::new(CLUSTER)).expect("open replica")
}

pub fn pin(n: u32, name: &str) -> Write {
    Write::Pin(Pin::new(content(n), PinOptions::named(name)))
}

pub fn unpin(n: u32) -> Write {
    Write::Unpin(content(n))
}

/// `to` learns `from`'s heads and syncs from it.
pub fn sync(to: &Replica, from: &Replica) -> SyncReport {
    let heads = from.heads().expect("heads");
    futures::executor::block_on(to.sync(&heads, from)).expect("sync")
}

/// Heads, pins with options, state hash and count: all a replica shows.
pub type Snapshot = (Vec<Cid>, Vec<Pin>, [u8; 32], u64);

/// The whole visible state of a replica, for equality checks.
pub fn snapshot(r: &Replica) -> Snapshot {
    let pins = r.pins().collect::<Result<_, _>>().unwrap();
    (
        r.heads().unwrap(),
        pins,
        r.state_hash().unwrap(),
        r.len().unwrap(),
    )
}

use crdt_dag::{Delta, Op};

/// Builds and signs an arbitrary delta (valid or not) by `signer`.
pub fn forge(
    signer: u8,
    seq: u64,
    prev: Option<Cid>,
    parents: Vec<Cid>,
    priority: u64,
    ops: Vec<Op>,
) -> Delta {
    let mut d = Delta {
        ts: 1,
        ops,
        seq,
        prev,
        writer: crdt_dag::WriterId::from_public_key(&key(signer).verifying_key()),
        cluster: CLUSTER.into(),
        parents,
        priority,
        sig: [0; 64],
    };
    d.sign(&key(signer));
    d
}

pub fn pin_op(n: u32, name: &str) -> Op {
    Op::Pin {
        pin: Pin::new(content(n), PinOptions::named(name)),
        tombs: vec![],
    }
}

/// A source holding the given deltas.
pub fn source_of(deltas: &[&Delta]) -> crdt_dag::MemoryBlockSource {
    let s = crdt_dag::MemoryBlockSource::new();
    for d in deltas {
        let (cid, bytes) = d.to_block();
        s.insert(cid, bytes);
    }
    s
}

pub fn sync_from(r: &Replica, heads: &[Cid], source: &crdt_dag::MemoryBlockSource) -> SyncReport {
    futures::executor::block_on(r.sync(heads, source)).expect("sync")
}

/// Three writers building a history of about `rounds * 3` deltas with
/// concurrency, updates and unpins; returns them synced with each other.
pub fn history(rounds: u32) -> Vec<Replica> {
    let writers: Vec<Replica> = (1..=3).map(replica).collect();
    for round in 0..rounds {
        for (i, w) in writers.iter().enumerate() {
            let base = round * 7 + i as u32;
            let mut ops = vec![pin(base, "new"), pin(base / 2, &format!("upd{round}"))];
            if round % 3 == 2 {
                ops.push(unpin(base.saturating_sub(5)));
            }
            if let Err(e) = w.write(ops.clone()) {
                assert!(matches!(e, crdt_dag::DagError::NotPinned(_)), "{e}");
                w.write(ops[..2].to_vec()).unwrap();
            }
        }
        if round % 4 == 3 {
            for a in &writers {
                for b in &writers {
                    sync(a, b);
                }
            }
        }
    }
    for a in &writers {
        for b in &writers {
            sync(a, b);
        }
    }
    writers
}

/// Opens the store in `dir`, waiting while a just-dropped handle still holds
/// its file lock (sled's background flusher lets go a moment after the drop,
/// later on a loaded machine). Other errors are returned at once.
pub fn reopen(
    dir: &std::path::Path,
    key: SigningKey,
    cfg: crdt_dag::ReplicaConfig,
) -> crdt_dag::Result<Replica> {
    let started = std::time::Instant::now();
    loop {
        match Replica::open(dir, key.clone(), cfg.clone()) {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_secs(30) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A pin with every field set off its default. golden.rs pins the bytes
/// it encodes to, so it must not change.
pub fn pin_with_every_field() -> Pin {
    Pin {
        options: PinOptions {
            replication_factor_min: -1,
            replication_factor_max: 3,
            name: "full".into(),
            mode: PinMode::Direct,
            shard_size: 1 << 20,
            user_allocations: vec!["12D3KooWA".into()],
            expire_at: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            metadata: [("k".to_string(), "v".to_string())].into(),
            pin_update: Some(content(901)),
            origins: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        },
        cid: content(77),
        pin_type: PinType::MetaPin,
        allocations: vec!["12D3KooWA".into(), "12D3KooWB".into()],
        max_depth: 0,
        reference: Some(content(900)),
        timestamp: Some(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789)),
    }
}

/// One step of a random history: replica `at` writes `n` one-pin deltas,
/// or `to` syncs everything `from` has.
#[derive(Clone, Debug)]
pub enum Step {
    Write { at: usize, n: u32 },
    Sync { to: usize, from: usize },
}

pub fn step(replicas: usize) -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::strategy::Strategy;
    proptest::prop_oneof![
        3 => (0..replicas, 1u32..6).prop_map(|(at, n)| Step::Write { at, n }),
        2 => (0..replicas, 0..replicas).prop_map(|(to, from)| Step::Sync { to, from }),
    ]
}

/// Plays `steps` on `replicas`, pin numbers counting from 0.
pub fn play(replicas: &[Replica], steps: &[Step]) {
    let mut next = 0u32;
    for s in steps {
        match *s {
            Step::Write { at, n } => {
                for _ in 0..n {
                    replicas[at].write(vec![pin(next, "p")]).unwrap();
                    next += 1;
                }
            }
            Step::Sync { to, from } if to != from => {
                sync(&replicas[to], &replicas[from]);
            }
            Step::Sync { .. } => {}
        }
    }
}

/// The stored pin records of `r`: key (`p` + CID) and value.
pub fn stored_records(r: &Replica) -> Vec<(Vec<u8>, Vec<u8>)> {
    let tree = r.database().open_tree(crdt_dag::TREE_NAME).unwrap();
    tree.scan_prefix(b"p")
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Checks that every entry of every pin of `r` names a delta that holds
/// that pin at that op index, written by that writer: what a record that
/// names its delta by seq must resolve to.
pub fn entries_name_their_ops(r: &Replica) {
    for (k, _) in stored_records(r) {
        let cid = Cid::try_from(&k[1..]).unwrap();
        for e in r.entries(&cid).unwrap() {
            let Some(block) = r.block(&e.dot.delta).unwrap() else {
                continue; // below a checkpoint's floor: no block here
            };
            let delta = crdt_dag::Delta::decode(&block).unwrap();
            assert_eq!(delta.writer, e.writer, "{cid}");
            assert_eq!(delta.priority, e.priority, "{cid}");
            assert_eq!(
                delta.ops[e.dot.index as usize].cid(),
                &cid,
                "entry {:?} of {cid}",
                e.dot
            );
        }
    }
}

/// Checks that every pin record of `r` is stored in layout 4's form and
/// names each entry's delta by seq: none of those CIDs is in its bytes.
pub fn records_name_deltas_by_seq(r: &Replica) {
    let records = stored_records(r);
    assert!(!records.is_empty());
    for (k, v) in records {
        let cid = Cid::try_from(&k[1..]).unwrap();
        assert_eq!(v[0], 0x02, "{cid}: {v:02x?}");
        for e in r.entries(&cid).unwrap() {
            let named = e.dot.delta.to_bytes();
            assert!(
                !v.windows(named.len()).any(|w| w == named.as_slice()),
                "{cid} names {} by CID",
                e.dot.delta
            );
        }
    }
}

/// The store layout this version writes.
pub const LAYOUT: u64 = 6;

/// Checks a store of an older layout reopened as `r`: it is marked the
/// current layout ([`LAYOUT`]), reads as `source[0]` does, and still does once new
/// writes reach it (content 0 updated, content 1000 pinned, by
/// `source[1]`).
pub fn reads_the_same_after_an_upgrade(r: &Replica, source: &[Replica], before: &Snapshot) {
    let tree = r.database().open_tree(crdt_dag::TREE_NAME).unwrap();
    assert_eq!(
        tree.get(b"mversion").unwrap().unwrap().as_ref(),
        LAYOUT.to_be_bytes()
    );
    assert_eq!(&snapshot(r), before);
    for (k, _) in stored_records(r) {
        let cid = Cid::try_from(&k[1..]).unwrap();
        assert_eq!(r.entries(&cid).unwrap(), source[0].entries(&cid).unwrap());
    }
    source[1]
        .write(vec![pin(0, "again"), pin(1000, "new")])
        .unwrap();
    sync(&source[0], &source[1]);
    sync(r, &source[0]);
    assert_eq!(snapshot(r), snapshot(&source[0]));
}
