//! Reads of the replica: pins and their entries, the state hash, heads,
//! applied blocks, rejections, writer chains and forks.

use cid::Cid;
use cluster_types::Pin;
use cluster_types::iter::until_error;
use sha2::{Digest, Sha256};

use super::{Fork, Replica};
use crate::error::{DagError, Result};
use crate::pin::PinEntry;
use crate::source::{BlockSource, SourceError};
use crate::store::{
    ChainCache, DeltaInfo, META_COUNT, Record, cid_key, key, prefix, stored_cid, u64_value,
};
use crate::writer::WriterId;

impl Replica {
    /// The OR-map record of `cid` (empty when unpinned).
    pub(super) fn record(&self, cid: &Cid) -> Result<Record> {
        match self.tree.get(cid_key(prefix::PIN, cid))? {
            Some(b) => Record::from_stored(&b, &self.names, &mut ChainCache::new(&self.tree)),
            None => Ok(Record::default()),
        }
    }

    /// `R(x)` of spec §6 for a stored pin record (`key`, `value`).
    pub(super) fn canonical_record(
        &self,
        key: &[u8],
        value: &[u8],
        chain: &mut ChainCache<'_>,
    ) -> Result<Vec<u8>> {
        let cid = stored_cid(&key[1..])?;
        Ok(Record::from_stored(value, &self.names, chain)?.canonical(&cid))
    }

    /// Whether `cid` is pinned: one key lookup, nothing decoded (a record
    /// is stored only while it has a live entry).
    pub fn contains(&self, cid: &Cid) -> Result<bool> {
        Ok(self.tree.contains_key(cid_key(prefix::PIN, cid))?)
    }

    /// The pin of `cid` as its winning entry wrote it, if pinned (its
    /// delta not looked up: only the pin is needed).
    pub fn get(&self, cid: &Cid) -> Result<Option<Pin>> {
        self.tree
            .get(cid_key(prefix::PIN, cid))?
            .map(|b| Ok(Record::winner_from_stored(&b, &self.names)?.into_pin(*cid)))
            .transpose()
    }

    /// Every live entry of `cid` (more than one after concurrent writes),
    /// the winner last.
    pub fn entries(&self, cid: &Cid) -> Result<Vec<PinEntry>> {
        Ok(self
            .record(cid)?
            .entries
            .iter()
            .map(|e| e.to_entry(*cid))
            .collect())
    }

    /// All pins in CID byte order, read lazily from disk.
    pub fn pins(&self) -> impl Iterator<Item = Result<Pin>> + use<> {
        self.pins_after(None)
    }

    /// The pins after `after` in CID byte order (all of them for `None`),
    /// read lazily from disk: a walk that stops can resume where it was.
    /// A read error is the last item (sled would repeat it forever).
    pub fn pins_after(&self, after: Option<&Cid>) -> impl Iterator<Item = Result<Pin>> + use<> {
        let start = match after {
            // The smallest key above `after`'s: its own key plus a 0 byte.
            Some(cid) => {
                let mut k = cid_key(prefix::PIN, cid);
                k.push(0);
                k
            }
            None => vec![prefix::PIN],
        };
        let names = self.names.clone();
        until_error(self.tree.range(start..))
            .take_while(|kv| match kv {
                Ok((k, _)) => k.first() == Some(&prefix::PIN),
                Err(_) => true,
            })
            .map(move |kv| {
                let (k, v) = kv?;
                let cid = stored_cid(&k[1..])?;
                Ok(Record::winner_from_stored(&v, &names)?.into_pin(cid))
            })
    }

    /// Number of pinned CIDs.
    pub fn len(&self) -> Result<u64> {
        Ok(u64_value(self.tree.get(META_COUNT)?))
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The state hash of spec §6.
    pub fn state_hash(&self) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        let mut chain = ChainCache::new(&self.tree);
        for kv in self.tree.scan_prefix([prefix::PIN]) {
            let (k, v) = kv?;
            h.update(self.canonical_record(&k, &v, &mut chain)?);
        }
        Ok(h.finalize().into())
    }

