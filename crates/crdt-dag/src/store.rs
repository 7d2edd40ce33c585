//! The replica's on-disk layout (spec/crdt.md §8): one sled tree, one-byte key
//! prefixes, and an overlay that turns many reads-then-writes into one atomic
//! batch.

use std::collections::HashMap;
use std::path::Path;

use cid::Cid;
use cluster_codec::varint;
use serde_bytes::ByteBuf;
use sled::IVec;

use crate::codec::to_cbor;
use crate::error::{DagError, Result};
use crate::numbering::Names;
use crate::pin::{Dot, PinEntry};
use crate::pin_filter::PinFilter;
use crate::undo::{self, Named};
use crate::wire_pin::WirePin;
use crate::writer::WriterId;

/// Key prefixes.
pub(crate) mod prefix {
    pub(crate) const BLOCK: u8 = b'b';
    pub(crate) const DELTA: u8 = b'd';
    pub(crate) const FORK: u8 = b'f';
    pub(crate) const FLOOR: u8 = b'l';
    pub(crate) const HEAD: u8 = b'h';
    pub(crate) const PIN: u8 = b'p';
    pub(crate) const CHAIN: u8 = b's';
    pub(crate) const TOMB: u8 = b't';
    pub(crate) const PENDING: u8 = b'w';
    pub(crate) const WRITER: u8 = b'n';
    pub(crate) const PEER: u8 = b'a';
    pub(crate) const REJECTED: u8 = b'x';
}

/// Builds a key from a prefix and parts.
pub(crate) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// `prefix`, then the CID's bytes, written in place (`Cid::to_bytes` grows
/// its own buffer a few times, and this is on every delta's and pin's path).
pub(crate) fn cid_key(prefix: u8, cid: &Cid) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + cid.encoded_len());
    k.push(prefix);
    cid.write_bytes(&mut k)
        .expect("writing to a Vec can't fail");
    k
}

/// A CID read back from the store (a key's tail or a value): one that does
/// not parse means the store is corrupt.
pub(crate) fn stored_cid(bytes: &[u8]) -> Result<Cid> {
    Cid::try_from(bytes).map_err(|e| DagError::Corrupt(e.to_string()))
}

/// Opens the sled database at `path` (created when missing) with a page
/// cache of `cache_bytes`, after removing the snapshots sled left
/// unfinished ([`remove_unfinished_snapshots`]).
///
/// # Errors
///
/// [`DagError::Store`] when sled can't open it (on a full disk: an I/O
/// error that [`DagError::is_disk_full`] recognises).
pub fn open_database(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    remove_unfinished_snapshots(path)?;
    Ok(sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .open()?)
}

/// Removes the `snap.*.generating` files of the sled database at `path`;
/// returns how many there were.
///
/// Why: sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames
/// it to `snap.<lsn>` once complete. A write that fails (a full disk, at
/// open or later) leaves the file behind, and the next open takes it as
/// the latest snapshot and refuses the whole database as corrupt ("Read
/// corrupted data"), even once space is back. An unfinished snapshot is
/// never used by sled otherwise (the log and the previous snapshot hold
/// everything), so removing it loses nothing.
pub fn remove_unfinished_snapshots(path: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Metadata keys (prefix `m`).
pub(crate) const META_VERSION: &[u8] = b"mversion";
pub(crate) const META_CLUSTER: &[u8] = b"mcluster";
pub(crate) const META_COUNT: &[u8] = b"mcount";
/// The checkpoint below which no block is kept (its CID).
pub(crate) const META_FLOOR: &[u8] = b"mfloor";
/// Set while a checkpoint loads: found at open, the load is undone.
pub(crate) const META_LOADING: &[u8] = b"mloading";

/// What the delta index keeps of an applied delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeltaInfo {
    pub(crate) priority: u64,
    pub(crate) seq: u64,
    pub(crate) writer: WriterId,
}

impl DeltaInfo {
    pub(crate) fn encode(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..8].copy_from_slice(&self.priority.to_be_bytes());
        out[8..16].copy_from_slice(&self.seq.to_be_bytes());
        out[16..].copy_from_slice(self.writer.public_key_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != 48 {
            return Err(DagError::Corrupt("delta index record".into()));
        }
        Ok(Self {
            priority: u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            seq: u64::from_be_bytes(b[8..16].try_into().expect("8 bytes")),
            writer: WriterId::from_public_key_bytes(b[16..].try_into().expect("32 bytes")),
        })
    }
}

