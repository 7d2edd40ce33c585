//! Peer ID validation without libp2p: a peer ID is a base58btc multihash
//! (identity for inlined keys, sha2-256 otherwise), or a CIDv1 with the
//! `libp2p-key` codec, as Go's `peer.Decode` accepts.

use cid::Cid;
use multihash::Multihash;

use crate::ApiError;

const IDENTITY: u64 = 0x00;
const SHA2_256: u64 = 0x12;
const LIBP2P_KEY: u64 = 0x72;
/// Longest inlined (identity) key libp2p produces (an ed25519 or secp256k1
/// protobuf key is 36 or 37 bytes; the spec caps inlining at 42).
const MAX_INLINE_KEY: usize = 42;

fn check_multihash(mh: &Multihash<64>) -> Result<(), String> {
    match mh.code() {
        SHA2_256 if mh.size() == 32 => Ok(()),
        IDENTITY if (1..=MAX_INLINE_KEY).contains(&usize::from(mh.size())) => Ok(()),
        SHA2_256 => Err("sha2-256 digest is not 32 bytes".into()),
        IDENTITY => Err("inlined key is too long".into()),
        code => Err(format!(
            "multihash code {code:#x} is neither identity nor sha2-256"
        )),
    }
}

/// The peer ID in `text` in its canonical (base58btc multihash) form.
fn canonical(text: &str) -> Result<String, String> {
    if text.starts_with("Qm") || text.starts_with('1') {
        let bytes = bs58::decode(text)
            .into_vec()
            .map_err(|e| format!("not base58: {e}"))?;
        let mh =
            Multihash::<64>::from_bytes(&bytes).map_err(|e| format!("not a multihash: {e}"))?;
        check_multihash(&mh)?;
        Ok(text.to_string())
    } else {
        let cid: Cid = text
            .parse()
            .map_err(|_| "neither a base58 multihash nor a CID".to_string())?;
        if cid.codec() != LIBP2P_KEY {
            return Err(format!("CID codec {:#x} is not libp2p-key", cid.codec()));
        }
        check_multihash(cid.hash())?;
        Ok(bs58::encode(cid.hash().to_bytes()).into_string())
    }
}

/// Checks that `text` is a peer ID and returns its canonical base58 form.
///
/// # Errors
/// A 400 [`ApiError`] saying why `text` is not a peer ID.
pub fn parse_peer_id(text: &str) -> Result<String, ApiError> {
    canonical(text)
        .map_err(|why| ApiError::bad_request(format!("{text:?} is not a peer ID: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ed25519_rsa_and_cid_forms() {
        // ed25519 (identity multihash) and an RSA-style sha2-256 ID.
        let ed = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let rsa = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
        assert_eq!(parse_peer_id(ed).unwrap(), ed);
        assert_eq!(parse_peer_id(rsa).unwrap(), rsa);
        // The same RSA-style ID as a CIDv1 with the libp2p-key codec.
        let mh = bs58::decode(rsa).into_vec().unwrap();
        let cid = Cid::new_v1(LIBP2P_KEY, Multihash::from_bytes(&mh).unwrap());
        assert_eq!(parse_peer_id(&cid.to_string()).unwrap(), rsa);
    }

    #[test]
    fn rejects_what_is_not_a_peer_id() {
        for bad in [
            "",
            "hello",
            "QmNotBase58!!",
            "Qm1111",
            // A CID of content (dag-pb) is not a peer ID.
            "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            // Base58 of a sha2-256 multihash with a short digest.
            "1111",
        ] {
            assert!(parse_peer_id(bad).is_err(), "{bad}");
        }
        let err = parse_peer_id("hello").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("not a peer ID"), "{}", err.message);
    }
}
