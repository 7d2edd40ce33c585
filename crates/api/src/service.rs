//! [`ClusterApi`]: what a peer implements for the REST server to serve. The
//! server parses and validates requests, calls one method per route and
//! writes the answer; the peer does the work.

use std::future::Future;

use bytes::Bytes;
use cid::Cid;
use futures::stream::{self, BoxStream};

use crate::ApiError;
use crate::types::{
    AddParams, AddedOutput, Alert, BandwidthStats, ConnectGraph, GlobalPinInfo, GlobalRepoGc,
    HistoryCheckpoint, HistoryDelta, HistoryHeads, HistoryLogQuery, HistorySync, Id, Metric, Pin,
    PinOptions, PinTypeFilter, TrackerStatusFilter, Version,
};

/// One entry of an upload to `POST /add`, in the order the multipart body
/// carries them (a directory's entry, when sent, before its contents).
pub struct AddFile {
    /// The entry's path: relative, `/`-separated, cleaned (no `.`, `..` or
    /// empty components); the first component is the top-level entry. A
    /// single unnamed file has the empty path.
    pub path: String,
    /// A file and its bytes, or a directory.
    pub kind: AddFileKind,
}

/// What an [`AddFile`] is.
pub enum AddFileKind {
    /// A regular file. Its bytes arrive as the upload is read: the stream
    /// must be read to its end (or dropped) before the next entry is asked
    /// for.
    File(BoxStream<'static, Result<Bytes, ApiError>>),
    /// A directory (its entries follow, with paths below it). Directories
    /// can also be implicit: the parents of a path need not be sent.
    Directory,
}

impl std::fmt::Debug for AddFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish()
    }
}

impl std::fmt::Debug for AddFileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddFileKind::File(_) => f.write_str("File"),
            AddFileKind::Directory => f.write_str("Directory"),
        }
    }
}

