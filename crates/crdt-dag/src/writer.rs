//! Writer identities (ed25519 libp2p peer IDs) and the trust policy that says
//! which of them may change the pinset.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::error::Rejection;

/// The identity-multihash + protobuf prefix of an ed25519 libp2p peer ID:
/// multihash code 0x00, length 36, then `PublicKey{Type=1, Data=<32 bytes>}`.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
/// Length of an ed25519 peer ID in bytes.
pub const WRITER_ID_LEN: usize = 38;
/// Decoded verifying keys kept per thread ([`WriterId::verifying_key`]);
/// past it they are all dropped, so any number of writers costs a bounded
/// table.
const DECODED_KEYS: usize = 64;

/// A writer: the ed25519 public key behind a libp2p peer ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriterId([u8; 32]);

impl WriterId {
    /// The writer of a public key.
    pub fn from_public_key(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }

    /// The writer of a raw 32-byte ed25519 public key (not checked to be a
    /// curve point; [`WriterId::verifying_key`] does that).
    pub fn from_public_key_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// Parses the binary form of a peer ID; only ed25519 peer IDs qualify.
    pub fn from_peer_id_bytes(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.len() != WRITER_ID_LEN || bytes[..6] != PEER_ID_PREFIX {
            return Err(Rejection::InvalidWriter(bs58::encode(bytes).into_string()));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[6..]);
        Ok(Self(key))
    }

    /// The binary form of the peer ID (38 bytes).
    pub fn to_peer_id_bytes(&self) -> [u8; WRITER_ID_LEN] {
        let mut out = [0u8; WRITER_ID_LEN];
        out[..6].copy_from_slice(&PEER_ID_PREFIX);
        out[6..].copy_from_slice(&self.0);
        out
    }

    /// The raw ed25519 public key.
    pub fn public_key_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The verifying key, if the bytes are a valid curve point. Decoding
    /// one is a point decompression (a field square root), about a fifth
    /// of a signature check, and a receiver checks every delta of the few
    /// writers a cluster has: the keys decoded are kept, a few per thread.
    pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, Rejection> {
        thread_local! {
            static DECODED: RefCell<HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
                RefCell::new(HashMap::new());
        }
        DECODED.with(|decoded| {
            if let Some(key) = decoded.borrow().get(&self.0) {
                return Ok(*key);
            }
            let key = ed25519_dalek::VerifyingKey::from_bytes(&self.0)
                .map_err(|_| Rejection::InvalidWriter(self.to_string()))?;
            let mut decoded = decoded.borrow_mut();
            if decoded.len() >= DECODED_KEYS {
                decoded.clear();
            }
            decoded.insert(self.0, key);
            Ok(key)
        })
    }
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.to_peer_id_bytes()).into_string())
    }
}

impl fmt::Debug for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriterId({self})")
    }
}

impl FromStr for WriterId {
    type Err = Rejection;

    /// Parses the base58btc text form (`12D3KooW...`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|_| Rejection::InvalidWriter(s.to_owned()))?;
        Self::from_peer_id_bytes(&bytes)
    }
}

/// Who may write to the pinset (`consensus.crdt.trusted_peers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustPolicy {
    /// `["*"]`: any ed25519 writer.
    All,
    /// Only these writers.
    Only(BTreeSet<WriterId>),
}

impl TrustPolicy {
    /// Builds the policy from `trusted_peers` strings: `"*"` anywhere means
    /// everyone; otherwise each entry must be an ed25519 peer ID.
    pub fn from_strings<I, S>(peers: I) -> Result<Self, Rejection>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for p in peers {
            let p = p.as_ref().trim();
            if p == "*" {
                return Ok(Self::All);
            }
            set.insert(p.parse()?);
        }
        Ok(Self::Only(set))
    }

    /// Whether `writer` may write.
    pub fn allows(&self, writer: &WriterId) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(writer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_text_round_trips_and_looks_like_libp2p() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let w = WriterId::from_public_key(&key.verifying_key());
        let s = w.to_string();
        assert!(s.starts_with("12D3KooW"), "{s}");
        assert_eq!(s.parse::<WriterId>().unwrap(), w);
    }

    #[test]
    fn non_ed25519_peer_ids_are_refused() {
        // A CIDv0-looking sha256 multihash is how RSA peer IDs look.
        let rsa = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
        assert!(matches!(
            rsa.parse::<WriterId>(),
            Err(Rejection::InvalidWriter(_))
        ));
        assert!(TrustPolicy::from_strings(["not-a-peer"]).is_err());
        assert_eq!(TrustPolicy::from_strings(["*"]).unwrap(), TrustPolicy::All);
        let key = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
        let w = WriterId::from_public_key(&key.verifying_key());
        let only = TrustPolicy::from_strings([w.to_string()]).unwrap();
        assert!(only.allows(&w));
        let other = WriterId::from_public_key(
            &ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]).verifying_key(),
        );
        assert!(!only.allows(&other));
    }

    /// The kept keys are the keys: the same as a fresh decode, for more
    /// writers than are kept, asked twice; a bytes that is not a point is
    /// refused every time, never kept.
    #[test]
    fn a_kept_verifying_key_is_the_decoded_one() {
        let writers: Vec<(WriterId, ed25519_dalek::VerifyingKey)> = (0..3 * DECODED_KEYS as u8)
            .map(|i| {
                let key = ed25519_dalek::SigningKey::from_bytes(&[i; 32]).verifying_key();
                (WriterId::from_public_key(&key), key)
            })
            .collect();
        for _ in 0..2 {
            for (w, key) in &writers {
                assert_eq!(w.verifying_key().unwrap(), *key);
            }
        }
        let not_a_point = (0..=u8::MAX)
            .map(|i| [i; 32])
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .expect("some byte pattern is no curve point");
        let w = WriterId::from_public_key_bytes(not_a_point);
        for _ in 0..2 {
            assert!(matches!(
                w.verifying_key(),
                Err(Rejection::InvalidWriter(_))
            ));
        }
    }
}
