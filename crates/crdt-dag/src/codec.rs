//! DAG-CBOR and CID helpers shared by the delta format, the store and CAR.

use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};
use serde::Serialize;

/// Multicodec code of DAG-CBOR.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// The CID of a DAG-CBOR block: CIDv1, dag-cbor, sha2-256.
pub fn block_cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(DAG_CBOR, Code::Sha2_256.digest(bytes))
}

/// Whether `cid` has the only shape a delta may have.
pub fn is_delta_cid(cid: &Cid) -> bool {
    cid.version() == cid::Version::V1 && cid.codec() == DAG_CBOR && cid.hash().code() == SHA2_256
}

/// Canonical DAG-CBOR encoding. Our types only hold encodable values, so a
/// failure here is a programming error surfaced as a string.
pub(crate) fn to_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| e.to_string())
}

/// Serde for an optional CID written as its binary form in a CBOR byte
/// string (not a link: pinned content must not be reachable from the history
/// DAG); omitted when `None`.
pub(crate) mod opt_cid_bytes {
    use cid::Cid;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(cid: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        match cid {
            Some(c) => s.serialize_bytes(&c.to_bytes()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        Cid::try_from(b.as_slice())
            .map(Some)
            .map_err(D::Error::custom)
    }
}