pub(crate) fn u64_value(v: Option<IVec>) -> u64 {
    v.and_then(|b| b.as_ref().try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

type WireEntry = (u64, ByteBuf, ByteBuf, u32, WirePin);

/// One live entry as stored: the pin in its wire form, so the record's
/// bytes (and the state hash over them) are the format's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredEntry {
    pub(crate) priority: u64,
    pub(crate) writer: WriterId,
    pub(crate) dot: Dot,
    /// The delta's seq when the writer's chain names this delta at it
    /// (`s` + writer + seq holds `dot.delta`): the stored record then
    /// names the delta by the seq. `None` for the other delta of a forked
    /// seq, and for entries read from a record that named it by CID.
    pub(crate) seq: Option<u64>,
    pub(crate) wire: WirePin,
}

impl StoredEntry {
    /// The public entry, with the model's pin of `cid`.
    pub(crate) fn to_entry(&self, cid: Cid) -> PinEntry {
        PinEntry {
            priority: self.priority,
            writer: self.writer,
            dot: self.dot,
            pin: self.wire.clone().into_pin(cid),
        }
    }
}

/// The live entries of one pinned CID, ascending, so the winner is last.
/// Stored compact ([`Record::to_stored`]); `R(x)` of spec §6
/// ([`Record::canonical`]) is made from it for the state hash and
/// checkpoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Record {
    pub(crate) entries: Vec<StoredEntry>,
}

/// First byte of a stored compact record whose entries name their delta by
/// CID (layouts 2 and 3). Stores of layout 1 held `R(x)` itself, which
/// begins with 0x82 (a CBOR array of 2). Both are still read, and stored as
/// [`SEQ_RECORD`] when next written.
const COMPACT_RECORD: u8 = 0x01;
/// First byte of a stored record whose entries name their delta by the
/// writer's seq where the chain allows it (layout 4).
const SEQ_RECORD: u8 = 0x02;

/// How a stored entry names its delta.
enum DeltaRef {
    Cid(Cid),
    /// The writer's seq: the chain (`s`) has the CID.
    Seq(u64),
}

/// A stored entry before its delta is named by CID.
struct RawEntry {
    priority: u64,
    writer: WriterId,
    delta: DeltaRef,
    index: u32,
    wire: WirePin,
}

/// Finds the CID of a writer's delta at a seq, for entries stored by seq.
pub(crate) trait ChainLookup {
    /// The delta the chain of `writer` holds at `seq`.
    ///
    /// # Errors
    /// [`DagError::Corrupt`] when the chain has no delta there (a record
    /// names a seq only once its chain entry is stored, in the same batch).
    fn delta_at(&mut self, writer: &WriterId, seq: u64) -> Result<Cid>;
}

/// The chain index key of `writer`'s delta `seq`: prefix, writer key,
/// big-endian seq.
pub(crate) fn chain_key(writer: &[u8; 32], seq: u64) -> Vec<u8> {
    key(prefix::CHAIN, &[writer, &seq.to_be_bytes()])
}

fn chain_entry(value: Option<IVec>, writer: &WriterId, seq: u64) -> Result<Cid> {
    let v = value.ok_or_else(|| {
        corrupt_record(format!(
            "it names seq {seq} of {writer}, which the chain lacks"
        ))
    })?;
    stored_cid(&v)
}

/// Chain lookups straight from the tree, remembered: a walk over many
/// records meets the same deltas again and again.
pub(crate) struct ChainCache<'a> {
    tree: &'a sled::Tree,
    known: HashMap<([u8; 32], u64), Cid>,
}

/// Past this many remembered deltas the cache starts over (bounded memory
/// when a walk meets deltas of one op each).
const CHAIN_CACHE_MAX: usize = 1 << 16;

impl<'a> ChainCache<'a> {
    pub(crate) fn new(tree: &'a sled::Tree) -> Self {
        Self {
            tree,
            known: HashMap::new(),
        }
    }
}

impl ChainLookup for ChainCache<'_> {
    fn delta_at(&mut self, writer: &WriterId, seq: u64) -> Result<Cid> {
        let pk = *writer.public_key_bytes();
        if let Some(cid) = self.known.get(&(pk, seq)) {
            return Ok(*cid);
        }
        let cid = chain_entry(self.tree.get(chain_key(&pk, seq))?, writer, seq)?;
        if self.known.len() >= CHAIN_CACHE_MAX {
            self.known.clear();
        }
        self.known.insert((pk, seq), cid);
        Ok(cid)
    }
}

