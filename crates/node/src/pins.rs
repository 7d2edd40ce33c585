//! Reference-counted pins.
//!
//! A recursive pin of root R adds 1 to the refcount of every distinct block
//! of R's DAG (R included); a direct pin adds 1 to its block only; unpin
//! takes the same back. GC removes exactly the blocks with refcount 0. A CID
//! pinned both ways holds both (2 on its own block). Each pin or unpin
//! writes its pin record and every refcount it changes in one sled batch on
//! `node-pins`, under the store's pin lock (refcounts are read-modify-write)
//! and the GC gate (no block vanishes mid-walk).
//!
//! Records: `p` + CID bytes -> `[1 (record version), flags (1 recursive,
//! 2 direct), blocks u64 BE, bytes u64 BE]` (the recursive DAG's distinct
//! blocks and their bytes, as counted when pinned). Refcounts: `r` +
//! multihash bytes -> u64 BE, absent when 0.
//!
//! A walk goes depth-first with an explicit stack (its size is bounded by
//! the DAG's depth times its width, never recursion) and remembers visited
//! CIDs (about 100 bytes per distinct block: a DAG repeating one block, like
//! a file of zeros, is counted and walked once). The batch a pin writes
//! holds one refcount per distinct block anyway.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use cid::Cid;
use ipfs::IpfsPinType;

use crate::blockstore::{IDENTITY, block_key, u64_of};
use crate::dagpb::PbNode;
use crate::{Block, DAG_PB, NodeError, RAW, Store};

const RECORD_VERSION: u8 = 1;
const RECURSIVE: u8 = 1;
const DIRECT: u8 = 2;

/// What [`Store::pin_recursive`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinOutcome {
    /// It was pinned recursively already (nothing changed).
    pub already_pinned: bool,
    /// Distinct blocks in the DAG.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    flags: u8,
    blocks: u64,
    bytes: u64,
}

