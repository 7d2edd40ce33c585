//! Applying one delta whose dependencies are applied: the causal checks,
//! fork evidence, the add-wins OR-map rules, heads and indexes.

use std::sync::atomic::{AtomicU64, Ordering};

use cid::Cid;

use super::{Fork, Replica};
use crate::delta::{Delta, Op};
use crate::error::{DagError, Rejection, Result};
use crate::pin::{Dot, PinEvent};
use crate::store::{
    DeltaInfo, META_COUNT, Overlay, Record, StoredEntry, chain_key, cid_key, key, prefix, u64_value,
};
use crate::undo::Named;
use crate::wire_pin::WirePin;

impl Replica {
    /// Applies a delta whose dependencies are all applied: checks 8-9 of
    /// spec §3, then the OR-map rules of §4, heads, indexes. All effects go
    /// into `ov`; nothing is written if it is rejected.
    pub(super) fn apply_delta(
        &self,
        ov: &mut Overlay<'_>,
        cid: &Cid,
        bytes: &[u8],
        delta: &Delta,
        events: &mut Vec<PinEvent>,
    ) -> Result<std::result::Result<(), Rejection>> {
        if let Err(reason) = self.check_order(ov, cid, delta)? {
            return Ok(Err(reason));
        }
        let cid_bytes = cid.to_bytes();
        // Its place in the batch's frame (its block is pushed last).
        let block = u32::try_from(ov.blocks.len()).unwrap_or(u32::MAX);
        let in_chain = note_fork(ov, cid, &cid_bytes, delta, block, events)?;
        let this = Applying {
            block,
            cid,
            cid_bytes: &cid_bytes,
            delta,
            in_chain,
            waiting_tombs: &self.waiting_tombs,
            names: &self.names,
        };

        let mut count = u64_value(ov.get(META_COUNT)?);
        for (i, op) in delta.ops.iter().enumerate() {
            apply_op(ov, &this, i as u32, op, &mut count, events)?;
        }
        ov.insert(META_COUNT.to_vec(), &count.to_be_bytes()[..]);

        for (index, p) in (0u32..).zip(&delta.parents) {
            let k = cid_key(prefix::HEAD, p);
            ov.name_key(&k, Named::Parent { block, index });
            ov.remove(k);
        }
        let own = |p| (cid_key(p, cid), Named::Delta { block, prefix: p });
        let (k, named) = own(prefix::HEAD);
        ov.name_key(&k, named);
        ov.insert(k, &delta.priority.to_be_bytes()[..]);
        let info = DeltaInfo {
            priority: delta.priority,
            seq: delta.seq,
            writer: delta.writer,
        };
        let (k, named) = own(prefix::DELTA);
        ov.name_key(&k, named);
        ov.insert(k, &info.encode()[..]);
        if !self.checking_only {
            ov.blocks.push((*cid, bytes.to_vec()));
        }
        let (k, named) = own(prefix::PENDING);
        ov.name_key(&k, named);
        ov.remove(k);
        Ok(Ok(()))
    }

    /// Spec §3 checks 8-9, which need the applied parents: the priority is
    /// one above theirs, and `prev` is the writer's previous delta.
    fn check_order(
        &self,
        ov: &Overlay<'_>,
        cid: &Cid,
        delta: &Delta,
    ) -> Result<std::result::Result<(), Rejection>> {
        let mut expected = 1;
        for p in &delta.parents {
            let info = self.delta_info(ov, p)?.ok_or_else(|| {
                DagError::Corrupt(format!("parent {p} of {cid} applied out of order"))
            })?;
            expected = expected.max(info.priority + 1);
        }
        if delta.priority != expected {
            return Ok(Err(Rejection::PriorityMismatch {
                claimed: delta.priority,
                expected,
            }));
        }
        if let Some(prev) = &delta.prev {
            let ok = self
                .delta_info(ov, prev)?
                .is_some_and(|i| i.writer == delta.writer && i.seq + 1 == delta.seq);
            if !ok {
                return Ok(Err(Rejection::PrevMismatch {
                    expected_seq: delta.seq - 1,
                }));
            }
        }
        Ok(Ok(()))
    }

    fn delta_info(&self, ov: &Overlay<'_>, cid: &Cid) -> Result<Option<DeltaInfo>> {
        ov.get(&cid_key(prefix::DELTA, cid))?
            .map(|b| DeltaInfo::decode(&b))
            .transpose()
    }
}

/// The delta being applied, with its CID's bytes computed once.
struct Applying<'a> {
    /// Where its block goes in the batch's frame (it is pushed last).
    block: u32,
    cid: &'a Cid,
    cid_bytes: &'a [u8],
    delta: &'a Delta,
    /// Whether the writer's chain names this delta at its seq (not the
    /// other delta of a fork): its entries are then stored by seq.
    in_chain: bool,
    /// The replica's count of waiting tombs.
    waiting_tombs: &'a AtomicU64,
    names: &'a crate::numbering::Names,
}

