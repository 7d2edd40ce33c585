//! The tracker's sled tree: persisted error records and the index of what
//! IPFS has pinned (the key layout is in the crate docs).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use cluster_types::iter::until_error;
use ipfs::IpfsPinType;
use serde::{Deserialize, Serialize};

use crate::TrackerError;
use crate::ops::OpKind;

/// Key prefix of error records.
const ERROR_PREFIX: u8 = b'e';
/// Key prefix of index entries.
const INDEX_PREFIX: u8 = b'i';
/// Key prefix of what this tracker pinned.
const OURS_PREFIX: u8 = b'o';
/// The index's current generation.
const GENERATION_KEY: &[u8] = b"m/gen";
/// Version of the error record layout; bumped (with a reader for the old
/// one) whenever the record changes.
const RECORD_VERSION: u8 = 1;

/// A failed operation, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorRecord {
    pub(crate) kind: OpKind,
    pub(crate) error: String,
    pub(crate) attempts: u32,
    pub(crate) timestamp: SystemTime,
}

/// The DAG-CBOR shape of [`ErrorRecord`] (short keys: there may be many).
#[derive(Serialize, Deserialize)]
struct RecordV1 {
    v: u8,
    k: u8,
    e: String,
    a: u32,
    t: u64,
}

/// Typed access to the tracker's tree.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    tree: sled::Tree,
}

fn key(prefix: u8, cid: &Cid) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.push(prefix);
    k.extend_from_slice(&cid.to_bytes());
    k
}