impl Record {
    fn decode(v: &[u8]) -> Result<Self, NodeError> {
        if v.len() != 18 || v[0] != RECORD_VERSION {
            return Err(NodeError::Malformed {
                what: "pin record",
                reason: format!("{} bytes, version {:?}", v.len(), v.first()),
            });
        }
        Ok(Record {
            flags: v[1],
            blocks: u64_of(Some(&v[2..10]), "pin record")?,
            bytes: u64_of(Some(&v[10..18]), "pin record")?,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(18);
        v.push(RECORD_VERSION);
        v.push(self.flags);
        v.extend_from_slice(&self.blocks.to_be_bytes());
        v.extend_from_slice(&self.bytes.to_be_bytes());
        v
    }
}

fn pin_key(cid: &Cid) -> Vec<u8> {
    let mut k = vec![b'p'];
    k.extend_from_slice(&cid.to_bytes());
    k
}

pub(crate) fn ref_key(block_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + block_key.len());
    k.push(b'r');
    k.extend_from_slice(block_key);
    k
}

/// The links of a stored block. dag-pb and raw are read straight from the
/// stored bytes (verified when put); other codecs go through [`crate::links`].
fn links_of(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, NodeError> {
    match cid.codec() {
        RAW => Ok(Vec::new()),
        DAG_PB => Ok(PbNode::decode(data)?
            .links
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        _ => crate::links(&Block::verified(*cid, Bytes::copy_from_slice(data))?),
    }
}

impl Store {
    /// What every pin change holds: the GC gate (no collection meanwhile)
    /// and the pin lock (one change of the refcounts at a time).
    pub(crate) fn pin_guards(&self) -> (crate::gc::GcGuard, std::sync::MutexGuard<'_, ()>) {
        let gate = self.gc_guard();
        let lock = self
            .inner
            .pin_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (gate, lock)
    }

    /// Walks the DAG of `root` depth-first in link order, calling `visit`
    /// once per distinct stored block (identity CIDs are walked through,
    /// not visited).
    ///
    /// # Errors
    /// [`NodeError::MissingBlock`] at the first block not stored; what
    /// `visit` returns; link decoding errors.
    pub(crate) fn walk(
        &self,
        root: &Cid,
        mut visit: impl FnMut(&Cid, &[u8]) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        let mut stack = vec![*root];
        let mut seen = HashSet::new();
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let links = if cid.hash().code() == IDENTITY {
                links_of(&cid, cid.hash().digest())?
            } else {
                let data = self.get_raw(&cid)?.ok_or_else(|| NodeError::MissingBlock {
                    cid: cid.to_string(),
                    root: root.to_string(),
                })?;
                visit(&cid, &data)?;
                links_of(&cid, &data)?
            };
            stack.extend(links.into_iter().rev().filter(|c| !seen.contains(c)));
        }
        Ok(())
    }

    /// The distinct block keys of `root`'s DAG, with their count and bytes.
    fn dag_keys(&self, root: &Cid) -> Result<(HashSet<Vec<u8>>, Record), NodeError> {
        let mut keys = HashSet::new();
        let mut rec = Record {
            flags: RECURSIVE,
            ..Record::default()
        };
        self.walk(root, |cid, data| {
            if keys.insert(block_key(cid)) {
                rec.blocks += 1;
                rec.bytes += data.len() as u64;
            }
            Ok(())
        })?;
        Ok((keys, rec))
    }

    fn record(&self, cid: &Cid) -> Result<Option<Record>, NodeError> {
        self.inner
            .pins
            .get(pin_key(cid))?
            .map(|v| Record::decode(&v))
            .transpose()
    }

    pub(crate) fn refcount(&self, key: &[u8]) -> Result<u64, NodeError> {
        u64_of(self.inner.pins.get(ref_key(key))?.as_deref(), "refcount")
    }

    /// Writes changed records and refcount deltas in one batch, then
    /// flushes. Caller holds the pin lock and the GC gate.
    fn commit(
        &self,
        records: HashMap<Cid, Option<Record>>,
        deltas: HashMap<Vec<u8>, i64>,
    ) -> Result<(), NodeError> {
        let mut batch = sled::Batch::default();
        for (cid, rec) in records {
            match rec {
                Some(rec) => batch.insert(pin_key(&cid), rec.encode()),
                None => batch.remove(pin_key(&cid)),
            }
        }
        for (key, delta) in deltas {
            let now = self.refcount(&key)?.saturating_add_signed(delta);
            if now == 0 {
                batch.remove(ref_key(&key));
            } else {
                batch.insert(ref_key(&key), &now.to_be_bytes());
            }
        }
        self.inner.pins.apply_batch(batch)?;
        self.flush()
    }

    /// Pins `root` and its whole DAG. Idempotent. Every block must be
    /// stored already (fetching belongs to Bitswap: the caller fetches
    /// first, under a [`crate::GcGuard`] or [`crate::GcMarks`]). Durable
    /// on return.
    ///
    /// # Errors
    /// [`NodeError::MissingBlock`] naming the first block not stored
    /// (nothing is pinned then); [`NodeError::Db`]; link decoding errors.
    pub fn pin_recursive(&self, root: &Cid) -> Result<PinOutcome, NodeError> {
        Ok(self.pin_recursive_all(std::slice::from_ref(root))?[0])
    }

    /// Pins several roots recursively in one atomic batch: all or none.
    pub(crate) fn pin_recursive_all(&self, roots: &[Cid]) -> Result<Vec<PinOutcome>, NodeError> {
        let (_gate, _lock) = self.pin_guards();
        let mut records: HashMap<Cid, Option<Record>> = HashMap::new();
        let mut deltas: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut out = Vec::with_capacity(roots.len());
        for root in roots {
            let old = match records.get(root) {
                Some(r) => *r,
                None => self.record(root)?,
            };
            if let Some(old) = old.filter(|r| r.flags & RECURSIVE != 0) {
                out.push(PinOutcome {
                    already_pinned: true,
                    blocks: old.blocks,
                    bytes: old.bytes,
                });
                continue;
            }
            let (keys, mut rec) = self.dag_keys(root)?;
            for key in keys {
                *deltas.entry(key).or_default() += 1;
            }
            rec.flags |= old.map_or(0, |r| r.flags);
            records.insert(*root, Some(rec));
            out.push(PinOutcome {
                already_pinned: false,
                blocks: rec.blocks,
                bytes: rec.bytes,
            });
        }
        if !records.is_empty() {
            self.commit(records, deltas)?;
        }
        Ok(out)
    }

    /// Pins one block alone. Idempotent. Durable on return.
    ///
    /// # Errors
    /// [`NodeError::MissingBlock`] when it isn't stored; [`NodeError::Db`].
    pub fn pin_direct(&self, cid: &Cid) -> Result<(), NodeError> {
        let (_gate, _lock) = self.pin_guards();
        let mut rec = self.record(cid)?.unwrap_or_default();
        if rec.flags & DIRECT != 0 {
            return Ok(());
        }
        if !self.has(cid)? {
            return Err(NodeError::MissingBlock {
                cid: cid.to_string(),
                root: cid.to_string(),
            });
        }
        rec.flags |= DIRECT;
        self.commit(
            HashMap::from([(*cid, Some(rec))]),
            HashMap::from([(block_key(cid), 1)]),
        )
    }

    /// Removes both pins of `cid` (recursive and direct). Returns whether
    /// it was pinned. Durable on return; the blocks stay until GC.
    ///
    /// # Errors
    /// [`NodeError::Db`]; [`NodeError::MissingBlock`] only for a corrupt
    /// store (pinned blocks are never collected).
    pub fn unpin(&self, cid: &Cid) -> Result<bool, NodeError> {
        let (_gate, _lock) = self.pin_guards();
        let Some(rec) = self.record(cid)? else {
            return Ok(false);
        };
        let mut deltas: HashMap<Vec<u8>, i64> = HashMap::new();
        if rec.flags & RECURSIVE != 0 {
            for key in self.dag_keys(cid)?.0 {
                *deltas.entry(key).or_default() -= 1;
            }
        }
        if rec.flags & DIRECT != 0 {
            *deltas.entry(block_key(cid)).or_default() -= 1;
        }
        self.commit(HashMap::from([(*cid, None)]), deltas)?;
        Ok(true)
    }

    /// How `cid` is pinned: [`IpfsPinType::Recursive`] before
    /// [`IpfsPinType::Direct`] (as Kubo answers), [`IpfsPinType::Indirect`] when
    /// its block is counted by some pin without `cid` being a root.
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn pin_type(&self, cid: &Cid) -> Result<Option<IpfsPinType>, NodeError> {
        if let Some(rec) = self.record(cid)? {
            if rec.flags & RECURSIVE != 0 {
                return Ok(Some(IpfsPinType::Recursive));
            }
            if rec.flags & DIRECT != 0 {
                return Ok(Some(IpfsPinType::Direct));
            }
        }
        let key = block_key(cid);
        Ok((self.refcount(&key)? > self.kept_count(&key)?).then_some(IpfsPinType::Indirect))
    }

    /// Every way `cid` is pinned, in Kubo's order: recursive and direct as
    /// recorded, then indirect when some pin other than its own counts its
    /// block (refcount above its own pins; blocks are keyed by multihash, so
    /// a pin of another CID of the same bytes counts too). No walk.
    ///
    /// # Errors
    /// [`NodeError::Db`], [`NodeError::Malformed`] for a corrupt record.
    pub fn pin_kinds(&self, cid: &Cid) -> Result<Vec<IpfsPinType>, NodeError> {
        let flags = self.record(cid)?.map_or(0, |r| r.flags);
        let mut kinds = Vec::with_capacity(3);
        let mut own = 0;
        if flags & RECURSIVE != 0 {
            kinds.push(IpfsPinType::Recursive);
            own += 1;
        }
        if flags & DIRECT != 0 {
            kinds.push(IpfsPinType::Direct);
            own += 1;
        }
        // A keep ([`crate::kept`]) counts like a pin of its own, not an
        // indirect one.
        let key = block_key(cid);
        own += self.kept_count(&key)?;
        if self.refcount(&key)? > own {
            kinds.push(IpfsPinType::Indirect);
        }
        Ok(kinds)
    }

    /// The refcount of a block (pins counting it).
    ///
    /// # Errors
    /// [`NodeError::Db`].
    pub fn refcount_of(&self, cid: &Cid) -> Result<u64, NodeError> {
        self.refcount(&block_key(cid))
    }

    /// Every pin, streamed from disk in CID-byte order: a CID pinned both
    /// ways comes twice (recursive first). Indirect pins are not listed.
    pub fn pins(&self) -> impl Iterator<Item = Result<(Cid, IpfsPinType), NodeError>> + 'static {
        self.inner.pins.scan_prefix(b"p").flat_map(|kv| {
            let parsed = kv.map_err(NodeError::from).and_then(|(k, v)| {
                let cid = Cid::try_from(&k[1..]).map_err(|e| NodeError::Malformed {
                    what: "pin key",
                    reason: e.to_string(),
                })?;
                Ok((cid, Record::decode(&v)?))
            });
            let items: Vec<Result<(Cid, IpfsPinType), NodeError>> = match parsed {
                Err(e) => vec![Err(e)],
                Ok((cid, rec)) => [
                    (RECURSIVE, IpfsPinType::Recursive),
                    (DIRECT, IpfsPinType::Direct),
                ]
                .into_iter()
                .filter(|(flag, _)| rec.flags & flag != 0)
                .map(|(_, kind)| Ok((cid, kind)))
                .collect(),
            };
            items
        })
    }
}
