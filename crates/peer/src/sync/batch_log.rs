//! The durable queue of batched writes: with batching on, a write is
//! acknowledged once it is in this log (synced to disk), not when its batch
//! is committed, so clients are not held for `max_batch_age` and nothing
//! acknowledged is lost. At start, what a crash left here is committed.
//!
//! It is an append-only file beside the database, not a sled tree: every
//! queued write is removed a moment later, and in sled's log those removed
//! entries stayed as garbage among live pages (about 110 bytes a pin on
//! disk, spec/crdt.md §8), while the file is emptied whenever the queue is.
//! A record is `len: u32 LE, crc32: u32 LE, payload`, the payload the key
//! (u64 BE) and the write's DAG-CBOR. A torn or corrupt tail (a crash in
//! the middle of an append) is zeroed over at open: its append was never
//! acknowledged. The file grows [`GROW_BYTES`] of zeros at a time, synced
//! with the append that needed them, and the appends in between write over
//! those zeros, so their `fdatasync` writes only the data, no journal commit
//! for a new size (as the delta block file, spec/crdt.md §8). Zeros end the
//! records (a length under 8 is no record).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write as _};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cid::Cid;
use crdt_dag::{DagError, WirePin, Write};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::PeerError;

fn corrupt(reason: String) -> PeerError {
    PeerError::Corrupt {
        what: "batch queue",
        reason,
    }
}

fn io(e: std::io::Error) -> PeerError {
    PeerError::from(DagError::Io(e))
}

/// The file of the queue, in the database's folder.
const FILE: &str = "batch-queue.log";
/// The sled tree that held the queue before the file (drained at open).
const OLD_TREE: &str = "batch-queue";
/// Bytes before a record's payload.
const HEADER: usize = 8;
/// A payload past this is corruption (a write is a few KB at most).
const MAX_PAYLOAD: usize = 1 << 24;
/// The file grows by this many bytes of zeros when an append passes its
/// end.
const GROW_BYTES: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Entry {
    cid: ByteBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin: Option<WirePin>,
}

/// Writes queued for the next batch, keyed by an increasing number.
#[derive(Debug, Clone)]
pub(crate) struct BatchLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    path: PathBuf,
    /// Where the records end (the next append goes here).
    end: u64,
    /// The file's length: `end` and the zeros grown ahead.
    size: u64,
    /// The records in the file, by key.
    live: BTreeMap<u64, Vec<u8>>,
    next_key: u64,
    /// Holds the folder of a temporary database's queue.
    _temp: Option<tempfile::TempDir>,
}

