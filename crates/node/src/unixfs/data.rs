//! The UnixFS `Data` protobuf (proto2), carried in a dag-pb node's data
//! field: what kind of node it is, inline file bytes, the file size and
//! the sizes of the children's file data, and optional metadata.
//!
//! Encoded as boxo's generated code does: fields in number order, optional
//! fields only when set, `blocksizes` unpacked (proto2's default).

use bytes::Bytes;

use crate::NodeError;

/// `Data.DataType`: what a UnixFS node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataType {
    /// A leaf of file data (the trickle layout's leaves).
    Raw,
    /// A directory: its links are the entries.
    Directory,
    /// A file, or a part of one: inline data, then its children's data.
    File,
    /// Metadata (unused by Kubo's importer).
    Metadata,
    /// A symbolic link: the data is the target.
    Symlink,
    /// A node of a HAMT-sharded directory.
    HamtShard,
}

impl DataType {
    fn code(self) -> u64 {
        match self {
            DataType::Raw => 0,
            DataType::Directory => 1,
            DataType::File => 2,
            DataType::Metadata => 3,
            DataType::Symlink => 4,
            DataType::HamtShard => 5,
        }
    }

    fn from_code(code: u64) -> Result<Self, NodeError> {
        Ok(match code {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HamtShard,
            other => return Err(malformed(format!("unknown Type {other}"))),
        })
    }
}

/// `IPFSTimestamp`: a modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixTime {
    /// Seconds since (or, negative, before) the Unix epoch.
    pub seconds: i64,
    /// The fraction of a second, in nanoseconds (`None`: absent).
    pub nanos: Option<u32>,
}

/// The UnixFS `Data` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// `Type` (required).
    pub kind: DataType,
    /// `Data`: file bytes inline in this node, or a symlink's target.
    pub data: Option<Bytes>,
    /// `filesize`: the bytes of file below (and in) this node.
    pub filesize: Option<u64>,
    /// `blocksizes`: the file bytes under each link, in link order.
    pub blocksizes: Vec<u64>,
    /// `hashType`: the HAMT's hash function (murmur3-x64-64 = 0x22).
    pub hash_type: Option<u64>,
    /// `fanout`: the HAMT's width.
    pub fanout: Option<u64>,
    /// `mode`: POSIX permission bits.
    pub mode: Option<u32>,
    /// `mtime`: modification time.
    pub mtime: Option<UnixTime>,
}

impl Data {
    /// A message of `kind` with every optional field absent.
    pub fn new(kind: DataType) -> Self {
        Data {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// The file size this node stands for: `filesize` when present, else
    /// its inline data plus its blocksizes.
    pub fn file_size(&self) -> u64 {
        self.filesize.unwrap_or_else(|| {
            self.data.as_ref().map_or(0, |d| d.len() as u64) + self.blocksizes.iter().sum::<u64>()
        })
    }

    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(0, Bytes::len) + 16);
        put_varint_field(&mut out, 1, self.kind.code());
        if let Some(d) = &self.data {
            put_key(&mut out, 2, 2);
            put_varint(&mut out, d.len() as u64);
            out.extend_from_slice(d);
        }
        if let Some(s) = self.filesize {
            put_varint_field(&mut out, 3, s);
        }
        for &b in &self.blocksizes {
            put_varint_field(&mut out, 4, b);
        }
        if let Some(h) = self.hash_type {
            put_varint_field(&mut out, 5, h);
        }
        if let Some(f) = self.fanout {
            put_varint_field(&mut out, 6, f);
        }
        if let Some(m) = self.mode {
            put_varint_field(&mut out, 7, u64::from(m));
        }
        if let Some(t) = self.mtime {
            let mut inner = Vec::new();
            // int64: negative values are ten-byte two's complement varints.
            put_varint_field(&mut inner, 1, t.seconds as u64);
            if let Some(n) = t.nanos {
                put_key(&mut inner, 2, 5);
                inner.extend_from_slice(&n.to_le_bytes());
            }
            put_key(&mut out, 8, 2);
            put_varint(&mut out, inner.len() as u64);
            out.extend_from_slice(&inner);
        }
        out
    }

    /// Decodes a `Data` message. Unknown fields are skipped, as protobuf
    /// readers do.
    ///
    /// # Errors
    /// [`NodeError::Malformed`] for bytes that aren't one (including a
    /// missing `Type`).
    pub fn decode(bytes: &[u8]) -> Result<Self, NodeError> {
        let mut kind = None;
        let mut msg = Data::new(DataType::Raw);
        let mut reader = Reader(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (1, Value::Varint(v)) => kind = Some(DataType::from_code(v)?),
                (2, Value::Bytes(d)) => msg.data = Some(Bytes::copy_from_slice(d)),
                (3, Value::Varint(v)) => msg.filesize = Some(v),
                (4, Value::Varint(v)) => msg.blocksizes.push(v),
                (4, Value::Bytes(packed)) => {
                    // Packed encoding is accepted on input, as protobuf
                    // requires of readers.
                    let mut r = Reader(packed);
                    while !r.0.is_empty() {
                        msg.blocksizes.push(r.varint()?);
                    }
                }
                (5, Value::Varint(v)) => msg.hash_type = Some(v),
                (6, Value::Varint(v)) => msg.fanout = Some(v),
                (7, Value::Varint(v)) => {
                    msg.mode = Some(u32::try_from(v).map_err(|_| malformed("mode out of range"))?);
                }
                (8, Value::Bytes(t)) => msg.mtime = Some(decode_time(t)?),
                (1..=8, _) => return Err(malformed(format!("wrong wire type for field {field}"))),
                _ => {}
            }
        }
        msg.kind = kind.ok_or_else(|| malformed("missing Type"))?;
        Ok(msg)
    }
}

