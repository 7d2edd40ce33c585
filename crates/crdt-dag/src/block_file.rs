//! The blocks of applied deltas, appended to one file beside the store
//! (spec/crdt.md §8): the tree keeps each block's place (`b`), the file its
//! bytes, written once.
//!
//! Why not sled: a block is tens of KB, and sled keeps values in its pages,
//! so every leaf of 16 blocks was rewritten whole (a blob of up to 700 KB)
//! each time a delta landed in it, and old copies stayed on disk until their
//! segment was half dead: the blocks, 88 bytes a pin live, took about 200
//! bytes a pin on disk. Here they take their own size, or less: each is
//! stored LZ4-compressed when that is shorter (a delta's map keys and CID
//! prefixes repeat: a block of 500 pins takes 2.1 times fewer bytes), with
//! a tag byte saying which.
//!
//! Durability: each append is one frame (a mark, its length and a CRC-32,
//! then the number of blocks, each block's length and stored form, and the
//! batch's undo data), `fdatasync`ed before the sled
//! batch that names its blocks is applied, so whatever sled recovers, the
//! bytes it points to are on disk. The batch also records the file's end
//! ([`META_BLOCK_END`]). The file is the store's redo log: a write is
//! durable once its frame is, and sled is not flushed for it. At open, the
//! frames past the recorded end (batches sled applied but had not flushed
//! when the process or machine stopped) are handed to the replica to apply
//! again ([`BlockFile::frame_at`]), and what follows them (zeros grown
//! ahead, a frame cut short) is cut. The file grows
//! [`GROW_BYTES`] of zeros at a time, synced with the append that needed
//! them, and the appends in between write over those zeros: their
//! `fdatasync` then leaves the file's size and extents alone and writes
//! only the data, no journal commit (here 0.09-0.13 ms and 40-51 µs of
//! CPU instead of 0.13-0.20 ms and 72-75 µs, spec/crdt.md §8; a writer
//! syncs once for every delta it commits). Removed blocks leave dead bytes until
//! [`BlockFile::compact_if_worth`] copies the live ones to a new file of the
//! next generation ([`META_BLOCK_GEN`], one sled batch moves every index
//! entry and the generation at once); a file of another generation found at
//! open is the leftover of a compaction and is deleted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cid::Cid;

use crate::error::{DagError, Result};
use crate::limits::MAX_BLOCK_SIZE;
use crate::store::{cid_key, prefix, stored_cid, u64_value};

/// The end of the block file's committed bytes.
pub(crate) const META_BLOCK_END: &[u8] = b"mblockend";
/// The generation of the block file in use (its name's suffix).
pub(crate) const META_BLOCK_GEN: &[u8] = b"mblockgen";
/// The file's name before its generation.
const FILE_PREFIX: &str = "delta-blocks.";
/// Tag of a block stored as it is.
const RAW: u8 = 0;
/// Tag of a block stored LZ4-compressed (its length prepended).
const LZ4: u8 = 1;
/// The file grows by this many bytes when an append passes its end (the
/// zeros past the last block; at most this much of the folder is padding).
const GROW_BYTES: u64 = 64 * 1024;
/// Compaction runs when at least this many bytes are dead, and as many as
/// are live.
const COMPACT_MIN_DEAD: u64 = 1 << 20;
/// The first byte of a frame (zeros grown ahead are not one).
const FRAME: u8 = 0xb7;
/// A frame's header: [`FRAME`], then its payload's length and CRC-32
/// (little-endian u32 each).
const FRAME_HEADER: usize = 9;
/// Before each block in a frame's payload: its stored length (LE u32);
/// the payload starts with the number of blocks, as long.
const ENTRY_HEADER: usize = 4;

/// Where a block is in the file, as the tree keeps it (16 bytes: offset,
/// length, CRC-32 of the bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    offset: u64,
    len: u32,
    crc: u32,
}

impl Place {
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.len.to_be_bytes());
        out[12..].copy_from_slice(&self.crc.to_be_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        let b: &[u8; 16] = b
            .try_into()
            .map_err(|_| DagError::Corrupt("block place of the wrong size".into()))?;
        Ok(Self {
            offset: u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            len: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            crc: u32::from_be_bytes(b[12..].try_into().expect("4 bytes")),
        })
    }
}

/// What an append gives the caller's sled batch.
#[derive(Debug)]
pub(crate) struct Appended {
    /// Each block's key and place.
    pub(crate) places: Vec<(Vec<u8>, [u8; 16])>,
    /// Where the frame begins ([`BlockFile::forget_since`] if the batch fails).
    pub(crate) start: u64,
    /// The file's new end.
    pub(crate) end: u64,
}

