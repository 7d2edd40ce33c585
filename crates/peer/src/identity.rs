//! The peer's identity, `identity.json`, byte-compatible with Go:
//!
//! ```json
//! {
//!     "id": "12D3KooW...",
//!     "private_key": "CAESQ..."
//! }
//! ```
//!
//! `id` is the base58 peer ID; `private_key` is the standard base64 of the
//! libp2p protobuf encoding of the private key (Go's
//! `crypto.MarshalPrivateKey`). New identities are ed25519 (Go's default
//! too); RSA, secp256k1 and ECDSA identities written by Go load, and can run
//! a peer, but can't sign pinset changes: [`Identity::signing_key`] is
//! `None` for them.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use libp2p::PeerId;
use libp2p::identity::{KeyType, Keypair};
use serde::Serialize as _;
use serde_json::Value;

use crate::config::{ConfigError, write_private_file};

/// The environment variables that override the identity (Go's
/// `envconfig.Process("cluster", identityJSON)`).
pub const ENV_ID: &str = "CLUSTER_ID";
/// See [`ENV_ID`].
pub const ENV_PRIVATE_KEY: &str = "CLUSTER_PRIVATEKEY";

/// A peer's key pair: its peer ID and, for ed25519, its pinset signing key.
#[derive(Clone)]
pub struct Identity {
    /// The libp2p key pair.
    pub keypair: Keypair,
}

impl fmt::Debug for Identity {
    /// The peer ID and key type; never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .field("key_type", &self.keypair.key_type())
            .finish()
    }
}

impl Identity {
    /// A new random ed25519 identity.
    pub fn generate() -> Self {
        Self {
            keypair: Keypair::generate_ed25519(),
        }
    }

    /// The identity of an existing key pair.
    pub fn from_keypair(keypair: Keypair) -> Self {
        Self { keypair }
    }

    /// The peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The key type (ed25519 for every identity this peer creates).
    pub fn key_type(&self) -> KeyType {
        self.keypair.key_type()
    }

    /// The ed25519 key that signs pinset deltas; `None` for other key types,
    /// which can't write to the pinset.
    pub fn signing_key(&self) -> Option<ed25519_dalek::SigningKey> {
        let pair = self.keypair.clone().try_into_ed25519().ok()?;
        let secret: [u8; 32] = pair.secret().as_ref().try_into().ok()?;
        Some(ed25519_dalek::SigningKey::from_bytes(&secret))
    }

    /// Reads `identity.json`.
    ///
    /// # Errors
    ///
    /// The file can't be read or is not JSON; a field is missing or
    /// malformed; `id` is not the private key's peer ID
    /// ([`ConfigError::IdentityMismatch`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses the text of an `identity.json`; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Self::load`].
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::Identity {
            origin: origin.to_owned(),
            reason,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let field = |name: &str| match value.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(bad(format!("`{name}` must be a string"))),
            None => Err(bad(format!("`{name}` is missing"))),
        };
        Self::from_fields(field("id")?, field("private_key")?, origin)
    }

    /// The identity of an `id` and a base64 `private_key`, checked to match.
    ///
    /// # Errors
    ///
    /// As [`Self::load`].
    pub fn from_fields(id: &str, private_key: &str, origin: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::Identity {
            origin: origin.to_owned(),
            reason,
        };
        let claimed: PeerId = id
            .parse()
            .map_err(|e| bad(format!("`id` {id:?} is not a peer ID: {e}")))?;
        let bytes = BASE64
            .decode(private_key.trim())
            .map_err(|e| bad(format!("`private_key` is not base64: {e}")))?;
        let bytes = strip_redundant_ed25519_public(&bytes).unwrap_or(bytes);
        let keypair = Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| bad(format!("`private_key` is not a libp2p private key: {e}")))?;
        let identity = Self { keypair };
        let actual = identity.peer_id();
        if actual != claimed {
            return Err(ConfigError::IdentityMismatch {
                origin: origin.to_owned(),
                id: claimed.to_base58(),
                key_id: actual.to_base58(),
            });
        }
        Ok(identity)
    }

    /// The `identity.json` text, as Go writes it (four-space indent).
    ///
    /// # Errors
    ///
    /// The key can't be encoded: rust-libp2p can read RSA keys but not
    /// write them back.
    pub fn to_json_string(&self) -> Result<String, ConfigError> {
        let key = self
            .keypair
            .to_protobuf_encoding()
            .map_err(|e| ConfigError::Identity {
                origin: self.peer_id().to_base58(),
                reason: format!("the private key can't be encoded: {e}"),
            })?;
        let mut doc = serde_json::Map::new();
        doc.insert("id".into(), self.peer_id().to_base58().into());
        doc.insert("private_key".into(), BASE64.encode(key).into());
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            serde_json::ser::PrettyFormatter::with_indent(b"    "),
        );
        Value::Object(doc)
            .serialize(&mut ser)
            .map_err(|e| ConfigError::Identity {
                origin: self.peer_id().to_base58(),
                reason: e.to_string(),
            })?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Writes `identity.json` (mode 0600, replaced atomically).
    ///
    /// # Errors
    ///
    /// The key can't be encoded (see [`Self::to_json_string`]) or the file
    /// can't be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        write_private_file(path.as_ref(), self.to_json_string()?.as_bytes())
    }

    /// Applies `CLUSTER_ID` and `CLUSTER_PRIVATEKEY`, as Go does: each
    /// replaces its field, then the pair must match (so a new key needs its
    /// ID too).
    ///
    /// # Errors
    ///
    /// A value is malformed, or the resulting id and key don't match; the
    /// identity is unchanged then.
    pub fn apply_env(
        &mut self,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut id = None;
        let mut key = None;
        for (name, value) in vars {
            match name.as_str() {
                ENV_ID => id = Some(value),
                ENV_PRIVATE_KEY => key = Some(value),
                _ => {}
            }
        }
        if id.is_none() && key.is_none() {
            return Ok(());
        }
        let id = id.unwrap_or_else(|| self.peer_id().to_base58());
        let key = match key {
            Some(k) => k,
            None => BASE64.encode(self.keypair.to_protobuf_encoding().map_err(|e| {
                ConfigError::Identity {
                    origin: ENV_ID.to_owned(),
                    reason: format!("the current private key can't be encoded: {e}"),
                }
            })?),
        };
        *self = Self::from_fields(&id, &key, "CLUSTER_ID/CLUSTER_PRIVATEKEY")?;
        Ok(())
    }
}