impl Record {
    /// `R(x)` of spec §6: the canonical DAG-CBOR that the state hash covers
    /// and a checkpoint's snapshot holds.
    pub(crate) fn canonical(&self, cid: &Cid) -> Vec<u8> {
        let entries: Vec<WireEntry> = self
            .entries
            .iter()
            .map(|e| {
                (
                    e.priority,
                    ByteBuf::from(e.writer.to_peer_id_bytes().to_vec()),
                    ByteBuf::from(e.dot.delta.to_bytes()),
                    e.dot.index,
                    e.wire.clone(),
                )
            })
            .collect();
        to_cbor(&(ByteBuf::from(cid.to_bytes()), entries)).expect("records always encode")
    }

    /// Parses `R(x)` (spec §6).
    pub(crate) fn from_canonical(bytes: &[u8]) -> Result<(Cid, Self)> {
        let (cid, wire): (ByteBuf, Vec<WireEntry>) =
            serde_ipld_dagcbor::from_slice(bytes).map_err(corrupt_record)?;
        let cid = Cid::try_from(cid.as_slice()).map_err(corrupt_record)?;
        let mut entries = Vec::with_capacity(wire.len());
        for (priority, writer, delta, index, wire) in wire {
            entries.push(StoredEntry {
                priority,
                writer: WriterId::from_peer_id_bytes(&writer).map_err(corrupt_record)?,
                dot: Dot {
                    delta: Cid::try_from(delta.as_slice()).map_err(corrupt_record)?,
                    index,
                },
                seq: None,
                wire,
            });
        }
        Ok((cid, Self { entries }))
    }

    /// The stored form (spec/crdt.md §8): [`SEQ_RECORD`], then per entry
    /// varints of the priority and the writer's number ([`Names`]),
    /// the delta (a varint of its seq in the writer's chain when the chain
    /// names it there, else 0 and its binary CID), a varint of the op
    /// index, and the pin's options: 0 and their short form
    /// ([`WirePin::write_short`], allocations by number) for a pin that
    /// sets nothing else, else the length of the
    /// options map followed by it (the DAG-CBOR bytes of `R(x)`). The
    /// pinned CID is the key, so it is not repeated.
    pub(crate) fn to_stored(&self, names: &Names) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + self.entries.len() * 48);
        out.push(SEQ_RECORD);
        for e in &self.entries {
            varint::encode(e.priority, &mut out);
            varint::encode(u64::from(names.writers.writer_number(&e.writer)?), &mut out);
            match e.seq {
                Some(seq) if seq > 0 => varint::encode(seq, &mut out),
                _ => {
                    out.push(0);
                    e.dot
                        .delta
                        .write_bytes(&mut out)
                        .expect("a Vec takes every byte");
                }
            }
            varint::encode(u64::from(e.dot.index), &mut out);
            // Length 0 (no DAG-CBOR map is empty): the short form follows.
            out.push(0);
            if !e.wire.write_short(&mut out, &names.peers)? {
                out.pop();
                let opts = to_cbor(&e.wire).expect("pin options always encode");
                varint::encode(opts.len() as u64, &mut out);
                out.extend_from_slice(&opts);
            }
        }
        Ok(out)
    }

    /// Reads a stored record (any layout's form), naming each entry's
    /// delta through `chain`.
    pub(crate) fn from_stored(
        bytes: &[u8],
        names: &Names,
        chain: &mut impl ChainLookup,
    ) -> Result<Self> {
        let Some(raw) = raw_entries(bytes, names)? else {
            return Ok(Self::from_canonical(bytes)?.1);
        };
        let mut entries = Vec::with_capacity(raw.len());
        for r in raw {
            let (delta, seq) = match r.delta {
                DeltaRef::Cid(cid) => (cid, None),
                DeltaRef::Seq(seq) => (chain.delta_at(&r.writer, seq)?, Some(seq)),
            };
            entries.push(StoredEntry {
                priority: r.priority,
                writer: r.writer,
                dot: Dot {
                    delta,
                    index: r.index,
                },
                seq,
                wire: r.wire,
            });
        }
        Ok(Self { entries })
    }

    /// The winning entry's pin of a stored record, its delta not looked up
    /// (a listing needs only the pin).
    pub(crate) fn winner_from_stored(bytes: &[u8], names: &Names) -> Result<WirePin> {
        let winner = match raw_entries(bytes, names)? {
            Some(mut raw) => raw.pop().map(|r| r.wire),
            None => Self::from_canonical(bytes)?.1.entries.pop().map(|e| e.wire),
        };
        winner.ok_or_else(|| DagError::Corrupt("empty pin record".into()))
    }

    /// Inserts keeping the order of spec §4: (priority, writer, delta, index).
    pub(crate) fn insert(&mut self, entry: StoredEntry) {
        let k = entry_order(&entry);
        let pos = self.entries.partition_point(|e| entry_order(e) < k);
        self.entries.insert(pos, entry);
    }

    pub(crate) fn remove(&mut self, dot: &Dot) {
        self.entries.retain(|e| e.dot != *dot);
    }

    pub(crate) fn winner(&self) -> Option<&StoredEntry> {
        self.entries.last()
    }
}