/// Records the delta in its writer's chain; a second delta of one `seq` is
/// still applied (its ops are valid), but both are kept as fork evidence.
/// Returns whether the chain names this delta at its seq.
fn note_fork(
    ov: &mut Overlay<'_>,
    cid: &Cid,
    cid_bytes: &[u8],
    delta: &Delta,
    block: u32,
    events: &mut Vec<PinEvent>,
) -> Result<bool> {
    let pk = delta.writer.public_key_bytes();
    let chain_key = chain_key(pk, delta.seq);
    match ov.get(&chain_key)? {
        Some(other) if other.as_ref() != cid_bytes => {
            let seq = delta.seq.to_be_bytes();
            ov.insert(key(prefix::FORK, &[pk, &seq, &other]), &[][..]);
            ov.insert(key(prefix::FORK, &[pk, &seq, cid_bytes]), &[][..]);
            let first = Cid::try_from(other.as_ref())
                .map_err(|e| DagError::Corrupt(format!("chain entry: {e}")))?;
            events.push(PinEvent::Fork(Fork {
                writer: delta.writer,
                seq: delta.seq,
                deltas: vec![first, *cid],
            }));
            Ok(false)
        }
        Some(_) => Ok(true),
        None => {
            ov.name_key(&chain_key, Named::Chain { block });
            ov.insert(chain_key, cid_bytes.to_vec());
            Ok(true)
        }
    }
}

/// The OR-map rules of spec §4 for op `index` of the delta:
/// its tombs remove the entries they name (or wait for them, if not yet
/// applied), a pin adds an entry unless a tomb already waits for it. Keeps
/// `count` and reports the winner's change.
fn apply_op(
    ov: &mut Overlay<'_>,
    this: &Applying<'_>,
    index: u32,
    op: &Op,
    count: &mut u64,
    events: &mut Vec<PinEvent>,
) -> Result<()> {
    let pin_cid = op.cid();
    let pin_key = cid_key(prefix::PIN, pin_cid);
    ov.name_key(
        &pin_key,
        Named::Op {
            block: this.block,
            op: index,
        },
    );
    // Read once and remembered: the batch's undo data needs it.
    let mut rec = match ov.read(pin_key.clone())? {
        Some(b) => Record::from_stored(&b, this.names, ov)?,
        None => Record::default(),
    };
    let before = rec.winner().map(|e| e.dot);
    let pin_bytes = &pin_key[1..];
    for tomb in op.tombs() {
        if ov.contains(&cid_key(prefix::DELTA, &tomb.delta))? {
            rec.remove(tomb);
        } else {
            let t = tomb_key(pin_bytes, &tomb.delta.to_bytes(), tomb.index);
            if !ov.contains(&t)? {
                // Counted now, so later deltas of this batch look for it.
                this.waiting_tombs.fetch_add(1, Ordering::Relaxed);
                ov.insert(t, &[][..]);
            }
        }
    }
    if let Op::Pin { pin, .. } = op {
        // Most batches have no waiting tomb: then no key to build.
        let mut waiting = None;
        if this.waiting_tombs.load(Ordering::Relaxed) > 0 {
            let t = tomb_key(pin_bytes, this.cid_bytes, index);
            if ov.contains(&t)? {
                waiting = Some(t);
            }
        }
        if let Some(t) = waiting {
            ov.remove(t);
            ov.tombs_taken += 1;
        } else {
            rec.insert(StoredEntry {
                priority: this.delta.priority,
                writer: this.delta.writer,
                dot: Dot {
                    delta: *this.cid,
                    index,
                },
                seq: this.in_chain.then_some(this.delta.seq),
                wire: WirePin::from_pin(pin),
            });
        }
    }
    match (before, rec.winner()) {
        (None, None) => {}
        (Some(_), None) => {
            ov.remove(pin_key);
            *count -= 1;
            events.push(PinEvent::Removed(*pin_cid));
        }
        (b, Some(w)) => {
            let pin = w.wire.clone().into_pin(*pin_cid);
            ov.insert(pin_key, rec.to_stored(this.names)?);
            if b.is_none() {
                *count += 1;
                events.push(PinEvent::Added(pin));
            } else if b != Some(w.dot) {
                events.push(PinEvent::Updated(pin));
            }
        }
    }
    Ok(())
}

/// A tomb waiting for entry `index` of delta `delta` (CID bytes) of `pin`.
fn tomb_key(pin: &[u8], delta: &[u8], index: u32) -> Vec<u8> {
    key(prefix::TOMB, &[pin, delta, &index.to_be_bytes()])
}
