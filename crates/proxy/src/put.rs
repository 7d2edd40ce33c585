//! `block/put` and `dag/put` with `pin=true` (Go's hijack of them): IPFS
//! stores the data (asked with `pin=false`: the cluster owns the pin), its
//! answer streams back as it comes, and each CID it names is then pinned
//! in the cluster; a pin that fails is reported in the `X-Stream-Error`
//! trailer.

use std::sync::Arc;

use api::types::{PinOptions, PinQuery};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use cid::Cid;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Uri, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::ProxyCluster;
use crate::body::STREAM_ERROR;
use crate::error::KuboError;
use crate::query::Query;

/// Whether a call is a put that asks to pin: `block/put` or `dag/put` with
/// `pin=true`.
pub(crate) fn pins(path: &str, q: &Query) -> bool {
    let call = path.strip_prefix("/api/v0").unwrap_or("");
    matches!(call.trim_end_matches('/'), "/block/put" | "/dag/put")
        && q.flag(&["pin"], false).unwrap_or(false)
}

/// `uri` with `pin=false` (what IPFS is asked).
pub(crate) fn without_pin(uri: &Uri) -> Uri {
    let q = Query::parse(uri.query());
    let rest = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.0.iter().filter(|(k, _)| k != "pin"))
        .append_pair("pin", "false")
        .finish();
    format!("{}?{rest}", uri.path())
        .parse()
        .unwrap_or_else(|_| uri.clone())
}

/// The CID a put's answer line names: `{"Key":..}` (block/put) or
/// `{"Cid":{"/":..}}` (dag/put).
fn cid_of(line: &[u8]) -> Option<Cid> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let text = v["Key"].as_str().or_else(|| v["Cid"]["/"].as_str())?;
    text.parse().ok()
}

struct Pass<S> {
    api: Arc<S>,
    opts: PinOptions,
    body: Body,
    line: Vec<u8>,
    cids: Vec<Cid>,
    ipfs_trailers: Option<HeaderMap>,
}

/// Passes IPFS's answer `resp` on and pins what it names once it ends.
pub(crate) fn pin_after<S: ProxyCluster>(api: Arc<S>, q: &Query, resp: Response) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let opts = match PinOptions::from_query(&q.0) {
        Ok(o) => o,
        Err(e) => return KuboError::from(e).into_response(),
    };
    let (mut parts, body) = resp.into_parts();
    parts
        .headers
        .insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
    let state = Some(Pass {
        api,
        opts,
        body,
        line: Vec::new(),
        cids: Vec::new(),
        ipfs_trailers: None,
    });
    let frames = futures::stream::unfold(state, |state| async move {
        let mut s = state?;
        loop {
            match s.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        for b in data.iter() {
                            if *b == b'\n' {
                                s.cids.extend(cid_of(&s.line));
                                s.line.clear();
                            } else {
                                s.line.push(*b);
                            }
                        }
                        return Some((Ok::<_, axum::Error>(Frame::data(data)), Some(s)));
                    }
                    Err(frame) => s.ipfs_trailers = frame.into_trailers().ok(),
                },
                Some(Err(e)) => return Some((Err(e), None)),
                None => break,
            }
        }
        s.cids.extend(cid_of(&s.line));
        let mut errors = Vec::new();
        for cid in &s.cids {
            if let Err(e) = s.api.pin(*cid, s.opts.clone()).await {
                errors.push(format!("pinning {cid} in the cluster: {}", e.message));
            }
        }
        let mut trailers = s.ipfs_trailers.take().unwrap_or_default();
        let ipfs_error = trailers
            .get(STREAM_ERROR)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        errors.extend(ipfs_error);
        let value = HeaderValue::from_str(&errors.join("; ").replace(['\r', '\n'], " "))
            .unwrap_or_else(|_| HeaderValue::from_static("pinning failed"));
        trailers.insert(STREAM_ERROR, value);
        Some((Ok(Frame::trailers(trailers)), None))
    });
    Response::from_parts(parts, Body::new(StreamBody::new(frames.boxed())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_answers_and_queries() {
        let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        assert_eq!(
            cid_of(format!("{{\"Key\":\"{cid}\",\"Size\":3}}").as_bytes()),
            Some(cid.parse().unwrap())
        );
        assert_eq!(
            cid_of(format!("{{\"Cid\":{{\"/\":\"{cid}\"}}}}").as_bytes()),
            Some(cid.parse().unwrap())
        );
        assert_eq!(cid_of(b"{}"), None);
        let q = Query::parse(Some("pin=true&cid-codec=raw"));
        assert!(pins("/api/v0/block/put", &q));
        assert!(pins("/api/v0/dag/put", &q));
        assert!(!pins("/api/v0/block/get", &q));
        assert!(!pins("/api/v0/block/put", &Query::parse(Some("pin=false"))));
        let uri: Uri = "/api/v0/block/put?pin=true&cid-codec=raw".parse().unwrap();
        assert_eq!(
            without_pin(&uri).to_string(),
            "/api/v0/block/put?cid-codec=raw&pin=false"
        );
    }
}