fn corrupt(key: &[u8], reason: impl ToString) -> TrackerError {
    TrackerError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_string(),
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Store {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// The error record of `cid`, if any.
    pub(crate) fn error(&self, cid: &Cid) -> Result<Option<ErrorRecord>, TrackerError> {
        let k = key(ERROR_PREFIX, cid);
        match self.tree.get(&k)? {
            Some(bytes) => decode_record(&k, &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn put_error(&self, cid: &Cid, rec: &ErrorRecord) -> Result<(), TrackerError> {
        let v1 = RecordV1 {
            v: RECORD_VERSION,
            k: rec.kind.code(),
            e: rec.error.clone(),
            a: rec.attempts,
            t: unix_ms(rec.timestamp),
        };
        let bytes = serde_ipld_dagcbor::to_vec(&v1).map_err(|e| corrupt(b"error record", e))?;
        self.tree.insert(key(ERROR_PREFIX, cid), bytes)?;
        Ok(())
    }

    pub(crate) fn remove_error(&self, cid: &Cid) -> Result<(), TrackerError> {
        self.tree.remove(key(ERROR_PREFIX, cid))?;
        Ok(())
    }

    /// Every error record, in CID-byte order (lazily: sled iterates); a
    /// read error is the last item.
    pub(crate) fn errors(
        &self,
    ) -> impl Iterator<Item = Result<(Cid, ErrorRecord), TrackerError>> + Send + use<> {
        until_error(self.tree.scan_prefix([ERROR_PREFIX])).map(|item| {
            let (k, v) = item?;
            let cid = Cid::try_from(&k[1..]).map_err(|e| corrupt(&k, e))?;
            Ok((cid, decode_record(&k, &v)?))
        })
    }

    /// Marks `cid` as pinned in IPFS by this tracker, or not.
    pub(crate) fn set_ours(&self, cid: &Cid, ours: bool) -> Result<(), TrackerError> {
        if ours {
            self.tree.insert(key(OURS_PREFIX, cid), &[][..])?;
        } else {
            self.tree.remove(key(OURS_PREFIX, cid))?;
        }
        Ok(())
    }

    /// Every CID this tracker pinned in IPFS and has not unpinned, in
    /// CID-byte order (lazily); a read error is the last item.
    pub(crate) fn ours(&self) -> impl Iterator<Item = Result<Cid, TrackerError>> + Send + use<> {
        until_error(self.tree.scan_prefix([OURS_PREFIX])).map(|item| {
            let (k, _) = item?;
            Cid::try_from(&k[1..]).map_err(|e| corrupt(&k, e))
        })
    }

    /// How IPFS had `cid` pinned when last seen.
    pub(crate) fn indexed(&self, cid: &Cid) -> Result<Option<IpfsPinType>, TrackerError> {
        let k = key(INDEX_PREFIX, cid);
        match self.tree.get(&k)? {
            Some(v) => match v.first() {
                Some(1) => Ok(Some(IpfsPinType::Recursive)),
                Some(2) => Ok(Some(IpfsPinType::Direct)),
                _ => Err(corrupt(&k, "bad index entry")),
            },
            None => Ok(None),
        }
    }

    pub(crate) fn index(
        &self,
        cid: &Cid,
        pin_type: IpfsPinType,
        generation: u64,
    ) -> Result<(), TrackerError> {
        let t = match pin_type {
            IpfsPinType::Recursive => 1u8,
            // The index holds only what is pinned on its own.
            IpfsPinType::Direct => 2,
            IpfsPinType::Indirect => return Ok(()),
        };
        let mut v = [0u8; 9];
        v[0] = t;
        v[1..].copy_from_slice(&generation.to_be_bytes());
        self.tree.insert(key(INDEX_PREFIX, cid), &v[..])?;
        Ok(())
    }

    pub(crate) fn unindex(&self, cid: &Cid) -> Result<(), TrackerError> {
        self.tree.remove(key(INDEX_PREFIX, cid))?;
        Ok(())
    }

    /// Deletes the index entries of generations older than `generation`;
    /// returns how many.
    pub(crate) fn sweep(&self, generation: u64) -> Result<u64, TrackerError> {
        let mut swept = 0;
        for item in self.tree.scan_prefix([INDEX_PREFIX]) {
            let (k, v) = item?;
            let seen = v
                .get(1..9)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            if seen < generation {
                // Only if unchanged: a pin done meanwhile rewrote it.
                if self
                    .tree
                    .compare_and_swap(&k, Some(v), None as Option<&[u8]>)?
                    .is_ok()
                {
                    swept += 1;
                }
            }
        }
        Ok(swept)
    }

    /// The persisted index generation (0 for a new tree).
    pub(crate) fn generation(&self) -> Result<u64, TrackerError> {
        Ok(self
            .tree
            .get(GENERATION_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
            .map_or(0, u64::from_be_bytes))
    }

    pub(crate) fn set_generation(&self, generation: u64) -> Result<(), TrackerError> {
        self.tree
            .insert(GENERATION_KEY, &generation.to_be_bytes()[..])?;
        Ok(())
    }
}

fn decode_record(k: &[u8], bytes: &[u8]) -> Result<ErrorRecord, TrackerError> {
    let r: RecordV1 = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| corrupt(k, e))?;
    if r.v != RECORD_VERSION {
        return Err(corrupt(k, format!("unknown record version {}", r.v)));
    }
    let kind = OpKind::from_code(r.k).ok_or_else(|| corrupt(k, "unknown operation kind"))?;
    Ok(ErrorRecord {
        kind,
        error: r.e,
        attempts: r.a,
        timestamp: UNIX_EPOCH + Duration::from_millis(r.t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, Store::new(db.open_tree("t").unwrap()))
    }

    fn cid(n: u8) -> Cid {
        let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[n; 32]).unwrap();
        Cid::new_v1(0x55, mh)
    }

    #[test]
    fn error_records_round_trip() {
        let (_d, s) = tree();
        let rec = ErrorRecord {
            kind: OpKind::Unpin,
            error: "boom".into(),
            attempts: 3,
            timestamp: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        s.put_error(&cid(1), &rec).unwrap();
        assert_eq!(s.error(&cid(1)).unwrap(), Some(rec.clone()));
        assert_eq!(s.error(&cid(2)).unwrap(), None);
        let all: Vec<_> = s.errors().map(Result::unwrap).collect();
        assert_eq!(all, vec![(cid(1), rec)]);
        s.remove_error(&cid(1)).unwrap();
        assert_eq!(s.error(&cid(1)).unwrap(), None);
    }

    #[test]
    fn sweep_drops_only_older_generations() {
        let (_d, s) = tree();
        s.index(&cid(1), IpfsPinType::Recursive, 1).unwrap();
        s.index(&cid(2), IpfsPinType::Direct, 2).unwrap();
        s.index(&cid(3), IpfsPinType::Indirect, 2).unwrap();
        assert_eq!(s.sweep(2).unwrap(), 1);
        assert_eq!(s.indexed(&cid(1)).unwrap(), None);
        assert_eq!(s.indexed(&cid(2)).unwrap(), Some(IpfsPinType::Direct));
        assert_eq!(s.indexed(&cid(3)).unwrap(), None);
    }
}
