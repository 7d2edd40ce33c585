//! A replica's checkpoints (spec/crdt.md §10): signing one of its state,
//! keeping it to serve, loading one into an empty replica, pruning the
//! blocks below one, and the floor that a load or a prune leaves: the
//! deltas below it are indexed (so new deltas, tombs and the bulk sync see
//! them applied) but have no block.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use cid::Cid;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use super::Replica;
use crate::checkpoint::{
    Checkpoint, EntriesChunk, IndexChunk, SNAPSHOT_CHUNK_BYTES, SnapshotRoot, decode_canonical,
    encode_block,
};
use crate::codec::{block_cid, exact_cid, is_delta_cid};
use crate::error::{DagError, Result};
use crate::limits::MAX_BLOCK_SIZE;
use crate::store::{
    ChainCache, DeltaInfo, META_COUNT, META_FLOOR, META_LOADING, Record, chain_key, cid_key, key,
    prefix, stored_cid, u64_value,
};
use crate::writer::WriterId;

/// The sled tree holding checkpoint blocks beside the replica's.
pub(super) const CHECKPOINT_TREE: &str = "crdt-checkpoints";
/// Keys of that tree: the newest checkpoint's CID...
const NEWEST: &[u8] = b"n";
/// ...the last generation handed out (each checkpoint's blocks are kept
/// under their own, so two checkpoints never share a stored block)...
const GENERATION: &[u8] = b"g";
/// ...`c` + checkpoint CID -> generation (8 bytes) + checkpoint block...
const CHECKPOINT: u8 = b'c';
/// ...`k` + generation + position -> CID length (1 byte), CID, block: the
/// snapshot's blocks in the order they are served (root first).
const SNAPSHOT_BLOCK: u8 = b'k';

fn refused(why: impl std::fmt::Display) -> DagError {
    DagError::Checkpoint(why.to_string())
}

fn snapshot_key(generation: u64, position: u32) -> Vec<u8> {
    key(
        SNAPSHOT_BLOCK,
        &[&generation.to_be_bytes(), &position.to_be_bytes()],
    )
}

fn snapshot_value(cid: &Cid, block: &[u8]) -> Vec<u8> {
    let c = cid.to_bytes();
    let mut v = Vec::with_capacity(1 + c.len() + block.len());
    v.push(c.len() as u8);
    v.extend_from_slice(&c);
    v.extend_from_slice(block);
    v
}

fn split_snapshot_value(v: &[u8]) -> Result<(Cid, Vec<u8>)> {
    let n = *v
        .first()
        .ok_or_else(|| DagError::Corrupt("snapshot block".into()))? as usize;
    let cid = stored_cid(
        v.get(1..1 + n)
            .ok_or_else(|| DagError::Corrupt("snapshot block".into()))?,
    )?;
    Ok((cid, v[1 + n..].to_vec()))
}

/// Blocks with their CIDs, read lazily from the store (a snapshot's, an
/// export's).
pub type Blocks = Box<dyn Iterator<Item = Result<(Cid, Vec<u8>)>> + Send>;

/// What [`Replica::prune`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    /// The checkpoint that is the floor now.
    pub floor: Cid,
    /// Delta blocks removed.
    pub blocks_removed: u64,
}

