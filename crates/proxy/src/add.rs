//! `add`: Kubo's upload imported by the cluster ([`ClusterApi::add`], which
//! pins the root where the allocator says) and answered as Kubo answers:
//! `{"Name","Hash","Size"}` lines, and `{"Name","Bytes"}` progress lines
//! with `progress=true`.
//!
//! [`ClusterApi::add`]: api::service::ClusterApi::add

use api::service::{AddFile, AddFileKind};
use api::types::{AddLayout, AddParams, AddedOutput};
use api::{ApiError, multipart_boundary, read_upload};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, BoxStream, PollNext, StreamExt};
use http::HeaderMap;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ProxyCluster;
use crate::body;
use crate::error::KuboError;
use crate::query::Query;

/// Progress lines waiting to be written.
const PROGRESS_QUEUE: usize = 16;

/// One line of Kubo's `add` answer (`coreiface.AddEvent`).
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AddEvent {
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    hash: String,
    #[serde(skip_serializing_if = "is_zero")]
    bytes: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    size: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<AddedOutput> for AddEvent {
    fn from(o: AddedOutput) -> Self {
        AddEvent {
            name: o.name,
            hash: o.cid.to_string(),
            bytes: o.bytes,
            size: if o.size == 0 {
                String::new()
            } else {
                o.size.to_string()
            },
        }
    }
}

/// The cluster's add parameters from Kubo's query: Kubo's names where
/// they differ (`pin=false`, `trickle=true`), `only-hash` refused (the
/// cluster stores what it adds).
fn params(q: &Query) -> Result<AddParams, KuboError> {
    if q.flag(&["only-hash", "n"], false)? {
        return Err(KuboError::client(
            "only-hash is not supported when adding to cluster: the cluster stores and pins what it adds (use ipfs add --only-hash against Kubo itself)",
        ));
    }
    let mut params = AddParams::from_query(&q.0)
        .map_err(|e| KuboError::client(format!("error parsing options: {}", e.message)))?;
    if !q.flag(&["pin"], true)? {
        params.no_pin = true;
    }
    if q.flag(&["trickle", "t"], false)? {
        params.layout = AddLayout::Trickle;
    }
    // The answer is always a stream (as Kubo's), whatever was asked.
    params.stream_channels = true;
    Ok(params)
}

/// Counts each file's bytes as the importer reads them and queues a
/// progress line per chunk (the running total, as Kubo's).
fn with_progress(
    files: BoxStream<'static, Result<AddFile, ApiError>>,
    tx: mpsc::Sender<AddEvent>,
) -> BoxStream<'static, Result<AddFile, ApiError>> {
    files
        .map(move |entry| {
            entry.map(|file| match file.kind {
                AddFileKind::Directory => file,
                AddFileKind::File(data) => {
                    let tx = tx.clone();
                    let name = file.path.clone();
                    let mut total = 0u64;
                    let data = data
                        .then(move |chunk| {
                            let tx = tx.clone();
                            if let Ok(b) = &chunk {
                                total += b.len() as u64;
                            }
                            let event = AddEvent {
                                name: name.clone(),
                                hash: String::new(),
                                bytes: total,
                                size: String::new(),
                            };
                            async move {
                                if chunk.is_ok() {
                                    // The reader gone: nobody to tell.
                                    let _ = tx.send(event).await;
                                }
                                chunk
                            }
                        })
                        .boxed();
                    AddFile {
                        path: file.path,
                        kind: AddFileKind::File(data),
                    }
                }
            })
        })
        .boxed()
}

/// Upload chunks waiting for the importer.
const UPLOAD_QUEUE: usize = 4;
/// Most bytes of an upload read and dropped after the add failed...
const MAX_DRAIN: usize = 256 << 20;
/// ...and the longest that takes, before the error is answered.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// The request body as a stream, read by a task that goes on reading
/// (and dropping) what is left once the stream is dropped: an add that
/// fails early answers after the upload is read, so the client gets the
/// error, not a broken pipe (Kubo's CLI writes the whole upload first).
fn drained(
    body: Body,
) -> (
    BoxStream<'static, Result<Bytes, axum::Error>>,
    JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
    let feeder = tokio::spawn(async move {
        let mut data = body.into_data_stream();
        let mut dropped = 0usize;
        while let Some(chunk) = data.next().await {
            if let Err(mpsc::error::SendError(chunk)) = tx.send(chunk).await {
                dropped += chunk.map_or(0, |b| b.len());
                if dropped > MAX_DRAIN {
                    break;
                }
            }
        }
    });
    let chunks = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (chunks.boxed(), feeder)
}

/// `e`, once the upload has been read (or [`DRAIN_WAIT`] passed).
async fn after_upload(e: KuboError, feeder: JoinHandle<()>) -> Response {
    let _ = tokio::time::timeout(DRAIN_WAIT, feeder).await;
    e.into_response()
}

/// `POST /api/v0/add`.
pub(crate) async fn add<S: ProxyCluster>(
    api: &S,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let (upload, feeder) = drained(body);
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let setup = multipart_boundary(content_type)
        .map_err(|e| KuboError::client(format!("error reading request: {}", e.message)))
        .and_then(|b| Ok((b, params(q)?, q.flag(&["progress", "p"], false)?)));
    let (boundary, params, progress) = match setup {
        Ok(s) => s,
        Err(e) => {
            drop(upload);
            return after_upload(e, feeder).await;
        }
    };
    let files = read_upload(upload, boundary);
    let mut out = if progress {
        let (tx, rx) = mpsc::channel(PROGRESS_QUEUE);
        let files = with_progress(files, tx);
        let out = api
            .add(params, files)
            .map(|o| o.map(AddEvent::from).map_err(KuboError::from));
        let progress_lines =
            stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
            );
        // Progress first whenever some is waiting: a file's last progress
        // line comes before the line that says it was added.
        stream::select_with_strategy(progress_lines, out, |_: &mut ()| PollNext::Left).boxed()
    } else {
        api.add(params, files)
            .map(|o| o.map(AddEvent::from).map_err(KuboError::from))
            .boxed()
    };
    match out.next().await {
        Some(Err(e)) => {
            drop(out);
            after_upload(e, feeder).await
        }
        first => body::ndjson(stream::iter(first).chain(out).boxed()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cid::Cid;

    #[test]
    fn kubo_add_lines() {
        let cid: Cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
            .parse()
            .unwrap();
        let ev = AddEvent::from(AddedOutput {
            name: "a.txt".into(),
            cid,
            bytes: 0,
            size: 12,
            allocations: vec![],
        });
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            format!("{{\"Name\":\"a.txt\",\"Hash\":\"{cid}\",\"Size\":\"12\"}}")
        );
    }

    #[test]
    fn kubo_options_map_to_the_clusters() {
        let p = params(&Query::parse(Some("pin=false&trickle=true&cid-version=1"))).unwrap();
        assert!(p.no_pin);
        assert_eq!(p.layout, AddLayout::Trickle);
        assert_eq!(p.cid_version, 1);
        let e = params(&Query::parse(Some("only-hash=true"))).unwrap_err();
        assert!(e.message.contains("only-hash is not supported"));
    }
}
