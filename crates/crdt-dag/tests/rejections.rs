//! Every way a delta can be refused, one test each: the rejection is typed,
//! says what was wrong, changes nothing and is never retried as if valid.

mod common;

use cluster_types::{Pin, PinOptions};
use common::*;
use crdt_dag::{
    Cid, DagError, Limits, Rejection, Replica, ReplicaConfig, TrustPolicy, WriterId,
    limits::MAX_BLOCK_SIZE,
};

/// Syncs `d` into a fresh replica and returns the single rejection reason.
fn rejected_by(r: &Replica, d: &crdt_dag::Delta) -> Rejection {
    let (cid, _) = d.to_block();
    let report = sync_from(r, &[cid], &source_of(&[d]));
    assert_eq!(report.applied, 0, "{report:?}");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].0, cid);
    assert!(
        r.rejection(&cid).unwrap().is_some(),
        "rejection is remembered"
    );
    assert!(r.is_empty().unwrap() && r.heads().unwrap().is_empty());
    report.rejected[0].1.clone()
}

#[test]
fn valid_root_delta_applies() {
    let r = replica(9);
    let d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "ok")]);
    let (cid, _) = d.to_block();
    let report = sync_from(&r, &[cid], &source_of(&[&d]));
    assert!(report.is_complete() && report.applied == 1, "{report:?}");
    assert_eq!(r.get(&content(1)).unwrap().unwrap().options.name, "ok");
}

#[test]
fn bad_signature_is_rejected() {
    let mut d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    d.sig[10] ^= 0x01;
    assert!(
        matches!(rejected_by(&replica(9), &d), Rejection::BadSignature(w) if w == d.writer.to_string())
    );
}

#[test]
fn signature_over_other_content_is_rejected() {
    let mut d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "signed")]);
    d.ops = vec![pin_op(1, "swapped after signing")];
    assert!(matches!(
        rejected_by(&replica(9), &d),
        Rejection::BadSignature(_)
    ));
}