/// The cluster operations behind the REST routes.
///
/// Errors choose the answer's status: [`ApiError::not_found`] is a 404, and
/// any other [`ApiError`] is sent with its own status. Streams are written
/// as newline-delimited JSON as they are produced, never collected: an
/// error as the first item is a 500, a later one ends the stream and is
/// reported in the `X-Stream-Error` trailer.
pub trait ClusterApi: Send + Sync + 'static {
    /// `GET /id`: this peer.
    fn id(&self) -> impl Future<Output = Result<Id, ApiError>> + Send;

    /// `GET /version`.
    fn version(&self) -> impl Future<Output = Result<Version, ApiError>> + Send;

    /// `GET /peers`: every cluster peer's [`Id`] (an unreachable peer is an
    /// item with `error` set, not a stream error).
    fn peers(&self) -> BoxStream<'static, Result<Id, ApiError>>;

    /// `DELETE /peers/{peer}` (the peer ID is validated).
    fn peer_rm(&self, peer: String) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `GET /allocations`: the pinset, pins of the filter's types (the
    /// server filters again, so a service may ignore the filter).
    fn allocations(&self, filter: PinTypeFilter) -> BoxStream<'static, Result<Pin, ApiError>>;

    /// `GET /allocations?after=&limit=&search=`: the pins of the filter's
    /// types whose CID's bytes sort after `after`'s, in CID byte order (the
    /// server filters again and cuts the page; a stream in another order
    /// pages wrongly). The default reads [`allocations`](Self::allocations)
    /// from its start, so a service should start at the cursor.
    fn allocations_after(
        &self,
        filter: PinTypeFilter,
        after: Option<Cid>,
    ) -> BoxStream<'static, Result<Pin, ApiError>> {
        let after = after.map(|c| c.to_bytes());
        let pins = self.allocations(filter);
        match after {
            None => pins,
            Some(after) => Box::pin(futures::StreamExt::filter(pins, move |r| {
                std::future::ready(r.as_ref().map_or(true, |p| p.cid.to_bytes() > after))
            })),
        }
    }

    /// `GET /allocations/{cid}`: one pin; [`ApiError::not_found`] when it is
    /// not in the pinset.
    fn allocation(&self, cid: Cid) -> impl Future<Output = Result<Pin, ApiError>> + Send;

    /// `POST /pins/{cid}`: pins with the options of the query; answers the
    /// pin as stored.
    fn pin(
        &self,
        cid: Cid,
        options: PinOptions,
    ) -> impl Future<Output = Result<Pin, ApiError>> + Send;

    /// `POST /pins/{ipfs|ipns|ipld}/{path}`: resolves `path` (e.g.
    /// `/ipfs/<cid>/a/b`, `/ipns/<name>`) and pins the result.
    fn pin_path(
        &self,
        path: String,
        options: PinOptions,
    ) -> impl Future<Output = Result<Pin, ApiError>> + Send;

    /// `DELETE /pins/{cid}`: answers the pin removed.
    fn unpin(&self, cid: Cid) -> impl Future<Output = Result<Pin, ApiError>> + Send;

    /// `DELETE /pins/{ipfs|ipns|ipld}/{path}`: resolves and unpins.
    fn unpin_path(&self, path: String) -> impl Future<Output = Result<Pin, ApiError>> + Send;

    /// `GET /pins/{cid}`: the status on every peer, or on this one only
    /// (`local`, a one-entry `peer_map`).
    fn status(
        &self,
        cid: Cid,
        local: bool,
    ) -> impl Future<Output = Result<GlobalPinInfo, ApiError>> + Send;

    /// `GET /pins`: the status of every pin (or of `cids` when not empty),
    /// entries passing `filter` (the server filters again; with `cids` the
    /// filter is [`TrackerStatusFilter::ALL`], as in Go).
    fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: Vec<Cid>,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>>;

    /// `POST /pins/{cid}/recover`: retries a failed pin or unpin.
    fn recover(
        &self,
        cid: Cid,
        local: bool,
    ) -> impl Future<Output = Result<GlobalPinInfo, ApiError>> + Send;

    /// `POST /pins/recover`: retries every failed item; streams only the
    /// items it re-queued.
    fn recover_all(&self, local: bool) -> BoxStream<'static, Result<GlobalPinInfo, ApiError>>;

    /// `POST /ipfs/gc`: runs IPFS garbage collection on every peer (or this
    /// one).
    fn repo_gc(&self, local: bool) -> impl Future<Output = Result<GlobalRepoGc, ApiError>> + Send;

    /// `GET /monitor/metrics`: the names of the metrics the monitor holds.
    fn metric_names(&self) -> impl Future<Output = Result<Vec<String>, ApiError>> + Send;

    /// `GET /monitor/metrics/{name}`: the latest metric of each peer.
    fn metrics(&self, name: String) -> impl Future<Output = Result<Vec<Metric>, ApiError>> + Send;

    /// `GET /health/alerts`: recent alerts, newest first.
    fn alerts(&self) -> impl Future<Output = Result<Vec<Alert>, ApiError>> + Send;

    /// `GET /health/graph`: the connectivity graph.
    fn health_graph(&self) -> impl Future<Output = Result<ConnectGraph, ApiError>> + Send;

    /// `GET /health/bandwidth`: traffic per libp2p protocol.
    fn bandwidth(&self) -> impl Future<Output = Result<BandwidthStats, ApiError>> + Send;

    /// `POST /add`: imports the uploaded `files` (validated `params`) into
    /// IPFS and pins the root (unless `no_pin`); streams Go's
    /// [`AddedOutput`] for each file, then each directory, the root last.
    /// An error item ends the add (it goes in the `X-Stream-Error`
    /// trailer, or is the 500 answer with `stream-channels=false`).
    ///
    /// The default answers 501: a service without an IPFS to add to.
    fn add(
        &self,
        params: AddParams,
        files: BoxStream<'static, Result<AddFile, ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
        let _ = (params, files);
        Box::pin(stream::iter([Err(ApiError::not_implemented(
            "add needs an IPFS to import into: this peer does not implement it yet",
        ))]))
    }

    /// `GET /history/heads`: the heads, the state hash and the trust policy
    /// in force. The default answers 501 (a service with no signed history).
    fn history_heads(&self) -> impl Future<Output = Result<HistoryHeads, ApiError>> + Send {
        std::future::ready(Err(ApiError::not_implemented(NO_HISTORY)))
    }

    /// `GET /history/sync`: this peer's lag behind the heights other peers
    /// announced, and its sync counters. The default answers 501.
    fn history_sync(&self) -> impl Future<Output = Result<HistorySync, ApiError>> + Send {
        std::future::ready(Err(ApiError::not_implemented(NO_HISTORY)))
    }

    /// `POST /history/checkpoint`: signs a checkpoint of the current state
    /// (spec/crdt.md §10) and keeps it as the one this peer serves. 403
    /// when this peer may not write, 409 when the history can't be
    /// checkpointed now (empty, a forked writer, tombs waiting). The
    /// default answers 501.
    fn history_checkpoint(
        &self,
    ) -> impl Future<Output = Result<HistoryCheckpoint, ApiError>> + Send {
        std::future::ready(Err(ApiError::not_implemented(NO_HISTORY)))
    }

    /// `GET /history/car`: the applied history as CAR v1 (spec/crdt.md §7),
    /// in chunks as it is read. An error ends the body short.
    fn history_car(&self) -> BoxStream<'static, Result<Bytes, ApiError>> {
        Box::pin(stream::iter([Err(ApiError::not_implemented(NO_HISTORY))]))
    }

    /// `GET /history/log`: the deltas newest first that pass `query`.
    fn history_log(
        &self,
        query: HistoryLogQuery,
    ) -> BoxStream<'static, Result<HistoryDelta, ApiError>> {
        let _ = query;
        Box::pin(stream::iter([Err(ApiError::not_implemented(NO_HISTORY))]))
    }
}

const NO_HISTORY: &str = "this service keeps no signed history";
