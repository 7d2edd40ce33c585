//! The signed checkpoint and its snapshot DAG (spec/crdt.md §10): what a
//! trusted writer signs about a cut of the history, so that a new replica
//! can start from the state instead of replaying every delta.
//!
//! A checkpoint names the cut (its heads and every writer's highest seq),
//! the state there (state hash, pin count) and a snapshot: a root block
//! linking chunks of the live pin records and chunks of the delta index
//! (every applied delta's CID, priority, seq and writer), each in key order.

use cid::Cid;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::codec::{block_cid, is_delta_cid, to_cbor};
use crate::error::{DagError, Result};
use crate::limits::MAX_BLOCK_SIZE;
use crate::writer::{TrustPolicy, WriterId};

/// Domain separator prefixed to the bytes a checkpoint's signer signs
/// (another than the delta's: a signature over one can't pass as the other).
pub const CHECKPOINT_CONTEXT: &[u8] = b"ipfs-cluster/crdt-checkpoint/v1\n";
/// The checkpoint and snapshot format version.
pub const CHECKPOINT_VERSION: u64 = 1;
/// A snapshot chunk is closed once it holds this many bytes of records.
pub const SNAPSHOT_CHUNK_BYTES: usize = 256 << 10;

/// A signed checkpoint. Fields are public so tools and tests can build any
/// (including invalid) one; [`Checkpoint::verify`] judges them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Signer's clock, ms since the epoch (informational).
    pub ts: u64,
    /// Pins in the state.
    pub pins: u64,
    /// The heads of the cut with their priorities, sorted by CID bytes.
    pub heads: Vec<(Cid, u64)>,
    /// Deltas in the cut.
    pub deltas: u64,
    /// Who signed it.
    pub writer: WriterId,
    /// Cluster name.
    pub cluster: String,
    /// Every writer of the cut with its highest seq, sorted by key bytes.
    pub writers: Vec<(WriterId, u64)>,
    /// The snapshot's root block.
    pub snapshot: Cid,
    /// The state hash of spec §6 at the cut.
    pub state_hash: [u8; 32],
    /// Ed25519 signature over [`Checkpoint::signing_bytes`].
    pub sig: [u8; 64],
}

/// The block's map, keys in canonical order (length first, then bytes).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCheckpoint {
    v: u64,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<ByteBuf>,
    pins: u64,
    heads: Vec<(Cid, u64)>,
    deltas: u64,
    writer: ByteBuf,
    cluster: String,
    writers: Vec<(ByteBuf, u64)>,
    snapshot: Cid,
    state_hash: ByteBuf,
}

fn bad(why: impl std::fmt::Display) -> DagError {
    DagError::Checkpoint(why.to_string())
}

impl Checkpoint {
    fn to_wire(&self, with_sig: bool) -> WireCheckpoint {
        WireCheckpoint {
            v: CHECKPOINT_VERSION,
            ts: self.ts,
            sig: with_sig.then(|| ByteBuf::from(self.sig.to_vec())),
            pins: self.pins,
            heads: self.heads.clone(),
            deltas: self.deltas,
            writer: ByteBuf::from(self.writer.to_peer_id_bytes().to_vec()),
            cluster: self.cluster.clone(),
            writers: self
                .writers
                .iter()
                .map(|(w, seq)| (ByteBuf::from(w.to_peer_id_bytes().to_vec()), *seq))
                .collect(),
            snapshot: self.snapshot,
            state_hash: ByteBuf::from(self.state_hash.to_vec()),
        }
    }

