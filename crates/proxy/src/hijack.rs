//! The calls the cluster answers instead of IPFS (Go's hijacked routes):
//! `pin/add`, `pin/rm`, `pin/ls`, `pin/update`, `repo/stat` and `repo/gc`,
//! each in Kubo's answer shape. (`add` has its own file.)

use std::collections::BTreeMap;

use api::types::{PinMode, PinOptions, PinQuery, PinTypeFilter};
use axum::response::{IntoResponse, Response};
use cid::Cid;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::body;
use crate::error::KuboError;
use crate::query::{Query, ipfs_path};
use crate::{ClusterRepoStat, ProxyCluster};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Pins {
    pins: Vec<String>,
}

/// A CID as Kubo writes it in JSON values (`{"/":"<cid>"}`).
fn cid_link(cid: &Cid) -> serde_json::Value {
    json!({ "/": cid.to_string() })
}

/// `pin/add` (and `pin/add/{arg}`): pins each `arg` (a CID or a path,
/// resolved) in the cluster; `recursive=false` pins the root only. The
/// cluster's own pin options (`name`, `replication-min`, ...) are read
/// from the query too. Answers `{"Pins":[...]}`.
pub(crate) async fn pin_add<S: ProxyCluster>(api: &S, q: &Query) -> Response {
    let result = async {
        q.arg("ipfs-path")?;
        let mut opts = PinOptions::from_query(&q.0)?;
        if !q.flag(&["recursive", "r"], true)? {
            opts.mode = PinMode::Direct;
        }
        let mut pins = Vec::new();
        for arg in q.args() {
            let pin = api.pin_path(ipfs_path(arg), opts.clone()).await?;
            pins.push(pin.cid.to_string());
        }
        Ok::<_, KuboError>(Pins { pins })
    }
    .await;
    match result {
        Ok(p) => body::value(&p),
        Err(e) => e.into_response(),
    }
}

/// `pin/rm`: unpins each `arg` from the cluster.
pub(crate) async fn pin_rm<S: ProxyCluster>(api: &S, q: &Query) -> Response {
    let result = async {
        q.arg("ipfs-path")?;
        let mut pins = Vec::new();
        for arg in q.args() {
            let pin = api.unpin_path(ipfs_path(arg)).await?;
            pins.push(pin.cid.to_string());
        }
        Ok::<_, KuboError>(Pins { pins })
    }
    .await;
    match result {
        Ok(p) => body::value(&p),
        Err(e) => e.into_response(),
    }
}

/// Kubo's name for a cluster pin's mode.
fn kubo_type(mode: PinMode) -> &'static str {
    match mode {
        PinMode::Recursive => "recursive",
        PinMode::Direct => "direct",
    }
}

/// Whether a pin of `kind` passes pin/ls's `type` option.
fn type_passes(filter: &str, kind: &str) -> bool {
    filter == "all" || filter == kind
}

