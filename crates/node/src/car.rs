//! CAR v1 (content-addressed archives): reading, writing, import into the
//! [`Store`] and export of a DAG from it. The format (as in spec/crdt.md §7):
//! a varint-prefixed DAG-CBOR header `{"roots": [CID...], "version": 1}`,
//! then sections `varint(len(cid) + len(block)) || cid || block`. A CAR v2
//! file (what some tools write) is read through its v1 payload.
//!
//! Reading verifies every block against its CID and bounds every length
//! before allocating: headers to [`MAX_CAR_HEADER`], sections to
//! [`MAX_CAR_SECTION`]. Identity-hash sections carry nothing the CID
//! doesn't and are skipped.

use std::io::{self, BufReader, BufWriter, Read, Write};

use bytes::Bytes;
use cid::Cid;
use cluster_codec::car::{CarDecoder, CarError, Header, write_header, write_section};

use crate::blockstore::IDENTITY;
use crate::{Block, NodeError, Store};

/// Largest header accepted (1 MiB: room for thousands of roots).
pub const MAX_CAR_HEADER: usize = 1 << 20;
/// Largest section (CID + block) accepted: 4 MiB, the size of a whole
/// Bitswap message. Bitswap moves blocks of up to 2 MiB (Kubo's default
/// limit); the headroom lets a CAR carry the odd bigger block made with
/// Kubo's `--allow-big-block` (stored, but not served over Bitswap), while
/// still bounding what one section can make us allocate.
pub const MAX_CAR_SECTION: usize = 4 << 20;
/// Blocks stored per transaction by [`import_car`].
const IMPORT_BATCH_BLOCKS: usize = 256;
/// Bytes stored per transaction by [`import_car`].
const IMPORT_BATCH_BYTES: usize = 16 << 20;

/// The CAR v2 pragma: a v1-style header `{"version": 2}`.
const V2_PRAGMA_LEN: u64 = 11;
/// The CAR v2 fixed header after the pragma.
const V2_HEADER_LEN: u64 = 40;

fn malformed(reason: impl Into<String>) -> NodeError {
    NodeError::Malformed {
        what: "CAR file",
        reason: reason.into(),
    }
}

fn car_error(e: CarError) -> NodeError {
    match e {
        CarError::Io(e) => NodeError::Io(e),
        CarError::Malformed(reason) => malformed(reason),
        CarError::TooLarge { what, size, max } => NodeError::TooLarge {
            what,
            size: usize::try_from(size).unwrap_or(usize::MAX),
            max,
        },
    }
}

/// A streaming CAR reader: the roots, then an iterator of verified blocks.
/// Stops after the first error.
#[derive(Debug)]
pub struct CarReader<R> {
    car: CarDecoder<io::Take<BufReader<R>>>,
    roots: Vec<Cid>,
    done: bool,
}

/// Opens a CAR v1 (or v2) stream and reads its header.
///
/// # Errors
/// [`NodeError::Malformed`] for a bad or truncated header or another
/// version; [`NodeError::TooLarge`] for a header over [`MAX_CAR_HEADER`].
pub fn read_car<R: Read>(reader: R) -> Result<CarReader<R>, NodeError> {
    let mut car = CarReader {
        car: CarDecoder::new(BufReader::new(reader).take(u64::MAX)),
        roots: Vec::new(),
        done: false,
    };
    let header = car.read_header()?;
    match header.version {
        1 => car.roots = header.roots,
        2 => {
            if car.car.offset() != V2_PRAGMA_LEN {
                return Err(malformed("CAR v2 pragma of unexpected length"));
            }
            let (reader, offset) = car.car.reader_mut();
            let mut fixed = [0u8; V2_HEADER_LEN as usize];
            reader
                .read_exact(&mut fixed)
                .map_err(|e| malformed(format!("truncated CAR v2 header: {e}")))?;
            let field =
                |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().expect("8 bytes of 40"));
            let (data_offset, data_size) = (field(16), field(24));
            let skip = data_offset
                .checked_sub(V2_PRAGMA_LEN + V2_HEADER_LEN)
                .ok_or_else(|| malformed(format!("CAR v2 data offset {data_offset}")))?;
            let skipped = io::copy(&mut (&mut *reader).take(skip), &mut io::sink())?;
            if skipped != skip {
                return Err(malformed("truncated before the CAR v2 payload"));
            }
            *offset = data_offset;
            reader.set_limit(data_size);
            let inner = car.read_header()?;
            if inner.version != 1 {
                return Err(malformed(format!(
                    "CAR v2 payload of version {}",
                    inner.version
                )));
            }
            car.roots = inner.roots;
        }
        v => return Err(malformed(format!("version {v} is not CAR v1 or v2"))),
    }
    Ok(car)
}

