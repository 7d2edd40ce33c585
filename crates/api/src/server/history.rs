//! The history routes (`/history/heads`, `/history/sync`, `/history/car`,
//! `/history/log`, `/history/checkpoint`): what an auditor reads of the signed history,
//! and a checkpoint made on demand; no Go equivalent (spec/rest-api.md).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};

use super::routes::{App, answer, get_only, query_pairs};
use super::stream::stream_response;
use crate::service::ClusterApi;
use crate::types::HistoryLogQuery;

/// The media type of a CAR file (IANA `application/vnd.ipld.car`).
pub const CAR_CONTENT_TYPE: &str = "application/vnd.ipld.car";

pub(crate) fn routes<S: ClusterApi>() -> Router<Arc<App<S>>> {
    Router::new()
        .route("/history/heads", get_only(heads::<S>))
        .route("/history/sync", get_only(sync::<S>))
        .route("/history/car", get_only(car::<S>))
        .route("/history/log", get_only(log::<S>))
        .route("/history/checkpoint", post(checkpoint::<S>))
}

async fn heads<S: ClusterApi>(State(app): State<Arc<App<S>>>) -> Response {
    answer(app.api.history_heads().await)
}

async fn sync<S: ClusterApi>(State(app): State<Arc<App<S>>>) -> Response {
    answer(app.api.history_sync().await)
}

async fn checkpoint<S: ClusterApi>(State(app): State<Arc<App<S>>>) -> Response {
    answer(app.api.history_checkpoint().await)
}

/// The CAR streams as it is read; a failure before the first chunk is a
/// JSON error, a later one cuts the body short (the client sees a
/// truncated transfer, never a short file that looks whole).
async fn car<S: ClusterApi>(State(app): State<Arc<App<S>>>) -> Response {
    let mut chunks = app.api.history_car();
    let first = match chunks.next().await {
        Some(Err(e)) => return e.into_response(),
        first => first,
    };
    let body = futures::stream::iter(first)
        .chain(chunks)
        .map(|c| c.map_err(|e| std::io::Error::other(e.message)));
    let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CAR_CONTENT_TYPE),
    );
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"history.car\""),
    );
    resp
}

async fn log<S: ClusterApi>(State(app): State<Arc<App<S>>>, RawQuery(raw): RawQuery) -> Response {
    match HistoryLogQuery::from_query(&query_pairs(raw)) {
        Ok(q) => stream_response(app.api.history_log(q)).await,
        Err(e) => e.into_response(),
    }
}
