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
//! Durability: blocks are appended and `fdatasync`ed before the sled batch
//! that names them is applied, so whatever sled recovers, the bytes it
//! points to are on disk. The batch also records the file's end
//! ([`META_BLOCK_END`]); at open, bytes past it (appended for a batch that
//! never committed, or zeros grown ahead) are cut. The file grows
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

/// What an append gives the caller's sled batch: each block's key and
/// place, and the file's new end.
pub(crate) type Appended = (Vec<(Vec<u8>, [u8; 16])>, u64);

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
    /// temporary file for `None`), cutting bytes past the committed end and
    /// deleting files of other generations.
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
        if len > end {
            file.set_len(end)?;
            file.sync_all()?;
        }
        Ok(Self {
            dir: dir.map(Path::to_path_buf),
            current: RwLock::new(Generation {
                number,
                file: Arc::new(file),
            }),
            end: AtomicU64::new(end),
            len: AtomicU64::new(end),
        })
    }

    /// Appends `blocks` and makes them durable; returns each one's index
    /// entry (key, place) and the new end, for the caller's sled batch.
    /// The caller holds the replica's write lock.
    pub(crate) fn append(&self, blocks: &[(Cid, Vec<u8>)]) -> Result<Appended> {
        let file = self.file();
        let start = self.end.load(Ordering::SeqCst);
        let total: usize = blocks.iter().map(|(_, b)| b.len()).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut entries = Vec::with_capacity(blocks.len());
        for (cid, block) in blocks {
            let offset = bytes.len();
            encode(block, &mut bytes);
            let stored = &bytes[offset..];
            let place = Place {
                offset: start + offset as u64,
                len: u32::try_from(stored.len())
                    .map_err(|_| DagError::Corrupt("a block over 4 GiB".into()))?,
                crc: crc32fast::hash(stored),
            };
            entries.push((cid_key(prefix::BLOCK, cid), place.encode()));
        }
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
        // Advanced even if the caller's batch then fails: the bytes are
        // dead, and the next commit's end covers them.
        self.end.store(end, Ordering::SeqCst);
        Ok((entries, end))
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
    let corrupt =
        |why: &str| DagError::Corrupt(format!("block {cid} in the delta block file: {why}"));
    match stored.split_first() {
        Some((&RAW, block)) => Ok(block.to_vec()),
        Some((&LZ4, compressed)) => {
            // The length it claims is checked before anything is allocated.
            let claimed = compressed
                .get(..4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                .ok_or_else(|| corrupt("cut short"))?;
            if claimed > MAX_BLOCK_SIZE {
                return Err(corrupt("claims a size over the block limit"));
            }
            lz4_flex::decompress_size_prepended(compressed).map_err(|e| corrupt(&e.to_string()))
        }
        _ => Err(corrupt("unknown form")),
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
