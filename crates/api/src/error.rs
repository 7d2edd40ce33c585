//! [`ApiError`]: what the API answers when a request fails, as Go's
//! `api.Error` body `{"code":<status>,"message":"..."}`.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use crate::types::ApiErrorBody;

/// An error answered by the API: an HTTP status and a message, sent as
/// `{"code":status,"message":message}` (Go's `api.Error`).
///
/// The service ([`crate::service::ClusterApi`]) returns it to choose the
/// status: [`ApiError::not_found`] is a 404, [`ApiError::internal`] a 500, and
/// so on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({status})")]
pub struct ApiError {
    /// The HTTP status code (400..=599).
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
}

/// A parameter the model can't read is the client's fault: a 400.
impl From<cluster_types::ParseError> for ApiError {
    fn from(e: cluster_types::ParseError) -> Self {
        Self::bad_request(e.0)
    }
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed (the message names the parameter).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401 with Go's generic message.
    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized")
    }

    /// 403: the peer may not do this (it is not a trusted writer).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404: the thing asked for does not exist (for a pin: not in the pinset).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 409: the request can't be done in the current state (the message
    /// says why).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// 429: too many requests (a full write queue).
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, message)
    }

    /// 500: the operation failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// 501: the route exists but is not implemented yet.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(501, message)
    }

    /// 503: the service can't answer now (shutting down, not ready).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }

    /// The status as an [`http::StatusCode`] (500 when `status` is not a
    /// valid error status).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ApiErrorBody {
        ApiErrorBody {
            code: self.status_code().as_u16(),
            message: self.message.clone(),
        }
    }
}

impl From<ApiErrorBody> for ApiError {
    fn from(body: ApiErrorBody) -> Self {
        Self::new(body.code, body.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = ApiErrorBody {
            code: status.as_u16(),
            message: self.message,
        };
        let mut resp = (status, json_line(&body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// JSON of a value followed by a newline, as Go's `json.Encoder` writes it.
pub(crate) fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(mut v) => {
            v.push(b'\n');
            v
        }
        // Our types always serialize; keep a valid body if one ever does not.
        Err(e) => format!(
            "{{\"code\":500,\"message\":{}}}\n",
            serde_json::Value::String(format!("encoding the response: {e}"))
        )
        .into_bytes(),
    }
}
