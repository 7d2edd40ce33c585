//! The delta node: its DAG-CBOR form, signing, and the receipt checks that run
//! before any of its links is followed (spec/crdt.md §2-3).

use cid::Cid;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::cbor_entry;
use crate::codec::{CidBytes, block_cid, canonicalize, is_delta_cid, to_cbor};
use crate::error::Rejection;
use crate::limits::{MAX_BLOCK_SIZE, MAX_OPS_PER_DELTA, MAX_PARENTS_PER_DELTA, MAX_TOMBS_PER_OP};
use crate::pin::Dot;
use crate::wire_pin::WirePin;
use crate::writer::{TrustPolicy, WriterId};
use cluster_types::Pin;

/// The delta format version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// Domain separator prefixed to the bytes a writer signs.
pub const SIGNING_CONTEXT: &[u8] = b"ipfs-cluster/crdt-delta/v1\n";

/// One mutation of the pinset.
// Nearly every op is a pin; boxing its options would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add an entry for `cid` and remove the observed ones.
    Pin {
        /// The pin, with its CID.
        pin: Pin,
        /// Live dots of `cid` the writer had observed.
        tombs: Vec<Dot>,
    },
    /// Remove the observed entries of `cid`.
    Unpin {
        /// The content.
        cid: Cid,
        /// Live dots of `cid` the writer had observed.
        tombs: Vec<Dot>,
    },
}

impl Op {
    /// The CID the op is about.
    pub fn cid(&self) -> &Cid {
        match self {
            Self::Pin { pin, .. } => &pin.cid,
            Self::Unpin { cid, .. } => cid,
        }
    }

    /// The dots it tombstones.
    pub fn tombs(&self) -> &[Dot] {
        match self {
            Self::Pin { tombs, .. } | Self::Unpin { tombs, .. } => tombs,
        }
    }
}

/// A delta node. Fields are public so tools (and tests) can build any
/// delta, including invalid ones; [`Delta::verify`] is what judges them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    /// Writer's clock, ms since the epoch (informational).
    pub ts: u64,
    /// The mutations.
    pub ops: Vec<Op>,
    /// The writer's sequence number (1-based).
    pub seq: u64,
    /// The writer's previous delta.
    pub prev: Option<Cid>,
    /// Who wrote it.
    pub writer: WriterId,
    /// Cluster name.
    pub cluster: String,
    /// Heads the writer had applied, sorted by CID bytes.
    pub parents: Vec<Cid>,
    /// 1 + max(parents' priority).
    pub priority: u64,
    /// Ed25519 signature over [`Delta::signing_bytes`].
    pub sig: [u8; 64],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDelta {
    v: u64,
    ts: u64,
    ops: Vec<WireOp>,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<ByteBuf>,
    // With `deserialize_with`, serde reports a missing `prev` instead of
    // reading it as null: the key is required (`Malformed` if absent).
    #[serde(deserialize_with = "Option::deserialize")]
    prev: Option<Cid>,
    writer: ByteBuf,
    cluster: String,
    parents: Vec<Cid>,
    priority: u64,
}

/// Only the version of a block, read on the failure path so that a later
/// version's delta, whatever its keys, is `UnsupportedVersion`.
#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOp {
    op: String,
    cid: CidBytes,
    #[serde(skip_serializing_if = "Option::is_none")]
    opts: Option<WirePin>,
    tombs: Vec<(CidBytes, u32)>,
}

const PIN: &str = "pin";
const UNPIN: &str = "unpin";

impl Delta {
    fn to_wire(&self, with_sig: bool) -> WireDelta {
        let ops = self
            .ops
            .iter()
            .map(|op| {
                let tombs = op
                    .tombs()
                    .iter()
                    .map(|d| (CidBytes(d.delta), d.index))
                    .collect();
                let cid = CidBytes(*op.cid());
                match op {
                    Op::Pin { pin, .. } => WireOp {
                        op: PIN.into(),
                        cid,
                        opts: Some(WirePin::from_pin(pin)),
                        tombs,
                    },
                    Op::Unpin { .. } => WireOp {
                        op: UNPIN.into(),
                        cid,
                        opts: None,
                        tombs,
                    },
                }
            })
            .collect();
        WireDelta {
            v: FORMAT_VERSION,
            ts: self.ts,
            ops,
            seq: self.seq,
            sig: with_sig.then(|| ByteBuf::from(self.sig.to_vec())),
            prev: self.prev,
            writer: ByteBuf::from(self.writer.to_peer_id_bytes().to_vec()),
            cluster: self.cluster.clone(),
            parents: self.parents.clone(),
            priority: self.priority,
        }
    }