/// A frame found past the committed end at open: its blocks (CID, block,
/// place), in the order they were applied, its batch's undo data, and
/// where it ends.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) blocks: Vec<(Cid, Vec<u8>, [u8; 16])>,
    pub(crate) undo: Vec<u8>,
    pub(crate) end: u64,
}

/// The open file and its generation; swapped whole by a compaction.
#[derive(Debug)]
struct Generation {
    number: u64,
    file: Arc<File>,
}

/// The append-only file of applied delta blocks. Appends are serialised
/// by the replica's write lock; reads take the generation's read lock
/// around the index lookup and the read, so a compaction (which takes it
/// for writing to swap files) never pairs an old place with a new file.
#[derive(Debug)]
pub(crate) struct BlockFile {
    /// The folder of the file; `None`: an unnamed temporary file.
    dir: Option<PathBuf>,
    current: RwLock<Generation>,
    /// Where the next block goes (past every committed byte).
    end: AtomicU64,
    /// The file's length: past `end`, zeros an append writes over (or
    /// bytes of an append whose batch failed).
    len: AtomicU64,
}

impl BlockFile {
    /// Opens the block file that `tree` names, in `dir` (an unnamed
    /// temporary file for `None`), deleting files of other generations.
    /// Bytes past the committed end stay until the replica has read the
    /// frames there ([`BlockFile::frame_at`]) and calls
    /// [`BlockFile::cut_at`].
    pub(crate) fn open(dir: Option<&Path>, tree: &sled::Tree) -> Result<Self> {
        let number = u64_value(tree.get(META_BLOCK_GEN)?);
        let end = u64_value(tree.get(META_BLOCK_END)?);
        let file = match dir {
            Some(dir) => {
                remove_other_generations(dir, number)?;
                let path = file_path(dir, number);
                let existed = path.exists();
                let file = open_file(&path, false)?;
                if !existed {
                    sync_dir(dir)?;
                }
                file
            }
            None => temporary_file()?,
        };
        let len = file.metadata()?.len();
        if len < end {
            return Err(DagError::Corrupt(format!(
                "the delta block file has {len} bytes, the store names {end}"
            )));
        }
        Ok(Self {
            dir: dir.map(Path::to_path_buf),
            current: RwLock::new(Generation {
                number,
                file: Arc::new(file),
            }),
            end: AtomicU64::new(end),
            len: AtomicU64::new(len),
        })
    }

