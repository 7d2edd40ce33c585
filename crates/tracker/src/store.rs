//! The tracker's sled tree: persisted error records and the index of what
//! IPFS has pinned (the key layout is in the crate docs).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use cluster_codec::varint;
use cluster_types::iter::until_error;
use ipfs::IpfsPinType;
use serde::{Deserialize, Serialize};

use crate::TrackerError;
use crate::ops::OpKind;
use crate::texts::Texts;

/// Key prefix of error records.
const ERROR_PREFIX: u8 = b'e';
/// Key prefix of index entries.
const INDEX_PREFIX: u8 = b'i';
/// Key prefix of what this tracker pinned.
const OURS_PREFIX: u8 = b'o';
/// The index's current generation.
const GENERATION_KEY: &[u8] = b"m/gen";
/// Version of the error record layout written; bumped (with a reader for
/// the old one) whenever the record changes. Version 1 is a DAG-CBOR map
/// (its first byte, a map header, is never 1 or 2).
const RECORD_VERSION: u8 = 2;
/// Flag of a version-2 record: its text is numbered ([`Texts`]).
const NUMBERED: u8 = 1;
/// Flag of a version-2 record: the CID's text was cut out of the error
/// text, each [`CID_MARK`] stands for it.
const CID_CUT: u8 = 2;
/// What stands for the record's CID in a text it was cut out of.
const CID_MARK: char = '\u{1}';

/// A failed operation, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorRecord {
    pub(crate) kind: OpKind,
    pub(crate) error: String,
    pub(crate) attempts: u32,
    pub(crate) timestamp: SystemTime,
}

