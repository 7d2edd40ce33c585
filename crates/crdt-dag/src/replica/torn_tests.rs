//! A batch sled refuses while it is written key by key: before its first
//! key (the frame is taken back) and part way (the store is torn in
//! memory until reopened, and the open undoes and replays the frame), and
//! what readers see of a batch written in part.

use std::io::ErrorKind;
use std::path::Path;

use cluster_types::{Pin, PinOptions};
use ed25519_dalek::SigningKey;
use multihash_codetable::{Code, MultihashDigest};

use super::{Replica, ReplicaConfig};
use crate::store::fail_point;
use crate::{Cid, DagError, Write};

fn content(n: u32) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

fn pin(n: u32, name: &str) -> Write {
    Write::Pin(Pin::new(content(n), PinOptions::named(name)))
}

fn open(dir: &Path) -> Replica {
    Replica::open(
        dir,
        SigningKey::from_bytes(&[7; 32]),
        ReplicaConfig::new("c"),
    )
    .unwrap()
}

/// The pinset as (CID, name), sorted by CID.
fn pinset(r: &Replica) -> Vec<(Cid, String)> {
    let mut pins: Vec<_> = r
        .pins()
        .map(|p| {
            let p = p.unwrap();
            (p.cid, p.options.name)
        })
        .collect();
    pins.sort();
    pins
}

fn names(pins: &[(u32, &str)]) -> Vec<(Cid, String)> {
    let mut v: Vec<_> = pins
        .iter()
        .map(|(n, name)| (content(*n), (*name).to_owned()))
        .collect();
    v.sort();
    v
}

fn kind(e: &DagError) -> ErrorKind {
    match e {
        DagError::Io(io) => io.kind(),
        DagError::Store(sled::Error::Io(io)) => io.kind(),
        other => panic!("not an I/O error: {other:?}"),
    }
}

#[test]
fn a_batch_refused_part_way_tears_the_store_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    {
        let r = open(dir.path());
        r.write((0..4).map(|n| pin(n, "before")).collect()).unwrap();
        // Key 0 is the block's place, 1 its index: the batch is in sled
        // in part when key 3 fails. A full disk, so its kind must stay.
        fail_point::arm(3, ErrorKind::StorageFull);
        let batch = vec![
            pin(10, "torn"),
            pin(11, "torn"),
            pin(0, "renamed"),
            Write::Unpin(content(1)),
        ];
        let e = r.write(batch).unwrap_err();
        assert_eq!(kind(&e), ErrorKind::StorageFull, "{e}");
        // Torn: every later commit is refused, still as a full disk.
        let refused = r.write(vec![pin(20, "after")]).unwrap_err();
        assert_eq!(kind(&refused), ErrorKind::StorageFull, "{refused}");
        assert!(
            refused
                .to_string()
                .contains("failed in the middle of a batch"),
            "{refused}"
        );
    }
    let r = open(dir.path());
    // The torn batch's frame was durable: the open undoes what sled kept
    // of it and applies it whole (a write reported failed takes effect).
    assert_eq!(r.replayed().applied, 1);
    let expected = names(&[
        (0, "renamed"),
        (2, "before"),
        (3, "before"),
        (10, "torn"),
        (11, "torn"),
    ]);
    assert_eq!(pinset(&r), expected);
    assert_eq!(r.len().unwrap(), 5);
    r.write(vec![pin(20, "after")]).unwrap();
    assert_eq!(r.len().unwrap(), 6);
}

#[test]
fn a_batch_refused_before_its_first_key_is_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let r = open(dir.path());
        r.write(vec![pin(0, "before")]).unwrap();
        fail_point::arm(0, ErrorKind::Other);
        r.write(vec![pin(1, "refused")]).unwrap_err();
        // Nothing of it in sled: not torn, the next write goes on and its
        // frame takes the place of the refused one.
        r.write(vec![pin(2, "after")]).unwrap();
        assert_eq!(pinset(&r), names(&[(0, "before"), (2, "after")]));
    }
    let r = open(dir.path());
    assert_eq!(pinset(&r), names(&[(0, "before"), (2, "after")]));
    assert_eq!(r.len().unwrap(), 2);
}

/// Readers outside the write lock see a batch key by key: whatever part
/// of it they see, a pin count that includes the batch comes with its
/// pins readable and the heads on its delta. Stopped before each of its
/// keys in turn, a 2-pin write on top of one pin shows either the count
/// before it or all of it.
#[test]
fn a_count_that_includes_a_batch_comes_with_its_pins_and_head() {
    let mut stopped_at = 0;
    for key in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let r = open(dir.path());
        r.write(vec![pin(0, "before")]).unwrap();
        fail_point::arm(key, ErrorKind::Other);
        if r.write(vec![pin(1, "new"), pin(2, "new")]).is_ok() {
            // Past its last key: the batch went in whole.
            break;
        }
        stopped_at = key;
        match r.len().unwrap() {
            1 => {}
            3 => {
                assert!(r.get(&content(1)).unwrap().is_some(), "key {key}");
                assert!(r.get(&content(2)).unwrap().is_some(), "key {key}");
                assert_eq!(r.height().unwrap(), 2, "key {key}");
            }
            n => panic!("a count of {n} stopped before key {key}"),
        }
    }
    assert!(stopped_at >= 8, "a batch of only {stopped_at} keys?");
}