/// The entries of a compact record (either first byte); `None` for a
/// record stored as `R(x)` (layout 1).
fn raw_entries(bytes: &[u8], names: &Names) -> Result<Option<Vec<RawEntry>>> {
    let (by_seq, mut rest) = match bytes.split_first() {
        Some((&COMPACT_RECORD, rest)) => (false, rest),
        Some((&SEQ_RECORD, rest)) => (true, rest),
        _ => return Ok(None),
    };
    let mut entries = Vec::with_capacity(1);
    while !rest.is_empty() {
        let priority = read_varint(&mut rest)?;
        let writer = names.writers.get(read_varint(&mut rest)?)?;
        let seq = if by_seq { read_varint(&mut rest)? } else { 0 };
        let delta = if seq > 0 {
            DeltaRef::Seq(seq)
        } else {
            DeltaRef::Cid(Cid::read_bytes(&mut rest).map_err(corrupt_record)?)
        };
        let index = u32::try_from(read_varint(&mut rest)?)
            .map_err(|_| corrupt_record("op index past u32"))?;
        let len = usize::try_from(read_varint(&mut rest)?).unwrap_or(usize::MAX);
        let wire = if by_seq && len == 0 {
            WirePin::read_short(&mut rest, &names.peers)?
        } else {
            if len > rest.len() {
                return Err(corrupt_record("options cut short"));
            }
            let (opts, tail) = rest.split_at(len);
            rest = tail;
            serde_ipld_dagcbor::from_slice(opts).map_err(corrupt_record)?
        };
        entries.push(RawEntry {
            priority,
            writer,
            delta,
            index,
            wire,
        });
    }
    Ok(Some(entries))
}

/// A damaged pin record.
pub(crate) fn corrupt_record(e: impl std::fmt::Display) -> DagError {
    DagError::Corrupt(format!("pin record: {e}"))
}

/// A varint of a pin record.
pub(crate) fn read_varint(r: &mut &[u8]) -> Result<u64> {
    match varint::read(r) {
        Ok(Some((n, _))) => Ok(n),
        Ok(None) => Err(corrupt_record("cut short")),
        Err(e) => Err(corrupt_record(e)),
    }
}

fn entry_order(e: &StoredEntry) -> (u64, [u8; 32], Vec<u8>, u32) {
    (
        e.priority,
        *e.writer.public_key_bytes(),
        e.dot.delta.to_bytes(),
        e.dot.index,
    )
}

/// A map by store key, hashed with foldhash (seeded per process).
type KeyMap<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

