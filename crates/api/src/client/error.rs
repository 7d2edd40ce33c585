//! [`ClientError`], and how transport failures, error answers and bodies
//! that don't decode become one.

use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::types::ApiErrorBody;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The API answered with an error, or a stream ended with a non-empty
    /// `X-Stream-Error` trailer (then `code` is 500, as in Go's client).
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status.
        code: u16,
        /// The API's message.
        message: String,
    },
    /// The host is not an address the client can reach.
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// Why it can't be used.
        reason: String,
    },
    /// An argument can't be sent (e.g. a path that is neither a path nor a
    /// CID).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request could not be sent or the answer not read.
    #[error("{0}")]
    Transport(String),
    /// The answer is not the JSON expected.
    #[error("decoding the response: {0}")]
    Decode(String),
    /// The configured timeout passed.
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// Whether the configured timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// The HTTP status of an API error.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub(super) fn transport(e: &(dyn std::error::Error + 'static)) -> ClientError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ClientError::Transport(text)
}

/// The error of a non-success answer.
pub(super) fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) if !b.message.is_empty() || b.code != 0 => ClientError::Api {
            code: if b.code == 0 { status.as_u16() } else { b.code },
            message: b.message,
        },
        _ => ClientError::Api {
            code: status.as_u16(),
            message: {
                let text = String::from_utf8_lossy(body).trim().to_string();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    text
                }
            },
        },
    }
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_api_errors() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            br#"{"code":404,"message":"not found"}"#,
        );
        assert_eq!(e.api_code(), Some(404));
        assert_eq!(e.to_string(), "not found (404)");
        let e = api_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert!(
            matches!(e, ClientError::Api { code: 502, ref message } if message == "upstream down")
        );
        let e = api_error(StatusCode::METHOD_NOT_ALLOWED, b"");
        assert_eq!(e.to_string(), "Method Not Allowed (405)");
    }
}
