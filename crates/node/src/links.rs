//! The links of a block, by codec: what a recursive pin, GC and Bitswap
//! sessions walk. dag-pb, raw (none), dag-cbor (tag 42) and dag-json
//! (`{"/": "<cid>"}`).

use cid::Cid;

use crate::dagpb::PbNode;
use crate::{Block, DAG_CBOR, DAG_JSON, DAG_PB, NodeError, RAW};

/// The CIDs `block` links to, in order.
///
/// # Errors
/// [`NodeError::Malformed`] when the block doesn't decode as its codec;
/// [`NodeError::Unsupported`] for another codec.
pub fn links(block: &Block) -> Result<Vec<Cid>, NodeError> {
    match block.cid().codec() {
        RAW => Ok(vec![]),
        DAG_PB => Ok(PbNode::decode(block.data())?
            .links
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        DAG_CBOR => {
            let v: ipld_core::ipld::Ipld =
                serde_ipld_dagcbor::from_slice(block.data()).map_err(|e| NodeError::Malformed {
                    what: "dag-cbor block",
                    reason: e.to_string(),
                })?;
            let mut out = Vec::new();
            cbor_links(&v, &mut out);
            Ok(out)
        }
        DAG_JSON => {
            let v: serde_json::Value =
                serde_json::from_slice(block.data()).map_err(|e| NodeError::Malformed {
                    what: "dag-json block",
                    reason: e.to_string(),
                })?;
            let mut out = Vec::new();
            json_links(&v, &mut out)?;
            Ok(out)
        }
        code => Err(NodeError::Unsupported {
            what: "codec",
            code,
        }),
    }
}

fn cbor_links(v: &ipld_core::ipld::Ipld, out: &mut Vec<Cid>) {
    use ipld_core::ipld::Ipld;
    match v {
        Ipld::Link(c) => out.push(*c),
        Ipld::List(items) => items.iter().for_each(|i| cbor_links(i, out)),
        Ipld::Map(m) => m.values().for_each(|i| cbor_links(i, out)),
        _ => {}
    }
}

fn json_links(v: &serde_json::Value, out: &mut Vec<Cid>) -> Result<(), NodeError> {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            if m.len() == 1
                && let Some(Value::String(s)) = m.get("/")
            {
                let c = s.parse().map_err(|e: cid::Error| NodeError::Malformed {
                    what: "dag-json link",
                    reason: e.to_string(),
                })?;
                out.push(c);
                return Ok(());
            }
            for item in m.values() {
                json_links(item, out)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                json_links(item, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn links_of_each_codec() {
        let leaf = Block::new(RAW, Bytes::from_static(b"leaf"), false);
        assert!(links(&leaf).unwrap().is_empty());

        let cbor = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::List(vec![
            ipld_core::ipld::Ipld::Link(*leaf.cid()),
            ipld_core::ipld::Ipld::Integer(1),
        ]))
        .unwrap();
        let cbor = Block::new(DAG_CBOR, Bytes::from(cbor), false);
        assert_eq!(links(&cbor).unwrap(), [*leaf.cid()]);

        let json = format!(
            r#"{{"a":[{{"/":"{}"}}],"b":{{"/":{{"bytes":"AA"}}}}}}"#,
            leaf.cid()
        );
        let json = Block::new(DAG_JSON, Bytes::from(json), false);
        assert_eq!(links(&json).unwrap(), [*leaf.cid()]);

        let bad = Block::new(DAG_CBOR, Bytes::from_static(&[0xff]), false);
        assert!(links(&bad).is_err());
    }
}
