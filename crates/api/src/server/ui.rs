//! `GET /ui` and `GET /ui/{*path}`: the dashboard's static assets
//! (crates/dashboard; spec/dashboard.md). They carry no data, so the gate
//! lets them through without credentials; the page asks for them when the
//! API answers 401.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::routes::{App, get_only, path_param};
use crate::ApiError;
use crate::service::ClusterApi;

/// The page loads only its own assets and talks only to this origin.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

pub(crate) fn routes<S: ClusterApi>() -> Router<Arc<App<S>>> {
    Router::new()
        .route("/ui", get_only(index))
        .route("/ui/{*path}", get_only(asset))
}

/// Whether the gate lets `path` through without credentials.
pub(crate) fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

async fn index() -> Response {
    serve("")
}

/// A path that is not UTF-8 is the API's JSON 400, as on every route.
async fn asset(path: Result<Path<String>, PathRejection>) -> Response {
    match path_param(path) {
        Ok(path) => serve(&path),
        Err(e) => e.into_response(),
    }
}

fn serve(path: &str) -> Response {
    let Some((bytes, kind)) = dashboard::asset(path) else {
        return ApiError::not_found(format!("no dashboard asset {path:?}")).into_response();
    };
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // A new binary may serve new assets under the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}
