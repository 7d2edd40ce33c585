//! CAR v1 (spec/crdt.md §7): a varint-prefixed DAG-CBOR header
//! `{"roots": [CID...], "version": 1}`, then sections
//! `varint(len(cid) + len(block)) || cid || block`. Writing, and a reader
//! of headers and sections that bounds every length before allocating and
//! counts bytes for error messages. Verifying blocks is the caller's.

use std::io::{self, Read, Write};

use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::varint;

/// A CAR header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The roots (possibly none).
    #[serde(default)]
    pub roots: Vec<Cid>,
    /// 1 for CAR v1 (2 is the CAR v2 pragma).
    pub version: u64,
}

/// What can be wrong with a CAR stream.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// The stream failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The bytes are not a CAR file (the message says where).
    #[error("{0}")]
    Malformed(String),
    /// A length beyond what the caller accepts.
    #[error("{what} of {size} bytes exceeds {max}")]
    TooLarge {
        /// A header or a section.
        what: &'static str,
        /// Its announced size.
        size: u64,
        /// The bound.
        max: usize,
    },
}

/// Writes a CAR v1 header naming `roots`.
///
/// # Errors
/// What the writer says.
pub fn write_header<W: Write>(w: &mut W, roots: &[Cid]) -> io::Result<()> {
    let header = serde_ipld_dagcbor::to_vec(&Header {
        roots: roots.to_vec(),
        version: 1,
    })
    .map_err(io::Error::other)?;
    varint::write(w, header.len() as u64)?;
    w.write_all(&header)
}

/// Writes one section.
///
/// # Errors
/// What the writer says.
pub fn write_section<W: Write>(w: &mut W, cid: &Cid, data: &[u8]) -> io::Result<()> {
    let cid = cid.to_bytes();
    varint::write(w, (cid.len() + data.len()) as u64)?;
    w.write_all(&cid)?;
    w.write_all(data)
}

/// Reads a CAR stream's header and sections, counting bytes.
#[derive(Debug)]
pub struct CarDecoder<R> {
    reader: R,
    offset: u64,
}

impl<R: Read> CarDecoder<R> {
    /// A decoder at the start of `reader`.
    pub fn new(reader: R) -> Self {
        Self { reader, offset: 0 }
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The reader, to skip what the decoder doesn't read (CAR v2), with the
    /// offset to set after.
    pub fn reader_mut(&mut self) -> (&mut R, &mut u64) {
        (&mut self.reader, &mut self.offset)
    }

    /// Reads a header of at most `max` bytes (any version: the caller
    /// decides which it accepts).
    ///
    /// # Errors
    /// [`CarError::Malformed`] for an empty file or a bad header,
    /// [`CarError::TooLarge`] over `max`.
    pub fn read_header(&mut self, max: usize) -> Result<Header, CarError> {
        let at = self.offset;
        let len = self
            .read_varint()?
            .ok_or_else(|| CarError::Malformed("empty file".into()))?;
        if len > max as u64 {
            return Err(CarError::TooLarge {
                what: "CAR header",
                size: len,
                max,
            });
        }
        let bytes = self.read_exact_len(len as usize, "header")?;
        serde_ipld_dagcbor::from_slice(&bytes)
            .map_err(|e| CarError::Malformed(format!("header at byte {at}: {e}")))
    }

    /// Reads the next section of at most `max` bytes: its CID, its data and
    /// the byte it started at; `Ok(None)` at a clean end.
    ///
    /// # Errors
    /// [`CarError::Malformed`] for a cut or empty section or a bad CID,
    /// [`CarError::TooLarge`] over `max` (nothing of it is read).
    pub fn read_section(&mut self, max: usize) -> Result<Option<(Cid, Vec<u8>, u64)>, CarError> {
        let at = self.offset;
        let Some(len) = self.read_varint()? else {
            return Ok(None);
        };
        if len == 0 {
            return Err(CarError::Malformed(format!("empty section at byte {at}")));
        }
        if len > max as u64 {
            return Err(CarError::TooLarge {
                what: "CAR section",
                size: len,
                max,
            });
        }
        let mut section = self.read_exact_len(len as usize, "section")?;
        let mut cursor = io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor)
            .map_err(|e| CarError::Malformed(format!("CID of the section at byte {at}: {e}")))?;
        let cid_len = cursor.position() as usize;
        section.drain(..cid_len);
        Ok(Some((cid, section, at)))
    }

    fn read_varint(&mut self) -> Result<Option<u64>, CarError> {
        match varint::read(&mut self.reader) {
            Ok(Some((n, used))) => {
                self.offset += used as u64;
                Ok(Some(n))
            }
            Ok(None) => Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
                ) =>
            {
                Err(CarError::Malformed(format!("{e} at byte {}", self.offset)))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn read_exact_len(&mut self, len: usize, what: &str) -> Result<Vec<u8>, CarError> {
        let mut buf = vec![0u8; len];
        self.reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                CarError::Malformed(format!(
                    "truncated {what} at byte {}: {len} bytes announced",
                    self.offset
                ))
            } else {
                CarError::Io(e)
            }
        })?;
        self.offset += len as u64;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        let digest = cid::multihash::Multihash::<64>::wrap(0x00, &[n]).unwrap();
        Cid::new_v1(0x55, digest)
    }

    #[test]
    fn header_and_sections_round_trip_and_are_bounded() {
        let mut out = Vec::new();
        write_header(&mut out, &[cid(1)]).unwrap();
        write_section(&mut out, &cid(1), b"one").unwrap();
        write_section(&mut out, &cid(2), &[9u8; 100]).unwrap();
        let mut d = CarDecoder::new(&out[..]);
        let h = d.read_header(1 << 20).unwrap();
        assert_eq!((h.roots, h.version), (vec![cid(1)], 1));
        let (c, data, _) = d.read_section(1 << 20).unwrap().unwrap();
        assert_eq!((c, data.as_slice()), (cid(1), &b"one"[..]));
        assert!(matches!(
            d.read_section(50),
            Err(CarError::TooLarge { size, .. }) if size > 100
        ));
        let mut cut = CarDecoder::new(&out[..out.len() - 1]);
        cut.read_header(1 << 20).unwrap();
        cut.read_section(1 << 20).unwrap();
        let err = cut.read_section(1 << 20).unwrap_err();
        assert!(err.to_string().contains("truncated section"), "{err}");
        assert!(matches!(
            CarDecoder::new(&[][..]).read_header(10),
            Err(CarError::Malformed(m)) if m == "empty file"
        ));
    }
}
