//! CORS and extra headers for the answers the cluster writes, taken from
//! Kubo as Go's proxy does (`headers.go`): Kubo owns the CORS policy
//! (`API.HTTPHeaders`), so a hijacked answer carries the headers Kubo
//! would have sent. Per request with an `Origin`: Kubo's answer to
//! `POST extract_headers_path` with that origin gives the
//! `Access-Control-Allow-Origin`/`-Credentials` and `Vary` headers. Once
//! per `extract_headers_ttl`: `Access-Control-Allow-Headers`,
//! `Access-Control-Expose-Headers` and the `extract_headers_extra` ones.
//! Forwarded answers are Kubo's own; with the embedded node there is no
//! Kubo and no CORS header is added (cross-origin reads are refused by
//! browsers, as with Kubo's default policy).

use std::time::{Duration, Instant};

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use tokio::sync::Mutex;

use crate::forward::Forwarder;

/// The headers copied per request.
const PER_ORIGIN: [HeaderName; 3] = [
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::VARY,
];

/// Headers from Kubo for the proxy's own answers.
#[derive(Debug)]
pub(crate) struct KuboHeaders {
    forwarder: Forwarder,
    path: String,
    cached_names: Vec<HeaderName>,
    ttl: Duration,
    cache: Mutex<Option<(Instant, HeaderMap)>>,
}

impl KuboHeaders {
    pub(crate) fn new(forwarder: Forwarder, path: String, extra: &[String], ttl: Duration) -> Self {
        let mut cached_names = vec![
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
        ];
        cached_names.extend(
            extra
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok()),
        );
        Self {
            forwarder,
            path,
            cached_names,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// Sets Kubo's headers on `out` (an answer to a request that came with
    /// `origin`). Kubo unreachable: nothing is added.
    pub(crate) async fn apply(&self, origin: Option<&HeaderValue>, out: &mut HeaderMap) {
        let cached = {
            let mut cache = self.cache.lock().await;
            let fresh = cache
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < self.ttl);
            if !fresh && let Some(h) = self.forwarder.headers_of(&self.path, None).await {
                *cache = Some((Instant::now(), h));
            }
            cache.as_ref().map(|(_, h)| h.clone())
        };
        if let Some(h) = cached {
            copy(&h, &self.cached_names, out);
        }
        if let Some(origin) = origin
            && let Some(h) = self.forwarder.headers_of(&self.path, Some(origin)).await
        {
            copy(&h, &PER_ORIGIN, out);
        }
    }
}

fn copy(from: &HeaderMap, names: &[HeaderName], out: &mut HeaderMap) {
    for name in names {
        let values: Vec<HeaderValue> = from.get_all(name).iter().cloned().collect();
        if values.is_empty() {
            continue;
        }
        out.remove(name);
        for v in values {
            out.append(name.clone(), v);
        }
    }
}