/// The DAG-CBOR shape of a version-1 [`ErrorRecord`] (read only).
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
    texts: Texts,
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
        Self {
            texts: Texts::new(tree.clone()),
            tree,
        }
    }

    /// The error record of `cid`, if any.
    pub(crate) fn error(&self, cid: &Cid) -> Result<Option<ErrorRecord>, TrackerError> {
        let k = key(ERROR_PREFIX, cid);
        match self.tree.get(&k)? {
            Some(bytes) => self.decode_record(cid, &k, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `rec` as `cid`'s error record: version 2, flags, kind,
    /// attempts and unix ms (varints), then the text's number (a varint)
    /// or the text itself. The CID's own text is cut out of the error text
    /// first, so the failures of many CIDs share one numbered text.
    pub(crate) fn put_error(&self, cid: &Cid, rec: &ErrorRecord) -> Result<(), TrackerError> {
        let mut flags = 0;
        let cid_text = cid.to_string();
        let cut;
        let mut text = rec.error.as_str();
        if !text.contains(CID_MARK) && text.contains(&cid_text) {
            cut = text.replace(&cid_text, &CID_MARK.to_string());
            text = &cut;
            flags |= CID_CUT;
        }
        let number = self.texts.number(text)?;
        if number.is_some() {
            flags |= NUMBERED;
        }
        let mut bytes = vec![RECORD_VERSION, flags, rec.kind.code()];
        varint::encode(u64::from(rec.attempts), &mut bytes);
        varint::encode(unix_ms(rec.timestamp), &mut bytes);
        match number {
            Some(n) => varint::encode(u64::from(n), &mut bytes),
            None => bytes.extend_from_slice(text.as_bytes()),
        }
        self.tree.insert(key(ERROR_PREFIX, cid), bytes)?;
        Ok(())
    }

    fn decode_record(
        &self,
        cid: &Cid,
        k: &[u8],
        bytes: &[u8],
    ) -> Result<ErrorRecord, TrackerError> {
        let Some((&RECORD_VERSION, mut rest)) = bytes.split_first() else {
            return decode_v1(k, bytes);
        };
        let mut byte = || {
            let (b, tail) = rest.split_first().ok_or_else(|| corrupt(k, "cut short"))?;
            rest = tail;
            Ok::<u8, TrackerError>(*b)
        };
        let (flags, code) = (byte()?, byte()?);
        if flags & !(NUMBERED | CID_CUT) != 0 {
            return Err(corrupt(k, format!("unknown flags {flags}")));
        }
        let kind = OpKind::from_code(code).ok_or_else(|| corrupt(k, "unknown operation kind"))?;
        let mut number = || -> Result<u64, TrackerError> {
            match varint::read(&mut rest) {
                Ok(Some((n, _))) => Ok(n),
                Ok(None) => Err(corrupt(k, "cut short")),
                Err(e) => Err(corrupt(k, e)),
            }
        };
        let attempts = u32::try_from(number()?).map_err(|e| corrupt(k, e))?;
        let t = number()?;
        let mut text = if flags & NUMBERED != 0 {
            let n = u32::try_from(number()?).map_err(|e| corrupt(k, e))?;
            if !rest.is_empty() {
                return Err(corrupt(k, "bytes after the text's number"));
            }
            self.texts
                .text(n)?
                .ok_or_else(|| corrupt(k, format!("no error text numbered {n}")))?
        } else {
            String::from_utf8(rest.to_vec()).map_err(|e| corrupt(k, e))?
        };
        if flags & CID_CUT != 0 {
            text = text.replace(CID_MARK, &cid.to_string());
        }
        Ok(ErrorRecord {
            kind,
            error: text,
            attempts,
            timestamp: UNIX_EPOCH + Duration::from_millis(t),
        })
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
        let me = self.clone();
        until_error(self.tree.scan_prefix([ERROR_PREFIX])).map(move |item| {
            let (k, v) = item?;
            let cid = Cid::try_from(&k[1..]).map_err(|e| corrupt(&k, e))?;
            Ok((cid, me.decode_record(&cid, &k, &v)?))
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

/// A version-1 record (a DAG-CBOR map), as written before version 2.
fn decode_v1(k: &[u8], bytes: &[u8]) -> Result<ErrorRecord, TrackerError> {
    let r: RecordV1 = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| corrupt(k, e))?;
    if r.v != 1 {
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

    /// Failures of many CIDs with one cause share a numbered text: each
    /// record is a few bytes, the CID's text cut out and put back.
    #[test]
    fn error_texts_are_numbered_with_the_cid_cut_out() {
        let (_d, s) = tree();
        let rec = |c: &Cid, attempts| ErrorRecord {
            kind: OpKind::Pin,
            error: format!(
                "pin/add: block {c} not found locally (offline): ipld: could not find {c}"
            ),
            attempts,
            timestamp: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        for n in 1..=3 {
            s.put_error(&cid(n), &rec(&cid(n), u32::from(n))).unwrap();
        }
        for n in 1..=3 {
            assert_eq!(s.error(&cid(n)).unwrap(), Some(rec(&cid(n), u32::from(n))));
            let stored = s.tree.get(key(ERROR_PREFIX, &cid(n))).unwrap().unwrap();
            assert!(stored.len() <= 12, "{} bytes", stored.len());
        }
        let texts = s.tree.scan_prefix([crate::texts::TEXT_PREFIX]).count();
        assert_eq!(texts, 1, "one text for the three");
        // Read back by a new handle (as after a restart), in a scan too.
        let again = Store::new(s.tree.clone());
        let all: Vec<_> = again.errors().map(Result::unwrap).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1], (cid(2), rec(&cid(2), 2)));

        // A text too long to number stays in its record; one holding the
        // mark is kept as it is.
        let long = ErrorRecord {
            error: format!("{} {}", cid(4), "x".repeat(600)),
            ..rec(&cid(4), 1)
        };
        s.put_error(&cid(4), &long).unwrap();
        assert_eq!(s.error(&cid(4)).unwrap(), Some(long));
        let marked = ErrorRecord {
            error: format!("odd \u{1} {}", cid(5)),
            ..rec(&cid(5), 1)
        };
        s.put_error(&cid(5), &marked).unwrap();
        assert_eq!(s.error(&cid(5)).unwrap(), Some(marked));
    }

    /// Records written before version 2 (a DAG-CBOR map) still read.
    #[test]
    fn version_1_records_still_read() {
        let (_d, s) = tree();
        let v1 = RecordV1 {
            v: 1,
            k: OpKind::Unpin.code(),
            e: "unpin boom".into(),
            a: 2,
            t: 1_700_000_000_000,
        };
        let bytes = serde_ipld_dagcbor::to_vec(&v1).unwrap();
        s.tree.insert(key(ERROR_PREFIX, &cid(1)), bytes).unwrap();
        let rec = s.error(&cid(1)).unwrap().unwrap();
        assert_eq!(
            (rec.kind, rec.error.as_str(), rec.attempts),
            (OpKind::Unpin, "unpin boom", 2)
        );
    }

    #[test]
    fn damaged_records_are_corrupt() {
        let (_d, s) = tree();
        for bad in [
            &[RECORD_VERSION][..],
            &[RECORD_VERSION, 4, 0, 0, 0],
            &[RECORD_VERSION, 0, 9, 0, 0],
            &[RECORD_VERSION, 0, 0, 0x80],
            &[RECORD_VERSION, NUMBERED, 0, 1, 1, 77],
            &[RECORD_VERSION, NUMBERED, 0, 1, 1, 0, 0],
            &[RECORD_VERSION, 0, 0, 1, 1, 0xff],
            &[7, 1, 2],
        ] {
            s.tree.insert(key(ERROR_PREFIX, &cid(1)), bad).unwrap();
            let err = s.error(&cid(1)).unwrap_err();
            assert!(
                matches!(err, TrackerError::Corrupt { .. }),
                "{bad:?}: {err}"
            );
        }
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
