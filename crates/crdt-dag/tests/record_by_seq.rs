//! Pin records name their delta by the writer's seq (store layout 4,
//! spec/crdt.md §8): they read back as the deltas that wrote them, the
//! other delta of a forked seq keeps its CID, and a layout-3 store (every
//! delta named by CID) opens, reads the same and is rewritten as it
//! changes. Allocated peers go by number (layout 5).

mod common;

use cluster_types::{Pin, PinOptions};
use common::*;
use crdt_dag::{Cid, Replica, ReplicaConfig, WirePin, Write};

const VERSION_KEY: &[u8] = b"mversion";

fn open(dir: &std::path::Path) -> Replica {
    reopen(dir, key(9), ReplicaConfig::new(CLUSTER)).unwrap()
}

fn tree(r: &Replica) -> sled::Tree {
    r.database().open_tree(crdt_dag::TREE_NAME).unwrap()
}

fn record_of(r: &Replica, n: u32) -> Vec<u8> {
    let k = [&b"p"[..], &content(n).to_bytes()].concat();
    tree(r).get(k).unwrap().expect("a record").to_vec()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn records_name_their_delta_by_seq_and_read_back_its_ops() {
    let source = history(10);
    let dir = tempfile::tempdir().unwrap();
    let want = snapshot(&source[0]);
    {
        let r = open(dir.path());
        sync(&r, &source[0]);
        assert_eq!(snapshot(&r), want);
        records_name_deltas_by_seq(&r);
        entries_name_their_ops(&r);
        let multi = stored_records(&r)
            .iter()
            .filter(|(k, _)| r.entries(&Cid::try_from(&k[1..]).unwrap()).unwrap().len() > 1)
            .count();
        assert!(multi > 0, "some CIDs hold concurrent entries");
    }
    let r = open(dir.path());
    assert_eq!(snapshot(&r), want, "the same after a reopen");
    for (k, _) in stored_records(&r) {
        let cid = Cid::try_from(&k[1..]).unwrap();
        assert_eq!(r.entries(&cid).unwrap(), source[0].entries(&cid).unwrap());
    }
}

#[test]
fn the_other_delta_of_a_forked_seq_is_named_by_cid() {
    let a = forge(1, 1, None, vec![], 1, vec![pin_op(1, "a")]);
    let b = forge(1, 1, None, vec![], 1, vec![pin_op(2, "b")]);
    let (ca, cb) = (a.to_block().0, b.to_block().0);
    let source = source_of(&[&a, &b]);
    // Each replica's chain names the delta it applied first.
    let first_a = replica(5);
    sync_from(&first_a, &[ca], &source);
    sync_from(&first_a, &[cb], &source);
    let first_b = replica(6);
    sync_from(&first_b, &[cb], &source);
    sync_from(&first_b, &[ca], &source);
    assert_eq!(first_a.forks().unwrap().len(), 1);

    assert!(!holds(&record_of(&first_a, 1), &ca.to_bytes()), "by seq");
    assert!(holds(&record_of(&first_a, 2), &cb.to_bytes()), "by CID");
    assert!(holds(&record_of(&first_b, 1), &ca.to_bytes()), "by CID");
    assert!(!holds(&record_of(&first_b, 2), &cb.to_bytes()), "by seq");
    for r in [&first_a, &first_b] {
        assert_eq!(r.entries(&content(1)).unwrap()[0].dot.delta, ca);
        assert_eq!(r.entries(&content(2)).unwrap()[0].dot.delta, cb);
        entries_name_their_ops(r);
    }
    assert_eq!(first_a.state_hash().unwrap(), first_b.state_hash().unwrap());

    // An unpin names both entries' dots; each replica finds them.
    let w = replica(7);
    sync(&w, &first_a);
    w.write(vec![unpin(1), unpin(2)]).unwrap();
    sync(&first_a, &w);
    sync(&first_b, &w);
    for r in [&first_a, &first_b] {
        assert!(!r.contains(&content(1)).unwrap());
        assert!(!r.contains(&content(2)).unwrap());
    }
    assert_eq!(snapshot(&first_a), snapshot(&first_b));
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The record of `cid` as layout 2 and 3 stored it: byte 0x01, then per
/// entry the priority, the writer's number, the delta's CID, the op index
/// and the options.
fn layout_3_record(r: &Replica, cid: &Cid) -> Vec<u8> {
    let numbers: std::collections::HashMap<Vec<u8>, u64> = tree(r)
        .scan_prefix(b"n")
        .map(|kv| {
            let (k, v) = kv.unwrap();
            let n = u32::from_be_bytes(k[1..].try_into().unwrap());
            (v.to_vec(), u64::from(n))
        })
        .collect();
    let mut out = vec![0x01];
    for e in r.entries(cid).unwrap() {
        varint(e.priority, &mut out);
        varint(numbers[&e.writer.public_key_bytes().to_vec()], &mut out);
        out.extend_from_slice(&e.dot.delta.to_bytes());
        varint(u64::from(e.dot.index), &mut out);
        let opts = serde_ipld_dagcbor::to_vec(&WirePin::from_pin(&e.pin)).unwrap();
        varint(opts.len() as u64, &mut out);
        out.extend_from_slice(&opts);
    }
    out
}

#[test]
fn a_layout_3_store_opens_reads_the_same_and_is_rewritten_by_seq() {
    let source = history(8);
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let r = open(dir.path());
        sync(&r, &source[0]);
        let before = snapshot(&r);
        let t = tree(&r);
        for (k, v) in stored_records(&r) {
            let old = layout_3_record(&r, &Cid::try_from(&k[1..]).unwrap());
            assert!(
                old.len() > v.len() + 30,
                "{} against {}",
                old.len(),
                v.len()
            );
            t.insert(k, old).unwrap();
        }
        t.insert(VERSION_KEY, &3u64.to_be_bytes()).unwrap();
        t.flush().unwrap();
        assert_eq!(snapshot(&r), before, "the same state read by CID");
        before
    };

    let r = open(dir.path());
    reads_the_same_after_an_upgrade(&r, &source, &before);
    // What the new writes touched is stored by seq (an update keeps its
    // older entries' CIDs until they go); the rest stays as it was.
    assert_eq!(record_of(&r, 1000)[0], 0x02);
    assert_eq!(record_of(&r, 0)[0], 0x02);
    assert!(stored_records(&r).iter().any(|(_, v)| v[0] == 0x01));
    entries_name_their_ops(&r);
}

#[test]
fn a_record_naming_a_seq_the_chain_lacks_is_reported_corrupt() {
    let r = replica(1);
    r.write(vec![pin(1, "a")]).unwrap();
    let t = tree(&r);
    let chain: Vec<_> = t.scan_prefix(b"s").map(|kv| kv.unwrap().0).collect();
    assert_eq!(chain.len(), 1);
    t.remove(&chain[0]).unwrap();
    match r.entries(&content(1)) {
        Err(crdt_dag::DagError::Corrupt(m)) => assert!(m.contains("seq 1"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A listing or a lookup of the pin needs no delta: they still read.
    assert_eq!(r.pins().count(), 1);
    assert_eq!(r.get(&content(1)).unwrap().unwrap().options.name, "a");
}

#[test]
fn allocated_peers_are_stored_by_number_and_read_back_as_text() {
    const PEERS: [&str; 3] = [
        "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
        "12D3KooWHfPmkRqMTVXS2ckJd9ZT4Q6DWKmmiVGr1oZsDgFbe3yF",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
    ];
    let allocated = |n: u32, peers: &[&str]| {
        let mut p = Pin::new(content(n), PinOptions::named("placed"));
        p.options.replication_factor_min = 2;
        p.options.replication_factor_max = 2;
        p.allocations = peers.iter().map(|s| s.to_string()).collect();
        Write::Pin(p)
    };
    let dir = tempfile::tempdir().unwrap();
    let w = replica(1);
    w.write(vec![
        allocated(1, &PEERS[..2]),
        allocated(2, &[PEERS[2], PEERS[0]]),
    ])
    .unwrap();
    // Too long to number: that pin keeps its options map.
    let long = "x".repeat(200);
    w.write(vec![allocated(3, &[PEERS[1], &long])]).unwrap();
    let want = snapshot(&w);
    {
        let r = open(dir.path());
        sync(&r, &w);
        assert_eq!(snapshot(&r), want);
        for n in [1, 2] {
            let rec = record_of(&r, n);
            assert!(rec.len() < 40, "{} bytes", rec.len());
            for p in PEERS {
                assert!(!holds(&rec, p.as_bytes()), "{p} in record {n}");
            }
        }
        assert!(holds(&record_of(&r, 3), long.as_bytes()));
        assert!(holds(&record_of(&r, 3), PEERS[1].as_bytes()));
    }
    let r = open(dir.path());
    assert_eq!(snapshot(&r), want, "the same after a reopen");
    assert_eq!(
        r.get(&content(2)).unwrap().unwrap().allocations,
        [PEERS[2], PEERS[0]]
    );
    for n in 1..=3 {
        assert_eq!(
            r.entries(&content(n)).unwrap(),
            w.entries(&content(n)).unwrap()
        );
    }
    assert_eq!(r.state_hash().unwrap(), w.state_hash().unwrap());
}
