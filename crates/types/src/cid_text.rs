//! CIDs read from text as Go reads them (`go-cid`'s `Decode`), strictly.
//!
//! The `cid` crate's `FromStr` is lenient where Go is not: it reads the
//! CID at the start of the bytes and ignores what follows (so a CID with
//! trailing bytes, or whose multihash declares fewer bytes than it holds,
//! is silently read as another, shorter CID), it takes everything after
//! an `/ipfs/` anywhere in the text, and it decodes multibases Go doesn't
//! (base8, base10, base32z, base45). [`parse_cid`] refuses all of these:
//! a 46-character `Qm…` string is a base58 CIDv0, anything else a
//! multibase string in one of the bases `go-multibase` decodes, and the
//! decoded bytes must be exactly one CID.

use std::fmt;

use cid::Cid;
use cid::multibase;

/// Why a text is not a CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidTextError {
    /// Fewer than 2 characters (Go's `ErrCidTooShort`).
    TooShort,
    /// A multibase prefix `go-multibase` doesn't decode (Go's
    /// `ErrUnsupportedEncoding`).
    UnsupportedEncoding(char),
    /// The characters are not valid in their base.
    Encoding(String),
    /// The bytes don't start with a CID (version, codec, multihash).
    Invalid(String),
    /// Bytes left after the CID (Go's "trailing bytes in data").
    TrailingBytes(usize),
}

impl fmt::Display for CidTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("cid too short"),
            Self::UnsupportedEncoding(c) => write!(
                f,
                "selected encoding not supported (multibase prefix {c:?}{})",
                base_name(*c).map(|n| format!(", {n}")).unwrap_or_default()
            ),
            Self::Encoding(e) => write!(f, "invalid cid: {e}"),
            Self::Invalid(e) => write!(f, "invalid cid: {e}"),
            Self::TrailingBytes(n) => write!(
                f,
                "invalid cid: trailing bytes in data ({n} after the multihash)"
            ),
        }
    }
}

impl std::error::Error for CidTextError {}

/// Names of the multibases the `cid` crate decodes and Go doesn't.
fn base_name(prefix: char) -> Option<&'static str> {
    match prefix {
        '7' => Some("base8"),
        '9' => Some("base10"),
        'h' => Some("base32z"),
        'R' => Some("base45"),
        _ => None,
    }
}

/// Whether `go-multibase` (v0.2) decodes strings with this prefix.
fn go_decodes(prefix: char) -> bool {
    matches!(
        prefix,
        '\0' | '0'
            | 'f'
            | 'F'
            | 'b'
            | 'B'
            | 'c'
            | 'C'
            | 'v'
            | 'V'
            | 't'
            | 'T'
            | 'k'
            | 'K'
            | 'z'
            | 'Z'
            | 'm'
            | 'M'
            | 'u'
            | 'U'
            | '🚀'
    )
}

/// A CID from its string form, as Go's `cid.Decode` reads it (see the
/// module docs for what the `cid` crate's `FromStr` accepts and this
/// refuses).
///
/// # Errors
/// [`CidTextError`], whose message names the problem.
pub fn parse_cid(text: &str) -> Result<Cid, CidTextError> {
    if text.len() < 2 {
        return Err(CidTextError::TooShort);
    }
    let bytes = if text.len() == 46 && text.starts_with("Qm") {
        multibase::Base::Base58Btc
            .decode(text)
            .map_err(|e| CidTextError::Encoding(e.to_string()))?
    } else {
        let prefix = text.chars().next().unwrap_or_default();
        if !go_decodes(prefix) {
            return Err(CidTextError::UnsupportedEncoding(prefix));
        }
        multibase::decode(text)
            .map_err(|e| CidTextError::Encoding(e.to_string()))?
            .1
    };
    cid_from_bytes(&bytes)
}

