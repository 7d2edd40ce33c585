//! A batch's undo data, carried in its frame of the block file
//! (spec/crdt.md §8): what the keys the batch writes held before it. sled
//! takes a batch key by key, so a crash can leave part of one; at open the
//! undo data puts those keys back before the frame is applied again.
//!
//! Most keys are named by what the frame holds anyway, in a few bytes: an
//! op's pin record, a delta's index, head, pending copy and chain entry, a
//! parent's head; others are written out. Pin records that did not exist
//! before are not listed at all: the open removes every op's record that
//! the data does not give a value (a stored record always has a live
//! entry, so an op that wrote none found none), and a pending copy the
//! batch removed is the delta's own block, which the frame holds.

use std::collections::{HashMap, HashSet};

use cid::Cid;
use cluster_codec::varint;
use sled::IVec;

use crate::delta::Delta;
use crate::error::{DagError, Result};
use crate::store::{chain_key, cid_key, prefix};

/// A key named by the frame: the delta at `block` (its place in the
/// frame), and what of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Named {
    /// The pin record of op `op`.
    Op { block: u32, op: u32 },
    /// The delta's own key under `prefix` (`d`, `h` or `w`).
    Delta { block: u32, prefix: u8 },
    /// Its writer's chain entry at its seq.
    Chain { block: u32 },
    /// The head of its parent `index`.
    Parent { block: u32, index: u32 },
}

const RAW: u8 = 0;
const OP: u8 = 1;
const DELTA: u8 = 2;
const CHAIN: u8 = 3;
const PARENT: u8 = 4;
const ABSENT: u8 = 0;
const PRESENT: u8 = 1;
/// The value was the delta's own block (its pending copy): not repeated.
const OWN_BLOCK: u8 = 2;

/// The undo data of a batch writing `keys`, named by `named` where it can,
/// with each key's value before the batch from `before`.
pub(crate) fn encode<'k, S: std::hash::BuildHasher>(
    keys: impl Iterator<Item = &'k Vec<u8>>,
    named: &HashMap<Vec<u8>, Named, S>,
    mut before: impl FnMut(&[u8]) -> Result<Option<IVec>>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = |v: u32, out: &mut Vec<u8>| varint::encode(u64::from(v), out);
    for key in keys {
        let value = before(key)?;
        match named.get(key) {
            // Absent before: implied.
            Some(Named::Op { .. }) if value.is_none() => continue,
            Some(Named::Op { block, op }) => {
                out.push(OP);
                n(*block, &mut out);
                n(*op, &mut out);
            }
            Some(Named::Delta { block, prefix }) => {
                out.push(DELTA);
                n(*block, &mut out);
                out.push(*prefix);
            }
            Some(Named::Chain { block }) => {
                out.push(CHAIN);
                n(*block, &mut out);
            }
            Some(Named::Parent { block, index }) => {
                out.push(PARENT);
                n(*block, &mut out);
                n(*index, &mut out);
            }
            None => {
                out.push(RAW);
                varint::encode(key.len() as u64, &mut out);
                out.extend_from_slice(key);
            }
        }
        match value {
            None => out.push(ABSENT),
            Some(_) if matches!(named.get(key), Some(Named::Delta { prefix: p, .. }) if *p == prefix::PENDING) =>
            {
                out.push(OWN_BLOCK);
            }
            Some(v) => {
                out.push(PRESENT);
                varint::encode(v.len() as u64, &mut out);
                out.extend_from_slice(&v);
            }
        }
    }
    Ok(out)
}