impl Replica {
    /// Signs a checkpoint of the current state and keeps it as this
    /// replica's newest (the one it serves), replacing the previous one
    /// (unless that is the floor). Writes wait while the state is read.
    ///
    /// # Errors
    /// [`DagError::NotTrusted`] when this replica may not write;
    /// [`DagError::Checkpoint`] when the history is empty, a writer forked
    /// (its second branch is not in the chain index a checkpoint carries)
    /// or tombs wait for their entries (they are not part of a snapshot).
    pub fn checkpoint(&self) -> Result<(Cid, Checkpoint)> {
        if !self.config.trust.allows(&self.writer) {
            return Err(DagError::NotTrusted(self.writer.to_string()));
        }
        let _guard = self.lock();
        self.check_not_loading()?;
        if self.tree.scan_prefix([prefix::FORK]).next().is_some() {
            return Err(refused(
                "a writer forked: the history can't be checkpointed",
            ));
        }
        if self.waiting_tombs.load(Ordering::Relaxed) > 0 {
            return Err(refused("tombs wait for their entries; try again later"));
        }
        let heads = self.heads_with_priority()?;
        if heads.is_empty() {
            return Err(refused("the history is empty"));
        }
        let generation = self.next_generation()?;
        let mut position = 1u32; // 0 is the root, written last
        let mut root = SnapshotRoot {
            v: crate::checkpoint::CHECKPOINT_VERSION,
            ..SnapshotRoot::default()
        };
        let store = |position: &mut u32, block: (Cid, Vec<u8>)| -> Result<Cid> {
            let (cid, block) = block;
            if block.len() > MAX_BLOCK_SIZE {
                return Err(refused("a pin record is too large for a snapshot chunk"));
            }
            self.checkpoints.insert(
                snapshot_key(generation, *position),
                snapshot_value(&cid, &block),
            )?;
            *position += 1;
            Ok(cid)
        };
        let result = (|| -> Result<(Cid, Checkpoint)> {
            let mut deltas = 0u64;
            let mut chunk: IndexChunk = Vec::new();
            let mut bytes = 0;
            for kv in self.tree.scan_prefix([prefix::DELTA]) {
                let (k, v) = kv?;
                let info = DeltaInfo::decode(&v)?;
                bytes += k.len() + 90;
                chunk.push((
                    ByteBuf::from(k[1..].to_vec()),
                    info.priority,
                    info.seq,
                    ByteBuf::from(info.writer.to_peer_id_bytes().to_vec()),
                ));
                deltas += 1;
                if bytes >= SNAPSHOT_CHUNK_BYTES {
                    root.index.push(store(&mut position, encode_block(&chunk))?);
                    chunk.clear();
                    bytes = 0;
                }
            }
            if !chunk.is_empty() {
                root.index.push(store(&mut position, encode_block(&chunk))?);
            }
            let mut hash = Sha256::new();
            let mut chunk: EntriesChunk = Vec::new();
            let mut bytes = 0;
            let mut chain = ChainCache::new(&self.tree);
            for kv in self.tree.scan_prefix([prefix::PIN]) {
                let (k, v) = kv?;
                let v = self.canonical_record(&k, &v, &mut chain)?;
                hash.update(&v);
                bytes += v.len() + 4;
                chunk.push(ByteBuf::from(v));
                if bytes >= SNAPSHOT_CHUNK_BYTES {
                    root.entries
                        .push(store(&mut position, encode_block(&chunk))?);
                    chunk.clear();
                    bytes = 0;
                }
            }
            if !chunk.is_empty() {
                root.entries
                    .push(store(&mut position, encode_block(&chunk))?);
            }
            let mut zero = 0;
            let snapshot = store(&mut zero, encode_block(&root))?;
            let writers: Vec<(WriterId, u64)> = self
                .writer_chains()?
                .into_iter()
                .map(|w| (WriterId::from_public_key_bytes(w.key), w.seq))
                .collect();
            if writers.iter().map(|w| w.1).sum::<u64>() != deltas {
                return Err(DagError::Corrupt(
                    "writer chains and the delta index disagree".into(),
                ));
            }
            let mut c = Checkpoint {
                ts: super::write::now_ms(),
                pins: u64_value(self.tree.get(META_COUNT)?),
                heads,
                deltas,
                writer: self.writer,
                cluster: self.config.cluster.clone(),
                writers,
                snapshot,
                state_hash: hash.finalize().into(),
                sig: [0; 64],
            };
            c.sign(&self.key);
            let (cid, block) = c.to_block();
            self.keep_checkpoint(&cid, generation, &block)?;
            Ok((cid, c))
        })();
        if result.is_err() {
            self.drop_generation(generation)?;
        }
        result
    }

    /// Records a checkpoint whose snapshot blocks are stored under
    /// `generation` as the newest, dropping the previous newest's blocks
    /// unless it is the floor; flushed.
    fn keep_checkpoint(&self, cid: &Cid, generation: u64, block: &[u8]) -> Result<()> {
        let mut v = generation.to_be_bytes().to_vec();
        v.extend_from_slice(block);
        self.checkpoints.insert(cid_key(CHECKPOINT, cid), v)?;
        let previous = self.checkpoints.insert(NEWEST, cid.to_bytes())?;
        if let Some(prev) = previous.map(|b| stored_cid(&b)).transpose()?
            && prev != *cid
            && self.floor_cid()? != Some(prev)
        {
            self.forget_checkpoint(&prev)?;
        }
        self.checkpoints.flush()?;
        Ok(())
    }

