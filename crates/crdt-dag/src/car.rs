//! History export and import as CAR v1 (spec/crdt.md §7): roots are the heads,
//! sections are the applied delta blocks.

use std::io::{self, Read, Write};

use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::codec::to_cbor;
use crate::error::{DagError, Result};
use crate::limits::MAX_BLOCK_SIZE;
use crate::replica::{Replica, SyncReport};

/// Largest CAR header accepted.
pub const MAX_CAR_HEADER: usize = 1 << 20;
/// Largest CAR section accepted: a block plus its CID.
pub const MAX_CAR_SECTION: usize = MAX_BLOCK_SIZE + 64;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    roots: Vec<Cid>,
    version: u64,
}

fn write_varint<W: Write>(w: &mut W, n: u64) -> io::Result<()> {
    let mut buf = unsigned_varint::encode::u64_buffer();
    w.write_all(unsigned_varint::encode::u64(n, &mut buf))
}

/// Reads a varint; `Ok(None)` on a clean end of stream before its first byte.
fn read_varint<R: Read>(r: &mut R) -> Result<Option<u64>> {
    let mut buf = [0u8; 10];
    for i in 0..buf.len() {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(DagError::Car("truncated varint".into()))
            };
        }
        buf[i] = b[0];
        if b[0] & 0x80 == 0 {
            let (n, _) = unsigned_varint::decode::u64(&buf[..=i])
                .map_err(|e| DagError::Car(format!("varint: {e}")))?;
            return Ok(Some(n));
        }
    }
    Err(DagError::Car("varint too long".into()))
}

fn read_exact_len<R: Read>(r: &mut R, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .map_err(|e| DagError::Car(format!("truncated {what}: {e}")))?;
    Ok(buf)
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarImport {
    /// The file's roots.
    pub roots: Vec<Cid>,
    /// Sections read.
    pub blocks: usize,
    /// The apply pass (rejected blocks included).
    pub report: SyncReport,
    /// Roots still not applied afterwards (their history is incomplete).
    pub unapplied_roots: Vec<Cid>,
}

impl Replica {
    /// Writes the whole applied history as CAR v1, roots = heads. Streams
    /// from disk. Returns the number of blocks written.
    pub fn export_car<W: Write>(&self, mut w: W) -> Result<usize> {
        let header = to_cbor(&Header {
            roots: self.heads()?,
            version: 1,
        })
        .map_err(DagError::Car)?;
        write_varint(&mut w, header.len() as u64)?;
        w.write_all(&header)?;
        let mut n = 0;
        for block in self.blocks() {
            let (cid, bytes) = block?;
            let cid = cid.to_bytes();
            write_varint(&mut w, (cid.len() + bytes.len()) as u64)?;
            w.write_all(&cid)?;
            w.write_all(&bytes)?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    }

    /// Reads a CAR v1 history: every block is receipt-checked like a fetched
    /// one, then everything applicable is applied. Bad blocks are reported
    /// in `report.rejected`; a malformed file is an error.
    pub fn import_car<R: Read>(&self, mut r: R) -> Result<CarImport> {
        let len = read_varint(&mut r)?.ok_or_else(|| DagError::Car("empty file".into()))?;
        if len as usize > MAX_CAR_HEADER {
            return Err(DagError::Car(format!("header of {len} bytes is too large")));
        }
        let header: Header =
            serde_ipld_dagcbor::from_slice(&read_exact_len(&mut r, len as usize, "header")?)
                .map_err(|e| DagError::Car(format!("header: {e}")))?;
        if header.version != 1 {
            return Err(DagError::Car(format!(
                "version {} is not CAR v1",
                header.version
            )));
        }
        let mut out = CarImport {
            roots: header.roots,
            ..CarImport::default()
        };
        let mut rejected = Vec::new();
        while let Some(len) = read_varint(&mut r)? {
            if len as usize > MAX_CAR_SECTION {
                return Err(DagError::Car(format!(
                    "section of {len} bytes exceeds {MAX_CAR_SECTION}"
                )));
            }
            let section = read_exact_len(&mut r, len as usize, "section")?;
            let mut cursor = io::Cursor::new(&section[..]);
            let cid = Cid::read_bytes(&mut cursor)
                .map_err(|e| DagError::Car(format!("section CID: {e}")))?;
            let data = &section[cursor.position() as usize..];
            out.blocks += 1;
            match self.ingest(&cid, data) {
                Ok(_) => {}
                Err(DagError::Rejected { cid, reason }) => rejected.push((cid, *reason)),
                Err(e) => return Err(e),
            }
        }
        out.report = self.apply_pending()?;
        out.report.rejected.splice(0..0, rejected);
        for root in &out.roots {
            if !self.is_applied(root)? {
                out.unapplied_roots.push(*root);
            }
        }
        Ok(out)
    }
}