    /// The bytes the signature covers: the context string, then the
    /// canonical encoding of every field but `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let body = to_cbor(&self.to_wire(false)).expect("checkpoint fields always encode");
        let mut out = Vec::with_capacity(CHECKPOINT_CONTEXT.len() + body.len());
        out.extend_from_slice(CHECKPOINT_CONTEXT);
        out.extend_from_slice(&body);
        out
    }

    /// Sets `writer` to `key`'s identity and signs.
    pub fn sign(&mut self, key: &SigningKey) {
        self.writer = WriterId::from_public_key(&key.verifying_key());
        self.sig = key.sign(&self.signing_bytes()).to_bytes();
    }

    /// The block and its CID.
    pub fn to_block(&self) -> (Cid, Vec<u8>) {
        let bytes = to_cbor(&self.to_wire(true)).expect("checkpoint fields always encode");
        (block_cid(&bytes), bytes)
    }

    /// The highest priority among the heads: how far up the history the
    /// cut is (newer checkpoints are higher).
    pub fn height(&self) -> u64 {
        self.heads.iter().map(|h| h.1).max().unwrap_or(0)
    }

    /// Decodes a block: canonical DAG-CBOR of this version with values of
    /// the right form. Checks nothing that needs a cluster or a policy.
    ///
    /// # Errors
    /// [`DagError::Checkpoint`] saying what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BLOCK_SIZE {
            return Err(bad(format!("block of {} bytes", bytes.len())));
        }
        let w: WireCheckpoint = serde_ipld_dagcbor::from_slice(bytes)
            .map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        if w.v != CHECKPOINT_VERSION {
            return Err(bad(format!("unsupported checkpoint version {}", w.v)));
        }
        if to_cbor(&w).map_err(bad)? != bytes {
            return Err(bad("not in canonical DAG-CBOR form"));
        }
        let sig = w.sig.ok_or_else(|| bad("missing sig"))?;
        let sig: [u8; 64] = sig
            .as_slice()
            .try_into()
            .map_err(|_| bad("sig is not 64 bytes"))?;
        let state_hash: [u8; 32] = w
            .state_hash
            .as_slice()
            .try_into()
            .map_err(|_| bad("state_hash is not 32 bytes"))?;
        let writer = WriterId::from_peer_id_bytes(&w.writer).map_err(bad)?;
        let mut writers = Vec::with_capacity(w.writers.len());
        for (id, seq) in w.writers {
            writers.push((WriterId::from_peer_id_bytes(&id).map_err(bad)?, seq));
        }
        Ok(Self {
            ts: w.ts,
            pins: w.pins,
            heads: w.heads,
            deltas: w.deltas,
            writer,
            cluster: w.cluster,
            writers,
            snapshot: w.snapshot,
            state_hash,
            sig,
        })
    }

    /// Decodes and checks a checkpoint served as `cid`: the bytes hash to
    /// it, the form (heads and writers sorted and unique, links of the
    /// delta CID shape, the delta count the writers' seqs add up to), the
    /// cluster, the signer trusted by `trust`, the signature (strict).
    ///
    /// # Errors
    /// [`DagError::Checkpoint`] with the first reason found.
    pub fn verify(cid: &Cid, bytes: &[u8], cluster: &str, trust: &TrustPolicy) -> Result<Self> {
        if !is_delta_cid(cid) || block_cid(bytes) != *cid {
            return Err(bad(format!("block bytes do not hash to {cid}")));
        }
        let c = Self::decode(bytes)?;
        if c.cluster != cluster {
            return Err(bad(format!(
                "checkpoint is for cluster {:?}, this replica is in {cluster:?}",
                c.cluster
            )));
        }
        if c.heads.is_empty() {
            return Err(bad("no heads"));
        }
        let sorted = |a: &[u8], b: &[u8]| a < b;
        if !c
            .heads
            .windows(2)
            .all(|w| sorted(&w[0].0.to_bytes(), &w[1].0.to_bytes()))
            || !c
                .writers
                .windows(2)
                .all(|w| sorted(w[0].0.public_key_bytes(), w[1].0.public_key_bytes()))
        {
            return Err(bad("heads or writers not sorted and unique"));
        }
        if let Some((h, _)) = c.heads.iter().find(|h| !is_delta_cid(&h.0) || h.1 == 0) {
            return Err(bad(format!("head {h} is not a delta")));
        }
        if !is_delta_cid(&c.snapshot) {
            return Err(bad("snapshot link is not a dag-cbor CID"));
        }
        let sum = c
            .writers
            .iter()
            .try_fold(0u64, |n, (_, seq)| n.checked_add(*seq));
        if sum != Some(c.deltas) || c.writers.iter().any(|w| w.1 == 0) {
            return Err(bad("the writers' seqs do not add up to the delta count"));
        }
        if !trust.allows(&c.writer) {
            return Err(bad(format!("signer {} is not a trusted peer", c.writer)));
        }
        let key = c.writer.verifying_key().map_err(bad)?;
        key.verify_strict(&c.signing_bytes(), &Signature::from_bytes(&c.sig))
            .map_err(|_| bad(format!("signature does not verify for {}", c.writer)))?;
        Ok(c)
    }
}