    fn forget_checkpoint(&self, cid: &Cid) -> Result<()> {
        if let Some(v) = self.checkpoints.remove(cid_key(CHECKPOINT, cid))? {
            self.drop_generation(u64_value(Some(v.subslice(0, 8))))?;
        }
        Ok(())
    }

    fn drop_generation(&self, generation: u64) -> Result<()> {
        for kv in self
            .checkpoints
            .scan_prefix(key(SNAPSHOT_BLOCK, &[&generation.to_be_bytes()]))
        {
            self.checkpoints.remove(kv?.0)?;
        }
        Ok(())
    }

    fn next_generation(&self) -> Result<u64> {
        let g = u64_value(self.checkpoints.get(GENERATION)?) + 1;
        self.checkpoints.insert(GENERATION, &g.to_be_bytes())?;
        Ok(g)
    }

    /// The newest checkpoint this replica made or loaded: its CID and block.
    pub fn newest_checkpoint(&self) -> Result<Option<(Cid, Vec<u8>)>> {
        let Some(cid) = self.checkpoints.get(NEWEST)? else {
            return Ok(None);
        };
        let cid = stored_cid(&cid)?;
        Ok(self.checkpoint_block(&cid)?.map(|b| (cid, b)))
    }

    /// A checkpoint kept here (the newest or the floor), by CID.
    pub fn checkpoint_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        Ok(self
            .checkpoints
            .get(cid_key(CHECKPOINT, cid))?
            .map(|v| v[8..].to_vec()))
    }

    /// The snapshot blocks of a checkpoint kept here, root first, then its
    /// chunks in the root's order (what a loader takes), read lazily.
    pub fn snapshot_blocks(&self, cid: &Cid) -> Result<Option<Blocks>> {
        let Some(v) = self.checkpoints.get(cid_key(CHECKPOINT, cid))? else {
            return Ok(None);
        };
        let generation = u64_value(Some(v.subslice(0, 8)));
        Ok(Some(Box::new(
            self.checkpoints
                .scan_prefix(key(SNAPSHOT_BLOCK, &[&generation.to_be_bytes()]))
                .map(|kv| split_snapshot_value(&kv?.1)),
        )))
    }

    /// The checkpoint below which this replica holds no blocks (it was
    /// loaded from it, or pruned to it), if any.
    pub fn floor(&self) -> Result<Option<(Cid, Checkpoint)>> {
        let Some(cid) = self.floor_cid()? else {
            return Ok(None);
        };
        let block = self
            .checkpoint_block(&cid)?
            .ok_or_else(|| DagError::Corrupt("the floor's checkpoint is missing".into()))?;
        Ok(Some((cid, Checkpoint::decode(&block)?)))
    }

    /// Whether the replica has a floor (deltas indexed without a block).
    pub(crate) fn has_floor(&self) -> Result<bool> {
        Ok(self.tree.contains_key(META_FLOOR)?)
    }

    fn floor_cid(&self) -> Result<Option<Cid>> {
        self.tree
            .get(META_FLOOR)?
            .map(|b| stored_cid(&b))
            .transpose()
    }

    /// The highest seq of `writer` below the floor (0 without one): its
    /// deltas up to there are applied but have no block here.
    pub(crate) fn floor_seq(&self, writer: &[u8; 32]) -> Result<u64> {
        Ok(u64_value(self.tree.get(key(prefix::FLOOR, &[writer]))?))
    }

    /// Removes the blocks of every delta below the newest checkpoint, which
    /// becomes the floor: the history is served, exported and audited from
    /// there on (spec/crdt.md §10.4).
    ///
    /// # Errors
    /// [`DagError::Checkpoint`] when there is no checkpoint to prune to.
    pub fn prune(&self) -> Result<Pruned> {
        let _guard = self.lock();
        self.check_not_loading()?;
        let (cid, block) = self
            .newest_checkpoint()?
            .ok_or_else(|| refused("no checkpoint to prune to: make one first"))?;
        let checkpoint = Checkpoint::decode(&block)?;
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        for (writer, seq) in &checkpoint.writers {
            let pk = writer.public_key_bytes();
            let below = self.floor_seq(pk)?;
            for kv in self
                .tree
                .range(chain_key(pk, below + 1)..=chain_key(pk, *seq))
            {
                let (_, delta) = kv?;
                let k = key(prefix::BLOCK, &[&delta]);
                if self.tree.contains_key(&k)? {
                    batch.remove(k);
                    removed += 1;
                }
            }
            batch.insert(key(prefix::FLOOR, &[pk]), &seq.to_be_bytes());
        }
        let previous = self.floor_cid()?;
        batch.insert(META_FLOOR, cid.to_bytes());
        self.tree.apply_batch(batch)?;
        self.flush()?;
        self.blocks.compact_if_worth(&self.tree)?;
        if let Some(prev) = previous.filter(|p| *p != cid) {
            self.forget_checkpoint(&prev)?;
            self.checkpoints.flush()?;
        }
        Ok(Pruned {
            floor: cid,
            blocks_removed: removed,
        })
    }

    /// Starts loading the checkpoint `cid` (its block `block`) into this
    /// replica, which must have applied nothing: the checkpoint is checked
    /// (hash, form, cluster, signer trusted, signature); feed the snapshot's
    /// blocks to [`CheckpointLoad::add`] root first, then
    /// [`CheckpointLoad::finish`]. Local writes and applies are refused
    /// until then. Dropped unfinished (or failed), it removes what it
    /// loaded; a crash midway is undone when the replica is next opened.
    ///
    /// # Errors
    /// [`DagError::Checkpoint`] for a checkpoint refused or a replica that
    /// is not empty.
    pub fn load_checkpoint(&self, cid: &Cid, block: &[u8]) -> Result<CheckpointLoad<'_>> {
        let checkpoint = Checkpoint::verify(cid, block, &self.config.cluster, &self.config.trust)?;
        let _guard = self.lock();
        if !self.heads()?.is_empty() || !self.writer_chains()?.is_empty() {
            return Err(refused("a checkpoint loads only into an empty replica"));
        }
        if self.loading.swap(true, Ordering::SeqCst) {
            return Err(refused("a checkpoint is being loaded already"));
        }
        let mut load = CheckpointLoad {
            replica: self,
            cid: *cid,
            block: block.to_vec(),
            expected: checkpoint
                .writers
                .iter()
                .map(|(w, seq)| (*w.public_key_bytes(), *seq))
                .collect(),
            checkpoint,
            generation: 0,
            root: None,
            next: 0,
            position: 1,
            hash: Sha256::new(),
            pins: 0,
            deltas: 0,
            seen: HashMap::new(),
            last: Vec::new(),
            done: false,
        };
        self.tree.insert(META_LOADING, &[][..])?;
        load.generation = self.next_generation()?;
        self.tree.flush()?;
        Ok(load)
    }

    /// Refuses mutations while a checkpoint loads.
    pub(super) fn check_not_loading(&self) -> Result<()> {
        if self.loading.load(Ordering::SeqCst) {
            return Err(refused("a checkpoint is being loaded"));
        }
        Ok(())
    }

    /// Removes what an unfinished load stored: every applied-state record
    /// (a replica that loads had none), and the checkpoint blocks of
    /// `generation` (all of them for `None`: after a crash).
    pub(super) fn undo_load(&self, generation: Option<u64>) -> Result<()> {
        for p in [
            prefix::DELTA,
            prefix::CHAIN,
            prefix::PIN,
            prefix::HEAD,
            prefix::FLOOR,
        ] {
            for kv in self.tree.scan_prefix([p]) {
                self.tree.remove(kv?.0)?;
            }
        }
        for k in [META_COUNT, META_FLOOR, META_LOADING] {
            self.tree.remove(k)?;
        }
        match generation {
            Some(g) => self.drop_generation(g)?,
            None => self.checkpoints.clear()?,
        }
        self.tree.flush()?;
        self.checkpoints.flush()?;
        Ok(())
    }
}