impl<R: Read> CarReader<R> {
    /// The roots the header names (possibly none, possibly several).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    fn read_header(&mut self) -> Result<Header, NodeError> {
        self.car.read_header(MAX_CAR_HEADER).map_err(car_error)
    }

    fn next_block(&mut self) -> Result<Option<Block>, NodeError> {
        loop {
            let Some((cid, data, _)) = self.car.read_section(MAX_CAR_SECTION).map_err(car_error)?
            else {
                return Ok(None);
            };
            // Identity sections carry nothing the CID doesn't.
            if cid.hash().code() == IDENTITY {
                continue;
            }
            return Block::verified(cid, Bytes::from(data)).map(Some);
        }
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<Block, NodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_block().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

/// A streaming CAR v1 writer (buffered; [`CarWriter::finish`] flushes).
#[derive(Debug)]
pub struct CarWriter<W: Write> {
    writer: BufWriter<W>,
    blocks: u64,
    bytes: u64,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header.
    ///
    /// # Errors
    /// [`NodeError::Io`].
    pub fn new(writer: W, roots: &[Cid]) -> Result<Self, NodeError> {
        let mut writer = BufWriter::new(writer);
        write_header(&mut writer, roots)?;
        Ok(CarWriter {
            writer,
            blocks: 0,
            bytes: 0,
        })
    }

    /// Writes one section.
    ///
    /// # Errors
    /// [`NodeError::Io`].
    pub fn write(&mut self, block: &Block) -> Result<(), NodeError> {
        self.write_raw(block.cid(), block.data())
    }

    pub(crate) fn write_raw(&mut self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        write_section(&mut self.writer, cid, data)?;
        self.blocks += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Flushes; returns the blocks and block bytes written.
    ///
    /// # Errors
    /// [`NodeError::Io`].
    pub fn finish(mut self) -> Result<(u64, u64), NodeError> {
        self.writer.flush()?;
        Ok((self.blocks, self.bytes))
    }
}

/// Writes a CAR v1 file of `roots` and `blocks` (as given: no checks that
/// they form the roots' DAGs). Returns the number of blocks written.
///
/// # Errors
/// [`NodeError::Io`].
pub fn write_car<W: Write>(
    roots: &[Cid],
    blocks: impl IntoIterator<Item = Block>,
    writer: W,
) -> Result<u64, NodeError> {
    let mut car = CarWriter::new(writer, roots)?;
    for block in blocks {
        car.write(&block)?;
    }
    Ok(car.finish()?.0)
}

/// What [`import_car`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarImport {
    /// The file's roots.
    pub roots: Vec<Cid>,
    /// Blocks read (identity sections aside).
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Of those, blocks not stored before.
    pub new_blocks: u64,
    /// Whether the roots were pinned recursively.
    pub pinned: bool,
}

/// Reads a CAR file into `store`, in batches, then (with `pin_roots`) pins
/// every root recursively in one atomic step, as `ipfs dag import
/// --pin-roots` does. Holds a [`crate::GcGuard`] throughout, so a GC can't
/// take blocks between their put and the pin. Durable on return.
///
/// A failed import (a malformed, truncated or tampered file; a root whose
/// DAG is not complete in the store) pins nothing, but the verified blocks
/// before the failure stay stored, unpinned: the next GC removes them.
///
/// # Errors
/// What [`read_car`] and its blocks fail with (the first bad block is
/// [`NodeError::BadBlock`] naming it); [`NodeError::MissingBlock`] when a
/// root's DAG is not complete; [`NodeError::Db`].
pub fn import_car<R: Read>(
    store: &Store,
    reader: R,
    pin_roots: bool,
) -> Result<CarImport, NodeError> {
    let _guard = store.gc_guard();
    let car = read_car(reader)?;
    let mut out = CarImport {
        roots: car.roots().to_vec(),
        ..CarImport::default()
    };
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for block in car {
        let block = block?;
        out.blocks += 1;
        out.bytes += block.data().len() as u64;
        batch_bytes += block.data().len();
        batch.push(block);
        if batch.len() >= IMPORT_BATCH_BLOCKS || batch_bytes >= IMPORT_BATCH_BYTES {
            out.new_blocks += store.put_many(batch.drain(..))?;
            batch_bytes = 0;
        }
    }
    out.new_blocks += store.put_many(batch)?;
    if pin_roots && !out.roots.is_empty() {
        store.pin_recursive_all(&out.roots)?;
        out.pinned = true;
    }
    store.flush()?;
    Ok(out)
}

/// What [`export_car`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CarExport {
    /// Blocks written.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Writes the DAG of `root` as CAR v1 with that single root: depth-first in
/// link order, each block once (as `ipfs dag export` does). Streams from
/// the store. Export a pinned DAG: an unpinned one may lose blocks to a
/// concurrent GC, which fails the export half-way.
///
/// # Errors
/// [`NodeError::MissingBlock`] when the DAG is not complete (the writer has
/// the blocks before it); [`NodeError::Io`]; [`NodeError::Db`].
pub fn export_car<W: Write>(store: &Store, root: &Cid, writer: W) -> Result<CarExport, NodeError> {
    let mut car = CarWriter::new(writer, std::slice::from_ref(root))?;
    // The walk visits each CID once; a block reachable under two CIDs (v0
    // and v1) is written under each, as readers look blocks up by CID.
    store.walk(root, |cid, data| car.write_raw(cid, data))?;
    let (blocks, bytes) = car.finish()?;
    Ok(CarExport { blocks, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RAW;

    fn blocks() -> Vec<Block> {
        (0..3u8)
            .map(|i| Block::new(RAW, Bytes::from(vec![i; 100 * usize::from(i)]), false))
            .collect()
    }

    #[test]
    fn write_then_read_round_trips() {
        let blocks = blocks();
        let mut car = Vec::new();
        write_car(&[*blocks[1].cid()], blocks.clone(), &mut car).unwrap();
        let reader = read_car(&car[..]).unwrap();
        assert_eq!(reader.roots(), [*blocks[1].cid()]);
        assert_eq!(reader.map(Result::unwrap).collect::<Vec<_>>(), blocks);
    }

    #[test]
    fn car_v2_is_read_through_its_payload() {
        let blocks = blocks();
        let mut v1 = Vec::new();
        write_car(&[*blocks[0].cid()], blocks.clone(), &mut v1).unwrap();
        let padding = 7u64;
        let mut v2 = b"\x0a\xa1\x67version\x02".to_vec();
        v2.extend_from_slice(&[0; 16]);
        v2.extend_from_slice(&(V2_PRAGMA_LEN + V2_HEADER_LEN + padding).to_le_bytes());
        v2.extend_from_slice(&(v1.len() as u64).to_le_bytes());
        v2.extend_from_slice(&0u64.to_le_bytes());
        v2.extend_from_slice(&[0; 7]);
        v2.extend_from_slice(&v1);
        v2.extend_from_slice(b"an index the reader must not read as sections");
        let reader = read_car(&v2[..]).unwrap();
        assert_eq!(reader.roots(), [*blocks[0].cid()]);
        assert_eq!(reader.map(Result::unwrap).collect::<Vec<_>>(), blocks);
    }

    #[test]
    fn zero_length_sections_and_garbage_are_refused() {
        let mut car = Vec::new();
        write_car(&[], [], &mut car).unwrap();
        car.push(0);
        let mut reader = read_car(&car[..]).unwrap();
        assert!(reader.next().unwrap().is_err());
        assert!(reader.next().is_none(), "the reader stops after an error");
        assert!(read_car(&b"\x05hello"[..]).is_err());
        assert!(read_car(&b""[..]).is_err());
    }
}