/// Reads through pending writes, then commits them in one atomic batch.
/// Pin keys it stages are added to the replica's [`PinFilter`], and a pin
/// key the filter never held is read as absent without a store lookup.
/// Its maps hash with foldhash, seeded per process, not SipHash: a few
/// lookups a pin on every peer, where SipHash showed as 2% of a receiver.
pub(crate) struct Overlay<'a> {
    tree: &'a sled::Tree,
    pins: &'a PinFilter,
    writes: KeyMap<Option<IVec>>,
    /// Values already read from the tree (not writes): read once.
    known: KeyMap<Option<IVec>>,
    /// Waiting tombs this batch removes (their entries arrived).
    pub(crate) tombs_taken: u64,
    /// Blocks of the deltas it applies, for the block file
    /// (`block_file.rs`): appended there before the batch commits.
    pub(crate) blocks: Vec<(Cid, Vec<u8>)>,
    /// Keys written that the frame's deltas name ([`crate::undo`]): the
    /// batch's undo data names them in a few bytes.
    named: KeyMap<Named>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(tree: &'a sled::Tree, pins: &'a PinFilter) -> Self {
        Self {
            tree,
            pins,
            writes: KeyMap::default(),
            known: KeyMap::default(),
            tombs_taken: 0,
            blocks: Vec::new(),
            named: KeyMap::default(),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<IVec>> {
        match self.writes.get(key).or_else(|| self.known.get(key)) {
            Some(v) => Ok(v.clone()),
            None if self.surely_absent(key) => Ok(None),
            None => Ok(self.tree.get(key)?),
        }
    }

    /// A pin key the tree never held.
    fn surely_absent(&self, key: &[u8]) -> bool {
        key.first() == Some(&prefix::PIN) && !self.pins.may_hold(key)
    }

    /// Reads `key` from the tree and remembers it, so that a later
    /// [`Overlay::get`] of it reads no store (the caller holds the write
    /// lock: the tree can't change meanwhile).
    pub(crate) fn read(&mut self, key: Vec<u8>) -> Result<Option<IVec>> {
        if let Some(v) = self.writes.get(&key).or_else(|| self.known.get(&key)) {
            return Ok(v.clone());
        }
        let v = if self.surely_absent(&key) {
            None
        } else {
            self.tree.get(&key)?
        };
        self.known.insert(key, v.clone());
        Ok(v)
    }

    pub(crate) fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    pub(crate) fn insert(&mut self, key: Vec<u8>, value: impl Into<IVec>) {
        if key.first() == Some(&prefix::PIN) {
            // Before the filter learns it: a key it never held had no
            // value before this batch (the undo data needs that, and this
            // way costs no lookup).
            if self.surely_absent(&key)
                && !self.writes.contains_key(&key)
                && !self.known.contains_key(&key)
            {
                self.known.insert(key.clone(), None);
            }
            self.pins.add(&key);
        }
        self.writes.insert(key, Some(value.into()));
    }

    /// Notes that `key`, written by this batch, is one its frame names.
    pub(crate) fn name_key(&mut self, key: &[u8], named: Named) {
        if !self.named.contains_key(key) {
            self.named.insert(key.to_vec(), named);
        }
    }

    /// The batch's undo data for its frame ([`crate::undo`]): what each key
    /// it writes held before (read now unless known: nothing is committed
    /// yet).
    pub(crate) fn undo(&self) -> Result<Vec<u8>> {
        undo::encode(self.writes.keys(), &self.named, |key| {
            match self.known.get(key) {
                Some(v) => Ok(v.clone()),
                None => Ok(self.tree.get(key)?),
            }
        })
    }

    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.blocks.is_empty()
    }

    pub(crate) fn commit(self) -> Result<()> {
        let writes = self.writes.len();
        let mut batch = sled::Batch::default();
        for (k, v) in self.writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.tree.apply_batch(batch)?;
        collect_garbage(writes);
        Ok(())
    }

    /// Writes the batch key by key, instead of as one `apply_batch`: sled
    /// then writes its log a buffer at a time rather than twice per batch,
    /// each write synced (spec/crdt.md §8). Not atomic on recovery (the
    /// batch's frame carries its undo data, [`Overlay::undo`]) nor for
    /// readers outside the write lock, so the order is chosen for them:
    /// each key before those that name it (block places, the delta index,
    /// chain entries, the rest, pin records, new heads, then the heads
    /// they replace), the pin count after all of those, and `last` (the
    /// block file's end) after everything: a reader may see part of a
    /// batch, never a record naming a seq the chain lacks, a chain entry
    /// or index without its block, a head naming a delta not stored, nor
    /// a count of pins it can't read yet or of deltas the heads don't
    /// reach. On an error, also says whether any key was written.
    pub(crate) fn commit_by_key(self, last: &[u8]) -> std::result::Result<(), (DagError, bool)> {
        let n = self.writes.len();
        let rank = |k: &[u8], v: &Option<IVec>| match (k.first(), v) {
            _ if k == last => 8,
            _ if k == META_COUNT => 7,
            (Some(&prefix::HEAD), None) => 6,
            (Some(&prefix::HEAD), Some(_)) => 5,
            (Some(&prefix::PIN), _) => 4,
            (Some(&prefix::BLOCK), _) => 0,
            (Some(&prefix::DELTA), _) => 1,
            (Some(&prefix::CHAIN), _) => 2,
            _ => 3,
        };
        let mut writes: Vec<_> = self.writes.into_iter().collect();
        writes.sort_by_key(|(k, v)| rank(k, v));
        let mut wrote = false;
        for (k, v) in writes {
            #[cfg(test)]
            if let Some(e) = fail_point::hit() {
                return Err((e.into(), wrote));
            }
            let done = match v {
                Some(v) => self.tree.insert(k, v).map(drop),
                None => self.tree.remove(k).map(drop),
            };
            if let Err(e) = done {
                return Err((e.into(), wrote));
            }
            wrote = true;
        }
        collect_garbage(n);
        Ok(())
    }
}