/// The snapshot's root: links to its chunks, index chunks first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotRoot {
    pub(crate) v: u64,
    pub(crate) index: Vec<Cid>,
    pub(crate) entries: Vec<Cid>,
}

/// One delta index record in a chunk: CID bytes, priority, seq, writer
/// (peer ID bytes).
pub(crate) type WireIndexRecord = (ByteBuf, u64, u64, ByteBuf);

/// An index chunk: records in CID byte order.
pub(crate) type IndexChunk = Vec<WireIndexRecord>;
/// An entries chunk: pin records (`R(x)` of spec §6) in CID byte order.
pub(crate) type EntriesChunk = Vec<ByteBuf>;

/// Decodes a snapshot block strictly (canonical form only).
pub(crate) fn decode_canonical<T: Serialize + for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &str,
) -> Result<T> {
    let v: T =
        serde_ipld_dagcbor::from_slice(bytes).map_err(|e| bad(format!("snapshot {what}: {e}")))?;
    if to_cbor(&v).map_err(bad)? != bytes {
        return Err(bad(format!("snapshot {what} not in canonical form")));
    }
    Ok(v)
}

/// Encodes a snapshot block, with its CID.
pub(crate) fn encode_block<T: Serialize>(value: &T) -> (Cid, Vec<u8>) {
    let bytes = to_cbor(value).expect("snapshot blocks always encode");
    (block_cid(&bytes), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SigningKey) -> Checkpoint {
        let mut c = Checkpoint {
            ts: 1,
            pins: 2,
            heads: vec![(block_cid(b"head"), 3)],
            deltas: 3,
            writer: WriterId::from_public_key(&key.verifying_key()),
            cluster: "c".into(),
            writers: vec![(WriterId::from_public_key(&key.verifying_key()), 3)],
            snapshot: block_cid(b"root"),
            state_hash: [9; 32],
            sig: [0; 64],
        };
        c.sign(key);
        c
    }

    #[test]
    fn a_signed_checkpoint_round_trips_and_tampering_is_refused() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let c = sample(&key);
        let (cid, bytes) = c.to_block();
        assert_eq!(
            Checkpoint::verify(&cid, &bytes, "c", &TrustPolicy::All).unwrap(),
            c
        );
        let other = WriterId::from_public_key(&SigningKey::from_bytes(&[5; 32]).verifying_key());
        let only_other = TrustPolicy::Only([other].into());
        let err = Checkpoint::verify(&cid, &bytes, "c", &only_other).unwrap_err();
        assert!(err.to_string().contains("not a trusted peer"), "{err}");
        let err = Checkpoint::verify(&cid, &bytes, "d", &TrustPolicy::All).unwrap_err();
        assert!(err.to_string().contains("cluster"), "{err}");

        let mut forged = c.clone();
        forged.pins = 3;
        let (cid, bytes) = forged.to_block();
        let err = Checkpoint::verify(&cid, &bytes, "c", &TrustPolicy::All).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");

        let mut miscounted = c;
        miscounted.deltas = 4;
        miscounted.sign(&key);
        let (cid, bytes) = miscounted.to_block();
        let err = Checkpoint::verify(&cid, &bytes, "c", &TrustPolicy::All).unwrap_err();
        assert!(err.to_string().contains("add up"), "{err}");
    }

    #[test]
    fn a_delta_signature_does_not_pass_for_a_checkpoint() {
        assert_ne!(CHECKPOINT_CONTEXT, crate::delta::SIGNING_CONTEXT);
    }
}