fn decode_time(bytes: &[u8]) -> Result<UnixTime, NodeError> {
    let mut seconds = None;
    let mut nanos = None;
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Varint(v)) => seconds = Some(v as i64),
            (2, Value::Fixed32(n)) => nanos = Some(n),
            (1 | 2, _) => return Err(malformed("wrong wire type in mtime")),
            _ => {}
        }
    }
    Ok(UnixTime {
        seconds: seconds.ok_or_else(|| malformed("mtime without seconds"))?,
        nanos,
    })
}

fn malformed(reason: impl Into<String>) -> NodeError {
    NodeError::Malformed {
        what: "UnixFS Data",
        reason: reason.into(),
    }
}

fn put_varint(out: &mut Vec<u8>, n: u64) {
    cluster_codec::varint::encode(n, out);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(out, (field << 3) | wire);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_key(out, field, 0);
    put_varint(out, v);
}

/// A protobuf field value.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Reads protobuf fields off a buffer.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, NodeError> {
        // Protobuf varints may be up to ten bytes (negative int64s);
        // unsigned_varint refuses non-minimal encodings, which protobuf
        // writers never produce.
        let (v, rest) =
            unsigned_varint::decode::u64(self.0).map_err(|e| malformed(e.to_string()))?;
        self.0 = rest;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], NodeError> {
        if self.0.len() < n {
            return Err(malformed("truncated field"));
        }
        let (v, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(v)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, NodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| malformed("length overflow"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => return Err(malformed(format!("unsupported wire type {w}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_file_and_directory_encode_as_kubo_does() {
        // Kubo's empty file: Type=File, filesize=0, no Data field.
        let mut empty = Data::new(DataType::File);
        empty.filesize = Some(0);
        assert_eq!(empty.encode(), [0x08, 0x02, 0x18, 0x00]);
        assert_eq!(Data::new(DataType::Directory).encode(), [0x08, 0x01]);
    }

    #[test]
    fn a_leaf_and_an_internal_node_encode_field_by_field() {
        let mut leaf = Data::new(DataType::Raw);
        leaf.data = Some(Bytes::from_static(b"hi"));
        leaf.filesize = Some(2);
        // Type=0 is written: proto2 required fields are always present.
        assert_eq!(
            leaf.encode(),
            [0x08, 0x00, 0x12, 0x02, b'h', b'i', 0x18, 0x02]
        );

        let mut inner = Data::new(DataType::File);
        inner.filesize = Some(262_145);
        inner.blocksizes = vec![262_144, 1];
        assert_eq!(
            inner.encode(),
            [
                0x08, 0x02, 0x18, 0x81, 0x80, 0x10, 0x20, 0x80, 0x80, 0x10, 0x20, 0x01
            ]
        );
        assert_eq!(Data::decode(&inner.encode()).unwrap(), inner);
        assert_eq!(inner.file_size(), 262_145);
    }

    #[test]
    fn every_field_round_trips() {
        let msg = Data {
            kind: DataType::HamtShard,
            data: Some(Bytes::from_static(&[1, 2, 3])),
            filesize: Some(7),
            blocksizes: vec![1, 2, 300],
            hash_type: Some(0x22),
            fanout: Some(256),
            mode: Some(0o644),
            mtime: Some(UnixTime {
                seconds: -5,
                nanos: Some(999),
            }),
        };
        assert_eq!(Data::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn packed_blocksizes_and_unknown_fields_are_read() {
        // blocksizes packed [1, 2], then an unknown field 15 (varint 9).
        let bytes = [0x08, 0x02, 0x22, 0x02, 0x01, 0x02, 0x78, 0x09];
        let msg = Data::decode(&bytes).unwrap();
        assert_eq!(msg.blocksizes, [1, 2]);
        assert_eq!(msg.file_size(), 3);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Data::decode(&[]).is_err(), "Type is required");
        assert!(Data::decode(&[0x08, 0x09]).is_err(), "unknown Type");
        assert!(Data::decode(&[0x12, 0x05, 0x01]).is_err(), "truncated");
        assert!(Data::decode(&[0x0a, 0x00]).is_err(), "Type as bytes");
    }
}