/// Test only: makes a batch written key by key fail before one of its
/// keys, as a sled that refuses part way (its log's I/O failed) does.
#[cfg(test)]
pub(crate) mod fail_point {
    use std::cell::Cell;

    thread_local! {
        /// Keys still to write, and the error's kind.
        static ARMED: Cell<Option<(usize, std::io::ErrorKind)>> = const { Cell::new(None) };
    }

    /// The next batch this thread writes key by key fails before its key
    /// number `key` (0-based) with an I/O error of `kind`.
    pub(crate) fn arm(key: usize, kind: std::io::ErrorKind) {
        ARMED.with(|c| c.set(Some((key, kind))));
    }

    /// Called before each key: the error, once the armed key is reached
    /// (which disarms).
    pub(super) fn hit() -> Option<sled::Error> {
        ARMED.with(|c| match c.get() {
            Some((0, kind)) => {
                c.set(None);
                Some(sled::Error::Io(std::io::Error::new(kind, "injected")))
            }
            Some((left, kind)) => {
                c.set(Some((left - 1, kind)));
                None
            }
            None => None,
        })
    }
}

/// sled frees a replaced page through crossbeam-epoch, whose garbage is
/// collected a few bags (64 pages each) at a time, every 128 pins of a
/// thread. A batch pins once for all its inserts, so a burst of batches
/// without lookups (a join applying history) left freed pages piling up:
/// +80-100 MiB peak RSS at 200k pins. One collection per 64 writes keeps
/// pace. `sled::pin` is sled's own guard, so it is sled's collector
/// whatever crossbeam it uses.
fn collect_garbage(writes: usize) {
    for _ in 0..=writes / 64 {
        sled::pin().flush();
    }
}

/// Through the overlay: a chain entry written earlier in the batch counts.
impl ChainLookup for Overlay<'_> {
    fn delta_at(&mut self, writer: &WriterId, seq: u64) -> Result<Cid> {
        let value = self.read(chain_key(writer.public_key_bytes(), seq))?;
        chain_entry(value, writer, seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written in place, a CID key is the prefix and the CID's bytes, for
    /// every CID kind stored (CIDv0 pins, CIDv1 pins and deltas).
    #[test]
    fn a_cid_key_is_the_prefix_then_the_cid_bytes() {
        use multihash_codetable::{Code, MultihashDigest};
        let digest = Code::Sha2_256.digest(b"key");
        let cids = [
            Cid::new_v0(digest).unwrap(),
            Cid::new_v1(0x55, digest),
            Cid::new_v1(0x71, Code::Sha2_256.digest(b"delta")),
        ];
        for cid in cids {
            let k = cid_key(prefix::PIN, &cid);
            assert_eq!(k, key(prefix::PIN, &[&cid.to_bytes()]));
            assert_eq!(k.capacity(), k.len(), "sized once");
            assert_eq!(stored_cid(&k[1..]).unwrap(), cid);
        }
    }

    #[test]
    fn a_snapshot_left_unfinished_does_not_lock_the_database_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = open_database(&path, 1 << 20).unwrap();
            db.insert(b"kept", b"value").unwrap();
            db.flush().unwrap();
        }
        // What a snapshot write that hit a full disk leaves behind.
        std::fs::write(path.join("snap.00000000FFFFFFFF.generating"), b"").unwrap();
        let refused = unlocked(|| sled::Config::new().path(&path).open());
        let err = refused.expect_err("sled alone refuses the database");
        assert!(
            matches!(err, sled::Error::Corruption { .. }),
            "refused as corrupt, not for another reason: {err:?}"
        );
        let db = unlocked(|| open_database(&path, 1 << 20)).unwrap();
        assert_eq!(db.get(b"kept").unwrap().unwrap(), b"value");
        assert_eq!(remove_unfinished_snapshots(&path).unwrap(), 0);
    }

    /// Runs `open` again while it fails on the file lock: a dropped
    /// database's background flusher lets go of it a moment later (later
    /// on a loaded machine).
    fn unlocked<T, E: std::fmt::Debug>(
        open: impl Fn() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let started = std::time::Instant::now();
        loop {
            match open() {
                Err(e)
                    if format!("{e:?}").contains("could not acquire lock")
                        && started.elapsed() < std::time::Duration::from_secs(30) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }
}