    /// The end of the committed bytes (where the next frame goes).
    pub(crate) fn end(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// The frame at `at`, if a whole one is there (its mark, a length
    /// within the file, its CRC). `None` ends the frames: zeros grown
    /// ahead, the end of the file, or a frame cut short by a crash (never
    /// acknowledged: an append is synced before anything reports it).
    ///
    /// # Errors
    /// [`DagError::Corrupt`] for a frame whose CRC holds but whose blocks
    /// don't parse.
    pub(crate) fn frame_at(&self, at: u64) -> Result<Option<Frame>> {
        let file = self.file();
        let len = self.len.load(Ordering::SeqCst);
        if at + FRAME_HEADER as u64 > len {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER];
        file.read_exact_at(&mut header, at)?;
        let size = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[5..].try_into().expect("4 bytes"));
        let payload_at = at + FRAME_HEADER as u64;
        if header[0] != FRAME || size == 0 || payload_at + u64::from(size) > len {
            return Ok(None);
        }
        let mut payload = vec![0u8; size as usize];
        file.read_exact_at(&mut payload, payload_at)?;
        if crc32fast::hash(&payload) != crc {
            return Ok(None);
        }
        let corrupt = |why: String| {
            DagError::Corrupt(format!("the frame at {at} of the delta block file: {why}"))
        };
        let count = payload
            .get(..ENTRY_HEADER)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| corrupt("no block count".into()))?;
        let mut blocks = Vec::new();
        let mut pos = ENTRY_HEADER;
        for _ in 0..count {
            let n = payload
                .get(pos..pos + ENTRY_HEADER)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| corrupt("a block's length cut short".into()))?;
            pos += ENTRY_HEADER;
            let stored = payload
                .get(pos..pos + n as usize)
                .ok_or_else(|| corrupt("a block past its end".into()))?;
            let block = unstore(stored).map_err(corrupt)?;
            let place = Place {
                offset: payload_at + pos as u64,
                len: n,
                crc: crc32fast::hash(stored),
            };
            blocks.push((crate::codec::block_cid(&block), block, place.encode()));
            pos += n as usize;
        }
        Ok(Some(Frame {
            blocks,
            undo: payload[pos..].to_vec(),
            end: payload_at + u64::from(size),
        }))
    }

    /// Cuts the file at `at`, the end of the frames read back at open (the
    /// store now records it): what follows is dead. The caller holds the
    /// replica's write lock.
    pub(crate) fn cut_at(&self, at: u64) -> Result<()> {
        let file = self.file();
        if file.metadata()?.len() != at {
            file.set_len(at)?;
            file.sync_all()?;
        }
        self.end.store(at, Ordering::SeqCst);
        self.len.store(at, Ordering::SeqCst);
        Ok(())
    }

    /// Appends `blocks` and the batch's `undo` data as one frame and makes
    /// them durable; returns each block's index entry (key, place), where
    /// the frame starts and the new end, for the caller's sled batch. The
    /// caller holds the replica's write lock.
    pub(crate) fn append(&self, blocks: &[(Cid, Vec<u8>)], undo: &[u8]) -> Result<Appended> {
        let file = self.file();
        let start = self.end.load(Ordering::SeqCst);
        let total: usize = blocks.iter().map(|(_, b)| ENTRY_HEADER + b.len()).sum();
        let mut bytes = Vec::with_capacity(FRAME_HEADER + ENTRY_HEADER + total + undo.len());
        bytes.resize(FRAME_HEADER, 0);
        let too_big = || DagError::Corrupt("a delta block file frame over 4 GiB".into());
        let count = u32::try_from(blocks.len()).map_err(|_| too_big())?;
        bytes.extend_from_slice(&count.to_le_bytes());
        let mut entries = Vec::with_capacity(blocks.len());
        for (cid, block) in blocks {
            let len_at = bytes.len();
            bytes.extend_from_slice(&[0; ENTRY_HEADER]);
            let offset = bytes.len();
            encode(block, &mut bytes);
            let len = u32::try_from(bytes.len() - offset).map_err(|_| too_big())?;
            bytes[len_at..offset].copy_from_slice(&len.to_le_bytes());
            let place = Place {
                offset: start + offset as u64,
                len,
                crc: crc32fast::hash(&bytes[offset..]),
            };
            entries.push((cid_key(prefix::BLOCK, cid), place.encode()));
        }
        bytes.extend_from_slice(undo);
        let size = u32::try_from(bytes.len() - FRAME_HEADER).map_err(|_| too_big())?;
        let crc = crc32fast::hash(&bytes[FRAME_HEADER..]);
        bytes[0] = FRAME;
        bytes[1..5].copy_from_slice(&size.to_le_bytes());
        bytes[5..FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
        let end = start + bytes.len() as u64;
        file.write_all_at(&bytes, start)?;
        // Past the file's length: zeros up to the next step, synced with
        // the data (one sync for both and the new size).
        let grown =
            (end > self.len.load(Ordering::SeqCst)).then(|| end.next_multiple_of(GROW_BYTES));
        if let Some(grown) = grown {
            file.write_all_at(&vec![0; (grown - end) as usize], end)?;
        }
        file.sync_data()?;
        if let Some(grown) = grown {
            self.len.store(grown, Ordering::SeqCst);
        }
        self.end.store(end, Ordering::SeqCst);
        Ok(Appended {
            places: entries,
            start,
            end,
        })
    }

    /// Undoes the append that began at `start`, whose sled batch failed:
    /// its bytes are zeroed (so no open replays a delta that was never
    /// acknowledged) and the next append goes there. Best effort: if the
    /// zeros can't be written either, the frame stays until an append
    /// writes over it, and an open before that applies it.
    pub(crate) fn forget_since(&self, start: u64) {
        let end = self.end.load(Ordering::SeqCst);
        if end > start {
            let file = self.file();
            let zeroed = file
                .write_all_at(&vec![0; (end - start) as usize], start)
                .and_then(|()| file.sync_data());
            drop(zeroed);
        }
        self.end.store(start, Ordering::SeqCst);
    }

    /// The block of `cid`, if the tree names one. Checked against its CRC.
    pub(crate) fn get(&self, tree: &sled::Tree, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let current = self.current.read().expect("block file lock poisoned");
        let Some(place) = tree.get(cid_key(prefix::BLOCK, cid))? else {
            return Ok(None);
        };
        read_at(&current.file, &Place::decode(&place)?, cid).map(Some)
    }

    /// Every block the tree names, in CID byte order, read lazily.
    pub(crate) fn iter(
        self: &Arc<Self>,
        tree: &sled::Tree,
    ) -> impl Iterator<Item = Result<(Cid, Vec<u8>)>> + use<> {
        let this = Arc::clone(self);
        let lookup = tree.clone();
        tree.scan_prefix([prefix::BLOCK])
            .keys()
            .filter_map(move |k| {
                let found = (|| {
                    let k = k?;
                    let cid = stored_cid(&k[1..])?;
                    // Looked up again under the lock: a compaction may have
                    // moved it, a prune meanwhile removed it (then skipped).
                    Ok(this.get(&lookup, &cid)?.map(|block| (cid, block)))
                })();
                found.transpose()
            })
    }

    /// Copies the live blocks to a new file when at least half of this one
    /// (and [`COMPACT_MIN_DEAD`]) is dead. The caller holds the replica's
    /// write lock (no append meanwhile); reads go on from the old file until
    /// the swap.
    pub(crate) fn compact_if_worth(&self, tree: &sled::Tree) -> Result<bool> {
        let end = self.end.load(Ordering::SeqCst);
        let mut live = 0u64;
        for kv in tree.scan_prefix([prefix::BLOCK]) {
            live += u64::from(Place::decode(&kv?.1)?.len);
        }
        let dead = end.saturating_sub(live);
        if dead < COMPACT_MIN_DEAD || dead < live {
            return Ok(false);
        }
        let (old, next) = {
            let current = self.current.read().expect("block file lock poisoned");
            (Arc::clone(&current.file), current.number + 1)
        };
        let new = match &self.dir {
            Some(dir) => {
                let file = open_file(&file_path(dir, next), true)?;
                sync_dir(dir)?;
                file
            }
            None => temporary_file()?,
        };
        let mut batch = sled::Batch::default();
        let mut at = 0u64;
        for kv in tree.scan_prefix([prefix::BLOCK]) {
            let (k, v) = kv?;
            let cid = stored_cid(&k[1..])?;
            let place = Place::decode(&v)?;
            let stored = read_stored(&old, &place, &cid)?;
            new.write_all_at(&stored, at)?;
            batch.insert(
                k,
                &Place {
                    offset: at,
                    ..place
                }
                .encode()[..],
            );
            at += u64::from(place.len);
        }
        new.sync_all()?;
        batch.insert(META_BLOCK_GEN, &next.to_be_bytes());
        batch.insert(META_BLOCK_END, &at.to_be_bytes());
        {
            let mut current = self.current.write().expect("block file lock poisoned");
            tree.apply_batch(batch)?;
            tree.flush()?;
            *current = Generation {
                number: next,
                file: Arc::new(new),
            };
            self.end.store(at, Ordering::SeqCst);
            self.len.store(at, Ordering::SeqCst);
        }
        if let Some(dir) = &self.dir {
            std::fs::remove_file(file_path(dir, next - 1))?;
        }
        Ok(true)
    }

    fn file(&self) -> Arc<File> {
        Arc::clone(&self.current.read().expect("block file lock poisoned").file)
    }
}

