//! The handlers of the Pinning Service API over a [`ClusterApi`]: list,
//! add, get, replace and remove pin requests, plus Go's `POST /token` and
//! `GET /health`, and the spec itself at `GET /openapi.yaml`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cid::Cid;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use super::convert::{
    fallback_delegates, nanos, parse_request_id, pin_status, request_id, request_status,
    same_request,
};
use super::failure::failure;
use super::model::{PinResults, PinStatus, Status};
use super::page::Page;
use super::query::{ListQuery, PinRequest};
use crate::ApiError;
use crate::error::json_line;
use crate::server::{issue_token, query_pairs};
use crate::service::ClusterApi;
use crate::types::{GlobalPinInfo, Pin, PinOptions, PinTypeFilter, TrackerStatusFilter};

/// The spec, as vendored (v1.0.0), served at `GET /openapi.yaml`.
pub const SPEC_YAML: &str = include_str!("ipfs-pinning-service.yaml");

/// Shared state of the handlers.
pub(crate) struct App<S> {
    pub(crate) api: Arc<S>,
    pub(crate) credentials: Option<BTreeMap<String, String>>,
    pub(crate) token_ttl: std::time::Duration,
}

type AppState<S> = State<Arc<App<S>>>;

/// The routes (the gate is put in front by the caller).
pub(crate) fn routes<S: ClusterApi>(app: Arc<App<S>>) -> Router {
    Router::new()
        .route("/pins", get(list::<S>).post(add::<S>))
        .route(
            "/pins/{requestid}",
            get(get_one::<S>).post(replace::<S>).delete(remove::<S>),
        )
        .route("/token", post(token::<S>))
        .route("/health", get(health))
        .route("/openapi.yaml", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut resp = (status, json_line(value)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn answer<T: Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(v) => json(status, &v),
        Err(e) => failure(&e),
    }
}

async fn not_found() -> Response {
    failure(&ApiError::not_found("no such route"))
}

async fn method_not_allowed() -> Response {
    failure(&ApiError::new(405, "method not allowed on this route"))
}

async fn health() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn openapi() -> Response {
    let mut resp = (StatusCode::OK, SPEC_YAML).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    resp
}

async fn token<S: ClusterApi>(State(app): AppState<S>, req: Request) -> Response {
    answer(
        StatusCode::OK,
        issue_token(app.credentials.as_ref(), app.token_ttl, req.headers()),
    )
}

/// Delegates for a request none of whose allocated peers gave an IPFS
/// address: this peer's IPFS node's, else its cluster addresses.
async fn fallback<S: ClusterApi>(api: &S) -> Vec<String> {
    match api.id().await {
        Ok(id) => {
            let ipfs = fallback_delegates(&id.ipfs.addresses, &id.ipfs.id);
            if ipfs.is_empty() {
                fallback_delegates(&id.addresses, &id.id)
            } else {
                ipfs
            }
        }
        Err(e) => {
            tracing::warn!("pinning service: no delegates to offer: {e}");
            Vec::new()
        }
    }
}

/// Fills empty `delegates` (the spec wants at least one).
async fn with_delegates<S: ClusterApi>(api: &S, statuses: &mut [PinStatus]) {
    if statuses.iter().all(|s| !s.delegates.is_empty()) {
        return;
    }
    let offered = fallback(api).await;
    for s in statuses.iter_mut().filter(|s| s.delegates.is_empty()) {
        s.delegates.clone_from(&offered);
    }
}

/// `GET /pins`: one page of the requests passing the filters, newest
/// first, and how many pass.
async fn list<S: ClusterApi>(State(app): AppState<S>, RawQuery(raw): RawQuery) -> Response {
    let result = match ListQuery::parse(&query_pairs(raw)) {
        Ok(q) => list_page(app.api.as_ref(), &q).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::OK, result)
}

/// The CIDs of `cids` that are in the pinset.
async fn pinned_of<S: ClusterApi>(api: &S, cids: &[Cid]) -> Result<Vec<Cid>, ApiError> {
    let mut present = Vec::with_capacity(cids.len());
    for cid in cids {
        match api.allocation(*cid).await {
            Ok(_) => present.push(*cid),
            Err(e) if e.status == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(present)
}

async fn list_page<S: ClusterApi>(api: &S, q: &ListQuery) -> Result<PinResults, ApiError> {
    let every_status = Status::ALL.iter().all(|s| q.status.contains(s));
    let (count, mut results) = if every_status && q.cids.is_empty() {
        page_of_pins(api, q).await?
    } else {
        page_of_statuses(api, q).await?
    };
    with_delegates(api, &mut results).await;
    Ok(PinResults {
        count: u32::try_from(count).unwrap_or(u32::MAX),
        results,
    })
}

/// Whether a pin (its name, metadata and creation) passes the filters
/// other than `cid` and `status`.
fn passes(
    q: &ListQuery,
    name: &str,
    meta: &BTreeMap<String, String>,
    created: Option<SystemTime>,
) -> bool {
    q.name_matches(name) && q.meta_matches(meta) && q.time_matches(created)
}

/// Any status will do: the page is chosen from this peer's pinset alone,
/// and only its pins' statuses are asked of the peers.
async fn page_of_pins<S: ClusterApi>(
    api: &S,
    q: &ListQuery,
) -> Result<(u64, Vec<PinStatus>), ApiError> {
    let mut pins = api.allocations(PinTypeFilter::ALL);
    let mut page = Page::new(q.limit);
    while let Some(pin) = pins.next().await {
        let pin = pin?;
        if passes(q, &pin.options.name, &pin.options.metadata, pin.timestamp) {
            let id = request_id(&pin.cid, pin.timestamp);
            page.offer(nanos(pin.timestamp), id, pin);
        }
    }
    let (count, pins) = page.finish();
    if pins.is_empty() {
        return Ok((count, Vec::new()));
    }
    let mut statuses: BTreeMap<Cid, GlobalPinInfo> = BTreeMap::new();
    let mut stream = api.status_all(
        TrackerStatusFilter::ALL,
        false,
        pins.iter().map(|p| p.cid).collect(),
    );
    while let Some(gpi) = stream.next().await {
        let gpi = gpi?;
        statuses.insert(gpi.cid, gpi);
    }
    let results = pins
        .iter()
        .map(|pin| {
            let mut gpi = statuses
                .remove(&pin.cid)
                .unwrap_or_else(|| GlobalPinInfo::new(pin.cid));
            describe(&mut gpi, pin);
            pin_status(&gpi, &[])
        })
        .collect();
    Ok((count, results))
}

/// A status filter: every pin's status is read from every peer (the REST
/// API's `GET /pins`), the page kept from those that pass.
async fn page_of_statuses<S: ClusterApi>(
    api: &S,
    q: &ListQuery,
) -> Result<(u64, Vec<PinStatus>), ApiError> {
    let mut statuses = if q.cids.is_empty() {
        api.status_all(TrackerStatusFilter::ALL, false, Vec::new())
    } else {
        let present = pinned_of(api, &q.cids).await?;
        if present.is_empty() {
            return Ok((0, Vec::new()));
        }
        api.status_all(TrackerStatusFilter::ALL, false, present)
    };
    let mut page = Page::new(q.limit);
    while let Some(gpi) = statuses.next().await {
        let gpi = gpi?;
        if passes(q, &gpi.name, &gpi.metadata, gpi.created)
            && q.status.contains(&request_status(&gpi).0)
        {
            let id = request_id(&gpi.cid, gpi.created);
            page.offer(nanos(gpi.created), id, pin_status(&gpi, &[]));
        }
    }
    Ok(page.finish())
}

/// The pin of a request ID, as stored; 404 for an ID that names no
/// current request (unknown, removed, or replaced by a later request for
/// the same CID).
async fn request<S: ClusterApi>(api: &S, id: &str) -> Result<Pin, ApiError> {
    let unknown = || ApiError::not_found(format!("no pin request with requestid {id:?}"));
    let (cid, ns) = parse_request_id(id).ok_or_else(unknown)?;
    match api.allocation(cid).await {
        Ok(pin) if same_request(pin.timestamp, ns) => Ok(pin),
        Ok(_) => Err(unknown()),
        Err(e) if e.status == 404 => Err(unknown()),
        Err(e) => Err(e),
    }
}

/// Takes the request's fields from the pin as stored: the status read
/// from the peers may lag behind it.
fn describe(gpi: &mut GlobalPinInfo, pin: &Pin) {
    gpi.name.clone_from(&pin.options.name);
    gpi.created = pin.timestamp;
    gpi.origins.clone_from(&pin.options.origins);
    gpi.metadata.clone_from(&pin.options.metadata);
    gpi.allocations.clone_from(&pin.allocations);
}

/// The `PinStatus` of a pin just read or written.
async fn status_of<S: ClusterApi>(api: &S, pin: &Pin) -> Result<PinStatus, ApiError> {
    let mut gpi = match api.status(pin.cid, false).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(cid = %pin.cid, "pinning service: status unknown, answering queued: {e}");
            GlobalPinInfo::new(pin.cid)
        }
    };
    describe(&mut gpi, pin);
    let mut s = [pin_status(&gpi, &[])];
    with_delegates(api, &mut s).await;
    let [s] = s;
    Ok(s)
}

fn options_of(req: &PinRequest) -> PinOptions {
    PinOptions {
        name: req.name.clone(),
        origins: req.origins.clone(),
        metadata: req.meta.clone(),
        ..PinOptions::default()
    }
}

/// `POST /pins`: pins the CID with the cluster's default replication;
/// 202 with the new request.
async fn add<S: ClusterApi>(State(app): AppState<S>, body: Bytes) -> Response {
    let result = async {
        let req = PinRequest::parse(&body)?;
        let pin = app.api.pin(req.cid, options_of(&req)).await?;
        status_of(app.api.as_ref(), &pin).await
    }
    .await;
    answer(StatusCode::ACCEPTED, result)
}

/// `GET /pins/{requestid}`.
async fn get_one<S: ClusterApi>(State(app): AppState<S>, Path(id): Path<String>) -> Response {
    let result = async {
        let pin = request(app.api.as_ref(), &id).await?;
        status_of(app.api.as_ref(), &pin).await
    }
    .await;
    answer(StatusCode::OK, result)
}

/// `POST /pins/{requestid}`: the new pin is made first, as an update of
/// the old CID (IPFS moves its pin, so blocks both share are never
/// unpinned), then the old pin is removed; 202 with the new request.
async fn replace<S: ClusterApi>(
    State(app): AppState<S>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let req = PinRequest::parse(&body)?;
        let api = app.api.as_ref();
        let old = request(api, &id).await?;
        let mut options = options_of(&req);
        if req.cid != old.cid {
            options.pin_update = Some(old.cid);
        }
        let mut pin = api.pin(req.cid, options).await?;
        // An update keeps the old pin's options (Go's pin update); the
        // request's own name, meta and origins are what the new one has.
        let wanted = options_of(&req);
        if (
            &pin.options.name,
            &pin.options.metadata,
            &pin.options.origins,
        ) != (&wanted.name, &wanted.metadata, &wanted.origins)
        {
            pin = api.pin(req.cid, wanted).await?;
        }
        if req.cid != old.cid {
            api.unpin(old.cid).await?;
        }
        status_of(api, &pin).await
    }
    .await;
    answer(StatusCode::ACCEPTED, result)
}

/// `DELETE /pins/{requestid}`: unpins; 202 with no body.
async fn remove<S: ClusterApi>(State(app): AppState<S>, Path(id): Path<String>) -> Response {
    let result = async {
        let pin = request(app.api.as_ref(), &id).await?;
        app.api.unpin(pin.cid).await
    }
    .await;
    match result {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => failure(&e),
    }
}