/// A checkpoint being loaded: takes the snapshot's blocks in order, checks
/// each against the link that names it and stores its records as it goes.
pub struct CheckpointLoad<'a> {
    replica: &'a Replica,
    cid: Cid,
    block: Vec<u8>,
    checkpoint: Checkpoint,
    /// Each writer's seq the checkpoint claims.
    expected: HashMap<[u8; 32], u64>,
    generation: u64,
    root: Option<SnapshotRoot>,
    /// Chunks taken so far (index chunks, then entries chunks).
    next: usize,
    position: u32,
    hash: Sha256,
    pins: u64,
    deltas: u64,
    /// Index records taken per writer.
    seen: HashMap<[u8; 32], u64>,
    /// The last key taken of the current kind (records come sorted).
    last: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for CheckpointLoad<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointLoad")
            .field("cid", &self.cid)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl CheckpointLoad<'_> {
    /// The checkpoint being loaded.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Whether every block of the snapshot was taken.
    pub fn is_complete(&self) -> bool {
        self.root
            .as_ref()
            .is_some_and(|r| self.next == r.index.len() + r.entries.len())
    }

    /// Takes the next block of the snapshot (root first, then the chunks
    /// in the root's order).
    ///
    /// # Errors
    /// [`DagError::Checkpoint`] for a block that is not the one expected,
    /// does not hash to its CID, or holds records out of order, of deltas
    /// the checkpoint doesn't count, or pin entries whose delta is not in
    /// the index.
    pub fn add(&mut self, cid: &Cid, bytes: &[u8]) -> Result<()> {
        if block_cid(bytes) != *cid {
            return Err(refused(format!("snapshot block does not hash to {cid}")));
        }
        let Some(root) = &self.root else {
            if *cid != self.checkpoint.snapshot {
                return Err(refused(format!("{cid} is not the snapshot's root")));
            }
            let root: SnapshotRoot = decode_canonical(bytes, "root")?;
            if root.v != crate::checkpoint::CHECKPOINT_VERSION {
                return Err(refused(format!("snapshot version {}", root.v)));
            }
            self.store(cid, bytes)?;
            self.root = Some(root);
            return Ok(());
        };
        let (expected, is_index) = if self.next < root.index.len() {
            (root.index[self.next], true)
        } else {
            let e = root
                .entries
                .get(self.next - root.index.len())
                .ok_or_else(|| refused("more blocks than the snapshot links"))?;
            (*e, false)
        };
        if *cid != expected {
            return Err(refused(format!(
                "snapshot block {cid} is not the next one ({expected})"
            )));
        }
        if !is_index && self.next == root.index.len() {
            self.last.clear();
        }
        let mut batch = sled::Batch::default();
        if is_index {
            self.take_index(decode_canonical(bytes, "index chunk")?, &mut batch)?;
        } else {
            self.take_entries(decode_canonical(bytes, "entries chunk")?, &mut batch)?;
        }
        self.replica.tree.apply_batch(batch)?;
        self.store(cid, bytes)?;
        self.next += 1;
        Ok(())
    }

    fn store(&mut self, cid: &Cid, bytes: &[u8]) -> Result<()> {
        let position = if self.root.is_none() {
            0
        } else {
            self.position
        };
        self.replica.checkpoints.insert(
            snapshot_key(self.generation, position),
            snapshot_value(cid, bytes),
        )?;
        if self.root.is_some() {
            self.position += 1;
        }
        Ok(())
    }

    fn in_order(&mut self, k: &[u8]) -> Result<()> {
        if k <= &self.last[..] {
            return Err(refused("snapshot records out of order"));
        }
        self.last = k.to_vec();
        Ok(())
    }

    fn take_index(&mut self, chunk: IndexChunk, batch: &mut sled::Batch) -> Result<()> {
        let mut in_chunk = std::collections::HashSet::with_capacity(chunk.len());
        for (cid, priority, seq, writer) in chunk {
            let delta = exact_cid(&cid).map_err(refused)?;
            if !is_delta_cid(&delta) || priority == 0 {
                return Err(refused(format!("index record of {delta} is malformed")));
            }
            self.in_order(&cid)?;
            let writer = WriterId::from_peer_id_bytes(&writer).map_err(refused)?;
            let pk = *writer.public_key_bytes();
            let top = self.expected.get(&pk).copied().unwrap_or(0);
            if seq == 0 || seq > top {
                return Err(refused(format!(
                    "index record of {delta}: seq {seq} of {writer} is outside the checkpoint"
                )));
            }
            let chain = chain_key(&pk, seq);
            if !in_chunk.insert(chain.clone()) || self.replica.tree.contains_key(&chain)? {
                return Err(refused(format!("two deltas of {writer} at seq {seq}")));
            }
            let info = DeltaInfo {
                priority,
                seq,
                writer,
            };
            batch.insert(cid_key(prefix::DELTA, &delta), &info.encode()[..]);
            batch.insert(chain, cid.as_slice());
            *self.seen.entry(pk).or_default() += 1;
            self.deltas += 1;
        }
        Ok(())
    }

    fn take_entries(&mut self, chunk: EntriesChunk, batch: &mut sled::Batch) -> Result<()> {
        for value in chunk {
            let (cid, mut record) = Record::from_canonical(&value).map_err(refused)?;
            if record.entries.is_empty() || record.canonical(&cid).as_slice() != value.as_slice() {
                return Err(refused(format!("pin record of {cid} is malformed")));
            }
            for e in &mut record.entries {
                let Some(info) = self
                    .replica
                    .tree
                    .get(cid_key(prefix::DELTA, &e.dot.delta))?
                else {
                    return Err(refused(format!(
                        "an entry of {cid} names {}, which the index lacks",
                        e.dot.delta
                    )));
                };
                // The index holds one delta per (writer, seq): the chain
                // names this one at its seq, so the record can too.
                let info = DeltaInfo::decode(&info)?;
                e.seq = (info.writer == e.writer).then_some(info.seq);
            }
            let k = cid_key(prefix::PIN, &cid);
            self.in_order(&k)?;
            self.hash.update(&value);
            self.replica.pins.add(&k);
            batch.insert(k, record.to_stored(&self.replica.names)?);
            self.pins += 1;
        }
        Ok(())
    }

    /// Checks the whole against the signed claims (delta count per writer,
    /// pin count, state hash, heads in the index with their priorities),
    /// then sets the heads and the floor and makes it durable, and reports
    /// [`PinEvent::Reloaded`](crate::PinEvent::Reloaded) (one event, not
    /// one per pin). Returns the checkpoint loaded.
    ///
    /// # Errors
    /// [`DagError::Checkpoint`] when the snapshot is incomplete or does not
    /// match its checkpoint; what was loaded is removed.
    pub fn finish(mut self) -> Result<Checkpoint> {
        if !self.is_complete() {
            return Err(refused("the snapshot is incomplete"));
        }
        let c = &self.checkpoint;
        if self.deltas != c.deltas || self.seen != self.expected {
            return Err(refused(format!(
                "the index holds {} deltas, the checkpoint counts {}",
                self.deltas, c.deltas
            )));
        }
        if self.pins != c.pins {
            return Err(refused(format!(
                "the snapshot holds {} pins, the checkpoint counts {}",
                self.pins, c.pins
            )));
        }
        let hash: [u8; 32] = std::mem::take(&mut self.hash).finalize().into();
        if hash != c.state_hash {
            return Err(refused("the snapshot's state hash is not the signed one"));
        }
        let tree = &self.replica.tree;
        let mut batch = sled::Batch::default();
        for (head, priority) in &c.heads {
            let info = tree
                .get(cid_key(prefix::DELTA, head))?
                .map(|b| DeltaInfo::decode(&b))
                .transpose()?;
            if info.is_none_or(|i| i.priority != *priority) {
                return Err(refused(format!(
                    "head {head} is not in the index as signed"
                )));
            }
            batch.insert(cid_key(prefix::HEAD, head), &priority.to_be_bytes()[..]);
        }
        for (writer, seq) in &c.writers {
            batch.insert(
                key(prefix::FLOOR, &[writer.public_key_bytes()]),
                &seq.to_be_bytes(),
            );
        }
        batch.insert(META_COUNT, &self.pins.to_be_bytes());
        batch.insert(META_FLOOR, self.cid.to_bytes());
        batch.remove(META_LOADING);
        tree.apply_batch(batch)?;
        self.replica
            .keep_checkpoint(&self.cid, self.generation, &self.block)?;
        self.replica.flush()?;
        self.done = true;
        self.replica.loading.store(false, Ordering::SeqCst);
        self.replica.fire(&[crate::pin::PinEvent::Reloaded]);
        Ok(self.checkpoint.clone())
    }
}

impl Drop for CheckpointLoad<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: what stays behind is undone at the next open.
            let _ = self.replica.undo_load(Some(self.generation));
            self.replica.loading.store(false, Ordering::SeqCst);
        }
    }
}
