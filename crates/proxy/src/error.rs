//! The proxy's errors: [`ProxyError`] for starting it, and [`KuboError`],
//! an answer in Kubo's RPC error shape.
//!
//! Why the shape matters: Kubo's CLI (go-ipfs-cmds `http/response.go`)
//! decodes an error answer (status >= 400) by its `Content-Type`; without
//! `application/json` (or `text/plain`) it gives up with "unknown error
//! content type" and never shows the message. Go IPFS Cluster's proxy
//! writes its errors with no `Content-Type`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use api::ApiError;

/// Errors of the proxy component (starting it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A key of the `api.ipfsproxy` config section is invalid.
    #[error("api.ipfsproxy.{key}: {message}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The listen address can't be bound.
    #[error("IPFS proxy: listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// go-ipfs-cmds' error codes (`cmds.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// `ErrNormal` (0): the command failed; a 500.
    Normal = 0,
    /// `ErrClient` (1): the request is wrong; a 400.
    Client = 1,
    /// `ErrImplementation` (2): not implemented here; a 501 (Kubo uses
    /// it for bugs and answers 500; this proxy uses it for calls the
    /// embedded node doesn't answer, so a client can tell them apart).
    Implementation = 2,
    /// `ErrForbidden` (4): a 403.
    Forbidden = 4,
}

/// An error answered as Kubo does: `{"Message":..,"Code":..,"Type":"error"}`
/// with `Content-Type: application/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KuboError {
    pub(crate) code: Code,
    pub(crate) message: String,
    /// Answered instead of the code's status (a 502 when Kubo is down).
    status: Option<StatusCode>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    message: &'a str,
    code: u8,
    #[serde(rename = "Type")]
    kind: &'static str,
}

impl KuboError {
    /// A failed command (500).
    pub(crate) fn normal(message: impl Into<String>) -> Self {
        Self {
            code: Code::Normal,
            message: message.into(),
            status: None,
        }
    }

    /// A malformed request (400).
    pub(crate) fn client(message: impl Into<String>) -> Self {
        Self {
            code: Code::Client,
            message: message.into(),
            status: None,
        }
    }

    /// A call this proxy does not answer (501).
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self {
            code: Code::Implementation,
            message: message.into(),
            status: None,
        }
    }

    /// The same error answered with `status`.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status of the answer.
    pub(crate) fn status(&self) -> StatusCode {
        if let Some(s) = self.status {
            return s;
        }
        match self.code {
            Code::Normal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Client => StatusCode::BAD_REQUEST,
            Code::Implementation => StatusCode::NOT_IMPLEMENTED,
            Code::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// The JSON body (one line).
    pub(crate) fn json(&self) -> String {
        let mut s = serde_json::to_string(&Body {
            message: &self.message,
            code: self.code as u8,
            kind: "error",
        })
        .unwrap_or_default();
        s.push('\n');
        s
    }
}

/// A cluster error keeps its meaning: a 4xx is the client's (Kubo's
/// `ErrClient`, or `ErrForbidden`), anything else a failed command.
impl From<ApiError> for KuboError {
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            403 => Code::Forbidden,
            400..=499 => Code::Client,
            _ => Code::Normal,
        };
        Self {
            code,
            message: e.message,
            status: None,
        }
    }
}

impl IntoResponse for KuboError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), self.json()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubo_shape_and_statuses() {
        let e = KuboError::normal("boom \"x\"");
        assert_eq!(
            e.json(),
            "{\"Message\":\"boom \\\"x\\\"\",\"Code\":0,\"Type\":\"error\"}\n"
        );
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let e = KuboError::from(ApiError::not_found("nope"));
        assert_eq!(
            (e.code, e.status()),
            (Code::Client, StatusCode::BAD_REQUEST)
        );
        let e = KuboError::from(ApiError::forbidden("no"));
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        let resp = KuboError::unsupported("x").into_response();
        assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }
}
