//! Authentication as Go's REST API does it: HTTP Basic against
//! `basic_auth_credentials`, or `Authorization: Bearer <JWT>` where the JWT
//! is HS256 (HS384/HS512 accepted) with `iss` = a configured user, signed
//! with that user's password. Tokens are made by `POST /token`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// URL-safe base64 without padding for encoding; decoding accepts padding
/// too, as golang-jwt v4 does.
const JWT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The realm of every `WWW-Authenticate` challenge.
const REALM: &str = "Restricted IPFS Cluster API";

/// Why a request was refused: the 401 message and its challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    /// The `message` of the 401 body.
    pub(crate) message: &'static str,
    /// `WWW-Authenticate` values, in order.
    pub(crate) challenges: Vec<HeaderValue>,
    /// Credentials were given and were wrong (counted as a failed login).
    pub(crate) guessed: bool,
}

/// The credentials of `Authorization: Basic ...` (Go's `Request.BasicAuth`).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let prefix = b"basic ";
    if value.len() < prefix.len() || !value[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let decoded = STANDARD.decode(&value[prefix.len()..]).ok()?;
    // Not text: still Basic auth, and it can't match a configured user.
    let Ok(text) = String::from_utf8(decoded) else {
        return Some((String::new(), String::new()));
    };
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let prefix = "bearer ";
    if value.len() < prefix.len() || !value[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    Some(value[prefix.len()..].to_string())
}

/// Equality of secrets without an early exit on the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn verify_basic(creds: &BTreeMap<String, String>, user: &str, pass: &str) -> bool {
    if user.is_empty() || pass.is_empty() {
        return false;
    }
    creds.get(user).is_some_and(|p| same_secret(p, pass))
}

fn challenge(scheme: &str, error: Option<&str>) -> HeaderValue {
    let mut text = format!("{scheme} realm=\"{REALM}\"");
    if let Some(e) = error {
        text.push_str(&format!(", error=\"{e}\""));
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

/// Go's `authHandler` decision for a request that needs authentication.
pub(crate) fn check(creds: &BTreeMap<String, String>, headers: &HeaderMap) -> Result<(), Denied> {
    if let Some((user, pass)) = basic_credentials(headers) {
        return if verify_basic(creds, &user, &pass) {
            Ok(())
        } else {
            Err(Denied {
                message: "unauthorized: access denied",
                challenges: vec![challenge("Basic", None)],
                guessed: true,
            })
        };
    }
    if let Some(token) = bearer_token(headers) {
        return match verify_token(creds, &token, SystemTime::now()) {
            Ok(_) => Ok(()),
            Err(why) => {
                tracing::debug!("rejected bearer token: {why}");
                Err(Denied {
                    message: "unauthorized: invalid token",
                    challenges: vec![challenge("Bearer", Some("invalid_token"))],
                    guessed: true,
                })
            }
        };
    }
    Err(Denied {
        message: "unauthorized: no auth provided",
        challenges: vec![challenge("Bearer", None), challenge("Basic", None)],
        guessed: false,
    })
}

fn hmac_sign(alg: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
        mac.update(data);
        Some(mac.finalize().into_bytes().to_vec())
    }
    match alg {
        "HS256" => run::<Hmac<Sha256>>(key, data),
        "HS384" => run::<Hmac<Sha384>>(key, data),
        "HS512" => run::<Hmac<Sha512>>(key, data),
        _ => None,
    }
}

/// The token Go's `POST /token` makes: header `{"alg":"HS256","typ":"JWT"}`,
/// claims `{"iss":<user>}`, HS256 with the user's password; with a `ttl`
/// (`token_ttl`, ours) the claims also say when it was issued and expires.
pub(crate) fn sign_token(issuer: &str, password: &str, ttl: Duration, now: SystemTime) -> String {
    let header = JWT_B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = if ttl.is_zero() {
        serde_json::json!({ "iss": issuer })
    } else {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let exp = iat.saturating_add(ttl.as_secs().max(1));
        serde_json::json!({ "iss": issuer, "iat": iat, "exp": exp })
    };
    let claims = JWT_B64.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let sig = hmac_sign("HS256", password.as_bytes(), signing_input.as_bytes()).unwrap_or_default();
    format!("{signing_input}.{}", JWT_B64.encode(sig))
}

/// Checks a bearer token (golang-jwt v4 `ParseWithClaims` with registered
/// claims and an HMAC key looked up by issuer) and returns the issuer.
pub(crate) fn verify_token(
    creds: &BTreeMap<String, String>,
    token: &str,
    now: SystemTime,
) -> Result<String, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token contains an invalid number of segments".into());
    };
    let header: Value = JWT_B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed token header")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("token header has no alg")?;
    if !matches!(alg, "HS256" | "HS384" | "HS512") {
        return Err(format!(
            "unexpected token signing method {alg:?} (not HMAC)"
        ));
    }
    let claims: Value = JWT_B64
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed token claims")?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or("no issuer set")?;
    let key = creds.get(issuer).ok_or("issuer not found")?;

    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let number = |name: &str| -> Result<Option<f64>, String> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or(format!("claim {name} is not a number")),
        }
    };
    if number("exp")?.is_some_and(|exp| now_secs > exp) {
        return Err("token is expired".into());
    }
    if number("iat")?.is_some_and(|iat| now_secs < iat) {
        return Err("token used before issued".into());
    }
    if number("nbf")?.is_some_and(|nbf| now_secs < nbf) {
        return Err("token is not valid yet".into());
    }

    let signature = JWT_B64.decode(s).map_err(|_| "malformed signature")?;
    let expected =
        hmac_sign(alg, key.as_bytes(), format!("{h}.{c}").as_bytes()).ok_or("signing failed")?;
    let equal = signature.len() == expected.len()
        && signature
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    if !equal {
        return Err("signature is invalid".into());
    }
    Ok(issuer.to_string())
}