/// Puts back in `tree`, in one batch, what the undo data `undo` of the
/// frame holding `deltas` (CID, block, delta; in its order) says each key
/// held, and removes the pin record of every op it gives no value. Returns
/// how many keys it set or removed.
pub(crate) fn apply<'u>(
    tree: &sled::Tree,
    mut undo: &'u [u8],
    deltas: &[(Cid, &[u8], Delta)],
) -> Result<usize> {
    let corrupt =
        |why: &str| DagError::Corrupt(format!("undo data in the delta block file: {why}"));
    let number = |r: &mut &[u8]| -> Result<u32> {
        match varint::read(r) {
            Ok(Some((n, _))) => u32::try_from(n).map_err(|_| corrupt("a number too large")),
            _ => Err(corrupt("a number cut short")),
        }
    };
    // A length, then that many bytes.
    let bytes = |r: &mut &'u [u8]| -> Result<&'u [u8]> {
        let len = number(r)? as usize;
        let (taken, rest) = r
            .split_at_checked(len)
            .ok_or_else(|| corrupt("cut short"))?;
        *r = rest;
        Ok(taken)
    };
    let delta = |block: u32| {
        deltas
            .get(block as usize)
            .ok_or_else(|| corrupt("no such delta"))
    };
    let mut batch = sled::Batch::default();
    let mut given = HashSet::new();
    while let Some((&tag, rest)) = undo.split_first() {
        undo = rest;
        let mut own_block: &[u8] = &[];
        let key = match tag {
            RAW => bytes(&mut undo)?.to_vec(),
            OP => {
                let (_, _, d) = delta(number(&mut undo)?)?;
                let op = d
                    .ops
                    .get(number(&mut undo)? as usize)
                    .ok_or_else(|| corrupt("no such op"))?;
                cid_key(prefix::PIN, op.cid())
            }
            DELTA => {
                let (cid, block, _) = delta(number(&mut undo)?)?;
                let (&p, rest) = undo.split_first().ok_or_else(|| corrupt("cut short"))?;
                undo = rest;
                if ![prefix::DELTA, prefix::HEAD, prefix::PENDING].contains(&p) {
                    return Err(corrupt("an unknown key of a delta"));
                }
                if p == prefix::PENDING {
                    own_block = block;
                }
                cid_key(p, cid)
            }
            CHAIN => {
                let (_, _, d) = delta(number(&mut undo)?)?;
                chain_key(d.writer.public_key_bytes(), d.seq)
            }
            PARENT => {
                let (_, _, d) = delta(number(&mut undo)?)?;
                let parent = d
                    .parents
                    .get(number(&mut undo)? as usize)
                    .ok_or_else(|| corrupt("no such parent"))?;
                cid_key(prefix::HEAD, parent)
            }
            _ => return Err(corrupt("an unknown tag")),
        };
        let (&state, rest) = undo.split_first().ok_or_else(|| corrupt("cut short"))?;
        undo = rest;
        match state {
            ABSENT => batch.remove(key.clone()),
            PRESENT => batch.insert(key.clone(), bytes(&mut undo)?),
            OWN_BLOCK if !own_block.is_empty() => batch.insert(key.clone(), own_block),
            _ => return Err(corrupt("an unknown state")),
        }
        given.insert(key);
    }
    for (_, _, d) in deltas {
        for op in &d.ops {
            let key = cid_key(prefix::PIN, op.cid());
            if !given.contains(&key) {
                batch.remove(key.clone());
                given.insert(key);
            }
        }
    }
    let keys = given.len();
    tree.apply_batch(batch)?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use cluster_types::{Pin, PinOptions};
    use ed25519_dalek::SigningKey;
    use multihash_codetable::{Code, MultihashDigest};

    use super::*;
    use crate::delta::Op;
    use crate::writer::WriterId;

    fn content(n: u8) -> Cid {
        Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]))
    }

    /// Keys named by the frame come back from a few bytes each: a pin
    /// record that held a value gets it back, one that held none is
    /// removed without being listed, a pending copy is the delta's own
    /// block, and keys the frame can't name are written out.
    #[test]
    fn undo_data_puts_back_what_each_key_held() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let mut delta = Delta {
            ts: 1,
            ops: vec![
                Op::Pin {
                    pin: Pin::new(content(1), PinOptions::default()),
                    tombs: vec![],
                },
                Op::Pin {
                    pin: Pin::new(content(2), PinOptions::default()),
                    tombs: vec![],
                },
            ],
            seq: 1,
            prev: None,
            writer: WriterId::from_public_key(&key.verifying_key()),
            cluster: "undo".into(),
            parents: vec![],
            priority: 1,
            sig: [0; 64],
        };
        let (cid, block) = delta.sign_to_block(&key);
        let pin_key = |n| cid_key(prefix::PIN, &content(n));
        let pending = cid_key(prefix::PENDING, &cid);
        let named: HashMap<Vec<u8>, Named> = [
            (pin_key(1), Named::Op { block: 0, op: 0 }),
            (pin_key(2), Named::Op { block: 0, op: 1 }),
            (
                pending.clone(),
                Named::Delta {
                    block: 0,
                    prefix: prefix::PENDING,
                },
            ),
            (
                cid_key(prefix::DELTA, &cid),
                Named::Delta {
                    block: 0,
                    prefix: prefix::DELTA,
                },
            ),
        ]
        .into_iter()
        .collect();
        let before: HashMap<Vec<u8>, Option<IVec>> = [
            (pin_key(1), Some(IVec::from(&b"old record"[..]))),
            (pin_key(2), None),
            (pending.clone(), Some(IVec::from(&block[..]))),
            (cid_key(prefix::DELTA, &cid), None),
            (
                b"mcount".to_vec(),
                Some(IVec::from(&7u64.to_be_bytes()[..])),
            ),
        ]
        .into_iter()
        .collect();
        let keys: Vec<Vec<u8>> = before.keys().cloned().collect();
        let undo = encode(keys.iter(), &named, |k| Ok(before[k].clone())).unwrap();
        // The record that held nothing and the pending copy cost nothing
        // beyond their names: well under the block's size.
        assert!(undo.len() < 40 + "old record".len(), "{} bytes", undo.len());

        // What a torn batch left: every key as the batch set it.
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        for k in &keys {
            tree.insert(k, &b"after"[..]).unwrap();
        }
        tree.remove(&pending).unwrap();
        let decoded = Delta::decode_verified(&block).unwrap();
        apply(&tree, &undo, &[(cid, &block[..], decoded)]).unwrap();
        for k in &keys {
            assert_eq!(tree.get(k).unwrap(), before[k], "{k:?}");
        }
    }
}
