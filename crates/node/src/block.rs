//! [`Block`]: bytes and the CID that names them, verified on construction
//! from untrusted sources.

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

use crate::NodeError;

/// Multicodec: raw bytes.
pub const RAW: u64 = 0x55;
/// Multicodec: dag-pb (UnixFS).
pub const DAG_PB: u64 = 0x70;
/// Multicodec: dag-cbor.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec: dag-json.
pub const DAG_JSON: u64 = 0x0129;
/// Multihash: sha2-256.
pub const SHA2_256: u64 = 0x12;

/// A block: its CID and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Bytes,
}

impl Block {
    /// A block of `codec` hashed with sha2-256, as CIDv1 (CIDv0 for dag-pb
    /// when `v0`).
    pub fn new(codec: u64, data: Bytes, v0: bool) -> Self {
        let hash = Code::Sha2_256.digest(&data);
        let cid = if v0 && codec == DAG_PB {
            Cid::new_v0(hash).expect("sha2-256 is a valid CIDv0 hash")
        } else {
            Cid::new_v1(codec, hash)
        };
        Self { cid, data }
    }

    /// A block received from elsewhere: its bytes must hash to `cid`.
    ///
    /// # Errors
    /// [`NodeError::BadBlock`] when they don't; [`NodeError::Unsupported`]
    /// for a hash function this node can't compute.
    pub fn verified(cid: Cid, data: Bytes) -> Result<Self, NodeError> {
        let code = cid.hash().code();
        let hasher =
            Code::try_from(code).map_err(|_| NodeError::Unsupported { what: "hash", code })?;
        if hasher.digest(&data).digest() != cid.hash().digest() {
            return Err(NodeError::BadBlock {
                cid: cid.to_string(),
            });
        }
        Ok(Self { cid, data })
    }

    /// The block an identity CID holds in its digest (`None` for any other
    /// CID): nothing to verify, the CID is the data.
    pub(crate) fn from_identity(cid: &Cid) -> Option<Self> {
        (cid.hash().code() == crate::blockstore::IDENTITY).then(|| Self {
            cid: *cid,
            data: Bytes::copy_from_slice(cid.hash().digest()),
        })
    }

    /// Its CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// Its bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Both parts.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_verify_against_their_cid() {
        let b = Block::new(RAW, Bytes::from_static(b"hello"), false);
        assert_eq!(
            b.cid().to_string(),
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
        assert!(Block::verified(*b.cid(), Bytes::from_static(b"hello")).is_ok());
        assert!(matches!(
            Block::verified(*b.cid(), Bytes::from_static(b"hellO")),
            Err(NodeError::BadBlock { .. })
        ));
        let v0 = Block::new(DAG_PB, Bytes::from_static(b"\x0a\x02\x08\x01"), true);
        assert_eq!(v0.cid().version(), cid::Version::V0);
    }
}
