//! The reverse proxy to Kubo: a call the cluster doesn't answer goes to the
//! IPFS daemon as it came (method, path, query, headers but the hop-by-hop
//! ones, body) and Kubo's answer comes back as it is produced: both bodies
//! stream, trailers included, nothing is buffered.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::KuboError;

/// Headers that belong to one connection, not to the call (RFC 9110 §7.6.1,
/// and Go's `httputil` list). `TE: trailers` is kept: it asks Kubo for the
/// `X-Stream-Error` trailer, which is passed on.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A client of the Kubo RPC API at `host:port`.
#[derive(Clone, Debug)]
pub(crate) struct Forwarder {
    client: Client<HttpConnector, Body>,
    authority: String,
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(n);
    }
    h.remove(HeaderName::from_static("proxy-connection"));
}

impl Forwarder {
    pub(crate) fn new(authority: String) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        Forwarder {
            client: Client::builder(TokioExecutor::new()).build(http),
            authority,
        }
    }

    /// Sends `req` to Kubo and answers with Kubo's answer. `client_ip` is
    /// added to `X-Forwarded-For` (as Go's reverse proxy does).
    pub(crate) async fn forward(&self, req: Request<Body>, client_ip: Option<String>) -> Response {
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let uri: Uri = match format!("http://{}{path_and_query}", self.authority).parse() {
            Ok(u) => u,
            Err(e) => return KuboError::client(format!("bad request path: {e}")).into_response(),
        };
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        // Kubo sees its own address as the host, as when called directly.
        if let Ok(v) = HeaderValue::from_str(&self.authority) {
            parts.headers.insert(header::HOST, v);
        }
        if let Some(ip) = client_ip {
            let forwarded = match parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prior) => format!("{prior}, {ip}"),
                None => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&forwarded) {
                parts.headers.insert("x-forwarded-for", v);
            }
        }
        let req = Request::from_parts(parts, body);
        match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::debug!(error = ?e, "IPFS proxy: forwarding to {}", self.authority);
                KuboError::normal(format!(
                    "the IPFS daemon's RPC API at {} can't be reached through the cluster proxy: {}",
                    self.authority,
                    error_chain(&e)
                ))
                .with_status(http::StatusCode::BAD_GATEWAY)
                .into_response()
            }
        }
    }

    /// Headers of Kubo's answer to `POST path` (CORS and the configured
    /// extras are copied from it to the proxy's own answers).
    pub(crate) async fn headers_of(
        &self,
        path: &str,
        origin: Option<&HeaderValue>,
    ) -> Option<HeaderMap> {
        let mut req = Request::post(format!("http://{}{path}", self.authority));
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let req = req.body(Body::empty()).ok()?;
        let resp = self.client.request(req).await.ok()?;
        Some(resp.headers().clone())
    }
}

/// An error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