impl BatchLog {
    /// Opens the queue of the database in `dir` (a temporary one for
    /// `None`), cutting off a torn tail, and moves into it what an older
    /// version left in its sled tree.
    pub(crate) fn open(db: &sled::Db, dir: Option<&Path>) -> Result<Self, PeerError> {
        let (temp, path) = match dir {
            Some(d) => (None, d.join(FILE)),
            None => {
                let t = tempfile::tempdir().map_err(io)?;
                let p = t.path().join(FILE);
                (Some(t), p)
            }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (live, good) = parse(&bytes);
        let size = bytes.len() as u64;
        if bytes[good..].iter().any(|b| *b != 0) {
            tracing::warn!(
                bytes = bytes.len() - good,
                "the batch queue ends in a torn record (a crash mid-append, never acknowledged): zeroed over"
            );
            // Zeros over it, not a shorter file: the zeros grown ahead stay.
            file.write_all_at(&vec![0; bytes.len() - good], good as u64)
                .and_then(|()| file.sync_data())
                .map_err(io)?;
        }
        let next_key = live.keys().next_back().map_or(0, |k| k + 1);
        let log = Self {
            inner: Arc::new(Mutex::new(Inner {
                file,
                path,
                end: good as u64,
                size,
                live,
                next_key,
                _temp: temp,
            })),
        };
        log.drain_old_tree(db)?;
        Ok(log)
    }

    /// Moves the writes an older version queued in sled into the file.
    fn drain_old_tree(&self, db: &sled::Db) -> Result<(), PeerError> {
        let store = |e: sled::Error| PeerError::from(DagError::from(e));
        if !db.tree_names().iter().any(|n| n == OLD_TREE.as_bytes()) {
            return Ok(());
        }
        let tree = db.open_tree(OLD_TREE).map_err(store)?;
        let mut writes = Vec::new();
        for kv in tree.iter() {
            let (_, v) = kv.map_err(store)?;
            writes.push(decode_write(&v)?);
        }
        if !writes.is_empty() {
            self.append(&writes)?;
        }
        drop(tree);
        db.drop_tree(OLD_TREE).map_err(store)?;
        db.flush().map_err(store)?;
        Ok(())
    }

    /// Appends writes and syncs them to disk; returns their keys. On an
    /// error nothing of them stays in the file.
    pub(crate) fn append(&self, writes: &[Write]) -> Result<Vec<u64>, PeerError> {
        let mut inner = self.lock();
        let mut keys = Vec::with_capacity(writes.len());
        let mut records = Vec::with_capacity(writes.len());
        let mut out = Vec::with_capacity(writes.len() * 96);
        for (i, w) in writes.iter().enumerate() {
            let key = inner.next_key + i as u64;
            let record = encode_record(key, w)?;
            out.extend_from_slice(&record);
            keys.push(key);
            records.push(record);
        }
        let end = inner.end + out.len() as u64;
        let size = if end > inner.size {
            let size = end + GROW_BYTES;
            out.resize((size - inner.end) as usize, 0);
            size
        } else {
            inner.size
        };
        let written = inner
            .file
            .write_all_at(&out, inner.end)
            .and_then(|()| inner.file.sync_data());
        if let Err(e) = written {
            // A partial record would hide every later one from the next
            // open, and a whole one would be taken as queued.
            let _ = inner.file.set_len(inner.end);
            inner.size = inner.end;
            return Err(io(e));
        }
        (inner.end, inner.size) = (end, size);
        inner.next_key += writes.len() as u64;
        inner.live.extend(keys.iter().copied().zip(records));
        Ok(keys)
    }

    /// Forgets committed writes. The file is emptied once nothing is left;
    /// a crash before that commits them again at the next start (an unpin
    /// that no longer applies is dropped then, a pin is written again).
    pub(crate) fn remove(&self, keys: &[u64]) -> Result<(), PeerError> {
        let mut inner = self.lock();
        for k in keys {
            inner.live.remove(k);
        }
        if inner.live.is_empty() {
            (inner.end, inner.size) = (0, 0);
            return inner.file.set_len(0).map_err(io);
        }
        // Some writes stay queued (appended while this batch committed, or
        // left by a commit task that failed): rewrite the
        // file with just them, swapped in whole.
        let tmp = inner.path.with_extension("log.tmp");
        let mut f = File::create(&tmp).map_err(io)?;
        let mut end = 0;
        for r in inner.live.values() {
            f.write_all(r).map_err(io)?;
            end += r.len() as u64;
        }
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &inner.path).map_err(io)?;
        inner.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&inner.path)
            .map_err(io)?;
        (inner.end, inner.size) = (end, end);
        Ok(())
    }

    /// Everything still queued, oldest first.
    pub(crate) fn load(&self) -> Result<Vec<(u64, Write)>, PeerError> {
        self.lock()
            .live
            .iter()
            .map(|(k, r)| Ok((*k, decode_write(&r[HEADER + 8..])?)))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn encode_record(key: u64, w: &Write) -> Result<Vec<u8>, PeerError> {
    let entry = match w {
        Write::Pin(pin) => Entry {
            cid: ByteBuf::from(pin.cid.to_bytes()),
            pin: Some(WirePin::from_pin(pin)),
        },
        Write::Unpin(cid) => Entry {
            cid: ByteBuf::from(cid.to_bytes()),
            pin: None,
        },
    };
    let mut payload = key.to_be_bytes().to_vec();
    serde_ipld_dagcbor::to_writer(&mut payload, &entry).map_err(|e| corrupt(e.to_string()))?;
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

fn decode_write(bytes: &[u8]) -> Result<Write, PeerError> {
    let e: Entry = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let cid = Cid::try_from(e.cid.as_slice()).map_err(|e| corrupt(e.to_string()))?;
    Ok(match e.pin {
        Some(wire) => Write::Pin(wire.into_pin(cid)),
        None => Write::Unpin(cid),
    })
}

/// The whole records of `bytes` by key, and where the last one ends.
fn parse(bytes: &[u8]) -> (BTreeMap<u64, Vec<u8>>, usize) {
    let mut live = BTreeMap::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if !(8..=MAX_PAYLOAD).contains(&len) || crc32fast::hash(payload) != crc {
            break;
        }
        let key = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
        live.insert(key, bytes[at..at + HEADER + len].to_vec());
        at += HEADER + len;
    }
    (live, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_types::{Pin, PinOptions};

    fn cid(n: u8) -> Cid {
        use multihash_codetable::{Code, MultihashDigest};
        Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]))
    }

    fn pin(n: u8) -> Write {
        Write::Pin(Pin::new(cid(n), PinOptions::named(format!("p{n}"))))
    }

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    fn cids(log: &BatchLog) -> Vec<(u64, Cid)> {
        log.load()
            .unwrap()
            .into_iter()
            .map(|(k, w)| (k, *w.cid()))
            .collect()
    }

    #[test]
    fn what_is_appended_survives_a_reopen_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = db();
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(log.append(&[pin(1), pin(2)]).unwrap(), vec![0, 1]);
        assert_eq!(log.append(&[Write::Unpin(cid(1))]).unwrap(), vec![2]);
        drop(log);
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        let all = log.load().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].1, pin(1));
        assert_eq!(all[2].1, Write::Unpin(cid(1)));
        // A failed commit's writes stay while the rest leave.
        log.remove(&[0, 2]).unwrap();
        assert_eq!(log.append(&[pin(3)]).unwrap(), vec![3]);
        drop(log);
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(cids(&log), vec![(1, cid(2)), (3, cid(3))]);
        log.remove(&[1, 3]).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join(FILE)).unwrap().len(), 0);
        drop(log);
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert!(log.load().unwrap().is_empty());
        // Keys are not reused while the file holds any; after it emptied
        // they may restart, as nothing refers to them.
        assert_eq!(log.append(&[pin(4)]).unwrap(), vec![0]);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_what_precedes_it_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = db();
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        log.append(&[pin(1)]).unwrap();
        log.append(&[pin(2)]).unwrap();
        drop(log);
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).unwrap();
        let (_, records) = parse(&whole);
        // Two records of the same length.
        let first = records / 2;
        for cut in [first + 3, records - 1] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let log = BatchLog::open(&db, Some(dir.path())).unwrap();
            assert_eq!(cids(&log), vec![(0, cid(1))], "cut at {cut}");
            let left = std::fs::read(&path).unwrap();
            assert_eq!(left.len(), cut, "zeroed, not shortened");
            assert!(left[first..].iter().all(|b| *b == 0), "torn record left");
            // Appends after the cut go where the records end, and are read
            // back.
            log.append(&[pin(5)]).unwrap();
            drop(log);
            let log = BatchLog::open(&db, Some(dir.path())).unwrap();
            assert_eq!(cids(&log), vec![(0, cid(1)), (1, cid(5))]);
        }
        // A flipped byte in a record: it and what follows are not trusted.
        let mut bad = whole.clone();
        bad[first + HEADER + 9] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(cids(&log), vec![(0, cid(1))]);
    }

    /// The file grows a run of zeros at a time; appends in between write
    /// over them (its length stays), and a reopen reads the records up to
    /// the zeros and appends after the records, not after the zeros.
    #[test]
    fn appends_write_over_zeros_grown_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let db = db();
        let path = dir.path().join(FILE);
        let len = || std::fs::metadata(&path).unwrap().len();
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        log.append(&[pin(1)]).unwrap();
        let one = encode_record(0, &pin(1)).unwrap().len() as u64;
        assert_eq!(len(), one + GROW_BYTES);
        log.append(&[pin(2), pin(3)]).unwrap();
        assert_eq!(len(), one + GROW_BYTES, "written over the zeros");
        drop(log);
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(len(), one + GROW_BYTES, "zeros are no torn record");
        assert_eq!(cids(&log), vec![(0, cid(1)), (1, cid(2)), (2, cid(3))]);
        // Past the zeros: the file grows again, and every record is read.
        let many: Vec<Write> = (10..=250).map(pin).collect();
        let mut appended = 3;
        while len() == one + GROW_BYTES {
            log.append(&many).unwrap();
            appended += many.len();
        }
        assert!(len() > one + 2 * GROW_BYTES);
        drop(log);
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(log.load().unwrap().len(), appended);
        // Emptied: no zeros kept either.
        let keys: Vec<u64> = log.load().unwrap().iter().map(|(k, _)| *k).collect();
        log.remove(&keys).unwrap();
        assert_eq!(len(), 0);
        log.append(&[pin(4)]).unwrap();
        drop(log);
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(cids(&log), vec![(appended as u64, cid(4))]);
    }

    #[test]
    fn writes_an_older_version_queued_in_sled_move_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = db();
        let tree = db.open_tree(OLD_TREE).unwrap();
        for (k, w) in [(7u64, pin(1)), (9, Write::Unpin(cid(2)))] {
            let record = encode_record(k, &w).unwrap();
            tree.insert(k.to_be_bytes(), &record[HEADER + 8..]).unwrap();
        }
        let log = BatchLog::open(&db, Some(dir.path())).unwrap();
        assert_eq!(cids(&log), vec![(0, cid(1)), (1, cid(2))]);
        assert!(!db.tree_names().iter().any(|n| n == OLD_TREE.as_bytes()));
        drop(log);
        assert_eq!(
            cids(&BatchLog::open(&db, Some(dir.path())).unwrap()),
            vec![(0, cid(1)), (1, cid(2))]
        );
    }

    #[test]
    fn a_temporary_queue_works_without_a_folder() {
        let log = BatchLog::open(&db(), None).unwrap();
        log.append(&[pin(1)]).unwrap();
        assert_eq!(cids(&log), vec![(0, cid(1))]);
        log.remove(&[0]).unwrap();
        assert!(log.load().unwrap().is_empty());
    }
}