/// A CID from exactly its binary form (Go's `cid.Cast`): bytes after it
/// are an error, not ignored.
///
/// # Errors
/// [`CidTextError::Invalid`], [`CidTextError::TrailingBytes`].
pub fn cid_from_bytes(bytes: &[u8]) -> Result<Cid, CidTextError> {
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest).map_err(|e| CidTextError::Invalid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CidTextError::TrailingBytes(rest.len()));
    }
    Ok(cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    const V1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

    fn with_trailing(cid: &Cid, extra: &[u8]) -> Vec<u8> {
        let mut b = cid.to_bytes();
        b.extend_from_slice(extra);
        b
    }

    #[test]
    fn what_go_reads_is_read() {
        let v1: Cid = V1.parse().unwrap();
        assert_eq!(parse_cid(V0).unwrap().to_string(), V0);
        assert_eq!(parse_cid(V1).unwrap(), v1);
        for base in [
            multibase::Base::Base16Lower,
            multibase::Base::Base32Upper,
            multibase::Base::Base36Lower,
            multibase::Base::Base58Btc,
            multibase::Base::Base64Url,
            multibase::Base::Base256Emoji,
        ] {
            let text = multibase::encode(base, v1.to_bytes());
            assert_eq!(parse_cid(&text).unwrap(), v1, "{base:?}: {text}");
        }
        // A CIDv0's bytes in a multibase are a CIDv0 (as Go's Cast).
        let v0 = parse_cid(V0).unwrap();
        let z = multibase::encode(multibase::Base::Base58Btc, v0.to_bytes());
        assert_eq!(parse_cid(&z).unwrap(), v0);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let v1: Cid = V1.parse().unwrap();
        let text = multibase::encode(multibase::Base::Base32Lower, with_trailing(&v1, b"xx"));
        // What the cid crate does: another CID, silently.
        assert_eq!(text.parse::<Cid>().unwrap(), v1);
        let e = parse_cid(&text).unwrap_err();
        assert_eq!(e, CidTextError::TrailingBytes(2));
        assert!(e.to_string().contains("trailing bytes"), "{e}");
        let v0 = parse_cid(V0).unwrap();
        let text = multibase::encode(multibase::Base::Base58Btc, with_trailing(&v0, &[0]));
        assert_eq!(
            parse_cid(&text).unwrap_err(),
            CidTextError::TrailingBytes(1)
        );
    }

    #[test]
    fn a_multihash_shorter_than_its_bytes_is_refused() {
        // sha2-256 declaring 16 digest bytes but followed by 32: the cid
        // crate reads a truncated CID and drops the rest.
        let v1: Cid = V1.parse().unwrap();
        let digest = v1.hash().digest();
        let mut bytes = vec![0x01, 0x70, 0x12, 16];
        bytes.extend_from_slice(digest);
        let text = multibase::encode(multibase::Base::Base32Lower, &bytes);
        let lenient = text.parse::<Cid>().unwrap();
        assert_ne!(lenient, v1);
        assert_eq!(lenient.hash().size(), 16);
        assert_eq!(
            parse_cid(&text).unwrap_err(),
            CidTextError::TrailingBytes(16)
        );
        // A digest shorter than declared: no CID at all.
        let text = multibase::encode(multibase::Base::Base32Lower, &bytes[..12]);
        assert!(matches!(parse_cid(&text), Err(CidTextError::Invalid(_))));
    }

    #[test]
    fn bases_go_does_not_decode_are_refused() {
        let v1: Cid = V1.parse().unwrap();
        for (base, prefix) in [
            (multibase::Base::Base10, '9'),
            (multibase::Base::Base8, '7'),
            (multibase::Base::Base32Z, 'h'),
            (multibase::Base::Base45, 'R'),
        ] {
            let text = multibase::encode(base, v1.to_bytes());
            assert_eq!(
                text.parse::<Cid>().unwrap(),
                v1,
                "the cid crate reads {text}"
            );
            let e = parse_cid(&text).unwrap_err();
            assert_eq!(e, CidTextError::UnsupportedEncoding(prefix));
            assert!(e.to_string().contains("not supported"), "{e}");
        }
        assert!(parse_cid("9").is_err());
    }

    #[test]
    fn other_garbage_is_refused() {
        assert_eq!(parse_cid("").unwrap_err(), CidTextError::TooShort);
        assert_eq!(parse_cid("b").unwrap_err(), CidTextError::TooShort);
        // The cid crate takes what follows an `/ipfs/` anywhere.
        let prefixed = format!("junk/ipfs/{V1}");
        assert!(prefixed.parse::<Cid>().is_ok());
        assert!(parse_cid(&prefixed).is_err());
        assert!(matches!(
            parse_cid("bafy!!!"),
            Err(CidTextError::Encoding(_))
        ));
        // 46 characters starting with Qm that are not base58.
        let bad_v0 = format!("Qm{}", "0".repeat(44));
        assert!(matches!(parse_cid(&bad_v0), Err(CidTextError::Encoding(_))));
        // A version other than 0 and 1.
        let text = multibase::encode(multibase::Base::Base32Lower, [0x02, 0x55, 0x00, 0x00]);
        assert!(matches!(parse_cid(&text), Err(CidTextError::Invalid(_))));
    }
}
