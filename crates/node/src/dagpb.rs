//! The dag-pb codec (`PBNode`/`PBLink` protobuf): decode any, encode in the
//! canonical form (links before data; within a link: hash, name, tsize), as
//! go-codec-dagpb and Kubo do.

use bytes::Bytes;
use cid::Cid;

use crate::NodeError;

/// A link of a dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbLink {
    /// The linked block.
    pub cid: Cid,
    /// The link's name (`None`: field absent).
    pub name: Option<String>,
    /// The cumulative size of the linked DAG (`None`: field absent).
    pub tsize: Option<u64>,
}

/// A dag-pb node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbNode {
    /// Links, in order.
    pub links: Vec<PbLink>,
    /// The data field (`None`: absent).
    pub data: Option<Bytes>,
}

fn malformed(reason: impl Into<String>) -> NodeError {
    NodeError::Malformed {
        what: "dag-pb node",
        reason: reason.into(),
    }
}

fn put_varint(out: &mut Vec<u8>, n: u64) {
    cluster_codec::varint::encode(n, out);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads protobuf fields: (field number, wire type, value). Length-delimited
/// values are slices; varints are returned as numbers.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn fields(mut buf: &[u8]) -> impl Iterator<Item = Result<(u64, Value<'_>), NodeError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let step = (|| {
            let (key, rest) =
                unsigned_varint::decode::u64(buf).map_err(|e| malformed(e.to_string()))?;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    let (v, rest) =
                        unsigned_varint::decode::u64(rest).map_err(|e| malformed(e.to_string()))?;
                    buf = rest;
                    Ok((field, Value::Varint(v)))
                }
                2 => {
                    let (len, rest) =
                        unsigned_varint::decode::u64(rest).map_err(|e| malformed(e.to_string()))?;
                    let len = usize::try_from(len).map_err(|_| malformed("length overflow"))?;
                    if rest.len() < len {
                        return Err(malformed("truncated field"));
                    }
                    let (v, rest) = rest.split_at(len);
                    buf = rest;
                    Ok((field, Value::Bytes(v)))
                }
                w => Err(malformed(format!("unexpected wire type {w}"))),
            }
        })();
        if step.is_err() {
            buf = &[];
        }
        Some(step)
    })
}

impl PbNode {
    /// Decodes a dag-pb block.
    ///
    /// # Errors
    /// [`NodeError::Malformed`] for bytes that are not a `PBNode`.
    pub fn decode(bytes: &[u8]) -> Result<Self, NodeError> {
        let mut node = PbNode::default();
        for f in fields(bytes) {
            match f? {
                (1, Value::Bytes(d)) => node.data = Some(Bytes::copy_from_slice(d)),
                (2, Value::Bytes(l)) => node.links.push(PbLink::decode(l)?),
                (n, _) => return Err(malformed(format!("unexpected field {n}"))),
            }
        }
        Ok(node)
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.links {
            put_bytes(&mut out, 2, &l.encode());
        }
        if let Some(d) = &self.data {
            put_bytes(&mut out, 1, d);
        }
        out
    }
}

impl PbLink {
    fn decode(bytes: &[u8]) -> Result<Self, NodeError> {
        let (mut cid, mut name, mut tsize) = (None, None, None);
        for f in fields(bytes) {
            match f? {
                (1, Value::Bytes(h)) => {
                    cid = Some(Cid::try_from(h).map_err(|e| malformed(e.to_string()))?);
                }
                (2, Value::Bytes(n)) => {
                    name = Some(
                        String::from_utf8(n.to_vec())
                            .map_err(|_| malformed("link name not UTF-8"))?,
                    );
                }
                (3, Value::Varint(t)) => tsize = Some(t),
                (n, _) => return Err(malformed(format!("unexpected link field {n}"))),
            }
        }
        Ok(PbLink {
            cid: cid.ok_or_else(|| malformed("link without hash"))?,
            name,
            tsize,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &self.cid.to_bytes());
        if let Some(n) = &self.name {
            put_bytes(&mut out, 2, n.as_bytes());
        }
        if let Some(t) = self.tsize {
            put_varint(&mut out, 3 << 3);
            put_varint(&mut out, t);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_unixfs_directory_has_kubos_cid() {
        // UnixFS Data { Type: Directory } = 0x08 0x01.
        let node = PbNode {
            links: vec![],
            data: Some(Bytes::from_static(&[0x08, 0x01])),
        };
        let block = crate::Block::new(crate::DAG_PB, Bytes::from(node.encode()), true);
        assert_eq!(
            block.cid().to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
        assert_eq!(PbNode::decode(block.data()).unwrap(), node);
    }

    #[test]
    fn links_round_trip_and_garbage_is_refused() {
        let child = crate::Block::new(crate::RAW, Bytes::from_static(b"x"), false);
        let node = PbNode {
            links: vec![PbLink {
                cid: *child.cid(),
                name: Some("a".into()),
                tsize: Some(1),
            }],
            data: Some(Bytes::from_static(&[0x08, 0x01])),
        };
        assert_eq!(PbNode::decode(&node.encode()).unwrap(), node);
        assert!(PbNode::decode(&[0x12, 0x05, 0x0a]).is_err());
        assert!(PbNode::decode(&[0x1f]).is_err());
    }
}