#[test]
fn malleated_signature_is_rejected() {
    // s' = s + L is the classic ed25519 malleation: same R, "equivalent" s.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    let mut carry = 0u16;
    for (s, l) in d.sig[32..].iter_mut().zip(L) {
        let sum = *s as u16 + l as u16 + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert!(matches!(
        rejected_by(&replica(9), &d),
        Rejection::BadSignature(_)
    ));
}

#[test]
fn untrusted_writer_is_rejected() {
    let trusted = WriterId::from_public_key(&key(1).verifying_key());
    let cfg = ReplicaConfig {
        trust: TrustPolicy::Only([trusted].into()),
        ..ReplicaConfig::new(CLUSTER)
    };
    let r = Replica::temporary(key(9), cfg).unwrap();
    let d = forge(2, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    assert_eq!(
        rejected_by(&r, &d),
        Rejection::UntrustedWriter(d.writer.to_string())
    );
    // And the trusted writer's delta applies.
    let ok = forge(1, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    assert_eq!(
        sync_from(&r, &[ok.to_block().0], &source_of(&[&ok])).applied,
        1
    );
}

#[test]
fn untrusted_local_identity_cannot_write() {
    let cfg = ReplicaConfig {
        trust: TrustPolicy::Only(Default::default()),
        ..ReplicaConfig::new(CLUSTER)
    };
    let follower = Replica::temporary(key(3), cfg).unwrap();
    let err = follower.write(vec![pin(1, "no")]).unwrap_err();
    assert!(
        matches!(err, DagError::NotTrusted(ref w) if *w == follower.writer().to_string()),
        "{err}"
    );
    assert!(follower.heads().unwrap().is_empty());
}

#[test]
fn lying_priority_is_rejected_with_its_descendants() {
    let r = replica(9);
    let root = forge(1, 1, None, vec![], 1, vec![pin_op(1, "root")]);
    let root_cid = root.to_block().0;
    let liar = forge(
        1,
        2,
        Some(root_cid),
        vec![root_cid],
        5,
        vec![pin_op(2, "liar")],
    );
    let liar_cid = liar.to_block().0;
    let child = forge(2, 1, None, vec![liar_cid], 6, vec![pin_op(3, "child")]);
    let child_cid = child.to_block().0;
    let report = sync_from(&r, &[child_cid], &source_of(&[&root, &liar, &child]));
    assert_eq!(
        report.applied, 1,
        "only the honest root applies: {report:?}"
    );
    assert!(report.rejected.contains(&(
        liar_cid,
        Rejection::PriorityMismatch {
            claimed: 5,
            expected: 2
        }
    )));
    assert!(
        report
            .rejected
            .contains(&(child_cid, Rejection::RejectedAncestor(liar_cid)))
    );
    assert_eq!(r.heads().unwrap(), vec![root_cid]);
    assert_eq!(r.len().unwrap(), 1);
    assert_eq!(r.pending_count(), 0);
}

#[test]
fn root_claiming_higher_priority_is_malformed() {
    let d = forge(1, 1, None, vec![], 7, vec![pin_op(1, "x")]);
    assert!(
        matches!(rejected_by(&replica(9), &d), Rejection::Malformed(m) if m.contains("priority"))
    );
}

#[test]
fn wrong_cluster_is_rejected() {
    let mut d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    d.cluster = "another-cluster".into();
    d.sign(&key(1));
    assert_eq!(
        rejected_by(&replica(9), &d),
        Rejection::WrongCluster {
            expected: CLUSTER.into(),
            got: "another-cluster".into()
        }
    );
}

#[test]
fn oversized_block_is_rejected() {
    let huge = "x".repeat(MAX_BLOCK_SIZE + 10);
    let d = forge(1, 1, None, vec![], 1, vec![pin_op(1, &huge)]);
    let (cid, bytes) = d.to_block();
    let r = replica(9);
    let report = sync_from(&r, &[cid], &source_of(&[&d]));
    assert_eq!(
        report.rejected,
        vec![(
            cid,
            Rejection::BlockTooLarge {
                size: bytes.len(),
                max: MAX_BLOCK_SIZE
            }
        )]
    );
    assert!(r.is_empty().unwrap());
    // Writing one is refused before anything is signed or stored.
    let err = r
        .write(vec![crdt_dag::Write::Pin(Pin::new(
            content(1),
            PinOptions::named(huge),
        ))])
        .unwrap_err();
    assert!(
        matches!(err, DagError::InvalidWrite(ref m) if m.contains("block limit")),
        "{err}"
    );
    assert!(r.heads().unwrap().is_empty());
}

#[test]
fn prev_that_is_not_the_writers_previous_delta_is_rejected() {
    let r = replica(9);
    let other = forge(2, 1, None, vec![], 1, vec![pin_op(1, "other")]);
    let other_cid = other.to_block().0;
    // Writer 1 claims seq 2 with writer 2's delta as its prev.
    let d = forge(
        1,
        2,
        Some(other_cid),
        vec![other_cid],
        2,
        vec![pin_op(2, "x")],
    );
    let cid = d.to_block().0;
    let report = sync_from(&r, &[cid], &source_of(&[&other, &d]));
    assert_eq!(
        report.rejected,
        vec![(cid, Rejection::PrevMismatch { expected_seq: 1 })]
    );
}

#[test]
fn unknown_fields_and_non_canonical_bytes_are_rejected() {
    let d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    let bytes = d.encode();
    // `v: 1` is the first entry: 0xa? map header, 0x61 'v', 0x01. Re-encode
    // the 1 in the non-minimal two-byte form.
    assert_eq!(&bytes[1..4], &[0x61, b'v', 0x01]);
    let mut long = bytes[..3].to_vec();
    long.extend_from_slice(&[0x18, 0x01]);
    long.extend_from_slice(&bytes[4..]);
    let cid = crdt_dag::block_cid(&long);
    let s = crdt_dag::MemoryBlockSource::new();
    s.insert(cid, long);
    let report = sync_from(&replica(9), &[cid], &s);
    assert!(
        matches!(report.rejected[..], [(c, Rejection::NonCanonical | Rejection::Malformed(_))] if c == cid),
        "{report:?}"
    );

    // A key this version does not know.
    let mut map = match serde_ipld_dagcbor::from_slice::<ipld_core::ipld::Ipld>(&bytes).unwrap() {
        ipld_core::ipld::Ipld::Map(m) => m,
        other => panic!("not a map: {other:?}"),
    };
    map.insert("extra".into(), ipld_core::ipld::Ipld::Integer(1));
    let extra = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::Map(map)).unwrap();
    let cid = crdt_dag::block_cid(&extra);
    let s = crdt_dag::MemoryBlockSource::new();
    s.insert(cid, extra);
    let report = sync_from(&replica(9), &[cid], &s);
    assert!(
        matches!(&report.rejected[..], [(c, Rejection::Malformed(m))] if *c == cid && m.contains("extra")),
        "{report:?}"
    );
}

#[test]
fn block_served_under_the_wrong_cid_is_missing_not_rejected() {
    let r = replica(9);
    let d = forge(1, 1, None, vec![], 1, vec![pin_op(1, "x")]);
    let (cid, bytes) = d.to_block();
    let liar = crdt_dag::MemoryBlockSource::new();
    liar.insert(cid, [bytes.clone(), vec![0]].concat());
    let report = sync_from(&r, &[cid], &liar);
    assert_eq!(report.missing, vec![cid]);
    assert!(report.rejected.is_empty() && r.rejection(&cid).unwrap().is_none());
    // An honest source later serves it and it applies.
    assert_eq!(sync_from(&r, &[cid], &source_of(&[&d])).applied, 1);
}

#[test]
fn parent_missing_forever_is_bounded_and_recovers() {
    let r = replica(9);
    let root = forge(1, 1, None, vec![], 1, vec![pin_op(1, "root")]);
    let root_cid = root.to_block().0;
    let mut chain = vec![];
    let mut prev = root_cid;
    for i in 0..20u64 {
        let d = forge(
            1,
            i + 2,
            Some(prev),
            vec![prev],
            i + 2,
            vec![pin_op(10 + i as u32, "c")],
        );
        prev = d.to_block().0;
        chain.push(d);
    }
    let without_root = source_of(&chain.iter().collect::<Vec<_>>());
    for _attempt in 0..3 {
        let report = sync_from(&r, &[prev], &without_root);
        assert_eq!(report.missing, vec![root_cid]);
        assert_eq!(report.applied, 0);
        assert_eq!(report.pending, 20);
        assert!(!report.is_complete());
        assert!(r.is_empty().unwrap());
    }
    // The parent turns up (another peer, IPFS): everything applies.
    without_root.insert(root_cid, root.encode());
    let report = sync_from(&r, &[prev], &without_root);
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.applied, 21);
    assert_eq!(r.len().unwrap(), 21);
}

#[test]
fn pending_set_is_bounded() {
    let cfg = ReplicaConfig {
        limits: Limits {
            max_pending_blocks: 5,
            ..Limits::default()
        },
        ..ReplicaConfig::new(CLUSTER)
    };
    let r = Replica::temporary(key(9), cfg).unwrap();
    let missing_root: Cid = forge(1, 1, None, vec![], 1, vec![pin_op(1, "gone")])
        .to_block()
        .0;
    let mut chain = vec![];
    let mut prev = missing_root;
    for i in 0..50u64 {
        let d = forge(
            1,
            i + 2,
            Some(prev),
            vec![prev],
            i + 2,
            vec![pin_op(i as u32, "c")],
        );
        prev = d.to_block().0;
        chain.push(d);
    }
    let report = sync_from(&r, &[prev], &source_of(&chain.iter().collect::<Vec<_>>()));
    assert!(report.pending_full, "{report:?}");
    assert_eq!(report.pending, 5);
    assert_eq!(r.pending_count(), 5);
}

#[test]
fn forked_writer_is_recorded_and_both_branches_apply() {
    let r = replica(9);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    r.set_event_hook(Some(std::sync::Arc::new(move |e: &crdt_dag::PinEvent| {
        if let crdt_dag::PinEvent::Fork(f) = e {
            sink.lock().unwrap().push(f.clone());
        }
    })));
    let a = forge(1, 1, None, vec![], 1, vec![pin_op(1, "a")]);
    let b = forge(1, 1, None, vec![], 1, vec![pin_op(2, "b")]);
    let (ca, cb) = (a.to_block().0, b.to_block().0);
    let report = sync_from(&r, &[ca, cb], &source_of(&[&a, &b]));
    assert_eq!(report.applied, 2);
    // The hook heard of it once, naming both deltas.
    let heard = seen.lock().unwrap().clone();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!((heard[0].writer, heard[0].seq), (a.writer, 1));
    let mut both = heard[0].deltas.clone();
    both.sort();
    let forks = r.forks().unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].writer, a.writer);
    assert_eq!(forks[0].seq, 1);
    let mut got = forks[0].deltas.clone();
    got.sort();
    let mut want = vec![ca, cb];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(both, want);
}
