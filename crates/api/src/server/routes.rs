//! The route handlers: parse and validate the request, call the
//! [`ClusterApi`], write the answer (JSON with Go's trailing newline, or an
//! NDJSON stream).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, Request, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use cid::Cid;
use futures::StreamExt;
use futures::future::ready;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use super::auth;
use super::stream::{add_headers, add_stream_response, stream_response};
use crate::ApiError;
use crate::error::json_line;
use crate::multipart;
use crate::service::ClusterApi;
use crate::types::PinQuery;
use crate::types::{
    AddParams, AllocationsPage, GlobalRepoGc, PinOptions, PinTypeFilter, TokenBody,
    TrackerStatusFilter, parse_peer_id,
};

/// The OpenAPI 3 description served at `GET /openapi.json`.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// Shared state of the handlers.
pub(crate) struct App<S> {
    pub(crate) api: Arc<S>,
    pub(crate) credentials: Option<BTreeMap<String, String>>,
    /// Tokens' lifetime (`token_ttl`; zero: no `exp`, as Go's).
    pub(crate) token_ttl: std::time::Duration,
}

type AppState<S> = State<Arc<App<S>>>;

/// A 200 JSON answer as Go's `SendResponse` writes it (with a newline).
fn json<T: Serialize>(value: &T) -> Response {
    let mut resp = (StatusCode::OK, json_line(value)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn answer<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(v) => json(&v),
        Err(e) => e.into_response(),
    }
}

fn no_content(result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) fn query_pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> &'a str {
    q.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// `?local=true` (Go compares with exactly `"true"`).
fn local(q: &[(String, String)]) -> bool {
    query_get(q, "local") == "true"
}

pub(super) fn path_param<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::bad_request(format!("error parsing the path: {e}")))
}

/// Go's `ParseCidOrFail` message. Strict as Go's `cid.Decode`: trailing
/// bytes after the multihash and multibases Go doesn't decode (base10, ..)
/// are 400s ([`cluster_types::parse_cid`]).
fn parse_cid(hash: &str) -> Result<Cid, ApiError> {
    cluster_types::parse_cid(hash)
        .map_err(|e| ApiError::bad_request(format!("error decoding Cid {hash:?}: {e}")))
}

/// Go's `ParsePinPathOrFail`: `/<ipfs|ipns|ipld>/<path>`, whose first
/// segment must be a CID for `ipfs` and `ipld`.
fn parse_pin_path(key_type: &str, rest: &str) -> Result<String, ApiError> {
    let rest = rest.trim_end_matches('/');
    let first = rest.split('/').next().unwrap_or("");
    if first.is_empty() {
        return Err(ApiError::bad_request(format!(
            "error parsing path \"/{key_type}/{rest}\": path does not have enough components"
        )));
    }
    if key_type != "ipns" {
        cluster_types::parse_cid(first).map_err(|e| {
            ApiError::bad_request(format!(
                "error parsing path \"/{key_type}/{rest}\": invalid CID {first:?}: {e}"
            ))
        })?;
    }
    Ok(format!("/{key_type}/{rest}"))
}

fn is_key_type(s: &str) -> bool {
    matches!(s, "ipfs" | "ipns" | "ipld")
}

/// Every route of Go's REST API plus `GET /openapi.json`.
pub(crate) fn routes<S: ClusterApi>(app: Arc<App<S>>) -> Router {
    Router::new()
        .route("/id", get_only(id::<S>))
        .route("/version", get_only(version::<S>))
        .route("/peers", get_only(peers::<S>).post(peer_add))
        .route("/peers/{peer}", axum::routing::delete(peer_rm::<S>))
        .route("/add", post(add::<S>))
        .route("/allocations", get_only(allocations::<S>))
        .route("/allocations/{hash}", get_only(allocation::<S>))
        .route("/pins", get_only(status_all::<S>))
        .route(
            "/pins/{hash}",
            get_only(status::<S>)
                .post(pin_or_recover_all::<S>)
                .delete(unpin::<S>),
        )
        .route("/pins/{hash}/{*rest}", any(pins_nested::<S>))
        .route("/ipfs/gc", post(repo_gc::<S>))
        .route("/health", get_only(health))
        .route("/health/graph", get_only(graph::<S>))
        .route("/health/alerts", get_only(alerts::<S>))
        .route("/health/bandwidth", get_only(bandwidth::<S>))
        .route("/monitor/metrics", get_only(metric_names::<S>))
        .route("/monitor/metrics/{name}", get_only(metrics::<S>))
        .route("/token", post(token::<S>))
        .route("/openapi.json", get_only(openapi))
        .merge(super::history::routes::<S>())
        .merge(super::ui::routes::<S>())
        .fallback(not_found)
        .with_state(app)
}