/// Old Go versions wrote ed25519 private keys as 96 bytes (seed, public key,
/// public key again); Go still reads them. Returns the 64-byte encoding
/// when `bytes` is such a key whose two public keys agree.
fn strip_redundant_ed25519_public(bytes: &[u8]) -> Option<Vec<u8>> {
    // Protobuf: field 1 (varint) = 1 (Ed25519), field 2 (bytes) of length 96.
    let data = bytes.strip_prefix(&[0x08, 0x01, 0x12, 0x60])?;
    if data.len() != 96 || data[32..64] != data[64..96] {
        return None;
    }
    let mut out = vec![0x08, 0x01, 0x12, 0x40];
    out.extend_from_slice(&data[..64]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 identity.json exactly as Go v1.1 writes it (the key is a
    /// fixed test key, seed bytes 0..32).
    fn go_style_ed25519() -> (String, Identity) {
        let seed: Vec<u8> = (0u8..32).collect();
        let keypair = Keypair::ed25519_from_bytes(seed).unwrap();
        let identity = Identity::from_keypair(keypair);
        let text = format!(
            "{{\n    \"id\": \"{}\",\n    \"private_key\": \"{}\"\n}}",
            identity.peer_id(),
            BASE64.encode(identity.keypair.to_protobuf_encoding().unwrap())
        );
        (text, identity)
    }

    #[test]
    fn round_trips_through_a_file_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.json");
        let id = Identity::generate();
        id.save(&path).unwrap();
        let back = Identity::load(&path).unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(
            back.signing_key().unwrap().to_bytes(),
            id.signing_key().unwrap().to_bytes()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn writes_what_go_writes() {
        let (go_text, identity) = go_style_ed25519();
        assert_eq!(identity.to_json_string().unwrap(), go_text);
        let back = Identity::from_json_str(&go_text, "test").unwrap();
        assert_eq!(back.peer_id(), identity.peer_id());
        // The private key is the 64-byte libp2p form, type 1 (ed25519).
        let value: Value = serde_json::from_str(&go_text).unwrap();
        let raw = BASE64
            .decode(value["private_key"].as_str().unwrap())
            .unwrap();
        assert_eq!(&raw[..4], &[0x08, 0x01, 0x12, 0x40]);
        assert_eq!(raw.len(), 68);
        assert!(value["id"].as_str().unwrap().starts_with("12D3KooW"));
    }

    #[test]
    fn signing_key_is_the_libp2p_key() {
        let id = Identity::generate();
        let sk = id.signing_key().unwrap();
        let msg = b"delta";
        let sig = ed25519_dalek::Signer::sign(&sk, msg);
        // The libp2p public key verifies the dalek signature, and the peer
        // ID is the crdt-dag writer of that key.
        assert!(id.keypair.public().verify(msg, &sig.to_bytes()));
        let writer = crdt_dag::WriterId::from_public_key(&sk.verifying_key());
        assert_eq!(writer.to_string(), id.peer_id().to_base58());
    }

    #[test]
    fn an_id_that_does_not_match_the_key_is_refused() {
        let (text, _) = go_style_ed25519();
        let other = Identity::generate().peer_id().to_base58();
        let value: Value = serde_json::from_str(&text).unwrap();
        let tampered = text.replace(value["id"].as_str().unwrap(), &other);
        let err = Identity::from_json_str(&tampered, "identity.json").unwrap_err();
        match err {
            ConfigError::IdentityMismatch { id, key_id, .. } => {
                assert_eq!(id, other);
                assert_eq!(key_id, value["id"].as_str().unwrap());
            }
            other => panic!("unexpected: {other}"),
        }
        assert!(
            Identity::from_json_str(&tampered, "identity.json")
                .unwrap_err()
                .to_string()
                .contains("does not match the private key")
        );
    }

    #[test]
    fn malformed_identities_are_refused() {
        for (text, needle) in [
            ("{}", "`id` is missing"),
            (r#"{"id": "12D3KooWx"}"#, "`private_key` is missing"),
            (r#"{"id": "12D3KooWx", "private_key": ""}"#, "not a peer ID"),
            (r#"{"id": 1, "private_key": ""}"#, "`id` must be a string"),
            ("nope", "not valid JSON"),
        ] {
            let err = Identity::from_json_str(text, "t").unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let (good, _) = go_style_ed25519();
        let value: Value = serde_json::from_str(&good).unwrap();
        let no_key = format!(
            r#"{{"id": "{}", "private_key": "!!"}}"#,
            value["id"].as_str().unwrap()
        );
        assert!(
            Identity::from_json_str(&no_key, "t")
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
    }

    /// A 2048-bit RSA identity key made for this test (`openssl genrsa`), in
    /// libp2p protobuf form, base64: how older Go peers' identity.json holds it.
    const RSA_PRIVATE_KEY: &str = concat!(
        "CAASpwkwggSjAgEAAoIBAQDET5xopMcI8VxXayQJm82oVk0SzRe9IaBQZDODpmHP5LWs3UAWEwxh",
        "Rd0dFhHCKVbdzLnoEYUVv256qig2oM53++H+tx+ey7agB6WjPvbVR+gBVe4aVNaDOG6spssHTRbE",
        "VJ133BnVIiuRXe1RS4bnxYNlK5vgcGDRsaKLveeTp6opAw6pJgEvZZhXfVAN47IKyghjXGR8peJq",
        "N/cbRCQErBOaPlr0X0v01ET/iHhTkVqdgeZMSA/kgpH4PU5nRiyA0idL2NBZB+KyHRgdG/fGSBxe",
        "soRO2gWH/9vcyxjltFxh1sy1aNK1n+KYGOJXgqDBiTu7bJNqprm0wOJ3eSFlAgMBAAECggEANkh1",
        "TZJS3ywuhpW/z1Bf2+6RPWOs7sV/mPs8K2k0ntH1UqmTcQcvYy54Z/SUUIYx2P8lYQCHNm5K1Gx8",
        "1i49KXxjD5X/jl9yTmoO6Ucd5fgONWBXiLxw3LQcFm3AsnIkm4FyUZRxKDhcp8O7PcGOukQpgy49",
        "2h/5BcMC2XVXtcIoH+g3XEg4Z9SpPjZLUtkg+2fV2cPayG7VBsrvxl74daZ6DYOuyVU1vk7lKG3D",
        "9nhzw0PVZETqbeAvrfut1whpSwVNiO1tKH3DxBGxaEOSsrb9cz2iY0SiNQI7M+H/T26glQetD/OO",
        "vL7cn62SG6pqA2f+BSz1VvGwNoeikhYv+QKBgQD97gd0t4xU7cOlx1lYcMzyA/ek6YIvenUMBOeJ",
        "wg1Dog5Eh1sig964XGzaOYBGJC4XJ7dO2Nn8TJFO5CAjAhVHJfvPWoutwq447N8iN4aK/rQn1Eas",
        "/wSy6t3A2FEbUb2IvXhjDvFaMJj3L0Bs+1VRGdCe+6fs14ttqRqmpMjeOwKBgQDF6VO0UzEgkrQZ",
        "V45uUP9NdBB/w0k0hjGqGbW0uajPFey5O//WIhJ1p2zvF3jkO1xzhbtTY1mG2rlFXVrKrOS4qqv0",
        "zLp5CuFxdvXzfvSCwZ74uAjR2KXde2vXvt9fn7ClbNHhlty/dWFsNQbhjSkFb+vmRmhs/xpnpUNG",
        "u4nk3wKBgQDf8LzIlVsAR1Ok7yL/WTOVOCR9XqW+Q2vYNrcPiYBzJgcZLpoT3WJdCr3A0rcqpJu1",
        "NgR2V84esFPx1EP3O84SGhBx9LN8gVVuxI+gOIHCMRAmlBHkXV8CfxkkCmG1Cyhw4E+8ZKA7XuJ4",
        "FEboFdtPE8ole2DEAe9nvZvQXUD8owKBgAT3t1cmY2xK4mRkcznHpLDgAe4DC9pap/J6FLqFknwo",
        "M7nujJxmXIpBepWBxFIOP2LS74HHU57z7ISWNEo0DsWn2wsY/HE/WatMbh3/iMmjbIcXr3j89CTc",
        "DTfsHZU73+Y3FgmQjNftbVWW+yY8MdRmG8i66bIasSH63vZujKaHAoGASx8BRgFej3lp0kpZ0ltk",
        "yzYZLyVqhnD+NfLNY6SsmvZ8lbQno7Z6gFkAPSr6O0Sza9PqSstbeKMXC5dTpQzi32VXspNUT5jH",
        "VLS8qzy9hUs6OBjHsGj36QU8Pn44KAbON02yL3Kgy7aacKkmpg0NcWb7pC3G+Wx1E6wwYgra/Ik=",
    );
    /// Its peer ID (sha256 multihash form, `Qm...`), computed apart from
    /// libp2p: base58(0x12 0x20 sha256(protobuf(RSA, SPKI DER))).
    const RSA_PEER_ID: &str = "QmaTJTwkHTRuPXey4dmXEpY8x44ara2G9EzQ9dBfXaRvkb";

    #[test]
    fn go_rsa_identity_loads_without_a_signing_key() {
        let text = format!(
            "{{\n    \"id\": \"{RSA_PEER_ID}\",\n    \"private_key\": \"{RSA_PRIVATE_KEY}\"\n}}"
        );
        let id = Identity::from_json_str(&text, "rsa").unwrap();
        assert_eq!(id.peer_id().to_base58(), RSA_PEER_ID);
        assert!(RSA_PEER_ID.starts_with("Qm"));
        assert_eq!(id.key_type(), KeyType::RSA);
        assert!(id.signing_key().is_none());
        // rust-libp2p can't encode RSA keys: saving says so.
        assert!(id.to_json_string().is_err());
    }

    #[test]
    fn secp256k1_identity_loads_without_a_signing_key() {
        let id = Identity::from_keypair(Keypair::generate_secp256k1());
        let text = id.to_json_string().unwrap();
        let back = Identity::from_json_str(&text, "k").unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert!(back.signing_key().is_none());
    }

    #[test]
    fn legacy_96_byte_ed25519_keys_load() {
        let (_, identity) = go_style_ed25519();
        let modern = identity.keypair.to_protobuf_encoding().unwrap();
        let mut legacy = vec![0x08, 0x01, 0x12, 0x60];
        legacy.extend_from_slice(&modern[4..]);
        legacy.extend_from_slice(&modern[36..68]);
        let back = Identity::from_fields(
            &identity.peer_id().to_base58(),
            &BASE64.encode(&legacy),
            "legacy",
        )
        .unwrap();
        assert_eq!(back.peer_id(), identity.peer_id());
    }

    #[test]
    fn env_overrides_replace_the_identity_and_must_match() {
        let mut id = Identity::generate();
        let other = Identity::generate();
        let other_key = BASE64.encode(other.keypair.to_protobuf_encoding().unwrap());
        // Key without its id: Go refuses (the old id doesn't match).
        let err = id
            .apply_env(vec![(ENV_PRIVATE_KEY.to_owned(), other_key.clone())].into_iter())
            .unwrap_err();
        assert!(matches!(err, ConfigError::IdentityMismatch { .. }), "{err}");
        // Both: replaced.
        id.apply_env(
            vec![
                (ENV_ID.to_owned(), other.peer_id().to_base58()),
                (ENV_PRIVATE_KEY.to_owned(), other_key),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(id.peer_id(), other.peer_id());
        // Unrelated variables change nothing.
        id.apply_env(vec![("CLUSTER_PEERNAME".to_owned(), "x".to_owned())].into_iter())
            .unwrap();
        assert_eq!(id.peer_id(), other.peer_id());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let id = Identity::generate();
        let key = BASE64.encode(id.keypair.to_protobuf_encoding().unwrap());
        let dbg = format!("{id:?}");
        assert!(dbg.contains(&id.peer_id().to_base58()));
        assert!(!dbg.contains(&key));
    }
}
