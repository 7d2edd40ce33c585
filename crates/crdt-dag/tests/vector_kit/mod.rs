//! Building delta blocks item by item for the test vectors (spec/vectors/),
//! independently of the crate's encoder.
#![allow(dead_code, unreachable_pub)]

pub mod cbor;
pub mod json;

use cid::Cid;
use ed25519_dalek::{Signer, SigningKey};
use multihash_codetable::{Code, MultihashDigest};

use cbor::V;

/// The cluster every vector is in.
pub const CLUSTER: &str = "vectors";

/// A fixed key: the vectors are the same on every run.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The 38-byte peer ID of an ed25519 public key.
pub fn peer_id(public: &[u8; 32]) -> Vec<u8> {
    let mut b = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    b.extend_from_slice(public);
    b
}

/// The peer ID text (base58btc) of a key.
pub fn peer_text(k: &SigningKey) -> String {
    bs58::encode(peer_id(&k.verifying_key().to_bytes())).into_string()
}

/// CIDv1 dag-cbor sha2-256 of `bytes`: a delta's identifier.
pub fn delta_cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(0x71, Code::Sha2_256.digest(bytes))
}

/// Some pinned content: CIDv1 raw sha2-256 of `n`.
pub fn content(n: u32) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

/// A delta CID no block has: for tombs and parents that need only a shape.
pub fn nowhere(n: u32) -> Cid {
    delta_cid(format!("no block {n}").as_bytes())
}

/// A tomb dot.
pub fn dot(delta: &Cid, index: u64) -> V {
    V::A(vec![V::B(delta.to_bytes()), V::U(index)])
}

/// A pin op with options `opts` (a map) and tombs.
pub fn pin_op(cid: &Cid, opts: V, tombs: Vec<V>) -> V {
    V::map(vec![
        ("op", V::text("pin")),
        ("cid", V::B(cid.to_bytes())),
        ("opts", opts),
        ("tombs", V::A(tombs)),
    ])
}

/// An unpin op.
pub fn unpin_op(cid: &Cid, tombs: Vec<V>) -> V {
    V::map(vec![
        ("op", V::text("unpin")),
        ("cid", V::B(cid.to_bytes())),
        ("tombs", V::A(tombs)),
    ])
}

/// Options with only a name.
pub fn named(name: &str) -> V {
    V::map(vec![("name", V::text(name))])
}

/// An unsigned delta map (with a zero signature) by `signer`.
pub fn delta(
    signer: &SigningKey,
    seq: u64,
    prev: Option<&Cid>,
    parents: &[Cid],
    priority: u64,
    ops: Vec<V>,
) -> V {
    let mut parents = parents.to_vec();
    parents.sort_by_key(|c| c.to_bytes());
    V::map(vec![
        ("v", V::U(1)),
        ("ts", V::U(1_700_000_000_000)),
        ("ops", V::A(ops)),
        ("seq", V::U(seq)),
        ("sig", V::B(vec![0; 64])),
        ("prev", prev.map_or(V::Null, V::link)),
        ("writer", V::B(peer_id(&signer.verifying_key().to_bytes()))),
        ("cluster", V::text(CLUSTER)),
        ("parents", V::A(parents.iter().map(V::link).collect())),
        ("priority", V::U(priority)),
    ])
}

/// Signs `map` in place: the signature covers the domain separator and the
/// map's encoding without `sig` (spec/crdt.md §2.3).
/// A map without `sig` (or not a map) is left as it is.
pub fn sign(map: &mut V, k: &SigningKey) {
    let V::M(entries) = map else { return };
    let Some(at) = entries.iter().position(|(key, _)| key == "sig") else {
        return;
    };
    let mut unsigned = entries.clone();
    unsigned.remove(at);
    let mut msg = b"ipfs-cluster/crdt-delta/v1\n".to_vec();
    msg.extend(V::M(unsigned).encode());
    entries[at].1 = V::B(k.sign(&msg).to_bytes().to_vec());
}

/// [`delta`], signed.
pub fn signed(
    signer: &SigningKey,
    seq: u64,
    prev: Option<&Cid>,
    parents: &[Cid],
    priority: u64,
    ops: Vec<V>,
) -> V {
    let mut d = delta(signer, seq, prev, parents, priority, ops);
    sign(&mut d, signer);
    d
}

/// The block and its CID.
pub fn block(d: &V) -> (Cid, Vec<u8>) {
    let b = d.encode();
    (delta_cid(&b), b)
}