/// Encodes Basic credentials for an `Authorization` header.
pub(crate) fn basic_header(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn creds() -> BTreeMap<String, String> {
        BTreeMap::from([("alice".to_string(), "secret".to_string())])
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn token_is_what_golang_jwt_v4_makes() {
        // Header and claims are fixed JSON, so the token is deterministic.
        let t = sign_token("alice", "secret", Duration::ZERO, SystemTime::now());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts[0], "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
        assert_eq!(
            JWT_B64.decode(parts[1]).unwrap(),
            br#"{"iss":"alice"}"#.to_vec()
        );
        assert_eq!(
            verify_token(&creds(), &t, SystemTime::now()).unwrap(),
            "alice"
        );
    }

    #[test]
    fn tokens_with_a_lifetime_expire() {
        let now = SystemTime::now();
        let t = sign_token("alice", "secret", Duration::from_secs(60), now);
        assert_eq!(verify_token(&creds(), &t, now).unwrap(), "alice");
        let later = now + Duration::from_secs(61);
        assert_eq!(
            verify_token(&creds(), &t, later).unwrap_err(),
            "token is expired"
        );
    }

    #[test]
    fn bad_tokens_are_refused() {
        let now = SystemTime::now();
        let good = sign_token("alice", "secret", Duration::ZERO, SystemTime::now());
        assert!(
            verify_token(
                &creds(),
                &sign_token("alice", "wrong", Duration::ZERO, now),
                now
            )
            .is_err()
        );
        assert!(
            verify_token(
                &creds(),
                &sign_token("bob", "secret", Duration::ZERO, now),
                now
            )
            .is_err()
        );
        assert!(verify_token(&creds(), "a.b", now).is_err());
        assert!(verify_token(&creds(), &format!("{good}x"), now).is_err());
        // alg none is not HMAC.
        let none = format!(
            "{}.{}.",
            JWT_B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            JWT_B64.encode(br#"{"iss":"alice"}"#)
        );
        assert!(verify_token(&creds(), &none, now).is_err());
        // An expired token.
        let h = JWT_B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let c = JWT_B64.encode(br#"{"iss":"alice","exp":1000}"#);
        let sig = hmac_sign("HS256", b"secret", format!("{h}.{c}").as_bytes()).unwrap();
        let expired = format!("{h}.{c}.{}", JWT_B64.encode(sig));
        assert_eq!(
            verify_token(&creds(), &expired, UNIX_EPOCH + Duration::from_secs(999)).unwrap(),
            "alice"
        );
        assert!(verify_token(&creds(), &expired, now).is_err());
    }

    #[test]
    fn basic_and_bearer_headers_decide_like_go() {
        let ok = basic_header("alice", "secret");
        assert_eq!(check(&creds(), &headers(&ok)), Ok(()));
        assert_eq!(
            check(&creds(), &headers(&ok.replace("Basic", "bAsIc"))),
            Ok(())
        );
        let denied = check(&creds(), &headers(&basic_header("alice", "nope"))).unwrap_err();
        assert_eq!(denied.message, "unauthorized: access denied");
        let bearer = format!(
            "Bearer {}",
            sign_token("alice", "secret", Duration::ZERO, SystemTime::now())
        );
        assert_eq!(check(&creds(), &headers(&bearer)), Ok(()));
        let bad = check(&creds(), &headers("Bearer nonsense")).unwrap_err();
        assert_eq!(bad.message, "unauthorized: invalid token");
        let none = check(&creds(), &HeaderMap::new()).unwrap_err();
        assert_eq!(none.message, "unauthorized: no auth provided");
        assert_eq!(none.challenges.len(), 2);
        // An empty password never matches.
        assert!(check(&creds(), &headers(&basic_header("alice", ""))).is_err());
    }
}