/// Appends `block` to `out` as stored: a tag, then the block or its LZ4
/// form, whichever is shorter.
fn encode(block: &[u8], out: &mut Vec<u8>) {
    let compressed = lz4_flex::compress_prepend_size(block);
    if compressed.len() < block.len() {
        out.push(LZ4);
        out.extend_from_slice(&compressed);
    } else {
        out.push(RAW);
        out.extend_from_slice(block);
    }
}

/// The stored bytes at `place`, checked against its CRC.
fn read_stored(file: &File, place: &Place, cid: &Cid) -> Result<Vec<u8>> {
    let mut stored = vec![0u8; place.len as usize];
    file.read_exact_at(&mut stored, place.offset)?;
    if crc32fast::hash(&stored) != place.crc {
        return Err(DagError::Corrupt(format!(
            "block {cid} in the delta block file fails its checksum"
        )));
    }
    Ok(stored)
}

/// The block at `place`.
fn read_at(file: &File, place: &Place, cid: &Cid) -> Result<Vec<u8>> {
    let stored = read_stored(file, place, cid)?;
    unstore(&stored)
        .map_err(|why| DagError::Corrupt(format!("block {cid} in the delta block file: {why}")))
}

/// The block a stored form holds; why not, if it is damaged.
fn unstore(stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    match stored.split_first() {
        Some((&RAW, block)) => Ok(block.to_vec()),
        Some((&LZ4, compressed)) => {
            // The length it claims is checked before anything is allocated.
            let claimed = compressed
                .get(..4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                .ok_or("cut short")?;
            if claimed > MAX_BLOCK_SIZE {
                return Err("claims a size over the block limit".into());
            }
            lz4_flex::decompress_size_prepended(compressed).map_err(|e| e.to_string())
        }
        _ => Err("unknown form".into()),
    }
}

fn file_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{generation}"))
}

