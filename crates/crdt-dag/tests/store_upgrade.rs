//! A store written before pin records were stored compact (layout 1: each
//! record is `R(x)` of spec §6) opens, reads and hashes as it did, is marked
//! the current layout, and rewrites a record compact when it next changes.

mod common;

use common::*;
use crdt_dag::{Cid, Replica, ReplicaConfig, WirePin, Write};
use serde_bytes::ByteBuf;

const VERSION_KEY: &[u8] = b"mversion";

fn open(dir: &std::path::Path) -> crdt_dag::Result<Replica> {
    reopen(dir, key(9), ReplicaConfig::new(CLUSTER))
}

/// `R(x)` built from the public entries, as a layout-1 store held it.
fn canonical(r: &Replica, cid: &Cid) -> Vec<u8> {
    type Entry = (u64, ByteBuf, ByteBuf, u32, WirePin);
    let entries: Vec<Entry> = r
        .entries(cid)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.priority,
                ByteBuf::from(e.writer.to_peer_id_bytes().to_vec()),
                ByteBuf::from(e.dot.delta.to_bytes()),
                e.dot.index,
                WirePin::from_pin(&e.pin),
            )
        })
        .collect();
    serde_ipld_dagcbor::to_vec(&(ByteBuf::from(cid.to_bytes()), entries)).unwrap()
}

#[test]
fn a_layout_1_store_opens_reads_the_same_and_is_rewritten_compact() {
    let source = history(12);
    let extra = replica(4);
    extra
        .write(vec![Write::Pin(pin_with_every_field())])
        .unwrap();
    sync(&source[0], &extra);

    let dir = tempfile::tempdir().unwrap();
    let before = {
        let r = open(dir.path()).unwrap();
        sync(&r, &source[0]);
        let before = snapshot(&r);
        assert_eq!(before, snapshot(&source[0]));
        let stored = stored_records(&r);
        assert!(stored.len() > 20, "{} records", stored.len());
        assert!(stored.iter().all(|(_, v)| v[0] == 0x02), "stored compact");
        let multi = stored
            .iter()
            .filter(|(k, _)| r.entries(&Cid::try_from(&k[1..]).unwrap()).unwrap().len() > 1)
            .count();
        assert!(multi > 0, "some CIDs hold concurrent entries");

        // Back to layout 1: every record as R(x), the version 1.
        let tree = r.database().open_tree(crdt_dag::TREE_NAME).unwrap();
        for (k, v) in stored {
            let old = canonical(&r, &Cid::try_from(&k[1..]).unwrap());
            assert!(
                old.len() > v.len() + 60,
                "{} against {}",
                old.len(),
                v.len()
            );
            tree.insert(k, old).unwrap();
        }
        tree.insert(VERSION_KEY, &1u64.to_be_bytes()).unwrap();
        tree.flush().unwrap();
        assert_eq!(snapshot(&r), before, "the same state read from R(x)");
        before
    };

    let r = open(dir.path()).unwrap();
    reads_the_same_after_an_upgrade(&r, &source, &before);
    // What the new writes touched is stored compact; the rest stays R(x).
    let stored = stored_records(&r);
    let compact = |cid: Cid| {
        let k = [&[b'p'][..], &cid.to_bytes()].concat();
        stored.iter().find(|(sk, _)| *sk == k).unwrap().1[0] == 0x02
    };
    assert!(compact(content(0)) && compact(content(1000)));
    assert!(stored.iter().any(|(_, v)| v[0] == 0x82), "untouched: R(x)");
}

#[test]
fn a_store_of_a_newer_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let r = open(dir.path()).unwrap();
        r.write(vec![pin(1, "a")]).unwrap();
        let tree = r.database().open_tree(crdt_dag::TREE_NAME).unwrap();
        tree.insert(VERSION_KEY, &(LAYOUT + 1).to_be_bytes())
            .unwrap();
        tree.flush().unwrap();
    }
    match open(dir.path()) {
        Err(crdt_dag::DagError::StoreVersion { found, expected }) => {
            assert_eq!((found, expected), (LAYOUT + 1, LAYOUT));
        }
        other => panic!("{other:?}"),
    }
}
