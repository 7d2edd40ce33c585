//! Fixed-size chunking (`size-N`, Kubo's only deterministic chunker): every
//! chunk is N bytes but the last, which is shorter and never empty.

use bytes::{Bytes, BytesMut};

use crate::NodeError;

/// Kubo's default chunk size (`size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// The largest chunk Kubo accepts: the 2 MiB Bitswap block limit less 256
/// bytes for UnixFS framing (boxo's `ChunkSizeLimit`).
pub const MAX_CHUNK_SIZE: usize = 2 * 1024 * 1024 - 256;

/// Cuts a byte stream into fixed-size chunks, holding at most one chunk.
#[derive(Debug)]
pub struct Chunker {
    size: usize,
    buf: BytesMut,
}

impl Chunker {
    /// A chunker of `size`-byte chunks.
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] for 0; [`NodeError::TooLarge`] above
    /// [`MAX_CHUNK_SIZE`].
    pub fn new(size: usize) -> Result<Self, NodeError> {
        if size == 0 {
            return Err(NodeError::InvalidArgument {
                what: "chunker",
                reason: "chunk size must be greater than 0".into(),
            });
        }
        if size > MAX_CHUNK_SIZE {
            return Err(NodeError::TooLarge {
                what: "chunk size",
                size,
                max: MAX_CHUNK_SIZE,
            });
        }
        Ok(Chunker {
            size,
            buf: BytesMut::new(),
        })
    }

    /// Parses Kubo's `--chunker` value; only `size-N` (and `""` or
    /// `default`, meaning `size-262144`) are supported.
    ///
    /// # Errors
    /// [`NodeError::InvalidArgument`] for anything else (`rabin`,
    /// `buzhash`, malformed sizes); the errors of [`Chunker::new`].
    pub fn parse(spec: &str) -> Result<usize, NodeError> {
        let invalid = |reason: String| NodeError::InvalidArgument {
            what: "chunker",
            reason,
        };
        if spec.is_empty() || spec == "default" {
            return Ok(DEFAULT_CHUNK_SIZE);
        }
        let Some(n) = spec.strip_prefix("size-") else {
            return Err(invalid(format!(
                "unsupported chunker {spec:?} (only size-N is)"
            )));
        };
        let size: usize = n
            .parse()
            .map_err(|_| invalid(format!("bad chunk size in {spec:?}")))?;
        Self::new(size)?;
        Ok(size)
    }

    /// The chunk size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Takes `bytes` in; hands every completed chunk to `out`.
    ///
    /// # Errors
    /// Whatever `out` returns.
    pub fn push(
        &mut self,
        mut bytes: &[u8],
        out: &mut dyn FnMut(Bytes) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        while !bytes.is_empty() {
            let take = (self.size - self.buf.len()).min(bytes.len());
            if self.buf.is_empty() && take == self.size {
                // A whole chunk straight from the input: one copy.
                out(Bytes::copy_from_slice(&bytes[..take]))?;
            } else {
                if self.buf.capacity() == 0 {
                    self.buf.reserve(self.size);
                }
                self.buf.extend_from_slice(&bytes[..take]);
                if self.buf.len() == self.size {
                    out(self.buf.split().freeze())?;
                }
            }
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// The last, short chunk, if any bytes are left.
    pub fn finish(self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(size: usize, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(size).unwrap();
        let mut out = Vec::new();
        for p in pieces {
            c.push(p, &mut |b| {
                out.push(b.to_vec());
                Ok(())
            })
            .unwrap();
        }
        out.extend(c.finish().map(|b| b.to_vec()));
        out
    }

    #[test]
    fn chunks_are_full_but_the_last_which_is_never_empty() {
        assert!(chunks(4, &[]).is_empty());
        assert!(chunks(4, &[b""]).is_empty());
        assert_eq!(chunks(4, &[b"abcd"]), [b"abcd".to_vec()]);
        assert_eq!(
            chunks(4, &[b"ab", b"cdefghi"]),
            [b"abcd".to_vec(), b"efgh".to_vec(), b"i".to_vec()]
        );
        assert_eq!(
            chunks(3, &[b"a", b"b", b"c", b"d", b"", b"efg"]),
            [b"abc".to_vec(), b"def".to_vec(), b"g".to_vec()]
        );
    }

    #[test]
    fn how_input_is_split_into_pushes_does_not_matter() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = chunks(64, &[&data]);
        let pieces: Vec<&[u8]> = data.chunks(17).collect();
        assert_eq!(chunks(64, &pieces), whole);
        assert_eq!(whole.concat(), data);
        assert_eq!(whole.len(), 16);
    }

    #[test]
    fn kubo_chunker_strings() {
        assert_eq!(Chunker::parse("").unwrap(), DEFAULT_CHUNK_SIZE);
        assert_eq!(Chunker::parse("size-1024").unwrap(), 1024);
        assert!(Chunker::parse("size-0").is_err());
        assert!(Chunker::parse("size-x").is_err());
        assert!(Chunker::parse("rabin-16-32-64").is_err());
        assert!(Chunker::parse(&format!("size-{}", MAX_CHUNK_SIZE + 1)).is_err());
        assert!(Chunker::parse(&format!("size-{MAX_CHUNK_SIZE}")).is_ok());
    }
}