    /// The bytes the signature covers: the context string, then the canonical
    /// encoding of every field but `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        with_context(&to_cbor(&self.to_wire(false)).expect("delta fields always encode"))
    }

    /// Sets `writer` to `key`'s identity and signs.
    pub fn sign(&mut self, key: &SigningKey) {
        self.writer = WriterId::from_public_key(&key.verifying_key());
        self.sig = key.sign(&self.signing_bytes()).to_bytes();
    }

    /// [`Delta::sign`], then [`Delta::to_block`], with one encoding: the
    /// block is the signed body with the `sig` entry put in its canonical
    /// place.
    pub fn sign_to_block(&mut self, key: &SigningKey) -> (Cid, Vec<u8>) {
        self.writer = WriterId::from_public_key(&key.verifying_key());
        let body = to_cbor(&self.to_wire(false)).expect("delta fields always encode");
        self.sig = key.sign(&with_context(&body)).to_bytes();
        let bytes = cbor_entry::with_entry(&body, SIG, &sig_item(&self.sig))
            .unwrap_or_else(|| self.encode());
        (block_cid(&bytes), bytes)
    }

    /// The block: canonical DAG-CBOR of the whole node.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(&self.to_wire(true)).expect("delta fields always encode")
    }

    /// Encodes and returns the block with its CID.
    pub fn to_block(&self) -> (Cid, Vec<u8>) {
        let bytes = self.encode();
        (block_cid(&bytes), bytes)
    }

    /// Decodes a block with the checks of spec §3 step 3 (form, version,
    /// schema, canonical encoding, field values, writer), and none that
    /// needs a cluster, a trust policy or the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        Self::decode_with_key(bytes).map(|(delta, _)| delta)
    }

    /// [`Delta::decode`], with the writer's key (decompressed once, for the
    /// signature check).
    fn decode_with_key(bytes: &[u8]) -> Result<(Self, VerifyingKey), Rejection> {
        let delta = Self::from_wire(decode_wire(bytes)?)?;
        let key = delta.writer.verifying_key()?;
        Ok((delta, key))
    }

    /// Decodes a block this replica verified before storing it: skips the
    /// canonical re-encoding, which was checked on receipt.
    pub(crate) fn decode_verified(bytes: &[u8]) -> Result<Self, Rejection> {
        let wire: WireDelta = serde_ipld_dagcbor::from_slice(bytes)
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        Self::from_wire(wire)
    }

    /// Spec §3 steps 3.5-3.6 on a decoded block: the values of the fields
    /// (`Malformed`), then the writer's form (`InvalidWriter`).
    fn from_wire(w: WireDelta) -> Result<Self, Rejection> {
        let sig_bytes = w
            .sig
            .ok_or_else(|| Rejection::Malformed("missing sig".into()))?;
        let sig: [u8; 64] = sig_bytes.as_slice().try_into().map_err(|_| {
            Rejection::Malformed(format!("sig is {} bytes, not 64", sig_bytes.len()))
        })?;
        let mut ops = Vec::with_capacity(w.ops.len());
        for op in w.ops {
            let cid = op.cid.0;
            let tombs = op
                .tombs
                .into_iter()
                .map(|(d, index)| Dot { delta: d.0, index })
                .collect();
            ops.push(match (op.op.as_str(), op.opts) {
                (PIN, Some(wire)) => {
                    wire.check()?;
                    Op::Pin {
                        pin: wire.into_pin(cid),
                        tombs,
                    }
                }
                (UNPIN, None) => Op::Unpin { cid, tombs },
                (PIN, None) => return Err(Rejection::Malformed("pin op without opts".into())),
                (UNPIN, Some(_)) => return Err(Rejection::Malformed("unpin op with opts".into())),
                (other, _) => return Err(Rejection::Malformed(format!("unknown op {other:?}"))),
            });
        }
        let writer = WriterId::from_peer_id_bytes(&w.writer)?;
        Ok(Self {
            ts: w.ts,
            ops,
            seq: w.seq,
            prev: w.prev,
            writer,
            cluster: w.cluster,
            parents: w.parents,
            priority: w.priority,
            sig,
        })
    }

    /// Structural checks that need nothing but the delta (spec §3, step 5).
    pub fn check_structure(&self) -> Result<(), Rejection> {
        too_many("ops", self.ops.len(), MAX_OPS_PER_DELTA)?;
        too_many("parents", self.parents.len(), MAX_PARENTS_PER_DELTA)?;
        if self.ops.is_empty() {
            return Err(Rejection::Malformed("no ops".into()));
        }
        if !self
            .parents
            .windows(2)
            .all(|w| w[0].to_bytes() < w[1].to_bytes())
        {
            return Err(Rejection::Malformed("parents not sorted and unique".into()));
        }
        if let Some(bad) = self
            .parents
            .iter()
            .chain(self.prev.iter())
            .find(|c| !is_delta_cid(c))
        {
            return Err(Rejection::Malformed(format!(
                "link {bad} is not a delta CID"
            )));
        }
        if self.seq == 0 {
            return Err(Rejection::Malformed("seq is 0".into()));
        }
        if (self.seq == 1) != self.prev.is_none() {
            return Err(Rejection::Malformed(
                "prev must be null exactly when seq is 1".into(),
            ));
        }
        if self.priority == 0 || (self.priority == 1) != self.parents.is_empty() {
            return Err(Rejection::Malformed(
                "priority must be 1 exactly when there are no parents".into(),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.ops.len());
        for op in &self.ops {
            if !seen.insert(op.cid()) {
                return Err(Rejection::Malformed(format!("two ops for {}", op.cid())));
            }
            let tombs = op.tombs();
            too_many("tombs", tombs.len(), MAX_TOMBS_PER_OP)?;
            if let Some(bad) = tombs.iter().find(|d| !is_delta_cid(&d.delta)) {
                return Err(Rejection::Malformed(format!(
                    "tomb {} is not a delta CID",
                    bad.delta
                )));
            }
            if !tombs.windows(2).all(|w| dot_key(&w[0]) < dot_key(&w[1])) {
                return Err(Rejection::Malformed("tombs not sorted and unique".into()));
            }
        }
        Ok(())
    }

    /// Checks the signature strictly against the writer's key.
    pub fn verify_signature(&self) -> Result<(), Rejection> {
        self.verify_signature_with(&self.writer.verifying_key()?)
    }

    fn verify_signature_with(&self, key: &VerifyingKey) -> Result<(), Rejection> {
        self.verify_signature_over(key, &self.signing_bytes())
    }

    fn verify_signature_over(&self, key: &VerifyingKey, signed: &[u8]) -> Result<(), Rejection> {
        key.verify_strict(signed, &Signature::from_bytes(&self.sig))
            .map_err(|_| Rejection::BadSignature(self.writer.to_string()))
    }

    /// All receipt checks of spec §3 (steps 1-7) for a block served as `cid`,
    /// in the spec's order: the first that fails is the reason.
    /// A `HashMismatch` is the server's fault, not the block's.
    pub fn verify(
        cid: &Cid,
        bytes: &[u8],
        cluster: &str,
        trust: &TrustPolicy,
    ) -> Result<Self, Rejection> {
        if bytes.len() > MAX_BLOCK_SIZE {
            return Err(Rejection::BlockTooLarge {
                size: bytes.len(),
                max: MAX_BLOCK_SIZE,
            });
        }
        if !is_delta_cid(cid) {
            return Err(Rejection::UnsupportedCid(*cid));
        }
        if block_cid(bytes) != *cid {
            return Err(Rejection::HashMismatch(*cid));
        }
        let (delta, key) = Self::decode_with_key(bytes)?;
        if delta.cluster != cluster {
            return Err(Rejection::WrongCluster {
                expected: cluster.to_owned(),
                got: delta.cluster.clone(),
            });
        }
        delta.check_structure()?;
        if !trust.allows(&delta.writer) {
            return Err(Rejection::UntrustedWriter(delta.writer.to_string()));
        }
        // The block decoded to these fields and is their canonical encoding
        // (`decode_wire`), so without its `sig` entry it is the signed body.
        let signed = cbor_entry::without_entry(bytes, SIG)
            .map_or_else(|| delta.signing_bytes(), |body| with_context(&body));
        delta.verify_signature_over(&key, &signed)?;
        Ok(delta)
    }

    /// What must be applied before this delta: parents, then `prev`.
    pub fn dependencies(&self) -> impl Iterator<Item = &Cid> {
        self.parents.iter().chain(self.prev.iter())
    }
}

/// Spec §3 steps 3.1-3.4: the block as the wire struct, or the first reason
/// it is not one in canonical form.
fn decode_wire(bytes: &[u8]) -> Result<WireDelta, Rejection> {
    let wire: WireDelta = match serde_ipld_dagcbor::from_slice(bytes) {
        Ok(wire) => wire,
        Err(e) => return Err(why_not_decoded(bytes, e.to_string())),
    };
    if wire.v != FORMAT_VERSION {
        return Err(Rejection::UnsupportedVersion(wire.v));
    }
    if to_cbor(&wire).map_err(Rejection::Malformed)? != bytes {
        return Err(Rejection::NonCanonical);
    }
    Ok(wire)
}

/// Why the strict decoder (which also refuses most non-canonical forms)
/// refused `bytes`: not DAG-CBOR, another version, a v1 delta spelled
/// non-canonically, or not a v1 delta. Runs only on refused blocks, so
/// valid ones are parsed once.
fn why_not_decoded(bytes: &[u8], strict_error: String) -> Rejection {
    let canonical = match canonicalize(bytes) {
        Ok(c) => c,
        Err(why) => return Rejection::Malformed(why),
    };
    if let Ok(VersionOnly { v }) = serde_ipld_dagcbor::from_slice(&canonical)
        && v != FORMAT_VERSION
    {
        return Rejection::UnsupportedVersion(v);
    }
    if canonical == bytes {
        return Rejection::Malformed(strict_error);
    }
    match serde_ipld_dagcbor::from_slice::<WireDelta>(&canonical) {
        Ok(_) => Rejection::NonCanonical,
        Err(e) => Rejection::Malformed(e.to_string()),
    }
}

/// Sort key of a dot: its delta CID's bytes, then the index.
pub(crate) fn dot_key(d: &Dot) -> (Vec<u8>, u32) {
    (d.delta.to_bytes(), d.index)
}

/// The key of the signature in a delta's map.
const SIG: &str = "sig";

/// What a writer signs: the context string, then `body`.
fn with_context(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    out.extend_from_slice(SIGNING_CONTEXT);
    out.extend_from_slice(body);
    out
}

/// A signature as its CBOR item: a 64-byte byte string.
fn sig_item(sig: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + sig.len());
    out.extend_from_slice(&[0x58, 64]);
    out.extend_from_slice(sig);
    out
}