    /// Current heads, sorted by CID bytes.
    pub fn heads(&self) -> Result<Vec<Cid>> {
        Ok(self
            .heads_with_priority()?
            .into_iter()
            .map(|h| h.0)
            .collect())
    }

    /// Current heads with their priorities, sorted by CID bytes.
    pub fn heads_with_priority(&self) -> Result<Vec<(Cid, u64)>> {
        self.tree
            .scan_prefix([prefix::HEAD])
            .map(|kv| {
                let (k, v) = kv?;
                let cid = stored_cid(&k[1..])?;
                Ok((cid, u64_value(Some(v))))
            })
            .collect()
    }

    /// Highest priority among the heads (the DAG's height), 0 when empty.
    pub fn height(&self) -> Result<u64> {
        Ok(self
            .heads_with_priority()?
            .into_iter()
            .map(|h| h.1)
            .max()
            .unwrap_or(0))
    }

    /// Whether `cid` is an applied delta.
    pub fn is_applied(&self, cid: &Cid) -> Result<bool> {
        Ok(self.tree.contains_key(cid_key(prefix::DELTA, cid))?)
    }

    /// The writer and sequence number of an applied delta, from the delta
    /// index (without reading its block); `None` when it is not applied.
    pub fn delta_seq(&self, cid: &Cid) -> Result<Option<(WriterId, u64)>> {
        match self.tree.get(cid_key(prefix::DELTA, cid))? {
            Some(info) => {
                let info = DeltaInfo::decode(&info)?;
                Ok(Some((info.writer, info.seq)))
            }
            None => Ok(None),
        }
    }

    /// Why `cid` was rejected, if it was.
    pub fn rejection(&self, cid: &Cid) -> Result<Option<String>> {
        Ok(self
            .tree
            .get(cid_key(prefix::REJECTED, cid))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub(super) fn is_rejected(&self, cid: &Cid) -> Result<bool> {
        Ok(self.tree.contains_key(cid_key(prefix::REJECTED, cid))?)
    }

    /// The block of an applied delta (to serve peers and IPFS).
    pub fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        self.blocks.get(&self.tree, cid)
    }

    /// All applied delta blocks in CID byte order, read lazily.
    pub fn blocks(&self) -> impl Iterator<Item = Result<(Cid, Vec<u8>)>> + use<> {
        self.blocks.iter(&self.tree)
    }

    /// The highest applied `seq` of `writer` and its delta.
    pub fn last_seq(&self, writer: &WriterId) -> Result<Option<(u64, Cid)>> {
        let p = key(prefix::CHAIN, &[writer.public_key_bytes()]);
        match self.tree.scan_prefix(&p).next_back() {
            None => Ok(None),
            Some(kv) => {
                let (k, v) = kv?;
                let seq = u64::from_be_bytes(
                    k[33..41]
                        .try_into()
                        .map_err(|_| DagError::Corrupt("chain key".into()))?,
                );
                let cid = stored_cid(&v)?;
                Ok(Some((seq, cid)))
            }
        }
    }

    /// Writers caught signing two deltas with one sequence number.
    pub fn forks(&self) -> Result<Vec<Fork>> {
        let mut out: Vec<Fork> = Vec::new();
        for kv in self.tree.scan_prefix([prefix::FORK]) {
            let (k, _) = kv?;
            let writer = WriterId::from_public_key_bytes(k[1..33].try_into().expect("32 bytes"));
            let seq = u64::from_be_bytes(k[33..41].try_into().expect("8 bytes"));
            let cid = stored_cid(&k[41..])?;
            match out.last_mut() {
                Some(f) if f.writer == writer && f.seq == seq => f.deltas.push(cid),
                _ => out.push(Fork {
                    writer,
                    seq,
                    deltas: vec![cid],
                }),
            }
        }
        Ok(out)
    }
}

impl BlockSource for Replica {
    /// Serves applied delta blocks, so one replica can sync from another.
    fn get(
        &self,
        cid: &Cid,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send {
        std::future::ready(self.block(cid).map_err(|e| SourceError(e.to_string())))
    }
}