/// `GET` alone: axum answers `HEAD` with the `get` handler, Go's router
/// refuses it (405).
pub(super) fn get_only<H, T, St>(handler: H) -> MethodRouter<St>
where
    H: Handler<T, St>,
    T: 'static,
    St: Clone + Send + Sync + 'static,
{
    get(handler).head(method_not_allowed)
}

async fn method_not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

async fn not_found() -> Response {
    ApiError::not_found("not found").into_response()
}

async fn health() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn openapi() -> Response {
    let mut resp = (StatusCode::OK, OPENAPI).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `POST /add` (Go's `addHandler`): the multipart body is checked first,
/// then the parameters (400s), then the first part's headers (a 400 when
/// the body is malformed), then the upload is read as a stream of
/// entries while the service's [`AddedOutput`](crate::types::AddedOutput)s
/// are written: NDJSON with a trailer (`stream-channels=true`, the
/// default), or one JSON array once the add is over (500 with Go's error
/// body if it failed).
async fn add<S: ClusterApi>(
    State(app): AppState<S>,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let boundary = match multipart::boundary(content_type) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let params = match AddParams::from_query(&query_pairs(raw)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let stream_channels = params.stream_channels;
    let mut files = multipart::read_upload(req.into_body().into_data_stream(), boundary);
    // The first part's headers are read before answering: a body that is
    // not the multipart it claims to be is a 400, not a 200 whose trailer
    // says so.
    let first = files.next().await;
    if let Some(Err(e)) = &first
        && e.status == StatusCode::BAD_REQUEST.as_u16()
    {
        let mut resp = e.clone().into_response();
        add_headers(&mut resp);
        return resp;
    }
    let files = futures::stream::iter(first).chain(files).boxed();
    let outputs = app.api.add(params, files);
    if stream_channels {
        return add_stream_response(outputs);
    }
    // Go's stream-channels=false: buffered, one JSON array (`null` when
    // nothing was added), or a 500 with the error.
    let mut items = Vec::new();
    let mut outputs = outputs;
    while let Some(item) = outputs.next().await {
        match item {
            Ok(o) => items.push(o),
            Err(e) => {
                // Go: a 500 whatever went wrong; a malformed upload (a
                // 400 from the multipart reader) stays a 400.
                let e = if e.status == StatusCode::BAD_REQUEST.as_u16() {
                    e
                } else {
                    ApiError::internal(e.message)
                };
                let mut resp = e.into_response();
                add_headers(&mut resp);
                return resp;
            }
        }
    }
    let body = if items.is_empty() {
        json_line(&serde_json::Value::Null)
    } else {
        json_line(&items)
    };
    let mut resp = (StatusCode::OK, body).into_response();
    add_headers(&mut resp);
    resp
}

async fn id<S: ClusterApi>(State(app): AppState<S>) -> Response {
    answer(app.api.id().await)
}

async fn version<S: ClusterApi>(State(app): AppState<S>) -> Response {
    answer(app.api.version().await)
}

async fn peers<S: ClusterApi>(State(app): AppState<S>) -> Response {
    stream_response(app.api.peers()).await
}

/// `POST /peers`: the body is checked as Go does, then 501 (peers join with
/// `ipfs-cluster-service daemon --bootstrap`).
async fn peer_add(body: Result<Bytes, BytesRejection>) -> Response {
    #[derive(serde::Deserialize)]
    struct PeerAddBody {
        #[serde(default)]
        peer_id: String,
    }
    // axum's rejection (a 413 past its 2 MB limit) is plain text: clients
    // read Go's error body.
    let body = match body {
        Ok(b) => b,
        Err(e) => return ApiError::new(e.status().as_u16(), e.body_text()).into_response(),
    };
    let Ok(parsed) = serde_json::from_slice::<PeerAddBody>(&body) else {
        return ApiError::bad_request("error decoding request body").into_response();
    };
    if parse_peer_id(&parsed.peer_id).is_err() {
        return ApiError::bad_request("error decoding peer_id").into_response();
    }
    ApiError::not_implemented(
        "peer add is not implemented: start the new peer with \
         ipfs-cluster-service daemon --bootstrap <this peer's address>",
    )
    .into_response()
}

async fn peer_rm<S: ClusterApi>(
    State(app): AppState<S>,
    peer: Result<Path<String>, PathRejection>,
) -> Response {
    let peer = match path_param(peer).and_then(|p| {
        parse_peer_id(&p)
            .map_err(|e| ApiError::bad_request(format!("error decoding Peer ID: {}", e.message)))
    }) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    no_content(app.api.peer_rm(peer).await)
}

async fn allocations<S: ClusterApi>(State(app): AppState<S>, RawQuery(raw): RawQuery) -> Response {
    let q = query_pairs(raw);
    let filter = match PinTypeFilter::parse(query_get(&q, "filter")).map_err(ApiError::from) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let page = match AllocationsPage::from_query(&q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if page.is_unpaged() {
        let stream = app
            .api
            .allocations(filter)
            .filter(move |r| ready(r.as_ref().map_or(true, |p| filter.matches(p.pin_type))))
            .boxed();
        return stream_response(stream).await;
    }
    let limit = usize::try_from(page.limit)
        .ok()
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let stream = app
        .api
        .allocations_after(filter, page.after)
        .filter(move |r| {
            ready(r.as_ref().map_or(true, |p| {
                filter.matches(p.pin_type) && page.is_after(p) && page.matches(p)
            }))
        })
        .take(limit)
        .boxed();
    stream_response(stream).await
}

async fn allocation<S: ClusterApi>(
    State(app): AppState<S>,
    hash: Result<Path<String>, PathRejection>,
) -> Response {
    match path_param(hash).and_then(|h| parse_cid(&h)) {
        Ok(cid) => answer(app.api.allocation(cid).await),
        Err(e) => e.into_response(),
    }
}

async fn status_all<S: ClusterApi>(State(app): AppState<S>, RawQuery(raw): RawQuery) -> Response {
    let q = query_pairs(raw);
    let local = local(&q);
    let cids_param = query_get(&q, "cids");
    if !cids_param.is_empty() {
        // Go's statusCidsHandler: the filter is not used with cids.
        let cids: Result<Vec<Cid>, ApiError> = cids_param.split(',').map(parse_cid).collect();
        return match cids {
            Ok(cids) => {
                stream_response(app.api.status_all(TrackerStatusFilter::ALL, local, cids)).await
            }
            Err(e) => e.into_response(),
        };
    }
    let filter = match TrackerStatusFilter::parse(query_get(&q, "filter")).map_err(ApiError::from) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let stream = app
        .api
        .status_all(filter, local, Vec::new())
        .filter(move |r| ready(r.as_ref().map_or(true, |g| g.matches(filter))))
        .boxed();
    stream_response(stream).await
}

async fn status<S: ClusterApi>(
    State(app): AppState<S>,
    hash: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query_pairs(raw);
    match path_param(hash).and_then(|h| parse_cid(&h)) {
        Ok(cid) => answer(app.api.status(cid, local(&q)).await),
        Err(e) => e.into_response(),
    }
}

/// `POST /pins/recover` (recover all) or `POST /pins/{cid}` (pin): Go's
/// router tries them in that order.
async fn pin_or_recover_all<S: ClusterApi>(
    State(app): AppState<S>,
    hash: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query_pairs(raw);
    let hash = match path_param(hash) {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    if hash == "recover" {
        return stream_response(app.api.recover_all(local(&q))).await;
    }
    let cid = match parse_cid(&hash) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match PinOptions::from_query(&q) {
        Ok(opts) => answer(app.api.pin(cid, opts).await),
        Err(e) => e.into_response(),
    }
}

async fn unpin<S: ClusterApi>(
    State(app): AppState<S>,
    hash: Result<Path<String>, PathRejection>,
) -> Response {
    match path_param(hash).and_then(|h| parse_cid(&h)) {
        Ok(cid) => answer(app.api.unpin(cid).await),
        Err(e) => e.into_response(),
    }
}

/// `/pins/{a}/{rest...}`: `POST /pins/{cid}/recover` first (as Go's router),
/// then `POST|DELETE /pins/{ipfs|ipns|ipld}/{path}`.
async fn pins_nested<S: ClusterApi>(
    State(app): AppState<S>,
    method: Method,
    parts: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (first, rest) = match path_param(parts) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let q = query_pairs(raw);
    let recover_route = rest == "recover";
    let path_route = is_key_type(&first);
    match method {
        Method::POST if recover_route => match parse_cid(&first) {
            Ok(cid) => answer(app.api.recover(cid, local(&q)).await),
            Err(e) => e.into_response(),
        },
        Method::POST if path_route => {
            let path = match parse_pin_path(&first, &rest) {
                Ok(p) => p,
                Err(e) => return e.into_response(),
            };
            match PinOptions::from_query(&q) {
                Ok(opts) => answer(app.api.pin_path(path, opts).await),
                Err(e) => e.into_response(),
            }
        }
        Method::DELETE if path_route => match parse_pin_path(&first, &rest) {
            Ok(path) => answer(app.api.unpin_path(path).await),
            Err(e) => e.into_response(),
        },
        _ if recover_route || path_route => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        _ => ApiError::not_found("not found").into_response(),
    }
}

async fn repo_gc<S: ClusterApi>(State(app): AppState<S>, RawQuery(raw): RawQuery) -> Response {
    let q = query_pairs(raw);
    let result: Result<GlobalRepoGc, ApiError> = app.api.repo_gc(local(&q)).await;
    answer(result)
}

async fn graph<S: ClusterApi>(State(app): AppState<S>) -> Response {
    answer(app.api.health_graph().await)
}

async fn alerts<S: ClusterApi>(State(app): AppState<S>) -> Response {
    answer(app.api.alerts().await)
}

async fn bandwidth<S: ClusterApi>(State(app): AppState<S>) -> Response {
    answer(app.api.bandwidth().await)
}

async fn metric_names<S: ClusterApi>(State(app): AppState<S>) -> Response {
    answer(app.api.metric_names().await)
}

async fn metrics<S: ClusterApi>(
    State(app): AppState<S>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    match path_param(name) {
        Ok(name) => answer(app.api.metrics(name).await),
        Err(e) => e.into_response(),
    }
}

/// `POST /token` (Go's `GenerateTokenHandler`): a JWT for the user of the
/// Basic credentials or of a valid bearer token.
async fn token<S: ClusterApi>(State(app): AppState<S>, req: Request) -> Response {
    answer(issue_token(
        app.credentials.as_ref(),
        app.token_ttl,
        req.headers(),
    ))
}

/// The token `POST /token` answers (REST API and Pinning Service API): a
/// JWT for the user of the Basic credentials or of a valid bearer token.
pub(crate) fn issue_token(
    credentials: Option<&BTreeMap<String, String>>,
    ttl: std::time::Duration,
    headers: &http::HeaderMap,
) -> Result<TokenBody, ApiError> {
    let creds = credentials.ok_or_else(ApiError::unauthorized)?;
    let issuer = if let Some((user, _)) = auth::basic_credentials(headers) {
        user
    } else if let Some(token) = auth::bearer_token(headers) {
        auth::verify_token(creds, &token, std::time::SystemTime::now())
            .map_err(|_| ApiError::unauthorized())?
    } else {
        return Err(ApiError::unauthorized());
    };
    let password = creds.get(&issuer).ok_or_else(ApiError::unauthorized)?;
    Ok(TokenBody {
        token: auth::sign_token(&issuer, password, ttl, std::time::SystemTime::now()),
    })
}
