//! Errors as the Pinning Service API answers them: the spec's `Failure`
//! body, `{"error":{"reason":"NOT_FOUND","details":"..."}}`, with the
//! status of the [`ApiError`].

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

use super::model::{Failure, FailureError};
use crate::ApiError;
use crate::error::json_line;

/// The spec's reason for an HTTP status (its examples' codes where it has
/// them).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        429 => "TOO_MANY_REQUESTS",
        501 => "NOT_IMPLEMENTED",
        503 => "SERVICE_UNAVAILABLE",
        507 => "INSUFFICIENT_STORAGE",
        s if s < 500 => "BAD_REQUEST",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

/// The `Failure` answer of `e`.
pub(crate) fn failure(e: &ApiError) -> Response {
    let status = e.status_code();
    let body = Failure {
        error: FailureError {
            reason: reason(status.as_u16()).to_owned(),
            details: Some(e.message.clone()),
        },
    };
    let mut resp = (status, json_line(&body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A 400 naming the field that is wrong.
pub(crate) fn bad_field(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{field}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_spec_failure() {
        let resp = failure(&ApiError::not_found("no pin with requestid x"));
        assert_eq!(resp.status(), 404);
        assert_eq!(reason(400), "BAD_REQUEST");
        assert_eq!(reason(418), "BAD_REQUEST");
        assert_eq!(reason(502), "INTERNAL_SERVER_ERROR");
    }
}