/// `pin/ls`: the cluster pinset as IPFS pins (a cluster pin's mode is its
/// type; nothing is "indirect"). With `arg`s, those pins only (Kubo's
/// error for one that isn't pinned); `stream=true` answers NDJSON
/// `{"Cid","Type"}` lines as they are read, else one
/// `{"Keys":{cid:{"Type"}}}`.
pub(crate) async fn pin_ls<S: ProxyCluster>(api: &S, q: &Query) -> Response {
    match pin_ls_inner(api, q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn pin_ls_inner<S: ProxyCluster>(api: &S, q: &Query) -> Result<Response, KuboError> {
    let filter = q.get(&["type", "t"]).unwrap_or("all").to_owned();
    if !["all", "recursive", "direct", "indirect"].contains(&filter.as_str()) {
        return Err(KuboError::client(format!(
            "invalid type '{filter}', must be one of {{direct, indirect, recursive, all}}"
        )));
    }
    let stream = q.flag(&["stream", "s"], false)?;
    let names = q.flag(&["names", "n"], false)?;
    // Kubo's field order: Cid (streamed lines only), Type, Name.
    let entry = move |cid: &Cid, kind: &str, name: &str| {
        let mut v = serde_json::Map::new();
        if stream {
            v.insert("Cid".into(), cid.to_string().into());
        }
        v.insert("Type".into(), kind.into());
        if names {
            v.insert("Name".into(), name.into());
        }
        serde_json::Value::Object(v)
    };
    let args = q.args();
    if !args.is_empty() {
        let mut keys = serde_json::Map::new();
        let mut lines = Vec::new();
        for arg in args {
            let not_pinned = || KuboError::normal(format!("path '{arg}' is not pinned"));
            let cid = api.resolve(ipfs_path(arg)).await?;
            let pin = api.allocation(cid).await.map_err(|e| {
                if e.status == 404 {
                    not_pinned()
                } else {
                    KuboError::from(e)
                }
            })?;
            let kind = kubo_type(pin.options.mode);
            if !type_passes(&filter, kind) {
                return Err(not_pinned());
            }
            let v = entry(&pin.cid, kind, &pin.options.name);
            if stream {
                lines.push(Ok(v));
            } else {
                keys.insert(pin.cid.to_string(), v);
            }
        }
        return Ok(if stream {
            body::ndjson(futures::stream::iter(lines).boxed()).await
        } else {
            body::value(&json!({ "Keys": keys }))
        });
    }
    let filter_pins = filter.clone();
    let pins = api
        .allocations(PinTypeFilter::ALL)
        .filter_map(move |p| {
            let out = match p {
                Err(e) => Some(Err(KuboError::from(e))),
                Ok(pin) => {
                    let kind = kubo_type(pin.options.mode);
                    type_passes(&filter_pins, kind).then_some(Ok((pin, kind)))
                }
            };
            std::future::ready(out)
        })
        .boxed();
    if stream {
        let lines = pins
            .map(move |p| p.map(|(pin, kind)| entry(&pin.cid, kind, &pin.options.name)))
            .boxed();
        return Ok(body::ndjson(lines).await);
    }
    // Kubo's non-streaming answer is one object: it has to be whole.
    let mut keys = BTreeMap::new();
    let mut pins = pins;
    while let Some(p) = pins.next().await {
        let (pin, kind) = p?;
        keys.insert(
            pin.cid.to_string(),
            entry(&pin.cid, kind, &pin.options.name),
        );
    }
    Ok(body::value(&json!({ "Keys": keys })))
}

/// `pin/update <from> <to>`: pins `to` in the cluster with the options and
/// allocations of the pin of `from` (which must be in the pinset), then
/// unpins `from` unless `unpin=false`. Answers `{"Pins":[from,to]}`.
pub(crate) async fn pin_update<S: ProxyCluster>(api: &S, q: &Query) -> Response {
    let result = async {
        let args = q.args();
        let (from, to) = match args.as_slice() {
            [] => return Err(KuboError::client("argument \"from-path\" is required")),
            [_] => return Err(KuboError::client("argument \"to-path\" is required")),
            [from, to, ..] => (*from, *to),
        };
        let unpin = q.flag(&["unpin"], true)?;
        let from_cid = api.resolve(ipfs_path(from)).await?;
        let from_pin = api.allocation(from_cid).await.map_err(|e| {
            if e.status == 404 {
                KuboError::normal(format!(
                    "'from' cid {from_cid} is not pinned in the cluster"
                ))
            } else {
                KuboError::from(e)
            }
        })?;
        let mut opts = from_pin.options.clone();
        opts.user_allocations = from_pin.allocations.clone();
        opts.pin_update = Some(from_cid);
        let to_pin = api.pin_path(ipfs_path(to), opts).await?;
        if unpin && to_pin.cid != from_cid {
            api.unpin(from_cid).await?;
        }
        Ok(Pins {
            pins: vec![from_cid.to_string(), to_pin.cid.to_string()],
        })
    }
    .await;
    match result {
        Ok(p) => body::value(&p),
        Err(e) => e.into_response(),
    }
}

/// Kubo's `repo/stat` answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RepoStat {
    repo_size: u64,
    storage_max: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_objects: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

/// `repo/stat`: the repository use of every cluster peer's IPFS, summed,
/// in Kubo's shape (`size-only=true`: the sizes only, as Kubo).
pub(crate) async fn repo_stat<S: ProxyCluster>(api: &S, q: &Query) -> Response {
    let result = async {
        let size_only = q.flag(&["size-only", "s"], false)?;
        let ClusterRepoStat {
            repo_size,
            storage_max,
            num_objects,
        } = api.repo_stat().await?;
        Ok::<_, KuboError>(RepoStat {
            repo_size,
            storage_max,
            num_objects: (!size_only).then_some(num_objects),
            repo_path: (!size_only).then(|| "ipfs-cluster (sum over peers)".to_owned()),
            version: (!size_only).then(|| "fs-repo@18".to_owned()),
        })
    }
    .await;
    match result {
        Ok(s) => body::value(&s),
        Err(e) => e.into_response(),
    }
}

/// `repo/gc`: IPFS garbage collection on every cluster peer; each removed
/// block is a `{"Key":{"/":cid}}` line. A peer's error is an
/// `{"Error":..}` line with `stream-errors=true`, else the
/// `X-Stream-Error` trailer (the last one), as Kubo does with its own.
pub(crate) async fn repo_gc<S: ProxyCluster>(api: &S, q: &Query) -> Response {
    let stream_errors = match q.flag(&["stream-errors"], false) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let gc = match api.repo_gc(false).await {
        Ok(gc) => gc,
        Err(e) => return KuboError::from(e).into_response(),
    };
    let mut lines = Vec::new();
    let mut last_error = None;
    for (peer, run) in gc.peer_map {
        let mut errors: Vec<String> = run
            .keys
            .iter()
            .filter(|k| !k.error.is_empty())
            .map(|k| k.error.clone())
            .collect();
        if !run.error.is_empty() {
            errors.push(run.error.clone());
        }
        for key in run.keys.iter().filter_map(|k| k.key) {
            lines.push(Ok(json!({ "Key": cid_link(&key) })));
        }
        for e in errors {
            let e = format!("{} ({peer}): {e}", run.peername);
            if stream_errors {
                lines.push(Ok(json!({ "Error": e })));
            } else {
                last_error = Some(e);
            }
        }
    }
    if let Some(e) = last_error {
        lines.push(Err(KuboError::normal(e)));
    }
    body::ndjson(futures::stream::iter(lines).boxed()).await
}