/// Deletes block files of generations other than `keep` (what a
/// compaction cut short, or finished without deleting its source).
fn remove_other_generations(dir: &Path, keep: u64) -> Result<()> {
    let keep = format!("{FILE_PREFIX}{keep}");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(FILE_PREFIX) && *name != keep {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Opens (creating) a block file for reading and writing, emptied first
/// when `truncate`.
fn open_file(path: &Path, truncate: bool) -> Result<File> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)?)
}

/// Makes a file's creation (or removal) in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// A file with no name, gone when closed (a temporary replica's).
fn temporary_file() -> Result<File> {
    Ok(tempfile::tempfile()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_in_file(stored: &[u8]) -> (File, Place) {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(stored, 0).unwrap();
        let place = Place {
            offset: 0,
            len: stored.len() as u32,
            crc: crc32fast::hash(stored),
        };
        (file, place)
    }

    #[test]
    fn blocks_read_back_whether_stored_compressed_or_not() {
        let cid = crate::codec::block_cid(b"x");
        let repetitive = b"opcpinccidX$".repeat(500);
        let random: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for (block, tag) in [(&repetitive[..], LZ4), (&random[..], RAW)] {
            let mut stored = Vec::new();
            encode(block, &mut stored);
            assert_eq!(stored[0], tag);
            let (file, place) = stored_in_file(&stored);
            assert_eq!(read_at(&file, &place, &cid).unwrap(), block);
        }
    }

    /// Appends are frames read back whole; one whose batch failed is
    /// zeroed (no frame for an open to replay) and the next goes there.
    #[test]
    fn a_forgotten_append_leaves_no_frame_and_the_next_one_takes_its_place() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let file = BlockFile::open(None, &tree).unwrap();
        let blocks = |b: &[&[u8]]| -> Vec<(Cid, Vec<u8>)> {
            b.iter()
                .map(|b| (crate::codec::block_cid(b), b.to_vec()))
                .collect()
        };
        let repetitive = b"opcpinccidX$".repeat(100);
        let first = file
            .append(&blocks(&[b"one", &repetitive]), b"undo data")
            .unwrap();
        let second = file.append(&blocks(&[b"two"]), &[]).unwrap();
        assert_eq!((first.start, second.start), (0, first.end));
        let frame = file.frame_at(0).unwrap().unwrap();
        assert_eq!(frame.end, first.end);
        assert_eq!(frame.undo, b"undo data");
        let read: Vec<_> = frame
            .blocks
            .iter()
            .map(|(c, b, _)| (*c, b.clone()))
            .collect();
        assert_eq!(read, blocks(&[b"one", &repetitive]));
        let places: Vec<_> = frame.blocks.iter().map(|(_, _, p)| *p).collect();
        assert_eq!(
            places,
            first.places.iter().map(|(_, p)| *p).collect::<Vec<_>>()
        );

        file.forget_since(second.start);
        assert_eq!(file.end(), second.start);
        assert!(file.frame_at(second.start).unwrap().is_none(), "zeroed");
        let third = file.append(&blocks(&[b"three"]), &[]).unwrap();
        assert_eq!(third.start, second.start);
        let frame = file.frame_at(third.start).unwrap().unwrap();
        assert_eq!(frame.blocks[0].1, b"three");
        assert!(file.frame_at(frame.end).unwrap().is_none());
    }

    #[test]
    fn a_stored_block_claiming_a_size_over_the_limit_is_refused_unread() {
        let cid = crate::codec::block_cid(b"x");
        let mut stored = vec![LZ4];
        stored.extend_from_slice(&(MAX_BLOCK_SIZE as u32 + 1).to_le_bytes());
        stored.extend_from_slice(&[0; 16]);
        let (file, place) = stored_in_file(&stored);
        let err = read_at(&file, &place, &cid).unwrap_err();
        assert!(err.to_string().contains("over the block limit"), "{err}");
        let (file, place) = stored_in_file(&[7, 1, 2, 3]);
        let err = read_at(&file, &place, &cid).unwrap_err();
        assert!(err.to_string().contains("unknown form"), "{err}");
    }
}