fn too_many(what: &'static str, count: usize, max: usize) -> Result<(), Rejection> {
    if count > max {
        Err(Rejection::TooMany { what, count, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_types::PinOptions;

    mod one_encoding {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        fn cid(n: u64) -> Cid {
            block_cid(&n.to_le_bytes())
        }

        prop_compose! {
            fn op()(n in any::<u64>(), pin in any::<bool>(), name in ".{0,40}",
                    meta in proptest::collection::btree_map("[a-z]{1,5}", ".{0,20}", 0..4),
                    tombs in proptest::collection::btree_set(any::<u8>(), 0..4)) -> Op {
                let mut tombs: Vec<Dot> = tombs
                    .into_iter()
                    .map(|t| Dot { delta: cid(u64::from(t) + 1_000), index: u32::from(t) * 1_000 })
                    .collect();
                tombs.sort_by_key(dot_key);
                if pin {
                    let metadata: BTreeMap<_, _> = meta;
                    let options = PinOptions { name, metadata, ..PinOptions::default() };
                    Op::Pin { pin: Pin::new(cid(n), options), tombs }
                } else {
                    Op::Unpin { cid: cid(n), tombs }
                }
            }
        }

        prop_compose! {
            fn delta()(ts in any::<u64>(), seq in 1..u64::MAX, prev in any::<Option<u64>>(),
                       cluster in ".{0,30}", parents in proptest::collection::btree_set(any::<u64>(), 0..4),
                       priority in any::<u64>(), ops in proptest::collection::vec(op(), 1..20)) -> Delta {
                let mut ops = ops;
                ops.sort_by_key(|o| o.cid().to_bytes());
                ops.dedup_by_key(|o| *o.cid());
                let mut parents: Vec<Cid> = parents.into_iter().map(cid).collect();
                parents.sort_by_key(|c| c.to_bytes());
                Delta {
                    ts,
                    ops,
                    seq,
                    // Null exactly at the first seq (spec §3).
                    prev: if seq == 1 { None } else { Some(cid(prev.unwrap_or(0))) },
                    // `sign` and `sign_to_block` set it from their key.
                    writer: WriterId::from_public_key(&SigningKey::from_bytes(&[1; 32]).verifying_key()),
                    cluster,
                    // 1 exactly when there are no parents (spec §3).
                    priority: if parents.is_empty() { 1 } else { priority.max(2) },
                    parents,
                    sig: [0; 64],
                }
            }
        }

        proptest! {
            /// Signing with one encoding gives the block two encodings give,
            /// and the block without its `sig` entry is what was signed.
            #[test]
            fn the_block_is_the_signed_body_with_its_sig(d in delta(), k in any::<[u8; 32]>()) {
                let key = SigningKey::from_bytes(&k);
                let mut twice = d.clone();
                twice.sign(&key);
                let mut once = d;
                let (cid, block) = once.sign_to_block(&key);
                prop_assert_eq!((cid, &block), (twice.to_block().0, &twice.to_block().1));
                prop_assert_eq!(once.sig, twice.sig);
                let body = cbor_entry::without_entry(&block, SIG).expect("a sig entry");
                prop_assert_eq!(with_context(&body), twice.signing_bytes());
                let cluster = once.cluster.clone();
                let verified = Delta::verify(&cid, &block, &cluster, &TrustPolicy::All);
                prop_assert!(verified.is_ok(), "{:?}", verified);
            }
        }
    }

    /// Found by the `delta` fuzz target: bytes after the CID in an op's
    /// `cid` or in a tomb were ignored, so a relay could append some and get
    /// another block (another CID, a second delta of the same `seq`: a fork
    /// the writer never made) still carrying the writer's valid signature.
    #[test]
    fn cid_bytes_with_trailing_bytes_are_malformed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut delta = Delta {
            ts: 1,
            ops: vec![Op::Pin {
                pin: Pin::new(block_cid(b"content"), PinOptions::default()),
                tombs: vec![Dot {
                    delta: block_cid(b"older delta"),
                    index: 0,
                }],
            }],
            seq: 1,
            prev: None,
            writer: WriterId::from_public_key(&key.verifying_key()),
            cluster: "c".into(),
            parents: vec![],
            priority: 1,
            sig: [0; 64],
        };
        delta.sign(&key);
        let (cid, bytes) = delta.to_block();
        assert!(Delta::verify(&cid, &bytes, "c", &TrustPolicy::All).is_ok());

        // Each CID's byte string, `58 24 <36 bytes>`, becomes 38 bytes long.
        for inner in [block_cid(b"content"), block_cid(b"older delta")] {
            let mut spelled = vec![0x58, 0x24];
            spelled.extend(inner.to_bytes());
            let at = bytes
                .windows(spelled.len())
                .position(|w| w == spelled)
                .unwrap();
            let mut tampered = bytes[..at].to_vec();
            tampered.extend([0x58, 0x26]);
            tampered.extend(&spelled[2..]);
            tampered.extend(b"xx");
            tampered.extend(&bytes[at + spelled.len()..]);
            let got = Delta::verify(&block_cid(&tampered), &tampered, "c", &TrustPolicy::All);
            assert!(
                matches!(&got, Err(Rejection::Malformed(m)) if m.contains("trailing bytes")),
                "{got:?}"
            );
        }
    }
}
