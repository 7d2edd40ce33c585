//! Request plumbing: the rate limit after failures, one POST with its
//! status and error answer, whole and JSON answers within a deadline, and
//! streamed answers; how transport failures become [`IpfsError`]s.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::IpfsError;

use super::lines::Lines;
use super::{Inner, MAX_ANSWER_BYTES, MAX_ERROR_BYTES, Query, RATE_LIMIT_AFTER_FAILURES};

/// Kubo's error body.
#[derive(Deserialize)]
struct KuboErrorBody {
    #[serde(rename = "Message")]
    message: String,
}

impl Inner {
    /// Waits for a slot when rate limited.
    pub(super) async fn rate_limit(&self) {
        if self.failures.load(Ordering::Relaxed) <= RATE_LIMIT_AFTER_FAILURES {
            return;
        }
        let mut next = self.next_slot.lock().await;
        sleep_until(*next).await;
        *next = Instant::now() + Duration::from_secs(1);
    }

    /// Sends `POST /api/v0/<endpoint>?<query>` and returns the answer once
    /// its headers are in, within `limit`. A non-200 answer is read and
    /// returned as [`IpfsError::Ipfs`].
    pub(super) async fn post(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
        limit: Duration,
    ) -> Result<hyper::Response<Incoming>, IpfsError> {
        self.rate_limit().await;
        let mut uri = format!("{}/api/v0/{endpoint}", self.base);
        if !query.is_empty() {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            uri.push('?');
            uri.push_str(&ser.finish());
        }
        let mut req = Request::builder().method(Method::POST).uri(&uri);
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| IpfsError::InvalidArgument(format!("{uri}: {e}")))?;
        let resp = match timeout(limit, self.http.request(req)).await {
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(IpfsError::Timeout {
                    endpoint,
                    timeout: limit,
                });
            }
            Ok(Err(e)) => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n == RATE_LIMIT_AFTER_FAILURES + 1 {
                    tracing::warn!(
                        addr = %self.base,
                        "{n} consecutive failed requests to IPFS: rate limiting to 1 request/s"
                    );
                }
                return Err(IpfsError::Unreachable {
                    addr: self.base.clone(),
                    endpoint,
                    reason: error_chain(&e),
                });
            }
            Ok(Ok(resp)) => resp,
        };
        self.failures.store(0, Ordering::Relaxed);
        let status = resp.status();
        if status == StatusCode::OK {
            return Ok(resp);
        }
        let body = timeout(
            limit,
            http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BYTES).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map_or_else(
            || Bytes::from(format!("(no error message within {MAX_ERROR_BYTES} bytes)")),
            |b| b.to_bytes(),
        );
        let message = serde_json::from_slice::<KuboErrorBody>(&body)
            .map(|b| b.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        Err(IpfsError::Ipfs {
            endpoint,
            status: status.as_u16(),
            message,
        })
    }

    /// A call answering one JSON object, within `ipfs_request_timeout`.
    pub(super) async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
    ) -> Result<T, IpfsError> {
        self.call_within(endpoint, query, body, self.config.ipfs_request_timeout)
            .await
    }

    pub(super) async fn call_within<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
        limit: Duration,
    ) -> Result<T, IpfsError> {
        let deadline = Instant::now() + limit;
        let bytes = self
            .call_bytes(endpoint, query, body, deadline, limit)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| IpfsError::Protocol {
            endpoint,
            reason: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
        })
    }

    /// A call's whole body, within the deadline.
    pub(super) async fn call_bytes(
        &self,
        endpoint: &'static str,
        query: Query<'_>,
        body: Option<(String, Bytes)>,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Bytes, IpfsError> {
        let timed_out = || IpfsError::Timeout {
            endpoint,
            timeout: limit,
        };
        let resp = timeout_at(deadline, self.post(endpoint, query, body, limit))
            .await
            .map_err(|_| timed_out())??;
        let mut body = resp.into_body();
        let mut out = Vec::new();
        // Read frame by frame so that an error trailer is seen.
        loop {
            match timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(body_error(&self.base, endpoint, &e)),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if out.len() + data.len() > MAX_ANSWER_BYTES {
                            return Err(IpfsError::Protocol {
                                endpoint,
                                reason: format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
                            });
                        }
                        out.extend_from_slice(&data);
                    }
                    Err(frame) => {
                        if let Some(err) = frame.trailers_ref().and_then(stream_error) {
                            return Err(IpfsError::Ipfs {
                                endpoint,
                                status: 200,
                                message: err,
                            });
                        }
                    }
                },
            }
        }
        Ok(out.into())
    }

    /// A streaming call: its NDJSON lines, parsed, the whole stream within
    /// `limit`.
    pub(super) fn stream<T, U, F>(
        self: &Arc<Self>,
        endpoint: &'static str,
        query: Vec<(&'static str, String)>,
        limit: Duration,
        mut map: F,
    ) -> BoxStream<'static, Result<U, IpfsError>>
    where
        T: for<'de> Deserialize<'de> + Send + 'static,
        U: Send + 'static,
        F: FnMut(T) -> Result<Option<U>, IpfsError> + Send + 'static,
    {
        let inner = Arc::clone(self);
        let start = async move {
            let deadline = Instant::now() + limit;
            let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let resp = timeout_at(deadline, inner.post(endpoint, &q, None, limit))
                .await
                .map_err(|_| IpfsError::Timeout {
                    endpoint,
                    timeout: limit,
                })??;
            let mut lines = Lines::new(resp.into_body(), &inner.base, endpoint);
            lines.deadline = Some((deadline, limit));
            Ok::<_, IpfsError>(lines)
        };
        stream::once(start)
            .flat_map(move |lines| match lines {
                Err(e) => stream::iter([Err(e)]).boxed(),
                Ok(lines) => stream::unfold(Some(lines), |state| async move {
                    let mut lines = state?;
                    let item = lines.next_line().await?;
                    let end = item.is_err();
                    Some((item, (!end).then_some(lines)))
                })
                .boxed(),
            })
            .filter_map(move |line| {
                let item = line.and_then(|line| {
                    let value: T =
                        serde_json::from_slice(&line).map_err(|e| IpfsError::Protocol {
                            endpoint,
                            reason: format!("{e}: {}", String::from_utf8_lossy(&line)),
                        })?;
                    map(value)
                });
                futures::future::ready(item.transpose())
            })
            .scan(false, |failed, item| {
                // End after the first error.
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            })
            .boxed()
    }
}

/// The `X-Stream-Error` trailer, when set.
pub(super) fn stream_error(trailers: &http::HeaderMap) -> Option<String> {
    trailers
        .get("X-Stream-Error")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|s| !s.is_empty())
}

/// An error and its sources, as one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A failure reading an answer's body from the daemon at `addr`: the
/// connection cut mid-answer (the daemon stopped or crashed, a reset) is
/// the daemon being unreachable, like a refused connection; anything else
/// is an answer that breaks the protocol.
pub(super) fn body_error(addr: &str, endpoint: &'static str, e: &hyper::Error) -> IpfsError {
    let reason = format!("reading the answer: {}", error_chain(e));
    let cut = e.is_incomplete_message()
        || e.is_closed()
        || std::iter::successors(std::error::Error::source(e), |c| c.source())
            .any(|c| c.is::<std::io::Error>());
    if cut {
        IpfsError::Unreachable {
            addr: addr.to_owned(),
            endpoint,
            reason,
        }
    } else {
        IpfsError::Protocol { endpoint, reason }
    }
}
