//! A plain HTTP/1.1 client for the REST API, the same for both
//! implementations: whole answers, or NDJSON answers line by line as they
//! arrive. Connections are pooled and reused (every answer is read to its
//! end).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled HTTP client; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Http {
    pub(crate) fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .body(Empty::new())
            .context("building a request")?;
        self.client.request(req).await.context("HTTP request")
    }

    /// One request and its whole answer.
    pub(crate) async fn fetch(&self, method: Method, url: &str) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, url).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading an answer")?
            .to_bytes();
        Ok((status, body))
    }

    /// [`Http::fetch`] bounded by `limit`.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        limit: Duration,
    ) -> Result<(StatusCode, Bytes)> {
        match tokio::time::timeout(limit, self.fetch(method, url)).await {
            Ok(r) => r,
            Err(_) => bail!("no answer within {limit:?}"),
        }
    }

    /// A GET whose answer is read line by line (NDJSON), each non-empty
    /// line given to `line`; its status, bounded by `limit`. A non-2xx
    /// answer's body is not split.
    pub(crate) async fn get_lines(
        &self,
        url: &str,
        limit: Duration,
        mut line: impl FnMut(&[u8]),
    ) -> Result<StatusCode> {
        let work = async {
            let resp = self.send(Method::GET, url).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            let mut buf = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.context("reading a streamed answer")?;
                let Ok(data) = frame.into_data() else {
                    continue; // trailers
                };
                if !status.is_success() {
                    continue;
                }
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let l = buf.split_to(nl + 1);
                    let l = &l[..nl];
                    if !l.iter().all(u8::is_ascii_whitespace) {
                        line(l);
                    }
                }
            }
            if status.is_success() && !buf.iter().all(u8::is_ascii_whitespace) {
                line(&buf);
            }
            Ok(status)
        };
        match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => bail!("no full answer within {limit:?}"),
        }
    }
}
